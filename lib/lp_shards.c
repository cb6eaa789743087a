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

static int failed(const struct lp_reply *rep, const char *what,
                  const char *key, char *err);

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
            snprintf(err, LP_ERRLEN, "stream %.200s has %u shards "
                     "(%.200s), not %u", stream, *n, key, setn);
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

static int count_at(struct lp_redis *r, int cluster, const char *stream,
                    const char *suffix, unsigned *n, char *err);

int lp_shards_was(struct lp_redis *r, int cluster, const char *stream,
                  unsigned *n, char *err)
{
    return count_at(r, cluster, stream, LP_SHARDS_WAS_SUFFIX, n, err);
}

const char *lp_shards_who(unsigned n, char *buf, size_t cap)
{
    if (n == 1)
        snprintf(buf, cap, "a run without --shards (in the stream's own "
                 "key)");
    else
        snprintf(buf, cap, "a run of %u shards", n);
    return buf;
}

int lp_shards_gone(struct lp_redis *r, int cluster, const char *stream,
                   unsigned *n, char *err)
{
    return count_at(r, cluster, stream, LP_SHARDS_GONE_SUFFIX, n, err);
}

/* The count a key beside the stream's count holds (0: none). */
static int count_at(struct lp_redis *r, int cluster, const char *stream,
                    const char *suffix, unsigned *n, char *err)
{
    char key[1100];
    struct lp_reply *rep;
    int rc;

    *n = 0;
    if (lp_key_aux(cluster, stream, suffix, key, sizeof key, err) < 0)
        return LP_SHARDS_EBAD;
    if ((rep = lp_redis_cmd(r, err, "GET", key, (char *)NULL)) == NULL)
        return LP_REDIS_ETEMP;
    if (lp_reply_type(rep) == LP_REPLY_ERROR)
        rc = failed(rep, "GET", key, err);
    else
        rc = parse(rep, key, n, err);
    lp_reply_free(rep);
    return rc;
}

int lp_shard_mark(int cluster, const char *shard, char *out, size_t cap,
                  char *err)
{
    return lp_key_aux(cluster, shard, LP_SHARDS_SUFFIX, out, cap, err);
}

/*
 * A shard's marker (KEYS[1]), its stream KEYS[2]: ARGV[1] the value to
 * set ('' none: only look; '-' delete it), ARGV[2] '1' when the stream
 * must be drained (no entries, or every group with nothing pending and
 * nothing left to read: lag 0), ARGV[3..] the values it may hold ('' for
 * none, 'to:*' any change's). KEYS[3], KEYS[4] when given: the shard's
 * producers hash and LP_SHARDS_PRODUCERS_WAS beside it: when the marker
 * becomes a count it did not hold, the hash goes aside there (or, none,
 * what is there is deleted): the fields of the count before, which a
 * shard of both counts (one name) would otherwise mix with the new
 * count's. Returns the value it held, or an error
 * LPMARK <value> (not one of those) or LPBUSY <why> (not drained). One
 * script, so that what it checks still holds when it sets: no batch of a
 * sender lands between (the gate runs in the same slot).
 */
