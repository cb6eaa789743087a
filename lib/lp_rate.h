/* lp_rate.h -- token buckets per key, for logpipe-send --rate */
#ifndef LP_RATE_H
#define LP_RATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * One bucket per key (the output of --rate-key, or "" for one global
 * bucket): it holds up to burst tokens and gains rate of them per
 * millisecond; an event takes one. A bucket that is full again is the
 * same as a new one, so such buckets are dropped when the table fills,
 * and memory stays bounded by the keys active within one refill time.
 *
 * At most max_keys new keys a minute get a bucket of their own; the keys
 * after them share the overflow bucket, LP_RATE_OVERFLOW, until the
 * minute is over, so a flood of distinct keys cannot multiply the limit
 * (nor the memory).
 *
 * Shared limits (--shared-rate) keep the buckets in Redis; here a bucket
 * then holds a lease: tokens granted by Redis and not used yet, and the
 * time until which Redis said none are left.
 */

#define LP_RATE_KEYMAX 128          /* longer keys: a prefix and a hash */
#define LP_RATE_OVERFLOW "(other)"

struct lp_rate;

struct lp_bucket {
    double tokens;                  /* local mode */
    int64_t at;                     /* ms: when tokens was computed */
    uint64_t lease;                 /* shared mode: tokens granted */
    int64_t lease_at;               /* ms: when they were granted */
    int64_t denied_until;           /* ms: Redis had none before this */
    size_t klen;
    char key[LP_RATE_KEYMAX + 1];
};

/* per_ms: tokens gained per millisecond (> 0); burst: capacity (>= 1);
 * max_keys: new keys a minute (>= 1). NULL when out of memory. */
struct lp_rate *lp_rate_new(double per_ms, double burst, uint64_t max_keys);
void lp_rate_free(struct lp_rate *r);

/*
 * The bucket of key[0..klen) at now (ms), created when new; *overflow is
 * set when the key got the overflow bucket instead (more than max_keys
 * new keys this minute). The pointer is valid until the next call.
 * NULL only when out of memory.
 */
struct lp_bucket *lp_rate_bucket(struct lp_rate *r, const char *key,
                                 size_t klen, int64_t now, int *overflow);

/* Local mode: takes one token. Returns 0, or the milliseconds until one
 * is there (nothing taken). */
int64_t lp_bucket_take(struct lp_rate *r, struct lp_bucket *b, int64_t now);

/*
 * Local mode: takes n tokens at once, or none: a unit of n events (an HTTP
 * request) is admitted whole or not at all. Returns 0 when taken (always
 * for n 0); else b is left as it was and it returns the ms until n tokens
 * are there (the least wait that is enough: at now plus it, the same call
 * takes them, one ms earlier it does not, whatever refusals came between),
 * or LP_RATE_NEVER when n is more than the burst, which no wait brings.
 */
#define LP_RATE_NEVER (-1)

int64_t lp_bucket_take_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                         int64_t now);

/* Gives n tokens taken back to b (local mode; up to the burst): what a
 * request that stored nothing took. */
void lp_bucket_give_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                      int64_t now);
/* lp_bucket_take_n's answer without taking anything. */
int64_t lp_bucket_need_n(struct lp_rate *r, struct lp_bucket *b, uint64_t n,
                         int64_t now);

/*
 * What an HTTP Retry-After says for lp_bucket_take_n's wait of ms: whole
 * seconds, rounded up, so that a client coming back then finds its tokens
 * (1 for any wait under a second); 0 for no wait; -1 for LP_RATE_NEVER,
 * when no Retry-After can be given (the request can never pass whole).
 */
int64_t lp_rate_retry_after(int64_t ms);

/*
 * Shared mode: takes one token of the lease. Returns 1 when taken, 0 when
 * the lease is empty (or older than a second: the caller asks Redis for
 * more), or minus the milliseconds until Redis said a token comes.
 */
int64_t lp_bucket_lease_take(struct lp_bucket *b, int64_t now);

/* Shared mode: records what Redis granted (got tokens; wait ms until the
 * next one when got is 0). */
void lp_bucket_lease_set(struct lp_bucket *b, uint64_t got, int64_t wait,
                         int64_t now);

/* Buckets held. */
size_t lp_rate_nkeys(const struct lp_rate *r);

/*
 * Parses "N/s", "N/m" or "N/h" (N a positive number, a fraction allowed;
 * a bare N is per second) into tokens per millisecond. Returns 0, or -1
 * with err.
 */
int lp_rate_parse(const char *s, double *per_ms, char *err);

struct lp_redis;

/*
 * Shared mode, the bucket in Redis (--shared-rate): one script refills
 * the bucket key[0..klen) (a hash of its time and tokens, on Redis's
 * clock, so that senders on many hosts agree) by per_ms tokens a ms up
 * to burst, and takes up to want. Returns 0 with *got tokens taken and,
 * when none was, *wait ms until the next one; -1 with err when Redis did
 * not answer or answered something else (its text). Blocks on r, which
 * must be connected.
 */
int lp_rate_shared_take(struct lp_redis *r, const char *key, size_t klen,
                        double per_ms, uint64_t burst, uint64_t want,
                        uint64_t *got, int64_t *wait, char *err);

/* The same, all n tokens or none (an HTTP request): 0 with *wait 0 when
 * taken, else the ms until n are there (LP_RATE_NEVER: more than burst);
 * -1 with err as above. */
int lp_rate_shared_take_n(struct lp_redis *r, const char *key, size_t klen,
                          double per_ms, uint64_t burst, uint64_t n,
                          int64_t *wait, char *err);

/* The same for nk buckets keys[i][0..klens[i]) at once, want[i] tokens
 * each: all of them or none, in one script. 0 with *wait (0: taken; else
 * the ms until all are there, LP_RATE_NEVER: more than burst), or -1 with
 * err. */
int lp_rate_shared_take_all(struct lp_redis *r, int nk, const char **keys,
                            const size_t *klens, const uint64_t *want,
                            double per_ms, uint64_t burst, int64_t *wait,
                            char *err);

#endif
