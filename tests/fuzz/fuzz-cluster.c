/* fuzz-cluster.c -- libFuzzer harness: what a (hostile) cluster node says
 * to lp_cluster: CLUSTER SLOTS replies, redirects, and key slots */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_redis.h"

/*
 * The input is RESP bytes, as a server sends them; seeds are real replies
 * of Redis 7.0 to CLUSTER SLOTS (3 masters and 3 replicas, after a
 * reshard, in unknown-endpoint mode) and real MOVED, ASK, TRYAGAIN and
 * CLUSTERDOWN errors, and hand-made hostile ones.
 *
 * Checks (abort() on failure):
 *  1. lp_key_slot of the input bytes (and of every string in the reply)
 *     equals an independent CRC16-XMODEM (bit by bit) of the hash tag as
 *     the cluster spec words it.
 *  2. lp_slot_map_parse, asked with and without a host: on success every
 *     slot's owner is a node that exists, each node is a valid host
 *     (1-255 bytes, no space or control), a port 1-65535, an ID of at
 *     most 40 bytes, no two nodes alike, each owning a slot; and walking
 *     the reply independently gives the same owner for every slot a range
 *     names, and no owner for the others. On failure: an error message,
 *     an empty map, nothing leaked.
 *  3. lp_redir_parse of every node of the reply: the kind an independent
 *     reader gives (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or none, or -1 for
 *     a MOVED/ASK it cannot read), the same slot, host and port; a
 *     redirect printed again ("MOVED slot host:port") parses back the same.
 */

#define FUZZ_NAME "fuzz-cluster"
#include "fuzz.h"

/* ---- check 1 ------------------------------------------------------------ */

static unsigned ref_crc16(const unsigned char *p, size_t n)
{
    unsigned c = 0;

    for (size_t i = 0; i < n; i++) {
        c ^= (unsigned)p[i] << 8;
        for (int k = 0; k < 8; k++)
            c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    }
    return c;
}

/* "if the key contains a '{' character, and if there is a '}' character
 * on the right of '{', and if there are one or more characters between
 * the first occurrence of '{' and the first occurrence of '}', then
 * instead of hashing the key, only what is between is hashed" */
static unsigned ref_slot(const unsigned char *k, size_t n)
{
    size_t s, e;

    for (s = 0; s < n && k[s] != '{'; s++)
        ;
    if (s < n) {
        for (e = s + 1; e < n && k[e] != '}'; e++)
            ;
        if (e < n && e > s + 1)
            return ref_crc16(k + s + 1, e - s - 1) % 16384;
    }
    return ref_crc16(k, n) % 16384;
}

static void check_slot(const void *p, size_t n)
{
    unsigned got = lp_key_slot(p, n), want = ref_slot(p, n);

    CHECK(got == want, "lp_key_slot of %zu bytes gives %u, want %u", n, got,
          want);
}

/* ---- check 2 ------------------------------------------------------------ */

static int good_host(const char *h)
{
    size_t n = strnlen(h, 256);

    if (n == 0 || n >= 256)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f ||
            h[i] == '[' || h[i] == ']')
            return 0;
    return 1;
}

/* the host the reply gives for a master, as lp_slot_map_parse must take
 * it: into buf, or NULL when it is no usable host */
static const char *ref_host(const struct lp_reply *node, const char *asked,
                            char *buf)
{
    const struct lp_reply *h = lp_reply_at(node, 0);
    const char *s;
    size_t n;

    if (lp_reply_type(h) == LP_REPLY_NIL) {
        s = "";
        n = 0;
    } else {
        s = lp_reply_str(h, &n);
    }
    if (n == 0) {
        if (asked == NULL || *asked == '\0')
            return NULL;
        s = asked;
        n = strlen(asked);
    }
    if (n >= 256 || memchr(s, '\0', n))
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return good_host(buf) && strcmp(buf, "?") != 0 ? buf : NULL;
}

