/* lp_opt.c -- options and environment common to every tool */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_cluster.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"

void lp_common_init(struct lp_common *c)
{
    memset(c, 0, sizeof *c);
    c->redis_url = "redis://127.0.0.1:6379/0";
    c->stream = "logs:stream";
    c->group = "logpipe";
    c->dlq = "logs:dlq";
    c->dir = "./logs";
    c->metrics_interval = 15000;
    c->log_format = LP_LOG_TEXT;
}

int lp_common_url(const struct lp_optdef *o, void *base, char *arg,
                  char *err)
{
    struct lp_common *c = base;
    /* a password in the URL: keep a copy, and blank it in argv, so that
     * ps shows it no longer than it takes to get here */
    const char *sch = strstr(arg, "://"), *at, *colon;

    (void)o;
    c->redis_url = arg;
    if (sch && (at = strchr(sch + 3, '@')) != NULL &&
        (colon = memchr(sch + 3, ':', (size_t)(at - sch - 3))) != NULL &&
        at > colon + 1) {
        char *copy = strdup(arg);
        if (copy == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            return -1;
        }
        free(c->url_copy);
        c->url_copy = copy;
        c->redis_url = copy;
        /* arg points into argv, which is ours to write */
        memset((char *)colon + 1, 'x', (size_t)(at - colon - 1));
        c->password_on_argv = 1;
    }
    return 0;
}

const char *lp_opt_name(const struct lp_optdef *o, char *buf, size_t cap)
{
    if (o->letter)
        snprintf(buf, cap, "-%c/--%s", o->letter, o->name);
    else
        snprintf(buf, cap, "--%s", o->name);
    return buf;
}

/* "'X' is out of range (LO..HI)" for sizes: HI as 1G, 64K when it is */
static void size_range(const char *arg, int64_t lo, int64_t hi, char *err)
{
    static const char sfx[] = "KMGT";
    char h[32];
    int i = -1;

    while (i < 3 && hi >= 1024 && hi % 1024 == 0) {
        hi /= 1024;
        i++;
    }
    snprintf(h, sizeof h, "%lld%.*s", (long long)hi, i >= 0,
             i >= 0 ? sfx + i : "");
    snprintf(err, LP_ERRLEN, "'%s' is out of range (%lld..%s)", arg,
             (long long)lo, h);
}

/* A duration outside o's bounds, said as drain and the metrics have it. */
static void duration_range(const struct lp_optdef *o, const char *arg,
                           char *err)
{
    char lo[32], hi[32];

    lp_format_duration(o->min, lo, sizeof lo);
    lp_format_duration(o->max, hi, sizeof hi);
    if (o->max > 0)
        snprintf(err, LP_ERRLEN, "'%s' is out of range (%s..%s)", arg, lo,
                 hi);
    else if (o->min == 1)
        snprintf(err, LP_ERRLEN, "must be more than 0");
    else
        snprintf(err, LP_ERRLEN, "at least %s", lo);
}

/* "'x' is not block, reject or dlq" */
static void not_a_word(const char *words, const char *arg, char *err)
{
    size_t n = (size_t)snprintf(err, LP_ERRLEN, "'%s' is not ", arg);

    for (const char *w = words; *w && n < LP_ERRLEN; ) {
        size_t len = strcspn(w, "|");
        const char *sep = w[len] == '\0' ? "" :
                          strchr(w + len + 1, '|') ? ", " : " or ";
        n += (size_t)snprintf(err + n, LP_ERRLEN - n, "%.*s%s", (int)len, w,
                              sep);
        w += len + (w[len] != '\0');
    }
}

static int word_index(const char *words, const char *arg)
{
    size_t alen = strlen(arg);
    int i = 0;

    for (const char *w = words; *w; i++) {
        size_t len = strcspn(w, "|");
        if (len == alen && memcmp(w, arg, len) == 0)
            return i;
        w += len + (w[len] != '\0');
    }
    return -1;
}

