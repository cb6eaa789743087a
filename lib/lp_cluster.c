/* lp_cluster.c -- Redis Cluster: key slots, the slot map, redirects, and
 * commands routed over one connection per master */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_time.h"

/*
 * Debian 12's hiredis 0.14.1 knows nothing of clusters, and
 * hiredis-cluster needs hiredis >= 1.0: the routing is here, over
 * lp_redis connections (plain or TLS). What Redis's cluster spec asks of
 * a client: slots by CRC16 with hash tags, the map from CLUSTER SLOTS,
 * MOVED (the map changed: load it again), ASK (a slot being migrated:
 * ASKING, then the command, on that node, once), TRYAGAIN and CLUSTERDOWN
 * (wait). Nodes are kept for the object's life, so the lp_redis pointers
 * handed out stay valid across reloads.
 */

/* ---- slots --------------------------------------------------------------- */

/* CRC16-XMODEM's table (Redis's crc16.c has the same), for 0x1021 */
static const uint16_t crc_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0
};

uint16_t lp_crc16(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint16_t c = 0;

    for (size_t i = 0; i < len; i++)
        c = (uint16_t)((c << 8) ^ crc_table[((c >> 8) ^ p[i]) & 0xff]);
    return c;
}

unsigned lp_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    if (open) {
        size_t after = len - (size_t)(open - key) - 1;
        close = memchr(open + 1, '}', after);
        if (close && close > open + 1)
            return lp_crc16(open + 1, (size_t)(close - open - 1)) &
                   (LP_CLUSTER_SLOTS - 1);
    }
    return lp_crc16(key, len) & (LP_CLUSTER_SLOTS - 1);
}

/* ---- the slot map -------------------------------------------------------- */

/* A host as a reply gives it, checked and copied: 0 or -1 with why. */
static int host_copy(const char *s, size_t n, char *out, size_t cap,
                     char *why, size_t wcap)
{
    if (n >= cap) {
        snprintf(why, wcap, "a host of %zu bytes", n);
        return -1;
    }
    /* brackets only around an IPv6 address in a redirect, taken off
     * before: inside a host they would not read back the same */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f ||
            s[i] == '[' || s[i] == ']') {
            snprintf(why, wcap, "a host with a space, a control "
                     "character or a bracket");
            return -1;
        }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* The index of host:port among m's nodes, added when new; -1 when full. */
static long map_node(struct lp_slot_map *m, const char *host, int port,
                     const char *id, size_t idlen)
{
    struct lp_slot_node *nn;

    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (long)i;
    if (m->nnodes >= LP_CLUSTER_NODES)
        return -1;
    if ((m->nnodes & (m->nnodes - 1)) == 0) {   /* 0, 1, 2, 4...: grow */
        size_t cap = m->nnodes ? m->nnodes * 2 : 4;
        if ((nn = realloc(m->nodes, cap * sizeof *nn)) == NULL)
            return -2;
        m->nodes = nn;
    }
    nn = &m->nodes[m->nnodes];
    snprintf(nn->host, sizeof nn->host, "%s", host);
    nn->port = port;
    memcpy(nn->id, id, idlen);
    nn->id[idlen] = '\0';
    return (long)m->nnodes++;
}

void lp_slot_map_free(struct lp_slot_map *m)
{
    if (m == NULL)
        return;
    free(m->nodes);
    m->nodes = NULL;
    m->nnodes = 0;
}

int lp_slot_map_parse(const struct lp_reply *rep, const char *asked,
                      struct lp_slot_map *m, char *err)
{
    char why[300], t[200];
    size_t n;

