/* lp_rotate.c -- the rotate engine: compress closed days, apply retention */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_fs.h"
#include "lp_journal.h"
#include "lp_gz.h"
#include "lp_layout.h"
#include "lp_parse.h"
#include "lp_rotate.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "lp_tree.h"

const char *const lp_rotate_action_names[LP_ROT_NACTIONS] = {
    "compress", "append", "unlink", "delete", "cleanup", "rmdir"
};

struct lp_rotate {
    struct lp_rotate_conf c;
    int dirfd, lock;
    struct lp_layout *layout;
    int64_t now, today;
    int result;                 /* of the files so far: LP_ROTATE_* */
    struct lp_rotate_counts t;
    /* which files drains' journals still hold lines of (lp_journal.h) */
    struct lp_journal_reader *journals;
    /* reading for the CRC of a file and copying the old members */
    unsigned char buf[1 << 16];
};

#define SAY_ERR(r, ...) lp_notice(&(r)->c.notify, LP_NOTICE_ERROR, __VA_ARGS__)

/* Counts the action, then says it. */
static void action(struct lp_rotate *r, int what, const char *path,
                   int64_t in, int64_t out, int64_t ms, const char *reason)
{
    struct lp_rotate_action a = { what, path, in, out, ms, reason };

    r->t.act[what]++;
    if (in > 0 && out >= 0)
        r->t.bytes_in += (uint64_t)in;
    if (out > 0)
        r->t.bytes_out += (uint64_t)out;
    if (r->c.on_action)
        r->c.on_action(r->c.ctx, &a);
}

static void crash_point(struct lp_rotate *r, const char *where)
{
    if (r->c.test_hook)
        r->c.test_hook(where);
}

/* The run's result: an I/O error wins over the others. */
static void result(struct lp_rotate *r, int res)
{
    if (r->result == LP_ROTATE_OK || res == LP_ROTATE_EIO)
        r->result = res;
}

/* A file could not be handled. */
static void failed(struct lp_rotate *r, int res)
{
    r->t.errors++;
    result(r, res);
}

/* ---- one file ----------------------------------------------------------- */

/* Splits rel into its directory (opened) and base name. Returns the
 * directory fd, or -1 with err ("DIR: why", DIR that directory). */
static int open_parent(struct lp_rotate *r, const char *rel,
                       const char **base, char *err)
{
    char dir[4096];
    const char *slash = strrchr(rel, '/');

    if (slash == NULL) {
        *base = rel;
        return lp_fs_opendir(r->dirfd, "", err);
    }
    *base = slash + 1;
    if ((size_t)(slash - rel) >= sizeof dir) {
        snprintf(err, LP_ERRLEN, "%s: path too long", rel);
        return -1;
    }
    memcpy(dir, rel, (size_t)(slash - rel));
    dir[slash - rel] = '\0';
    return lp_fs_opendir(r->dirfd, dir, err);
}

/* CRC-32 of fd[0..len); -1 on a read error. */
static int crc_of(struct lp_rotate *r, int fd, uint64_t len, uint32_t *crc)
{
    uLong c = crc32(0L, Z_NULL, 0);
    off_t off = 0;

    while ((uint64_t)off < len) {
        size_t want = len - (uint64_t)off < sizeof r->buf ?
                      (size_t)(len - (uint64_t)off) : sizeof r->buf;
        ssize_t got = pread(fd, r->buf, want, off);
        if (got <= 0)
            return -1;
        c = crc32(c, r->buf, (uInt)got);
        off += got;
    }
    *crc = (uint32_t)c;
    return 0;
}

/*
 * How much of fd (size bytes) the last member of gz already holds: a
 * rotate killed after its rename, before its unlink, leaves the .jsonl
 * whole in the .gz, and a drain may have appended to it since. The
 * member's trailer gives the CRC-32 and length (mod 2^32) of its data:
 * when fd's first bytes match them, that prefix is in the .gz. Returns its
 * length, or 0.
 */
static uint64_t absorbed(struct lp_rotate *r, int gzfd, int fd, uint64_t size)
{
    unsigned char t[8];
    struct stat st;
    uint32_t crc, gcrc, glen;

    if (fstat(gzfd, &st) < 0 || st.st_size < 20 ||
        pread(gzfd, t, 8, st.st_size - 8) != 8)
        return 0;
    gcrc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
           (uint32_t)t[3] << 24;
    glen = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
           (uint32_t)t[7] << 24;
    if (glen == 0 || glen > size || crc_of(r, fd, glen, &crc) < 0 ||
        crc != gcrc)
        return 0;
    return glen;
}

