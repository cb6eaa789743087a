/* logpipe-rotate.c -- compress closed days, apply retention */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_buf.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_gz.h"
#include "lp_layout.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "lp_tree.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * Housekeeping of the archive tree, safe while drains write and from cron:
 *
 *   compress  a .jsonl of a day before today (UTC, read from the file name
 *             through --layout), not written for --grace: under the file's
 *             lock (the one drains append under), to a temp file in the
 *             same directory, verified by decompressing it, synced, renamed
 *             to .jsonl.gz, the directory synced, then the .jsonl unlinked;
 *   append    the same for a .jsonl whose day is compressed already (late
 *             events): the temp file gets the old members, then a new one;
 *   delete    days past --retain, and the oldest days while the tree is
 *             larger than --max-size; an empty .jsonl instead of
 *             compressing it, under its lock;
 *   rmdir     directories left empty;
 *   cleanup   temp files of a rotate that was killed.
 *
 * A rotate killed after the rename but before the unlink leaves both
 * files: the next run sees that the .jsonl.gz's last member (its last 8
 * bytes: CRC-32 and length) is the .jsonl, and only unlinks it.
 * One rotate at a time per tree: .logpipe-rotate.lock at its root.
 */

struct rotate_opt {
    struct lp_common com;
    const char *layout;
    int64_t grace, retain;
    uint64_t level, max_size, jobs;
    int dry_run;
};

static struct rotate_opt opt = {
    .layout = "{service}/%Y-%m-%d.jsonl",
    .grace = 15 * 60 * 1000,
    .level = 6,
    .jobs = 1,
};

