/* lp_archive.c -- the archive tree: day files appended under a lock */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "lp_archive.h"
#include "lp_shards.h"
#include "lp_sync.h"
#include "lp_fs.h"
#include "lp_journal.h"
#include "lp_json.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_time.h"

/* the table of open files starts with this many slots (a power of 2),
 * and doubles to stay at most half full */
#define LP_TAB0 1024

struct check {
    uint64_t ms, seq;
    uint32_t shard;             /* 0: an unsharded ID; i + 1: shard i's */
    int found;
};

struct lp_afile {
    char *path;                 /* -> name, NUL-terminated */
    size_t plen;
    uint32_t hash;              /* of path (hash_path) */
    size_t oslot;               /* its index in a->open */
    int fd;                     /* -1: none (closed by --max-open, the
                                   entry kept: lp_archive.h) */
    struct lp_afile *lprev, *lnext;     /* a->lru, while it has an fd */
    struct lp_buf pend;         /* the batch's lines */
    struct check *checks;       /* redelivered entries to look for */
    size_t nchecks, capchecks;
    int touched;
    uint64_t used;              /* batch number of last use */
    uint64_t dirsync;           /* journal mode: the epoch that makes its
                                   name durable (its directory synced) */
    off_t size;                 /* when locked for the batch */
    off_t end;                  /* its size after our last write, -1:
                                   unknown (another writer may have cut
                                   its line short since) */
    int mustsync;               /* lines found already there: sync it */
    int dirty;                  /* journal: lines held, or written since
                                   the last seal */
    int wrote;                  /* journal: written since the last seal
                                   (its fd is synced by the next epoch) */
    size_t dslot;               /* its index in a->dirty */
    int insync;                 /* in the running epoch's sync job */
    size_t jslot;               /* its index in a->jfiles */
    int locked;                 /* by lp_archive_lock, for this batch */
    struct lp_buf hold;         /* journal mode: lines committed to the
                                   journal, not yet written to the file */
    int64_t hold_ms;            /* when its oldest was committed */
    uint64_t hold_mark;         /* the journal's last seal then: the
                                   segments from it on keep those lines */
    ino_t ino;                  /* of fd, when opened: the path's while */
    dev_t dev;                  /* it is not rotated away (lock_for_append) */
    uint64_t born;              /* its birth time (fd_ident), 0: unknown */
    char name[];
};

/* A descriptor whose file was closed (evicted, rotated away) while its
 * data still had to be synced, or while the running job syncs it: kept
 * open until then. */
struct orphan {
    int fd;
    int state;                  /* O_NEXT or O_JOB */
    char *path;                 /* for errors (NULL: out of memory) */
    int dir;                    /* a directory: fsync, not fdatasync */
};
#define O_NEXT 0                /* synced by the next epoch, then closed */
#define O_JOB 1                 /* in the running job: closed at its end */

struct lp_archive {
    int dirfd;
    size_t max_open, nopen;
    size_t max_known;           /* files remembered, with or without fd */
    size_t nfd;                 /* files with a descriptor, in ... */
    struct lp_afile *lru, *mru; /* ... least recently used first */
    uint64_t opens;             /* day files opened (lp_archive_opens) */
    int no_openat2;             /* openat2(2) refused: the walk each time */
    int syncfs_proven;          /* one syncfs of dirfd succeeded */
    int need_fs;                /* a file written since the epoch started
                                   lost its fd: the next epoch is a
                                   syncfs */
    /* the open files: by path, in an open-addressed table (linear
     * probing) of their hashes, so that a lookup among thousands
     * compares one path, not a chain of them; and in a->open, to go
     * through them all */
    struct lp_slot { uint32_t h; struct lp_afile *f; } *tab;
    size_t tcap;
    struct lp_afile **open;
    size_t capopen;
    struct lp_afile *last;      /* runs of one file skip the hash */
    struct lp_afile **touched;
    size_t ntouched, captouched;
    int *fds;                   /* the touched files' descriptors, to sync */
    size_t capfds;
    uint64_t batchno;
    char *scan;                 /* buffer of the duplicate check */
    struct lp_notify nt;        /* files mended or reopened are said here */
    /* journal mode (lp_archive_set_journal) */
    struct lp_journal *j;
    struct lp_afile **dirty;    /* files written since the last seal */
    size_t ndirty, capdirty;
    struct lp_afile **jfiles;   /* the running job's files (NULL: gone) */
    int *jfds;                  /* and descriptors */
    size_t njob, capjob;
    int job;                    /* an epoch's sync runs */
    int jfs;                    /* ... as a syncfs of the file system */
    int syncfs_ok;              /* syncfs reports write errors here, and
                                   every file is on dirfd's file system */
    dev_t dev;                  /* dirfd's */
    uint64_t jmark;             /* its seal */
    uint64_t seal_mark;         /* the last seal's mark (0: none yet) */
    uint64_t jcut;              /* the running epoch cuts the journal
                                   behind this: its seal, or the last
                                   one's when lines stay held */
    size_t tcur;                /* put_some's place in a->dirty */
    size_t hold_low;            /* LP_HOLD_LOW (lp_archive_tune) */
    int64_t epoch_ms;           /* LP_EPOCH_MS (lp_archive_tune) */
    uint64_t jadded;            /* journal bytes committed since the seal */
    int64_t sealed_at;          /* lp_mono_ms of the last seal */
    struct orphan *orph;        /* and directories that gained entries */
    size_t norph, caporph;
    uint64_t *dset;             /* their inodes (0: free) and devices, */
    uint64_t *ddev;             /* this epoch */
    size_t dcap, dn;
    int defer_dirs;             /* without a journal too (its replay) */
    int64_t commit_us;          /* the last journal commit took */
    size_t held;                /* bytes in the files' hold buffers */
    int64_t stale_ms;           /* held this long: checked for copies */
    int nohold;                 /* the batch in hand is written through */
    int async;                  /* its commit may sync in the background */
    int committing;             /* a commit syncs: lp_archive_sync_finish */
    struct lp_afile *direct;    /* ... and it is this file's own sync */
    struct lp_afile **vict;     /* evict_some's candidates */
    size_t capvict;
    uint64_t epochs;            /* epochs started */
    uint64_t synced_epochs;     /* the last whose sync succeeded */
    int deferred;               /* the open in hand deferred a directory */
    int64_t hold_since;         /* its entries were delivered (mono ms) */
    int put_due;                /* LP_HOLD_MAX wrote the held lines: an
                                   epoch syncs them now */
    int freeing;                /* lp_archive_free: nothing written */
    int locking;                /* files are locked: no epoch may run
                                   (it locks files itself) */
    int failed;                 /* an epoch forced by orphans failed: */
    char ferr[LP_ERRLEN];       /* why (errno in failed) */
};

static int epoch_start(struct lp_archive *a, char *err);
static int epoch_end(struct lp_archive *a, char *err);
int lp_archive_sync_dirs(struct lp_archive *a, char *err);
static int put_held_locked(struct lp_archive *a, struct lp_afile *f,
                           char *err);
static int put_some(struct lp_archive *a, size_t target, char *err);

/*
 * At most max_open descriptors wait for their sync: before one more is
 * kept, the running epoch is waited for, and when that is not enough an
 * epoch runs now (not while files are locked: a few more then). A failure is kept for the next lp_archive_write or
 * lp_archive_flush to report. 0, or -1 (the descriptor is synced at once
 * then).
 */
static int make_room(struct lp_archive *a)
{
    char err[LP_ERRLEN];

    if (a->norph < a->max_open || a->failed || a->locking || a->committing)
        return a->failed ? -1 : 0;  /* locking, or a commit syncing: over
                                     * the bound, briefly */
    if (a->j == NULL) {         /* a replay's directories: synced now */
        if (lp_archive_sync_dirs(a, err) == 0)
            return 0;
        a->failed = errno ? errno : EIO;
        snprintf(a->ferr, sizeof a->ferr, "%s", err);
        return -1;
    }
    if ((a->job && epoch_end(a, err) < 0) ||
        (a->norph >= a->max_open &&
         (epoch_start(a, err) < 0 || epoch_end(a, err) < 0))) {
        a->failed = errno ? errno : EIO;
        snprintf(a->ferr, sizeof a->ferr, "%s", err);
        return -1;
    }
    return 0;
}

/* The failure make_room kept, if any: -1 with err and errno. */
static int kept_failure(struct lp_archive *a, char *err)
{
    if (!a->failed)
        return 0;
    snprintf(err, LP_ERRLEN, "%s", a->ferr);
    errno = a->failed;
    return -1;
}

static uint32_t hash_path(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The open file at path s[0..n) with hash h, or NULL. */
static struct lp_afile *tab_find(const struct lp_archive *a, uint32_t h,
                                 const char *s, size_t n)
{
    size_t m = a->tcap - 1;

    if (a->tcap == 0)
        return NULL;
    for (size_t i = h & m; a->tab[i].f; i = (i + 1) & m)
        if (a->tab[i].h == h && a->tab[i].f->plen == n &&
            memcmp(a->tab[i].f->path, s, n) == 0)
            return a->tab[i].f;
    return NULL;
}

static void tab_put(struct lp_slot *tab, size_t cap, struct lp_afile *f)
{
    size_t i = f->hash & (cap - 1);

    while (tab[i].f)
        i = (i + 1) & (cap - 1);
    tab[i].h = f->hash;
    tab[i].f = f;
}

/* Adds f to the open files. 0, or -1 when out of memory. */
static int tab_add(struct lp_archive *a, struct lp_afile *f)
{
    if (a->nopen == a->capopen) {
        size_t cap = a->capopen ? a->capopen * 2 : 64;
        struct lp_afile **p = realloc(a->open, cap * sizeof *p);
        if (p == NULL)
            return -1;
        a->open = p;
        a->capopen = cap;
    }
    if ((a->nopen + 1) * 2 > a->tcap) {
        size_t cap = a->tcap ? a->tcap * 2 : LP_TAB0;
        struct lp_slot *t = calloc(cap, sizeof *t);
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < a->nopen; i++)
            tab_put(t, cap, a->open[i]);
        free(a->tab);
        a->tab = t;
        a->tcap = cap;
    }
    tab_put(a->tab, a->tcap, f);
    f->oslot = a->nopen;
    a->open[a->nopen++] = f;
    return 0;
}