/* Copies from to to: 0, -1 when reading failed, -2 when writing did. */
static int copy_all(struct lp_rotate *r, int from, int to)
{
    ssize_t got;
    off_t off = 0;

    while ((got = pread(from, r->buf, sizeof r->buf, off)) > 0) {
        if (lp_fs_write_all(to, r->buf, (size_t)got) < 0)
            return -2;
        off += got;
    }
    return got < 0 ? -1 : 0;
}

/* Does a drain journal still hold lines of rel (asked under its lock)?
 * 1: said, the file is left for the next run; 0; -1 with err. */
static int journal_holds(struct lp_rotate *r, const char *rel, char *err)
{
    char who[600];
    int g;

    if (r->journals == NULL)
        return 0;
    g = lp_journal_reader_covers(r->journals, rel, strlen(rel), who,
                                 sizeof who, err);
    if (g > 0)
        lp_notice(&r->c.notify, LP_NOTICE_INFO, "%s: left for the next "
                  "run: lines of it are still only in the drain journal %s",
                  rel, who);
    return g;
}

/*
 * Compresses rel (a .jsonl of a closed day) into rel.gz, appending a
 * member when rel.gz exists. Returns LP_ROTATE_OK or the failure (said).
 */
static int compress_one(struct lp_rotate *r, const char *rel)
{
    char err[LP_ERRLEN], gzname[300], tmp[320], tmprel[4096];
    const char *base;
    int dfd, fd = -1, gzfd = -1, tfd = -1, created, rc = LP_ROTATE_EIO, g;
    struct stat st;
    int64_t t0 = lp_mono_ms();
    uint32_t crc;
    uint64_t len, zlen, done = 0;
    off_t old = 0;

    if ((dfd = open_parent(r, rel, &base, err)) < 0) {
        SAY_ERR(r, "%s", err);
        return LP_ROTATE_EIO;
    }
    snprintf(gzname, sizeof gzname, "%s.gz", base);
    snprintf(tmp, sizeof tmp, ".%s.gz.%d.tmp", base, (int)getpid());
    /* for messages: the temp file's path, as rel is, from the root */
    snprintf(tmprel, sizeof tmprel, "%.*s%s", (int)(base - rel), rel, tmp);
    fd = lp_fs_open(dfd, base, O_RDWR, 0, &created, err);
    if (fd < 0) {
        /* gone: rotated already */
        rc = errno == ENOENT ? LP_ROTATE_OK : LP_ROTATE_EIO;
        if (rc)                 /* err: "BASE: why" */
            SAY_ERR(r, "%.*s%s", (int)(base - rel), rel, err);
        goto out;
    }
    /* the drains' lock: no one appends while we read and unlink */
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR || lp_stop) {
            /* stopped: skip */
            rc = errno == EINTR ? LP_ROTATE_OK : LP_ROTATE_EIO;
            if (rc)
                SAY_ERR(r, "%s: lock: %s", rel, strerror(errno));
            goto out;
        }
    }
    if (fstat(fd, &st) < 0) {
        SAY_ERR(r, "%s: %s", rel, strerror(errno));
        goto out;
    }
    if (st.st_nlink == 0 ||
        (int64_t)st.st_mtim.tv_sec * 1000 > r->now - r->c.grace) {
        rc = LP_ROTATE_OK;      /* replaced, or written meanwhile */
        goto out;
    }
    /* lines a drain acknowledged with its journal and has not synced into
     * the file yet: compressed now, a power cut would have the drain write
     * them again from its journal, next to the .gz that holds them. The
     * drain adds them to its journal under this lock, so asking under it
     * is enough; it syncs and cuts within a second or so. */
    if ((g = journal_holds(r, rel, err)) != 0) {
        if (g < 0)
            SAY_ERR(r, "%s", err);
        else
            rc = LP_ROTATE_OK;
        goto out;
    }
    if (st.st_size == 0) {
        /* a drain made it and wrote nothing (its batch failed, or held
         * only entries already there): nothing to compress, an empty
         * member would only be noise; gone, as under the lock a drain
         * finds it gone and makes a new one */
        if (!r->c.dry_run &&
            (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0)) {
            SAY_ERR(r, "%s: %s", rel, strerror(errno));
            goto out;
        }
        action(r, LP_ROT_DELETE, rel, 0, -1, -1, "empty");
        rc = LP_ROTATE_OK;
        goto out;
    }
    gzfd = openat(dfd, gzname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (gzfd < 0 && errno != ENOENT) {
        SAY_ERR(r, "%s.gz: %s", rel, strerror(errno));
        goto out;
    }
    if (gzfd >= 0 && (done = absorbed(r, gzfd, fd, (uint64_t)st.st_size)) ==
        (uint64_t)st.st_size) {
        /* an earlier rotate was killed between rename and unlink */
        if (!r->c.dry_run &&
            (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0)) {
            SAY_ERR(r, "%s: %s", rel, strerror(errno));
            goto out;
        }
        action(r, LP_ROT_UNLINK, rel, (int64_t)st.st_size, -1,
               lp_mono_ms() - t0, "already compressed");
        rc = LP_ROTATE_OK;
        goto out;
    }
    if (done)
        lp_notice(&r->c.notify, LP_NOTICE_WARN,
                  "%s: its first %llu bytes are in %s already (a rotate "
                  "was killed): compressing the rest", rel,
                  (unsigned long long)done, gzname);
    if (r->c.dry_run) {
        action(r, gzfd >= 0 ? LP_ROT_APPEND : LP_ROT_COMPRESS, rel,
               (int64_t)st.st_size, -1, -1, NULL);
        rc = LP_ROTATE_OK;
        goto out;
    }
    tfd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
                 O_NOFOLLOW, LP_FILE_MODE);
    if (tfd < 0) {
        SAY_ERR(r, "cannot create %s: %s", tmprel, strerror(errno));
        goto out;
    }
    /* an error names the file it happened to: writing is to the temp
     * file (a full disk is its), reading from the .gz or the .jsonl */
    if (gzfd >= 0) {
        /* late events: the members so far, then a new one */
        if ((g = copy_all(r, gzfd, tfd)) < 0) {
            if (g == -2)
                SAY_ERR(r, "%s: write: %s", tmprel, strerror(errno));
            else
                SAY_ERR(r, "%s.gz: read: %s", rel, strerror(errno));
            goto fail;
        }
        old = lseek(tfd, 0, SEEK_END);
    }
    if (lseek(fd, (off_t)done, SEEK_SET) < 0) {
        SAY_ERR(r, "%s: %s", rel, strerror(errno));
        goto fail;
    }
    if ((g = lp_gz_compress(fd, tfd, (int)r->c.level, &crc, &len, &zlen,
                            err)) < 0) {
        SAY_ERR(r, "%s: %s", g == LP_GZ_EWRITE ? tmprel : rel, err);
        goto fail;
    }
    if (len != (uint64_t)st.st_size - done) {
        SAY_ERR(r, "%s: changed while compressed (%llu bytes, not %lld): "
                "left alone", rel, (unsigned long long)len,
                (long long)st.st_size);
        rc = LP_ROTATE_EINTERNAL;
        goto fail;
    }
    if (lp_gz_verify(tfd, old, zlen, crc, len, err) < 0) {
        SAY_ERR(r, "%s: %s: %s left alone", tmprel, err, rel);
        goto fail;
    }
    if (fsync(tfd) < 0) {
        SAY_ERR(r, "%s: fsync: %s", tmprel, strerror(errno));
        goto fail;
    }
    crash_point(r, "after-temp");
    if (renameat(dfd, tmp, dfd, gzname) < 0 || fsync(dfd) < 0) {
        SAY_ERR(r, "%s: rename: %s", rel, strerror(errno));
        goto fail;
    }
    crash_point(r, "after-rename");
    /* the .gz is complete and durable: only now may the source go */
    if (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0) {
        SAY_ERR(r, "%s: unlink: %s", rel, strerror(errno));
        goto out;
    }
    crash_point(r, "after-unlink");
    action(r, gzfd >= 0 ? LP_ROT_APPEND : LP_ROT_COMPRESS, rel,
           (int64_t)len, (int64_t)zlen, lp_mono_ms() - t0, NULL);
    rc = LP_ROTATE_OK;
    goto out;
