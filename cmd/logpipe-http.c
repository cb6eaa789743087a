/* logpipe-http.c -- events over HTTP into a Redis stream, answered once stored */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_aside.h"
#include "lp_buf.h"
#include "lp_cluster.h"
#include "lp_dlq.h"
#include "lp_exit.h"
#include "lp_httpd.h"
#include "lp_json.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_send.h"
#include "lp_time.h"
#include "lp_tokens.h"
#include "tool_opt.h"

/*
 * The HTTP front door: lp_httpd (libmicrohttpd, no thread of its own)
 * reads and judges the requests, the send engine (lp_send_serve) stores
 * them, one thread for both. A request's events are handed to the engine
 * as one request (lp_send_req_*), stored whole in one transaction or not
 * at all, and the client is answered from the engine's done callback:
 * 200 only once Redis (or the WAL, synced) has every accepted event.
 *
 * The engine's loop polls one descriptor of ours: an epoll set holding
 * libmicrohttpd's epoll descriptor and a signalfd (SIGTERM, SIGINT,
 * SIGHUP), so a signal is never lost between a check and a wait.
 * SIGTERM: stop accepting (lp_httpd_quiesce), answer every request in
 * hand once stored, then stop the engine. SIGHUP: --tokens again.
 */

struct http_opt {
    struct lp_common com;
    struct lp_send_conf c;
    const struct lp_optdef *needs_rate;
    struct lp_list listen;
    const char *tokens, *client_field, *tls_cert, *tls_key;
    uint64_t max_body, max_connections, max_header;
    int64_t idle_timeout, read_timeout, idem_ttl;
};

static int listen_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err);

