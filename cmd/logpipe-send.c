/* logpipe-send.c -- NDJSON on stdin (or files) into a Redis stream */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_json.h"
#include "lp_line.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_time.h"

/*
 * The loop: read lines, validate each event in one pass, append its XADD
 * (already in RESP form) to the filling batch; when the batch is full, the
 * linger time has passed or input ends, hand it to hiredis in one append
 * and write it out, while up to LP_INFLIGHT earlier batches wait for their
 * replies. One round trip per batch, not per event; the socket never idles
 * while we parse.
 *
 * Every event keeps the input offset of its line, so that when Redis stays
 * away longer than --timeout we can say exactly how much of the input is
 * in Redis: everything before the first unacknowledged event's line.
 */

#define LP_INFLIGHT 3
#define LP_NBATCH (LP_INFLIGHT + 1)
#define LP_MAXREQ 32

enum { K_EVENT, K_DLQ };

struct ev {
    uint32_t cmd;               /* offset of its command in the blob */
    uint32_t cmdlen;
    uint32_t file;              /* index of the input */
    uint8_t kind;
    uint8_t done;
    uint64_t line_start;        /* input offset of its line */
};

struct batch {
    struct lp_buf blob;         /* RESP commands, back to back */
    struct ev *ev;
    size_t n;
    size_t replied;             /* replies received: ev[0..replied) */
    size_t failed;              /* error replies among them */
    int flushed;                /* written to the socket whole */
    int64_t opened_ms;          /* monotonic time of its first event */
};

enum {
    OPT_BATCH = LP_OPT_TOOL, OPT_LINGER, OPT_TIMEOUT, OPT_TIME_FIELD,
    OPT_MAX_AGE, OPT_MAX_SKEW, OPT_MAX_LINE, OPT_MAX_DEPTH, OPT_REQUIRE,
    OPT_REJECTS, OPT_REJECTS_TO_DLQ, OPT_IDS
};

static const struct option longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_DLQ, LP_LONG_PASSWORD_FILE,
    { "batch", required_argument, NULL, 'b' },
    { "linger", required_argument, NULL, 'l' },
    { "timeout", required_argument, NULL, 't' },
    { "time-field", required_argument, NULL, OPT_TIME_FIELD },
    { "max-age", required_argument, NULL, OPT_MAX_AGE },
    { "max-skew", required_argument, NULL, OPT_MAX_SKEW },
    { "max-line", required_argument, NULL, OPT_MAX_LINE },
    { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
    { "require", required_argument, NULL, OPT_REQUIRE },
    { "rejects", required_argument, NULL, OPT_REJECTS },
    { "rejects-to-dlq", no_argument, NULL, OPT_REJECTS_TO_DLQ },
    { "ids", no_argument, NULL, OPT_IDS },
    LP_LONG_LOG,
    { NULL, 0, NULL, 0 }
};

static const char shortopts[] = "r:s:b:l:t:vqhV";

static void usage(void)
{
    printf(
"usage: logpipe-send [options] [FILE...]\n"
"Send NDJSON events from FILEs (or stdin, or '-') to a Redis stream.\n"
"\n"
"  -r, --redis URL          Redis URL (redis://127.0.0.1:6379/0)\n"
"  -s, --stream KEY         stream key (logs:stream)\n"
"      --dlq KEY            dead letter stream (logs:dlq)\n"
"      --password-file FILE read the Redis password from FILE\n"
"  -b, --batch N            events per batch (1000)\n"
"  -l, --linger DUR         send a partial batch after DUR (20ms; bare = ms)\n"
"  -t, --timeout DUR        retry a failing Redis this long, then exit 75 (30s)\n"
"      --time-field NAME    member holding the event time (timestamp)\n"
"      --max-age DUR        reject events older than DUR (24h; 0 = off)\n"
"      --max-skew DUR       reject events more than DUR ahead (5m; 0 = off)\n"
"      --max-line SIZE      longest line accepted (1M)\n"
"      --max-depth N        deepest nesting accepted (64)\n"
"      --require LIST       reject events missing any of these members\n"
"      --rejects FILE       append rejected lines to FILE, verbatim\n"
"      --rejects-to-dlq     also add rejected lines to the DLQ\n"
"      --ids                print the stream ID of each event sent\n"
"  -v, --verbose            more messages (-vv: per batch)\n"
"  -q, --quiet              only errors\n"
"      --log-format FMT     text or json (text)\n"
"  -h, --help               this help\n"
"  -V, --version            version\n"
"\n"
"Exit: 0 ok, 64 usage, 65 some lines rejected, 66 input missing,\n"
"70 internal error, 73 cannot create --rejects, 74 I/O error,\n"
"75 Redis failed longer than --timeout, 78 bad configuration.\n"
"See logpipe-send(1).\n");
}

