/* logpipe-send.c -- NDJSON on stdin (or files) into a Redis stream */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_json.h"
#include "lp_line.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_jq.h"
#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_redis.h"
#include "lp_resp.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "lp_wal.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * The loop: read lines, validate each event in one pass, append its XADD
 * (already in RESP form) to the input batch; when the batch is full, the
 * linger time has passed or input ends, hand it to hiredis in one append
 * and write it out, while up to LP_INFLIGHT earlier batches wait for their
 * replies. One round trip per batch, not per event.
 *
 * Every event keeps the input offset of its line, so that when Redis stays
 * away longer than --timeout we can say exactly how much of the input is
 * in Redis: everything before the first unacknowledged event's line.
 *
 * With --wal, a failure does not wait: every command not acknowledged
 * goes to the WAL, in order, synced, and from then on ("WAL mode") new
 * batches go there too, behind it, while the WAL's oldest segment is
 * re-sent through the same pipeline whenever Redis answers. When the WAL
 * is empty again, batches go straight to Redis.
 */

#define LP_INFLIGHT 3
#define LP_MAXREQ 32

enum { K_EVENT, K_DLQ };        /* what a command is */
enum { B_INPUT, B_REPLAY };     /* where a batch's commands come from */

struct ev {
    uint32_t cmd;               /* offset of its command in the blob */
    uint32_t cmdlen;
    uint32_t file;              /* index of the input */
    uint8_t kind;
    uint8_t done;               /* 1: acknowledged, or synced in the WAL;
                                   2: written to the WAL, not synced yet */
    uint64_t line_start;        /* input offset of its line */
    uint64_t wend;              /* B_REPLAY: segment offset after it */
};

struct batch {
    struct lp_buf blob;         /* RESP commands, back to back */
    struct ev *ev;
    size_t n;
    size_t replied;             /* replies received: ev[0..replied) */
    size_t failed;              /* error replies among them */
    int flushed;                /* written to the socket whole */
    int source;                 /* B_INPUT or B_REPLAY */
    int64_t opened_ms;          /* monotonic time of its first event */
    int64_t sent_us;            /* monotonic time it was written */
    char first[48], last[48];   /* stream IDs of its first and last event */
};

enum { ON_BLOCK, ON_REJECT, ON_DLQ };   /* --on-limit */

struct send_opt {
    struct lp_common com;
    uint64_t batch;
    uint64_t batch_bytes;
    int64_t linger, timeout, max_age, max_skew;
    uint64_t max_line;
    uint64_t max_depth;
    const char *time_field;
    struct lp_list require;     /* at most LP_MAXREQ */
    const char *rejects;
    int rejects_to_dlq;
    int ids;
    const char *wal;
    uint64_t wal_max;
    int flush_wal;
    uint64_t max_backlog;
    uint64_t max_members;
    double rate;                /* tokens a ms, 0: no --rate */
    uint64_t burst;
    const char *rate_key;
    int on_limit;
    int shared_rate;
    uint64_t max_keys;
    const struct lp_optdef *needs_rate;  /* the last option that means
                                            nothing without --rate */
    char **files;
    int nfiles;
    char **args;                /* the options as given, for the resume hint */
    int nargs;
};

static struct send_opt opt = {
    .batch = 1000,
    .batch_bytes = 8 << 20,
    .linger = 20,
    .timeout = 30000,
    .max_age = 24 * 3600 * 1000LL,
    .max_skew = 5 * 60 * 1000LL,
    .max_line = 1 << 20,
    .max_depth = LP_JSON_DEPTH,
    .max_members = 10000,
    .max_keys = 10000,
    .time_field = "timestamp",
};

static int rate_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err);