#define OPT struct http_opt
static const struct lp_optdef longopts[] = {
    { "listen", 0, LP_CALL(OPT, listen, listen_opt), "ADDR:PORT",
      "listen here (repeat; 127.0.0.1:8088; [::1]:PORT,\n"
      "*:PORT for every address; none with systemd's sockets)" },
    LP_LONG_REDIS, LP_LONG_TLS_REDIS,
    LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ,
    LP_LONG_PASSWORD_FILE,
    { "tokens", 0, LP_STR(OPT, tokens), "FILE",
      "require \"Authorization: Bearer T\": lines name:token\n"
      "(SIGHUP reads FILE again)", .flags = LP_OF_NONEMPTY },
    { "client-field", 0, LP_STR(OPT, client_field), "NAME",
      "with --tokens: add the client's name to each event\n"
      "as member NAME (none)", .flags = LP_OF_NONEMPTY },
    { "max-body", 0, LP_SIZE(OPT, max_body), "SIZE",
      "largest body, as sent and decoded: 413 beyond (10M)", .min = 1,
      .max = (int64_t)1 << 31 },
    { "max-connections", 0, LP_UINT(OPT, max_connections), "N",
      "connections at once; more are closed (1024)", .min = 1,
      .max = 100000 },
    { "idle-timeout", 0, LP_DURATION(OPT, idle_timeout), "DUR",
      "close a connection silent this long (15s)", .min = 1000 },
    { "read-timeout", 0, LP_DURATION(OPT, read_timeout), "DUR",
      "a request must arrive whole within DUR (60s)", .min = 100 },
    { "max-header", 0, LP_SIZE(OPT, max_header), "SIZE",
      "request line and headers at most (16K)", .min = 4096,
      .max = 1 << 20 },
    { "tls-cert", 0, LP_STR(OPT, tls_cert), "FILE",
      "HTTPS: the certificate (chain), PEM", .flags = LP_OF_NONEMPTY },
    { "tls-key", 0, LP_STR(OPT, tls_key), "FILE",
      "HTTPS: its private key, PEM", .flags = LP_OF_NONEMPTY },
    { "batch", 'b', LP_UINT(OPT, c.batch), "N",
      "events per batch; a larger request is its own (1000)",
      .min = 1, .max = 1000000 },
    { "linger", 'l', LP_DURATION(OPT, c.linger), "DUR",
      "hold a partial batch up to DUR for more requests\n"
      "(0: what one turn of the loop brought goes at once;\n"
      "bare = ms)", .unit = "ms" },
    { "wal", 0, LP_STR(OPT, c.wal), "DIR",
      "when Redis fails, keep requests in a write-ahead log\n"
      "(synced before 200) rather than answer 503",
      .flags = LP_OF_NONEMPTY },
    { "wal-max", 0, LP_SIZE(OPT, c.wal_max), "SIZE",
      "exit 75 rather than let the WAL pass SIZE" },
    { "replicas", 0, LP_UINT(OPT, c.replicas), "N",
      "a batch is stored once N replicas have it (WAIT)",
      .min = 1, .max = 1000 },
    { "replica-timeout", 0, LP_DURATION(OPT, c.replica_timeout), "DUR",
      "with --replicas: wait this long for them (1s)", .min = 1,
      .unit = "ms" },
    { "max-backlog", 0, LP_UINT(OPT, c.max_backlog), "N",
      "answer 503 while the group lag exceeds N", .min = 1 },
    { "rate", 0, LP_CALL(OPT, c.rate, tool_rate_opt), "N/s|N/m|N/h",
      "at most this many events per client: 429 beyond" },
    { "rate-key", 0, LP_STR(OPT, c.rate_key), "JQ",
      "one limit per value of JQ over each event, e.g.\n"
      ".app (default: the client's --tokens name)",
      LP_GIVEN(OPT, needs_rate) },
    { "on-limit", 0, LP_ENUM(OPT, c.on_limit), "WHAT",
      "block (the request refused whole: 429), reject\n"
      "(the events over it rejected in the 200), or dlq\n"
      "(rejected into the DLQ) (block)",
      .words = "block|reject|dlq", LP_GIVEN(OPT, needs_rate) },
    { "shared-rate", 0, LP_FLAG(OPT, c.shared_rate), NULL,
      "keep the limits in Redis, shared by all instances",
      LP_GIVEN(OPT, needs_rate) },
    { "burst", 0, LP_UINT(OPT, c.burst), "N",
      "events let through at once (a second's worth); a\n"
      "request of more is refused for good", .min = 1,
      .max = 1000000000, LP_GIVEN(OPT, needs_rate) },
    { "max-keys", 0, LP_UINT(OPT, c.max_keys), "N",
      "new clients a minute with a limit of their own\n"
      "(10000)", .min = 1, .max = 1000000, LP_GIVEN(OPT, needs_rate) },
    { "time-field", 0, LP_STR(OPT, c.time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "max-age", 0, LP_DURATION(OPT, c.max_age), "DUR",
      "reject events older than DUR (24h; 0 = off)" },
    { "max-skew", 0, LP_DURATION(OPT, c.max_skew), "DUR",
      "reject events more than DUR ahead (5m; 0 = off)" },
    { "max-line", 0, LP_SIZE(OPT, c.max_line), "SIZE",
      "largest event accepted (1M)", .min = 2, .max = 1 << 30 },
    { "max-depth", 0, LP_UINT(OPT, c.max_depth), "N",
      "deepest nesting accepted (64)", .min = 1, .max = 10000 },
    { "max-members", 0, LP_UINT(OPT, c.max_members), "N",
      "most members of one object or array (10000)", .min = 1,
      .max = UINT32_MAX },
    { "require", 0, LP_LIST(OPT, c.require), "LIST",
      "reject events missing any of these members", .max = LP_SEND_MAXREQ },
    { "rejects-to-dlq", 0, LP_FLAG(OPT, c.rejects_to_dlq), NULL,
      "also add rejected events to the DLQ" },
    { "idempotency-ttl", 0, LP_DURATION(OPT, idem_ttl), "DUR",
      "remember Idempotency-Keys this long (24h)", .min = 1000 },
    { "producer-ttl", 0, LP_DURATION(OPT, c.producer_ttl), "DUR",
      "forget producers silent this long (7d; 0 = never)" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "group", "group whose lag --max-backlog watches (logpipe)", 0 },
    TOOL_NOTE_METRICS_LIVE,
    { "verbose", "more messages: a line per batch", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-http",
    .synopsis =
"usage: logpipe-http [--listen ADDR:PORT]... [options]\n"
"Take JSON events over HTTP into a Redis stream: POST /v1/events (NDJSON,\n"
"a JSON array or object; gzip, deflate), POST /v1/logs (OTLP/HTTP JSON),\n"
"GET /healthz, GET /metrics. A request is answered 200 once every event\n"
"it accepted is stored; one refused (400 401 413 415 429 503) stores\n"
"nothing.\n"
"\n",
    .epilog =
"Exit: 0 stopped by SIGTERM or SIGINT (every request in hand answered),\n"
"64 usage, 66 --tokens or a TLS file unreadable, 69 cannot listen,\n"
"70 internal error, 74 the WAL failed, 75 the WAL passed --wal-max,\n"
"78 bad configuration (Redis refuses the credentials or commands, a\n"
"bad --tokens file).\n"
"See logpipe-http(1).\n",
    .opts = longopts,
    .notes = notes,
    .stray = " (events come over HTTP)",
};

/* ---- the process ---------------------------------------------------- */

struct http {
    struct http_opt *o;
    struct lp_send *s;
    struct lp_httpd *h;
    struct lp_tokens *tokens;
    int ep, sigfd;
    int quiescing, stopped, in_run;
    char host[256];
    struct idems *idem;
    /* what the door counted beyond the library (for /metrics) */
    uint64_t limited, unavailable, backlog, replayed;
};

static void say(void *ctx, int level, const char *msg)
{
    (void)ctx;
    switch (level) {
    case LP_SEND_BAD:
    case LP_SEND_LIMITED:
        break;                  /* the client hears of them, not the log */
    case LP_SEND_DEBUG:
        lp_debug("%s", msg);
        break;
    case LP_SEND_TRACE:
        lp_trace("batch", msg);
        break;
    default:
        lp_log_notify.fn(lp_log_notify.ctx, level, msg);
    }
}

static void mhd_say(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    lp_debug("%s", msg);        /* libmicrohttpd's words: -vv */
}

static struct lp_redis *redis_new(void *ctx, char *err)
{
    return tool_redis(ctx, err);
}

/* ---- idempotency keys -------------------------------------------------- */

/*
 * A request with "Idempotency-Key: K" from client C is made a unit of its
 * own producer, "http:C:K" (lp_send_req_producer), whose field in
 * <stream>:producers the request's own transaction sets, its cursor being
 * "<hash>.<answer>": the hash of what the body held (FNV-1a 64 over its
 * items, in hex) and the 200 answer, base64url. So the key is stored with
 * the events or not at all, whatever dies when. A request with a key
 * looks first here (a request with the key in flight: wait for its
 * answer; answered lately: that answer), then at the field (HGET on a
 * connection of its own): there, the first answer again, nothing stored;
 * another body under the key: 422. Redis not answering that question:
 * 503, since it cannot be told. Fields older than --idempotency-ttl are
 * removed a slice at a time (HSCAN MATCH http*, HDEL).
 */
#define IDEM_DONE_MAX 10000     /* answered keys kept here */
#define IDEM_BYTES_MAX (16u << 20)  /* and their answers' bytes */
#define IDEM_BUCKETS 16384

struct idem {
    struct idem *next;          /* in its bucket */
    struct idem *newer;         /* answered ones, oldest first */
    char *name;
    uint64_t hash;
    int done;                   /* answered; else looked up or in flight */
    struct lp_httpd_req *first; /* the request that stores it */
    char *body;                 /* the 200 answer (set before it is
                                   stored: the cursor holds it) */
    size_t blen;
    int64_t at;                 /* mono ms it was answered */
    struct lp_httpd_req **wait; /* the same key meanwhile */
    size_t nwait, cwait;
};

struct idems {
    struct idem *b[IDEM_BUCKETS];
    struct idem *oldest, *newest;
    size_t ndone, bytes;
    struct http *x;
    char *pkey;                 /* <stream>:producers */
    char scan[32];              /* the pruning's HSCAN cursor */
    int64_t prune_at;
    int pruning;                /* an HSCAN page asked, not answered */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static const char b64u[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_enc(struct lp_buf *o, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4];
        size_t k = n - i < 3 ? n - i : 3;
        if (k > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        for (int j = 0; j < 4; j++)
            q[j] = b64u[(v >> (18 - 6 * j)) & 63];
        if (lp_buf_add(o, q, k + 1) < 0)
            return -1;
    }
    return 0;
}

/* Decodes s[0..n) into o; -1 when it is not base64url. */
static int b64_dec(struct lp_buf *o, const char *s, size_t n)
{
    uint32_t v = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b64u, s[i], 64);
        if (c == NULL || s[i] == '\0')
            return -1;
        v = (v << 6) | (uint32_t)(c - b64u);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (lp_buf_addc(o, (char)((v >> bits) & 0xff)) < 0)
                return -1;
        }
    }
    return 0;
}