static struct {
    struct lp_common com;
    uint64_t batch;
    uint64_t batch_bytes;
    int64_t linger, timeout, max_age, max_skew;
    uint64_t max_line;
    uint64_t max_depth;
    const char *time_field;
    char *require[LP_MAXREQ];
    int nrequire;
    const char *rejects;
    int rejects_to_dlq;
    int ids;
    char **files;
    int nfiles;
} opt;

static struct {
    struct lp_redis *r;
    struct lp_lines lines;
    struct lp_jkeys keys;
    int time_idx;
    int req_idx[LP_MAXREQ];
    struct lp_jlimits lim;
    struct batch ring[LP_NBATCH];
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
    int stdout_gone;
    int exit_code;
    uint64_t n_lines, n_events, n_sent, n_rejected, n_dlq;
    uint64_t n_maybe;           /* sent again after a lost reply */
    uint64_t n_ahead;           /* acknowledged, but after an event that
                                   was not: a resume sends them twice */
} S;

static struct batch *filling(void)
{
    return &S.ring[(S.head + S.count) % LP_NBATCH];
}

static void where(char *buf, size_t cap, uint64_t lineno)
{
    if (S.name)
        snprintf(buf, cap, "%s: line %" PRIu64, S.name, lineno);
    else
        snprintf(buf, cap, "line %" PRIu64, lineno);
}

/* ---- replies ---------------------------------------------------------- */

static void release_head(void)
{
    struct batch *b = &S.ring[S.head];

    b->n = b->replied = b->failed = 0;
    b->blob.len = 0;
    b->flushed = 0;
    S.head = (S.head + 1) % LP_NBATCH;
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
    if (!S.stdout_gone && lp_fs_write_all(STDOUT_FILENO, S.out.p,
                                          S.out.len) < 0) {
        if (errno != EPIPE)
            lp_error("stdout: %s", strerror(errno));
        /* like head(1) expects: stop reading, finish what is in flight */
        S.stdout_gone = 1;
        lp_stop = 1;
    }
    S.out.len = 0;
}

static char last_error[LP_ERRLEN];
static int last_permanent;

/* The oldest batch in flight still waiting for replies, or NULL. */
static struct batch *unanswered(void)
{
    for (int i = 0; i < S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_NBATCH];
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
        b->failed++;
        lp_reply_text(rep, last_error, sizeof last_error);
        last_permanent |= permanent_error(rep);
    } else {
        e->done = 1;
        if (e->kind == K_EVENT) {
            S.n_sent++;
            if (opt.ids && !S.stdout_gone) {
                size_t n;
                const char *id = lp_reply_str(rep, &n);
                if (id) {
                    lp_buf_add(&S.out, id, n);
                    lp_buf_addc(&S.out, '\n');
                }
            }
        } else {
            S.n_dlq++;
        }
    }
    lp_reply_free(rep);
}

