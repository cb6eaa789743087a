/* lp_stat.h -- the stat engine: the figures of a pipeline in one look */
#ifndef LP_STAT_H
#define LP_STAT_H

#include <stddef.h>
#include <stdint.h>

#include "lp_metrics.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_stream.h"

/*
 * Read-only: XLEN, XINFO GROUPS, XPENDING (summary) per group, XLEN of the
 * DLQ (all through lp_stream.h), HLEN (and HSCAN, for each producer) of
 * logpipe-send's <stream>:producers; the sizes of the WAL directory and of
 * the archive tree when named, and of the drains' journals in the tree
 * (lp_journal_usage). The engine gathers them into its figures
 * (struct lp_stat_figures) and renders them as one NDJSON object or as
 * lp_metrics (Prometheus text, for --prom, --metrics, a scrape): the
 * representations of the figures are theirs, so that any caller shows
 * the same bytes. Where they go, what is checked against them and the
 * exit status are the caller's.
 *
 * When Redis fails, the rest is still gathered, with the Redis part
 * unknown: a WAL that grows while Redis is away is what an operator looks
 * for then. The first failure is said through the notify, as an error,
 * when it happens, and kept (redis_failed, redis_err); later ones are not
 * said again.
 */

/* Results besides 0 */
enum {
    LP_STAT_EREDIS = -1,        /* Redis failed: said, and in the figures */
    LP_STAT_ENOMEM = -2         /* out of memory: nothing said */
};

/* How Redis failed, in lp_stat_figures.redis_failed */
enum {
    LP_STAT_REDIS_OK,
    LP_STAT_REDIS_TEMP,         /* may pass: unreachable, a timeout */
    LP_STAT_REDIS_PERM          /* no retry cures it: a refused command, a
                                   key of the wrong type, the credentials */
};

/* Beside each group: its oldest pending entry. */
struct lp_stat_oldest {
    int64_t age_ms;                         /* -1: nothing pending */
    char id[LP_STREAM_IDLEN];               /* "": nothing pending */
};

/* A producer of logpipe-send (lp_send.h), from <stream>:producers */
struct lp_stat_producer {
    char *name;
    uint64_t pos;               /* the position it last stored */
    int64_t age_ms;             /* since it stored it; -1: unknown */
    char *cursor;               /* NULL: none */
};

/* What was measured. Read-only to the caller; valid until lp_stat_free. */
struct lp_stat_figures {
    int64_t now;                /* when (Unix ms) */
    long long length;           /* of the stream */
    char first_id[LP_STREAM_IDLEN], last_id[LP_STREAM_IDLEN];   /* "": empty */
    struct lp_group_info *g;    /* the groups, ng of them */
    struct lp_stat_oldest *old; /* beside each group */
    size_t ng;
    long long dlq;              /* entries in the DLQ */
    long long producers;        /* fields of <stream>:producers */
    struct lp_stat_producer *prod;  /* with conf.producers: each of them */
    size_t nprod;
    int have_wal, have_dir;     /* measured (named and readable) */
    uint64_t wal_bytes, wal_segments;
    uint64_t dir_bytes, dir_files;
    int have_journal;           /* the drains' journals below the tree
                                   measured (have_dir, and readable) */
    unsigned journals;          /* journals holding segments */
    uint64_t journal_bytes;     /* their segments' bytes */
    int64_t journal_age_ms;     /* now less the mtime of the oldest
                                   segment; -1: no segment, or unknown */
    int redis_failed;           /* LP_STAT_REDIS_*: the Redis part is
                                   unknown unless OK */
    char redis_err[LP_ERRLEN];  /* why, when it failed */
};

/* One shard of a sharded stream (logpipe-send --shards): its stream,
 * its DLQ, its node ("host:port", "" standalone) and a connection to that
 * node, borrowed (shared by the shards on one node) */
struct lp_stat_shard {
    const char *stream, *dlq, *node;
    struct lp_redis *redis;
};