/* Takes f out of the open files (backward-shift deletion: no tombstones
 * to slow the lookups down). */
static void tab_del(struct lp_archive *a, struct lp_afile *f)
{
    size_t m = a->tcap - 1, i = f->hash & m, j;
    struct lp_afile *last = a->open[--a->nopen];

    a->open[f->oslot] = last;
    last->oslot = f->oslot;
    while (a->tab[i].f != f)
        i = (i + 1) & m;
    for (j = (i + 1) & m; a->tab[j].f; j = (j + 1) & m) {
        size_t home = a->tab[j].h & m;
        /* the entry at j may move to the hole at i when its home is not
         * cyclically within (i, j] */
        if (((j - home) & m) >= ((j - i) & m)) {
            a->tab[i] = a->tab[j];
            i = j;
        }
    }
    a->tab[i].f = NULL;
}

/* The files with a descriptor, least recently used first: the one to
 * close when --max-open are open is found at the head, not by a scan of
 * every file known (20,000 of them at 20,000 services). */
static void lru_del(struct lp_archive *a, struct lp_afile *f)
{
    if (f->lprev)
        f->lprev->lnext = f->lnext;
    else
        a->lru = f->lnext;
    if (f->lnext)
        f->lnext->lprev = f->lprev;
    else
        a->mru = f->lprev;
    f->lprev = f->lnext = NULL;
    a->nfd--;
}

static void lru_add(struct lp_archive *a, struct lp_afile *f)
{
    f->lnext = NULL;
    f->lprev = a->mru;
    if (a->mru)
        a->mru->lnext = f;
    else
        a->lru = f;
    a->mru = f;
    a->nfd++;
}

static void lru_touch(struct lp_archive *a, struct lp_afile *f)
{
    if (f->fd >= 0 && a->mru != f) {
        lru_del(a, f);
        lru_add(a, f);
    }
}

struct lp_archive *lp_archive_new(int dirfd, size_t max_open,
                                  const struct lp_notify *nt)
{
    struct lp_archive *a = calloc(1, sizeof *a);

    if (a == NULL)
        return NULL;
    a->dirfd = dirfd;
    a->max_open = max_open ? max_open : 1;
    a->max_known = a->max_open > LP_KNOWN_FILES ? a->max_open
                                                : LP_KNOWN_FILES;
    {
        struct stat st;
        a->syncfs_ok = lp_sync_fs_reports() && fstat(dirfd, &st) == 0;
        a->dev = a->syncfs_ok ? st.st_dev : 0;
    }
    if (nt)
        a->nt = *nt;
    return a;
}

/* Keeps fd open until the epoch that syncs it (O_NEXT) or until the
 * running job ends (O_JOB). Returns 0, or -1 when out of memory (fd is
 * then synced and closed at once). */
static int orphan_fd(struct lp_archive *a, int fd, int state,
                     const char *path, size_t plen)
{
    if (state == O_NEXT && make_room(a) < 0) {
        fdatasync(fd);          /* the failure is reported later */
        close(fd);
        return -1;
    }
    if (a->norph == a->caporph) {
        size_t cap = a->caporph ? a->caporph * 2 : 16;
        struct orphan *p = realloc(a->orph, cap * sizeof *p);
        if (p == NULL) {
            /* cannot be remembered: the journal may not be cut behind
             * it any more; the run ends (O_JOB: the job names fd, which
             * stays open) */
            if (!a->failed) {
                a->failed = ENOMEM;
                snprintf(a->ferr, sizeof a->ferr, "out of memory");
            }
            if (state == O_NEXT)
                close(fd);
            return -1;
        }
        a->orph = p;
        a->caporph = cap;
    }
    a->orph[a->norph].fd = fd;
    a->orph[a->norph].state = state;
    a->orph[a->norph].path = strndup(path, plen);
    a->orph[a->norph].dir = 0;
    a->norph++;
    return 0;
}

static void undirty(struct lp_archive *a, struct lp_afile *f)
{
    struct lp_afile *last = a->dirty[--a->ndirty];

    a->dirty[f->dslot] = last;
    last->dslot = f->dslot;
    f->dirty = 0;
}

/*
 * May f's descriptor be closed before the epoch that syncs what was
 * written through it? Yes when that epoch is a syncfs (lp_archive.h: it
 * syncs every file of the file system, with a descriptor or without, and
 * reports their write errors) and syncfs is known to work here: one
 * succeeded, an epoch's or, the first time this is asked, one made now
 * (a syncfs refused then is a sync per file from then on, as in
 * epoch_end; one that fails keeps its failure for the next call).
 */
static int fs_covers(struct lp_archive *a, const struct lp_afile *f)
{
    if (!a->syncfs_ok || f->dev != a->dev)
        return 0;
    if (!a->syncfs_proven) {
        if (syncfs(a->dirfd) < 0) {
            if (errno == ENOSYS || errno == EPERM)
                a->syncfs_ok = 0;
            else if (!a->failed) {
                a->failed = errno;
                snprintf(a->ferr, sizeof a->ferr, "the archive's file "
                         "system (syncfs): %s", strerror(errno));
            }
            return 0;
        }
        a->syncfs_proven = 1;
    }
    return 1;
}

/* Lets go of f's descriptor (its entry stays: f keeps its lines held,
 * its size and inode). What was written through it and is not synced
 * yet: covered by the next epoch's syncfs (fs_covers), or the descriptor
 * kept until that epoch syncs it, so that closing never syncs in the
 * foreground. */
static void release_fd(struct lp_archive *a, struct lp_afile *f,
                       int may_flush)
{
    if (f->fd < 0)
        return;
    lru_del(a, f);
    if (a->freeing) {           /* no epoch, no sync: the journal stays */
        close(f->fd);
        f->fd = -1;
        f->insync = 0;
        f->wrote = 0;
        if (f->dirty)
            undirty(a, f);
        return;
    }
    if (f->wrote && may_flush)
        make_room(a);           /* while an epoch it starts can take f */
    if (f->insync)
        a->jfiles[f->jslot] = NULL;
    if (f->wrote && fs_covers(a, f)) {
        /* the next epoch's syncfs syncs what was written since the
         * running one's seal; a running sync per file still needs the
         * descriptor till its end */
        a->need_fs = 1;
        if (f->insync && !a->jfs)
            orphan_fd(a, f->fd, O_JOB, f->path, f->plen);
        else
            close(f->fd);
    } else if (f->wrote) {
        orphan_fd(a, f->fd, O_NEXT, f->path, f->plen);
    } else if (f->insync && !a->jfs) {
        orphan_fd(a, f->fd, O_JOB, f->path, f->plen);
    } else {
        close(f->fd);           /* synced, or in a syncfs */
    }
    f->wrote = 0;
    /* its buffers too, when empty: of thousands of files, those without
     * a descriptor keep only what they hold (those with one keep their
     * buffers: no malloc a batch) */
    if (f->hold.len == 0)
        lp_buf_free(&f->hold);
    if (f->pend.len == 0)
        lp_buf_free(&f->pend);
    /* f stays among the dirty files (put_all_held goes through them
     * while files are reopened): the epoch passes over it */
    f->insync = 0;
    f->fd = -1;
}

/* May f give its descriptor up now? Not a file of the batch in hand
 * that is locked for it, or without a journal any (synced by its
 * descriptor), nor the file whose own sync commits the batch. (locked
 * means something only while touched: it stays set after a batch.) */
static int may_release(const struct lp_archive *a, const struct lp_afile *f)
{
    return !(f->touched && (f->locked || a->j == NULL)) &&
           !(a->committing && f == a->direct);
}

/* Until fewer than limit files have a descriptor, the least recently
 * used that may gives its own up (a few more than --max-open when the
 * batch's locked files are that many). */
static void fd_room(struct lp_archive *a, size_t limit)
{
    while (a->nfd >= limit) {
        struct lp_afile *f = a->lru;
        while (f && !may_release(a, f))
            f = f->lnext;
        if (f == NULL)
            return;
        release_fd(a, f, 1);
    }
}

static void close_file(struct lp_archive *a, struct lp_afile *f)
{
    char err[LP_ERRLEN];

    /* its held lines first (not when freeing: the journal has them) */
    if (f->hold.len && !a->freeing && !a->failed &&
        put_held_locked(a, f, err) < 0) {
        a->failed = errno ? errno : EIO;
        snprintf(a->ferr, sizeof a->ferr, "%s", err);
    }
    if (f->hold.len) {
        a->held -= f->hold.len;
        f->hold.len = 0;
    }
    tab_del(a, f);
    release_fd(a, f, !a->freeing);
    if (f->dirty)               /* without a descriptor: nothing to sync */
        undirty(a, f);
    if (a->last == f)
        a->last = NULL;
    lp_buf_free(&f->pend);
    lp_buf_free(&f->hold);
    free(f->checks);
    free(f);
}