/* Releases answered batches at the head; -1 when the head had errors. */
static int retire(void)
{
    while (S.count > 0) {
        struct batch *b = &S.ring[S.head];
        if (b->replied < b->n)
            break;
        if (b->failed)
            return -1;
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
    flush_ids();
    return 0;
}

/*
 * Takes the replies that have arrived; with block, waits for at least
 * one. all: keep taking until every command in flight is answered (used
 * after a failure, without retiring). Returns 0, or -1 with err on an I/O
 * error or when a batch got an error reply.
 */
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
            snprintf(err, LP_ERRLEN, "%s: %s", lp_redis_name(S.r),
                     last_error);
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
    /* the line of the oldest event not yet acknowledged, else all read */
    for (int i = 0; i <= S.count; i++) {
        struct batch *b = &S.ring[(S.head + i) % LP_NBATCH];
        for (size_t k = 0; k < b->n; k++) {
            if (!b->ev[k].done) {
                *file = (int)b->ev[k].file;
                return b->ev[k].line_start;
            }
        }
    }
    *file = S.file;
    return lp_lines_offset(&S.lines);
}

static void give_up(const char *why, int code)
{
    int file;
    uint64_t off = unsent_offset(&file);
    const char *name = opt.nfiles ? opt.files[file] : NULL;

    if (name && strcmp(name, "-") == 0)
        name = NULL;
    lp_error("%s", why);
    if (name)
        lp_error("sent %" PRIu64 " bytes of %s%s; resume with: "
                 "tail -c +%" PRIu64 " %s | logpipe-send",
                 off, name, file + 1 < opt.nfiles ?
                 ", none of the files after it" : "", off + 1, name);
    else
        lp_error("sent %" PRIu64 " bytes of input; resume with: "
                 "tail -c +%" PRIu64 " <the same input> | logpipe-send",
                 off, off + 1);
    if (S.n_maybe)
        lp_warn("%" PRIu64 " events may have reached Redis although no "
                "reply came (possible duplicates)", S.n_maybe);
    if (S.n_ahead)
        lp_warn("%" PRIu64 " events after the resume point are already in "
                "Redis (a resume sends them twice)", S.n_ahead);
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
    if (lp_redis_flush(S.r, err) < 0)
        return -1;
    b->flushed = 1;
    return 0;
}

/*
 * Something failed: an I/O error (connection gone, replies in flight
 * lost) or an error reply (OOM, READONLY, LOADING, ...). Collect the
 * replies still coming, keep what was not acknowledged, and send it again
 * in order once Redis answers, for at most --timeout.
 */
static void recover(const char *why)
{
    char err[LP_ERRLEN], msg[LP_ERRLEN + 64];
    int64_t now = lp_mono_ms();

    snprintf(msg, sizeof msg, "%s", why);
    if (S.fail_since == 0)
        S.fail_since = now;
    for (;;) {
        /* the connection may still carry replies for later commands */
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
        if (last_permanent && lp_redis_connected(S.r)) {
            give_up(msg, LP_EX_CONFIG);
        }
        int behind = 0;
        for (int i = 0; i < S.count; i++)
            compact(&S.ring[(S.head + i) % LP_NBATCH], &behind);
        while (S.count > 0 && S.ring[S.head].n == 0)
            release_head();
        if (S.count == 0) {
            S.fail_since = 0;
            S.n_ahead = 0;
            return;
        }

        now = lp_mono_ms();
        if (!S.warned) {
            char d[32];
            lp_format_duration(opt.timeout, d, sizeof d);
            lp_warn("%s; retrying for up to %s", msg, d);
            S.warned = 1;
        }
        if (now - S.fail_since >= opt.timeout) {
            char m2[LP_ERRLEN + 128];
            snprintf(m2, sizeof m2, "giving up after %llds: %s",
                     (long long)((now - S.fail_since) / 1000), msg);
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
        }
        last_permanent = 0;
        int ok = 1;
        for (int i = 0; i < S.count && ok; i++)
            if (send_batch(&S.ring[(S.head + i) % LP_NBATCH], err) < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                ok = 0;
            }
        if (ok)
            return;             /* replies are checked by the main loop */
    }
}

/* Hands the filling batch to Redis, waiting for room in flight. */
static void dispatch(void)
{
    struct batch *b = filling();
    char err[LP_ERRLEN] = "";

    if (b->n == 0)
        return;
    while (S.count >= LP_INFLIGHT) {
        if (pump(1, err) < 0)
            recover(err);
    }
    b = filling();
    S.count++;
    if (lp_log_verbosity() >= 2)
        lp_debug("batch of %zu events, %zu bytes", b->n, b->blob.len);
    if (!lp_redis_connected(S.r) || send_batch(b, err) < 0) {
        if (!lp_redis_connected(S.r) && err[0] == '\0')
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        recover(err);
    }
}

