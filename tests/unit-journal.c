/* unit-journal.c -- lp_journal: commit, replay after a crash, torn tails at
 * every offset, seal and cut, covers and usage for rotate and stat */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_crc.h"
#include "lp_journal.h"
#include "lp_wal.h"
#include "lp_parse.h"
#include "tap.h"

static char root[] = "/tmp/unit-journal.XXXXXX";

static void rmrf(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

/* What replay handed out, as "path|lines" one after another */
struct got {
    struct lp_buf b;
    int n;
    int fail_at;                /* make fn fail at this record (1-based) */
};

static int collect(void *ctx, const char *path, size_t plen,
                   const char *lines, size_t len, char *err)
{
    struct got *g = ctx;

    if (++g->n == g->fail_at) {
        snprintf(err, LP_ERRLEN, "stop at %d", g->n);
        return -1;
    }
    lp_buf_add(&g->b, path, plen);
    lp_buf_addc(&g->b, '|');
    lp_buf_add(&g->b, lines, len);
    return 0;
}

/* Notices, counted and the last kept */
struct heard {
    int warns;
    char last[512];
};

static void hear(void *ctx, int level, const char *msg)
{
    struct heard *h = ctx;

    if (level == LP_NOTICE_WARN)
        h->warns++;
    snprintf(h->last, sizeof h->last, "%s", msg);
}

/* Number of segment files in the journal directory name below dirfd */
static int nsegs(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, "seg-", 4) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

/* The path below dirfd of the k-th segment (oldest first) of journal
 * name, in out; "" when there are fewer */
static const char *seg_at(int dirfd, const char *name, int k, char *out)
{
    char dir[128], names[16][32];
    int fd, n = 0;
    DIR *d;
    struct dirent *de;

    snprintf(dir, sizeof dir, ".logpipe-journal/%s", name);
    fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY);
    d = fd < 0 ? NULL : fdopendir(fd);
    while (d && (de = readdir(d)) && n < 16)
        if (strncmp(de->d_name, "seg-", 4) == 0)
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof names[0],
          (int (*)(const void *, const void *))strcmp);
    if (k < n)
        sprintf(out, "%s/%s", dir, names[k]);
    else
        out[0] = '\0';
    return out;
}

static int replay_all(int dirfd, const char *name, struct got *g,
                      struct heard *h)
{
    struct lp_notify nt = { hear, h };
    char err[LP_ERRLEN];
    struct lp_journal *j = lp_journal_open(dirfd, name, &nt, err);
    int rc;

    if (!j)
        return -1;
    rc = lp_journal_replay(j, collect, g, err);
    lp_journal_close(j);
    return rc;
}

static void test_commit_replay(int dirfd)
{
    char err[LP_ERRLEN];
    struct lp_journal *j = lp_journal_open(dirfd, "a",
                                           NULL, err);
    struct got g = { { 0 }, 0, 0 };
    struct heard h = { 0, "" };

    ok(j != NULL, "open makes the journal directory");
    ok(!lp_journal_left(j), "a new journal has nothing left");
    is_int(lp_journal_commit(j, err), 0, "an empty commit is nothing");
    is_int(nsegs(dirfd, ".logpipe-journal/a"), 0,
           "an empty commit makes no segment");
    lp_journal_add(j, "api/2026-12-06.jsonl", 20, "{\"_id\":\"1-0\"}\n", 14);
    lp_journal_add(j, "web/2026-12-06.jsonl", 20,
                   "{\"_id\":\"2-0\"}\n{\"_id\":\"3-0\"}\n", 28);
    ok(lp_journal_pending(j) > 42, "added bytes wait for the commit");
    is_int(lp_journal_commit(j, err), 0, "commit");
    is_int(lp_journal_pending(j), 0, "nothing waits after a commit");
    lp_journal_add(j, "api/2026-12-06.jsonl", 20, "{\"_id\":\"4-0\"}\n", 14);
    is_int(lp_journal_commit(j, err), 0, "a second commit");
    lp_journal_add(j, "api/2026-12-06.jsonl", 20, "{\"_id\":\"5-0\"}\n", 14);
    /* not committed: a crash now loses it, as it was never acknowledged */
    is_int(nsegs(dirfd, ".logpipe-journal/a"), 1, "one segment");
    ok(lp_journal_bytes(j) == 8 + 3 * 8 + 3 * 22 + 14 * 2 + 28,
       "bytes counts the header and the records (%llu)",
       (unsigned long long)lp_journal_bytes(j));
    lp_journal_close(j);        /* the crash */

    is_int(replay_all(dirfd, "a", &g, &h), 0, "replay");
    is_int(g.n, 3, "three records come back");
    lp_buf_addc(&g.b, '\0');
    is_str(g.b.p,
           "api/2026-12-06.jsonl|{\"_id\":\"1-0\"}\n"
           "web/2026-12-06.jsonl|{\"_id\":\"2-0\"}\n{\"_id\":\"3-0\"}\n"
           "api/2026-12-06.jsonl|{\"_id\":\"4-0\"}\n",
           "in order, whole");
    is_int(h.warns, 0, "no warning for a clean journal");
    lp_buf_free(&g.b);
}

