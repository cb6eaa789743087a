/* lp_journal.c -- a batch of many day files made durable with one write */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_fs.h"
#include "lp_journal.h"
#include "lp_parse.h"
#include "lp_sync.h"
#include "lp_wal.h"

#define READ_CHUNK (1u << 20)
#define SEG_NAMELEN 32                  /* "seg-" 16 hex ".jnl" and a NUL */

struct seg {
    uint64_t seq;
    uint64_t size;
};

struct lp_journal {
    int dirfd;                  /* --dir, borrowed */
    int rootfd;                 /* LP_JOURNAL_DIR below it */
    int jfd;                    /* the journal directory below that */
    char *name;
    struct lp_notify nt;
    struct seg *segs;           /* not cut, oldest first; the active last */
    size_t nsegs, capsegs;
    size_t nleft;               /* of segs, those a crashed run left */
    int afd;                    /* the active segment, or -1 */
    uint64_t next;              /* the number of the next segment made */
    int anew;                   /* active made since the directory sync */
    struct lp_buf batch;        /* records added since the last commit */
    size_t pending;             /* bytes of a commit the lane syncs */
    int ferrno;                 /* a commit's failure found by a seal or a
                                   close, kept for commit_finish */
    char ferr[LP_ERRLEN];
    uint64_t bytes;             /* in segs */
};

/* Records are framed as lp_wal's (u32le length, u32le CRC, payload), the
 * CRC being CRC-32C in LP_JOURNAL_MAGIC's segments (lp_wal_encode_c) and
 * zlib's CRC-32 in LP_JOURNAL_MAGIC1's, which are still read. */
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Fills the header of the record whose rlen payload bytes follow hdr. */
static void rec_encode(char *hdr, size_t rlen)
{
    lp_wal_encode_c(hdr, hdr + LP_WAL_REC, rlen);
}

/* As lp_wal_decode, for a segment of version v (1 or 2), *pos past the
 * header. */
static int rec_decode(int v, const char *buf, size_t len, size_t *pos,
                      const char **rec, size_t *rlen)
{
    return v == 1 ? lp_wal_decode(buf, len, pos, rec, rlen)
                  : lp_wal_decode_c(buf, len, pos, rec, rlen);
}

/* The version of the segment whose first len bytes are buf: 2, 1, 0 when
 * it is a header cut short (nothing in it), -1 when it is not one. */
static int seg_version(const char *buf, size_t len)
{
    if (len >= LP_JOURNAL_HDR)
        return memcmp(buf, LP_JOURNAL_MAGIC, LP_JOURNAL_HDR) == 0    ? 2
               : memcmp(buf, LP_JOURNAL_MAGIC1, LP_JOURNAL_HDR) == 0 ? 1
                                                                      : -1;
    return memcmp(buf, LP_JOURNAL_MAGIC, len) == 0 ||
                   memcmp(buf, LP_JOURNAL_MAGIC1, len) == 0
               ? 0
               : -1;
}

static void seg_name(char *buf, uint64_t seq)
{
    snprintf(buf, SEG_NAMELEN, "seg-%016" PRIx64 ".jnl", seq);
}

/* Is name a segment's? 1 with *seq. */
static int is_seg(const char *name, uint64_t *seq)
{
    uint64_t v = 0;

    if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 24 ||
        strcmp(name + 20, ".jnl") != 0)
        return 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' :
                c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *seq = v;
    return 1;
}