#define OPT struct send_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ,
    LP_LONG_PASSWORD_FILE,
    { "batch", 'b', LP_UINT(OPT, batch), "N", "events per batch (1000)",
      .min = 1, .max = 1000000 },
    { "linger", 'l', LP_DURATION(OPT, linger), "DUR",
      "send a partial batch after DUR (20ms; bare = ms)", .unit = "ms" },
    { "timeout", 't', LP_DURATION(OPT, timeout), "DUR",
      "retry a failing Redis this long (30s)" },
    { "wal", 0, LP_STR(OPT, wal), "DIR",
      "keep what Redis cannot take in a write-ahead log",
      .flags = LP_OF_NONEMPTY },
    { "wal-max", 0, LP_SIZE(OPT, wal_max), "SIZE",
      "exit 75 rather than let the WAL pass SIZE" },
    { "flush-wal", 0, LP_FLAG(OPT, flush_wal), NULL,
      "send what the WAL holds, then exit" },
    { "max-backlog", 0, LP_UINT(OPT, max_backlog), "N",
      "wait while the group lag exceeds N", .min = 1 },
    { "rate", 0, LP_CALL(OPT, rate, rate_opt), "N/s|N/m|N/h",
      "at most this many events (per key)" },
    { "burst", 0, LP_UINT(OPT, burst), "N",
      "events let through at once (a second's worth)", .min = 1,
      .max = 1000000000, LP_GIVEN(OPT, needs_rate) },
    { "rate-key", 0, LP_STR(OPT, rate_key), "JQ",
      "one limit per value of JQ, e.g. .app (one in all)",
      LP_GIVEN(OPT, needs_rate) },
    { "on-limit", 0, LP_ENUM(OPT, on_limit), "WHAT",
      "block (wait: the pipe pushes back), reject (65),\n"
      "or dlq (rejected into the DLQ) (block)",
      .words = "block|reject|dlq", LP_GIVEN(OPT, needs_rate) },
    { "shared-rate", 0, LP_FLAG(OPT, shared_rate), NULL,
      "keep the limit in Redis, shared by all senders",
      LP_GIVEN(OPT, needs_rate) },
    { "max-keys", 0, LP_UINT(OPT, max_keys), "N",
      "new rate keys a minute; later ones share (10000)", .min = 1,
      .max = 1000000, LP_GIVEN(OPT, needs_rate) },
    { "time-field", 0, LP_STR(OPT, time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "max-age", 0, LP_DURATION(OPT, max_age), "DUR",
      "reject events older than DUR (24h; 0 = off)" },
    { "max-skew", 0, LP_DURATION(OPT, max_skew), "DUR",
      "reject events more than DUR ahead (5m; 0 = off)" },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest line accepted (1M)", .min = 2, .max = 1 << 30 },
    { "max-depth", 0, LP_UINT(OPT, max_depth), "N",
      "deepest nesting accepted (64)", .min = 1, .max = 10000 },
    { "max-members", 0, LP_UINT(OPT, max_members), "N",
      "most members of one object or array (10000)", .min = 1,
      .max = UINT32_MAX },
    { "require", 0, LP_LIST(OPT, require), "LIST",
      "reject events missing any of these members", .max = LP_MAXREQ },
    { "rejects", 0, LP_STR(OPT, rejects), "FILE",
      "append rejected lines to FILE, verbatim" },
    { "rejects-to-dlq", 0, LP_FLAG(OPT, rejects_to_dlq), NULL,
      "also add rejected lines to the DLQ" },
    { "ids", 0, LP_FLAG(OPT, ids), NULL,
      "print the stream ID of each event sent" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "group", "group whose lag --max-backlog watches (logpipe)", 0 },
    TOOL_NOTE_METRICS_LIVE,
    { "verbose", "more messages: every bad line, a line per batch", 0 },
    { "quiet", "only errors; of bad lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-send",
    .synopsis =
"usage: logpipe-send [options] [FILE...]\n"
"Send NDJSON events from FILEs (or stdin, or '-') to a Redis stream.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 some lines rejected (or rate-limited, or\n"
"--rate-key failed on some), 66 input missing,"
" 70 internal error, 73 cannot\n"
"create --rejects, 74 I/O error, 75 Redis failed longer than --timeout,\n"
"78 bad configuration (--rate-key failing on every event too).\n"
"See logpipe-send(1).\n",
    .opts = longopts,
    .notes = notes,
    .operands = 1,
};

static struct {
    struct lp_redis *r;
    struct lp_lines lines;
    struct lp_jkeys keys;
    int time_idx;
    int req_idx[LP_MAXREQ];
    struct lp_jlimits lim;
    struct batch in;            /* the batch being filled from input */
    struct batch ring[LP_INFLIGHT];
    int head, count;            /* in flight: ring[head .. head+count) */
    int rejects_fd;
    struct lp_buf prefix;       /* RESP of XADD <stream> * data $ */
    struct lp_buf out;          /* --ids output */
    char host[256];
    int file;                   /* current input */
    const char *name;           /* its name for messages, NULL = stdin */
    int64_t now;                /* wall clock, refreshed per read */
    int64_t fail_since;         /* monotonic ms, 0 = not failing */
    int64_t backoff;
    int warned;
    int stdout_gone;            /* EPIPE: end as SIGPIPE would */
    int ids_off;                /* stdout failed: no more --ids */
    int exit_code;
    /* WAL */
    struct lp_wal *wal;
    int walmode;                /* new batches go to the WAL */
    int wal_sync_failed;        /* never to be tried again */
    struct lp_wal_seg *rseg;    /* the segment being re-sent */
    int rseg_eof;               /* all its records are in flight */
    int64_t replay_at;          /* monotonic ms: next replay attempt */
    /* --max-backlog */
    int64_t backlog_at;
    int batches_since_backlog;
    char last_error[LP_ERRLEN];
    int last_permanent;
    uint64_t n_lines, n_events, n_sent, n_rejected, n_dlq;
    uint64_t n_maybe;           /* sent again after a lost reply */
    uint64_t n_ahead;           /* acknowledged, but after an event that
                                   was not: a resume sends them twice */
    uint64_t n_wal, n_replayed;
    /* --rate */
    struct lp_rate *rate;
    int rkey_idx;               /* --rate-key .name: its member, else -1 */
    struct lp_jq *rkey_jq;      /* any other --rate-key program */
    struct lp_redis *rr;        /* --shared-rate: its own connection */
    struct lp_buf rkey_buf;     /* the Redis key of a bucket */
    int64_t rr_retry_at;        /* mono ms: try Redis again after this */
    int rr_local;               /* Redis failed: limiting here for now */
    uint64_t n_limited, n_past_limit;
    uint64_t n_overflow;        /* events whose key was over --max-keys */
    int64_t wait_ms;            /* blocked by the limit, in all */
    /* per-line messages: a few said, the rest counted (lp_log.h) */
    struct lp_budget say_bad, say_limited;
} S;

/* --metrics: counters mirror the totals in S, set before each write */
static struct {
    struct lp_metrics *m;
    struct lp_metric *lines, *sent, *rejected, *wal, *replayed, *dlq;
    struct lp_metric *maybe, *batches, *batch_s, *errors, *reconnects;
    struct lp_metric *wal_bytes, *limited, *rate_wait, *rate_keys;
    struct lp_metric *rate_overflow;
    uint64_t n_batches, n_errors, n_reconnects;
} M;

static void fatal_oom(void)
{
    lp_error("out of memory");
    exit(LP_EX_SOFTWARE);
}

static void where(char *buf, size_t cap, uint64_t lineno)
{
    if (S.name)
        snprintf(buf, cap, "%s: line %" PRIu64, S.name, lineno);
    else
        snprintf(buf, cap, "line %" PRIu64, lineno);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void reset_batch(struct batch *b)
{
    b->n = b->replied = b->failed = 0;
    b->blob.len = 0;
    b->flushed = 0;
    b->first[0] = b->last[0] = '\0';
}

static void metrics_init(void)
{
    if (opt.com.metrics == NULL)
        return;
    M.m = lp_metrics_new(&lp_log_notify);
    M.lines = lp_counter(M.m, "logpipe_send_lines_total", "",
                         "Input lines read.");
    M.sent = lp_counter(M.m, "logpipe_send_events_total", "result=\"sent\"",
                        "Events by what became of them.");
    M.rejected = lp_counter(M.m, "logpipe_send_events_total",
                            "result=\"rejected\"", "");
    M.wal = lp_counter(M.m, "logpipe_send_events_total", "result=\"wal\"",
                       "");
    M.limited = lp_counter(M.m, "logpipe_send_events_total",
                           "result=\"limited\"", "");
    M.replayed = lp_counter(M.m, "logpipe_send_wal_replayed_total", "",
                            "Events sent again from the WAL.");
    M.dlq = lp_counter(M.m, "logpipe_send_dlq_total", "",
                       "Rejected lines added to the DLQ.");
    M.maybe = lp_counter(M.m, "logpipe_send_possible_duplicates_total", "",
                         "Events sent again after a reply was lost.");
    M.batches = lp_counter(M.m, "logpipe_send_batches_total", "",
                           "Batches acknowledged.");
    M.batch_s = lp_histogram(M.m, "logpipe_send_batch_seconds", "",
                             "From writing a batch to its last reply.",
                             lp_seconds_buckets, lp_seconds_nbuckets);
    M.errors = lp_counter(M.m, "logpipe_send_redis_errors_total", "",
                          "Failures of Redis: I/O errors and error replies.");
    M.reconnects = lp_counter(M.m, "logpipe_send_reconnects_total", "",
                              "Connections made again after a failure.");
    M.wal_bytes = lp_gauge(M.m, "logpipe_send_wal_bytes", "",
                           "Bytes of records waiting in the WAL.");
    if (opt.rate > 0) {
        M.rate_wait = lp_counter(M.m, "logpipe_send_rate_wait_seconds_total",
                                 "", "Time spent waiting for --rate.");
        M.rate_keys = lp_gauge(M.m, "logpipe_send_rate_keys", "",
                               "Rate keys with a bucket of their own.");
        M.rate_overflow = lp_counter(M.m, "logpipe_send_rate_overflow_total",
                                     "", "Events whose key was new past "
                                     "--max-keys: they share one bucket.");
    }
    if (M.m == NULL)
        fatal_oom();
}

/* Writes the metrics file when due (or now, with force). */
static void metrics_tick(int force)
{
    if (M.m == NULL)
        return;
    lp_metric_set(M.lines, (double)S.n_lines);
    lp_metric_set(M.sent, (double)S.n_sent);
    lp_metric_set(M.rejected, (double)S.n_rejected);
    lp_metric_set(M.wal, (double)S.n_wal);
    lp_metric_set(M.replayed, (double)S.n_replayed);
    lp_metric_set(M.dlq, (double)S.n_dlq);
    lp_metric_set(M.maybe, (double)S.n_maybe);
    lp_metric_set(M.batches, (double)M.n_batches);
    lp_metric_set(M.errors, (double)M.n_errors);
    lp_metric_set(M.reconnects, (double)M.n_reconnects);
    lp_metric_set(M.wal_bytes, S.wal ? (double)lp_wal_bytes(S.wal) : 0);
    lp_metric_set(M.limited, (double)S.n_limited);
    if (S.rate) {
        lp_metric_set(M.rate_wait, (double)S.wait_ms / 1000.0);
        lp_metric_set(M.rate_keys, (double)lp_rate_nkeys(S.rate));
        lp_metric_set(M.rate_overflow, (double)S.n_overflow);
    }
    lp_metrics_tick(M.m, opt.com.metrics, opt.com.metrics_interval, force);
}

/* Every exit writes the metrics last (give_up's 75 among them). */
static void metrics_at_exit(void)
{
    if (M.m == NULL)
        return;
    metrics_tick(1);
    lp_metrics_free(M.m);
    M.m = NULL;
}

/* ---- replies ---------------------------------------------------------- */

static void release_head(void)
{
    reset_batch(&S.ring[S.head]);
    S.head = (S.head + 1) % LP_INFLIGHT;
    S.count--;
}

static int permanent_error(const struct lp_reply *rep)
{
    return lp_reply_is_error(rep, "WRONGTYPE") ||
           lp_reply_is_error(rep, "NOPERM") ||
           lp_reply_is_error(rep, "NOAUTH") ||
           lp_reply_is_error(rep, "WRONGPASS");
}

static void flush_ids(void)
{
    if (S.out.len == 0)
        return;
    if (!S.ids_off && lp_fs_write_all(STDOUT_FILENO, S.out.p,
                                          S.out.len) < 0) {
        /* stop reading and finish what is in flight; then a closed pipe
         * ends us as SIGPIPE would (see main), other errors with 74 */
        if (errno != EPIPE) {
            lp_error("stdout: %s", strerror(errno));
            S.exit_code = LP_EX_IOERR;
        } else {
            S.stdout_gone = 1;
        }
        S.ids_off = 1;
        lp_stop = 1;
    }
    S.out.len = 0;
}

/* The oldest batch in flight still waiting for replies, or NULL. */
static struct batch *unanswered(void)
{
    for (int i = 0; i < S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_INFLIGHT];
        if (b->replied < b->n)
            return b;
    }
    return NULL;
}

/* Takes one reply, for the oldest unanswered command (in b). */
static void take_reply(struct batch *b, struct lp_reply *rep)
{
    struct ev *e = &b->ev[b->replied++];

    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[LP_ERRLEN - 100];
        b->failed++;
        snprintf(S.last_error, sizeof S.last_error, "XADD %s: %s",
                 e->kind == K_EVENT ? opt.com.stream : opt.com.dlq,
                 lp_reply_text(rep, t, sizeof t));
        S.last_permanent |= permanent_error(rep);
    } else {
        e->done = 1;
        if (e->kind == K_EVENT) {
            size_t idn;
            const char *id = lp_reply_str(rep, &idn);
            if (id && idn < sizeof b->last) {
                memcpy(b->last, id, idn);
                b->last[idn] = '\0';
                if (b->first[0] == '\0')
                    memcpy(b->first, b->last, idn + 1);
            }
            S.n_sent++;
            if (b->source == B_REPLAY)
                S.n_replayed++;
            if (opt.ids && !S.ids_off && id) {
                lp_buf_add(&S.out, id, idn);
                lp_buf_addc(&S.out, '\n');
            }
        } else {
            S.n_dlq++;
        }
    }
    lp_reply_free(rep);
}

static void give_up(const char *why, int code);

/* The WAL was synced: what was written to it is safe (done 2 -> 1). */
static void wal_synced(void)
{
    for (int i = 0; i < S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].done == 2)
                b->ev[k].done = 1;
    }
    for (size_t k = 0; k < S.in.n; k++)
        if (S.in.ev[k].done == 2)
            S.in.ev[k].done = 1;
}

/* Syncs the WAL; a failure is remembered (a sync is never tried again:
 * its pages may be gone while a second one succeeds). 0 or -1 with err. */