fail:
    unlinkat(dfd, tmp, 0);
out:
    if (tfd >= 0)
        close(tfd);
    if (gzfd >= 0)
        close(gzfd);
    if (fd >= 0)
        close(fd);              /* drops the lock */
    close(dfd);
    return rc;
}

/* Deletes one file of the tree; under its lock when it is a .jsonl. */
static int delete_one(struct lp_rotate *r, const struct lp_tfile *f,
                      const char *reason)
{
    char err[LP_ERRLEN];
    const char *base;
    int dfd = open_parent(r, f->rel, &base, err), fd = -1, created;

    if (dfd < 0) {
        SAY_ERR(r, "%s", err);
        return LP_ROTATE_EIO;
    }
    if (!r->c.dry_run) {
        if (f->kind == LP_T_JSONL &&
            (fd = lp_fs_open(dfd, base, O_RDONLY, 0, &created, err)) >= 0) {
            while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR || lp_stop) {
                    /* not without the drains' lock */
                    close(fd);
                    close(dfd);
                    return errno == EINTR ? LP_ROTATE_OK : LP_ROTATE_EIO;
                }
            }
        }
        /* a day deleted while a drain journal holds lines of it would
         * come back in part if the drain applied its journal */
        int g = fd >= 0 ? journal_holds(r, f->rel, err) : 0;
        if (g != 0) {
            if (g < 0)
                SAY_ERR(r, "%s", err);
            close(fd);
            close(dfd);
            return g < 0 ? LP_ROTATE_EIO : LP_ROTATE_OK;
        }
        if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) {
            SAY_ERR(r, "%s: %s", f->rel, strerror(errno));
            if (fd >= 0)
                close(fd);
            close(dfd);
            return LP_ROTATE_EIO;
        }
        fsync(dfd);
        if (fd >= 0)
            close(fd);
    }
    close(dfd);
    action(r, LP_ROT_DELETE, f->rel, (int64_t)f->size, -1, -1, reason);
    return LP_ROTATE_OK;
}

