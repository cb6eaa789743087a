/* lp_httpans.h -- logpipe-http's answer: accepted, rejected, which and why */
#ifndef LP_HTTPANS_H
#define LP_HTTPANS_H

#include <stddef.h>
#include <stdint.h>

#include "lp_buf.h"

/*
 * The body of POST /v1/events' 200:
 *
 *   {"accepted":N,"rejected":M,"errors":[{"line":L,"error":"..."},...]}
 *
 * an error by its body line (NDJSON, from 1) or, for an application/json
 * array, by its element's index ({"index":I,...}, from 0); the list
 * capped at max_errors entries and max_bytes of them, with
 * "errors_omitted":K after it when K more were left out (M counts them
 * all). Messages are JSON strings escaped by lp_buf_add_jstr (bytes that
 * are not UTF-8 become U+FFFD), each cut to LP_HTTPANS_MSG bytes at a
 * character's start. Filled as a request's items come, one a call; only
 * the listed errors are kept.
 */
#define LP_HTTPANS_MSG 512      /* bytes of one error message */

struct lp_httpans {
    struct lp_buf errs;         /* the listed errors, comma-separated */
    uint64_t accepted, rejected, listed;
    size_t max_errors, max_bytes;
};

/* Starts an empty answer (max_errors 0: none listed; max_bytes 0: no
 * byte cap); a used one is emptied (its buffer kept). */
void lp_httpans_init(struct lp_httpans *a, size_t max_errors,
                     size_t max_bytes);
void lp_httpans_reset(struct lp_httpans *a);
void lp_httpans_free(struct lp_httpans *a);

void lp_httpans_accept(struct lp_httpans *a, uint64_t n);

/* A rejection at line (index 0) or at index (index 1) n, with msg.
 * Returns 0, or -1 when out of memory (counted, not listed). */
int lp_httpans_reject(struct lp_httpans *a, int index, uint64_t n,
                      const char *msg);

/* Appends the answer to out. Returns 0, or -1 when out of memory. */
int lp_httpans_finish(const struct lp_httpans *a, struct lp_buf *out);
/* The same with the listed errors cut to at most cap bytes, whole
 * entries (the rest counted in "errors_omitted"); cap 0: no cut. */
int lp_httpans_finish_cap(const struct lp_httpans *a, struct lp_buf *out,
                          size_t cap);

/* Appends {"error":"msg"}: the body of a 4xx or 5xx answer. */
int lp_httpans_error(struct lp_buf *out, const char *msg);

#endif