static int wal_sync(char *err)
{
    if (S.wal_sync_failed || lp_wal_sync(S.wal, err) < 0) {
        if (!S.wal_sync_failed)
            S.wal_sync_failed = 1;
        else
            snprintf(err, LP_ERRLEN, "--wal %s: not synced", opt.wal);
        return -1;
    }
    wal_synced();
    return 0;
}

static void wal_error(const char *err)
{
    char e2[LP_ERRLEN];

    /* events the WAL cannot keep: stop, and say where the input is not
     * in Redis nor in the WAL; what was written before the failure is
     * in the WAL once synced */
    wal_sync(e2);
    give_up(err, LP_EX_IOERR);
}

/* Releases answered batches at the head; -1 when the head had errors. */
static int retire(void)
{
    char err[LP_ERRLEN];

    while (S.count > 0) {
        struct batch *b = &S.ring[S.head];
        if (b->replied < b->n)
            break;
        if (b->failed)
            return -1;
        if (b->source == B_REPLAY && b->n &&
            lp_wal_seg_ack(S.wal, S.rseg, b->ev[b->n - 1].wend, err) < 0)
            wal_error(err);
        {
            double ms = (double)(lp_mono_us() - b->sent_us) / 1000.0;
            M.n_batches++;
            lp_metric_observe(M.batch_s, ms / 1000.0);
            if (lp_log_verbosity() >= 1) {
                /* count: events into the stream; dlq: rejected lines
                 * into the DLQ; no first and last without events */
                char kv[200], ids[120] = "";
                size_t nd = 0;
                for (size_t i = 0; i < b->n; i++)
                    nd += b->ev[i].kind == K_DLQ;
                if (b->first[0])
                    snprintf(ids, sizeof ids, "first=%s last=%s ", b->first,
                             b->last);
                snprintf(kv, sizeof kv, "%scount=%zu dlq=%zu ms=%.1f%s", ids,
                         b->n - nd, nd, ms,
                         b->source == B_REPLAY ? " from=wal" : "");
                lp_trace("batch", kv);
            }
        }
        release_head();
        S.fail_since = 0;
        S.backoff = 0;
        if (S.count == 0)
            S.n_ahead = 0;      /* nothing unacknowledged before them */
        if (S.warned) {
            lp_warn("%s answers again", lp_redis_name(S.r));
            S.warned = 0;
        }
    }
    /* a segment all sent and all acknowledged is done */
    if (S.rseg && S.rseg_eof && S.count == 0) {
        if (lp_wal_seg_done(S.wal, S.rseg, err) < 0)
            wal_error(err);
        S.rseg = NULL;
        S.rseg_eof = 0;
    }
    flush_ids();
    return 0;
}

/* Takes the replies that have arrived; with block, waits for at least
 * one. Returns 0, or -1 with err on an I/O error or an error reply. */
static int pump(int block, char *err)
{
    struct lp_reply *rep;
    struct batch *b;
    int got = 0, rc;

    for (;;) {
        while ((rc = lp_redis_next(S.r, &rep, err)) == 1) {
            if ((b = unanswered()) == NULL) {
                lp_reply_free(rep);     /* cannot happen: no command out */
                snprintf(err, LP_ERRLEN, "reply without a command");
                lp_redis_disconnect(S.r);
                return -1;
            }
            take_reply(b, rep);
            got = 1;
        }
        if (rc < 0)
            return -1;
        if (retire() < 0) {
            snprintf(err, LP_ERRLEN, "%s", S.last_error);
            return -1;
        }
        if (got || !block || S.count == 0)
            return 0;
        if (lp_redis_read(S.r, err) < 0)
            return -1;
    }
}

/* ---- failure handling --------------------------------------------------- */

static uint64_t unsent_offset(int *file)
{
    /* the line of the oldest input event not acknowledged, else all read */
    for (int i = 0; i < S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_INFLIGHT];
        if (b->source != B_INPUT)
            continue;
        for (size_t k = 0; k < b->n; k++) {
            if (b->ev[k].done != 1) {
                *file = (int)b->ev[k].file;
                return b->ev[k].line_start;
            }
        }
    }
    for (size_t k = 0; k < S.in.n; k++) {
        if (S.in.ev[k].done != 1) {
            *file = (int)S.in.ev[k].file;
            return S.in.ev[k].line_start;
        }
    }
    *file = S.file;
    return lp_lines_offset(&S.lines);
}

/* Appends a as one word to b, quoted for a POSIX shell when needed; a
 * password in a Redis URL is masked first. */
static void add_quoted(struct lp_buf *b, const char *a)
{
    const char *at = strchr(a, '@'), *sch = strstr(a, "://");
    struct lp_buf w = { 0 };
    int plain = 1;

    for (const char *p = a; *p; p++) {
        if (sch && at && p > sch + 2 && p < at && *p == ':') {
            lp_buf_adds(&w, ":***");    /* the password stays out of logs */
            p = at - 1;
            continue;
        }
        lp_buf_addc(&w, *p);
    }
    for (size_t i = 0; i < w.len; i++) {
        char c = w.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("-_./:=,+%@", c)))
            plain = 0;
    }
    lp_buf_addc(b, ' ');
    if (w.len == 0 || !plain)
        lp_buf_addc(b, '\'');
    for (size_t i = 0; i < w.len; i++) {
        if (w.p[i] == '\'')
            lp_buf_adds(b, "'\\''");
        else
            lp_buf_addc(b, w.p[i]);
    }
    if (w.len == 0 || !plain)
        lp_buf_addc(b, '\'');
    lp_buf_free(&w);
}

/* Exits with code after saying how much of the input went to Redis, and
 * the command that sends the rest. */
static void give_up(const char *why, int code)
{
    struct lp_buf cmd = { 0 };
    int file;
    uint64_t off = unsent_offset(&file);
    const char *name = opt.nfiles ? opt.files[file] : NULL;
    char from[32];

    if (name && strcmp(name, "-") == 0)
        name = NULL;
    lp_error("%s", why);
    snprintf(from, sizeof from, "+%" PRIu64, off + 1);
    lp_buf_adds(&cmd, "tail -c");
    add_quoted(&cmd, from);
    if (name)
        add_quoted(&cmd, name);
    lp_buf_adds(&cmd, " | logpipe-send");
    for (int i = 0; i < opt.nargs; i++)
        add_quoted(&cmd, opt.args[i]);
    if (opt.nfiles && file + 1 < opt.nfiles) {
        lp_buf_adds(&cmd, " -");
        for (int i = file + 1; i < opt.nfiles; i++)
            add_quoted(&cmd, opt.files[i]);
    }
    lp_buf_addc(&cmd, '\0');
    if (opt.wal) {
        /* what is before the offset may be in the WAL rather than in
         * Redis: the resumed run sends the WAL first, as any run does */
        char in[PATH_MAX + 64];
        if (name)
            snprintf(in, sizeof in, "%s%s", name, file + 1 < opt.nfiles ?
                     " (none of the files after it)" : "");
        else
            snprintf(in, sizeof in, "the input");
        lp_error("%" PRIu64 " bytes of %s are in Redis or in the WAL %s; "
                 "resume with: %s%s", off, in, opt.wal, cmd.p,
                 name ? "" : " (fed the same input)");
    } else if (name) {
        lp_error("sent %" PRIu64 " bytes of %s%s; resume with: %s", off,
                 name, file + 1 < opt.nfiles ? ", none of the files after it"
                 : "", cmd.p);
    } else {
        lp_error("sent %" PRIu64 " bytes of the input; resume with: %s "
                 "(fed the same input)", off, cmd.p);
    }
    if (S.wal_sync_failed) {
        uint64_t n = 0;
        for (int i = 0; i < S.count; i++) {
            struct batch *b = &S.ring[(S.head + i) % LP_INFLIGHT];
            for (size_t k = 0; k < b->n; k++)
                n += b->ev[k].done == 2 && b->ev[k].kind == K_EVENT;
        }
        for (size_t k = 0; k < S.in.n; k++)
            n += S.in.ev[k].done == 2 && S.in.ev[k].kind == K_EVENT;
        if (n)
            lp_warn("%" PRIu64 " %s after the resume point may be in the "
                    "WAL %s as well, not synced (a resume may send them "
                    "twice)", n, plural(n, "event", "events"), opt.wal);
    }
    if (S.n_maybe)
        lp_warn("%" PRIu64 " %s may have reached Redis although no reply "
                "came (possible duplicates)", S.n_maybe,
                plural(S.n_maybe, "event", "events"));
    if (S.n_ahead)
        lp_warn("%" PRIu64 " %s after the resume point %s already in Redis "
                "(a resume sends them twice)", S.n_ahead,
                plural(S.n_ahead, "event", "events"),
                plural(S.n_ahead, "is", "are"));
    lp_buf_free(&cmd);
    exit(code);
}

/* Keeps only the commands of b without a success reply, in order.
 * *behind: an earlier event is not acknowledged (in ring order). */
