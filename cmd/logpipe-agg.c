/* logpipe-agg.c -- time-bucketed counts, sums and maxima from NDJSON */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
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
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "lp_time.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * Events are counted into groups: a bucket (floor of the event time by
 * --bucket, UTC) and the values of the --by members. A group lives in a
 * hash table keyed by (bucket, key bytes); the key bytes are kept in an
 * arena of the bucket's own, so closing a bucket gives back its memory in
 * one piece and a steady stream allocates nothing after warm-up.
 *
 * Time is the events' own: the watermark is the newest event time seen
 * minus --lateness, and a bucket is emitted (sorted by key, deterministic)
 * once the watermark reaches its end. An event for an emitted bucket is
 * late: dropped, counted, and the exit status is 65. At end of input every
 * open bucket is emitted. With --lateness end (a finite input, in any
 * order: replay's, file by file) buckets wait for the end of input, and
 * only --max-groups makes the oldest go before: an event older than the
 * end of the newest bucket emitted so is late.
 *
 * Output is NDJSON, or SQL (--sql) that sqlite3 and psql both apply as it
 * is: upserts of absolute values, so applying it twice changes nothing.
 */

#define MAX_BY 16               /* --by members */
#define MAX_AGG 8               /* --sum and --max members, each */
#define VALUE_MAX 1024          /* bytes of a group value kept */
#define SQL_ROWS 500            /* rows per INSERT statement */
#define OTHER "(other)"

struct agg_opt {
    struct lp_common com;
    int64_t bucket, lateness;
    int at_end;                 /* --lateness end */
    const char *time_field;
    const char *sql;
    struct lp_list by;          /* at most MAX_BY */
    struct lp_list sum, max;    /* at most MAX_AGG each */
    uint64_t threshold;
    uint64_t max_groups;
    uint64_t max_line;
};

static struct agg_opt opt = {
    .bucket = 60000,
    .time_field = "timestamp",
    .max_groups = 100000,
    .max_line = 1 << 20,
};

static int bucket_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err);
static int lateness_opt(const struct lp_optdef *o, void *base, char *arg,
                        char *err);
static int names_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err);
static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err);

