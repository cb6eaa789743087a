/* lp_drain.h -- the drain engine: a consumer group into files, stdout or
 * a command, acknowledged only once durable */
#ifndef LP_DRAIN_H
#define LP_DRAIN_H

#include <stdint.h>

#include "lp_notice.h"
#include "lp_opt.h"
#include "lp_redis.h"

/*
 * struct lp_drain owns all of logpipe-drain's state: the group it reads
 * (lp_group.c), the batch in hand, the sink it writes to (day files of
 * lp_archive.c, stdout, an --exec command, SQL for either), the DLQ
 * moves, the trims, the consumer name's heartbeat (lp_owner.c) and the
 * metrics. lp_drain_run owns the loop: read -> sink -> durable -> ack, in
 * one round trip with the next read.
 *
 * How it talks back. It never prints and never exits: what ends a run is
 * a status in struct lp_drain_result. What it says as it goes goes
 * through the struct lp_notify it was made with, in order, at a level:
 * the LP_NOTICE_* ones as for any lib object (its archive, group and
 * metrics say theirs the same way), and the LP_DRAIN_SAY_* below. What
 * ends the run is said through it too, at LP_NOTICE_ERROR and before the
 * run gives back the deliveries of the entries in hand, which it may
 * have to say something about: the order stays the one the user reads.
 */

/* Notice levels of the engine, besides lp_notice.h's */
enum {
    LP_DRAIN_SAY_DLQ = 16,      /* warning about one entry moved to the DLQ */
    LP_DRAIN_SAY_DELETED,       /* warning: an entry deleted unarchived */
    LP_DRAIN_SAY_DLQ_FAILED,    /* error: a move to the DLQ failed */
    LP_DRAIN_SAY_TRACE          /* -v: a batch, msg "key=value ..." */
};
/* The three about one entry each can come by the million: a tool
 * rations them (lp_budget). */

/* What the user chose (logpipe-drain's options, see its man page). The
 * strings are borrowed for the engine's life. */
struct lp_drain_conf {
    struct lp_common com;
    const char *consumer;       /* NULL: the host name */
    uint64_t count;
    int64_t block, timeout, claim_idle, keep;       /* ms */
    uint64_t max_deliveries;
    const char *layout;
    int to_stdout, once;
    const char *exec;
    int64_t exec_timeout;
    const char *sql;
    const char *field;
    const char *time_field;
    const char *where;
    uint64_t max_depth;
    uint64_t max_open;
    uint64_t max_files, max_line, max_members, max_dlq_size;
    int shared_dir;
    /* one shard of a sharded stream (logpipe-drain's children, see its
     * "Sharded streams"): com.stream is the shard's name. id_prefix
     * ("<i>-") goes before each entry's ID in its archive "_id" (and
     * --sql's id), so that the IDs of the shards' entries differ in one
     * tree; dir_stream (the stream S) names the --dir lock of the group
     * (lp_owner_lock_dir), so that the shards of one drain count as one
     * stream there; metrics_label ('shard="3"') is added to every
     * series. NULL: none (an unsharded stream, as always). */
    const char *id_prefix, *dir_stream, *metrics_label;
    const char *shard_range;    /* the tool's --shard-range (not the
                                 * engine's: it drains one stream) */
    /* --stdout written by several processes at once: out_lock is called
     * before a batch's write, out_unlock after it, so that lines of two
     * never mix. NULL: none. */
    void (*out_lock)(void *ctx);
    void (*out_unlock)(void *ctx);
    void *out_ctx;
    /* the tool's rationed messages (lp_budget): log_tick says those held
     * back when their period is over; log_due says in how many ms the
     * next is due (-1: none), which a blocking read waits no longer
     * than. NULL: none. */
    void (*log_tick)(void);
    int64_t (*log_due)(void);
};

/* How a run ended (lp_drain_result.end) */
enum {
    LP_DRAIN_DONE,          /* stopped, or --once done: the tool says the
                             * summary (the counts), then exits with
                             * status (0, or --where's: lp_jq_status) */
    LP_DRAIN_SAID,          /* ended by what it said: exit with status */
    LP_DRAIN_DLQ_REFUSED,   /* the DLQ refuses entries for good (78): the
                             * tool says so */
    LP_DRAIN_SIGPIPE        /* stdout's reader went away: end as a
                             * filter killed by SIGPIPE */
};

struct lp_drain_result {
    int end;                /* LP_DRAIN_* */
    int status;             /* the exit status (lp_exit.h) */
    char where_msg[1024];   /* status from --where: what lp_jq_status
                             * says ("" when it did not fail) */
    /* entries: read, archived (written once), already archived (found in
     * their file), moved to the DLQ, filtered out by --where, deleted
     * before they were archived, claimed from other consumers, trimmed */
    uint64_t read, archived, dups, dlq, filtered, deleted, claimed, trimmed;
    /* lines of the journal a run left (lp_journal.h) applied at the
     * start, and those of them found in their files already */
    uint64_t replayed, replay_dups;
    /* day files opened (lp_archive_opens), as of the last --metrics */
    uint64_t file_opens;
};

struct lp_drain;

/* The defaults (logpipe-drain's, before the environment and the command
 * line): a conf starts as a copy of it. */
extern const struct lp_drain_conf lp_drain_defaults;

/*
 * A drain for conf (copied; its strings borrowed), saying things through
 * nt (copied; NULL: silent). Makes its metrics (written to
 * conf->com.metrics, if any, at lp_drain_free at the latest); nothing
 * else yet. NULL with err when out of memory.
 */
struct lp_drain *lp_drain_new(const struct lp_drain_conf *conf,
                              const struct lp_notify *nt, char *err);

/*
 * Gets ready: the consumer name, --where, --layout, --sql, --dir and its
 * locks, the archive. 0, or an exit status (lp_exit.h) with err.
 */
int lp_drain_open(struct lp_drain *d, char *err);

/* What lp_drain_open would refuse in conf alone (--where, --layout), as
 * it would: 0, or LP_EX_CONFIG with err. For a tool that talks to Redis
 * before it opens a drain (a sharded stream's count). */
int lp_drain_check(const struct lp_drain_conf *conf, char *err);

/*
 * Runs, over r (taken: freed with d; its socket timeout is set here):
 * joins the group, then reads, writes and acknowledges until a stop
 * signal (lp_sig.h), --once's end, or a failure. Fills *res; returns
 * res->status.
 */
int lp_drain_run(struct lp_drain *d, struct lp_redis *r,
                 struct lp_drain_result *res);

/* Counts n failed Redis commands or connections of the tool's own before
 * the run (a sharded stream's count, asked first) in d's metrics, for a
 * run that ends there: lp_drain_free writes them. */
void lp_drain_redis_errors(struct lp_drain *d, uint64_t n);

/* Writes the metrics a last time (every end writes them, 69, 74 and 78
 * among them) and frees d, with the connection lp_drain_run took. No
 * Redis command: the run gave up its name's heartbeat already, when its
 * end called for it (not a twin's). Accepts NULL. */
void lp_drain_free(struct lp_drain *d);

#endif
