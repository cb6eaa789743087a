/* lp_dlqtool.h -- logpipe-dlq's engine: the operator's commands over the DLQ */
#ifndef LP_DLQTOOL_H
#define LP_DLQTOOL_H

#include <stdint.h>

#include "lp_parse.h"
#include "lp_redis.h"

struct lp_cluster;

/*
 * list, show, stats, retry, purge, export over the dead letter stream
 * (the records of lp_dlq.h): all NDJSON on the caller's output, all paging
 * through XRANGE (10 to 1000 entries a page, about 64 MB at most), so a
 * DLQ of a million entries is never held at once. An entry is shown as
 * one JSON object (lp_dlq_json); --where runs on that object.
 *
 * retry and purge act on each entry atomically: retry is one script that
 * reads the entry, XADDs its data to its source stream and XDELs it, so
 * running it twice (or two operators at once) sends nothing twice; purge
 * is one XDEL per entry. They are queued per page and pipelined.
 *
 * Only the entries there when the run starts are walked: a retried entry
 * that a running drain fails again comes back with a new ID, and must not
 * be retried again by the same run (nor purged, nor listed twice).
 *
 * The engine writes data to conf.out_fd only. What it has to say about
 * single entries it hands to conf.say as it goes, each once conf.take
 * allowed it (the tool rations them);
 * what ends a run comes back from lp_dlqtool_run in err; the counts and
 * the status the entries earned are in lp_dlqtool_result.
 */

enum lp_dlqtool_cmd {
    LP_DLQTOOL_LIST,
    LP_DLQTOOL_SHOW,
    LP_DLQTOOL_STATS,
    LP_DLQTOOL_RETRY,
    LP_DLQTOOL_PURGE,
    LP_DLQTOOL_EXPORT
};

/* What conf.say is told, about one entry (msg worded as an err buffer's) */
enum lp_dlqtool_say {
    LP_DLQTOOL_SKIPPED,     /* export: not exported (a warning) */
    LP_DLQTOOL_FAILED,      /* retry, purge: Redis refused it (an error) */
    LP_DLQTOOL_UNKNOWN,     /* an ID not in the DLQ (show), or no ID at
                             * all (an error) */
    LP_DLQTOOL_GONE,        /* retry, purge: done already (an info) */
    LP_DLQTOOL_WHERE,       /* --where failed at run time on it, one of the
                             * first LP_JQ_NAMED (an error) */
    LP_DLQTOOL_MOVED        /* a DLQ's slot moved: read again there (an
                             * info) */
};

/* lp_dlqtool_run: the output's reader went away (stdout: SIGPIPE's case) */
#define LP_DLQTOOL_EPIPE (-1)

struct lp_dlqtool_conf {
    enum lp_dlqtool_cmd cmd;
    const char *dlq;            /* the DLQ key */
    const char *stream;         /* retry's target when an entry names none */
    uint64_t limit;             /* at most this many entries printed,
                                 * counted, or retried/purged; 0: all */
    const char *where;          /* a jq program, or NULL */
    int dry_run;                /* retry, purge: say, do nothing */
    int older;                  /* purge --older-than given: */
    int64_t older_than;         /* entries moved longer ago (ms) */
    char *const *ids;           /* entries by ID, in this order, instead of
                                 * the whole DLQ; borrowed */
    int nids;
    const char *shards_of;      /* a sharded stream's name (then dlq is
                                 * the base of its shards' DLQs, as stats
                                 * names it): the runs are of its shards
                                 * (lp_dlqtool_shard); NULL: unsharded */
    int out_fd;                 /* the NDJSON goes here */
    const char *out_name;       /* for messages: "stdout" */
    void (*say)(void *ctx, enum lp_dlqtool_say what, const char *msg);
    /* 1 when a message of what is to be said, 0 when it is only counted
     * or not said (the tool's budgets, -q, -v): asked once per message,
     * before it is made. NULL: all are said. */
    int (*take)(void *ctx, enum lp_dlqtool_say what);
    void *ctx;                  /* say's and take's, borrowed */
    /* A Redis Cluster: the slot of shard i's DLQ (-1: the DLQ of an
     * unsharded stream) moved while it was read (lp_stream_redirected):
     * a connection where the slot map says now, connected, borrowed,
     * into *r; 0, or -1 with err. The read (a page, the last ID, an
     * entry by its ID) is made again, with the one backoff, for up to
     * reroute_timeout ms (LP_DLQTOOL_MOVED says so); a connection a
     * redirect closed is connected again before its next read. NULL:
     * such a read stops the run as a Redis failure. With cluster set,
     * an ASK is followed instead: ASKING, then the read on the node it
     * names (a slot half moved), the map unchanged. */
    int (*reroute)(void *ctx, int shard, struct lp_redis **r, char *err);
    void *reroute_ctx;
    int64_t reroute_timeout;
    /* The Redis Cluster the DLQs are in (borrowed; NULL: not one). retry
     * and purge then send their page's commands over its connection to
     * the master of the DLQ's slot and look at each answer: one that
     * MOVED, ASK, TRYAGAIN or CLUSTERDOWN turned away did not run, and
     * those alone are sent again where lp_cluster_resend says (the map
     * read again; after ASK each after its own ASKING; a wait for the
     * others), until each ran once or the cluster's timeout is spent
     * (then 69, as a Redis failure). Each command is one script or one
     * XDEL that runs whole or not at all and finds an entry gone when it
     * ran before: an entry is moved back (purged) once, and said once. */
    struct lp_cluster *cluster;
    /* Tests only (LOGPIPE_TEST_DLQ_PAUSE): retry and purge, before the
     * commands of their first page are sent, create this file and wait
     * until it is removed (a slot moved meanwhile; up to 60 s). NULL:
     * never. */
    const char *test_pause;
};

