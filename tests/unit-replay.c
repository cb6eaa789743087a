/* unit-replay.c -- lp_replay: inputs, order, filters, notices, endings */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_exit.h"
#include "lp_gz.h"
#include "lp_json.h"
#include "lp_replay.h"
#include "tap.h"

static char dir[256];

/* ---- the notices, kept to be looked at --------------------------------- */

#define MAXSAID 64
struct said {
    int n, total;
    int level[MAXSAID];
    char msg[MAXSAID][LP_NOTICELEN];
    int asked, allow;           /* take_some: asked, how many it allows */
};

static void keep(void *ctx, int level, const char *msg)
{
    struct said *s = ctx;

    s->total++;
    if (s->n == MAXSAID)
        return;
    s->level[s->n] = level;
    snprintf(s->msg[s->n], sizeof s->msg[0], "%s", msg);
    s->n++;
}

/* A budget: the first s->allow messages about a line, none after */
static int take_some(void *ctx, int level)
{
    struct said *s = ctx;

    (void)level;
    return ++s->asked <= s->allow;
}

/* how many notices of level were said */
static int count(const struct said *s, int level)
{
    int k = 0;

    for (int i = 0; i < s->n; i++)
        k += s->level[i] == level;
    return k;
}

/* ---- files -------------------------------------------------------------- */