static const char MARK[] =
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "local v = ''\n"
    "if t == 'string' then v = redis.call('GET', KEYS[1])\n"
    "elseif t ~= 'none' then\n"
    "  return {err = 'LPMARK ' .. KEYS[1] .. ' is a ' .. t}\n"
    "end\n"
    "local ok = false\n"
    "for i = 3, #ARGV do\n"
    "  if ARGV[i] == v or (ARGV[i] == 'to:*' and\n"
    "                      string.sub(v, 1, 3) == 'to:') then ok = true end\n"
    "end\n"
    "if not ok then return {err = 'LPMARK ' .. v} end\n"
    "if ARGV[2] == '1' and redis.call('TYPE', KEYS[2]).ok == 'stream' and\n"
    "   redis.call('XLEN', KEYS[2]) > 0 then\n"
    "  local gs = redis.call('XINFO', 'GROUPS', KEYS[2])\n"
    "  if #gs == 0 then\n"
    "    return {err = 'LPBUSY ' .. KEYS[2] .. ' holds entries no group '\n"
    "                 .. 'has read'}\n"
    "  end\n"
    "  for _, g in ipairs(gs) do\n"
    "    local f = {}\n"
    "    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "    if f['pending'] ~= 0 then\n"
    "      return {err = 'LPBUSY ' .. KEYS[2] .. ': group ' .. f['name'] ..\n"
    "                   ' has ' .. f['pending'] .. ' entries pending'}\n"
    "    end\n"
    "    if f['lag'] ~= 0 then\n"
    "      return {err = 'LPBUSY ' .. KEYS[2] .. ': group ' .. f['name'] ..\n"
    "                   ' has ' .. (f['lag'] and f['lag'] .. ' ' or '') ..\n"
    "                   'entries left to read'}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #KEYS == 4 and ARGV[1] ~= '' and ARGV[1] ~= '-' and v ~= ARGV[1]\n"
    "then\n"
    "  if redis.call('EXISTS', KEYS[3]) == 1 then\n"
    "    redis.call('RENAME', KEYS[3], KEYS[4])\n"
    "  else redis.call('DEL', KEYS[4]) end\n"
    "end\n"
    "if ARGV[1] == '-' then redis.call('DEL', KEYS[1])\n"
    "elseif ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end\n"
    "return v\n";

/* The count key from ARGV[1] to ARGV[2], and ARGV[1] recorded as the
 * count before (KEYS[2], the "was" key: one step of history, in the same
 * slot), in one step: 'OK', or the value it holds */
static const char SWAP[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2])\n"
    "  redis.call('SET', KEYS[2], ARGV[1])\n"
    "  return 'OK'\n"
    "end\n"
    "return v or ''\n";

/* The first count (none recorded): KEYS[1] the stream's own key, KEYS[2]
 * the count key, KEYS[3] the "was" key, KEYS[4] the stream's producers
 * hash (all in the stream's slot). The stream holding entries: their
 * number; else the count set to ARGV[1] unless one is there (its value
 * returned, nil when set now), and, when senders without --shards stored
 * there (their positions in KEYS[4]), 1 recorded as the count before: a
 * run of the shards then reads its producer's fields on the stream's own
 * key too. One script, so that no batch of a sender without --shards
 * lands between the look and the count: its gate (lp_pipeline.c) looks
 * at the count key in the same slot, and is refused once it is set. */
static const char FIRST[] =
    "if redis.call('TYPE', KEYS[1]).ok == 'stream' then\n"
    "  local n = redis.call('XLEN', KEYS[1])\n"
    "  if n > 0 then return n end\n"
    "end\n"
    "local v = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'GET')\n"
    "if not v and redis.call('EXISTS', KEYS[4]) == 1 then\n"
    "  redis.call('SET', KEYS[3], '1')\n"
    "end\n"
    "return v\n";

/* FIRST: 0 with *n the count now (n when set now), LP_SHARDS_EBAD with
 * err (entries of the stream's own, or not a count there), or as ask(). */
