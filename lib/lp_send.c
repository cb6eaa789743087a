/* lp_send.c -- the send engine: NDJSON events into a Redis stream */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_line.h"
#include "lp_metrics.h"
#include "lp_rate.h"
#include "lp_redis.h"
#include "lp_resp.h"
#include "lp_send.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_time.h"
#include "lp_wal.h"

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
 *
 * A failure that ends the run (Redis away for --timeout, the WAL failing,
 * out of memory), deep in the loop, is said where it happens, and then
 * give_up jumps back to lp_send_run, which returns it: the engine's
 * buffers and connections are all in struct lp_send, so nothing on the
 * way back holds anything, and nothing more happens after it, as when the
 * tool exited there.
 */

#define LP_INFLIGHT 3

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

struct lp_send {
    struct lp_send_conf c;
    struct lp_notify nt;
    jmp_buf out;                /* give_up: back to lp_send_run */
    int running;                /* out is set */
    int stop;                   /* stop as a signal would */
    struct lp_redis *r;
    struct lp_lines lines;
    struct lp_jkeys keys;
    int time_idx;
    int req_idx[LP_SEND_MAXREQ];
    struct lp_jlimits lim;
    struct batch in;            /* the batch being filled from input */
    struct batch ring[LP_INFLIGHT];
    int head, count;            /* in flight: ring[head .. head+count) */
    int rejects_fd;
    struct lp_buf prefix;       /* RESP of XADD <stream> * data */
    struct lp_buf out_ids;      /* --ids output */
    char host[256];
    int file;                   /* current input */
    const char *name;           /* its name for messages, NULL = stdin */
    int64_t now;                /* wall clock, refreshed per read */
    int64_t fail_since;         /* monotonic ms, 0 = not failing */
    struct lp_backoff backoff;
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
    uint64_t n_ahead;           /* acknowledged, but after an event that
                                   was not: a resume sends them twice */
    struct lp_send_counts n;    /* what the metrics read, and the caller */
    /* --rate */
    struct lp_rate *rate;
    int rkey_idx;               /* --rate-key .name: its member, else -1 */
    struct lp_jq *rkey_jq;      /* any other --rate-key program */
    struct lp_redis *rr;        /* --shared-rate: its own connection */
    struct lp_buf rkey_buf;     /* the Redis key of a bucket */
    int64_t rr_retry_at;        /* mono ms: try Redis again after this */
    int rr_local;               /* Redis failed: limiting here for now */
    /* --metrics: the counters read s->n; the rest is set per tick */
    struct lp_metrics *m;
    struct lp_metric *batch_s, *wal_bytes, *rate_keys;
};

#define say(s, level, ...) lp_notice(&(s)->nt, (level), __VA_ARGS__)

/* Ends the run with status code: back to lp_send_run, which returns
 * it. What is to be said was said. */
static _Noreturn void end_run(struct lp_send *s, int code)
{
    s->exit_code = code;
    longjmp(s->out, 1);
}

static _Noreturn void give_up(struct lp_send *s, const char *why,
                              int code);

static _Noreturn void fatal_oom(struct lp_send *s)
{
    say(s, LP_SEND_ERROR, "out of memory");
    end_run(s, LP_EX_SOFTWARE);
}

static void where(struct lp_send *s, char *buf, size_t cap, uint64_t lineno)
{
    if (s->name)
        snprintf(buf, cap, "%s: line %" PRIu64, s->name, lineno);
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

/* The metrics; the counters are s->n's own. 0, or -1 out of memory. */
static int metrics_init(struct lp_send *s)
{
    struct lp_metrics *m;
    struct lp_send_counts *n = &s->n;

    if (s->c.metrics == NULL)
        return 0;
    if ((m = s->m = lp_metrics_new(&s->nt)) == NULL)
        return -1;
    lp_metric_bind(lp_counter(m, "logpipe_send_lines_total", "",
                              "Input lines read."), &n->lines, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_events_total",
                              "result=\"sent\"",
                              "Events by what became of them."),
                   &n->sent, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_events_total",
                              "result=\"rejected\"", ""), &n->rejected, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_events_total",
                              "result=\"wal\"", ""), &n->wal, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_events_total",
                              "result=\"limited\"", ""), &n->limited, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_wal_replayed_total", "",
                              "Events sent again from the WAL."),
                   &n->replayed, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_dlq_total", "",
                              "Rejected lines added to the DLQ."),
                   &n->dlq, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_possible_duplicates_total",
                              "", "Events sent again after a reply was "
                              "lost."), &n->maybe, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_batches_total", "",
                              "Batches acknowledged."), &n->batches, 1);
    s->batch_s = lp_histogram(m, "logpipe_send_batch_seconds", "",
                              "From writing a batch to its last reply.",
                              lp_seconds_buckets, lp_seconds_nbuckets);
    lp_metric_bind(lp_counter(m, "logpipe_send_redis_errors_total", "",
                              "Failures of Redis: I/O errors and error "
                              "replies."), &n->errors, 1);
    lp_metric_bind(lp_counter(m, "logpipe_send_reconnects_total", "",
                              "Connections made again after a failure."),
                   &n->reconnects, 1);
    s->wal_bytes = lp_gauge(m, "logpipe_send_wal_bytes", "",
                            "Bytes of records waiting in the WAL.");
    if (s->c.rate > 0) {
        lp_metric_bind(lp_counter(m, "logpipe_send_rate_wait_seconds_total",
                                  "", "Time spent waiting for --rate."),
                       &n->wait_ms, 1000.0);
        s->rate_keys = lp_gauge(m, "logpipe_send_rate_keys", "",
                                "Rate keys with a bucket of their own.");
        lp_metric_bind(lp_counter(m, "logpipe_send_rate_overflow_total",
                                  "", "Events whose key was new past "
                                  "--max-keys: they share one bucket."),
                       &n->overflow, 1);
    }
    return 0;
}

/* Writes the metrics file when due (or now, with force). */
static void metrics_tick(struct lp_send *s, int force)
{
    if (s->m == NULL)
        return;
    lp_metric_set(s->wal_bytes, s->wal ? (double)lp_wal_bytes(s->wal) : 0);
    if (s->rate)
        lp_metric_set(s->rate_keys, (double)lp_rate_nkeys(s->rate));
    lp_metrics_tick(s->m, s->c.metrics, s->c.metrics_interval, force);
}

/* ---- replies ---------------------------------------------------------- */

static void release_head(struct lp_send *s)
{
    reset_batch(&s->ring[s->head]);
    s->head = (s->head + 1) % LP_INFLIGHT;
    s->count--;
}

/* An error reply no retry cures: the stream's type, the rights, the
 * credentials. */
static int permanent_error(const struct lp_reply *rep)
{
    return lp_reply_error_class(rep) >= LP_RERR_KEY;
}

/* The caller's periodic work (its held-back messages): ms until due, -1
 * none; and doing it. */
static int64_t idle_due(const struct lp_send *s)
{
    return s->c.due ? s->c.due(s->c.ctx) : -1;
}

static void idle_tick(const struct lp_send *s)
{
    if (s->c.tick)
        s->c.tick(s->c.ctx);
}

/* A stop signal came, or the engine stopped itself (--ids lost stdout). */
static int stopping(const struct lp_send *s)
{
    return lp_stop || s->stop;
}

static void flush_ids(struct lp_send *s)
{
    if (s->out_ids.len == 0)
        return;
    if (!s->ids_off && lp_fs_write_all(s->c.ids_fd, s->out_ids.p,
                                      s->out_ids.len) < 0) {
        /* stop reading and finish what is in flight; then a closed pipe
         * ends us as SIGPIPE would (see main), other errors with 74 */
        if (errno != EPIPE) {
            say(s, LP_SEND_ERROR, "stdout: %s", strerror(errno));
            s->exit_code = LP_EX_IOERR;
        } else {
            s->stdout_gone = 1;
        }
        s->ids_off = 1;
        s->stop = 1;
    }
    s->out_ids.len = 0;
}

