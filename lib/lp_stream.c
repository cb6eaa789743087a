/* lp_stream.c -- Redis streams as logpipe asks them, one function a need */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_stream.h"

/* e for "no answer": the message lp_redis wrote into e->msg stays. */
static int no_answer(struct lp_stream_err *e)
{
    e->code = LP_STREAM_EIO;
    return -1;
}

/* e for an error reply, which it frees. */
static int refused(struct lp_reply *rep, struct lp_stream_err *e)
{
    e->code = lp_reply_error_class(rep);
    lp_reply_text(rep, e->msg, 300);
    lp_reply_free(rep);
    return -1;
}

static int shape(struct lp_stream_err *e)
{
    e->code = LP_STREAM_ESHAPE;
    snprintf(e->msg, sizeof e->msg, "unexpected reply");
    return -1;
}

/*
 * Sends argv (lens NULL: NUL-terminated strings) and waits for the answer:
 * 0 with *rep, which is no error reply (the caller frees it), or -1 with e.
 */
static int call(struct lp_redis *r, const char *cmd, int argc,
                const char **argv, const size_t *lens, struct lp_reply **rep,
                struct lp_stream_err *e)
{
    size_t l[8];

    if (lens == NULL) {
        for (int i = 0; i < argc; i++)
            l[i] = strlen(argv[i]);
        lens = l;
    }
    e->cmd = cmd;
    e->code = 0;
    e->msg[0] = '\0';
    if ((*rep = lp_redis_cmdv(r, e->msg, argc, argv, lens)) == NULL)
        return no_answer(e);
    if (lp_reply_type(*rep) == LP_REPLY_ERROR) {
        refused(*rep, e);
        *rep = NULL;
        return -1;
    }
    return 0;
}

/* An ID inside a reply into id: 0, or -1 when it is no string that fits. */
static int copy_id(const struct lp_reply *x, char id[LP_STREAM_IDLEN])
{
    size_t n;
    const char *s = x ? lp_reply_str(x, &n) : NULL;

    id[0] = '\0';
    if (s == NULL || n >= LP_STREAM_IDLEN)
        return -1;
    memcpy(id, s, n);
    id[n] = '\0';
    return 0;
}

/* Queues argv (NUL-terminated strings when lens is NULL): 0, or -1 when
 * out of memory. */
static int append(struct lp_redis *r, int argc, const char **argv,
                  const size_t *lens)
{
    size_t l[8];

    if (lens == NULL) {
        for (int i = 0; i < argc; i++)
            l[i] = strlen(argv[i]);
        lens = l;
    }
    return lp_redis_append(r, argc, argv, lens) < 0 ? -1 : 0;
}

int lp_stream_len_append(struct lp_redis *r, const char *key)
{
    const char *argv[] = { "XLEN", key };

    return append(r, 2, argv, NULL);
}

int lp_stream_len_reply(struct lp_redis *r, long long *len,
                        struct lp_stream_err *e)
{
    struct lp_reply *rep;
    int rc = 0;

    *len = 0;
    if (lp_stream_reply(r, "XLEN", &rep, e) < 0)
        return -1;
    if (lp_reply_type(rep) == LP_REPLY_INTEGER)
        *len = lp_reply_int(rep);
    else
        rc = shape(e);
    lp_reply_free(rep);
    return rc;
}

/* out of memory while queueing: said as such */
static int nomem(struct lp_stream_err *e, const char *cmd)
{
    e->cmd = cmd;
    e->code = LP_STREAM_ENOMEM;
    snprintf(e->msg, sizeof e->msg, "out of memory");
    return -1;
}

int lp_stream_len(struct lp_redis *r, const char *key, long long *len,
                  struct lp_stream_err *e)
{
    *len = 0;
    if (lp_stream_len_append(r, key) < 0)
        return nomem(e, "XLEN");
    return lp_stream_len_reply(r, len, e);
}

int lp_stream_end_id_append(struct lp_redis *r, const char *key, int last)
{
    const char *fwd[] = { "XRANGE", key, "-", "+", "COUNT", "1" };
    const char *rev[] = { "XREVRANGE", key, "+", "-", "COUNT", "1" };

    return append(r, 6, last ? rev : fwd, NULL);
}

