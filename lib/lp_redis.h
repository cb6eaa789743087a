/* lp_redis.h -- Redis connection, pipelining, and reply walking */
#ifndef LP_REDIS_H
#define LP_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "lp_url.h"

struct lp_redis;
struct lp_reply;                /* opaque: a reply as hiredis parsed it */

enum {
    LP_REPLY_STRING = 1, LP_REPLY_ARRAY, LP_REPLY_INTEGER, LP_REPLY_NIL,
    LP_REPLY_STATUS, LP_REPLY_ERROR
};

/* lp_redis_connect results besides 0 */
enum {
    LP_REDIS_ETEMP = -1,        /* refused, timed out, LOADING: retry */
    LP_REDIS_EAUTH = -2         /* wrong password, NOPERM, bad db: stop */
};

/* Copies u and password (may be NULL). Returns NULL when out of memory. */
struct lp_redis *lp_redis_new(const struct lp_url *u, const char *password);

/* TLS for a rediss:// URL: the CA file to trust (NULL: the system's
 * store), a client certificate and its key (PEM; both or neither), the
 * name the server's certificate must carry (NULL: the URL's host; an IP
 * address is checked as one), and insecure: no verification at all. */
struct lp_tls {
    const char *ca, *cert, *key, *server_name;
    int insecure;
};

/* Sets r's TLS up (files read now). 0, or -1 with err: a file that cannot
 * be read or is not PEM, a key that is not the certificate's, a URL that
 * is not rediss://. A rediss:// URL without it uses the defaults. */
int lp_redis_tls(struct lp_redis *r, const struct lp_tls *t, char *err);
void lp_redis_free(struct lp_redis *r);

/*
 * Connects (closing any previous connection), over TLS for rediss://,
 * authenticates, selects the database, sets the socket timeout and checks
 * the server answers. Returns 0, LP_REDIS_ETEMP or LP_REDIS_EAUTH with err
 * (LP_ERRLEN) filled; a server certificate refused is LP_REDIS_EAUTH (the
 * configuration's fault: retrying does not help).
 */
int lp_redis_connect(struct lp_redis *r, char *err);
void lp_redis_disconnect(struct lp_redis *r);
int lp_redis_connected(const struct lp_redis *r);

/* Read/write timeout of the socket, kept across reconnects (0: none).
 * hiredis reports an expired timeout as an I/O error. */
void lp_redis_set_timeout(struct lp_redis *r, int64_t ms);

/*
 * Routing, for a Redis Cluster (lp_cluster, the tools' tool_redis): fn is
 * called by every lp_redis_connect before it dials, and may point r at
 * another node with lp_redis_retarget (the master of the slot r's
 * commands go to). It returns 0, or LP_REDIS_ETEMP / LP_REDIS_EAUTH with
 * err, which lp_redis_connect returns. With a route set, a MOVED reply is
 * handed out as any error reply, and then the connection closes itself:
 * the replies after it are lost (as after an I/O error) and the caller's
 * reconnect routes again. An ASK reply closes nothing and is not handed
 * out: the command it answered is sent again, after ASKING, on a
 * connection of r's own to the node it names (same URL, TLS, password,
 * timeout; kept for the next ASK), and that answer (TRYAGAIN, MOVED, an
 * error as well) is handed out in its place, in order. For that r keeps
 * each command's bytes until its reply is read, and holds a transaction's
 * replies (MULTI to EXEC) back until EXEC's is read: when one was ASK the
 * whole transaction goes to that node (ASKING, MULTI, ..., EXEC) and its
 * replies are handed out instead. lp_redis_next may then block, up to the
 * timeout, for that node's answer (a wait that ends too when r's socket
 * is shut or closed). Without a route (standalone), nothing of this
 * happens: no bytes kept, no reply held.
 */
typedef int (*lp_redis_route_fn)(void *ctx, struct lp_redis *r, char *err);
void lp_redis_set_route(struct lp_redis *r, lp_redis_route_fn fn, void *ctx);
/* Points r at host:port from its next connect (TLS settings, password
 * and database kept). 0, or -1 when the host is too long. */
int lp_redis_retarget(struct lp_redis *r, const char *host, int port);

/* "host:port" or "unix:/path", never the password. */
const char *lp_redis_name(const struct lp_redis *r);
int lp_redis_fd(const struct lp_redis *r);

/* Queue a command; nothing is sent yet. Binary safe; copies the args.
 * Returns 0 or -1 (out of memory, or not connected). */
int lp_redis_append(struct lp_redis *r, int argc, const char **argv,
                    const size_t *lens);
/* Queue bytes already in RESP form (one or many commands). */
int lp_redis_append_raw(struct lp_redis *r, const char *cmd, size_t len);
/* Bytes queued and not yet written. */
size_t lp_redis_pending_out(const struct lp_redis *r);

/* Writes everything queued (blocks, up to the timeout). 0 or -1 + err;
 * after -1 the connection is closed. */
int lp_redis_flush(struct lp_redis *r, char *err);

struct iovec;
/* Writes what is queued, then iov[0..n) (n <= 8) straight from the
 * caller's memory (blocks, up to the timeout): a batch is not copied. 0 or
 * -1 + err; after -1 the connection is closed. */
int lp_redis_writev(struct lp_redis *r, const struct iovec *iov, int n,
                    char *err);

/* One read() from the socket into the reply parser (blocks until data or
 * timeout). 0 or -1 + err; after -1 the connection is closed. */
