/* lp_rate.c -- token buckets per key, for logpipe-send --rate */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_redis.h"

#define LEASE_MS 1000               /* a lease older than this is stale */
#define MIN_SLOTS 64

struct lp_rate {
    double per_ms, burst;
    uint64_t max_keys;
    struct lp_bucket *slot;         /* open addressing, klen 0: free */
    size_t nslots, used, max_slots;
    struct lp_bucket overflow;
    struct lp_bucket global;        /* the key "" */
    int64_t minute_at;              /* start of the current minute */
    uint64_t new_this_minute;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct lp_rate *lp_rate_new(double per_ms, double burst, uint64_t max_keys)
{
    struct lp_rate *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->per_ms = per_ms;
    r->burst = burst;
    r->max_keys = max_keys ? max_keys : 1;
    /* room for every key of a minute at half load, twice over */
    r->max_slots = MIN_SLOTS;
    while (r->max_slots < 4 * r->max_keys && r->max_slots < (1u << 24))
        r->max_slots *= 2;
    r->overflow.tokens = burst;
    r->overflow.at = -1;
    r->overflow.klen = strlen(LP_RATE_OVERFLOW);
    memcpy(r->overflow.key, LP_RATE_OVERFLOW, r->overflow.klen);
    r->global.tokens = burst;
    r->global.at = -1;
    r->minute_at = -1;
    return r;
}

void lp_rate_free(struct lp_rate *r)
{
    if (r == NULL)
        return;
    free(r->slot);
    free(r);
}

size_t lp_rate_nkeys(const struct lp_rate *r)
{
    return r->used;
}


/* A bucket that holds nothing a new one would not: full again (local),
 * or no lease and no refusal in force (shared). */
static int idle(const struct lp_rate *r, const struct lp_bucket *b,
                int64_t now)
{
    if (b->lease && now - b->lease_at < LEASE_MS)
        return 0;
    if (b->denied_until > now)
        return 0;
    return b->at < 0 ||
           b->tokens + (double)(now - b->at) * r->per_ms >= r->burst;
}

static struct lp_bucket *find(struct lp_bucket *slot, size_t nslots,
                              const char *key, size_t klen)
{
    size_t i = (size_t)hash(key, klen) & (nslots - 1);

    for (;;) {
        struct lp_bucket *b = &slot[i];
        if (b->klen == 0 ||
            (b->klen == klen && memcmp(b->key, key, klen) == 0))
            return b;
        i = (i + 1) & (nslots - 1);
    }
}

/* Moves the buckets into a table of n slots, leaving out idle ones when
 * sweep. Returns 0, or -1 when out of memory (r unchanged). */
static int rebuild(struct lp_rate *r, size_t n, int sweep, int64_t now)
{
    struct lp_bucket *slot = calloc(n, sizeof *slot);
    size_t used = 0;

    if (slot == NULL)
        return -1;
    for (size_t i = 0; i < r->nslots; i++) {
        struct lp_bucket *b = &r->slot[i];
        if (b->klen == 0 || (sweep && idle(r, b, now)))
            continue;
        *find(slot, n, b->key, b->klen) = *b;
        used++;
    }
    free(r->slot);
    r->slot = slot;
    r->nslots = n;
    r->used = used;
    return 0;
}

struct lp_bucket *lp_rate_bucket(struct lp_rate *r, const char *key,
                                 size_t klen, int64_t now, int *overflow)
{
    char k[LP_RATE_KEYMAX + 1];
    struct lp_bucket *b;

    *overflow = 0;
    if (klen == 0)
        return &r->global;
    if (klen > LP_RATE_KEYMAX) {
        /* a prefix that still reads, and a hash that keeps keys apart */
        int w = snprintf(k, sizeof k, "~%016llx",
                         (unsigned long long)hash(key, klen));
        size_t pre = LP_RATE_KEYMAX - (size_t)w;
        memmove(k + pre, k, (size_t)w + 1);
        memcpy(k, key, pre);
        key = k;
        klen = LP_RATE_KEYMAX;
    }
    if (r->slot == NULL && rebuild(r, MIN_SLOTS, 0, now) < 0)
        return NULL;
    b = find(r->slot, r->nslots, key, klen);
    if (b->klen)
        return b;
    /* a new key */
    if (r->minute_at < 0 || now - r->minute_at >= 60000) {
        r->minute_at = now;
        r->new_this_minute = 0;
    }
    if (r->new_this_minute >= r->max_keys)
        goto over;
    if (2 * (r->used + 1) > r->nslots) {
        if (r->nslots < r->max_slots) {
            if (rebuild(r, r->nslots * 2, 0, now) < 0)
                return NULL;
        } else if (rebuild(r, r->nslots, 1, now) < 0) {
            return NULL;
        }
        if (2 * (r->used + 1) > r->nslots)
            goto over;          /* every bucket busy: share one */
        b = find(r->slot, r->nslots, key, klen);
    }
    memset(b, 0, sizeof *b);
    memcpy(b->key, key, klen);
    b->klen = klen;
    b->tokens = r->burst;
    b->at = now;
    r->used++;
    r->new_this_minute++;
    return b;
over:
    *overflow = 1;
    return &r->overflow;
}

int64_t lp_bucket_take(struct lp_rate *r, struct lp_bucket *b, int64_t now)
{
    double t = b->tokens;

    if (b->at >= 0 && now > b->at)
        t += (double)(now - b->at) * r->per_ms;
    if (t > r->burst)
        t = r->burst;
    b->at = now;
    if (t >= 1.0) {
        b->tokens = t - 1.0;
        return 0;
    }
    b->tokens = t;
    return (int64_t)ceil((1.0 - t) / r->per_ms);
}

/* The tokens of b at now (local mode), as every call computes them. */
static double refill(const struct lp_rate *r, const struct lp_bucket *b,
                     int64_t now)
{
    double t = b->tokens;

    if (b->at >= 0 && now > b->at)
        t += (double)(now - b->at) * r->per_ms;
    return t > r->burst ? r->burst : t;
}

int64_t lp_bucket_take_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                         int64_t now)
{
    int64_t wait = lp_bucket_need_n(r, b, n, now);

    if (wait == 0) {
        b->tokens = refill(r, b, now) - (double)n;
        b->at = now;
    }
    return wait;
}