static int cmp_seg(const void *x, const void *y)
{
    const struct seg *a = x, *b = y;

    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int push_seg(struct lp_journal *j, uint64_t seq, uint64_t size)
{
    if (j->nsegs == j->capsegs) {
        size_t cap = j->capsegs ? j->capsegs * 2 : 8;
        struct seg *p = realloc(j->segs, cap * sizeof *p);
        if (!p)
            return -1;
        j->segs = p;
        j->capsegs = cap;
    }
    j->segs[j->nsegs].seq = seq;
    j->segs[j->nsegs].size = size;
    j->nsegs++;
    j->bytes += size;
    return 0;
}

/* Lists the segments of the directory jfd (a duplicate is closed). */
static int list_segs(struct lp_journal *j, char *err)
{
    int fd = openat(j->jfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;

    if (!d) {
        if (fd >= 0)
            close(fd);
        snprintf(err, LP_ERRLEN, "%s: %s", j->name, strerror(errno));
        return -1;
    }
    while ((errno = 0, de = readdir(d))) {
        struct stat st;
        uint64_t seq;

        if (de->d_name[0] == '.')
            continue;
        if (!is_seg(de->d_name, &seq) ||
            fstatat(j->jfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode)) {
            lp_notice(&j->nt, LP_NOTICE_WARN,
                      "%s/%s: not a journal segment, left alone", j->name,
                      de->d_name);
            continue;
        }
        if (push_seg(j, seq, (uint64_t)st.st_size) < 0) {
            closedir(d);
            snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
            return -1;
        }
        if (seq >= j->next)
            j->next = seq + 1;
    }
    if (errno) {
        snprintf(err, LP_ERRLEN, "%s: %s", j->name, strerror(errno));
        closedir(d);
        return -1;
    }
    closedir(d);
    if (j->nsegs > 1)
        qsort(j->segs, j->nsegs, sizeof *j->segs, cmp_seg);
    j->nleft = j->nsegs;
    return 0;
}

/* Makes the directory name below dirfd when missing (fsyncing dirfd so
 * that the name lasts); opens it. -1 with errno. */
static int make_dir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, LP_DIR_MODE) == 0) {
        if (fsync(dirfd) < 0)
            return -1;
    } else if (errno != EEXIST)
        return -1;
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                   O_CLOEXEC);
}

struct lp_journal *lp_journal_open(int dirfd, const char *name,
                                   const struct lp_notify *nt, char *err)
{
    struct lp_journal *j = calloc(1, sizeof *j);
    size_t n = sizeof LP_JOURNAL_DIR + 1 + strlen(name);

    if (!j || !(j->name = malloc(n))) {
        free(j);
        snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
        return NULL;
    }
    snprintf(j->name, n, "%s/%s", LP_JOURNAL_DIR, name);
    j->dirfd = dirfd;
    j->afd = -1;
    j->jfd = -1;
    j->rootfd = -1;
    if (nt)
        j->nt = *nt;
    if (!*name || strchr(name, '/') || name[0] == '.') {
        snprintf(err, LP_ERRLEN, "%s: not a journal name", j->name);
        goto fail;
    }
    /* another journal of the directory (a sharded drain's other shard)
     * that ends removes LP_JOURNAL_DIR when it is empty: between our
     * making it and making ours in it, it may be gone (ENOENT): made
     * again. Once ours is in it, it is not empty. */
    for (int tries = 0;; tries++) {
        if ((j->rootfd = make_dir(dirfd, LP_JOURNAL_DIR)) < 0) {
            if (errno == ENOENT && tries < 1000)
                continue;
            snprintf(err, LP_ERRLEN, "%s: %s", LP_JOURNAL_DIR,
                     strerror(errno));
            goto fail;
        }
        if ((j->jfd = make_dir(j->rootfd, name)) >= 0)
            break;
        if (errno != ENOENT || tries >= 1000) {
            snprintf(err, LP_ERRLEN, "%s: %s", j->name, strerror(errno));
            goto fail;
        }
        close(j->rootfd);
        j->rootfd = -1;
    }
    if (list_segs(j, err) < 0)
        goto fail;
    /* numbers from the clock (microseconds) when it is ahead: a name is
     * never used twice, also after a run that cut every segment, so that
     * a reader keeping what it read of a segment by name cannot mistake a
     * new one for it */
    {
        struct timespec ts;
        uint64_t us;
        clock_gettime(CLOCK_REALTIME, &ts);
        us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        if (us > j->next)
            j->next = us;
    }
    return j;
fail:
    lp_journal_close(j);
    return NULL;
}

static void commit_wait(struct lp_journal *j);

void lp_journal_close(struct lp_journal *j)
{
    if (!j)
        return;
    /* the lane must be done with the descriptors; its outcome does not
     * matter any more (nothing is acknowledged after a close) */
    commit_wait(j);
    if (j->afd >= 0)
        close(j->afd);
    if (j->jfd >= 0)
        close(j->jfd);
    if (j->rootfd >= 0)
        close(j->rootfd);
    lp_buf_free(&j->batch);
    free(j->segs);
    free(j->name);
    free(j);
}