void lp_archive_close_all(struct lp_archive *a)
{
    while (a->nopen)
        close_file(a, a->open[a->nopen - 1]);
    a->ntouched = 0;
}

void lp_archive_free(struct lp_archive *a)
{
    size_t bad;

    if (a == NULL)
        return;
    if (a->job)                 /* its descriptors must stay open */
        lp_sync_wait(&bad);
    a->job = 0;
    if (a->committing && a->direct)     /* likewise the lane's */
        lp_sync_lane_wait(&bad);
    a->committing = 0;
    a->freeing = 1;
    lp_archive_close_all(a);
    for (size_t i = 0; i < a->norph; i++) {
        close(a->orph[i].fd);   /* what is unsynced, the journal has */
        free(a->orph[i].path);
    }
    free(a->orph);
    free(a->dset);
    free(a->ddev);
    free(a->dirty);
    free(a->jfiles);
    free(a->jfds);
    free(a->touched);
    free(a->vict);
    free(a->tab);
    free(a->open);
    free(a->fds);
    free(a->scan);
    free(a);
}

/* The order of eviction: a file with nothing left to sync first, then
 * the least recently used. */
static int busy_of(const struct lp_afile *f)
{
    return f->dirty || f->insync;
}

static int by_victim(const void *x, const void *y)
{
    const struct lp_afile *f = *(struct lp_afile *const *)x;
    const struct lp_afile *g = *(struct lp_afile *const *)y;

    if (busy_of(f) != busy_of(g))
        return busy_of(f) - busy_of(g);
    return f->used < g->used ? -1 : f->used > g->used;
}

/* Closes the least recently used file that the batch has not touched. */
static void evict_one(struct lp_archive *a)
{
    struct lp_afile *victim = NULL;

    for (size_t i = 0; i < a->nopen; i++) {
        struct lp_afile *f = a->open[i];
        if (!f->touched && (victim == NULL || by_victim(&f, &victim) < 0))
            victim = f;
    }
    if (victim)
        close_file(a, victim);
}

/* The table of files known is full: forgets a sixteenth of it at once,
 * in the order of by_victim, so that a scan of every file is paid once
 * per many new files, not per new file (when it was --max-open long,
 * 20,000 keys over 4,096 files spent a third of the drain in
 * evict_one). */
static void evict_some(struct lp_archive *a)
{
    size_t n = 0, want = a->max_known / 16 + 1;

    if (a->capvict < a->nopen) {
        struct lp_afile **v = realloc(a->vict, a->nopen * sizeof *v);
        if (v == NULL) {
            evict_one(a);
            return;
        }
        a->vict = v;
        a->capvict = a->nopen;
    }
    for (size_t i = 0; i < a->nopen; i++)
        if (!a->open[i]->touched)
            a->vict[n++] = a->open[i];
    qsort(a->vict, n, sizeof *a->vict, by_victim);
    for (size_t i = 0; i < n && i < want; i++)
        close_file(a, a->vict[i]);
}

static size_t dslot(uint64_t dev, uint64_t ino, size_t cap)
{
    return (size_t)(((ino ^ dev * 0x100000001B3ull) * 0x9E3779B97F4A7C15ull)
                    >> 7) & (cap - 1);
}

/* The directories handed over so far are synced (or in the job that
 * syncs them): one gaining an entry from now on is handed over again. */
static void dirs_forget(struct lp_archive *a)
{
    if (a->dn) {
        memset(a->dset, 0, a->dcap * sizeof *a->dset);
        a->dn = 0;
    }
}

static int defer_dir(void *ctx, int dfd, const char *dir, size_t dlen)
{
    struct lp_archive *a = ctx;
    struct stat st;
    size_t i;
    int fd;

    a->deferred = 1;
    if (fstat(dfd, &st) < 0 || st.st_ino == 0)
        return -1;
    if (a->dn * 2 >= a->dcap) {
        size_t cap = a->dcap ? a->dcap * 2 : 64;
        uint64_t *p = calloc(cap, sizeof *p), *q = calloc(cap, sizeof *q);
        if (p == NULL || q == NULL) {
            free(p);
            free(q);
            return -1;
        }
        for (size_t k = 0; k < a->dcap; k++)
            if (a->dset[k]) {
                for (i = dslot(a->ddev[k], a->dset[k], cap); p[i];
                     i = (i + 1) & (cap - 1))
                    ;
                p[i] = a->dset[k];
                q[i] = a->ddev[k];
            }
        free(a->dset);
        free(a->ddev);
        a->dset = p;
        a->ddev = q;
        a->dcap = cap;
    }
    for (i = dslot((uint64_t)st.st_dev, (uint64_t)st.st_ino, a->dcap);
         a->dset[i]; i = (i + 1) & (a->dcap - 1))
        if (a->dset[i] == (uint64_t)st.st_ino &&
            a->ddev[i] == (uint64_t)st.st_dev)
            return 0;           /* synced by the next epoch already */
    if ((fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    if (dlen > 0)
        dlen--;                 /* its trailing '/' */
    if (orphan_fd(a, fd, O_NEXT, dlen ? dir : ".", dlen ? dlen : 1) < 0)
        return -1;              /* fsynced now by lp_fs_open, or failed */
    a->orph[a->norph - 1].dir = 1;
    a->dset[i] = (uint64_t)st.st_ino;
    a->ddev[i] = (uint64_t)st.st_dev;
    a->dn++;
    return 0;
}

/*
 * The identity of the file open as fd: st's inode, device and size, and
 * *born, its birth time (statx(2); 0 where the file system keeps none).
 * While a descriptor holds a file its inode number names it; once it is
 * closed (a file without one: reopen) and the file deleted, a new file
 * may get the same number, which the birth time tells apart. 0 or -1.
 */
static int fd_ident(int fd, struct stat *st, uint64_t *born)
{
    struct statx sx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_SIZE | STATX_BTIME,
              &sx) < 0)
        return -1;
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)sx.stx_ino;
    st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    st->st_size = (off_t)sx.stx_size;
    *born = sx.stx_mask & STATX_BTIME
                ? (uint64_t)sx.stx_btime.tv_sec * 1000000000u +
                      sx.stx_btime.tv_nsec + 1
                : 0;
    return 0;
}

/* Opens path to append, making it and its directories; *dirsync: the
 * epoch that makes a name it made durable (0: none made, or synced);
 * st and *born: its identity (fd_ident). */
static int open_append(struct lp_archive *a, const char *path,
                       uint64_t *dirsync, struct stat *st, uint64_t *born,
                       char *err)
{
    int created, fd;

    a->deferred = 0;
    fd = lp_fs_open_defer(a->dirfd, path, O_RDWR | O_APPEND | O_CREAT,
                          LP_FILE_MODE, &created,
                          a->j || a->defer_dirs ? defer_dir : NULL, a, err);
    *dirsync = a->deferred ? a->epochs + 1 : 0;
    if (fd < 0)
        return -1;
    /* its inode: lock_for_append tells by it whether the path is still
     * this file */
    if (fd_ident(fd, st, born) < 0) {
        int e = errno;
        snprintf(err, LP_ERRLEN, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    /* a file system mounted below --dir: syncfs of --dir's would not
     * sync it; a sync per file from now on (an epoch started before
     * holds no file opened since) */
    if (a->syncfs_ok && st->st_dev != a->dev)
        a->syncfs_ok = 0;
    return fd;
}

/* f's descriptor becomes fd, whose identity is st's and born. */
static void set_fd(struct lp_afile *f, int fd, const struct stat *st,
                   uint64_t born)
{
    f->fd = fd;
    f->ino = st->st_ino;
    f->dev = st->st_dev;
    f->born = born;
    f->end = -1;
}

struct lp_afile *lp_archive_get(struct lp_archive *a, const char *path,
                                size_t n, char *err)
{
    struct lp_afile *f = a->last;
    struct stat st;
    uint64_t born;
    uint32_t h;
    int fd;

    if (f == NULL || f->plen != n || memcmp(f->path, path, n) != 0) {
        h = hash_path(path, n);
        if ((f = tab_find(a, h, path, n)) == NULL) {
            /* a file not known: opened now, its path checked (an unsafe
             * one is the entry's error, not the write's) and its
             * directories made; known files are opened when their lines
             * are written (lock_for_append), not per line */
            if (a->nopen >= a->max_known)
                evict_some(a);
            fd_room(a, a->max_open);
            if ((f = calloc(1, sizeof *f + n + 1)) == NULL) {
                snprintf(err, LP_ERRLEN, "%s: out of memory", path);
                errno = ENOMEM;
                return NULL;
            }
            f->path = f->name;
            memcpy(f->name, path, n);
            f->name[n] = '\0';
            f->plen = n;
            f->hash = h;
            fd = open_append(a, path, &f->dirsync, &st, &born, err);
            if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
                a->nfd > 0) {
                fd_room(a, a->nfd);
                fd = open_append(a, path, &f->dirsync, &st, &born, err);
            }
            if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
                a->norph > 0) {
                /* descriptors kept for their sync: sync them now */
                char e2[LP_ERRLEN];
                if (lp_archive_flush_all(a, e2) < 0) {
                    /* not this entry's path: the disk (74) */
                    snprintf(err, LP_ERRLEN, "%s", e2);
                    free(f);
                    errno = EIO;
                    return NULL;
                }
                fd = open_append(a, path, &f->dirsync, &st, &born, err);
            }
            if (fd < 0) {
                int e = errno;
                free(f);
                errno = e;
                return NULL;
            }
            set_fd(f, fd, &st, born);
            if (tab_add(a, f) < 0) {
                close(fd);
                free(f);
                snprintf(err, LP_ERRLEN, "%s: out of memory", path);
                errno = ENOMEM;
                return NULL;
            }
            lru_add(a, f);
            a->opens++;
        } else {
            lru_touch(a, f);
        }
        a->last = f;
    }
    if (!f->touched) {
        if (a->ntouched == a->captouched) {
            size_t cap = a->captouched ? a->captouched * 2 : 64;
            struct lp_afile **t = realloc(a->touched, cap * sizeof *t);
            if (t == NULL) {
                snprintf(err, LP_ERRLEN, "%s: out of memory", path);
                errno = ENOMEM;
                return NULL;
            }
            a->touched = t;
            a->captouched = cap;
        }
        f->touched = 1;
        a->touched[a->ntouched++] = f;
    }
    f->used = a->batchno;
    return f;
}

