/* unit-rotate.c -- lp_rotate: the engine's results, actions, notices and
 * counts, one lock per tree even within one process, workers */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lp_journal.h"
#include "lp_parse.h"
#include "lp_rotate.h"
#include "tap.h"

static char root[] = "/tmp/unit-rotate.XXXXXX";

/* What the callbacks heard, in the process that heard it. */
struct heard {
    char actions[1024];         /* "what path reason;" each */
    char errors[1024];          /* "msg;" each */
    char warnings[1024];
};

static void cat(char *to, size_t cap, const char *s)
{
    size_t n = strlen(to);

    snprintf(to + n, cap - n, "%s", s);
}

static void on_action(void *ctx, const struct lp_rotate_action *a)
{
    struct heard *h = ctx;
    char l[512];

    snprintf(l, sizeof l, "%s %s%s%s;", lp_rotate_action_names[a->what],
             a->path, a->reason ? " " : "", a->reason ? a->reason : "");
    cat(h->actions, sizeof h->actions, l);
}

static void on_notice(void *ctx, int level, const char *msg)
{
    struct heard *h = ctx;
    char *to = level == LP_NOTICE_ERROR ? h->errors : h->warnings;

    cat(to, sizeof h->errors, msg);
    cat(to, sizeof h->errors, ";");
}

/* Writes rel below root with text, last modified an hour ago. */
static void put(const char *rel, const char *text)
{
    char path[512], dir[512];
    struct timespec ts[2];
    FILE *f;
    char *slash;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(dir, sizeof dir, "%s", path);
    if ((slash = strrchr(dir, '/')) != NULL) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 3600;
    ts[1] = ts[0];
    utimensat(AT_FDCWD, path, ts, 0);
}

/* "YYYY-MM-DD", k days ago (UTC), in one of a few rotating buffers */
static const char *ago(int k)
{
    static char days[8][16];
    static int next;
    char *d = days[next++ % 8];
    time_t t = time(NULL) - (time_t)k * 86400;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(d, 16, "%Y-%m-%d", &tm);
    return d;
}

/* "DIR/DAY.EXT", DAY k days ago, in one of a few rotating buffers */
static const char *at(const char *dir, int k, const char *ext)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];

    snprintf(p, 256, "%s/%s%s", dir, ago(k), ext);
    return p;
}

static int exists(const char *rel)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s", root, rel);
    return access(path, F_OK) == 0;
}

static struct lp_rotate_conf conf(struct heard *h)
{
    struct lp_rotate_conf c = {
        .dir = root, .layout = "{service}/%Y-%m-%d.jsonl",
        .grace = 15 * 60 * 1000, .level = 6, .jobs = 1,
        .on_action = on_action, .ctx = h,
        .notify = { on_notice, h },
    };
    memset(h, 0, sizeof *h);
    return c;
}

static void test_new(void)
{
    struct heard h;
    struct lp_rotate_conf c = conf(&h);
    struct lp_rotate *r = (struct lp_rotate *)&h, *r2;
    char err[LP_ERRLEN], want[LP_ERRLEN + 64];

    c.dir = "/nonexistent/unit-rotate";
    is_int(lp_rotate_new(&c, &r, err), LP_ROTATE_ENODIR, "no root: ENODIR");
    is_str(err, "--dir /nonexistent/unit-rotate: No such file or directory",
           "no root: said as the tool says it");
    ok(r == NULL, "no root: no object");

    c = conf(&h);
    c.layout = "{nope}/%Y.jsonl";
    is_int(lp_rotate_new(&c, &r, err), LP_ROTATE_ELAYOUT,
           "a bad layout: ELAYOUT");
    ok(strncmp(err, "--layout: ", 10) == 0, "a bad layout: said (%s)", err);

    c = conf(&h);
    is_int(lp_rotate_new(&c, &r, err), LP_ROTATE_OK, "a tree: OK");
    is_int(lp_rotate_new(&c, &r2, err), LP_ROTATE_EBUSY,
           "a second engine on the tree, in the same process: EBUSY");
    snprintf(want, sizeof want,
             "another logpipe-rotate works on %s: nothing done", root);
    is_str(err, want, "EBUSY: said as the tool says it");
    lp_rotate_free(r);
    is_int(lp_rotate_new(&c, &r2, err), LP_ROTATE_OK,
           "the lock is dropped by lp_rotate_free");
    lp_rotate_free(r2);
    lp_rotate_free(NULL);
}