    memset(m->owner, 0, sizeof m->owner);
    m->nnodes = 0;
    m->nodes = NULL;
    if (lp_reply_type(rep) != LP_REPLY_ARRAY) {
        snprintf(why, sizeof why, "not a list of slot ranges: %s",
                 lp_reply_text(rep, t, sizeof t));
        goto bad;
    }
    n = lp_reply_len(rep);
    if (n > LP_CLUSTER_SLOTS) {
        snprintf(why, sizeof why, "%zu slot ranges, more than there are "
                 "slots", n);
        goto bad;
    }
    for (size_t i = 0; i < n; i++) {
        const struct lp_reply *e = lp_reply_at(rep, i), *node, *h, *p, *id;
        long long a, b;
        const char *hs, *ids = "";
        size_t hl = 0, idl = 0;
        char host[256];
        long k;

        if (lp_reply_type(e) != LP_REPLY_ARRAY || lp_reply_len(e) < 3 ||
            lp_reply_type(lp_reply_at(e, 0)) != LP_REPLY_INTEGER ||
            lp_reply_type(lp_reply_at(e, 1)) != LP_REPLY_INTEGER) {
            snprintf(why, sizeof why, "range %zu is not [start, end, "
                     "master, ...]", i);
            goto bad;
        }
        a = lp_reply_int(lp_reply_at(e, 0));
        b = lp_reply_int(lp_reply_at(e, 1));
        if (a < 0 || b < a || b >= LP_CLUSTER_SLOTS) {
            snprintf(why, sizeof why, "range %zu: slots %lld-%lld, not "
                     "within 0-16383", i, a, b);
            goto bad;
        }
        node = lp_reply_at(e, 2);
        if (lp_reply_type(node) != LP_REPLY_ARRAY || lp_reply_len(node) < 2) {
            snprintf(why, sizeof why, "range %zu: its master is not "
                     "[host, port, ...]", i);
            goto bad;
        }
        h = lp_reply_at(node, 0);
        p = lp_reply_at(node, 1);
        if (lp_reply_type(h) == LP_REPLY_NIL) {
            hs = "";
        } else if (lp_reply_type(h) == LP_REPLY_STRING) {
            hs = lp_reply_str(h, &hl);
        } else {
            snprintf(why, sizeof why, "range %zu: its master's host is "
                     "not a string", i);
            goto bad;
        }
        if (lp_reply_type(p) != LP_REPLY_INTEGER || lp_reply_int(p) < 1 ||
            lp_reply_int(p) > 65535) {
            snprintf(why, sizeof why, "range %zu: its master's port is "
                     "not within 1-65535", i);
            goto bad;
        }
        if (lp_reply_len(node) >= 3) {
            id = lp_reply_at(node, 2);
            if (lp_reply_type(id) != LP_REPLY_STRING ||
                (ids = lp_reply_str(id, &idl), idl > 40)) {
                snprintf(why, sizeof why, "range %zu: its master's ID is "
                         "not a string of at most 40 bytes", i);
                goto bad;
            }
        }
        if (hl == 0) {
            /* unknown-endpoint: the host we asked */
            if (asked == NULL || *asked == '\0') {
                snprintf(why, sizeof why, "range %zu: its master's host "
                         "is not given", i);
                goto bad;
            }
            hs = asked;
            hl = strlen(asked);
        } else if (hl == 1 && hs[0] == '?') {
            snprintf(why, sizeof why, "range %zu: its master's host name "
                     "is not known ('?': cluster-announce-hostname)", i);
            goto bad;
        }
        {
            char hw[100];
            if (host_copy(hs, hl, host, sizeof host, hw, sizeof hw) < 0) {
                snprintf(why, sizeof why, "range %zu: %s", i, hw);
                goto bad;
            }
        }
        if ((k = map_node(m, host, (int)lp_reply_int(p), ids, idl)) < 0) {
            if (k == -2)
                snprintf(why, sizeof why, "out of memory");
            else
                snprintf(why, sizeof why, "more than %d masters",
                         LP_CLUSTER_NODES);
            goto bad;
        }
        for (long long s = a; s <= b; s++) {
            if (m->owner[s]) {
                snprintf(why, sizeof why, "slot %lld is in two ranges", s);
                goto bad;
            }
            m->owner[s] = (uint16_t)(k + 1);
        }
    }
    return 0;
bad:
    snprintf(err, LP_ERRLEN, "CLUSTER SLOTS: %s", why);
    lp_slot_map_free(m);
    memset(m->owner, 0, sizeof m->owner);
    return -1;
}

/* ---- redirects ----------------------------------------------------------- */