int lp_archive_touches(const struct lp_archive *a, const char *path,
                       size_t n)
{
    const struct lp_afile *f = a->last;

    if (f && f->plen == n && memcmp(f->path, path, n) == 0)
        return f->touched;
    f = tab_find(a, hash_path(path, n), path, n);
    return f ? f->touched : 0;
}

struct lp_buf *lp_afile_buf(struct lp_afile *f)
{
    return &f->pend;
}

size_t lp_archive_touched(const struct lp_archive *a)
{
    return a->ntouched;
}

int lp_archive_format(struct lp_buf *dst, const char *id, size_t idlen,
                      const char *s, size_t n, const struct lp_jevent *ev)
{
    size_t body = ev->ncuts ? lp_json_cut_len(ev, n) : n;
    char *w;

    if (lp_buf_reserve(dst, body + idlen + 16) < 0)
        return -1;
    w = dst->p + dst->len;
    memcpy(w, "{\"_id\":\"", 8);
    w += 8;
    memcpy(w, id, idlen);
    w += idlen;
    *w++ = '"';
    /* s starts with '{'; the members follow, or only '}' when none */
    if (ev->nmembers > ev->nids)
        *w++ = ',';
    if (ev->ncuts) {
        lp_json_cut_copy(ev, s, n, w);
        memmove(w, w + 1, body - 1);
    } else {
        memcpy(w, s + 1, n - 1);
    }
    w += body - 1;
    *w++ = '\n';
    dst->len = (size_t)(w - dst->p);
    return 0;
}

/* The "_id" of an archive line: "<ms>-<seq>", or "<i>-<ms>-<seq>" for an
 * entry of shard i of a sharded stream (*shard = i + 1; 0 without). */
static int line_sid(const char *s, size_t n, uint32_t *shard, uint64_t *ms,
                    uint64_t *seq)
{
    const char *q;
    int i;

    if (n < 12 || memcmp(s, "{\"_id\":\"", 8) != 0)
        return -1;
    s += 8;
    n -= 8;
    q = memchr(s, '"', n);
    /* an entry's ID always has its seq ("12" is no line's) */
    if (q == NULL || memchr(s, '-', (size_t)(q - s)) == NULL ||
        lp_shard_id_parse(s, (size_t)(q - s), &i, ms, seq) < 0)
        return -1;
    *shard = (uint32_t)(i + 1);
    return 0;
}

int lp_archive_line_id(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
    uint32_t shard;

    return line_sid(s, n, &shard, ms, seq);
}

static int cmp_check(const void *x, const void *y)
{
    const struct check *a = x, *b = y;

    /* by time first: checks[0] is the oldest (scan_for_copies) */
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return a->shard < b->shard ? -1 : a->shard > b->shard;
}

int lp_afile_check(struct lp_afile *f, const char *id, size_t idlen)
{
    struct check c = { 0, 0, 0, 0 };
    char line[96];

    if (idlen + 10 > sizeof line)
        return 0;
    memcpy(line, "{\"_id\":\"", 8);
    memcpy(line + 8, id, idlen);
    line[8 + idlen] = '"';
    if (line_sid(line, idlen + 9, &c.shard, &c.ms, &c.seq) < 0)
        return 0;
    if (f->nchecks == f->capchecks) {
        size_t cap = f->capchecks ? f->capchecks * 2 : 16;
        struct check *p = realloc(f->checks, cap * sizeof *p);
        if (p == NULL)
            return -1;
        f->checks = p;
        f->capchecks = cap;
    }
    f->checks[f->nchecks++] = c;
    return 0;
}

long lp_afile_check_lines(struct lp_afile *f, const char *s, size_t n)
{
    const char *end = s + n, *q;
    long lines = 0;

    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)(nl ? nl + 1 - s : end - s);
        /* {"_id":"<id>": its entry may be in f already */
        if (len > 8 && memcmp(s, "{\"_id\":\"", 8) == 0 &&
            (q = memchr(s + 8, '"', len - 8)) != NULL &&
            lp_afile_check(f, s + 8, (size_t)(q - s - 8)) < 0)
            return -1;
        lines++;
        s += len;
    }
    return lines;
}

static struct check *find_check(struct lp_afile *f, uint32_t shard,
                                uint64_t ms, uint64_t seq)
{
    struct check key = { ms, seq, shard, 0 };

    if (f->nchecks == 0)
        return NULL;
    return bsearch(&key, f->checks, f->nchecks, sizeof key, cmp_check);
}

#define SCAN_CHUNK (1 << 20)
#define SCAN_BUF (4 * SCAN_CHUNK)

/* One archive line seen by the scan; returns 1 when the scan can stop. */
static int scan_line(struct lp_afile *f, const char *s, size_t n,
                     uint64_t floor, size_t *left, size_t *run)
{
    uint64_t ms, seq;
    uint32_t shard;
    struct check *c;

    if (line_sid(s, n, &shard, &ms, &seq) < 0)
        return 0;
    if ((c = find_check(f, shard, ms, seq)) != NULL && !c->found) {
        c->found = 1;
        (*left)--;
    }
    *run = ms < floor ? *run + 1 : 0;
    return *left == 0 || *run >= LP_DEDUP_RUN;
}

/*
 * Looks, backwards from the end of f (size bytes), for the entries in
 * f->checks (sorted), marking those found. Stops when all are found, at the
 * start of the file, or after LP_DEDUP_RUN consecutive lines older than the
 * oldest one checked by more than LP_DEDUP_SLACK_MS: the copy of an entry is
 * written after its first delivery, and lines are appended roughly in ID
 * order, give or take concurrent batches and late claims of older entries.
 *
 * The buffer holds [a chunk of the file][carry], where carry is the start
 * of the earliest line seen so far, whose beginning is in the chunk.
 */