/* ---- events ----------------------------------------------------------- */

static void add_dlq(const char *line, size_t len, uint64_t line_start, const char *code, const char *msg)
{
    struct batch *b = filling();
    char ms[32];
    const char *argv[19];
    size_t lens[19];
    int n = 0;
    size_t start = b->blob.len;

#define ARG(s, l) (argv[n] = (s), lens[n++] = (l))
    snprintf(ms, sizeof ms, "%lld", (long long)S.now);
    ARG("XADD", 4);
    ARG(opt.com.dlq, strlen(opt.com.dlq));
    ARG("*", 1);
    ARG("data", 4); ARG(line, len);
    ARG("error", 5); ARG(code, strlen(code));
    ARG("detail", 6); ARG(msg, strlen(msg));
    ARG("stage", 5); ARG("send", 4);
    ARG("source_stream", 13); ARG(opt.com.stream, strlen(opt.com.stream));
    ARG("source_id", 9); ARG("", 0);
#undef ARG
    /* deliveries, consumer and failed_at follow, as for drain's entries */
    {
        const char *tail[6] = { "deliveries", "0", "consumer", S.host,
                                "failed_at", ms };
        size_t tl[6];
        for (int i = 0; i < 6; i++)
            tl[i] = strlen(tail[i]);
        const char *all[25];
        size_t al[25];
        memcpy(all, argv, sizeof(char *) * (size_t)n);
        memcpy(al, lens, sizeof(size_t) * (size_t)n);
        memcpy(all + n, tail, sizeof tail);
        memcpy(al + n, tl, sizeof tl);
        if (lp_buf_add_resp(&b->blob, n + 6, all, al) < 0) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
    }
    if (b->n == 0)
        b->opened_ms = lp_mono_ms();
    b->ev[b->n].cmd = (uint32_t)start;
    b->ev[b->n].cmdlen = (uint32_t)(b->blob.len - start);
    b->ev[b->n].file = (uint32_t)S.file;
    b->ev[b->n].kind = K_DLQ;
    b->ev[b->n].done = 0;
    b->ev[b->n].line_start = line_start;
    b->n++;
    if (b->n >= opt.batch || b->blob.len >= opt.batch_bytes)
        dispatch();
}

/* Reports a rejected event; line[0..len) is what --rejects and the DLQ
 * get: the whole line as read, or the rejected element of an array. */
static void reject(const char *line, size_t len, uint64_t lineno,
                   uint64_t line_start, const char *code, const char *what)
{
    char at[PATH_MAX + 64];

    S.n_rejected++;
    where(at, sizeof at, lineno);
    lp_error("%s: %s", at, what);
    if (S.rejects_fd >= 0 && len > 0) {
        if (lp_fs_write_all(S.rejects_fd, line, len) < 0 ||
            lp_fs_write_all(S.rejects_fd, "\n", 1) < 0) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            exit(LP_EX_IOERR);
        }
    }
    if (opt.rejects_to_dlq && len > 0)
        add_dlq(line, len, line_start, code, what);
}

