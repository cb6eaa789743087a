/* lp_follow.c -- files followed by name and glob, each line with its file's
 * identity and the position after it */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lp_follow.h"

enum {
    KNOWN,                      /* a position handed in, file not found yet */
    LIVE,                       /* found under a name at the last walk */
    ORPHAN,                     /* open, found under no name: drained */
    GONE                        /* found nowhere, closed: to forget */
};

struct ent {
    struct ent *hnext;          /* chain of its inode's bucket */
    struct ent *qnext;          /* the queue of files to read */
    struct ent *prev, *next;    /* every entry */
    dev_t dev;
    ino_t ino;
    uint64_t fphash;
    uint32_t fplen, gen;
    int fpset;                  /* fingerprint decided (id is valid) */
    int state, fd;
    int in_pattern;             /* its name matches a pattern */
    int seen;                   /* found by the walk in hand */
    int queued, skipping, warned, said_rotated;
    int retry;                  /* could not be read: again at the walk */
    uint64_t pos;               /* offset after the last line given */
    uint64_t seq;               /* the caller's number for the identity
                                   (lp_follow_line.seq), 0 at first */
    uint64_t size;              /* size last seen */
    uint64_t grew;              /* ms: when size last changed */
    uint64_t used;              /* ms: last read, for closing the oldest */
    uint64_t gone_at;           /* ms: when GONE */
    char *path;                 /* where last found (malloc'd), or NULL */
    char id[LP_FOLLOW_IDLEN];
};

struct pat {
    char *dir;                  /* the directory part, maybe a glob */
    char *base;                 /* the last component, maybe a glob */
    int dir_glob;
};

struct dir {
    char *path;
    int wd;                     /* inotify watch, or -1 */
    int live;                   /* named by a pattern at the last walk */
    size_t *pats, npats, cpats;
};

struct lp_follow {
    struct pat *pats;
    size_t npats;
    size_t max_open, bufsize;
    uint64_t partial_ms, rotate_ms, poll_ms, forget_ms;
    int from_end;
    struct lp_notify nt;

    int ifd;                    /* inotify, or -1 */
    struct dir *dirs;
    size_t ndirs, cdirs;

    struct ent **tab;           /* by inode */
    size_t tabsz, nent;
    struct ent *all;            /* list of every entry */
    struct ent *qhead, *qtail;
    size_t nopen, nfiles;

    char *buf;                  /* the one read buffer */
    size_t blen, bpos;
    uint64_t boff;              /* file offset of buf[0] */
    struct ent *cur;            /* whose bytes buf holds */

