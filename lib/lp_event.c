/* lp_event.c -- the event time, shared by send and drain */
#include <math.h>
#include <stdio.h>

#include "lp_event.h"
#include "lp_parse.h"
#include "lp_time.h"

/*
 * Epoch seconds as most producers write them, at most 12 digits and at
 * most 3 decimals, read exactly in integers; 0 for anything else (an
 * exponent, more digits), which goes through strtod. Both give the same
 * milliseconds: below 2^40 seconds a double is off by at most 2^-14 s, so
 * d * 1000 is within 0.07 ms (plus 0.07 of rounding) of this integer, and
 * llround() lands on it. replay spends a tenth of its time in strtod
 * without this.
 */
static int seconds_exact(const char *p, size_t n, int64_t *ms)
{
    const char *end = p + n;
    int neg = 0, digits = 0, decimals = 0;
    int64_t v = 0, frac = 0, scale = 1000;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (++digits > 12)
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (digits == 0)
        return 0;
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (++decimals > 3)
                return 0;
            scale /= 10;
            frac += (*p - '0') * scale;
        }
        if (decimals == 0)
            return 0;
    }
    if (p != end)
        return 0;
    v = v * 1000 + frac;
    *ms = neg ? -v : v;
    return 1;
}

int lp_event_time(const char *s, const struct lp_jval *v, int64_t *ms,
                  char *err)
{
    char tmp[64];
    double d;
    long n;

    switch (v->type) {
    case LP_JNONE:
    case LP_JNULL:
        return 0;
    case LP_JNUMBER:
        if (seconds_exact(s + v->off, v->len, ms)) {
            d = 0;              /* under 10^12: no "milliseconds?" hint */
            if (*ms < LP_TIME_MIN || *ms > LP_TIME_MAX)
                goto outside;
            return 1;
        }
        if (lp_json_number(s, v, &d) < 0)
            goto bad;
        if (d * 1000 < LP_TIME_MIN || d * 1000 > LP_TIME_MAX)
            goto outside;
        *ms = (int64_t)llround(d * 1000);
        return 1;
    case LP_JSTRING:
        if (v->esc) {
            if ((n = lp_json_unescape(s, v, tmp, sizeof tmp)) < 0 ||
                lp_rfc3339_parse(tmp, (size_t)n, ms) < 0)
                goto bad;
        } else if (lp_rfc3339_parse(s + v->off + 1, v->len - 2, ms) < 0) {
            goto bad;
        }
        if (*ms < LP_TIME_MIN || *ms > LP_TIME_MAX)
            goto bad;
        return 1;
    default:
        goto bad;
    }
outside:
    snprintf(err, LP_ERRLEN, "time member %.*s is outside years 0000..9999%s",
             v->len > 40 ? 40 : (int)v->len, s + v->off,
             d >= 1e12 && d < 1e15 ? " (milliseconds? it must be epoch "
             "seconds)" : "");
    return -1;
bad:
    snprintf(err, LP_ERRLEN, "time member is not epoch seconds or an "
             "RFC 3339 date-time: %.*s", v->len > 60 ? 60 : (int)v->len,
             s + v->off);
    return -1;
}