/* ---- the tree ----------------------------------------------------------- */

/* A worker: compresses the files whose indexes it reads from in, sends
 * its counts up up, and ends with its result as its exit status. */
static void worker(struct lp_rotate *r, char **rels, int in, int up)
{
    uint32_t i;
    int res = LP_ROTATE_OK;

    memset(&r->t, 0, sizeof r->t);
    /* writes of 4 bytes to a pipe are atomic: one index each */
    while (!lp_stop && read(in, &i, sizeof i) == sizeof i) {
        int rc = compress_one(r, rels[i]);
        if (rc && (res == LP_ROTATE_OK || rc == LP_ROTATE_EIO))
            res = rc;
        if (rc)
            r->t.errors++;
    }
    /* one write under PIPE_BUF: arrives whole */
    if (write(up, &r->t, sizeof r->t) < 0)
        res = res ? res : LP_ROTATE_EINTERNAL;
    _exit(res);
}

/* Compresses the candidates, with the workers pulling indexes from a
 * pipe, so a big file does not hold up the rest. Returns 1 when a worker
 * was killed by SIGPIPE, else 0. */
static int compress_all(struct lp_rotate *r, char **rels, size_t n)
{
    int p[2], tp[2], piped = 0, forwarded = 0;
    pid_t *kids;
    uint64_t jobs = r->c.jobs < n ? r->c.jobs : n;
    struct lp_rotate_counts t;

    if (n == 0)
        return 0;
    if (jobs <= 1) {
        for (size_t i = 0; i < n && !lp_stop; i++) {
            int rc = compress_one(r, rels[i]);
            if (rc)
                failed(r, rc);
        }
        return 0;
    }
    if (pipe(p) < 0 || pipe(tp) < 0 ||
        (kids = calloc(jobs, sizeof *kids)) == NULL) {
        SAY_ERR(r, "cannot start workers: %s", strerror(errno));
        failed(r, LP_ROTATE_EINTERNAL);
        return 0;
    }
    for (uint64_t k = 0; k < jobs; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            free(kids);         /* the tool's, not the worker's */
            close(p[1]);
            close(tp[0]);
            worker(r, rels, p[0], tp[1]);
        }
        kids[k] = pid;
    }
    close(p[0]);
    close(tp[1]);
    for (uint32_t i = 0; i < n && !lp_stop; i++)
        if (lp_fs_write_all(p[1], &i, sizeof i) < 0)
            break;
    close(p[1]);
    for (uint64_t k = 0; k < jobs; k++) {
        int st;
        pid_t w;
        while ((w = waitpid(kids[k], &st, 0)) < 0 && errno == EINTR) {
            /* a stop signal for us is one for the workers too */
            if (lp_stop && !forwarded) {
                for (uint64_t j = 0; j < jobs; j++)
                    kill(kids[j], SIGTERM);
                forwarded = 1;
            }
        }
        if (w < 0)
            continue;
        /* the worker counted its failed files in the counts it sent */
        if (WIFEXITED(st) && WEXITSTATUS(st))
            result(r, WEXITSTATUS(st));
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
            piped = 1;
        else if (WIFSIGNALED(st))
            failed(r, LP_ROTATE_EINTERNAL);
    }
    free(kids);
    while (read(tp[0], &t, sizeof t) == sizeof t) {
        for (int i = 0; i < LP_ROT_NACTIONS; i++)
            r->t.act[i] += t.act[i];
        r->t.bytes_in += t.bytes_in;
        r->t.bytes_out += t.bytes_out;
        r->t.errors += t.errors;
    }
    close(tp[0]);
    return piped;
}

