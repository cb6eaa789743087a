/* lp_stat.c -- the stat engine: the figures of a pipeline in one look */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_cluster.h"
#include "lp_fs.h"
#include "lp_journal.h"
#include "lp_parse.h"
#include "lp_stat.h"
#include "lp_time.h"
#include "lp_tree.h"
#include "lp_utf8.h"

struct lp_stat {
    struct lp_stat_conf c;
    struct lp_stat_figures f;
    struct lp_stat **sh;        /* a sharded stream's shards, c.nshards */
    int borrowed;               /* a shard's: c.redis is not its own */
    /* a shard's, while the shards are asked: */
    int quiet;                  /* its failure not said (the stream's is) */
    int redirected;             /* it failed by a cluster's redirect */
    int todo;                   /* to be asked (again) */
    size_t npend;               /* its XPENDINGs queued */
    size_t idx;                 /* its index */
    int hscan;                  /* its first HSCAN queued */
    char pcur[32];              /* HSCAN's cursor after that page */
    size_t capprod;             /* room in f.prod */
    char node[280];             /* its node, "" standalone */
};

void lp_stat_free(struct lp_stat *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->sh && i < s->c.nshards; i++)
        lp_stat_free(s->sh[i]);
    free(s->sh);
    lp_group_info_free(s->f.g, s->f.ng);
    free(s->f.old);
    for (size_t i = 0; i < s->f.nprod; i++) {
        free(s->f.prod[i].name);
        free(s->f.prod[i].cursor);
    }
    free(s->f.prod);
    if (!s->borrowed)
        lp_redis_free(s->c.redis);
    free(s);
}

struct lp_stat *lp_stat_new(const struct lp_stat_conf *c)
{
    struct lp_stat *s = calloc(1, sizeof *s);

    if (s == NULL) {
        lp_redis_free(c->redis);
        return NULL;
    }
    s->c = *c;
    if (s->c.redis)
        lp_redis_set_timeout(s->c.redis, c->timeout);
    if (c->nshards == 0)
        return s;
    if ((s->sh = calloc(c->nshards, sizeof *s->sh)) == NULL)
        goto oom;
    for (size_t i = 0; i < c->nshards; i++) {
        struct lp_stat *x = calloc(1, sizeof *x);
        if ((s->sh[i] = x) == NULL)
            goto oom;
        x->c = *c;
        x->c.stream = c->shards[i].stream;
        x->c.dlq = c->shards[i].dlq;
        x->c.redis = c->shards[i].redis;
        x->c.shards = NULL;
        x->c.nshards = 0;
        /* every producer's name: the total counts them once */
        x->c.producers = 1;
        x->borrowed = 1;
        x->idx = i;
        snprintf(x->node, sizeof x->node, "%s",
                 c->shards[i].node ? c->shards[i].node : "");
        lp_redis_set_timeout(x->c.redis, c->timeout);
    }
    return s;
oom:
    lp_stat_free(s);
    return NULL;
}

struct lp_stat *lp_stat_shard(struct lp_stat *s, size_t i)
{
    return s->sh && i < s->c.nshards ? s->sh[i] : NULL;
}

const struct lp_stat_figures *lp_stat_figures(const struct lp_stat *s)
{
    return &s->f;
}

/* Redis failed: says why (the first failure only) and keeps it. */
static void redis_failed(struct lp_stat *s, const char *why, int how)
{
    if (s->f.redis_failed)
        return;
    if (!s->quiet)
        lp_notice(&s->c.notify, LP_NOTICE_ERROR, "%s", why);
    snprintf(s->f.redis_err, sizeof s->f.redis_err, "%s", why);
    s->f.redis_failed = how;
}

/*
 * What did Redis answer rc = lp_stream_...(..., e)? 0: an answer (an ERR,
 * or an answer of no known shape, reads as nothing there: XINFO GROUPS
 * says ERR for a stream that does not exist, XRANGE for an exclusive
 * start before Redis 6.2); LP_STAT_EREDIS: Redis failed (said once:
 * permanent when no retry cures it); LP_STAT_ENOMEM. key: named in the
 * message ("XLEN logs:stream: ..."), or NULL.
 */
static int answered(struct lp_stat *s, int rc, const char *key,
                    const struct lp_stream_err *e)
{
    char m[LP_ERRLEN], what[300];   /* "XLEN logs:stream", cut there */

    if (rc == 0 || e->code == LP_RERR_REQUEST || e->code == LP_STREAM_ESHAPE)
        return 0;
    if (e->code == LP_STREAM_ENOMEM)
        return LP_STAT_ENOMEM;
    if (!s->f.redis_failed)
        s->redirected = lp_stream_redirected(e);
    snprintf(what, sizeof what, "%s %s", e->cmd, key ? key : "");
    snprintf(m, sizeof m, "%s: %s", key ? what : e->cmd, e->msg);
    redis_failed(s, m, e->code == LP_RERR_KEY || e->code == LP_RERR_COMMAND ?
                       LP_STAT_REDIS_PERM : LP_STAT_REDIS_TEMP);
    return LP_STAT_EREDIS;
}

/* A reply of a command about <stream>:producers: 0 (an ERR reads as
 * nothing there), 1 when the ACL refuses it (warned; producers -1:
 * unknown), or LP_STAT_EREDIS (said). rep NULL: err says why. */
