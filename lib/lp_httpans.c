/* lp_httpans.c -- logpipe-http's answer: accepted, rejected, which and why */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lp_httpans.h"

void lp_httpans_init(struct lp_httpans *a, size_t max_errors,
                     size_t max_bytes)
{
    struct lp_buf keep = a->errs;

    memset(a, 0, sizeof *a);
    a->errs = keep;
    a->errs.len = 0;
    a->max_errors = max_errors;
    a->max_bytes = max_bytes;
}

void lp_httpans_reset(struct lp_httpans *a)
{
    a->errs.len = 0;
    a->accepted = a->rejected = a->listed = 0;
}

void lp_httpans_free(struct lp_httpans *a)
{
    lp_buf_free(&a->errs);
}

void lp_httpans_accept(struct lp_httpans *a, uint64_t n)
{
    a->accepted += n;
}

int lp_httpans_reject(struct lp_httpans *a, int index, uint64_t n,
                      const char *msg)
{
    char head[48];
    size_t len = strlen(msg), start = a->errs.len;

    a->rejected++;
    if (a->listed >= a->max_errors ||
        (a->max_bytes && a->errs.len >= a->max_bytes))
        return 0;
    if (len > LP_HTTPANS_MSG) {
        len = LP_HTTPANS_MSG;
        /* not inside a UTF-8 sequence */
        while (len > 0 && ((unsigned char)msg[len] & 0xc0) == 0x80)
            len--;
    }
    snprintf(head, sizeof head, "%s{\"%s\":%" PRIu64 ",\"error\":",
             a->listed ? "," : "", index ? "index" : "line", n);
    if (lp_buf_adds(&a->errs, head) < 0 ||
        lp_buf_add_jstr(&a->errs, msg, len) < 0 ||
        lp_buf_addc(&a->errs, '}') < 0) {
        a->errs.len = start;
        return -1;
    }
    a->listed++;
    return 0;
}

int lp_httpans_finish(const struct lp_httpans *a, struct lp_buf *out)
{
    return lp_httpans_finish_cap(a, out, 0);
}

int lp_httpans_finish_cap(const struct lp_httpans *a, struct lp_buf *out,
                          size_t cap)
{
    char num[96];
    size_t start = out->len, len = a->errs.len;
    uint64_t listed = a->listed;

    if (cap && len > cap) {
        /* whole entries only: one starts at 0 and after each ",{\"" (a
         * message's quotes are escaped, so that is never inside one) */
        size_t cut = 0;
        listed = 0;
        for (size_t i = 1; i + 2 <= cap && i + 2 < len; i++)
            if (a->errs.p[i] == ',' && a->errs.p[i + 1] == '{' &&
                a->errs.p[i + 2] == '"') {
                cut = i;
                listed++;
            }
        len = cut;
    }

    snprintf(num, sizeof num, "{\"accepted\":%" PRIu64 ",\"rejected\":%"
             PRIu64 ",\"errors\":[", a->accepted, a->rejected);
    if (lp_buf_adds(out, num) < 0 ||
        (len && lp_buf_add(out, a->errs.p, len) < 0) ||
        lp_buf_addc(out, ']') < 0)
        goto oom;
    if (a->rejected > listed) {
        snprintf(num, sizeof num, ",\"errors_omitted\":%" PRIu64,
                 a->rejected - listed);
        if (lp_buf_adds(out, num) < 0)
            goto oom;
    }
    if (lp_buf_addc(out, '}') < 0)
        goto oom;
    return 0;
oom:
    out->len = start;
    return -1;
}

int lp_httpans_error(struct lp_buf *out, const char *msg)
{
    size_t start = out->len;

    if (lp_buf_adds(out, "{\"error\":") < 0 ||
        lp_buf_add_jstr(out, msg, strlen(msg)) < 0 ||
        lp_buf_addc(out, '}') < 0) {
        out->len = start;
        return -1;
    }
    return 0;
}