#define OPT struct agg_opt
static const struct lp_optdef longopts[] = {
    { "bucket", 0, LP_CALL(OPT, bucket, bucket_opt), "DUR",
      "bucket length, whole seconds (1m)" },
    { "by", 0, LP_CALL(OPT, by, names_opt), "A,B,...",
      "group by these top-level members (at most 16)", .max = MAX_BY },
    { "sum", 0, LP_CALL(OPT, sum, names_opt), "M",
      "also the sum of numeric member M (sum_M)", .max = MAX_AGG },
    { "max", 0, LP_CALL(OPT, max, names_opt), "M",
      "also the maximum of numeric member M (max_M)", .max = MAX_AGG },
    { "lateness", 0, LP_CALL(OPT, lateness, lateness_opt), "DUR|end",
      "wait this long for late events (0); end: until\n"
      "the end of input (for logpipe-replay | agg)" },
    { "threshold", 0, LP_UINT(OPT, threshold), "N",
      "print only groups counted at least N times", .min = 1 },
    { "sql", 0, LP_CALL(OPT, sql, sql_opt), "TABLE",
      "SQL for sqlite3 and psql, not NDJSON" },
    { "max-groups", 0, LP_UINT(OPT, max_groups), "N",
      "open groups before new ones become \"(other)\"\n(100000)",
      .min = 1, .max = 100000000 },
    { "time-field", 0, LP_STR(OPT, time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest line accepted (1M)", .min = 2, .max = 1 << 30 },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "metrics", "write Prometheus metrics to FILE", 0 },
    { "metrics-interval", "rewrite them this often (15s)", 0 },
    { "verbose", "more messages: every bad line, a summary", 0 },
    { "quiet", "only errors; of bad lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-agg",
    .synopsis =
"usage: logpipe-agg [options] <NDJSON\n"
"Count events per time bucket and group (--by), with sums and maxima of\n"
"numeric members; print each bucket when it closes, as NDJSON or as SQL\n"
"upserts (--sql) for sqlite3 or psql.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 bad input lines or late events (the rest was\n"
"counted), 70 internal error, 74 output error.\n"
"See logpipe-agg(1).\n",
    .opts = longopts,
    .notes = notes,
    .stray = " (events are read from stdin)",
};

struct bucket {
    int64_t start;              /* ms since the epoch, UTC */
    struct lp_buf keys;         /* key bytes of its groups */
    uint32_t *gi;               /* its groups */
    size_t ng, gcap;
};

/*
 * A group's key: for each --by member, a tag ('n' null, 's' a value),
 * then for a value its length (2 bytes, little endian) and its bytes.
 */
struct group {
    struct bucket *b;
    uint64_t count;
    uint32_t koff, klen;
    uint64_t hash;
};

static struct {
    struct lp_jkeys keys;
    int time_idx, id_idx;
    int by_idx[MAX_BY], sum_idx[MAX_AGG], max_idx[MAX_AGG];
    struct lp_jlimits lim;
    struct lp_lines lines;
    struct lp_buf out, key, tmp;
    /* groups: a slab with a free list, and per group nagg doubles */
    struct group *g;
    double *agg;
    int nagg;
    uint32_t *freel;
    size_t gcap, nfree, nlive, gused;
    /* the hash table: group index + 1, 0 empty; linear probing */
    uint32_t *slot;
    size_t scap;
    uint64_t seed;
    /* open buckets, ascending start; closed ones wait in the pool */
    struct bucket **open, **pool;
    size_t nopen, opcap, npool, plcap;
    struct bucket *last;
    int64_t newest;             /* newest event time seen */
    int seen;
    int64_t closed;             /* --lateness end: the end of the newest */
    int early;                  /* bucket emitted before the end, if any */
    struct bucket *sorting;     /* for the qsort of a bucket's groups */
    int warned_fold, warned_cut, warned_early;
    int exit_code;
    /* counters */
    uint64_t n_ok, n_bad, n_late, n_folded, n_emitted, n_buckets;
    struct lp_metrics *m;
    struct lp_metric *m_ok, *m_bad, *m_late, *m_folded, *m_emitted,
                     *m_buckets, *m_open;
    /* per-line messages: a few said, the rest counted (lp_log.h) */
    struct lp_budget say_bad, say_late;
} S;

static void oom(void)
{
    lp_error("out of memory");
    exit(LP_EX_SOFTWARE);
}

/* ---- output ------------------------------------------------------------- */

static void flush_out(void)
{
    if (S.out.len == 0)
        return;
    if (lp_fs_write_all(STDOUT_FILENO, S.out.p, S.out.len) < 0) {
        if (errno == EPIPE)
            tool_sigpipe_exit();      /* the reader has what it wanted */
        lp_error("stdout: %s", strerror(errno));
        exit(LP_EX_IOERR);
    }
    S.out.len = 0;
}

static void out_add(const char *p, size_t n)
{
    if (lp_buf_add(&S.out, p, n) < 0)
        oom();
}

static void out_adds(const char *s)
{
    out_add(s, strlen(s));
}

/* A double as %.17g (exact), or null when it is not finite. */
static void out_num(double d, const char *null)
{
    char t[40];

    if (!isfinite(d)) {
        out_adds(null);
        return;
    }
    snprintf(t, sizeof t, "%.17g", d);
    out_adds(t);
}

static void out_u64(uint64_t v)
{
    if (lp_buf_addu(&S.out, v) < 0)
        oom();
}

/* An identifier, double-quoted: a member called user or order is a SQL
 * keyword; names are [A-Za-z_][A-Za-z0-9_]*, so nothing needs escaping. */
static void out_ident(const char *prefix, const char *name)
{
    out_adds("\"");
    out_adds(prefix);
    out_adds(name);
    out_adds("\"");
}

/* A SQL string literal that no value can break out of (lp_sql.h). */
static void out_sqlstr(const char *s, size_t n)
{
    if (lp_sql_add_str(&S.out, s, n) < 0)
        oom();
}

/* "2026-11-22T10:00:00Z" */
static void out_bucket(int64_t start, int quote)
{
    struct lp_tm tm;
    char t[40];

    lp_time_tm(start, &tm);
    snprintf(t, sizeof t, "%c%04d-%02d-%02dT%02d:%02d:%02dZ%c",
             quote, tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec,
             quote);
    out_adds(t);
}

/* The column list "bucket", "a", ..., "count", "sum_m", ..., "max_m" */
static void out_columns(int keys_only)
{
    out_ident("", "bucket");
    for (int i = 0; i < opt.by.n; i++) {
        out_adds(", ");
        out_ident("", opt.by.item[i]);
    }
    if (keys_only)
        return;
    out_adds(", ");
    out_ident("", "count");
    for (int i = 0; i < opt.sum.n; i++) {
        out_adds(", ");
        out_ident("sum_", opt.sum.item[i]);
    }
    for (int i = 0; i < opt.max.n; i++) {
        out_adds(", ");
        out_ident("max_", opt.max.item[i]);
    }
}

static void sql_create(void)
{
    out_adds("CREATE TABLE IF NOT EXISTS ");
    out_ident("", opt.sql);
    out_adds(" (\"bucket\" TEXT NOT NULL");
    for (int i = 0; i < opt.by.n; i++) {
        out_adds(", ");
        out_ident("", opt.by.item[i]);
        out_adds(" TEXT NOT NULL DEFAULT ''");
    }
    out_adds(", \"count\" BIGINT NOT NULL");
    for (int i = 0; i < opt.sum.n; i++) {
        out_adds(", ");
        out_ident("sum_", opt.sum.item[i]);
        out_adds(" DOUBLE PRECISION");
    }
    for (int i = 0; i < opt.max.n; i++) {
        out_adds(", ");
        out_ident("max_", opt.max.item[i]);
        out_adds(" DOUBLE PRECISION");
    }
    out_adds(", PRIMARY KEY (");
    out_columns(1);
    out_adds("));\n");
}

static void sql_insert_head(void)
{
    out_adds("INSERT INTO ");
    out_ident("", opt.sql);
    out_adds(" (");
    out_columns(0);
    out_adds(") VALUES\n");
}

static void sql_insert_tail(void)
{
    out_adds("\nON CONFLICT (");
    out_columns(1);
    out_adds(") DO UPDATE SET \"count\" = excluded.\"count\"");
    for (int i = 0; i < opt.sum.n; i++) {
        out_adds(", ");
        out_ident("sum_", opt.sum.item[i]);
        out_adds(" = excluded.");
        out_ident("sum_", opt.sum.item[i]);
    }
    for (int i = 0; i < opt.max.n; i++) {
        out_adds(", ");
        out_ident("max_", opt.max.item[i]);
        out_adds(" = excluded.");
        out_ident("max_", opt.max.item[i]);
    }
    out_adds(";\n");
}

/* Reads the next member of a key at *p: 1 with the value (v NULL for a
 * null), 0 at the end of the key. */
static int key_next(const unsigned char **p, const unsigned char *end,
                    const char **v, size_t *n)
{
    if (*p >= end)
        return 0;
    if (*(*p)++ == 'n') {
        *v = NULL;
        *n = 0;
        return 1;
    }
    *n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    *v = (const char *)*p + 2;
    *p += 2 + *n;
    return 1;
}

/* One group as an NDJSON line or a row of VALUES. */
static void out_group(const struct group *g, uint32_t gi)
{
    const unsigned char *p = (const unsigned char *)g->b->keys.p + g->koff;
    const unsigned char *end = p + g->klen;
    const double *a = S.agg + (size_t)gi * (size_t)S.nagg;
    const char *v;
    size_t n;
    int i = 0;

    if (opt.sql) {
        out_adds("(");
        out_bucket(g->b->start, '\'');
        while (key_next(&p, end, &v, &n)) {
            out_adds(", ");
            out_sqlstr(v ? v : "", n);
        }
        out_adds(", ");
        out_u64(g->count);
        for (i = 0; i < S.nagg; i++) {
            out_adds(", ");
            out_num(a[i], "NULL");
        }
        out_adds(")");
        return;
    }
    out_adds("{\"bucket\":");
    out_bucket(g->b->start, '"');
    while (key_next(&p, end, &v, &n)) {
        out_adds(",\"");
        out_adds(opt.by.item[i++]);
        out_adds("\":");
        if (v == NULL)
            out_adds("null");
        else if (lp_buf_add_jstr(&S.out, v, n) < 0)
            oom();
    }
    out_adds(",\"count\":");
    out_u64(g->count);
    for (i = 0; i < S.nagg; i++) {
        out_adds(i < opt.sum.n ? ",\"sum_" : ",\"max_");
        out_adds(i < opt.sum.n ? opt.sum.item[i] : opt.max.item[i - opt.sum.n]);
        out_adds("\":");
        out_num(a[i], "null");
    }
    out_adds("}\n");
}

/* ---- groups ------------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Seeded, so that input cannot be made to collide on purpose. */
static uint64_t hash_key(int64_t bucket, const unsigned char *p, size_t n)
{
    uint64_t h = mix(S.seed ^ (uint64_t)bucket) ^ n;

    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h ^ w);
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = mix(h ^ w ^ ((uint64_t)n << 56));
    }
    return h;
}

static size_t home(uint64_t h)
{
    return (size_t)h & (S.scap - 1);
}

static void hash_put(uint32_t gi)
{
    size_t i = home(S.g[gi].hash);

    while (S.slot[i])
        i = (i + 1) & (S.scap - 1);
    S.slot[i] = gi + 1;
}

/* Keeps the table at most half full. */
static void hash_grow(void)
{
    size_t cap = S.scap ? S.scap * 2 : 1024;
    uint32_t *old = S.slot;
    size_t ocap = S.scap;

    if ((S.slot = calloc(cap, sizeof *S.slot)) == NULL)
        oom();
    S.scap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            hash_put(old[i] - 1);
    free(old);
}

/* Removes group gi, shifting back the entries after it (no tombstones). */
static void hash_del(uint32_t gi)
{
    size_t mask = S.scap - 1, i = home(S.g[gi].hash), j;

    while (S.slot[i] != gi + 1)
        i = (i + 1) & mask;
    for (j = (i + 1) & mask; S.slot[j]; j = (j + 1) & mask) {
        size_t k = home(S.g[S.slot[j] - 1].hash);
        /* may the entry at j move to i? (is i on its way from k to j) */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            S.slot[i] = S.slot[j];
            i = j;
        }
    }
    S.slot[i] = 0;
}