static void add_event(const char *s, size_t n, const struct lp_jevent *ev,
                      uint64_t line_start)
{
    struct batch *b = filling();
    size_t len = ev->ncuts ? lp_json_cut_len(ev, n) : n;
    size_t start = b->blob.len;
    char *o;

    if (lp_buf_reserve(&b->blob, S.prefix.len + 24 + len + 2) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    memcpy(b->blob.p + b->blob.len, S.prefix.p, S.prefix.len);
    b->blob.len += S.prefix.len;
    lp_buf_addu(&b->blob, len);
    o = b->blob.p + b->blob.len;
    *o++ = '\r';
    *o++ = '\n';
    if (ev->ncuts)
        lp_json_cut_copy(ev, s, n, o);
    else
        memcpy(o, s, n);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    b->blob.len = (size_t)(o - b->blob.p);

    if (b->n == 0)
        b->opened_ms = lp_mono_ms();
    b->ev[b->n].cmd = (uint32_t)start;
    b->ev[b->n].cmdlen = (uint32_t)(b->blob.len - start);
    b->ev[b->n].file = (uint32_t)S.file;
    b->ev[b->n].kind = K_EVENT;
    b->ev[b->n].done = 0;
    b->ev[b->n].line_start = line_start;
    b->n++;
    S.n_events++;
    if (b->n >= opt.batch || b->blob.len >= opt.batch_bytes)
        dispatch();
}

/* One event (a line, or an element of an array line). label is NULL for
 * a whole line, else "element N". Returns 0 or -1 (rejected). */
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
    for (int i = 0; i < opt.nrequire; i++)
        if (ev.val[S.req_idx[i]].type == LP_JNONE)
            REJECT("missing-member", "required member \"%s\" is missing",
                   opt.require[i]);
    add_event(s, n, &ev, line_start);
    return;
rejected:
    if (label == NULL)
        reject(ln->p, ln->len, lineno, line_start, code, what);
    else
        reject(s, n, lineno, line_start, code, what);
#undef REJECT
}

static int json_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void one_line(const struct lp_line *ln)
{
    const char *s = ln->p;
    size_t n = ln->len;
    struct lp_jerr je;

    S.n_lines++;
    while (n > 0 && json_ws((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && json_ws((unsigned char)s[n - 1]))
        n--;
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
        where(at, sizeof at, ln->lineno);
        lp_error("%s: longer than --max-line (%" PRIu64 " bytes)", at,
                 opt.max_line);
    }
    if (S.rejects_fd >= 0) {
        if (lp_fs_write_all(S.rejects_fd, ln->p, ln->len) < 0 ||
            (ln->last && lp_fs_write_all(S.rejects_fd, "\n", 1) < 0)) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            exit(LP_EX_IOERR);
        }
    }
}

/* ---- input loop --------------------------------------------------------- */

/* Waits for input or replies, at most until the filling batch's linger
 * time is over. Returns 1 when input is readable, 0 otherwise. */
static int wait_input(int fd)
{
    struct batch *b = filling();
    struct pollfd p[2];
    int np = 1, timeout = -1, rc;
    char err[LP_ERRLEN];

    p[0].fd = fd;
    p[0].events = POLLIN;
    p[0].revents = 0;
    if (S.count > 0 && lp_redis_connected(S.r)) {
        p[1].fd = lp_redis_fd(S.r);
        p[1].events = POLLIN;
        p[1].revents = 0;
        np = 2;
    }
    if (b->n > 0) {
        int64_t left = b->opened_ms + opt.linger - lp_mono_ms();
        if (left <= 0) {
            dispatch();
            return 0;
        }
        timeout = (int)left;
    }
    rc = poll(p, (nfds_t)np, timeout);
    if (rc < 0)
        return 0;               /* EINTR: the caller checks lp_stop */
    if (np == 2 && p[1].revents) {
        if (lp_redis_read(S.r, err) < 0 || pump(0, err) < 0)
            recover(err);
    }
    if (rc == 0 && b->n > 0)
        dispatch();
    return (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
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
            S.exit_code = LP_EX_IOERR;
            return;
        }
    }
}