static int hash_answered(struct lp_stat *s, const char *cmd,
                         struct lp_reply *rep, const char *key,
                         const char *err)
{
    char m[LP_ERRLEN], t[LP_ERRLEN - 200];

    if (rep == NULL) {
        struct lp_stream_err e = { .code = LP_STREAM_EIO };
        snprintf(e.msg, sizeof e.msg, "%s", err);
        if (!s->f.redis_failed)
            s->redirected = lp_stream_redirected(&e);
        snprintf(m, sizeof m, "%s %s: %s", cmd, key, err);
        redis_failed(s, m, LP_STAT_REDIS_TEMP);
        return LP_STAT_EREDIS;
    }
    if (lp_reply_type(rep) == LP_REPLY_ERROR &&
        (lp_reply_error_class(rep) == LP_RERR_COMMAND ||
         lp_reply_is_error(rep, "NOPERM"))) {
        /* a user of an ACL from before producers: the rest stands */
        lp_notice(&s->c.notify, LP_NOTICE_WARN, "%s %s: %s: producers "
                  "unknown", cmd, key, lp_reply_text(rep, t, sizeof t));
        s->f.producers = -1;
        return 1;
    }
    if (lp_reply_type(rep) == LP_REPLY_ERROR &&
        lp_reply_error_class(rep) != LP_RERR_REQUEST) {
        struct lp_stream_err e = { .code = lp_reply_error_class(rep) };
        lp_reply_text(rep, e.msg, sizeof e.msg);
        if (!s->f.redis_failed)
            s->redirected = lp_stream_redirected(&e);
        snprintf(m, sizeof m, "%s %s: %s", cmd, key,
                 lp_reply_text(rep, t, sizeof t));
        redis_failed(s, m, lp_reply_error_class(rep) >= LP_RERR_KEY ?
                           LP_STAT_REDIS_PERM : LP_STAT_REDIS_TEMP);
        return LP_STAT_EREDIS;
    }
    return 0;
}

/* Copies v[0..n) to a malloc'd string; NULL when out of memory. */
static char *dupn(const char *v, size_t n)
{
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, v, n);
        p[n] = '\0';
    }
    return p;
}

/* <stream>:producers, named as send names it (lp_key_aux); its length */
static size_t pkey_of(const struct lp_stat *s, char *key, size_t cap)
{
    char e[LP_ERRLEN];
    int n = lp_key_aux(s->c.cluster, s->c.stream, ":producers", key, cap, e);

    if (n < 0)
        n = snprintf(key, cap, "%s:producers", s->c.stream);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The answer to HLEN of the producers' key (queued on s's connection):
 * how many producers. 0, or as hash_answered. */
static int producers_count(struct lp_stat *s)
{
    char key[512], err[LP_ERRLEN];
    struct lp_reply *rep = NULL;
    int rc;

    pkey_of(s, key, sizeof key);
    err[0] = '\0';
    if (lp_redis_reply(s->c.redis, &rep, err) < 0)
        rep = NULL;
    if ((rc = hash_answered(s, "HLEN", rep, key, err)) == 0 &&
        lp_reply_type(rep) == LP_REPLY_INTEGER)
        s->f.producers = lp_reply_int(rep);
    lp_reply_free(rep);
    return rc < 0 ? rc : 0;
}

/* With conf.producers, each producer of logpipe-send (HSCAN, page by
 * page), after producers_count. */
static int want_producers(const struct lp_stat *s)
{
    return s->c.producers && s->f.producers > 0 && !s->f.redis_failed;
}

/* HSCAN's first page queued (want_producers): read by producers */
static int producers_append(struct lp_stat *s)
{
    char key[512];
    const char *argv[5] = { "HSCAN", key, "0", "COUNT", "1000" };
    size_t lens[5] = { 5, pkey_of(s, key, sizeof key), 1, 5, 4 };

    return lp_redis_append(s->c.redis, 5, argv, lens) < 0 ? -1 : 0;
}

/* queued: only the first page's answer, queued (producers_append), is
 * read, the cursor after it kept (pcur) for a call without queued, which
 * goes on from there to the end. */
