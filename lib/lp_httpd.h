/* lp_httpd.h -- logpipe-http's HTTP side: libmicrohttpd in the caller's loop */
#ifndef LP_HTTPD_H
#define LP_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_httpans.h"
#include "lp_json.h"
#include "lp_notice.h"
#include "lp_tokens.h"

/*
 * The HTTP server of logpipe-http, as an object the send engine drives
 * from its own one-thread poll loop (HTTPLIB-WIRING.md 1): libmicrohttpd
 * with MHD_USE_EPOLL and no thread of its own. The caller polls
 * lp_httpd_fd for reading, at most lp_httpd_due_ms, then calls
 * lp_httpd_run, which accepts, reads, and calls the callbacks below; all
 * of it, and lp_httpd_answer, on the caller's thread. Nothing here takes
 * a lock or starts a thread.
 *
 * Routes: POST /v1/events (lp_httpbody: NDJSON, a JSON array or object;
 * gzip, deflate), POST /v1/logs (OTLP/HTTP JSON, lp_otlp), GET (and HEAD)
 * /healthz and /metrics (the caller's callbacks); 404 for another path,
 * 405 (with Allow) for another method. The library answers by itself,
 * before the body is read: 401 (tokens given, no valid "Authorization:
 * Bearer"), 415 (Content-Type, Content-Encoding), 413 (Content-Length over
 * max_body), 400 (a bad Idempotency-Key); such an answer closes the
 * connection, since the body is not read. While the body is read: 400
 * (bad gzip, broken JSON framing), 413 (over max_body as sent or as
 * decoded: a gzip bomb), answered once the body has ended (the rest of it
 * read and thrown away, up to max_body more bytes; past that the
 * connection is closed without an answer).
 *
 * A request, to the caller: begin (headers good: client, key; may refuse
 * at once, 503 before the body is sent), item (each event or rejection,
 * in body order, as lp_httpbody or lp_otlp hands it over: borrowed for the
 * call), then exactly one of submit (the body was read whole and good)
 * or abort (it was not: 400/413 while reading, the client went away, the
 * read timeout). After submit the request waits, its connection
 * suspended, until the caller calls lp_httpd_answer, at once or later
 * (from the loop's thread), which resumes it. The request object stays
 * valid until that answer, whatever its client does meanwhile.
 *
 * Bounds against hostile clients: max_connections over all listening
 * sockets (more are accepted and closed at once); idle_timeout (no byte
 * for that long: closed, libmicrohttpd's own); read_timeout (a request's
 * line must come within it of the connection's start or its previous
 * answer, and the rest of it, body included, within it of its request
 * line: a slowloris, or a chunked body without end, is cut); header_max
 * (the request line and headers, libmicrohttpd's connection memory: 431,
 * or the connection closed, beyond).
 *
 * Memory: a connection costs libmicrohttpd's pool, header_max (it zeroes
 * the whole pool between two requests of a keep-alive connection, so an
 * idle one that has served a request holds all of it), and 64 bytes here. The decoding state (lp_httpbody: 16 KiB, a
 * line buffer, an inflate state; lp_otlp) is taken on a request's first
 * body and given back when it is answered, to a free list of at most
 * free_max: 1,000 idle keep-alive connections hold none.
 */

enum {
    LP_HTTPD_EVENTS = 1,        /* POST /v1/events */
    LP_HTTPD_LOGS               /* POST /v1/logs (OTLP) */
};

#define LP_HTTPD_IDEM_MAX 128   /* bytes of an Idempotency-Key */

struct lp_httpd;
struct lp_httpd_req;            /* a POST in hand; the library's */

/* One event, or one rejection, of a request. */
struct lp_httpd_item {
    /* where it was: /v1/events as lp_httpbody_item says (line from 1,
     * element; or index from 0), /v1/logs its record from 0 (in index)
     * and its path in where */
    uint64_t line;
    long index;
    int element;
    const char *where;          /* /v1/logs: "resourceLogs[0]...."; else
                                   NULL */
    const char *txt;            /* as received (or as built from the
                                   record); may be NULL when rejected */
    size_t n;
    const struct lp_jevent *ev; /* an event: its scan of txt; NULL: a
                                   rejection */
    const char *stored;         /* an event: the bytes to store */
    size_t stored_len;
    const char *code;           /* a rejection: the DLQ's code */
    const char *msg;            /* a rejection: why */
};