/* "<slot> <host>:<port>" of a MOVED or ASK: 0 or -1 */
static int redir_where(const char *s, size_t n, struct lp_redir *d)
{
    size_t i = 0, k, colon;
    unsigned long v = 0;
    const char *h;
    size_t hl;
    char w[8];

    while (i < n && i < 5 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (unsigned long)(s[i++] - '0');
    if (i == 0 || v >= LP_CLUSTER_SLOTS || i >= n || s[i] != ' ')
        return -1;
    d->slot = (unsigned)v;
    s += i + 1;
    n -= i + 1;
    /* the port follows the last ':' (an IPv6 host has several) */
    for (colon = n; colon > 0 && s[colon - 1] != ':'; colon--)
        ;
    if (colon == 0)
        return -1;
    colon--;
    k = n - colon - 1;
    if (k == 0 || k > 5)
        return -1;
    v = 0;
    for (size_t j = colon + 1; j < n; j++) {
        if (s[j] < '0' || s[j] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[j] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    d->port = (int)v;
    h = s;
    hl = colon;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
        if (hl == 0)
            return -1;
    }
    return host_copy(h, hl, d->host, sizeof d->host, w, sizeof w);
}

int lp_redir_parse(const struct lp_reply *rep, struct lp_redir *d, char *err)
{
    const char *s;
    size_t n, skip;
    char t[200];

    memset(d, 0, sizeof *d);
    if (lp_reply_type(rep) != LP_REPLY_ERROR)
        return LP_REDIR_NONE;
    if (lp_reply_is_error(rep, "TRYAGAIN") ||
        lp_reply_is_error(rep, "CLUSTERDOWN")) {
        d->kind = LP_REDIR_WAIT;
        return d->kind;
    }
    if (lp_reply_is_error(rep, "MOVED")) {
        d->kind = LP_REDIR_MOVED;
        skip = 6;
    } else if (lp_reply_is_error(rep, "ASK")) {
        d->kind = LP_REDIR_ASK;
        skip = 4;
    } else {
        return LP_REDIR_NONE;
    }
    s = lp_reply_str(rep, &n);
    if (n < skip || redir_where(s + skip, n - skip, d) < 0) {
        snprintf(err, LP_ERRLEN, "a redirect that cannot be read: %s",
                 lp_reply_text(rep, t, sizeof t));
        memset(d, 0, sizeof *d);
        return -1;
    }
    return d->kind;
}

/* ---- the connections ----------------------------------------------------- */

struct node {
    char host[256];
    int port;
    char id[41];
    struct lp_redis *r;         /* NULL until first used */
};

struct lp_cluster {
    struct lp_url seed;         /* as given, with its database */
    char *password;
    struct lp_tls tls;          /* its strings are ours */
    int has_tls;
    int64_t timeout_ms;
    int mode;                   /* 0 before lp_cluster_open */
    struct lp_redis *single;    /* standalone; a unix seed's connection */
    struct node *nodes;         /* every node ever in a map, never freed */
    size_t nnodes, cap;
    uint16_t owner[LP_CLUSTER_SLOTS];  /* node index + 1; 0: no master */
    size_t *masters;            /* node indexes, in first-slot order */
    size_t nmasters;
    int stale;
    struct lp_cluster_stats st;
};

static char *dup_or_null(const char *s, int *oom)
{
    char *d;

    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        *oom = 1;
    return d;
}

struct lp_cluster *lp_cluster_new(const struct lp_url *seed,
                                  const char *password,
                                  const struct lp_tls *tls)
{
    struct lp_cluster *c = calloc(1, sizeof *c);
    int oom = 0;

    if (c == NULL)
        return NULL;
    c->seed = *seed;
    c->timeout_ms = 10000;
    c->password = dup_or_null(password, &oom);
    if (tls) {
        c->has_tls = 1;
        c->tls.ca = dup_or_null(tls->ca, &oom);
        c->tls.cert = dup_or_null(tls->cert, &oom);
        c->tls.key = dup_or_null(tls->key, &oom);
        c->tls.server_name = dup_or_null(tls->server_name, &oom);
        c->tls.insecure = tls->insecure;
    }
    if (oom) {
        lp_cluster_free(c);
        return NULL;
    }
    return c;
}

static void close_all(struct lp_cluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        lp_redis_free(c->nodes[i].r);
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = c->cap = 0;
    lp_redis_free(c->single);
    c->single = NULL;
    free(c->masters);
    c->masters = NULL;
    c->nmasters = 0;
    memset(c->owner, 0, sizeof c->owner);
    c->mode = 0;
    c->stale = 0;
}

void lp_cluster_free(struct lp_cluster *c)
{
    if (c == NULL)
        return;
    close_all(c);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free((char *)c->tls.ca);
    free((char *)c->tls.cert);
    free((char *)c->tls.key);
    free((char *)c->tls.server_name);
    memset(&c->seed, 0, sizeof c->seed);
    free(c);
}

void lp_cluster_set_timeout(struct lp_cluster *c, int64_t ms)
{
    c->timeout_ms = ms;
    if (c->single)
        lp_redis_set_timeout(c->single, ms);
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].r)
            lp_redis_set_timeout(c->nodes[i].r, ms);
}

int lp_cluster_mode(const struct lp_cluster *c)
{
    return c->mode;
}

void lp_cluster_stats(const struct lp_cluster *c, struct lp_cluster_stats *st)
{
    *st = c->st;
}

void lp_cluster_stale(struct lp_cluster *c)
{
    c->stale = 1;
}

