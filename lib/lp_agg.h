/* lp_agg.h -- the agg engine: events counted per time bucket and group */
#ifndef LP_AGG_H
#define LP_AGG_H

/*
 * struct lp_agg owns everything logpipe-agg counts: the groups (a bucket,
 * the floor of the event time by conf.bucket, UTC, and the values of the
 * conf.by members) with their counts, sums and maxima; the open buckets;
 * the watermark that closes them; the counters of what became of each
 * event. The caller reads lines and hands each to lp_agg_line; a bucket
 * is printed (lp_agg_out.h: NDJSON or SQL upserts) to conf.fd once the
 * watermark passes its end, and the rest by lp_agg_finish.
 *
 * Time is the events' own: the watermark is the newest event time seen
 * minus conf.lateness, and a bucket is emitted (sorted by key,
 * deterministic) once the watermark reaches its end. An event for an
 * emitted bucket is late: dropped and counted. With conf.at_end (a finite
 * input, in any order) buckets wait for lp_agg_finish, and only
 * conf.max_groups makes the oldest go before: an event older than the end
 * of the newest bucket emitted so is late.
 *
 * A group lives in a hash table keyed by (bucket, key bytes); the key
 * bytes are kept in an arena of the bucket's own, so closing a bucket
 * gives back its memory in one piece and a steady stream allocates nothing
 * after warm-up.
 *
 * Silent: what the user should read about one line (a bad event, a late
 * one) or once in a run (a value cut, groups folded, buckets printed
 * early) goes to the struct lp_agg_notify it was made with; the counts are
 * in lp_agg_stats; a call that fails returns an LP_AGG_* result with err.
 */

#include <stddef.h>
#include <stdint.h>

#include "lp_opt.h"             /* struct lp_list */

#define LP_AGG_MAXBY 16         /* conf.by members at most */
#define LP_AGG_MAXAGG 8         /* conf.sum and conf.max members, each */

struct lp_agg_conf {
    int64_t bucket;             /* ms, a whole number of seconds */
    int64_t lateness;           /* ms the watermark lags the newest time */
    int at_end;                 /* buckets wait for the end of input */
    const char *time_field;     /* member holding the time; "": none */
    const char *sql;            /* table name: SQL upserts; NULL: NDJSON */
    struct lp_list by;          /* group by these, at most LP_AGG_MAXBY */
    struct lp_list sum, max;    /* sum_M, max_M; at most LP_AGG_MAXAGG */
    uint64_t threshold;         /* groups counted fewer times not printed;
                                 * 0 is taken as 1 */
    uint64_t max_groups;        /* open groups before new ones fold */
    int fd;                     /* the output (borrowed) */
    const char *fd_name;        /* its name in err: "stdout" */
};

/* Results: LP_AGG_OK (0), or why a call failed (err says it). */
enum {
    LP_AGG_OK = 0,
    LP_AGG_NOMEM,               /* out of memory */
    LP_AGG_EPIPE,               /* the output's reader went away */
    LP_AGG_WRITE,               /* writing the output failed otherwise */
    LP_AGG_MEMBERS              /* more members asked for than a scan finds */
};

/* Kinds of message (lp_agg_notify): about one line (a budget's worth),
 * or said once in a run. */
enum { LP_AGG_SAY_BAD, LP_AGG_SAY_LATE, LP_AGG_SAY_ONCE };

struct lp_agg_notify {
    /* 1 when a message of kind LP_AGG_SAY_BAD or _LATE is to be said, 0
     * when it is only counted (the caller's budget); asked before the
     * message is made. NULL: all are said. */
    int (*take)(void *ctx, int kind);
    /* The message, worded like an err message ("line 3: ..."; an error
     * for LP_AGG_SAY_BAD, a warning otherwise), valid during the call
     * only. NULL: nothing is said. */
    void (*say)(void *ctx, int kind, const char *msg);
    void *ctx;                  /* the caller's, borrowed */
};

/* What became of the events so far. */
struct lp_agg_stats {
    uint64_t ok;                /* counted */
    uint64_t bad;               /* not an event (lp_agg_line, _bad_line) */
    uint64_t late;              /* for a bucket printed already: dropped */
    uint64_t folded;            /* counted as "(other)" past max_groups */
    uint64_t emitted;           /* groups printed */
    uint64_t buckets;           /* buckets printed, with a group at least */
    uint64_t open;              /* groups of buckets not yet closed */
};

/* The counts as Prometheus series (lp_metrics.h), for --metrics. */
struct lp_agg_series {
    struct lp_metric *ok, *bad, *late, *folded, *emitted, *buckets, *open;
};

struct lp_agg;
struct lp_metrics;

/*
 * 0, or -1 with err when two output columns (members) would have one
 * name: "bucket", "count", the by names, sum_M, max_M. Looks at the names
 * only, so a tool can say it before it starts anything.
 */
int lp_agg_conf_check(const struct lp_agg_conf *c, char *err);

/*
 * Makes an engine for c into *ap. c and what it points to are borrowed
 * for the engine's life; notify is copied (NULL: silent). Returns
 * LP_AGG_OK, or LP_AGG_MEMBERS or LP_AGG_NOMEM with err and *ap NULL.
 */
int lp_agg_new(struct lp_agg **ap, const struct lp_agg_conf *c,
               const struct lp_agg_notify *notify, char *err);

/* Writes what the output starts with (SQL: the CREATE TABLE). Returns
 * LP_AGG_OK, or LP_AGG_EPIPE, _WRITE or _NOMEM with err. */
int lp_agg_start(struct lp_agg *a, char *err);

/*
 * One input line s[0..n), number lineno: an event, or an array of events;
 * blank lines are nothing. A line that is not an event is counted bad and
 * said (LP_AGG_SAY_BAD), a late event counted and said (LP_AGG_SAY_LATE).
 * May print the buckets the event closes. Returns LP_AGG_OK, or LP_AGG_EPIPE,
 * _WRITE or _NOMEM with err: then only lp_agg_stats and lp_agg_free.
 */
int lp_agg_line(struct lp_agg *a, const char *s, size_t n, uint64_t lineno,
                char *err);

/* A line the caller could not hand over (too long): counted bad, and
 * "line N: why" said as a bad line's message. */
void lp_agg_bad_line(struct lp_agg *a, uint64_t lineno, const char *why);

/* End of input: prints every open bucket. Returns as lp_agg_line. */
int lp_agg_finish(struct lp_agg *a, char *err);

/* The counts so far, inside a (valid until lp_agg_free). */
const struct lp_agg_stats *lp_agg_stats(const struct lp_agg *a);

/*
 * Adds the series of the counts to m (logpipe_agg_events_total by result,
 * logpipe_agg_events_folded_total, logpipe_agg_groups_emitted_total,
 * logpipe_agg_buckets_emitted_total, logpipe_agg_groups_open) into *s,
 * which borrows them from m. lp_agg_series_set gives them the values of
 * st before m is written.
 */
void lp_agg_series_add(struct lp_agg_series *s, struct lp_metrics *m);
void lp_agg_series_set(const struct lp_agg_series *s,
                       const struct lp_agg_stats *st);

/* Frees a and all it holds; NULL is nothing. */
void lp_agg_free(struct lp_agg *a);

#endif