static void compact(struct batch *b, int *behind)
{
    size_t keep = 0, pos = 0;

    for (size_t k = 0; k < b->n; k++) {
        struct ev e = b->ev[k];
        if (e.done) {
            if (*behind && e.kind == K_EVENT)
                S.n_ahead++;
            continue;
        }
        *behind = 1;
        if (k >= b->replied && b->flushed)
            S.n_maybe++;        /* written, no reply: maybe applied */
        if (e.cmd != pos)
            memmove(b->blob.p + pos, b->blob.p + e.cmd, e.cmdlen);
        e.cmd = (uint32_t)pos;
        pos += e.cmdlen;
        b->ev[keep++] = e;
    }
    b->n = keep;
    b->blob.len = pos;
    b->replied = b->failed = 0;
    b->flushed = 0;
}

static int send_batch(struct batch *b, char *err)
{
    if (lp_redis_append_raw(S.r, b->blob.p, b->blob.len) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    b->sent_us = lp_mono_us();
    if (lp_redis_flush(S.r, err) < 0)
        return -1;
    b->flushed = 1;
    return 0;
}

/* Collects the replies still coming on a live connection after a failure,
 * without retiring anything. */
static void collect_replies(void)
{
    char err[LP_ERRLEN];

    while (lp_redis_connected(S.r)) {
        struct lp_reply *rep;
        struct batch *b = unanswered();
        int rc;
        if (b == NULL)
            break;
        if ((rc = lp_redis_next(S.r, &rep, err)) == 1)
            take_reply(b, rep);
        else if (rc < 0 || lp_redis_read(S.r, err) < 0)
            break;
    }
    flush_ids();
}

/* Appends the not-yet-done commands of b to the WAL and marks them done.
 * Does not sync. Exits 75 at --wal-max. */
static void batch_to_wal(struct batch *b)
{
    char err[LP_ERRLEN];

    for (size_t k = 0; k < b->n; k++) {
        struct ev *e = &b->ev[k];
        int rc;
        if (e->done)
            continue;
        rc = lp_wal_append(S.wal, b->blob.p + e->cmd, e->cmdlen, err);
        if (rc == -2) {
            char e2[LP_ERRLEN];
            if (wal_sync(e2) < 0)
                wal_error(e2);
            give_up(err, LP_EX_TEMPFAIL);
        }
        if (rc < 0)
            wal_error(err);
        e->done = 2;
        if (e->kind == K_EVENT)
            S.n_wal++;
    }
}

static void sync_wal(void)
{
    char err[LP_ERRLEN];

    if (wal_sync(err) < 0)
        wal_error(err);
}

/* Redis failed with batches of input in flight: everything not
 * acknowledged goes to the WAL, in order, and we are in WAL mode. */
static void spill(const char *why)
{
    int behind = 0;

    collect_replies();
    for (int i = 0; i < S.count; i++)
        compact(&S.ring[(S.head + i) % LP_INFLIGHT], &behind);
    for (int i = 0; i < S.count; i++)
        batch_to_wal(&S.ring[(S.head + i) % LP_INFLIGHT]);
    batch_to_wal(&S.in);
    sync_wal();
    while (S.count > 0)
        release_head();
    reset_batch(&S.in);
    S.n_ahead = 0;              /* a WAL has no resume point */
    if (!S.walmode)
        lp_warn("%s: keeping events in the WAL %s until Redis answers",
                why, opt.wal);
    S.walmode = 1;
    S.replay_at = lp_mono_ms() + 100;
}

/* Re-sending from the WAL failed: acknowledge the records that made it
 * in order, mark those that made it after one that did not (an error
 * reply in the middle: Redis goes on with the next commands), forget the
 * batches in flight, and try again later with the rest. */
static void replay_failed(const char *why)
{
    char err[LP_ERRLEN];

    M.n_errors++;
    uint64_t acked = 0;
    int broken = 0, marked = 0;

    collect_replies();
    for (int i = 0; i < S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++) {
            struct ev *e = &b->ev[k];
            if (!broken && e->done) {
                acked = e->wend;
            } else if (e->done) {
                /* it has its stream ID: never send it again */
                if (lp_wal_seg_mark(S.wal, S.rseg, e->wend, e->cmdlen,
                                    err) < 0)
                    wal_error(err);
                marked = 1;
            } else {
                broken = 1;
                if (k >= b->replied && b->flushed)
                    S.n_maybe++;    /* written, no reply: maybe applied */
            }
        }
    }
    if ((acked || marked) &&
        lp_wal_seg_ack(S.wal, S.rseg, acked, err) < 0)
        wal_error(err);
    while (S.count > 0)
        release_head();
    if (S.rseg) {
        lp_wal_seg_rewind(S.rseg);
        S.rseg_eof = 0;
    }
    if (S.last_permanent && lp_redis_connected(S.r)) {
        lp_error("%s", why);
        lp_error("the events stay in the WAL %s", opt.wal);
        exit(LP_EX_CONFIG);
    }
    S.backoff = S.backoff ? S.backoff * 2 : 100;
    if (S.backoff > 2000)
        S.backoff = 2000;
    S.replay_at = lp_mono_ms() + S.backoff;
    if (S.fail_since == 0)
        S.fail_since = lp_mono_ms();
    if (!S.warned) {
        lp_warn("%s; the WAL %s is sent again when Redis answers", why,
                opt.wal);
        S.warned = 1;
    }
    S.last_permanent = 0;
}

/*
 * Something failed: an I/O error (connection gone, replies in flight
 * lost) or an error reply (OOM, READONLY, LOADING, ...). With a WAL, what
 * is not acknowledged goes there. Without, collect the replies still
 * coming, keep what was not acknowledged, and send it again in order once
 * Redis answers, for at most --timeout.
 */
static void recover(const char *why)
{
    char err[LP_ERRLEN], msg[LP_ERRLEN + 64], d[32];
    int64_t now = lp_mono_ms();

    M.n_errors++;
    if (S.walmode) {
        replay_failed(why);
        return;
    }
    if (S.wal && !S.last_permanent) {
        spill(why);
        return;
    }
    snprintf(msg, sizeof msg, "%s", why);
    lp_format_duration(opt.timeout, d, sizeof d);
    if (S.fail_since == 0)
        S.fail_since = now;
    for (;;) {
        int behind = 0;
        collect_replies();
        if (S.last_permanent && lp_redis_connected(S.r))
            give_up(msg, LP_EX_CONFIG);
        for (int i = 0; i < S.count; i++)
            compact(&S.ring[(S.head + i) % LP_INFLIGHT], &behind);
        while (S.count > 0 && S.ring[S.head].n == 0)
            release_head();
        if (S.count == 0) {
            S.fail_since = 0;
            S.n_ahead = 0;
            return;
        }

        now = lp_mono_ms();
        if (!S.warned && opt.timeout > 0) {
            lp_warn("%s; retrying for up to %s", msg, d);
            S.warned = 1;
        }
        if (now - S.fail_since >= opt.timeout) {
            char m2[LP_ERRLEN + 128];
            snprintf(m2, sizeof m2, "giving up (--timeout %s): %s", d, msg);
            give_up(m2, LP_EX_TEMPFAIL);
        }
        if (lp_stop) {
            char m2[LP_ERRLEN + 64];
            snprintf(m2, sizeof m2, "interrupted while Redis fails: %s", msg);
            give_up(m2, LP_EX_TEMPFAIL);
        }
        S.backoff = S.backoff ? S.backoff * 2 : 100;
        if (S.backoff > 2000)
            S.backoff = 2000;
        if (S.backoff > opt.timeout - (now - S.fail_since))
            S.backoff = opt.timeout - (now - S.fail_since);
        poll(NULL, 0, (int)S.backoff);

        if (!lp_redis_connected(S.r)) {
            int rc = lp_redis_connect(S.r, err);
            if (rc == LP_REDIS_EAUTH)
                give_up(err, LP_EX_CONFIG);
            if (rc < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                continue;
            }
            M.n_reconnects++;
        }
        S.last_permanent = 0;
        int ok = 1;
        for (int i = 0; i < S.count && ok; i++)
            if (send_batch(&S.ring[(S.head + i) % LP_INFLIGHT], err) < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                ok = 0;
            }
        if (ok)
            return;             /* replies are checked by the main loop */
    }
}

/* Connects when not connected. Returns 0, or -1 with err (EAUTH exits). */
static int ensure_connected(char *err)
{
    int rc;

    if (lp_redis_connected(S.r))
        return 0;
    rc = lp_redis_connect(S.r, err);
    if (rc == LP_REDIS_EAUTH) {
        lp_error("%s", err);
        if (S.walmode)
            lp_error("the events stay in the WAL %s", opt.wal);
        exit(LP_EX_CONFIG);
    }
    if (rc == 0 && (S.fail_since || M.n_errors))
        M.n_reconnects++;
    return rc < 0 ? -1 : 0;
}

/* ---- --max-backlog ------------------------------------------------------ */

/* The lag of --group (XINFO GROUPS), or the stream length when that
 * group does not exist or Redis cannot tell its lag (after deletions).
 * -1 with err on an I/O error. */