/* A new lp_redis for u with our password, TLS and timeout; NULL + err */
static struct lp_redis *conn_new(struct lp_cluster *c, const struct lp_url *u,
                                 char *err)
{
    struct lp_redis *r = lp_redis_new(u, c->password);

    if (r == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    lp_redis_set_timeout(r, c->timeout_ms);
    if (u->tls && c->has_tls && lp_redis_tls(r, &c->tls, err) < 0) {
        lp_redis_free(r);
        return NULL;
    }
    return r;
}

/* The seed's URL for node host:port: its user, password and TLS; db 0 */
static void node_url(const struct lp_cluster *c, const char *host, int port,
                     struct lp_url *u)
{
    *u = c->seed;
    u->is_unix = 0;
    u->path[0] = '\0';
    u->db = 0;
    snprintf(u->host, sizeof u->host, "%s", host);
    u->port = port;
}

/* Node i connected: 0, LP_REDIS_ETEMP or LP_REDIS_EAUTH with err */
static int node_conn(struct lp_cluster *c, size_t i, char *err)
{
    struct node *n = &c->nodes[i];

    if (n->r == NULL) {
        struct lp_url u;
        node_url(c, n->host, n->port, &u);
        if ((n->r = conn_new(c, &u, err)) == NULL)
            return LP_REDIS_EAUTH;      /* TLS files, or memory */
    }
    if (lp_redis_connected(n->r))
        return 0;
    return lp_redis_connect(n->r, err);
}

/* The index of node host:port, added when new; -1 with err when full */
static long node_find(struct lp_cluster *c, const char *host, int port,
                      char *err)
{
    struct node *nn;

    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0)
            return (long)i;
    if (c->nnodes >= LP_CLUSTER_NODES) {
        snprintf(err, LP_ERRLEN, "%s:%d: more than %d cluster nodes", host,
                 port, LP_CLUSTER_NODES);
        return -1;
    }
    if (c->nnodes == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        if ((nn = realloc(c->nodes, cap * sizeof *nn)) == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            return -1;
        }
        c->nodes = nn;
        c->cap = cap;
    }
    nn = &c->nodes[c->nnodes];
    memset(nn, 0, sizeof *nn);
    snprintf(nn->host, sizeof nn->host, "%s", host);
    nn->port = port;
    return (long)c->nnodes++;
}

/* The host a node's redirects with no host mean: its own */
static const char *host_of(const struct lp_cluster *c,
                           const struct lp_redis *r)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].r == r)
            return c->nodes[i].host;
    /* a unix seed: a node on this host */
    return c->seed.is_unix ? "127.0.0.1" : c->seed.host;
}

