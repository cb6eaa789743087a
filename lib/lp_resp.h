/* lp_resp.h -- the one RESP encoder: commands as a Redis client sends them */
#ifndef LP_RESP_H
#define LP_RESP_H

#include <stddef.h>

#include "lp_buf.h"

/*
 * Every command logpipe writes in RESP form itself, rather than through
 * hiredis' own formatting, is encoded here: the XADDs logpipe-send builds
 * for its batches (pre-encoded, so that a batch is one append and one
 * write, and a WAL record is the command as it is), the dead letters and
 * drain's move script of lp_dlq.c, and the tests' commands. A command is an array of bulk strings:
 *   *<argc>\r\n  then per argument  $<len>\r\n<bytes>\r\n
 * Decoding is hiredis' (lp_redis.h); lp_wal_event reads the one field of
 * an XADD record it needs.
 *
 * All return 0, or -1 when out of memory (b may then hold part of the
 * command: the caller drops what it appended by resetting b->len).
 */

/* One command of argc arguments; binary safe. */
int lp_resp_command(struct lp_buf *b, int argc, const char **argv,
                    const size_t *lens);

/* The head of a command of argc arguments, for arguments to follow with
 * lp_resp_bulk or lp_resp_bulk_space. */
int lp_resp_head(struct lp_buf *b, int argc);

/* One argument. */
int lp_resp_bulk(struct lp_buf *b, const void *p, size_t n);

/*
 * One argument of n bytes the caller writes itself: appends its framing
 * and returns where its n bytes go (b->len already counts them and the
 * "\r\n" after them), NULL when out of memory. The pointer is valid until
 * b next grows. For an argument made in place (an event with members cut
 * out of it), without a copy in between.
 */
static inline char *lp_resp_bulk_space(struct lp_buf *b, size_t n)
{
    char digits[20], *o;
    int k = 0;
    size_t v = n;

    /* "$", at most 20 digits, "\r\n", the bytes, "\r\n": per event on
     * send's path, so no call but when the buffer grows */
    if (b->cap - b->len < 25 + n && lp_buf_reserve(b, 25 + n) < 0)
        return NULL;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    o = b->p + b->len;
    *o++ = '$';
    while (k)
        *o++ = digits[--k];
    *o++ = '\r';
    *o++ = '\n';
    o[n] = '\r';
    o[n + 1] = '\n';
    b->len = (size_t)(o - b->p) + n + 2;
    return o;
}

#endif
