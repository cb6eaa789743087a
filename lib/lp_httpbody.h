/* lp_httpbody.h -- HTTP request bodies into events, fed chunk by chunk */
#ifndef LP_HTTPBODY_H
#define LP_HTTPBODY_H

#include <stddef.h>
#include <stdint.h>

#include "lp_event.h"
#include "lp_json.h"

/*
 * What logpipe-http makes of a POST body: its Content-Encoding undone
 * (gzip, deflate, identity) and its Content-Type framed into events
 * (application/x-ndjson: one event per line, or an array per line as send
 * reads it; application/json: one object, or an array of objects), each
 * judged by send's checks (lp_event_rules) and handed to the caller as the
 * bytes to store, or as a rejection naming its line or element. Or, for
 * OTLP, the decoded body kept whole (LP_BODY_WHOLE) for lp_otlp.
 *
 * It is fed the chunks libmicrohttpd hands over, as they come: nothing
 * waits for the whole body but LP_BODY_WHOLE. Memory is one object per
 * connection (or per request in hand), made once and reused request after
 * request: an inflate state, a 16 KiB output block, and a line buffer
 * that grows to --max-line plus a block; nothing is allocated per event.
 * --max-body bounds the body as sent and again as decoded, so that a gzip
 * bomb ends as 413 after max_body bytes of output, not in memory.
 *
 * Outcomes are HTTP statuses: 200 (the body was read; each event accepted
 * or rejected on its own), 400 (it cannot be read: bad gzip or deflate, a
 * JSON body whose framing is broken: the caller stores nothing of it), 413
 * (over max_body), 415 (lp_httpbody_type, lp_httpbody_encoding), 500 (out
 * of memory). After an outcome other than 200, events handed over before
 * it must be dropped by the caller: a request is stored whole or not at
 * all.
 *
 * Where things are numbered: NDJSON lines from 1, as send numbers them
 * (an array on a line: "element K", K from 1, in the message); elements of
 * an application/json array by their index from 0, as a client indexes
 * its array; a body of one object is index 0. An element of such an array
 * is judged as the same object would be on a line of its own (its depth
 * counted from itself, not from the array).
 */

enum {
    LP_BODY_NDJSON = 1,         /* application/x-ndjson */
    LP_BODY_JSON,               /* application/json */
    LP_BODY_WHOLE               /* kept whole for the caller (OTLP) */
};

enum {
    LP_BODY_IDENTITY = 0,
    LP_BODY_GZIP,
    LP_BODY_DEFLATE             /* zlib (RFC 1950), or raw deflate */
};

/*
 * The kind of body a Content-Type header names (NULL: none given):
 * "application/x-ndjson" (also "application/jsonl", "application/
 * jsonlines", "application/x-jsonlines") gives LP_BODY_NDJSON,
 * "application/json" LP_BODY_JSON, case-insensitive, with parameters
 * ignored but a charset other than utf-8. Returns 0, or 415 with err
 * ("unsupported Content-Type \"text/plain\": ...").
 */
int lp_httpbody_type(const char *content_type, int *kind, char *err);

/* The encoding a Content-Encoding header names (NULL or "": identity):
 * gzip (x-gzip), deflate or identity, case-insensitive. Returns 0, or
 * 415 with err (another coding, or several stacked). */
int lp_httpbody_encoding(const char *content_encoding, int *enc, char *err);

/* One event, or one rejected line or element, handed to the caller. */
struct lp_httpbody_item {
    uint64_t line;              /* NDJSON: the line, from 1; else 0 */
    long index;                 /* JSON: the element, from 0; else -1 */
    int element;                /* NDJSON: K of "element K" of an array
                                   line, 0 for the whole line */
    const char *txt;            /* as received (trimmed): for --rejects, a
                                   rate key; NULL for a line over
                                   --max-line (not kept) */
    size_t n;
    const struct lp_jevent *ev; /* an event: its scan (spans index txt);
                                   NULL: rejected */
    const char *stored;         /* an event: the bytes to store ("_id"
                                   members cut, the client member added) */
    size_t stored_len;
    const char *code;           /* rejected: the DLQ's error code */
    const char *msg;            /* rejected: "invalid JSON: ...", "element
                                   2: not a JSON object" */
};

struct lp_httpbody_conf {
    const struct lp_event_rules *rules;     /* borrowed */
    uint64_t max_body;          /* bytes, as sent and decoded; 0: none */
    uint64_t max_line;          /* --max-line: an event's bytes */
    /* --client-field: a member added last to every event with the
     * request's client name (lp_httpbody_begin), so that an event's own
     * member of that name is not the one a reader takes (the last one);
     * NULL: none */
    const char *client_field;
    /* each event or rejection, in body order; the item is borrowed for
     * the call */
    void (*item)(void *ctx, const struct lp_httpbody_item *it);
    void *ctx;
};

struct lp_httpbody;

/* Makes a decoder for c (copied; what it points to is borrowed). NULL
 * with err when out of memory. */
struct lp_httpbody *lp_httpbody_new(const struct lp_httpbody_conf *c,
                                    char *err);

/* Frees b; accepts NULL. */
void lp_httpbody_free(struct lp_httpbody *b);

/*
 * Starts a request: kind (LP_BODY_*), enc (LP_BODY_IDENTITY ..), now
 * (wall clock, ms, for the time window), client (the client's name for
 * client_field, or NULL: none added). Returns 0, or 500 when out of
 * memory.
 */
int lp_httpbody_begin(struct lp_httpbody *b, int kind, int enc, int64_t now,
                      const char *client);

/*
 * The next chunk of the body as sent, p[0..n): decoded, framed, and each
 * event or rejection handed to c->item. Returns 200 to go on, or the
 * outcome (400, 413, 500) that ends the request (lp_httpbody_error says
 * why); once an outcome is set, later chunks are passed over and it is
 * returned again.
 */
int lp_httpbody_feed(struct lp_httpbody *b, const void *p, size_t n);

/* The end of the body: what is left is framed (a last line without LF),
 * a cut gzip stream or JSON array is found out. Returns the outcome:
 * 200, 400, 413, 500. */
int lp_httpbody_end(struct lp_httpbody *b);

/* Why the outcome is not 200 ("bad gzip body: incorrect header check",
 * "body over --max-body (10485760 bytes) once decoded"); "" at 200.
 * Borrowed from b until the next begin. */
const char *lp_httpbody_error(const struct lp_httpbody *b);

/* Events handed over and rejected so far in this request. */
void lp_httpbody_counts(const struct lp_httpbody *b, uint64_t *accepted,
                        uint64_t *rejected);

/* LP_BODY_WHOLE: the decoded body after lp_httpbody_end returned 200;
 * borrowed from b until the next begin. */
const char *lp_httpbody_whole(const struct lp_httpbody *b, size_t *n);

/* Bytes of the body as sent, and decoded, so far. */
void lp_httpbody_sizes(const struct lp_httpbody *b, uint64_t *sent,
                       uint64_t *decoded);

#endif
