/* lp_tree.c -- the files of an archive tree, with their days */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_parse.h"
#include "lp_time.h"
#include "lp_tree.h"

#define MAX_DEPTH 32

struct walk {
    const struct lp_layout *layout;
    struct lp_tfile *v;
    size_t n, cap;
    char *err;
};

static int ends(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int lp_tree_name_day(const char *name, int64_t *day)
{
    const char *s = strrchr(name, '/');

    s = s ? s + 1 : name;
    for (; *s; s++) {
        int y, m, d;
        if (strlen(s) >= 10 && sscanf(s, "%4d-%2d-%2d", &y, &m, &d) == 3 &&
            s[4] == '-' && s[7] == '-' && m >= 1 && m <= 12 && d >= 1 &&
            d <= 31 && s[0] >= '0' && s[0] <= '9') {
            *day = lp_days_from_civil(y, m, d);
            return 1;
        }
    }
    return 0;
}

static int kind_of(const char *name, size_t n)
{
    if (name[0] == '.')
        return n > 5 && ends(name, n, ".tmp") ? LP_T_TMP : -1;
    if (ends(name, n, ".jsonl"))
        return LP_T_JSONL;
    if (ends(name, n, ".jsonl.gz"))
        return LP_T_GZ;
    if (n > 8 && strncmp(name, "wal-", 4) == 0 && ends(name, n, ".log"))
        return LP_T_WAL;
    return -1;
}

static int add(struct walk *w, const char *rel, int kind,
               const struct stat *st)
{
    struct lp_tfile *f;
    size_t rn = strlen(rel);

    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct lp_tfile *p = realloc(w->v, cap * sizeof *p);
        if (p == NULL)
            return -1;
        w->v = p;
        w->cap = cap;
    }
    f = &w->v[w->n];
    if ((f->rel = strdup(rel)) == NULL)
        return -1;
    f->kind = kind;
    f->size = (uint64_t)st->st_size;
    f->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 +
                  st->st_mtim.tv_nsec / 1000000;
    f->has_day = 0;
    f->day = 0;
    if (kind == LP_T_JSONL || kind == LP_T_GZ) {
        size_t base = kind == LP_T_GZ ? rn - 3 : rn;
        f->has_day = (w->layout && lp_layout_match(w->layout, rel, base,
                                                   &f->day)) ||
                     lp_tree_name_day(rel, &f->day);
    }
    w->n++;
    return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth)
{
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (depth > MAX_DEPTH)
        return 0;
    if ((d = fdopendir(dfd)) == NULL) {
        snprintf(w->err, LP_ERRLEN, "%s: %s", *prefix ? prefix : ".",
                 strerror(errno));
        close(dfd);
        return -1;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        char rel[4096];
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;           /* gone meanwhile */
        snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "",
                 name);
        if (S_ISDIR(st.st_mode) && name[0] != '.') {
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY |
                             O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rc = walk_dir(w, sub, rel, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            int kind = kind_of(name, strlen(name));
            if (kind >= 0 && add(w, rel, kind, &st) < 0) {
                snprintf(w->err, LP_ERRLEN, "out of memory");
                rc = -1;
            }
        }
    }
    closedir(d);
    return rc;
}

int lp_tree_walk(int dirfd, const struct lp_layout *layout,
                 struct lp_tfile **out, size_t *n, char *err)
{
    struct walk w = { layout, NULL, 0, 0, err };
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    *out = NULL;
    *n = 0;
    if (dfd < 0) {
        snprintf(err, LP_ERRLEN, "%s", strerror(errno));
        return -1;
    }
    if (walk_dir(&w, dfd, "", 0) < 0) {
        lp_tree_free(w.v, w.n);
        return -1;
    }
    *out = w.v;
    *n = w.n;
    return 0;
}

void lp_tree_free(struct lp_tfile *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].rel);
    free(v);
}

int lp_tfile_cmp(const void *a, const void *b)
{
    const struct lp_tfile *x = a, *y = b;
    size_t nx = strlen(x->rel), ny = strlen(y->rel);
    int c;

    if (x->has_day != y->has_day)
        return x->has_day ? -1 : 1;
    if (x->has_day && x->day != y->day)
        return x->day < y->day ? -1 : 1;
    /* a day's .jsonl.gz comes before its .jsonl: the .jsonl holds what
     * arrived after the .gz was made */
    if (x->kind == LP_T_GZ)
        nx -= 3;
    if (y->kind == LP_T_GZ)
        ny -= 3;
    c = strncmp(x->rel, y->rel, nx < ny ? nx : ny);
    if (c == 0 && nx != ny)
        c = nx < ny ? -1 : 1;
    if (c == 0)
        c = (x->kind != LP_T_GZ) - (y->kind != LP_T_GZ);
    return c;
}

/* Removes empty subdirectories of dfd; returns 1 when dfd is now empty. */
static int prune_dir(int dfd, const char *prefix, int depth,
                     void (*removed)(const char *, void *), void *arg,
                     int *count)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int empty = 1;

    if (d == NULL) {
        close(dfd);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        char rel[4096];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || de->d_name[0] == '.' ||
            depth >= MAX_DEPTH) {
            empty = 0;
            continue;
        }
        snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "",
                 de->d_name);
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
                         O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0 && prune_dir(sub, rel, depth + 1, removed, arg, count) &&
            unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0) {
            (*count)++;
            if (removed)
                removed(rel, arg);
        } else {
            empty = 0;
        }
    }
    if (*count)
        fsync(dirfd(d));
    closedir(d);
    return empty;
}

int lp_tree_prune(int dirfd, void (*removed)(const char *rel, void *arg),
                  void *arg)
{
    int count = 0, dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY |
                                O_CLOEXEC);

    if (dfd >= 0)
        prune_dir(dfd, "", 0, removed, arg, &count);
    return count;
}
