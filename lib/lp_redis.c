/* lp_redis.c -- Redis connection, pipelining, and reply walking */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "lp_parse.h"
#include "lp_redis.h"

/*
 * This is the only file that includes hiredis (0.14.1 on Debian 12): its
 * quirks stay here. Notably: a timeout is REDIS_ERR_IO with errno EAGAIN;
 * after any I/O error the context is unusable and the replies of commands
 * in flight are lost; server errors are ordinary replies.
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

struct lp_redis {
    struct lp_url url;
    char *password;
    char name[300];
    redisContext *c;
    int64_t timeout_ms;
    struct build build;         /* c's reader's */
};

struct lp_redis *lp_redis_new(const struct lp_url *u, const char *password)
{
    struct lp_redis *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->url = *u;
    if (password && *password && (r->password = strdup(password)) == NULL) {
        free(r);
        return NULL;
    }
    lp_url_describe(u, r->name, sizeof r->name);
    r->timeout_ms = 10000;
    return r;
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
    memset(&r->url, 0, sizeof r->url);
    free(r);
}

void lp_redis_disconnect(struct lp_redis *r)
{
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
}

int lp_redis_connected(const struct lp_redis *r)
{
    return r->c != NULL;
}

const char *lp_redis_name(const struct lp_redis *r)
{
    return r->name;
}

int lp_redis_fd(const struct lp_redis *r)
{
    return r->c ? r->c->fd : -1;
}

static struct timeval tv_of(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

void lp_redis_set_timeout(struct lp_redis *r, int64_t ms)
{
    r->timeout_ms = ms;
    if (r->c)
        redisSetTimeout(r->c, tv_of(ms));
}

/* Describes the context's error, then drops the connection. */
static void io_error(struct lp_redis *r, char *err)
{
    if (r->c == NULL) {
        snprintf(err, LP_ERRLEN, "%s: not connected", r->name);
        return;
    }
    if (r->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        snprintf(err, LP_ERRLEN, "%s: timed out after %lldms", r->name,
                 (long long)r->timeout_ms);
    else if (r->c->err == REDIS_ERR_EOF)
        snprintf(err, LP_ERRLEN, "%s: connection closed by server", r->name);
    else
        snprintf(err, LP_ERRLEN, "%s: %s", r->name, r->c->errstr);
    lp_redis_disconnect(r);
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
    struct timeval ctv = tv_of(r->timeout_ms > 0 && r->timeout_ms < 5000
                               ? r->timeout_ms : 5000);
    const char *argv[3];
    size_t lens[3];
    int ncmd = 0, rc = 0;
    char db[16];

    lp_redis_disconnect(r);
    if (r->url.is_unix)
        r->c = redisConnectUnixWithTimeout(r->url.path, ctv);
    else
        r->c = redisConnectWithTimeout(r->url.host, r->url.port, ctv);
    if (r->c == NULL) {
        snprintf(err, LP_ERRLEN, "%s: out of memory", r->name);
        return LP_REDIS_ETEMP;
    }
    if (r->c->err) {
        snprintf(err, LP_ERRLEN, "cannot connect to %s: %s", r->name,
                 r->c->errstr);
        lp_redis_disconnect(r);
        return LP_REDIS_ETEMP;
    }
    arena_reader(r->c->reader, &r->build);
    if (r->timeout_ms > 0)
        redisSetTimeout(r->c, tv_of(r->timeout_ms));
    if (!r->url.is_unix)
        redisEnableKeepAlive(r->c);

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
        redisAppendCommandArgv(r->c, n, argv, lens);
        ncmd++;
    }
    if (r->url.db) {
        snprintf(db, sizeof db, "%d", r->url.db);
        argv[0] = "SELECT"; lens[0] = 6;
        argv[1] = db; lens[1] = strlen(db);
        redisAppendCommandArgv(r->c, 2, argv, lens);
        ncmd++;
    }
    argv[0] = "PING"; lens[0] = 4;
    redisAppendCommandArgv(r->c, 1, argv, lens);
    ncmd++;
    for (int i = 0; i < ncmd; i++) {
        redisReply *rep;
        if (redisGetReply(r->c, (void **)&rep) != REDIS_OK) {
            char e2[LP_ERRLEN];
            io_error(r, e2);
            snprintf(err, LP_ERRLEN, "cannot connect to %.900s", e2);
            return LP_REDIS_ETEMP;
        }
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
        lp_reply_free((struct lp_reply *)rep);
    }
    if (rc)
        lp_redis_disconnect(r);
    return rc;
}

int lp_redis_append(struct lp_redis *r, int argc, const char **argv,
                    const size_t *lens)
{
    if (r->c == NULL)
        return -1;
    return redisAppendCommandArgv(r->c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

int lp_redis_append_raw(struct lp_redis *r, const char *cmd, size_t len)
{
    if (r->c == NULL)
        return -1;
    return redisAppendFormattedCommand(r->c, cmd, len) == REDIS_OK ? 0 : -1;
}

size_t lp_redis_pending_out(const struct lp_redis *r)
{
    return r->c && r->c->obuf ? sdslen(r->c->obuf) : 0;
}

int lp_redis_flush(struct lp_redis *r, char *err)
{
    int done = 0;

    if (r->c == NULL) {
        io_error(r, err);
        return -1;
    }
    while (!done) {
        if (redisBufferWrite(r->c, &done) != REDIS_OK) {
            io_error(r, err);
            return -1;
        }
    }
    return 0;
}

int lp_redis_read(struct lp_redis *r, char *err)
{
    if (r->c == NULL || redisBufferRead(r->c) != REDIS_OK) {
        io_error(r, err);
        return -1;
    }
    return 0;
}

int lp_redis_next(struct lp_redis *r, struct lp_reply **rep, char *err)
{
    void *p = NULL;

    if (r->c == NULL) {
        io_error(r, err);
        return -1;
    }
    if (redisGetReplyFromReader(r->c, &p) != REDIS_OK) {
        io_error(r, err);
        return -1;
    }
    *rep = p;
    return p != NULL;
}

int lp_redis_reply(struct lp_redis *r, struct lp_reply **rep, char *err)
{
    void *p = NULL;

    if (r->c == NULL) {
        io_error(r, err);
        return -1;
    }
    if (redisGetReply(r->c, &p) != REDIS_OK || p == NULL) {
        io_error(r, err);
        return -1;
    }
    *rep = p;
    return 0;
}

struct lp_reply *lp_redis_cmdv(struct lp_redis *r, char *err, int argc,
                               const char **argv, const size_t *lens)
{
    struct lp_reply *rep;

    if (r->c == NULL) {
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
