/* lp_send.h -- the send engine: NDJSON events into a Redis stream */
#ifndef LP_SEND_H
#define LP_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "lp_notice.h"
#include "lp_opt.h"

/*
 * What logpipe-send does, as an object: read lines, check each event
 * (JSON, its time, required members, --rate), append its XADD to the
 * batch being filled, and hand full batches to Redis, several in flight,
 * one round trip a batch; with a WAL, keep what Redis cannot take and
 * send it again when Redis answers; wait while the group's backlog is too
 * long; say, when Redis stays away, how much of the input is in Redis and
 * the command that sends the rest.
 *
 * The state is all in struct lp_send: two engines in one process do not
 * meet, except in what lib/README lists as the process's (the stop flag
 * of lp_sig.h, which ends a run as a signal does). The engine never
 * prints and never exits: it talks through the struct lp_notify it is
 * made with (its own levels below beside LP_NOTICE_*, in the order
 * things happen) and returns an exit status (lp_exit.h).
 *
 * The input is files or descriptors the engine reads itself, or the
 * systemd journal (c->journal: lp_jsource, its cursor committed with the
 * events as the run's producer's), or files followed by name (c->follow:
 * lp_follow, each file a producer whose cursor is its offset)
 * (lp_send_run). A front door that is handed events instead (HTTP) runs
 * lp_send_serve and hands them over as requests (lp_send_req_*, below),
 * each stored whole in one batch, and told when it is.
 *
 * Files: lp_send.c the loop and the checks, lp_pipeline.c the batches in
 * flight and the commands they carry, lp_spool.c the WAL failover and the
 * resume hint (lp_send_int.h: how they share the struct); lp_rate.c the
 * limits.
 */

/* Levels of the engine's notices besides LP_NOTICE_WARN, _INFO and
 * _ERROR (an error: always said) */
enum {
    LP_SEND_BAD = 16,           /* a rejected line or event ("FILE: line
                                 * N: what"): one of many, for a budget */
    LP_SEND_LIMITED,            /* an event over --rate: likewise */
    LP_SEND_DEBUG,              /* with -vv */
    LP_SEND_TRACE               /* a batch acknowledged (-v): msg is the
                                 * fields "first=ID last=ID count=N ..." of
                                 * a trace line "batch" */
};

enum { LP_SEND_ON_BLOCK, LP_SEND_ON_REJECT, LP_SEND_ON_DLQ };  /* on_limit */

#define LP_SEND_MAXREQ 32       /* --require members at most */

/*
 * Producers: exactly once into the stream. Every command send adds (an
 * event's XADD, a dead letter's) belongs to a producer, a name, and has
 * a position in it, a u64 that only grows, one a command, without gaps.
 * A batch is sent as MULTI, a gate, its XADDs, the gate's undoing, EXEC
 * (lp_pipeline.c): the gate sets one field of <stream>:producers per
 * producer of the batch, and only when each holds the position just
 * before the batch's; else the XADDs store nothing. Its events and the
 * positions they reach are stored together or not at all, and a field
 * moves only over stored positions. The value of a field is
 * "<pos> <unix-ms>[ <cursor>]": the last position stored, when, and the
 * cursor an input gives with it (the journal's: what to read next).
 *
 * After a lost reply (a reconnect, a Redis restart, a send killed) send
 * reads the field first: a batch whose positions are all at or below it
 * is stored already, and is counted as sent rather than sent again. A
 * batch that failed goes again with its positions, in order.
 *
 * stdin is one producer (its name unique per run unless --producer
 * names it). An input of several producers (--follow: one per file;
 * --journal: one with a cursor) gives each command its producer; a batch
 * may carry commands of up to LP_BATCH_PRODS producers, each range its
 * own, and its gate then sets one field for each.
 */
#define LP_PRODUCER_MAX 200     /* bytes of a producer name */
#define LP_PRODUCERS_SUFFIX ":producers"

/* What an input hands the engine with each of its events (stdin's is the
 * run's own; --journal's too, with the journal's cursor; --follow gives
 * one per file, "<producer>:<identity>", its cursor the offset after the
 * line); lp_send_int.h: lp_batch_prod. */