static int first(struct lp_redis *r, int cluster, const char *stream,
                 unsigned setn, unsigned *n, char *err)
{
    char key[1100], wkey[1100], pkey[1100], num[16];
    const char *argv[8];
    size_t lens[8];
    struct lp_reply *rep;
    int kl, wl, pl, rc;

    if ((kl = lp_shards_key(cluster, stream, key, sizeof key, err)) < 0 ||
        (wl = lp_key_aux(cluster, stream, LP_SHARDS_WAS_SUFFIX, wkey,
                         sizeof wkey, err)) < 0 ||
        (pl = lp_key_aux(cluster, stream, ":producers", pkey, sizeof pkey,
                         err)) < 0)
        return LP_SHARDS_EBAD;
    snprintf(num, sizeof num, "%u", setn);
    argv[0] = "EVAL", lens[0] = 4;
    argv[1] = FIRST, lens[1] = sizeof FIRST - 1;
    argv[2] = "4", lens[2] = 1;
    argv[3] = stream, lens[3] = strlen(stream);
    argv[4] = key, lens[4] = (size_t)kl;
    argv[5] = wkey, lens[5] = (size_t)wl;
    argv[6] = pkey, lens[6] = (size_t)pl;
    argv[7] = num, lens[7] = strlen(num);
    if ((rep = lp_redis_cmdv(r, err, 8, argv, lens)) == NULL)
        return LP_REDIS_ETEMP;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        rc = failed(rep, "EVAL", key, err);
    } else if (lp_reply_type(rep) == LP_REPLY_INTEGER) {
        snprintf(err, LP_ERRLEN, "stream %.200s holds %lld entries of "
                 "its own, sent without --shards: drain them "
                 "(logpipe-drain --once) and delete the key (DEL "
                 "%.200s) before spreading the stream over shards, or "
                 "use another --stream", stream, lp_reply_int(rep), stream);
        rc = LP_SHARDS_EBAD;
    } else if ((rc = parse(rep, key, n, err)) == 0 && *n == 0) {
        *n = setn;              /* nil: set now */
    } else if (rc == 0 && *n != setn && *n < 2) {
        snprintf(err, LP_ERRLEN, "stream %.200s has %u shards (%.200s), "
                 "not %u", stream, *n, key, setn);
        rc = LP_SHARDS_EBAD;
    }
    lp_reply_free(rep);
    return rc;
}

/* Connections to the shards' slots (lp_shards_net), one a master. */
struct pool {
    const struct lp_shards_net *net;
    struct lp_redis *r0;
    int cluster;
    struct {
        char node[280];
        char *key;              /* routes r: lives as long */
        struct lp_redis *r;
    } *c;
    size_t n, cap;
};

static void pool_free(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        lp_redis_free(p->c[i].r);
        free(p->c[i].key);
    }
    free(p->c);
    p->c = NULL;
    p->n = p->cap = 0;
}

/* A connected connection to key's master: 0 with *out (the pool's), or
 * LP_REDIS_ETEMP / LP_REDIS_EAUTH with err. */