/* The oldest batch in flight still waiting for replies, or NULL. */
static struct batch *unanswered(struct lp_send *s)
{
    for (int i = 0; i < s->count; i++) {
        struct batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->replied < b->n)
            return b;
    }
    return NULL;
}

/* Takes one reply, for the oldest unanswered command (in b). */
static void take_reply(struct lp_send *s, struct batch *b,
                       struct lp_reply *rep)
{
    struct ev *e = &b->ev[b->replied++];

    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[LP_ERRLEN - 100];
        b->failed++;
        snprintf(s->last_error, sizeof s->last_error, "XADD %s: %s",
                 e->kind == K_EVENT ? s->c.stream : s->c.dlq,
                 lp_reply_text(rep, t, sizeof t));
        s->last_permanent |= permanent_error(rep);
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
            s->n.sent++;
            if (b->source == B_REPLAY)
                s->n.replayed++;
            if (s->c.ids && !s->ids_off && id) {
                lp_buf_add(&s->out_ids, id, idn);
                lp_buf_addc(&s->out_ids, '\n');
            }
        } else {
            s->n.dlq++;
        }
    }
    lp_reply_free(rep);
}

/* The WAL was synced: what was written to it is safe (done 2 -> 1). */
static void wal_synced(struct lp_send *s)
{
    for (int i = 0; i < s->count; i++) {
        struct batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].done == 2)
                b->ev[k].done = 1;
    }
    for (size_t k = 0; k < s->in.n; k++)
        if (s->in.ev[k].done == 2)
            s->in.ev[k].done = 1;
}

/* Syncs the WAL; a failure is remembered (a sync is never tried again:
 * its pages may be gone while a second one succeeds). 0 or -1 with err. */
static int wal_sync(struct lp_send *s, char *err)
{
    if (s->wal_sync_failed || lp_wal_sync(s->wal, err) < 0) {
        if (!s->wal_sync_failed)
            s->wal_sync_failed = 1;
        else
            snprintf(err, LP_ERRLEN, "--wal %s: not synced", s->c.wal);
        return -1;
    }
    wal_synced(s);
    return 0;
}

static _Noreturn void wal_error(struct lp_send *s, const char *err)
{
    char e2[LP_ERRLEN];

    /* events the WAL cannot keep: stop, and say where the input is not
     * in Redis nor in the WAL; what was written before the failure is
     * in the WAL once synced */
    wal_sync(s, e2);
    give_up(s, err, LP_EX_IOERR);
}

/* Releases answered batches at the head; -1 when the head had errors. */
static int retire(struct lp_send *s)
{
    char err[LP_ERRLEN];

    while (s->count > 0) {
        struct batch *b = &s->ring[s->head];
        if (b->replied < b->n)
            break;
        if (b->failed)
            return -1;
        if (b->source == B_REPLAY && b->n &&
            lp_wal_seg_ack(s->wal, s->rseg, b->ev[b->n - 1].wend, err) < 0)
            wal_error(s, err);
        {
            double ms = (double)(lp_mono_us() - b->sent_us) / 1000.0;
            s->n.batches++;
            lp_metric_observe(s->batch_s, ms / 1000.0);
            if (s->c.verbosity >= 1) {
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
                say(s, LP_SEND_TRACE, "%s", kv);
            }
        }
        release_head(s);
        s->fail_since = 0;
        lp_backoff_reset(&s->backoff);
        if (s->count == 0)
            s->n_ahead = 0;      /* nothing unacknowledged before them */
        if (s->warned) {
            say(s, LP_NOTICE_WARN, "%s answers again", lp_redis_name(s->r));
            s->warned = 0;
        }
    }
    /* a segment all sent and all acknowledged is done */
    if (s->rseg && s->rseg_eof && s->count == 0) {
        if (lp_wal_seg_done(s->wal, s->rseg, err) < 0)
            wal_error(s, err);
        s->rseg = NULL;
        s->rseg_eof = 0;
    }
    flush_ids(s);
    return 0;
}

/* Takes the replies that have arrived; with block, waits for at least
 * one. Returns 0, or -1 with err on an I/O error or an error reply. */
static int pump(struct lp_send *s, int block, char *err)
{
    struct lp_reply *rep;
    struct batch *b;
    int got = 0, rc;

    for (;;) {
        while ((rc = lp_redis_next(s->r, &rep, err)) == 1) {
            if ((b = unanswered(s)) == NULL) {
                lp_reply_free(rep);     /* cannot happen: no command out */
                snprintf(err, LP_ERRLEN, "reply without a command");
                lp_redis_disconnect(s->r);
                return -1;
            }
            take_reply(s, b, rep);
            got = 1;
        }
        if (rc < 0)
            return -1;
        if (retire(s) < 0) {
            snprintf(err, LP_ERRLEN, "%s", s->last_error);
            return -1;
        }
        if (got || !block || s->count == 0)
            return 0;
        if (lp_redis_read(s->r, err) < 0)
            return -1;
    }
}

/* ---- failure handling --------------------------------------------------- */

static uint64_t unsent_offset(struct lp_send *s, int *file)
{
    /* the line of the oldest input event not acknowledged, else all read */
    for (int i = 0; i < s->count; i++) {
        struct batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->source != B_INPUT)
            continue;
        for (size_t k = 0; k < b->n; k++) {
            if (b->ev[k].done != 1) {
                *file = (int)b->ev[k].file;
                return b->ev[k].line_start;
            }
        }
    }
    for (size_t k = 0; k < s->in.n; k++) {
        if (s->in.ev[k].done != 1) {
            *file = (int)s->in.ev[k].file;
            return s->in.ev[k].line_start;
        }
    }
    *file = s->file;
    return lp_lines_offset(&s->lines);
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

/* Ends the run with code after saying how much of the input went to
 * Redis, and the command that sends the rest. */
