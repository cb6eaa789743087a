/* lp_redis.c -- Redis connection, pipelining, and reply walking */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lp_buf.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_resp.h"

/*
 * This is the only file that includes hiredis (0.14.1 on Debian 12), and
 * only for its reply parser, and OpenSSL: the socket, TLS and the write
 * buffer are ours (below). After any I/O error the connection is closed
 * and the replies of commands in flight are lost; server errors are
 * ordinary replies (but ASK on a routed connection: followed in place,
 * see "ASK on routed connections").
 */

/* ---- replies in arenas -------------------------------------------------
 *
 * hiredis's own reply objects cost several mallocs an entry (the entry's
 * array, its ID, its fields' array, each field and value: a third of
 * logpipe-drain's instructions went to malloc and free). The reader here
 * builds the same redisReply objects, each top-level reply in a chain of
 * chunks of its own, and lp_reply_free frees the chain: a few mallocs a
 * reply. The layout is hiredis's redisReply, so every accessor below reads
 * them as before; only lp_reply_free may free them.
 */

struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
};

struct top {                    /* before each top-level reply */
    struct chunk *chunks;
    redisReply r;
};

static struct top *top_of(void *reply)
{
    return (struct top *)((char *)reply - offsetof(struct top, r));
}

/* a reader's reply being built (reader->privdata) */
struct build {
    struct top *top;
    struct chunk *last;
};

#define CHUNK_MIN 4096
#define CHUNK_MAX (256u << 10)