/* The group of (bucket, key), or -1. */
static long find_group(int64_t bucket, const char *key, size_t klen,
                       uint64_t h)
{
    size_t i;

    if (S.scap == 0)
        return -1;
    for (i = home(h); S.slot[i]; i = (i + 1) & (S.scap - 1)) {
        const struct group *g = &S.g[S.slot[i] - 1];
        if (g->hash == h && g->b->start == bucket && g->klen == klen &&
            memcmp(g->b->keys.p + g->koff, key, klen) == 0)
            return (long)S.slot[i] - 1;
    }
    return -1;
}

/* The open bucket that starts at start, made when there is none. */
static struct bucket *get_bucket(int64_t start)
{
    size_t lo = 0, hi = S.nopen;
    struct bucket *b;

    if (S.last && S.last->start == start)
        return S.last;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (S.open[mid]->start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < S.nopen && S.open[lo]->start == start)
        return S.last = S.open[lo];
    if (S.npool > 0) {
        b = S.pool[--S.npool];
    } else if ((b = calloc(1, sizeof *b)) == NULL ||
               lp_buf_reserve(&b->keys, 256) < 0) {
        oom();
    }
    b->start = start;
    if (S.nopen == S.opcap) {
        size_t cap = S.opcap ? S.opcap * 2 : 16;
        struct bucket **p = realloc(S.open, cap * sizeof *p);
        if (p == NULL)
            oom();
        S.open = p;
        S.opcap = cap;
    }
    memmove(S.open + lo + 1, S.open + lo, (S.nopen - lo) * sizeof *S.open);
    S.open[lo] = b;
    S.nopen++;
    return S.last = b;
}

