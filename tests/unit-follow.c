/* unit-follow.c -- lp_follow over real files in a temp directory: appends,
 * partial lines, rename rotation live and across a restart, copytruncate,
 * files appearing later, globs, inode reuse, 1,000 files, and a writer
 * rotating in a loop (fixed seed) */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lp_follow.h"
#include "lp_fs.h"
#include "tap.h"

static char dir[4096];

/* ---- helpers ----------------------------------------------------------- */

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static const char *in_dir(const char *name)
{
    static char p[4][4200];
    static int i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

/* dir/name, kept for a pattern (in_dir's are reused) */
static const char *pat(int i, const char *name)
{
    static char p[2][4200];

    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

static void wr(int fd, const char *s)
{
    if (lp_fs_write_all(fd, s, strlen(s)) < 0)
        die("write");
}

/* Appends s to dir/name (made when missing). */
static void append(const char *name, const char *s)
{
    int fd = open(in_dir(name), O_WRONLY | O_APPEND | O_CREAT, 0644);

    if (fd < 0)
        die("open");
    wr(fd, s);
    close(fd);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int rm_one(const char *p, const struct stat *st, int type,
                  struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

/* What the tests hear through the notify. */
static int warnings, infos;
static char last_warning[LP_NOTICELEN];

static void on_notice(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level == LP_NOTICE_INFO) {
        infos++;
        return;
    }
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static struct lp_follow_conf conf(const char **pats, size_t n)
{
    struct lp_follow_conf c;

    memset(&c, 0, sizeof c);
    c.patterns = pats;
    c.npatterns = n;
    c.partial_ms = 200;
    c.rotate_wait_ms = 100;
    c.poll_ms = 50;
    c.notify.fn = on_notice;
    return c;
}

static struct lp_follow *follow(const struct lp_follow_conf *c)
{
    char err[1024];
    struct lp_follow *f = lp_follow_new(c, err);

    if (f == NULL) {
        fprintf(stderr, "lp_follow_new: %s\n", err);
        exit(2);
    }
    return f;
}

/* A line kept: its text, identity and end. */
struct got {
    char text[256];
    char id[LP_FOLLOW_IDLEN];
    uint64_t end;
    uint64_t seq;               /* the caller's counter after it */
    int partial;
};

/* The positions a caller would have committed: id -> end. */
struct pos {
    char id[LP_FOLLOW_IDLEN];
    uint64_t end, seq;
};
static struct pos committed[4096];
static size_t ncommitted;
static char forgotten[64][LP_FOLLOW_IDLEN];
static size_t nforgotten;

static void commit(const char *id, uint64_t end, uint64_t seq)
{
    size_t i;

    for (i = 0; i < ncommitted; i++)
        if (strcmp(committed[i].id, id) == 0)
            break;
    if (i == ncommitted) {
        if (ncommitted == sizeof committed / sizeof *committed) {
            fprintf(stderr, "too many identities\n");
            exit(2);
        }
        ncommitted++;
        snprintf(committed[i].id, sizeof committed[i].id, "%s", id);
    }
    committed[i].end = end;
    committed[i].seq = seq;
}

static void forget(const char *id)
{
    size_t i;

    if (nforgotten < 64)
        snprintf(forgotten[nforgotten++], LP_FOLLOW_IDLEN, "%s", id);
    for (i = 0; i < ncommitted; i++)
        if (strcmp(committed[i].id, id) == 0) {
            committed[i] = committed[--ncommitted];
            return;
        }
}

/* A follower given every position committed. */
static struct lp_follow *restart(const struct lp_follow_conf *c)
{
    struct lp_follow *f = follow(c);
    char err[1024];
    size_t i;

    for (i = 0; i < ncommitted; i++)
        if (lp_follow_position(f, committed[i].id, committed[i].end,
                               committed[i].seq, err) < 0) {
            fprintf(stderr, "lp_follow_position: %s\n", err);
            exit(2);
        }
    return f;
}

/* One step of the caller's loop: the next line, or after waiting as the
 * caller would (poll on the fd, at most the timeout and at most *left
 * ms), IDLE. Forgets are committed and passed over. */
static int step(struct lp_follow *f, struct lp_follow_line *ln, long *left)
{
    char err[1024];
    int rc;

    for (;;) {
        rc = lp_follow_next(f, ln, err);
        if (rc == LP_FOLLOW_ERR) {
            fprintf(stderr, "lp_follow_next: %s\n", err);
            exit(2);
        }
        if (rc == LP_FOLLOW_FORGET) {
            forget(ln->id);
            continue;
        }
        if (rc != LP_FOLLOW_IDLE) {
            /* the caller numbers its lines with the file's counter */
            commit(ln->id, ln->end, ++*ln->seq);
            return rc;
        }
        if (*left <= 0)
            return rc;
        {
            int t = lp_follow_timeout(f), fd = lp_follow_fd(f);
            struct pollfd p = { fd, POLLIN, 0 };
            struct timespec a, b;
            if (t > *left)
                t = (int)*left;
            if (t < 1)
                t = 1;
            clock_gettime(CLOCK_MONOTONIC, &a);
            if (fd >= 0)
                poll(&p, 1, t);
            else
                sleep_ms(t);
            clock_gettime(CLOCK_MONOTONIC, &b);
            *left -= (b.tv_sec - a.tv_sec) * 1000 +
                     (b.tv_nsec - a.tv_nsec) / 1000000;
        }
    }
}

/* Up to max lines into g, waiting at most ms for them. Returns how many. */
static size_t get(struct lp_follow *f, struct got *g, size_t max, long ms)
{
    struct lp_follow_line ln;
    size_t n = 0;
    long left = ms;

    while (n < max && step(f, &ln, &left) != LP_FOLLOW_IDLE) {
        snprintf(g[n].text, sizeof g[n].text, "%.*s", (int)ln.len, ln.p);
        snprintf(g[n].id, sizeof g[n].id, "%s", ln.id);
        g[n].end = ln.end;
        g[n].seq = *ln.seq;
        g[n].partial = ln.partial;
        n++;
    }
    return n;
}

/* Nothing more comes within ms. */
static int quiet(struct lp_follow *f, long ms)
{
    struct got g[1];

    return get(f, g, 1, ms) == 0;
}

static void fresh_dir(void)
{
    const char *t = getenv("TMPDIR");

    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(dir, sizeof dir, "%s/unit-follow.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    ncommitted = nforgotten = 0;
    warnings = infos = 0;
    last_warning[0] = '\0';
}

/* ---- the tests --------------------------------------------------------- */

static void test_appends(int no_inotify)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    size_t n;

    fresh_dir();
    pats[0] = pat(0, "a.log");
    c = conf(pats, 1);
    c.no_inotify = no_inotify;
    append("a.log", "one\ntwo\r\nthree\n");
    f = follow(&c);
    n = get(f, g, 3, 1000);
    is_int(n, 3, "appends%s: the three lines there", no_inotify ? " (poll)" :
           "");
    is_str(g[0].text, "one", "first line");
    is_str(g[1].text, "two", "CR before LF dropped");
    is_int(g[2].end, 15, "position after the third line");
    ok(strcmp(g[0].id, g[2].id) == 0 && g[0].id[0], "one identity");
    ok(quiet(f, 100), "then nothing");
    append("a.log", "four\nfive\n");
    n = get(f, g, 2, 2000);
    is_int(n, 2, "appended lines come");
    is_str(g[1].text, "five", "in order");
    is_int(g[1].end, 25, "with the position after them");
    ok(quiet(f, 100), "and only once");
    is_int(lp_follow_files(f), 1, "one file followed");
    lp_follow_free(f);
}

/* No inotify to be had (its limit, here the descriptors'): said, and the
 * files are looked at every poll_ms. */
static void test_inotify_fails(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct rlimit rl, low;
    struct got g[2];

    fresh_dir();
    pats[0] = pat(0, "n.log");
    c = conf(pats, 1);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    low = rl;
    low.rlim_cur = 3;
    if (setrlimit(RLIMIT_NOFILE, &low) < 0)
        die("setrlimit");
    f = follow(&c);
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("setrlimit");
    ok(lp_follow_fd(f) == -1 && warnings == 1 &&
       strstr(last_warning, "inotify: ") == last_warning,
       "no inotify: said (%s)", last_warning);
    append("n.log", "polled\n");
    ok(get(f, g, 1, 2000) == 1 && strcmp(g[0].text, "polled") == 0,
       "and the file is read all the same");
    lp_follow_free(f);
}

/* A walk that cannot open a directory (no descriptor left): its files
 * are not taken for gone, and the one open is still read. */
static void test_dir_unreadable(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct rlimit rl, low;
    struct got g[2];
    int fd, wfd;

    fresh_dir();
    pats[0] = pat(0, "u.log");
    c = conf(pats, 1);
    c.no_inotify = 1;
    append("u.log", "one\n");
    f = follow(&c);
    ok(get(f, g, 1, 1000) == 1, "no descriptor left: the line before");
    if ((wfd = open(in_dir("u.log"), O_WRONLY | O_APPEND)) < 0 ||
        (fd = dup(0)) < 0)
        die("open");
    close(fd);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    low = rl;
    low.rlim_cur = (rlim_t)fd;  /* every descriptor there is in use */
    if (setrlimit(RLIMIT_NOFILE, &low) < 0)
        die("setrlimit");
    wr(wfd, "two\n");
    sleep_ms(400);              /* walks, and more than rotate_wait */
    ok(get(f, g, 1, 1000) == 1 && strcmp(g[0].text, "two") == 0,
       "the file open is still read");
    is_int(lp_follow_files(f), 1, "and still followed");
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("setrlimit");
    is_int(infos, 0, "nothing was gone and found again");
    close(wfd);
    lp_follow_free(f);
}

static void test_partial(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[4];
    size_t n;

    fresh_dir();
    pats[0] = pat(0, "p.log");
    c = conf(pats, 1);
    c.partial_ms = 300;
    append("p.log", "whole\nhal");
    f = follow(&c);
    n = get(f, g, 4, 100);
    is_int(n, 1, "partial: the whole line only");
    is_int(g[0].end, 6, "its position is before the rest");
    append("p.log", "f done\nsta");
    n = get(f, g, 4, 200);
    is_int(n, 1, "the line ended by a later write comes whole");
    is_str(g[0].text, "half done", "both parts");
    ok(!g[0].partial, "not as a partial line");
    n = get(f, g, 1, 2000);
    is_int(n, 1, "a line without newline comes after partial_timeout");
    is_str(g[0].text, "sta", "as it is");
    ok(g[0].partial, "said partial");
    is_int(g[0].end, 19, "position at the end of the file");
    append("p.log", "rt\n");
    n = get(f, g, 1, 1000);
    is_int(n, 1, "the rest written later is the next line");
    is_str(g[0].text, "rt", "just the rest");
    lp_follow_free(f);
}

static void test_rename_live(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    size_t n;
    int wfd;

    fresh_dir();
    pats[0] = pat(0, "app.log");
    c = conf(pats, 1);
    wfd = open(in_dir("app.log"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (wfd < 0)
        die("open");
    wr(wfd, "1\n2\n");
    f = follow(&c);
    n = get(f, g, 2, 1000);
    is_int(n, 2, "rotation: the lines before");
    /* a line just before the rename, one after it into the old file (the
     * writer has not reopened yet), then the new file */
    wr(wfd, "3\n");
    if (rename(in_dir("app.log"), in_dir("app.log.1")) < 0)
        die("rename");
    wr(wfd, "4\n");
    close(wfd);
    append("app.log", "5\n");
    n = get(f, g, 3, 2000);
    is_int(n, 3, "the old file's two lines and the new file's one");
    is_str(g[0].text, "3", "the line written before the rename");
    is_str(g[1].text, "4", "the line written to the old file after it");
    ok(strcmp(g[0].id, g[1].id) == 0, "both of the old file");
    is_str(g[2].text, "5", "then the new file's");
    ok(strcmp(g[1].id, g[2].id) != 0, "under another identity");
    is_int(g[2].end, 2, "the new file from its start");
    ok(quiet(f, 300), "nothing twice");
    is_int(lp_follow_open(f), 1, "the rotated file closed after the wait");
    append("app.log.1", "6\n");
    n = get(f, g, 1, 2000);
    ok(n == 1 && strcmp(g[0].text, "6") == 0,
       "a rotated file still there is read again when it grows");
    is_int(warnings, 0, "no warning");
    lp_follow_free(f);
}

static void test_restart(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    char err[1024];
    size_t n;

    fresh_dir();
    pats[0] = pat(0, "app.log");
    c = conf(pats, 1);
    append("app.log", "a1\na2\n");
    f = follow(&c);
    n = get(f, g, 1, 1000);
    is_int(n, 1, "restart: one line taken (and committed)");
    lp_follow_free(f);
    /* while down: a line, the rename, a line after it, the new file */
    append("app.log", "a3\n");
    if (rename(in_dir("app.log"), in_dir("app.log.1")) < 0)
        die("rename");
    append("app.log.1", "a4\n");
    append("app.log", "b1\n");
    f = restart(&c);
    n = get(f, g, 4, 2000);
    is_int(n, 4, "the rest of the old file and the new one");
    is_str(g[0].text, "a2", "the old file where it stopped");
    ok(n == 4 && strcmp(g[2].text, "a4") == 0 &&
       strcmp(g[0].id, g[2].id) == 0, "to the line after the rename");
    ok(n == 4 && strcmp(g[3].text, "b1") == 0 &&
       strcmp(g[3].id, g[0].id) != 0, "the new file under its identity");
    ok(n == 4 && g[0].seq == 2 && g[1].seq == 3 && g[2].seq == 4,
       "the old file's counter goes on from the one handed in, across "
       "the rename");
    ok(n == 4 && g[3].seq == 1, "the new file's starts at 0");
    ok(quiet(f, 300), "nothing twice");
    lp_follow_free(f);

    /* again with nothing new: nothing is read twice */
    f = restart(&c);
    ok(quiet(f, 300), "a restart with every position: nothing again");
    ok(lp_follow_position(f, "not-an-id", 1, 0, err) < 0,
       "a string that is no identity is refused");
    ok(lp_follow_position(f, "801-0A-10-0000000000000001-0", 1, 0, err) < 0,
       "one not written as we write them too");
    lp_follow_free(f);
}

static void test_truncate(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    char old[LP_FOLLOW_IDLEN];
    size_t n;
    long left = 2000;
    struct lp_follow_line ln;
    char err[1024];
    int rc;

    fresh_dir();
    pats[0] = pat(0, "t.log");
    c = conf(pats, 1);
    c.forget_ms = 200;
    append("t.log", "before one\nbefore two\n");
    f = follow(&c);
    n = get(f, g, 2, 1000);
    is_int(n, 2, "copytruncate: the lines before");
    snprintf(old, sizeof old, "%s", g[1].id);
    if (truncate(in_dir("t.log"), 0) < 0)
        die("truncate");
    append("t.log", "after\n");
    n = get(f, g, 1, 2000);
    is_int(n, 1, "the line after the cut");
    is_str(g[0].text, "after", "read from the start again");
    ok(strcmp(g[0].id, old) != 0, "under a new identity");
    ok(g[0].seq == 1, "its counter from 0 again");
    is_int(warnings, 1, "said once");
    ok(strstr(last_warning, "truncated") != NULL, "as truncated: %s",
       last_warning);
    /* the old identity is handed back to forget */
    do
        rc = lp_follow_next(f, &ln, err);
    while (rc == LP_FOLLOW_IDLE && (sleep_ms(20), (left -= 20) > 0));
    is_int(rc, LP_FOLLOW_FORGET, "the old identity comes back to forget");
    ok(rc == LP_FOLLOW_FORGET && strcmp(ln.id, old) == 0, "that one");
    ok(rc == LP_FOLLOW_FORGET && ln.end == 22, "with its last position");
    lp_follow_free(f);
}

static void test_later_and_glob(int no_inotify)
{
    const char *pats[2];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    size_t n, i;
    int seen_a = 0, seen_c = 0, other = 0;

    fresh_dir();
    pats[0] = pat(0, "*.log");
    pats[1] = pat(1, "*/c.log");
    c = conf(pats, 2);
    c.no_inotify = no_inotify;
    c.poll_ms = 100;
    f = follow(&c);
    ok(quiet(f, 150), "glob%s: nothing there yet",
       no_inotify ? " (poll)" : "");
    append("a.log", "A\n");
    append("b.txt", "B\n");
    append(".hidden.log", "H\n");
    if (mkdir(in_dir("sub"), 0755) < 0)
        die("mkdir");
    append("sub/c.log", "C\n");
    append("sub/d.log", "D\n");
    n = get(f, g, 2, 2000);
    for (i = 0; i < n; i++) {
        if (strcmp(g[i].text, "A") == 0)
            seen_a++;
        else if (strcmp(g[i].text, "C") == 0)
            seen_c++;
        else
            other++;
    }
    ok(seen_a == 1 && seen_c == 1,
       "files that appear later are picked up, in a directory made later");
    ok(quiet(f, 300) && other == 0,
       "only what the patterns match (not b.txt, .hidden.log, sub/d.log)");
    is_int(lp_follow_files(f), 2, "two files followed");
    /* the directory removed and made again: watched again */
    if (unlink(in_dir("sub/c.log")) < 0 || unlink(in_dir("sub/d.log")) < 0 ||
        rmdir(in_dir("sub")) < 0)
        die("rmdir");
    ok(quiet(f, 150), "a directory removed: nothing");
    if (mkdir(in_dir("sub"), 0755) < 0)
        die("mkdir");
    ok(quiet(f, 150), "made again: nothing yet");
    append("sub/c.log", "C2\n");
    n = get(f, g, 1, 2000);
    ok(n == 1 && strcmp(g[0].text, "C2") == 0,
       "a file in the directory made again is read");
    lp_follow_free(f);
}

/* Waits up to ms for an identity to forget, passing lines over. */
static int wait_forget(struct lp_follow *f, char *id, uint64_t *end, long ms)
{
    struct lp_follow_line ln;
    char err[1024];
    int rc;

    for (;;) {
        rc = lp_follow_next(f, &ln, err);
        if (rc == LP_FOLLOW_FORGET) {
            snprintf(id, LP_FOLLOW_IDLEN, "%s", ln.id);
            *end = ln.end;
            return 1;
        }
        if (rc == LP_FOLLOW_IDLE) {
            if ((ms -= 10) < 0)
                return 0;
            sleep_ms(10);
        }
    }
}

static void test_inode_reuse(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[8];
    char old[LP_FOLLOW_IDLEN];
    size_t n;
    int fd;

    fresh_dir();
    pats[0] = pat(0, "r.log");
    c = conf(pats, 1);
    c.forget_ms = 200;
    append("r.log", "first file, line one\nfirst file, line two\n");
    f = follow(&c);
    n = get(f, g, 2, 1000);
    is_int(n, 2, "reuse: the first file's lines");
    snprintf(old, sizeof old, "%s", g[1].id);
    lp_follow_free(f);
    /* the same inode with other first bytes, longer than the position
     * committed: a new file, whatever its inode says */
    fd = open(in_dir("r.log"), O_WRONLY | O_TRUNC);
    if (fd < 0)
        die("open");
    wr(fd, "SECOND file, line one\nsecond file, line two\nthree\n");
    close(fd);
    f = restart(&c);
    n = get(f, g, 3, 2000);
    is_int(n, 3, "the new file's lines, from its start");
    is_str(g[0].text, "SECOND file, line one", "its first");
    ok(n && strcmp(g[0].id, old) != 0, "under a new identity");
    {
        char id[LP_FOLLOW_IDLEN];
        uint64_t end = 0;
        ok(wait_forget(f, id, &end, 3000) && strcmp(id, old) == 0 &&
           end == 42, "the position handed in for the old one comes back "
           "to forget");
    }
    lp_follow_free(f);
}

static void test_delete(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[4];
    char old[LP_FOLLOW_IDLEN], id[LP_FOLLOW_IDLEN];
    struct stat st1, st2;
    uint64_t end = 0;
    size_t n;
    int wfd;

    fresh_dir();
    pats[0] = pat(0, "d.log");
    c = conf(pats, 1);
    c.forget_ms = 200;
    wfd = open(in_dir("d.log"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (wfd < 0 || fstat(wfd, &st1) < 0)
        die("open");
    wr(wfd, "deleted file, line one\n");
    f = follow(&c);
    n = get(f, g, 1, 1000);
    is_int(n, 1, "delete: the line before");
    snprintf(old, sizeof old, "%s", g[0].id);
    if (unlink(in_dir("d.log")) < 0)
        die("unlink");
    wr(wfd, "written after the unlink\n");
    close(wfd);
    n = get(f, g, 1, 2000);
    ok(n == 1 && strcmp(g[0].text, "written after the unlink") == 0 &&
       strcmp(g[0].id, old) == 0, "a deleted file open is read to its end");
    ok(wait_forget(f, id, &end, 3000) && strcmp(id, old) == 0 && end == 48,
       "then its identity comes back to forget, with its position");
    is_int(lp_follow_open(f), 0, "and it is closed");
    /* a new file under the name: on ext4 often the same inode */
    append("d.log", "new file\n");
    if (stat(in_dir("d.log"), &st2) < 0)
        die("stat");
    n = get(f, g, 1, 2000);
    ok(n == 1 && strcmp(g[0].text, "new file") == 0 &&
       strcmp(g[0].id, old) != 0, "a new file under the name: from its "
       "start, under its identity (inode %s)",
       st1.st_ino == st2.st_ino ? "reused" : "not reused");
    ok(quiet(f, 300), "nothing twice");
    lp_follow_free(f);
}

/* A file cut back and written past its position before it is looked at
 * again: its first bytes say it. */
static void test_truncate_regrow(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct got g[4];
    char old[LP_FOLLOW_IDLEN];
    size_t n;
    int fd;

    fresh_dir();
    pats[0] = pat(0, "q.log");
    c = conf(pats, 1);
    c.no_inotify = 1;
    c.poll_ms = 300;
    append("q.log", "aaaa\n");
    f = follow(&c);
    n = get(f, g, 1, 1000);
    is_int(n, 1, "cut and grown again: the line before");
    snprintf(old, sizeof old, "%s", g[0].id);
    fd = open(in_dir("q.log"), O_WRONLY | O_TRUNC);
    if (fd < 0)
        die("open");
    wr(fd, "bbbbbbbbbb\ncc\n");
    close(fd);
    warnings = 0;
    n = get(f, g, 2, 2000);
    ok(n == 2 && strcmp(g[0].text, "bbbbbbbbbb") == 0 &&
       strcmp(g[0].id, old) != 0, "read from its start, a new identity");
    ok(warnings == 1 && strstr(last_warning, "not the file it was"),
       "said: %s", last_warning);
    lp_follow_free(f);
}

static void test_from_end_and_long(void)
{
    const char *pats[2];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct lp_follow_line ln;
    long left = 2000;
    int rc, chunks = 0, first = 0, last = 0;
    size_t bytes = 0;

    fresh_dir();
    pats[0] = pat(0, "e.log");
    c = conf(pats, 1);
    c.from_end = 1;
    c.max_line = 16;
    append("e.log", "old\nold\n");
    f = follow(&c);
    ok(quiet(f, 150), "from_end: what was there is passed over");
    append("e.log", "0123456789abcdefghijklmnopqrstuvwxyz0123456789\nok\n");
    while ((rc = step(f, &ln, &left)) == LP_FOLLOW_LONG) {
        chunks++;
        bytes += ln.len;
        first += ln.first;
        last += ln.last;
    }
    ok(chunks >= 3 && bytes == 46 && first == 1 && last == 1,
       "a line over max_line comes in chunks, the first and last said "
       "(%d chunks, %zu bytes)", chunks, bytes);
    ok(rc == LP_FOLLOW_LINE && ln.len == 2 && memcmp(ln.p, "ok", 2) == 0 &&
       ln.end == 8 + 47 + 3, "then the next line, at its position");
    lp_follow_free(f);
}

static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    fclose(fp);
    return kb;
}

static void test_many(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct lp_follow_line ln;
    char name[64], line[64];
    long left = 20000, kb;
    size_t i, n = 0, maxopen = 0;
    int bad = 0;

    fresh_dir();
    pats[0] = pat(0, "f*.log");
    c = conf(pats, 1);
    c.max_open = 64;
    for (i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "f%04zu.log", i);
        snprintf(line, sizeof line, "%zu a\n%zu b\n", i, i);
        append(name, line);
    }
    f = follow(&c);
    while (n < 2000 && step(f, &ln, &left) == LP_FOLLOW_LINE) {
        n++;
        if (lp_follow_open(f) > maxopen)
            maxopen = lp_follow_open(f);
    }
    for (i = 0; i < 1000; i += 7) {
        snprintf(name, sizeof name, "f%04zu.log", i);
        snprintf(line, sizeof line, "%zu c\n", i);
        append(name, line);
    }
    while (n < 2143 && step(f, &ln, &left) == LP_FOLLOW_LINE) {
        n++;
        bad += ln.len < 2 || ln.p[ln.len - 1] != 'c';
        if (lp_follow_open(f) > maxopen)
            maxopen = lp_follow_open(f);
    }
    is_int(n, 2143, "1,000 files: every line, the appended ones too");
    is_int(bad, 0, "the appended lines after the first ones");
    ok(maxopen <= 64, "at most max_open files open (%zu)", maxopen);
    is_int(lp_follow_files(f), 1000, "1,000 files followed");
    kb = rss_kb();
    if (getenv("LP_NO_RSS"))
        ok(1, "# SKIP RSS under valgrind");
    else
        ok(kb > 0 && kb < 32 * 1024, "under 32 MB RSS (%ld kB)", kb);
    lp_follow_free(f);
}

/* ---- a writer rotating in a loop --------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

#define GENS 400

/*
 * With "app.log*" every file the writer makes is matched, under any of its
 * names: every line must come once, in order. With "app.log", a file made
 * and renamed away between two walks is never seen (nor is one that lived
 * while the follower was down): a file seen must be read whole, once, in
 * order; one never seen may be missing whole.
 */
static void test_loop(int no_inotify, unsigned steps, int star)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    static unsigned written[GENS], next[GENS];
    static char idof[GENS][LP_FOLLOW_IDLEN];
    unsigned gen = 0, s, g, seq, dups = 0, gaps = 0, idbad = 0, restarts = 0;
    unsigned rotations = 0, lines = 0, unseen = 0;
    int wfd, half = 0;
    char buf[64], wbuf[64];             /* the reader's, the writer's */

    fresh_dir();
    memset(written, 0, sizeof written);
    memset(next, 0, sizeof next);
    memset(idof, 0, sizeof idof);
    pats[0] = pat(0, star ? "app.log*" : "app.log");
    c = conf(pats, 1);
    c.no_inotify = no_inotify;
    c.max_open = 3;
    c.partial_ms = 60000;       /* the loop never waits for a rest */
    c.rotate_wait_ms = 20;
    c.poll_ms = 10;
    wfd = open(in_dir("app.log"), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (wfd < 0)
        die("open");
    f = follow(&c);

    /* a line's text is "gen seq"; one is sometimes written in two parts */
#define CHECK_LINE(ln) do { \
        if (sscanf(buf, "%u %u", &g, &seq) != 2 || g >= GENS) { \
            gaps++; \
        } else { \
            if (idof[g][0] == '\0') \
                snprintf(idof[g], LP_FOLLOW_IDLEN, "%s", (ln).id); \
            else if (strcmp(idof[g], (ln).id) != 0) \
                idbad++; \
            if (seq < next[g]) \
                dups++; \
            else if (seq > next[g] && ++gaps < 5) \
                printf("# gen %u: %u after %u\n", g, seq, next[g]); \
            next[g] = seq + 1; \
            lines++; \
        } \
    } while (0)

    for (s = 0; s < steps; s++) {
        unsigned r = rnd(100);
        if (r < 45) {
            unsigned k = 1 + rnd(20);
            while (k--) {
                if (half) {
                    wr(wfd, wbuf + half);
                    half = 0;
                    continue;
                }
                snprintf(wbuf, sizeof wbuf, "%u %u\n", gen, written[gen]++);
                if (rnd(10) == 0) {
                    half = 1 + (int)rnd((unsigned)strlen(wbuf) - 1);
                    char save = wbuf[half];
                    wbuf[half] = '\0';
                    wr(wfd, wbuf);
                    wbuf[half] = save;
                    if (k == 0)
                        break;      /* the rest comes with a later write */
                } else {
                    wr(wfd, wbuf);
                }
            }
        } else if (r < 53 && gen + 1 < GENS) {
            /* rename rotation: the rest of a line, the rename, lines to
             * the old file after it, the new file */
            char to[32];
            if (half) {
                wr(wfd, wbuf + half);
                half = 0;
            }
            snprintf(to, sizeof to, "app.log.%u", gen);
            if (rename(in_dir("app.log"), in_dir(to)) < 0)
                die("rename");
            for (unsigned k = rnd(3); k > 0; k--) {
                snprintf(wbuf, sizeof wbuf, "%u %u\n", gen, written[gen]++);
                wr(wfd, wbuf);
            }
            close(wfd);
            gen++;
            rotations++;
            wfd = open(in_dir("app.log"), O_WRONLY | O_APPEND | O_CREAT |
                       O_EXCL, 0644);
            if (wfd < 0)
                die("open");
        } else if (r < 56) {
            lp_follow_free(f);
            f = restart(&c);
            restarts++;
        } else {
            struct lp_follow_line ln;
            long left = rnd(4) == 0 ? 5 : 0;
            unsigned k = 1 + rnd(40);
            while (k-- && step(f, &ln, &left) == LP_FOLLOW_LINE) {
                snprintf(buf, sizeof buf, "%.*s", (int)ln.len, ln.p);
                CHECK_LINE(ln);
            }
        }
    }
    if (half)
        wr(wfd, wbuf + half);
    close(wfd);
    {
        struct lp_follow_line ln;
        unsigned want = 0;
        long left = 20000;
        for (g = 0; g <= gen; g++)
            want += written[g];
        if (!star)
            left = 1500;        /* files never seen never come */
        while (lines + gaps < want && step(f, &ln, &left) == LP_FOLLOW_LINE) {
            snprintf(buf, sizeof buf, "%.*s", (int)ln.len, ln.p);
            CHECK_LINE(ln);
        }
        for (g = 0; g <= gen; g++)
            if (next[g] == 0 && !star)
                unseen++;
            else if (next[g] != written[g] && ++gaps < 10)
                printf("# gen %u: %u lines of %u\n", g, next[g], written[g]);
        ok(quiet(f, 100), "loop %s%s: nothing more at the end",
           pats[0] + strlen(dir) + 1, no_inotify ? " (poll)" : "");
    }
#undef CHECK_LINE
    ok(dups == 0 && gaps == 0 && idbad == 0,
       "every line once, in order per file, one identity per file "
       "(%u lines, %u rotations, %u restarts; %u twice, %u lost or out of "
       "order, %u under another identity; %u never seen)", lines, rotations,
       restarts, dups, gaps, idbad, unseen);
    is_int(warnings, 0, "no warning");
    ok(rotations > 10 && restarts > 5, "the loop rotated and restarted");
    lp_follow_free(f);
}

/*
 * A writer process appending lines (some in two writes) and renaming the
 * file away every few hundred lines, while the follower reads "app.log*"
 * and is restarted with its committed positions every few hundred lines:
 * every line once, in order per file. Races that the loop above cannot
 * have (a rename between a walk and a read, a line half written when it
 * is read) happen here as they happen.
 */
#define CW_LINES 20000
#define CW_GENS 200

static void test_concurrent(void)
{
    const char *pats[1];
    struct lp_follow_conf c;
    struct lp_follow *f;
    struct lp_follow_line ln;
    static unsigned next[CW_GENS];
    unsigned lines = 0, dups = 0, gaps = 0, g, seq, restarts = 0;
    long left = 60000;
    char buf[64];
    pid_t pid;
    int status;

    fresh_dir();
    memset(next, 0, sizeof next);
    pats[0] = pat(0, "app.log*");
    c = conf(pats, 1);
    c.partial_ms = 10000;
    c.rotate_wait_ms = 50;
    c.poll_ms = 20;
    c.max_open = 4;
    fflush(stdout);
    if ((pid = fork()) < 0)
        die("fork");
    if (pid == 0) {
        unsigned gen = 0, n = 0, i;
        int fd = open(in_dir("app.log"), O_WRONLY | O_APPEND | O_CREAT,
                      0644);
        rng = 0x9e3779b97f4a7c15ULL;
        for (i = 0; i < CW_LINES; i++) {
            int len = snprintf(buf, sizeof buf, "%u %u\n", gen, n++), cut;
            if (fd < 0)
                _exit(2);
            if (rnd(8) == 0) {
                cut = 1 + (int)rnd((unsigned)len - 1);
                if (lp_fs_write_all(fd, buf, (size_t)cut) < 0 ||
                    lp_fs_write_all(fd, buf + cut, (size_t)(len - cut)) < 0)
                    _exit(2);
            } else if (lp_fs_write_all(fd, buf, (size_t)len) < 0) {
                _exit(2);
            }
            if (rnd(64) == 0)
                usleep(200);
            if (rnd(200) == 0 && gen + 1 < CW_GENS) {
                char to[32];
                snprintf(to, sizeof to, "app.log.%u", gen);
                if (rename(in_dir("app.log"), in_dir(to)) < 0)
                    _exit(2);
                close(fd);
                gen++;
                n = 0;
                fd = open(in_dir("app.log"), O_WRONLY | O_APPEND | O_CREAT,
                          0644);
            }
        }
        _exit(0);
    }
    f = follow(&c);
    while (lines + gaps < CW_LINES && step(f, &ln, &left) == LP_FOLLOW_LINE) {
        snprintf(buf, sizeof buf, "%.*s", (int)ln.len, ln.p);
        if (sscanf(buf, "%u %u", &g, &seq) != 2 || g >= CW_GENS) {
            gaps++;
            continue;
        }
        if (seq < next[g])
            dups++;
        else if (seq > next[g])
            gaps += seq - next[g];
        next[g] = seq + 1;
        lines++;
        if (rnd(700) == 0) {
            lp_follow_free(f);
            f = restart(&c);
            restarts++;
        }
    }
    waitpid(pid, &status, 0);
    for (g = 0; g < CW_GENS && next[g]; g++)
        ;
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer: done");
    ok(lines == CW_LINES && dups == 0 && gaps == 0,
       "a writer and a follower at once: every line once, in order per "
       "file (%u lines in %u files, %u restarts; %u twice, %u lost)",
       lines, g, restarts, dups, gaps);
    ok(quiet(f, 100), "nothing more");
    is_int(warnings, 0, "no warning");
    lp_follow_free(f);
}

int main(void)
{
    test_appends(0);
    test_appends(1);
    test_inotify_fails();
    test_dir_unreadable();
    test_partial();
    test_rename_live();
    test_restart();
    test_truncate();
    test_later_and_glob(0);
    test_later_and_glob(1);
    test_inode_reuse();
    test_delete();
    test_truncate_regrow();
    test_from_end_and_long();
    test_many();
    test_loop(0, 3000, 1);
    test_loop(1, 1500, 1);
    test_loop(0, 1500, 0);
    test_concurrent();
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