static void test_seal_cut(int dirfd)
{
    char err[LP_ERRLEN];
    struct lp_journal *j = lp_journal_open(dirfd, "a",
                                           NULL, err);
    struct got g = { { 0 }, 0, 0 };
    struct heard h = { 0, "" };
    uint64_t m1, m2;

    ok(j && lp_journal_left(j), "reopened: the crashed run left records");
    m1 = lp_journal_seal(j);
    lp_journal_add(j, "db/2026-12-06.jsonl", 19, "{\"_id\":\"6-0\"}\n", 14);
    is_int(lp_journal_commit(j, err), 0, "a commit after a seal");
    is_int(nsegs(dirfd, ".logpipe-journal/a"), 2,
           "goes to a new segment (the old one stays until the cut)");
    m2 = lp_journal_seal(j);
    ok(m2 > m1, "marks grow");
    is_int(lp_journal_cut(j, m1, err), 0, "cut to the first mark");
    ok(!lp_journal_left(j), "nothing the crash left remains");
    is_int(nsegs(dirfd, ".logpipe-journal/a"), 1, "one segment left");
    lp_journal_add(j, "db/2026-12-06.jsonl", 19, "{\"_id\":\"7-0\"}\n", 14);
    is_int(lp_journal_commit(j, err), 0, "a commit after the second seal");
    lp_journal_close(j);

    is_int(replay_all(dirfd, "a", &g, &h), 0, "replay");
    lp_buf_addc(&g.b, '\0');
    is_str(g.b.p,
           "db/2026-12-06.jsonl|{\"_id\":\"6-0\"}\n"
           "db/2026-12-06.jsonl|{\"_id\":\"7-0\"}\n",
           "only what was not cut, across segments, oldest first");
    lp_buf_free(&g.b);

    j = lp_journal_open(dirfd, "a", NULL, err);
    is_int(lp_journal_remove(j, err), 0, "remove with segments left is 0");
    ok(faccessat(dirfd, ".logpipe-journal/a", F_OK, 0) == 0,
       "and leaves the journal there");
    is_int(lp_journal_cut(j, lp_journal_seal(j), err), 0, "cut it all");
    is_int(lp_journal_bytes(j), 0, "no bytes left");
    is_int(lp_journal_remove(j, err), 0, "remove");
    ok(faccessat(dirfd, ".logpipe-journal/a", F_OK, 0) < 0 &&
       errno == ENOENT, "the directory is gone");
    ok(faccessat(dirfd, ".logpipe-journal", F_OK, 0) < 0 &&
       errno == ENOENT, "and the last journal took .logpipe-journal along");
    lp_journal_close(j);
}

/* A mark: a record of a path with no lines, written at once (no commit),
 * seen by a reader; replayed as a record without lines */