static long long backlog(char *err)
{
    struct lp_reply *rep = lp_redis_cmd(S.r, err, "XINFO", "GROUPS",
                                        opt.com.stream, NULL);
    long long lag = -1;

    if (rep == NULL)
        return -1;
    for (size_t i = 0; i < lp_reply_len(rep); i++) {
        const struct lp_reply *g = lp_reply_at(rep, i);
        const char *name = NULL;
        long long l = -1;
        for (size_t k = 0; k + 1 < lp_reply_len(g); k += 2) {
            const char *f = lp_reply_str(lp_reply_at(g, k), NULL);
            const struct lp_reply *v = lp_reply_at(g, k + 1);
            if (f && strcmp(f, "name") == 0)
                name = lp_reply_str(v, NULL);
            else if (f && strcmp(f, "lag") == 0 &&
                     lp_reply_type(v) == LP_REPLY_INTEGER)
                l = lp_reply_int(v);
        }
        if (name && strcmp(name, opt.com.group) == 0)
            lag = l;
    }
    lp_reply_free(rep);
    if (lag < 0) {
        rep = lp_redis_cmd(S.r, err, "XLEN", opt.com.stream, NULL);
        if (rep == NULL)
            return -1;
        lag = lp_reply_int(rep);
        lp_reply_free(rep);
    }
    return lag;
}

/* Every 100ms and 4 batches at most: waits while the backlog is above
 * --max-backlog, so that the pipe pushes back on the writer. */
static void check_backlog(void)
{
    char err[LP_ERRLEN];
    int64_t wait = 100;
    int waited = 0;

    if (!opt.max_backlog || ++S.batches_since_backlog < 4 ||
        lp_mono_ms() < S.backlog_at)
        return;
    S.batches_since_backlog = 0;
    S.backlog_at = lp_mono_ms() + 100;
    /* a command with batches in flight would need its reply sorted out of
     * theirs: let them land first */
    while (S.count > 0)
        if (pump(1, err) < 0) {
            recover(err);
            return;
        }
    for (;;) {
        long long n;
        if (ensure_connected(err) < 0 || (n = backlog(err)) < 0)
            return;             /* the next send notices and recovers */
        if (n <= (long long)opt.max_backlog || lp_stop)
            break;
        if (!waited)
            lp_info("backlog %lld over --max-backlog %" PRIu64 ": waiting",
                    n, opt.max_backlog);
        waited = 1;
        poll(NULL, 0, (int)wait);
        wait = wait < 1000 ? wait * 2 : 1000;
    }
    if (waited)
        lp_info("backlog under --max-backlog again");
}

/* ---- sending ------------------------------------------------------------ */

/* The oldest WAL records go into a free slot, as a batch in flight. */
static void replay_step(void)
{
    char err[LP_ERRLEN];
    struct batch *b;
    const char *rec;
    size_t len;
    uint64_t end;

    if (S.rseg && S.rseg_eof && S.count == 0)
        retire();               /* finishes the segment */
    if (!S.walmode || S.count >= LP_INFLIGHT || lp_mono_ms() < S.replay_at ||
        (S.rseg && S.rseg_eof))
        return;
    if (ensure_connected(err) < 0) {
        replay_failed(err);
        return;
    }
    if (S.rseg == NULL) {
        int rc;
        /* input waiting for the WAL goes first, behind what is there */
        if (S.in.n) {
            batch_to_wal(&S.in);
            sync_wal();
            reset_batch(&S.in);
        }
        rc = lp_wal_take(S.wal, &S.rseg, err);
        if (rc < 0)
            wal_error(err);
        if (rc == 0) {
            if (S.count == 0) {
                S.walmode = 0;  /* all sent: straight to Redis again */
                lp_info("the WAL %s is empty again", opt.wal);
            }
            return;
        }
        S.rseg_eof = 0;
    }
    b = &S.ring[(S.head + S.count) % LP_INFLIGHT];
    reset_batch(b);
    b->source = B_REPLAY;
    while (b->n < opt.batch && b->blob.len < opt.batch_bytes) {
        if (!lp_wal_seg_next(S.rseg, &rec, &len, &end)) {
            S.rseg_eof = 1;
            break;
        }
        if (lp_buf_add(&b->blob, rec, len) < 0)
            fatal_oom();
        struct ev *e = &b->ev[b->n++];
        const char *key, *data;
        size_t keylen, datalen;
        e->cmd = (uint32_t)(b->blob.len - len);
        e->cmdlen = (uint32_t)len;
        /* an event for a stream, or a dead letter (counted apart) */
        e->kind = lp_wal_event(rec, len, &key, &keylen, &data, &datalen) &&
                  keylen == strlen(opt.com.dlq) &&
                  memcmp(key, opt.com.dlq, keylen) == 0 ? K_DLQ : K_EVENT;
        e->done = 0;
        e->wend = end;
        e->file = 0;
        e->line_start = 0;
    }
    if (b->n == 0) {
        retire();               /* an empty remainder: the segment is done */
        return;
    }
    S.count++;
    if (lp_log_verbosity() >= 2)
        lp_debug("re-sending %zu commands of %s", b->n,
                 lp_wal_seg_name(S.rseg));
    if (send_batch(b, err) < 0)
        recover(err);
}

/* Hands the input batch to Redis (or to the WAL in WAL mode). */
static void dispatch(void)
{
    char err[LP_ERRLEN] = "";
    struct batch *b;

    if (S.in.n == 0)
        return;
    if (S.walmode) {
        batch_to_wal(&S.in);
        sync_wal();
        reset_batch(&S.in);
        replay_step();
        return;
    }
    check_backlog();
    if (S.walmode) {            /* the check failed over to the WAL */
        dispatch();
        return;
    }
    while (S.count >= LP_INFLIGHT) {
        if (pump(1, err) < 0) {
            recover(err);
            if (S.walmode) {
                dispatch();
                return;
            }
        }
    }
    /* the input batch becomes the free slot, the slot the input batch */
    b = &S.ring[(S.head + S.count) % LP_INFLIGHT];
    struct batch tmp = *b;
    *b = S.in;
    S.in = tmp;
    reset_batch(&S.in);
    b->source = B_INPUT;
    S.count++;
    if (ensure_connected(err) < 0 || send_batch(b, err) < 0)
        recover(err);
    metrics_tick(0);
}

/* ---- events ----------------------------------------------------------- */

static void add_command(size_t start, uint64_t line_start, int kind)
{
    struct batch *b = &S.in;

    if (b->n == 0)
        b->opened_ms = lp_mono_ms();
    b->ev[b->n].cmd = (uint32_t)start;
    b->ev[b->n].cmdlen = (uint32_t)(b->blob.len - start);
    b->ev[b->n].file = (uint32_t)S.file;
    b->ev[b->n].kind = (uint8_t)kind;
    b->ev[b->n].done = 0;
    b->ev[b->n].line_start = line_start;
    b->n++;
    if (b->n >= opt.batch || b->blob.len >= opt.batch_bytes)
        dispatch();
}

static void add_dlq(const char *line, size_t len, uint64_t line_start,
                    const char *code, const char *msg)
{
    char ms[32];
    const char *argv[19] = {
        "XADD", opt.com.dlq, "*", "data", line, "error", code,
        "detail", msg, "stage", "send", "source_stream", opt.com.stream,
        "source_id", "", "deliveries", "0", "consumer", S.host,
    };
    const char *all[21];
    size_t lens[21], start = S.in.blob.len;

    snprintf(ms, sizeof ms, "%lld", (long long)S.now);
    memcpy(all, argv, sizeof argv);
    all[19] = "failed_at";
    all[20] = ms;
    for (int i = 0; i < 21; i++)
        lens[i] = i == 4 ? len : strlen(all[i]);
    if (lp_resp_command(&S.in.blob, 21, all, lens) < 0)
        fatal_oom();
    add_command(start, line_start, K_DLQ);
}

/* Reports a rejected event; line[0..len) is what --rejects and the DLQ
 * get: the whole line as read, or the rejected element of an array. */
static void reject(const char *line, size_t len, uint64_t lineno,
                   uint64_t line_start, const char *code, const char *what)
{
    char at[PATH_MAX + 64];

    S.n_rejected++;
    if (lp_budget_take(strcmp(code, "rate-limited") == 0 ? &S.say_limited
                                                        : &S.say_bad)) {
        where(at, sizeof at, lineno);
        lp_error("%s: %s", at, what);
    }
    if (S.rejects_fd >= 0 && len > 0) {
        if (lp_fs_write_all(S.rejects_fd, line, len) < 0 ||
            lp_fs_write_all(S.rejects_fd, "\n", 1) < 0) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            exit(LP_EX_IOERR);
        }
    }
    if ((opt.rejects_to_dlq || (opt.on_limit == ON_DLQ &&
                                strcmp(code, "rate-limited") == 0)) &&
        len > 0)
        add_dlq(line, len, line_start, code, what);
}


/* ---- --rate ------------------------------------------------------------- */

/*
 * Token bucket in Redis, for --shared-rate: refills KEYS[1] (a hash of
 * t, the time in ms, and n, the tokens) by ARGV[1] tokens a ms up to
 * ARGV[2], takes up to ARGV[3], and returns {taken, ms until the next
 * token when none was}. Redis's clock, so senders on many hosts agree.
 */
static const char rate_script[] =
    "local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), "
    "tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 't', 'n')\n"
    "local at, n = tonumber(b[1]), tonumber(b[2])\n"
    "if at == nil or n == nil then at, n = now, burst end\n"
    "if now > at then n = math.min(burst, n + (now - at) * rate) end\n"
    "local got = math.min(want, math.floor(n))\n"
    "n = n - got\n"
    "redis.call('HSET', KEYS[1], 't', now, 'n', string.format('%.6f', n))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)\n"
    "local wait = 0\n"
    "if got == 0 then wait = math.ceil((1 - n) / rate) end\n"
    "return {got, wait}\n";