static void test_run(void)
{
    struct heard h;
    struct lp_rotate_conf c = conf(&h);
    struct lp_rotate *r;
    const struct lp_rotate_counts *n;
    char err[LP_ERRLEN], want[1024];

    put(at("api", 2, ".jsonl"), "{\"_id\":\"1-1\"}\n");
    put(at("api", 3, ".jsonl"), "");
    put(at("old", 30, ".jsonl"), "{\"_id\":\"1-2\"}\n");
    put(at("api", 0, ".jsonl"), "{\"_id\":\"1-3\"}\n");

    c.dry_run = 1;
    c.retain = 10 * 86400000LL;
    is_int(lp_rotate_new(&c, &r, err), LP_ROTATE_OK, "dry run: made");
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "dry run: OK");
    snprintf(want, sizeof want, "delete old/%s.jsonl retain;"
             "delete api/%s.jsonl empty;compress api/%s.jsonl;",
             ago(30), ago(3), ago(2));
    is_str(h.actions, want, "dry run: the actions, oldest day first");
    ok(exists(at("api", 2, ".jsonl")) && exists(at("old", 30, ".jsonl"))
       && !exists(at("api", 2, ".jsonl.gz")), "dry run: nothing changed");
    lp_rotate_free(r);

    put(at("api", 1, ".jsonl"), "{\"_id\":\"1-4\"}\n");
    if (symlink("/dev/null", at("api", 1, ".jsonl.gz")) < 0)
        perror("symlink");
    c = conf(&h);
    c.retain = 10 * 86400000LL;
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_EIO,
           "a file that cannot be handled: EIO");
    snprintf(want, sizeof want,
             "api/%s.jsonl.gz: Too many levels of symbolic links;", ago(1));
    is_str(h.errors, want, "it is said through the notify, as an error");
    snprintf(want, sizeof want, "delete old/%s.jsonl retain;"
             "delete api/%s.jsonl empty;compress api/%s.jsonl;rmdir old;",
             ago(30), ago(3), ago(2));
    is_str(h.actions, want, "the rest is done");
    ok(exists(at("api", 2, ".jsonl.gz")) && !exists(at("api", 2, ".jsonl"))
       && !exists("old") && exists(at("api", 0, ".jsonl")),
       "the tree is as said; today is left");
    n = lp_rotate_counts(r);
    is_int(n->act[LP_ROT_COMPRESS], 1, "counts: compress");
    is_int(n->act[LP_ROT_DELETE], 2, "counts: delete");
    is_int(n->act[LP_ROT_RMDIR], 1, "counts: rmdir");
    is_int(n->bytes_in, 14, "counts: bytes in");
    ok(n->bytes_out > 14, "counts: bytes out");
    is_int(n->errors, 1, "counts: errors");
    lp_rotate_free(r);
    unlink(at("api", 1, ".jsonl.gz"));

    /* the late event of a compressed day: a second member */
    put(at("api", 2, ".jsonl"), "{\"_id\":\"1-5\"}\n");
    c = conf(&h);
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "a late event: OK");
    snprintf(want, sizeof want, "append api/%s.jsonl;compress api/%s.jsonl;",
             ago(2), ago(1));
    is_str(h.actions, want, "a late event: appended");
    is_str(h.errors, "", "nothing said");
    lp_rotate_free(r);
}

/* A day file whose lines a drain's journal still holds is left for the
 * next run (said with -v), then compressed once the journal is cut */