static int pool_get(struct pool *p, const char *key, struct lp_redis **out,
                    char *err)
{
    char node[280] = "";
    struct lp_redis *r;
    size_t i;

    if (p->net == NULL || p->net->new_key == NULL) {
        *out = p->r0;
        return 0;
    }
    if (p->net->key_node &&
        p->net->key_node(p->net->ctx, key, 0, node, sizeof node) < 0)
        node[0] = '\0';
    for (i = 0; node[0] && i < p->n; i++)
        if (strcmp(p->c[i].node, node) == 0 && lp_redis_connected(p->c[i].r)) {
            *out = p->c[i].r;
            return 0;
        }
    if (p->n == p->cap) {
        size_t c2 = p->cap ? 2 * p->cap : 8;
        void *v = realloc(p->c, c2 * sizeof *p->c);
        if (v == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            return LP_REDIS_ETEMP;
        }
        p->c = v;
        p->cap = c2;
    }
    i = p->n;
    memset(&p->c[i], 0, sizeof p->c[i]);
    snprintf(p->c[i].node, sizeof p->c[i].node, "%s", node);
    if ((p->c[i].key = strdup(key)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_REDIS_ETEMP;
    }
    if ((r = p->net->new_key(p->net->ctx, p->c[i].key, err)) == NULL) {
        free(p->c[i].key);
        return LP_REDIS_EAUTH;
    }
    p->c[i].r = r;
    p->n++;
    lp_redis_set_timeout(r, p->net->timeout);
    *out = r;
    return lp_redis_connect(r, err);
}

/* An error reply of ours: LP_REDIS_ETEMP, LP_SHARDS_EBAD or
 * LP_REDIS_EAUTH, as ask() says them, err filled. */
static int failed(const struct lp_reply *rep, const char *what,
                  const char *key, char *err)
{
    char t[300];

    snprintf(err, LP_ERRLEN, "%s %.200s: %s", what, key,
             lp_reply_text(rep, t, sizeof t));
    switch (lp_reply_error_class(rep)) {
    case LP_RERR_TEMP:
        return LP_REDIS_ETEMP;  /* MOVED too: connected again, asked again */
    case LP_RERR_KEY:
        return LP_SHARDS_EBAD;
    default:
        return LP_REDIS_EAUTH;
    }
}

enum { MARK_OK = 0, MARK_HELD = 1, MARK_BUSY = 2 };

static int mark2(struct pool *p, const char *shard, const char *set,
                 int check, int aside, const char *const *acc, int nacc,
                 char *prev, size_t cap, char *err);

/*
 * MARK on shard's marker (set, check, acc: its ARGV). MARK_OK with the
 * value it held in prev; MARK_HELD when it held none of acc (prev: what
 * it holds); MARK_BUSY when the shard is not drained (err: why); else
 * LP_REDIS_ETEMP, LP_REDIS_EAUTH or LP_SHARDS_EBAD with err.
 */
static int mark(struct pool *p, const char *shard, const char *set,
                int check, const char *const *acc, int nacc, char *prev,
                size_t cap, char *err)
{
    return mark2(p, shard, set, check, 0, acc, nacc, prev, cap, err);
}

/* mark, and with aside the shard's producers hash set aside when the
 * marker becomes a count it did not hold (MARK's KEYS[3], KEYS[4]) */
static int mark2(struct pool *p, const char *shard, const char *set,
                 int check, int aside, const char *const *acc, int nacc,
                 char *prev, size_t cap, char *err)
{
    char key[1100], pk[1100], wk[1100];
    int pl = 0, wl = 0;
    const char *argv[18];
    size_t lens[18], n;
    struct lp_redis *r;
    struct lp_reply *rep;
    const char *v;
    int rc, argc = 0, kl;

    if ((kl = lp_shard_mark(p->cluster, shard, key, sizeof key, err)) < 0)
        return LP_SHARDS_EBAD;
    if (aside &&
        ((pl = lp_key_aux(p->cluster, shard, ":producers", pk, sizeof pk,
                          err)) < 0 ||
         (wl = lp_key_aux(p->cluster, shard, LP_SHARDS_PRODUCERS_WAS, wk,
                          sizeof wk, err)) < 0))
        return LP_SHARDS_EBAD;
    if ((rc = pool_get(p, shard, &r, err)) != 0)
        return rc;
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = MARK, lens[argc++] = sizeof MARK - 1;
    argv[argc] = aside ? "4" : "2", lens[argc++] = 1;
    argv[argc] = key, lens[argc++] = (size_t)kl;
    argv[argc] = shard, lens[argc++] = strlen(shard);
    if (aside) {
        argv[argc] = pk, lens[argc++] = (size_t)pl;
        argv[argc] = wk, lens[argc++] = (size_t)wl;
    }
    argv[argc] = set, lens[argc++] = strlen(set);
    argv[argc] = check ? "1" : "0", lens[argc++] = 1;
    for (int i = 0; i < nacc && argc < 18; i++)
        argv[argc] = acc[i], lens[argc++] = strlen(acc[i]);
    if ((rep = lp_redis_cmdv(r, err, argc, argv, lens)) == NULL)
        return LP_REDIS_ETEMP;
    prev[0] = '\0';
    v = lp_reply_str(rep, &n);
    if (lp_reply_is_error(rep, "LPMARK")) {
        rc = MARK_HELD;
        n = n > 7 ? n - 7 : 0;
        snprintf(prev, cap, "%.*s", (int)n, v + 7);
    } else if (lp_reply_is_error(rep, "LPBUSY")) {
        rc = MARK_BUSY;
        snprintf(err, LP_ERRLEN, "%.*s", (int)(n > 7 ? n - 7 : 0), v + 7);
    } else if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        rc = failed(rep, "EVAL", key, err);
    } else {
        rc = MARK_OK;
        snprintf(prev, cap, "%.*s", v ? (int)n : 0, v ? v : "");
    }
    lp_reply_free(rep);
    return rc;
}