void lp_bucket_give_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                      int64_t now)
{
    double t = refill(r, b, now) + (double)n;

    b->tokens = t > r->burst ? r->burst : t;
    b->at = now;
}

int64_t lp_bucket_need_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                         int64_t now)
{
    double t = refill(r, b, now), need = (double)n;
    int64_t wait;

    if (t >= need)
        return 0;
    if (need > r->burst)
        return LP_RATE_NEVER;
    /* a refusal leaves b as it was, so that the wait is computed with
     * the very sum a later call makes (refills folded in at each
     * refusal would round differently and come up a hair short): the
     * least whole ms it says enough for, about (n - t) / per_ms */
    wait = (int64_t)ceil((need - t) / r->per_ms);
    if (wait < 1)
        wait = 1;
    while (refill(r, b, now + wait) < need)
        wait++;
    while (wait > 1 && refill(r, b, now + wait - 1) >= need)
        wait--;
    return wait;
}

int64_t lp_rate_retry_after(int64_t ms)
{
    if (ms < 0)
        return -1;
    return ms / 1000 + (ms % 1000 != 0);
}

int64_t lp_bucket_lease_take(struct lp_bucket *b, int64_t now)
{
    if (b->lease && now - b->lease_at >= LEASE_MS)
        b->lease = 0;
    if (b->lease) {
        b->lease--;
        return 1;
    }
    if (b->denied_until > now)
        return -(b->denied_until - now);
    return 0;
}

void lp_bucket_lease_set(struct lp_bucket *b, uint64_t got, int64_t wait,
                         int64_t now)
{
    b->lease = got;
    b->lease_at = now;
    b->denied_until = got ? 0 : now + (wait > 0 ? wait : 1);
}