static void check_map(const struct lp_reply *rep, const char *asked)
{
    static struct lp_slot_map m;
    static unsigned char owned[LP_CLUSTER_NODES];
    char err[LP_ERRLEN];
    int rc;

    err[0] = '\0';
    rc = lp_slot_map_parse(rep, asked, &m, err);
    CHECK(rc == 0 || rc == -1, "lp_slot_map_parse gives %d", rc);
    if (rc < 0) {
        CHECK(err[0] != '\0' && memchr(err, '\0', LP_ERRLEN),
              "a map refused without a message");
        CHECK(m.nnodes == 0 && m.nodes == NULL, "a refused map has nodes");
        for (size_t s = 0; s < LP_CLUSTER_SLOTS; s++)
            CHECK(m.owner[s] == 0, "a refused map owns slot %zu", s);
        return;
    }
    CHECK(lp_reply_type(rep) == LP_REPLY_ARRAY, "a map from a non-array");
    CHECK(m.nnodes <= LP_CLUSTER_NODES, "%zu nodes", m.nnodes);
    memset(owned, 0, sizeof owned);
    for (size_t i = 0; i < m.nnodes; i++) {
        const struct lp_slot_node *a = &m.nodes[i];
        CHECK(good_host(a->host), "node %zu: a bad host", i);
        CHECK(a->port >= 1 && a->port <= 65535, "node %zu: port %d", i,
              a->port);
        CHECK(memchr(a->id, '\0', sizeof a->id) != NULL, "node %zu: ID", i);
        for (size_t j = 0; j < i; j++)
            CHECK(m.nodes[j].port != a->port ||
                  strcmp(m.nodes[j].host, a->host) != 0,
                  "nodes %zu and %zu are the same", j, i);
    }
    /* every range's slots are its master's, the others nobody's */
    {
        static uint16_t want[LP_CLUSTER_SLOTS];
        memset(want, 0, sizeof want);
        for (size_t r = 0; r < lp_reply_len(rep); r++) {
            const struct lp_reply *e = lp_reply_at(rep, r);
            const struct lp_reply *node = lp_reply_at(e, 2);
            long long a = lp_reply_int(lp_reply_at(e, 0));
            long long b = lp_reply_int(lp_reply_at(e, 1));
            char hb[256];
            const char *h = ref_host(node, asked, hb);
            int port = (int)lp_reply_int(lp_reply_at(node, 1));
            size_t k;

            CHECK(h != NULL, "range %zu taken with an unusable host", r);
            CHECK(a >= 0 && a <= b && b < LP_CLUSTER_SLOTS,
                  "range %zu taken: %lld-%lld", r, a, b);
            for (k = 0; k < m.nnodes; k++)
                if (m.nodes[k].port == port && strcmp(m.nodes[k].host, h) == 0)
                    break;
            CHECK(k < m.nnodes, "range %zu: its master is not a node", r);
            for (long long s = a; s <= b; s++) {
                CHECK(want[s] == 0, "slot %lld in two ranges taken", s);
                want[s] = (uint16_t)(k + 1);
            }
        }
        for (size_t s = 0; s < LP_CLUSTER_SLOTS; s++) {
            CHECK(m.owner[s] == want[s], "slot %zu: owner %u, want %u", s,
                  m.owner[s], want[s]);
            if (m.owner[s])
                owned[m.owner[s] - 1] = 1;
        }
    }
    for (size_t i = 0; i < m.nnodes; i++)
        CHECK(owned[i], "node %zu owns no slot", i);
    lp_slot_map_free(&m);
}

/* ---- check 3 ------------------------------------------------------------ */