static int producers(struct lp_stat *s, int queued)
{
    struct lp_stat_figures *f = &s->f;
    char key[512], cursor[32] = "0", err[LP_ERRLEN];
    struct lp_reply *rep;
    size_t cap = s->capprod;
    int rc;

    pkey_of(s, key, sizeof key);
    if (queued)
        snprintf(s->pcur, sizeof s->pcur, "0");  /* a failure: no more */
    if (!queued && !want_producers(s))
        return 0;
    if (!queued && s->pcur[0]) {
        snprintf(cursor, sizeof cursor, "%s", s->pcur);
        if (strcmp(cursor, "0") == 0)
            return 0;
    }
    do {
        if (!queued && s->pcur[0] && strcmp(cursor, "0") == 0)
            break;
        const struct lp_reply *kv;
        const char *c;
        size_t n;
        if (queued) {
            err[0] = '\0';
            if (lp_redis_reply(s->c.redis, &rep, err) < 0)
                rep = NULL;
            queued = 0;
        } else {
            rep = lp_redis_cmd(s->c.redis, err, "HSCAN", key, cursor,
                               "COUNT", "1000", NULL);
        }
        if ((rc = hash_answered(s, "HSCAN", rep, key, err))) {
            lp_reply_free(rep);
            return rc < 0 ? rc : 0;
        }
        if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2 ||
            (c = lp_reply_str(lp_reply_at(rep, 0), &n)) == NULL ||
            n >= sizeof cursor) {
            lp_reply_free(rep);
            return 0;           /* no known shape: nothing more */
        }
        memcpy(cursor, c, n);
        cursor[n] = '\0';
        kv = lp_reply_at(rep, 1);
        for (size_t i = 0; i + 1 < lp_reply_len(kv); i += 2) {
            size_t fl, vl;
            const char *fn = lp_reply_str(lp_reply_at(kv, i), &fl);
            const char *v = lp_reply_str(lp_reply_at(kv, i + 1), &vl);
            struct lp_stat_producer *p;
            struct lp_field fv;
            if (fn == NULL || v == NULL)
                continue;
            if (f->nprod == cap) {
                size_t c2 = cap ? cap * 2 : 16;
                p = realloc(f->prod, c2 * sizeof *p);
                if (p == NULL) {
                    lp_reply_free(rep);
                    return LP_STAT_ENOMEM;
                }
                f->prod = p;
                cap = c2;
            }
            p = &f->prod[f->nprod];
            memset(p, 0, sizeof *p);
            lp_field_parse(v, vl, &fv);
            p->pos = fv.pos;
            p->age_ms = !fv.have_ms ? -1 : fv.ms < f->now ? f->now - fv.ms : 0;
            if ((p->name = dupn(fn, fl)) == NULL ||
                (fv.clen && (p->cursor = dupn(fv.cursor, fv.clen)) == NULL)) {
                free(p->name);
                lp_reply_free(rep);
                return LP_STAT_ENOMEM;
            }
            f->nprod++;
            s->capprod = cap;
        }
        lp_reply_free(rep);
        if (queued) {
            snprintf(s->pcur, sizeof s->pcur, "%s", cursor);
            return 0;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Keeps what answered() makes of one answer of x's: x's first failure
 * stays (later answers are read, not looked at). 0 or LP_STAT_ENOMEM. */
static int take(struct lp_stat *x, int rc, const char *key,
                const struct lp_stream_err *e)
{
    if (x->f.redis_failed)
        return 0;
    rc = answered(x, rc, key, e);
    return rc == LP_STAT_ENOMEM ? rc : 0;
}

/*
 * The Redis figures of the streams v[0..n) (a stream, or shards), all
 * over one connection, connected: their commands in one write and their
 * answers read (XLEN, the first and last IDs, XINFO GROUPS, the DLQ's
 * XLEN, HLEN of the producers), then XPENDING of every group with
 * entries pending in a second; then the producers' list when asked
 * (HSCAN pages). Each keeps its first failure (redis_failed). 0 or
 * LP_STAT_ENOMEM.
 */
static int ask_round(struct lp_stat **v, size_t n)
{
    struct lp_redis *r = v[0]->c.redis;
    char key[512];
    const char *hlen[2] = { "HLEN", key };
    size_t np = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const char *st = v[i]->c.stream;
        size_t kl[2] = { 4, pkey_of(v[i], key, sizeof key) };
        if (lp_stream_len_append(r, st) < 0 ||
            lp_stream_end_id_append(r, st, 0) < 0 ||
            lp_stream_end_id_append(r, st, 1) < 0 ||
            lp_stream_groups_append(r, st) < 0 ||
            lp_stream_len_append(r, v[i]->c.dlq) < 0 ||
            lp_redis_append(r, 2, hlen, kl) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        struct lp_stat *x = v[i];
        struct lp_stat_figures *f = &x->f;
        const char *st = x->c.stream;
        struct lp_stream_err e;
        if ((rc = take(x, lp_stream_len_reply(r, &f->length, &e), st, &e)) ||
            (rc = take(x, lp_stream_end_id_reply(r, 0, f->first_id, &e),
                       st, &e)) ||
            (rc = take(x, lp_stream_end_id_reply(r, 1, f->last_id, &e), st,
                       &e)))
            goto nomem;
        /* a stream that does not exist has no groups: XINFO says ERR */
        if ((rc = take(x, lp_stream_groups_reply(r, &f->g, &f->ng, &e), st,
                       &e)))
            goto nomem;
        if ((f->old = calloc(f->ng + 1, sizeof *f->old)) == NULL)
            goto nomem;
        for (size_t k = 0; k < f->ng; k++)
            f->old[k].age_ms = -1;
        if ((rc = take(x, lp_stream_len_reply(r, &f->dlq, &e), x->c.dlq,
                       &e)))
            goto nomem;
        if (x->f.redis_failed) {
            /* its HLEN's answer, read only */
            struct lp_reply *rep = NULL;
            char err[LP_ERRLEN];
            if (lp_redis_reply(r, &rep, err) == 0)
                lp_reply_free(rep);
        } else if ((rc = producers_count(x)) == LP_STAT_ENOMEM) {
            goto nomem;
        }
        x->npend = 0;
        x->pcur[0] = '\0';
        if (!x->f.redis_failed)
            for (size_t k = 0; k < f->ng; k++)
                if (f->g[k].pending > 0) {
                    if (lp_stream_pending_oldest_append(r, st,
                                                        f->g[k].name,
                                                        f->g[k].namelen) < 0)
                        goto nomem;
                    x->npend++;
                    np++;
                }
        /* each producer's name: the first pages in this round trip too */
        x->hscan = want_producers(x);
        if (x->hscan && producers_append(x) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        struct lp_stat *x = v[i];
        struct lp_stat_figures *f = &x->f;
        for (size_t k = 0; k < f->ng && x->npend > 0; k++) {
            struct lp_stat_oldest *o = &f->old[k];
            struct lp_stream_err e;
            uint64_t ms, seq;
            if (f->g[k].pending == 0)
                continue;
            x->npend--;
            np--;
            if ((rc = take(x, lp_stream_pending_oldest_reply(r, o->id, &e),
                           x->c.stream, &e)))
                goto nomem;
            if (lp_stream_id_parse(o->id, strlen(o->id), &ms, &seq) == 0)
                /* an ID ahead of this clock: pending, and new */
                o->age_ms = (int64_t)ms < f->now ? f->now - (int64_t)ms : 0;
        }
        if (x->hscan && producers(x, 1) == LP_STAT_ENOMEM)
            goto nomem;
    }
    /* the rest of a hash of more than a page, once every answer queued
     * is read */
    for (size_t i = 0; i < n; i++)
        if (v[i]->hscan && (rc = producers(v[i], 0)) == LP_STAT_ENOMEM)
            goto nomem;
    return 0;
nomem:
    lp_redis_disconnect(r);     /* its answers are out of step now */
    return LP_STAT_ENOMEM;
}

/* The figures of x as before it was asked (to ask it again). */
static void figures_reset(struct lp_stat *x)
{
    struct lp_stat_figures *f = &x->f;
    int64_t now = f->now;

    lp_group_info_free(f->g, f->ng);
    free(f->old);
    for (size_t i = 0; i < f->nprod; i++) {
        free(f->prod[i].name);
        free(f->prod[i].cursor);
    }
    free(f->prod);
    memset(f, 0, sizeof *f);
    f->now = now;
    x->redirected = 0;
    x->capprod = 0;
    x->pcur[0] = '\0';
}

/* A producer's name, for qsort */
static int prod_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The oldest pending entry o of shard i into t, when older. */
static void oldest_of(struct lp_stat_oldest *t, const struct lp_stat_oldest *o,
                      size_t i)
{
    if (o->id[0] == '\0' || (t->id[0] && o->age_ms <= t->age_ms))
        return;
    t->age_ms = o->age_ms;
    snprintf(t->id, sizeof t->id, "%zu-%s", i, o->id);
}


/* Does shard y have group t (by name)? */
static int has_group(const struct lp_stat *y, const struct lp_group_info *t)
{
    for (size_t k = 0; k < y->f.ng; k++)
        if (y->f.g[k].namelen == t->namelen &&
            memcmp(y->f.g[k].name, t->name, t->namelen) == 0)
            return 1;
    return 0;
}

/* A sharded stream's figures: the totals of its shards' (lp_stat.h). */
static int totals(struct lp_stat *s)
{
    struct lp_stat_figures *f = &s->f;
    size_t cap = 0, nnames = 0;
    char **names = NULL;

    for (size_t i = 0; i < s->c.nshards; i++)
        cap += s->sh[i]->f.ng;
    if ((f->g = calloc(cap + 1, sizeof *f->g)) == NULL ||
        (f->old = calloc(cap + 1, sizeof *f->old)) == NULL)
        return LP_STAT_ENOMEM;
    for (size_t i = 0; i < s->c.nshards; i++) {
        const struct lp_stat_figures *x = &s->sh[i]->f;
        f->length += x->length;
        f->dlq += x->dlq;
        if (x->producers < 0)
            f->producers = -1;
        for (size_t k = 0; k < x->ng; k++) {
            const struct lp_group_info *a = &x->g[k];
            struct lp_group_info *t;
            size_t j;
            for (j = 0; j < f->ng; j++)
                if (f->g[j].namelen == a->namelen &&
                    memcmp(f->g[j].name, a->name, a->namelen) == 0)
                    break;
            t = &f->g[j];
            if (j == f->ng) {
                if ((t->name = dupn(a->name, a->namelen)) == NULL)
                    return LP_STAT_ENOMEM;
                t->namelen = a->namelen;
                f->old[j].age_ms = -1;
                f->ng++;
            }
            if (a->consumers > t->consumers)
                t->consumers = a->consumers;
            t->pending += a->pending;
            /* unknown on one shard: unknown in all (lp_stat_lag) */
            t->lag = t->lag < 0 || a->lag < 0 ? -1 : t->lag + a->lag;
            oldest_of(&f->old[j], &x->old[k], i);
        }
    }
    /* a group missing on a shard (its drain never ran there): every
     * entry of that shard is one the group has not read */
    for (size_t j = 0; j < f->ng; j++) {
        struct lp_group_info *t = &f->g[j];
        for (size_t i = 0; i < s->c.nshards && t->lag >= 0; i++)
            if (!has_group(s->sh[i], t))
                t->lag += s->sh[i]->f.length;
    }
    if (f->producers < 0)
        return 0;
    for (size_t i = 0; i < s->c.nshards; i++)
        nnames += s->sh[i]->f.nprod;
    if (nnames && (names = malloc(nnames * sizeof *names)) == NULL)
        return LP_STAT_ENOMEM;
    nnames = 0;
    for (size_t i = 0; i < s->c.nshards; i++)
        for (size_t k = 0; k < s->sh[i]->f.nprod; k++)
            names[nnames++] = s->sh[i]->f.prod[k].name;
    if (nnames)
        qsort(names, nnames, sizeof *names, prod_cmp);
    for (size_t i = 0; i < nnames; i++)
        if (i == 0 || strcmp(names[i - 1], names[i]) != 0)
            f->producers++;
    free(names);
    return 0;
}

/*
 * A sharded stream: the shards of each connection in one round
 * (ask_round), connection after connection; a shard that failed by a
 * cluster's redirect (its slot moved while stat ran) is routed anew
 * (conf.reroute: the slot map read again) and asked again, for up to
 * conf.timeout; then the totals. A failure left is the stream's.
 */
static int shards_redis(struct lp_stat *s)
{
    size_t n = s->c.nshards, k;
    struct lp_stat **v;
    struct lp_backoff bo = { 0 };
    int64_t start = lp_mono_ms();
    int rc = 0, again;

    if ((v = calloc(n, sizeof *v)) == NULL)
        return LP_STAT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->sh[i]->f.now = s->f.now;
        s->sh[i]->quiet = 1;
        s->sh[i]->todo = 1;
    }
    do {
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct lp_stat *x = s->sh[i];
            char err[LP_ERRLEN];
            int cr;
            if (!x->todo)
                continue;
            /* the shards still to ask on x's connection */
            k = 0;
            for (size_t j = i; j < n; j++)
                if (s->sh[j]->todo && s->sh[j]->c.redis == x->c.redis) {
                    v[k++] = s->sh[j];
                    s->sh[j]->todo = 0;
                }
            if (!lp_redis_connected(x->c.redis) &&
                (cr = lp_redis_connect(x->c.redis, err)) < 0) {
                char m[LP_ERRLEN];
                for (size_t j = 0; j < k; j++) {
                    snprintf(m, sizeof m, "shard %zu (%s): %s", v[j]->idx,
                             v[j]->c.stream, err);
                    redis_failed(v[j], m, cr == LP_REDIS_EAUTH ?
                                 LP_STAT_REDIS_PERM : LP_STAT_REDIS_TEMP);
                }
                continue;
            }
            rc = ask_round(v, k);
            /* a redirect closed the connection: the answers after it
             * were lost with it, those shards are asked again too */
            for (size_t j = 0; j < k && rc == 0; j++)
                if (v[j]->redirected)
                    for (size_t m = 0; m < k; m++)
                        if (v[m]->f.redis_failed == LP_STAT_REDIS_TEMP)
                            v[m]->redirected = 1;
        }
        again = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct lp_stat *x = s->sh[i];
            char err[LP_ERRLEN], node[sizeof x->node];
            if (!x->f.redis_failed || !x->redirected || !s->c.reroute ||
                lp_mono_ms() - start >= s->c.timeout)
                continue;
            /* its slot moved: a connection of its own, where the map
             * says now (a failure there is said as the shard's) */
            if (s->c.reroute(s->c.ctx, i, &x->c.redis, node, sizeof node,
                             err) < 0) {
                char m[LP_ERRLEN];
                snprintf(m, sizeof m, "shard %zu (%s): %s", i, x->c.stream,
                         err);
                figures_reset(x);
                redis_failed(x, m, LP_STAT_REDIS_TEMP);
                continue;
            }
            lp_redis_set_timeout(x->c.redis, s->c.timeout);
            lp_notice(&s->c.notify, LP_NOTICE_INFO, "shard %zu (%s): %s: "
                      "asked again on %s", i, x->c.stream, x->f.redis_err,
                      node[0] ? node : "its master");
            snprintf(x->node, sizeof x->node, "%s", node);
            figures_reset(x);
            x->todo = 1;
            again = 1;
        }
        if (again)
            poll(NULL, 0, (int)lp_backoff_next(&bo));  /* TRYAGAIN, ASK */
    } while (again && rc == 0);
    free(v);
    for (size_t i = 0; i < n; i++)
        s->sh[i]->quiet = 0;
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct lp_stat *x = s->sh[i];
        if (x->f.redis_failed) {
            /* said once, as the shard's, which names its keys */
            redis_failed(s, x->f.redis_err, x->f.redis_failed);
            return LP_STAT_EREDIS;
        }
    }
    return totals(s);
}