/* Makes m the map: its nodes found or added; -1 with err (map unchanged) */
static int map_apply(struct lp_cluster *c, const struct lp_slot_map *m,
                     char *err)
{
    long idx[LP_CLUSTER_NODES];
    size_t *ms = NULL, nm = 0;

    for (size_t k = 0; k < m->nnodes; k++) {
        if ((idx[k] = node_find(c, m->nodes[k].host, m->nodes[k].port,
                                err)) < 0)
            return -1;      /* nodes added stay known: harmless */
        if (m->nodes[k].id[0])
            memcpy(c->nodes[idx[k]].id, m->nodes[k].id,
                   sizeof c->nodes[idx[k]].id);
    }
    if (m->nnodes && (ms = malloc(m->nnodes * sizeof *ms)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    /* masters in the order of their first slot */
    {
        unsigned char seen[LP_CLUSTER_NODES] = { 0 };
        for (size_t s = 0; s < LP_CLUSTER_SLOTS; s++) {
            unsigned o = m->owner[s];
            c->owner[s] = o ? (uint16_t)(idx[o - 1] + 1) : 0;
            if (o && !seen[o - 1]) {
                seen[o - 1] = 1;
                ms[nm++] = (size_t)idx[o - 1];
            }
        }
    }
    free(c->masters);
    c->masters = ms;
    c->nmasters = nm;
    c->stale = 0;
    c->st.reloads++;
    return 0;
}

/* CLUSTER SLOTS from r (whose host is asked), made the map */
static int reload_from(struct lp_cluster *c, struct lp_redis *r,
                       const char *asked, char *err)
{
    struct lp_slot_map m;
    struct lp_reply *rep = lp_redis_cmd(r, err, "CLUSTER", "SLOTS", NULL);
    int rc;

    if (rep == NULL)
        return -1;
    rc = lp_slot_map_parse(rep, asked, &m, err);
    lp_reply_free(rep);
    if (rc == 0) {
        char e2[LP_ERRLEN];
        rc = map_apply(c, &m, e2);
        if (rc < 0)
            snprintf(err, LP_ERRLEN, "%s: %s", lp_redis_name(r), e2);
        lp_slot_map_free(&m);
    } else {
        char e2[LP_ERRLEN];
        snprintf(e2, sizeof e2, "%s", err);
        snprintf(err, LP_ERRLEN, "%s: %s", lp_redis_name(r), e2);
    }
    return rc;
}

/* Reloads, asking node prefer first (-1: none), then the connected
 * nodes, then the others, then a unix seed */
static int reload(struct lp_cluster *c, long prefer, char *err)
{
    char e[LP_ERRLEN];

    snprintf(err, LP_ERRLEN, "no cluster node to ask for the slot map");
    if (prefer >= 0 && node_conn(c, (size_t)prefer, e) == 0) {
        if (reload_from(c, c->nodes[prefer].r, c->nodes[prefer].host,
                        e) == 0)
            return 0;
        snprintf(err, LP_ERRLEN, "%s", e);
    }
    for (int pass = 0; pass < 2; pass++) {
        /* a node added by a reload below is asked in this pass too */
        for (size_t i = 0; i < c->nnodes; i++) {
            struct node *n = &c->nodes[i];
            int up = n->r && lp_redis_connected(n->r);
            if ((long)i == prefer || up != (pass == 0))
                continue;
            if (pass == 1 && node_conn(c, i, e) != 0) {
                snprintf(err, LP_ERRLEN, "%s", e);
                continue;
            }
            if (reload_from(c, n->r, n->host, e) == 0)
                return 0;
            snprintf(err, LP_ERRLEN, "%s", e);
        }
    }
    if (c->single) {
        if (lp_redis_connected(c->single) ||
            lp_redis_connect(c->single, e) == 0) {
            if (reload_from(c, c->single, host_of(c, c->single), e) == 0)
                return 0;
        }
        snprintf(err, LP_ERRLEN, "%s", e);
    }
    c->stale = 1;
    return -1;
}

int lp_cluster_reload(struct lp_cluster *c, char *err)
{
    if (c->mode != LP_CLUSTER_CLUSTER)
        return 0;
    return reload(c, -1, err);
}

/* Does an INFO cluster reply say cluster_enabled:1? */
static int says_cluster(const struct lp_reply *rep)
{
    size_t n;
    const char *s = lp_reply_str(rep, &n);
    static const char key[] = "cluster_enabled:1";

    if (lp_reply_type(rep) != LP_REPLY_STRING || s == NULL)
        return 0;
    for (const char *p = s; p && p < s + n; ) {
        size_t left = n - (size_t)(p - s);
        if (left >= sizeof key - 1 && memcmp(p, key, sizeof key - 1) == 0)
            return 1;
        p = memchr(p, '\n', left);
        if (p)
            p++;
    }
    return 0;
}

int lp_cluster_open(struct lp_cluster *c, char *err)
{
    struct lp_url u = c->seed;
    struct lp_redis *r;
    struct lp_reply *rep;
    int rc, cluster;

    close_all(c);
    u.db = 0;
    if ((r = conn_new(c, &u, err)) == NULL)
        return LP_REDIS_EAUTH;
    if ((rc = lp_redis_connect(r, err)) != 0) {
        lp_redis_free(r);
        return rc;
    }
    if ((rep = lp_redis_cmd(r, err, "INFO", "cluster", NULL)) == NULL) {
        lp_redis_free(r);
        return LP_REDIS_ETEMP;
    }
    cluster = says_cluster(rep);
    lp_reply_free(rep);
    if (!cluster) {
        if (c->seed.db) {
            /* the URL's database, on a connection that selects it again
             * whenever it reconnects */
            lp_redis_free(r);
            if ((r = conn_new(c, &c->seed, err)) == NULL)
                return LP_REDIS_EAUTH;
            if ((rc = lp_redis_connect(r, err)) != 0) {
                lp_redis_free(r);
                return rc;
            }
        }
        c->single = r;
        c->mode = LP_CLUSTER_STANDALONE;
        return 0;
    }
    if (c->seed.db) {
        snprintf(err, LP_ERRLEN, "%s is a Redis Cluster, which has only "
                 "database 0: the URL asks for database %d",
                 lp_redis_name(r), c->seed.db);
        lp_redis_free(r);
        return LP_REDIS_EAUTH;
    }
    c->mode = LP_CLUSTER_CLUSTER;
    if (c->seed.is_unix) {
        c->single = r;
    } else {
        long i = node_find(c, c->seed.host, c->seed.port, err);
        if (i < 0) {
            lp_redis_free(r);
            close_all(c);
            return LP_REDIS_ETEMP;
        }
        c->nodes[i].r = r;
    }
    if (reload(c, c->seed.is_unix ? -1 : 0, err) < 0) {
        close_all(c);
        return LP_REDIS_ETEMP;
    }
    return 0;
}

int lp_cluster_slot_addr(struct lp_cluster *c, unsigned slot, char *host,
                         size_t cap, int *port, char *err)
{
    char e[LP_ERRLEN];
    const struct node *n;

    if (c->mode != LP_CLUSTER_CLUSTER || c->seed.is_unix) {
        snprintf(err, LP_ERRLEN, "%s: %s", c->seed.is_unix ? c->seed.path
                 : c->seed.host, c->mode != LP_CLUSTER_CLUSTER ?
                 "not connected (lp_cluster_open)" :
                 "a cluster reached through a unix socket: give a node's "
                 "host:port");
        return LP_REDIS_ETEMP;
    }
    if (slot >= LP_CLUSTER_SLOTS)
        slot = 0;
    if (c->stale && reload(c, -1, e) < 0)
        c->stale = 1;
    if (c->owner[slot] == 0) {
        snprintf(err, LP_ERRLEN, "slot %u has no master (cluster down?)",
                 slot);
        c->stale = 1;
        return LP_REDIS_ETEMP;
    }
    n = &c->nodes[c->owner[slot] - 1u];
    if (strlen(n->host) >= cap) {
        snprintf(err, LP_ERRLEN, "%.100s...: a host name too long", n->host);
        return LP_REDIS_ETEMP;
    }
    memcpy(host, n->host, strlen(n->host) + 1);
    *port = n->port;
    return 0;
}

int lp_key_aux(int cluster, const char *stream, const char *suffix,
               char *out, size_t cap, char *err)
{
    size_t sl = strlen(stream);
    const char *o = memchr(stream, '{', sl), *cl;
    int tagged = o && (cl = memchr(o + 1, '}', sl - (size_t)(o + 1 - stream)))
                 != NULL && cl > o + 1;
    int n;

    if (!cluster || tagged)
        n = snprintf(out, cap, "%s%s", stream, suffix);
    else
        n = snprintf(out, cap, "{%s}%s", stream, suffix);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, LP_ERRLEN, "%.200s: a name too long for its keys",
                 stream);
        return -1;
    }
    if (cluster && lp_key_slot(out, (size_t)n) != lp_key_slot(stream, sl)) {
        snprintf(err, LP_ERRLEN, "stream %.200s: in a Redis Cluster its "
                 "keys (%.200s) must share its slot, which a name with a "
                 "'}' and no hash tag cannot: give it a hash tag "
                 "(logs:{app})", stream, out);
        return -1;
    }
    return n;
}

