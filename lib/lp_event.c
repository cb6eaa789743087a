/* lp_event.c -- the event time, shared by send and drain */
#include <stdio.h>

#include "lp_event.h"
#include "lp_parse.h"
#include "lp_time.h"

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
        /* cut to the millisecond, exactly, as an RFC 3339 fraction is:
         * never rounded up into the next second, minute or day */
        if (lp_epoch_ms_parse(s + v->off, v->len, ms) == 0)
            return 1;
        /* a JSON number, so outside the years; d for the hint only */
        if (lp_json_number(s, v, &d) < 0)
            d = 0;
        goto outside;
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
