/* lp_replay.h -- the replay engine: archives and the stream back to NDJSON */
#ifndef LP_REPLAY_H
#define LP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "lp_notice.h"
#include "lp_parse.h"           /* LP_ERRLEN */
#include "lp_redis.h"

/*
 * What logpipe-replay does, as an object (struct lp_replay) the tool
 * configures and runs. It owns:
 *  - the inputs and their order: plain NDJSON files (.jsonl, or '-' for
 *    stdin), gzip files (every member, past damage), WAL segments, or the
 *    stream itself (XRANGE pages through lp_stream); directories walked in
 *    day order (the day read from file names by the layout), archives
 *    first, then WAL segments; whole files passed over when their day is
 *    outside the time window;
 *  - each line's fate: checked (strict JSON, one pass), its time taken
 *    from the time member (lp_event_time) or else its _id, kept inside
 *    --since/--until, --where (jq), --dedup (the last half a million to a
 *    million IDs), printed as it is or without its _id (--strip-id);
 *  - the output order: inputs one after the other, or with sort the files
 *    of each day merged by event time (each file's own order kept);
 *  - the output: a buffer of 256 KiB written to out_fd, long runs of
 *    lines that pass whole written from where they were read;
 *  - its threads: without --where, --dedup, --strip-id and --sort a
 *    second thread judges lines of plain files with the first (JSON
 *    validation is two thirds of a replay's time), and a read-ahead
 *    thread (lp_readahead) asks the disk for the plain files ahead of the
 *    reading. Both end in lp_replay_free. Output and messages keep the
 *    input's order whatever thread judged a line.
 *
 * It never prints and never exits. What the user must read comes back
 * three ways: per-line messages and other notices through notify, as they
 * happen and in order (level: one of LP_REPLAY_SAY_*, which tells the tool
 * how to ration it); a failure that ends the run in the caller's err and
 * the result's status; and counts in struct lp_replay_result, for the
 * tool's last lines and its metrics. Statuses are the exit statuses of
 * lp_exit.h, which the tool exits with as they are. A stop signal
 * (lp_stop, lp_sig.h) ends the run cleanly between lines.
 */

struct lp_replay_conf {
    const char *layout;         /* the drains' layout, to read days from
                                 * names */
    const char *time_field;     /* the member holding the event time; "":
                                 * none (the _id's time then) */
    const char *where;          /* jq: only events for which it is true;
                                 * NULL: all */
    const char *field;          /* the stream: the entry field holding the
                                 * event; entries without it are the object
                                 * of their pairs */
    const char *dlq;            /* WAL records for this key are not events */
    int64_t since, until;       /* ms; kept when has_since, has_until */
    int has_since, has_until;
    int strip_id;               /* print events without their _id */
    int dedup;                  /* drop an _id seen before */
    int sort;                   /* merge the files of a day by event time */
    uint64_t max_line;          /* longest line read; longer is damage */
    int out_fd;                 /* where the lines go (borrowed) */
    const char *out_name;       /* its name in messages: "stdout" */
    struct lp_notify notify;    /* copied; NULL fn: silent */
    /* 1 when a message of level LP_REPLAY_SAY_DAMAGED, _GZ or _WHERE (a
     * bad input's by the million) is to be said, 0 when it is only
     * counted or not said (the caller's budgets, -q): asked with
     * notify.ctx once per such message, before it is made. NULL: all
     * are said. */
    int (*take)(void *ctx, int level);
    /* Streams in a Redis Cluster: the slot of shard i's stream (-1: the
     * stream added by lp_replay_add_stream) moved while it was read
     * (lp_stream_redirected): a connection where the slot map says now,
     * connected, borrowed, into *r; 0, or -1 with err. The page is then
     * read again from where it started, with the one backoff, for up to
     * reroute_timeout ms (LP_REPLAY_SAY_INFO says so); and a connection
     * a redirect closed is connected again before its next page. NULL:
     * such a page ends the run as a Redis failure. */
    int (*reroute)(void *ctx, int shard, struct lp_redis **r, char *err);
    void *reroute_ctx;
    int64_t reroute_timeout;
};

/*
 * The level argument of notify's fn: what a message is about, so that the
 * tool can ration the messages bad input produces by the million. msg is
 * worded like an err message and names the input (and line, record or
 * entry).
 */
enum {
    LP_REPLAY_SAY_WARN = LP_NOTICE_WARN,  /* a file of a directory walk was
                                           * rotated away before it was
                                           * read: its events may be missing */
    LP_REPLAY_SAY_ERROR = 2,    /* an input cannot be opened, walked, mapped
                                 * or read: in the status (66 or 74) */
    LP_REPLAY_SAY_DAMAGED,      /* one damaged line, WAL record or entry */
    LP_REPLAY_SAY_GZ,           /* one damaged gzip member (a budget of its
                                 * own: damaged lines cannot hide where) */
    LP_REPLAY_SAY_WHERE,        /* --where failed at run time on an event,
                                 * one of the first LP_JQ_NAMED */
    LP_REPLAY_SAY_DEBUG,        /* how it runs (no second thread) */
    LP_REPLAY_SAY_INFO          /* a shard's slot moved: read again there */
};