int lp_stream_end_id_reply(struct lp_redis *r, int last,
                           char id[LP_STREAM_IDLEN], struct lp_stream_err *e)
{
    struct lp_reply *rep;
    int rc = 0;

    id[0] = '\0';
    if (lp_stream_reply(r, last ? "XREVRANGE" : "XRANGE", &rep, e) < 0)
        return -1;
    /* no entry, or no array: nothing there */
    if (lp_reply_len(rep) > 0 &&
        copy_id(lp_reply_at(lp_reply_at(rep, 0), 0), id) < 0)
        rc = shape(e);
    lp_reply_free(rep);
    return rc;
}

/* The ID of the first entry of an XRANGE/XREVRANGE answer. */
static int end_id(struct lp_redis *r, const char *key, int last,
                  char id[LP_STREAM_IDLEN], struct lp_stream_err *e)
{
    id[0] = '\0';
    if (lp_stream_end_id_append(r, key, last) < 0)
        return nomem(e, last ? "XREVRANGE" : "XRANGE");
    return lp_stream_end_id_reply(r, last, id, e);
}

int lp_stream_first_id(struct lp_redis *r, const char *key,
                       char id[LP_STREAM_IDLEN], struct lp_stream_err *e)
{
    return end_id(r, key, 0, id, e);
}

int lp_stream_last_id(struct lp_redis *r, const char *key,
                      char id[LP_STREAM_IDLEN], struct lp_stream_err *e)
{
    return end_id(r, key, 1, id, e);
}

void lp_page_free(struct lp_page *p)
{
    lp_reply_free(p->rep);
    p->rep = NULL;
    p->entries = NULL;
    p->n = 0;
}

int lp_stream_range(struct lp_redis *r, const char *key, const char *from,
                    int after, const char *to, uint64_t count,
                    struct lp_page *p, struct lp_stream_err *e)
{
    char start[80], n[24];
    const char *argv[6] = { "XRANGE", key, start, to ? to : "+", "COUNT",
                            n };
    char err[LP_ERRLEN];

    p->rep = NULL;
    p->entries = NULL;
    p->n = 0;
    snprintf(start, sizeof start, "%s%s", from && after ? "(" : "",
             from ? from : "-");
    snprintf(n, sizeof n, "%" PRIu64, count);
    if (call(r, "XRANGE", count ? 6 : 4, argv, NULL, &p->rep, e) < 0)
        return -1;
    if (lp_reply_entries(p->rep, 1, &p->entries, err) < 0)
        p->entries = NULL;
    p->n = p->entries ? lp_reply_len(p->entries) : 0;
    return 0;
}

void lp_group_info_free(struct lp_group_info *g, size_t n)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(g[i].name);
    free(g);
}

/* The fields of one group of an XINFO GROUPS answer into x. */
static int group_of(const struct lp_reply *gr, struct lp_group_info *x)
{
    x->lag = -1;
    for (size_t k = 0; k + 1 < lp_reply_len(gr); k += 2) {
        const char *f = lp_reply_str(lp_reply_at(gr, k), NULL);
        const struct lp_reply *v = lp_reply_at(gr, k + 1);
        if (f == NULL)
            continue;
        if (strcmp(f, "name") == 0) {
            /* any bytes, any length: copied whole */
            size_t l;
            const char *nm = lp_reply_str(v, &l);
            if (nm && x->name == NULL) {
                if ((x->name = malloc(l + 1)) == NULL)
                    return -1;
                memcpy(x->name, nm, l);
                x->name[l] = '\0';
                x->namelen = l;
            }
        } else if (strcmp(f, "consumers") == 0) {
            x->consumers = lp_reply_int(v);
        } else if (strcmp(f, "pending") == 0) {
            x->pending = lp_reply_int(v);
        } else if (strcmp(f, "lag") == 0 &&
                   lp_reply_type(v) == LP_REPLY_INTEGER) {
            x->lag = lp_reply_int(v);
        } else if (strcmp(f, "last-delivered-id") == 0) {
            copy_id(v, x->last_delivered);
        }
    }
    if (x->name == NULL && (x->name = strdup("")) == NULL)
        return -1;
    return 0;
}

int lp_stream_groups_append(struct lp_redis *r, const char *key)
{
    const char *argv[] = { "XINFO", "GROUPS", key };

    return append(r, 3, argv, NULL);
}