int lp_cluster_slot_node(struct lp_cluster *c, unsigned slot,
                         struct lp_redis **r, char *err)
{
    char e[LP_ERRLEN];
    size_t i;
    int rc;

    *r = NULL;
    if (c->mode == LP_CLUSTER_STANDALONE) {
        if (!lp_redis_connected(c->single) &&
            (rc = lp_redis_connect(c->single, err)) != 0)
            return rc;
        *r = c->single;
        return 0;
    }
    if (c->mode != LP_CLUSTER_CLUSTER) {
        snprintf(err, LP_ERRLEN, "%s:%d: not connected (lp_cluster_open)",
                 c->seed.host, c->seed.port);
        return LP_REDIS_ETEMP;
    }
    if (slot > LP_CLUSTER_SLOTS)
        slot = LP_CLUSTER_SLOTS;
    if (c->stale && reload(c, -1, e) < 0)
        c->stale = 1;       /* the old map, for what it is worth */
    if (slot == LP_CLUSTER_SLOTS) {
        if (c->nmasters == 0) {
            snprintf(err, LP_ERRLEN, "the cluster has no master serving "
                     "slots (cluster down?)");
            c->stale = 1;
            return LP_REDIS_ETEMP;
        }
        i = c->masters[0];
    } else if (c->owner[slot] == 0) {
        snprintf(err, LP_ERRLEN, "slot %u has no master (cluster down?)",
                 slot);
        c->stale = 1;
        return LP_REDIS_ETEMP;
    } else {
        i = c->owner[slot] - 1u;
    }
    if ((rc = node_conn(c, i, err)) != 0) {
        c->stale = 1;
        return rc;
    }
    *r = c->nodes[i].r;
    return 0;
}

int lp_cluster_node(struct lp_cluster *c, const char *key, size_t len,
                    struct lp_redis **r, char *err)
{
    return lp_cluster_slot_node(c, lp_key_slot(key, len), r, err);
}