/* the independent reader: kind, or -1 */
static int ref_redir(const char *s, size_t n, struct lp_redir *d)
{
    size_t i, c, hs, he;
    unsigned long v;
    int kind;

    memset(d, 0, sizeof *d);
    if ((n == 8 || (n > 8 && s[8] == ' ')) && memcmp(s, "TRYAGAIN", 8) == 0)
        return LP_REDIR_WAIT;
    if ((n == 11 || (n > 11 && s[11] == ' ')) &&
        memcmp(s, "CLUSTERDOWN", 11) == 0)
        return LP_REDIR_WAIT;
    if (n >= 5 && memcmp(s, "MOVED", 5) == 0 && (n == 5 || s[5] == ' ')) {
        kind = LP_REDIR_MOVED;
        i = 6;
    } else if (n >= 3 && memcmp(s, "ASK", 3) == 0 && (n == 3 || s[3] == ' ')) {
        kind = LP_REDIR_ASK;
        i = 4;
    } else {
        return LP_REDIR_NONE;
    }
    /* slot: 1 to 5 digits below 16384, then one space */
    for (v = 0, c = i; c < n && c - i < 6 && s[c] >= '0' && s[c] <= '9'; c++)
        v = v * 10 + (unsigned long)(s[c] - '0');
    if (c == i || c - i > 5 || v >= 16384 || c >= n || s[c] != ' ')
        return -1;
    d->slot = (unsigned)v;
    hs = c + 1;
    /* the port: the digits after the last ':' */
    for (c = n; c > hs && s[c - 1] != ':'; c--)
        ;
    if (c == hs)
        return -1;          /* no ':' after the slot */
    he = c - 1;             /* the host ends at that ':' */
    if (n - c < 1 || n - c > 5)
        return -1;
    for (v = 0; c < n; c++) {
        if (s[c] < '0' || s[c] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[c] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    d->port = (int)v;
    if (he - hs >= 2 && s[hs] == '[' && s[he - 1] == ']') {
        hs++;
        he--;
        if (he == hs)
            return -1;
    }
    if (he - hs >= sizeof d->host)
        return -1;
    memcpy(d->host, s + hs, he - hs);
    d->host[he - hs] = '\0';
    for (size_t k = 0; k < he - hs; k++)
        if ((unsigned char)d->host[k] <= ' ' ||
            (unsigned char)d->host[k] >= 0x7f || d->host[k] == '[' ||
            d->host[k] == ']')
            return -1;
    d->kind = kind;
    return kind;
}

static void check_redir(const struct lp_reply *rep)
{
    struct lp_redir d, w;
    char err[LP_ERRLEN];
    int k = lp_redir_parse(rep, &d, err), want = LP_REDIR_NONE;
    size_t n = 0;
    const char *s = lp_reply_str(rep, &n);

    if (lp_reply_type(rep) == LP_REPLY_ERROR)
        want = ref_redir(s, n, &w);
    CHECK(k == want, "lp_redir_parse gives %d, want %d: %.*s", k, want,
          (int)(n > 80 ? 80 : n), s ? s : "");
    if (k == -1) {
        CHECK(memchr(err, '\0', LP_ERRLEN) && strstr(err, "cannot be read"),
              "a redirect refused without a message");
        return;
    }
    CHECK(d.kind == (k < 0 ? 0 : k), "kind %d, returned %d", d.kind, k);
    if (k != LP_REDIR_MOVED && k != LP_REDIR_ASK)
        return;
    CHECK(d.slot == w.slot && d.port == w.port &&
          strcmp(d.host, w.host) == 0, "MOVED/ASK read as slot %u %s:%d, "
          "want slot %u %s:%d", d.slot, d.host, d.port, w.slot, w.host,
          w.port);
    CHECK(d.slot < LP_CLUSTER_SLOTS && d.port >= 1 && d.port <= 65535 &&
          (d.host[0] == '\0' || good_host(d.host)), "a redirect out of range");
    /* printed again, read back the same */
    {
        char line[400];
        struct lp_reply *again;
        struct lp_redir d2;
        int len = snprintf(line, sizeof line, "-%s %u %s:%d\r\n",
                           k == LP_REDIR_MOVED ? "MOVED" : "ASK", d.slot,
                           d.host, d.port);
        CHECK(lp_reply_parse(line, (size_t)len, &again) == 1,
              "a redirect printed again does not parse");
        CHECK(lp_redir_parse(again, &d2, err) == k && d2.slot == d.slot &&
              d2.port == d.port && strcmp(d2.host, d.host) == 0,
              "%s does not read back the same", line);
        lp_reply_free(again);
    }
}

static void walk(const struct lp_reply *r, int depth)
{
    size_t n;
    const char *s = lp_reply_str(r, &n);

    check_redir(r);
    if (s && n < 4096)
        check_slot(s, n);
    if (depth > 4)
        return;
    for (size_t i = 0; i < lp_reply_len(r); i++)
        walk(lp_reply_at(r, i), depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lp_reply *rep = NULL;
    char *buf;

    curlen = size;
    check_slot(data, size);
    if (fuzz_huge_array(data, size))
        return 0;
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (lp_reply_parse(buf, size, &rep) == 1) {
        check_map(rep, NULL);
        check_map(rep, "10.0.0.7");
        check_map(rep, "");
        walk(rep, 0);
    }
    lp_reply_free(rep);
    free(buf);
    return 0;
}