static void test_mark(int dirfd)
{
    char err[LP_ERRLEN], who[64];
    struct lp_journal *j = lp_journal_open(dirfd, "m", NULL, err);
    struct got g = { { 0 }, 0, 0 };
    struct heard h = { 0, "" };

    ok(j != NULL, "open m");
    is_int(lp_journal_mark(j, "m/1.jsonl", 9, err), 0, "a mark");
    is_int(lp_journal_pending(j), 0, "nothing waits for a commit");
    is_int(lp_journal_bytes(j), 8 + 8 + 2 + 9, "header and the mark");
    is_int(lp_journal_covers(dirfd, "m/1.jsonl", 9, who, sizeof who, err), 1,
           "a reader sees it at once");
    lp_journal_add(j, "m/2.jsonl", 9, "{\"_id\":\"1-0\"}\n", 14);
    is_int(lp_journal_commit_start(j, err), 0, "a commit starts");
    errno = 0;
    ok(lp_journal_mark(j, "m/1.jsonl", 9, err) < 0 && errno == EBUSY,
       "no mark while it syncs");
    is_int(lp_journal_commit_finish(j, err), 0, "finished");
    lp_journal_close(j);
    is_int(replay_all(dirfd, "m", &g, &h), 0, "replay");
    lp_buf_addc(&g.b, '\0');
    is_str(g.b.p, "m/1.jsonl|m/2.jsonl|{\"_id\":\"1-0\"}\n",
           "the mark comes back without lines, then the commit");
    lp_buf_free(&g.b);
    j = lp_journal_open(dirfd, "m", NULL, err);
    ok(j && lp_journal_cut(j, lp_journal_seal(j), err) == 0 &&
       lp_journal_remove(j, err) == 0, "cut and removed");
    lp_journal_close(j);
}

/* CRC-32C: the check value, and the CPU's instruction against the table
 * at every length and alignment */
static void test_crc(void)
{
    unsigned char buf[600];
    uint32_t seed = 12345;
    int same = 1;

    is_int(lp_crc32c(0, "123456789", 9), (long)0xe3069283u,
           "crc32c of 123456789 is e3069283");
    is_int(lp_crc32c_sw(0, "123456789", 9), (long)0xe3069283u,
           "by the table too");
    is_int(lp_crc32c(lp_crc32c(0, "1234", 4), "56789", 5),
           (long)0xe3069283u, "continued");
    for (size_t i = 0; i < sizeof buf; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7)
            same &= lp_crc32c(7, buf + off, n) ==
                    lp_crc32c_sw(7, buf + off, n);
    ok(same, "the same at every length and alignment");
}

/* A segment of the first format (zlib's CRC-32) is still replayed; a
 * record of the second with a flipped bit ends its segment */
static void test_formats(int dirfd)
{
    char err[LP_ERRLEN], rec[64], path[128];
    struct got g = { { 0 }, 0, 0 };
    struct heard h = { 0, "" };
    struct lp_journal *j = lp_journal_open(dirfd, "f", NULL, err);
    const char *line = "{\"_id\":\"1-0\"}\n";
    size_t n = 0;
    FILE *fp;

    ok(j != NULL, "open f");
    lp_journal_close(j);
    /* one record: path "v1/a.jsonl", one line */
    rec[n++] = 10;
    rec[n++] = 0;
    memcpy(rec + n, "v1/a.jsonl", 10);
    n += 10;
    memcpy(rec + n, line, 14);
    n += 14;
    snprintf(path, sizeof path, "%s/.logpipe-journal/f/seg-0000000000000001.jnl",
             root);
    fp = fopen(path, "w");
    char hdr[LP_WAL_REC];
    lp_wal_encode(hdr, rec, n);
    fwrite("LPJNL01\n", 1, 8, fp);
    fwrite(hdr, 1, sizeof hdr, fp);
    fwrite(rec, 1, n, fp);
    fclose(fp);
    is_int(replay_all(dirfd, "f", &g, &h), 0, "a LPJNL01 segment: replayed");
    lp_buf_addc(&g.b, '\0');
    is_str(g.b.p, "v1/a.jsonl|{\"_id\":\"1-0\"}\n", "its record comes back");
    is_int(h.warns, 0, "without a warning");
    lp_buf_free(&g.b);
    memset(&g, 0, sizeof g);
    /* the same record in a LPJNL02 segment, CRC-32: damage there */
    snprintf(path, sizeof path, "%s/.logpipe-journal/f/seg-0000000000000002.jnl",
             root);
    fp = fopen(path, "w");
    fwrite("LPJNL02\n", 1, 8, fp);
    fwrite(hdr, 1, sizeof hdr, fp);
    fwrite(rec, 1, n, fp);
    fclose(fp);
    is_int(replay_all(dirfd, "f", &g, &h), 0, "replay both");
    is_int(g.n, 1, "the first format's record only: a CRC-32 in a LPJNL02 "
           "segment is damage");
    is_int(h.warns, 1, "said once");
    lp_buf_free(&g.b);
    j = lp_journal_open(dirfd, "f", NULL, err);
    ok(j && lp_journal_cut(j, lp_journal_seal(j), err) == 0 &&
       lp_journal_remove(j, err) == 0, "cut and removed");
    lp_journal_close(j);
}