/*
 * The message for a bad value of o: "NAME: why". The common options have
 * always said theirs in their own way, kept: a value that does not parse
 * bare, an empty one "--NAME must not be empty", the rest "--NAME: why".
 */
enum { BAD_PARSE, BAD_VALUE, BAD_EMPTY };

static int bad(const struct lp_optdef *o, int how, char *err)
{
    char why[LP_ERRLEN], name[128];

    if ((o->flags & LP_OF_COMMON) && how == BAD_PARSE)
        return -1;
    memcpy(why, err, LP_ERRLEN);
    if (o->flags & LP_OF_COMMON)
        snprintf(err, LP_ERRLEN, "--%s%s%s", o->name,
                 how == BAD_EMPTY ? " " : ": ", why);
    else
        snprintf(err, LP_ERRLEN, "%s: %s",
                 lp_opt_name(o, name, sizeof name), why);
    return -1;
}

int lp_opt_set(const struct lp_optdef *o, void *base, char *arg, char *err)
{
    char *field = (char *)base + o->off;
    uint64_t u;
    int64_t ms;
    int i;

    if ((o->flags & LP_OF_NONEMPTY) && arg && *arg == '\0') {
        snprintf(err, LP_ERRLEN, "must not be empty");
        return bad(o, BAD_EMPTY, err);
    }
    switch (o->kind) {
    case LP_ARG_FLAG:
        *(int *)field = o->val ? o->val : 1;
        break;
    case LP_ARG_COUNT:
        *(int *)field = *(int *)field < 0 ? 1 : *(int *)field + 1;
        break;
    case LP_ARG_STR:
        *(const char **)field = arg;
        break;
    case LP_ARG_DURATION:
        if (lp_parse_duration(arg, o->unit ? o->unit : "s", &ms, err) < 0)
            return bad(o, BAD_PARSE, err);
        if (ms < o->min || (o->max > 0 && ms > o->max)) {
            duration_range(o, arg, err);
            return bad(o, BAD_VALUE, err);
        }
        *(int64_t *)field = ms;
        break;
    case LP_ARG_SIZE:
        if (lp_parse_size(arg, &u, err) < 0)
            return bad(o, BAD_PARSE, err);
        if (u < (uint64_t)o->min || (o->max > 0 && u > (uint64_t)o->max)) {
            size_range(arg, o->min, o->max, err);
            return bad(o, BAD_VALUE, err);
        }
        *(uint64_t *)field = u;
        break;
    case LP_ARG_UINT:
        if (lp_parse_uint(arg, (uint64_t)o->min, o->max > 0 ?
                          (uint64_t)o->max : UINT64_MAX / 2, &u, err) < 0)
            return bad(o, BAD_PARSE, err);
        *(uint64_t *)field = u;
        break;
    case LP_ARG_ENUM:
        if ((i = word_index(o->words, arg)) < 0) {
            not_a_word(o->words, arg, err);
            return bad(o, BAD_VALUE, err);
        }
        *(int *)field = i;
        break;
    case LP_ARG_LIST: {
        struct lp_list *l = (struct lp_list *)field;
        int max = o->max > 0 && o->max < LP_LIST_MAX ? (int)o->max
                                                     : LP_LIST_MAX;
        if ((i = lp_parse_list(arg, l->item, max, err)) < 0)
            return bad(o, BAD_PARSE, err);
        l->n = i;
        break;
    }
    case LP_ARG_CALL:
        if (o->call(o, base, arg, err) < 0)
            return bad(o, BAD_PARSE, err);
        break;
    case LP_ARG_HELP:
    case LP_ARG_VERSION:
        return 0;
    }
    if (o->given)
        *(const struct lp_optdef **)((char *)base + o->given - 1) = o;
    return 0;
}