struct lp_producer {
    const char *name;           /* [A-Za-z0-9._:@/+-], at most
                                   LP_PRODUCER_MAX bytes */
    uint64_t pos;               /* the position of its last command */
    const char *cursor;         /* NULL, or no spaces nor newlines */
};

/* What the engine is to do: logpipe-send's options. Strings and arrays
 * are borrowed for the life of the engine. */
struct lp_send_conf {
    const char *stream, *dlq, *group;
    int cluster;                /* on a Redis Cluster: the stream's keys
                                 * named to share its slot (lp_key_aux) */
    uint64_t shards;            /* --shards: the events spread over this
                                 * many stream keys (0, 1: the stream's
                                 * own key, as always); lp_send.c,
                                 * "Sharded streams" */
    const char *shard_key;      /* --shard-key: jq, or NULL: positions
                                 * round-robin, one by one */
    uint64_t batch;             /* events a batch */
    uint64_t batch_bytes;       /* bytes a batch */
    int64_t linger;             /* ms: a partial batch goes after this */
    int64_t timeout;            /* ms: retry a failing Redis this long */
    int64_t max_age, max_skew;  /* ms; 0: off */
    uint64_t max_line, max_depth, max_members;
    const char *time_field;     /* "": none */
    struct lp_list require;     /* at most LP_SEND_MAXREQ */
    const char *rejects;        /* append rejected lines to this file */
    int rejects_to_dlq;
    int ids;                    /* write each stream ID to ids_fd */
    int ids_fd;
    const char *wal;            /* the WAL's directory, or NULL */
    uint64_t wal_max;
    int flush_wal;              /* send the WAL, then end */
    uint64_t max_backlog;       /* 0: off */
    uint64_t replicas;          /* --replicas: a batch is stored once WAIT
                                   says this many replicas have it (0:
                                   once the master has it) */
    int64_t replica_timeout;    /* ms WAIT waits for them */
    double rate;                /* tokens a ms; 0: no --rate */
    uint64_t burst;
    const char *rate_key;       /* jq, or NULL */
    int on_limit;               /* LP_SEND_ON_* */
    int shared_rate;
    uint64_t max_keys;
    char **files;               /* inputs ("-": stdin); none: stdin */
    int nfiles;
    char **args;                /* the options as given: the resume hint */
    int nargs;
    const char *metrics;        /* Prometheus file, or NULL */
    int64_t metrics_interval;
    int verbosity;              /* -1 quiet .. 2: what is worth saying */
    const char *producer;       /* --producer, or NULL: unique per run */
    int64_t producer_ttl;       /* ms: producers not heard of for this
                                   long are removed from the key */
    uint64_t test_lose_reply;   /* test-only (LOGPIPE_TEST_LOSE_REPLY):
                                   the connection is dropped once batch N
                                   is written and Redis ran it: its reply
                                   is lost */
    uint64_t test_refuse;       /* test-only (LOGPIPE_TEST_REFUSE_BATCH):
                                   input batch N's first write is refused
                                   by Redis while queueing (EXECABORT) */
    uint64_t position;          /* --position: the input's first command
                                   has this position (a resume); 0: go on
                                   after the committed one */
    int journal;                /* --journal: the input is the systemd
                                   journal (lp_jsource), not files */
    const char *journal_dir;    /* --journal-dir, or NULL: the system's */
    struct lp_list journal_match;  /* --journal-match FIELD=VALUE */
    int from_start;             /* --from-start: no cursor committed yet:
                                   from the oldest entry, not the end */
    struct lp_list follow;      /* --follow PATTERN: files followed by
                                   name and glob (lp_follow), each file
                                   its own producer, not FILEs */
    int from_end;               /* --from-end: a file there at the first
                                   walk with no position: from its end */
    int64_t partial_timeout;    /* ms: a line without its newline is
                                   sent after the file is still this long */
    int64_t follow_poll;        /* ms: walk the directories this often
                                   (0: 1000) */
    int follow_no_inotify;      /* test-only (LOGPIPE_TEST_NO_INOTIFY) */
    int64_t follow_forget;      /* test-only (LOGPIPE_TEST_FOLLOW_FORGET):
                                   ms a gone file's position is kept (0:
                                   a day) */
    /* a connection to Redis, not connected yet; NULL with err (the
     * engine makes two with --shared-rate) */
    struct lp_redis *(*redis_new)(void *ctx, char *err);
    /* --shards in a Redis Cluster: a connection routed to the master of
     * key's slot (key borrowed for the life of the connection) */
    struct lp_redis *(*redis_new_key)(void *ctx, const char *key,
                                      char *err);
    /* --shards in a Redis Cluster: the master of key's slot as "host:port"
     * (fresh: the slot map read again first); 0, or -1: not known (NULL:
     * a connection a shard) */
    int (*key_node)(void *ctx, const char *key, int fresh, char *out,
                    size_t cap);
    /* the caller's own periodic work, done from the engine's waits:
     * due says in how many ms it has some (-1: none), tick does it */
    int64_t (*due)(void *ctx);
    void (*tick)(void *ctx);
    void *ctx;
};

