/* lp_aside.c -- questions to Redis that an event loop never waits for */
#include "lp_aside.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "lp_parse.h"
#include "lp_time.h"

struct ask {
    lp_aside_fn *fn;            /* NULL: forgotten, its reply dropped */
    void *ctx;
    int64_t at;                 /* mono ms it was asked */
};

struct lp_aside {
    struct lp_redis *r;
    struct ask *q;              /* a ring of max_pending */
    size_t cap, head, n;
    int64_t timeout;
};

struct lp_aside *lp_aside_new(struct lp_redis *r, size_t max_pending,
                              int64_t timeout_ms)
{
    struct lp_aside *a = calloc(1, sizeof *a);

    if (a == NULL || max_pending == 0 ||
        (a->q = calloc(max_pending, sizeof *a->q)) == NULL) {
        free(a);
        lp_redis_free(r);
        return NULL;
    }
    a->r = r;
    a->cap = max_pending;
    a->timeout = timeout_ms;
    return a;
}

/* Every question in flight fails with why; the connection is closed. */
static void fail_all(struct lp_aside *a, const char *why)
{
    lp_redis_disconnect(a->r);
    while (a->n > 0) {
        struct ask k = a->q[a->head];
        a->head = (a->head + 1) % a->cap;
        a->n--;
        if (k.fn)
            k.fn(k.ctx, NULL, why);
    }
}

void lp_aside_free(struct lp_aside *a)
{
    if (a == NULL)
        return;
    fail_all(a, "stopping");
    lp_redis_free(a->r);
    free(a->q);
    free(a);
}

int lp_aside_connect(struct lp_aside *a, char *err)
{
    if (lp_redis_connected(a->r))
        return 0;
    return lp_redis_connect(a->r, err);
}

int lp_aside_connected(const struct lp_aside *a)
{
    return lp_redis_connected(a->r);
}

int lp_aside_cmdv(struct lp_aside *a, int argc, const char **argv,
                  const size_t *lens, lp_aside_fn *fn, void *ctx, char *err)
{
    char e2[LP_ERRLEN];

    if (!lp_redis_connected(a->r)) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(a->r));
        return -1;
    }
    if (a->n == a->cap) {
        snprintf(err, LP_ERRLEN, "%s: %zu questions waiting for Redis "
                 "already", lp_redis_name(a->r), a->cap);
        return -1;
    }
    if (lp_redis_append(a->r, argc, argv, lens) < 0) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    if (lp_redis_flush(a->r, err) < 0) {
        snprintf(e2, sizeof e2, "%s", err);
        fail_all(a, e2);
        return -1;
    }
    a->q[(a->head + a->n) % a->cap] =
        (struct ask){ .fn = fn, .ctx = ctx, .at = lp_mono_ms() };
    a->n++;
    return 0;
}

int lp_aside_fd(const struct lp_aside *a)
{
    return lp_redis_connected(a->r) ? lp_redis_fd(a->r) : -1;
}

size_t lp_aside_pending(const struct lp_aside *a)
{
    return a->n;
}

void lp_aside_ready(struct lp_aside *a)
{
    char err[LP_ERRLEN];
    struct pollfd p;
    struct lp_reply *rep;
    int rc;

    if (!lp_redis_connected(a->r))
        return;
    /* readable now? (the caller's poll may have been for another fd) */
    p.fd = lp_redis_fd(a->r);
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) <= 0)
        return;
    if (lp_redis_read(a->r, err) < 0 || a->n == 0) {
        /* closed (Redis restarted, a timeout of the server's), or bytes
         * no question asked for: connected again by the loop */
        fail_all(a, err);
        return;
    }
    while (a->n > 0 && (rc = lp_redis_next(a->r, &rep, err)) != 0) {
        struct ask k;
        if (rc < 0) {
            fail_all(a, err);
            return;
        }
        k = a->q[a->head];
        a->head = (a->head + 1) % a->cap;
        a->n--;
        if (k.fn)
            k.fn(k.ctx, rep, NULL);
        lp_reply_free(rep);
    }
}

int64_t lp_aside_due(const struct lp_aside *a)
{
    int64_t left;

    if (a->n == 0 || a->timeout <= 0)
        return -1;
    left = a->q[a->head].at + a->timeout - lp_mono_ms();
    return left > 0 ? left : 0;
}

void lp_aside_tick(struct lp_aside *a)
{
    char why[LP_ERRLEN];

    if (lp_aside_due(a) != 0)
        return;
    snprintf(why, sizeof why, "%s: no reply within %lld ms",
             lp_redis_name(a->r), (long long)a->timeout);
    fail_all(a, why);
}

void lp_aside_forget(struct lp_aside *a, void *ctx)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->q[(a->head + i) % a->cap].ctx == ctx)
            a->q[(a->head + i) % a->cap].fn = NULL;
}
