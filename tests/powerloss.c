/* powerloss.c -- LD_PRELOAD shim that records what a power loss would keep
 *
 * Test-only. Preloaded into a process (LD_PRELOAD=tests/powerloss.so,
 * LOGPIPE_POWERLOSS_LOG=FILE), it follows every regular file and directory
 * the process changes and appends to FILE what of it is durable. After the
 * process is SIGKILLed, tests/powerloss-cut reads FILE and makes the tree
 * look as after a power cut at that instant. Without the variable the shim
 * only passes calls through.
 *
 * The model: what counts as durable
 *
 *  - A file's bytes are a durable prefix [0, D) and a volatile rest. D is
 *    the file's size when its last successful fsync/fdatasync began (or a
 *    syncfs of its file system, or sync), else its size before this
 *    process (or any process writing the same log) first changed it: 0 for
 *    a file it created or opened with O_TRUNC.
 *  - A change inside [0, D) since then (pwrite, a write at a seek offset,
 *    ftruncate below D) lowers D to where it began: the cut can only
 *    truncate, never bring old bytes back, so the durable prefix is the
 *    part that is certainly unchanged since the last sync. For files only
 *    appended to (logpipe's archive) this is exact.
 *  - Names. A file or directory the process creates (open/openat with
 *    O_CREAT that made it, creat, mkdir/mkdirat) has a name that is durable
 *    only once its parent directory is fsynced (fsync or fdatasync on the
 *    directory) after the create, or a syncfs/sync runs after it. The cut
 *    removes a file whose name never became durable, whatever its data,
 *    and a directory likewise with all it holds. This is POSIX's rule,
 *    stricter than ext4 in practice (which often commits the name with the
 *    file's own fsync), so a program that passes here is right on both.
 *  - A rename moves a name: a name not yet durable stays so until its new
 *    directory is fsynced; a durable one stays durable. Renames and unlinks
 *    themselves count as durable when they return: the cut cannot bring
 *    back a replaced or unlinked file.
 *  - sync_file_range and close make nothing durable. close is not even
 *    interposed: every call names its file by fstat(2) of the descriptor,
 *    so no descriptor table has to be kept (nor go stale when stdio's
 *    fclose closes one behind our back).
 *  - Threads and processes. A sync's D is the size when it began, taken
 *    under the lock, and a sync that ends after a later one never lowers
 *    D. Appends never touch what a sync covers; an in-place change while
 *    syncs of the file are in flight holds D at or below its offset until
 *    none is (conservative). A process that first changes a file another
 *    one (sharing the log) changed never raises its D: the cut keeps the
 *    smaller.
 *  - Creation is told by trying O_EXCL first, as lp_fs_open does; its F
 *    record follows the create, so a directory fsync racing with it from
 *    another thread may be missed (conservative: the file counts absent).
 *
 * What it does not see: writes through stdio (glibc calls its internal
 * write, not the interposed symbol), mmap, fallocate, copy_file_range,
 * sendfile, link/symlink, renames by processes not under the shim (the
 * paths in the log go stale: the cut reports them and leaves them), and
 * files changed by such processes.
 *
 * The log: one line per record, each appended with a single write() to a
 * descriptor opened O_APPEND for that record, so that a SIGKILL at any
 * instant leaves whole records (a cut last line is ignored) and processes
 * sharing the log interleave whole records. Numbers are decimal.
 *
 *   F dev ino kind D created pdev pino path
 *             first change of a file (kind f) or creation of a directory
 *             (kind d); created 1: its name is not durable yet; pdev:pino
 *             its parent directory
 *   L dev ino D          the durable prefix is now D
 *   R dev ino pdev pino path   renamed to path in directory pdev:pino
 *   P dev ino path       its path is now path (a directory above it was
 *                        renamed; its own name is unchanged)
 *   U dev ino            unlinked
 *   S pid n              a directory fsync, syncfs or sync begins
 *   Y pid n dev ino      directory dev:ino fsynced since S pid n: names
 *                        created in it before that S are durable
 *   A pid n dev          syncfs of file system dev (0: sync, all) since S
 *                        pid n: names created before that S are durable
 *   X text               something the shim could not follow: the cut fails
 *
 * LOGPIPE_POWERLOSS_KILL=N: the process SIGKILLs itself just before the
 * Nth change or sync it makes (counted from 1, over all threads: a write,
 * ftruncate or fsync/fdatasync of a followed file, an fsync of any
 * directory, a create, mkdir, rename, unlink, syncfs, sync): a kill point
 * that needs no timing luck.
 *
 * LOGPIPE_POWERLOSS_UNDER=DIR: follow only files below DIR (a real path,
 * as /proc/self/fd shows it), so that a redirected stderr is not cut.
 *
 * Threads: every update of the table and the record written for it happen
 * under one mutex, with every signal blocked while it is held, so a signal
 * handler that writes cannot deadlock on it. No malloc: a fixed table.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define PL_FILES 32768          /* a power of two */
