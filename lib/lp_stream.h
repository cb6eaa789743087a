/* lp_stream.h -- Redis streams as logpipe asks them, one function a need */
#ifndef LP_STREAM_H
#define LP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "lp_parse.h"
#include "lp_redis.h"

/*
 * The Redis commands and scripts of the tools live here, each behind a
 * function named for what it does, over a connection of lp_redis.h (which
 * owns the socket, the pipelining and the reading of replies). Today:
 * those of logpipe-stat, logpipe-dlq and logpipe-replay --from-redis (the
 * dead letter stream's own, retry, purge and move, are in lp_dlq.h). A
 * tool never spells a command: routing a key to its cluster node, or TLS,
 * will change this file and lp_redis.c, not the tools.
 *
 * The contract, hiredis' own:
 *  - 0 (or a count) on success; -1 with the caller's struct lp_stream_err
 *    filled: which command, and either that Redis did not answer
 *    (LP_STREAM_EIO: I/O error or timeout, the connection is closed and
 *    the answers still in flight are lost) or the class of its error reply
 *    (lp_reply_error_class, the one place that tells retry from stop). The
 *    tool decides what a class means to it and words the message with
 *    e->cmd, so messages stay the tool's.
 *  - Outputs are empty (0, "", NULL) after -1.
 *  - Every call names the keys it touches: a cluster router will need
 *    them.
 *  - A reply handed out (struct lp_page) is the caller's, freed with
 *    lp_page_free; what points into it (struct lp_entry) is borrowed.
 *  - _append queues a command and sends nothing; the matching _reply
 *    flushes and reads the answer of the oldest one queued. A caller that
 *    appends n and then reads n makes one round trip: pipelining stays
 *    the caller's choice.
 *
 * How send and drain will come onto it, in later steps:
 *  - append a batch: send's pre-encoded XADDs (lp_redis_append_raw today)
 *    as lp_stream_add_append(r, batch) and lp_stream_add_reply(r, id, e),
 *    one reply per event, pipelined as now;
 *  - read for a consumer: XREADGROUP as lp_stream_read_group(r, key,
 *    group, consumer, count, block_ms, &page, e), into the same struct
 *    lp_page as lp_stream_range (lp_reply_entries with xrange = 0);
 *  - claim: XAUTOCLAIM as lp_stream_claim(r, key, group, consumer,
 *    min_idle, cursor, count, &page, next_cursor, e);
 *  - ack: XACK of many IDs as lp_stream_ack_append / _reply, queued behind
 *    the next read as drain does now;
 *  - trim: drain's trim script as lp_stream_trim(r, key, floor_id, e);
 *  - move to the DLQ: drain's script (XADD to the DLQ, XACK, at once) is
 *    lp_dlq_move_append / _reply in lp_dlq.h, beside retry and purge, with
 *    the DLQ record's struct;
 *  - ensure a group: XGROUP CREATE, BUSYGROUP taken as done; delivery
 *    counts: XPENDING's extended form.
 * Their own lists of permanent errors (send's, drain's) become
 * lp_reply_error_class's classes: LP_RERR_AUTH is there for send's.
 */

/* An entry ID as text with its NUL: "ms-seq" is at most 41 bytes. */
#define LP_STREAM_IDLEN 64

/* lp_stream_err.code besides the LP_RERR_* classes (> 0) */
enum {
    LP_STREAM_EIO = -1,     /* no answer: I/O error, timeout, not connected */
    LP_STREAM_ESHAPE = -2,  /* an answer of a shape Redis never gives */
    LP_STREAM_ENOMEM = -3   /* out of memory */
};

/* Why a call failed; the caller's. */
struct lp_stream_err {
    const char *cmd;        /* the command sent, as Redis names it ("XRANGE",
                             * "XINFO GROUPS"): set by every call, also on
                             * success, for messages about its answer */
    int code;               /* LP_STREAM_E*, or the LP_RERR_* class of
                             * Redis' error reply */
    char msg[LP_ERRLEN];    /* the I/O error, or Redis' error reply cut to
                             * 299 bytes */
};

/* ---- reading a stream --------------------------------------------------- */

/* XLEN: the entries of key (0 when there is no such key). */
int lp_stream_len(struct lp_redis *r, const char *key, long long *len,
                  struct lp_stream_err *e);

/*
 * XRANGE / XREVRANGE with COUNT 1: the ID of the first (the last) entry of
 * key into id, "" when the stream is empty or not there. LP_STREAM_ESHAPE
 * when the answer holds an entry without a readable ID.
 */
int lp_stream_first_id(struct lp_redis *r, const char *key,
                       char id[LP_STREAM_IDLEN], struct lp_stream_err *e);
int lp_stream_last_id(struct lp_redis *r, const char *key,
                      char id[LP_STREAM_IDLEN], struct lp_stream_err *e);

/* A page of entries, as Redis sent them. */
struct lp_page {
    struct lp_reply *rep;               /* owned: lp_page_free */
    const struct lp_reply *entries;     /* in rep, for lp_entry_get; NULL:
                                         * none */
    size_t n;                           /* entries in it */
};