int lp_rate_parse(const char *s, double *per_ms, char *err)
{
    char *e;
    const char *end;
    double n, unit = 1000.0;

    n = strtod(s, &e);
    end = e;
    if (end == s || !(n > 0) || !isfinite(n)) {
        snprintf(err, LP_ERRLEN, "'%s' is not a rate like 100/s, 20/m, "
                 "5/h", s);
        return -1;
    }
    if (*end == '/') {
        if (strcmp(end + 1, "s") == 0)
            unit = 1000.0;
        else if (strcmp(end + 1, "m") == 0)
            unit = 60000.0;
        else if (strcmp(end + 1, "h") == 0)
            unit = 3600000.0;
        else
            end = "?";
        if (*end == '/')
            end += 2;
    }
    if (*end != '\0') {
        snprintf(err, LP_ERRLEN, "'%s' is not a rate like 100/s, 20/m, "
                 "5/h", s);
        return -1;
    }
    *per_ms = n / unit;
    return 0;
}

/* ---- shared buckets, in Redis ----------------------------------------- */

/*
 * Token bucket in Redis, for --shared-rate: refills KEYS[1] (a hash of
 * t, the time in ms, and n, the tokens) by ARGV[1] tokens a ms up to
 * ARGV[2], takes up to ARGV[3], and returns {taken, ms until the next
 * token when none was}. Redis's clock, so senders on many hosts agree.
 */
static const char shared_script[] =
    "local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), "
    "tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 't', 'n')\n"
    "local at, n = tonumber(b[1]), tonumber(b[2])\n"
    "if at == nil or n == nil then at, n = now, burst end\n"
    "if now > at then n = math.min(burst, n + (now - at) * rate) end\n"
    "local got = math.min(want, math.floor(n))\n"
    "if ARGV[4] == 'all' and got < want then got = 0 end\n"
    "n = n - got\n"
    "redis.call('HSET', KEYS[1], 't', now, 'n', string.format('%.6f', n))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)\n"
    "local wait = 0\n"
    "if got == 0 then\n"
    "  if ARGV[4] ~= 'all' then wait = math.ceil((1 - n) / rate)\n"
    "  elseif want > burst then wait = -1\n"
    "  else wait = math.max(1, math.ceil((want - n) / rate)) end\n"
    "end\n"
    "return {got, wait}\n";

static int shared_take(struct lp_redis *r, const char *key, size_t klen,
                       double per_ms, uint64_t burst, uint64_t want,
                       const char *all, uint64_t *got, int64_t *wait,
                       char *err)
{
    char a1[40], a2[32], a3[32];
    const char *argv[8] = { "EVAL", shared_script, "1", key, a1, a2, a3,
                            all };
    size_t lens[8];
    struct lp_reply *rep;

    snprintf(a1, sizeof a1, "%.12g", per_ms);
    snprintf(a2, sizeof a2, "%" PRIu64, burst);
    snprintf(a3, sizeof a3, "%" PRIu64, want);
    for (int i = 0; i < 8; i++)
        lens[i] = i == 3 ? klen : strlen(argv[i]);
    if ((rep = lp_redis_cmdv(r, err, 8, argv, lens)) == NULL)
        return -1;
    if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2) {
        lp_reply_text(rep, err, LP_ERRLEN);
        lp_reply_free(rep);
        return -1;
    }
    *got = (uint64_t)lp_reply_int(lp_reply_at(rep, 0));
    *wait = lp_reply_int(lp_reply_at(rep, 1));
    lp_reply_free(rep);
    return 0;
}

int lp_rate_shared_take(struct lp_redis *r, const char *key, size_t klen,
                        double per_ms, uint64_t burst, uint64_t want,
                        uint64_t *got, int64_t *wait, char *err)
{
    return shared_take(r, key, klen, per_ms, burst, want, "", got, wait,
                       err);
}