/* A new group of b with the key; returns its index. */
static uint32_t new_group(struct bucket *b, const char *key, size_t klen,
                          uint64_t h)
{
    uint32_t gi;
    struct group *g;

    if ((S.nlive + 1) * 2 > S.scap)
        hash_grow();
    if (S.nfree > 0) {
        gi = S.freel[--S.nfree];
    } else {
        if (S.gused == S.gcap) {
            size_t cap = S.gcap ? S.gcap * 2 : 256;
            struct group *ng = realloc(S.g, cap * sizeof *ng);
            double *na;
            if (ng == NULL)
                oom();
            S.g = ng;
            na = realloc(S.agg, cap * (size_t)(S.nagg ? S.nagg : 1) *
                         sizeof *na);
            if (na == NULL)
                oom();
            S.agg = na;
            if ((S.freel = realloc(S.freel, cap * sizeof *S.freel)) == NULL)
                oom();
            S.gcap = cap;
        }
        gi = (uint32_t)S.gused++;
    }
    if (b->ng == b->gcap) {
        size_t cap = b->gcap ? b->gcap * 2 : 16;
        uint32_t *p = realloc(b->gi, cap * sizeof *p);
        if (p == NULL)
            oom();
        b->gi = p;
        b->gcap = cap;
    }
    g = &S.g[gi];
    g->b = b;
    g->count = 0;
    g->koff = (uint32_t)b->keys.len;
    g->klen = (uint32_t)klen;
    g->hash = h;
    if (lp_buf_add(&b->keys, key, klen) < 0)
        oom();
    for (int i = 0; i < S.nagg; i++)
        S.agg[(size_t)gi * (size_t)S.nagg + (size_t)i] =
            i < opt.sum.n ? 0 : NAN;     /* a max of no value: null */
    b->gi[b->ng++] = gi;
    S.nlive++;
    hash_put(gi);
    return gi;
}

/* Orders a bucket's groups by their by-values (null first, then bytes). */
static int group_cmp(const void *x, const void *y)
{
    const struct group *a = &S.g[*(const uint32_t *)x];
    const struct group *b = &S.g[*(const uint32_t *)y];
    const unsigned char *pa = (const unsigned char *)S.sorting->keys.p +
                              a->koff, *ea = pa + a->klen;
    const unsigned char *pb = (const unsigned char *)S.sorting->keys.p +
                              b->koff, *eb = pb + b->klen;
    const char *va, *vb;
    size_t na, nb;

    while (key_next(&pa, ea, &va, &na) && key_next(&pb, eb, &vb, &nb)) {
        int c;
        if (va == NULL || vb == NULL) {
            if (va != vb)
                return va == NULL ? -1 : 1;
            continue;
        }
        c = memcmp(va, vb, na < nb ? na : nb);
        if (c == 0 && na != nb)
            c = na < nb ? -1 : 1;
        if (c)
            return c;
    }
    return 0;
}

/* Emits bucket b (its groups at or above --threshold) and frees it. */
static void emit_bucket(struct bucket *b)
{
    size_t rows = 0;

    S.sorting = b;
    if (b->ng > 1)
        qsort(b->gi, b->ng, sizeof *b->gi, group_cmp);
    for (size_t i = 0; i < b->ng; i++) {
        uint32_t gi = b->gi[i];
        struct group *g = &S.g[gi];
        if (g->count >= opt.threshold) {
            if (opt.sql) {
                if (rows == 0)
                    out_adds("BEGIN;\n");
                if (rows % SQL_ROWS == 0) {
                    if (rows)
                        sql_insert_tail();
                    sql_insert_head();
                } else {
                    out_adds(",\n");
                }
            }
            out_group(g, gi);
            rows++;
            S.n_emitted++;
            if (S.out.len >= 1 << 20)
                flush_out();
        }
        hash_del(gi);
        S.freel[S.nfree++] = gi;
        S.nlive--;
    }
    if (opt.sql && rows) {
        sql_insert_tail();
        out_adds("COMMIT;\n");
    }
    if (rows)
        S.n_buckets++;
    b->ng = 0;
    b->keys.len = 0;
    if (S.last == b)
        S.last = NULL;
    if (S.npool == S.plcap) {
        size_t cap = S.plcap ? S.plcap * 2 : 16;
        struct bucket **p = realloc(S.pool, cap * sizeof *p);
        if (p == NULL)
            oom();
        S.pool = p;
        S.plcap = cap;
    }
    S.pool[S.npool++] = b;
    /* each bucket at once: an alert must not wait for the next one */
    if (rows)
        flush_out();
}