/* The producer of client's key k: "http:C:K", the bytes of K outside a
 * producer name's ([A-Za-z0-9._:@/-]) and '+' written "+XX"; when that is
 * too long, "httph:C:" and a hash of K. */
static void idem_name(char *out, size_t cap, const char *client,
                      const char *k)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                             "vwxyz0123456789._:@/-";
    size_t n = (size_t)snprintf(out, cap, "http:%s:", client ? client : "-");

    for (const char *c = k; *c && n + 4 < cap; c++) {
        if (strchr(ok, *c))
            out[n++] = *c;
        else
            n += (size_t)snprintf(out + n, cap - n, "+%02X",
                                  (unsigned char)*c);
    }
    out[n] = '\0';
    if (!lp_producer_valid(out))
        snprintf(out, cap, "httph:%s:%016" PRIx64 "%016" PRIx64,
                 client ? client : "-", fnv(0xcbf29ce484222325ull, k,
                                            strlen(k)),
                 fnv(0x84222325cbf29ce4ull, k, strlen(k)));
}

static struct idem **idem_slot(struct idems *t, const char *name)
{
    struct idem **e = &t->b[fnv(0xcbf29ce484222325ull, name, strlen(name)) %
                            IDEM_BUCKETS];

    while (*e && strcmp((*e)->name, name) != 0)
        e = &(*e)->next;
    return e;
}

static void idem_free(struct idem *e)
{
    free(e->name);
    free(e->body);
    free(e->wait);
    free(e);
}

static void idem_drop(struct idems *t, struct idem *e)
{
    struct idem **slot = idem_slot(t, e->name);

    *slot = e->next;
    if (e->done) {
        /* only the oldest is ever dropped once answered */
        t->oldest = e->newer;
        if (t->newest == e)
            t->newest = NULL;
        t->ndone--;
        t->bytes -= e->blen;
    }
    idem_free(e);
}

/* e is answered with its body: kept for a retry, the oldest past the cap
 * forgotten (the field in Redis answers for it then). */
static void idem_done(struct idems *t, struct idem *e)
{
    e->done = 1;
    e->first = NULL;
    e->at = lp_mono_ms();
    e->newer = NULL;
    if (t->newest)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
    t->ndone++;
    t->bytes += e->blen;
    while (t->oldest && t->oldest != e &&
           (t->ndone > IDEM_DONE_MAX || t->bytes > IDEM_BYTES_MAX))
        idem_drop(t, t->oldest);
}

/* Is f[0..n) a key's field name (http:C:K, httph:C:H)? */
static int idem_field_name(const char *f, size_t n)
{
    return (n > 5 && memcmp(f, "http:", 5) == 0) ||
           (n > 6 && memcmp(f, "httph:", 6) == 0);
}

static void prune_deleted(void *ctx, const struct lp_reply *rep,
                          const char *err)
{
    (void)ctx, (void)rep, (void)err;    /* the next page says what is left */
}

/* A page of the pruning's HSCAN: the keys' fields older than
 * --idempotency-ttl deleted (HDEL, not waited for). */
static void prune_page(void *ctx, const struct lp_reply *rep,
                       const char *err)
{
    struct idems *t = ctx;
    struct lp_aside *a = lp_send_aside(t->x->s);
    const struct lp_reply *kv;
    const char *argv[202];
    size_t lens[202], nd = 2, n;
    int64_t before = lp_now_ms() - t->x->o->idem_ttl;
    const char *c;
    char e2[LP_ERRLEN];

    t->pruning = 0;
    if (err || lp_reply_type(rep) != LP_REPLY_ARRAY ||
        lp_reply_len(rep) != 2 ||
        (c = lp_reply_str(lp_reply_at(rep, 0), &n)) == NULL ||
        n >= sizeof t->scan)
        return;
    memcpy(t->scan, c, n);
    t->scan[n] = '\0';
    argv[0] = "HDEL";
    lens[0] = 4;
    argv[1] = t->pkey;
    lens[1] = strlen(t->pkey);
    kv = lp_reply_at(rep, 1);
    for (size_t i = 0; i + 1 < lp_reply_len(kv); i += 2) {
        size_t fl, vl;
        const char *f = lp_reply_str(lp_reply_at(kv, i), &fl);
        const char *v = lp_reply_str(lp_reply_at(kv, i + 1), &vl);
        struct lp_field fv;
        if (f == NULL || v == NULL || !idem_field_name(f, fl))
            continue;
        lp_field_parse(v, vl, &fv);
        /* a key's field: its cursor the body's hash, a dot, the answer
         * (send's producers named http... are not ours) */
        if (!fv.have_ms || fv.ms >= before || fv.clen < 17 ||
            fv.cursor[16] != '.' || strspn(fv.cursor, "0123456789abcdef")
            != 16)
            continue;
        argv[nd] = f;
        lens[nd++] = fl;
        if (nd == 202) {
            (void)lp_aside_cmdv(a, (int)nd, argv, lens, prune_deleted, t, e2);
            nd = 2;
        }
    }
    if (nd > 2)
        (void)lp_aside_cmdv(a, (int)nd, argv, lens, prune_deleted, t, e2);
    /* stale keys found: the next slice soon */
    if (nd > 2 || strcmp(t->scan, "0") != 0)
        t->prune_at = lp_mono_ms() + 100;
}

/* A slice of the pruning, once a second: one HSCAN page of the keys'
 * fields, on the engine's questions' connection, never waited for. */