int lp_stat_lag(struct lp_stat *s, size_t g, uint64_t limit, uint64_t *n)
{
    const struct lp_group_info *x = &s->f.g[g];
    uint64_t sum = 0, k;
    int rc;

    if (s->c.nshards == 0)
        return lp_stat_count_after(s, x->last_delivered, limit, n);
    for (size_t i = 0; i < s->c.nshards && sum <= limit; i++) {
        struct lp_stat *y = s->sh[i];
        if (!has_group(y, x))
            sum += y->f.length;     /* not read there at all */
        for (size_t j = 0; j < y->f.ng; j++) {
            const struct lp_group_info *a = &y->f.g[j];
            if (a->namelen != x->namelen ||
                memcmp(a->name, x->name, x->namelen) != 0)
                continue;
            if (a->lag >= 0) {
                sum += (uint64_t)a->lag;
            } else {
                rc = lp_stat_count_after(y, a->last_delivered, limit - sum,
                                         &k);
                sum += k;
                if (rc) {
                    if (rc == LP_STAT_EREDIS && !s->f.redis_failed) {
                        s->f.redis_failed = y->f.redis_failed;
                        memcpy(s->f.redis_err, y->f.redis_err,
                               sizeof s->f.redis_err);
                    }
                    *n = sum;
                    return rc;
                }
            }
        }
    }
    *n = sum;
    return 0;
}