/* The commit in two halves: readers see the records once started; one at
 * a time; a seal or a close finishes a pending one; a failing sync says
 * so and ends the segment */
static void test_commit_halves(int dirfd)
{
    char err[LP_ERRLEN];
    struct lp_journal *j = lp_journal_open(dirfd, "h", NULL, err);
    struct got g = { { 0 }, 0, 0 };
    struct heard h = { 0, "" };
    char who[64];

    ok(j != NULL, "open h");
    is_int(lp_journal_commit_start(j, err), 0, "an empty start is nothing");
    ok(!lp_journal_commit_pending(j), "and leaves nothing pending");
    is_int(lp_journal_commit_finish(j, err), 0, "finish with none pending");
    lp_journal_add(j, "x/1.jsonl", 9, "{\"_id\":\"1-0\"}\n", 14);
    is_int(lp_journal_commit_start(j, err), 0, "start");
    ok(lp_journal_commit_pending(j), "pending");
    is_int(lp_journal_pending(j), 0, "the added bytes went");
    is_int(lp_journal_covers(dirfd, "x/1.jsonl", 9, who, sizeof who, err), 1,
           "a reader sees the records before the sync ends");
    lp_journal_add(j, "x/1.jsonl", 9, "{\"_id\":\"2-0\"}\n", 14);
    errno = 0;
    ok(lp_journal_commit_start(j, err) < 0 && errno == EBUSY,
       "a second start while one is pending: EBUSY (%s)", err);
    is_int(lp_journal_commit_finish(j, err), 0, "finish");
    ok(!lp_journal_commit_pending(j), "nothing pending after it");
    ok(lp_journal_bytes(j) == 8 + 8 + 2 + 9 + 14,
       "bytes counted at the finish (%llu)",
       (unsigned long long)lp_journal_bytes(j));
    lp_journal_add(j, "x/1.jsonl", 9, "{\"_id\":\"3-0\"}\n", 14);
    is_int(lp_journal_commit_start(j, err), 0, "start again");
    uint64_t m = lp_journal_seal(j);
    ok(!lp_journal_commit_pending(j), "a seal finishes the pending commit");
    lp_journal_add(j, "x/1.jsonl", 9, "{\"_id\":\"4-0\"}\n", 14);
    is_int(lp_journal_commit_start(j, err), 0, "a start after the seal");
    lp_journal_close(j);        /* finishes it: then "crashes" */
    is_int(replay_all(dirfd, "h", &g, &h), 0, "replay");
    is_int(g.n, 3, "the three started commits come back (not the refused)");
    lp_buf_addc(&g.b, '\0');
    is_str(g.b.p,
           "x/1.jsonl|{\"_id\":\"1-0\"}\n"
           "x/1.jsonl|{\"_id\":\"3-0\"}\n"
           "x/1.jsonl|{\"_id\":\"4-0\"}\n", "in order, across the seal");
    lp_buf_free(&g.b);
    j = lp_journal_open(dirfd, "h", NULL, err);
    ok(j && lp_journal_cut(j, lp_journal_seal(j), err) == 0 &&
       lp_journal_remove(j, err) == 0, "cut and removed");
    lp_journal_close(j);
    (void)m;
}

/* A segment cut at every offset: replay hands out the whole records
 * before the cut, says one warning when the cut is inside a record, and
 * never fails */