/* Emits the open buckets that end at or before wm (all: INT64_MAX). */
static void close_until(int64_t wm)
{
    size_t n = 0;

    while (n < S.nopen && (wm == INT64_MAX ||
                           S.open[n]->start + opt.bucket <= wm))
        emit_bucket(S.open[n++]);
    if (n) {
        memmove(S.open, S.open + n, (S.nopen - n) * sizeof *S.open);
        S.nopen -= n;
    }
}

/* ---- one event ---------------------------------------------------------- */

static void bad_line(uint64_t lineno, const char *label, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

static void bad_line(uint64_t lineno, const char *label, const char *fmt,
                     ...)
{
    char msg[LP_ERRLEN];
    va_list ap;

    S.n_bad++;
    S.exit_code = LP_EX_DATAERR;
    if (!lp_budget_take(&S.say_bad))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lp_error("line %" PRIu64 ": %s%s%s", lineno, label ? label : "",
             label ? ": " : "", msg);
}

/* Appends the value v of a --by member to the key. */
static void key_add(const char *s, const struct lp_jval *v, uint64_t lineno)
{
    const char *p;
    size_t n;
    unsigned char len[2];

    if (v->type == LP_JNONE || v->type == LP_JNULL) {
        if (opt.sql) {
            /* '' in the table: the same group as "" */
            if (lp_buf_add(&S.key, "s\0\0", 3) < 0)
                oom();
            return;
        }
        if (lp_buf_addc(&S.key, 'n') < 0)
            oom();
        return;
    }
    if (v->type == LP_JSTRING && v->esc) {
        long got;
        S.tmp.len = 0;
        if (lp_buf_reserve(&S.tmp, v->len) < 0)
            oom();
        got = lp_json_unescape(s, v, S.tmp.p, S.tmp.cap);
        if (got < 0)
            got = 0;            /* cannot happen: decoding shrinks */
        p = S.tmp.p;
        n = (size_t)got;
        if (opt.sql && memchr(p, '\0', n)) {
            /* a NUL is U+FFFD in the table: group as it will be stored.
             * The bytes move to the last third and expand from the start,
             * never past what is still to be read. */
            size_t o = 0;
            if (lp_buf_reserve(&S.tmp, n * 3) < 0)
                oom();
            p = S.tmp.p;
            memmove(S.tmp.p + n * 2, S.tmp.p, n);
            for (size_t i = n * 2; i < n * 3; i++) {
                if (S.tmp.p[i] == '\0') {
                    memcpy(S.tmp.p + o, "\xef\xbf\xbd", 3);
                    o += 3;
                } else {
                    S.tmp.p[o++] = S.tmp.p[i];
                }
            }
            n = o;
        }
    } else if (v->type == LP_JSTRING) {
        p = s + v->off + 1;
        n = v->len - 2;
    } else {
        p = s + v->off;         /* a number, true, false, object, array */
        n = v->len;
    }
    if (n > VALUE_MAX) {
        /* cut on a character boundary (the input is valid UTF-8) */
        n = VALUE_MAX;
        while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
            n--;
        if (!S.warned_cut) {
            lp_warn("line %" PRIu64 ": a --by value longer than %d bytes "
                    "is cut to that (said once)", lineno, VALUE_MAX);
            S.warned_cut = 1;
        }
    }
    len[0] = (unsigned char)(n & 0xff);
    len[1] = (unsigned char)(n >> 8);
    if (lp_buf_addc(&S.key, 's') < 0 || lp_buf_add(&S.key, len, 2) < 0 ||
        lp_buf_add(&S.key, p, n) < 0)
        oom();
}

/* A number member as a double; 0 when it is not a finite number. */
static int num_value(const char *s, const struct lp_jval *v, double *d)
{
    return v->type == LP_JNUMBER && lp_json_number(s, v, d) == 0;
}

/* Is an event of the bucket that starts at start late, that bucket (or a
 * later one) printed already? */
static int is_late(int64_t start)
{
    if (opt.at_end)
        return S.early && start < S.closed;
    return S.seen && start + opt.bucket <= S.newest - opt.lateness;
}

/* Drops a late event: said, counted, and the status is 65 (main). */
static void late(int64_t t, uint64_t lineno, const char *label)
{
    char ts[40];

    S.n_late++;
    if (!lp_budget_take(&S.say_late))
        return;
    lp_time_format(t, ts);
    lp_warn("line %" PRIu64 ": %s%sevent time %s is late: its bucket "
            "was emitted; dropped", lineno, label ? label : "",
            label ? ": " : "", ts);
}

/*
 * --lateness end, --max-groups groups open and a new one wanted: the
 * oldest buckets but that of start are emitted until there is room. Their
 * events from now on are late, as are those of any bucket before them.
 */
static void make_room(int64_t start, uint64_t lineno)
{
    size_t n = 0;

    while (S.nlive >= opt.max_groups && n < S.nopen &&
           S.open[n]->start != start) {
        S.closed = S.open[n]->start + opt.bucket;
        S.early = 1;
        emit_bucket(S.open[n++]);
    }
    if (n == 0)
        return;
    memmove(S.open, S.open + n, (S.nopen - n) * sizeof *S.open);
    S.nopen -= n;
    if (!S.warned_early) {
        char ts[40];
        lp_time_format(S.closed, ts);
        lp_warn("line %" PRIu64 ": more than --max-groups %" PRIu64
                " groups open: the buckets before %s are printed before "
                "the end of the input, and their events from here on are "
                "late (said once; give input in time order, such as "
                "logpipe-replay --sort's, or a larger --max-groups)",
                lineno, opt.max_groups, ts);
        S.warned_early = 1;
    }
}

/* One event, s[0..n) an object (or not: then it is a bad line). */
static void one_event(const char *s, size_t n, uint64_t lineno,
                      const char *label)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN];
    int64_t t = 0, start;
    int rc = 0;
    long gi;
    uint64_t h;
    struct bucket *b;

    if (lp_json_event(s, n, &S.keys, &S.lim, &ev, &je) < 0) {
        if (je.not_object)
            bad_line(lineno, label, "not a JSON object");
        else
            bad_line(lineno, label, "invalid JSON: %s", je.msg);
        return;
    }
    if (S.time_idx >= 0 &&
        (rc = lp_event_time(s, &ev.val[S.time_idx], &t, err)) < 0) {
        bad_line(lineno, label, "%s", err);
        return;
    }
    if (rc == 0) {
        /* no time member: the time of its stream entry (SPEC 2) */
        const struct lp_jval *v = &ev.val[S.id_idx];
        uint64_t ms, seq;
        if (v->type != LP_JSTRING || v->esc ||
            lp_stream_id_parse(s + v->off + 1, v->len - 2, &ms, &seq) < 0 ||
            ms > (uint64_t)LP_TIME_MAX) {
            if (S.time_idx >= 0)
                bad_line(lineno, label, "no time member \"%s\" (nor a "
                         "stream ID in _id)", opt.time_field);
            else
                bad_line(lineno, label, "no stream ID in _id to take the "
                         "time from");
            return;
        }
        t = (int64_t)ms;
    }
    start = lp_floor_div(t, opt.bucket) * opt.bucket;
    if (is_late(start)) {
        late(t, lineno, label);
        return;
    }
    if (!opt.at_end && (!S.seen || t > S.newest)) {
        /* first the buckets this event closes (never its own), so that
         * their groups no longer count against --max-groups */
        S.newest = t;
        S.seen = 1;
        close_until(t - opt.lateness);
    }

    S.key.len = 0;
    for (int i = 0; i < opt.by.n; i++)
        key_add(s, &ev.val[S.by_idx[i]], lineno);
    h = hash_key(start, (const unsigned char *)S.key.p, S.key.len);
    gi = find_group(start, S.key.p, S.key.len, h);
    if (gi < 0) {
        if (opt.at_end && S.nlive >= opt.max_groups) {
            make_room(start, lineno);
            if (is_late(start)) {
                late(t, lineno, label);
                return;
            }
        }
        b = get_bucket(start);
        if (S.nlive >= opt.max_groups) {
            /* full: the bucket's new groups share one */
            char ts[40];
            S.key.len = 0;
            for (int i = 0; i < opt.by.n; i++)
                if (lp_buf_add(&S.key, "s\x07\x00" OTHER, 3 + 7) < 0)
                    oom();
            h = hash_key(start, (const unsigned char *)S.key.p, S.key.len);
            gi = find_group(start, S.key.p, S.key.len, h);
            S.n_folded++;
            if (!S.warned_fold) {
                lp_time_format(start, ts);
                lp_warn("line %" PRIu64 ": more than --max-groups %" PRIu64
                        " groups open: new groups are counted as \""
                        OTHER "\" (bucket %s; said once)", lineno,
                        opt.max_groups, ts);
                S.warned_fold = 1;
            }
        }
        if (gi < 0)
            gi = new_group(b, S.key.p, S.key.len, h);
    }
    S.g[gi].count++;
    S.n_ok++;
    if (S.nagg) {
        double *a = S.agg + (size_t)gi * (size_t)S.nagg, d;
        for (int i = 0; i < opt.sum.n; i++)
            if (num_value(s, &ev.val[S.sum_idx[i]], &d))
                a[i] += d;
        for (int i = 0; i < opt.max.n; i++)
            if (num_value(s, &ev.val[S.max_idx[i]], &d) &&
                (isnan(a[opt.sum.n + i]) || d > a[opt.sum.n + i]))
                a[opt.sum.n + i] = d;
    }
}