int lp_stat_redis(struct lp_stat *s)
{
    char err[LP_ERRLEN];
    int rc;

    struct lp_backoff bo = { 0 };
    int64_t start = lp_mono_ms();

    s->f.now = lp_now_ms();
    if (s->c.nshards)
        return shards_redis(s);
    for (;;) {
        struct lp_stat *v[1] = { s };
        if ((rc = lp_redis_connect(s->c.redis, err)) < 0) {
            redis_failed(s, err, rc == LP_REDIS_EAUTH ? LP_STAT_REDIS_PERM
                                                      : LP_STAT_REDIS_TEMP);
            return LP_STAT_EREDIS;
        }
        /* its slot moved while asked: connected again, the route
         * reading the map again, and asked again (quiet meanwhile) */
        s->quiet = 1;
        rc = ask_round(v, 1);
        s->quiet = 0;
        if (rc)
            return rc;
        if (!s->f.redis_failed)
            return 0;
        if (!s->redirected || lp_mono_ms() - start >= s->c.timeout) {
            char m[LP_ERRLEN];
            int how = s->f.redis_failed;
            snprintf(m, sizeof m, "%s", s->f.redis_err);
            s->f.redis_failed = 0;
            redis_failed(s, m, how);
            return LP_STAT_EREDIS;
        }
        figures_reset(s);
        poll(NULL, 0, (int)lp_backoff_next(&bo));
    }
}