static int scan_for_copies(struct lp_archive *a, struct lp_afile *f,
                           off_t size, char *err)
{
    uint64_t oldest = f->checks[0].ms;
    uint64_t floor = oldest > LP_DEDUP_SLACK_MS ? oldest - LP_DEDUP_SLACK_MS
                                                : 0;
    size_t left = f->nchecks, run = 0, carry = 0;
    off_t pos = size;           /* the file before pos is not read yet */

    if (a->scan == NULL && (a->scan = malloc(SCAN_BUF)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    while (pos > 0) {
        char *buf = a->scan;
        size_t want = pos > SCAN_CHUNK ? SCAN_CHUNK : (size_t)pos;
        size_t e;
        ssize_t got;

        if (carry > SCAN_BUF - SCAN_CHUNK)
            carry = 0;          /* a line over 3 MiB: not one of ours */
        memmove(buf + want, buf, carry);
        got = pread(f->fd, buf, want, pos - (off_t)want);
        if (got != (ssize_t)want) {
            snprintf(err, LP_ERRLEN, "%s: read: %s", f->path,
                     got < 0 ? strerror(errno) : "short read");
            return -1;
        }
        pos -= (off_t)want;
        e = want + carry;       /* the lines of buf[0..e), last to first */
        for (;;) {
            size_t lim = e > 0 && buf[e - 1] == '\n' ? e - 1 : e;
            char *nl = lim ? memrchr(buf, '\n', lim) : NULL;
            if (nl == NULL) {
                if (pos == 0) { /* the first line of the file */
                    if (e)
                        scan_line(f, buf, e, floor, &left, &run);
                    return 0;
                }
                carry = e;      /* it starts in an earlier chunk */
                break;
            }
            size_t ls = (size_t)(nl - buf) + 1;
            if (scan_line(f, buf + ls, e - ls, floor, &left, &run))
                return 0;
            e = ls;
        }
    }
    return 0;
}

/* The archive ID of entry id after pfx, in buf (at least 96 bytes):
 * its length, or 0 when it does not fit. */
static size_t format_aid(char *buf, const char *pfx, const struct lp_sid *id)
{
    int k = snprintf(buf, 96, "%s%" PRIu64 "-%" PRIu64, pfx ? pfx : "",
                     id->ms, id->seq);

    return k > 0 && k < 96 ? (size_t)k : 0;
}

long lp_archive_file_holds(struct lp_archive *a, const char *path,
                           const char *pfx, const struct lp_sid *ids,
                           size_t n, unsigned char *found, char *err)
{
    struct lp_afile f;
    struct stat st;
    char aid[96], line[112];
    long nfound = 0;
    int fd, created = 0, rc = 0, e;

    if (n == 0)
        return 0;
    fd = lp_fs_open(a->dirfd, path, O_RDONLY, 0, &created, err);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    memset(&f, 0, sizeof f);
    f.path = (char *)path;
    f.fd = fd;
    if (flock(fd, LOCK_SH) < 0 || fstat(fd, &st) < 0) {
        e = errno;
        snprintf(err, LP_ERRLEN, "%s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = format_aid(aid, pfx, &ids[i]);
        if (k && lp_afile_check(&f, aid, k) < 0)
            rc = -1;
    }
    if (rc < 0) {
        snprintf(err, LP_ERRLEN, "out of memory");
        e = ENOMEM;
    } else if (f.nchecks) {
        qsort(f.checks, f.nchecks, sizeof *f.checks, cmp_check);
        rc = scan_for_copies(a, &f, st.st_size, err);
        e = errno;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t k = format_aid(aid, pfx, &ids[i]);
        uint64_t ms, seq;
        uint32_t shard;
        struct check *c;
        if (k == 0)
            continue;
        memcpy(line, "{\"_id\":\"", 8);
        memcpy(line + 8, aid, k);
        line[8 + k] = '"';
        if (line_sid(line, k + 9, &shard, &ms, &seq) == 0 &&
            (c = find_check(&f, shard, ms, seq)) != NULL && c->found) {
            found[i] = 1;
            nfound++;
        }
    }
    free(f.checks);
    /* the run that wrote them may have been killed before their sync:
     * durable before anything is acknowledged for them (mustsync) */
    if (rc == 0 && nfound > 0 && fdatasync(fd) < 0) {
        e = errno;
        snprintf(err, LP_ERRLEN, "%s: fsync: %s", path, strerror(e));
        rc = -1;
    }
    close(fd);                  /* and its lock */
    if (rc < 0) {
        errno = e;
        return -1;
    }
    return nfound;
}

static uint64_t drop_found_in(struct lp_afile *f, struct lp_buf *b);

/* Drops from f's buffer the lines whose entries the scan found. */
static uint64_t drop_found(struct lp_afile *f)
{
    return drop_found_in(f, &f->pend);
}

static uint64_t drop_found_in(struct lp_afile *f, struct lp_buf *b)
{
    char *r = b->p, *w = b->p, *end = b->p + b->len;
    uint64_t dropped = 0, ms, seq;
    uint32_t shard;

    while (r < end) {
        char *nl = memchr(r, '\n', (size_t)(end - r));
        size_t n = (size_t)(nl ? nl + 1 - r : end - r);
        struct check *c;
        if (line_sid(r, n, &shard, &ms, &seq) == 0 &&
            (c = find_check(f, shard, ms, seq)) != NULL && c->found) {
            dropped++;
        } else {
            if (w != r)
                memmove(w, r, n);
            w += n;
        }
        r += n;
    }
    b->len = (size_t)(w - b->p);
    return dropped;
}

/*
 * Mends the end of f when it lacks its last newline. Under the lock, such
 * a tail was left by a writer that died mid-write (or a full disk): its
 * entry was not acknowledged and is written again whole, so a tail that
 * is not a whole JSON value is cut off. One that is (a file edited by
 * hand, a write cut just before its newline) gets its newline back.
 * Returns 0 (nothing to mend), 1 (mended) or -1 with err.
 */
static int cut_partial(struct lp_archive *a, struct lp_afile *f, off_t size,
                       char *err)
{
    char buf[4096], c, *tail;
    off_t end = size, cut = 0;
    struct lp_jerr je;
    int whole;

    if (size == 0 || pread(f->fd, &c, 1, size - 1) != 1 || c == '\n')
        return 0;
    while (end > 0) {
        off_t from = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t n = pread(f->fd, buf, (size_t)(end - from), from);
        if (n <= 0)
            break;
        char *nl = memrchr(buf, '\n', (size_t)n);
        if (nl) {
            cut = from + (nl - buf) + 1;
            break;
        }
        end = from;
    }
    tail = size - cut < (1 << 26) ? malloc((size_t)(size - cut)) : NULL;
    whole = tail && pread(f->fd, tail, (size_t)(size - cut), cut) ==
                    (ssize_t)(size - cut) &&
            lp_json_valid(tail, (size_t)(size - cut), NULL, &je) == 0;
    free(tail);
    if (whole) {
        lp_notice(&a->nt, LP_NOTICE_WARN,
                  "%s: the last line lacked its newline: adding it", f->path);
        if (lp_fs_write_all(f->fd, "\n", 1) < 0 || fdatasync(f->fd) < 0)
            goto fail;
        return 1;
    }
    lp_notice(&a->nt, LP_NOTICE_WARN, "%s: cutting a partial last line "
              "(%lld bytes) left by an interrupted write", f->path,
              (long long)(size - cut));
    if (ftruncate(f->fd, cut) < 0 || fdatasync(f->fd) < 0)
        goto fail;
    return 1;
fail:
    snprintf(err, LP_ERRLEN, "%s: %s", f->path, strerror(errno));
    return -1;
}

/* Adds f to the files the next epoch syncs. 0, or -1 (ENOMEM). */
static int mark_dirty(struct lp_archive *a, struct lp_afile *f)
{
    if (f->dirty)
        return 0;
    if (a->ndirty == a->capdirty) {
        size_t cap = a->capdirty ? a->capdirty * 2 : 64;
        struct lp_afile **p = realloc(a->dirty, cap * sizeof *p);
        if (p == NULL)
            return -1;
        a->dirty = p;
        a->capdirty = cap;
    }
    f->dirty = 1;
    f->dslot = a->ndirty;
    a->dirty[a->ndirty++] = f;
    return 0;
}

/*
 * f has no descriptor (--max-open took it): opened again. In one call
 * when the path still names the file it was (openat2(2) beneath dirfd,
 * no symlink followed, as the walk of its first open checked; its
 * directories were made durable then): its known end kept, so that
 * lock_for_append reads nothing. Else through the walk, which makes it
 * again: rotated away meanwhile (said as lock_for_append says it). 0, or
 * -1 with err and errno.
 */
static int reopen(struct lp_archive *a, struct lp_afile *f, char *err)
{
    struct stat st;
    uint64_t ds, born;
    int fd;

    fd_room(a, a->max_open);
    if (!a->no_openat2) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                      RESOLVE_NO_MAGICLINKS;
        fd = (int)syscall(SYS_openat2, a->dirfd, f->path, &how, sizeof how);
        if (fd < 0 && (errno == ENOSYS || errno == EPERM))
            a->no_openat2 = 1;
        /* the same file: the same inode, born when it was (a later
         * file may have its number) */
        if (fd >= 0 && (fd_ident(fd, &st, &born) < 0 ||
                        st.st_ino != f->ino || st.st_dev != f->dev ||
                        born != f->born)) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0) {
            /* no birth time here: maybe a later file of that number,
             * so its end is checked again (one byte read) */
            if (born == 0)
                f->end = -1;
            f->fd = fd;
            lru_add(a, f);
            a->opens++;
            return 0;
        }
    }
    fd = open_append(a, f->path, &ds, &st, &born, err);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && a->nfd > 0) {
        fd_room(a, a->nfd);
        fd = open_append(a, f->path, &ds, &st, &born, err);
    }
    if (fd < 0)
        return -1;
    if (st.st_ino != f->ino || st.st_dev != f->dev || born != f->born)
        lp_notice(&a->nt, LP_NOTICE_INFO, "%s was rotated: reopening",
                  f->path);
    set_fd(f, fd, &st, born);
    if (ds > f->dirsync)
        f->dirsync = ds;
    lru_add(a, f);
    a->opens++;
    return 0;
}

/* Locks f for appending and makes it ready: reopened when rotation
 * unlinked or replaced it, its partial last line cut. *size: its size. */