static void test_journal(void)
{
    struct heard h;
    struct lp_rotate_conf c = conf(&h);
    struct lp_rotate *r;
    struct lp_journal *j;
    char err[LP_ERRLEN], want[1024];
    const char *rel = at("jr", 2, ".jsonl");
    int dirfd = open(root, O_RDONLY | O_DIRECTORY);

    put(rel, "{\"_id\":\"1-9\"}\n");
    j = lp_journal_open(dirfd, "d1", NULL, err);
    ok(j != NULL, "a drain's journal");
    lp_journal_add(j, rel, strlen(rel), "{\"_id\":\"1-9\"}\n", 14);
    is_int(lp_journal_commit(j, err), 0, "holds a line of %s", rel);
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "rotate: OK");
    ok(exists(rel) && !exists(at("jr", 2, ".jsonl.gz")),
       "the file is left as it is");
    snprintf(want, sizeof want, "%s: left for the next run: lines of it are "
             "still only in the drain journal .logpipe-journal/d1/", rel);
    ok(strstr(h.warnings, want) != NULL, "said, naming the journal: %s",
       h.warnings);
    lp_rotate_free(r);

    is_int(lp_journal_cut(j, lp_journal_seal(j), err), 0,
           "the drain synced the file and cut its journal");
    c = conf(&h);
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "rotate again: OK");
    ok(!exists(rel) && exists(at("jr", 2, ".jsonl.gz")), "now compressed");
    lp_rotate_free(r);

    /* --retain: a day a journal holds lines of is not deleted either */
    rel = at("jd", 3, ".jsonl");
    put(rel, "{\"_id\":\"1-8\"}\n");
    lp_journal_add(j, rel, strlen(rel), "{\"_id\":\"1-8\"}\n", 14);
    is_int(lp_journal_commit(j, err), 0, "holds a line of %s", rel);
    c = conf(&h);
    c.retain = 86400000;
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "rotate --retain 1d: OK");
    ok(exists(rel), "the day past --retain is left while a journal has it");
    snprintf(want, sizeof want, "%s: left for the next run", rel);
    ok(strstr(h.warnings, want) != NULL, "said: %s", h.warnings);
    lp_rotate_free(r);
    is_int(lp_journal_cut(j, lp_journal_seal(j), err), 0, "cut again");
    c = conf(&h);
    c.retain = 86400000;
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "rotate --retain again: OK");
    ok(!exists(rel) && !exists(at("jd", 3, ".jsonl.gz")), "now deleted");
    lp_rotate_free(r);
    lp_journal_remove(j, err);
    lp_journal_close(j);
    close(dirfd);
}

static void test_jobs(void)
{
    struct heard h;
    struct lp_rotate_conf c = conf(&h);
    struct lp_rotate *r;
    char err[LP_ERRLEN], rel[64];

    for (int d = 10; d < 15; d++) {
        snprintf(rel, sizeof rel, "s%d/%s.jsonl", d, ago(d));
        put(rel, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-2\"}\n");
    }
    c.jobs = 3;
    lp_rotate_new(&c, &r, err);
    is_int(lp_rotate_run(r, err), LP_ROTATE_OK, "jobs 3: OK");
    is_int(lp_rotate_counts(r)->act[LP_ROT_COMPRESS], 5,
           "jobs 3: the workers' counts are summed");
    is_int(lp_rotate_counts(r)->bytes_in, 5 * 28, "jobs 3: bytes in summed");
    ok(h.actions[0] == '\0', "jobs 3: the actions were said in the workers");
    for (int d = 10; d < 15; d++) {
        snprintf(rel, sizeof rel, "s%d/%s.jsonl.gz", d, ago(d));
        ok(exists(rel), "jobs 3: %s", rel);
    }
    lp_rotate_free(r);
}

int main(void)
{
    if (mkdtemp(root) == NULL || chdir(root) < 0) {
        perror(root);
        return 1;
    }
    test_new();
    test_run();
    test_journal();
    test_jobs();
    if (chdir("/") == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            perror(cmd);
    }
    return tap_done();
}