/* Measures the tree at path: the files of kinds k1 and k2. Returns 1, or
 * 0 when it cannot be read (warned of: "OPT PATH: why"). keep: NULL, or
 * where to hand over the tree's descriptor when it returns 1 (the caller
 * closes it). */
static int measure(struct lp_stat *s, const char *opt, const char *path,
                   int k1, int k2, uint64_t *bytes, uint64_t *files,
                   int *keep)
{
    char err[LP_ERRLEN];
    struct lp_tfile *v;
    size_t n;
    int fd, ok = 0;

    if ((fd = lp_fs_root(path, 0, err)) < 0) {
        lp_notice(&s->c.notify, LP_NOTICE_WARN, "%s %s", opt, err);
    } else if (lp_tree_walk(fd, NULL, &v, &n, err) < 0) {
        lp_notice(&s->c.notify, LP_NOTICE_WARN, "%s %s: %s", opt, path, err);
    } else {
        ok = 1;
        for (size_t i = 0; i < n; i++)
            if (v[i].kind == k1 || v[i].kind == k2) {
                *bytes += v[i].size;
                (*files)++;
            }
        lp_tree_free(v, n);
    }
    if (ok && keep) {
        *keep = fd;
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The drains' journals below the archive tree dirfd (which the walk of
 * measure skips, as every name starting with '.'): how many hold
 * segments, their bytes and the age of the oldest segment. One that
 * cannot be read is warned of and left unknown. */
static void journals(struct lp_stat *s, int dirfd)
{
    struct lp_stat_figures *f = &s->f;
    char err[LP_ERRLEN];
    unsigned count;
    uint64_t bytes;
    int64_t oldest;

    if (lp_journal_usage(dirfd, &count, &bytes, &oldest, err) < 0) {
        lp_notice(&s->c.notify, LP_NOTICE_WARN, "--dir %s: %s", s->c.dir,
                  err);
        return;
    }
    f->have_journal = 1;
    f->journals = count;
    f->journal_bytes = bytes;
    if (count > 0)
        /* a segment written after the time of the measure: new */
        f->journal_age_ms = oldest < f->now ? f->now - oldest : 0;
}

void lp_stat_files(struct lp_stat *s)
{
    struct lp_stat_figures *f = &s->f;
    int fd = -1;

    if (f->now == 0)
        f->now = lp_now_ms();   /* Redis was not asked */
    f->journal_age_ms = -1;     /* until journals() finds a segment */
    if (s->c.wal)
        f->have_wal = measure(s, "--wal", s->c.wal, LP_T_WAL, LP_T_WAL,
                              &f->wal_bytes, &f->wal_segments, NULL);
    if (s->c.dir)
        f->have_dir = measure(s, "--dir", s->c.dir, LP_T_JSONL, LP_T_GZ,
                              &f->dir_bytes, &f->dir_files, &fd);
    if (fd >= 0) {
        journals(s, fd);
        close(fd);
    }
}

int lp_stat_count_after(struct lp_stat *s, const char *last, uint64_t limit,
                        uint64_t *n)
{
    char err[LP_ERRLEN], from[LP_STREAM_IDLEN];
    int rc = 0;

    *n = 0;
    snprintf(from, sizeof from, "%s", last[0] ? last : "0-0");
    while (*n <= limit) {
        uint64_t want = limit + 1 - *n;
        struct lp_stream_err e;
        struct lp_page p;
        struct lp_entry en;
        size_t got;
        if ((rc = answered(s, lp_stream_range(s->c.redis, s->c.stream, from,
                                              1, NULL,
                                              want < 10000 ? want : 10000,
                                              &p, &e), NULL, &e)))
            break;
        got = p.n;
        from[0] = '\0';
        if (got > 0 && lp_entry_get(p.entries, got - 1, &en, err) == 0 &&
            en.idlen < sizeof from) {
            memcpy(from, en.id, en.idlen);
            from[en.idlen] = '\0';
        }
        lp_page_free(&p);
        *n += got;
        if (from[0] == '\0')
            break;
    }
    return rc;
}

/* ---- NDJSON ------------------------------------------------------------- */

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

/* An age in ms as seconds with three decimals, or null when < 0. */
static void jage(struct lp_buf *b, int64_t ms)
{
    char t[32];

    if (ms < 0) {
        lp_buf_adds(b, "null");
        return;
    }
    snprintf(t, sizeof t, "%.3f", (double)ms / 1000.0);
    lp_buf_adds(b, t);
}

/* The groups, as a JSON array's members. */
static void json_groups(const struct lp_stat_figures *f, struct lp_buf *b,
                        int total)
{
    for (size_t i = 0; i < f->ng; i++) {
        const struct lp_group_info *x = &f->g[i];
        const struct lp_stat_oldest *o = &f->old[i];
        if (i)
            lp_buf_addc(b, ',');
        lp_buf_adds(b, "{\"name\":");
        lp_buf_add_jstr(b, x->name, x->namelen);
        lp_buf_adds(b, ",\"consumers\":");
        jnum(b, x->consumers);
        lp_buf_adds(b, ",\"pending\":");
        jnum(b, x->pending);
        lp_buf_adds(b, ",\"lag\":");
        if (x->lag >= 0)
            jnum(b, x->lag);
        else
            lp_buf_adds(b, "null");
        lp_buf_adds(b, ",\"last_delivered_id\":");
        if (total)
            lp_buf_adds(b, "null");     /* one a shard: in its object */
        else
            jstr(b, x->last_delivered);
        lp_buf_adds(b, ",\"oldest_pending_id\":");
        if (o->id[0])
            jstr(b, o->id);
        else
            lp_buf_adds(b, "null");
        lp_buf_adds(b, ",\"oldest_pending_age_seconds\":");
        jage(b, o->age_ms);
        lp_buf_addc(b, '}');
    }
}

/* The Redis part of s's object (its figures): "length" to "producers",
 * each member after a comma. list: each producer (--producers); key:
 * the producers' key named (not in a sharded stream's totals). */
static void json_redis(const struct lp_stat *s, struct lp_buf *b, int list,
                       int key)
{
    const struct lp_stat_figures *f = &s->f;
    char pkey[512];

    lp_buf_adds(b, ",\"length\":");
    jnum(b, f->length);
    if (f->first_id[0]) {
        lp_buf_adds(b, ",\"first_id\":");
        jstr(b, f->first_id);
        lp_buf_adds(b, ",\"last_id\":");
        jstr(b, f->last_id);
    }
    lp_buf_adds(b, ",\"groups\":[");
    json_groups(f, b, s->c.nshards > 0);
    lp_buf_adds(b, "],\"dlq\":{\"key\":");
    jstr(b, s->c.dlq);
    lp_buf_adds(b, ",\"length\":");
    jnum(b, f->dlq);
    lp_buf_adds(b, "},\"producers\":{");
    if (key) {
        lp_buf_adds(b, "\"key\":");
        lp_buf_add_jstr(b, pkey, pkey_of(s, pkey, sizeof pkey));
        lp_buf_addc(b, ',');
    }
    lp_buf_adds(b, "\"count\":");
    if (f->producers >= 0)
        jnum(b, f->producers);
    else
        lp_buf_adds(b, "null");
    if (list) {
        lp_buf_adds(b, ",\"list\":[");
        for (size_t i = 0; i < f->nprod; i++) {
            const struct lp_stat_producer *p = &f->prod[i];
            if (i)
                lp_buf_addc(b, ',');
            lp_buf_adds(b, "{\"name\":");
            jstr(b, p->name);
            lp_buf_adds(b, ",\"position\":");
            jnum(b, (long long)p->pos);
            lp_buf_adds(b, ",\"age_seconds\":");
            jage(b, p->age_ms);
            if (p->cursor) {
                lp_buf_adds(b, ",\"cursor\":");
                jstr(b, p->cursor);
            }
            lp_buf_addc(b, '}');
        }
        lp_buf_addc(b, ']');
    }
    lp_buf_addc(b, '}');
}

char *lp_stat_json(const struct lp_stat *s)
{
    const struct lp_stat_figures *f = &s->f;
    struct lp_buf b = { 0 };
    char ts[40];

    lp_time_format(f->now, ts);
    lp_buf_adds(&b, "{\"time\":\"");
    lp_buf_adds(&b, ts);
    lp_buf_adds(&b, "\",\"stream\":");
    jstr(&b, s->c.stream);
    if (f->redis_failed) {
        /* nothing of Redis is known: rather null than a half picture */
        lp_buf_adds(&b, ",\"length\":null,\"groups\":null,"
                    "\"dlq\":{\"key\":");
        jstr(&b, s->c.dlq);
        lp_buf_adds(&b, ",\"length\":null},\"redis_error\":");
        jstr(&b, f->redis_err);
        goto files;
    }
    json_redis(s, &b, s->c.producers && !s->c.nshards, !s->c.nshards);
    if (s->c.nshards) {
        lp_buf_adds(&b, ",\"shards\":[");
        for (size_t i = 0; i < s->c.nshards; i++) {
            const struct lp_stat *x = s->sh[i];
            if (i)
                lp_buf_addc(&b, ',');
            lp_buf_adds(&b, "{\"index\":");
            jnum(&b, (long long)i);
            lp_buf_adds(&b, ",\"stream\":");
            jstr(&b, x->c.stream);
            if (x->node[0]) {
                lp_buf_adds(&b, ",\"node\":");
                jstr(&b, x->node);
            }
            json_redis(x, &b, s->c.producers, 1);
            lp_buf_addc(&b, '}');
        }
        lp_buf_addc(&b, ']');
    }
files:
    if (f->have_wal) {
        lp_buf_adds(&b, ",\"wal\":{\"dir\":");
        jstr(&b, s->c.wal);
        lp_buf_adds(&b, ",\"bytes\":");
        jnum(&b, (long long)f->wal_bytes);
        lp_buf_adds(&b, ",\"segments\":");
        jnum(&b, (long long)f->wal_segments);
        lp_buf_addc(&b, '}');
    }
    if (f->have_dir) {
        lp_buf_adds(&b, ",\"archive\":{\"dir\":");
        jstr(&b, s->c.dir);
        lp_buf_adds(&b, ",\"bytes\":");
        jnum(&b, (long long)f->dir_bytes);
        lp_buf_adds(&b, ",\"files\":");
        jnum(&b, (long long)f->dir_files);
        if (f->have_journal) {
            lp_buf_adds(&b, ",\"journals\":");
            jnum(&b, (long long)f->journals);
            lp_buf_adds(&b, ",\"journal_bytes\":");
            jnum(&b, (long long)f->journal_bytes);
        } else {
            /* unknown: rather null than 0 */
            lp_buf_adds(&b, ",\"journals\":null,\"journal_bytes\":null");
        }
        lp_buf_adds(&b, ",\"oldest_journal_age_seconds\":");
        jage(&b, f->journal_age_ms);
        lp_buf_addc(&b, '}');
    }
    lp_buf_adds(&b, "}\n");
    lp_buf_addc(&b, '\0');
    return b.p;
}

/* ---- metrics ------------------------------------------------------------ */

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

/* stream="st" in l, and shard="i" after it when i >= 0 */
static void lbl_stream(struct lp_buf *l, const char *st, long i)
{
    char t[24];

    lbl(l, "stream", st, strlen(st));
    if (i >= 0) {
        lp_buf_addc(l, ',');
        snprintf(t, sizeof t, "%ld", i);
        lbl(l, "shard", t, strlen(t));
    }
}

/* The stream's, the groups' and the DLQ's gauges: of s, or of shard i
 * (>= 0) of stream st. */
static void redis_metrics(const struct lp_stat *s, struct lp_metrics *m,
                          struct lp_buf *l, const char *st, long si)
{
    const struct lp_stat_figures *f = &s->f;

    l->len = 0;
    lbl_stream(l, st, si);
    lp_metric_set(lp_gauge(m, "logpipe_stream_length", l->p,
                           "Entries in the stream."), (double)f->length);
    for (size_t i = 0; i < f->ng; i++) {
        const struct lp_group_info *x = &f->g[i];
        const struct lp_stat_oldest *o = &f->old[i];
        l->len = 0;
        lbl_stream(l, st, si);
        lp_buf_addc(l, ',');
        lbl(l, "group", x->name, x->namelen);
        lp_metric_set(lp_gauge(m, "logpipe_group_consumers", l->p,
                               "Consumers of the group."),
                      (double)x->consumers);
        lp_metric_set(lp_gauge(m, "logpipe_group_pending", l->p,
                               "Entries delivered, not acknowledged."),
                      (double)x->pending);
        if (x->lag >= 0)
            lp_metric_set(lp_gauge(m, "logpipe_group_lag", l->p,
                                   "Entries not yet delivered to the group."),
                          (double)x->lag);
        lp_metric_set(lp_gauge(m, "logpipe_group_oldest_pending_age_seconds",
                               l->p, "Age of the oldest pending entry."),
                      o->age_ms >= 0 ?
                      (double)o->age_ms / 1000.0 : 0);
    }
    l->len = 0;
    lbl(l, "key", s->c.dlq, strlen(s->c.dlq));
    lp_metric_set(lp_gauge(m, "logpipe_dlq_length", l->p,
                           "Entries in the dead letter stream."),
                  (double)f->dlq);
    l->len = 0;
    lbl_stream(l, st, si);
    if (f->producers >= 0)
        lp_metric_set(lp_gauge(m, "logpipe_producers", l->p,
                               "Producers of logpipe-send with a position."),
                      (double)f->producers);
    for (size_t i = 0; i < f->nprod; i++) {
        const struct lp_stat_producer *p = &f->prod[i];
        l->len = 0;
        lbl_stream(l, st, si);
        lp_buf_addc(l, ',');
        lbl(l, "producer", p->name, strlen(p->name));
        lp_metric_set(lp_gauge(m, "logpipe_producer_position", l->p,
                               "The position a producer last stored."),
                      (double)p->pos);
        lp_metric_set(lp_gauge(m, "logpipe_producer_age_seconds", l->p,
                               "Since a producer last stored."),
                      p->age_ms >= 0 ? (double)p->age_ms / 1000.0 : 0);
    }
}

struct lp_metrics *lp_stat_metrics(const struct lp_stat *s)
{
    const struct lp_stat_figures *f = &s->f;
    struct lp_metrics *m = lp_metrics_new(&s->c.notify);
    struct lp_buf l = { 0 };

    if (!f->redis_failed && s->c.nshards == 0)
        redis_metrics(s, m, &l, s->c.stream, -1);
    for (size_t i = 0; !f->redis_failed && i < s->c.nshards; i++)
        redis_metrics(s->sh[i], m, &l, s->c.stream, (long)i);
    if (f->have_wal) {
        l.len = 0;
        lbl(&l, "dir", s->c.wal, strlen(s->c.wal));
        lp_metric_set(lp_gauge(m, "logpipe_wal_bytes", l.p,
                               "Bytes of logpipe-send WAL segments."),
                      (double)f->wal_bytes);
        lp_metric_set(lp_gauge(m, "logpipe_wal_segments", l.p,
                               "Segment files of the logpipe-send WAL."),
                      (double)f->wal_segments);
    }
    if (f->have_dir) {
        l.len = 0;
        lbl(&l, "dir", s->c.dir, strlen(s->c.dir));
        lp_metric_set(lp_gauge(m, "logpipe_archive_bytes", l.p,
                               "Bytes of the archive tree's day files."),
                      (double)f->dir_bytes);
        lp_metric_set(lp_gauge(m, "logpipe_archive_files", l.p,
                               "Day files of the archive tree."),
                      (double)f->dir_files);
        if (f->have_journal) {
            const char *age = "logpipe_archive_oldest_journal_age_seconds";
            lp_metric_set(lp_gauge(m, "logpipe_archive_journals", l.p,
                                   "Drain journals with segments in the "
                                   "archive tree."),
                          (double)f->journals);
            lp_metric_set(lp_gauge(m, "logpipe_archive_journal_bytes", l.p,
                                   "Bytes of the drain journals' segments."),
                          (double)f->journal_bytes);
            lp_metric_set(lp_gauge(m, age, l.p,
                                   "Age of the oldest journal segment."),
                          f->journal_age_ms >= 0 ?
                          (double)f->journal_age_ms / 1000.0 : 0);
        }
    }
    lp_metric_set(lp_gauge(m, "logpipe_redis_up", "",
                           "1 when Redis answered every command, 0 when "
                           "not: its figures are then missing."),
                  f->redis_failed ? 0 : 1);
    lp_metric_set(lp_gauge(m, "logpipe_stat_time_seconds", "",
                           "When this was measured (Unix time)."),
                  (double)f->now / 1000.0);
    lp_buf_free(&l);
    return m;
}
