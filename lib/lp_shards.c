/* lp_shards.c -- a stream spread over N stream keys: names and count */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_shards.h"

int lp_shards_check(const char *stream, unsigned long n, char *err)
{
    if (n < 1 || n > LP_SHARDS_MAX) {
        snprintf(err, LP_ERRLEN, "%lu shards: from 1 to %d", n,
                 LP_SHARDS_MAX);
        return -1;
    }
    if (n > 1 && strpbrk(stream, "{}")) {
        snprintf(err, LP_ERRLEN, "stream %.200s: a sharded stream's name "
                 "has no '{' or '}' (each shard's name carries a hash tag "
                 "of its own: %.200s:{N})", stream, stream);
        return -1;
    }
    return 0;
}

int lp_shard_name(const char *stream, unsigned i, unsigned n, char *out,
                  size_t cap, char *err)
{
    char tag[16];
    unsigned lo, hi, k, slot;
    int tl, len;

    if (n < 1 || n > LP_SHARDS_MAX || i >= n) {
        snprintf(err, LP_ERRLEN, "shard %u of %u: no such shard", i, n);
        return -1;
    }
    if (n == 1) {
        len = snprintf(out, cap, "%s", stream);
        goto done;
    }
    lo = (unsigned)((unsigned long)i * LP_CLUSTER_SLOTS / n);
    hi = (unsigned)((unsigned long)(i + 1) * LP_CLUSTER_SLOTS / n);
    /* each range has >= 16 slots; CRC16 of decimals spreads evenly: a
     * few thousand tries at most (checked for every n by unit-shards) */
    for (k = 0;; k++) {
        tl = snprintf(tag, sizeof tag, "%u", k);
        slot = lp_key_slot(tag, (size_t)tl);
        if (slot >= lo && slot < hi)
            break;
    }
    len = snprintf(out, cap, "%s:{%s}", stream, tag);
done:
    if (len < 0 || (size_t)len >= cap) {
        snprintf(err, LP_ERRLEN, "%.200s: a name too long for its shards",
                 stream);
        return -1;
    }
    return len;
}

int lp_shards_key(int cluster, const char *stream, char *out, size_t cap,
                  char *err)
{
    return lp_key_aux(cluster, stream, LP_SHARDS_SUFFIX, out, cap, err);
}

static int parse(const struct lp_reply *rep, const char *key, unsigned *n,
                 char *err)
{
    char buf[24], *end;
    const char *s;
    size_t len;
    unsigned long v;

    if (lp_reply_type(rep) == LP_REPLY_NIL) {
        *n = 0;
        return 0;
    }
    if (lp_reply_type(rep) == LP_REPLY_STRING) {
        s = lp_reply_str(rep, &len);
        if (len > 0 && len < sizeof buf && s[0] >= '1' && s[0] <= '9') {
            memcpy(buf, s, len);
            buf[len] = '\0';
            errno = 0;
            v = strtoul(buf, &end, 10);
            if (errno == 0 && *end == '\0' && v >= 1 && v <= LP_SHARDS_MAX) {
                *n = (unsigned)v;
                return 0;
            }
        }
    }
    snprintf(err, LP_ERRLEN, "%.200s: not a count of shards (1 to %d): "
             "was it set by another program?", key, LP_SHARDS_MAX);
    return LP_SHARDS_EBAD;
}