static int lock_for_append(struct lp_archive *a, struct lp_afile *f,
                           off_t *size, char *err)
{
    struct stat st, cur;

    if (f->fd < 0 && reopen(a, f, err) < 0)
        return -1;
    for (;;) {
        if (flock(f->fd, LOCK_EX) < 0) {
            snprintf(err, LP_ERRLEN, "%s: lock: %s", f->path,
                     strerror(errno));
            return -1;
        }
        /* the path still names our file (so it is linked): what the
         * path says is what the descriptor would (one stat, not two) */
        if (fstatat(a->dirfd, f->path, &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
            cur.st_ino == f->ino && cur.st_dev == f->dev) {
            *size = cur.st_size;
            /* as we left it: it ends with our last whole line */
            if (cur.st_size == f->end)
                return 0;
            int rc = cut_partial(a, f, cur.st_size, err);
            if (rc < 0)
                return -1;
            if (rc > 0 && fstat(f->fd, &st) == 0)
                *size = st.st_size;
            return 0;
        }
        /* rotated away: the next file by that name is ours */
        lp_notice(&a->nt, LP_NOTICE_INFO, "%s was rotated: reopening",
                  f->path);
        {
            /* the new file first: when it cannot be had, f keeps its
             * old descriptor, its place among the files to sync and
             * what it holds, for the run's end to report */
            uint64_t ds, born;
            int was_dirty = f->dirty;
            int nfd = open_append(a, f->path, &ds, &st, &born, err);
            if (nfd < 0)
                return -1;
            release_fd(a, f, 0);    /* with locks held: no epoch now */
            set_fd(f, nfd, &st, born);
            lru_add(a, f);
            a->opens++;
            f->dirsync = ds;
            if ((was_dirty || f->hold.len) && mark_dirty(a, f) < 0) {
                snprintf(err, LP_ERRLEN, "%s: out of memory", f->path);
                errno = ENOMEM;
                return -1;
            }
        }
    }
}

static int by_path(const void *x, const void *y)
{
    const struct lp_afile *a = *(struct lp_afile *const *)x;
    const struct lp_afile *b = *(struct lp_afile *const *)y;

    return strcmp(a->path, b->path);
}

static void unlock_all(struct lp_archive *a, size_t n)
{
    a->locking = 0;
    for (size_t i = 0; i < n; i++)
        if (a->touched[i]->locked)  /* the flag stays: it says written */
            flock(a->touched[i]->fd, LOCK_UN);
}

/* Is f written by the batch in hand, or are its lines held (journal
 * mode: committed to the journal, written to the file by the next epoch,
 * many batches in one write)? Written now: without a journal; when its
 * entries may be in it already (a check: the held lines go first, so the
 * check sees them); for a batch held long (see lp_archive_hold); when
 * enough is held for it. */
static int writes_now(const struct lp_archive *a, const struct lp_afile *f)
{
    return a->j == NULL || a->nohold || f->nchecks ||
           f->pend.len + f->hold.len >= LP_HOLD_FILE;
}

int lp_archive_lock(struct lp_archive *a, char *err)
{
    size_t k = 0;

    a->locking = 1;             /* until unlock_all */
    /* the files written now first, in the order of their paths (every
     * drain locks in that order: no deadlock); the held ones need no
     * lock, and no sorting */
    for (size_t i = 0; i < a->ntouched; i++) {
        struct lp_afile *f = a->touched[i];
        f->locked = 0;
        if (writes_now(a, f)) {
            a->touched[i] = a->touched[k];
            a->touched[k++] = f;
        }
    }
    qsort(a->touched, k, sizeof *a->touched, by_path);
    for (size_t i = 0; i < k; i++) {
        struct lp_afile *f = a->touched[i];
        f->locked = 1;
        if (lock_for_append(a, f, &f->size, err) < 0) {
            f->locked = 0;
            int e = errno;
            unlock_all(a, i);
            errno = e;
            return -1;
        }
    }
    return 0;
}

int lp_sid_cmp(const void *x, const void *y)
{
    const struct lp_sid *a = x, *b = y;

    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void lp_archive_drop_lines(struct lp_buf *b, const struct lp_sid *drop,
                           size_t ndrop)
{
    char *r = b->p, *w = b->p, *end = b->p + b->len;
    struct lp_sid id;

    while (r < end) {
        char *nl = memchr(r, '\n', (size_t)(end - r));
        size_t n = (size_t)(nl ? nl + 1 - r : end - r);
        if (ndrop && lp_archive_line_id(r, n, &id.ms, &id.seq) == 0 &&
            bsearch(&id, drop, ndrop, sizeof id, lp_sid_cmp)) {
            /* not ours any more: left out */
        } else {
            if (w != r)
                memmove(w, r, n);
            w += n;
        }
        r += n;
    }
    b->len = (size_t)(w - b->p);
}

static int journal_commit(struct lp_archive *a, int async, char *err);
static int journal_settle(struct lp_archive *a, char *err);

/*
 * Writes the lines f holds (f locked). Held past a->stale_ms (the drain
 * stalled), another consumer may have claimed their entries and written
 * them meanwhile: they are checked for first, apart from the batch's own
 * checks, which then see them in the file. 0 or -1 with err and errno.
 */
static int put_held(struct lp_archive *a, struct lp_afile *f, char *err)
{
    if (a->stale_ms > 0 && lp_mono_ms() - f->hold_ms >= a->stale_ms) {
        struct check *save = f->checks;
        size_t nsave = f->nchecks, capsave = f->capchecks;
        int rc = 0;

        f->checks = NULL;
        f->nchecks = f->capchecks = 0;
        if (lp_afile_check_lines(f, f->hold.p, f->hold.len) < 0) {
            snprintf(err, LP_ERRLEN, "out of memory");
            errno = ENOMEM;
            rc = -1;
        }
        if (rc == 0 && f->nchecks) {
            qsort(f->checks, f->nchecks, sizeof *f->checks, cmp_check);
            rc = scan_for_copies(a, f, f->size, err);
            if (rc == 0) {
                /* copies found: not held any more, whatever follows */
                size_t was = f->hold.len;
                drop_found_in(f, &f->hold);
                a->held -= was - f->hold.len;
            }
        }
        free(f->checks);
        f->checks = save;
        f->nchecks = nsave;
        f->capchecks = capsave;
        if (rc < 0)
            return -1;
    }
    f->end = -1;
    if (f->hold.len && lp_fs_write_all(f->fd, f->hold.p, f->hold.len) < 0) {
        snprintf(err, LP_ERRLEN, "%s: write: %s", f->path, strerror(errno));
        return -1;
    }
    f->size += (off_t)f->hold.len;
    f->end = f->size;
    f->wrote = 1;
    a->held -= f->hold.len;
    f->hold.len = 0;
    return 0;
}

/* The same for a file not locked: locks it, writes, unlocks. */
static int put_held_locked(struct lp_archive *a, struct lp_afile *f,
                           char *err)
{
    int rc, e, was = a->locking;

    a->locking = 1;
    if (lock_for_append(a, f, &f->size, err) < 0) {
        a->locking = was;
        return -1;
    }
    rc = put_held(a, f, err);
    e = errno;
    flock(f->fd, LOCK_UN);
    a->locking = was;
    errno = e;
    return rc;
}

/* Writes every file's held lines (outside a batch: no lock held). */
static int put_all_held(struct lp_archive *a, char *err)
{
    /* the files with a descriptor first: those opened for the others
     * then take the descriptors of files written already, not of files
     * still to write (of 20,000 files over 4096 descriptors, a fifth
     * need no open) */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < a->ndirty && a->held > 0; i++) {
            struct lp_afile *f = a->dirty[i];
            /* (the list keeps its order meanwhile: a descriptor given
             * up, or a file reopened after a rotation, stays dirty) */
            if (f->hold.len && (f->fd >= 0) == (pass == 0) &&
                put_held_locked(a, f, err) < 0)
                return -1;
        }
    }
    return 0;
}

/*
 * Writes held lines, file after file where the last call stopped, until
 * at most target bytes are held: while a backlog is drained, a few files
 * after each batch, each holding what it gathered since its last turn,
 * rather than all of them at once, when Redis would wait for the drain
 * (the read ahead answered, nothing more asked), and the drain for Redis
 * afterwards. 0, or -1 with err.
 */
static int put_some(struct lp_archive *a, size_t target, char *err)
{
    for (size_t i = 0, n = a->ndirty; i < n && a->held > target; i++) {
        struct lp_afile *f;
        if (a->tcur >= a->ndirty)
            a->tcur = 0;
        f = a->dirty[a->tcur++];
        if (f->hold.len && put_held_locked(a, f, err) < 0)
            return -1;
    }
    return 0;
}

/* Writes the lines held since before the last seal: the epoch starting
 * now cuts their segments (a line is held over one seal at most). */
static int put_aged(struct lp_archive *a, char *err)
{
    for (size_t i = 0; i < a->ndirty && a->held > 0; i++) {
        struct lp_afile *f = a->dirty[i];
        if (f->hold.len && f->hold_mark < a->seal_mark &&
            put_held_locked(a, f, err) < 0)
            return -1;
    }
    return 0;
}

