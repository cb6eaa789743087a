/* lp_buf.c -- growable byte buffer */
#include <stdlib.h>

#include "lp_buf.h"
#include "lp_utf8.h"

int lp_buf_reserve(struct lp_buf *b, size_t n)
{
    size_t want, cap;
    char *p;

    if (b->cap - b->len >= n)
        return 0;
    if (n > (size_t)-1 / 2 - b->len)
        return -1;
    want = b->len + n;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void lp_buf_free(struct lp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int lp_buf_addu(struct lp_buf *b, unsigned long long v)
{
    char tmp[24];
    int i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return lp_buf_add(b, tmp + i, sizeof tmp - i);
}

long lp_buf_add_jstr(struct lp_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    long bad = 0;

    /* worst case: every byte becomes \u00XX (6) or U+FFFD (3) */
    if (lp_buf_reserve(b, n * 6 + 2) < 0)
        return -1;
    b->p[b->len++] = '"';
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t k = lp_utf8_seq(p, (size_t)(end - p));
            if (k == 0) {
                memcpy(b->p + b->len, "\xef\xbf\xbd", 3);
                b->len += 3;
                bad++;
                p++;
            } else {
                memcpy(b->p + b->len, p, k);
                b->len += k;
                p += k;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)c;
        } else if (c < 0x20) {
            const char *e = NULL;
            switch (c) {
            case '\n': e = "\\n"; break;
            case '\r': e = "\\r"; break;
            case '\t': e = "\\t"; break;
            case '\b': e = "\\b"; break;
            case '\f': e = "\\f"; break;
            }
            if (e) {
                memcpy(b->p + b->len, e, 2);
                b->len += 2;
            } else {
                memcpy(b->p + b->len, "\\u00", 4);
                b->p[b->len + 4] = hex[c >> 4];
                b->p[b->len + 5] = hex[c & 15];
                b->len += 6;
            }
        } else {
            b->p[b->len++] = (char)c;
        }
        p++;
    }
    b->p[b->len++] = '"';
    return bad;
}