/* Frees the reply and empties p. Accepts a page already freed. */
void lp_page_free(struct lp_page *p);

/*
 * XRANGE: the entries of key from `from` to `to`, oldest first, at most
 * count (0: all of them). from: an ID, or a time in ms standing for its
 * first entry; NULL: the first entry. after = 1: from past the entry
 * `from` instead (an exclusive start, "(ID", Redis 6.2 and later), the
 * way to the next page. to: an ID, or a time in ms standing for its last
 * entry; NULL: the last entry.
 * 0 with *p (p->n is 0 when nothing is there; an answer of another shape
 * counts as nothing), or -1 with e and *p empty. The caller frees *p.
 */
int lp_stream_range(struct lp_redis *r, const char *key, const char *from,
                    int after, const char *to, uint64_t count,
                    struct lp_page *p, struct lp_stream_err *e);

/* ---- consumer groups ---------------------------------------------------- */

/* A consumer group, as XINFO GROUPS tells it. */
struct lp_group_info {
    char *name;                 /* any bytes, NUL added; malloc'd */
    size_t namelen;
    long long consumers;
    long long pending;          /* delivered, not acknowledged */
    long long lag;              /* not yet delivered; -1: Redis does not
                                 * say (before 7.0; null after an XDEL) */
    char last_delivered[LP_STREAM_IDLEN];   /* "" when not said */
};

/*
 * XINFO GROUPS: the groups of key. On 0, *g is an array of *n groups
 * (malloc'd: lp_group_info_free; NULL when there are none). A stream that
 * does not exist is -1 with LP_RERR_REQUEST (Redis says ERR). Fields
 * Redis does not give, or gives in another shape, keep their defaults.
 */
int lp_stream_groups(struct lp_redis *r, const char *key,
                     struct lp_group_info **g, size_t *n,
                     struct lp_stream_err *e);

/* The lag of group in a reply of XINFO GROUPS read elsewhere (an error
 * reply, another shape, no such group, a lag Redis does not say: -1). */
long long lp_stream_group_lag(const struct lp_reply *rep, const char *group);

/* Frees the array and the names in it. Accepts NULL. */
void lp_group_info_free(struct lp_group_info *g, size_t n);

/*
 * XPENDING, summary form: the ID of the oldest entry delivered to group
 * (any bytes, glen of them) and not acknowledged, into id; "" when none
 * is pending.
 */
int lp_stream_pending_oldest(struct lp_redis *r, const char *key,
                             const char *group, size_t glen,
                             char id[LP_STREAM_IDLEN],
                             struct lp_stream_err *e);

/* ---- pipelined answers ------------------------------------------------ */

/*
 * The calls above as _append (queue the command, send nothing: 0, or -1
 * when out of memory) and _reply (flush, read the answer of the oldest
 * command queued on r, as the call would: 0 or -1 with e), for a caller
 * that asks many keys of one node in one round trip (logpipe-stat's
 * shards). A caller reads every answer it queued, also after a failure
 * (after an I/O error each is -1 at once).
 */
int lp_stream_len_append(struct lp_redis *r, const char *key);
int lp_stream_len_reply(struct lp_redis *r, long long *len,
                        struct lp_stream_err *e);
/* last: XREVRANGE (lp_stream_last_id), else XRANGE (lp_stream_first_id) */
int lp_stream_end_id_append(struct lp_redis *r, const char *key, int last);
int lp_stream_end_id_reply(struct lp_redis *r, int last,
                           char id[LP_STREAM_IDLEN], struct lp_stream_err *e);
int lp_stream_groups_append(struct lp_redis *r, const char *key);
int lp_stream_groups_reply(struct lp_redis *r, struct lp_group_info **g,
                           size_t *n, struct lp_stream_err *e);
int lp_stream_pending_oldest_append(struct lp_redis *r, const char *key,
                                    const char *group, size_t glen);
int lp_stream_pending_oldest_reply(struct lp_redis *r,
                                   char id[LP_STREAM_IDLEN],
                                   struct lp_stream_err *e);

/*
 * Did e fail because a Redis Cluster serves the key's slot elsewhere, or
 * is moving it: MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or the I/O error of a
 * connection lp_redis closed after a MOVED (lp_redis_set_route)? An ASK
 * is followed in place by lp_redis; a failure of the connection it opens
 * for one ("after ASK: ...") is not told apart: a plain I/O error.
 * Then the key is to be asked again over a connection routed anew (the
 * slot map read again), after a wait for the last two. 1 or 0.
 */
int lp_stream_redirected(const struct lp_stream_err *e);

/*
 * The answer to the oldest command queued on r (lp_redis_append, or an
 * _append of lib), cmd naming it for e->cmd: 0 with *rep, which is no
 * error reply (the caller frees it), or -1 with e (*rep NULL). For the
 * _reply functions here and in lp_dlq.c.
 */
int lp_stream_reply(struct lp_redis *r, const char *cmd,
                    struct lp_reply **rep, struct lp_stream_err *e);

#endif
