/* lp_agg.c -- the agg engine: events counted per time bucket and group */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_agg.h"
#include "lp_agg_out.h"
#include "lp_buf.h"
#include "lp_event.h"
#include "lp_json.h"
#include "lp_metrics.h"
#include "lp_notice.h"          /* LP_NOTICELEN */
#include "lp_parse.h"           /* LP_ERRLEN */
#include "lp_redis.h"           /* lp_stream_id_parse */
#include "lp_time.h"

#define VALUE_MAX 1024          /* bytes of a group value kept */
#define OTHER "(other)"

struct bucket {
    int64_t start;              /* ms since the epoch, UTC */
    struct lp_buf keys;         /* key bytes of its groups */
    uint32_t *gi;               /* its groups */
    size_t ng, gcap;
};

/*
 * A group's key: for each by member, a tag ('n' null, 's' a value), then
 * for a value its length (2 bytes, little endian) and its bytes.
 */
struct group {
    struct bucket *b;
    uint64_t count;
    uint32_t koff, klen;
    uint64_t hash;
};

struct lp_agg {
    const struct lp_agg_conf *c;        /* borrowed */
    struct lp_agg_notify say;
    struct lp_agg_out out;
    uint64_t threshold;
    struct lp_jkeys keys;
    int time_idx, id_idx;
    int by_idx[LP_AGG_MAXBY], sum_idx[LP_AGG_MAXAGG], max_idx[LP_AGG_MAXAGG];
    struct lp_jlimits lim;
    struct lp_buf key, tmp;
    /* groups: a slab with a free list, and per group nagg doubles */
    struct group *g;
    double *agg;
    int nagg;
    uint32_t *freel;
    size_t gcap, nfree, gused;
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
    int64_t closed;             /* at_end: the end of the newest emitted */
    int early;                  /* bucket emitted before the end, if any */
    struct bucket *sorting;     /* for the sort of a bucket's groups */
    int warned_fold, warned_cut, warned_early;
    struct lp_agg_stats st;     /* st.open: the groups live */
    /* the first failure, sticky: nothing is written or said after it */
    int rc;
    char err[LP_ERRLEN];
};

static void nomem(struct lp_agg *a)
{
    if (a->rc == LP_AGG_OK) {
        a->rc = LP_AGG_NOMEM;
        snprintf(a->err, sizeof a->err, "out of memory");
    }
}

/* ---- messages ----------------------------------------------------------- */

/* 1 when a message of kind is to be said: the caller's budget allows it
 * (and counts it); a message said once in a run needs no budget. */
static int may_say(const struct lp_agg *a, int kind)
{
    return a->say.say && (kind == LP_AGG_SAY_ONCE || a->say.take == NULL ||
                          a->say.take(a->say.ctx, kind));
}