struct lp_stat_conf {
    struct lp_redis *redis;     /* taken: lp_stat_free frees it, and so
                                   does lp_stat_new when it fails; NULL
                                   with shards */
    int64_t timeout;            /* ms: give up on Redis after it */
    const char *stream, *dlq;   /* borrowed */
    int cluster;                /* on a Redis Cluster (lp_key_aux names) */
    const char *wal;            /* a logpipe-send WAL; NULL: not measured */
    const char *dir;            /* an archive tree; NULL: not measured */
    int producers;              /* read each producer, not only count */
    /* A sharded stream: stream is its name, dlq the base of its shards'
     * DLQs; each shard is measured over its connection as a stream of its
     * own (lp_stat_shard), and the figures are their totals: length, dlq
     * summed; groups by name (pending and lag summed, lag unknown when
     * unknown on a shard, consumers the most on one shard, the oldest
     * pending entry of all, its ID "<i>-<ms>-<seq>"); producers the
     * names found on any shard. No first_id, last_id. */
    const struct lp_stat_shard *shards;         /* borrowed */
    size_t nshards;             /* 0: not sharded */
    /* The shards of a node are asked in one round trip (their commands
     * in one write). A shard whose slot a Redis Cluster moved while it
     * was asked (MOVED, ASK, TRYAGAIN: lp_stream_redirected) is asked
     * again, for up to timeout, over the connection reroute gives it:
     * one routed by shard i's name, the slot map read again, connected,
     * borrowed (*r replaced), its node into node (cap bytes); 0, or -1
     * with err. NULL: such a shard fails as any Redis failure. An
     * unsharded stream's connection is connected again (its route reads
     * the map again) and asked again. */
    int (*reroute)(void *ctx, size_t i, struct lp_redis **r, char *node,
                   size_t cap, char *err);
    void *ctx;
    struct lp_notify notify;    /* copied: the Redis failure (an error),
                                   an unreadable --wal or --dir (warnings) */
};

struct lp_stat;

/* Makes the engine; nothing is asked yet. NULL when out of memory. */
struct lp_stat *lp_stat_new(const struct lp_stat_conf *c);

/* Frees s and its connection. NULL is fine. */
void lp_stat_free(struct lp_stat *s);

/*
 * Takes the time of the measure, connects and asks Redis, stopping at its
 * first failure. Returns 0, LP_STAT_EREDIS (said; the figures say how)
 * or LP_STAT_ENOMEM. An ERR, or an answer of no known shape, reads as
 * nothing there: XINFO GROUPS says ERR for a stream that does not exist.
 */
int lp_stat_redis(struct lp_stat *s);

/* Measures the WAL and the archive tree when named, and the journals in
 * the tree; one that cannot be read is warned of and left out (journals
 * that cannot be read: unknown, have_journal 0). */
void lp_stat_files(struct lp_stat *s);

/* The figures gathered so far; borrowed from s. */
const struct lp_stat_figures *lp_stat_figures(const struct lp_stat *s);

/*
 * Redis cannot always say a group's lag (XINFO GROUPS gives null after an
 * XDEL of an entry it has not read yet): counts the entries of the stream
 * after last (an ID, "" for the start), in pages, but only up to limit +
 * 1, which is all a threshold needs to know. Returns 0 with *n (at most
 * limit + 1); LP_STAT_EREDIS with *n counted so far (said when it is
 * Redis' first failure, and kept in the figures); LP_STAT_ENOMEM.
 */
int lp_stat_count_after(struct lp_stat *s, const char *last, uint64_t limit,
                        uint64_t *n);

/* A sharded stream's shard i (< conf.nshards): its figures
 * (lp_stat_figures) and lp_stat_count_after; NULL when not sharded. */
struct lp_stat *lp_stat_shard(struct lp_stat *s, size_t i);

/*
 * The lag of group g (an index of the figures' groups) up to limit + 1,
 * for --max-lag when the figures have none (x->lag -1): unsharded,
 * lp_stat_count_after from its last delivered entry; sharded, the sum
 * over the shards of their lag, or of their count when Redis gives none.
 * Returns as lp_stat_count_after.
 */
int lp_stat_lag(struct lp_stat *s, size_t g, uint64_t limit, uint64_t *n);

/*
 * The figures as one NDJSON object with its newline: a malloc'd NUL-
 * terminated string, the caller frees; NULL when out of memory. The
 * Redis part is null (and redis_error said) when Redis failed. A sharded
 * stream's has the totals, then "shards": an array of each shard's
 * object: index, stream, node (in a cluster), and the Redis part of an
 * unsharded stream's object (length, first_id, last_id, groups, dlq,
 * producers).
 */
char *lp_stat_json(const struct lp_stat *s);

/*
 * The figures as metrics (gauges: logpipe_stream_length, logpipe_group_*,
 * logpipe_dlq_length, logpipe_producers (and logpipe_producer_position
 * and _age_seconds of each with conf.producers), logpipe_wal_*, logpipe_archive_* (with its
 * journals'), logpipe_redis_up,
 * logpipe_stat_time_seconds), labels escaped as the Prometheus text
 * format asks (a sharded stream's: each shard's series, labelled
 * stream="<stream>",shard="<i>", no totals: sum() makes them); for
 * lp_metrics_render or lp_metrics_write. The caller
 * frees it; NULL when out of memory. Its notify is s's.
 */
struct lp_metrics *lp_stat_metrics(const struct lp_stat *s);

#endif