static int ask(struct lp_redis *r, int cluster, const char *stream,
               unsigned setn, unsigned *n, char *err)
{
    char key[1100], num[16];
    const char *argv[5];
    size_t lens[5];
    struct lp_reply *rep;
    int rc, kl, argc = 0;

    if ((kl = lp_shards_key(cluster, stream, key, sizeof key, err)) < 0)
        return LP_SHARDS_EBAD;
    if (setn) {
        snprintf(num, sizeof num, "%u", setn);
        argv[argc] = "SET", lens[argc++] = 3;
        argv[argc] = key, lens[argc++] = (size_t)kl;
        argv[argc] = num, lens[argc++] = strlen(num);
        argv[argc] = "NX", lens[argc++] = 2;
        argv[argc] = "GET", lens[argc++] = 3;    /* Redis >= 7.0 */
    } else {
        argv[argc] = "GET", lens[argc++] = 3;
        argv[argc] = key, lens[argc++] = (size_t)kl;
    }
    if ((rep = lp_redis_cmdv(r, err, argc, argv, lens)) == NULL)
        return LP_REDIS_ETEMP;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[200];

        switch (lp_reply_error_class(rep)) {
        case LP_RERR_TEMP:
            rc = LP_REDIS_ETEMP;
            break;
        case LP_RERR_KEY:       /* WRONGTYPE: not a count */
            rc = LP_SHARDS_EBAD;
            break;
        default:
            rc = LP_REDIS_EAUTH;
        }
        snprintf(err, LP_ERRLEN, "%s %.200s: %s", argv[0], key,
                 lp_reply_text(rep, t, sizeof t));
        lp_reply_free(rep);
        return rc;
    }
    rc = parse(rep, key, n, err);
    lp_reply_free(rep);
    if (rc == 0 && setn) {
        if (*n == 0) {
            *n = setn;          /* SET NX GET: nil, it was set now */
        } else if (*n != setn) {
            snprintf(err, LP_ERRLEN, "stream %.200s has %u shards (%.200s), "
                     "not %u: the events stored so far are spread over "
                     "those; to change their number stop every sender, "
                     "drain the stream, then delete %.200s", stream, *n, key, setn, key);
            return LP_SHARDS_EBAD;
        }
    }
    return rc;
}

int lp_shards_read(struct lp_redis *r, int cluster, const char *stream,
                   unsigned *n, char *err)
{
    return ask(r, cluster, stream, 0, n, err);
}

int lp_shards_record(struct lp_redis *r, int cluster, const char *stream,
                     unsigned n, char *err)
{
    unsigned got = 0;
    struct lp_reply *rep;
    long long len;
    int rc;

    if (lp_shards_check(stream, n, err) < 0)
        return LP_SHARDS_EBAD;
    if ((rc = ask(r, cluster, stream, 0, &got, err)) != 0 || got != 0)
        return rc == 0 ? ask(r, cluster, stream, n, &got, err) : rc;
    /* none recorded yet: the stream's own key must be empty, or its
     * events would stay there, where no drain of the shards reads */
    if ((rep = lp_redis_cmd(r, err, "XLEN", stream, (char *)NULL)) == NULL)
        return LP_REDIS_ETEMP;
    len = lp_reply_type(rep) == LP_REPLY_INTEGER ? lp_reply_int(rep) : 0;
    lp_reply_free(rep);
    if (len > 0) {
        snprintf(err, LP_ERRLEN, "stream %.200s holds %lld entries of its "
                 "own, sent without --shards: drain them (logpipe-drain "
                 "--once) and delete the key (DEL %.200s) before spreading "
                 "the stream over shards, or use another --stream", stream,
                 len, stream);
        return LP_SHARDS_EBAD;
    }
    return ask(r, cluster, stream, n, &got, err);
}

int lp_shard_id_parse(const char *s, size_t n, int *shard, uint64_t *ms,
                      uint64_t *seq)
{
    const char *d1 = memchr(s, '-', n), *d2;
    unsigned long i = 0;
    size_t k;

    *shard = -1;
    d2 = d1 ? memchr(d1 + 1, '-', n - (size_t)(d1 - s) - 1) : NULL;
    if (d2 == NULL)
        return lp_stream_id_parse(s, n, ms, seq) < 0 ? -1 : 0;
    k = (size_t)(d1 - s);
    if (k == 0 || k > 4 || (s[0] == '0' && k > 1))
        return -1;
    for (size_t j = 0; j < k; j++) {
        if (s[j] < '0' || s[j] > '9')
            return -1;
        i = i * 10 + (unsigned long)(s[j] - '0');
    }
    if (i >= LP_SHARDS_MAX ||
        lp_stream_id_parse(d1 + 1, n - k - 1, ms, seq) < 0)
        return -1;
    *shard = (int)i;
    return 1;
}