struct lp_httpd_cb {
    /*
     * A POST whose headers passed (route, token, types, length, key).
     * Returns 0 to read its body, or an HTTP status to answer at once
     * without reading it (503 when nothing can be stored now), with
     * *retry_after_ms (0: no Retry-After; it starts at 0) and msg
     * (cap LP_ERRLEN; "" for the status' own words). NULL: 0.
     */
    int (*begin)(void *ctx, struct lp_httpd_req *q, int64_t *retry_after_ms,
                 char *msg);
    /* each event or rejection, in body order (it and its pointers
     * borrowed for the call); the library counts them for the answer.
     * Returns NULL, or for an event the caller refuses (over --rate) why:
     * the answer then counts it rejected with that message */
    const char *(*item)(void *ctx, struct lp_httpd_req *q,
                        const struct lp_httpd_item *it);
    /* the body was read whole and good: store the events, then (now or
     * later, from the loop's thread) lp_httpd_answer */
    void (*submit)(void *ctx, struct lp_httpd_req *q);
    /* begun, never to be submitted: drop what item handed over; q is
     * gone after the call */
    void (*abort)(void *ctx, struct lp_httpd_req *q);
    /* GET /healthz: returns the status (200, or 503) with a body in out
     * (text); NULL: 200 "ok" */
    int (*health)(void *ctx, struct lp_buf *out);
    /* GET /metrics: appends the Prometheus text to out (lp_httpd_metrics
     * adds the library's own series); returns 0, or -1 (500); NULL: the
     * library's series only */
    int (*metrics)(void *ctx, struct lp_buf *out);
};

struct lp_httpd_conf {
    /* where to listen: "ADDR:PORT" ("127.0.0.1:8088", "[::1]:8088",
     * "0.0.0.0:0", "*:8088" for every IPv4 and IPv6 address), nlisten of
     * them (borrowed for the call); port 0: one the kernel picks
     * (lp_httpd_addr says which) */
    char *const *listen;
    int nlisten;
    /* listening sockets of the caller's, taken over (closed by
     * lp_httpd_free, or at once when lp_httpd_new fails) */
    const int *fds;
    int nfds;
    /* 1: also the sockets systemd passed (LISTEN_FDS, LISTEN_PID; the
     * variables are unset), if any */
    int systemd;

    const struct lp_event_rules *rules;     /* borrowed */
    uint64_t max_body;          /* bytes as sent and as decoded; 0: 10M */
    uint64_t max_line;          /* an event's bytes; 0: 1M */
    const char *client_field;   /* the events' client member; NULL: none */
    const char *time_field;     /* OTLP's timestamp member; NULL:
                                   "timestamp" */
    struct lp_tokens *tokens;   /* borrowed; NULL: no token asked for */

    /* HTTPS: the certificate (chain) and its private key, PEM text
     * (borrowed); both NULL: plain HTTP */
    const char *tls_cert, *tls_key;

    unsigned max_connections;   /* 0: 1024 */
    unsigned idle_timeout;      /* seconds; 0: 15 */
    int64_t read_timeout_ms;    /* 0: 60000 */
    size_t header_max;          /* bytes of a connection's memory for the
                                   request line and headers (and the
                                   chunks of body read); 0: 16 KiB */
    unsigned free_max;          /* decoders kept for reuse; 0: 16 */
    size_t max_errors;          /* errors listed in an answer; 0: 100 */
    size_t max_error_bytes;     /* bytes of them; 0: 16 KiB */

    struct lp_httpd_cb cb;
    void *ctx;                  /* the callbacks' */
    struct lp_notify notify;    /* libmicrohttpd's messages (info) */
};

/*
 * Binds and listens (or takes over the sockets given), and starts one
 * libmicrohttpd daemon a socket. c is copied; what it points to is
 * borrowed for the object's life (rules, tokens, client_field,
 * time_field). NULL with err ("--listen 1.2.3.4:80: Permission denied",
 * "no socket to listen on") on failure.
 */
struct lp_httpd *lp_httpd_new(const struct lp_httpd_conf *c, char *err);

/*
 * Stops: every connection is closed, also one whose request was submitted
 * and not answered (its client gets no answer; the caller must not use
 * its q afterwards: answer or forget every submitted request first). No
 * callback is called from it. Accepts NULL.
 */
void lp_httpd_free(struct lp_httpd *h);

/* The descriptor to poll for reading (one epoll set for every daemon). */
int lp_httpd_fd(const struct lp_httpd *h);

/* Milliseconds until lp_httpd_run is due without the descriptor getting
 * readable (0: now), or -1: not before it does. Ask it again after each
 * lp_httpd_answer: an answer makes the run due at once (libmicrohttpd,
 * without a thread, has no wake-up of its own for a resumed connection),
 * so the loop must not block before it runs. */
int64_t lp_httpd_due_ms(struct lp_httpd *h);

/* Accepts, reads, answers, times out: calls the callbacks. Never blocks. */
void lp_httpd_run(struct lp_httpd *h);

/* Listening sockets, and the address of the i-th ("127.0.0.1:8088",
 * "[::1]:8088", "unix:/run/x.sock") into buf[0..cap); -1 once
 * quiesced (the sockets are closed). */