/* One line: an event, or an array of events (SPEC 2). */
static void one_line(const char *s, size_t n, uint64_t lineno)
{
    struct lp_jerr je;
    size_t pos = 0, off, len;
    int type, k = 0;

    lp_json_trim(&s, &n);
    if (n == 0)
        return;
    if (*s != '[') {
        one_event(s, n, lineno, NULL);
        return;
    }
    if (lp_json_valid(s, n, &S.lim, &je) < 0) {
        bad_line(lineno, NULL, "invalid JSON: %s", je.msg);
        return;
    }
    while (lp_json_array_next(s, n, &pos, &off, &len, &type)) {
        char label[48];
        snprintf(label, sizeof label, "element %d", ++k);
        one_event(s + off, len, lineno, label);
    }
}

/* ---- metrics ------------------------------------------------------------ */

static void metrics_init(void)
{
    struct lp_metrics *m;
    const char *ev = "logpipe_agg_events_total";

    if (opt.com.metrics == NULL)
        return;
    if ((S.m = m = lp_metrics_new(&lp_log_notify)) == NULL)
        oom();
    S.m_ok = lp_counter(m, ev, "result=\"ok\"",
                        "Events read, by what became of them.");
    S.m_bad = lp_counter(m, ev, "result=\"bad\"", "");
    S.m_late = lp_counter(m, ev, "result=\"late\"", "");
    S.m_folded = lp_counter(m, "logpipe_agg_events_folded_total", "",
                            "Events counted as \"(other)\" past "
                            "--max-groups.");
    S.m_emitted = lp_counter(m, "logpipe_agg_groups_emitted_total", "",
                             "Groups printed (bucket and key).");
    S.m_buckets = lp_counter(m, "logpipe_agg_buckets_emitted_total", "",
                             "Buckets printed (with at least one group).");
    S.m_open = lp_gauge(m, "logpipe_agg_groups_open", "",
                        "Groups of buckets not yet closed.");
}