size_t lp_cluster_masters(const struct lp_cluster *c)
{
    if (c->mode == LP_CLUSTER_STANDALONE)
        return 1;
    return c->mode == LP_CLUSTER_CLUSTER ? c->nmasters : 0;
}

int lp_cluster_master(struct lp_cluster *c, size_t i, struct lp_redis **r,
                      char *err)
{
    int rc;

    *r = NULL;
    if (c->mode == LP_CLUSTER_STANDALONE && i == 0)
        return lp_cluster_slot_node(c, 0, r, err);
    if (c->mode != LP_CLUSTER_CLUSTER || i >= c->nmasters) {
        snprintf(err, LP_ERRLEN, "no master %zu", i);
        return LP_REDIS_ETEMP;
    }
    if ((rc = node_conn(c, c->masters[i], err)) != 0) {
        c->stale = 1;
        return rc;
    }
    *r = c->nodes[c->masters[i]].r;
    return 0;
}

/* ---- redirects followed -------------------------------------------------- */

void lp_cluster_try_start(struct lp_cluster *c, struct lp_cluster_try *t,
                          unsigned slot)
{
    (void)c;
    memset(t, 0, sizeof *t);
    t->slot = slot > LP_CLUSTER_SLOTS ? LP_CLUSTER_SLOTS : slot;
    t->start_ms = lp_mono_ms();
}

int lp_cluster_check(struct lp_cluster *c, struct lp_cluster_try *t,
                     const struct lp_redis *from, const struct lp_reply *rep)
{
    struct lp_redir d;
    char e[LP_ERRLEN];
    int k;

    if (c->mode != LP_CLUSTER_CLUSTER || lp_reply_type(rep) != LP_REPLY_ERROR)
        return LP_REDIR_NONE;
    if ((k = lp_redir_parse(rep, &d, e)) <= 0)
        return LP_REDIR_NONE;   /* a MOVED we cannot read: the command's */
    if (t->got.kind == LP_REDIR_NONE) {
        if ((k == LP_REDIR_MOVED || k == LP_REDIR_ASK) && d.host[0] == '\0')
            snprintf(d.host, sizeof d.host, "%s", host_of(c, from));
        t->got = d;
        snprintf(t->why, sizeof t->why, "%s: %s",
                 from ? lp_redis_name(from) : "?",
                 lp_reply_text(rep, e, sizeof t->why));
    }
    return k;
}

void lp_cluster_unreachable(struct lp_cluster *c, struct lp_cluster_try *t,
                            const char *why)
{
    c->stale = 1;
    if (t->got.kind == LP_REDIR_NONE) {
        t->got.kind = LP_REDIR_WAIT;
        snprintf(t->why, sizeof t->why, "%s", why);
    }
}

/* A wait before the next try, or -1 when the timeout is spent */
static int wait_next(struct lp_cluster *c, struct lp_cluster_try *t,
                     int64_t *wait_ms, char *err)
{
    int64_t spent = lp_mono_ms() - t->start_ms, left, ms;

    left = (c->timeout_ms > 0 ? c->timeout_ms : 10000) - spent;
    if (left <= 0) {
        snprintf(err, LP_ERRLEN, "%s (still after %lldms)", t->why,
                 (long long)spent);
        return -1;
    }
    ms = lp_backoff_next(&t->backoff);
    *wait_ms = ms < left ? ms : left;
    c->stale = 1;
    c->st.waits++;
    return LP_CLUSTER_WAIT;
}

int lp_cluster_resend(struct lp_cluster *c, struct lp_cluster_try *t,
                      struct lp_redis **r, int *asking, int64_t *wait_ms,
                      char *err)
{
    struct lp_redir d = t->got;
    char e[LP_ERRLEN];
    long i;
    int rc;

    *r = NULL;
    *asking = 0;
    *wait_ms = 0;
    memset(&t->got, 0, sizeof t->got);
    if (d.kind == LP_REDIR_WAIT)
        return wait_next(c, t, wait_ms, err);
    if (d.kind == LP_REDIR_NONE) {
        /* nothing to follow: route as the map says */
        d.kind = LP_REDIR_MOVED;
        goto route;
    }
    if (++t->redirects > LP_CLUSTER_REDIRECTS) {
        snprintf(err, LP_ERRLEN, "more than %d redirects for slot %u, the "
                 "last: %s", LP_CLUSTER_REDIRECTS, t->slot, t->why);
        return -1;
    }
    if ((i = node_find(c, d.host, d.port, err)) < 0)
        return -1;
    if (d.kind == LP_REDIR_ASK) {
        c->st.ask++;
        if ((rc = node_conn(c, (size_t)i, e)) != 0)
            goto unreachable;
        *r = c->nodes[i].r;
        *asking = 1;
        return LP_CLUSTER_RESEND;
    }
    /* MOVED: the slot is that node's now; the rest of the map has likely
     * moved too (a reshard moves ranges): load it from that node, which
     * knows best. A map that fails to load keeps the slot patched. */
    c->st.moved++;
    if (t->slot == LP_CLUSTER_SLOTS)
        t->slot = d.slot;       /* "any master" had a key after all */
    c->owner[d.slot] = (uint16_t)(i + 1);
    if (reload(c, i, e) < 0)
        c->owner[d.slot] = (uint16_t)(i + 1);
    c->stale = 0;
route:
    if ((rc = lp_cluster_slot_node(c, t->slot, r, e)) == LP_REDIS_EAUTH) {
        snprintf(err, LP_ERRLEN, "%s", e);
        return -1;
    }
    if (rc == 0)
        return LP_CLUSTER_RESEND;
unreachable:
    if (rc == LP_REDIS_EAUTH) {
        snprintf(err, LP_ERRLEN, "%s", e);
        return -1;
    }
    snprintf(t->why, sizeof t->why, "%s", e);
    return wait_next(c, t, wait_ms, err);
}