#define OPT struct rotate_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_DIR,
    { "layout", 0, LP_STR(OPT, layout), "TEMPLATE",
      "the drains' layout, to read days from names\n"
      "({service}/%Y-%m-%d.jsonl)" },
    { "grace", 0, LP_DURATION(OPT, grace), "DUR",
      "leave files written this recently (15m)" },
    { "level", 0, LP_UINT(OPT, level), "N", "gzip level, 1 to 9 (6)",
      .min = 1, .max = 9 },
    { "retain", 0, LP_DURATION(OPT, retain), "DUR",
      "delete days that ended longer ago than DUR" },
    { "max-size", 0, LP_SIZE(OPT, max_size), "SIZE",
      "delete the oldest days while the tree is larger" },
    { "jobs", 'j', LP_UINT(OPT, jobs), "N", "compress N files at once (1)",
      .min = 1, .max = 64 },
    { "dry-run", 'n', LP_FLAG(OPT, dry_run), NULL,
      "print the actions, do nothing" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_cmd cli = {
    .name = "logpipe-rotate",
    .synopsis =
"usage: logpipe-rotate [options]\n"
"Compress the closed days of an archive tree into .jsonl.gz, delete old\n"
"days; one NDJSON line per action on stdout.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 66 no such --dir, 70 internal error, 74 I/O error\n"
"(disk full), 75 another rotate runs on the tree, 78 bad --layout.\n"
"See logpipe-rotate(1).\n",
    .opts = longopts,
};

/* What a run did, for --metrics; workers send theirs up a pipe. */
struct tally {
    uint64_t act[6];            /* by action, as in action_names */
    uint64_t bytes_in, bytes_out, errors;
};

static const char *action_names[] = { "compress", "append", "unlink",
                                      "delete", "cleanup", "rmdir" };

static struct {
    int dirfd;
    struct lp_layout *layout;
    int64_t now, today;
    int exit_code;
    struct tally t;
} S;

/* ---- output ------------------------------------------------------------- */

/* One action line, written with one write(2) so that lines of parallel
 * workers never mix. */
static void action(const char *what, const char *path, int64_t in,
                   int64_t out, int64_t ms, const char *reason)
{
    struct lp_buf b = { 0 };

    lp_buf_adds(&b, "{\"action\":\"");
    lp_buf_adds(&b, what);
    lp_buf_adds(&b, "\",\"path\":");
    lp_buf_add_jstr(&b, path, strlen(path));
    if (in >= 0) {
        lp_buf_adds(&b, ",\"bytes_in\":");
        lp_buf_addu(&b, (unsigned long long)in);
    }
    if (out >= 0) {
        lp_buf_adds(&b, ",\"bytes_out\":");
        lp_buf_addu(&b, (unsigned long long)out);
    }
    if (ms >= 0) {
        lp_buf_adds(&b, ",\"ms\":");
        lp_buf_addu(&b, (unsigned long long)ms);
    }
    if (reason) {
        lp_buf_adds(&b, ",\"reason\":\"");
        lp_buf_adds(&b, reason);
        lp_buf_addc(&b, '"');
    }
    if (opt.dry_run)
        lp_buf_adds(&b, ",\"dry_run\":true");
    lp_buf_adds(&b, "}\n");
    for (int i = 0; i < 6; i++)
        if (strcmp(what, action_names[i]) == 0)
            S.t.act[i]++;
    if (in > 0 && out >= 0)
        S.t.bytes_in += (uint64_t)in;
    if (out > 0)
        S.t.bytes_out += (uint64_t)out;
    if (b.p && lp_fs_write_all(STDOUT_FILENO, b.p, b.len) < 0 &&
        errno == EPIPE) {
        tool_sigpipe_exit();
    }
    lp_buf_free(&b);
}

/* Test-only (LOGPIPE_TEST_CRASH): SIGKILL ourselves at a step. */
static void crash_point(const char *where)
{
    const char *c = getenv("LOGPIPE_TEST_CRASH");

    if (c && strcmp(c, where) == 0)
        kill(getpid(), SIGKILL);
}

static void failed(int code)
{
    S.t.errors++;
    if (S.exit_code == 0 || code == LP_EX_IOERR)
        S.exit_code = code;
}

/* ---- one file ----------------------------------------------------------- */

/* Splits rel into its directory (opened) and base name. Returns the
 * directory fd, or -1 with err ("DIR: why", DIR that directory). */
static int open_parent(const char *rel, const char **base, char *err)
{
    char dir[4096];
    const char *slash = strrchr(rel, '/');

    if (slash == NULL) {
        *base = rel;
        return lp_fs_opendir(S.dirfd, "", err);
    }
    *base = slash + 1;
    if ((size_t)(slash - rel) >= sizeof dir) {
        snprintf(err, LP_ERRLEN, "%s: path too long", rel);
        return -1;
    }
    memcpy(dir, rel, (size_t)(slash - rel));
    dir[slash - rel] = '\0';
    return lp_fs_opendir(S.dirfd, dir, err);
}

/* CRC-32 of fd[0..len); -1 on a read error. */
static int crc_of(int fd, uint64_t len, uint32_t *crc)
{
    static unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    off_t off = 0;

    while ((uint64_t)off < len) {
        size_t want = len - (uint64_t)off < sizeof buf ?
                      (size_t)(len - (uint64_t)off) : sizeof buf;
        ssize_t got = pread(fd, buf, want, off);
        if (got <= 0)
            return -1;
        c = crc32(c, buf, (uInt)got);
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
static uint64_t absorbed(int gzfd, int fd, uint64_t size)
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
    if (glen == 0 || glen > size || crc_of(fd, glen, &crc) < 0 ||
        crc != gcrc)
        return 0;
    return glen;
}

/* Copies from to to: 0, -1 when reading failed, -2 when writing did. */
static int copy_all(int from, int to)
{
    static char buf[1 << 16];
    ssize_t got;
    off_t off = 0;

    while ((got = pread(from, buf, sizeof buf, off)) > 0) {
        if (lp_fs_write_all(to, buf, (size_t)got) < 0)
            return -2;
        off += got;
    }
    return got < 0 ? -1 : 0;
}

/*
 * Compresses rel (a .jsonl of a closed day) into rel.gz, appending a
 * member when rel.gz exists. Returns 0, or an exit status.
 */
static int compress_one(const char *rel)
{
    char err[LP_ERRLEN], gzname[300], tmp[320], tmprel[4096];
    const char *base;
    int dfd, fd = -1, gzfd = -1, tfd = -1, created, rc = LP_EX_IOERR, r;
    struct stat st;
    int64_t t0 = lp_mono_ms();
    uint32_t crc;
    uint64_t len, zlen, done = 0;
    off_t old = 0;

    if ((dfd = open_parent(rel, &base, err)) < 0) {
        lp_error("%s", err);
        return LP_EX_IOERR;
    }
    snprintf(gzname, sizeof gzname, "%s.gz", base);
    snprintf(tmp, sizeof tmp, ".%s.gz.%d.tmp", base, (int)getpid());
    /* for messages: the temp file's path, as rel is, from --dir */
    snprintf(tmprel, sizeof tmprel, "%.*s%s", (int)(base - rel), rel, tmp);
    fd = lp_fs_open(dfd, base, O_RDWR, 0, &created, err);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : LP_EX_IOERR;   /* gone: rotated already */
        if (rc)                 /* err: "BASE: why" */
            lp_error("%.*s%s", (int)(base - rel), rel, err);
        goto out;
    }
    /* the drains' lock: no one appends while we read and unlink */
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR || lp_stop) {
            rc = errno == EINTR ? 0 : LP_EX_IOERR;     /* stopped: skip */
            if (rc)
                lp_error("%s: lock: %s", rel, strerror(errno));
            goto out;
        }
    }
    if (fstat(fd, &st) < 0) {
        lp_error("%s: %s", rel, strerror(errno));
        goto out;
    }
    if (st.st_nlink == 0 ||
        (int64_t)st.st_mtim.tv_sec * 1000 > S.now - opt.grace) {
        rc = 0;                 /* replaced, or written meanwhile */
        goto out;
    }
    if (st.st_size == 0) {
        /* a drain made it and wrote nothing (its batch failed, or held
         * only entries already there): nothing to compress, an empty
         * member would only be noise; gone, as under the lock a drain
         * finds it gone and makes a new one */
        if (!opt.dry_run && (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0)) {
            lp_error("%s: %s", rel, strerror(errno));
            goto out;
        }
        action("delete", rel, 0, -1, -1, "empty");
        rc = 0;
        goto out;
    }
    gzfd = openat(dfd, gzname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (gzfd < 0 && errno != ENOENT) {
        lp_error("%s.gz: %s", rel, strerror(errno));
        goto out;
    }
    if (gzfd >= 0 && (done = absorbed(gzfd, fd, (uint64_t)st.st_size)) ==
        (uint64_t)st.st_size) {
        /* an earlier rotate was killed between rename and unlink */
        if (!opt.dry_run && (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0)) {
            lp_error("%s: %s", rel, strerror(errno));
            goto out;
        }
        action("unlink", rel, (int64_t)st.st_size, -1,
               lp_mono_ms() - t0, "already compressed");
        rc = 0;
        goto out;
    }
    if (done)
        lp_warn("%s: its first %llu bytes are in %s already (a rotate "
                "was killed): compressing the rest", rel,
                (unsigned long long)done, gzname);
    if (opt.dry_run) {
        action(gzfd >= 0 ? "append" : "compress", rel, (int64_t)st.st_size,
               -1, -1, NULL);
        rc = 0;
        goto out;
    }
    tfd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
                 O_NOFOLLOW, LP_FILE_MODE);
    if (tfd < 0) {
        lp_error("cannot create %s: %s", tmprel, strerror(errno));
        goto out;
    }
    /* an error names the file it happened to: writing is to the temp
     * file (a full disk is its), reading from the .gz or the .jsonl */
    if (gzfd >= 0) {
        /* late events: the members so far, then a new one */
        if ((r = copy_all(gzfd, tfd)) < 0) {
            if (r == -2)
                lp_error("%s: write: %s", tmprel, strerror(errno));
            else
                lp_error("%s.gz: read: %s", rel, strerror(errno));
            goto fail;
        }
        old = lseek(tfd, 0, SEEK_END);
    }
    if (lseek(fd, (off_t)done, SEEK_SET) < 0) {
        lp_error("%s: %s", rel, strerror(errno));
        goto fail;
    }
    if ((r = lp_gz_compress(fd, tfd, (int)opt.level, &crc, &len, &zlen,
                            err)) < 0) {
        lp_error("%s: %s", r == LP_GZ_EWRITE ? tmprel : rel, err);
        goto fail;
    }
    if (len != (uint64_t)st.st_size - done) {
        lp_error("%s: changed while compressed (%llu bytes, not %lld): "
                 "left alone", rel, (unsigned long long)len,
                 (long long)st.st_size);
        rc = LP_EX_SOFTWARE;
        goto fail;
    }
    if (lp_gz_verify(tfd, old, zlen, crc, len, err) < 0) {
        lp_error("%s: %s: %s left alone", tmprel, err, rel);
        goto fail;
    }
    if (fsync(tfd) < 0) {
        lp_error("%s: fsync: %s", tmprel, strerror(errno));
        goto fail;
    }
    crash_point("after-temp");
    if (renameat(dfd, tmp, dfd, gzname) < 0 || fsync(dfd) < 0) {
        lp_error("%s: rename: %s", rel, strerror(errno));
        goto fail;
    }
    crash_point("after-rename");
    /* the .gz is complete and durable: only now may the source go */
    if (unlinkat(dfd, base, 0) < 0 || fsync(dfd) < 0) {
        lp_error("%s: unlink: %s", rel, strerror(errno));
        goto out;
    }
    crash_point("after-unlink");
    action(gzfd >= 0 ? "append" : "compress", rel, (int64_t)len,
           (int64_t)zlen, lp_mono_ms() - t0, NULL);
    rc = 0;
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
static int delete_one(const struct lp_tfile *f, const char *reason)
{
    char err[LP_ERRLEN];
    const char *base;
    int dfd = open_parent(f->rel, &base, err), fd = -1, created;

    if (dfd < 0) {
        lp_error("%s", err);
        return LP_EX_IOERR;
    }
    if (!opt.dry_run) {
        if (f->kind == LP_T_JSONL &&
            (fd = lp_fs_open(dfd, base, O_RDONLY, 0, &created, err)) >= 0) {
            while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR || lp_stop) {
                    /* not without the drains' lock */
                    close(fd);
                    close(dfd);
                    return errno == EINTR ? 0 : LP_EX_IOERR;
                }
            }
        }
        if (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) {
            lp_error("%s: %s", f->rel, strerror(errno));
            if (fd >= 0)
                close(fd);
            close(dfd);
            return LP_EX_IOERR;
        }
        fsync(dfd);
        if (fd >= 0)
            close(fd);
    }
    close(dfd);
    action("delete", f->rel, (int64_t)f->size, -1, -1, reason);
    return 0;
}

