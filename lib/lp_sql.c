/* lp_sql.c -- SQL text that sqlite3 and psql both apply as it is */
#include <string.h>

#include "lp_sql.h"
#include "lp_utf8.h"

int lp_sql_ident_ok(const char *name)
{
    size_t i;

    if (!((name[0] >= 'A' && name[0] <= 'Z') ||
          (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return 0;
    for (i = 1; name[i]; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return i <= 63;
}

int lp_sql_add_str(struct lp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    const unsigned char *run = p;

    /* worst case: CR LF pairs, 2 bytes as 8 ('\r' || '\n') */
    if (lp_buf_reserve(b, 4 * n + 2) < 0)
        return -1;
    b->p[b->len++] = '\'';
    while (p < end) {
        size_t k;
        if (*p >= 0x20 && *p < 0x80 && *p != '\'') {
            p++;
            continue;
        }
        if (*p == '\r' && p + 1 < end && p[1] == '\n') {
            /* the sqlite3 shell drops a CR at the end of a line, even in
             * a literal: end the literal after it and concatenate */
            p++;
            memcpy(b->p + b->len, run, (size_t)(p - run));
            b->len += (size_t)(p - run);
            memcpy(b->p + b->len, "' || '", 6);
            b->len += 6;
            run = p;
            continue;
        }
        k = *p == '\0' ? 0 : lp_utf8_seq(p, (size_t)(end - p));
        if (k > 1 || (k == 1 && *p != '\'')) {
            p += k;             /* valid: other control characters stay */
            continue;
        }
        memcpy(b->p + b->len, run, (size_t)(p - run));
        b->len += (size_t)(p - run);
        if (k == 1) {
            memcpy(b->p + b->len, "''", 2);
            b->len += 2;
        } else {
            memcpy(b->p + b->len, "\xef\xbf\xbd", 3);
            b->len += 3;
        }
        run = ++p;
    }
    memcpy(b->p + b->len, run, (size_t)(p - run));
    b->len += (size_t)(p - run);
    b->p[b->len++] = '\'';
    return 0;
}

int lp_sql_add_jval(struct lp_buf *b, struct lp_buf *tmp, const char *s,
                    const struct lp_jval *v)
{
    long n;

    if (v == NULL || v->type == LP_JNONE || v->type == LP_JNULL)
        return lp_buf_add(b, "NULL", 4);
    if (v->type != LP_JSTRING)
        return lp_sql_add_str(b, s + v->off, v->len);
    if (!v->esc)
        return lp_sql_add_str(b, s + v->off + 1, v->len - 2);
    /* decoded text is never longer than its escaped form */
    tmp->len = 0;
    if (lp_buf_reserve(tmp, v->len) < 0)
        return -1;
    n = lp_json_unescape(s, v, tmp->p, v->len);
    if (n < 0)
        return lp_sql_add_str(b, s + v->off + 1, v->len - 2);
    return lp_sql_add_str(b, tmp->p, (size_t)n);
}

int lp_sql_add_json(struct lp_buf *b, struct lp_buf *tmp, const char *s,
                    size_t n)
{
    const char *p = s, *end = s + n;

    if (memmem(s, n, "\\u0000", 6) == NULL)
        return lp_sql_add_str(b, s, n);
    tmp->len = 0;
    if (lp_buf_reserve(tmp, n) < 0)
        return -1;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (bs == NULL || end - bs < 2) {
            lp_buf_add(tmp, p, (size_t)(end - p));
            break;
        }
        lp_buf_add(tmp, p, (size_t)(bs - p));
        if (end - bs >= 6 && memcmp(bs, "\\u0000", 6) == 0) {
            lp_buf_add(tmp, "\\ufffd", 6);
            p = bs + 6;
        } else {
            lp_buf_add(tmp, bs, 2);     /* an escape, \\ among them */
            p = bs + 2;
        }
    }
    return lp_sql_add_str(b, tmp->p, tmp->len);
}