    int started;
    uint64_t last_walk, next_walk, next_timer;
    char forget_id[LP_FOLLOW_IDLEN];
    char *forget_path;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void set_id(struct ent *e)
{
    snprintf(e->id, sizeof e->id, "%jx-%jx-%" PRIx32 "-%016" PRIx64
             "-%" PRIx32, (uintmax_t)e->dev, (uintmax_t)e->ino, e->fplen,
             e->fphash, e->gen);
}

static const char *name_of(const struct ent *e)
{
    return e->path ? e->path : e->id;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* A file grew at now: its partial line and its rotate wait are due from
 * then. */
static void grew_timer(struct lp_follow *f, uint64_t now)
{
    f->next_timer = min64(f->next_timer,
                          now + min64(f->partial_ms, f->rotate_ms));
}

/* Entries of a directory changed: a walk, but at most one every
 * WALK_GAP_MS (a directory where files come and go all the time costs a
 * walk per gap, not one per event). */
#define WALK_GAP_MS 20

static void walk_soon(struct lp_follow *f)
{
    f->next_walk = min64(f->next_walk, f->last_walk + WALK_GAP_MS);
}

/* ---- the table of entries, by inode ------------------------------------ */

static size_t bucket(const struct lp_follow *f, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL;

    return (size_t)(h >> 32) & (f->tabsz - 1);
}

static int tab_grow(struct lp_follow *f)
{
    size_t n = f->tabsz ? f->tabsz * 2 : 64, i, old = f->tabsz;
    struct ent **t = calloc(n, sizeof *t), **ot = f->tab;

    if (t == NULL)
        return -1;
    f->tab = t;
    f->tabsz = n;
    for (i = 0; i < old; i++) {
        struct ent *e = ot[i], *nx;
        for (; e; e = nx) {
            size_t b = bucket(f, e->ino);
            nx = e->hnext;
            e->hnext = t[b];
            t[b] = e;
        }
    }
    free(ot);
    return 0;
}

/* A new entry, in the table and the list; NULL when out of memory. */
static struct ent *ent_new(struct lp_follow *f, dev_t dev, ino_t ino)
{
    struct ent *e;
    size_t b;

    if (f->nent + 1 > f->tabsz && tab_grow(f) < 0)
        return NULL;
    if ((e = calloc(1, sizeof *e)) == NULL)
        return NULL;
    e->dev = dev;
    e->ino = ino;
    e->fd = -1;
    b = bucket(f, ino);
    e->hnext = f->tab[b];
    f->tab[b] = e;
    e->next = f->all;
    if (f->all)
        f->all->prev = e;
    f->all = e;
    f->nent++;
    return e;
}

static int tracked_ino(const struct lp_follow *f, ino_t ino)
{
    const struct ent *e;

    for (e = f->tab[bucket(f, ino)]; e; e = e->hnext)
        if (e->ino == ino)
            return 1;
    return 0;
}

/* The highest generation of any entry of dev/ino, or -1. */
static long max_gen(const struct lp_follow *f, dev_t dev, ino_t ino)
{
    const struct ent *e;
    long g = -1;

    for (e = f->tab[bucket(f, ino)]; e; e = e->hnext)
        if (e->ino == ino && e->dev == dev && (long)e->gen > g)
            g = e->gen;
    return g;
}

static void ent_close(struct lp_follow *f, struct ent *e)
{
    if (e->fd >= 0) {
        close(e->fd);
        e->fd = -1;
        f->nopen--;
    }
    if (f->cur == e) {
        f->cur = NULL;
        f->blen = f->bpos = 0;
    }
}

static void unqueue(struct lp_follow *f, struct ent *e)
{
    struct ent **pp;

    if (!e->queued)
        return;
    for (pp = &f->qhead; *pp; pp = &(*pp)->qnext)
        if (*pp == e) {
            *pp = e->qnext;
            break;
        }
    f->qtail = NULL;
    for (struct ent *q = f->qhead; q; q = q->qnext)
        f->qtail = q;
    e->queued = 0;
    e->qnext = NULL;
}

static void set_state(struct lp_follow *f, struct ent *e, int state);

static void ent_free(struct lp_follow *f, struct ent *e)
{
    struct ent **pp;

    set_state(f, e, GONE);
    ent_close(f, e);
    unqueue(f, e);
    for (pp = &f->tab[bucket(f, e->ino)]; *pp; pp = &(*pp)->hnext)
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    if (e->prev)
        e->prev->next = e->next;
    else
        f->all = e->next;
    if (e->next)
        e->next->prev = e->prev;
    f->nent--;
    free(e->path);
    free(e);
}

static void enqueue(struct lp_follow *f, struct ent *e)
{
    if (e->queued)
        return;
    e->queued = 1;
    e->qnext = NULL;
    if (f->qtail)
        f->qtail->qnext = e;
    else
        f->qhead = e;
    f->qtail = e;
}

static struct ent *dequeue(struct lp_follow *f)
{
    struct ent *e = f->qhead;

    if (e) {
        f->qhead = e->qnext;
        if (f->qhead == NULL)
            f->qtail = NULL;
        e->queued = 0;
        e->qnext = NULL;
    }
    return e;
}

static void set_state(struct lp_follow *f, struct ent *e, int state)
{
    int was = e->state == LIVE, is = state == LIVE;

    if (was != is)
        f->nfiles += is ? 1 : (size_t)-1;
    e->state = state;
}

/* ---- fingerprints ------------------------------------------------------ */

/* Reads the first min(size, LP_FOLLOW_FPLEN) bytes of fd into p; returns
 * how many, or -1. */
static long head_of(int fd, unsigned char *p, uint64_t size)
{
    size_t want = size < LP_FOLLOW_FPLEN ? (size_t)size : LP_FOLLOW_FPLEN;
    size_t got = 0;

    while (got < want) {
        ssize_t n = pread(fd, p + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (long)got;
}

/* Does e's fingerprint match the head p[0..n)? */
static int fp_match(const struct ent *e, const unsigned char *p, long n)
{
    return e->fpset && (long)e->fplen <= n && fnv(p, e->fplen) == e->fphash;
}

/* Hands out e's current identity as one to forget, and gives e the next
 * generation with no fingerprint yet. Returns -1 when out of memory. */
static int retire_id(struct lp_follow *f, struct ent *e, uint64_t now)
{
    struct ent *old;

    if (e->fpset) {
        if ((old = ent_new(f, e->dev, e->ino)) == NULL)
            return -1;
        old->fphash = e->fphash;
        old->fplen = e->fplen;
        old->gen = e->gen;
        old->fpset = 1;
        old->pos = e->pos;
        old->seq = e->seq;
        old->state = GONE;
        old->gone_at = now;
        f->next_timer = min64(f->next_timer, now + f->forget_ms);
        memcpy(old->id, e->id, sizeof old->id);
        if (e->path && (old->path = strdup(e->path)) == NULL)
            return -1;
    }
    e->gen = (uint32_t)(max_gen(f, e->dev, e->ino) + 1);
    e->fpset = 0;
    e->fplen = 0;
    e->fphash = 0;
    e->pos = 0;
    e->seq = 0;
    e->skipping = 0;
    e->id[0] = '\0';
    return 0;
}

/* ---- opening ----------------------------------------------------------- */

/* Closes the least recently read open file that can be opened again by
 * its name (not an orphan, not keep). Returns 0, or -1 if none. */
static int evict(struct lp_follow *f, const struct ent *keep)
{
    struct ent *e, *v = NULL;

    for (e = f->all; e; e = e->next)
        if (e->fd >= 0 && e != keep && e->state == LIVE && e->path &&
            (v == NULL || (e->queued < v->queued ||
                           (e->queued == v->queued && e->used < v->used))))
            v = e;
    if (v == NULL)
        return -1;
    ent_close(f, v);
    return 0;
}

/* Opens e by its name. Returns 1, or 0 when it cannot now (said once
 * when it is not simply gone). */
static int ent_open(struct lp_follow *f, struct ent *e)
{
    struct stat st;
    int fd;

    if (e->fd >= 0)
        return 1;
    if (e->path == NULL || e->state != LIVE)
        return 0;
    if (f->nopen >= f->max_open && evict(f, e) < 0)
        return 0;               /* the next walk or timer tries again */
    fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            walk_soon(f);
        } else if (!e->warned) {
            e->warned = 1;
            lp_notice(&f->nt, LP_NOTICE_WARN, "%s: %s", e->path,
                      strerror(errno));
        }
        return 0;
    }
    if (fstat(fd, &st) < 0 || st.st_dev != e->dev || st.st_ino != e->ino) {
        /* the name is another file's now: where ours is, a walk says */
        close(fd);
        walk_soon(f);
        return 0;
    }
    e->warned = 0;
    e->fd = fd;
    f->nopen++;
    return 1;
}

/* ---- reading ----------------------------------------------------------- */

/*
 * Reads what e has after its position into the buffer. Returns 1 when the
 * buffer holds e's bytes, 0 when there is nothing to read, -1 when out of
 * memory.
 */
static int fill(struct lp_follow *f, struct ent *e, uint64_t now)
{
    struct stat st;
    ssize_t n;
    int rc;

    /* until it is read, a walk queues it again: a file renamed between
     * the walk that saw it grow and its open (its name is another file's
     * now) is found under its new name with the size seen already */
    e->retry = 1;
    if ((rc = ent_open(f, e)) <= 0)
        return rc;
    if (fstat(e->fd, &st) < 0)
        return 0;
    if ((uint64_t)st.st_size != e->size) {
        e->size = (uint64_t)st.st_size;
        e->grew = now;
        grew_timer(f, now);
    }
    if (e->size < e->pos) {
        lp_notice(&f->nt, LP_NOTICE_WARN,
                  "%s: truncated to %" PRIu64 " bytes (was read to %" PRIu64
                  "): read again from its start", name_of(e), e->size,
                  e->pos);
        if (retire_id(f, e, now) < 0)
            return -1;
    }
    /* first bytes that are not the fingerprint: an inode reused, or the
     * file cut back and written again past its position (at most 1 KiB
     * read again each time: a copytruncate is found whenever the new
     * first bytes differ) */
    if (e->size > 0) {
        unsigned char head[LP_FOLLOW_FPLEN];
        long h = head_of(e->fd, head,
                         e->fpset ? min64(e->size, e->fplen) : e->size);
        if (h <= 0)
            return 0;
        if (e->fpset && !fp_match(e, head, h)) {
            lp_notice(&f->nt, LP_NOTICE_WARN,
                      "%s: not the file it was (its first bytes differ): "
                      "read from its start as a new file", name_of(e));
            if (retire_id(f, e, now) < 0)
                return -1;
        }
        if (!e->fpset) {
            e->fplen = (uint32_t)h;
            e->fphash = fnv(head, (size_t)h);
            e->fpset = 1;
            set_id(e);
        }
    }
    if (e->pos >= e->size) {
        e->retry = 0;
        return 0;
    }
    e->used = now;
    do
        n = pread(e->fd, f->buf, f->bufsize, (off_t)e->pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0;
    e->retry = 0;
    if (e->pos + (uint64_t)n > e->size) {
        e->size = e->pos + (uint64_t)n;
        e->grew = now;
        grew_timer(f, now);
    }
    f->cur = e;
    f->boff = e->pos;
    f->blen = (size_t)n;
    f->bpos = 0;
    return 1;
}

/*
 * The next line of the buffer into out: LP_FOLLOW_LINE or _LONG, or 0
 * when the buffer is done with (what is left, a line not ended yet, is
 * read again from e->pos next time).
 */
static int take_line(struct lp_follow *f, struct lp_follow_line *out,
                     uint64_t now)
{
    struct ent *e = f->cur;
    char *p = f->buf + f->bpos, *nl;
    size_t avail = f->blen - f->bpos, len, skip;
    int partial = 0, rc = LP_FOLLOW_LINE;

    if (avail == 0)
        return 0;
    nl = memchr(p, '\n', avail);
    if (nl) {
        len = (size_t)(nl - p);
        skip = len + 1;
    } else if (f->bpos == 0 && f->blen == f->bufsize) {
        /* no end in the whole buffer: a chunk of a long line */
        len = skip = avail;
        rc = LP_FOLLOW_LONG;
    } else if (f->bpos == 0 && now - e->grew >= f->partial_ms) {
        len = skip = avail;     /* no newline and no growth: a line */
        partial = 1;
    } else {
        return 0;
    }
    out->start = f->boff + f->bpos;
    out->end = out->start + skip;
    out->first = out->last = 0;
    if (rc == LP_FOLLOW_LONG) {
        out->first = !e->skipping;
        e->skipping = 1;
    } else if (e->skipping) {
        rc = LP_FOLLOW_LONG;    /* the end of a long line */
        out->last = 1;
        e->skipping = 0;
    } else if (len > 0 && p[len - 1] == '\r') {
        len--;
    }
    if (out->start == 0 && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
        len -= 3;
    }
    out->p = p;
    out->len = len;
    out->partial = partial;
    out->id = e->id;
    out->path = name_of(e);
    out->seq = &e->seq;
    f->bpos += skip;
    e->pos = out->end;
    return rc;
}

/* The buffer is done with: e takes its turn again when it may have more. */
static void chunk_done(struct lp_follow *f)
{
    struct ent *e = f->cur;

    /* a full read: there may be more (a rest after the lines taken
     * waits for the file to grow or for partial_ms) */
    if (e && f->blen == f->bufsize)
        enqueue(f, e);
    f->cur = NULL;
    f->blen = f->bpos = 0;
}

/* ---- walking the directories ------------------------------------------- */

static int has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static struct dir *dir_get(struct lp_follow *f, const char *path)
{
    struct dir *d;
    size_t i;

    for (i = 0; i < f->ndirs; i++)
        if (strcmp(f->dirs[i].path, path) == 0)
            return &f->dirs[i];
    if (f->ndirs == f->cdirs) {
        size_t n = f->cdirs ? f->cdirs * 2 : 8;
        if ((d = realloc(f->dirs, n * sizeof *d)) == NULL)
            return NULL;
        f->dirs = d;
        f->cdirs = n;
    }
    d = &f->dirs[f->ndirs];
    memset(d, 0, sizeof *d);
    if ((d->path = strdup(path)) == NULL)
        return NULL;
    d->wd = -1;
    f->ndirs++;
    return d;
}

static int dir_add_pat(struct dir *d, size_t pi)
{
    size_t i;

    for (i = 0; i < d->npats; i++)
        if (d->pats[i] == pi)
            return 0;
    if (d->npats == d->cpats) {
        size_t n = d->cpats ? d->cpats * 2 : 4;
        size_t *p = realloc(d->pats, n * sizeof *p);
        if (p == NULL)
            return -1;
        d->pats = p;
        d->cpats = n;
    }
    d->pats[d->npats++] = pi;
    return 0;
}

#define WATCH (IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | \
               IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* The directories the patterns name now, each watched. */
static int dirs_refresh(struct lp_follow *f)
{
    size_t i, j;

    for (i = 0; i < f->ndirs; i++) {
        f->dirs[i].live = 0;
        f->dirs[i].npats = 0;
    }
    for (i = 0; i < f->npats; i++) {
        struct pat *p = &f->pats[i];
        glob_t g;
        char **v = &p->dir;
        size_t n = 1;

        memset(&g, 0, sizeof g);
        if (p->dir_glob) {
            if (glob(p->dir, GLOB_ONLYDIR, NULL, &g) != 0) {
                globfree(&g);
                continue;
            }
            v = g.gl_pathv;
            n = g.gl_pathc;
        }
        for (j = 0; j < n; j++) {
            struct dir *d = dir_get(f, v[j]);
            if (d == NULL || dir_add_pat(d, i) < 0) {
                if (p->dir_glob)
                    globfree(&g);
                return -1;
            }
            d->live = 1;
        }
        if (p->dir_glob)
            globfree(&g);
    }
    for (i = 0; i < f->ndirs;) {
        struct dir *d = &f->dirs[i];
        if (!d->live) {
            if (d->wd >= 0 && f->ifd >= 0)
                inotify_rm_watch(f->ifd, d->wd);
            free(d->path);
            free(d->pats);
            f->dirs[i] = f->dirs[--f->ndirs];
            continue;
        }
        if (d->wd < 0 && f->ifd >= 0)
            d->wd = inotify_add_watch(f->ifd, d->path, WATCH);
        i++;
    }
    return 0;
}

static int name_matches(const struct lp_follow *f, const struct dir *d,
                        const char *name)
{
    size_t i;

    for (i = 0; i < d->npats; i++)
        if (fnmatch(f->pats[d->pats[i]].base, name, FNM_PERIOD) == 0)
            return 1;
    return 0;
}

static int set_path(struct ent *e, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p;

    if (e->path && strncmp(e->path, dir, dl) == 0 && e->path[dl] == '/' &&
        strcmp(e->path + dl + 1, name) == 0)
        return 0;
    if ((p = malloc(dl + nl + 2)) == NULL)
        return -1;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    free(e->path);
    e->path = p;
    return 0;
}

/* A size seen by a walk or an event: e is read when it changed. */
static void saw_size(struct lp_follow *f, struct ent *e, uint64_t size,
                     uint64_t now)
{
    if (size != e->size) {
        e->size = size;
        e->grew = now;
        enqueue(f, e);
        grew_timer(f, now);
    }
}

/*
 * The file st, found as dir/name by a walk: which entry it is (one open
 * or found already; else a position handed in or a file gone whose
 * fingerprint its first bytes are, the highest generation; else a new
 * one when its name matches). Returns 0 or -1 when out of memory.
 */
static int found(struct lp_follow *f, const struct dir *d, const char *name,
                 const struct stat *st, int match, int first, uint64_t now)
{
    struct ent *e, *hit = NULL;
    int any_past = 0;

    for (e = f->tab[bucket(f, st->st_ino)]; e; e = e->hnext) {
        if (e->ino != st->st_ino || e->dev != st->st_dev)
            continue;
        if (e->state == LIVE || e->state == ORPHAN) {
            hit = e;
            break;
        }
        any_past = 1;
    }
    if (hit && hit->seen) {     /* a second name (a hard link) */
        hit->in_pattern |= match;
        return 0;
    }
    if (hit == NULL && any_past) {
        unsigned char head[LP_FOLLOW_FPLEN];
        char path[PATH_MAX];
        long n = -1;
        int fd;

        snprintf(path, sizeof path, "%s/%s", d->path, name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) >= 0) {
            struct stat fst;
            if (fstat(fd, &fst) == 0 && fst.st_ino == st->st_ino &&
                fst.st_dev == st->st_dev)
                n = head_of(fd, head, (uint64_t)fst.st_size);
            close(fd);
        }
        if (n < 0)
            return 0;           /* the next walk sees it again */
        for (e = f->tab[bucket(f, st->st_ino)]; e; e = e->hnext)
            if (e->ino == st->st_ino && e->dev == st->st_dev &&
                (e->state == KNOWN || e->state == GONE) &&
                fp_match(e, head, n) && (hit == NULL || e->gen > hit->gen))
                hit = e;
        if (hit) {
            hit->size = 0;      /* compared with st_size below */
            hit->grew = now;
            if (hit->state == GONE)
                lp_notice(&f->nt, LP_NOTICE_INFO,
                          "%s: found again, read on from %" PRIu64,
                          path, hit->pos);
        }
    }
    if (hit == NULL) {
        long g;
        if (!match)
            return 0;
        g = max_gen(f, st->st_dev, st->st_ino);
        if ((hit = ent_new(f, st->st_dev, st->st_ino)) == NULL)
            return -1;
        hit->gen = (uint32_t)(g + 1);
        hit->grew = now;
        if (first && f->from_end) {
            hit->pos = hit->size = (uint64_t)st->st_size;
        }
        hit->state = KNOWN;     /* made LIVE below */
        if (!first)
            lp_notice(&f->nt, LP_NOTICE_INFO, "%s/%s: new file, followed",
                      d->path, name);
    }
    if (set_path(hit, d->path, name) < 0)
        return -1;
    set_state(f, hit, LIVE);
    hit->seen = 1;
    hit->in_pattern = match;
    saw_size(f, hit, (uint64_t)st->st_size, now);
    return 0;
}

/* A directory that could not be read this time (no descriptor left,
 * EACCES for a while): its files count as found where they were, rather
 * than as gone. */
static void keep_dir(struct lp_follow *f, const struct dir *d, uint64_t now)
{
    size_t dl = strlen(d->path);
    struct ent *e;

    for (e = f->all; e; e = e->next) {
        struct stat st;
        if (e->state != LIVE || e->path == NULL ||
            strncmp(e->path, d->path, dl) != 0 || e->path[dl] != '/' ||
            strchr(e->path + dl + 1, '/') != NULL)
            continue;
        e->seen = 1;
        if (e->fd >= 0 ? fstat(e->fd, &st) == 0 :
            stat(e->path, &st) == 0 && st.st_dev == e->dev &&
            st.st_ino == e->ino)
            saw_size(f, e, (uint64_t)st.st_size, now);
    }
}

/* Walks the directories: every file a pattern matches, and every entry
 * whose inode is one we track; then what was not found is orphaned (open)
 * or gone (closed). Returns 0 or -1 when out of memory. */
static int walk(struct lp_follow *f, uint64_t now)
{
    int first = !f->started;
    struct ent *e;
    size_t i;

    f->last_walk = now;
    f->next_walk = now + f->poll_ms;
    f->next_timer = 0;
    if (dirs_refresh(f) < 0)
        return -1;
    for (e = f->all; e; e = e->next)
        e->seen = 0;
    for (i = 0; i < f->ndirs; i++) {
        const struct dir *d = &f->dirs[i];
        struct dirent *de;
        DIR *dp;
        int dfd;

        if ((dp = opendir(d->path)) == NULL) {
            if (errno != ENOENT && errno != ENOTDIR)
                keep_dir(f, d, now);
            continue;
        }
        dfd = dirfd(dp);
        while ((de = readdir(dp)) != NULL) {
            struct stat st;
            int match;

            if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
                (de->d_name[1] == '.' && de->d_name[2] == '\0')))
                continue;
            match = name_matches(f, d, de->d_name);
            if (!match && !tracked_ino(f, de->d_ino))
                continue;
            if (fstatat(dfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                continue;
            if (found(f, d, de->d_name, &st, match, first, now) < 0) {
                closedir(dp);
                return -1;
            }
        }
        closedir(dp);
    }
    for (e = f->all; e; e = e->next) {
        struct stat st;

        if (e->seen && e->retry)
            enqueue(f, e);
        if (e->seen)
            continue;
        if (e->state == LIVE && e->fd >= 0) {
            set_state(f, e, ORPHAN);
            e->in_pattern = 0;
        } else if (e->state == LIVE || e->state == KNOWN) {
            set_state(f, e, GONE);
            e->gone_at = now;
            ent_close(f, e);
            unqueue(f, e);
        }
        if (e->state == ORPHAN && fstat(e->fd, &st) == 0)
            saw_size(f, e, (uint64_t)st.st_size, now);
    }
    return 0;
}

/* Reads what inotify has: a file written is looked at, a directory's
 * entries changing asks for a walk. */
static void events(struct lp_follow *f, uint64_t now)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    while ((n = read(f->ifd, buf, sizeof buf)) > 0) {
        char *p = buf;
        while (p < buf + n) {
            const struct inotify_event *ev = (const void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                /* the directory went (or moved, and its watch with it):
                 * the walk watches whatever has its name now */
                size_t i;
                for (i = 0; i < f->ndirs; i++)
                    if (f->dirs[i].wd == ev->wd) {
                        if (!(ev->mask & IN_IGNORED))
                            inotify_rm_watch(f->ifd, ev->wd);
                        f->dirs[i].wd = -1;
                    }
                walk_soon(f);
                continue;
            }
            if (ev->mask & (IN_Q_OVERFLOW | IN_CREATE | IN_MOVED_FROM |
                            IN_MOVED_TO | IN_DELETE)) {
                walk_soon(f);
                continue;
            }
            if ((ev->mask & IN_MODIFY) && ev->len > 0) {
                char path[PATH_MAX];
                struct stat st;
                struct ent *e;
                size_t i;

                for (i = 0; i < f->ndirs; i++)
                    if (f->dirs[i].wd == ev->wd)
                        break;
                if (i == f->ndirs)
                    continue;
                snprintf(path, sizeof path, "%s/%s", f->dirs[i].path,
                         ev->name);
                if (stat(path, &st) < 0)
                    continue;
                for (e = f->tab[bucket(f, st.st_ino)]; e; e = e->hnext)
                    if (e->ino == st.st_ino && e->dev == st.st_dev &&
                        (e->state == LIVE || e->state == ORPHAN)) {
                        saw_size(f, e, (uint64_t)st.st_size, now);
                        if ((uint64_t)st.st_size < e->pos)
                            enqueue(f, e);
                        break;
                    }
            }
        }
    }
}

/* ---- timers ------------------------------------------------------------ */

/* What is due: partial lines, rotated files to close, positions to
 * forget (the first one due is returned). Sets next_timer. */
static struct ent *timers(struct lp_follow *f, uint64_t now)
{
    uint64_t next = UINT64_MAX, due;
    struct ent *e, *nx;

