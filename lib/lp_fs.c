/* lp_fs.c -- files below a directory descriptor, never outside it */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_fs.h"
#include "lp_parse.h"

/* fsyncs the directory that holds path's last component. */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd, rc, e;

    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    e = errno;
    close(fd);
    errno = e;
    return rc;
}

int lp_fs_root(const char *path, int create, char *err)
{
    char tmp[4096];
    int fd;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT || !create)
        goto out;
    /* mkdir -p */
    if (strlen(path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        goto out;
    }
    strcpy(tmp, path);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, LP_DIR_MODE) == 0) {
                /* the new name is durable only once its parent is synced:
                 * else a power cut can take the whole tree with it */
                if (sync_parent(tmp) < 0)
                    goto out;
            } else if (errno != EEXIST)
                goto out;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
out:
    if (fd < 0)
        snprintf(err, LP_ERRLEN, "%s: %s", path, strerror(errno));
    return fd;
}

void (*lp_fs_test_hook)(const char *point);

/* How many times lp_fs_open walks a path: each walk after the first takes
 * a directory it opened being removed (rotate prunes empty ones) in that
 * very moment, so this bound is only a safety against a livelock. */
#define WALKS 100

/* Was the directory dfd removed? Keeps errno. */
static int removed(int dfd)
{
    struct stat st;
    int e = errno, r = fstat(dfd, &st) == 0 && st.st_nlink == 0;

    errno = e;
    return r;
}

int lp_fs_open(int dirfd, const char *rel, int flags, mode_t mode,
               int *created, char *err)
{
    return lp_fs_open_defer(dirfd, rel, flags, mode, created, NULL, NULL,
                            err);
}

/* Makes the entry just created in dfd durable: now, or when defer says
 * it will. 0 or -1 with errno. */
static int sync_entry(int dfd, const char *dir, size_t dlen,
                      int (*defer)(void *, int, const char *, size_t),
                      void *ctx)
{
    if (defer && defer(ctx, dfd, dir, dlen) == 0)
        return 0;
    return fsync(dfd);
}

int lp_fs_open_defer(int dirfd, const char *rel, int flags, mode_t mode,
                     int *created,
                     int (*defer)(void *ctx, int dfd, const char *dir,
                                  size_t dlen),
                     void *ctx, char *err)
{
    char comp[256];
    const char *p, *slash;
    int dfd, fd = -1, made, walks = 0;

    *created = 0;
walk:
    p = rel;
    dfd = dirfd;
    while ((slash = strchr(p, '/')) != NULL) {
        size_t n = (size_t)(slash - p);
        int next;
        if (n == 0 || n >= sizeof comp || (n <= 2 && p[0] == '.' &&
                                           (n == 1 || p[1] == '.'))) {
            snprintf(err, LP_ERRLEN, "%s: unsafe path", rel);
            errno = EINVAL;
            goto fail;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        made = 0;
        for (;;) {
            next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                          O_CLOEXEC);
            if (next >= 0 || errno != ENOENT)
                break;
            if (mkdirat(dfd, comp, LP_DIR_MODE) < 0 && errno != EEXIST)
                break;
            made = 1;
        }
        if (next < 0 && errno == ENOENT && (flags & O_CREAT) &&
            dfd != dirfd && removed(dfd) && ++walks < WALKS) {
            /* dfd was removed since we opened it: from the top again */
            close(dfd);
            goto walk;
        }
        if (next < 0) {
            snprintf(err, LP_ERRLEN, "%.*s: %s", (int)(slash - rel), rel,
                     errno == ELOOP || errno == ENOTDIR ?
                     "not a directory (symlinks are refused)" :
                     strerror(errno));
            goto fail;
        }
        /* with defer, an entry found there is handed over too: this
         * process may not be the one that made it durable (another
         * drain, or a run before a crash, that deferred its sync) */
        if (!made && defer)
            defer(ctx, dfd, rel, (size_t)(p - rel));
        if (made && sync_entry(dfd, rel, (size_t)(p - rel), defer, ctx) < 0) {
            snprintf(err, LP_ERRLEN, "%.*s: fsync of its parent: %s",
                     (int)(slash - rel), rel, strerror(errno));
            close(next);
            goto fail;
        }
        if (dfd != dirfd)
            close(dfd);
        dfd = next;
        p = slash + 1;
        if (lp_fs_test_hook)
            lp_fs_test_hook("opened-dir");
    }
    if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
        snprintf(err, LP_ERRLEN, "%s: unsafe path", rel);
        errno = EINVAL;
        goto fail;
    }
    flags |= O_NOFOLLOW | O_CLOEXEC;
    if (flags & O_CREAT) {
        /* tell a new file from an existing one: its directory entry must
         * be made durable. Most are there already: opened first, made
         * only when missing (one call for those, not two) */
        fd = openat(dfd, p, flags & ~O_CREAT, mode);
        while (fd < 0 && errno == ENOENT) {
            fd = openat(dfd, p, flags | O_EXCL, mode);
            if (fd >= 0) {
                *created = 1;
                break;
            }
            if (errno != EEXIST)
                break;
            /* made in between; unlinked again in between (rotation):
             * try again */
            fd = openat(dfd, p, flags & ~O_CREAT, mode);
        }
        if (fd < 0 && errno == ENOENT && dfd != dirfd && removed(dfd) &&
            ++walks < WALKS) {
            /* its directory was removed since we opened it */
            close(dfd);
            goto walk;
        }
    } else {
        fd = openat(dfd, p, flags, mode);
    }
    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", rel, errno == ELOOP ?
                 "is a symlink (refused)" : strerror(errno));
        goto fail;
    }
    if (!*created && defer)
        defer(ctx, dfd, rel, (size_t)(p - rel));
    if (*created && sync_entry(dfd, rel, (size_t)(p - rel), defer, ctx) < 0) {
        snprintf(err, LP_ERRLEN, "%s: fsync of its directory: %s", rel,
                 strerror(errno));
        close(fd);
        fd = -1;
        goto fail;
    }
    if (dfd != dirfd)
        close(dfd);
    return fd;
fail:
    if (dfd != dirfd) {
        int e = errno;
        close(dfd);
        errno = e;
    }
    return -1;
}

int lp_fs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int lp_fs_sync_dir(int dirfd, const char *rel, char *err)
{
    int fd, rc;

    if (rel == NULL || *rel == '\0' || strcmp(rel, ".") == 0)
        fd = dirfd;
    else if ((fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                          O_CLOEXEC)) < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", rel, strerror(errno));
        return -1;
    }
    rc = fsync(fd);
    if (rc < 0)
        snprintf(err, LP_ERRLEN, "fsync of directory %s: %s",
                 rel && *rel ? rel : ".", strerror(errno));
    if (fd != dirfd)
        close(fd);
    return rc;
}

int lp_fs_opendir(int dirfd, const char *rel, char *err)
{
    char comp[256];
    const char *p = rel;
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    while (dfd >= 0 && *p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        int next;
        if (n == 0 || n >= sizeof comp || (n <= 2 && p[0] == '.' &&
                                           (n == 1 || p[1] == '.'))) {
            close(dfd);
            errno = EINVAL;
            snprintf(err, LP_ERRLEN, "%s: unsafe path", rel);
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                      O_CLOEXEC);
        close(dfd);
        dfd = next;
        p += n + (slash != NULL);
    }
    if (dfd < 0)
        snprintf(err, LP_ERRLEN, "%s: %s", rel, strerror(errno));
    return dfd;
}