/* What a run did so far; the engine's, read with lp_replay_result. */
struct lp_replay_result {
    int status;                 /* LP_EX_OK; LP_EX_DATAERR (damage) unless
                                 * worse: LP_EX_NOINPUT (an input cannot be
                                 * opened), LP_EX_IOERR (read error); after
                                 * a failed call, the status it calls for */
    int epipe;                  /* lp_replay_run failed because the reader
                                 * of out_fd went away (| head): end as a
                                 * filter does, quietly */
    uint64_t lines;             /* non-blank lines, records, entries read */
    uint64_t printed;
    uint64_t damaged;           /* damaged lines, records, entries, and
                                 * gzip members */
    uint64_t damaged_files;     /* inputs with damage in them */
    uint64_t inputs;            /* inputs listed (files, or the stream) */
};

struct lp_replay;

/*
 * Makes the engine of c (copied; its strings borrowed for the engine's
 * life). Returns 0 with *rpp, or with *rpp NULL the status the failure
 * calls for and err: LP_EX_CONFIG for a bad layout ("--layout: ...") or
 * --where ("--where: ..."), LP_EX_SOFTWARE when out of memory.
 */
int lp_replay_new(const struct lp_replay_conf *c, struct lp_replay **rpp,
                  char *err);

/*
 * Adds the inputs of path: a file, "-" (stdin), or a directory's files in
 * day order (archives, then WAL segments by name), leaving out those whose
 * day is outside the time window. A path that cannot be looked at or
 * walked is said (LP_REPLAY_SAY_ERROR) and makes the status LP_EX_NOINPUT;
 * the others are read all the same. Returns 0, or -1 with err when out of
 * memory (status LP_EX_SOFTWARE).
 */
int lp_replay_add_path(struct lp_replay *rp, const char *path, char *err);

/*
 * Adds the stream key of r, read with XRANGE a page of 1000 at a time
 * from since to until (the entry IDs' times: XRANGE chooses by arrival).
 * Borrows r, connected, until lp_replay_free. Returns 0, or -1 with err
 * when out of memory.
 */
int lp_replay_add_stream(struct lp_replay *rp, struct lp_redis *r,
                         const char *key, char *err);

/*
 * The same for shard i of a sharded stream (key its stream "<S>:{T}", r
 * a connection to its node, borrowed; several shards may share one):
 * each entry's _id "<i>-<ms>-<seq>", the archive's for a shard. Added
 * one after the other they are read one after the other (shard 0's
 * entries first), or merged by event time with sort (as the files of a
 * day). i -1: lp_replay_add_stream. --dedup and the time of an event
 * without one read both forms of _id, in files too.
 */
int lp_replay_add_shard(struct lp_replay *rp, struct lp_redis *r,
                        const char *key, int i, char *err);

/*
 * Reads the inputs in order and writes what passes to out_fd. Returns 0
 * when every input was read or a stop signal came (what passed is
 * written; the result's status says whether all went well), or -1 when
 * the run had to end at once: err says why and the result's status is
 * the one to exit with (LP_EX_UNAVAILABLE: Redis stopped answering, what
 * passed before is written; LP_EX_CONFIG: Redis refused the reading, as a
 * key of another type; LP_EX_IOERR: out_fd cannot be written;
 * LP_EX_SOFTWARE: out of memory), or the result's epipe is 1 and err is
 * empty: the reader of out_fd is gone. Once only.
 */
int lp_replay_run(struct lp_replay *rp, char *err);

/*
 * After the run, when --where failed at run time on some events: msg
 * (LP_ERRLEN) says on how many ("failed at run time on N of M events
 * ..."), and the status becomes LP_EX_CONFIG when it failed on every one,
 * LP_EX_DATAERR when on some (a worse status stays). Returns that
 * lp_jq_status status, or 0 when none failed (msg untouched). verbosity:
 * the tool's (-q: -1), which says whether the first failures were said.
 */
int lp_replay_where_outcome(struct lp_replay *rp, int verbosity, char *msg);

/* The counts and status so far; borrowed from rp, which must not be
 * NULL. */
const struct lp_replay_result *lp_replay_result(const struct lp_replay *rp);

/* Ends the engine's threads, closes its inputs and frees it (not the
 * Redis connection, which is the caller's). Accepts NULL. */
void lp_replay_free(struct lp_replay *rp);

#endif