/* ---- the tree ----------------------------------------------------------- */

/* Compresses the candidates, with --jobs workers pulling indexes from a
 * pipe, so a big file does not hold up the rest. */
static void compress_all(char **rels, size_t n)
{
    int p[2];
    pid_t *kids;
    uint64_t jobs = opt.jobs < n ? opt.jobs : n;

    if (n == 0)
        return;
    if (jobs <= 1) {
        for (size_t i = 0; i < n && !lp_stop; i++) {
            int rc = compress_one(rels[i]);
            if (rc)
                failed(rc);
        }
        return;
    }
    int tp[2];
    if (pipe(p) < 0 || pipe(tp) < 0 ||
        (kids = calloc(jobs, sizeof *kids)) == NULL) {
        lp_error("cannot start workers: %s", strerror(errno));
        failed(LP_EX_SOFTWARE);
        return;
    }
    for (uint64_t k = 0; k < jobs; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            uint32_t i;
            int code = 0;
            close(p[1]);
            /* writes of 4 bytes to a pipe are atomic: one index each */
            close(tp[0]);
            memset(&S.t, 0, sizeof S.t);
            while (!lp_stop && read(p[0], &i, sizeof i) == sizeof i) {
                int rc = compress_one(rels[i]);
                if (rc && (code == 0 || rc == LP_EX_IOERR))
                    code = rc;
                if (rc)
                    S.t.errors++;
            }
            /* one write under PIPE_BUF: arrives whole */
            if (write(tp[1], &S.t, sizeof S.t) < 0)
                code = code ? code : LP_EX_SOFTWARE;
            _exit(code);
        }
        kids[k] = pid;
    }
    close(p[0]);
    close(tp[1]);
    for (uint32_t i = 0; i < n && !lp_stop; i++)
        if (lp_fs_write_all(p[1], &i, sizeof i) < 0)
            break;
    close(p[1]);
    int piped = 0, forwarded = 0;
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
        if (WIFEXITED(st) && WEXITSTATUS(st))
            failed(WEXITSTATUS(st));
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
            piped = 1;
        else if (WIFSIGNALED(st))
            failed(LP_EX_SOFTWARE);
    }
    free(kids);
    {
        struct tally t;
        while (read(tp[0], &t, sizeof t) == sizeof t) {
            for (int i = 0; i < 6; i++)
                S.t.act[i] += t.act[i];
            S.t.bytes_in += t.bytes_in;
            S.t.bytes_out += t.bytes_out;
            S.t.errors += t.errors;
        }
        close(tp[0]);
    }
    if (piped) {
        /* our reader left (| head): leave as it expects */
        tool_sigpipe_exit();
    }
}