#define PL_PATH 448
#define PL_REC (PL_PATH + 160)

struct pl_file {
    int used;                   /* 0 empty, 1 live, 2 deleted */
    uint64_t dev, ino;
    int64_t d;                  /* durable prefix */
    int64_t low;                /* lowest change since the syncs in flight began */
    int64_t sync_size;          /* syncfs/sync: the size when it began */
    int nsync;                  /* syncs of it in flight */
    char path[PL_PATH];         /* last known, for syncfs/sync */
};

static struct pl_file files[PL_FILES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char logpath[PATH_MAX];
static char under[PATH_MAX];    /* LOGPIPE_POWERLOSS_UNDER */
static size_t under_len;
static int active = -1;         /* -1: not looked yet */
static atomic_long ops;
static long kill_at;
static atomic_ulong sync_ids;

/* the real functions */
static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_truncate)(const char *, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_syncfs)(int);
static void (*r_sync)(void);
static int (*r_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_renameat2)(int, const char *, int, const char *, unsigned);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_mkdirat)(int, const char *, mode_t);

static void *real(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);

    if (p == NULL) {
        static const char m[] = "powerloss.so: a libc function is missing\n";
        (void)!write(2, m, sizeof m - 1);
        abort();
    }
    return p;
}

/* Every real function, resolved in the constructor, or at the first call
 * if that comes first (another library's constructor): the same values
 * whoever does it. */
static int resolved;

static void resolve_all(void)
{
    r_open = (__typeof__(r_open))real("open");
    r_openat = (__typeof__(r_openat))real("openat");
    r_write = (__typeof__(r_write))real("write");
    r_pwrite = (__typeof__(r_pwrite))real("pwrite");
    r_writev = (__typeof__(r_writev))real("writev");
    r_pwritev = (__typeof__(r_pwritev))real("pwritev");
    r_pwritev2 = (__typeof__(r_pwritev2))real("pwritev2");
    r_ftruncate = (__typeof__(r_ftruncate))real("ftruncate");
    r_truncate = (__typeof__(r_truncate))real("truncate");
    r_fsync = (__typeof__(r_fsync))real("fsync");
    r_fdatasync = (__typeof__(r_fdatasync))real("fdatasync");
    r_syncfs = (__typeof__(r_syncfs))real("syncfs");
    r_sync = (__typeof__(r_sync))real("sync");
    r_sync_file_range = (__typeof__(r_sync_file_range))real("sync_file_range");
    r_renameat = (__typeof__(r_renameat))real("renameat");
    r_renameat2 = (__typeof__(r_renameat2))real("renameat2");
    r_unlinkat = (__typeof__(r_unlinkat))real("unlinkat");
    r_mkdirat = (__typeof__(r_mkdirat))real("mkdirat");
    resolved = 1;
}

#define REAL(f) (resolved ? r_##f : (resolve_all(), r_##f))

static void init(void)
{
    const char *p, *k, *u;

    if (active >= 0)
        return;
    p = getenv("LOGPIPE_POWERLOSS_LOG");
    k = getenv("LOGPIPE_POWERLOSS_KILL");
    u = getenv("LOGPIPE_POWERLOSS_UNDER");
    if (k && *k)
        kill_at = strtol(k, NULL, 10);
    if (u && *u && strlen(u) < sizeof under - 1) {
        strcpy(under, u);
        under_len = strlen(under);
        while (under_len > 1 && under[under_len - 1] == '/')
            under[--under_len] = '\0';
    }
    if (p && *p && strlen(p) < sizeof logpath) {
        strcpy(logpath, p);
        active = 1;
    } else {
        active = 0;
    }
}