static void metrics_tick(int force)
{
    if (S.m == NULL)
        return;
    lp_metric_set(S.m_ok, (double)S.n_ok);
    lp_metric_set(S.m_bad, (double)S.n_bad);
    lp_metric_set(S.m_late, (double)S.n_late);
    lp_metric_set(S.m_folded, (double)S.n_folded);
    lp_metric_set(S.m_emitted, (double)S.n_emitted);
    lp_metric_set(S.m_buckets, (double)S.n_buckets);
    lp_metric_set(S.m_open, (double)S.nlive);
    lp_metrics_tick(S.m, opt.com.metrics, opt.com.metrics_interval, force);
}

static void metrics_at_exit(void)
{
    if (S.m == NULL)
        return;
    metrics_tick(1);
    lp_metrics_free(S.m);
    S.m = NULL;
}

/* ---- the loop ----------------------------------------------------------- */

/* Waits for input, at most until the metrics or the line saying what
 * per-line messages were held back are due. */
static void wait_input(void)
{
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };

    while (!lp_stop) {
        int64_t t = -1, due = lp_log_due();
        if (S.m)
            t = opt.com.metrics_interval < 1000 ? opt.com.metrics_interval
                                                : 1000;
        if (due >= 0 && (t < 0 || due < t))
            t = due;
        if (t < 0 || poll(&p, 1, (int)t) != 0)
            return;             /* read(2) blocks */
        metrics_tick(0);
        lp_log_tick();
    }
}

static void run(void)
{
    struct lp_line ln;
    uint64_t since_tick = 0;

    for (;;) {
        int rc = lp_lines_next(&S.lines, &ln);
        if (rc == LP_LINE_OK) {
            one_line(ln.p, ln.len, ln.lineno);
            if (++since_tick >= 4096) {
                metrics_tick(0);
                lp_log_tick();
                since_tick = 0;
            }
            continue;
        }
        if (rc == LP_LINE_LONG) {
            if (ln.first)
                bad_line(ln.lineno, NULL, "longer than --max-line (%" PRIu64
                         " bytes)", opt.max_line);
            continue;
        }
        if (rc == LP_LINE_EOF || lp_stop)
            return;
        wait_input();
        if (lp_stop)
            return;
        long got = lp_lines_fill(&S.lines);
        if (got < 0 && errno != EINTR && errno != EAGAIN) {
            lp_error("stdin: %s", strerror(errno));
            S.exit_code = LP_EX_IOERR;
            return;
        }
    }
}

/* ---- options ------------------------------------------------------------ */

static int is_ident(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* --by, --sum, --max: the comma-separated names of arg join the list
 * (at most o->max) */
static int names_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err)
{
    struct lp_list *l = (struct lp_list *)((char *)base + o->off);
    char *item[MAX_BY + 1];
    int k = lp_parse_list(arg, item, MAX_BY + 1, err);

    if (k < 0)
        return -1;
    for (int i = 0; i < k; i++) {
        if (!is_ident(item[i]) || strlen(item[i]) > 59) {
            snprintf(err, LP_ERRLEN, "'%s' is not a name of letters, digits "
                     "and _ (not starting with a digit, at most 59)",
                     item[i]);
            return -1;
        }
        for (int j = 0; j < l->n; j++)
            if (strcmp(l->item[j], item[i]) == 0) {
                snprintf(err, LP_ERRLEN, "'%s' is given twice", item[i]);
                return -1;
            }
        if (l->n >= o->max) {
            snprintf(err, LP_ERRLEN, "at most %d members", (int)o->max);
            return -1;
        }
        l->item[l->n++] = item[i];
    }
    return 0;
}

static int bucket_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err)
{
    struct agg_opt *a = base;

    (void)o;
    if (lp_parse_duration(arg, "s", &a->bucket, err) < 0)
        return -1;
    if (a->bucket < 1000 || a->bucket % 1000) {
        snprintf(err, LP_ERRLEN, "'%s' is not a whole number of seconds "
                 "(1s or more)", arg);
        return -1;
    }
    return 0;
}

