/* lp_owner.h -- one live drain per consumer name, one group per --dir */
#ifndef LP_OWNER_H
#define LP_OWNER_H

#include <stdint.h>

#include "lp_redis.h"

/*
 * A consumer name is an identity: two live drains under one name would
 * both take the same pending entries for their own. And two groups each
 * receive every entry: drains of two groups writing into one --dir write
 * each event twice. Two guards:
 *
 *  - lock files in --dir, which the kernel releases with the process:
 *    flock(LOCK_EX) on one per stream, group and consumer, and
 *    flock(LOCK_SH) on one per stream and group, whose siblings are probed;
 *  - a heartbeat in Redis, <stream>:drain:<group>:<consumer>, holding who
 *    runs under the name (pid, its start time, boot ID, PID namespace,
 *    host) with a TTL that the drain refreshes while it runs, so that a
 *    twin on another host is caught too. A heartbeat of this machine (same
 *    boot ID and PID namespace) whose process is gone is a dead self,
 *    taken over at once: a drain restarted after a crash starts at once.
 */
struct lp_owner;

/* Results besides 0 and -1 (a failure, err says) */
#define LP_OWNER_TWIN (-2)      /* a live drain has this consumer name */
#define LP_OWNER_SHARED (-3)    /* a drain of another group uses --dir */
#define LP_OWNER_NOBEAT (-4)    /* Redis refused the heartbeat (NOPERM) */

/* Who we are (the strings are copied); cluster: stream is on a Redis
 * Cluster, the heartbeat's key named to share its slot (lp_key_aux).
 * Returns NULL when out of memory. */
struct lp_owner *lp_owner_new(const char *stream, const char *group,
                              const char *consumer, const char *host,
                              int cluster);
/* The stream that names the group's lock in --dir (lp_owner_lock_dir),
 * when it is not the one whose entries this consumer reads: the stream
 * S of which that one is a shard, so that the drains of S's shards are
 * one stream there (a drain of another group clashes with all of them).
 * The consumer's own lock, journal and heartbeat stay the shard's.
 * Copied; before lp_owner_lock_dir. 0, or -1 when out of memory. */
int lp_owner_dir_stream(struct lp_owner *o, const char *stream);

/* The name of this consumer's own things in --dir (its drain journal):
 * 16 hex digits, the hash its lock file is named by. cap >= 17. */
void lp_owner_name(const struct lp_owner *o, char *buf, size_t cap);

/* Closes the lock files, which releases them; accepts NULL. */
void lp_owner_free(struct lp_owner *o);

/*
 * Takes the locks in the directory dirfd (borrowed): 0; LP_OWNER_TWIN
 * when a live process holds this consumer's lock; LP_OWNER_SHARED when a
 * live drain of another stream or group holds its lock there and shared
 * is 0; -1 when a lock file cannot be made. err says which, naming the
 * other drain.
 */
int lp_owner_lock_dir(struct lp_owner *o, int dirfd, int shared,
                      char *err);

/*
 * Takes the heartbeat for ttl_ms: 0; LP_OWNER_TWIN with err naming the
 * live holder; LP_OWNER_NOBEAT with err when Redis refuses the commands
 * (an ACL user without them); -1 with err on an I/O error (retry).
 */
int lp_owner_claim(struct lp_owner *o, struct lp_redis *r, int64_t ttl_ms,
                   char *err);

/* Queues the refresh of the heartbeat into r's pipeline (0 or -1); its
 * reply goes to lp_owner_beat_reply, which takes it (frees it) and
 * returns 0, LP_OWNER_TWIN with err when another drain holds the name
 * now (ours expired while we stalled), or LP_OWNER_NOBEAT. */
int lp_owner_queue_beat(struct lp_owner *o, struct lp_redis *r,
                        int64_t ttl_ms);
int lp_owner_beat_reply(struct lp_owner *o, struct lp_reply *rep,
                        char *err);

/* Deletes the heartbeat when it is still ours (at exit, so that a drain
 * started elsewhere under the name need not wait for the TTL). */
void lp_owner_release(struct lp_owner *o, struct lp_redis *r);

/* The heartbeat's key (for messages). */
const char *lp_owner_key(const struct lp_owner *o);

#endif