static _Noreturn void give_up(struct lp_send *s, const char *why, int code)
{
    struct lp_buf cmd = { 0 };
    int file;
    uint64_t off = unsent_offset(s, &file);
    const char *name = s->c.nfiles ? s->c.files[file] : NULL;
    char from[32];

    if (name && strcmp(name, "-") == 0)
        name = NULL;
    say(s, LP_SEND_ERROR, "%s", why);
    snprintf(from, sizeof from, "+%" PRIu64, off + 1);
    lp_buf_adds(&cmd, "tail -c");
    add_quoted(&cmd, from);
    if (name)
        add_quoted(&cmd, name);
    lp_buf_adds(&cmd, " | logpipe-send");
    for (int i = 0; i < s->c.nargs; i++)
        add_quoted(&cmd, s->c.args[i]);
    if (s->c.nfiles && file + 1 < s->c.nfiles) {
        lp_buf_adds(&cmd, " -");
        for (int i = file + 1; i < s->c.nfiles; i++)
            add_quoted(&cmd, s->c.files[i]);
    }
    lp_buf_addc(&cmd, '\0');
    if (s->c.wal) {
        /* what is before the offset may be in the WAL rather than in
         * Redis: the resumed run sends the WAL first, as any run does */
        char in[PATH_MAX + 64];
        if (name)
            snprintf(in, sizeof in, "%s%s", name, file + 1 < s->c.nfiles ?
                     " (none of the files after it)" : "");
        else
            snprintf(in, sizeof in, "the input");
        say(s, LP_SEND_ERROR, "%" PRIu64 " bytes of %s are in Redis or in "
            "the WAL %s; resume with: %s%s", off, in, s->c.wal, cmd.p,
            name ? "" : " (fed the same input)");
    } else if (name) {
        say(s, LP_SEND_ERROR, "sent %" PRIu64 " bytes of %s%s; resume with: "
            "%s", off, name, file + 1 < s->c.nfiles ?
            ", none of the files after it" : "", cmd.p);
    } else {
        say(s, LP_SEND_ERROR, "sent %" PRIu64 " bytes of the input; resume "
            "with: %s (fed the same input)", off, cmd.p);
    }
    if (s->wal_sync_failed) {
        uint64_t n = 0;
        for (int i = 0; i < s->count; i++) {
            struct batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            for (size_t k = 0; k < b->n; k++)
                n += b->ev[k].done == 2 && b->ev[k].kind == K_EVENT;
        }
        for (size_t k = 0; k < s->in.n; k++)
            n += s->in.ev[k].done == 2 && s->in.ev[k].kind == K_EVENT;
        if (n)
            say(s, LP_NOTICE_WARN, "%" PRIu64 " %s after the resume point "
                "may be in the WAL %s as well, not synced (a resume may send "
                "them twice)", n, plural(n, "event", "events"), s->c.wal);
    }
    if (s->n.maybe)
        say(s, LP_NOTICE_WARN, "%" PRIu64 " %s may have reached Redis "
            "although no reply came (possible duplicates)", s->n.maybe,
            plural(s->n.maybe, "event", "events"));
    if (s->n_ahead)
        say(s, LP_NOTICE_WARN, "%" PRIu64 " %s after the resume point %s "
            "already in Redis (a resume sends them twice)", s->n_ahead,
            plural(s->n_ahead, "event", "events"),
            plural(s->n_ahead, "is", "are"));
    lp_buf_free(&cmd);
    end_run(s, code);
}

/* Keeps only the commands of b without a success reply, in order.
 * *behind: an earlier event is not acknowledged (in ring order). */
static void compact(struct lp_send *s, struct batch *b, int *behind)
{
    size_t keep = 0, pos = 0;

    for (size_t k = 0; k < b->n; k++) {
        struct ev e = b->ev[k];
        if (e.done) {
            if (*behind && e.kind == K_EVENT)
                s->n_ahead++;
            continue;
        }
        *behind = 1;
        if (k >= b->replied && b->flushed)
            s->n.maybe++;        /* written, no reply: maybe applied */
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

static int send_batch(struct lp_send *s, struct batch *b, char *err)
{
    if (lp_redis_append_raw(s->r, b->blob.p, b->blob.len) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(s->r));
        return -1;
    }
    b->sent_us = lp_mono_us();
    if (lp_redis_flush(s->r, err) < 0)
        return -1;
    b->flushed = 1;
    return 0;
}

/* Collects the replies still coming on a live connection after a failure,
 * without retiring anything. */
static void collect_replies(struct lp_send *s)
{
    char err[LP_ERRLEN];

    while (lp_redis_connected(s->r)) {
        struct lp_reply *rep;
        struct batch *b = unanswered(s);
        int rc;
        if (b == NULL)
            break;
        if ((rc = lp_redis_next(s->r, &rep, err)) == 1)
            take_reply(s, b, rep);
        else if (rc < 0 || lp_redis_read(s->r, err) < 0)
            break;
    }
    flush_ids(s);
}

/* Appends the not-yet-done commands of b to the WAL and marks them done.
 * Does not sync. Exits 75 at --wal-max. */
static void batch_to_wal(struct lp_send *s, struct batch *b)
{
    char err[LP_ERRLEN];

    for (size_t k = 0; k < b->n; k++) {
        struct ev *e = &b->ev[k];
        int rc;
        if (e->done)
            continue;
        rc = lp_wal_append(s->wal, b->blob.p + e->cmd, e->cmdlen, err);
        if (rc == -2) {
            char e2[LP_ERRLEN];
            if (wal_sync(s, e2) < 0)
                wal_error(s, e2);
            give_up(s, err, LP_EX_TEMPFAIL);
        }
        if (rc < 0)
            wal_error(s, err);
        e->done = 2;
        if (e->kind == K_EVENT)
            s->n.wal++;
    }
}

static void sync_wal(struct lp_send *s)
{
    char err[LP_ERRLEN];

    if (wal_sync(s, err) < 0)
        wal_error(s, err);
}

/* Redis failed with batches of input in flight: everything not
 * acknowledged goes to the WAL, in order, and we are in WAL mode. */
static void spill(struct lp_send *s, const char *why)
{
    int behind = 0;

    collect_replies(s);
    for (int i = 0; i < s->count; i++)
        compact(s, &s->ring[(s->head + i) % LP_INFLIGHT], &behind);
    for (int i = 0; i < s->count; i++)
        batch_to_wal(s, &s->ring[(s->head + i) % LP_INFLIGHT]);
    batch_to_wal(s, &s->in);
    sync_wal(s);
    while (s->count > 0)
        release_head(s);
    reset_batch(&s->in);
    s->n_ahead = 0;              /* a WAL has no resume point */
    if (!s->walmode)
        say(s, LP_NOTICE_WARN, "%s: keeping events in the WAL %s until Redis "
            "answers", why, s->c.wal);
    s->walmode = 1;
    s->replay_at = lp_mono_ms() + 100;
}

/* Re-sending from the WAL failed: acknowledge the records that made it
 * in order, mark those that made it after one that did not (an error
 * reply in the middle: Redis goes on with the next commands), forget the
 * batches in flight, and try again later with the rest. */
static void replay_failed(struct lp_send *s, const char *why)
{
    char err[LP_ERRLEN];

    s->n.errors++;
    uint64_t acked = 0;
    int broken = 0, marked = 0;

    collect_replies(s);
    for (int i = 0; i < s->count; i++) {
        struct batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++) {
            struct ev *e = &b->ev[k];
            if (!broken && e->done) {
                acked = e->wend;
            } else if (e->done) {
                /* it has its stream ID: never send it again */
                if (lp_wal_seg_mark(s->wal, s->rseg, e->wend, e->cmdlen,
                                    err) < 0)
                    wal_error(s, err);
                marked = 1;
            } else {
                broken = 1;
                if (k >= b->replied && b->flushed)
                    s->n.maybe++;    /* written, no reply: maybe applied */
            }
        }
    }
    if ((acked || marked) &&
        lp_wal_seg_ack(s->wal, s->rseg, acked, err) < 0)
        wal_error(s, err);
    while (s->count > 0)
        release_head(s);
    if (s->rseg) {
        lp_wal_seg_rewind(s->rseg);
        s->rseg_eof = 0;
    }
    if (s->last_permanent && lp_redis_connected(s->r)) {
        say(s, LP_SEND_ERROR, "%s", why);
        say(s, LP_SEND_ERROR, "the events stay in the WAL %s", s->c.wal);
        end_run(s, LP_EX_CONFIG);
    }
    s->replay_at = lp_mono_ms() + lp_backoff_next(&s->backoff);
    if (s->fail_since == 0)
        s->fail_since = lp_mono_ms();
    if (!s->warned) {
        say(s, LP_NOTICE_WARN, "%s; the WAL %s is sent again when Redis "
            "answers", why, s->c.wal);
        s->warned = 1;
    }
    s->last_permanent = 0;
}

/*
 * Something failed: an I/O error (connection gone, replies in flight
 * lost) or an error reply (OOM, READONLY, LOADING, ...). With a WAL, what
 * is not acknowledged goes there. Without, collect the replies still
 * coming, keep what was not acknowledged, and send it again in order once
 * Redis answers, for at most --timeout.
 */