static void idem_prune(struct idems *t)
{
    struct lp_aside *a = lp_send_aside(t->x->s);
    const char *argv[] = { "HSCAN", t->pkey, t->scan, "MATCH", "http*",
                           "COUNT", "1000" };
    size_t lens[7];
    char err[LP_ERRLEN];

    if (t->pruning || a == NULL || !lp_aside_connected(a) ||
        lp_mono_ms() < t->prune_at)
        return;
    t->prune_at = lp_mono_ms() + 1000;
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    if (lp_aside_cmdv(a, 7, argv, lens, prune_page, t, err) == 0)
        t->pruning = 1;
}

/* ---- a request, from the headers to the answer ------------------------ */

struct hreq {
    struct lp_send_req *sq;     /* NULL: out of memory on the way */
    uint64_t hash;              /* of its items, for its key */
    int keyed;                  /* it has an Idempotency-Key */
    struct idem *key;           /* its key's entry, when it has one and is
                                   the one that stores it */
    char why[LP_ERRLEN];        /* an event's refusal, for the answer */
};

static struct http *door;       /* for done(), whose ctx is the request */

/* Answers q and the requests that waited for its key with status and
 * body (a 200: q's own answer, or its key's, which its cursor holds),
 * then forgets q's state. */
static void finish(struct lp_httpd_req *q, int status, int64_t retry,
                   const char *msg)
{
    struct hreq *r = lp_httpd_req_data(q);
    struct idem *e = r ? r->key : NULL;
    struct idems *t = door->idem;

    lp_httpd_req_set_data(q, NULL);
    free(r);
    if (status == 200 && e)
        lp_httpd_answer(q, 200, 0, e->body ? e->body : "", e->blen);
    else if (status == 200)
        lp_httpd_answer(q, 200, 0, NULL, 0);
    else
        lp_httpd_answer_error(q, status, retry, msg);
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nwait; i++) {
        struct lp_httpd_req *w = e->wait[i];
        if (status == 200)
            lp_httpd_answer(w, 200, 0, e->body ? e->body : "", e->blen);
        else
            lp_httpd_answer_error(w, status, retry, msg);
    }
    e->nwait = 0;
    if (status == 200)
        idem_done(t, e);
    else
        idem_drop(t, e);        /* not stored (or maybe): Redis says */
}

/* The engine is done with a request: answer it. */
static void done(void *ctx, const struct lp_send_req_result *r)
{
    struct lp_httpd_req *q = ctx;
    char msg[LP_ERRLEN + 160];

    ((struct hreq *)lp_httpd_req_data(q))->sq = NULL;   /* the engine's */
    if (r->how == LP_REQ_FAILED) {
        snprintf(msg, sizeof msg, "not stored: %s%s", r->error ? r->error
                 : "Redis failed", r->maybe ? " (the reply was lost: it may "
                 "have been stored; a retry with the same Idempotency-Key "
                 "stores it once)" : "");
        finish(q, 503, 1000, msg);
        return;
    }
    if (r->failed && r->error && strncmp(r->error, "LPKEY ", 6) == 0) {
        /* another process stored the key with another body meanwhile */
        finish(q, 422, 0, "Idempotency-Key used before for another body");
        return;
    }
    if (r->failed) {
        /* refused by Redis inside the transaction (a key of the wrong
         * type): not stored, and the client must know */
        snprintf(msg, sizeof msg, "%" PRIu64 " of the request's commands "
                 "not stored: %s", r->failed, r->error ? r->error : "?");
        finish(q, 500, 0, msg);
        return;
    }
    finish(q, 200, 0, NULL);
}

static int on_begin(void *ctx, struct lp_httpd_req *q, int64_t *retry,
                    char *msg)
{
    struct http *x = ctx;
    struct lp_send_state st;
    struct hreq *r;
    const char *client = lp_httpd_req_client(q);

    if (x->s == NULL) {         /* the engine ended (78, 74) */
        snprintf(msg, LP_ERRLEN, "shutting down");
        return 503;
    }
    lp_send_state(x->s, &st);
    if (st.down_ms > 0) {
        /* no WAL, Redis failed: 503 before the body is sent */
        x->unavailable++;
        *retry = st.down_ms;
        snprintf(msg, LP_ERRLEN, "Redis does not answer");
        return 503;
    }
    if ((r = calloc(1, sizeof *r)) == NULL ||
        (r->sq = lp_send_req_begin(x->s, done, q)) == NULL ||
        (x->o->c.rate > 0 &&
         lp_send_req_key(r->sq, client ? client : "",
                         client ? strlen(client) : 0) < 0)) {
        if (r)
            lp_send_req_abort(r->sq);
        free(r);
        snprintf(msg, LP_ERRLEN, "out of memory");
        return 500;
    }
    r->hash = 0xcbf29ce484222325ull;
    r->keyed = lp_httpd_req_idem(q) != NULL;
    lp_httpd_req_set_data(q, r);
    return 0;
}

/* A dead letter of the request's (stage "http"): data, code, why. */
static int to_dlq(struct http *x, struct lp_httpd_req *q, const char *data,
                  size_t n, const char *code, const char *why)
{
    struct hreq *r = lp_httpd_req_data(q);
    const char *cl = lp_httpd_req_client(q);
    struct lp_dlq_rec rec = {
        .data = { data, n },
        .error = { code, strlen(code) },
        .detail = { why, strlen(why) },
        .stage = { "http", 4 },
        .source_stream = { x->o->com.stream, strlen(x->o->com.stream) },
        .source_id = { "", 0 },
        .consumer = { cl ? cl : x->host, strlen(cl ? cl : x->host) },
        .failed_at = lp_now_ms(),
    };

    return lp_send_req_dlq(r->sq, &rec);
}

