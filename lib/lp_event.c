/* lp_event.c -- one event's checks (JSON, time, members), shared by the tools */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

int lp_event_rules_init(struct lp_event_rules *r, const char *time_field,
                        char *const *req, int nreq, uint64_t max_depth,
                        uint64_t max_members, int64_t max_age,
                        int64_t max_skew, char *err)
{
    memset(r, 0, sizeof *r);
    r->time_idx = time_field && time_field[0] ?
        lp_jkeys_add(&r->keys, time_field) : -1;
    if (nreq > LP_EVENT_MAXREQ)
        goto too_many;
    for (int i = 0; i < nreq; i++) {
        if ((r->req_idx[i] = lp_jkeys_add(&r->keys, req[i])) < 0)
            goto too_many;
        r->req[i] = req[i];
    }
    r->nreq = nreq;
    r->lim.depth = max_depth > INT_MAX ? INT_MAX : (int)max_depth;
    r->lim.members = max_members > UINT32_MAX ? UINT32_MAX :
        (uint32_t)max_members;
    r->max_age = max_age;
    r->max_skew = max_skew;
    return 0;
too_many:
    snprintf(err, LP_ERRLEN, "--require: too many members (at most %d)",
             nreq > LP_EVENT_MAXREQ ? LP_EVENT_MAXREQ : LP_JSON_MAXKEYS - 1);
    return -1;
}

/* bad->msg = "label: " what, or what */
static int reject(struct lp_event_bad *bad, const char *label,
                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reject(struct lp_event_bad *bad, const char *label,
                  const char *code, const char *fmt, ...)
{
    char m[LP_ERRLEN + 32];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (label)
        snprintf(bad->msg, sizeof bad->msg, "%s: %s", label, m);
    else
        snprintf(bad->msg, sizeof bad->msg, "%s", m);
    bad->code = code;
    return -1;
}

int lp_event_check(const struct lp_event_rules *r, const char *txt, size_t n,
                   int64_t now, const char *label, struct lp_jevent *ev,
                   struct lp_event_bad *bad)
{
    struct lp_jerr je;
    char err[LP_ERRLEN];
    int64_t t;

    if (lp_json_event(txt, n, &r->keys, &r->lim, ev, &je) < 0) {
        if (je.not_object)
            return reject(bad, label, "not-object", "not a JSON object");
        return reject(bad, label, "invalid-json", "invalid JSON: %s", je.msg);
    }
    if (r->time_idx >= 0) {
        int rc = lp_event_time(txt, &ev->val[r->time_idx], &t, err);
        if (rc < 0)
            return reject(bad, label, "bad-time", "%s", err);
        if (rc > 0) {
            char ts[40], d[32];
            if (r->max_age && t < now - r->max_age) {
                lp_time_format(t, ts);
                lp_format_duration(r->max_age, d, sizeof d);
                return reject(bad, label, "too-old", "event time %s is "
                              "older than --max-age %s", ts, d);
            }
            if (r->max_skew && t > now + r->max_skew) {
                lp_time_format(t, ts);
                lp_format_duration(r->max_skew, d, sizeof d);
                return reject(bad, label, "too-new", "event time %s is more "
                              "than --max-skew %s ahead", ts, d);
            }
        }
    }
    for (int i = 0; i < r->nreq; i++)
        if (ev->val[r->req_idx[i]].type == LP_JNONE)
            return reject(bad, label, "missing-member", "required member "
                          "\"%s\" is missing", r->req[i]);
    return 0;
}

int lp_event_array(const struct lp_event_rules *r, const char *line,
                   size_t len, const char *txt, size_t n, int64_t now,
                   lp_event_fn *fn, void *ctx)
{
    size_t pos = 0, off, elen;
    struct lp_jevent ev;
    struct lp_event_bad bad;
    struct lp_jerr je;
    int type, k = 0, calls = 0;

    /* valid as a whole, then element by element */
    if (lp_json_valid(txt, n, &r->lim, &je) < 0) {
        reject(&bad, NULL, "invalid-json", "invalid JSON: %s", je.msg);
        fn(ctx, line, len, 0, NULL, &bad);
        return 1;
    }
    while (lp_json_array_next(txt, n, &pos, &off, &elen, &type)) {
        char label[48];
        snprintf(label, sizeof label, "element %d", ++k);
        calls++;
        if (type != LP_JOBJECT) {
            reject(&bad, label, "not-object", "not a JSON object");
            fn(ctx, txt + off, elen, k, NULL, &bad);
        } else if (lp_event_check(r, txt + off, elen, now, label, &ev,
                                  &bad) < 0) {
            fn(ctx, txt + off, elen, k, NULL, &bad);
        } else {
            fn(ctx, txt + off, elen, k, &ev, NULL);
        }
    }
    return calls;
}
