/* lp_tokens.c -- logpipe-http's bearer tokens (--tokens FILE) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_parse.h"
#include "lp_tokens.h"

#define FILE_MAX (16 << 20)     /* bytes of a tokens file */

struct entry {
    unsigned char tok[LP_TOKEN_MAX];    /* zero-padded */
    uint32_t len;
    uint32_t line;
    char name[LP_TOKEN_NAME_MAX + 1];
};

struct table {
    struct entry *e;
    size_t n, cap;
};

struct lp_tokens {
    char *path;
    struct lp_notify nt;
    pthread_rwlock_t lock;
    struct table cur;
};

static int name_char(unsigned char c, int first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '_' ||
        (!first && (c == '.' || c == '-'));
}

static int token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || c == '+' || c == '/';
}

/* b64token: its characters, then '=' only */
static int token_ok(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && token_char((unsigned char)p[i]))
        i++;
    if (i == 0)
        return 0;
    while (i < n && p[i] == '=')
        i++;
    return i == n;
}

static int by_name(const void *a, const void *b, void *arg)
{
    const struct table *t = arg;
    const struct entry *x = &t->e[*(const size_t *)a];
    const struct entry *y = &t->e[*(const size_t *)b];
    int c = strcmp(x->name, y->name);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int by_token(const void *a, const void *b, void *arg)
{
    const struct table *t = arg;
    const struct entry *x = &t->e[*(const size_t *)a];
    const struct entry *y = &t->e[*(const size_t *)b];
    int c = memcmp(x->tok, y->tok, LP_TOKEN_MAX);

    if (c == 0)
        c = (x->len > y->len) - (x->len < y->len);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * The first line (in file order) that repeats a name or a token of a line
 * before it: 0 when none, else its index, with *first the earlier line's
 * and *token set when the token repeats. Sorts indexes: n log n.
 */
static size_t duplicate(const struct table *t, size_t *first, int *token)
{
    size_t *ix = malloc(t->n * sizeof *ix), best = 0;

    if (ix == NULL)
        return (size_t)-1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->n; i++)
            ix[i] = i;
        qsort_r(ix, t->n, sizeof *ix, pass ? by_token : by_name,
                (void *)t);
        for (size_t i = 1; i < t->n; i++) {
            const struct entry *a = &t->e[ix[i - 1]], *b = &t->e[ix[i]];
            int same = pass ? a->len == b->len &&
                memcmp(a->tok, b->tok, LP_TOKEN_MAX) == 0 :
                strcmp(a->name, b->name) == 0;
            if (same && (best == 0 || b->line < t->e[best - 1].line)) {
                best = ix[i] + 1;
                *first = a->line;
                *token = pass;
            }
        }
    }
    free(ix);
    return best;
}

/* Reads and parses the file into t. Returns 0, or -1 with err. */
static int load(struct lp_tokens *tk, struct table *t, char *err)
{
    int fd = -1, rc = -1;
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap = 0, line = 0, nshort = 0, first_short = 0;

    memset(t, 0, sizeof *t);
    if ((fd = open(tk->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 ||
        fstat(fd, &st) < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", tk->path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, LP_ERRLEN, "%s: not a regular file", tk->path);
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH))
        lp_notice(&tk->nt, LP_NOTICE_WARN, "%s: readable by %s (mode %04o): "
                  "its tokens are secrets; chmod 600 it", tk->path,
                  (st.st_mode & S_IROTH) ? "others" : "its group",
                  (unsigned)(st.st_mode & 07777));
    for (;;) {
        if (len == cap) {
            char *p;
            cap = cap ? cap * 2 : 4096;
            if (cap > FILE_MAX + 1)
                cap = FILE_MAX + 1;
            if (len == cap) {
                snprintf(err, LP_ERRLEN, "%s: larger than %d bytes",
                         tk->path, FILE_MAX);
                goto out;
            }
            if ((p = realloc(buf, cap)) == NULL)
                goto oom;
            buf = p;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, LP_ERRLEN, "%s: %s", tk->path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    for (size_t at = 0; at < len;) {
        char *p = buf + at, *nl = memchr(p, '\n', len - at), *colon;
        size_t n = nl ? (size_t)(nl - p) : len - at;
        at += n + (nl != NULL);
        line++;
        if (n && p[n - 1] == '\r')
            n--;
        size_t lead = 0;
        while (lead < n && (p[lead] == ' ' || p[lead] == '\t'))
            lead++;
        if (lead == n || p[lead] == '#')
            continue;
        if (memchr(p, '\0', n)) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: a NUL byte", tk->path,
                     line);
            goto out;
        }
        if ((colon = memchr(p, ':', n)) == NULL) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: no ':' between name and "
                     "token", tk->path, line);
            goto out;
        }
        size_t nn = (size_t)(colon - p), tn = n - nn - 1;
        const char *tok = colon + 1;
        if (nn == 0) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: empty name", tk->path,
                     line);
            goto out;
        }
        if (tn == 0) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: empty token", tk->path,
                     line);
            goto out;
        }
        int good = nn <= LP_TOKEN_NAME_MAX;
        for (size_t i = 0; good && i < nn; i++)
            good = name_char((unsigned char)p[i], i == 0);
        if (!good) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: name \"%.*s\" is not "
                     "[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", tk->path, line,
                     (int)(nn > 64 ? 64 : nn), p);
            goto out;
        }
        if (tn > LP_TOKEN_MAX) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: token longer than %d "
                     "bytes", tk->path, line, LP_TOKEN_MAX);
            goto out;
        }
        if (!token_ok(tok, tn)) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: the token has a "
                     "character other than A-Z a-z 0-9 - . _ ~ + / (and '=' "
                     "at its end)", tk->path, line);
            goto out;
        }
        if (t->n == LP_TOKENS_MAX) {
            snprintf(err, LP_ERRLEN, "%s: line %zu: more than %d tokens",
                     tk->path, line, LP_TOKENS_MAX);
            goto out;
        }
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 16;
            struct entry *e = realloc(t->e, ncap * sizeof *e);
            if (e == NULL)
                goto oom;
            t->e = e;
            t->cap = ncap;
        }
        struct entry *e = &t->e[t->n++];
        memset(e, 0, sizeof *e);
        memcpy(e->tok, tok, tn);
        e->len = (uint32_t)tn;
        e->line = (uint32_t)line;
        memcpy(e->name, p, nn);
        if (tn < 16 && nshort++ == 0)
            first_short = line;
    }
    if (t->n == 0) {
        snprintf(err, LP_ERRLEN, "%s: no tokens in it (lines name:token)",
                 tk->path);
        goto out;
    }
    size_t first = 0, dup;
    int token = 0;
    if ((dup = duplicate(t, &first, &token)) == (size_t)-1)
        goto oom;
    if (dup) {
        const struct entry *e = &t->e[dup - 1];
        if (token)
            snprintf(err, LP_ERRLEN, "%s: line %u: the token of \"%s\" is "
                     "line %zu's too: one token a client", tk->path, e->line,
                     e->name, first);
        else
            snprintf(err, LP_ERRLEN, "%s: line %u: name \"%s\" is given on "
                     "line %zu already", tk->path, e->line, e->name, first);
        goto out;
    }
    if (nshort)
        lp_notice(&tk->nt, LP_NOTICE_WARN, "%s: line %zu: a token shorter "
                  "than 16 bytes (%zu such lines): easy to guess", tk->path,
                  first_short, nshort);
    rc = 0;
    goto out;