/* The rate key of an event into buf; its length (0: the global bucket). */
static size_t rate_key(const char *s, size_t n, const struct lp_jevent *ev,
                       char *buf, size_t cap)
{
    char err[LP_ERRLEN];
    long len;

    if (S.rkey_idx >= 0) {
        const struct lp_jval *v = &ev->val[S.rkey_idx];
        switch (v->type) {
        case LP_JNONE:
        case LP_JNULL:
            return 0;
        case LP_JSTRING:
            len = lp_json_unescape(s, v, buf, cap);
            if (len >= 0)
                return (size_t)len;
            /* longer than cap: its first bytes, as the text is */
            len = (long)(v->len - 2 < cap ? v->len - 2 : cap);
            memcpy(buf, s + v->off + 1, (size_t)len);
            return (size_t)len;
        default:
            len = (long)(v->len < cap ? v->len : cap);
            memcpy(buf, s + v->off, (size_t)len);
            return (size_t)len;
        }
    }
    if (S.rkey_jq == NULL)
        return 0;
    len = lp_jq_string(S.rkey_jq, s, n, buf, cap, err);
    if (len < 0) {
        /* the keyless bucket; the first few said, all counted: a failed
         * run (lp_jq_outcome at the end) */
        if (lp_jq_name_it(S.rkey_jq) && lp_log_verbosity() >= 0)
            lp_error("--rate-key: %s (such events share the limit of "
                     "events without a key)", err);
        return 0;
    }
    return (size_t)len;
}

/* --shared-rate: asks Redis for up to want tokens of bucket b. Returns
 * 0 with the lease set, or -1 when Redis failed (b untouched). */
static int rate_ask(struct lp_bucket *b, int64_t now)
{
    char err[LP_ERRLEN], a1[40], a2[32], a3[32];
    struct lp_reply *rep;
    uint64_t want;
    int rc;

    if (S.rr_local && lp_mono_ms() < S.rr_retry_at)
        return -1;
    if (!lp_redis_connected(S.rr) &&
        (rc = lp_redis_connect(S.rr, err)) < 0)
        goto failed;
    /* a twentieth of a second's worth, so that every sender gets its
     * share and little is left unused when one stops */
    want = (uint64_t)(opt.rate * 50.0);
    if (want < 1)
        want = 1;
    if (want > opt.burst)
        want = opt.burst;
    /* <stream>:rate:<key>, the key's bytes as they are */
    S.rkey_buf.len = 0;
    if (lp_buf_adds(&S.rkey_buf, opt.com.stream) < 0 ||
        lp_buf_adds(&S.rkey_buf, ":rate:") < 0 ||
        lp_buf_add(&S.rkey_buf, b->key, b->klen) < 0)
        fatal_oom();
    snprintf(a1, sizeof a1, "%.12g", opt.rate);
    snprintf(a2, sizeof a2, "%" PRIu64, opt.burst);
    snprintf(a3, sizeof a3, "%" PRIu64, want);
    {
        const char *argv[7] = { "EVAL", rate_script, "1", S.rkey_buf.p, a1,
                                a2, a3 };
        size_t lens[7];
        for (int i = 0; i < 7; i++)
            lens[i] = i == 3 ? S.rkey_buf.len : strlen(argv[i]);
        rep = lp_redis_cmdv(S.rr, err, 7, argv, lens);
    }
    if (rep == NULL)
        goto failed;
    if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2) {
        lp_reply_text(rep, err, LP_ERRLEN);
        lp_reply_free(rep);
        goto failed;
    }
    lp_bucket_lease_set(b, (uint64_t)lp_reply_int(lp_reply_at(rep, 0)),
                        lp_reply_int(lp_reply_at(rep, 1)), now);
    lp_reply_free(rep);
    if (S.rr_local) {
        S.rr_local = 0;
        lp_info("--shared-rate: Redis answers again: the limit is shared "
                "again");
    }
    return 0;
failed:
    if (!S.rr_local)
        lp_warn("--shared-rate: %s: limiting in this sender alone until "
                "Redis answers", err);
    S.rr_local = 1;
    S.rr_retry_at = lp_mono_ms() + 5000;
    lp_redis_disconnect(S.rr);
    return -1;
}

/* Takes a token of bucket b: 0, or the ms until one is there. */
static int64_t rate_take(struct lp_bucket *b)
{
    int64_t now = lp_mono_ms();

    if (opt.shared_rate) {
        for (int tries = 0; tries < 2; tries++) {
            int64_t rc = lp_bucket_lease_take(b, now);
            if (rc > 0)
                return 0;
            if (rc < 0)
                return -rc;
            if (rate_ask(b, now) < 0)
                break;          /* Redis away: the local bucket */
        }
        if (!S.rr_local)
            return 1;
    }
    return lp_bucket_take(S.rate, b, now);
}

/*
 * Waits ms for the limit, sending the events admitted so far once their
 * linger time is over, and taking replies and WAL re-sends meanwhile.
 */
static void rate_pause(int64_t ms)
{
    char err[LP_ERRLEN];
    int64_t start = lp_mono_ms(), until = start + ms;

    for (;;) {
        int64_t now = lp_mono_ms(), left = until - now;
        struct pollfd p = { -1, POLLIN, 0 };
        if (left <= 0 || lp_stop)
            break;
        if (S.in.n > 0) {
            int64_t linger = S.in.opened_ms + opt.linger - now;
            if (linger <= 0) {
                dispatch();
                continue;
            }
            if (linger < left)
                left = linger;
        }
        if (S.count > 0 && lp_redis_connected(S.r))
            p.fd = lp_redis_fd(S.r);
        if (M.m && left > opt.com.metrics_interval)
            left = opt.com.metrics_interval;
        int64_t due = lp_log_due();
        if (due >= 0 && due < left)
            left = due;
        if (poll(&p, 1, (int)left) > 0 && p.revents) {
            if (lp_redis_read(S.r, err) < 0 || pump(0, err) < 0)
                recover(err);
        }
        replay_step();
        metrics_tick(0);
        lp_log_tick();
    }
    S.wait_ms += lp_mono_ms() - start;
}

/*
 * Applies --rate to one valid event: 1 when it may go, 0 when it is over
 * the limit (--on-limit reject or dlq; what says why). With block, waits
 * for its token; a stop signal ends the wait and lets it go: it was read
 * from the input already, and losing it would be worse than passing the
 * limit by what the read buffer holds.
 */
static int rate_admit(const char *s, size_t n, const struct lp_jevent *ev,
                      char *what, size_t cap)
{
    char key[1024];             /* longer keys: cut (then hashed) */
    size_t klen = rate_key(s, n, ev, key, sizeof key);
    int over;
    struct lp_bucket *b = lp_rate_bucket(S.rate, key, klen, lp_mono_ms(),
                                         &over);
    int64_t wait;

    if (b == NULL)
        fatal_oom();
    if (over && S.n_overflow++ == 0)
        lp_warn("--max-keys %" PRIu64 ": more new rate keys this minute "
                "share the limit of \"%s\"", opt.max_keys,
                LP_RATE_OVERFLOW);
    while ((wait = rate_take(b)) > 0) {
        if (opt.on_limit != ON_BLOCK) {
            if (klen)
                snprintf(what, cap, "over --rate for key \"%.*s\"",
                         (int)(b->klen < 64 ? b->klen : 64), b->key);
            else
                snprintf(what, cap, "over --rate");
            return 0;
        }
        if (lp_stop) {
            S.n_past_limit++;
            return 1;
        }
        rate_pause(wait);
        /* the pause may have moved the table: look the key up again */
        b = lp_rate_bucket(S.rate, key, klen, lp_mono_ms(), &over);
        if (b == NULL)
            fatal_oom();
    }
    return 1;
}

static void add_event(const char *s, size_t n, const struct lp_jevent *ev,
                      uint64_t line_start)
{
    struct lp_buf *blob = &S.in.blob;
    size_t len = ev->ncuts ? lp_json_cut_len(ev, n) : n;
    size_t start = blob->len;
    char *o;

    if (lp_buf_reserve(blob, S.prefix.len + 24 + len + 2) < 0)
        fatal_oom();
    memcpy(blob->p + blob->len, S.prefix.p, S.prefix.len);
    blob->len += S.prefix.len;
    lp_buf_addu(blob, len);
    o = blob->p + blob->len;
    *o++ = '\r';
    *o++ = '\n';
    if (ev->ncuts)
        lp_json_cut_copy(ev, s, n, o);
    else
        memcpy(o, s, n);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    blob->len = (size_t)(o - blob->p);
    S.n_events++;
    add_command(start, line_start, K_EVENT);
}

/* One event (a line, or an element of an array line). label is NULL for
 * a whole line, else "element N". */