    for (e = f->all; e; e = nx) {
        nx = e->next;
        if (e->state == GONE) {
            due = e->gone_at + f->forget_ms;
            if (now >= due && e->fpset) {
                f->next_timer = 0;
                return e;
            }
            if (now >= due) {   /* never read: nothing was committed */
                ent_free(f, e);
                continue;
            }
            next = min64(next, due);
            continue;
        }
        if (e->state != LIVE && e->state != ORPHAN)
            continue;
        if (e->size > e->pos && !e->queued) {
            due = e->grew + f->partial_ms;
            if (now >= due)
                enqueue(f, e);
            else
                next = min64(next, due);
        }
        if (e->fd >= 0 && e->pos >= e->size &&
            (e->state == ORPHAN || !e->in_pattern)) {
            due = e->grew + f->rotate_ms;
            if (now < due) {
                next = min64(next, due);
                continue;
            }
            ent_close(f, e);
            if (e->state == ORPHAN) {
                lp_notice(&f->nt, LP_NOTICE_INFO,
                          "%s: gone, read to its end at %" PRIu64,
                          name_of(e), e->pos);
                set_state(f, e, GONE);
                e->gone_at = now;
                unqueue(f, e);
                next = min64(next, now + f->forget_ms);
            } else if (!e->said_rotated) {
                e->said_rotated = 1;
                lp_notice(&f->nt, LP_NOTICE_INFO,
                          "%s: rotated, read to its end at %" PRIu64,
                          name_of(e), e->pos);
            }
        }
    }
    f->next_timer = next;
    return NULL;
}

/* ---- the interface ----------------------------------------------------- */

struct lp_follow *lp_follow_new(const struct lp_follow_conf *c, char *err)
{
    struct lp_follow *f;
    size_t i;