int lp_redis_read(struct lp_redis *r, char *err);

/* A reply already received, without blocking: 1 and *rep set, 0 when none
 * is complete yet, -1 + err on a protocol error (connection closed). */
int lp_redis_next(struct lp_redis *r, struct lp_reply **rep, char *err);

/* Flushes, then waits for the next reply. 0 or -1 + err (I/O error or
 * timeout; the connection is closed and replies in flight are lost). */
int lp_redis_reply(struct lp_redis *r, struct lp_reply **rep, char *err);

/*
 * One command, blocking: args are NUL-terminated strings ending with NULL.
 * Returns the reply (which may be of type LP_REPLY_ERROR), or NULL with err
 * on an I/O error. Caller frees with lp_reply_free.
 */
struct lp_reply *lp_redis_cmd(struct lp_redis *r, char *err, ...)
    __attribute__((sentinel));
struct lp_reply *lp_redis_cmdv(struct lp_redis *r, char *err, int argc,
                               const char **argv, const size_t *lens);

/* Accepts NULL. */
void lp_reply_free(struct lp_reply *rep);

int lp_reply_type(const struct lp_reply *rep);
/* String, status or error text; len may be NULL. */
const char *lp_reply_str(const struct lp_reply *rep, size_t *len);
long long lp_reply_int(const struct lp_reply *rep);
size_t lp_reply_len(const struct lp_reply *rep);     /* array elements */
const struct lp_reply *lp_reply_at(const struct lp_reply *rep, size_t i);
/* An error reply whose text starts with code ("NOGROUP", "BUSYGROUP")? */
int lp_reply_is_error(const struct lp_reply *rep, const char *code);
/* Copies a string/status/error/integer reply as text into buf (cut to
 * cap-1 bytes, controls kept). Returns buf. */
const char *lp_reply_text(const struct lp_reply *rep, char *buf, size_t cap);

/* What an error reply means: the classes of lp_reply_error_class */
enum {
    LP_RERR_TEMP = 1,   /* may pass by itself: LOADING, BUSY, OOM, READONLY,
                         * MASTERDOWN, and any code not known here */
    LP_RERR_REQUEST,    /* ERR: Redis refused this request (no such key, an
                         * ID it cannot read, a script's own error) */
    LP_RERR_KEY,        /* never passes for this key: WRONGTYPE, NOPERM on
                         * a key */
    LP_RERR_COMMAND,    /* never passes for any key: NOPERM to run the
                         * command itself */
    LP_RERR_AUTH        /* the credentials no longer hold: NOAUTH,
                         * WRONGPASS */
};

/*
 * The class of an error reply (LP_RERR_*), 0 for a reply that is none.
 * The one place that tells an error worth retrying from one that no retry
 * cures; each tool decides what a class means for it. Refusals inside a
 * script count as the command's own (Redis 7.0 words them "The user
 * executing the script can't ...", Redis 6 wraps them in ERR).
 */
int lp_reply_error_class(const struct lp_reply *rep);

/*
 * The one backoff between attempts to reach Redis, for every tool: the
 * first wait is 100 ms, each next one doubles, none is longer than 2 s.
 * A zeroed struct starts over; lp_backoff_reset after a success.
 */
#define LP_BACKOFF_FIRST_MS 100
#define LP_BACKOFF_MAX_MS 2000
struct lp_backoff {
    int64_t ms;                 /* the last wait, 0 before the first */
};
static inline int64_t lp_backoff_next(struct lp_backoff *b)
{
    b->ms = b->ms ? b->ms * 2 : LP_BACKOFF_FIRST_MS;
    if (b->ms > LP_BACKOFF_MAX_MS)
        b->ms = LP_BACKOFF_MAX_MS;
    return b->ms;
}
static inline void lp_backoff_reset(struct lp_backoff *b)
{
    b->ms = 0;
}

/* One stream entry inside a reply, borrowed from it. */
struct lp_entry {
    const char *id;
    size_t idlen;
    const struct lp_reply *fields;  /* NULL: data deleted (trimmed) */
    size_t nfields;                 /* field/value pairs */
};

/*
 * The entries array of an XREADGROUP/XREAD reply for one stream (NULL
 * when the reply is nil or holds no entries), or of an XRANGE reply
 * (xrange = 1). Returns 0, or -1 with err when the reply has an
 * unexpected shape.
 */
int lp_reply_entries(const struct lp_reply *rep, int xrange,
                     const struct lp_reply **entries, char *err);

/* Entry i of an entries array, shape checked. 0 or -1 with err. */
int lp_entry_get(const struct lp_reply *entries, size_t i,
                 struct lp_entry *e, char *err);

/* Field pair k of an entry. */
void lp_entry_pair(const struct lp_entry *e, size_t k, const char **f,
                   size_t *flen, const char **v, size_t *vlen);

/* The value of field name, or NULL. */
const char *lp_entry_field(const struct lp_entry *e, const char *name,
                           size_t nlen, size_t *vlen);

/* Parses a stream ID "ms-seq"; 0 or -1. */
int lp_stream_id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq);

/* Parses RESP bytes with hiredis' reader, for tests and fuzzing: 1 and
 * *rep when a whole reply is there, 0 when more bytes are needed, -1 on a
 * protocol error. */
int lp_reply_parse(const char *buf, size_t len, struct lp_reply **rep);

#endif