int lp_journal_left(const struct lp_journal *j)
{
    return j->nleft > 0;
}

int lp_journal_payload(const char *rec, size_t rlen, const char **path,
                       size_t *plen, const char **lines, size_t *len)
{
    const unsigned char *u = (const unsigned char *)rec;
    size_t n;

    if (rlen < 2)
        return -1;
    n = (size_t)u[0] | (size_t)u[1] << 8;
    if (n == 0 || n > rlen - 2 || memchr(rec + 2, '\0', n))
        return -1;
    *path = rec + 2;
    *plen = n;
    *lines = rec + 2 + n;
    *len = rlen - 2 - n;
    if (*len && (*lines)[*len - 1] != '\n')
        return -1;
    return 0;
}

/* Reads the whole segment name (opened below jfd) into *buf. */
static int slurp(int jfd, const char *name, char **buf, size_t *len,
                 char *err, const char *jname)
{
    int fd = openat(jfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    size_t got = 0;

    *buf = NULL;
    *len = 0;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, LP_ERRLEN, "%s/%s: %s", jname, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        close(fd);
        snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, *buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, LP_ERRLEN, "%s/%s: read: %s", jname, name,
                     strerror(errno));
            close(fd);
            free(*buf);
            *buf = NULL;
            return -1;
        }
        if (r == 0)
            break;              /* cut meanwhile: what was read */
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

/* Is the record that fails at buf[at..len) the tail of a commit that did
 * not finish (a crash): a header or record cut short by the end, or only
 * zeros to the end (blocks the file system allocated, never written)? Else
 * it is damage with records after it. */
static int torn(const char *buf, size_t len, size_t at)
{
    const unsigned char *h = (const unsigned char *)buf + at;
    uint32_t n;

    if (len - at < LP_WAL_REC)
        return 1;
    n = get32(h) & ~LP_WAL_DONE;
    if (n <= LP_WAL_MAXREC && len - at - LP_WAL_REC <= n)
        return 1;
    for (size_t i = at; i < len; i++)
        if (buf[i] != 0)
            return 0;
    return 1;
}

int lp_journal_replay(struct lp_journal *j,
                      int (*fn)(void *ctx, const char *path, size_t plen,
                                const char *lines, size_t len, char *err),
                      void *ctx, char *err)
{
    for (size_t i = 0; i < j->nleft; i++) {
        char name[SEG_NAMELEN];
        char *buf;
        size_t len, pos = LP_JOURNAL_HDR;
        const char *rec, *path, *lines;
        size_t rlen, plen, llen;
        int r = 0;

        seg_name(name, j->segs[i].seq);
        if (slurp(j->jfd, name, &buf, &len, err, j->name) < 0)
            return -1;
        int v = seg_version(buf, len);
        if (v == 0) {
            /* made, its header cut short by the crash: nothing in it */
            free(buf);
            continue;
        }
        if (v < 0) {
            /* not ours to cut: another version's, or damage */
            snprintf(err, LP_ERRLEN, "%s/%s: not a journal segment this "
                     "logpipe reads (no %.7s or %.7s header): move it out "
                     "of the way to start", j->name, name, LP_JOURNAL_MAGIC1,
                     LP_JOURNAL_MAGIC);
            free(buf);
            return -1;
        }
        while (pos < len) {
            size_t at = pos;
            r = rec_decode(v, buf, len, &pos, &rec, &rlen);
            if (r > 0 && lp_journal_payload(rec, rlen, &path, &plen, &lines,
                                            &llen) < 0)
                r = -1;
            if (r < 0 && torn(buf, len, at)) {
                lp_notice(&j->nt, LP_NOTICE_WARN,
                          "%s/%s: torn or damaged after byte %zu of %zu: "
                          "the rest was never acknowledged, left out",
                          j->name, name, at, len);
                r = 0;
                break;
            }
            if (r < 0) {
                /* whole records may follow: acknowledged lines, which
                 * cannot be read; the segment is kept for a look */
                char aside[SEG_NAMELEN + 16];
                snprintf(aside, sizeof aside, "%s.damaged", name);
                int kept = renameat(j->jfd, name, j->jfd, aside) == 0;
                lp_notice(&j->nt, LP_NOTICE_ERROR,
                          "%s/%s: damaged at byte %zu of %zu, with %zu "
                          "bytes after the damaged record: lines of "
                          "batches acknowledged may be lost there; %s",
                          j->name, name, at, len, len - at,
                          kept ? "the segment is kept as .damaged"
                               : "the segment could not be kept");
                r = 0;
                break;
            }
            if (r == 0)
                break;
            if (fn(ctx, path, plen, lines, llen, err) < 0) {
                free(buf);
                return -1;
            }
        }
        free(buf);
    }
    return 0;
}