static void *arena_alloc(struct build *b, size_t n)
{
    struct chunk *c = b->last;
    size_t a = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

    if (c == NULL || c->cap - c->used < a) {
        size_t cap = c ? c->cap * 2 : CHUNK_MIN;
        if (cap > CHUNK_MAX)
            cap = CHUNK_MAX;
        if (cap < a)
            cap = a;
        struct chunk *nc = malloc(sizeof *nc + cap);
        if (nc == NULL)
            return NULL;
        nc->next = NULL;
        nc->cap = cap;
        nc->used = 0;
        if (c)
            c->next = nc;
        b->last = c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += a;
    return p;
}

static void chain_free(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* A new object for task: the first of a new top-level reply, or one
 * linked into its parent array. */
static redisReply *arena_obj(const redisReadTask *task, int type, size_t extra)
{
    const redisReadTask *root = task;
    struct build *b;
    redisReply *r;

    while (root->parent)
        root = root->parent;
    b = root->privdata;
    if (task->parent == NULL) {
        /* a top-level reply: its own chain */
        struct chunk *first = malloc(sizeof *first + CHUNK_MIN);
        if (first == NULL)
            return NULL;
        first->next = NULL;
        first->cap = CHUNK_MIN;
        first->used = 0;
        b->last = first;
        b->top = arena_alloc(b, sizeof *b->top);
        b->top->chunks = first;
        r = &b->top->r;
    } else if ((r = arena_alloc(b, sizeof *r)) == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->type = type;
    if (extra && (r->str = arena_alloc(b, extra)) == NULL) {
        if (task->parent == NULL)
            chain_free(b->top->chunks);     /* hiredis never saw it */
        return NULL;
    }
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *arena_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = arena_obj(task, task->type, len + 1);

    if (r == NULL)
        return NULL;
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *arena_array(const redisReadTask *task, int elements)
{
    redisReply *r = arena_obj(task, REDIS_REPLY_ARRAY, 0);
    const redisReadTask *root = task;

    if (r == NULL)
        return NULL;
    while (root->parent)
        root = root->parent;
    if (elements > 0) {
        r->element = arena_alloc(root->privdata,
                                 (size_t)elements * sizeof *r->element);
        if (r->element == NULL) {
            if (task->parent == NULL)
                chain_free(top_of(r)->chunks);  /* hiredis never saw it */
            return NULL;
        }
        memset(r->element, 0, (size_t)elements * sizeof *r->element);
    }
    r->elements = (size_t)elements;
    return r;
}

static void *arena_integer(const redisReadTask *task, long long value)
{
    redisReply *r = arena_obj(task, REDIS_REPLY_INTEGER, 0);

    if (r)
        r->integer = value;
    return r;
}

static void *arena_nil(const redisReadTask *task)
{
    return arena_obj(task, REDIS_REPLY_NIL, 0);
}

/* hiredis frees only a top-level reply (one it gives up building) */
static void arena_free(void *reply)
{
    if (reply)
        chain_free(top_of(reply)->chunks);
}

static redisReplyObjectFunctions arena_fns = {
    arena_string, arena_array, arena_integer, arena_nil, arena_free
};

static void arena_reader(redisReader *rd, struct build *b)
{
    b->top = NULL;
    b->last = NULL;
    rd->fn = &arena_fns;
    rd->privdata = b;
}

/* ---- the connection ----------------------------------------------------
 *
 * A socket of our own (TCP or unix, optionally TLS through OpenSSL), a
 * write buffer of RESP, and hiredis's reply parser (redisReader) fed with
 * what is read: hiredis 0.14 has no TLS, and its context would hide the
 * socket a TLS session needs. The socket is blocking with SO_RCVTIMEO and
 * SO_SNDTIMEO at the timeout, as hiredis's was, so a wait that expires is
 * an I/O error (EAGAIN), after which the connection is closed. Over TLS a
 * read takes every byte OpenSSL has decrypted (SSL_pending), so that the
 * descriptor polled says all there is to read.
 */
struct lp_redis {
    struct lp_url url;
    char *password;
    char name[300];
    int fd;                     /* -1: not connected */
    SSL_CTX *ctx;               /* rediss:// (lp_redis_tls) */
    SSL *ssl;
    char *server_name;          /* --tls-server-name (NULL: the host) */
    int insecure;               /* --tls-insecure */
    redisReader *rd;
    struct lp_buf out;          /* RESP queued, not yet written */
    int64_t timeout_ms;
    struct build build;         /* rd's */
    char ioerr[160];            /* why the last I/O failed */
    lp_redis_route_fn route;    /* lp_redis_set_route */
    void *route_ctx;
    /* routed only (ASK, below): the commands sent and not yet answered */
    struct lp_buf kept;         /* their RESP, in order */
    size_t kcur;                /* kept: the next command to be answered */
    size_t kmulti;              /* kept: the open transaction's MULTI */
    int intx;                   /* its replies are being held back */
    int untracked;              /* kept lost step: ASK closes, as before */
    int held_ask;               /* an ASK among the held replies */
    struct lp_reply **held;     /* a transaction's replies, held back */
    size_t nheld, capheld;
    size_t nready, hout;        /* held[hout..nready): to hand out */
    struct lp_redis *ask;       /* the last ASK's node (cached, no route) */
};

struct lp_redis *lp_redis_new(const struct lp_url *u, const char *password)
{
    struct lp_redis *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->url = *u;
    r->fd = -1;
    if (password && *password && (r->password = strdup(password)) == NULL) {
        free(r);
        return NULL;
    }
    lp_url_describe(u, r->name, sizeof r->name);
    r->timeout_ms = 10000;
    return r;
}

void lp_redis_set_route(struct lp_redis *r, lp_redis_route_fn fn, void *ctx)
{
    r->route = fn;
    r->route_ctx = ctx;
}

int lp_redis_retarget(struct lp_redis *r, const char *host, int port)
{
    if (strlen(host) >= sizeof r->url.host)
        return -1;
    if (strcmp(r->url.host, host) != 0 || r->url.port != port) {
        snprintf(r->url.host, sizeof r->url.host, "%s", host);
        r->url.port = port;
        r->url.is_unix = 0;
        lp_url_describe(&r->url, r->name, sizeof r->name);
    }
    return 0;
}

/* OpenSSL's last error, or what, into buf */
static void ssl_why(char *buf, size_t cap, const char *what)
{
    unsigned long e = ERR_get_error();

    if (e) {
        char t[256];
        ERR_error_string_n(e, t, sizeof t);
        snprintf(buf, cap, "%s: %s", what, t);
    } else {
        snprintf(buf, cap, "%s", what);
    }
    ERR_clear_error();
}

int lp_redis_tls(struct lp_redis *r, const struct lp_tls *t, char *err)
{
    SSL_CTX *ctx;
    char why[400];

    if (!r->url.tls) {
        snprintf(err, LP_ERRLEN, "%s: the --tls-* options need a rediss:// "
                 "URL", r->name);
        return -1;
    }
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        ssl_why(why, sizeof why, "SSL_CTX_new");
        snprintf(err, LP_ERRLEN, "%s", why);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a read that finds only TLS housekeeping (a session ticket) returns
     * rather than block for the reply data it did not ask for */
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (t && t->ca) {
        if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
            ssl_why(why, sizeof why, t->ca);
            snprintf(err, LP_ERRLEN, "--tls-ca %s", why);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_why(why, sizeof why, "the system's CA store");
        snprintf(err, LP_ERRLEN, "%s", why);
        goto fail;
    }
    if (t && (t->cert || t->key)) {
        if (!t->cert || !t->key) {
            snprintf(err, LP_ERRLEN, "--tls-cert and --tls-key go together");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
            ssl_why(why, sizeof why, t->cert);
            snprintf(err, LP_ERRLEN, "--tls-cert %s", why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ssl_why(why, sizeof why, t->key);
            snprintf(err, LP_ERRLEN, "--tls-key %s", why);
            goto fail;
        }
    }
    r->insecure = t && t->insecure;
    SSL_CTX_set_verify(ctx, r->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       NULL);
    free(r->server_name);
    r->server_name = NULL;
    if (t && t->server_name && (r->server_name = strdup(t->server_name)) ==
        NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        goto fail;
    }
    if (r->ctx)
        SSL_CTX_free(r->ctx);
    r->ctx = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void lp_redis_free(struct lp_redis *r)
{
    if (r == NULL)
        return;
    lp_redis_disconnect(r);
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    if (r->ctx)
        SSL_CTX_free(r->ctx);
    free(r->server_name);
    lp_buf_free(&r->out);
    lp_buf_free(&r->kept);
    free(r->held);
    lp_redis_free(r->ask);
    memset(&r->url, 0, sizeof r->url);
    free(r);
}

/* Forgets the commands kept and the replies held (routed only) */
static void untrack(struct lp_redis *r)
{
    for (size_t i = r->hout; i < r->nheld; i++)
        lp_reply_free(r->held[i]);
    r->nheld = r->nready = r->hout = 0;
    r->kept.len = r->kcur = r->kmulti = 0;
    r->intx = r->untracked = r->held_ask = 0;
}

void lp_redis_disconnect(struct lp_redis *r)
{
    if (r->ssl) {
        SSL_free(r->ssl);       /* no close_notify: the socket goes too */
        r->ssl = NULL;
    }
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    if (r->rd) {
        redisReaderFree(r->rd); /* frees a reply half built (arena_free) */
        r->rd = NULL;
    }
    r->out.len = 0;
    if (r->route)
        untrack(r);
}

int lp_redis_connected(const struct lp_redis *r)
{
    return r->fd >= 0;
}

const char *lp_redis_name(const struct lp_redis *r)
{
    return r->name;
}

int lp_redis_fd(const struct lp_redis *r)
{
    return r->fd;
}

static void sock_timeout(int fd, int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void lp_redis_set_timeout(struct lp_redis *r, int64_t ms)
{
    r->timeout_ms = ms;
    if (r->fd >= 0)
        sock_timeout(r->fd, ms);
}

/* Says why the last I/O failed (r->ioerr), then drops the connection. */
static void io_error(struct lp_redis *r, char *err)
{
    if (r->fd < 0 && r->ioerr[0] == '\0')
        snprintf(err, LP_ERRLEN, "%s: not connected", r->name);
    else
        snprintf(err, LP_ERRLEN, "%s: %s", r->name, r->ioerr[0] ? r->ioerr
                 : "connection lost");
    r->ioerr[0] = '\0';
    lp_redis_disconnect(r);
}

/* Records why an I/O call failed: e its errno (0: the peer closed) */
static void io_why(struct lp_redis *r, int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        snprintf(r->ioerr, sizeof r->ioerr, "timed out after %lldms",
                 (long long)r->timeout_ms);
    else if (e == 0)
        snprintf(r->ioerr, sizeof r->ioerr, "connection closed by server");
    else
        snprintf(r->ioerr, sizeof r->ioerr, "%s", strerror(e));
}

/* The socket, connected within ms (non-blocking connect, then blocking
 * with the timeouts); -1 with why */
static int dial(struct lp_redis *r, int64_t ms, char *why, size_t cap)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    char port[16];
    int fd = -1, e = 0, rc;

    if (r->url.is_unix) {
        snprintf(un.sun_path, sizeof un.sun_path, "%s", r->url.path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&un, sizeof un) < 0) {
            snprintf(why, cap, "%s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    snprintf(port, sizeof port, "%d", r->url.port);
    if ((rc = getaddrinfo(r->url.host, port, &hints, &ai)) != 0) {
        snprintf(why, cap, "%s", gai_strerror(rc));
        return -1;
    }
    for (a = ai; a; a = a->ai_next) {
        struct pollfd p;
        socklen_t el = sizeof e;
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        e = errno;
        if (e == EINPROGRESS) {
            p.fd = fd;
            p.events = POLLOUT;
            rc = poll(&p, 1, (int)ms);
            if (rc == 0)
                e = ETIMEDOUT;
            else if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e,
                                          &el) == 0 && e == 0)
                break;
            else if (rc < 0)
                e = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(why, cap, "%s", strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    {
        int one = 1, idle = 15, intvl = 5, cnt = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    return fd;
}

/* The TLS handshake on r->fd, the server's certificate checked against
 * the CA and the name; -1 with why (verify: 1 when the certificate was
 * refused: a configuration's fault, not the network's) */
static int handshake(struct lp_redis *r, char *why, size_t cap, int *verify)
{
    const char *name = r->server_name ? r->server_name : r->url.host;
    unsigned char a[16];
    int is_ip = inet_pton(AF_INET, name, a) == 1 ||
                inet_pton(AF_INET6, name, a) == 1;
    long v;

    *verify = 0;
    if ((r->ssl = SSL_new(r->ctx)) == NULL ||
        SSL_set_fd(r->ssl, r->fd) != 1) {
        ssl_why(why, cap, "SSL_new");
        return -1;
    }
    if (!is_ip)
        SSL_set_tlsext_host_name(r->ssl, name);
    if (!r->insecure) {
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl),
                                                  name) != 1
                  : SSL_set1_host(r->ssl, name) != 1) {
            ssl_why(why, cap, "the name to verify");
            return -1;
        }
    }
    ERR_clear_error();
    errno = 0;
    if (SSL_connect(r->ssl) != 1) {
        if (!r->insecure && (v = SSL_get_verify_result(r->ssl)) != X509_V_OK) {
            snprintf(why, cap, "TLS: the server's certificate is refused: %s "
                     "(name checked: %s; --tls-ca, --tls-server-name)",
                     X509_verify_cert_error_string(v), name);
            *verify = 1;
        } else if (errno == EAGAIN) {
            snprintf(why, cap, "TLS handshake timed out (is the server "
                     "speaking TLS?)");
        } else {
            char t[300];
            ssl_why(t, sizeof t, "TLS handshake failed");
            snprintf(why, cap, "%s (is the server speaking TLS?)", t);
        }
        return -1;
    }
    return 0;
}

static int auth_error(const redisReply *rep)
{
    static const char *codes[] = { "WRONGPASS", "NOAUTH", "NOPERM",
                                   "ERR invalid password",
                                   "ERR AUTH", "ERR DB index",
                                   "ERR invalid DB", "ERR Client sent AUTH" };

    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strncmp(rep->str, codes[i], strlen(codes[i])) == 0)
            return 1;
    return 0;
}

int lp_redis_connect(struct lp_redis *r, char *err)
{
    int64_t cms = r->timeout_ms > 0 && r->timeout_ms < 5000 ? r->timeout_ms
                                                            : 5000;
    const char *argv[3];
    size_t lens[3];
    int ncmd = 0, rc = 0, verify;
    char db[16], why[512];

    lp_redis_disconnect(r);
    r->ioerr[0] = '\0';
    if (r->route && (rc = r->route(r->route_ctx, r, err)) != 0)
        return rc;
    if (r->url.tls && r->ctx == NULL && lp_redis_tls(r, NULL, err) < 0)
        return LP_REDIS_EAUTH;
    if ((r->fd = dial(r, cms, why, sizeof why)) < 0) {
        snprintf(err, LP_ERRLEN, "cannot connect to %s: %s", r->name, why);
        return LP_REDIS_ETEMP;
    }
    sock_timeout(r->fd, r->timeout_ms > 0 ? r->timeout_ms : cms);
    if (r->url.tls && handshake(r, why, sizeof why, &verify) < 0) {
        snprintf(err, LP_ERRLEN, "cannot connect to %s: %s", r->name, why);
        lp_redis_disconnect(r);
        return verify ? LP_REDIS_EAUTH : LP_REDIS_ETEMP;
    }
    if (r->timeout_ms <= 0)
        sock_timeout(r->fd, 0);
    if ((r->rd = redisReaderCreate()) == NULL) {
        snprintf(err, LP_ERRLEN, "%s: out of memory", r->name);
        lp_redis_disconnect(r);
        return LP_REDIS_ETEMP;
    }
    arena_reader(r->rd, &r->build);

    /* AUTH, SELECT and PING in one round trip */
    if (r->password || r->url.user[0]) {
        int n = 0;
        argv[n] = "AUTH"; lens[n++] = 4;
        if (r->url.user[0]) {
            argv[n] = r->url.user;
            lens[n] = strlen(r->url.user);
            n++;
        }
        argv[n] = r->password ? r->password : "";
        lens[n] = strlen(argv[n]);
        n++;
        lp_redis_append(r, n, argv, lens);
        ncmd++;
    }
    if (r->url.db) {
        snprintf(db, sizeof db, "%d", r->url.db);
        argv[0] = "SELECT"; lens[0] = 6;
        argv[1] = db; lens[1] = strlen(db);
        lp_redis_append(r, 2, argv, lens);
        ncmd++;
    }
    argv[0] = "PING"; lens[0] = 4;
    lp_redis_append(r, 1, argv, lens);
    ncmd++;
    for (int i = 0; i < ncmd; i++) {
        struct lp_reply *lr;
        const redisReply *rep;
        if (lp_redis_reply(r, &lr, why) < 0) {
            snprintf(err, LP_ERRLEN, "cannot connect to %.900s", why);
            lp_redis_disconnect(r);
            return LP_REDIS_ETEMP;
        }
        rep = (const redisReply *)lr;
        if (rep->type == REDIS_REPLY_ERROR && rc == 0) {
            if (auth_error(rep)) {
                snprintf(err, LP_ERRLEN, "%s refused us: %.200s%s", r->name,
                         rep->str, strncmp(rep->str, "NOAUTH", 6) == 0 ?
                         " (set LOGPIPE_REDIS_PASSWORD or --password-file)"
                         : "");
                rc = LP_REDIS_EAUTH;
            } else {
                snprintf(err, LP_ERRLEN, "%s: %.200s", r->name, rep->str);
                rc = LP_REDIS_ETEMP;
            }
        }
        lp_reply_free(lr);
    }
    if (rc)
        lp_redis_disconnect(r);
    return rc;
}

int lp_redis_append(struct lp_redis *r, int argc, const char **argv,
                    const size_t *lens)
{
    size_t was = r->out.len;

    if (r->fd < 0)
        return -1;
    if (lp_resp_head(&r->out, (size_t)argc) < 0)
        goto oom;
    for (int i = 0; i < argc; i++)
        if (lp_resp_bulk(&r->out, argv[i], lens[i]) < 0)
            goto oom;
    if (r->route && lp_buf_add(&r->kept, r->out.p + was, r->out.len - was) < 0)
        goto oom;
    return 0;
oom:
    r->out.len = was;
    return -1;
}

int lp_redis_append_raw(struct lp_redis *r, const char *cmd, size_t len)
{
    if (r->fd < 0)
        return -1;
    if (r->route && lp_buf_add(&r->kept, cmd, len) < 0)
        return -1;
    if (lp_buf_add(&r->out, cmd, len) < 0) {
        if (r->route)
            r->kept.len -= len;
        return -1;
    }
    return 0;
}

size_t lp_redis_pending_out(const struct lp_redis *r)
{
    return r->out.len;
}

/* Writes v[0..k) whole (k <= 8; blocks, up to the timeout): one sendmsg
 * a round, or SSL_write of each part over TLS (OpenSSL copies into its
 * records anyway). 0, or -1 + err with the connection closed. */
static int write_all(struct lp_redis *r, const struct iovec *iov, int n,
                     char *err)
{
    struct iovec v[8];
    struct msghdr m = { .msg_iov = v };
    int k = 0;

    for (int i = 0; i < n; i++)
        if (iov[i].iov_len)
            v[k++] = iov[i];
    m.msg_iovlen = (size_t)k;
    while (m.msg_iovlen) {
        ssize_t w;
        if (r->ssl) {
            size_t left = m.msg_iov[0].iov_len;
            int x;
            errno = 0;
            x = SSL_write(r->ssl, m.msg_iov[0].iov_base,
                          left > INT32_MAX ? INT32_MAX : (int)left);
            if (x <= 0) {
                int se = SSL_get_error(r->ssl, x);
                if (se == SSL_ERROR_SYSCALL || se == SSL_ERROR_WANT_WRITE ||
                    se == SSL_ERROR_WANT_READ)
                    io_why(r, errno ? errno : EPIPE);
                else
                    ssl_why(r->ioerr, sizeof r->ioerr, "TLS write");
                io_error(r, err);
                return -1;
            }
            w = x;
        } else if ((w = sendmsg(r->fd, &m, MSG_NOSIGNAL)) < 0) {
            if (errno == EINTR)
                continue;
            io_why(r, errno);
            io_error(r, err);
            return -1;
        }
        /* past what went */
        while (m.msg_iovlen && (size_t)w >= m.msg_iov[0].iov_len) {
            w -= (ssize_t)m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + w;
            m.msg_iov[0].iov_len -= (size_t)w;
        }
    }
    return 0;
}

int lp_redis_flush(struct lp_redis *r, char *err)
{
    struct iovec v = { r->out.p, r->out.len };

    if (r->fd < 0) {
        io_error(r, err);
        return -1;
    }
    if (write_all(r, &v, 1, err) < 0)
        return -1;
    r->out.len = 0;
    return 0;
}

int lp_redis_writev(struct lp_redis *r, const struct iovec *iov, int n,
                    char *err)
{
    if (n > 8) {
        snprintf(err, LP_ERRLEN, "%s: more than 8 parts to write", r->name);
        return -1;
    }
    if (lp_redis_flush(r, err) < 0)
        return -1;
    if (r->route) {
        /* kept until answered (ASK): the one copy a routed batch costs */
        for (int i = 0; i < n; i++)
            if (lp_buf_add(&r->kept, iov[i].iov_base, iov[i].iov_len) < 0) {
                snprintf(r->ioerr, sizeof r->ioerr, "out of memory");
                io_error(r, err);
                return -1;
            }
    }
    return write_all(r, iov, n, err);
}

int lp_redis_read(struct lp_redis *r, char *err)
{
    /* 16 KiB a read, as hiredis: its reader moves what is left of its
     * buffer to the front each time 1 KiB of it was parsed, so a larger
     * read costs more in moves than it saves in calls (+13% of send's
     * instructions at 64 KiB, callgrind) */
    char buf[16384];

    if (r->fd < 0) {
        io_error(r, err);
        return -1;
    }
    do {
        ssize_t n;
        if (r->ssl) {
            int k, se;
            errno = 0;
            k = SSL_read(r->ssl, buf, sizeof buf);
            if (k <= 0) {
                se = SSL_get_error(r->ssl, k);
                if (se == SSL_ERROR_WANT_READ && errno == 0)
                    return 0;   /* TLS housekeeping only: no data yet */
                if (se == SSL_ERROR_ZERO_RETURN)
                    io_why(r, 0);
                else if (se == SSL_ERROR_SYSCALL ||
                         se == SSL_ERROR_WANT_READ ||
                         se == SSL_ERROR_WANT_WRITE)
                    io_why(r, errno);
                else
                    ssl_why(r->ioerr, sizeof r->ioerr, "TLS read");
                io_error(r, err);
                return -1;
            }
            n = k;
        } else {
            n = recv(r->fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                io_why(r, n == 0 ? 0 : errno);
                io_error(r, err);
                return -1;
            }
        }
        if (redisReaderFeed(r->rd, buf, (size_t)n) != REDIS_OK) {
            snprintf(r->ioerr, sizeof r->ioerr, "out of memory");
            io_error(r, err);
            return -1;
        }
    } while (r->ssl && SSL_pending(r->ssl) > 0);
    return 0;
}

/* ---- ASK on routed connections ----------------------------------------
 *
 * A slot being migrated: its old owner answers -ASK <slot> <host>:<port>
 * for a key it no longer holds, the map does not change, and the command
 * goes to the node named, after ASKING, for that once. A routed
 * connection keeps each command's RESP (kept) until its reply is read
 * (the replies come in the order of the commands, so the next reply is
 * always the command at kcur); a reply -ASK is answered by sending that
 * command again on a connection of its own to the node named (r->ask:
 * same URL, password, TLS, timeout; no route) after ASKING, and that
 * answer, whatever it is, is handed out in the ASK's place.
 *
 * A transaction (MULTI ... EXEC) whose queued command the owner turned
 * away makes EXEC fail: the replies from MULTI's to EXEC's are held back,
 * and when one of them was an ASK the whole transaction goes to the node
 * named as ASKING, MULTI, ..., EXEC (Redis keeps the flag from ASKING to
 * EXEC), whose replies are handed out in the place of the held ones; one
 * over keys some of which have not moved answers TRYAGAIN, handed out as
 * it is. Nothing goes to the node named that its owner did not turn away.
 * Standalone connections keep nothing and hold nothing.
 */

enum { CMD_OTHER, CMD_MULTI, CMD_END };

/* The decimal "<digits>\r\n" at p[*at..n): its value, *at past it; -1
 * when malformed or cut short. Per argument of every command answered on
 * a routed connection: kept short */
static inline long resp_num(const char *p, size_t *at, size_t n)
{
    size_t i = *at;
    long v = 0;

    while (i < n && (unsigned char)(p[i] - '0') < 10 && v < (1L << 40))
        v = v * 10 + (p[i++] - '0');
    if (i == *at || i + 1 >= n || p[i] != '\r')
        return -1;
    *at = i + 2;
    return v;
}

/* The command at kept[kcur]: its span [*start, *end), kcur past it, and
 * its kind; -1 when there is none whole there (kept lost step) */
static int next_cmd(struct lp_redis *r, size_t *start, size_t *end)
{
    const char *p = r->kept.p;
    size_t at = r->kcur + 1, n = r->kept.len;
    long argc, len;
    int kind = CMD_OTHER;

    if (r->kcur >= n || p[r->kcur] != '*' ||
        (argc = resp_num(p, &at, n)) < 1)
        return -1;
    for (long i = 0; i < argc; i++) {
        if (at >= n || p[at] != '$')
            return -1;
        at++;
        if ((len = resp_num(p, &at, n)) < 0 || (size_t)len + 2 > n - at)
            return -1;
        if (i == 0 && len >= 4 && len <= 7 &&
            ((p[at] | 0x20) == 'm' || (p[at] | 0x20) == 'e' ||
             (p[at] | 0x20) == 'd')) {
            const char *c = p + at;
            if (len == 5 && strncasecmp(c, "MULTI", 5) == 0)
                kind = CMD_MULTI;
            else if ((len == 4 && strncasecmp(c, "EXEC", 4) == 0) ||
                     (len == 7 && strncasecmp(c, "DISCARD", 7) == 0))
                kind = CMD_END;
        }
        at += (size_t)len + 2;
    }
    *start = r->kcur;
    *end = r->kcur = at;
    return kind;
}

/* Drops from kept what no reply needs any more */
static void kept_trim(struct lp_redis *r)
{
    size_t base = r->intx ? r->kmulti : r->kcur;

    if (base == r->kept.len) {
        r->kept.len = r->kcur = r->kmulti = 0;
    } else if (base >= (256u << 10) && base >= r->kept.len / 4 * 3) {
        /* (at most a third of what was answered moved again) */
        memmove(r->kept.p, r->kept.p + base, r->kept.len - base);
        r->kept.len -= base;
        r->kcur -= base;
        r->kmulti -= r->intx ? base : r->kmulti;
    }
}

static inline int is_ask(const redisReply *x)
{
    return x->type == REDIS_REPLY_ERROR && x->str[0] == 'A' &&
           strncmp(x->str, "ASK ", 4) == 0;
}

/* The connection to the node an ASK names, connected; NULL with err */
static struct lp_redis *ask_conn(struct lp_redis *r, const char *msg,
                                 char *err)
{
    const char *w = strchr(msg + 4, ' '), *colon;
    struct lp_redis *a = r->ask;
    char host[sizeof r->url.host];
    long port;
    char *end;

    if (w == NULL || (colon = strrchr(w + 1, ':')) == NULL ||
        (size_t)(colon - (w + 1)) >= sizeof host ||
        (port = strtol(colon + 1, &end, 10)) <= 0 || port > 65535) {
        snprintf(err, LP_ERRLEN, "%s: not an ASK redirect: %.200s", r->name,
                 msg);
        return NULL;
    }
    if (colon == w + 1)         /* no host given: the owner's */
        snprintf(host, sizeof host, "%s", r->url.host);
    else
        snprintf(host, sizeof host, "%.*s", (int)(colon - (w + 1)), w + 1);
    if (a == NULL) {
        if ((a = calloc(1, sizeof *a)) == NULL)
            goto oom;
        a->url = r->url;
        a->fd = -1;
        a->insecure = r->insecure;
        if ((r->password && (a->password = strdup(r->password)) == NULL) ||
            (r->server_name &&
             (a->server_name = strdup(r->server_name)) == NULL)) {
            lp_redis_free(a);
            goto oom;
        }
        if (r->ctx && SSL_CTX_up_ref(r->ctx) == 1)
            a->ctx = r->ctx;
        lp_url_describe(&a->url, a->name, sizeof a->name);
        r->ask = a;
    }
    if (strcmp(a->url.host, host) != 0 || a->url.port != (int)port)
        lp_redis_disconnect(a);
    if (lp_redis_retarget(a, host, (int)port) < 0) {
        snprintf(err, LP_ERRLEN, "%s: host too long: %.200s", r->name, msg);
        return NULL;
    }
    lp_redis_set_timeout(a, r->timeout_ms);
    if (!lp_redis_connected(a) && lp_redis_connect(a, err) != 0)
        return NULL;
    return a;
oom:
    snprintf(err, LP_ERRLEN, "%s: out of memory", r->name);
    return NULL;
}

/* The next reply on a, the ASK's node. Its wait ends too when r's socket
 * is shut (a tool's stop signal during a blocking read shuts the socket
 * it knows, r's) or closed by its server: r's replies are lost then */
static int ask_reply(struct lp_redis *r, struct lp_redis *a,
                     struct lp_reply **rep, char *err)
{
    int rc;

    while ((rc = lp_redis_next(a, rep, err)) == 0) {
        if (!(a->ssl && SSL_pending(a->ssl) > 0)) {
            struct pollfd p[2] = { { a->fd, POLLIN, 0 },
                                   { r->fd, POLLRDHUP, 0 } };
            int k = poll(p, 2, a->timeout_ms > 0 ? (int)a->timeout_ms : -1);
            if (k < 0 && errno == EINTR)
                continue;
            if (k == 0) {
                io_why(a, EAGAIN);
                io_error(a, err);
                return -1;
            }
            if (p[1].revents) {
                snprintf(err, LP_ERRLEN, "%s: connection closed", r->name);
                lp_redis_disconnect(a);
                return -1;
            }
        }
        if (lp_redis_read(a, err) < 0)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

/* Sends kept[start, end) again to the node msg names, after ASKING, and
 * puts its n replies in out[0..n). 0, or -1 with err */
static int ask_again(struct lp_redis *r, const char *msg, size_t start,
                     size_t end, struct lp_reply **out, size_t n, char *err)
{
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    struct lp_redis *a = ask_conn(r, msg, err);
    struct lp_reply *ok;
    size_t got = 0;

    if (a == NULL)
        return -1;
    if (lp_buf_add(&a->out, asking, sizeof asking - 1) < 0 ||
        lp_buf_add(&a->out, r->kept.p + start, end - start) < 0) {
        a->out.len = 0;
        snprintf(err, LP_ERRLEN, "%s: out of memory", r->name);
        return -1;
    }
    if (lp_redis_flush(a, err) < 0)
        return -1;
    /* ASKING's +OK (a refusal shows in the answers after it) */
    if (ask_reply(r, a, &ok, err) < 0)
        return -1;
    lp_reply_free(ok);
    for (; got < n; got++)
        if (ask_reply(r, a, &out[got], err) < 0)
            break;
    if (got == n)
        return 0;
    while (got)
        lp_reply_free(out[--got]);
    return -1;
}

/* An I/O error on the ASK's node: r's replies in flight are lost too */
static int ask_failed(struct lp_redis *r, char *err)
{
    snprintf(r->ioerr, sizeof r->ioerr, "after ASK: %.140s", err);
    io_error(r, err);
    return -1;
}

/* lp_redis_next of a routed connection: *rep, the reply to hand out */
static int routed_next(struct lp_redis *r, struct lp_reply **rep, char *err)
{
    void *p;
    size_t start, end;
    int kind;

    for (;;) {
        if (r->hout < r->nready) {
            p = r->held[r->hout++];
            if (r->hout == r->nready)
                r->nheld = r->nready = r->hout = 0;
            break;
        }
        p = NULL;
        if (redisReaderGetReply(r->rd, &p) != REDIS_OK) {
            snprintf(r->ioerr, sizeof r->ioerr, "protocol error: %s",
                     r->rd->errstr);
            io_error(r, err);
            return -1;
        }
        if (p == NULL)
            return 0;
        if (r->untracked || (kind = next_cmd(r, &start, &end)) < 0) {
            r->untracked = 1;   /* cannot happen: closes on ASK */
            break;
        }
        if (kind == CMD_MULTI && !r->intx) {
            r->intx = 1;
            r->kmulti = start;
        }
        if (r->intx) {
            if (r->nheld == r->capheld) {
                size_t cap = r->capheld ? 2 * r->capheld : 64;
                struct lp_reply **h = realloc(r->held, cap * sizeof *h);
                if (h == NULL) {
                    lp_reply_free(p);
                    snprintf(r->ioerr, sizeof r->ioerr, "out of memory");
                    io_error(r, err);
                    return -1;
                }
                r->held = h;
                r->capheld = cap;
            }
            r->held[r->nheld++] = p;
            r->held_ask |= is_ask(p);
            if (kind != CMD_END)
                continue;
            r->intx = 0;
            if (r->held_ask) {
                struct lp_reply **fresh;
                const char *msg = NULL;
                r->held_ask = 0;
                for (size_t i = 0; i < r->nheld && !msg; i++)
                    if (is_ask((redisReply *)r->held[i]))
                        msg = ((redisReply *)r->held[i])->str;
                if ((fresh = malloc(r->nheld * sizeof *fresh)) == NULL) {
                    snprintf(err, LP_ERRLEN, "%s: out of memory", r->name);
                    return ask_failed(r, err);
                }
                if (ask_again(r, msg, r->kmulti, end, fresh, r->nheld,
                              err) < 0) {
                    free(fresh);
                    return ask_failed(r, err);
                }
                for (size_t i = 0; i < r->nheld; i++) {
                    lp_reply_free(r->held[i]);
                    r->held[i] = fresh[i];
                }
                free(fresh);
            }
            r->nready = r->nheld;
            r->hout = 0;
            kept_trim(r);
            continue;
        }
        if (is_ask(p)) {
            struct lp_reply *fresh;
            int rc = ask_again(r, ((redisReply *)p)->str, start, end, &fresh,
                               1, err);
            lp_reply_free(p);
            if (rc < 0)
                return ask_failed(r, err);
            p = fresh;
        }
        kept_trim(r);
        break;
    }
    *rep = p;
    if (((redisReply *)p)->type == REDIS_REPLY_ERROR &&
        (strncmp(((redisReply *)p)->str, "MOVED ", 6) == 0 ||
         (r->untracked && is_ask(p)))) {
        /* the slot is served elsewhere: closed, so that the caller's
         * reconnect asks the route where (what was in flight after it is
         * lost, as after an I/O error: the engines find out what ran) */
        snprintf(r->ioerr, sizeof r->ioerr, "%.100s (connecting again "
                 "where the cluster says)", ((redisReply *)p)->str);
        lp_redis_disconnect(r);
    }
    return 1;
}

int lp_redis_next(struct lp_redis *r, struct lp_reply **rep, char *err)
{
    void *p = NULL;

    if (r->fd < 0) {
        io_error(r, err);
        return -1;
    }
    if (r->route)
        return routed_next(r, rep, err);
    if (redisReaderGetReply(r->rd, &p) != REDIS_OK) {
        snprintf(r->ioerr, sizeof r->ioerr, "protocol error: %s",
                 r->rd->errstr);
        io_error(r, err);
        return -1;
    }
    *rep = p;
    return p != NULL;
}

int lp_redis_reply(struct lp_redis *r, struct lp_reply **rep, char *err)
{
    int rc;

    if (lp_redis_flush(r, err) < 0)
        return -1;
    while ((rc = lp_redis_next(r, rep, err)) == 0)
        if (lp_redis_read(r, err) < 0)
            return -1;
    return rc < 0 ? -1 : 0;
}

struct lp_reply *lp_redis_cmdv(struct lp_redis *r, char *err, int argc,
                               const char **argv, const size_t *lens)
{
    struct lp_reply *rep;

    if (r->fd < 0) {
        io_error(r, err);
        return NULL;
    }
    if (lp_redis_append(r, argc, argv, lens) < 0) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    if (lp_redis_reply(r, &rep, err) < 0)
        return NULL;
    return rep;
}

struct lp_reply *lp_redis_cmd(struct lp_redis *r, char *err, ...)
{
    const char *argv[32];
    size_t lens[32];
    int argc = 0;
    va_list ap;
    const char *a;

    va_start(ap, err);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 32) {
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    return lp_redis_cmdv(r, err, argc, argv, lens);
}

void lp_reply_free(struct lp_reply *rep)
{
    arena_free(rep);
}

#define R(x) ((const redisReply *)(x))

int lp_reply_type(const struct lp_reply *rep)
{
    return R(rep)->type;
}

const char *lp_reply_str(const struct lp_reply *rep, size_t *len)
{
    const redisReply *x = R(rep);

    if (x->type != REDIS_REPLY_STRING && x->type != REDIS_REPLY_STATUS &&
        x->type != REDIS_REPLY_ERROR) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = x->len;
    return x->str;
}

long long lp_reply_int(const struct lp_reply *rep)
{
    return R(rep)->type == REDIS_REPLY_INTEGER ? R(rep)->integer : 0;
}

size_t lp_reply_len(const struct lp_reply *rep)
{
    return R(rep)->type == REDIS_REPLY_ARRAY ? R(rep)->elements : 0;
}

const struct lp_reply *lp_reply_at(const struct lp_reply *rep, size_t i)
{
    if (R(rep)->type != REDIS_REPLY_ARRAY || i >= R(rep)->elements)
        return NULL;
    return (const struct lp_reply *)R(rep)->element[i];
}

int lp_reply_is_error(const struct lp_reply *rep, const char *code)
{
    const redisReply *x = R(rep);
    size_t n = strlen(code);

    return x->type == REDIS_REPLY_ERROR && x->len >= n &&
           memcmp(x->str, code, n) == 0 &&
           (x->len == n || x->str[n] == ' ');
}

const char *lp_reply_text(const struct lp_reply *rep, char *buf, size_t cap)
{
    const redisReply *x = R(rep);

    switch (x->type) {
    case REDIS_REPLY_STRING: case REDIS_REPLY_STATUS: case REDIS_REPLY_ERROR:
        snprintf(buf, cap, "%.*s", (int)(x->len < cap ? x->len : cap - 1),
                 x->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(buf, cap, "%lld", x->integer);
        break;
    case REDIS_REPLY_NIL:
        snprintf(buf, cap, "(nil)");
        break;
    default:
        snprintf(buf, cap, "(array of %zu)", x->elements);
    }
    return buf;
}

int lp_reply_error_class(const struct lp_reply *rep)
{
    char t[300];

    if (R(rep)->type != REDIS_REPLY_ERROR)
        return 0;
    /* the codes may stand inside the text: a script's error carries the
     * error of the command it ran */
    lp_reply_text(rep, t, sizeof t);
    if (strstr(t, "NOPERM") != NULL || strstr(t, "WRONGTYPE") != NULL ||
        strstr(t, "The user executing the script can't") != NULL)
        return strstr(t, "permissions to run") != NULL ||
               strstr(t, "can't run this command") != NULL ?
               LP_RERR_COMMAND : LP_RERR_KEY;
    if (lp_reply_is_error(rep, "NOAUTH") ||
        lp_reply_is_error(rep, "WRONGPASS"))
        return LP_RERR_AUTH;
    if (lp_reply_is_error(rep, "ERR"))
        return LP_RERR_REQUEST;
    return LP_RERR_TEMP;
}

int lp_reply_entries(const struct lp_reply *rep, int xrange,
                     const struct lp_reply **entries, char *err)
{
    const redisReply *x = R(rep), *s;

    *entries = NULL;
    if (x->type == REDIS_REPLY_NIL)
        return 0;
    if (x->type != REDIS_REPLY_ARRAY)
        goto bad;
    if (xrange) {
        *entries = rep;
        return 0;
    }
    if (x->elements == 0)
        return 0;
    s = x->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        goto bad;
    if (s->element[1]->elements)
        *entries = (const struct lp_reply *)s->element[1];
    return 0;
bad:
    snprintf(err, LP_ERRLEN, "unexpected reply shape for stream read");
    return -1;
}

int lp_entry_get(const struct lp_reply *entries, size_t i,
                 struct lp_entry *e, char *err)
{
    const redisReply *x = R(entries), *en, *f;

    if (x->type != REDIS_REPLY_ARRAY || i >= x->elements)
        goto bad;
    en = x->element[i];
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
        en->element[0]->type != REDIS_REPLY_STRING)
        goto bad;
    e->id = en->element[0]->str;
    e->idlen = en->element[0]->len;
    f = en->element[1];
    if (f->type == REDIS_REPLY_NIL) {
        e->fields = NULL;
        e->nfields = 0;
        return 0;
    }
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2)
        goto bad;
    for (size_t k = 0; k < f->elements; k++)
        if (f->element[k]->type != REDIS_REPLY_STRING)
            goto bad;
    e->fields = (const struct lp_reply *)f;
    e->nfields = f->elements / 2;
    return 0;
bad:
    snprintf(err, LP_ERRLEN, "unexpected reply shape for stream entry %zu", i);
    return -1;
}

void lp_entry_pair(const struct lp_entry *e, size_t k, const char **f,
                   size_t *flen, const char **v, size_t *vlen)
{
    const redisReply *x = R(e->fields);

    *f = x->element[2 * k]->str;
    *flen = x->element[2 * k]->len;
    *v = x->element[2 * k + 1]->str;
    *vlen = x->element[2 * k + 1]->len;
}

const char *lp_entry_field(const struct lp_entry *e, const char *name,
                           size_t nlen, size_t *vlen)
{
    const char *f, *v;
    size_t fl, vl;

    for (size_t k = 0; k < e->nfields; k++) {
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (fl == nlen && memcmp(f, name, nlen) == 0) {
            *vlen = vl;
            return v;
        }
    }
    return NULL;
}

/* Appends decimal digit d to *v; -1 when it would pass UINT64_MAX. */
static int add_digit(uint64_t *v, char d)
{
    uint64_t k = (uint64_t)(d - '0');

    if (*v > UINT64_MAX / 10 || (*v == UINT64_MAX / 10 &&
                                 k > UINT64_MAX % 10))
        return -1;
    *v = *v * 10 + k;
    return 0;
}

/* The decimal number s[0..n), n >= 1 digits; -1 past UINT64_MAX. Up to 19
 * digits cannot overflow (10^19 - 1 < 2^64): no check per digit there. */
static int id_part(const char *s, size_t n, uint64_t *v)
{
    uint64_t a = 0;
    size_t i;

    if (n <= 19) {
        for (i = 0; i < n; i++)
            a = a * 10 + (uint64_t)(s[i] - '0');
    } else {
        for (i = 0; i < n; i++)
            if (add_digit(&a, s[i]) < 0)
                return -1;
    }
    *v = a;
    return 0;
}

int lp_stream_id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
    uint64_t a, b = 0;
    size_t i = 0, j;

    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0 || id_part(s, i, &a) < 0)
        return -1;
    if (i < n) {
        if (s[i] != '-' || i + 1 >= n)
            return -1;
        for (j = i + 1; j < n && s[j] >= '0' && s[j] <= '9'; j++)
            ;
        if (j < n || id_part(s + i + 1, n - i - 1, &b) < 0)
            return -1;
    }
    *ms = a;
    *seq = b;
    return 0;
}

int lp_reply_parse(const char *buf, size_t len, struct lp_reply **rep)
{
    redisReader *rd = redisReaderCreate();
    struct build b;
    void *p = NULL;
    int rc;

    if (rd == NULL)
        return -1;
    arena_reader(rd, &b);
    if (redisReaderFeed(rd, buf, len) != REDIS_OK ||
        redisReaderGetReply(rd, &p) != REDIS_OK)
        rc = -1;
    else
        rc = p != NULL;
    *rep = p;
    redisReaderFree(rd);
    return rc;
}