static const char *on_item(void *ctx, struct lp_httpd_req *q,
                           const struct lp_httpd_item *it)
{
    struct http *x = ctx;
    struct hreq *r = lp_httpd_req_data(q);
    const char *refused = NULL;
    int rc = 0;

    if (r->keyed) {             /* each item's bytes, then a LF */
        if (it->txt)
            r->hash = fnv(fnv(r->hash, it->txt, it->n), "\n", 1);
        else
            r->hash = fnv(r->hash, &it->line, sizeof it->line);
    }
    if (r->sq == NULL)
        return NULL;
    if (it->ev && !lp_send_req_admit(r->sq, it->txt, it->n, it->ev,
                                     r->why, sizeof r->why)) {
        /* --on-limit reject or dlq: this event is over the limit */
        refused = r->why;
        if (x->o->c.on_limit == LP_SEND_ON_DLQ)
            rc = to_dlq(x, q, it->txt, it->n, "rate-limited", r->why);
    } else if (it->ev) {
        rc = lp_send_req_event(r->sq, it->stored, it->stored_len, it->txt,
                               it->n, it->ev);
    } else if (x->o->c.rejects_to_dlq && it->txt && it->n) {
        rc = to_dlq(x, q, it->txt, it->n, it->code, it->msg);
    }
    if (rc < 0) {
        lp_send_req_abort(r->sq);
        r->sq = NULL;
    }
    return refused;
}

/* Hands q's request to the engine; answers the refusals. */
static void submit(struct http *x, struct lp_httpd_req *q, struct hreq *r)
{
    int64_t retry;
    int rc = lp_send_req_submit(r->sq, &retry);

    /* QUEUED, EMPTY: done() answers, maybe answered already: q may be
     * gone */
    switch (rc) {
    case LP_REQ_LIMITED:
        x->limited++;
        if (retry < 0)
            finish(q, 429, 0, "more events than --burst: this request can "
                   "never pass whole; send fewer events a request");
        else
            finish(q, 429, retry, "over --rate");
        break;
    case LP_REQ_UNAVAILABLE:
        x->unavailable++;
        finish(q, 503, retry, "Redis does not answer");
        break;
    case LP_REQ_BACKLOG:
        x->backlog++;
        finish(q, 503, retry, "the group's backlog is over --max-backlog");
        break;
    }
}

/* q's request is not stored: its engine request goes, then the answer. */
static void not_stored(struct lp_httpd_req *q, int status, int64_t retry,
                       const char *msg)
{
    struct hreq *r = lp_httpd_req_data(q);

    lp_send_req_abort(r->sq);
    r->sq = NULL;
    finish(q, status, retry, msg);
}

/* The answer a key's request gets, and that its field keeps: errors listed
 * up to IDEM_ERRORS_BYTES (the rest counted in "errors_omitted"), so that
 * a field stays small. */
#define IDEM_ERRORS_BYTES 1024

/*
 * The reply to the HGET of a key's field (keyed): stored before, by this
 * process or another: the first answer again (or 422: another body); not
 * stored: the request goes to the engine, its answer the cursor its
 * transaction commits; Redis did not say: 503.
 */
static void looked_up(void *ctx, const struct lp_reply *rep, const char *err)
{
    struct idem *e = ctx;
    struct lp_httpd_req *q = e->first;
    struct hreq *r = lp_httpd_req_data(q);
    struct http *x = door;
    struct lp_buf cur = { 0 }, ans = { 0 };
    char hex[17];
    const char *v;
    size_t n;

    snprintf(hex, sizeof hex, "%016" PRIx64, r->hash);
    if (err || lp_reply_type(rep) == LP_REPLY_ERROR) {
        /* not even with a WAL: a key stored before with another body
         * would make the WAL's copy be passed over after a 200 */
        x->unavailable += 1 + e->nwait;
        not_stored(q, 503, 1000, "the Idempotency-Key cannot be looked up "
                   "now: Redis does not answer");
        return;
    }
    if ((v = lp_reply_str(rep, &n)) != NULL) {
        struct lp_field f;
        const char *dot;
        lp_field_parse(v, n, &f);
        dot = f.cursor ? memchr(f.cursor, '.', f.clen) : NULL;
        if (dot == NULL || dot - f.cursor != 16 ||
            memcmp(f.cursor, hex, 16) != 0) {
            not_stored(q, 422, 0, "Idempotency-Key used before for another "
                       "body");
        } else if (b64_dec(&ans, dot + 1, f.clen - 17) < 0) {
            not_stored(q, 500, 0, "the Idempotency-Key's answer in Redis is "
                       "damaged");
        } else {
            e->body = ans.p ? ans.p : strdup("");
            e->blen = ans.len;
            ans = (struct lp_buf){ 0 };
            if (e->body == NULL) {
                not_stored(q, 500, 0, "out of memory");
                return;
            }
            x->replayed += 1 + e->nwait;
            not_stored(q, 200, 0, NULL);
        }
        lp_buf_free(&ans);
        return;
    }
    /* new: the cursor its transaction commits is its answer */
    if (lp_httpd_req_body200_cap(q, &ans, IDEM_ERRORS_BYTES) < 0 ||
        lp_buf_adds(&cur, hex) < 0 || lp_buf_addc(&cur, '.') < 0 ||
        b64_enc(&cur, (const unsigned char *)(ans.p ? ans.p : ""),
                ans.len) < 0 ||
        lp_send_req_producer(r->sq, e->name, strlen(e->name), cur.p,
                             cur.len) < 0) {
        lp_buf_free(&cur);
        lp_buf_free(&ans);
        not_stored(q, 500, 0, "out of memory");
        return;
    }
    lp_buf_free(&cur);
    e->body = ans.p ? ans.p : strdup("");
    e->blen = ans.len;
    submit(x, q, r);
}

/*
 * A request with a key: answered from the process's table when it knows
 * the key (a retry: the first answer; another body: 422; the first still
 * in flight: with it), else its key's field is looked up (looked_up goes
 * on), the loop never waiting for it.
 */
