/* tool_shards.c -- the shards of a stream, for stat, dlq and replay */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_exit.h"
#include "lp_parse.h"
#include "lp_shards.h"
#include "tool_opt.h"
#include "tool_shards.h"

void tool_shards_free(struct tool_shards *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (s->name)
            free(s->name[i]);
        if (s->dlq)
            free(s->dlq[i]);
        if (s->node)
            free(s->node[i]);
    }
    for (size_t i = 0; i < s->nconn; i++)
        lp_redis_free(s->conn[i]);
    free(s->name);
    free(s->dlq);
    free(s->node);
    free(s->r);
    free(s->conn);
    memset(s, 0, sizeof *s);
}

/* A connected connection to key's node, kept in s->conn. */
static int connect_to(struct lp_common *c, int64_t timeout,
                      struct tool_shards *s, const char *key,
                      struct lp_redis **out, char *err)
{
    struct lp_redis *r = tool_redis_key(c, key, err);
    int rc;

    if (r == NULL)
        return LP_EX_CONFIG;
    lp_redis_set_timeout(r, timeout);
    s->conn[s->nconn++] = r;
    if ((rc = lp_redis_connect(r, err)) != 0)
        return rc == LP_REDIS_EAUTH ? LP_EX_CONFIG : LP_EX_UNAVAILABLE;
    *out = r;
    return 0;
}

int tool_shards_open(struct lp_common *c, int64_t timeout,
                     struct tool_shards *s, char *err)
{
    char e[LP_ERRLEN], name[1200];
    const char *base = c->dlq_set ? c->dlq : "logs:dlq";
    struct lp_redis *first;
    unsigned n = 0;
    int rc;

    memset(s, 0, sizeof *s);
    if (strpbrk(c->stream, "{}"))
        return 0;               /* a sharded stream's name has none */
    if (!tool_cluster_reached())
        return 0;               /* the engine's connect says why */
    if ((first = tool_redis(c, err)) == NULL)
        return LP_EX_CONFIG;
    lp_redis_set_timeout(first, timeout);
    if (lp_redis_connect(first, e) != 0) {
        lp_redis_free(first);   /* the tool's own connect says why */
        return 0;
    }
    rc = lp_shards_read(first, c->cluster, c->stream, &n, err);
    if (rc != 0 || n <= 1) {
        lp_redis_free(first);
        if (rc == LP_REDIS_ETEMP)
            return 0;           /* as above: the tool finds out */
        if (rc != 0 && strstr(err, "NOPERM")) {
            size_t l = strlen(err);
            snprintf(err + l, LP_ERRLEN - l, " (the count of a sharded "
                     "stream's shards: the user needs +get on it, as in "
                     "examples/users.acl)");
        }
        return rc == 0 ? 0 : LP_EX_CONFIG;
    }
    if (c->dlq_set && strpbrk(c->dlq, "{}")) {
        lp_redis_free(first);
        snprintf(err, LP_ERRLEN, "--dlq %.200s: stream %.200s has %u "
                 "shards, whose dead letter streams are named "
                 "%.200s:{N}: a name without '{' or '}' is needed",
                 c->dlq, c->stream, n, c->dlq);
        return LP_EX_CONFIG;
    }
    s->n = n;
    if ((s->name = calloc(n, sizeof *s->name)) == NULL ||
        (s->dlq = calloc(n, sizeof *s->dlq)) == NULL ||
        (s->node = calloc(n, sizeof *s->node)) == NULL ||
        (s->r = calloc(n, sizeof *s->r)) == NULL ||
        (s->conn = calloc(n + 1, sizeof *s->conn)) == NULL) {
        lp_redis_free(first);
        goto oom;
    }
    s->conn[s->nconn++] = first;
    for (unsigned i = 0; i < n; i++) {
        if (lp_shard_name(c->stream, i, n, name, sizeof name, err) < 0)
            return LP_EX_CONFIG;
        if ((s->name[i] = strdup(name)) == NULL)
            goto oom;
        if (lp_shard_name(base, i, n, name, sizeof name, err) < 0)
            return LP_EX_CONFIG;
        if ((s->dlq[i] = strdup(name)) == NULL)
            goto oom;
        if (tool_cluster_where(s->name[i], name, sizeof name, err) != 0)
            return LP_EX_UNAVAILABLE;
        if ((s->node[i] = strdup(name)) == NULL)
            goto oom;
    }
    if (!c->cluster) {
        for (unsigned i = 0; i < n; i++)
            s->r[i] = first;
        return 0;
    }
    /* one connection a node: the first shard on it routes it */
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; j < i && s->r[i] == NULL; j++)
            if (strcmp(s->node[j], s->node[i]) == 0)
                s->r[i] = s->r[j];
        if (s->r[i] == NULL &&
            (rc = connect_to(c, timeout, s, s->name[i], &s->r[i], err)))
            return rc;
    }
    return 0;
oom:
    snprintf(err, LP_ERRLEN, "out of memory");
    return LP_EX_SOFTWARE;
}

int tool_shards_reroute(struct lp_common *c, int64_t timeout,
                        struct tool_shards *s, unsigned i, char *err)
{
    char node[300];
    struct lp_redis *r, **v;
    char *nd;
    int rc;

    if (i >= s->n) {
        snprintf(err, LP_ERRLEN, "shard %u: no such shard", i);
        return -1;
    }
    if ((v = realloc(s->conn, (s->nconn + 1) * sizeof *v)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    s->conn = v;
    /* routed by the shard's own name: its connect reads the map again */
    if ((r = tool_redis_key(c, s->name[i], err)) == NULL)
        return -1;
    lp_redis_set_timeout(r, timeout);
    s->conn[s->nconn++] = r;
    if ((rc = lp_redis_connect(r, err)) != 0)
        return -1;
    s->r[i] = r;
    if (tool_key_node(s->name[i], 0, node, sizeof node) == 0 &&
        (nd = strdup(node)) != NULL) {
        free(s->node[i]);
        s->node[i] = nd;
    }
    return 0;
}