int lp_journal_add(struct lp_journal *j, const char *path, size_t plen,
                   const char *s, size_t n)
{
    unsigned char pl[2];
    size_t start;
    char *hdr;

    if (plen == 0 || plen > 0xffff) {
        errno = ENAMETOOLONG;
        return -1;
    }
    start = j->batch.len;
    pl[0] = (unsigned char)plen;
    pl[1] = (unsigned char)(plen >> 8);
    if (lp_buf_reserve(&j->batch, LP_WAL_REC + 2 + plen + n) < 0) {
        errno = ENOMEM;
        return -1;
    }
    j->batch.len += LP_WAL_REC;
    lp_buf_add(&j->batch, pl, 2);
    lp_buf_add(&j->batch, path, plen);
    lp_buf_add(&j->batch, s, n);
    hdr = j->batch.p + start;
    rec_encode(hdr, j->batch.len - start - LP_WAL_REC);
    return 0;
}

size_t lp_journal_pending(const struct lp_journal *j)
{
    return j->batch.len;
}

/* Makes the next segment the active one. */
static int new_active(struct lp_journal *j, char *err)
{
    char name[SEG_NAMELEN];
    int fd;

    seg_name(name, j->next);
    fd = openat(j->jfd, name,
                O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW |
                    O_CLOEXEC, LP_FILE_MODE);
    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "%s/%s: %s", j->name, name,
                 strerror(errno));
        return -1;
    }
    if (lp_fs_write_all(fd, LP_JOURNAL_MAGIC, LP_JOURNAL_HDR) < 0 ||
        push_seg(j, j->next, LP_JOURNAL_HDR) < 0) {
        int e = errno ? errno : ENOMEM;
        snprintf(err, LP_ERRLEN, "%s/%s: write: %s", j->name, name,
                 strerror(e));
        close(fd);
        unlinkat(j->jfd, name, 0);
        errno = e;
        return -1;
    }
    j->next++;
    j->afd = fd;
    j->anew = 1;
    return 0;
}

/* Ends the active segment. */
static void end_active(struct lp_journal *j)
{
    if (j->afd >= 0)
        close(j->afd);
    j->afd = -1;
}

int lp_journal_mark(struct lp_journal *j, const char *path, size_t plen,
                    char *err)
{
    char rec[LP_WAL_REC + 2 + 512];
    size_t n = LP_WAL_REC + 2 + plen;

    if (plen == 0 || plen > 512) {
        snprintf(err, LP_ERRLEN, "%.*s: path too long for a mark",
                 (int)(plen > 200 ? 200 : plen), path);
        errno = ENAMETOOLONG;
        return -1;
    }
    if (j->pending) {
        snprintf(err, LP_ERRLEN, "%s: a commit is still syncing", j->name);
        errno = EBUSY;
        return -1;
    }
    if (j->afd < 0 && new_active(j, err) < 0)
        return -1;
    rec[LP_WAL_REC] = (char)(plen & 0xff);
    rec[LP_WAL_REC + 1] = (char)(plen >> 8);
    memcpy(rec + LP_WAL_REC + 2, path, plen);
    rec_encode(rec, 2 + plen);
    if (lp_fs_write_all(j->afd, rec, n) < 0) {
        int e = errno;
        snprintf(err, LP_ERRLEN, "%s: write: %s", j->name, strerror(e));
        if (ftruncate(j->afd, (off_t)j->segs[j->nsegs - 1].size) < 0)
            end_active(j);
        errno = e;
        return -1;
    }
    j->segs[j->nsegs - 1].size += n;
    j->bytes += n;
    return 0;
}