static void one_event(const char *s, size_t n, const struct lp_line *ln,
                      const char *label)
{
    uint64_t lineno = ln->lineno, line_start = ln->start;
    struct lp_jevent ev;
    struct lp_jerr je;
    char what[LP_ERRLEN + 64], err[LP_ERRLEN];
    const char *code = NULL;
    int64_t t;

#define REJECT(c, ...) do { \
        char m_[LP_ERRLEN + 64]; \
        snprintf(m_, sizeof m_, __VA_ARGS__); \
        if (label) snprintf(what, sizeof what, "%s: %s", label, m_); \
        else snprintf(what, sizeof what, "%s", m_); \
        code = (c); goto rejected; \
    } while (0)

    if (lp_json_event(s, n, &S.keys, &S.lim, &ev, &je) < 0) {
        if (je.not_object)
            REJECT("not-object", "not a JSON object");
        REJECT("invalid-json", "invalid JSON: %s", je.msg);
    }
    if (S.time_idx >= 0) {
        int rc = lp_event_time(s, &ev.val[S.time_idx], &t, err);
        if (rc < 0)
            REJECT("bad-time", "%s", err);
        if (rc > 0) {
            char ts[40], d[32];
            if (opt.max_age && t < S.now - opt.max_age) {
                lp_time_format(t, ts);
                lp_format_duration(opt.max_age, d, sizeof d);
                REJECT("too-old", "event time %s is older than --max-age %s",
                       ts, d);
            }
            if (opt.max_skew && t > S.now + opt.max_skew) {
                lp_time_format(t, ts);
                lp_format_duration(opt.max_skew, d, sizeof d);
                REJECT("too-new", "event time %s is more than --max-skew %s "
                       "ahead", ts, d);
            }
        }
    }
    for (int i = 0; i < opt.require.n; i++)
        if (ev.val[S.req_idx[i]].type == LP_JNONE)
            REJECT("missing-member", "required member \"%s\" is missing",
                   opt.require.item[i]);
    if (S.rate && !rate_admit(s, n, &ev, err, sizeof err)) {
        S.n_limited++;
        S.n_rejected--;         /* counted apart, reported the same way */
        REJECT("rate-limited", "%s", err);
    }
    add_event(s, n, &ev, line_start);
    return;
rejected:
    if (label == NULL)
        reject(ln->p, ln->len, lineno, line_start, code, what);
    else
        reject(s, n, lineno, line_start, code, what);
#undef REJECT
}

static void one_line(const struct lp_line *ln)
{
    const char *s = ln->p;
    size_t n = ln->len;
    struct lp_jerr je;

    S.n_lines++;
    lp_json_trim(&s, &n);
    if (n == 0)
        return;
    if (*s != '[') {
        one_event(s, n, ln, NULL);
        return;
    }
    /* an array of events: valid as a whole, then element by element */
    if (lp_json_valid(s, n, &S.lim, &je) < 0) {
        char what[LP_ERRLEN];
        snprintf(what, sizeof what, "invalid JSON: %s", je.msg);
        reject(ln->p, ln->len, ln->lineno, ln->start, "invalid-json", what);
        return;
    }
    size_t pos = 0, off, len;
    int type, k = 0;
    while (lp_json_array_next(s, n, &pos, &off, &len, &type)) {
        char label[48];
        snprintf(label, sizeof label, "element %d", ++k);
        if (type != LP_JOBJECT) {
            char what[96];
            snprintf(what, sizeof what, "%s: not a JSON object", label);
            reject(s + off, len, ln->lineno, ln->start, "not-object", what);
            continue;
        }
        one_event(s + off, len, ln, label);
    }
}

static void long_line(const struct lp_line *ln)
{
    if (ln->first) {
        char at[PATH_MAX + 64];
        S.n_lines++;
        S.n_rejected++;
        if (lp_budget_take(&S.say_bad)) {
            where(at, sizeof at, ln->lineno);
            lp_error("%s: longer than --max-line (%" PRIu64 " bytes)", at,
                     opt.max_line);
        }
    }
    if (S.rejects_fd >= 0) {
        if (lp_fs_write_all(S.rejects_fd, ln->p, ln->len) < 0 ||
            (ln->last && lp_fs_write_all(S.rejects_fd, "\n", 1) < 0)) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            exit(LP_EX_IOERR);
        }
    }
}

/* ---- the loop ----------------------------------------------------------- */

/*
 * Waits for input (fd >= 0) or replies, at most until the input batch's
 * linger time is over or the next WAL attempt is due. Returns 1 when input
 * is readable.
 */