static void test_torn(int dirfd)
{
    char err[LP_ERRLEN], path[160];
    struct lp_journal *j = lp_journal_open(dirfd, "t",
                                           NULL, err);
    struct stat st;
    int fd, bad = 0, badn = 0, badw = 0;
    off_t size, ends[3];
    char *whole;

    for (int i = 0; i < 3; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "{\"_id\":\"%d-0\"}\n", i + 1);
        lp_journal_add(j, "k/d.jsonl", 9, line, (size_t)n);
        lp_journal_commit(j, err);
        ends[i] = (off_t)lp_journal_bytes(j);
    }
    lp_journal_close(j);
    seg_at(dirfd, "t", 0, path);
    fd = openat(dirfd, path, O_RDWR);
    ok(fd >= 0 && fstat(fd, &st) == 0, "the segment is there");
    size = st.st_size;
    is_int(size, ends[2], "its size is what bytes said");
    whole = malloc((size_t)size);
    ok(pread(fd, whole, (size_t)size, 0) == size, "read it");
    for (off_t cut = 0; cut <= size; cut++) {
        struct got g = { { 0 }, 0, 0 };
        struct heard h = { 0, "" };
        int want = cut >= ends[2] ? 3 : cut >= ends[1] ? 2 :
                   cut >= ends[0] ? 1 : 0;
        int torn = cut > 8 && cut != ends[0] && cut != ends[1] &&
                   cut != ends[2];

        if (ftruncate(fd, cut) < 0 || pwrite(fd, whole, (size_t)cut, 0) != cut)
            bad++;
        if (replay_all(dirfd, "t", &g, &h) < 0)
            bad++;
        if (g.n != want)
            badn++;
        /* a header cut short: a segment made as the crash came, empty */
        if (h.warns != torn)
            badw++;
        lp_buf_free(&g.b);
    }
    is_int(bad, 0, "replay never fails on a torn segment");
    is_int(badn, 0, "the whole records before each cut come back");
    is_int(badw, 0, "one warning when a record is torn, none otherwise");

    /* a flipped bit in the second record: the first comes back */
    whole[ends[0] + 12] ^= 0x20;
    if (pwrite(fd, whole, (size_t)size, 0) != size)
        bad++;
    {
        struct got g = { { 0 }, 0, 0 };
        struct heard h = { 0, "" };
        replay_all(dirfd, "t", &g, &h);
        is_int(g.n, 1, "damage ends the segment at the damaged record");
        ok(strstr(h.last, "damaged at byte") != NULL &&
           strstr(h.last, "acknowledged may be lost") != NULL &&
           strstr(h.last, "kept as .damaged") != NULL,
           "damage with a record after it is said as such: %s", h.last);
        char aside[200];
        snprintf(aside, sizeof aside, "%s.damaged", path);
        ok(faccessat(dirfd, aside, F_OK, 0) == 0 &&
           faccessat(dirfd, path, F_OK, 0) < 0,
           "the segment is moved aside, as %s", aside);
        unlinkat(dirfd, aside, 0);
        lp_buf_free(&g.b);
    }
    whole[ends[0] + 12] ^= 0x20;
    /* zeros after the whole records (blocks never written): torn */
    {
        struct got g = { { 0 }, 0, 0 };
        struct heard h = { 0, "" };
        char zeros[64] = { 0 }, seg2[200];
        snprintf(seg2, sizeof seg2, "%s/.logpipe-journal/t/seg-00000000000000ff.jnl",
                 root);
        int z = open(seg2, O_WRONLY | O_CREAT | O_TRUNC, 0640);
        ok(z >= 0 && write(z, whole, (size_t)ends[1]) == ends[1] &&
           write(z, zeros, sizeof zeros) == (ssize_t)sizeof zeros,
           "a segment of two records and 64 zero bytes");
        close(z);
        replay_all(dirfd, "t", &g, &h);
        is_int(g.n, 2, "its two records come back");
        ok(strstr(h.last, "torn or damaged after byte") != NULL,
           "the zeros are a torn tail: %s", h.last);
        lp_buf_free(&g.b);
        unlink(seg2);
    }
    free(whole);
    close(fd);
}

static void test_fn_fails(int dirfd)
{
    char err[LP_ERRLEN];
    struct lp_journal *j = lp_journal_open(dirfd, "f",
                                           NULL, err);
    struct got g = { { 0 }, 0, 2 };

    lp_journal_add(j, "a", 1, "x\n", 2);
    lp_journal_add(j, "b", 1, "y\n", 2);
    lp_journal_add(j, "c", 1, "z\n", 2);
    lp_journal_commit(j, err);
    lp_journal_close(j);
    j = lp_journal_open(dirfd, "f", NULL, err);
    is_int(lp_journal_replay(j, collect, &g, err), -1,
           "a failing fn stops the replay");
    is_str(err, "stop at 2", "with fn's err");
    ok(lp_journal_left(j), "and nothing is cut");
    lp_journal_close(j);
    lp_buf_free(&g.b);
}

