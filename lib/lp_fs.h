/* lp_fs.h -- files below a directory descriptor, never outside it */
#ifndef LP_FS_H
#define LP_FS_H

#include <stddef.h>
#include <sys/types.h>

#define LP_DIR_MODE 0750
#define LP_FILE_MODE 0640

/* Opens (and with create, makes, mode 0750, parents too) the root
 * directory of a tree. Returns a descriptor or -1 with err. */
int lp_fs_root(const char *path, int create, char *err);

/*
 * Opens rel, a relative path of safe components, below dirfd: every
 * directory is walked with openat(O_NOFOLLOW|O_DIRECTORY) and made (0750)
 * when missing, so neither "..", an absolute path nor a symlink planted in
 * the tree can lead outside it. flags are ORed with O_NOFOLLOW|O_CLOEXEC.
 * When the file or a directory is created, its parent is fsynced before
 * returning and *created is set. With O_CREAT, a directory removed while
 * the path is walked (logpipe-rotate removes empty ones, between our
 * opening a directory and our creating inside it) makes the walk start
 * again from dirfd: the writer gets its file, rotate needs no lock for
 * that. Returns a descriptor, or -1 with errno and err: "PATH: why", PATH
 * the part of rel that failed (rel itself, or one of its directories).
 */
int lp_fs_open(int dirfd, const char *rel, int flags, mode_t mode,
               int *created, char *err);

/* The same, but a directory that gains an entry is handed to defer(ctx,
 * its descriptor (borrowed), its path: dir[0..dlen) with a trailing '/',
 * or dlen 0 for dirfd itself) instead of being fsynced: defer returns 0
 * when it will see to it (logpipe-drain's journal syncs it before it
 * forgets the lines), -1 to have it fsynced now. Every other directory
 * on the path is handed to defer too (its return ignored): the entries
 * found there may not be durable yet, made by another process that
 * deferred their sync. */
int lp_fs_open_defer(int dirfd, const char *rel, int flags, mode_t mode,
                     int *created,
                     int (*defer)(void *ctx, int dfd, const char *dir,
                                  size_t dlen),
                     void *ctx, char *err);

/* Test-only: when set, lp_fs_open calls it with "opened-dir" after it
 * opened each directory of a path, where a directory may vanish under
 * it; the tests stop the process there (LOGPIPE_TEST_CRASH). */
extern void (*lp_fs_test_hook)(const char *point);

/* Opens the directory rel below dirfd, walking each component without
 * following symbolic links; makes nothing. Returns a descriptor or -1
 * with err and errno. */
int lp_fs_opendir(int dirfd, const char *rel, char *err);

/* write(2) until all of p is written; -1 with errno on failure. */
int lp_fs_write_all(int fd, const void *p, size_t n);

/* fsync of a directory below dirfd ("" or "." for dirfd itself). */
int lp_fs_sync_dir(int dirfd, const char *rel, char *err);

#endif