/* a fork while another thread holds mu must not leave it held in the
 * child */
static void fork_prepare(void)
{
    pthread_mutex_lock(&mu);
}

static void fork_done(void)
{
    pthread_mutex_unlock(&mu);
}

__attribute__((constructor)) static void pl_init(void)
{
    pthread_atfork(fork_prepare, fork_done, fork_done);
    init();
    resolve_all();
}

/* ---- records ------------------------------------------------------------ */

struct rec {
    char b[PL_REC];
    size_t n;
    int bad;
};

static void put_s(struct rec *r, const char *s)
{
    size_t l = strlen(s);

    if (r->n + l + 2 > sizeof r->b) {
        r->bad = 1;
        return;
    }
    memcpy(r->b + r->n, s, l);
    r->n += l;
}

static void put_u(struct rec *r, uint64_t v)
{
    char t[24];
    int i = sizeof t - 1;

    t[i] = '\0';
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_s(r, " ");
    put_s(r, t + i);
}

static void put_i(struct rec *r, int64_t v)
{
    put_u(r, v < 0 ? 0 : (uint64_t)v);
}

/* Appends r as one line with one write(); a path with a newline or a
 * record too long becomes an X record. Async-signal-safe. */
static void emit(struct rec *r)
{
    int fd;

    if (r->bad || memchr(r->b, '\n', r->n)) {
        static const char m[] = "X a path too long or with a newline";
        memcpy(r->b, m, sizeof m - 1);
        r->n = sizeof m - 1;
    }
    r->b[r->n++] = '\n';
    fd = REAL(open)(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!REAL(write)(fd, r->b, r->n);
    close(fd);
}

static void emit_x(const char *why)
{
    struct rec r = { .n = 0 };

    put_s(&r, "X ");
    put_s(&r, why);
    emit(&r);
}

/* ---- the table, under mu ------------------------------------------------ */

static sigset_t lock(void)
{
    sigset_t all, old;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_lock(&mu);
    return old;
}

static void unlock(sigset_t old)
{
    pthread_mutex_unlock(&mu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static size_t hash(uint64_t dev, uint64_t ino)
{
    uint64_t h = (dev * 0x9E3779B97F4A7C15ull) ^ (ino * 0xC2B2AE3D27D4EB4Full);

    return (size_t)(h ^ (h >> 29)) & (PL_FILES - 1);
}

static struct pl_file *find(uint64_t dev, uint64_t ino)
{
    size_t i = hash(dev, ino), n;

    for (n = 0; n < PL_FILES; n++, i = (i + 1) & (PL_FILES - 1)) {
        if (files[i].used == 0)
            return NULL;
        if (files[i].used == 1 && files[i].dev == dev && files[i].ino == ino)
            return &files[i];
    }
    return NULL;
}

/* A new entry for dev:ino (which find did not find); NULL when full. */
static struct pl_file *add(uint64_t dev, uint64_t ino)
{
    size_t i = hash(dev, ino), n;
    static int said;

    for (n = 0; n < PL_FILES / 4 * 3; n++, i = (i + 1) & (PL_FILES - 1)) {
        if (files[i].used != 1) {
            struct pl_file *f = &files[i];
            f->used = 1;
            f->dev = dev;
            f->ino = ino;
            f->nsync = 0;
            f->low = INT64_MAX;
            f->path[0] = '\0';
            return f;
        }
    }
    if (!said++)
        emit_x("the shim's table of files is full");
    return NULL;
}

/* the path of an open descriptor, "" when unknown */
static void fd_path(int fd, char *buf, size_t size)
{
    char proc[40] = "/proc/self/fd/";
    struct rec r = { .n = 0 };
    ssize_t n;

    put_u(&r, (uint64_t)fd);
    r.b[r.n] = '\0';
    strcat(proc, r.b + 1);
    n = readlink(proc, buf, size - 1);
    if (n < 0 || (size_t)n >= size - 1)
        n = 0;
    buf[n] = '\0';
}

/* the directory holding path (absolute), as dev:ino; 0 when unknown */
static void parent_of(const char *path, uint64_t *dev, uint64_t *ino)
{
    char dir[PL_PATH];
    const char *slash = strrchr(path, '/');
    struct stat st;
    size_t n;

    *dev = *ino = 0;
    if (slash == NULL)
        return;
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof dir)
        return;
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (stat(dir, &st) == 0) {
        *dev = st.st_dev;
        *ino = st.st_ino;
    }
}

static void emit_f(const struct pl_file *f, char kind, int created)
{
    struct rec r = { .n = 0 };
    uint64_t pdev, pino;
    char k[2] = { kind, '\0' };

    parent_of(f->path, &pdev, &pino);
    put_s(&r, "F");
    put_u(&r, f->dev);
    put_u(&r, f->ino);
    put_s(&r, " ");
    put_s(&r, k);
    put_i(&r, f->d);
    put_u(&r, (uint64_t)created);
    put_u(&r, pdev);
    put_u(&r, pino);
    put_s(&r, " ");
    put_s(&r, f->path);
    emit(&r);
}

static void emit_l(const struct pl_file *f)
{
    struct rec r = { .n = 0 };

    put_s(&r, "L");
    put_u(&r, f->dev);
    put_u(&r, f->ino);
    put_i(&r, f->d);
    emit(&r);
}

static void emit_u(uint64_t dev, uint64_t ino)
{
    struct rec r = { .n = 0 };

    put_s(&r, "U");
    put_u(&r, dev);
    put_u(&r, ino);
    emit(&r);
}

/* Is path followed? All of them, or those under LOGPIPE_POWERLOSS_UNDER.
 * An unknown path ("") is followed, and said in an X record. */
static int followed(const char *path)
{
    if (under_len == 0 || path[0] == '\0')
        return 1;
    return strncmp(path, under, under_len) == 0 &&
        (path[under_len] == '/' || path[under_len] == '\0' ||
         under[under_len - 1] == '/');
}

/* A new entry for dev:ino at path (kind f or d), durable prefix d, its
 * record written; NULL when not followed or the table is full. */
static struct pl_file *start(uint64_t dev, uint64_t ino, const char *path,
                             char kind, int64_t d, int created)
{
    struct pl_file *f;

    if (!followed(path) || (f = add(dev, ino)) == NULL)
        return NULL;
    f->d = d;
    strcpy(f->path, path);
    if (path[0] == '\0')
        emit_x("a changed file whose path is unknown or too long");
    emit_f(f, kind, created);
    return f;
}

/* The entry of the regular file open as fd (st its stat), made at its
 * first change with D = its size now, which the change is about to alter.
 * NULL when not followed or full. */
static struct pl_file *touch(int fd, const struct stat *st)
{
    struct pl_file *f = find(st->st_dev, st->st_ino);
    char path[PL_PATH];

    if (f)
        return f;
    fd_path(fd, path, sizeof path);
    return start(st->st_dev, st->st_ino, path, 'f', st->st_size, 0);
}

/* A change of f beginning at offset off, its size being size: only a
 * change of bytes that are there (off < size) can touch a durable prefix
 * or the part a sync in flight covers; appends never do. */
static void changed_at(struct pl_file *f, int64_t off, int64_t size)
{
    if (off >= size)
        return;
    if (off < f->low)
        f->low = off;
    if (off < f->d) {
        f->d = off;
        emit_l(f);
    }
}

/* the kill point: before the Nth change or sync */
static void count_op(void)
{
    if (active == 1 && kill_at > 0 && atomic_fetch_add(&ops, 1) + 1 == kill_at)
        kill(getpid(), SIGKILL);
}

/* Before a change of len bytes at off (-1: at the descriptor's offset, or
 * at the end with O_APPEND) of whatever fd is. */
static void before_write(int fd, int64_t off, size_t len)
{
    struct stat st;
    struct pl_file *f;
    sigset_t old;
    int e = errno, fl;

    init();
    if (active != 1 || len == 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto out;
    fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND))
        off = st.st_size;       /* Linux appends even for pwrite */
    else if (off < 0)
        off = lseek(fd, 0, SEEK_CUR);
    old = lock();
    /* the size again, under the lock: another thread may have appended */
    if (fstat(fd, &st) == 0 && (f = touch(fd, &st)) != NULL) {
        count_op();
        if (fl >= 0 && (fl & O_APPEND))
            off = st.st_size;
        if (off >= 0)
            changed_at(f, off, st.st_size);
    }
    unlock(old);
out:
    errno = e;
}

static void before_truncate(int fd, int64_t len)
{
    struct stat st;
    struct pl_file *f;
    sigset_t old;
    int e = errno;

    init();
    if (active != 1 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto out;
    old = lock();
    if (fstat(fd, &st) == 0 && (f = touch(fd, &st)) != NULL) {
        count_op();
        changed_at(f, len, st.st_size);
    }
    unlock(old);
out:
    errno = e;
}

/* After an open that succeeded: created (we made it) or truncated
 * (O_TRUNC on a file open for writing) start its entry. */
static void after_open(int fd, int created, int flags)
{
    struct stat st;
    struct pl_file *f;
    sigset_t old;
    int e = errno;
    int trunc = (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY;

    if (active != 1 || (!created && !trunc) || fstat(fd, &st) < 0 ||
        !S_ISREG(st.st_mode))
        goto out;
    old = lock();
    f = find(st.st_dev, st.st_ino);
    if (created && f)           /* an inode number used again */
        f->used = 2, f = NULL;
    if (f == NULL) {
        char path[PL_PATH];
        fd_path(fd, path, sizeof path);
        start(st.st_dev, st.st_ino, path, 'f', 0, created);
    } else {
        changed_at(f, 0, INT64_MAX);        /* O_TRUNC: it was cut to 0 */
    }
    unlock(old);
out:
    errno = e;
}

/* Opens, telling a file made by this call from one that was there (O_EXCL
 * first), as lp_fs_open does. */
static int open_tracked(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = -1, created = 0, tries;

    init();
    if (active != 1)
        return REAL(openat)(dirfd, path, flags, mode);
    if ((flags & O_CREAT) || (flags & O_TRUNC))
        count_op();
    if ((flags & O_CREAT) && !(flags & O_EXCL) &&
        (flags & O_TMPFILE) != O_TMPFILE) {
        for (tries = 0; tries < 8; tries++) {
            fd = REAL(openat)(dirfd, path, flags | O_EXCL, mode);
            if (fd >= 0) {
                created = 1;
                break;
            }
            if (errno != EEXIST)
                return -1;
            fd = REAL(openat)(dirfd, path, flags & ~O_CREAT, mode);
            if (fd >= 0 || errno != ENOENT)
                break;
        }
        if (tries == 8) {
            /* a dangling symlink: the plain call, counted as a create */
            fd = REAL(openat)(dirfd, path, flags, mode);
            created = 1;
        }
    } else {
        fd = REAL(openat)(dirfd, path, flags, mode);
        created = fd >= 0 && (flags & O_CREAT);     /* O_EXCL */
    }
    if (fd >= 0)
        after_open(fd, created, flags);
    return fd;
}

/* fsync/fdatasync of fd by sync (the real one); records what it made
 * durable when it succeeds */
static int sync_tracked(int fd, int (*sync)(int))
{
    struct stat st;
    struct pl_file *f;
    sigset_t old;
    int64_t size = 0;
    unsigned long id = 0;
    int rc, e, isdir;

    init();
    if (active != 1 || fstat(fd, &st) < 0 ||
        !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        return sync(fd);
    isdir = S_ISDIR(st.st_mode);
    old = lock();
    if (isdir) {
        count_op();
        struct rec r = { .n = 0 };
        id = atomic_fetch_add(&sync_ids, 1) + 1;
        put_s(&r, "S");
        put_u(&r, (uint64_t)getpid());
        put_u(&r, id);
        emit(&r);
        f = NULL;
    } else if ((f = find(st.st_dev, st.st_ino)) != NULL &&
               fstat(fd, &st) == 0) {
        count_op();
        if (f->nsync++ == 0)
            f->low = INT64_MAX;
        size = st.st_size;
    } else {
        f = NULL;
    }
    unlock(old);
    rc = sync(fd);
    e = errno;
    old = lock();
    if (isdir && rc == 0) {
        struct rec r = { .n = 0 };
        put_s(&r, "Y");
        put_u(&r, (uint64_t)getpid());
        put_u(&r, id);
        put_u(&r, st.st_dev);
        put_u(&r, st.st_ino);
        emit(&r);
    } else if (f && f->used == 1 && f->dev == (uint64_t)st.st_dev &&
               f->ino == (uint64_t)st.st_ino) {
        f->nsync--;
        if (rc == 0) {
            /* a sync that began earlier may end later: never lower */
            int64_t d = size < f->low ? size : f->low;
            if (d > f->d) {
                f->d = d;
                emit_l(f);
            }
        }
    }
    unlock(old);
    errno = e;
    return rc;
}

/* syncfs (dev) or sync (all = 1): every file followed on it is durable at
 * its size when it began, and every name created before. */
static int syncfs_tracked(int fd, int all)
{
    struct stat st;
    sigset_t old;
    unsigned long id;
    uint64_t dev = 0;
    size_t i;
    int rc = 0, e;
    struct rec r = { .n = 0 };

    if (!all) {
        if (fstat(fd, &st) < 0)
            return REAL(syncfs)(fd);
        dev = st.st_dev;
    }
    count_op();
    old = lock();
    id = atomic_fetch_add(&sync_ids, 1) + 1;
    put_s(&r, "S");
    put_u(&r, (uint64_t)getpid());
    put_u(&r, id);
    emit(&r);
    for (i = 0; i < PL_FILES; i++) {
        struct pl_file *f = &files[i];
        f->sync_size = -1;
        if (f->used != 1 || (!all && f->dev != dev) || f->path[0] == '\0')
            continue;
        if (stat(f->path, &st) == 0 && (uint64_t)st.st_dev == f->dev &&
            (uint64_t)st.st_ino == f->ino && S_ISREG(st.st_mode)) {
            f->sync_size = st.st_size;
            if (f->nsync++ == 0)
                f->low = INT64_MAX;
        }
    }
    unlock(old);
    if (all)
        REAL(sync)();
    else
        rc = REAL(syncfs)(fd);
    e = errno;
    old = lock();
    for (i = 0; i < PL_FILES; i++) {
        struct pl_file *f = &files[i];
        if (f->used != 1 || f->sync_size < 0)
            continue;
        f->nsync--;
        if (rc == 0) {
            int64_t d = f->sync_size < f->low ? f->sync_size : f->low;
            if (d > f->d) {
                f->d = d;
                emit_l(f);
            }
        }
        f->sync_size = -1;
    }
    if (rc == 0) {
        r.n = 0;
        put_s(&r, "A");
        put_u(&r, (uint64_t)getpid());
        put_u(&r, id);
        put_u(&r, dev);
        emit(&r);
    }
    unlock(old);
    errno = e;
    return rc;
}

/* the absolute form of dirfd/path into buf ("" when unknown) */
static void abs_path(int dirfd, const char *path, char *buf, size_t size)
{
    size_t n;

    buf[0] = '\0';
    if (path[0] == '/') {
        if (strlen(path) < size)
            strcpy(buf, path);
        return;
    }
    if (dirfd == AT_FDCWD) {
        if (getcwd(buf, size) == NULL)
            buf[0] = '\0';
    } else {
        fd_path(dirfd, buf, size);
    }
    n = strlen(buf);
    if (n == 0 || n + 1 + strlen(path) >= size) {
        buf[0] = '\0';
        return;
    }
    if (buf[n - 1] != '/')
        buf[n++] = '/';
    strcpy(buf + n, path);
}

/* Before unlinking or renaming over dirfd/path: who is there (0: none) */
static void who(int dirfd, const char *path, struct stat *st)
{
    if (fstatat(dirfd, path, st, AT_SYMLINK_NOFOLLOW) < 0)
        st->st_ino = 0, st->st_dev = 0, st->st_nlink = 0;
}

/* After an unlink of what was st (its last name when nlink was 1) */
static void after_unlink(const struct stat *st)
{
    struct pl_file *f;
    sigset_t old;

    if (st->st_ino == 0 || (S_ISREG(st->st_mode) && st->st_nlink > 1))
        return;
    old = lock();
    if ((f = find(st->st_dev, st->st_ino)) != NULL) {
        f->used = 2;
        emit_u(f->dev, f->ino);
    }
    unlock(old);
}

static int unlink_tracked(int dirfd, const char *path, int flags)
{
    struct stat st;
    int rc, e;

    init();
    if (active != 1)
        return REAL(unlinkat)(dirfd, path, flags);
    count_op();
    who(dirfd, path, &st);
    rc = REAL(unlinkat)(dirfd, path, flags);
    e = errno;
    if (rc == 0)
        after_unlink(&st);
    errno = e;
    return rc;
}

/* A directory moved from `from` to ndir/npath: the files followed below
 * it have new paths, their names unchanged (P records). With mu held. */
static void moved_below(const char *from, int ndir, const char *npath)
{
    char to[PL_PATH];
    size_t lf = strlen(from), lt, i;

    abs_path(ndir, npath, to, sizeof to);
    lt = strlen(to);
    for (i = 0; i < PL_FILES; i++) {
        struct pl_file *f = &files[i];
        struct rec r = { .n = 0 };
        size_t rest;
        if (f->used != 1 || strncmp(f->path, from, lf) != 0 ||
            f->path[lf] != '/')
            continue;
        rest = strlen(f->path + lf);
        if (lt == 0 || lt + rest >= sizeof f->path) {
            emit_x("a file below a renamed directory: its new path is "
                   "unknown or too long");
            continue;
        }
        memmove(f->path + lt, f->path + lf, rest + 1);
        memcpy(f->path, to, lt);
        put_s(&r, "P");
        put_u(&r, f->dev);
        put_u(&r, f->ino);
        put_s(&r, " ");
        put_s(&r, f->path);
        emit(&r);
    }
}

static int rename_tracked(int odir, const char *opath, int ndir,
                          const char *npath, unsigned flags, int plain)
{
    struct stat was, moved;
    struct pl_file *f;
    sigset_t old;
    int rc, e;
    char from[PL_PATH];

    init();
    if (active != 1)
        return plain ? REAL(renameat)(odir, opath, ndir, npath) :
            REAL(renameat2)(odir, opath, ndir, npath, flags);
    count_op();
    abs_path(odir, opath, from, sizeof from);
    who(ndir, npath, &was);
    rc = plain ? REAL(renameat)(odir, opath, ndir, npath) :
        REAL(renameat2)(odir, opath, ndir, npath, flags);
    e = errno;
    if (rc < 0)
        goto out;
    who(ndir, npath, &moved);
    if (was.st_ino && (was.st_ino != moved.st_ino || was.st_dev != moved.st_dev)
        && !(flags & RENAME_EXCHANGE))
        after_unlink(&was);
    old = lock();
    if (moved.st_ino && (f = find(moved.st_dev, moved.st_ino)) != NULL) {
        struct rec r = { .n = 0 };
        uint64_t pdev, pino;
        abs_path(ndir, npath, f->path, sizeof f->path);
        if (f->path[0] == '\0')
            emit_x("a renamed file whose path is unknown or too long");
        parent_of(f->path, &pdev, &pino);
        put_s(&r, "R");
        put_u(&r, f->dev);
        put_u(&r, f->ino);
        put_u(&r, pdev);
        put_u(&r, pino);
        put_s(&r, " ");
        put_s(&r, f->path);
        emit(&r);
    }
    if (moved.st_ino && S_ISDIR(moved.st_mode) && from[0])
        moved_below(from, ndir, npath);
    if (flags & RENAME_EXCHANGE)
        emit_x("renameat2 RENAME_EXCHANGE is not followed");
    unlock(old);
out:
    errno = e;
    return rc;
}

static int mkdir_tracked(int dirfd, const char *path, mode_t mode)
{
    struct stat st;
    struct pl_file *f;
    sigset_t old;
    int rc, e;

    init();
    if (active != 1)
        return REAL(mkdirat)(dirfd, path, mode);
    count_op();
    rc = REAL(mkdirat)(dirfd, path, mode);
    e = errno;
    if (rc == 0 && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        char abs[PL_PATH];
        abs_path(dirfd, path, abs, sizeof abs);
        old = lock();
        if ((f = find(st.st_dev, st.st_ino)) != NULL)
            f->used = 2;
        start(st.st_dev, st.st_ino, abs, 'd', 0, 1);
        unlock(old);
    }
    errno = e;
    return rc;
}

/* ---- the interposed calls ----------------------------------------------- */

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ?
        (mode_t)va_arg(ap, unsigned) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return open_tracked(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return open_tracked(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return open_tracked(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return open_tracked(dirfd, path, flags | O_LARGEFILE, mode);
}

/* the _FORTIFY_SOURCE entries, called without a mode */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

int __open_2(const char *path, int flags)
{
    return open_tracked(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
    return open_tracked(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    return open_tracked(dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    return open_tracked(dirfd, path, flags | O_LARGEFILE, 0);
}

int creat(const char *path, mode_t mode)
{
    return open_tracked(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
    return open_tracked(AT_FDCWD, path,
                        O_WRONLY | O_CREAT | O_TRUNC | O_LARGEFILE, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    before_write(fd, -1, n);
    return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    before_write(fd, off, n);
    return REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    before_write(fd, off, n);
    return REAL(pwrite)(fd, buf, n, off);
}

static size_t iov_len(const struct iovec *iov, int n)
{
    size_t len = 0;
    int i;

    for (i = 0; i < n; i++)
        len += iov[i].iov_len;
    return len;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    before_write(fd, -1, iov_len(iov, n));
    return REAL(writev)(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    before_write(fd, off, iov_len(iov, n));
    return REAL(pwritev)(fd, iov, n, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off)
{
    before_write(fd, off, iov_len(iov, n));
    return REAL(pwritev)(fd, iov, n, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t off, int fl)
{
    before_write(fd, off, iov_len(iov, n));
    return REAL(pwritev2)(fd, iov, n, off, fl);
}

int ftruncate(int fd, off_t len)
{
    before_truncate(fd, len);
    return REAL(ftruncate)(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    before_truncate(fd, len);
    return REAL(ftruncate)(fd, len);
}

int truncate(const char *path, off_t len)
{
    int fd, rc, e;

    init();
    if (active != 1)
        return REAL(truncate)(path, len);
    /* through a descriptor, so the file is named as the others are */
    fd = REAL(openat)(AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return REAL(truncate)(path, len);
    before_truncate(fd, len);
    rc = REAL(ftruncate)(fd, len);
    e = errno;
    close(fd);
    errno = e;
    return rc;
}

int truncate64(const char *path, off_t len)
{
    return truncate(path, len);
}

int fsync(int fd)
{
    return sync_tracked(fd, REAL(fsync));
}

int fdatasync(int fd)
{
    return sync_tracked(fd, REAL(fdatasync));
}

int syncfs(int fd)
{
    init();
    if (active != 1)
        return REAL(syncfs)(fd);
    return syncfs_tracked(fd, 0);
}

void sync(void)
{
    init();
    if (active != 1) {
        REAL(sync)();
        return;
    }
    syncfs_tracked(-1, 1);
}

/* makes nothing durable: passed through, named here so that the model is
 * complete */
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    return REAL(sync_file_range)(fd, off, n, flags);
}

int rename(const char *from, const char *to)
{
    return rename_tracked(AT_FDCWD, from, AT_FDCWD, to, 0, 1);
}

int renameat(int odir, const char *from, int ndir, const char *to)
{
    return rename_tracked(odir, from, ndir, to, 0, 1);
}

int renameat2(int odir, const char *from, int ndir, const char *to,
              unsigned int flags)
{
    return rename_tracked(odir, from, ndir, to, flags, 0);
}

int unlink(const char *path)
{
    return unlink_tracked(AT_FDCWD, path, 0);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    return unlink_tracked(dirfd, path, flags);
}

int rmdir(const char *path)
{
    return unlink_tracked(AT_FDCWD, path, AT_REMOVEDIR);
}

int mkdir(const char *path, mode_t mode)
{
    return mkdir_tracked(AT_FDCWD, path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    return mkdir_tracked(dirfd, path, mode);
}