static void keyed(struct http *x, struct lp_httpd_req *q, struct hreq *r,
                  const char *k)
{
    struct idems *t = x->idem;
    char name[LP_PRODUCER_MAX + 64], err[LP_ERRLEN];
    struct idem **slot, *e;
    struct lp_aside *a = lp_send_aside(x->s);
    const char *argv[3];
    size_t lens[3];

    idem_name(name, sizeof name, lp_httpd_req_client(q), k);
    slot = idem_slot(t, name);
    if ((e = *slot) != NULL && e->done &&
        lp_mono_ms() - e->at > x->o->idem_ttl) {
        /* past --idempotency-ttl: Redis forgets it too; the oldest
         * first, so the whole older part of the list goes */
        while (t->oldest && lp_mono_ms() - t->oldest->at > x->o->idem_ttl)
            idem_drop(t, t->oldest);
        slot = idem_slot(t, name);
        e = *slot;
    }
    if (e != NULL) {
        if (e->hash != r->hash) {
            not_stored(q, 422, 0, "Idempotency-Key used before for another "
                       "body");
        } else if (e->done) {
            x->replayed++;
            lp_send_req_abort(r->sq);
            lp_httpd_req_set_data(q, NULL);
            free(r);
            lp_httpd_answer(q, 200, 0, e->body, e->blen);
        } else {
            /* the first is looked up or in flight: this one gets its
             * answer */
            if (e->nwait == e->cwait) {
                size_t c = e->cwait ? 2 * e->cwait : 4;
                struct lp_httpd_req **w = realloc(e->wait, c * sizeof *w);
                if (w == NULL) {
                    not_stored(q, 500, 0, "out of memory");
                    return;
                }
                e->wait = w;
                e->cwait = c;
            }
            lp_send_req_abort(r->sq);
            lp_httpd_req_set_data(q, NULL);
            free(r);
            e->wait[e->nwait++] = q;
            x->replayed++;
        }
        return;
    }
    if ((e = calloc(1, sizeof *e)) == NULL ||
        (e->name = strdup(name)) == NULL) {
        if (e)
            idem_free(e);
        not_stored(q, 500, 0, "out of memory");
        return;
    }
    e->hash = r->hash;
    argv[0] = "HGET";
    argv[1] = t->pkey;
    argv[2] = e->name;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    if (a == NULL ||
        lp_aside_cmdv(a, 3, argv, lens, looked_up, e, err) < 0) {
        idem_free(e);
        x->unavailable++;
        not_stored(q, 503, 1000, "the Idempotency-Key cannot be looked up "
                   "now: Redis does not answer");
        return;
    }
    e->first = q;
    *slot = e;
    r->key = e;
}

static void on_submit(void *ctx, struct lp_httpd_req *q)
{
    struct http *x = ctx;
    struct hreq *r = lp_httpd_req_data(q);
    const char *k = lp_httpd_req_idem(q);

    if (r->sq == NULL) {
        lp_httpd_req_set_data(q, NULL);
        free(r);
        lp_httpd_answer_error(q, 500, 0, "out of memory");
        return;
    }
    if (k)
        keyed(x, q, r, k);
    else
        submit(x, q, r);
}

static void on_abort(void *ctx, struct lp_httpd_req *q)
{
    struct hreq *r = lp_httpd_req_data(q);

    (void)ctx;
    if (r == NULL)
        return;
    lp_send_req_abort(r->sq);
    free(r);
}

static int on_health(void *ctx, struct lp_buf *out)
{
    struct http *x = ctx;
    struct lp_send_state st;

    if (x->quiescing || x->s == NULL) {
        lp_buf_adds(out, "stopping\n");
        return 503;
    }
    lp_send_state(x->s, &st);
    if (st.connected && !st.walmode) {
        lp_buf_adds(out, "ok\n");
        return 200;
    }
    if (x->o->c.wal) {
        lp_buf_adds(out, "ok: Redis does not answer, requests go to the "
                    "WAL\n");
        return 200;
    }
    lp_buf_adds(out, "Redis does not answer\n");
    return 503;
}

static int metric(struct lp_buf *out, const char *name, const char *type,
                  const char *help, double v)
{
    char line[512];

    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
             name, help, name, type, name, v);
    return lp_buf_adds(out, line);
}

static int on_metrics(void *ctx, struct lp_buf *out)
{
    struct http *x = ctx;
    struct lp_send_state st;
    const struct lp_send_counts *n;

    if (x->s == NULL)
        return lp_httpd_metrics(x->h, out);
    n = lp_send_counts(x->s);
    lp_send_state(x->s, &st);
    if (metric(out, "logpipe_http_redis_up", "gauge",
               "1 while a connection to Redis is up", st.connected) < 0 ||
        metric(out, "logpipe_http_wal_mode", "gauge",
               "1 while requests go to the WAL", st.walmode) < 0 ||
        metric(out, "logpipe_http_wal_bytes", "gauge",
               "bytes the WAL holds", (double)st.wal_bytes) < 0 ||
        metric(out, "logpipe_http_batches_in_flight", "gauge",
               "batches sent to Redis and not answered", st.inflight) < 0 ||
        metric(out, "logpipe_http_events_stored_total", "counter",
               "events stored in the stream", (double)n->sent) < 0 ||
        metric(out, "logpipe_http_events_wal_total", "counter",
               "events that went through the WAL", (double)n->wal) < 0 ||
        metric(out, "logpipe_http_events_limited_total", "counter",
               "events over --rate (of requests refused whole, or each "
               "rejected)", (double)n->limited) < 0 ||
        metric(out, "logpipe_http_redis_errors_total", "counter",
               "Redis failures", (double)n->errors) < 0 ||
        metric(out, "logpipe_http_requests_unavailable_total", "counter",
               "requests refused with 503: Redis down, no WAL",
               (double)x->unavailable) < 0 ||
        metric(out, "logpipe_http_requests_backlog_total", "counter",
               "requests refused with 503: over --max-backlog",
               (double)x->backlog) < 0 ||
        metric(out, "logpipe_http_requests_limited_total", "counter",
               "requests refused with 429: over --rate",
               (double)x->limited) < 0 ||
        metric(out, "logpipe_http_requests_replayed_total", "counter",
               "retries of an Idempotency-Key answered again, not stored",
               (double)x->replayed) < 0)
        return -1;
    return lp_httpd_metrics(x->h, out);
}

/* ---- the loop --------------------------------------------------------- */

static const char *signame(uint32_t sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP";
}

static void signals(struct http *x)
{
    struct signalfd_siginfo si;
    char err[LP_ERRLEN];

    while (read(x->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            if (x->tokens == NULL)
                lp_info("SIGHUP: no --tokens to read again");
            else if (lp_tokens_reload(x->tokens, err) < 0)
                lp_error("SIGHUP: %s: the tokens loaded before stay", err);
            else
                lp_info("SIGHUP: %zu tokens from %s", lp_tokens_count(
                        x->tokens), x->o->tokens);
        } else if (!x->quiescing) {
            lp_info("%s: answering the %u requests in hand, then exiting",
                    signame(si.ssi_signo), lp_httpd_busy(x->h));
            lp_httpd_quiesce(x->h);
            x->quiescing = 1;
        } else {
            lp_warn("%s again: exiting now; requests not yet stored get "
                    "503", signame(si.ssi_signo));
            x->stopped = 1;
            lp_send_stop(x->s);
        }
    }
}