static void recover(struct lp_send *s, const char *why)
{
    char err[LP_ERRLEN], msg[LP_ERRLEN + 64], d[32];
    int64_t now = lp_mono_ms(), wait;

    s->n.errors++;
    if (s->walmode) {
        replay_failed(s, why);
        return;
    }
    if (s->wal && !s->last_permanent) {
        spill(s, why);
        return;
    }
    snprintf(msg, sizeof msg, "%s", why);
    lp_format_duration(s->c.timeout, d, sizeof d);
    if (s->fail_since == 0)
        s->fail_since = now;
    for (;;) {
        int behind = 0;
        collect_replies(s);
        if (s->last_permanent && lp_redis_connected(s->r))
            give_up(s, msg, LP_EX_CONFIG);
        for (int i = 0; i < s->count; i++)
            compact(s, &s->ring[(s->head + i) % LP_INFLIGHT], &behind);
        while (s->count > 0 && s->ring[s->head].n == 0)
            release_head(s);
        if (s->count == 0) {
            s->fail_since = 0;
            s->n_ahead = 0;
            return;
        }

        now = lp_mono_ms();
        if (!s->warned && s->c.timeout > 0) {
            say(s, LP_NOTICE_WARN, "%s; retrying for up to %s", msg, d);
            s->warned = 1;
        }
        if (now - s->fail_since >= s->c.timeout) {
            char m2[LP_ERRLEN + 128];
            snprintf(m2, sizeof m2, "giving up (--timeout %s): %s", d, msg);
            give_up(s, m2, LP_EX_TEMPFAIL);
        }
        if (stopping(s)) {
            char m2[LP_ERRLEN + 64];
            snprintf(m2, sizeof m2, "interrupted while Redis fails: %s", msg);
            give_up(s, m2, LP_EX_TEMPFAIL);
        }
        wait = lp_backoff_next(&s->backoff);
        if (wait > s->c.timeout - (now - s->fail_since))
            wait = s->c.timeout - (now - s->fail_since);
        poll(NULL, 0, (int)wait);

        if (!lp_redis_connected(s->r)) {
            int rc = lp_redis_connect(s->r, err);
            if (rc == LP_REDIS_EAUTH)
                give_up(s, err, LP_EX_CONFIG);
            if (rc < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                continue;
            }
            s->n.reconnects++;
        }
        s->last_permanent = 0;
        int ok = 1;
        for (int i = 0; i < s->count && ok; i++)
            if (send_batch(s, &s->ring[(s->head + i) % LP_INFLIGHT],
                           err) < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                ok = 0;
            }
        if (ok)
            return;             /* replies are checked by the main loop */
    }
}

/* Connects when not connected. Returns 0, or -1 with err (EAUTH ends
 * the run). */
static int ensure_connected(struct lp_send *s, char *err)
{
    int rc;

    if (lp_redis_connected(s->r))
        return 0;
    rc = lp_redis_connect(s->r, err);
    if (rc == LP_REDIS_EAUTH) {
        say(s, LP_SEND_ERROR, "%s", err);
        if (s->walmode)
            say(s, LP_SEND_ERROR, "the events stay in the WAL %s", s->c.wal);
        end_run(s, LP_EX_CONFIG);
    }
    if (rc == 0 && (s->fail_since || s->n.errors))
        s->n.reconnects++;
    return rc < 0 ? -1 : 0;
}

/* ---- --max-backlog ------------------------------------------------------ */

/* The lag of --group (XINFO GROUPS), or the stream length when that
 * group does not exist or Redis cannot tell its lag (after deletions).
 * -1 with err on an I/O error. */
static long long backlog(struct lp_send *s, char *err)
{
    struct lp_stream_err e;
    struct lp_group_info *g;
    size_t ng;
    long long lag = -1;

    if (lp_stream_groups(s->r, s->c.stream, &g, &ng, &e) < 0) {
        /* an error reply (no such stream): the length then */
        if (e.code == LP_STREAM_EIO) {
            snprintf(err, LP_ERRLEN, "%s", e.msg);
            return -1;
        }
    }
    for (size_t i = 0; i < ng; i++)
        if (strcmp(g[i].name, s->c.group) == 0)
            lag = g[i].lag;
    lp_group_info_free(g, ng);
    if (lag < 0) {
        /* an error reply counts as empty, as it always did */
        if (lp_stream_len(s->r, s->c.stream, &lag, &e) < 0 &&
            e.code == LP_STREAM_EIO) {
            snprintf(err, LP_ERRLEN, "%s", e.msg);
            return -1;
        }
    }
    return lag;
}

/* Every 100ms and 4 batches at most: waits while the backlog is above
 * --max-backlog, so that the pipe pushes back on the writer. */
static void check_backlog(struct lp_send *s)
{
    char err[LP_ERRLEN];
    int64_t wait = 100;
    int waited = 0;

    if (!s->c.max_backlog || ++s->batches_since_backlog < 4 ||
        lp_mono_ms() < s->backlog_at)
        return;
    s->batches_since_backlog = 0;
    s->backlog_at = lp_mono_ms() + 100;
    /* a command with batches in flight would need its reply sorted out of
     * theirs: let them land first */
    while (s->count > 0)
        if (pump(s, 1, err) < 0) {
            recover(s, err);
            return;
        }
    for (;;) {
        long long n;
        if (ensure_connected(s, err) < 0 || (n = backlog(s, err)) < 0)
            return;             /* the next send notices and recovers */
        if (n <= (long long)s->c.max_backlog || stopping(s))
            break;
        if (!waited)
            say(s, LP_NOTICE_INFO, "backlog %lld over --max-backlog %" PRIu64
                ": waiting", n, s->c.max_backlog);
        waited = 1;
        poll(NULL, 0, (int)wait);
        wait = wait < 1000 ? wait * 2 : 1000;
    }
    if (waited)
        say(s, LP_NOTICE_INFO, "backlog under --max-backlog again");
}

/* ---- sending ------------------------------------------------------------ */

/* The oldest WAL records go into a free slot, as a batch in flight. */
static void replay_step(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct batch *b;
    const char *rec;
    size_t len;
    uint64_t end;

    if (s->rseg && s->rseg_eof && s->count == 0)
        retire(s);               /* finishes the segment */
    if (!s->walmode || s->count >= LP_INFLIGHT ||
        lp_mono_ms() < s->replay_at || (s->rseg && s->rseg_eof))
        return;
    if (ensure_connected(s, err) < 0) {
        replay_failed(s, err);
        return;
    }
    if (s->rseg == NULL) {
        int rc;
        /* input waiting for the WAL goes first, behind what is there */
        if (s->in.n) {
            batch_to_wal(s, &s->in);
            sync_wal(s);
            reset_batch(&s->in);
        }
        rc = lp_wal_take(s->wal, &s->rseg, err);
        if (rc < 0)
            wal_error(s, err);
        if (rc == 0) {
            if (s->count == 0) {
                s->walmode = 0;  /* all sent: straight to Redis again */
                say(s, LP_NOTICE_INFO, "the WAL %s is empty again", s->c.wal);
            }
            return;
        }
        s->rseg_eof = 0;
    }
    b = &s->ring[(s->head + s->count) % LP_INFLIGHT];
    reset_batch(b);
    b->source = B_REPLAY;
    while (b->n < s->c.batch && b->blob.len < s->c.batch_bytes) {
        if (!lp_wal_seg_next(s->rseg, &rec, &len, &end)) {
            s->rseg_eof = 1;
            break;
        }
        if (lp_buf_add(&b->blob, rec, len) < 0)
            fatal_oom(s);
        struct ev *e = &b->ev[b->n++];
        const char *key, *data;
        size_t keylen, datalen;
        e->cmd = (uint32_t)(b->blob.len - len);
        e->cmdlen = (uint32_t)len;
        /* an event for a stream, or a dead letter (counted apart) */
        e->kind = lp_wal_event(rec, len, &key, &keylen, &data, &datalen) &&
                  keylen == strlen(s->c.dlq) &&
                  memcmp(key, s->c.dlq, keylen) == 0 ? K_DLQ : K_EVENT;
        e->done = 0;
        e->wend = end;
        e->file = 0;
        e->line_start = 0;
    }
    if (b->n == 0) {
        retire(s);               /* an empty remainder: the segment is done */
        return;
    }
    s->count++;
    if (s->c.verbosity >= 2)
        say(s, LP_SEND_DEBUG, "re-sending %zu commands of %s", b->n,
            lp_wal_seg_name(s->rseg));
    if (send_batch(s, b, err) < 0)
        recover(s, err);
}