/* What a run did, for the caller's last words and its exit status. */
struct lp_send_counts {
    uint64_t lines, events, sent, rejected, dlq;
    uint64_t already;           /* found stored after a lost reply: sent,
                                   not sent again */
    uint64_t wal;               /* went through the WAL */
    uint64_t replayed;          /* sent from the WAL */
    uint64_t limited;           /* over --rate, rejected or to the DLQ */
    uint64_t past_limit;        /* let through past --rate when stopped */
    uint64_t overflow;          /* keys past --max-keys */
    uint64_t wait_ms;           /* blocked by --rate */
    uint64_t batches, errors, reconnects;
};

struct lp_send;

/*
 * Makes an engine for c (copied; what it points to is borrowed), which
 * talks through nt (copied; NULL: silent). Nothing is opened yet but the
 * metrics. NULL with err when out of memory.
 */
struct lp_send *lp_send_new(const struct lp_send_conf *c,
                            const struct lp_notify *nt, char *err);

/*
 * Prepares the run: the checks asked for, --rejects, the connections
 * (not connected yet), the WAL (and says when it holds an earlier run's
 * events), --producer's lock. Returns 0, or the exit status with err: 64
 * (--require, --rate-key), 70, 73 (--rejects, the WAL), 74, 75 (another
 * send runs as --producer), 78 (--rate-key, Redis).
 */
int lp_send_open(struct lp_send *s, char *err);

/*
 * Sends the inputs (c->files, else stdin; nothing with c->flush_wal),
 * then waits for every batch in flight and, in WAL mode, re-sends the
 * WAL. Returns 0 when the inputs were all read (lp_send_status says how
 * it went: 66, 74 for an input or --ids, 0), or -1 when the run gave up,
 * having said why (75: Redis failed for --timeout, or a WAL left behind
 * with --flush-wal; 78: Redis refuses; 74: the WAL or --rejects failed;
 * 70: out of memory): the caller then says nothing more.
 */
int lp_send_run(struct lp_send *s);

/* The exit status so far (LP_EX_*; 0: none). */
int lp_send_status(const struct lp_send *s);

/* The run's counts; borrowed from s. */
const struct lp_send_counts *lp_send_counts(const struct lp_send *s);

/* The input being read: its name (NULL: stdin) and the offset read up
 * to; --journal: the entries read; --follow: NULL and the number of files
 * followed. */
const char *lp_send_input(const struct lp_send *s, uint64_t *offset);

/* The producer the run sends as, and the position of its last command
 * (0: none yet). Borrowed from s. */
const char *lp_send_producer(const struct lp_send *s, uint64_t *pos);

/* Is name a valid producer name (LP_PRODUCER_MAX, its characters)? */
int lp_producer_valid(const char *name);

/* The run was stopped: a stop signal, or --ids could not write. */
int lp_send_stopped(const struct lp_send *s);