int lp_opt_env(const struct lp_optdef *o, void *base)
{
    const char *v = o->env ? getenv(o->env) : NULL;

    if (v == NULL || *v == '\0')
        return 0;
    *(const char **)((char *)base + o->off) = v;
    if (o->given)
        *(const struct lp_optdef **)((char *)base + o->given - 1) = o;
    return 1;
}

static int read_password(const char *path, char *buf, size_t cap, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "--password-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, LP_ERRLEN, "--password-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';   /* the first line, no newline */
    if (buf[0] == '\0') {
        snprintf(err, LP_ERRLEN, "--password-file %s: empty", path);
        return -1;
    }
    return 0;
}

/* A TLS option's value v, given on the command line (not only by its
 * variable env)? */
static int argv_tls(const char *v, const char *env)
{
    const char *e = getenv(env);

    return v != NULL && (e == NULL || strcmp(v, e) != 0);
}

/* The URL, the password and the TLS settings of the common options:
 * 0, or -1 with err. pw holds the password when read from a file. */
static int common_conn(const struct lp_common *c, int *shown, struct lp_url *u,
                       char *pw, size_t cap, const char **password,
                       struct lp_tls *t, int *tls, char *err)
{
    if (lp_url_parse(c->redis_url, u, err) < 0)
        return -1;
    if (c->password_file) {
        if (read_password(c->password_file, pw, cap, err) < 0)
            return -1;
        *password = pw;
    } else if (u->password[0]) {
        *password = u->password;
        if (c->password_on_argv)
            *shown = 1;
    } else {
        *password = getenv("LOGPIPE_REDIS_PASSWORD");
        if (*password == NULL || **password == '\0')
            *password = getenv("REDISCLI_AUTH");
    }
    /* a plain URL with TLS options given on the command line is a
     * mistake (78, lp_redis_tls); the same from the environment only are
     * for the rediss:// URLs it may also hold, not for this one */
    *tls = u->tls || argv_tls(c->tls_ca, "LOGPIPE_TLS_CA") ||
           argv_tls(c->tls_cert, "LOGPIPE_TLS_CERT") ||
           argv_tls(c->tls_key, "LOGPIPE_TLS_KEY") ||
           argv_tls(c->tls_server_name, "LOGPIPE_TLS_SERVER_NAME") ||
           c->tls_insecure;
    t->ca = c->tls_ca;
    t->cert = c->tls_cert;
    t->key = c->tls_key;
    t->server_name = c->tls_server_name;
    t->insecure = c->tls_insecure;
    return 0;
}

struct lp_redis *lp_common_redis(const struct lp_common *c, int *shown,
                                 char *err)
{
    struct lp_url u;
    struct lp_redis *r = NULL;
    struct lp_tls t;
    char pw[1024];
    const char *password;
    int tls;

    if (common_conn(c, shown, &u, pw, sizeof pw, &password, &t, &tls,
                    err) == 0) {
        r = lp_redis_new(&u, password);
        if (r == NULL)
            snprintf(err, LP_ERRLEN, "out of memory");
        else if (tls && lp_redis_tls(r, &t, err) < 0) {
            lp_redis_free(r);
            r = NULL;
        }
    }
    memset(pw, 0, sizeof pw);
    memset(&u, 0, sizeof u);
    return r;
}

struct lp_cluster *lp_common_cluster(const struct lp_common *c, char *err)
{
    struct lp_url u;
    struct lp_cluster *cl = NULL;
    struct lp_tls t;
    char pw[1024];
    const char *password;
    int tls, shown = 0;

    if (common_conn(c, &shown, &u, pw, sizeof pw, &password, &t, &tls,
                    err) == 0 &&
        (cl = lp_cluster_new(&u, password, tls ? &t : NULL)) == NULL)
        snprintf(err, LP_ERRLEN, "out of memory");
    memset(pw, 0, sizeof pw);
    memset(&u, 0, sizeof u);
    return cl;
}