static void on_rmdir(const char *rel, void *arg)
{
    (void)arg;
    action("rmdir", rel, -1, -1, -1, NULL);
}

static int64_t day_end_ms(int64_t day)
{
    return (day + 1) * 86400000LL;
}

static int run(void)
{
    char err[LP_ERRLEN];
    struct lp_tfile *v;
    size_t n, nc = 0;
    char **cand;

    if (lp_tree_walk(S.dirfd, S.layout, &v, &n, err) < 0) {
        lp_error("--dir %s: %s", opt.com.dir, err);
        return LP_EX_IOERR;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, lp_tfile_cmp);
    if ((cand = calloc(n + 1, sizeof *cand)) == NULL) {
        lp_tree_free(v, n);
        return LP_EX_SOFTWARE;
    }

    /* what a killed rotate left: ".NAME.gz.PID.tmp" whose PID is gone */
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
        if (!opt.dry_run && unlinkat(S.dirfd, v[i].rel, 0) < 0 &&
            errno != ENOENT) {
            lp_error("%s: %s", v[i].rel, strerror(errno));
            failed(LP_EX_IOERR);
        }
        action("cleanup", v[i].rel, (int64_t)v[i].size, -1, -1, NULL);
        v[i].kind = -1;
    }

    /* retention: whole days that ended longer ago than --retain */
    for (size_t i = 0; opt.retain > 0 && i < n; i++) {
        if ((v[i].kind != LP_T_JSONL && v[i].kind != LP_T_GZ) ||
            !v[i].has_day || day_end_ms(v[i].day) > S.now - opt.retain)
            continue;
        int rc = delete_one(&v[i], "retain");
        if (rc)
            failed(rc);
        v[i].kind = -1;
    }

    /* the closed days, not written for --grace */
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == LP_T_JSONL && v[i].has_day && v[i].day < S.today &&
            v[i].mtime_ms <= S.now - opt.grace)
            cand[nc++] = v[i].rel;
    compress_all(cand, nc);
    free(cand);

    /* --max-size: after compression, oldest days first, never today; a
     * dry run counts the files as they are (not compressed) */
    if (opt.max_size && !lp_stop) {
        uint64_t total = 0;
        if (!opt.dry_run) {
            lp_tree_free(v, n);
            if (lp_tree_walk(S.dirfd, S.layout, &v, &n, err) < 0) {
                lp_error("--dir %s: %s", opt.com.dir, err);
                return LP_EX_IOERR;
            }
            if (n > 1)
                qsort(v, n, sizeof *v, lp_tfile_cmp);
        }
        for (size_t i = 0; i < n; i++)
            if (v[i].kind == LP_T_JSONL || v[i].kind == LP_T_GZ)
                total += v[i].size;
        for (size_t i = 0; i < n && total > opt.max_size; ) {
            int64_t day = v[i].day;
            if (!v[i].has_day || day >= S.today)
                break;
            /* the whole day goes */
            for (; i < n && v[i].has_day && v[i].day == day; i++) {
                if (v[i].kind != LP_T_JSONL && v[i].kind != LP_T_GZ)
                    continue;
                int rc = delete_one(&v[i], "max-size");
                if (rc)
                    failed(rc);
                total -= v[i].size;
            }
        }
        if (total > opt.max_size)
            lp_warn("the tree still holds %llu bytes, more than --max-size: "
                    "today is never deleted", (unsigned long long)total);
    }
    lp_tree_free(v, n);
    if (!opt.dry_run)
        lp_tree_prune(S.dirfd, on_rmdir, NULL);
    return S.exit_code;
}