/* ---- main --------------------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
    char err[LP_ERRLEN];
    int c;

    lp_common_init(&opt.com);
    opt.batch = 1000;
    opt.batch_bytes = 8 << 20;
    opt.linger = 20;
    opt.timeout = 30000;
    opt.max_age = 24 * 3600 * 1000LL;
    opt.max_skew = 5 * 60 * 1000LL;
    opt.max_line = 1 << 20;
    opt.max_depth = LP_JSON_DEPTH;
    opt.time_field = "timestamp";

    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int rc = lp_common_opt(&opt.com, c, optarg, err);
        if (rc < 0)
            goto bad;
        if (rc > 0)
            continue;
        switch (c) {
        case 'h':
            usage();
            exit(0);
        case 'V':
            printf("logpipe-send %s\n", LP_VERSION);
            exit(0);
        case 'b':
            if (lp_parse_uint(optarg, 1, 1000000, &opt.batch, err) < 0)
                goto badopt;
            break;
        case 'l':
            if (lp_parse_duration(optarg, "ms", &opt.linger, err) < 0)
                goto badopt;
            break;
        case 't':
            if (lp_parse_duration(optarg, "s", &opt.timeout, err) < 0)
                goto badopt;
            break;
        case OPT_TIME_FIELD:
            opt.time_field = optarg;
            break;
        case OPT_MAX_AGE:
            if (lp_parse_duration(optarg, "s", &opt.max_age, err) < 0)
                goto badopt;
            break;
        case OPT_MAX_SKEW:
            if (lp_parse_duration(optarg, "s", &opt.max_skew, err) < 0)
                goto badopt;
            break;
        case OPT_MAX_LINE:
            if (lp_parse_size(optarg, &opt.max_line, err) < 0)
                goto badopt;
            if (opt.max_line < 2 || opt.max_line > (1u << 30)) {
                snprintf(err, sizeof err, "'%s' is out of range (2..1G)",
                         optarg);
                goto badopt;
            }
            break;
        case OPT_MAX_DEPTH:
            if (lp_parse_uint(optarg, 1, 10000, &opt.max_depth, err) < 0)
                goto badopt;
            break;
        case OPT_REQUIRE:
            if ((opt.nrequire = lp_parse_list(optarg, opt.require, LP_MAXREQ,
                                              err)) < 0)
                goto badopt;
            break;
        case OPT_REJECTS:
            opt.rejects = optarg;
            break;
        case OPT_REJECTS_TO_DLQ:
            opt.rejects_to_dlq = 1;
            break;
        case OPT_IDS:
            opt.ids = 1;
            break;
        default:
            exit(lp_usage_hint("logpipe-send"));
        }
        continue;
badopt:
        fprintf(stderr, "logpipe-send: %s: %s\n",
                lp_optname(longopts, c), err);
        exit(LP_EX_USAGE);
bad:
        fprintf(stderr, "logpipe-send: %s\n", err);
        exit(LP_EX_USAGE);
    }
    opt.files = argv + optind;
    opt.nfiles = argc - optind;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    int rc;

    parse_args(argc, argv);
    lp_log_init("logpipe-send", opt.com.log_format, opt.com.verbosity);
    lp_sig_init(0);
    if (gethostname(S.host, sizeof S.host - 1) < 0)
        strcpy(S.host, "unknown");

    /* what we look for in each event */
    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    for (int i = 0; i < opt.nrequire; i++) {
        if ((S.req_idx[i] = lp_jkeys_add(&S.keys, opt.require[i])) < 0) {
            lp_error("--require: too many members (at most %d)",
                     LP_JSON_MAXKEYS - 1);
            return LP_EX_USAGE;
        }
    }
    S.lim.depth = (int)opt.max_depth;

    {
        const char *argv2[5] = { "XADD", opt.com.stream, "*", "data", "" };
        size_t lens[5] = { 4, strlen(opt.com.stream), 1, 4, 0 };
        lp_buf_add_resp(&S.prefix, 5, argv2, lens);
        S.prefix.len -= 5;      /* drop "0\r\n\r\n": "$" ends the prefix */
    }
    for (int i = 0; i < LP_NBATCH; i++) {
        S.ring[i].ev = calloc(opt.batch, sizeof(struct ev));
        if (S.ring[i].ev == NULL) {
            lp_error("out of memory");
            return LP_EX_SOFTWARE;
        }
    }
    if (lp_lines_init(&S.lines, STDIN_FILENO, opt.max_line) < 0) {
        lp_error("out of memory");
        return LP_EX_SOFTWARE;
    }
    S.rejects_fd = -1;
    if (opt.rejects) {
        S.rejects_fd = open(opt.rejects, O_WRONLY | O_APPEND | O_CREAT |
                            O_CLOEXEC, 0640);
        if (S.rejects_fd < 0) {
            lp_error("--rejects %s: %s", opt.rejects, strerror(errno));
            return LP_EX_CANTCREAT;
        }
    }
    if ((S.r = lp_common_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    lp_redis_set_timeout(S.r, opt.timeout < 10000 ? (opt.timeout > 1000 ?
                                                     opt.timeout : 1000)
                                                  : 10000);
    rc = lp_redis_connect(S.r, err);
    if (rc == LP_REDIS_EAUTH) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    if (rc < 0) {
        /* nothing in flight: recover() retries until --timeout */
        S.fail_since = lp_mono_ms();
        char d[32];
        lp_format_duration(opt.timeout, d, sizeof d);
        lp_warn("%s; retrying for up to %s", err, d);
        S.warned = 1;
        for (;;) {
            int64_t now = lp_mono_ms();
            if (now - S.fail_since >= opt.timeout || lp_stop) {
                char m[LP_ERRLEN + 64];
                snprintf(m, sizeof m, "giving up after %llds: %s",
                         (long long)((now - S.fail_since) / 1000), err);
                give_up(m, LP_EX_TEMPFAIL);
            }
            S.backoff = S.backoff ? S.backoff * 2 : 100;
            if (S.backoff > 2000)
                S.backoff = 2000;
            poll(NULL, 0, (int)S.backoff);
            rc = lp_redis_connect(S.r, err);
            if (rc == LP_REDIS_EAUTH) {
                lp_error("%s", err);
                return LP_EX_CONFIG;
            }
            if (rc == 0)
                break;
        }
        lp_warn("%s answers again", lp_redis_name(S.r));
        S.warned = 0;
        S.fail_since = 0;
        S.backoff = 0;
    }
    S.now = lp_now_ms();

    if (opt.nfiles == 0) {
        S.name = NULL;
        drain_input(STDIN_FILENO);
    }
    for (int i = 0; i < opt.nfiles && !lp_stop; i++) {
        int fd;
        S.file = i;
        if (strcmp(opt.files[i], "-") == 0) {
            fd = STDIN_FILENO;
            S.name = NULL;
        } else if ((fd = open(opt.files[i], O_RDONLY | O_CLOEXEC)) < 0) {
            lp_error("%s: %s", opt.files[i], strerror(errno));
            S.exit_code = LP_EX_NOINPUT;
            continue;
        } else {
            S.name = opt.files[i];
        }
        lp_lines_reset(&S.lines, fd);
        drain_input(fd);
        /* the last events of this file must not be counted against the
         * next one's offsets: send them now */
        dispatch();
        if (fd != STDIN_FILENO)
            close(fd);
    }
    dispatch();
    while (S.count > 0) {
        if (pump(1, err) < 0)
            recover(err);
    }
    flush_ids();
    if (lp_stop && !S.stdout_gone)
        lp_warn("interrupted: %" PRIu64 " events sent, %s read up to byte "
                "%" PRIu64, S.n_sent, S.name ? S.name : "input",
                lp_lines_offset(&S.lines));
    if (S.n_maybe)
        lp_warn("%" PRIu64 " events may have reached Redis twice (a reply "
                "was lost and they were sent again)", S.n_maybe);
    lp_info("%" PRIu64 " lines, %" PRIu64 " events sent, %" PRIu64
            " rejected", S.n_lines, S.n_sent, S.n_rejected);
    if (S.n_rejected) {
        lp_error("%" PRIu64 " invalid event%s in %" PRIu64 " line%s",
                 S.n_rejected, S.n_rejected == 1 ? "" : "s", S.n_lines,
                 S.n_lines == 1 ? "" : "s");
        if (S.exit_code == 0)
            S.exit_code = LP_EX_DATAERR;
    }
    lp_redis_free(S.r);
    for (int i = 0; i < LP_NBATCH; i++) {
        free(S.ring[i].ev);
        lp_buf_free(&S.ring[i].blob);
    }
    lp_lines_free(&S.lines);
    lp_buf_free(&S.prefix);
    lp_buf_free(&S.out);
    if (S.rejects_fd >= 0)
        close(S.rejects_fd);
    return S.exit_code;
}