static void say(struct lp_agg *a, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Says a message of kind; for _BAD and _LATE, after may_say. */
static void say(struct lp_agg *a, int kind, const char *fmt, ...)
{
    char msg[LP_NOTICELEN];
    va_list ap;

    if (a->say.say == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    a->say.say(a->say.ctx, kind, msg);
}

static void bad_line(struct lp_agg *a, uint64_t lineno, const char *label,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A line or element that is not an event: counted, said. */
static void bad_line(struct lp_agg *a, uint64_t lineno, const char *label,
                     const char *fmt, ...)
{
    char msg[LP_ERRLEN];
    va_list ap;

    a->st.bad++;
    if (!may_say(a, LP_AGG_SAY_BAD))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say(a, LP_AGG_SAY_BAD, "line %" PRIu64 ": %s%s%s", lineno,
        label ? label : "", label ? ": " : "", msg);
}

void lp_agg_bad_line(struct lp_agg *a, uint64_t lineno, const char *why)
{
    bad_line(a, lineno, NULL, "%s", why);
}

/* Drops a late event: counted, said. */
static void late(struct lp_agg *a, int64_t t, uint64_t lineno,
                 const char *label)
{
    char ts[40];

    a->st.late++;
    if (!may_say(a, LP_AGG_SAY_LATE))
        return;
    lp_time_format(t, ts);
    say(a, LP_AGG_SAY_LATE, "line %" PRIu64 ": %s%sevent time %s is late: "
        "its bucket was emitted; dropped", lineno, label ? label : "",
        label ? ": " : "", ts);
}

/* ---- keys --------------------------------------------------------------- */

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

/* Appends the value v of a by member to the key. */
static void key_add(struct lp_agg *a, const char *s, const struct lp_jval *v,
                    uint64_t lineno)
{
    const char *p;
    size_t n;
    unsigned char len[2];

    if (v->type == LP_JNONE || v->type == LP_JNULL) {
        /* SQL: '' in the table, the same group as "" */
        if ((a->c->sql ? lp_buf_add(&a->key, "s\0\0", 3)
                       : lp_buf_addc(&a->key, 'n')) < 0)
            nomem(a);
        return;
    }
    if (v->type == LP_JSTRING && v->esc) {
        long got;
        a->tmp.len = 0;
        if (lp_buf_reserve(&a->tmp, v->len) < 0) {
            nomem(a);
            return;
        }
        got = lp_json_unescape(s, v, a->tmp.p, a->tmp.cap);
        if (got < 0)
            got = 0;            /* cannot happen: decoding shrinks */
        p = a->tmp.p;
        n = (size_t)got;
        if (a->c->sql && memchr(p, '\0', n)) {
            /* a NUL is U+FFFD in the table: group as it will be stored.
             * The bytes move to the last third and expand from the start,
             * never past what is still to be read. */
            size_t o = 0;
            if (lp_buf_reserve(&a->tmp, n * 3) < 0) {
                nomem(a);
                return;
            }
            p = a->tmp.p;
            memmove(a->tmp.p + n * 2, a->tmp.p, n);
            for (size_t i = n * 2; i < n * 3; i++) {
                if (a->tmp.p[i] == '\0') {
                    memcpy(a->tmp.p + o, "\xef\xbf\xbd", 3);
                    o += 3;
                } else {
                    a->tmp.p[o++] = a->tmp.p[i];
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
        if (!a->warned_cut) {
            say(a, LP_AGG_SAY_ONCE, "line %" PRIu64 ": a --by value longer "
                "than %d bytes is cut to that (said once)", lineno,
                VALUE_MAX);
            a->warned_cut = 1;
        }
    }
    len[0] = (unsigned char)(n & 0xff);
    len[1] = (unsigned char)(n >> 8);
    if (lp_buf_addc(&a->key, 's') < 0 || lp_buf_add(&a->key, len, 2) < 0 ||
        lp_buf_add(&a->key, p, n) < 0)
        nomem(a);
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
static uint64_t hash_key(const struct lp_agg *a, int64_t bucket,
                         const unsigned char *p, size_t n)
{
    uint64_t h = mix(a->seed ^ (uint64_t)bucket) ^ n;

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

static size_t home(const struct lp_agg *a, uint64_t h)
{
    return (size_t)h & (a->scap - 1);
}

static void hash_put(struct lp_agg *a, uint32_t gi)
{
    size_t i = home(a, a->g[gi].hash);

    while (a->slot[i])
        i = (i + 1) & (a->scap - 1);
    a->slot[i] = gi + 1;
}

/* Doubles the table, which is kept at most half full; 0 or -1. */
static int hash_grow(struct lp_agg *a)
{
    size_t cap = a->scap ? a->scap * 2 : 1024;
    uint32_t *old = a->slot;
    size_t ocap = a->scap;

    if ((a->slot = calloc(cap, sizeof *a->slot)) == NULL) {
        a->slot = old;
        nomem(a);
        return -1;
    }
    a->scap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i])
            hash_put(a, old[i] - 1);
    free(old);
    return 0;
}

/* Removes group gi, shifting back the entries after it (no tombstones). */
static void hash_del(struct lp_agg *a, uint32_t gi)
{
    size_t mask = a->scap - 1, i = home(a, a->g[gi].hash), j;

    while (a->slot[i] != gi + 1)
        i = (i + 1) & mask;
    for (j = (i + 1) & mask; a->slot[j]; j = (j + 1) & mask) {
        size_t k = home(a, a->g[a->slot[j] - 1].hash);
        /* may the entry at j move to i? (is i on its way from k to j) */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            a->slot[i] = a->slot[j];
            i = j;
        }
    }
    a->slot[i] = 0;
}

/* The group of (bucket, key), or -1. */
static long find_group(const struct lp_agg *a, int64_t bucket,
                       const char *key, size_t klen, uint64_t h)
{
    size_t i;

    if (a->scap == 0)
        return -1;
    for (i = home(a, h); a->slot[i]; i = (i + 1) & (a->scap - 1)) {
        const struct group *g = &a->g[a->slot[i] - 1];
        if (g->hash == h && g->b->start == bucket && g->klen == klen &&
            memcmp(g->b->keys.p + g->koff, key, klen) == 0)
            return (long)a->slot[i] - 1;
    }
    return -1;
}

/* The open bucket that starts at start, made when there is none; NULL
 * when out of memory. */
static struct bucket *get_bucket(struct lp_agg *a, int64_t start)
{
    size_t lo = 0, hi = a->nopen;
    struct bucket *b;

    if (a->last && a->last->start == start)
        return a->last;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->open[mid]->start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < a->nopen && a->open[lo]->start == start)
        return a->last = a->open[lo];
    if (a->nopen == a->opcap) {
        size_t cap = a->opcap ? a->opcap * 2 : 16;
        struct bucket **p = realloc(a->open, cap * sizeof *p);
        if (p == NULL)
            goto nomem;
        a->open = p;
        a->opcap = cap;
    }
    if (a->npool > 0) {
        b = a->pool[--a->npool];
    } else if ((b = calloc(1, sizeof *b)) == NULL) {
        goto nomem;
    } else if (lp_buf_reserve(&b->keys, 256) < 0) {
        free(b);
        goto nomem;
    }
    b->start = start;
    memmove(a->open + lo + 1, a->open + lo, (a->nopen - lo) * sizeof *a->open);
    a->open[lo] = b;
    a->nopen++;
    return a->last = b;
nomem:
    nomem(a);
    return NULL;
}

/* A new group of b with the key; returns its index, or -1 when out of
 * memory. */
static long new_group(struct lp_agg *a, struct bucket *b, const char *key,
                      size_t klen, uint64_t h)
{
    uint32_t gi;
    struct group *g;

    if ((a->st.open + 1) * 2 > a->scap && hash_grow(a) < 0)
        return -1;
    if (b->ng == b->gcap) {
        size_t cap = b->gcap ? b->gcap * 2 : 16;
        uint32_t *p = realloc(b->gi, cap * sizeof *p);
        if (p == NULL)
            goto nomem;
        b->gi = p;
        b->gcap = cap;
    }
    if (a->nfree == 0 && a->gused == a->gcap) {
        size_t cap = a->gcap ? a->gcap * 2 : 256;
        struct group *ng = realloc(a->g, cap * sizeof *ng);
        double *na;
        uint32_t *nf;
        if (ng == NULL)
            goto nomem;
        a->g = ng;
        na = realloc(a->agg, cap * (size_t)(a->nagg ? a->nagg : 1) *
                     sizeof *na);
        if (na == NULL)
            goto nomem;
        a->agg = na;
        if ((nf = realloc(a->freel, cap * sizeof *nf)) == NULL)
            goto nomem;
        a->freel = nf;
        a->gcap = cap;
    }
    if (lp_buf_add(&b->keys, key, klen) < 0)
        goto nomem;
    gi = a->nfree > 0 ? a->freel[--a->nfree] : (uint32_t)a->gused++;
    g = &a->g[gi];
    g->b = b;
    g->count = 0;
    g->koff = (uint32_t)(b->keys.len - klen);
    g->klen = (uint32_t)klen;
    g->hash = h;
    for (int i = 0; i < a->nagg; i++)
        a->agg[(size_t)gi * (size_t)a->nagg + (size_t)i] =
            i < a->c->sum.n ? 0 : NAN;  /* a max of no value: null */
    b->gi[b->ng++] = gi;
    a->st.open++;
    hash_put(a, gi);
    return gi;
nomem:
    nomem(a);
    return -1;
}

/* Orders a bucket's groups by their by-values (null first, then bytes). */
static int group_cmp(const void *x, const void *y, void *ctx)
{
    const struct lp_agg *ag = ctx;
    const struct group *a = &ag->g[*(const uint32_t *)x];
    const struct group *b = &ag->g[*(const uint32_t *)y];
    const unsigned char *pa = (const unsigned char *)ag->sorting->keys.p +
                              a->koff, *ea = pa + a->klen;
    const unsigned char *pb = (const unsigned char *)ag->sorting->keys.p +
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

/* Prints bucket b (its groups at or above the threshold) and gives it
 * back to the pool. Stops at the first failure (a->rc). */
static void emit_bucket(struct lp_agg *a, struct bucket *b)
{
    struct lp_agg_row r;
    size_t rows = 0;
    int rc;

    a->sorting = b;
    if (b->ng > 1)
        qsort_r(b->gi, b->ng, sizeof *b->gi, group_cmp, a);
    r.start = b->start;
    for (size_t i = 0; i < b->ng; i++) {
        uint32_t gi = b->gi[i];
        struct group *g = &a->g[gi];
        if (g->count >= a->threshold) {
            const unsigned char *p = (const unsigned char *)b->keys.p +
                                     g->koff, *end = p + g->klen;
            for (int k = 0; key_next(&p, end, &r.val[k], &r.len[k]); k++)
                ;
            r.count = g->count;
            r.agg = a->agg + (size_t)gi * (size_t)a->nagg;
            rc = lp_agg_out_row(&a->out, &r, a->err);
            rows++;
            a->st.emitted++;
            if (rc != LP_AGG_OK) {
                a->rc = rc;
                return;
            }
        }
        hash_del(a, gi);
        a->freel[a->nfree++] = gi;
        a->st.open--;
    }
    if (rows)
        a->st.buckets++;
    b->ng = 0;
    b->keys.len = 0;
    if (a->last == b)
        a->last = NULL;
    if (a->npool == a->plcap) {
        size_t cap = a->plcap ? a->plcap * 2 : 16;
        struct bucket **p = realloc(a->pool, cap * sizeof *p);
        if (p == NULL) {
            nomem(a);
            return;
        }
        a->pool = p;
        a->plcap = cap;
    }
    a->pool[a->npool++] = b;
    if ((rc = lp_agg_out_end(&a->out, a->err)) != LP_AGG_OK)
        a->rc = rc;
}

/* Takes the first n open buckets off the list (emitted). */
static void drop_open(struct lp_agg *a, size_t n)
{
    memmove(a->open, a->open + n, (a->nopen - n) * sizeof *a->open);
    a->nopen -= n;
}

/* Emits the open buckets that end at or before wm (all: INT64_MAX). */
static void close_until(struct lp_agg *a, int64_t wm)
{
    size_t n = 0;

    while (a->rc == LP_AGG_OK && n < a->nopen &&
           (wm == INT64_MAX || a->open[n]->start + a->c->bucket <= wm))
        emit_bucket(a, a->open[n++]);
    if (n)
        drop_open(a, n);
}

/* Is an event of the bucket that starts at start late, that bucket (or a
 * later one) printed already? */
static int is_late(const struct lp_agg *a, int64_t start)
{
    if (a->c->at_end)
        return a->early && start < a->closed;
    return a->seen && start + a->c->bucket <= a->newest - a->c->lateness;
}

/*
 * at_end, max_groups groups open and a new one wanted: the oldest buckets
 * but that of start are emitted until there is room. Their events from
 * now on are late, as are those of any bucket before them.
 */
static void make_room(struct lp_agg *a, int64_t start, uint64_t lineno)
{
    size_t n = 0;

    while (a->rc == LP_AGG_OK && a->st.open >= a->c->max_groups &&
           n < a->nopen && a->open[n]->start != start) {
        a->closed = a->open[n]->start + a->c->bucket;
        a->early = 1;
        emit_bucket(a, a->open[n++]);
    }
    if (n == 0)
        return;
    drop_open(a, n);
    if (a->rc == LP_AGG_OK && !a->warned_early) {
        char ts[40];
        lp_time_format(a->closed, ts);
        say(a, LP_AGG_SAY_ONCE, "line %" PRIu64 ": more than --max-groups %"
            PRIu64 " groups open: the buckets before %s are printed before "
            "the end of the input, and their events from here on are late "
            "(said once; give input in time order, such as logpipe-replay "
            "--sort's, or a larger --max-groups)", lineno,
            a->c->max_groups, ts);
        a->warned_early = 1;
    }
}

/* ---- one event ---------------------------------------------------------- */

/* A number member as a double; 0 when it is not a finite number. */
static int num_value(const char *s, const struct lp_jval *v, double *d)
{
    return v->type == LP_JNUMBER && lp_json_number(s, v, d) == 0;
}

/* The key of the bucket's shared group past max_groups: "(other)" for
 * every by member. */
static void other_key(struct lp_agg *a)
{
    a->key.len = 0;
    for (int i = 0; i < a->c->by.n; i++)
        if (lp_buf_add(&a->key, "s\x07\x00" OTHER, 3 + 7) < 0)
            nomem(a);
}

/* One event, s[0..n) an object (or not: then it is a bad line). */
static void one_event(struct lp_agg *a, const char *s, size_t n,
                      uint64_t lineno, const char *label)
{
    const struct lp_agg_conf *c = a->c;
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN];
    int64_t t = 0, start;
    int rc = 0;
    long gi;
    uint64_t h;
    struct bucket *b;

    if (lp_json_event(s, n, &a->keys, &a->lim, &ev, &je) < 0) {
        if (je.not_object)
            bad_line(a, lineno, label, "not a JSON object");
        else
            bad_line(a, lineno, label, "invalid JSON: %s", je.msg);
        return;
    }
    if (a->time_idx >= 0 &&
        (rc = lp_event_time(s, &ev.val[a->time_idx], &t, err)) < 0) {
        bad_line(a, lineno, label, "%s", err);
        return;
    }
    if (rc == 0) {
        /* no time member: the time of its stream entry (SPEC 2) */
        const struct lp_jval *v = &ev.val[a->id_idx];
        uint64_t ms, seq;
        if (v->type != LP_JSTRING || v->esc ||
            lp_stream_id_parse(s + v->off + 1, v->len - 2, &ms, &seq) < 0 ||
            ms > (uint64_t)LP_TIME_MAX) {
            if (a->time_idx >= 0)
                bad_line(a, lineno, label, "no time member \"%s\" (nor a "
                         "stream ID in _id)", c->time_field);
            else
                bad_line(a, lineno, label, "no stream ID in _id to take the "
                         "time from");
            return;
        }
        t = (int64_t)ms;
    }
    start = lp_floor_div(t, c->bucket) * c->bucket;
    if (is_late(a, start)) {
        late(a, t, lineno, label);
        return;
    }
    if (!c->at_end && (!a->seen || t > a->newest)) {
        /* first the buckets this event closes (never its own), so that
         * their groups no longer count against max_groups */
        a->newest = t;
        a->seen = 1;
        close_until(a, t - c->lateness);
        if (a->rc != LP_AGG_OK)
            return;
    }

    a->key.len = 0;
    for (int i = 0; i < c->by.n; i++)
        key_add(a, s, &ev.val[a->by_idx[i]], lineno);
    if (a->rc != LP_AGG_OK)
        return;
    h = hash_key(a, start, (const unsigned char *)a->key.p, a->key.len);
    gi = find_group(a, start, a->key.p, a->key.len, h);
    if (gi < 0) {
        if (c->at_end && a->st.open >= c->max_groups) {
            make_room(a, start, lineno);
            if (a->rc != LP_AGG_OK)
                return;
            if (is_late(a, start)) {
                late(a, t, lineno, label);
                return;
            }
        }
        if ((b = get_bucket(a, start)) == NULL)
            return;
        if (a->st.open >= c->max_groups) {
            /* full: the bucket's new groups share one */
            char ts[40];
            other_key(a);
            if (a->rc != LP_AGG_OK)
                return;
            h = hash_key(a, start, (const unsigned char *)a->key.p,
                         a->key.len);
            gi = find_group(a, start, a->key.p, a->key.len, h);
            a->st.folded++;
            if (!a->warned_fold) {
                lp_time_format(start, ts);
                say(a, LP_AGG_SAY_ONCE, "line %" PRIu64 ": more than "
                    "--max-groups %" PRIu64 " groups open: new groups are "
                    "counted as \"" OTHER "\" (bucket %s; said once)",
                    lineno, c->max_groups, ts);
                a->warned_fold = 1;
            }
        }
        if (gi < 0 && (gi = new_group(a, b, a->key.p, a->key.len, h)) < 0)
            return;
    }
    a->g[gi].count++;
    a->st.ok++;
    if (a->nagg) {
        double *v = a->agg + (size_t)gi * (size_t)a->nagg, d;
        for (int i = 0; i < c->sum.n; i++)
            if (num_value(s, &ev.val[a->sum_idx[i]], &d))
                v[i] += d;
        for (int i = 0; i < c->max.n; i++)
            if (num_value(s, &ev.val[a->max_idx[i]], &d) &&
                (isnan(v[c->sum.n + i]) || d > v[c->sum.n + i]))
                v[c->sum.n + i] = d;
    }
}

/* ---- the interface ------------------------------------------------------ */

/* The failure, in the caller's err. */
static int failed(const struct lp_agg *a, char *err)
{
    if (a->rc != LP_AGG_OK)
        memcpy(err, a->err, LP_ERRLEN);
    return a->rc;
}

int lp_agg_line(struct lp_agg *a, const char *s, size_t n, uint64_t lineno,
                char *err)
{
    struct lp_jerr je;
    size_t pos = 0, off, len;
    int type, k = 0;

    lp_json_trim(&s, &n);
    if (n == 0)
        return LP_AGG_OK;
    if (*s != '[') {
        one_event(a, s, n, lineno, NULL);
        return failed(a, err);
    }
    if (lp_json_valid(s, n, &a->lim, &je) < 0) {
        bad_line(a, lineno, NULL, "invalid JSON: %s", je.msg);
        return LP_AGG_OK;
    }
    while (a->rc == LP_AGG_OK &&
           lp_json_array_next(s, n, &pos, &off, &len, &type)) {
        char label[48];
        snprintf(label, sizeof label, "element %d", ++k);
        one_event(a, s + off, len, lineno, label);
    }
    return failed(a, err);
}

int lp_agg_finish(struct lp_agg *a, char *err)
{
    int rc;

    close_until(a, INT64_MAX);
    if (a->rc == LP_AGG_OK &&
        (rc = lp_agg_out_flush(&a->out, a->err)) != LP_AGG_OK)
        a->rc = rc;
    return failed(a, err);
}

int lp_agg_start(struct lp_agg *a, char *err)
{
    int rc = lp_agg_out_start(&a->out, a->err);

    if (rc != LP_AGG_OK)
        a->rc = rc;
    return failed(a, err);
}

const struct lp_agg_stats *lp_agg_stats(const struct lp_agg *a)
{
    return &a->st;
}

void lp_agg_series_add(struct lp_agg_series *s, struct lp_metrics *m)
{
    const char *ev = "logpipe_agg_events_total";

    s->ok = lp_counter(m, ev, "result=\"ok\"",
                       "Events read, by what became of them.");
    s->bad = lp_counter(m, ev, "result=\"bad\"", "");
    s->late = lp_counter(m, ev, "result=\"late\"", "");
    s->folded = lp_counter(m, "logpipe_agg_events_folded_total", "",
                           "Events counted as \"(other)\" past "
                           "--max-groups.");
    s->emitted = lp_counter(m, "logpipe_agg_groups_emitted_total", "",
                            "Groups printed (bucket and key).");
    s->buckets = lp_counter(m, "logpipe_agg_buckets_emitted_total", "",
                            "Buckets printed (with at least one group).");
    s->open = lp_gauge(m, "logpipe_agg_groups_open", "",
                       "Groups of buckets not yet closed.");
}

void lp_agg_series_set(const struct lp_agg_series *s,
                       const struct lp_agg_stats *st)
{
    lp_metric_set(s->ok, (double)st->ok);
    lp_metric_set(s->bad, (double)st->bad);
    lp_metric_set(s->late, (double)st->late);
    lp_metric_set(s->folded, (double)st->folded);
    lp_metric_set(s->emitted, (double)st->emitted);
    lp_metric_set(s->buckets, (double)st->buckets);
    lp_metric_set(s->open, (double)st->open);
}

int lp_agg_conf_check(const struct lp_agg_conf *c, char *err)
{
    char names[2 + LP_AGG_MAXBY + 2 * LP_AGG_MAXAGG][64];
    int n = 0;

    snprintf(names[n++], 64, "bucket");
    snprintf(names[n++], 64, "count");
    for (int i = 0; i < c->by.n && i < LP_AGG_MAXBY; i++)
        snprintf(names[n++], 64, "%s", c->by.item[i]);
    for (int i = 0; i < c->sum.n && i < LP_AGG_MAXAGG; i++)
        snprintf(names[n++], 64, "sum_%s", c->sum.item[i]);
    for (int i = 0; i < c->max.n && i < LP_AGG_MAXAGG; i++)
        snprintf(names[n++], 64, "max_%s", c->max.item[i]);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) == 0) {
                snprintf(err, LP_ERRLEN, "the output would have two "
                         "members (columns) named '%s'", names[i]);
                return -1;
            }
    return 0;
}

/* The members the scan must find; 0, or -1 when they are too many. */
static int want_members(struct lp_agg *a)
{
    const struct lp_agg_conf *c = a->c;
    int ok;

    a->time_idx = c->time_field[0] ? lp_jkeys_add(&a->keys, c->time_field)
                                   : -1;
    a->id_idx = lp_jkeys_add(&a->keys, "_id");
    ok = a->id_idx >= 0;
    for (int i = 0; i < c->by.n; i++)
        ok &= (a->by_idx[i] = lp_jkeys_add(&a->keys, c->by.item[i])) >= 0;
    for (int i = 0; i < c->sum.n; i++)
        ok &= (a->sum_idx[i] = lp_jkeys_add(&a->keys, c->sum.item[i])) >= 0;
    for (int i = 0; i < c->max.n; i++)
        ok &= (a->max_idx[i] = lp_jkeys_add(&a->keys, c->max.item[i])) >= 0;
    return ok ? 0 : -1;
}

int lp_agg_new(struct lp_agg **ap, const struct lp_agg_conf *c,
               const struct lp_agg_notify *notify, char *err)
{
    struct lp_agg *a;

    *ap = NULL;
    if (c->by.n > LP_AGG_MAXBY || c->sum.n > LP_AGG_MAXAGG ||
        c->max.n > LP_AGG_MAXAGG) {
        snprintf(err, LP_ERRLEN, "too many members asked for (--by at "
                 "most %d, --sum and --max %d each)", LP_AGG_MAXBY,
                 LP_AGG_MAXAGG);
        return LP_AGG_MEMBERS;
    }
    if ((a = calloc(1, sizeof *a)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_AGG_NOMEM;
    }
    a->c = c;
    if (notify)
        a->say = *notify;
    if (want_members(a) < 0) {
        snprintf(err, LP_ERRLEN, "too many members asked for (--by, --sum, "
                 "--max: %d distinct at most)", LP_JSON_MAXKEYS - 2);
        free(a);
        return LP_AGG_MEMBERS;
    }
    a->nagg = c->sum.n + c->max.n;
    a->threshold = c->threshold ? c->threshold : 1;
    /* archived events passed the ingest limits already: take them */
    a->lim.depth = 10000;
    a->seed = mix((uint64_t)lp_now_ms() ^ ((uint64_t)getpid() << 32));
    lp_agg_out_init(&a->out, c);
    /* never a NULL buffer, even for an empty key (no by) */
    if (lp_buf_reserve(&a->key, 256) < 0) {
        lp_agg_free(a);
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_AGG_NOMEM;
    }
    *ap = a;
    return LP_AGG_OK;
}

static void bucket_free(struct bucket *b)
{
    lp_buf_free(&b->keys);
    free(b->gi);
    free(b);
}

void lp_agg_free(struct lp_agg *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->npool; i++)
        bucket_free(a->pool[i]);
    for (size_t i = 0; i < a->nopen; i++)
        bucket_free(a->open[i]);
    free(a->pool);
    free(a->open);
    free(a->g);
    free(a->agg);
    free(a->freel);
    free(a->slot);
    lp_buf_free(&a->key);
    lp_buf_free(&a->tmp);
    lp_agg_out_free(&a->out);
    free(a);
}
