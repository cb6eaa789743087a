/* logpipe-stat.c -- the state of the pipeline in one look */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_time.h"
#include "lp_utf8.h"
#include "lp_tree.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * Read-only: XLEN, XINFO GROUPS, XPENDING (summary) per group, XLEN of the
 * DLQ; the sizes of the WAL directory and of the archive tree when named.
 * Printed as one NDJSON object, or as Prometheus text (--prom) for
 * node_exporter's textfile collector. --check compares with the thresholds
 * given and exits 1 when one is crossed, saying which on stderr.
 *
 * When Redis fails, the rest is still printed, with the Redis part marked
 * unknown: a WAL that grows while Redis is away is what an operator looks
 * for then.
 */

struct stat_opt {
    struct lp_common com;
    const char *wal;
    int prom, check;
    int64_t timeout;
    uint64_t max_lag, max_pending, max_dlq;
    int64_t max_pending_age;
    /* the thresholds given */
    const struct lp_optdef *has_lag, *has_pending, *has_age, *has_dlq;
};

static struct stat_opt opt = { .timeout = 10000 };

#define OPT struct stat_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ, LP_LONG_DIR,
    { "wal", 0, LP_STR(OPT, wal), "DIR",
      "also the size of this logpipe-send WAL" },
    LP_LONG_PASSWORD_FILE,
    { "timeout", 't', LP_DURATION(OPT, timeout), "DUR",
      "give up on Redis after DUR (10s)" },
    { "prom", 0, LP_FLAG(OPT, prom), NULL, "Prometheus text format" },
    { "check", 0, LP_FLAG(OPT, check), NULL,
      "exit 1 when a threshold below is crossed" },
    { "max-lag", 0, LP_UINT(OPT, max_lag), "N",
      "entries not yet delivered to a group", LP_GIVEN(OPT, has_lag) },
    { "max-pending", 0, LP_UINT(OPT, max_pending), "N",
      "entries delivered, not acknowledged", LP_GIVEN(OPT, has_pending) },
    { "max-pending-age", 0, LP_DURATION(OPT, max_pending_age), "DUR",
      "age of the oldest pending entry", LP_GIVEN(OPT, has_age) },
    { "max-dlq", 0, LP_UINT(OPT, max_dlq), "N", "entries in the DLQ",
      LP_GIVEN(OPT, has_dlq) },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

/* measuring a tree and narrowing the check are asked for on the command
 * line: LOGPIPE_DIR and LOGPIPE_GROUP, set for the other tools, do not
 * turn them on */
