/* lp_httpd.c -- logpipe-http's HTTP side: libmicrohttpd in the caller's loop */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "lp_httpbody.h"
#include "lp_httpd.h"
#include "lp_otlp.h"
#include "lp_parse.h"
#include "lp_time.h"

/*
 * One MHD daemon a listening socket (libmicrohttpd listens on one socket
 * a daemon), each in external epoll mode; their epoll descriptors sit in
 * one epoll set of ours, which is the descriptor the caller polls.
 *
 * Per connection (MHD_OPTION_NOTIFY_CONNECTION): a struct conn, on a list
 * ordered by its read deadline (every deadline is now + read_timeout when
 * armed, so appending keeps the list sorted). A deadline passed is a
 * shutdown(2) of the socket: libmicrohttpd then reads its end and closes
 * the connection its own way (no descriptor closed under it).
 *
 * Per POST: a struct lp_httpd_req, with its decoder, from the free list;
 * *con_cls points at it. GET and the errors of routing take no memory:
 * *con_cls points at a static mark between the two calls of the access
 * handler (an answer queued at the first call would make libmicrohttpd
 * close the connection, as it does for a body it was told not to read).
 */

#define LP_HTTPD_MAXD 16        /* listening sockets */
#define NBUCKETS 14

struct conn {
    struct conn *prev, *next;   /* on the deadline list while armed */
    struct conn *aprev, *anext; /* on h->conns from start to close */
    struct lp_httpd *h;
    struct MHD_Connection *mc;
    int fd;
    int armed;
    int active;                 /* a request line was read, not answered */
    int64_t deadline;           /* mono ms */
};

enum { Q_BODY, Q_BAD, Q_SUBMITTED, Q_ANSWERED };

struct lp_httpd_req {
    struct lp_httpd *h;
    struct conn *c;
    struct MHD_Connection *mc;
    struct lp_httpd_req *next_free;
    struct lp_httpd_req *hprev, *hnext;     /* on h->hand while in hand */
    int route;
    int state;
    int outcome;                /* the body's: 200 or the error */
    int begun;                  /* begin said yes: submit or abort owed */
    int suspended;
    int failed;                 /* no answer could be made: close */
    int mapped;                 /* /v1/logs: lp_otlp_map ran */
    uint64_t discarded;         /* body bytes thrown away after an error */
    int64_t t0;                 /* mono us */
    const char *client;         /* clientbuf or NULL */
    const char *idem;
    char clientbuf[LP_TOKEN_NAME_MAX + 1];
    char idembuf[LP_HTTPD_IDEM_MAX + 1];
    struct lp_httpbody *body;
    struct lp_otlp *otlp;
    struct lp_httpans ans;
    int status;                 /* the answer's */
    struct MHD_Response *resp;
    void *data;
};

struct lp_httpd {
    struct lp_httpd_conf c;
    struct MHD_Daemon *d[LP_HTTPD_MAXD];
    int lfd[LP_HTTPD_MAXD];     /* listening sockets (ours until stop) */
    int nd;
    int epfd;
    int quiesced, freeing;
    /* a connection was resumed or added: MHD_run is due at once (in
     * external mode libmicrohttpd has no wake-up channel of its own, and
     * MHD_get_timeout does not count a resumed connection) */
    int kick;
    struct conn *dl_head, *dl_tail;
    struct conn *conns;         /* every connection (unarmed ones too) */
    struct lp_httpd_req *hand;  /* requests in hand */
    struct lp_httpd_req *free_list;
    unsigned nfree;
    struct lp_buf scratch;
    struct lp_httpd_stats st;
    uint64_t by_code[600];
    uint64_t hist[NBUCKETS + 1];
    double hist_sum;
    uint64_t hist_n;
};

static const double bucket_s[NBUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    30
};

/* the marks of *con_cls for what takes no request object */
static char mark_health, mark_metrics, mark_404, mark_405_post,
            mark_405_get;

/* ---- connections and deadlines ---- */