static int wait_input(int fd)
{
    struct pollfd p[2];
    int np = 0, timeout = -1, rc, rfd = -1;
    char err[LP_ERRLEN];
    int64_t now = lp_mono_ms(), left;

    if (fd >= 0) {
        p[np].fd = fd;
        p[np].events = POLLIN;
        p[np].revents = 0;
        np++;
    }
    if (S.count > 0 && lp_redis_connected(S.r)) {
        rfd = np;
        p[np].fd = lp_redis_fd(S.r);
        p[np].events = POLLIN;
        p[np].revents = 0;
        np++;
    }
    if (S.in.n > 0) {
        left = S.in.opened_ms + opt.linger - now;
        if (left <= 0) {
            dispatch();
            return 0;
        }
        timeout = (int)left;
    }
    if (S.walmode && S.count < LP_INFLIGHT && !(S.rseg && S.rseg_eof)) {
        left = S.replay_at - now;
        if (left <= 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (M.m && (timeout < 0 || timeout > opt.com.metrics_interval))
        timeout = (int)opt.com.metrics_interval;
    if ((left = lp_log_due()) >= 0 && (timeout < 0 || left < timeout))
        timeout = (int)left;
    rc = poll(p, (nfds_t)np, timeout);
    metrics_tick(0);
    lp_log_tick();
    if (rc < 0)
        return 0;               /* EINTR: the caller checks lp_stop */
    if (rfd >= 0 && p[rfd].revents) {
        if (lp_redis_read(S.r, err) < 0 || pump(0, err) < 0)
            recover(err);
    }
    if (S.in.n > 0 && lp_mono_ms() >= S.in.opened_ms + opt.linger)
        dispatch();
    replay_step();
    return fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static void drain_input(int fd)
{
    struct lp_line ln;
    int rc;

    for (;;) {
        if (lp_stop) {
            /* finish the complete lines already read: they left the pipe */
            while ((rc = lp_lines_next(&S.lines, &ln)) == LP_LINE_OK ||
                   rc == LP_LINE_LONG) {
                if (rc == LP_LINE_OK)
                    one_line(&ln);
                else
                    long_line(&ln);
            }
            return;
        }
        rc = lp_lines_next(&S.lines, &ln);
        if (rc == LP_LINE_OK) {
            one_line(&ln);
            continue;
        }
        if (rc == LP_LINE_LONG) {
            long_line(&ln);
            continue;
        }
        if (rc == LP_LINE_EOF)
            return;
        /* need more input */
        if (!wait_input(fd))
            continue;
        long got = lp_lines_fill(&S.lines);
        S.now = lp_now_ms();
        if (got < 0 && errno != EAGAIN && errno != EINTR) {
            lp_error("%s: %s", S.name ? S.name : "stdin", strerror(errno));
            S.exit_code = errno == EISDIR ? LP_EX_NOINPUT : LP_EX_IOERR;
            return;
        }
    }
}

/* Input is over: waits for the batches in flight; in WAL mode, re-sends
 * the WAL while Redis takes it. Every event is in Redis or in the WAL by
 * then, so a failure ends the run (exit 0) rather than holding the
 * writer's pipe; only --flush-wal keeps trying, for --timeout. */
static void finish(void)
{
    char err[LP_ERRLEN], d[32];

    dispatch();
    while (!S.walmode && S.count > 0) {
        if (pump(1, err) < 0)
            recover(err);
    }
    lp_format_duration(opt.timeout, d, sizeof d);
    while (S.walmode) {
        /* stopping: no more re-sends, but the replies to those in flight
         * are waited for, so that what Redis stored is acknowledged in
         * the WAL and never sent again by the next run */
        int stop = lp_stop ||
                   (S.fail_since && (!opt.flush_wal ||
                                     lp_mono_ms() - S.fail_since >=
                                     opt.timeout));
        if (stop && S.count == 0)
            break;
        if (!stop)
            replay_step();
        if (S.count > 0) {
            if (pump(1, err) < 0)
                recover(err);
        } else if (S.walmode) {
            wait_input(-1);
        }
    }
    flush_ids();
    if (S.walmode) {
        uint64_t left = lp_wal_bytes(S.wal);
        if (opt.flush_wal) {
            lp_error("giving up (--timeout %s): the WAL %s still holds %"
                     PRIu64 " bytes", d, opt.wal, left);
            exit(LP_EX_TEMPFAIL);
        }
        lp_warn("the WAL %s holds %" PRIu64 " bytes of events not in Redis "
                "yet; the next logpipe-send --wal %s sends them", opt.wal,
                left, opt.wal);
    }
}

/* ---- main --------------------------------------------------------------- */

static int rate_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err)
{
    struct send_opt *so = base;

    (void)o;
    if (lp_rate_parse(arg, &so->rate, err) < 0)
        return -1;
    if (so->rate > 1e6) {
        snprintf(err, LP_ERRLEN, "'%s' is more than 1000000000/s", arg);
        return -1;
    }
    return 0;
}

static void parse_args(int argc, char **argv)
{
    int i = tool_opt_parse(&cli, argc, argv, &opt, &opt.com);

    /* getopt_long moved the options before the files */
    opt.args = argv + 1;
    opt.nargs = i - 1;
    opt.files = argv + i;
    opt.nfiles = argc - i;
    if (opt.flush_wal && (opt.wal == NULL || opt.nfiles))
        tool_opt_error(&cli, "--flush-wal needs --wal DIR and no FILE");
    if ((opt.wal_max) && opt.wal == NULL)
        tool_opt_error(&cli, "--wal-max needs --wal DIR");
    if (opt.rate == 0 && opt.needs_rate)
        tool_opt_error(&cli, "--%s needs --rate", opt.needs_rate->name);
    if (opt.rate > 0 && opt.burst == 0) {
        /* a second's worth, at least one */
        double b = ceil(opt.rate * 1000.0);
        opt.burst = b < 1 ? 1 : (uint64_t)b;
    }
}

/* Opens input i; returns the fd, or -1 after saying why (exit 66). */
static int open_input(int i)
{
    struct stat st;
    int fd;

    if (strcmp(opt.files[i], "-") == 0) {
        S.name = NULL;
        return STDIN_FILENO;
    }
    S.name = opt.files[i];
    if ((fd = open(opt.files[i], O_RDONLY | O_CLOEXEC)) < 0 ||
        fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        lp_error("%s: %s", opt.files[i],
                 fd < 0 ? strerror(errno) : "is a directory");
        if (fd >= 0)
            close(fd);
        S.exit_code = LP_EX_NOINPUT;
        return -1;
    }
    return fd;
}

static void setup(void)
{
    char err[LP_ERRLEN];

    if (gethostname(S.host, sizeof S.host - 1) < 0)
        strcpy(S.host, "unknown");
    /* what we look for in each event */
    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    for (int i = 0; i < opt.require.n; i++) {
        if ((S.req_idx[i] = lp_jkeys_add(&S.keys, opt.require.item[i])) < 0) {
            lp_error("--require: too many members (at most %d)",
                     LP_JSON_MAXKEYS - 1);
            exit(LP_EX_USAGE);
        }
    }
    S.lim.depth = (int)opt.max_depth;
    S.lim.members = (uint32_t)opt.max_members;
    S.rkey_idx = -1;
    if (opt.rate > 0) {
        if ((S.rate = lp_rate_new(opt.rate, (double)opt.burst,
                                  opt.max_keys)) == NULL)
            fatal_oom();
        /* a plain ".name" is read by the scanner; jq only for the rest */
        if (opt.rate_key && opt.rate_key[0] == '.' &&
            opt.rate_key[1] != '\0' &&
            strspn(opt.rate_key + 1, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
            strlen(opt.rate_key + 1) &&
            !(opt.rate_key[1] >= '0' && opt.rate_key[1] <= '9')) {
            if ((S.rkey_idx = lp_jkeys_add(&S.keys, opt.rate_key + 1)) < 0) {
                lp_error("--rate-key: too many members asked for");
                exit(LP_EX_USAGE);
            }
        } else if (opt.rate_key &&
                   lp_jq_new(opt.rate_key, &S.rkey_jq, err) < 0) {
            lp_error("--rate-key: %s", err);
            exit(LP_EX_CONFIG);
        }
    }
    {
        const char *argv2[5] = { "XADD", opt.com.stream, "*", "data", "" };
        size_t lens[5] = { 4, strlen(opt.com.stream), 1, 4, 0 };
        lp_resp_command(&S.prefix, 5, argv2, lens);
        S.prefix.len -= 5;      /* drop "0\r\n\r\n": "$" ends the prefix */
    }
    if ((S.in.ev = calloc(opt.batch, sizeof(struct ev))) == NULL)
        fatal_oom();
    for (int i = 0; i < LP_INFLIGHT; i++)
        if ((S.ring[i].ev = calloc(opt.batch, sizeof(struct ev))) == NULL)
            fatal_oom();
    if (lp_lines_init(&S.lines, STDIN_FILENO, opt.max_line) < 0)
        fatal_oom();
    S.rejects_fd = -1;
    if (opt.rejects) {
        S.rejects_fd = open(opt.rejects, O_WRONLY | O_APPEND | O_CREAT |
                            O_CLOEXEC, 0640);
        if (S.rejects_fd < 0) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            exit(LP_EX_CANTCREAT);
        }
    }
    if ((S.r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        exit(LP_EX_CONFIG);
    }
    if (opt.shared_rate) {
        if ((S.rr = tool_redis(&opt.com, err)) == NULL) {
            lp_error("%s", err);
            exit(LP_EX_CONFIG);
        }
        /* a Redis that hangs must not hold the limit up long */
        lp_redis_set_timeout(S.rr, 500);
    }
    lp_redis_set_timeout(S.r, opt.timeout < 10000 ? (opt.timeout > 1000 ?
                                                     opt.timeout : 1000)
                                                  : 10000);
    if (opt.wal) {
        if ((S.wal = lp_wal_open(opt.wal, opt.wal_max, &lp_log_notify,
                                  err)) == NULL) {
            lp_error("%s", err);
            exit(LP_EX_CANTCREAT);
        }
        int rc = lp_wal_pending(S.wal, err);
        if (rc < 0) {
            lp_error("%s", err);
            exit(LP_EX_IOERR);
        }
        if (rc > 0) {
            /* an earlier run's events: they go first */
            S.walmode = 1;
            lp_info("the WAL %s holds %" PRIu64 " bytes from an earlier "
                    "run: sending them first", opt.wal, lp_wal_bytes(S.wal));
        }
    }
}

static void teardown(void)
{
    if (S.rseg)
        lp_wal_seg_release(S.wal, S.rseg);
    lp_wal_close(S.wal);
    lp_redis_free(S.r);
    lp_redis_free(S.rr);
    lp_rate_free(S.rate);
    lp_jq_free(S.rkey_jq);
    lp_buf_free(&S.rkey_buf);
    free(S.in.ev);
    lp_buf_free(&S.in.blob);
    for (int i = 0; i < LP_INFLIGHT; i++) {
        free(S.ring[i].ev);
        lp_buf_free(&S.ring[i].blob);
    }
    lp_lines_free(&S.lines);
    lp_buf_free(&S.prefix);
    lp_buf_free(&S.out);
    if (S.rejects_fd >= 0)
        close(S.rejects_fd);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    lp_log_init("logpipe-send", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&S.say_bad, LP_LEVEL_ERROR, "invalid events");
    lp_budget_init(&S.say_limited, LP_LEVEL_ERROR, "events over --rate");
    lp_sig_init(0);
    metrics_init();
    tool_at_exit(metrics_at_exit);     /* also when setup fails */
    setup();
    S.now = lp_now_ms();

    if (!opt.flush_wal) {
        if (opt.nfiles == 0)
            drain_input(STDIN_FILENO);
        for (int i = 0; i < opt.nfiles && !lp_stop; i++) {
            int fd;
            S.file = i;
            if ((fd = open_input(i)) < 0)
                continue;
            lp_lines_reset(&S.lines, fd);
            drain_input(fd);
            /* the last events of this file must not be counted against the
             * next one's offsets: send them now */
            dispatch();
            if (fd != STDIN_FILENO)
                close(fd);
        }
    }
    finish();
    if (lp_stop && !S.stdout_gone)
        lp_warn("interrupted: %" PRIu64 " %s sent, %s read up to byte %"
                PRIu64, S.n_sent, plural(S.n_sent, "event", "events"),
                S.name ? S.name : "input", lp_lines_offset(&S.lines));
    if (S.n_maybe)
        lp_warn("%" PRIu64 " %s may have reached Redis twice (a reply was "
                "lost and they were sent again)", S.n_maybe,
                plural(S.n_maybe, "event", "events"));
    lp_info("%" PRIu64 " %s, %" PRIu64 " %s sent%s", S.n_lines,
            plural(S.n_lines, "line", "lines"), S.n_sent,
            plural(S.n_sent, "event", "events"),
            S.n_wal ? " (some through the WAL)" : "");
    if (S.n_past_limit)
        lp_warn("%" PRIu64 " %s sent past --rate when stopped: they had been "
                "read from the input", S.n_past_limit,
                plural(S.n_past_limit, "event was", "events were"));
    lp_log_end();
    if (S.n_rejected) {
        lp_error("%" PRIu64 " invalid %s in %" PRIu64 " %s", S.n_rejected,
                 plural(S.n_rejected, "event", "events"), S.n_lines,
                 plural(S.n_lines, "line", "lines"));
        if (S.exit_code == 0)
            S.exit_code = LP_EX_DATAERR;
    }
    if (S.n_limited) {
        lp_error("%" PRIu64 " %s over --rate %s", S.n_limited,
                 plural(S.n_limited, "event", "events"),
                 opt.on_limit == ON_DLQ ? "went to the DLQ" : "rejected");
        if (S.exit_code == 0)
            S.exit_code = LP_EX_DATAERR;
    }
    {
        /* --rate-key failed at run time: 65, or 78 when it failed on
         * every event it ran on; a worse status (66, 74, 75) stays */
        char msg[LP_ERRLEN];
        int st = lp_jq_outcome(S.rkey_jq, msg);
        if (st) {
            lp_error("--rate-key %s: they shared the limit of events "
                     "without a key", msg);
            if (S.exit_code == 0 || S.exit_code == LP_EX_DATAERR)
                S.exit_code = st;
        }
    }
    metrics_at_exit();
    teardown();
    if (S.stdout_gone) {
        /* stdout went away (| head): leave as a filter killed by SIGPIPE
         * does, so the shell sees 141 and pipefail notices; what was read
         * was sent first */
        tool_sigpipe_exit();
    }
    return S.exit_code;
}