/* The message of a marker that holds v, not one of ours. */
static int held(struct pool *p, const char *stream, const char *shard,
                const char *v, char *err)
{
    char key[1100], e[LP_ERRLEN];

    if (lp_shard_mark(p->cluster, shard, key, sizeof key, e) < 0)
        snprintf(key, sizeof key, "%s", shard);
    if (strncmp(v, "to:", 3) == 0)
        snprintf(err, LP_ERRLEN, "stream %.200s: a change of its count of "
                 "shards to %.20s is under way, or was cut before its end "
                 "(%.200s holds %.30s): start a sender with --shards %.20s "
                 "to finish it", stream, v + 3, key, v, v + 3);
    else
        snprintf(err, LP_ERRLEN, "stream %.200s: %.200s holds '%.30s', not "
                 "a count of shards: was it set by another program?",
                 stream, key, v);
    return LP_SHARDS_EBAD;
}

/* Is name one of the first k shards of stream's n? */
static int among(const char *stream, unsigned n, unsigned k,
                 const char *name)
{
    char t[1100], e[LP_ERRLEN];

    for (unsigned i = 0; i < k && i < n; i++)
        if (lp_shard_name(stream, i, n, t, sizeof t, e) >= 0 &&
            strcmp(t, name) == 0)
            return 1;
    return 0;
}

/*
 * The shards of count from (and those of to that are none of from's)
 * taken for to: each marker "to:<to>", each shard drained (MARK checks
 * both in one step). First only looked at, so that a stream plainly not
 * drained is refused before any sender of from is stopped; then taken,
 * and put back when one is found not drained after all. 0, or as mark.
 */
static int change(struct pool *p, const char *stream, unsigned from,
                  unsigned to, char *err)
{
    char tov[24], cur[24], tocur[24], name[1100], (*prev)[24] = NULL;
    unsigned total = from + to, done = 0;
    int rc = 0;

    snprintf(tov, sizeof tov, "to:%u", to);
    snprintf(cur, sizeof cur, "%u", from);
    snprintf(tocur, sizeof tocur, "to:%u", from);
    if ((prev = calloc(total, sizeof *prev)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_REDIS_ETEMP;
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (unsigned k = 0; k < total; k++) {
            /* from's shards: theirs, or taken already (a change cut
             * midway goes on); to's others: no count's but a change's */
            const char *own[] = { "", cur, tov, tocur };
            const char *other[] = { "", "to:*" };
            int of = k < from;
            char v[64];
            if (lp_shard_name(stream, of ? k : k - from, of ? from : to,
                              name, sizeof name, err) < 0) {
                rc = LP_SHARDS_EBAD;
                break;
            }
            if (!of && among(stream, from, from, name))
                continue;       /* taken as one of from's */
            rc = mark(p, name, pass ? tov : "", 1, of ? own : other,
                      of ? 4 : 2, v, sizeof v, err);
            if (rc == MARK_HELD) {
                rc = held(p, stream, name, v, err);
            } else if (rc == MARK_BUSY) {
                char why[LP_ERRLEN];
                snprintf(why, sizeof why, "%s", err);
                snprintf(err, LP_ERRLEN, "stream %.200s has %u shards, not "
                         "%u, and they are not drained (%.300s): the events "
                         "stored so far are spread over those; to change "
                         "their number drain the stream, then start this "
                         "again", stream, from, to, why);
                rc = LP_SHARDS_EBAD;
            }
            if (rc != 0)
                break;
            if (pass) {
                snprintf(prev[k], sizeof prev[k], "%s", v);
                done = k + 1;
            }
        }
    }
    if (rc != 0) {
        /* put back what was taken (a sender of from goes on) */
        char e[LP_ERRLEN], v[64];
        const char *mine[] = { tov };
        for (unsigned k = done; k-- > 0;) {
            int of = k < from;
            if (lp_shard_name(stream, of ? k : k - from, of ? from : to,
                              name, sizeof name, e) < 0 ||
                (!of && among(stream, from, from, name)) ||
                strcmp(prev[k], tov) == 0)
                continue;
            mark(p, name, prev[k][0] ? prev[k] : "-", 0, mine, 1, v,
                 sizeof v, e);
        }
    }
    free(prev);
    return rc;
}

/* A count in v ("N", 2..LP_SHARDS_MAX), or 0. */
static unsigned count_of(const char *v)
{
    char *end;
    unsigned long n;

    if (v[0] < '1' || v[0] > '9')
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    return errno || *end || n < 2 || n > LP_SHARDS_MAX ? 0 : (unsigned)n;
}

/* The count key from `from` to `to`: 0, LP_SHARDS_EBAD (it holds another
 * now: *now), or as ask(). */
static int swap(struct lp_redis *r, int cluster, const char *stream,
                unsigned from, unsigned to, unsigned *now, char *err)
{
    char key[1100], wkey[1100], a[16], b[16];
    const char *argv[7];
    size_t lens[7];
    struct lp_reply *rep;
    int kl, wl, rc;

    if ((kl = lp_shards_key(cluster, stream, key, sizeof key, err)) < 0 ||
        (wl = lp_key_aux(cluster, stream, LP_SHARDS_WAS_SUFFIX, wkey,
                         sizeof wkey, err)) < 0)
        return LP_SHARDS_EBAD;
    snprintf(a, sizeof a, "%u", from);
    snprintf(b, sizeof b, "%u", to);
    argv[0] = "EVAL", lens[0] = 4;
    argv[1] = SWAP, lens[1] = sizeof SWAP - 1;
    argv[2] = "2", lens[2] = 1;
    argv[3] = key, lens[3] = (size_t)kl;
    argv[4] = wkey, lens[4] = (size_t)wl;
    argv[5] = a, lens[5] = strlen(a);
    argv[6] = b, lens[6] = strlen(b);
    if ((rep = lp_redis_cmdv(r, err, 7, argv, lens)) == NULL)
        return LP_REDIS_ETEMP;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        rc = failed(rep, "EVAL", key, err);
    } else if (lp_reply_type(rep) == LP_REPLY_STATUS ||
               (lp_reply_str(rep, NULL) &&
                strcmp(lp_reply_str(rep, NULL), "OK") == 0)) {
        rc = 0;
    } else {
        char v[32];
        size_t n = 0;
        const char *s = lp_reply_str(rep, &n);
        snprintf(v, sizeof v, "%.*s", s ? (int)(n < 30 ? n : 30) : 0,
                 s ? s : "");
        *now = count_of(v);
        rc = LP_SHARDS_EBAD;
        snprintf(err, LP_ERRLEN, "stream %.200s: its count of shards "
                 "changed while this one changed it (%.200s holds '%s'): "
                 "start this again", stream, key, v);
    }
    lp_reply_free(rep);
    return rc;
}