struct lp_dlqtool_result {
    uint64_t seen;              /* entries read that were selected */
    uint64_t done;              /* printed, counted, retried, purged */
    uint64_t missing;           /* named, but gone already */
    uint64_t queued;            /* retry, purge: entries selected */
    int status;                 /* what the entries earned: LP_EX_OK, or
                                 * LP_EX_DATAERR (an unknown ID, an entry
                                 * not retried), LP_EX_CONFIG (refused) */
};

struct lp_dlqtool;

/*
 * An engine for one run of the command conf says (copied; its strings
 * borrowed for the engine's life), into *t (lp_dlqtool_free). Compiles
 * conf->where. 0, or the exit status it cannot start with and err:
 * LP_EX_CONFIG ("--where: ..."), LP_EX_SOFTWARE (out of memory).
 */
int lp_dlqtool_new(const struct lp_dlqtool_conf *conf, struct lp_dlqtool **t,
                   char *err);

/* Frees the engine. Accepts NULL. */
void lp_dlqtool_free(struct lp_dlqtool *t);

/*
 * Runs the command over r (connected; borrowed) until it is done, until
 * lp_stop is set, or until something stops it. Returns 0 when it went
 * through (lp_dlqtool_result says how); LP_DLQTOOL_EPIPE when the output's
 * reader went away (err empty); or the exit status that stops the run,
 * with err: LP_EX_UNAVAILABLE (Redis did not answer, or an error that may
 * pass), LP_EX_CONFIG (Redis refused the command or the key),
 * LP_EX_SOFTWARE (an answer of a shape Redis never gives, out of memory),
 * LP_EX_IOERR (the output failed). Everything printed before the stop is
 * written out.
 */
int lp_dlqtool_run(struct lp_dlqtool *t, struct lp_redis *r, char *err);

/*
 * A sharded stream (conf.shards_of): the next run is over shard i's DLQ
 * dlq (its DLQBASE:{T}) and stream (retry's target for an entry that
 * names none, or names the sharded stream itself). The IDs it shows,
 * and says in messages, are "<i>-<ms>-<seq>"; the IDs given to it
 * (conf.ids) are the shard's own "<ms>-<seq>". Counts, --limit and
 * stats go on from run to run; stats are printed by lp_dlqtool_stats
 * after the last (the oldest and newest entries of all by their time).
 * dlq and stream borrowed until the next call.
 */
void lp_dlqtool_shard(struct lp_dlqtool *t, unsigned i, const char *dlq,
                      const char *stream);

/* A sharded stream's shards: shard i's DLQ, stream and connection */
struct lp_dlqtool_shardv {
    size_t n;
    char *const *dlq, *const *stream;
    struct lp_redis *const *r;
};

/*
 * list and export of a sharded stream (conf.shards_of): every shard's
 * DLQ at once, merged by entry ID (the time each dead letter came in;
 * on a tie, the lower shard first), as lp_dlqtool_run walks one DLQ:
 * up to the entries there when it starts, a page of each shard in hand
 * (about 64 MB of them all at most). Returns as lp_dlqtool_run.
 */
int lp_dlqtool_run_merged(struct lp_dlqtool *t,
                          const struct lp_dlqtool_shardv *v, char *err);

/* The entries the next run acts on, instead of conf.ids (borrowed). */
void lp_dlqtool_set_ids(struct lp_dlqtool *t, char *const *ids, int nids);

/* stats of a sharded stream, after the runs: as lp_dlqtool_run returns */
int lp_dlqtool_stats(struct lp_dlqtool *t, char *err);

/* The counts so far; the engine's. */
const struct lp_dlqtool_result *lp_dlqtool_result(const struct lp_dlqtool *t);

/*
 * After the run: 0 when --where never failed at run time, else the
 * status it earned (LP_EX_DATAERR, or LP_EX_CONFIG when it failed on every
 * entry) with msg as lp_jq_status says it at the tool's verbosity (-q:
 * -1; whether the first failures were said).
 */
int lp_dlqtool_where_outcome(const struct lp_dlqtool *t, int verbosity,
                             char *msg);

#endif