/* Hands the input batch to Redis (or to the WAL in WAL mode). */
static void dispatch(struct lp_send *s)
{
    char err[LP_ERRLEN] = "";
    struct batch *b;

    if (s->in.n == 0)
        return;
    if (s->walmode) {
        batch_to_wal(s, &s->in);
        sync_wal(s);
        reset_batch(&s->in);
        replay_step(s);
        return;
    }
    check_backlog(s);
    if (s->walmode) {            /* the check failed over to the WAL */
        dispatch(s);
        return;
    }
    while (s->count >= LP_INFLIGHT) {
        if (pump(s, 1, err) < 0) {
            recover(s, err);
            if (s->walmode) {
                dispatch(s);
                return;
            }
        }
    }
    /* the input batch becomes the free slot, the slot the input batch */
    b = &s->ring[(s->head + s->count) % LP_INFLIGHT];
    struct batch tmp = *b;
    *b = s->in;
    s->in = tmp;
    reset_batch(&s->in);
    b->source = B_INPUT;
    s->count++;
    if (ensure_connected(s, err) < 0 || send_batch(s, b, err) < 0)
        recover(s, err);
    metrics_tick(s, 0);
}

/* ---- events ----------------------------------------------------------- */

static void add_command(struct lp_send *s, size_t start, uint64_t line_start,
                        int kind)
{
    struct batch *b = &s->in;

    if (b->n == 0)
        b->opened_ms = lp_mono_ms();
    b->ev[b->n].cmd = (uint32_t)start;
    b->ev[b->n].cmdlen = (uint32_t)(b->blob.len - start);
    b->ev[b->n].file = (uint32_t)s->file;
    b->ev[b->n].kind = (uint8_t)kind;
    b->ev[b->n].done = 0;
    b->ev[b->n].line_start = line_start;
    b->n++;
    if (b->n >= s->c.batch || b->blob.len >= s->c.batch_bytes)
        dispatch(s);
}

/*
 * The dead letter of a rejected line: its XADD to the DLQ, in the input
 * batch, in order with the events. The one place that builds send's DLQ
 * entry (the fields drain and logpipe-dlq read back).
 */
static void add_dlq(struct lp_send *s, const char *line, size_t len,
                    uint64_t line_start, const char *code, const char *msg)
{
    char ms[32];
    const char *argv[19] = {
        "XADD", s->c.dlq, "*", "data", line, "error", code,
        "detail", msg, "stage", "send", "source_stream", s->c.stream,
        "source_id", "", "deliveries", "0", "consumer", s->host,
    };
    const char *all[21];
    size_t lens[21], start = s->in.blob.len;

    snprintf(ms, sizeof ms, "%lld", (long long)s->now);
    memcpy(all, argv, sizeof argv);
    all[19] = "failed_at";
    all[20] = ms;
    for (int i = 0; i < 21; i++)
        lens[i] = i == 4 ? len : strlen(all[i]);
    if (lp_resp_command(&s->in.blob, 21, all, lens) < 0)
        fatal_oom(s);
    add_command(s, start, line_start, K_DLQ);
}

/* --rejects cannot be written: the run ends (74). */
static _Noreturn void rejects_failed(struct lp_send *s)
{
    say(s, LP_SEND_ERROR, "--rejects %s: %s", s->c.rejects, strerror(errno));
    end_run(s, LP_EX_IOERR);
}

/* Reports a rejected event; line[0..len) is what --rejects and the DLQ
 * get: the whole line as read, or the rejected element of an array. */
static void reject(struct lp_send *s, const char *line, size_t len,
                   uint64_t lineno, uint64_t line_start, const char *code,
                   const char *what)
{
    char at[PATH_MAX + 64];

    s->n.rejected++;
    where(s, at, sizeof at, lineno);
    say(s, strcmp(code, "rate-limited") == 0 ? LP_SEND_LIMITED : LP_SEND_BAD,
        "%s: %s", at, what);
    if (s->rejects_fd >= 0 && len > 0) {
        if (lp_fs_write_all(s->rejects_fd, line, len) < 0 ||
            lp_fs_write_all(s->rejects_fd, "\n", 1) < 0)
            rejects_failed(s);
    }
    if ((s->c.rejects_to_dlq || (s->c.on_limit == LP_SEND_ON_DLQ &&
                                strcmp(code, "rate-limited") == 0)) &&
        len > 0)
        add_dlq(s, line, len, line_start, code, what);
}


/* ---- --rate ------------------------------------------------------------- */

/* The rate key of an event into buf; its length (0: the global bucket). */
static size_t rate_key(struct lp_send *s, const char *txt, size_t n,
                       const struct lp_jevent *ev, char *buf, size_t cap)
{
    char err[LP_ERRLEN];
    long len;

    if (s->rkey_idx >= 0) {
        const struct lp_jval *v = &ev->val[s->rkey_idx];
        switch (v->type) {
        case LP_JNONE:
        case LP_JNULL:
            return 0;
        case LP_JSTRING:
            len = lp_json_unescape(txt, v, buf, cap);
            if (len >= 0)
                return (size_t)len;
            /* longer than cap: its first bytes, as the text is */
            len = (long)(v->len - 2 < cap ? v->len - 2 : cap);
            memcpy(buf, txt + v->off + 1, (size_t)len);
            return (size_t)len;
        default:
            len = (long)(v->len < cap ? v->len : cap);
            memcpy(buf, txt + v->off, (size_t)len);
            return (size_t)len;
        }
    }
    if (s->rkey_jq == NULL)
        return 0;
    len = lp_jq_string(s->rkey_jq, txt, n, buf, cap, err);
    if (len < 0) {
        /* the keyless bucket; the first few said, all counted: a failed
         * run (lp_jq_outcome at the end) */
        if (lp_jq_name_it(s->rkey_jq) && s->c.verbosity >= 0)
            say(s, LP_SEND_ERROR, "--rate-key: %s (such events share the "
                "limit of events without a key)", err);
        return 0;
    }
    return (size_t)len;
}

/* --shared-rate: asks Redis for up to want tokens of bucket b. Returns
 * 0 with the lease set, or -1 when Redis failed (b untouched). */
