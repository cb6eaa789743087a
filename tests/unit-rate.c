/* unit-rate.c -- lp_rate: token buckets, bursts, key caps, leases */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_parse.h"
#include "lp_rate.h"
#include "tap.h"

/* How many of n takes, one every step ms from t0, succeed. */
static int takes(struct lp_rate *r, const char *key, int n, int64_t t0,
                 int64_t step)
{
    int got = 0, over;

    for (int i = 0; i < n; i++) {
        int64_t now = t0 + (int64_t)i * step;
        struct lp_bucket *b = lp_rate_bucket(r, key, strlen(key), now,
                                             &over);
        if (b && lp_bucket_take(r, b, now) == 0)
            got++;
    }
    return got;
}

int main(void)
{
    char err[LP_ERRLEN];
    double per_ms;
    struct lp_rate *r;
    struct lp_bucket *b;
    int over;

    ok(lp_rate_parse("100/s", &per_ms, err) == 0 && per_ms == 0.1,
       "100/s is 0.1 a ms");
    ok(lp_rate_parse("60/m", &per_ms, err) == 0 && per_ms == 0.001,
       "60/m is 0.001 a ms");
    ok(lp_rate_parse("3600/h", &per_ms, err) == 0 && per_ms == 0.001,
       "3600/h is 0.001 a ms");
    ok(lp_rate_parse("2.5", &per_ms, err) == 0 && per_ms == 0.0025,
       "a bare number is per second");
    ok(lp_rate_parse("0/s", &per_ms, err) < 0, "0/s refused");
    ok(lp_rate_parse("-1/s", &per_ms, err) < 0, "negative refused");
    ok(lp_rate_parse("10/d", &per_ms, err) < 0, "unknown unit refused");
    ok(lp_rate_parse("10/", &per_ms, err) < 0, "no unit after / refused");
    ok(lp_rate_parse("inf/s", &per_ms, err) < 0, "inf refused");
    ok(lp_rate_parse("10/ss", &per_ms, err) < 0, "10/ss refused");
    ok(strstr(err, "not a rate") != NULL, "the message says why: %s", err);

    /* 10/s, burst 5: 5 at once, then one per 100 ms */
    r = lp_rate_new(0.01, 5, 100);
    ok(takes(r, "a", 10, 1000, 0) == 5, "a burst of 5 passes at once");
    b = lp_rate_bucket(r, "a", 1, 1000, &over);
    ok(lp_bucket_take(r, b, 1000) == 100, "then 100 ms to the next token");
    ok(lp_bucket_take(r, b, 1050) == 50, "50 ms later, 50 to go");
    ok(lp_bucket_take(r, b, 1100) == 0, "and at 100 ms it is there");
    /* steady: 1000 takes over 10 s at 1 ms steps pass 10/s */
    ok(takes(r, "b", 10000, 5000, 1) == 5 + 99,
       "10 s at 10/s: burst 5 + 99 more (got %d)",
       takes(r, "c", 10000, 5000, 1));
    ok(takes(r, "", 3, 0, 0) == 3, "the global bucket (key \"\")");
    ok(lp_rate_nkeys(r) == 3, "three keys held (global apart)");
    lp_rate_free(r);

    /* max_keys 3 new keys a minute: the 4th shares the overflow */
    r = lp_rate_new(0.001, 1, 3);
    b = lp_rate_bucket(r, "k1", 2, 0, &over);
    ok(b && !over, "k1 new");
    lp_rate_bucket(r, "k2", 2, 0, &over);
    lp_rate_bucket(r, "k3", 2, 0, &over);
    b = lp_rate_bucket(r, "k4", 2, 10, &over);
    ok(b && over && strcmp(b->key, LP_RATE_OVERFLOW) == 0,
       "k4 gets the overflow bucket");
    ok(lp_bucket_take(r, b, 10) == 0, "which has its own burst");
    b = lp_rate_bucket(r, "k5", 2, 10, &over);
    ok(over && lp_bucket_take(r, b, 10) > 0, "k5 shares it: limited");
    b = lp_rate_bucket(r, "k1", 2, 20, &over);
    ok(b && !over && strcmp(b->key, "k1") == 0, "known keys keep theirs");
    b = lp_rate_bucket(r, "k6", 2, 60000, &over);
    ok(b && !over, "a minute later, new keys get buckets again");
    lp_rate_free(r);

    /* a million distinct keys: bounded table, full buckets dropped */
    r = lp_rate_new(1.0, 1, 1000);
    int n_over = 0;
    for (int i = 0; i < 1000000; i++) {
        char k[32];
        int64_t now = (int64_t)i;          /* 1 ms apart: 1 token a ms */
        snprintf(k, sizeof k, "key%d", i);
        b = lp_rate_bucket(r, k, strlen(k), now, &over);
        if (b == NULL)
            break;
        n_over += over;
        lp_bucket_take(r, b, now);
    }
    ok(b != NULL, "a million keys, no failure");
    ok(lp_rate_nkeys(r) <= 4096, "at most 4096 buckets held (%zu)",
       lp_rate_nkeys(r));
    ok(n_over > 0, "keys past 1000 a minute overflowed (%d)", n_over);
    lp_rate_free(r);

    /* long keys: a prefix and a hash keep them apart */
    {
        char k1[300], k2[300];
        memset(k1, 'x', sizeof k1);
        memcpy(k2, k1, sizeof k2);
        k2[299] = 'y';
        r = lp_rate_new(0.001, 1, 100);
        struct lp_bucket *b1 = lp_rate_bucket(r, k1, sizeof k1, 0, &over);
        ok(b1 && b1->klen == LP_RATE_KEYMAX, "a long key is cut to %d",
           LP_RATE_KEYMAX);
        ok(lp_bucket_take(r, b1, 0) == 0, "takes its token");
        struct lp_bucket *b2 = lp_rate_bucket(r, k2, sizeof k2, 0, &over);
        ok(b2 && lp_bucket_take(r, b2, 0) == 0,
           "a long key differing at its end has its own bucket");
        lp_rate_free(r);
    }

    /* n tokens or none (a request admitted whole): 10/s, burst 5 */
    r = lp_rate_new(0.01, 5, 100);
    b = lp_rate_bucket(r, "req", 3, 1000, &over);
    ok(lp_bucket_take_n(r, b, 3, 1000) == 0, "3 of a burst of 5 at once");
    is_int(lp_bucket_take_n(r, b, 3, 1000), 100,
           "3 more: refused, 100 ms until the third is there");
    ok(lp_bucket_take_n(r, b, 2, 1000) == 0,
       "the refusal took nothing: the 2 left are taken");
    is_int(lp_bucket_take_n(r, b, 5, 1000), 500, "5 from empty: 500 ms");
    is_int(lp_bucket_take_n(r, b, 5, 1499), 1, "1 ms before: 1 ms to go");
    is_int(lp_bucket_take_n(r, b, 5, 1500), 0, "at 500 ms: all 5 taken");
    is_int(lp_bucket_take_n(r, b, 6, 3000), LP_RATE_NEVER,
           "6, over the burst of 5: never, whatever the wait");
    is_int(lp_bucket_take_n(r, b, 5, 3000), 0,
           "and nothing was taken by it: the full burst is there");
    is_int(lp_bucket_take_n(r, b, 0, 3000), 0, "0 tokens: always taken");
    is_int(lp_bucket_take(r, b, 3000), 100,
           "one at a time sees what n at once took");
    b = lp_rate_bucket(r, "", 0, 0, &over);
    ok(lp_bucket_take_n(r, b, 5, 0) == 0 &&
       lp_bucket_take_n(r, b, 1, 0) == 100,
       "the global bucket: full at first, then a refill's wait");
    lp_rate_free(r);

    /* the wait is exact for any rate and n: the same call at now + wait
     * takes the tokens, at now + wait - 1 it does not */
    {
        static const char *rates[] = { "7/s", "1/h", "333/m", "0.3/s",
                                       "1000000/s", "3/s", "17/m" };
        int exact = 1, checks = 0;
        char k[32];
        for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
            if (lp_rate_parse(rates[i], &per_ms, err) < 0)
                exact = 0;
            r = lp_rate_new(per_ms, 100, 1000);
            for (uint64_t n = 1; n <= 100; n++) {
                snprintf(k, sizeof k, "k%d", (int)n);
                b = lp_rate_bucket(r, k, strlen(k), 0, &over);
                int64_t w = 0;
                if (b == NULL || lp_bucket_take_n(r, b, 100, 0) != 0 ||
                    (w = lp_bucket_take_n(r, b, n, 0)) <= 0) {
                    exact = 0;
                    continue;
                }
                if (w > 1 && lp_bucket_take_n(r, b, n, w - 1) == 0) {
                    printf("# %s, %d tokens: taken 1 ms before the wait of "
                           "%lld ms\n", rates[i], (int)n, (long long)w);
                    exact = 0;
                }
                if (lp_bucket_take_n(r, b, n, w) != 0) {
                    printf("# %s, %d tokens: not taken after the wait of "
                           "%lld ms\n", rates[i], (int)n, (long long)w);
                    exact = 0;
                }
                checks++;
            }
            lp_rate_free(r);
        }
        ok(exact && checks == 700, "700 waits, each the least enough "
           "(%d checked)", checks);
    }

    /* Retry-After: whole seconds, up */
    is_int(lp_rate_retry_after(0), 0, "no wait: 0");
    is_int(lp_rate_retry_after(1), 1, "1 ms: 1 s");
    is_int(lp_rate_retry_after(1000), 1, "1000 ms: 1 s");
    is_int(lp_rate_retry_after(1001), 2, "1001 ms: 2 s");
    is_int(lp_rate_retry_after(3600000), 3600, "an hour: 3600 s");
    is_int(lp_rate_retry_after(LP_RATE_NEVER), -1, "never: none");
    is_int(lp_rate_retry_after(INT64_MAX), INT64_MAX / 1000 + 1,
           "the longest wait does not overflow");

    /* leases (shared mode) */
    {
        struct lp_bucket lb;
        memset(&lb, 0, sizeof lb);
        ok(lp_bucket_lease_take(&lb, 0) == 0, "no lease: ask Redis");
        lp_bucket_lease_set(&lb, 2, 0, 0);
        ok(lp_bucket_lease_take(&lb, 1) == 1 &&
           lp_bucket_lease_take(&lb, 2) == 1 &&
           lp_bucket_lease_take(&lb, 3) == 0, "a lease of 2 gives 2");
        lp_bucket_lease_set(&lb, 0, 250, 10);
        ok(lp_bucket_lease_take(&lb, 20) == -240,
           "refused: wait without asking again");
        ok(lp_bucket_lease_take(&lb, 260) == 0, "then ask again");
        lp_bucket_lease_set(&lb, 5, 0, 300);
        ok(lp_bucket_lease_take(&lb, 1400) == 0,
           "a lease older than a second is dropped");
    }
    return tap_done();
}