/* --ids stopped: the reader of stdout went away (EPIPE). */
int lp_send_stdout_gone(const struct lp_send *s);

struct lp_event_rules;

/*
 * The checks each event passes (lp_event.h), as lp_send_open compiled them
 * from --time-field, --max-age, --max-skew, --require, --max-depth and
 * --max-members (--rate-key's member, when it is one, among their keys):
 * for a front door that judges the events it is handed itself (logpipe-
 * http: lp_httpbody, lp_otlp), so that both doors judge with one object.
 * Borrowed from s; valid after lp_send_open returned 0.
 */
const struct lp_event_rules *lp_send_rules(const struct lp_send *s);

/*
 * Requests: events handed over by a front door (logpipe-http), each
 * request stored whole or not at all: its commands go into one batch
 * (a request larger than --batch is a batch of its own), and done() is
 * called once, when every command is answered by Redis (STORED), or is
 * in the WAL and synced (WAL), or when the request failed (FAILED). The
 * engine runs on one thread: done() is called from inside the engine's
 * calls (lp_send_serve's loop, a submit), and must not call the engine.
 */
enum { LP_REQ_STORED = 1, LP_REQ_WAL, LP_REQ_FAILED };

struct lp_send_req_result {
    int how;                    /* LP_REQ_* */
    uint64_t events, dlq;       /* its commands stored (or in the WAL) */
    uint64_t failed;            /* refused by Redis for good inside its
                                   batch (WRONGTYPE...): not stored */
    int maybe;                  /* FAILED after a lost reply: Redis may
                                   have stored it (a retry with the same
                                   idempotency key is exact) */
    const char *error;          /* FAILED: why */
    const char *first, *last;   /* stream IDs of its first and last event
                                   ("": none, or in the WAL) */
};

typedef void lp_send_req_fn(void *ctx, const struct lp_send_req_result *r);

struct lp_send_req;
struct lp_jevent;
struct lp_dlq_rec;

/* A request to fill; done(ctx, result) is called once it is over. NULL
 * when out of memory. */
struct lp_send_req *lp_send_req_begin(struct lp_send *s, lp_send_req_fn *done,
                                      void *ctx);

/* Adds an event: stored[0..len) the bytes to store as they are, txt[0..n)
 * the event as lp_event_check judged it, ev its scan (for --rate-key; txt
 * NULL: none). Or a dead letter. 0, or -1 out of memory. */
int lp_send_req_event(struct lp_send_req *q, const char *stored, size_t len,
                      const char *txt, size_t n, const struct lp_jevent *ev);
int lp_send_req_dlq(struct lp_send_req *q, const struct lp_dlq_rec *rec);
/* --on-limit reject or dlq: takes the token of one event (txt[0..n), ev
 * its scan) under its --rate-key key, else the request's key, before it is
 * added: 1 when taken (or no such limit), 0 over the limit with why (the
 * event is then the caller's to reject or move to the DLQ, not added).
 * With --on-limit block the request's tokens are taken whole at submit. */
int lp_send_req_admit(struct lp_send_req *q, const char *txt, size_t n,
                      const struct lp_jevent *ev, char *why, size_t cap);

/*
 * Makes q a unit of its own producer, name[0..len) (an idempotency key:
 * logpipe-http's "http:<client>:<key>"), its field's cursor cursor[0..
 * clen) (no spaces nor newlines; the first answer): q then goes in a
 * batch of its own, every command at position 1, so that its gate stores
 * it once (from 0 to 1) and says STORED to a copy that comes after it
 * (done() is then called STORED, with no stream IDs); a WAL replay passes
 * over it likewise. Copied. 0, or -1 out of memory.
 */
int lp_send_req_producer(struct lp_send_req *q, const char *name,
                         size_t len, const char *cursor, size_t clen);

/* How many events and dead letters q holds. */
uint64_t lp_send_req_count(const struct lp_send_req *q);

/* With --rate: the bucket q takes its tokens from (the client's name;
 * none: the one bucket of ""), all of them or none; with --rate-key each
 * event's key instead (a request is then taken when every one of its keys
 * has the tokens of its events). key is copied. 0, or -1 out of memory. */