static int rate_ask(struct lp_send *s, struct lp_bucket *b, int64_t now)
{
    char err[LP_ERRLEN];
    uint64_t want, got;
    int64_t wait;

    if (s->rr_local && lp_mono_ms() < s->rr_retry_at)
        return -1;
    if (!lp_redis_connected(s->rr) && lp_redis_connect(s->rr, err) < 0)
        goto failed;
    /* a twentieth of a second's worth, so that every sender gets its
     * share and little is left unused when one stops */
    want = (uint64_t)(s->c.rate * 50.0);
    if (want < 1)
        want = 1;
    if (want > s->c.burst)
        want = s->c.burst;
    /* <stream>:rate:<key>, the key's bytes as they are */
    s->rkey_buf.len = 0;
    if (lp_buf_adds(&s->rkey_buf, s->c.stream) < 0 ||
        lp_buf_adds(&s->rkey_buf, ":rate:") < 0 ||
        lp_buf_add(&s->rkey_buf, b->key, b->klen) < 0)
        fatal_oom(s);
    if (lp_rate_shared_take(s->rr, s->rkey_buf.p, s->rkey_buf.len,
                            s->c.rate, s->c.burst, want, &got, &wait,
                            err) < 0)
        goto failed;
    lp_bucket_lease_set(b, got, wait, now);
    if (s->rr_local) {
        s->rr_local = 0;
        say(s, LP_NOTICE_INFO, "--shared-rate: Redis answers again: the "
            "limit is shared again");
    }
    return 0;
failed:
    if (!s->rr_local)
        say(s, LP_NOTICE_WARN, "--shared-rate: %s: limiting in this sender "
            "alone until Redis answers", err);
    s->rr_local = 1;
    s->rr_retry_at = lp_mono_ms() + 5000;
    lp_redis_disconnect(s->rr);
    return -1;
}

/* Takes a token of bucket b: 0, or the ms until one is there. */
static int64_t rate_take(struct lp_send *s, struct lp_bucket *b)
{
    int64_t now = lp_mono_ms();

    if (s->c.shared_rate) {
        for (int tries = 0; tries < 2; tries++) {
            int64_t rc = lp_bucket_lease_take(b, now);
            if (rc > 0)
                return 0;
            if (rc < 0)
                return -rc;
            if (rate_ask(s, b, now) < 0)
                break;          /* Redis away: the local bucket */
        }
        if (!s->rr_local)
            return 1;
    }
    return lp_bucket_take(s->rate, b, now);
}

/*
 * Waits ms for the limit, sending the events admitted so far once their
 * linger time is over, and taking replies and WAL re-sends meanwhile.
 */
static void rate_pause(struct lp_send *s, int64_t ms)
{
    char err[LP_ERRLEN];
    int64_t start = lp_mono_ms(), until = start + ms;

    for (;;) {
        int64_t now = lp_mono_ms(), left = until - now;
        struct pollfd p = { -1, POLLIN, 0 };
        if (left <= 0 || stopping(s))
            break;
        if (s->in.n > 0) {
            int64_t linger = s->in.opened_ms + s->c.linger - now;
            if (linger <= 0) {
                dispatch(s);
                continue;
            }
            if (linger < left)
                left = linger;
        }
        if (s->count > 0 && lp_redis_connected(s->r))
            p.fd = lp_redis_fd(s->r);
        if (s->m && left > s->c.metrics_interval)
            left = s->c.metrics_interval;
        int64_t due = idle_due(s);
        if (due >= 0 && due < left)
            left = due;
        if (poll(&p, 1, (int)left) > 0 && p.revents) {
            if (lp_redis_read(s->r, err) < 0 || pump(s, 0, err) < 0)
                recover(s, err);
        }
        replay_step(s);
        metrics_tick(s, 0);
        idle_tick(s);
    }
    s->n.wait_ms += lp_mono_ms() - start;
}

/*
 * Applies --rate to one valid event: 1 when it may go, 0 when it is over
 * the limit (--on-limit reject or dlq; what says why). With block, waits
 * for its token; a stop signal ends the wait and lets it go: it was read
 * from the input already, and losing it would be worse than passing the
 * limit by what the read buffer holds.
 */
static int rate_admit(struct lp_send *s, const char *txt, size_t n,
                      const struct lp_jevent *ev, char *what, size_t cap)
{
    char key[1024];             /* longer keys: cut (then hashed) */
    size_t klen = rate_key(s, txt, n, ev, key, sizeof key);
    int over;
    struct lp_bucket *b = lp_rate_bucket(s->rate, key, klen, lp_mono_ms(),
                                         &over);
    int64_t wait;

    if (b == NULL)
        fatal_oom(s);
    if (over && s->n.overflow++ == 0)
        say(s, LP_NOTICE_WARN, "--max-keys %" PRIu64 ": more new rate keys "
            "this minute share the limit of \"%s\"", s->c.max_keys,
            LP_RATE_OVERFLOW);
    while ((wait = rate_take(s, b)) > 0) {
        if (s->c.on_limit != LP_SEND_ON_BLOCK) {
            if (klen)
                snprintf(what, cap, "over --rate for key \"%.*s\"",
                         (int)(b->klen < 64 ? b->klen : 64), b->key);
            else
                snprintf(what, cap, "over --rate");
            return 0;
        }
        if (stopping(s)) {
            s->n.past_limit++;
            return 1;
        }
        rate_pause(s, wait);
        /* the pause may have moved the table: look the key up again */
        b = lp_rate_bucket(s->rate, key, klen, lp_mono_ms(), &over);
        if (b == NULL)
            fatal_oom(s);
    }
    return 1;
}

static void add_event(struct lp_send *s, const char *txt, size_t n,
                      const struct lp_jevent *ev, uint64_t line_start)
{
    struct lp_buf *blob = &s->in.blob;
    size_t len = ev->ncuts ? lp_json_cut_len(ev, n) : n;
    size_t start = blob->len;
    char *o;

    /* XADD <stream> * data, then the event as the last argument */
    if (lp_buf_add(blob, s->prefix.p, s->prefix.len) < 0 ||
        (o = lp_resp_bulk_space(blob, len)) == NULL)
        fatal_oom(s);
    if (ev->ncuts)
        lp_json_cut_copy(ev, txt, n, o);
    else
        memcpy(o, txt, n);
    s->n.events++;
    add_command(s, start, line_start, K_EVENT);
}

/* One event (a line, or an element of an array line). label is NULL for
 * a whole line, else "element N". */
static void one_event(struct lp_send *s, const char *txt, size_t n,
                      const struct lp_line *ln, const char *label)
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

    if (lp_json_event(txt, n, &s->keys, &s->lim, &ev, &je) < 0) {
        if (je.not_object)
            REJECT("not-object", "not a JSON object");
        REJECT("invalid-json", "invalid JSON: %s", je.msg);
    }
    if (s->time_idx >= 0) {
        int rc = lp_event_time(txt, &ev.val[s->time_idx], &t, err);
        if (rc < 0)
            REJECT("bad-time", "%s", err);
        if (rc > 0) {
            char ts[40], d[32];
            if (s->c.max_age && t < s->now - s->c.max_age) {
                lp_time_format(t, ts);
                lp_format_duration(s->c.max_age, d, sizeof d);
                REJECT("too-old", "event time %s is older than --max-age %s",
                       ts, d);
            }
            if (s->c.max_skew && t > s->now + s->c.max_skew) {
                lp_time_format(t, ts);
                lp_format_duration(s->c.max_skew, d, sizeof d);
                REJECT("too-new", "event time %s is more than --max-skew %s "
                       "ahead", ts, d);
            }
        }
    }
    for (int i = 0; i < s->c.require.n; i++)
        if (ev.val[s->req_idx[i]].type == LP_JNONE)
            REJECT("missing-member", "required member \"%s\" is missing",
                   s->c.require.item[i]);
    if (s->rate && !rate_admit(s, txt, n, &ev, err, sizeof err)) {
        s->n.limited++;
        s->n.rejected--;         /* counted apart, reported the same way */
        REJECT("rate-limited", "%s", err);
    }
    add_event(s, txt, n, &ev, line_start);
    return;