int lp_journal_commit_start(struct lp_journal *j, char *err)
{
    int fds[2];
    size_t n = 0;

    if (j->pending) {
        snprintf(err, LP_ERRLEN, "%s: a commit is still syncing", j->name);
        errno = EBUSY;
        goto drop;
    }
    if (j->ferrno) {
        /* a failed commit a seal found, not reported yet */
        lp_journal_commit_finish(j, err);
        goto drop;
    }
    if (j->batch.len == 0)
        return 0;
    if (j->afd < 0 && new_active(j, err) < 0)
        goto drop;
    if (lp_fs_write_all(j->afd, j->batch.p, j->batch.len) < 0) {
        int e = errno;
        snprintf(err, LP_ERRLEN, "%s: write: %s", j->name, strerror(e));
        /* cut back what was written of the records, or end the segment
         * there: a torn record ends a segment when it is read */
        if (ftruncate(j->afd, (off_t)j->segs[j->nsegs - 1].size) < 0)
            end_active(j);
        errno = e;
        goto drop;
    }
    /* the records are in the segment (readers see them); durable once
     * the lane has synced it, and the directory when it is new */
    fds[n++] = j->afd;
    if (j->anew)
        fds[n++] = -1 - j->jfd;
    j->pending = j->batch.len;
    j->batch.len = 0;
    lp_sync_lane_start(fds, n);
    return 0;
drop:
    j->batch.len = 0;
    return -1;
}

/* Waits for the commit the lane syncs, if any; a failure is kept in
 * j->ferrno/ferr until lp_journal_commit_finish reports it. */
static void commit_wait(struct lp_journal *j)
{
    struct seg *a;
    size_t bad = 0, len = j->pending;

    if (len == 0)
        return;
    j->pending = 0;
    a = &j->segs[j->nsegs - 1];
    a->size += len;
    j->bytes += len;
    if (lp_sync_lane_wait(&bad) < 0) {
        j->ferrno = errno;
        snprintf(j->ferr, sizeof j->ferr, "%s%s: fsync: %s", j->name,
                 bad ? " (its directory)" : "", strerror(j->ferrno));
        /* what the kernel dropped is not known: no more in this one */
        end_active(j);
        return;
    }
    j->anew = 0;
}

int lp_journal_commit_finish(struct lp_journal *j, char *err)
{
    commit_wait(j);
    if (j->ferrno) {
        snprintf(err, LP_ERRLEN, "%s", j->ferr);
        errno = j->ferrno;
        j->ferrno = 0;
        return -1;
    }
    return 0;
}

int lp_journal_commit_pending(const struct lp_journal *j)
{
    return j->pending > 0;
}

int lp_journal_commit(struct lp_journal *j, char *err)
{
    if (lp_journal_commit_start(j, err) < 0)
        return -1;
    return lp_journal_commit_finish(j, err);
}

uint64_t lp_journal_seal(struct lp_journal *j)
{
    /* the caller finishes its commit first; should it not, the seal
     * waits for it (a failed one ended the segment, and is kept for
     * lp_journal_commit_finish to report) */
    commit_wait(j);
    end_active(j);
    return j->next;
}