static const struct tool_note notes[] = {
    { "group", "the group --check looks at (every group)", TOOL_NOENV },
    { "dir", "also the size of this archive tree", TOOL_NOENV },
    { "metrics", "also write the Prometheus text to FILE", 0 },
    { "metrics-interval", "(accepted for uniformity; stat runs once)", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-stat",
    .synopsis =
"usage: logpipe-stat [options]\n"
"The state of the pipeline: stream length, each group's consumers,\n"
"pending entries, lag and oldest pending age, DLQ length, WAL and archive\n"
"sizes. One NDJSON object, or Prometheus text with --prom.\n"
"\n",
    .epilog =
"Exit: 0 ok, 1 a --check threshold crossed, 64 usage, 69 Redis\n"
"unreachable (the WAL and archive sizes are printed all the same), 70\n"
"internal error, 73 --metrics file not written, 74 output error, 78 bad\n"
"configuration or permission refused.\n"
"See logpipe-stat(1).\n",
    .opts = longopts,
    .notes = notes,
};

/* beside each group: its oldest pending entry */
struct oldest {
    int64_t age_ms;                         /* -1: nothing pending */
    char id[LP_STREAM_IDLEN];
};

static struct {
    struct lp_redis *r;
    long long length;
    char first_id[LP_STREAM_IDLEN], last_id[LP_STREAM_IDLEN];
    struct lp_group_info *g;
    struct oldest *old;
    size_t ng;
    long long dlq;
    uint64_t wal_bytes, wal_segments;
    uint64_t dir_bytes, dir_files;
    int have_wal, have_dir;
    int64_t now;
    int redis_code;                 /* Redis failed: the exit status */
    char redis_err[LP_ERRLEN];      /* and why */
} S;

/* Redis failed: says why (the first failure only) and keeps the status. */
static void redis_failed(const char *why, int code)
{
    if (S.redis_code)
        return;
    lp_error("%s", why);
    snprintf(S.redis_err, sizeof S.redis_err, "%s", why);
    S.redis_code = code;
}

/* "XLEN logs:stream": a command and its key, for messages */
static const char *what(const char *cmd, const char *key)
{
    static char w[300];

    snprintf(w, sizeof w, "%s %s", cmd, key);
    return w;
}

/*
 * Did Redis answer rc = lp_stream_...(..., e)? Else it is marked as failed
 * (said once; 78 when no retry cures it, 69 when one may) and 0 returned.
 * An ERR, or an answer of no known shape, reads as nothing there: XINFO
 * GROUPS says ERR for a stream that does not exist, XRANGE for an
 * exclusive start before Redis 6.2. key: named in the message, or NULL.
 */
static int answered(int rc, const char *key, const struct lp_stream_err *e)
{
    char m[LP_ERRLEN];

    if (rc == 0 || e->code == LP_RERR_REQUEST || e->code == LP_STREAM_ESHAPE)
        return 1;
    if (e->code == LP_STREAM_ENOMEM) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    snprintf(m, sizeof m, "%s: %s", key ? what(e->cmd, key) : e->cmd,
             e->msg);
    redis_failed(m, e->code == LP_RERR_KEY || e->code == LP_RERR_COMMAND ?
                    LP_EX_CONFIG : LP_EX_UNAVAILABLE);
    return 0;
}

static void gather_redis(void)
{
    struct lp_stream_err e;
    const char *st = opt.com.stream;

    if (!answered(lp_stream_len(S.r, st, &S.length, &e), st, &e))
        return;
    if (S.length > 0 &&
        (!answered(lp_stream_first_id(S.r, st, S.first_id, &e), st, &e) ||
         !answered(lp_stream_last_id(S.r, st, S.last_id, &e), st, &e)))
        return;
    /* a stream that does not exist has no groups: XINFO says ERR */
    if (!answered(lp_stream_groups(S.r, st, &S.g, &S.ng, &e), st, &e))
        return;
    S.old = calloc(S.ng + 1, sizeof *S.old);
    if (S.old == NULL) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    for (size_t i = 0; i < S.ng; i++)
        S.old[i].age_ms = -1;
    for (size_t i = 0; i < S.ng; i++) {
        struct oldest *o = &S.old[i];
        uint64_t ms, seq;
        if (S.g[i].pending == 0)
            continue;
        if (!answered(lp_stream_pending_oldest(S.r, st, S.g[i].name,
                                               S.g[i].namelen, o->id, &e),
                      st, &e))
            return;
        if (lp_stream_id_parse(o->id, strlen(o->id), &ms, &seq) == 0)
            /* an ID ahead of this clock: pending, and new */
            o->age_ms = (int64_t)ms < S.now ? S.now - (int64_t)ms : 0;
    }
    answered(lp_stream_len(S.r, opt.com.dlq, &S.dlq, &e), opt.com.dlq, &e);
}

static void gather_files(void)
{
    char err[LP_ERRLEN];
    struct lp_tfile *v;
    size_t n;
    int fd;

    if (opt.wal) {
        if ((fd = lp_fs_root(opt.wal, 0, err)) < 0) {
            lp_warn("--wal %s", err);
        } else if (lp_tree_walk(fd, NULL, &v, &n, err) < 0) {
            lp_warn("--wal %s: %s", opt.wal, err);
        } else {
            S.have_wal = 1;
            for (size_t i = 0; i < n; i++)
                if (v[i].kind == LP_T_WAL) {
                    S.wal_bytes += v[i].size;
                    S.wal_segments++;
                }
            lp_tree_free(v, n);
        }
        if (fd >= 0)
            close(fd);
    }
    if (opt.com.dir_set) {
        if ((fd = lp_fs_root(opt.com.dir, 0, err)) < 0) {
            lp_warn("--dir %s", err);
        } else if (lp_tree_walk(fd, NULL, &v, &n, err) < 0) {
            lp_warn("--dir %s: %s", opt.com.dir, err);
        } else {
            S.have_dir = 1;
            for (size_t i = 0; i < n; i++)
                if (v[i].kind == LP_T_JSONL || v[i].kind == LP_T_GZ) {
                    S.dir_bytes += v[i].size;
                    S.dir_files++;
                }
            lp_tree_free(v, n);
        }
        if (fd >= 0)
            close(fd);
    }
}

static void jstr(struct lp_buf *b, const char *s)
{
    lp_buf_add_jstr(b, s, strlen(s));
}

static void jnum(struct lp_buf *b, long long v)
{
    char t[32];

    snprintf(t, sizeof t, "%lld", v);
    lp_buf_adds(b, t);
}

static char *render_json(void)
{
    struct lp_buf b = { 0 };
    char ts[40];

    lp_time_format(S.now, ts);
    lp_buf_adds(&b, "{\"time\":\"");
    lp_buf_adds(&b, ts);
    lp_buf_adds(&b, "\",\"stream\":");
    jstr(&b, opt.com.stream);
    if (S.redis_code) {
        /* nothing of Redis is known: rather null than a half picture */
        lp_buf_adds(&b, ",\"length\":null,\"groups\":null,"
                    "\"dlq\":{\"key\":");
        jstr(&b, opt.com.dlq);
        lp_buf_adds(&b, ",\"length\":null},\"redis_error\":");
        jstr(&b, S.redis_err);
        goto files;
    }
    lp_buf_adds(&b, ",\"length\":");
    jnum(&b, S.length);
    if (S.first_id[0]) {
        lp_buf_adds(&b, ",\"first_id\":");
        jstr(&b, S.first_id);
        lp_buf_adds(&b, ",\"last_id\":");
        jstr(&b, S.last_id);
    }
    lp_buf_adds(&b, ",\"groups\":[");
    for (size_t i = 0; i < S.ng; i++) {
        const struct lp_group_info *x = &S.g[i];
        const struct oldest *o = &S.old[i];
        if (i)
            lp_buf_addc(&b, ',');
        lp_buf_adds(&b, "{\"name\":");
        lp_buf_add_jstr(&b, x->name, x->namelen);
        lp_buf_adds(&b, ",\"consumers\":");
        jnum(&b, x->consumers);
        lp_buf_adds(&b, ",\"pending\":");
        jnum(&b, x->pending);
        lp_buf_adds(&b, ",\"lag\":");
        if (x->lag >= 0)
            jnum(&b, x->lag);
        else
            lp_buf_adds(&b, "null");
        lp_buf_adds(&b, ",\"last_delivered_id\":");
        jstr(&b, x->last_delivered);
        lp_buf_adds(&b, ",\"oldest_pending_id\":");
        if (o->id[0])
            jstr(&b, o->id);
        else
            lp_buf_adds(&b, "null");
        lp_buf_adds(&b, ",\"oldest_pending_age_seconds\":");
        if (o->age_ms >= 0) {
            char t[32];
            snprintf(t, sizeof t, "%.3f", (double)o->age_ms / 1000.0);
            lp_buf_adds(&b, t);
        } else {
            lp_buf_adds(&b, "null");
        }
        lp_buf_addc(&b, '}');
    }
    lp_buf_adds(&b, "],\"dlq\":{\"key\":");
    jstr(&b, opt.com.dlq);
    lp_buf_adds(&b, ",\"length\":");
    jnum(&b, S.dlq);
    lp_buf_addc(&b, '}');
files:
    if (S.have_wal) {
        lp_buf_adds(&b, ",\"wal\":{\"dir\":");
        jstr(&b, opt.wal);
        lp_buf_adds(&b, ",\"bytes\":");
        jnum(&b, (long long)S.wal_bytes);
        lp_buf_adds(&b, ",\"segments\":");
        jnum(&b, (long long)S.wal_segments);
        lp_buf_addc(&b, '}');
    }
    if (S.have_dir) {
        lp_buf_adds(&b, ",\"archive\":{\"dir\":");
        jstr(&b, opt.com.dir);
        lp_buf_adds(&b, ",\"bytes\":");
        jnum(&b, (long long)S.dir_bytes);
        lp_buf_adds(&b, ",\"files\":");
        jnum(&b, (long long)S.dir_files);
        lp_buf_addc(&b, '}');
    }
    lp_buf_adds(&b, "}\n");
    lp_buf_addc(&b, '\0');
    return b.p;
}

/*
 * Appends k="v" to b, v[0..n) escaped as the Prometheus text format asks
 * (backslash, quote, newline) and made valid UTF-8 (other bytes become
 * U+FFFD, as a label value must be UTF-8).
 */
static void lbl(struct lp_buf *b, const char *k, const char *v, size_t n)
{
    lp_buf_adds(b, k);
    lp_buf_adds(b, "=\"");
    for (size_t i = 0; i < n; ) {
        size_t l = lp_utf8_seq((const unsigned char *)v + i, n - i);
        if (l == 0 || v[i] == '\0') {
            lp_buf_adds(b, "\xef\xbf\xbd");
            i++;
            continue;
        }
        if (v[i] == '\\' || v[i] == '"')
            lp_buf_addc(b, '\\');
        if (v[i] == '\n')
            lp_buf_adds(b, "\\n");
        else
            lp_buf_add(b, v + i, l);
        i += l;
    }
    lp_buf_addc(b, '"');
    lp_buf_addc(b, '\0');
    b->len--;
}

static struct lp_metrics *to_metrics(void)
{
    struct lp_metrics *m = lp_metrics_new(&lp_log_notify);
    struct lp_buf s = { 0 }, both = { 0 };
    const char *st = opt.com.stream;

    if (S.redis_code)
        goto files;
    lbl(&s, "stream", st, strlen(st));
    lp_metric_set(lp_gauge(m, "logpipe_stream_length", s.p,
                           "Entries in the stream."), (double)S.length);
    for (size_t i = 0; i < S.ng; i++) {
        const struct lp_group_info *x = &S.g[i];
        const struct oldest *o = &S.old[i];
        both.len = 0;
        lbl(&both, "stream", st, strlen(st));
        lp_buf_addc(&both, ',');
        lbl(&both, "group", x->name, x->namelen);
        lp_metric_set(lp_gauge(m, "logpipe_group_consumers", both.p,
                               "Consumers of the group."),
                      (double)x->consumers);
        lp_metric_set(lp_gauge(m, "logpipe_group_pending", both.p,
                               "Entries delivered, not acknowledged."),
                      (double)x->pending);
        if (x->lag >= 0)
            lp_metric_set(lp_gauge(m, "logpipe_group_lag", both.p,
                                   "Entries not yet delivered to the group."),
                          (double)x->lag);
        lp_metric_set(lp_gauge(m, "logpipe_group_oldest_pending_age_seconds",
                               both.p, "Age of the oldest pending entry."),
                      o->age_ms >= 0 ?
                      (double)o->age_ms / 1000.0 : 0);
    }
    s.len = 0;
    lbl(&s, "key", opt.com.dlq, strlen(opt.com.dlq));
    lp_metric_set(lp_gauge(m, "logpipe_dlq_length", s.p,
                           "Entries in the dead letter stream."),
                  (double)S.dlq);
files:
    if (S.have_wal) {
        s.len = 0;
        lbl(&s, "dir", opt.wal, strlen(opt.wal));
        lp_metric_set(lp_gauge(m, "logpipe_wal_bytes", s.p,
                               "Bytes of logpipe-send WAL segments."),
                      (double)S.wal_bytes);
        lp_metric_set(lp_gauge(m, "logpipe_wal_segments", s.p,
                               "Segment files of the logpipe-send WAL."),
                      (double)S.wal_segments);
    }
    if (S.have_dir) {
        s.len = 0;
        lbl(&s, "dir", opt.com.dir, strlen(opt.com.dir));
        lp_metric_set(lp_gauge(m, "logpipe_archive_bytes", s.p,
                               "Bytes of the archive tree's day files."),
                      (double)S.dir_bytes);
        lp_metric_set(lp_gauge(m, "logpipe_archive_files", s.p,
                               "Day files of the archive tree."),
                      (double)S.dir_files);
    }
    lp_metric_set(lp_gauge(m, "logpipe_redis_up", "",
                           "1 when Redis answered every command, 0 when "
                           "not: its figures are then missing."),
                  S.redis_code ? 0 : 1);
    lp_metric_set(lp_gauge(m, "logpipe_stat_time_seconds", "",
                           "When this was measured (Unix time)."),
                  (double)S.now / 1000.0);
    lp_buf_free(&s);
    lp_buf_free(&both);
    if (m == NULL) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    return m;
}

/*
 * Redis cannot always say a group's lag (XINFO GROUPS gives null after an
 * XDEL of an entry it has not read yet): count the entries after its last
 * delivered one, in pages, but only up to limit + 1, which is all --check
 * needs to know. Returns the count (at most limit + 1).
 */
static uint64_t count_after(const char *last, uint64_t limit)
{
    char err[LP_ERRLEN], from[LP_STREAM_IDLEN];
    uint64_t n = 0;

    snprintf(from, sizeof from, "%s", last[0] ? last : "0-0");
    while (n <= limit) {
        uint64_t want = limit + 1 - n;
        struct lp_stream_err e;
        struct lp_page p;
        struct lp_entry en;
        size_t got;
        if (!answered(lp_stream_range(S.r, opt.com.stream, from, 1, NULL,
                                      want < 10000 ? want : 10000, &p, &e),
                      NULL, &e))
            break;
        got = p.n;
        from[0] = '\0';
        if (got > 0 && lp_entry_get(p.entries, got - 1, &en, err) == 0 &&
            en.idlen < sizeof from) {
            memcpy(from, en.id, en.idlen);
            from[en.idlen] = '\0';
        }
        lp_page_free(&p);
        n += got;
        if (from[0] == '\0')
            break;
    }
    return n;
}

/* Compares with the thresholds; says which were crossed. 1 if any. */
static int check(void)
{
    int crossed = 0, found = 0;

    for (size_t i = 0; i < S.ng; i++) {
        const struct lp_group_info *x = &S.g[i];
        const struct oldest *o = &S.old[i];
        if (opt.com.group_set && (x->namelen != strlen(opt.com.group) ||
                                  memcmp(x->name, opt.com.group,
                                         x->namelen) != 0))
            continue;
        found = 1;
        if (opt.has_lag && x->lag < 0) {
            uint64_t n = count_after(x->last_delivered, opt.max_lag);
            if (n > opt.max_lag) {
                lp_error("group %s: more than %" PRIu64 " entries after its "
                         "last delivered one %s, over --max-lag (Redis "
                         "gives no lag)", x->name, opt.max_lag,
                         x->last_delivered);
                crossed = 1;
            }
        } else if (opt.has_lag && (uint64_t)x->lag > opt.max_lag) {
            lp_error("group %s: lag %lld is over --max-lag %" PRIu64,
                     x->name, x->lag, opt.max_lag);
            crossed = 1;
        }
        if (opt.has_pending && (uint64_t)x->pending > opt.max_pending) {
            lp_error("group %s: %lld pending, over --max-pending %" PRIu64,
                     x->name, x->pending, opt.max_pending);
            crossed = 1;
        }
        if (opt.has_age && o->age_ms > opt.max_pending_age) {
            char d[32];
            lp_format_duration(opt.max_pending_age, d, sizeof d);
            lp_error("group %s: oldest pending entry %s is %.1fs old, over "
                     "--max-pending-age %s", x->name, o->id,
                     (double)o->age_ms / 1000.0, d);
            crossed = 1;
        }
    }
    if (opt.com.group_set && !found &&
        (opt.has_lag || opt.has_pending || opt.has_age)) {
        /* a drain that never started, or a typo: nothing is archived */
        lp_error("group %s: no such group on %s", opt.com.group,
                 opt.com.stream);
        crossed = 1;
    }
    if (opt.has_dlq && (uint64_t)S.dlq > opt.max_dlq) {
        lp_error("%s holds %lld %s, over --max-dlq %" PRIu64,
                 opt.com.dlq, S.dlq, S.dlq == 1 ? "entry" : "entries",
                 opt.max_dlq);
        crossed = 1;
    }
    return crossed;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN], *out;
    struct lp_metrics *m;
    int rc, code = LP_EX_OK;

    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    if (opt.check && !opt.has_lag && !opt.has_pending && !opt.has_age &&
        !opt.has_dlq)
        tool_opt_error(&cli, "--check needs a threshold (--max-lag, "
                       "--max-pending, --max-pending-age, --max-dlq)");
    lp_log_init("logpipe-stat", opt.com.log_format, opt.com.verbosity);
    /* one short run: SIGINT and SIGTERM end it as they do by default */
    signal(SIGPIPE, SIG_IGN);
    if ((S.r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    lp_redis_set_timeout(S.r, opt.timeout);
    S.now = lp_now_ms();
    if ((rc = lp_redis_connect(S.r, err)) < 0)
        redis_failed(err, rc == LP_REDIS_EAUTH ? LP_EX_CONFIG
                                              : LP_EX_UNAVAILABLE);
    else
        gather_redis();
    gather_files();
    m = to_metrics();
    /* the file first: a reader of stdout that goes away must not cost it */
    if (opt.com.metrics && lp_metrics_write(m, opt.com.metrics, err) < 0) {
        lp_error("%s", err);
        code = LP_EX_CANTCREAT;
    }
    out = opt.prom ? lp_metrics_render(m) : render_json();
    if (out == NULL || lp_fs_write_all(STDOUT_FILENO, out, strlen(out)) < 0) {
        if (out && errno == EPIPE)
            tool_sigpipe_exit();
        lp_error("stdout: %s", out ? strerror(errno) : "out of memory");
        code = LP_EX_IOERR;
    }
    if (opt.check && S.redis_code)
        lp_error("--check: nothing checked: Redis did not answer");
    else if (opt.check && check() && code == LP_EX_OK)
        code = LP_EX_CHECK;
    if (S.redis_code)
        code = S.redis_code;    /* count_after in check() may fail too */
    free(out);
    lp_metrics_free(m);
    lp_group_info_free(S.g, S.ng);
    free(S.old);
    lp_redis_free(S.r);
    return code;
}