rejected:
    if (label == NULL)
        reject(s, ln->p, ln->len, lineno, line_start, code, what);
    else
        reject(s, txt, n, lineno, line_start, code, what);
#undef REJECT
}

static void one_line(struct lp_send *s, const struct lp_line *ln)
{
    const char *txt = ln->p;
    size_t n = ln->len;
    struct lp_jerr je;

    s->n.lines++;
    lp_json_trim(&txt, &n);
    if (n == 0)
        return;
    if (*txt != '[') {
        one_event(s, txt, n, ln, NULL);
        return;
    }
    /* an array of events: valid as a whole, then element by element */
    if (lp_json_valid(txt, n, &s->lim, &je) < 0) {
        char what[LP_ERRLEN];
        snprintf(what, sizeof what, "invalid JSON: %s", je.msg);
        reject(s, ln->p, ln->len, ln->lineno, ln->start, "invalid-json",
               what);
        return;
    }
    size_t pos = 0, off, len;
    int type, k = 0;
    while (lp_json_array_next(txt, n, &pos, &off, &len, &type)) {
        char label[48];
        snprintf(label, sizeof label, "element %d", ++k);
        if (type != LP_JOBJECT) {
            char what[96];
            snprintf(what, sizeof what, "%s: not a JSON object", label);
            reject(s, txt + off, len, ln->lineno, ln->start, "not-object",
                   what);
            continue;
        }
        one_event(s, txt + off, len, ln, label);
    }
}

static void long_line(struct lp_send *s, const struct lp_line *ln)
{
    if (ln->first) {
        char at[PATH_MAX + 64];
        s->n.lines++;
        s->n.rejected++;
        where(s, at, sizeof at, ln->lineno);
        say(s, LP_SEND_BAD, "%s: longer than --max-line (%" PRIu64 " bytes)",
            at, s->c.max_line);
    }
    if (s->rejects_fd >= 0) {
        if (lp_fs_write_all(s->rejects_fd, ln->p, ln->len) < 0 ||
            (ln->last && lp_fs_write_all(s->rejects_fd, "\n", 1) < 0))
            rejects_failed(s);
    }
}

/* ---- the loop ----------------------------------------------------------- */

/*
 * Waits for input (fd >= 0) or replies, at most until the input batch's
 * linger time is over or the next WAL attempt is due. Returns 1 when input
 * is readable.
 */