static const char *path(const char *name)
{
    static char p[4][512];
    static int k;

    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* path(name) that lasts until the end of the test (an input's) */
static char *kept[16];
static int nkept;

static const char *input(const char *name)
{
    return kept[nkept++] = strdup(path(name));
}

static void put(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");

    if (f == NULL) {
        perror(name);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* name.gz from the text, as one gzip member */
static void put_gz(const char *name, const char *text)
{
    char err[LP_ERRLEN], tmp[520];
    uint32_t crc;
    uint64_t len, zlen;
    int in, out;

    snprintf(tmp, sizeof tmp, "%s.in", name);
    put(tmp, text);
    in = open(path(tmp), O_RDONLY);
    out = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 ||
        lp_gz_compress(in, out, 6, &crc, &len, &zlen, err) < 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        exit(2);
    }
    close(in);
    close(out);
    unlink(path(tmp));
}

/* The whole file name, malloc'd (the caller frees); "" when missing. */
static char *slurp(const char *name)
{
    FILE *f = fopen(path(name), "r");
    struct stat st;
    size_t cap = f && fstat(fileno(f), &st) == 0 ? (size_t)st.st_size : 0;
    char *p = calloc(1, cap + 1);
    size_t n = 0;

    if (f != NULL) {
        n = fread(p, 1, cap, f);
        fclose(f);
    }
    p[n] = '\0';
    return p;
}

/* ---- one run ------------------------------------------------------------ */

static struct lp_replay_conf conf(struct said *s, int out_fd)
{
    struct lp_replay_conf c = {
        .layout = "{service}/%Y-%m-%d.jsonl",
        .time_field = "timestamp",
        .field = "data",
        .dlq = "logs:dlq",
        .max_line = 16 << 20,
        .out_fd = out_fd,
        .out_name = "out",
        .notify = { keep, s },
    };
    memset(s, 0, sizeof *s);
    return c;
}

struct run {
    int new_st, add_rc, run_rc;
    struct lp_replay_result res;
    char err[LP_ERRLEN];
    char *out;
};

/* Runs c over the paths (NULL-ended), its output into the file "out". */
static struct run replay(struct lp_replay_conf c, const char *const *paths)
{
    struct lp_replay *rp;
    struct run r = { 0 };
    int fd = open(path("out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (c.out_fd < 0)
        c.out_fd = fd;
    r.new_st = lp_replay_new(&c, &rp, r.err);
    if (r.new_st == 0) {
        for (; *paths && r.add_rc == 0; paths++)
            r.add_rc = lp_replay_add_path(rp, *paths, r.err);
        r.run_rc = lp_replay_run(rp, r.err);
        r.res = *lp_replay_result(rp);
        lp_replay_free(rp);
    }
    close(fd);
    r.out = slurp("out");
    return r;
}

static void test_config(void)
{
    struct said s;
    struct lp_replay_conf c = conf(&s, -1);
    struct lp_replay *rp = (struct lp_replay *)1;
    char err[LP_ERRLEN];

    c.layout = "{service}/x";
    is_int(lp_replay_new(&c, &rp, err), LP_EX_CONFIG, "a bad layout: 78");
    ok(rp == NULL && strncmp(err, "--layout: ", 10) == 0,
       "... said as --layout's (%s)", err);
    c = conf(&s, -1);
    c.where = ".a ==";
    is_int(lp_replay_new(&c, &rp, err), LP_EX_CONFIG, "a bad --where: 78");
    ok(rp == NULL && strncmp(err, "--where: ", 9) == 0,
       "... said as --where's (%s)", err);
    lp_replay_free(NULL);
    ok(1, "free accepts NULL");
}

static void test_lines(void)
{
    struct said s;
    struct lp_replay_conf c = conf(&s, -1);
    const char *paths[] = { input("a.jsonl"), input("nosuch"), NULL };
    struct run r;

    put("a.jsonl",
        "{\"timestamp\":100,\"n\":1}\n"
        "\n"
        "broken\n"
        "  {\"timestamp\":200,\"n\":2}  \n"
        "[3]\n"
        "{\"timestamp\":300,\"n\":3}\n"
        "{\"_id\":\"400000-0\",\"n\":4}\n");
    c.since = 150 * 1000;
    c.has_since = 1;
    c.until = 350 * 1000;
    c.has_until = 1;
    r = replay(c, paths);
    is_int(r.run_rc, 0, "a run to the end: 0");
    is_str(r.out, "{\"timestamp\":200,\"n\":2}\n{\"timestamp\":300,\"n\":3}\n",
           "inside --since/--until, trimmed, in order");
    is_int(r.res.status, LP_EX_NOINPUT, "a missing PATH outranks damage: 66");
    is_int(r.res.lines, 6, "lines read (not the blank one)");
    is_int(r.res.printed, 2, "printed");
    is_int(r.res.damaged, 2, "damaged");
    is_int(r.res.damaged_files, 1, "in one file");
    is_int(r.res.inputs, 1, "one input listed");
    is_int(s.n, 3, "three notices");
    ok(s.level[0] == LP_REPLAY_SAY_ERROR &&
       strstr(s.msg[0], "nosuch: No such file or directory") != NULL,
       "the missing PATH, when it was added (%s)", s.msg[0]);
    ok(s.level[1] == LP_REPLAY_SAY_DAMAGED &&
       strstr(s.msg[1], "a.jsonl: line 3: invalid JSON: ") != NULL,
       "the broken line, with its number (%s)", s.msg[1]);
    ok(s.level[2] == LP_REPLAY_SAY_DAMAGED &&
       strstr(s.msg[2], "a.jsonl: line 5: not a JSON object") != NULL,
       "the line that is not an object (%s)", s.msg[2]);
    free(r.out);

    /* no time member: the _id's time; --strip-id, --dedup */
    c = conf(&s, -1);
    c.time_field = "";
    c.strip_id = 1;
    c.dedup = 1;
    c.since = 300000;
    c.has_since = 1;
    put("b.jsonl",
        "{\"_id\":\"400000-0\",\"n\":1}\n"
        "{\"_id\":\"200000-0\",\"n\":2}\n"
        "{\"_id\":\"400000-1\",\"n\":3}\n"
        "{\"_id\":\"400000-0\",\"n\":4}\n");
    paths[0] = input("b.jsonl");
    paths[1] = NULL;
    r = replay(c, paths);
    is_str(r.out, "{\"n\":1}\n{\"n\":3}\n",
           "the _id's time, an _id seen before dropped, _id stripped");
    is_int(r.res.status, 0, "status 0");
    is_int(s.n, 0, "nothing said");
    free(r.out);
}

/* Many lines, so that the second thread judges batches of them: the same
 * output and notices as one thread (--where true) gives. */
static void test_threads(void)
{
    struct said s1, s2, s3;
    struct lp_replay_conf c1 = conf(&s1, -1), c2 = conf(&s2, -1),
                          c3 = conf(&s3, -1);
    const char *paths[] = { input("big.jsonl"), NULL };
    struct run r1, r2, r3;
    FILE *f = fopen(path("big.jsonl"), "w");
    int same = 1;

    for (int i = 1; i <= 50000; i++) {
        if (i % 997 == 0)
            fprintf(f, "{\"n\":%d,\n", i);
        else if (i % 1009 == 0)
            fprintf(f, "{\"n\":%d,\"pad\":\"%0300d\"}\n", i, 0);
        else if (i % 13 == 0)
            fprintf(f, "  {\"n\":%d,\"timestamp\":%d}\t\n", i, i);
        else
            fprintf(f, "{\"n\":%d,\"timestamp\":%d}\n", i, i);
    }
    fclose(f);
    c1.max_line = c2.max_line = 200;
    c2.where = "true";
    r1 = replay(c1, paths);
    r2 = replay(c2, paths);
    ok(strlen(r1.out) > 1000000 && strcmp(r1.out, r2.out) == 0,
       "two threads print what one prints (%zu bytes)", strlen(r1.out));
    is_int(r1.res.damaged, 50 + 49, "damaged: broken and too long");
    is_int(r1.res.status, LP_EX_DATAERR, "status 65");
    same = s1.total == s2.total && s1.n == s2.n;
    for (int i = 0; same && i < s1.n; i++)
        same = s1.level[i] == s2.level[i] &&
               strcmp(s1.msg[i], s2.msg[i]) == 0;
    ok(same && s1.total == 99, "... and says the same, in order (%d, %d)",
       s1.total, s2.total);
    for (int i = 0; !same && i < s1.n && i < s2.n; i++)
        if (strcmp(s1.msg[i], s2.msg[i]) != 0)
            printf("# %d: %s\n#    %s\n", i, s1.msg[i], s2.msg[i]);
    ok(strstr(s1.msg[0], "big.jsonl: line 997: invalid JSON") != NULL &&
       strstr(s1.msg[1], "big.jsonl: line 1009: longer than --max-line "
              "(200 bytes)") != NULL, "the first two named in order");

    /* a budget of 5: asked before each message is made, the 5 allowed
     * said as they would have been, the rest not made */
    c3.max_line = 200;
    c3.take = take_some;
    s3.allow = 5;
    r3 = replay(c3, paths);
    ok(strcmp(r1.out, r3.out) == 0 && r3.res.damaged == 99,
       "take: the same output and counts");
    is_int(s3.asked, 99, "take: asked once per damaged line");
    same = s3.total == 5;
    for (int i = 0; same && i < 5; i++)
        same = s3.level[i] == s1.level[i] &&
               strcmp(s3.msg[i], s1.msg[i]) == 0;
    ok(same, "take: the 5 allowed said, the first 5 as without it (%d)",
       s3.total);
    free(r1.out);
    free(r2.out);
    free(r3.out);
}

/* A directory: days in order, the .gz of a day before its late .jsonl,
 * days outside the window not even listed; --sort merges a day. */
static void test_tree(void)
{
    struct said s;
    struct lp_replay_conf c = conf(&s, -1);
    const char *paths[] = { input("t"), NULL };
    struct run r;

    mkdir(path("t"), 0755);
    mkdir(path("t/api"), 0755);
    mkdir(path("t/db"), 0755);
    put("t/api/2026-01-02.jsonl", "{\"d\":2,\"timestamp\":1767312000}\n");
    put_gz("t/api/2026-01-01.jsonl.gz",
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225602}\n"
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225604}\n");
    put("t/api/2026-01-01.jsonl",
        "{\"d\":1,\"s\":\"api\",\"late\":1,\"timestamp\":1767225601}\n");
    put("t/db/2026-01-01.jsonl",
        "{\"d\":1,\"s\":\"db\",\"timestamp\":1767225603}\n");
    put("t/db/2025-12-01.jsonl", "{\"d\":0,\"timestamp\":1764547200}\n");
    c.since = 1767225600000LL;      /* 2026-01-01 */
    c.has_since = 1;
    r = replay(c, paths);
    is_int(r.res.inputs, 4, "a day before --since: not listed");

    is_str(r.out,
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225602}\n"
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225604}\n"
           "{\"d\":1,\"s\":\"api\",\"late\":1,\"timestamp\":1767225601}\n"
           "{\"d\":1,\"s\":\"db\",\"timestamp\":1767225603}\n"
           "{\"d\":2,\"timestamp\":1767312000}\n",
           "days in order, a day's .gz before its .jsonl");
    free(r.out);
    c = conf(&s, -1);
    c.sort = 1;
    r = replay(c, paths);
    is_str(r.out,
           "{\"d\":0,\"timestamp\":1764547200}\n"
           "{\"d\":1,\"s\":\"api\",\"late\":1,\"timestamp\":1767225601}\n"
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225602}\n"
           "{\"d\":1,\"s\":\"db\",\"timestamp\":1767225603}\n"
           "{\"d\":1,\"s\":\"api\",\"timestamp\":1767225604}\n"
           "{\"d\":2,\"timestamp\":1767312000}\n",
           "--sort: the files of a day merged by time");
    is_int(r.res.status, 0, "status 0");
    free(r.out);
}

/* How a run ends when its output cannot take more. */
static void test_ends(void)
{
    struct said s;
    struct lp_replay_conf c = conf(&s, -1);
    const char *paths[] = { input("a.jsonl"), NULL };
    int p[2], full = open("/dev/full", O_WRONLY);
    struct run r;

    c.out_fd = full;
    r = replay(c, paths);
    is_int(r.run_rc, -1, "an output that cannot be written: -1");
    is_int(r.res.status, LP_EX_IOERR, "... status 74");
    is_str(r.err, "out: No space left on device", "... named by out_name");
    ok(r.res.epipe == 0, "... not a reader gone");
    free(r.out);
    close(full);

    if (pipe(p) < 0)
        return;
    close(p[0]);
    c = conf(&s, p[1]);
    r = replay(c, paths);
    is_int(r.run_rc, -1, "the reader gone: -1");
    ok(r.res.epipe == 1 && r.err[0] == '\0', "... epipe, nothing to say");
    free(r.out);
    close(p[1]);

    /* --where failing at run time on every event: 78 */
    struct lp_replay *rp;
    char err[LP_ERRLEN], msg[LP_ERRLEN];
    int fd = open(path("out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    c = conf(&s, fd);
    c.where = ".n + \"x\"";
    put("w.jsonl", "{\"n\":1}\n{\"n\":2}\n");
    if (lp_replay_new(&c, &rp, err) == 0) {
        lp_replay_add_path(rp, path("w.jsonl"), err);
        is_int(lp_replay_run(rp, err), 0, "--where failing: the run ends");
        is_int(count(&s, LP_REPLAY_SAY_WHERE), 2, "each failure said");
        is_int(lp_replay_where_outcome(rp, 0, msg), LP_EX_CONFIG,
               "failed on every event: 78");
        ok(strstr(msg, "on 2 of 2 events") != NULL, "... on how many (%s)",
           msg);
        is_int(lp_replay_result(rp)->status, LP_EX_CONFIG, "... the status");
        lp_replay_free(rp);
    }
    close(fd);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "%s/unit-replay.XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        return 2;
    }
    test_config();
    test_lines();
    test_threads();
    test_tree();
    test_ends();
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    while (nkept > 0)
        free(kept[--nkept]);
    return tap_done();
}