int lp_cluster_ask_node(struct lp_cluster *c, const char *msg,
                        const struct lp_redis *from, struct lp_redis **r,
                        char *err)
{
    struct lp_redir d;
    long i;
    int rc;

    *r = NULL;
    memset(&d, 0, sizeof d);
    if (c == NULL || c->mode != LP_CLUSTER_CLUSTER ||
        strncmp(msg, "ASK ", 4) != 0 ||
        redir_where(msg + 4, strlen(msg + 4), &d) < 0) {
        snprintf(err, LP_ERRLEN, "not an ASK redirect: %.200s", msg);
        return -1;
    }
    if (d.host[0] == '\0')
        snprintf(d.host, sizeof d.host, "%s", host_of(c, from));
    if ((i = node_find(c, d.host, d.port, err)) < 0)
        return -1;
    c->st.ask++;
    if ((rc = node_conn(c, (size_t)i, err)) != 0)
        return -1;
    *r = c->nodes[i].r;
    return 0;
}

int lp_cluster_asking(struct lp_redis *r)
{
    const char *argv[1] = { "ASKING" };
    size_t lens[1] = { 6 };

    return lp_redis_append(r, 1, argv, lens);
}

struct lp_reply *lp_cluster_cmdv(struct lp_cluster *c, int key_arg, int argc,
                                 const char **argv, const size_t *lens,
                                 char *err)
{
    struct lp_cluster_try t;
    struct lp_redis *r = NULL;
    struct lp_reply *rep;
    unsigned slot = LP_CLUSTER_SLOTS;
    int asking = 0, rc;
    int64_t ms;

    if (c->mode == LP_CLUSTER_STANDALONE) {
        if (!lp_redis_connected(c->single) &&
            lp_redis_connect(c->single, err) != 0)
            return NULL;
        return lp_redis_cmdv(c->single, err, argc, argv, lens);
    }
    if (key_arg >= 0 && key_arg < argc)
        slot = lp_key_slot(argv[key_arg], lens[key_arg]);
    lp_cluster_try_start(c, &t, slot);
    for (;;) {
        if (r == NULL) {
            char e[LP_ERRLEN];
            rc = lp_cluster_slot_node(c, slot, &r, e);
            if (rc == LP_REDIS_EAUTH) {
                snprintf(err, LP_ERRLEN, "%s", e);
                return NULL;
            }
            if (rc != 0) {
                lp_cluster_unreachable(c, &t, e);
                goto next;
            }
        }
        if ((asking && lp_cluster_asking(r) < 0) ||
            lp_redis_append(r, argc, argv, lens) < 0) {
            snprintf(err, LP_ERRLEN, "out of memory");
            return NULL;
        }
        if (asking) {
            if (lp_redis_reply(r, &rep, err) < 0) {
                c->stale = 1;
                return NULL;
            }
            lp_reply_free(rep);     /* +OK; an error shows in the next */
        }
        if (lp_redis_reply(r, &rep, err) < 0) {
            c->stale = 1;
            return NULL;
        }
        if (lp_cluster_check(c, &t, r, rep) == LP_REDIR_NONE)
            return rep;
        lp_reply_free(rep);
next:
        rc = lp_cluster_resend(c, &t, &r, &asking, &ms, err);
        if (rc < 0)
            return NULL;
        if (rc == LP_CLUSTER_WAIT) {
            poll(NULL, 0, (int)ms);
            r = NULL;
        }
    }
}