static void test_covers_usage(int dirfd)
{
    char err[LP_ERRLEN], who[256];
    struct lp_journal *j = lp_journal_open(dirfd, "c",
                                           NULL, err);
    unsigned count;
    uint64_t bytes;
    int64_t oldest;
    char big[3000];

    is_int(lp_journal_covers(dirfd, "x/1.jsonl", 9, who, sizeof who, err),
           0, "nothing covers a path no journal names");
    lp_journal_add(j, "x/1.jsonl", 9, "{\"_id\":\"1-0\"}\n", 14);
    /* records large enough to cross covers' read chunks */
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\n';
    for (int i = 0; i < 800; i++)
        lp_journal_add(j, "y/1.jsonl", 9, big, sizeof big);
    lp_journal_add(j, "z/1.jsonl", 9, "{\"_id\":\"2-0\"}\n", 14);
    lp_journal_commit(j, err);
    is_int(lp_journal_covers(dirfd, "x/1.jsonl", 9, who, sizeof who, err),
           1, "the first record's path is covered");
    {
        char want[160];
        is_str(who, seg_at(dirfd, "c", 0, want), "who names the segment");
    }
    is_int(lp_journal_covers(dirfd, "z/1.jsonl", 9, who, sizeof who, err),
           1, "a path after 2.4 MB of records is covered");
    is_int(lp_journal_covers(dirfd, "x/1.json", 8, who, sizeof who, err), 0,
           "a prefix of a path is not");
    is_int(lp_journal_usage(dirfd, &count, &bytes, &oldest, err), 0,
           "usage");
    ok(count >= 1 && bytes >= lp_journal_bytes(j) && oldest > 0,
       "counts journals, bytes and an age (%u, %llu)", count,
       (unsigned long long)bytes);
    is_int(lp_journal_cut(j, lp_journal_seal(j), err), 0, "cut");
    is_int(lp_journal_covers(dirfd, "x/1.jsonl", 9, who, sizeof who, err),
           0, "a cut journal covers nothing");
    lp_journal_close(j);
}

/* The reader rotate keeps reads only what was committed since its last
 * call, forgets cut segments, and reads a segment cut back again */
static void test_reader(int dirfd)
{
    char err[LP_ERRLEN], who[256];
    struct lp_journal *j = lp_journal_open(dirfd, "r", NULL, err);
    struct lp_journal_reader *rd = lp_journal_reader_new(dirfd);
    char path[160];
    uint64_t mark;
    int fd;

    is_int(lp_journal_reader_covers(rd, "p/1", 3, who, sizeof who, err), 0,
           "an empty journal covers nothing");
    lp_journal_add(j, "p/1", 3, "{}\n", 3);
    lp_journal_commit(j, err);
    is_int(lp_journal_reader_covers(rd, "p/1", 3, who, sizeof who, err), 1,
           "a commit after the first call is read");
    is_int(lp_journal_reader_covers(rd, "p/2", 3, who, sizeof who, err), 0,
           "another path is not covered");
    lp_journal_add(j, "p/2", 3, "{}\n", 3);
    lp_journal_commit(j, err);
    is_int(lp_journal_reader_covers(rd, "p/2", 3, who, sizeof who, err), 1,
           "nor missed when it comes later");
    is_int(lp_journal_reader_covers(rd, "p/1", 3, who, sizeof who, err), 1,
           "the first stays covered");
    mark = lp_journal_seal(j);
    lp_journal_add(j, "p/3", 3, "{}\n", 3);
    lp_journal_commit(j, err);
    lp_journal_cut(j, mark, err);
    is_int(lp_journal_reader_covers(rd, "p/1", 3, who, sizeof who, err), 0,
           "a cut segment is forgotten");
    is_int(lp_journal_reader_covers(rd, "p/3", 3, who, sizeof who, err), 1,
           "the next one is read");
    is_str(who, seg_at(dirfd, "r", 0, path), "who");
    /* a failed commit cut back, then other records in its place */
    fd = openat(dirfd, path, O_WRONLY);
    ok(fd >= 0 && ftruncate(fd, 8) == 0, "the segment cut back");
    close(fd);
    lp_journal_close(j);
    j = lp_journal_open(dirfd, "r", NULL, err);
    lp_journal_cut(j, lp_journal_seal(j), err);
    lp_journal_add(j, "p/4", 3, "{}\n", 3);
    lp_journal_commit(j, err);
    is_int(lp_journal_reader_covers(rd, "p/4", 3, who, sizeof who, err), 1,
           "a new segment after a cut is read from its start");
    lp_journal_cut(j, lp_journal_seal(j), err);
    lp_journal_close(j);
    lp_journal_reader_free(rd);
}