int lp_stream_groups_reply(struct lp_redis *r, struct lp_group_info **g,
                           size_t *n, struct lp_stream_err *e)
{
    struct lp_reply *rep;
    size_t ng;

    *g = NULL;
    *n = 0;
    if (lp_stream_reply(r, "XINFO GROUPS", &rep, e) < 0)
        return -1;
    if (lp_reply_type(rep) != LP_REPLY_ARRAY) {
        lp_reply_free(rep);
        return shape(e);
    }
    if ((ng = lp_reply_len(rep)) > 0 &&
        (*g = calloc(ng, sizeof **g)) == NULL)
        goto nomem;
    for (size_t i = 0; i < ng; i++)
        if (group_of(lp_reply_at(rep, i), &(*g)[i]) < 0)
            goto nomem;
    *n = ng;
    lp_reply_free(rep);
    return 0;
nomem:
    lp_group_info_free(*g, ng);
    *g = NULL;
    lp_reply_free(rep);
    return nomem(e, "XINFO GROUPS");
}

int lp_stream_groups(struct lp_redis *r, const char *key,
                     struct lp_group_info **g, size_t *n,
                     struct lp_stream_err *e)
{
    *g = NULL;
    *n = 0;
    if (lp_stream_groups_append(r, key) < 0)
        return nomem(e, "XINFO GROUPS");
    return lp_stream_groups_reply(r, g, n, e);
}

long long lp_stream_group_lag(const struct lp_reply *rep, const char *group)
{
    long long lag = -1;

    if (lp_reply_type(rep) != LP_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < lp_reply_len(rep); i++) {
        struct lp_group_info g = { 0 };
        if (group_of(lp_reply_at(rep, i), &g) == 0 && g.name &&
            strcmp(g.name, group) == 0)
            lag = g.lag;
        free(g.name);
        if (lag >= 0)
            break;
    }
    return lag;
}

int lp_stream_pending_oldest_append(struct lp_redis *r, const char *key,
                                    const char *group, size_t glen)
{
    const char *argv[3] = { "XPENDING", key, group };
    size_t lens[3] = { 8, strlen(key), glen };

    return append(r, 3, argv, lens);
}

int lp_stream_pending_oldest_reply(struct lp_redis *r,
                                   char id[LP_STREAM_IDLEN],
                                   struct lp_stream_err *e)
{
    struct lp_reply *rep;
    const struct lp_reply *x;
    int rc = 0;

    id[0] = '\0';
    if (lp_stream_reply(r, "XPENDING", &rep, e) < 0)
        return -1;
    /* [count, smallest ID (nil: none), greatest ID, consumers] */
    x = lp_reply_at(rep, 1);
    if (x == NULL || (lp_reply_type(x) != LP_REPLY_NIL &&
                      copy_id(x, id) < 0))
        rc = shape(e);
    lp_reply_free(rep);
    return rc;
}

int lp_stream_pending_oldest(struct lp_redis *r, const char *key,
                             const char *group, size_t glen,
                             char id[LP_STREAM_IDLEN],
                             struct lp_stream_err *e)
{
    id[0] = '\0';
    if (lp_stream_pending_oldest_append(r, key, group, glen) < 0)
        return nomem(e, "XPENDING");
    return lp_stream_pending_oldest_reply(r, id, e);
}

int lp_stream_redirected(const struct lp_stream_err *e)
{
    const char *m = e->msg;

    if (e->code == LP_STREAM_EIO) {
        /* the connection lp_redis closed after a redirect says so */
        return strstr(m, "connecting again where the cluster says") != NULL;
    }
    if (e->code <= 0)
        return 0;
    return strncmp(m, "MOVED ", 6) == 0 || strncmp(m, "ASK ", 4) == 0 ||
           strncmp(m, "TRYAGAIN", 8) == 0 ||
           strncmp(m, "CLUSTERDOWN", 11) == 0;
}

/* ---- pipelined answers ------------------------------------------------ */

int lp_stream_reply(struct lp_redis *r, const char *cmd,
                    struct lp_reply **rep, struct lp_stream_err *e)
{
    e->cmd = cmd;
    e->code = 0;
    e->msg[0] = '\0';
    if (lp_redis_reply(r, rep, e->msg) < 0)
        return no_answer(e);
    if (lp_reply_type(*rep) != LP_REPLY_ERROR)
        return 0;
    refused(*rep, e);
    *rep = NULL;
    return -1;
}