/* libmicrohttpd's turn, never inside itself (a submit may wait on Redis,
 * whose waits call tick) */
static void http_run(struct http *x)
{
    if (x->in_run)
        return;
    x->in_run = 1;
    signals(x);
    lp_httpd_run(x->h);
    x->in_run = 0;
    if (x->quiescing && !x->stopped && lp_httpd_busy(x->h) == 0) {
        x->stopped = 1;
        lp_send_stop(x->s);
    }
}

static void ready(void *ctx)
{
    /* the set is level-triggered: the runs empty what it holds */
    http_run(ctx);
}

static int64_t due(void *ctx)
{
    struct http *x = ctx;
    int64_t d = lp_httpd_due_ms(x->h), l = lp_log_due();

    if (l >= 0 && (d < 0 || l < d))
        d = l;
    return d;
}

static void tick(void *ctx)
{
    struct http *x = ctx;
    struct lp_send_state st;

    lp_log_tick();
    if (x->s && !x->in_run) {
        lp_send_state(x->s, &st);
        if (st.connected)
            idem_prune(x->idem);
    }
    if (lp_httpd_due_ms(x->h) == 0)
        http_run(x);
}

/* The callbacks' struct lp_send_conf hooks get the common options as
 * their ctx (redis_new), the door as due's and tick's: one ctx for all,
 * so redis_new finds the options through it. */
static struct lp_redis *redis_new_x(void *ctx, char *err)
{
    struct http *x = ctx;

    return redis_new(&x->o->com, err);
}

/* ---- options ---------------------------------------------------------- */

static int listen_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err)
{
    struct lp_list *l = (struct lp_list *)((char *)base + o->off);

    if (*arg == '\0' || strrchr(arg, ':') == NULL) {
        snprintf(err, LP_ERRLEN, "'%s' is not ADDR:PORT", arg);
        return -1;
    }
    if (l->n >= LP_LIST_MAX) {
        snprintf(err, LP_ERRLEN, "at most %d addresses", LP_LIST_MAX);
        return -1;
    }
    l->item[l->n++] = arg;
    return 0;
}

static void parse_args(struct http_opt *opt, int argc, char **argv)
{
    struct lp_send_conf *c = &opt->c;

    tool_opt_parse(&cli, argc, argv, opt, &opt->com);
    if (c->wal_max && c->wal == NULL)
        tool_opt_error(&cli, "--wal-max needs --wal DIR");
    if (c->rate == 0 && opt->needs_rate)
        tool_opt_error(&cli, "--%s needs --rate", opt->needs_rate->name);
    if (c->rate > 0 && c->burst == 0)
        c->burst = tool_burst_default(c->rate);
    if (opt->client_field && opt->tokens == NULL)
        tool_opt_error(&cli, "--client-field needs --tokens (the name is "
                       "the token's)");
    if ((opt->tls_cert == NULL) != (opt->tls_key == NULL))
        tool_opt_error(&cli, "--tls-cert and --tls-key go together");
    c->stream = opt->com.stream;
    c->dlq = opt->com.dlq;
    c->group = opt->com.group;
    c->metrics = opt->com.metrics;
    c->metrics_interval = opt->com.metrics_interval;
    c->verbosity = opt->com.verbosity;
    c->ids_fd = -1;
}

/* Reads a PEM file whole (at most 1 MiB) into a string of the heap. */
static char *slurp(const char *path, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct lp_buf b = { 0 };
    char chunk[8192];
    ssize_t n;

    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", path, strerror(errno));
        return NULL;
    }
    while ((n = read(fd, chunk, sizeof chunk)) > 0 && b.len < (1u << 20))
        if (lp_buf_add(&b, chunk, (size_t)n) < 0)
            break;
    close(fd);
    if (n != 0 || lp_buf_add(&b, "", 1) < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", path, n < 0 ? strerror(errno) :
                 "larger than 1 MiB, or out of memory");
        lp_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* Writes the addresses listened on to LOGPIPE_TEST_ADDR_FILE (test-only:
 * --listen 127.0.0.1:0 picks a port), by a rename. */
static void addr_file(struct lp_httpd *h)
{
    const char *path = getenv("LOGPIPE_TEST_ADDR_FILE");
    char tmp[4096], a[128];
    FILE *f;

    if (path == NULL || snprintf(tmp, sizeof tmp, "%s.tmp", path) >=
        (int)sizeof tmp || (f = fopen(tmp, "w")) == NULL)
        return;
    for (int i = 0; i < lp_httpd_nlisten(h); i++)
        if (lp_httpd_addr(h, i, a, sizeof a) == 0)
            fprintf(f, "%s\n", a);
    if (fclose(f) == 0)
        rename(tmp, path);
}