static int wait_input(struct lp_send *s, int fd)
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
    if (s->count > 0 && lp_redis_connected(s->r)) {
        rfd = np;
        p[np].fd = lp_redis_fd(s->r);
        p[np].events = POLLIN;
        p[np].revents = 0;
        np++;
    }
    if (s->in.n > 0) {
        left = s->in.opened_ms + s->c.linger - now;
        if (left <= 0) {
            dispatch(s);
            return 0;
        }
        timeout = (int)left;
    }
    if (s->walmode && s->count < LP_INFLIGHT && !(s->rseg && s->rseg_eof)) {
        left = s->replay_at - now;
        if (left <= 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (s->m && (timeout < 0 || timeout > s->c.metrics_interval))
        timeout = (int)s->c.metrics_interval;
    if ((left = idle_due(s)) >= 0 && (timeout < 0 || left < timeout))
        timeout = (int)left;
    rc = poll(p, (nfds_t)np, timeout);
    metrics_tick(s, 0);
    idle_tick(s);
    if (rc < 0)
        return 0;               /* EINTR: the caller checks for a stop */
    if (rfd >= 0 && p[rfd].revents) {
        if (lp_redis_read(s->r, err) < 0 || pump(s, 0, err) < 0)
            recover(s, err);
    }
    if (s->in.n > 0 && lp_mono_ms() >= s->in.opened_ms + s->c.linger)
        dispatch(s);
    replay_step(s);
    return fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static void drain_input(struct lp_send *s, int fd)
{
    struct lp_line ln;
    int rc;

    for (;;) {
        if (stopping(s)) {
            /* finish the complete lines already read: they left the pipe */
            while ((rc = lp_lines_next(&s->lines, &ln)) == LP_LINE_OK ||
                   rc == LP_LINE_LONG) {
                if (rc == LP_LINE_OK)
                    one_line(s, &ln);
                else
                    long_line(s, &ln);
            }
            return;
        }
        rc = lp_lines_next(&s->lines, &ln);
        if (rc == LP_LINE_OK) {
            one_line(s, &ln);
            continue;
        }
        if (rc == LP_LINE_LONG) {
            long_line(s, &ln);
            continue;
        }
        if (rc == LP_LINE_EOF)
            return;
        /* need more input */
        if (!wait_input(s, fd))
            continue;
        long got = lp_lines_fill(&s->lines);
        s->now = lp_now_ms();
        if (got < 0 && errno != EAGAIN && errno != EINTR) {
            say(s, LP_SEND_ERROR, "%s: %s", s->name ? s->name : "stdin",
                strerror(errno));
            s->exit_code = errno == EISDIR ? LP_EX_NOINPUT : LP_EX_IOERR;
            return;
        }
    }
}

/* Input is over: waits for the batches in flight; in WAL mode, re-sends
 * the WAL while Redis takes it. Every event is in Redis or in the WAL by
 * then, so a failure ends the run (exit 0) rather than holding the
 * writer's pipe; only --flush-wal keeps trying, for --timeout. */
static void finish(struct lp_send *s)
{
    char err[LP_ERRLEN], d[32];

    dispatch(s);
    while (!s->walmode && s->count > 0) {
        if (pump(s, 1, err) < 0)
            recover(s, err);
    }
    lp_format_duration(s->c.timeout, d, sizeof d);
    while (s->walmode) {
        /* stopping: no more re-sends, but the replies to those in flight
         * are waited for, so that what Redis stored is acknowledged in
         * the WAL and never sent again by the next run */
        int stop = stopping(s) ||
                   (s->fail_since && (!s->c.flush_wal ||
                                     lp_mono_ms() - s->fail_since >=
                                     s->c.timeout));
        if (stop && s->count == 0)
            break;
        if (!stop)
            replay_step(s);
        if (s->count > 0) {
            if (pump(s, 1, err) < 0)
                recover(s, err);
        } else if (s->walmode) {
            wait_input(s, -1);
        }
    }
    flush_ids(s);
    if (s->walmode) {
        uint64_t left = lp_wal_bytes(s->wal);
        if (s->c.flush_wal) {
            say(s, LP_SEND_ERROR, "giving up (--timeout %s): the WAL %s "
                "still holds %" PRIu64 " bytes", d, s->c.wal, left);
            end_run(s, LP_EX_TEMPFAIL);
        }
        say(s, LP_NOTICE_WARN, "the WAL %s holds %" PRIu64 " bytes of events "
            "not in Redis yet; the next logpipe-send --wal %s sends them",
            s->c.wal, left, s->c.wal);
    }
}

/* ---- the engine --------------------------------------------------------- */

/* Opens input i; returns the fd, or -1 after saying why (status 66). */
static int open_input(struct lp_send *s, int i)
{
    struct stat st;
    int fd;

    if (strcmp(s->c.files[i], "-") == 0) {
        s->name = NULL;
        return STDIN_FILENO;
    }
    s->name = s->c.files[i];
    if ((fd = open(s->c.files[i], O_RDONLY | O_CLOEXEC)) < 0 ||
        fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        say(s, LP_SEND_ERROR, "%s: %s", s->c.files[i],
            fd < 0 ? strerror(errno) : "is a directory");
        if (fd >= 0)
            close(fd);
        s->exit_code = LP_EX_NOINPUT;
        return -1;
    }
    return fd;
}

struct lp_send *lp_send_new(const struct lp_send_conf *c,
                            const struct lp_notify *nt, char *err)
{
    struct lp_send *s = calloc(1, sizeof *s);

    if (s == NULL)
        goto oom;
    s->c = *c;
    if (nt)
        s->nt = *nt;
    s->rejects_fd = -1;
    s->rkey_idx = -1;
    s->time_idx = -1;
    if (metrics_init(s) < 0)
        goto oom;
    return s;
oom:
    lp_send_free(s);
    snprintf(err, LP_ERRLEN, "out of memory");
    return NULL;
}

/* Is --rate-key a plain ".name", read by the scanner rather than jq? */
static int plain_member(const char *k)
{
    return k[0] == '.' && k[1] != '\0' &&
           strspn(k + 1, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
           strlen(k + 1) && !(k[1] >= '0' && k[1] <= '9');
}

int lp_send_open(struct lp_send *s, char *err)
{
    const char *xadd[4] = { "XADD", s->c.stream, "*", "data" };
    size_t lens[4] = { 4, strlen(s->c.stream), 1, 4 };

    if (gethostname(s->host, sizeof s->host - 1) < 0)
        strcpy(s->host, "unknown");
    /* what we look for in each event */
    s->time_idx = s->c.time_field[0] ? lp_jkeys_add(&s->keys,
                                                    s->c.time_field) : -1;
    for (int i = 0; i < s->c.require.n; i++) {
        if ((s->req_idx[i] = lp_jkeys_add(&s->keys,
                                          s->c.require.item[i])) < 0) {
            snprintf(err, LP_ERRLEN, "--require: too many members (at "
                     "most %d)", LP_JSON_MAXKEYS - 1);
            return LP_EX_USAGE;
        }
    }
    s->lim.depth = (int)s->c.max_depth;
    s->lim.members = (uint32_t)s->c.max_members;
    if (s->c.rate > 0) {
        if ((s->rate = lp_rate_new(s->c.rate, (double)s->c.burst,
                                   s->c.max_keys)) == NULL)
            goto oom;
        if (s->c.rate_key && plain_member(s->c.rate_key)) {
            if ((s->rkey_idx = lp_jkeys_add(&s->keys,
                                            s->c.rate_key + 1)) < 0) {
                snprintf(err, LP_ERRLEN, "--rate-key: too many members "
                         "asked for");
                return LP_EX_USAGE;
            }
        } else if (s->c.rate_key) {
            char e2[LP_ERRLEN];
            if (lp_jq_new(s->c.rate_key, &s->rkey_jq, e2) < 0) {
                snprintf(err, LP_ERRLEN, "--rate-key: %s", e2);
                return LP_EX_CONFIG;
            }
        }
    }
    /* XADD <stream> * data: every event's command up to its data */
    if (lp_resp_head(&s->prefix, 5) < 0)
        goto oom;
    for (int i = 0; i < 4; i++)
        if (lp_resp_bulk(&s->prefix, xadd[i], lens[i]) < 0)
            goto oom;
    if ((s->in.ev = calloc(s->c.batch, sizeof(struct ev))) == NULL)
        goto oom;
    for (int i = 0; i < LP_INFLIGHT; i++)
        if ((s->ring[i].ev = calloc(s->c.batch, sizeof(struct ev))) == NULL)
            goto oom;
    if (lp_lines_init(&s->lines, STDIN_FILENO, s->c.max_line) < 0)
        goto oom;
    if (s->c.rejects) {
        s->rejects_fd = open(s->c.rejects, O_WRONLY | O_APPEND | O_CREAT |
                             O_CLOEXEC, 0640);
        if (s->rejects_fd < 0) {
            snprintf(err, LP_ERRLEN, "--rejects %s: %s", s->c.rejects,
                     strerror(errno));
            return LP_EX_CANTCREAT;
        }
    }
    if ((s->r = s->c.redis_new(s->c.ctx, err)) == NULL)
        return LP_EX_CONFIG;
    if (s->c.shared_rate) {
        if ((s->rr = s->c.redis_new(s->c.ctx, err)) == NULL)
            return LP_EX_CONFIG;
        /* a Redis that hangs must not hold the limit up long */
        lp_redis_set_timeout(s->rr, 500);
    }
    lp_redis_set_timeout(s->r, s->c.timeout < 10000 ?
                         (s->c.timeout > 1000 ? s->c.timeout : 1000) :
                         10000);
    if (s->c.wal) {
        int rc;
        if ((s->wal = lp_wal_open(s->c.wal, s->c.wal_max, &s->nt,
                                  err)) == NULL)
            return LP_EX_CANTCREAT;
        if ((rc = lp_wal_pending(s->wal, err)) < 0)
            return LP_EX_IOERR;
        if (rc > 0) {
            /* an earlier run's events: they go first */
            s->walmode = 1;
            say(s, LP_NOTICE_INFO, "the WAL %s holds %" PRIu64 " bytes from "
                "an earlier run: sending them first", s->c.wal,
                lp_wal_bytes(s->wal));
        }
    }
    return 0;
oom:
    snprintf(err, LP_ERRLEN, "out of memory");
    return LP_EX_SOFTWARE;
}

/* The inputs, one after the other, as far as a stop lets them. */
static void read_inputs(struct lp_send *s)
{
    if (s->c.nfiles == 0)
        drain_input(s, STDIN_FILENO);
    for (int i = 0; i < s->c.nfiles && !stopping(s); i++) {
        int fd;
        s->file = i;
        if ((fd = open_input(s, i)) < 0)
            continue;
        lp_lines_reset(&s->lines, fd);
        drain_input(s, fd);
        /* the last events of this file must not be counted against the
         * next one's offsets: send them now */
        dispatch(s);
        if (fd != STDIN_FILENO)
            close(fd);
    }
}

int lp_send_run(struct lp_send *s)
{
    if (setjmp(s->out))
        return -1;              /* end_run: said, status in exit_code */
    s->now = lp_now_ms();
    if (!s->c.flush_wal)
        read_inputs(s);
    finish(s);
    return 0;
}

int lp_send_status(const struct lp_send *s)
{
    return s->exit_code;
}

const struct lp_send_counts *lp_send_counts(const struct lp_send *s)
{
    return &s->n;
}

const char *lp_send_input(const struct lp_send *s, uint64_t *offset)
{
    *offset = lp_lines_offset(&s->lines);
    return s->name;
}

int lp_send_stopped(const struct lp_send *s)
{
    return stopping(s);
}

int lp_send_stdout_gone(const struct lp_send *s)
{
    return s->stdout_gone;
}

int lp_send_rate_key_outcome(struct lp_send *s, char *msg)
{
    return lp_jq_outcome(s->rkey_jq, msg);
}

void lp_send_free(struct lp_send *s)
{
    if (s == NULL)
        return;
    if (s->m) {
        metrics_tick(s, 1);     /* the last word, whatever the end */
        lp_metrics_free(s->m);
    }
    if (s->rseg)
        lp_wal_seg_release(s->wal, s->rseg);
    lp_wal_close(s->wal);
    lp_redis_free(s->r);
    lp_redis_free(s->rr);
    lp_rate_free(s->rate);
    lp_jq_free(s->rkey_jq);
    lp_buf_free(&s->rkey_buf);
    free(s->in.ev);
    lp_buf_free(&s->in.blob);
    for (int i = 0; i < LP_INFLIGHT; i++) {
        free(s->ring[i].ev);
        lp_buf_free(&s->ring[i].blob);
    }
    lp_lines_free(&s->lines);
    lp_buf_free(&s->prefix);
    lp_buf_free(&s->out_ids);
    if (s->rejects_fd >= 0)
        close(s->rejects_fd);
    free(s);
}