int lp_archive_write(struct lp_archive *a, const struct lp_sid *drop,
                     size_t ndrop, uint64_t *dups, char *err)
{
    int async = a->async;
    /* a batch that writes one file, at once: that file's own sync is its
     * commit, as the journal's would be (one write, one fdatasync), and
     * its lines are not written a second time */
    struct lp_afile *direct = NULL;
    int lane[LP_SYNC_LANE];
    size_t nlane = 1;

    /* its name must be durable too: the directories it was made in are
     * synced with it when they are few and none is in the epoch's job;
     * else the journal (its replay makes the file again) */
    if (async && a->j && a->ntouched == 1 && a->touched[0]->locked) {
        struct lp_afile *f = a->touched[0];
        if (f->dirsync <= a->synced_epochs) {
            direct = f;
        } else if (f->dirsync == a->epochs + 1) {
            direct = f;
            for (size_t i = 0; i < a->norph && direct; i++)
                if (a->orph[i].dir && a->orph[i].state == O_NEXT) {
                    if (nlane == LP_SYNC_LANE)
                        direct = NULL;
                    else
                        lane[nlane++] = -1 - a->orph[i].fd;
                }
        }
    }

    a->async = 0;
    if (kept_failure(a, err) < 0)
        goto fail;
    for (size_t i = 0; i < a->ntouched; i++) {
        struct lp_afile *f = a->touched[i];
        if (ndrop)
            lp_archive_drop_lines(&f->pend, drop, ndrop);
        if (a->j && !f->locked) {
            /* held: into the journal now, into the file later */
            if (f->pend.len &&
                lp_journal_add(a->j, f->path, f->plen, f->pend.p,
                               f->pend.len) < 0) {
                snprintf(err, LP_ERRLEN, "%s: journal: %s", f->path,
                         strerror(errno));
                goto fail;
            }
            continue;
        }
        /* what this file holds is older: written first */
        if (f->hold.len && put_held(a, f, err) < 0)
            goto fail;
        if (f->nchecks) {
            uint64_t found;
            qsort(f->checks, f->nchecks, sizeof *f->checks, cmp_check);
            if (scan_for_copies(a, f, f->size, err) < 0)
                goto fail;
            found = drop_found(f);
            *dups += found;
            f->nchecks = 0;
            /* lines another run wrote and never synced may be what was
             * found: the file is synced before the batch counts */
            f->mustsync |= found > 0;
        }
        f->end = -1;
        if (f->pend.len && lp_fs_write_all(f->fd, f->pend.p, f->pend.len) < 0) {
            snprintf(err, LP_ERRLEN, "%s: write: %s", f->path,
                     strerror(errno));
            goto fail;
        }
        /* O_APPEND under the lock: nobody wrote in between */
        f->end = f->size + (off_t)f->pend.len;
        /* committed by its own sync: rotate must still see, under the
         * lock, that the file has lines not yet acknowledged */
        if (f == direct && f->pend.len &&
            lp_journal_mark(a->j, f->path, f->plen, err) < 0)
            goto fail;
        /* under the file's lock: rotate asks the journal under it too */
        if (a->j && f != direct && f->pend.len &&
            lp_journal_add(a->j, f->path, f->plen, f->pend.p,
                           f->pend.len) < 0) {
            snprintf(err, LP_ERRLEN, "%s: journal: %s", f->path,
                     strerror(errno));
            goto fail;
        }
    }
    if (direct) {
        if (direct->pend.len || direct->mustsync) {
            /* synced in the lane while the caller sends its next read
             * (mustsync: that sync too). The file stays dirty for the
             * epoch: evicted meanwhile, its descriptor is kept open */
            lane[0] = direct->fd;
            lp_sync_lane_start(lane, nlane);
            a->committing = 1;
            a->direct = direct;
        }
        a->commit_us = 0;
    } else if (a->j && journal_commit(a, async, err) < 0) {
        goto fail;
    }
    unlock_all(a, a->ntouched);
    if (a->j)
        return journal_settle(a, err);
    return 0;
fail:
    {
        int e = errno;
        unlock_all(a, a->ntouched);
        if (a->j)
            lp_archive_discard(a);
        errno = e;
    }
    return -1;
}

/*
 * Journal mode: the batch's lines are durable once the journal's commit
 * is (one write, one fdatasync), and files whose lines were found there
 * already are synced. With the files still locked. 0, or -1 with err and
 * errno.
 */