int lp_rate_shared_take_n(struct lp_redis *r, const char *key, size_t klen,
                          double per_ms, uint64_t burst, uint64_t n,
                          int64_t *wait, char *err)
{
    uint64_t got;

    if (n == 0) {
        *wait = 0;
        return 0;
    }
    if (shared_take(r, key, klen, per_ms, burst, n, "all", &got, wait,
                    err) < 0)
        return -1;
    if (got == n)
        *wait = 0;
    else if (*wait < 0)
        *wait = LP_RATE_NEVER;
    return 0;
}

/*
 * Many buckets at once, all or none (an HTTP request's keys): KEYS the
 * buckets, ARGV[1] the rate a ms, ARGV[2] the burst, ARGV[2 + i] the
 * tokens KEYS[i] must give. Every bucket is refilled and looked at first;
 * only when each has its tokens are they all taken. Returns {1, 0}, or
 * {0, ms until all of them are there} (-1: more than the burst), taking
 * nothing. Redis runs it whole: no other sender between the look and the
 * take.
 */
static const char shared_all_script[] =
    "local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local have, wait = {}, 0\n"
    "for i = 1, #KEYS do\n"
    "  local want = tonumber(ARGV[2 + i])\n"
    "  local b = redis.call('HMGET', KEYS[i], 't', 'n')\n"
    "  local at, n = tonumber(b[1]), tonumber(b[2])\n"
    "  if at == nil or n == nil then at, n = now, burst end\n"
    "  if now > at then n = math.min(burst, n + (now - at) * rate) end\n"
    "  have[i] = n\n"
    "  if want > burst then return {0, -1} end\n"
    "  if n < want then\n"
    "    wait = math.max(wait, math.max(1, math.ceil((want - n) / rate)))\n"
    "  end\n"
    "end\n"
    "if wait > 0 then return {0, wait} end\n"
    "for i = 1, #KEYS do\n"
    "  redis.call('HSET', KEYS[i], 't', now, 'n',\n"
    "             string.format('%.6f', have[i] - tonumber(ARGV[2 + i])))\n"
    "  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate) + 1000)\n"
    "end\n"
    "return {1, 0}\n";

int lp_rate_shared_take_all(struct lp_redis *r, int nk, const char **keys,
                            const size_t *klens, const uint64_t *want,
                            double per_ms, uint64_t burst, int64_t *wait,
                            char *err)
{
    int argc = 3 + nk + 2 + nk, rc = -1;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    size_t *lens = calloc((size_t)argc, sizeof *lens);
    char (*nums)[24] = calloc((size_t)nk + 3, sizeof *nums);
    struct lp_reply *rep = NULL;

    if (argv == NULL || lens == NULL || nums == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        goto out;
    }
    argv[0] = "EVAL";
    argv[1] = shared_all_script;
    snprintf(nums[0], sizeof nums[0], "%d", nk);
    argv[2] = nums[0];
    for (int i = 0; i < nk; i++) {
        argv[3 + i] = keys[i];
        lens[3 + i] = klens[i];
    }
    snprintf(nums[1], sizeof nums[1], "%.12g", per_ms);
    snprintf(nums[2], sizeof nums[2], "%" PRIu64, burst);
    argv[3 + nk] = nums[1];
    argv[4 + nk] = nums[2];
    for (int i = 0; i < nk; i++) {
        snprintf(nums[3 + i], sizeof nums[3 + i], "%" PRIu64, want[i]);
        argv[5 + nk + i] = nums[3 + i];
    }
    for (int i = 0; i < argc; i++)
        if (i < 3 || i >= 3 + nk)
            lens[i] = strlen(argv[i]);
    if ((rep = lp_redis_cmdv(r, err, argc, argv, lens)) == NULL)
        goto out;
    if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2) {
        lp_reply_text(rep, err, LP_ERRLEN);
        goto out;
    }
    *wait = lp_reply_int(lp_reply_at(rep, 0)) == 1 ? 0
            : lp_reply_int(lp_reply_at(rep, 1));
    if (*wait < 0)
        *wait = LP_RATE_NEVER;
    rc = 0;
out:
    lp_reply_free(rep);
    free(argv);
    free(lens);
    free(nums);
    return rc;
}