/* ---- main --------------------------------------------------------------- */

/* --metrics, at exit whatever the status (also 66, 75, 78): a monitor
 * sees the failed runs too. A file that cannot be written is said once
 * and changes nothing else. */
static pid_t metrics_pid;

static void write_metrics(void)
{
    char err[LP_ERRLEN];
    struct lp_metrics *m;

    if (opt.com.metrics == NULL || getpid() != metrics_pid)
        return;
    m = lp_metrics_new(&lp_log_notify);
    for (int i = 0; i < 6; i++) {
        char l[48];
        snprintf(l, sizeof l, "action=\"%s\"", action_names[i]);
        lp_metric_set(lp_counter(m, "logpipe_rotate_actions_total", l,
                                 "Actions taken on the tree."),
                      (double)S.t.act[i]);
    }
    lp_metric_set(lp_counter(m, "logpipe_rotate_bytes_in_total", "",
                             "Bytes compressed."), (double)S.t.bytes_in);
    lp_metric_set(lp_counter(m, "logpipe_rotate_bytes_out_total", "",
                             "Bytes of gzip written."),
                  (double)S.t.bytes_out);
    lp_metric_set(lp_counter(m, "logpipe_rotate_errors_total", "",
                             "Files that could not be handled."),
                  (double)S.t.errors);
    lp_metric_set(lp_gauge(m, "logpipe_rotate_seconds", "",
                           "How long the run took."),
                  (double)(lp_now_ms() - S.now) / 1000.0);
    if (lp_metrics_write(m, opt.com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    int lock, rc;

    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    lp_log_init("logpipe-rotate", opt.com.log_format, opt.com.verbosity);
    lp_sig_init(0);
    S.now = lp_now_ms();
    metrics_pid = getpid();
    tool_at_exit(write_metrics);
    if (lp_layout_new(opt.layout, &S.layout, err) < 0) {
        lp_error("--layout: %s", err);
        return LP_EX_CONFIG;
    }
    if ((S.dirfd = lp_fs_root(opt.com.dir, 0, err)) < 0) {
        lp_error("--dir %s", err);
        return LP_EX_NOINPUT;
    }
    /* one rotate per tree; drains never make dot files */
    lock = openat(S.dirfd, ".logpipe-rotate.lock", O_RDWR | O_CREAT |
                  O_CLOEXEC | O_NOFOLLOW, LP_FILE_MODE);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        if (lock >= 0 && errno == EWOULDBLOCK) {
            lp_error("another logpipe-rotate works on %s: nothing done",
                     opt.com.dir);
            return LP_EX_TEMPFAIL;
        }
        lp_error("--dir %s: lock: %s", opt.com.dir, strerror(errno));
        return LP_EX_IOERR;
    }
    S.now = lp_now_ms();
    S.today = S.now / 86400000LL;
    rc = run();
    close(lock);
    close(S.dirfd);
    lp_layout_free(S.layout);
    return rc;
}