oom:
    snprintf(err, LP_ERRLEN, "%s: out of memory", tk->path);
out:
    if (fd >= 0)
        close(fd);
    if (buf) {
        memset(buf, 0, cap);        /* the secrets, not left in the heap */
        free(buf);
    }
    if (rc < 0) {
        if (t->e)
            memset(t->e, 0, t->n * sizeof *t->e);
        free(t->e);
        memset(t, 0, sizeof *t);
    }
    return rc;
}

static void table_free(struct table *t)
{
    if (t->e) {
        memset(t->e, 0, t->n * sizeof *t->e);
        free(t->e);
    }
    memset(t, 0, sizeof *t);
}

struct lp_tokens *lp_tokens_new(const char *path, const struct lp_notify *nt,
                                char *err)
{
    struct lp_tokens *t = calloc(1, sizeof *t);

    if (t == NULL || (t->path = strdup(path)) == NULL) {
        free(t);
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    if (nt)
        t->nt = *nt;
    if (pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t->path);
        free(t);
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    if (load(t, &t->cur, err) < 0) {
        lp_tokens_free(t);
        return NULL;
    }
    return t;
}

int lp_tokens_reload(struct lp_tokens *t, char *err)
{
    struct table nt, old;

    if (load(t, &nt, err) < 0)
        return -1;
    pthread_rwlock_wrlock(&t->lock);
    old = t->cur;
    t->cur = nt;
    pthread_rwlock_unlock(&t->lock);
    table_free(&old);
    return 0;
}

size_t lp_tokens_count(struct lp_tokens *t)
{
    size_t n;

    pthread_rwlock_rdlock(&t->lock);
    n = t->cur.n;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

int lp_tokens_auth(struct lp_tokens *t, const char *h, char *name, size_t cap)
{
    unsigned char tok[LP_TOKEN_MAX];
    size_t n = 0, hit = 0;
    uint32_t found = 0;

    if (h == NULL)
        return 0;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return 0;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0 || n > LP_TOKEN_MAX)
        return 0;
    memset(tok, 0, sizeof tok);
    memcpy(tok, h, n);
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->cur.n; i++) {
        const struct entry *e = &t->cur.e[i];
        uint32_t d = e->len ^ (uint32_t)n;
        for (size_t k = 0; k < LP_TOKEN_MAX; k++)
            d |= (uint32_t)(e->tok[k] ^ tok[k]);
        /* eq: all ones when d is 0, else 0; no branch on the bytes */
        uint32_t eq = (uint32_t)((((uint64_t)d | (0 - (uint64_t)d)) >> 63)
                                 ^ 1);
        eq = 0 - eq;
        hit = (hit & ~(size_t)eq) | ((i + 1) & (size_t)eq);
        found |= eq;
    }
    if (found && cap > 0) {
        snprintf(name, cap, "%s", t->cur.e[hit - 1].name);
    }
    pthread_rwlock_unlock(&t->lock);
    memset(tok, 0, sizeof tok);
    return found != 0;
}

void lp_tokens_free(struct lp_tokens *t)
{
    if (t == NULL)
        return;
    table_free(&t->cur);
    pthread_rwlock_destroy(&t->lock);
    free(t->path);
    free(t);
}