static int journal_commit(struct lp_archive *a, int async, char *err)
{
    int64_t t0 = lp_mono_us();

    a->jadded += lp_journal_pending(a->j);
    if (async) {
        /* written now, under the locks (rotate reads the journal under
         * them); synced while the caller sends its next read */
        if (lp_journal_commit_start(a->j, err) < 0)
            return -1;
        a->committing = lp_journal_commit_pending(a->j);
    } else if (lp_journal_commit(a->j, err) < 0) {
        return -1;
    }
    a->commit_us = lp_mono_us() - t0;
    for (size_t i = 0; i < a->ntouched; i++) {
        struct lp_afile *f = a->touched[i];
        if (f->mustsync && fdatasync(f->fd) < 0) {
            snprintf(err, LP_ERRLEN, "%s: fsync: %s", f->path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Journal mode, after the unlock: the batch's files join the next
 * epoch's sync. 0, or -1 with err (a file that could not be remembered
 * could not be synced either). */
static int journal_settle(struct lp_archive *a, char *err)
{
    for (size_t i = 0; i < a->ntouched; i++) {
        struct lp_afile *f = a->touched[i];
        if (!f->locked && f->pend.len) {
            size_t n = f->pend.len;
            if (mark_dirty(a, f) < 0) {
                snprintf(err, LP_ERRLEN, "%s: out of memory", f->path);
                errno = ENOMEM;
                return -1;
            }
            /* copied, not handed over: a batch's buffer stays the size
             * of a batch's lines, the held one of a round's (at 2,000
             * files, handing them over made both a round's: +16 MB) */
            if (f->hold.len == 0) {
                f->hold_ms = a->hold_since;
                f->hold_mark = a->seal_mark;
            }
            if (lp_buf_add(&f->hold, f->pend.p, n) < 0) {
                snprintf(err, LP_ERRLEN, "%s: out of memory", f->path);
                errno = ENOMEM;
                return -1;
            }
            a->held += n;
        } else if (f->pend.len) {
            f->wrote = 1;       /* synced by the next epoch */
            if (mark_dirty(a, f) < 0) {
                /* no room to remember it: sync it now */
                f->wrote = 0;
                if (fdatasync(f->fd) < 0) {
                    snprintf(err, LP_ERRLEN, "%s: fsync: %s", f->path,
                             strerror(errno));
                    return -1;
                }
            }
        }
        f->pend.len = 0;
        f->touched = 0;
        f->mustsync = 0;
        f->locked = 0;
    }
    a->ntouched = 0;
    a->batchno++;
    /* memory: what is held is bounded; and a batch written through (the
     * drain caught up) writes what was held: lines reach their files
     * late only while a backlog is drained */
    int put = a->held >= LP_HOLD_MAX || (a->nohold && a->held);
    /* written for want of memory: synced by an epoch started now, in the
     * background, rather than at the end of one, when it would all wait
     * (the end of --once: the whole backlog) */
    if (a->held >= LP_HOLD_MAX)
        a->put_due = 1;
    a->nohold = 0;
    if (put)
        return put_all_held(a, err);
    return a->held > a->hold_low ? put_some(a, a->hold_low, err) : 0;
}

/* The touched files' descriptors into a->fds. Returns 0 or -1 (ENOMEM). */
static int sync_fds(struct lp_archive *a, char *err)
{
    if (a->ntouched > a->capfds) {
        int *p = realloc(a->fds, a->ntouched * sizeof *p);
        if (p == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            errno = ENOMEM;
            return -1;
        }
        a->fds = p;
        a->capfds = a->ntouched;
    }
    for (size_t i = 0; i < a->ntouched; i++)
        a->fds[i] = a->touched[i]->fd;
    return 0;
}

/* After the sync of the batch: rc from lp_sync_*, bad its index. */
static int sync_done(struct lp_archive *a, int rc, size_t bad, char *err)
{
    if (rc < 0) {
        int e = errno;
        snprintf(err, LP_ERRLEN, "%s: fsync: %s", a->touched[bad]->path,
                 strerror(e));
        errno = e;
        return -1;
    }
    for (size_t i = 0; i < a->ntouched; i++) {
        a->touched[i]->pend.len = 0;
        a->touched[i]->touched = 0;
        a->touched[i]->mustsync = 0;
    }
    a->ntouched = 0;
    a->batchno++;
    return 0;
}

int lp_archive_sync(struct lp_archive *a, char *err)
{
    size_t bad = 0;
    int rc;

    /* all writes came first; then every file at once: the file system
     * commits concurrent syncs together */
    if (sync_fds(a, err) < 0)
        return -1;
    rc = lp_sync_all(a->fds, a->ntouched, &bad);
    return sync_done(a, rc, bad, err);
}

int lp_archive_sync_start(struct lp_archive *a, char *err)
{
    if (sync_fds(a, err) < 0)
        return -1;
    lp_sync_start(a->fds, a->ntouched);
    return 0;
}

int lp_archive_sync_finish(struct lp_archive *a, char *err)
{
    size_t bad = 0;
    int rc;

    if (a->j) {
        /* journal mode: the batch's commit (lp_archive_async); one that
         * lp_archive_flush_all finished and found failed is kept */
        struct lp_afile *f = a->direct;
        if (!a->committing)
            return kept_failure(a, err);
        a->committing = 0;
        a->direct = NULL;
        if (f == NULL)
            rc = lp_journal_commit_finish(a->j, err);
        else if ((rc = lp_sync_lane_wait(&bad)) < 0) {
            int e = errno;
            snprintf(err, LP_ERRLEN, "%s%s: fsync: %s", f->path,
                     bad ? " (a directory made for it)" : "", strerror(e));
            errno = e;
        } else
            f->dirsync = 0;     /* its directories were in the lane */
        return rc;
    }
    rc = lp_sync_wait(&bad);

    return sync_done(a, rc, bad, err);
}

void lp_archive_discard_locked(struct lp_archive *a)
{
    unlock_all(a, a->ntouched);
    lp_archive_discard(a);
}

void lp_archive_discard(struct lp_archive *a)
{
    for (size_t i = 0; i < a->ntouched; i++) {
        a->touched[i]->pend.len = 0;
        a->touched[i]->nchecks = 0;
        a->touched[i]->touched = 0;
        a->touched[i]->mustsync = 0;
        a->touched[i]->locked = 0;
    }
    a->ntouched = 0;
}

/* ---- journal mode: epochs ---------------------------------------------- */

void lp_archive_set_journal(struct lp_archive *a, struct lp_journal *j,
                            int64_t stale_ms)
{
    a->j = j;
    a->stale_ms = stale_ms;
    a->hold_low = LP_HOLD_LOW;
    a->epoch_ms = LP_EPOCH_MS;
    a->sealed_at = lp_mono_ms();
    a->jadded = 0;
}

/* Seals the journal and starts syncing every file written before the
 * seal, in the pool. Lines held since before the last seal are written
 * first; those held since are left held, and so are the journal's
 * segments from the last seal on (a->jcut). 0, or -1 with err (out of
 * memory). */
static int epoch_start(struct lp_archive *a, char *err)
{
    size_t want, k = 0, nd = 0;
    int holding = 0;

    /* lines that could not be written (a file that cannot be reopened)
     * keep the journal */
    if (put_aged(a, err) < 0)
        return -1;
    for (size_t i = 0; i < a->ndirty; i++)
        if (a->dirty[i]->hold.len) {
            if (a->dirty[i]->hold_mark < a->seal_mark) {
                snprintf(err, LP_ERRLEN, "%s: %zu bytes of lines could not "
                         "be written: the journal keeps them",
                         a->dirty[i]->path, a->dirty[i]->hold.len);
                errno = EIO;
                return -1;
            }
            holding = 1;
        }
    /* files closed since they were written, trusting a syncfs, and
     * syncfs may not be used any more (a file system mounted below
     * --dir was found since): theirs now, then a sync per file */
    if (a->need_fs && !a->syncfs_ok) {
        if (syncfs(a->dirfd) < 0) {
            snprintf(err, LP_ERRLEN, "the archive's file system (syncfs): "
                     "%s", strerror(errno));
            return -1;
        }
        a->need_fs = 0;
    }
    want = a->ndirty + a->norph;

    if (want > a->capjob) {
        int *fds = realloc(a->jfds, want * sizeof *fds);
        if (fds)
            a->jfds = fds;
        struct lp_afile **fs = realloc(a->jfiles, want * sizeof *fs);
        if (fs)
            a->jfiles = fs;
        if (fds == NULL || fs == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            errno = ENOMEM;
            return -1;
        }
        a->capjob = want;
    }
    a->jmark = lp_journal_seal(a->j);
    /* the segments of the lines still held stay: from the last seal on */
    a->jcut = holding ? a->seal_mark : a->jmark;
    a->seal_mark = a->jmark;
    a->put_due = 0;
    a->epochs++;                /* its job syncs the directories deferred */
    for (size_t i = 0; i < a->ndirty; i++) {
        struct lp_afile *f = a->dirty[i];
        f->wrote = 0;
        /* a file holding lines stays dirty: they are written later */
        if (f->hold.len) {
            f->dslot = nd;
            a->dirty[nd++] = f;
        } else {
            f->dirty = 0;
        }
        if (f->fd < 0)
            continue;           /* closed trusting this syncfs (need_fs) */
        f->insync = 1;
        f->jslot = k;
        a->jfiles[k] = f;
        a->jfds[k++] = f->fd;
    }
    a->ndirty = nd;
    for (size_t i = 0; i < a->norph; i++)
        if (a->orph[i].state == O_NEXT) {
            a->orph[i].state = O_JOB;
            a->jfiles[k] = NULL;
            /* a directory is fsynced (lp_sync.h) */
            a->jfds[k++] = a->orph[i].dir ? -1 - a->orph[i].fd
                                          : a->orph[i].fd;
        }
    a->njob = k;
    a->job = 1;
    a->jadded = 0;
    dirs_forget(a);
    a->sealed_at = lp_mono_ms();
    /* many files: one syncfs writes them all, their directories and
     * inodes, with one cache flush, where a sync per file costs a flush
     * per file (logpipe(7), DELIVERY GUARANTEES, logpipe-drain) */
    a->jfs = (k >= LP_SYNCFS_FILES || a->need_fs) && a->syncfs_ok;
    a->need_fs = 0;
    if (a->jfs)
        lp_sync_fs_start(&a->dirfd);
    else
        lp_sync_start(a->jfds, k);
    return 0;
}

/* Waits for the running epoch's sync, closes the descriptors kept for
 * it, and cuts the journal behind its seal. 0, or -1 with err and errno
 * (the journal keeps its records then). */
static int epoch_end(struct lp_archive *a, char *err)
{
    size_t bad = 0, k = 0;
    int rc = lp_sync_wait(&bad), e = errno;
    const char *who = NULL;

    if (rc < 0 && a->jfs && (e == ENOSYS || e == EPERM)) {
        /* no syncfs here (a seccomp filter): not a failed write; each
         * file then, from now on */
        a->syncfs_ok = 0;
        a->jfs = 0;
        lp_sync_start(a->jfds, a->njob);
        rc = lp_sync_wait(&bad);
        e = errno;
    }
    a->job = 0;
    if (rc < 0 && a->jfs)
        who = "the archive's file system (syncfs)";
    else if (rc < 0 && bad < a->njob && a->jfiles[bad])
        who = a->jfiles[bad]->path;
    for (size_t i = 0; rc < 0 && who == NULL && i < a->norph; i++)
        if (a->orph[i].state == O_JOB && bad < a->njob &&
            (a->orph[i].fd == a->jfds[bad] ||
             -1 - a->orph[i].fd == a->jfds[bad]))
            who = a->orph[i].path;
    if (rc < 0 && who == NULL)
        who = "a file closed since";
    for (size_t i = 0; i < a->njob; i++)
        if (a->jfiles[i])
            a->jfiles[i]->insync = 0;
    a->njob = 0;
    if (rc < 0)
        snprintf(err, LP_ERRLEN, "%s: fsync: %s", who, strerror(e));
    for (size_t i = 0; i < a->norph; i++) {
        if (a->orph[i].state == O_JOB) {
            close(a->orph[i].fd);
            free(a->orph[i].path);
        } else {
            a->orph[k++] = a->orph[i];
        }
    }
    a->norph = k;
    if (rc < 0) {
        errno = e;
        return -1;
    }
    a->synced_epochs = a->epochs;
    if (a->jfs)
        a->syncfs_proven = 1;
    return lp_journal_cut(a->j, a->jcut, err);
}

int lp_archive_flush(struct lp_archive *a, char *err)
{
    int due;

    if (a->j == NULL || a->committing)
        return 0;               /* no seal under a commit still syncing */
    if (kept_failure(a, err) < 0)
        return -1;
    if (a->job) {
        /* a journal that grows past twice the bound waits for it */
        if (lp_sync_busy() && a->jadded < 2 * LP_EPOCH_BYTES)
            return 0;
        if (epoch_end(a, err) < 0)
            return -1;
    }
    due = a->jadded >= LP_EPOCH_BYTES || a->put_due ||
          (lp_mono_ms() - a->sealed_at >= a->epoch_ms &&
           (a->ndirty || a->norph || a->jadded || a->need_fs));
    return due ? epoch_start(a, err) : 0;
}

void lp_archive_defer_dirs(struct lp_archive *a, int on)
{
    a->defer_dirs = on;
}

int lp_archive_sync_dirs(struct lp_archive *a, char *err)
{
    int rc = 0;

    for (size_t i = 0; i < a->norph; i++) {
        int fd = a->orph[i].fd;
        if (rc == 0 && (a->orph[i].dir ? fsync(fd) : fdatasync(fd)) < 0) {
            snprintf(err, LP_ERRLEN, "%s: fsync: %s",
                     a->orph[i].path ? a->orph[i].path : "a directory",
                     strerror(errno));
            rc = -1;
        }
        close(fd);
        free(a->orph[i].path);
    }
    a->norph = 0;
    dirs_forget(a);
    return rc;
}

const uint64_t *lp_archive_opens(const struct lp_archive *a)
{
    return &a->opens;
}

int64_t lp_archive_commit_us(const struct lp_archive *a)
{
    return a->commit_us;
}

void lp_archive_async(struct lp_archive *a, int on)
{
    a->async = on;
}

void lp_archive_hold(struct lp_archive *a, int ok, int64_t since)
{
    a->nohold = !ok;
    a->hold_since = since;
}

int lp_archive_busy(const struct lp_archive *a)
{
    return a->j && (a->job || a->committing || a->ndirty || a->norph ||
                    a->held || a->need_fs || lp_journal_bytes(a->j) > 0);
}

/* An epoch now, waited for: after the running one; with all, every line
 * held written first, so that it cuts the journal whole. */
static int epoch_now(struct lp_archive *a, int all, char *err)
{
    if (kept_failure(a, err) < 0)
        return -1;
    /* written while the running epoch syncs, as the batches' are */
    if (all && put_all_held(a, err) < 0)
        return -1;
    if (a->job && epoch_end(a, err) < 0)
        return -1;
    if (all && a->held) {
        snprintf(err, LP_ERRLEN, "%zu bytes of lines could not be written "
                 "to their files: the journal keeps them", a->held);
        errno = EIO;
        return -1;
    }
    if (epoch_start(a, err) < 0)
        return -1;
    return epoch_end(a, err);
}

int lp_archive_flush_all(struct lp_archive *a, char *err)
{
    if (a->j == NULL)
        return 0;
    if (a->committing && lp_archive_sync_finish(a, err) < 0) {
        /* kept: lp_archive_sync_finish says it again, for the batch */
        if (!a->failed) {
            a->failed = errno ? errno : EIO;
            snprintf(a->ferr, sizeof a->ferr, "%s", err);
        }
        return -1;
    }
    return epoch_now(a, 1, err);
}

int lp_archive_epoch(struct lp_archive *a, char *err)
{
    if (a->j == NULL || a->committing)
        return 0;
    return epoch_now(a, 0, err);
}

void lp_archive_tune(struct lp_archive *a, int64_t epoch_ms,
                     size_t hold_low)
{
    a->epoch_ms = epoch_ms >= 0 ? epoch_ms : LP_EPOCH_MS;
    a->hold_low = hold_low ? hold_low : LP_HOLD_LOW;
}

size_t lp_archive_held(const struct lp_archive *a)
{
    return a->held;
}