    if ((f = calloc(1, sizeof *f)) == NULL)
        goto nomem;
    f->ifd = -1;
    f->max_open = c->max_open ? c->max_open : 256;
    f->bufsize = (c->max_line ? c->max_line : 1024 * 1024) + 1;
    f->partial_ms = c->partial_ms ? c->partial_ms : 5000;
    f->rotate_ms = c->rotate_wait_ms ? c->rotate_wait_ms : 5000;
    f->poll_ms = c->poll_ms ? c->poll_ms : 1000;
    f->forget_ms = c->forget_ms ? c->forget_ms : 24ULL * 3600 * 1000;
    f->from_end = c->from_end;
    f->nt = c->notify;
    if ((f->buf = malloc(f->bufsize)) == NULL || tab_grow(f) < 0)
        goto nomem;
    if ((f->pats = calloc(c->npatterns ? c->npatterns : 1,
                          sizeof *f->pats)) == NULL)
        goto nomem;
    for (i = 0; i < c->npatterns; i++) {
        const char *s = c->patterns[i], *slash = strrchr(s, '/');
        struct pat *p = &f->pats[i];

        if (*s == '\0' || (slash && slash[1] == '\0')) {
            snprintf(err, 1024, "'%s': not a file name or pattern", s);
            lp_follow_free(f);
            return NULL;
        }
        f->npats++;
        if (slash == NULL)
            p->dir = strdup(".");
        else if (slash == s)
            p->dir = strdup("/");
        else
            p->dir = strndup(s, (size_t)(slash - s));
        p->base = strdup(slash ? slash + 1 : s);
        if (p->dir == NULL || p->base == NULL)
            goto nomem;
        p->dir_glob = has_glob(p->dir);
    }
    if (!c->no_inotify &&
        (f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        lp_notice(&f->nt, LP_NOTICE_WARN, "inotify: %s: files are looked "
                  "at every %" PRIu64 " ms", strerror(errno), f->poll_ms);
    return f;
nomem:
    snprintf(err, 1024, "out of memory");
    lp_follow_free(f);
    return NULL;
}

void lp_follow_free(struct lp_follow *f)
{
    size_t i;

    if (f == NULL)
        return;
    while (f->all)
        ent_free(f, f->all);
    for (i = 0; i < f->npats; i++) {
        free(f->pats[i].dir);
        free(f->pats[i].base);
    }
    for (i = 0; i < f->ndirs; i++) {
        free(f->dirs[i].path);
        free(f->dirs[i].pats);
    }
    if (f->ifd >= 0)
        close(f->ifd);
    free(f->dirs);
    free(f->pats);
    free(f->tab);
    free(f->buf);
    free(f->forget_path);
    free(f);
}

int lp_follow_position(struct lp_follow *f, const char *id, uint64_t offset,
                       uint64_t seq, char *err)
{
    uintmax_t dev, ino;
    uint32_t fplen, gen;
    uint64_t hash;
    struct ent *e;
    int used = 0;

    if (sscanf(id, "%jx-%jx-%" SCNx32 "-%" SCNx64 "-%" SCNx32 "%n",
               &dev, &ino, &fplen, &hash, &gen, &used) != 5 ||
        id[used] != '\0' || fplen == 0 || fplen > LP_FOLLOW_FPLEN ||
        strlen(id) >= LP_FOLLOW_IDLEN) {
        snprintf(err, 1024, "'%s': not a file identity", id);
        return -1;
    }
    for (e = f->tab[bucket(f, (ino_t)ino)]; e; e = e->hnext)
        if (strcmp(e->id, id) == 0) {
            e->pos = offset;
            e->seq = seq;
            return 0;
        }
    if ((e = ent_new(f, (dev_t)dev, (ino_t)ino)) == NULL) {
        snprintf(err, 1024, "out of memory");
        return -1;
    }
    e->fplen = fplen;
    e->fphash = hash;
    e->gen = gen;
    e->fpset = 1;
    e->pos = offset;
    e->seq = seq;
    e->state = KNOWN;
    set_id(e);
    if (strcmp(e->id, id) != 0) {   /* as we write it, or another file's */
        snprintf(err, 1024, "'%s': not a file identity", id);
        ent_free(f, e);
        return -1;
    }
    return 0;
}

int lp_follow_next(struct lp_follow *f, struct lp_follow_line *out,
                   char *err)
{
    uint64_t now = now_ms();
    struct ent *e;
    int rc;

    memset(out, 0, sizeof *out);
    if (!f->started) {
        if (walk(f, now) < 0)
            goto nomem;
        f->started = 1;
    }
    for (;;) {
        if (f->cur) {
            if ((rc = take_line(f, out, now)) != 0)
                return rc;
            chunk_done(f);
        }
        if (f->ifd >= 0)
            events(f, now);
        if (now >= f->next_walk && walk(f, now) < 0)
            goto nomem;
        if (now >= f->next_timer && (e = timers(f, now)) != NULL) {
            memcpy(f->forget_id, e->id, sizeof f->forget_id);
            free(f->forget_path);
            f->forget_path = e->path;
            e->path = NULL;
            out->id = f->forget_id;
            out->path = f->forget_path ? f->forget_path : f->forget_id;
            out->end = e->pos;
            ent_free(f, e);
            return LP_FOLLOW_FORGET;
        }
        if ((e = dequeue(f)) == NULL)
            return LP_FOLLOW_IDLE;
        if (fill(f, e, now) < 0)
            goto nomem;
    }
nomem:
    snprintf(err, 1024, "out of memory");
    return LP_FOLLOW_ERR;
}

int lp_follow_fd(const struct lp_follow *f)
{
    return f->ifd;
}

int lp_follow_timeout(struct lp_follow *f)
{
    uint64_t now = now_ms(), due;

    if (f->qhead || f->cur || !f->started)
        return 0;
    due = min64(f->next_walk, f->next_timer);
    if (due <= now)
        return 0;
    return due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

size_t lp_follow_files(const struct lp_follow *f)
{
    return f->nfiles;
}

size_t lp_follow_open(const struct lp_follow *f)
{
    return f->nopen;
}