static void test_hostile(int dirfd)
{
    const char *p, *l;
    size_t pl, ll;
    char err[LP_ERRLEN];
    struct lp_journal *j;
    struct heard h = { 0, "" };
    struct lp_notify nt = { hear, &h };
    int fd;

    is_int(lp_journal_payload("", 0, &p, &pl, &l, &ll), -1, "empty payload");
    is_int(lp_journal_payload("\0\0x\n", 4, &p, &pl, &l, &ll), -1,
           "an empty path");
    is_int(lp_journal_payload("\5\0ab", 4, &p, &pl, &l, &ll), -1,
           "a path longer than the payload");
    is_int(lp_journal_payload("\2\0a\0x\n", 6, &p, &pl, &l, &ll), -1,
           "a NUL in the path");
    is_int(lp_journal_payload("\1\0ax", 4, &p, &pl, &l, &ll), -1,
           "lines not ending in a newline");
    is_int(lp_journal_payload("\1\0a", 3, &p, &pl, &l, &ll), 0,
           "no lines is valid");
    is_int(lp_journal_add(NULL, "", 0, "x\n", 2), -1, "an empty path");

    ok(lp_journal_open(dirfd, "x/y", NULL, err) == NULL &&
       strstr(err, "not a journal name"), "a name of two components: %s",
       err);
    ok(lp_journal_open(dirfd, "..", NULL, err) == NULL, "nor ..");
    mkdirat(dirfd, ".logpipe-journal/h", 0750);
    fd = openat(dirfd, ".logpipe-journal/h/notes.txt", O_WRONLY | O_CREAT,
                0640);
    close(fd);
    fd = openat(dirfd, ".logpipe-journal/h/seg-ffffffffffffff07.jnl",
                O_WRONLY | O_CREAT, 0640);
    ok(write(fd, "garbage!", 8) == 8, "a segment of garbage");
    close(fd);
    j = lp_journal_open(dirfd, "h", &nt, err);
    ok(j != NULL, "opens");
    ok(h.warns == 1 && strstr(h.last, "notes.txt: not a journal segment"),
       "a stranger is named and left alone: %s", h.last);
    {
        struct got g = { { 0 }, 0, 0 };
        /* another version's segment, or damage: never cut unread */
        is_int(lp_journal_replay(j, collect, &g, err), -1, "replay refuses "
               "a segment without its header");
        is_int(g.n, 0, "nothing from garbage");
        ok(strstr(err, "not a journal segment this logpipe reads") != NULL,
           "said: %s", err);
    }
    lp_journal_add(j, "a", 1, "x\n", 2);
    is_int(lp_journal_commit(j, err), 0, "new records go after the number "
           "of the highest segment");
    ok(faccessat(dirfd, ".logpipe-journal/h/seg-ffffffffffffff08.jnl", F_OK,
                 0) == 0, "seg-...08");
    lp_journal_close(j);
}

int main(void)
{
    int dirfd;

    if (!mkdtemp(root))
        return 1;
    dirfd = open(root, O_RDONLY | O_DIRECTORY);
    test_commit_replay(dirfd);
    test_seal_cut(dirfd);
    test_commit_halves(dirfd);
    test_crc();
    test_mark(dirfd);
    test_formats(dirfd);
    test_torn(dirfd);
    test_fn_fails(dirfd);
    test_covers_usage(dirfd);
    test_reader(dirfd);
    test_hostile(dirfd);
    close(dirfd);
    rmrf(root);
    return tap_done();
}