int lp_httpd_nlisten(const struct lp_httpd *h);
int lp_httpd_addr(const struct lp_httpd *h, int i, char *buf, size_t cap);

/*
 * SIGTERM: stops accepting (the listening sockets are closed: a client
 * connecting now is refused), answers with "Connection: close" from now
 * on, and lets every request in hand go on. The caller goes on running
 * until lp_httpd_busy is 0, then frees.
 */
void lp_httpd_quiesce(struct lp_httpd *h);

/* Requests in hand: begun and not yet answered whole (their answer not
 * yet sent). Idle keep-alive connections are not counted. */
unsigned lp_httpd_busy(const struct lp_httpd *h);

/*
 * Answers q (submitted, not yet answered): status, Retry-After (the whole
 * seconds of retry_after_ms, rounded up; 0: none), body[0..len) (copied;
 * JSON). body NULL: the library's own: at 200, {"accepted":..} of what
 * item handed over (/v1/events), OTLP's ExportLogsServiceResponse
 * (/v1/logs); else the status' error body. Resumes the connection; q is
 * gone after the call. Callable from submit itself or any time later from
 * the loop's thread. Returns 0, or -1 when out of memory (the connection
 * is then closed without an answer).
 */
int lp_httpd_answer(struct lp_httpd_req *q, int status,
                    int64_t retry_after_ms, const char *body, size_t len);

/* Appends to out the body lp_httpd_answer gives at 200 with body NULL
 * (submitted q: /v1/events' {"accepted":..}, /v1/logs' OTLP answer):
 * what an idempotent retry gets again. 0, or -1. */
int lp_httpd_req_body200(const struct lp_httpd_req *q, struct lp_buf *out);
/* The same, /v1/events' listed errors cut to cap bytes of whole entries
 * (lp_httpans_finish_cap; cap 0: none cut). */
int lp_httpd_req_body200_cap(const struct lp_httpd_req *q, struct lp_buf *out,
                             size_t cap);

/* Answers q with an error: status, Retry-After, and msg in the route's
 * error body ({"error":msg}, or OTLP's {"code":C,"message":msg}). */
int lp_httpd_answer_error(struct lp_httpd_req *q, int status,
                          int64_t retry_after_ms, const char *msg);

/* What a request says of itself (valid until it is answered/aborted). */
int lp_httpd_req_route(const struct lp_httpd_req *q);     /* LP_HTTPD_* */
/* the --tokens name of its client, or NULL without tokens */
const char *lp_httpd_req_client(const struct lp_httpd_req *q);
/* its Idempotency-Key (1 to LP_HTTPD_IDEM_MAX visible ASCII bytes), or
 * NULL */
const char *lp_httpd_req_idem(const struct lp_httpd_req *q);
/* events handed over by item, and rejections */
void lp_httpd_req_counts(const struct lp_httpd_req *q, uint64_t *accepted,
                         uint64_t *rejected);
/* bytes of the body as sent and decoded */
void lp_httpd_req_sizes(const struct lp_httpd_req *q, uint64_t *sent,
                        uint64_t *decoded);
/* /v1/events' answer in the making, for the caller to count in what it
 * could not store (lp_httpans_reject, accepted lowered by one) before
 * answering with body NULL; NULL for /v1/logs */
struct lp_httpans *lp_httpd_req_ans(struct lp_httpd_req *q);
/* a pointer of the caller's, kept with the request (NULL at begin) */
void lp_httpd_req_set_data(struct lp_httpd_req *q, void *data);
void *lp_httpd_req_data(const struct lp_httpd_req *q);

/* What the library counted. */
struct lp_httpd_stats {
    uint64_t connections;       /* open now */
    uint64_t accepted_conns;    /* in all */
    uint64_t refused_conns;     /* over max_connections, or quiescing */
    uint64_t timed_out;         /* cut by read_timeout */
    uint64_t busy;              /* requests in hand */
    uint64_t by_status[6];      /* answers: 1xx..5xx by first digit */
    uint64_t bytes_in;          /* bodies as sent */
    uint64_t events, rejected;  /* handed to item */
};
void lp_httpd_stats(const struct lp_httpd *h, struct lp_httpd_stats *st);

/* Appends the library's series (logpipe_http_*: requests by status,
 * requests in flight, connections open and refused, read timeouts, body
 * bytes, body events as judged, the POST request duration histogram) to
 * out in Prometheus text. Returns 0 or -1. */
int lp_httpd_metrics(const struct lp_httpd *h, struct lp_buf *out);

/*
 * Serves fd (a connected stream socket, taken over) as if accepted on the
 * first listening socket: a test or a fuzzer's socketpair. Returns 0, or
 * -1 with err (fd closed).
 */
int lp_httpd_add_connection(struct lp_httpd *h, int fd, char *err);

#endif