static void on_rmdir(const char *rel, void *arg)
{
    action(arg, LP_ROT_RMDIR, rel, -1, -1, -1, NULL);
}

static int64_t day_end_ms(int64_t day)
{
    return (day + 1) * 86400000LL;
}

/* The files of the tree, in lp_tfile_cmp's order. */
static int walk(struct lp_rotate *r, struct lp_tfile **v, size_t *n,
                char *err)
{
    char why[LP_ERRLEN];

    if (lp_tree_walk(r->dirfd, r->layout, v, n, why) < 0) {
        snprintf(err, LP_ERRLEN, "--dir %s: %s", r->c.dir, why);
        return -1;
    }
    if (*n > 1)
        qsort(*v, *n, sizeof **v, lp_tfile_cmp);
    return 0;
}

/* What a killed rotate left: ".NAME.gz.PID.tmp" whose PID is gone. */
static void cleanup(struct lp_rotate *r, struct lp_tfile *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind != LP_T_TMP)
            continue;
        const char *dot = strrchr(v[i].rel, '.'), *p = dot;
        while (p > v[i].rel && p[-1] >= '0' && p[-1] <= '9')
            p--;
        long pid = p < dot && p > v[i].rel && p[-1] == '.' ?
                   strtol(p, NULL, 10) : 0;
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            v[i].kind = -1;     /* a live rotate's, on another --dir */
            continue;
        }
        if (!r->c.dry_run && unlinkat(r->dirfd, v[i].rel, 0) < 0 &&
            errno != ENOENT) {
            SAY_ERR(r, "%s: %s", v[i].rel, strerror(errno));
            failed(r, LP_ROTATE_EIO);
        }
        action(r, LP_ROT_CLEANUP, v[i].rel, (int64_t)v[i].size, -1, -1,
               NULL);
        v[i].kind = -1;
    }
}

/* --max-size: after compression, oldest days first, never today; a dry
 * run counts the files as they are (not compressed). Returns 0, or -1
 * with err when walking the tree again failed. */
static int max_size(struct lp_rotate *r, struct lp_tfile **vp, size_t *np,
                    char *err)
{
    uint64_t total = 0;
    struct lp_tfile *v;
    size_t n;

    if (!r->c.dry_run) {
        lp_tree_free(*vp, *np);
        *vp = NULL;
        *np = 0;
        if (walk(r, vp, np, err) < 0)
            return -1;
    }
    v = *vp;
    n = *np;
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == LP_T_JSONL || v[i].kind == LP_T_GZ)
            total += v[i].size;
    for (size_t i = 0; i < n && total > r->c.max_size; ) {
        int64_t day = v[i].day;
        if (!v[i].has_day || day >= r->today)
            break;
        /* the whole day goes */
        for (; i < n && v[i].has_day && v[i].day == day; i++) {
            if (v[i].kind != LP_T_JSONL && v[i].kind != LP_T_GZ)
                continue;
            int rc = delete_one(r, &v[i], "max-size");
            if (rc)
                failed(r, rc);
            total -= v[i].size;
        }
    }
    if (total > r->c.max_size)
        lp_notice(&r->c.notify, LP_NOTICE_WARN,
                  "the tree still holds %llu bytes, more than --max-size: "
                  "today is never deleted", (unsigned long long)total);
    return 0;
}