static void dl_unlink(struct lp_httpd *h, struct conn *c)
{
    if (!c->armed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->dl_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        h->dl_tail = c->prev;
    c->prev = c->next = NULL;
    c->armed = 0;
}

static void dl_arm(struct lp_httpd *h, struct conn *c)
{
    dl_unlink(h, c);
    c->deadline = lp_mono_ms() + h->c.read_timeout_ms;
    c->prev = h->dl_tail;
    c->next = NULL;
    if (h->dl_tail)
        h->dl_tail->next = c;
    else
        h->dl_head = c;
    h->dl_tail = c;
    c->armed = 1;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

/* A connection is on h->conns from start to close (quiesce looks for the
 * idle ones there), and on the deadline list while a read is awaited. */
static void notify_conn(void *cls, struct MHD_Connection *mc,
                        void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    struct lp_httpd *h = cls;
    struct conn *c = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci;

        c = calloc(1, sizeof *c);
        if (c == NULL)
            return;             /* no deadline for it: the idle timeout */
        c->h = h;
        c->mc = mc;
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->anext = h->conns;
        if (h->conns)
            h->conns->aprev = c;
        h->conns = c;
        *socket_context = c;
        h->st.connections++;
        h->st.accepted_conns++;
        dl_arm(h, c);
        return;
    }
    /* libmicrohttpd puts its listening socket back in its epoll set (taken
     * out at its limit, or on EMFILE) only at the start of a run: one more
     * run, or connections wait in the backlog with nothing to wake us */
    h->kick = 1;
    if (c) {
        dl_unlink(h, c);
        if (c->aprev)
            c->aprev->anext = c->anext;
        else
            h->conns = c->anext;
        if (c->anext)
            c->anext->aprev = c->aprev;
        free(c);
        *socket_context = NULL;
    }
    if (h->st.connections)
        h->st.connections--;
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
                                     socklen_t addrlen)
{
    struct lp_httpd *h = cls;

    (void)addr;
    (void)addrlen;
    if (h->quiesced || h->st.connections >= h->c.max_connections) {
        h->st.refused_conns++;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The request line was read: the rest of the request has read_timeout
 * from now. Returns the initial *con_cls: NULL. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct lp_httpd *h = cls;
    struct conn *c = conn_of(mc);

    (void)uri;
    if (c) {
        c->active = 1;
        dl_arm(h, c);
    }
    return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct lp_httpd *h = cls;
    char msg[LP_NOTICELEN];
    size_t n;

    if (h->c.notify.fn == NULL)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    if (n && msg[0] >= 'A' && msg[0] <= 'Z' && (n < 2 || msg[1] < 'A' ||
                                                msg[1] > 'Z'))
        msg[0] = (char)(msg[0] - 'A' + 'a');
    /* mostly what clients did (a connection closed mid-request, a header
     * too large): info, said with -v, or a hostile client fills the log */
    lp_notice(&h->c.notify, LP_NOTICE_INFO, "libmicrohttpd: %s", msg);
}

/* ---- answers ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "ok";
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 408: return "request timeout";
    case 413: return "payload too large";
    case 415: return "unsupported media type";
    case 422: return "unprocessable content";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 503: return "service unavailable";
    default: return "error";
    }
}

/* google.rpc.Code of an HTTP status, for OTLP's error bodies */
static int rpc_code(int status)
{
    switch (status) {
    case 400: case 413: case 415: case 422: return 3;   /* INVALID_ARGUMENT */
    case 401: return 16;                                /* UNAUTHENTICATED */
    case 404: return 5;                                 /* NOT_FOUND */
    case 405: return 12;                                /* UNIMPLEMENTED */
    case 429: return 8;                                 /* RESOURCE_EXHAUSTED */
    case 503: return 14;                                /* UNAVAILABLE */
    default: return 13;                                 /* INTERNAL */
    }
}

/* the error body of route for status into h->scratch */
static int error_body(struct lp_httpd *h, int route, int status,
                      const char *msg)
{
    h->scratch.len = 0;
    if (msg == NULL || *msg == '\0')
        msg = reason(status);
    if (route == LP_HTTPD_LOGS)
        return lp_otlp_status(&h->scratch, rpc_code(status), msg);
    return lp_httpans_error(&h->scratch, msg);
}

/* A response of body[0..len) with our headers, or NULL. */
static struct MHD_Response *make_resp(struct lp_httpd *h, int status,
                                      int64_t retry_after_ms,
                                      const char *ctype, const char *body,
                                      size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);
    char ra[32];

    if (r == NULL)
        return NULL;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after_ms > 0) {
        /* whole seconds, rounded up, as lp_rate_retry_after says them (not
         * called: lp_rate brings lp_redis into every user of this file) */
        snprintf(ra, sizeof ra, "%" PRId64, (retry_after_ms + 999) / 1000);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    if (h->quiesced)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return r;
}

static enum MHD_Result queue(struct lp_httpd *h, struct MHD_Connection *mc,
                             int status, struct MHD_Response *r)
{
    enum MHD_Result ok;

    (void)h;
    if (r == NULL)
        return MHD_NO;
    ok = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result queue_text(struct lp_httpd *h,
                                  struct MHD_Connection *mc, int status,
                                  const char *ctype, const char *body,
                                  size_t len)
{
    if (status >= 100 && status < 600)
        h->by_code[status]++;
    return queue(h, mc, status, make_resp(h, status, 0, ctype, body, len));
}

/* An answer without a request object: an error of routing, checks of the
 * headers, or begin's refusal. */
static enum MHD_Result queue_error(struct lp_httpd *h,
                                   struct MHD_Connection *mc, int route,
                                   int status, int64_t retry_after_ms,
                                   const char *msg, const char *allow)
{
    struct MHD_Response *r;

    if (error_body(h, route, status, msg) < 0)
        return MHD_NO;
    r = make_resp(h, status, retry_after_ms, "application/json",
                  h->scratch.p, h->scratch.len);
    if (r && allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status >= 100 && status < 600)
        h->by_code[status]++;
    return queue(h, mc, status, r);
}

/* ---- requests ---- */

static void body_item(void *ctx, const struct lp_httpbody_item *bi)
{
    struct lp_httpd_req *q = ctx;
    struct lp_httpd *h = q->h;
    struct lp_httpd_item it = {
        .line = bi->line, .index = bi->index, .element = bi->element,
        .txt = bi->txt, .n = bi->n, .ev = bi->ev, .stored = bi->stored,
        .stored_len = bi->stored_len, .code = bi->code, .msg = bi->msg,
    };

    const char *msg = bi->msg;
    char buf[LP_ERRLEN + 32];

    if (bi->ev) {
        /* an event the caller refuses (over --rate) is a rejection, an
         * element of an array line named as lp_httpbody names them */
        const char *refused = h->c.cb.item ? h->c.cb.item(h->c.ctx, q, &it)
                                           : NULL;
        if (refused == NULL) {
            lp_httpans_accept(&q->ans, 1);
            h->st.events++;
            return;
        }
        msg = refused;
        if (bi->element > 0) {
            snprintf(buf, sizeof buf, "element %d: %s", bi->element,
                     refused);
            msg = buf;
        }
    }
    if (bi->index >= 0)
        lp_httpans_reject(&q->ans, 1, (uint64_t)bi->index, msg);
    else
        lp_httpans_reject(&q->ans, 0, bi->line, msg);
    h->st.rejected++;
    if (!bi->ev && h->c.cb.item)
        (void)h->c.cb.item(h->c.ctx, q, &it);
}

static void otlp_item(void *ctx, const struct lp_otlp_item *oi)
{
    struct lp_httpd_req *q = ctx;
    struct lp_httpd *h = q->h;
    struct lp_httpd_item it = {
        .line = 0, .index = (long)oi->record, .where = oi->where,
        .txt = oi->txt, .n = oi->n, .ev = oi->ev, .stored = oi->stored,
        .stored_len = oi->stored_len, .code = oi->code, .msg = oi->msg,
    };

    const char *refused = h->c.cb.item ? h->c.cb.item(h->c.ctx, q, &it)
                                       : NULL;

    if (oi->ev && refused) {
        /* refused by the caller (over --rate): a rejection */
        lp_otlp_refuse(q->otlp, oi->where, refused);
        h->st.rejected++;
    } else if (oi->ev) {
        h->st.events++;
    } else {
        h->st.rejected++;
    }
}

/* A request object with the decoder its route needs, or NULL. */
static struct lp_httpd_req *req_get(struct lp_httpd *h, int route)
{
    struct lp_httpd_req *q = h->free_list;
    char err[LP_ERRLEN];

    if (q) {
        h->free_list = q->next_free;
        h->nfree--;
    } else {
        q = calloc(1, sizeof *q);
        if (q == NULL)
            return NULL;
        q->h = h;
        lp_httpans_init(&q->ans, h->c.max_errors, h->c.max_error_bytes);
    }
    q->next_free = NULL;
    if (q->body == NULL) {
        struct lp_httpbody_conf bc = {
            .rules = h->c.rules, .max_body = h->c.max_body,
            .max_line = h->c.max_line, .client_field = h->c.client_field,
            .item = body_item, .ctx = q,
        };
        q->body = lp_httpbody_new(&bc, err);
    }
    if (route == LP_HTTPD_LOGS && q->otlp == NULL && q->body) {
        struct lp_otlp_conf oc = {
            .rules = h->c.rules, .max_line = h->c.max_line,
            .time_field = h->c.time_field,
            .client_field = h->c.client_field, .item = otlp_item, .ctx = q,
        };
        q->otlp = lp_otlp_new(&oc, err);
    }
    if (q->body == NULL || (route == LP_HTTPD_LOGS && q->otlp == NULL)) {
        q->next_free = h->free_list;
        h->free_list = q;
        h->nfree++;
        return NULL;
    }
    q->route = route;
    q->state = Q_BODY;
    q->outcome = 200;
    q->begun = q->suspended = q->failed = 0;
    q->discarded = 0;
    q->mapped = 0;
    q->hprev = NULL;
    q->hnext = h->hand;
    if (h->hand)
        h->hand->hprev = q;
    h->hand = q;
    q->client = q->idem = NULL;
    q->status = 0;
    q->resp = NULL;
    q->data = NULL;
    q->t0 = lp_mono_us();
    lp_httpans_reset(&q->ans);
    h->st.busy++;
    return q;
}

static void req_destroy(struct lp_httpd_req *q)
{
    lp_httpbody_free(q->body);
    lp_otlp_free(q->otlp);
    lp_httpans_free(&q->ans);
    free(q);
}

/* The request ended (answered and sent, or its connection gone): to the
 * free list, or freed past free_max. A decoder that kept a large whole
 * body (OTLP) is freed rather than kept at that size. */
static void req_put(struct lp_httpd *h, struct lp_httpd_req *q)
{
    uint64_t sent, decoded;

    if (q->resp)
        MHD_destroy_response(q->resp);
    q->resp = NULL;
    q->c = NULL;
    q->mc = NULL;
    if (q->hprev)
        q->hprev->hnext = q->hnext;
    else
        h->hand = q->hnext;
    if (q->hnext)
        q->hnext->hprev = q->hprev;
    q->hprev = q->hnext = NULL;
    if (h->st.busy)
        h->st.busy--;
    if (h->nfree >= h->c.free_max) {
        req_destroy(q);
        return;
    }
    lp_httpbody_sizes(q->body, &sent, &decoded);
    if (q->route == LP_HTTPD_LOGS && decoded > 256 * 1024) {
        lp_httpbody_free(q->body);
        q->body = NULL;
    }
    lp_httpans_reset(&q->ans);
    q->next_free = h->free_list;
    h->free_list = q;
    h->nfree++;
}

static void req_abort(struct lp_httpd *h, struct lp_httpd_req *q)
{
    if (q->begun && !h->freeing && h->c.cb.abort)
        h->c.cb.abort(h->c.ctx, q);
    q->begun = 0;
}

static void completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct lp_httpd *h = cls;
    struct conn *c = conn_of(mc);
    struct lp_httpd_req *q;
    char *m = *con_cls;

    (void)toe;
    if (c) {
        c->active = 0;
        dl_arm(h, c);       /* the next request line has read_timeout */
    }
    if (m == NULL || m == &mark_health || m == &mark_metrics ||
        m == &mark_404 || m == &mark_405_post || m == &mark_405_get) {
        *con_cls = NULL;
        return;
    }
    q = *con_cls;
    *con_cls = NULL;
    if (q->state == Q_BODY || q->state == Q_BAD)
        req_abort(h, q);
    if (q->state == Q_ANSWERED && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        double s = (double)(lp_mono_us() - q->t0) / 1e6;
        int i = 0;

        while (i < NBUCKETS && s > bucket_s[i])
            i++;
        h->hist[i]++;
        h->hist_sum += s;
        h->hist_n++;
    }
    req_put(h, q);
}

/* A header's value, or NULL. */
static const char *header(struct MHD_Connection *mc, const char *name)
{
    return MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
}

/* Is there a body to come (a Content-Length above 0, or chunked)? cl gets
 * the length, or UINT64_MAX when unknown. */
static int has_body(struct MHD_Connection *mc, uint64_t *cl)
{
    const char *s = header(mc, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = header(mc, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    char *end;
    unsigned long long v;

    *cl = UINT64_MAX;
    if (te && *te)
        return 1;
    if (s == NULL)
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 1;
    *cl = v;
    return v > 0;
}

static int idem_ok(const char *k)
{
    size_t n = strlen(k);

    if (n == 0 || n > LP_HTTPD_IDEM_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

/* The first call of a POST route: the checks on its headers, then the
 * request object and begin. */
static enum MHD_Result post_first(struct lp_httpd *h,
                                  struct MHD_Connection *mc, int route,
                                  void **con_cls)
{
    char err[LP_ERRLEN], name[LP_TOKEN_NAME_MAX + 1];
    const char *idem = header(mc, "Idempotency-Key");
    int kind, enc, st, authed = 0;
    uint64_t cl;
    struct lp_httpd_req *q;
    int64_t retry = 0;

    if (h->c.tokens) {
        if (!lp_tokens_auth(h->c.tokens,
                            header(mc, MHD_HTTP_HEADER_AUTHORIZATION), name,
                            sizeof name))
            return queue_error(h, mc, route, 401, 0,
                               "a valid Authorization: Bearer token is "
                               "needed", NULL);
        authed = 1;
    }
    st = lp_httpbody_type(header(mc, MHD_HTTP_HEADER_CONTENT_TYPE), &kind,
                          err);
    if (st == 0 && route == LP_HTTPD_LOGS && kind != LP_BODY_JSON) {
        snprintf(err, sizeof err, "/v1/logs takes OTLP's JSON encoding "
                 "(Content-Type: application/json)");
        st = 415;
    }
    if (st == 0)
        st = lp_httpbody_encoding(header(mc,
                                         MHD_HTTP_HEADER_CONTENT_ENCODING),
                                  &enc, err);
    if (st)
        return queue_error(h, mc, route, st, 0, err, NULL);
    has_body(mc, &cl);
    if (cl != UINT64_MAX && cl > h->c.max_body) {
        snprintf(err, sizeof err, "body of %llu bytes over --max-body "
                 "(%llu bytes)", (unsigned long long)cl,
                 (unsigned long long)h->c.max_body);
        return queue_error(h, mc, route, 413, 0, err, NULL);
    }
    if (idem && !idem_ok(idem))
        return queue_error(h, mc, route, 400, 0, "Idempotency-Key: 1 to 128 "
                           "visible ASCII characters", NULL);
    q = req_get(h, route);
    if (q == NULL)
        return queue_error(h, mc, route, 503, 1000, "out of memory", NULL);
    q->c = conn_of(mc);
    q->mc = mc;
    if (authed) {
        memcpy(q->clientbuf, name, sizeof name);
        q->client = q->clientbuf;
    }
    if (idem) {
        memcpy(q->idembuf, idem, strlen(idem) + 1);
        q->idem = q->idembuf;
    }
    /* 200 (its header says 0) or 500 */
    st = lp_httpbody_begin(q->body, route == LP_HTTPD_LOGS ? LP_BODY_WHOLE
                           : kind, enc, lp_now_ms(), q->client);
    if (st != 0 && st != 200) {
        req_put(h, q);
        return queue_error(h, mc, route, 503, 1000, "out of memory", NULL);
    }
    if (h->c.cb.begin) {
        err[0] = '\0';
        st = h->c.cb.begin(h->c.ctx, q, &retry, err);
        if (st) {
            req_put(h, q);
            return queue_error(h, mc, route, st, retry, err, NULL);
        }
    }
    q->begun = 1;
    *con_cls = q;
    return MHD_YES;
}

/* The body has ended (the last call): its outcome, OTLP mapped, then
 * submit, or the error answered. */
static enum MHD_Result post_end(struct lp_httpd *h, struct lp_httpd_req *q)
{
    int st = q->outcome;
    const char *why = "";
    enum MHD_Result r;

    if (q->c)
        dl_unlink(h, q->c);     /* the server's time from now */
    if (st == 200) {
        st = lp_httpbody_end(q->body);
        why = lp_httpbody_error(q->body);
    } else {
        why = lp_httpbody_error(q->body);
    }
    if (st == 200 && q->route == LP_HTTPD_LOGS) {
        size_t n;
        const char *s = lp_httpbody_whole(q->body, &n);

        st = lp_otlp_map(q->otlp, s, n, lp_now_ms(), q->client);
        q->mapped = 1;
        why = lp_otlp_error(q->otlp);
    }
    if (st != 200) {
        char msg[LP_ERRLEN];

        snprintf(msg, sizeof msg, "%s", why);
        req_abort(h, q);
        q->state = Q_ANSWERED;
        q->status = st;
        return queue_error(h, q->mc, q->route, st, 0, msg, NULL);
    }
    q->state = Q_SUBMITTED;
    q->begun = 0;
    if (h->c.cb.submit)
        h->c.cb.submit(h->c.ctx, q);
    else
        lp_httpd_answer(q, 200, 0, NULL, 0);
    if (q->state == Q_ANSWERED) {
        if (q->failed)
            return MHD_NO;
        r = queue(h, q->mc, q->status, q->resp);
        q->resp = NULL;
        return r;
    }
    MHD_suspend_connection(q->mc);
    q->suspended = 1;
    return MHD_YES;
}

static enum MHD_Result post_more(struct lp_httpd *h, struct lp_httpd_req *q,
                                 const char *data, size_t *size)
{
    if (q->state == Q_ANSWERED) {     /* resumed: the answer is there */
        enum MHD_Result r;

        if (q->failed)
            return MHD_NO;
        r = queue(h, q->mc, q->status, q->resp);
        q->resp = NULL;
        return r;
    }
    if (*size == 0)
        return post_end(h, q);
    h->st.bytes_in += *size;
    if (q->state == Q_BODY) {
        int st = lp_httpbody_feed(q->body, data, *size);

        if (st != 200) {
            q->outcome = st;
            q->state = Q_BAD;
            req_abort(h, q);    /* nothing of it is stored */
        }
    } else {
        /* thrown away, to answer at the end, up to max_body more; past
         * that the connection is closed unanswered */
        q->discarded += *size;
        if (q->discarded > h->c.max_body)
            return MHD_NO;
    }
    *size = 0;
    return MHD_YES;
}

static enum MHD_Result get_answer(struct lp_httpd *h,
                                  struct MHD_Connection *mc, char *m)
{
    int st = 200;

    h->scratch.len = 0;
    if (m == &mark_404)
        return queue_error(h, mc, 0, 404, 0, NULL, NULL);
    if (m == &mark_405_post)
        return queue_error(h, mc, 0, 405, 0, NULL, "POST");
    if (m == &mark_405_get)
        return queue_error(h, mc, 0, 405, 0, NULL, "GET, HEAD");
    if (m == &mark_health) {
        if (h->c.cb.health)
            st = h->c.cb.health(h->c.ctx, &h->scratch);
        else
            lp_buf_adds(&h->scratch, "ok\n");
        return queue_text(h, mc, st, "text/plain; charset=utf-8",
                          h->scratch.p, h->scratch.len);
    }
    if ((h->c.cb.metrics && h->c.cb.metrics(h->c.ctx, &h->scratch) < 0) ||
        (h->c.cb.metrics == NULL && lp_httpd_metrics(h, &h->scratch) < 0))
        return queue_error(h, mc, 0, 500, 0, "metrics", NULL);
    return queue_text(h, mc, 200, "text/plain; version=0.0.4; charset=utf-8",
                      h->scratch.p, h->scratch.len);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *mc,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls)
{
    struct lp_httpd *h = cls;
    char *m = *con_cls;
    int is_post, is_get, route = 0;
    uint64_t cl;

    (void)version;
    if (m == NULL) {
        is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        if (strcmp(url, "/v1/events") == 0)
            route = LP_HTTPD_EVENTS;
        else if (strcmp(url, "/v1/logs") == 0)
            route = LP_HTTPD_LOGS;
        if (route && is_post)
            return post_first(h, mc, route, con_cls);
        if (route)
            m = &mark_405_post;
        else if (strcmp(url, "/healthz") == 0)
            m = is_get ? &mark_health : &mark_405_get;
        else if (strcmp(url, "/metrics") == 0)
            m = is_get ? &mark_metrics : &mark_405_get;
        else
            m = &mark_404;
        /* with a body not to be read: answer now, the connection closes;
         * without: at the next call, the connection kept */
        if (has_body(mc, &cl)) {
            if (m == &mark_health || m == &mark_metrics)
                m = &mark_405_get;      /* a GET with a body: refused */
            return get_answer(h, mc, m);
        }
        *con_cls = m;
        return MHD_YES;
    }
    if (m == &mark_health || m == &mark_metrics || m == &mark_404 ||
        m == &mark_405_post || m == &mark_405_get) {
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return get_answer(h, mc, m);
    }
    return post_more(h, (struct lp_httpd_req *)m, upload_data,
                     upload_data_size);
}

/* ---- the answer, from the caller ---- */

int lp_httpd_answer(struct lp_httpd_req *q, int status,
                    int64_t retry_after_ms, const char *body, size_t len)
{
    struct lp_httpd *h = q->h;
    int rc = 0;

    if (q->state != Q_SUBMITTED)
        return -1;
    if (body == NULL) {
        h->scratch.len = 0;
        if (status == 200 && q->route == LP_HTTPD_LOGS)
            rc = lp_otlp_answer(q->otlp, &h->scratch);
        else if (status == 200)
            rc = lp_httpans_finish(&q->ans, &h->scratch);
        else
            rc = error_body(h, q->route, status, NULL);
        body = h->scratch.p;
        len = h->scratch.len;
    }
    q->resp = rc < 0 ? NULL : make_resp(h, status, retry_after_ms,
                                        "application/json", body, len);
    if (q->resp == NULL) {
        q->failed = 1;
        rc = -1;
    }
    q->state = Q_ANSWERED;
    q->status = status;
    if (status >= 100 && status < 600)
        h->by_code[status]++;
    if (q->suspended) {
        q->suspended = 0;
        MHD_resume_connection(q->mc);
        h->kick = 1;
    }
    return rc;
}

int lp_httpd_req_body200(const struct lp_httpd_req *q, struct lp_buf *out)
{
    return lp_httpd_req_body200_cap(q, out, 0);
}

int lp_httpd_req_body200_cap(const struct lp_httpd_req *q, struct lp_buf *out,
                             size_t cap)
{
    if (q->state != Q_SUBMITTED)
        return -1;
    return q->route == LP_HTTPD_LOGS ? lp_otlp_answer(q->otlp, out)
                                     : lp_httpans_finish_cap(&q->ans, out,
                                                             cap);
}

int lp_httpd_answer_error(struct lp_httpd_req *q, int status,
                          int64_t retry_after_ms, const char *msg)
{
    struct lp_httpd *h = q->h;

    if (error_body(h, q->route, status, msg) < 0)
        return lp_httpd_answer(q, status, retry_after_ms, "{}", 2);
    /* with a body given, lp_httpd_answer copies it and uses no scratch */
    return lp_httpd_answer(q, status, retry_after_ms, h->scratch.p,
                           h->scratch.len);
}

int lp_httpd_req_route(const struct lp_httpd_req *q) { return q->route; }
const char *lp_httpd_req_client(const struct lp_httpd_req *q)
{
    return q->client;
}
const char *lp_httpd_req_idem(const struct lp_httpd_req *q) { return q->idem; }

void lp_httpd_req_counts(const struct lp_httpd_req *q, uint64_t *accepted,
                         uint64_t *rejected)
{
    if (q->route == LP_HTTPD_LOGS) {
        uint64_t dropped;

        *accepted = *rejected = 0;
        if (q->mapped)
            lp_otlp_counts(q->otlp, accepted, rejected, &dropped);
        return;
    }
    lp_httpbody_counts(q->body, accepted, rejected);
}

void lp_httpd_req_sizes(const struct lp_httpd_req *q, uint64_t *sent,
                        uint64_t *decoded)
{
    lp_httpbody_sizes(q->body, sent, decoded);
}

struct lp_httpans *lp_httpd_req_ans(struct lp_httpd_req *q)
{
    return q->route == LP_HTTPD_EVENTS ? &q->ans : NULL;
}

void lp_httpd_req_set_data(struct lp_httpd_req *q, void *data)
{
    q->data = data;
}

void *lp_httpd_req_data(const struct lp_httpd_req *q) { return q->data; }

/* ---- listening ---- */

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

/* Binds and listens on spec ("ADDR:PORT", "[V6]:PORT", "*:PORT"). Returns
 * the socket, or -1 with err. */
static int listen_on(const char *spec, char *err)
{
    char host[256];
    const char *colon, *h0 = spec;
    size_t hn;
    uint64_t port;
    char portbuf[8];
    struct addrinfo hints = { 0 }, *ai = NULL;
    int fd = -1, one = 1, wild = 0, rc;

    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');

        if (rb == NULL || rb[1] != ':') {
            snprintf(err, LP_ERRLEN, "--listen %s: expected [ADDRESS]:PORT",
                     spec);
            return -1;
        }
        h0 = spec + 1;
        hn = (size_t)(rb - h0);
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL) {
            snprintf(err, LP_ERRLEN, "--listen %s: expected ADDRESS:PORT",
                     spec);
            return -1;
        }
        hn = (size_t)(colon - spec);
    }
    if (hn >= sizeof host) {
        snprintf(err, LP_ERRLEN, "--listen %s: address too long", spec);
        return -1;
    }
    memcpy(host, h0, hn);
    host[hn] = '\0';
    if (lp_parse_uint(colon + 1, 0, 65535, &port, err) < 0) {
        char why[LP_ERRLEN];

        snprintf(why, sizeof why, "%s", err);
        snprintf(err, LP_ERRLEN, "--listen %s: port: %s", spec, why);
        return -1;
    }
    snprintf(portbuf, sizeof portbuf, "%u", (unsigned)port);
    if (hn == 0 || strcmp(host, "*") == 0) {
        wild = 1;
        snprintf(host, sizeof host, "::");
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, portbuf, &hints, &ai);
    if (rc != 0) {
        snprintf(err, LP_ERRLEN, "--listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int v6only = !wild;

        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0)
        goto fail;
    freeaddrinfo(ai);
    return fd;
fail:
    snprintf(err, LP_ERRLEN, "--listen %s: %s", spec, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

int lp_httpd_addr(const struct lp_httpd *h, int i, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[INET6_ADDRSTRLEN];

    if (i < 0 || i >= h->nd ||
        getsockname(h->lfd[i], (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        snprintf(buf, cap, "%s:%u", a, ntohs(s4->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        snprintf(buf, cap, "[%s]:%u", a, ntohs(s6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(buf, cap, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
    } else {
        snprintf(buf, cap, "?");
    }
    return 0;
}

int lp_httpd_nlisten(const struct lp_httpd *h) { return h->nd; }

static int add_socket(struct lp_httpd *h, int fd, char *err)
{
    if (h->nd == LP_HTTPD_MAXD) {
        snprintf(err, LP_ERRLEN, "more than %d sockets to listen on",
                 LP_HTTPD_MAXD);
        close(fd);
        return -1;
    }
    h->lfd[h->nd++] = fd;
    return 0;
}

static int start_daemon(struct lp_httpd *h, int i, char *err)
{
    const union MHD_DaemonInfo *di;
    struct epoll_event ev = { .events = EPOLLIN };
    struct MHD_Daemon *d;

    /* HTTPS: libmicrohttpd's GnuTLS, the PEM texts in memory */
    struct MHD_OptionItem tls[] = {
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)h->c.tls_key },
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)h->c.tls_cert },
        { MHD_OPTION_END, 0, NULL }
    };
    int use_tls = h->c.tls_cert != NULL && h->c.tls_key != NULL;

    if (!use_tls)
        tls[0].option = MHD_OPTION_END;
    d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
        (use_tls ? MHD_USE_TLS : 0), 0,
        accept_policy, h, access_handler, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,     /* first, or unheard */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->lfd[i],
        /* accept_policy refuses past max_connections over all daemons;
         * MHD's own limit, never reached, would leave new connections
         * waiting in the backlog instead of closed at once */
        MHD_OPTION_CONNECTION_LIMIT, h->c.max_connections + 1,
        MHD_OPTION_CONNECTION_TIMEOUT, h->c.idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->c.header_max,
        MHD_OPTION_NOTIFY_COMPLETED, completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, h,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (d == NULL) {
        char a[128] = "?";

        lp_httpd_addr(h, i, a, sizeof a);
        snprintf(err, LP_ERRLEN, "%s: cannot start libmicrohttpd%s", a,
                 use_tls ? " with TLS (is the key the certificate's, both "
                           "PEM?)" : "");
        return -1;
    }
    h->d[i] = d;
    di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    ev.data.u32 = (uint32_t)i;
    if (di == NULL || epoll_ctl(h->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) < 0) {
        snprintf(err, LP_ERRLEN, "epoll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

struct lp_httpd *lp_httpd_new(const struct lp_httpd_conf *c, char *err)
{
    struct lp_httpd *h = calloc(1, sizeof *h);
    int i;

    if (h == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        for (i = 0; i < c->nfds; i++)
            close(c->fds[i]);
        return NULL;
    }
    h->c = *c;
    h->epfd = -1;
    if (h->c.max_body == 0)
        h->c.max_body = 10 << 20;
    if (h->c.max_line == 0)
        h->c.max_line = 1 << 20;
    if (h->c.max_connections == 0)
        h->c.max_connections = 1024;
    if (h->c.idle_timeout == 0)
        h->c.idle_timeout = 15;
    if (h->c.read_timeout_ms <= 0)
        h->c.read_timeout_ms = 60000;
    if (h->c.header_max == 0)
        h->c.header_max = 16 * 1024;
    if (h->c.free_max == 0)
        h->c.free_max = 16;
    if (h->c.max_errors == 0)
        h->c.max_errors = 100;
    if (h->c.max_error_bytes == 0)
        h->c.max_error_bytes = 16 * 1024;
    h->c.listen = NULL;
    h->c.fds = NULL;
    for (i = 0; i < c->nfds; i++)
        if (add_socket(h, c->fds[i], err) < 0) {
            while (++i < c->nfds)
                close(c->fds[i]);
            goto fail;
        }
    if (c->systemd) {
        int n = sd_listen_fds(1);

        if (n < 0) {
            snprintf(err, LP_ERRLEN, "LISTEN_FDS: %s", strerror(-n));
            goto fail;
        }
        for (i = 0; i < n; i++) {
            int fd = SD_LISTEN_FDS_START + i;

            if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                snprintf(err, LP_ERRLEN, "LISTEN_FDS: descriptor %d is not "
                         "a listening stream socket", fd);
                goto fail;
            }
            if (set_flags(fd) < 0 || add_socket(h, fd, err) < 0) {
                snprintf(err, LP_ERRLEN, "LISTEN_FDS: descriptor %d: %s",
                         fd, strerror(errno));
                goto fail;
            }
        }
    }
    for (i = 0; i < c->nlisten; i++) {
        int fd = listen_on(c->listen[i], err);

        if (fd < 0 || add_socket(h, fd, err) < 0)
            goto fail;
    }
    if (h->nd == 0) {
        snprintf(err, LP_ERRLEN, "no socket to listen on");
        goto fail;
    }
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        snprintf(err, LP_ERRLEN, "epoll: %s", strerror(errno));
        goto fail;
    }
    for (i = 0; i < h->nd; i++)
        if (start_daemon(h, i, err) < 0)
            goto fail;
    return h;
fail:
    lp_httpd_free(h);
    return NULL;
}

void lp_httpd_free(struct lp_httpd *h)
{
    struct lp_httpd_req *q;
    int i;

    if (h == NULL)
        return;
    h->freeing = 1;
    /* a suspended connection makes MHD_stop_daemon panic: resume each
     * (closed unanswered: failed makes the access handler say no) */
    for (q = h->hand; q; q = q->hnext)
        if (q->suspended) {
            q->suspended = 0;
            q->failed = 1;
            q->state = Q_ANSWERED;
            MHD_resume_connection(q->mc);
        }
    for (i = 0; i < h->nd; i++) {
        if (h->d[i]) {
            MHD_stop_daemon(h->d[i]);
        } else if (h->lfd[i] >= 0) {
            close(h->lfd[i]);
        }
    }
    while ((q = h->free_list) != NULL) {
        h->free_list = q->next_free;
        req_destroy(q);
    }
    lp_buf_free(&h->scratch);
    if (h->epfd >= 0)
        close(h->epfd);
    free(h);
}

/* ---- the loop ---- */

int lp_httpd_fd(const struct lp_httpd *h) { return h->epfd; }

int64_t lp_httpd_due_ms(struct lp_httpd *h)
{
    int64_t due = -1;

    if (h->kick)
        return 0;
    for (int i = 0; i < h->nd; i++) {
        MHD_UNSIGNED_LONG_LONG t;

        if (h->d[i] && MHD_get_timeout(h->d[i], &t) == MHD_YES &&
            (due < 0 || (int64_t)t < due))
            due = (int64_t)t;
    }
    if (h->dl_head) {
        int64_t t = h->dl_head->deadline - lp_mono_ms();

        if (t < 0)
            t = 0;
        if (due < 0 || t < due)
            due = t;
    }
    return due;
}

void lp_httpd_run(struct lp_httpd *h)
{
    int64_t now;

    /* our set needs no draining: it is readable while a daemon's set is */
    h->kick = 0;
    for (int i = 0; i < h->nd; i++)
        if (h->d[i])
            MHD_run(h->d[i]);
    now = lp_mono_ms();
    while (h->dl_head && h->dl_head->deadline <= now) {
        struct conn *c = h->dl_head;

        dl_unlink(h, c);
        if (c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
        h->st.timed_out++;
    }
}

/* ---- shutdown ---- */

void lp_httpd_quiesce(struct lp_httpd *h)
{
    if (h->quiesced)
        return;
    h->quiesced = 1;
    for (int i = 0; i < h->nd; i++) {
        if (h->d[i]) {
            MHD_socket fd = MHD_quiesce_daemon(h->d[i]);

            if (fd != MHD_INVALID_SOCKET)
                close(fd);
            h->lfd[i] = -1;
        }
    }
    /* idle keep-alive connections are closed now; one with a request
     * line read goes on to its answer, which says Connection: close */
    for (struct conn *c = h->conns; c; c = c->anext)
        if (!c->active && c->fd >= 0)
            shutdown(c->fd, SHUT_RDWR);
}

unsigned lp_httpd_busy(const struct lp_httpd *h)
{
    return (unsigned)h->st.busy;
}

/* ---- numbers ---- */

void lp_httpd_stats(const struct lp_httpd *h, struct lp_httpd_stats *st)
{
    *st = h->st;
    memset(st->by_status, 0, sizeof st->by_status);
    for (int i = 100; i < 600; i++)
        st->by_status[i / 100] += h->by_code[i];
}

static int addf(struct lp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int addf(struct lp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || lp_buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int lp_httpd_metrics(const struct lp_httpd *h, struct lp_buf *out)
{
    uint64_t cum = 0;
    int rc = 0;

    rc |= addf(out, "# HELP logpipe_http_requests_total HTTP requests "
               "answered, by status\n"
               "# TYPE logpipe_http_requests_total counter\n");
    for (int i = 100; i < 600; i++)
        if (h->by_code[i])
            rc |= addf(out, "logpipe_http_requests_total{code=\"%d\"} %"
                       PRIu64 "\n", i, h->by_code[i]);
    rc |= addf(out, "# HELP logpipe_http_requests_in_flight POST requests "
               "in hand\n# TYPE logpipe_http_requests_in_flight gauge\n"
               "logpipe_http_requests_in_flight %" PRIu64 "\n", h->st.busy);
    rc |= addf(out, "# HELP logpipe_http_connections connections open\n"
               "# TYPE logpipe_http_connections gauge\n"
               "logpipe_http_connections %" PRIu64 "\n", h->st.connections);
    rc |= addf(out, "# HELP logpipe_http_connections_refused_total "
               "connections closed at once (over --max-connections, or "
               "stopping)\n# TYPE logpipe_http_connections_refused_total "
               "counter\nlogpipe_http_connections_refused_total %" PRIu64
               "\n", h->st.refused_conns);
    rc |= addf(out, "# HELP logpipe_http_read_timeouts_total connections "
               "cut by the read timeout\n# TYPE "
               "logpipe_http_read_timeouts_total counter\n"
               "logpipe_http_read_timeouts_total %" PRIu64 "\n",
               h->st.timed_out);
    rc |= addf(out, "# HELP logpipe_http_body_bytes_total request bodies, "
               "as sent\n# TYPE logpipe_http_body_bytes_total counter\n"
               "logpipe_http_body_bytes_total %" PRIu64 "\n", h->st.bytes_in);
    rc |= addf(out, "# HELP logpipe_http_body_events_total events of request "
               "bodies as judged (accepted: handed over to be stored)\n"
               "# TYPE logpipe_http_body_events_total counter\n"
               "logpipe_http_body_events_total{result=\"accepted\"} %" PRIu64
               "\nlogpipe_http_body_events_total{result=\"rejected\"} %"
               PRIu64 "\n", h->st.events, h->st.rejected);
    rc |= addf(out, "# HELP logpipe_http_request_duration_seconds POST "
               "requests, from their headers to their answer sent\n"
               "# TYPE logpipe_http_request_duration_seconds histogram\n");
    for (int i = 0; i < NBUCKETS; i++) {
        cum += h->hist[i];
        rc |= addf(out, "logpipe_http_request_duration_seconds_bucket"
                   "{le=\"%g\"} %" PRIu64 "\n", bucket_s[i], cum);
    }
    cum += h->hist[NBUCKETS];
    rc |= addf(out, "logpipe_http_request_duration_seconds_bucket"
               "{le=\"+Inf\"} %" PRIu64 "\n"
               "logpipe_http_request_duration_seconds_sum %.6f\n"
               "logpipe_http_request_duration_seconds_count %" PRIu64 "\n",
               cum, h->hist_sum, h->hist_n);
    return rc ? -1 : 0;
}

int lp_httpd_add_connection(struct lp_httpd *h, int fd, char *err)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (h->nd == 0 || h->d[0] == NULL || h->quiesced) {
        snprintf(err, LP_ERRLEN, "not serving");
        close(fd);
        return -1;
    }
    if (MHD_add_connection(h->d[0], fd, (struct sockaddr *)&sin,
                           sizeof sin) != MHD_YES) {
        snprintf(err, LP_ERRLEN, "cannot add a connection: %s",
                 strerror(errno));
        return -1;      /* MHD closed it */
    }
    h->kick = 1;
    return 0;
}
