/* lp_buf.h -- growable byte buffer, reused across batches */
#ifndef LP_BUF_H
#define LP_BUF_H

#include <stddef.h>
#include <string.h>

/*
 * A buffer grows to the largest batch it has held and stays there, so a
 * steady stream of batches allocates nothing after warm-up.
 */
struct lp_buf {
    char *p;
    size_t len;
    size_t cap;
};

/* Makes room for n more bytes. Returns 0, or -1 when out of memory. */
int lp_buf_reserve(struct lp_buf *b, size_t n);

/* Frees the storage; b may be reused afterwards. */
void lp_buf_free(struct lp_buf *b);

/* Appends n bytes. Returns 0 or -1 (out of memory, b unchanged). */
static inline int lp_buf_add(struct lp_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;               /* b->p may be NULL: no memcpy to it */
    if (b->cap - b->len < n && lp_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int lp_buf_addc(struct lp_buf *b, char c)
{
    return lp_buf_add(b, &c, 1);
}

static inline int lp_buf_adds(struct lp_buf *b, const char *s)
{
    return lp_buf_add(b, s, strlen(s));
}

/* Appends the decimal form of v. */
int lp_buf_addu(struct lp_buf *b, unsigned long long v);

/* Appends s as a JSON string (quotes included); bytes that are not valid
 * UTF-8 become U+FFFD. Returns the number of replaced bytes, or -1. */
long lp_buf_add_jstr(struct lp_buf *b, const char *s, size_t n);

/* RESP (Redis commands) is encoded by lp_resp.h, over this buffer. */
#endif