static int lateness_opt(const struct lp_optdef *o, void *base, char *arg,
                        char *err)
{
    struct agg_opt *a = base;

    (void)o;
    a->at_end = strcmp(arg, "end") == 0;
    if (!a->at_end && lp_parse_duration(arg, "s", &a->lateness, err) < 0) {
        snprintf(err, LP_ERRLEN, "'%s' is not a duration (like 30s, 5m) "
                 "nor end", arg);
        return -1;
    }
    return 0;
}

static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err)
{
    (void)o;
    if (!is_ident(arg) || strlen(arg) > 63) {
        snprintf(err, LP_ERRLEN, "'%s' is not a table name of letters, "
                 "digits and _ (not starting with a digit, at most 63)", arg);
        return -1;
    }
    ((struct agg_opt *)base)->sql = arg;
    return 0;
}

/* Every output column (member) name once: "bucket", the --by names,
 * "count", sum_M, max_M. */
static void check_columns(void)
{
    char names[2 + MAX_BY + 2 * MAX_AGG][64];
    int n = 0;

    snprintf(names[n++], 64, "bucket");
    snprintf(names[n++], 64, "count");
    for (int i = 0; i < opt.by.n; i++)
        snprintf(names[n++], 64, "%s", opt.by.item[i]);
    for (int i = 0; i < opt.sum.n; i++)
        snprintf(names[n++], 64, "sum_%s", opt.sum.item[i]);
    for (int i = 0; i < opt.max.n; i++)
        snprintf(names[n++], 64, "max_%s", opt.max.item[i]);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) == 0) {
                tool_opt_error(&cli, "the output would have two members "
                               "(columns) named '%s'", names[i]);
            }
}

/* The members the scan must find. */
static void want_members(void)
{
    int ok = 1;

    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    S.id_idx = lp_jkeys_add(&S.keys, "_id");
    ok = S.id_idx >= 0;
    for (int i = 0; i < opt.by.n; i++)
        ok &= (S.by_idx[i] = lp_jkeys_add(&S.keys, opt.by.item[i])) >= 0;
    for (int i = 0; i < opt.sum.n; i++)
        ok &= (S.sum_idx[i] = lp_jkeys_add(&S.keys, opt.sum.item[i])) >= 0;
    for (int i = 0; i < opt.max.n; i++)
        ok &= (S.max_idx[i] = lp_jkeys_add(&S.keys, opt.max.item[i])) >= 0;
    if (!ok)
        tool_opt_error(&cli, "too many members asked for (--by, --sum, "
                       "--max: %d distinct at most)", LP_JSON_MAXKEYS - 2);
}

int main(int argc, char **argv)
{
    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    check_columns();
    lp_log_init("logpipe-agg", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&S.say_bad, LP_LEVEL_ERROR, "bad events");
    lp_budget_init(&S.say_late, LP_LEVEL_WARN, "late events");
    lp_sig_init(0);
    metrics_init();
    tool_at_exit(metrics_at_exit);
    want_members();
    S.nagg = opt.sum.n + opt.max.n;
    /* archived events passed the ingest limits already: take them */
    S.lim.depth = 10000;
    S.seed = mix((uint64_t)lp_now_ms() ^ ((uint64_t)getpid() << 32));
    if (opt.threshold == 0)
        opt.threshold = 1;
    /* never a NULL buffer, even for an empty key (no --by) */
    if (lp_buf_reserve(&S.key, 256) < 0)
        oom();
    if (lp_lines_init(&S.lines, STDIN_FILENO, opt.max_line) < 0)
        oom();
    if (opt.sql) {
        sql_create();
        flush_out();
    }
    metrics_tick(1);

    run();
    close_until(INT64_MAX);
    flush_out();
    lp_log_end();
    if (S.n_late) {
        /* events not counted: never a success */
        lp_error("%" PRIu64 " late event%s dropped, not counted: %s",
                 S.n_late, S.n_late == 1 ? "" : "s", opt.at_end ?
                 "their buckets were printed before the end of the input, "
                 "to stay within --max-groups" :
                 "their buckets were printed already (see --lateness; "
                 "for a finite input, such as logpipe-replay's, give "
                 "--lateness end)");
        if (S.exit_code == 0)
            S.exit_code = LP_EX_DATAERR;
    }
    if (S.n_bad)
        lp_error("%" PRIu64 " bad %s in %" PRIu64 " %s", S.n_bad,
                 S.n_bad == 1 ? "event" : "events", S.lines.lineno,
                 S.lines.lineno == 1 ? "line" : "lines");

    {
        char kv[256];
        snprintf(kv, sizeof kv, "events=%" PRIu64 " bad=%" PRIu64
                 " late=%" PRIu64 " folded=%" PRIu64 " groups=%" PRIu64
                 " buckets=%" PRIu64, S.n_ok, S.n_bad, S.n_late, S.n_folded,
                 S.n_emitted, S.n_buckets);
        lp_trace("done", kv);
    }
    lp_lines_free(&S.lines);
    for (size_t i = 0; i < S.npool; i++) {
        lp_buf_free(&S.pool[i]->keys);
        free(S.pool[i]->gi);
        free(S.pool[i]);
    }
    free(S.pool);
    free(S.open);
    free(S.g);
    free(S.agg);
    free(S.freel);
    free(S.slot);
    lp_buf_free(&S.out);
    lp_buf_free(&S.key);
    lp_buf_free(&S.tmp);
    return S.exit_code;
}