/* Before a second change (the count before the one now, gone, is
 * recorded as :shards:was): gone recorded as :shards:gone, which a run of
 * the new count reads (lp_shards_gone). Set before the count changes: if
 * that does not happen, :shards:was still holds gone, and a reader takes
 * the two equal as nothing forgotten. 0, or as lp_shards_read. */
static int record_gone(struct lp_redis *r, int cluster, const char *stream,
                       unsigned gone, char *err)
{
    char key[1100], v[16];
    struct lp_reply *rep;
    int rc = 0;

    if (gone < 1)               /* 1: the stream's own key (FIRST) */
        return 0;
    if (lp_key_aux(cluster, stream, LP_SHARDS_GONE_SUFFIX, key, sizeof key,
                   err) < 0)
        return LP_SHARDS_EBAD;
    snprintf(v, sizeof v, "%u", gone);
    if ((rep = lp_redis_cmd(r, err, "SET", key, v, (char *)NULL)) == NULL)
        return LP_REDIS_ETEMP;
    if (lp_reply_type(rep) == LP_REPLY_ERROR)
        rc = failed(rep, "SET", key, err);
    lp_reply_free(rep);
    return rc;
}

int lp_shards_record(struct lp_redis *r, int cluster, const char *stream,
                     unsigned n, const struct lp_shards_net *net, char *err)
{
    struct pool p = { .net = net, .r0 = r, .cluster = cluster };
    char num[16], tov[24], name[1100], v[64];
    unsigned got = 0, now = 0, from = 0, gone = 0;
    char who[64];
    struct lp_reply *rep;
    int rc, rounds = 0;

    if (lp_shards_check(stream, n, err) < 0)
        return LP_SHARDS_EBAD;
    if ((rc = ask(r, cluster, stream, 0, &got, err)) != 0)
        return rc;
    if (got == 0) {
        /* none recorded yet: the stream's own key must be empty, or its
         * events would stay there, where no drain of the shards reads */
        rc = first(r, cluster, stream, n, &got, err);
        if (rc != 0)
            return rc;
    }
    if (got != n && got > 1) {
        /* another count: it changes to n when every shard is drained
         * (the count before it, if any, is forgotten then: said) */
        if ((rc = lp_shards_was(r, cluster, stream, &gone, err)) < 0 ||
            (rc = change(&p, stream, got, n, err)) != 0 ||
            (rc = record_gone(r, cluster, stream, gone, err)) != 0 ||
            (rc = swap(r, cluster, stream, got, n, &now, err)) != 0)
            goto out;
        from = got;
    }
    /* every shard of n marked as n's; a marker of another count there is
     * a change from it (its count key deleted by hand meanwhile) */
    snprintf(num, sizeof num, "%u", n);
    snprintf(tov, sizeof tov, "to:%u", n);
again:
    for (unsigned i = 0; i < n; i++) {
        const char *acc[] = { "", num, tov };
        unsigned w;
        if (lp_shard_name(stream, i, n, name, sizeof name, err) < 0) {
            rc = LP_SHARDS_EBAD;
            goto out;
        }
        /* a shard that becomes n's: the fields of the count before set
         * aside (MARK: one step, with the marker) */
        rc = mark2(&p, name, num, 0, 1, acc, 3, v, sizeof v, err);
        if (rc == MARK_HELD && (w = count_of(v)) != 0 && w != n &&
            rounds++ < 4) {
            if ((from == 0 &&
                 (rc = lp_shards_was(r, cluster, stream, &gone, err)) < 0) ||
                (rc = change(&p, stream, w, n, err)) != 0)
                goto out;
            from = w;
            goto again;
        }
        if (rc == MARK_HELD)
            rc = held(&p, stream, name, v, err);
        if (rc != 0)
            goto out;
    }
    if (from) {
        /* set with the count by swap; a change from a marker's count (the
         * count key deleted by hand) records it here */
        char wkey[1100], wv[16];
        if (lp_key_aux(cluster, stream, LP_SHARDS_WAS_SUFFIX, wkey,
                       sizeof wkey, err) < 0) {
            rc = LP_SHARDS_EBAD;
            goto out;
        }
        snprintf(wv, sizeof wv, "%u", from);
        if ((rep = lp_redis_cmd(r, err, "SET", wkey, wv, (char *)NULL)) ==
            NULL) {
            rc = LP_REDIS_ETEMP;
            goto out;
        }
        if (lp_reply_type(rep) == LP_REPLY_ERROR) {
            rc = failed(rep, "SET", wkey, err);
            lp_reply_free(rep);
            goto out;
        }
        lp_reply_free(rep);
        if (gone >= 1 && gone != from)
            /* a second change: one step of history, N's fields no longer
             * read by anyone (lp_shards.h); 1, the stream's own key, as
             * a count of its own */
            snprintf(err, LP_ERRLEN, "stream %.200s: its count of shards "
                     "changed from %u to %u (every shard was drained): a "
                     "sender of %u shards still running is refused at its "
                     "next batch; the count before %u, %u, is forgotten "
                     "now (one step of history is kept): what %s "
                     "stored that no run of %u went past on every "
                     "shard is stored again by a resume (--position), "
                     "--follow or --journal of its producer (see send(1) "
                     "CAVEATS)", stream, from, n, from, from, gone,
                     lp_shards_who(gone, who, sizeof who), from);
        else
            snprintf(err, LP_ERRLEN, "stream %.200s: its count of shards "
                     "changed from %u to %u (every shard was drained): a "
                     "sender of %u shards still running is refused at its "
                     "next batch", stream, from, n, from);
        rc = 1;
    }
out:
    pool_free(&p);
    return rc;
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