int lp_send_req_key(struct lp_send_req *q, const char *key, size_t len);

/* What lp_send_req_submit did */
enum {
    LP_REQ_QUEUED = 0,          /* taken: done() comes (maybe already) */
    LP_REQ_UNAVAILABLE,         /* Redis does not answer and no WAL: not
                                   taken, *retry_after_ms the wait */
    LP_REQ_LIMITED,             /* over --rate: not taken, *retry_after_ms
                                   until its tokens are there (-1: never,
                                   more events than --burst) */
    LP_REQ_EMPTY,               /* no command: done() was called */
    LP_REQ_BACKLOG              /* the group's lag is over --max-backlog:
                                   not taken, *retry_after_ms the wait */
};

/* Hands q to the engine (q is the engine's from then on, whatever the
 * answer; not taken: freed, nothing stored, done() not called). The
 * checks, in order: --rate (LIMITED), Redis without a WAL (UNAVAILABLE),
 * --max-backlog (BACKLOG; with a WAL too: a backlog is not a failure). */
int lp_send_req_submit(struct lp_send_req *q, int64_t *retry_after_ms);

/* Drops a request not submitted: nothing of it is stored. */
void lp_send_req_abort(struct lp_send_req *q);

/*
 * The loop of a front door: polls fd (the door's, for POLLIN; -1: none)
 * beside Redis, and calls ready(ctx) when it is readable or c->due says
 * its time came (c->tick is called from the waits as for lp_send_run);
 * sends batches on --linger and --batch, takes replies, re-sends the WAL,
 * until a stop; then sends what is in hand and waits for it. It
 * connects first: a Redis that does not answer then is said (a warning)
 * and tried again as requests come; one that refuses the credentials or
 * the commands ends it (78). A Redis
 * failure without a WAL fails the requests in flight at once (FAILED,
 * maybe after a lost reply) instead of retrying them for --timeout, and
 * submits answer UNAVAILABLE until a connection is made again. Returns
 * as lp_send_run.
 *
 * The loop never waits on Redis for a request: with every batch of the
 * ring in flight, a submitted request waits whole for a slot (QUEUED),
 * and --max-backlog's lag is asked on a connection of its own
 * (lp_send_aside) and judged by its last answer.
 */
int lp_send_serve(struct lp_send *s, int fd, void (*ready)(void *ctx),
                  void *ctx);

struct lp_aside;
/* Serving: the engine's questions' connection (lp_aside.h), for the door's
 * own questions to Redis too; its fd is polled and its replies read by
 * the loop, and its callbacks may submit requests. NULL before
 * lp_send_serve. */
struct lp_aside *lp_send_aside(struct lp_send *s);

/* Ends lp_send_serve as a stop signal would, from the door's own calls
 * (ready, tick): what is in hand is sent and waited for, then it
 * returns. The door calls it once it has no request in hand (SIGTERM:
 * stop taking connections, answer those in hand, then this). */
void lp_send_stop(struct lp_send *s);

/* What a front door tells its health and metrics from. */
struct lp_send_state {
    int connected;              /* a connection to Redis is up */
    int walmode;                /* batches go to the WAL (Redis failed) */
    uint64_t wal_bytes;         /* what the WAL holds (0: no WAL) */
    int64_t down_ms;            /* no WAL, Redis failed: submits answer
                                   UNAVAILABLE for this long yet (0: not) */
    int inflight;               /* batches written, not answered */
    uint64_t waiting;           /* commands in the batch being filled */
};

void lp_send_state(const struct lp_send *s, struct lp_send_state *st);

/* --rate-key's outcome, as lp_jq_status: 0, or 65/78 with msg. */
int lp_send_rate_key_outcome(struct lp_send *s, char *msg);
/* --shard-key's, likewise. */
int lp_send_shard_key_outcome(struct lp_send *s, char *msg);

/* Writes the metrics a last time, closes everything, frees s. Accepts
 * NULL. */
void lp_send_free(struct lp_send *s);

#endif