int lp_journal_cut(struct lp_journal *j, uint64_t mark, char *err)
{
    size_t k = 0;
    int rc = 0;

    while (k < j->nsegs && j->segs[k].seq < mark) {
        char name[SEG_NAMELEN];

        seg_name(name, j->segs[k].seq);
        if (unlinkat(j->jfd, name, 0) < 0 && errno != ENOENT) {
            snprintf(err, LP_ERRLEN, "%s/%s: %s", j->name, name,
                     strerror(errno));
            rc = -1;
            break;
        }
        j->bytes -= j->segs[k].size;
        k++;
    }
    if (k) {
        memmove(j->segs, j->segs + k, (j->nsegs - k) * sizeof *j->segs);
        j->nsegs -= k;
        j->nleft = j->nleft > k ? j->nleft - k : 0;
        if (fsync(j->jfd) < 0 && rc == 0) {
            snprintf(err, LP_ERRLEN, "%s: fsync: %s", j->name,
                     strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

uint64_t lp_journal_bytes(const struct lp_journal *j)
{
    return j->bytes;
}

int lp_journal_remove(struct lp_journal *j, char *err)
{
    const char *base = j->name + sizeof LP_JOURNAL_DIR;

    if (j->nsegs || j->batch.len)
        return 0;
    if (unlinkat(j->rootfd, base, AT_REMOVEDIR) < 0) {
        if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOENT)
            return 0;
        snprintf(err, LP_ERRLEN, "%s: %s", j->name, strerror(errno));
        return -1;
    }
    if (fsync(j->rootfd) < 0) {
        snprintf(err, LP_ERRLEN, "%s: fsync: %s", LP_JOURNAL_DIR,
                 strerror(errno));
        return -1;
    }
    /* the last journal takes the directory of journals with it */
    if (unlinkat(j->dirfd, LP_JOURNAL_DIR, AT_REMOVEDIR) < 0)
        return 0;
    if (fsync(j->dirfd) < 0) {
        snprintf(err, LP_ERRLEN, "%s: fsync of its directory: %s",
                 LP_JOURNAL_DIR, strerror(errno));
        return -1;
    }
    return 0;
}

/* Calls fn(ctx, jfd, journal name, segment name, st) for every segment of
 * every journal below dirfd; fn returns 0 to go on, 1 to stop (returned),
 * -1 with err. */
static int each_seg(int dirfd,
                    int (*fn)(void *ctx, int jfd, const char *jname,
                              const char *sname, const struct stat *st,
                              char *err),
                    void *ctx, char *err)
{
    int root = openat(dirfd, LP_JOURNAL_DIR,
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd, rc = 0;
    DIR *d;
    struct dirent *de;

    if (root < 0) {
        if (errno == ENOENT)
            return 0;           /* no journal at all */
        snprintf(err, LP_ERRLEN, "%s: %s", LP_JOURNAL_DIR, strerror(errno));
        return -1;
    }
    fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        snprintf(err, LP_ERRLEN, "%s: %s", LP_JOURNAL_DIR, strerror(errno));
        if (fd >= 0)
            close(fd);
        close(root);
        return -1;
    }
    while (rc == 0 && (de = readdir(d))) {
        int jfd;
        DIR *jd;
        struct dirent *se;

        if (de->d_name[0] == '.')
            continue;
        jfd = openat(root, de->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (jfd < 0) {
            if (errno == ENOENT)        /* removed meanwhile */
                continue;
            snprintf(err, LP_ERRLEN, "%s: %s", de->d_name, strerror(errno));
            rc = -1;
            break;
        }
        {
            int jfd2 = openat(jfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            jd = jfd2 < 0 ? NULL : fdopendir(jfd2);
            if (!jd) {
                snprintf(err, LP_ERRLEN, "%s: %s", de->d_name,
                         strerror(errno));
                if (jfd2 >= 0)
                    close(jfd2);
                close(jfd);
                rc = -1;
                break;
            }
        }
        while (rc == 0 && (se = readdir(jd))) {
            struct stat st;
            uint64_t seq;

            if (!is_seg(se->d_name, &seq))
                continue;
            if (fstatat(jfd, se->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)    /* cut meanwhile */
                    continue;
                snprintf(err, LP_ERRLEN, "%s/%s: %s", de->d_name,
                         se->d_name, strerror(errno));
                rc = -1;
                break;
            }
            if (S_ISREG(st.st_mode))
                rc = fn(ctx, jfd, de->d_name, se->d_name, &st, err);
        }
        closedir(jd);
        close(jfd);
    }
    closedir(d);
    close(root);
    return rc;
}

/* ---- the reader rotate keeps: which day files the journals cover ---- */

struct rpath {
    uint32_t h;                 /* 0: an empty slot */
    char *p;
    size_t n;
};

struct rseg {
    dev_t dev;
    ino_t ino;
    uint64_t off;               /* the next record to read */
    int seen;                   /* in the listing of this call */
    char who[2 * NAME_MAX + 4];
    struct rpath *tab;          /* paths of its records: open addressing */
    size_t cap, n;
};

struct lp_journal_reader {
    int dirfd;
    struct rseg *segs;
    size_t nsegs, capsegs;
    char *buf;                  /* READ_CHUNK */
};

static uint32_t path_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ? h : 1;
}

static struct rpath *rpath_find(struct rseg *g, uint32_t h, const char *s,
                                size_t n)
{
    if (!g->cap)
        return NULL;
    for (size_t i = h & (g->cap - 1);; i = (i + 1) & (g->cap - 1)) {
        struct rpath *e = &g->tab[i];
        if (!e->h || (e->h == h && e->n == n && memcmp(e->p, s, n) == 0))
            return e;
    }
}

static int rpath_add(struct rseg *g, const char *s, size_t n)
{
    uint32_t h = path_hash(s, n);
    struct rpath *e;

    if ((g->n + 1) * 2 > g->cap) {      /* grow: at most half full */
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct rpath *old = g->tab;
        size_t ocap = g->cap;
        if (!(g->tab = calloc(cap, sizeof *g->tab))) {
            g->tab = old;
            return -1;
        }
        g->cap = cap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].h)
                *rpath_find(g, old[i].h, old[i].p, old[i].n) = old[i];
        free(old);
    }
    e = rpath_find(g, h, s, n);
    if (e->h)
        return 0;
    if (!(e->p = malloc(n)))
        return -1;
    memcpy(e->p, s, n);
    e->n = n;
    e->h = h;
    g->n++;
    return 0;
}

static void rseg_free(struct rseg *g)
{
    for (size_t i = 0; i < g->cap; i++)
        free(g->tab[i].p);
    free(g->tab);
}

struct lp_journal_reader *lp_journal_reader_new(int dirfd)
{
    struct lp_journal_reader *rd = calloc(1, sizeof *rd);

    if (!rd || !(rd->buf = malloc(READ_CHUNK))) {
        free(rd);
        return NULL;
    }
    rd->dirfd = dirfd;
    return rd;
}

void lp_journal_reader_free(struct lp_journal_reader *rd)
{
    if (!rd)
        return;
    for (size_t i = 0; i < rd->nsegs; i++)
        rseg_free(&rd->segs[i]);
    free(rd->segs);
    free(rd->buf);
    free(rd);
}

/* Reads the records of g's file fd from g->off to size, adding their
 * paths; stops before a record whose header and path are not all there
 * yet (being written, or torn). */
static int rseg_scan(struct lp_journal_reader *rd, struct rseg *g, int fd,
                     uint64_t size, char *err)
{
    uint64_t boff = 0;          /* file offset of rd->buf[0] */
    size_t have = 0;

    while (g->off + LP_WAL_REC + 2 <= size) {
        const unsigned char *h;
        size_t pos, plen;
        uint32_t rlen;

        if (g->off < boff || g->off + LP_WAL_REC + 2 > boff + have) {
            ssize_t r;
            boff = g->off;
            do
                r = pread(fd, rd->buf, READ_CHUNK, (off_t)boff);
            while (r < 0 && errno == EINTR);
            if (r < 0) {
                snprintf(err, LP_ERRLEN, "%s: read: %s", g->who,
                         strerror(errno));
                return -1;
            }
            have = (size_t)r;
            if (have < LP_WAL_REC + 2)
                break;
        }
        pos = (size_t)(g->off - boff);
        h = (const unsigned char *)rd->buf + pos;
        rlen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
               (uint32_t)h[3] << 24;
        plen = (size_t)h[LP_WAL_REC] | (size_t)h[LP_WAL_REC + 1] << 8;
        if (rlen < 2 + plen || rlen > LP_WAL_MAXREC || plen == 0)
            break;              /* damage: the replay ends there too */
        if (pos + LP_WAL_REC + 2 + plen > have) {
            if (boff == g->off)
                break;          /* the path is not all there yet */
            boff = g->off + 1;  /* read again from the record */
            have = 0;
            continue;
        }
        if (rpath_add(g, (const char *)h + LP_WAL_REC + 2, plen) < 0) {
            snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
            return -1;
        }
        g->off += LP_WAL_REC + (uint64_t)rlen;
    }
    return 0;
}

static int reader_seg(void *ctx, int jfd, const char *jname,
                      const char *sname, const struct stat *st, char *err)
{
    struct lp_journal_reader *rd = ctx;
    struct rseg *g = NULL;
    int fd, rc;

    char who[sizeof g->who];

    snprintf(who, sizeof who, "%s/%s/%s", LP_JOURNAL_DIR, jname, sname);
    for (size_t i = 0; i < rd->nsegs; i++)
        if (rd->segs[i].dev == st->st_dev && rd->segs[i].ino == st->st_ino &&
            strcmp(rd->segs[i].who, who) == 0)
            g = &rd->segs[i];
    if (!g) {
        if (rd->nsegs == rd->capsegs) {
            size_t cap = rd->capsegs ? rd->capsegs * 2 : 8;
            struct rseg *p = realloc(rd->segs, cap * sizeof *p);
            if (!p) {
                snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
                return -1;
            }
            rd->segs = p;
            rd->capsegs = cap;
        }
        g = &rd->segs[rd->nsegs++];
        memset(g, 0, sizeof *g);
        g->dev = st->st_dev;
        g->ino = st->st_ino;
        g->off = LP_JOURNAL_HDR;
        memcpy(g->who, who, sizeof who);
    }
    g->seen = 1;
    /* cut back after a failed commit: read it again (the paths seen stay,
     * which can only make more files covered) */
    if ((uint64_t)st->st_size < g->off)
        g->off = LP_JOURNAL_HDR;
    if ((uint64_t)st->st_size <= g->off)
        return 0;
    fd = openat(jfd, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;           /* cut meanwhile */
        snprintf(err, LP_ERRLEN, "%s: %s", g->who, strerror(errno));
        return -1;
    }
    rc = rseg_scan(rd, g, fd, (uint64_t)st->st_size, err);
    close(fd);
    return rc;
}

int lp_journal_reader_covers(struct lp_journal_reader *rd, const char *path,
                             size_t plen, char *who, size_t cap, char *err)
{
    uint32_t h = path_hash(path, plen);
    size_t k = 0;
    int rc = 0;

    for (size_t i = 0; i < rd->nsegs; i++)
        rd->segs[i].seen = 0;
    if (each_seg(rd->dirfd, reader_seg, rd, err) < 0)
        return -1;
    /* segments cut since the last call are forgotten */
    for (size_t i = 0; i < rd->nsegs; i++) {
        if (!rd->segs[i].seen) {
            rseg_free(&rd->segs[i]);
            continue;
        }
        rd->segs[k++] = rd->segs[i];
    }
    rd->nsegs = k;
    for (size_t i = 0; i < rd->nsegs && !rc; i++) {
        struct rpath *e = rpath_find(&rd->segs[i], h, path, plen);
        if (e && e->h) {
            snprintf(who, cap, "%s", rd->segs[i].who);
            rc = 1;
        }
    }
    return rc;
}

int lp_journal_covers(int dirfd, const char *path, size_t plen, char *who,
                      size_t cap, char *err)
{
    struct lp_journal_reader *rd = lp_journal_reader_new(dirfd);
    int rc;

    if (!rd) {
        snprintf(err, LP_ERRLEN, "%s", strerror(ENOMEM));
        return -1;
    }
    rc = lp_journal_reader_covers(rd, path, plen, who, cap, err);
    lp_journal_reader_free(rd);
    return rc;
}

struct usage {
    unsigned count;
    uint64_t bytes;
    int64_t oldest;
    char last[256];
};

static int use_seg(void *ctx, int jfd, const char *jname, const char *sname,
                   const struct stat *st, char *err)
{
    struct usage *u = ctx;
    int64_t ms = (int64_t)st->st_mtim.tv_sec * 1000 +
                 st->st_mtim.tv_nsec / 1000000;

    (void)jfd;
    (void)sname;
    (void)err;
    if (strcmp(u->last, jname) != 0) {
        u->count++;
        snprintf(u->last, sizeof u->last, "%s", jname);
    }
    u->bytes += (uint64_t)st->st_size;
    if (u->oldest == 0 || ms < u->oldest)
        u->oldest = ms;
    return 0;
}

int lp_journal_usage(int dirfd, unsigned *count, uint64_t *bytes,
                     int64_t *oldest_ms, char *err)
{
    struct usage u;

    memset(&u, 0, sizeof u);
    if (each_seg(dirfd, use_seg, &u, err) < 0)
        return -1;
    *count = u.count;
    *bytes = u.bytes;
    *oldest_ms = u.oldest;
    return 0;
}