int main(int argc, char **argv)
{
    struct http_opt opt = {
        .c = {
            .batch = 1000,
            .batch_bytes = 8 << 20,
            .linger = 0,
            .timeout = 30000,
            .replica_timeout = 1000,
            .max_age = 24 * 3600 * 1000LL,
            .max_skew = 5 * 60 * 1000LL,
            .max_line = 1 << 20,
            .max_depth = LP_JSON_DEPTH,
            .max_members = 10000,
            .max_keys = 10000,
            .producer_ttl = 7 * 24 * 3600 * 1000LL,
            .time_field = "timestamp",
            .partial_timeout = 5000,
        },
        .max_body = 10 << 20,
        .max_connections = 1024,
        .idle_timeout = 15000,
        .read_timeout = 60000,
        .max_header = 16 << 10,
        .idem_ttl = 24 * 3600 * 1000LL,
    };
    static char *default_listen[] = { "127.0.0.1:8088" };
    struct http x = { .o = &opt, .ep = -1, .sigfd = -1 };
    struct lp_notify nt = { say, NULL }, mnt = { mhd_say, NULL };
    struct lp_httpd_conf hc = { 0 };
    char *cert = NULL, *key = NULL;
    char err[LP_ERRLEN];
    sigset_t sigs;
    int code = 0, systemd_fds;

    parse_args(&opt, argc, argv);
    {
        /* test-only, as send's: a reply lost after Redis ran batch N */
        const char *t = getenv("LOGPIPE_TEST_LOSE_REPLY");
        if (t)
            opt.c.test_lose_reply = strtoull(t, NULL, 10);
    }
    lp_log_init("logpipe-http", opt.com.log_format, opt.com.verbosity);
    if ((code = tool_cluster(&opt.com, opt.c.timeout, err)) != 0) {
        lp_error("%s", err);
        return tool_opt_end(&opt.com, code);
    }
    opt.c.dlq = opt.com.dlq;
    opt.c.cluster = opt.com.cluster;
    opt.c.redis_new = redis_new_x;
    opt.c.due = due;
    opt.c.tick = tick;
    opt.c.ctx = &x;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 ||
        (x.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        (x.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        lp_error("signalfd, epoll: %s", strerror(errno));
        return tool_opt_end(&opt.com, LP_EX_SOFTWARE);
    }
    if (gethostname(x.host, sizeof x.host - 1) < 0)
        strcpy(x.host, "?");
    if (opt.tokens &&
        (x.tokens = lp_tokens_new(opt.tokens, &lp_log_notify, err)) == NULL) {
        lp_error("--tokens %s", err);
        code = access(opt.tokens, R_OK) < 0 ? LP_EX_NOINPUT : LP_EX_CONFIG;
        goto out;
    }
    if (opt.tls_cert && ((cert = slurp(opt.tls_cert, err)) == NULL ||
                         (key = slurp(opt.tls_key, err)) == NULL)) {
        lp_error("--tls-%s %s", cert ? "key" : "cert", err);
        code = LP_EX_NOINPUT;
        goto out;
    }
    door = &x;
    if ((x.idem = calloc(1, sizeof *x.idem)) == NULL ||
        (x.idem->pkey = malloc(strlen(opt.com.stream) + 16)) == NULL) {
        lp_error("out of memory");
        code = LP_EX_SOFTWARE;
        goto out;
    }
    if (lp_key_aux(opt.com.cluster, opt.com.stream, ":producers",
                   x.idem->pkey, strlen(opt.com.stream) + 16, err) < 0) {
        lp_error("%s", err);
        code = LP_EX_CONFIG;
        goto out;
    }
    strcpy(x.idem->scan, "0");
    x.idem->x = &x;
    if ((x.s = lp_send_new(&opt.c, &nt, err)) == NULL) {
        lp_error("%s", err);
        code = LP_EX_SOFTWARE;
        goto out;
    }
    if ((code = lp_send_open(x.s, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    systemd_fds = getenv("LISTEN_FDS") != NULL;
    hc.listen = opt.listen.n ? opt.listen.item
                             : systemd_fds ? NULL : default_listen;
    hc.nlisten = opt.listen.n ? opt.listen.n : systemd_fds ? 0 : 1;
    hc.systemd = 1;
    hc.rules = lp_send_rules(x.s);
    hc.max_body = opt.max_body;
    hc.max_line = opt.c.max_line;
    hc.client_field = opt.client_field;
    hc.time_field = opt.c.time_field;
    hc.tokens = x.tokens;
    hc.tls_cert = cert;
    hc.tls_key = key;
    hc.max_connections = (unsigned)opt.max_connections;
    hc.idle_timeout = (unsigned)((opt.idle_timeout + 999) / 1000);
    hc.read_timeout_ms = opt.read_timeout;
    hc.header_max = opt.max_header;
    hc.cb = (struct lp_httpd_cb){ on_begin, on_item, on_submit, on_abort,
                                  on_health, on_metrics };
    hc.ctx = &x;
    hc.notify = mnt;
    if ((x.h = lp_httpd_new(&hc, err)) == NULL) {
        lp_error("%s", err);
        code = LP_EX_UNAVAILABLE;
        goto out;
    }
    {
        struct epoll_event ev = { .events = EPOLLIN };
        char a[128];

        ev.data.u32 = 0;
        if (epoll_ctl(x.ep, EPOLL_CTL_ADD, lp_httpd_fd(x.h), &ev) < 0 ||
            (ev.data.u32 = 1,
             epoll_ctl(x.ep, EPOLL_CTL_ADD, x.sigfd, &ev) < 0)) {
            lp_error("epoll: %s", strerror(errno));
            code = LP_EX_SOFTWARE;
            goto out;
        }
        for (int i = 0; i < lp_httpd_nlisten(x.h); i++)
            if (lp_httpd_addr(x.h, i, a, sizeof a) == 0)
                lp_info("listening on %s%s", a, cert ? " (HTTPS)" : "");
        addr_file(x.h);
    }
    if (lp_send_serve(x.s, x.ep, ready, &x) < 0) {
        code = lp_send_status(x.s);     /* said */
        if (code == 0)
            code = LP_EX_SOFTWARE;
    }
out:
    /* requests still in hand fail (503) as the engine goes; their answers
     * leave before the server does, for at most a second */
    lp_send_free(x.s);
    x.s = NULL;
    if (x.h) {
        int64_t end = lp_mono_ms() + 1000;

        while (lp_httpd_busy(x.h) > 0 && lp_mono_ms() < end) {
            struct epoll_event ev[4];
            int64_t d = lp_httpd_due_ms(x.h);

            (void)epoll_wait(x.ep, ev, 4, d < 0 || d > 50 ? 50 : (int)d);
            lp_httpd_run(x.h);
        }
    }
    lp_httpd_free(x.h);
    if (x.idem) {
        for (size_t i = 0; i < IDEM_BUCKETS; i++)
            for (struct idem *e = x.idem->b[i], *n; e; e = n) {
                n = e->next;
                idem_free(e);
            }
        free(x.idem->pkey);
        free(x.idem);
    }
    lp_tokens_free(x.tokens);
    free(cert);
    free(key);
    if (x.sigfd >= 0)
        close(x.sigfd);
    if (x.ep >= 0)
        close(x.ep);
    lp_log_end();
    return tool_opt_end(&opt.com, code);
}