int lp_rotate_run(struct lp_rotate *r, char *err)
{
    struct lp_tfile *v;
    size_t n, nc = 0;
    char **cand;
    int piped;

    if (walk(r, &v, &n, err) < 0)
        return LP_ROTATE_EIO;
    if ((cand = calloc(n + 1, sizeof *cand)) == NULL) {
        lp_tree_free(v, n);
        err[0] = '\0';
        return LP_ROTATE_EINTERNAL;
    }
    cleanup(r, v, n);

    /* retention: whole days that ended longer ago than retain */
    for (size_t i = 0; r->c.retain > 0 && i < n; i++) {
        if ((v[i].kind != LP_T_JSONL && v[i].kind != LP_T_GZ) ||
            !v[i].has_day || day_end_ms(v[i].day) > r->now - r->c.retain)
            continue;
        int rc = delete_one(r, &v[i], "retain");
        if (rc)
            failed(r, rc);
        v[i].kind = -1;
    }

    /* the closed days, not written for the grace time */
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == LP_T_JSONL && v[i].has_day && v[i].day < r->today &&
            v[i].mtime_ms <= r->now - r->c.grace)
            cand[nc++] = v[i].rel;
    piped = compress_all(r, cand, nc);
    free(cand);
    if (piped) {
        /* the workers' reader left (| head): stop here */
        lp_tree_free(v, n);
        err[0] = '\0';
        return LP_ROTATE_EPIPE;
    }

    if (r->c.max_size && !lp_stop && max_size(r, &v, &n, err) < 0) {
        lp_tree_free(v, n);
        return LP_ROTATE_EIO;
    }
    lp_tree_free(v, n);
    if (!r->c.dry_run)
        lp_tree_prune(r->dirfd, on_rmdir, r);
    err[0] = '\0';
    return r->result;
}

int lp_rotate_new(const struct lp_rotate_conf *c, struct lp_rotate **out,
                  char *err)
{
    char why[LP_ERRLEN];
    struct lp_rotate *r;
    int res;

    *out = NULL;
    if ((r = calloc(1, sizeof *r)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_ROTATE_EINTERNAL;
    }
    r->c = *c;
    r->dirfd = r->lock = -1;
    if (lp_layout_new(c->layout, &r->layout, why) < 0) {
        snprintf(err, LP_ERRLEN, "--layout: %s", why);
        res = LP_ROTATE_ELAYOUT;
        goto fail;
    }
    if ((r->dirfd = lp_fs_root(c->dir, 0, why)) < 0) {
        snprintf(err, LP_ERRLEN, "--dir %s", why);
        res = LP_ROTATE_ENODIR;
        goto fail;
    }
    /* one rotate per tree; drains never make dot files */
    r->lock = openat(r->dirfd, ".logpipe-rotate.lock", O_RDWR | O_CREAT |
                     O_CLOEXEC | O_NOFOLLOW, LP_FILE_MODE);
    if (r->lock < 0 || flock(r->lock, LOCK_EX | LOCK_NB) < 0) {
        if (r->lock >= 0 && errno == EWOULDBLOCK) {
            snprintf(err, LP_ERRLEN,
                     "another logpipe-rotate works on %s: nothing done",
                     c->dir);
            res = LP_ROTATE_EBUSY;
            goto fail;
        }
        snprintf(err, LP_ERRLEN, "--dir %s: lock: %s", c->dir,
                 strerror(errno));
        res = LP_ROTATE_EIO;
        goto fail;
    }
    if ((r->journals = lp_journal_reader_new(r->dirfd)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        res = LP_ROTATE_EINTERNAL;
        goto fail;
    }
    r->now = lp_now_ms();
    r->today = r->now / 86400000LL;
    *out = r;
    return LP_ROTATE_OK;
fail:
    lp_rotate_free(r);
    return res;
}

const struct lp_rotate_counts *lp_rotate_counts(const struct lp_rotate *r)
{
    return &r->t;
}

int64_t lp_rotate_now(const struct lp_rotate *r)
{
    return r->now;
}

void lp_rotate_free(struct lp_rotate *r)
{
    if (r == NULL)
        return;
    if (r->lock >= 0)
        close(r->lock);
    if (r->dirfd >= 0)
        close(r->dirfd);
    lp_journal_reader_free(r->journals);
    lp_layout_free(r->layout);
    free(r);
}
