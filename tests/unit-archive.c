/* unit-archive.c -- lp_archive: duplicate check across chunk boundaries,
 * partial lines, rotation, modes */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_archive.h"
#include "lp_fs.h"
#include "lp_journal.h"
#include "lp_parse.h"
#include "tap.h"

static char root[] = "/tmp/unit-archive.XXXXXX";
static int dirfd;

static char *slurp(const char *rel, size_t *n)
{
    char path[512];
    FILE *f;
    char *buf;
    long len;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static size_t count_lines(const char *s, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

/* Locks and writes the batch in hand: 0 or -1. */
static int write_batch(struct lp_archive *a, uint64_t *dups, char *err)
{
    if (lp_archive_lock(a, err) < 0)
        return -1;
    return lp_archive_write(a, NULL, 0, dups, err);
}

/* The bytes of a journal mark of a path of n bytes (lp_journal_mark) */
#define MARK(n) (8u + 2u + (uint64_t)(n))

/* Appends "{"_id":"ms-seq","pad":"xxx..."}\n" with pad bytes of padding. */
static void line(struct lp_buf *b, uint64_t ms, uint64_t seq, size_t pad)
{
    char head[96];

    snprintf(head, sizeof head, "{\"_id\":\"%llu-%llu\",\"pad\":\"",
             (unsigned long long)ms, (unsigned long long)seq);
    lp_buf_adds(b, head);
    for (size_t i = 0; i < pad; i++)
        lp_buf_addc(b, 'x');
    lp_buf_adds(b, "\"}\n");
}

static void write_file(const char *rel, const struct lp_buf *b)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "wb");
    fwrite(b->p, 1, b->len, f);
    fclose(f);
}

/*
 * A file of n lines with IDs base+i, padded so lines vary in length and
 * cross the scanner's 1 MiB chunks at many places; then a batch that
 * re-sends some of them (which must be dropped) and new ones (kept).
 */
static void dedup_case(const char *name, size_t n, size_t pad_mod,
                       const size_t *present, size_t npresent)
{
    struct lp_archive *a = lp_archive_new(dirfd, 16, NULL);
    struct lp_buf file = { 0 };
    struct lp_afile *f;
    char err[LP_ERRLEN], id[64];
    uint64_t base = 1700000000000ULL, dups = 0;
    size_t before, after;
    char *got;

    for (size_t i = 0; i < n; i++)
        line(&file, base + i, i % 3, (i * 7919) % pad_mod);
    write_file(name, &file);
    before = file.len;

    f = lp_archive_get(a, name, strlen(name), err);
    ok(f != NULL, "%s: opened", name);
    /* the redelivered ones */
    for (size_t k = 0; k < npresent; k++) {
        size_t i = present[k];
        snprintf(id, sizeof id, "%llu-%zu", (unsigned long long)(base + i),
                 i % 3);
        lp_afile_check(f, id, strlen(id));
        line(lp_afile_buf(f), base + i, i % 3, 5);
    }
    /* two that were never written: a later one and a hole */
    snprintf(id, sizeof id, "%llu-0", (unsigned long long)(base + n + 5));
    lp_afile_check(f, id, strlen(id));
    line(lp_afile_buf(f), base + n + 5, 0, 5);
    snprintf(id, sizeof id, "%llu-9", (unsigned long long)(base + 1));
    lp_afile_check(f, id, strlen(id));
    line(lp_afile_buf(f), base + 1, 9, 5);
    /* and a fresh one, not checked */
    line(lp_afile_buf(f), base + n + 9, 0, 5);

    is_int(write_batch(a, &dups, err), 0, "%s: written", name);
    is_int(lp_archive_sync(a, err), 0, "%s: synced", name);
    is_int(dups, npresent, "%s: %zu copies recognised", name, npresent);
    got = slurp(name, &after);
    is_int(count_lines(got, after), n + 3, "%s: 3 lines added", name);
    ok(after > before && memcmp(got, file.p, before) == 0,
       "%s: the old lines are untouched", name);
    free(got);
    lp_buf_free(&file);
    lp_archive_free(a);
}

static void test_dedup(void)
{
    size_t tail[] = { 999 };
    size_t spread[] = { 0, 1, 500, 4000, 9000, 12345, 19999 };
    size_t all[50];

    for (size_t i = 0; i < 50; i++)
        all[i] = 19950 + i;
    dedup_case("small.jsonl", 1000, 40, tail, 1);
    /* ~6 MiB: lines from the first to the last chunk */
    dedup_case("big.jsonl", 20000, 600, spread, 7);
    dedup_case("tail.jsonl", 20000, 600, all, 50);
}

/* Lines more than 10 minutes older than what is looked for, in a long run,
 * stop the search; a shorter run of old lines (a late claim) does not. */
static void test_stop_rule(void)
{
    struct lp_archive *a = lp_archive_new(dirfd, 16, NULL);
    struct lp_buf file = { 0 };
    struct lp_afile *f;
    char err[LP_ERRLEN], id[64];
    uint64_t t = 1700000000000ULL, dups = 0;

    /* X at t, then 100 lines of an hour earlier (late claims), then
     * newer ones: X must still be found behind the old run */
    line(&file, t, 0, 10);
    for (int i = 0; i < 100; i++)
        line(&file, t - 3600000 + (uint64_t)i, 0, 10);
    for (int i = 1; i < 50; i++)
        line(&file, t + (uint64_t)i, 0, 10);
    write_file("claims.jsonl", &file);
    f = lp_archive_get(a, "claims.jsonl", 12, err);
    snprintf(id, sizeof id, "%llu-0", (unsigned long long)t);
    lp_afile_check(f, id, strlen(id));
    line(lp_afile_buf(f), t, 0, 10);
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    is_int(dups, 1, "a copy behind a short run of old lines is found");

    /* X behind LP_DEDUP_RUN old lines: the search stops before it (the
     * documented bound) */
    file.len = 0;
    line(&file, t, 1, 10);
    for (int i = 0; i < LP_DEDUP_RUN + 10; i++)
        line(&file, t - 3600000 + (uint64_t)i, 0, 10);
    write_file("history.jsonl", &file);
    f = lp_archive_get(a, "history.jsonl", 13, err);
    snprintf(id, sizeof id, "%llu-1", (unsigned long long)t);
    lp_afile_check(f, id, strlen(id));
    line(lp_afile_buf(f), t, 1, 10);
    dups = 0;
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    is_int(dups, 0, "the search stops after %d old lines in a row",
           LP_DEDUP_RUN);
    lp_buf_free(&file);
    lp_archive_free(a);
}

/* The notices lp_archive says (lp_notice.h), kept for the test. */
struct heard {
    char msg[LP_NOTICELEN];     /* the last one */
    int level, n;
};

static void hear(void *ctx, int level, const char *msg)
{
    struct heard *h = ctx;

    snprintf(h->msg, sizeof h->msg, "%s", msg);
    h->level = level;
    h->n++;
}

static void test_partial_and_rotation(void)
{
    struct heard h = { .n = 0 };
    struct lp_notify nt = { hear, &h };
    struct lp_archive *a = lp_archive_new(dirfd, 2, &nt);
    struct lp_afile *f;
    struct lp_buf b = { 0 };
    char err[LP_ERRLEN], path[512], *got;
    uint64_t dups = 0;
    size_t n;
    struct stat st;

    lp_buf_adds(&b, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-2\",\"cut");
    write_file("partial.jsonl", &b);
    f = lp_archive_get(a, "partial.jsonl", 13, err);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"1-3\"}\n");
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    got = slurp("partial.jsonl", &n);
    is_str(got, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-3\"}\n",
           "a partial last line is cut before appending");
    free(got);
    is_int(h.n, 1, "and said, once");
    is_str(h.msg, "partial.jsonl: cutting a partial last line (17 bytes) "
           "left by an interrupted write", "in these words");
    is_int(h.level, LP_NOTICE_WARN, "as a warning");

    /* a whole line without its newline gets it back */
    b.len = 0;
    lp_buf_adds(&b, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-2\",\"ok\":1}");
    write_file("whole.jsonl", &b);
    f = lp_archive_get(a, "whole.jsonl", 11, err);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"1-3\"}\n");
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    got = slurp("whole.jsonl", &n);
    is_str(got, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-2\",\"ok\":1}\n"
           "{\"_id\":\"1-3\"}\n", "a whole last line without newline is kept");
    free(got);
    is_int(h.n, 2, "and said");
    is_str(h.msg, "whole.jsonl: the last line lacked its newline: adding it",
           "in these words");
    is_int(h.level, LP_NOTICE_WARN, "as a warning");

    /* rotation: the file is renamed away while we hold it open */
    snprintf(path, sizeof path, "%s/partial.jsonl", root);
    char moved[600];
    snprintf(moved, sizeof moved, "%s/partial.jsonl.old", root);
    rename(path, moved);
    f = lp_archive_get(a, "partial.jsonl", 13, err);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"1-4\"}\n");
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    got = slurp("partial.jsonl", &n);
    is_str(got, "{\"_id\":\"1-4\"}\n", "a rotated file is reopened");
    free(got);
    is_int(h.n, 3, "and said");
    is_str(h.msg, "partial.jsonl was rotated: reopening", "in these words");
    is_int(h.level, LP_NOTICE_INFO, "as an info");
    got = slurp("partial.jsonl.old", &n);
    is_str(got, "{\"_id\":\"1-1\"}\n{\"_id\":\"1-3\"}\n",
           "the rotated file is left alone");
    free(got);

    /* directories and modes; more files than max_open */
    umask(022);
    for (int i = 0; i < 5; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "d%d/sub/f.jsonl", i);
        f = lp_archive_get(a, rel, strlen(rel), err);
        ok(f != NULL, "%s opened with max_open 2", rel);
        lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"2-0\"}\n");
    }
    is_int(write_batch(a, &dups, err), 0, "5 files written");
    lp_archive_sync(a, err);
    snprintf(path, sizeof path, "%s/d4/sub/f.jsonl", root);
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "file 0640");
    snprintf(path, sizeof path, "%s/d4/sub", root);
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0750, "dir 0750");

    /* unsafe paths */
    ok(lp_archive_get(a, "../x.jsonl", 10, err) == NULL && errno == EINVAL,
       "../ refused (%s)", err);
    symlink("/tmp", path);      /* d4/sub exists: make d5 a link */
    snprintf(path, sizeof path, "%s/d5", root);
    symlink("/tmp", path);
    ok(lp_archive_get(a, "d5/x.jsonl", 10, err) == NULL &&
       (errno == ELOOP || errno == ENOTDIR), "symlinked dir refused (%s)",
       err);
    lp_buf_free(&b);
    lp_archive_free(a);
}

static void test_line_id(void)
{
    uint64_t ms, seq;

    ok(lp_archive_line_id("{\"_id\":\"12-3\",\"a\":1}", 20, &ms, &seq) == 0 &&
       ms == 12 && seq == 3, "line id parsed");
    ok(lp_archive_line_id("{\"_id\":\"12\",\"a\":1}", 18, &ms, &seq) < 0,
       "an id without seq refused");
    ok(lp_archive_line_id("{\"a\":1}", 7, &ms, &seq) < 0, "no _id refused");
    ok(lp_archive_line_id("{\"_id\":\"1-2", 11, &ms, &seq) < 0,
       "unterminated refused");
    ok(lp_archive_line_id("{\"_id\":\"3-12-4\",\"a\":1}", 22, &ms, &seq) ==
       0 && ms == 12 && seq == 4, "a shard's id: its ms and seq");
    ok(lp_archive_line_id("{\"_id\":\"3-12-4-5\",\"a\":1}", 24, &ms,
                          &seq) < 0, "four parts refused");
    ok(lp_archive_line_id("{\"_id\":\"3--4\",\"a\":1}", 20, &ms, &seq) < 0,
       "an empty part refused");
}

/* Lines of several shards in one file (a sharded drain's, _id
 * "<i>-<ms>-<seq>"): the entry 1-T-0 of shard 1 is not a copy of 0-T-0,
 * of shard 0, nor of the unsharded T-0 */
static void test_shard_ids(void)
{
    struct lp_archive *a = lp_archive_new(dirfd, 16, NULL);
    struct lp_afile *f;
    char err[LP_ERRLEN];
    const char *old = "{\"_id\":\"0-1700000000000-0\",\"a\":1}\n"
                      "{\"_id\":\"1700000000000-0\",\"a\":1}\n"
                      "{\"_id\":\"2-1700000000000-0\",\"a\":1}\n";
    uint64_t dups = 0;
    int fd = openat(dirfd, "shards.jsonl", O_WRONLY | O_CREAT | O_TRUNC,
                    0640);

    ok(fd >= 0 && write(fd, old, strlen(old)) == (ssize_t)strlen(old),
       "a file with lines of shards 0 and 2");
    close(fd);
    f = lp_archive_get(a, "shards.jsonl", 12, err);
    lp_afile_check(f, "1-1700000000000-0", 17);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"1-1700000000000-0\",\"a\":1}\n");
    lp_afile_check(f, "2-1700000000000-0", 17);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"2-1700000000000-0\",\"a\":1}\n");
    if (write_batch(a, &dups, err) < 0)
        printf("# write: %s\n", err);
    lp_archive_sync(a, err);
    is_int(dups, 1, "shard 2's copy found, shard 1's entry written");
    lp_archive_free(a);
}

/* lp_archive_file_holds: which entries a file holds, by shard prefix,
 * read apart from the batch (the file not touched); a missing file holds
 * none */
static void test_file_holds(void)
{
    struct lp_archive *a = lp_archive_new(dirfd, 16, NULL);
    char err[LP_ERRLEN];
    const char *lines = "{\"_id\":\"1700000000000-0\",\"a\":1}\n"
                        "{\"_id\":\"2-1700000000000-1\",\"a\":1}\n"
                        "{\"_id\":\"1700000000005-3\",\"a\":1}\n";
    struct lp_sid ids[4] = { { 1700000000000u, 0 }, { 1700000000000u, 1 },
                             { 1700000000005u, 3 }, { 1700000000009u, 0 } };
    unsigned char found[4] = { 0, 0, 0, 0 };
    int fd = lp_fs_open(dirfd, "holds/x.jsonl", O_WRONLY | O_CREAT |
                        O_TRUNC, 0640, &(int){ 0 }, err);

    ok(fd >= 0 && write(fd, lines, strlen(lines)) == (ssize_t)strlen(lines),
       "a file of three lines");
    close(fd);
    is_int(lp_archive_file_holds(a, "holds/x.jsonl", NULL, ids, 4, found,
                                 err), 2, "two unsharded entries found");
    ok(found[0] && !found[1] && found[2] && !found[3],
       "... the first and third");
    memset(found, 0, sizeof found);
    is_int(lp_archive_file_holds(a, "holds/x.jsonl", "2-", ids, 4, found,
                                 err), 1, "with a shard prefix: its entry");
    ok(!found[0] && found[1] && !found[2] && !found[3], "... the second");
    is_int((long)lp_archive_touched(a), 0, "the batch touches no file");
    is_int(lp_archive_file_holds(a, "holds/none.jsonl", NULL, ids, 4, found,
                                 err), 0, "a missing file holds none");
    lp_archive_free(a);
}

/* Descriptors open in this process. */
static int open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/*
 * Journal mode: a batch is durable in the journal when the write returns;
 * the files sync by epochs; a file evicted (--max-open) or rotated away
 * while it still has data to sync keeps its descriptor until the epoch
 * syncs it; flush_all syncs everything and cuts the journal whole.
 */
static void test_journal_mode(void)
{
    struct lp_archive *a = lp_archive_new(dirfd, 4, NULL);
    struct lp_journal *j;
    char err[LP_ERRLEN], path[64];
    uint64_t dups = 0, seq = 0;
    int base, rc = 0, peak = 0;
    size_t n;
    char *got;

    j = lp_journal_open(dirfd, "jm", NULL, err);
    base = open_fds();          /* the journal's directories among them */
    ok(a != NULL && j != NULL, "journal mode: archive and journal made");
    lp_archive_set_journal(a, j, 0);
    ok(!lp_archive_busy(a), "journal mode: nothing to do at first");
    /* 12 batches of 3 files out of 10, 4 kept open: dirty files evicted */
    for (int b = 0; b < 12 && rc == 0; b++) {
        for (int k = 0; k < 3; k++) {
            struct lp_afile *f;
            snprintf(path, sizeof path, "jm/f%d.jsonl", (b * 3 + k) % 10);
            if ((f = lp_archive_get(a, path, strlen(path), err)) == NULL) {
                rc = -1;
                break;
            }
            line(lp_afile_buf(f), 1700000000000ULL + b, seq++, 10);
        }
        if (rc == 0)
            rc = write_batch(a, &dups, err);
        int now = open_fds();
        if (now > peak)
            peak = now;
    }
    is_int(rc, 0, "journal mode: 12 batches written (%s)", rc ? err : "");
    ok(lp_journal_bytes(j) > 0 && lp_archive_busy(a),
       "journal mode: the lines are in the journal");
    /* a file whose descriptor --max-open took keeps its lines held (in
     * the journal, durable): written by an epoch, not by each eviction */
    snprintf(path, sizeof path, "jm/f0.jsonl");
    got = slurp(path, &n);
    is_int(got ? count_lines(got, n) : 0, 0,
           "journal mode: the day file's lines are held, closed or not");
    free(got);
    ok(peak - base > 4 + 1 + 1, "journal mode: evicted files with data to "
       "sync kept open (%d descriptors at the peak)", peak - base);
    ok(peak - base <= 4 + 4 + 1, "journal mode: at most max_open of them "
       "(and the journal's segment)");
    /* a file rotated away with data to sync: its lines stay in the old
     * file, the next batch makes a new one */
    {
        char from[600], to[600];
        struct lp_afile *f;
        snprintf(from, sizeof from, "%s/jm/f5.jsonl", root);
        snprintf(to, sizeof to, "%s/jm/f5.jsonl.old", root);
        rename(from, to);
        f = lp_archive_get(a, "jm/f5.jsonl", 11, err);
        line(lp_afile_buf(f), 1700000000100ULL, 0, 10);
        is_int(write_batch(a, &dups, err), 0, "journal mode: written after "
               "a rotation");
        got = slurp("jm/f5.jsonl", &n);
        ok(got == NULL || n == 0, "journal mode: the line is held, not "
           "written yet");
        free(got);
    }
    is_int(lp_archive_flush_all(a, err), 0, "journal mode: flush_all");
    got = slurp("jm/f0.jsonl", &n);
    is_int(got ? count_lines(got, n) : 0, 4,
           "journal mode: ... and written by the epoch");
    free(got);
    /* a line held when the file was renamed away goes to its successor,
     * as a late line for a rotated day does */
    {
        size_t n2, k1, k2;
        char *old;
        got = slurp("jm/f5.jsonl", &n);
        old = slurp("jm/f5.jsonl.old", &n2);
        k1 = got ? count_lines(got, n) : 0;
        k2 = old ? count_lines(old, n2) : 0;
        ok(k1 >= 1 && k1 + k2 == 5, "journal mode: f5's 5 lines in the "
           "renamed file (%zu) and its successor (%zu)", k2, k1);
        free(got);
        free(old);
    }
    /* held lines, then a redelivered entry among them: the check writes
     * them first and finds it */
    {
        struct lp_afile *f = lp_archive_get(a, "jm/h.jsonl", 10, err);
        line(lp_afile_buf(f), 1700000000200ULL, 0, 10);
        line(lp_afile_buf(f), 1700000000201ULL, 0, 10);
        is_int(write_batch(a, &dups, err), 0, "journal mode: two held");
        got = slurp("jm/h.jsonl", &n);
        ok(got == NULL || n == 0, "journal mode: not in the file yet");
        free(got);
        f = lp_archive_get(a, "jm/h.jsonl", 10, err);
        lp_afile_check(f, "1700000000201-0", 15);
        line(lp_afile_buf(f), 1700000000201ULL, 0, 10);
        line(lp_afile_buf(f), 1700000000202ULL, 0, 10);
        is_int(write_batch(a, &dups, err), 0, "journal mode: a copy of a "
               "held line written");
        is_int(dups, 1, "journal mode: the copy found among the held");
        got = slurp("jm/h.jsonl", &n);
        is_int(got ? count_lines(got, n) : 0, 3, "journal mode: 3 lines, "
               "held ones first");
        free(got);
        dups = 0;
        is_int(lp_archive_flush_all(a, err), 0, "journal mode: flushed");
    }
    ok(lp_journal_bytes(j) == 0 && !lp_archive_busy(a),
       "journal mode: the journal is cut whole");
    ok(open_fds() - base <= 4, "journal mode: the kept descriptors are "
       "closed (%d open)", open_fds() - base);
    is_int(dups, 0, "journal mode: no line taken for a copy");
    /* a redelivered line found in its file: dropped, the batch durable */
    {
        struct lp_afile *f = lp_archive_get(a, "jm/f1.jsonl", 11, err);
        lp_afile_check(f, "1700000000000-1", 15);
        line(lp_afile_buf(f), 1700000000000ULL, 1, 10);
        is_int(write_batch(a, &dups, err), 0, "journal mode: a copy written");
        is_int(dups, 1, "journal mode: the copy recognised");
    }
    /* three files held, the first renamed away: the epoch writes all
     * three before it seals (the renamed one is reopened on the way) */
    {
        const char *names[3] = { "jm/hA.jsonl", "jm/hB.jsonl", "jm/hC.jsonl" };
        char from[600], to[600];
        int all = 1;
        for (int k = 0; k < 3; k++) {
            struct lp_afile *f = lp_archive_get(a, names[k], 11, err);
            line(lp_afile_buf(f), 1700000000300ULL + k, 0, 10);
        }
        is_int(write_batch(a, &dups, err), 0, "journal mode: three held");
        snprintf(from, sizeof from, "%s/jm/hA.jsonl", root);
        snprintf(to, sizeof to, "%s/jm/hA.old", root);
        /* hA was never written: make it exist to be renamed */
        close(open(from, O_WRONLY | O_CREAT, 0640));
        rename(from, to);
        is_int(lp_archive_flush_all(a, err), 0, "journal mode: flushed "
               "after a rename (%s)", err);
        for (int k = 0; k < 3; k++) {
            got = slurp(names[k], &n);
            all &= got != NULL && count_lines(got, n) == 1;
            free(got);
        }
        ok(all, "journal mode: each of the three has its line");
        ok(lp_journal_bytes(j) == 0, "journal mode: and the journal is cut");
    }
    /* the commit in the background (lp_archive_async): the batch's
     * record is in the journal at once, durable at sync_finish; no epoch
     * seals under it; flush_all finishes it first */
    {
        struct lp_afile *f = lp_archive_get(a, "jm/as.jsonl", 11, err);
        struct lp_afile *g = lp_archive_get(a, "jm/at.jsonl", 11, err);
        char who[64];
        line(lp_afile_buf(f), 1700000000400ULL, 0, 10);
        line(lp_afile_buf(g), 1700000000400ULL, 1, 10);
        lp_archive_hold(a, 0, 0);       /* written through */
        lp_archive_async(a, 1);
        is_int(write_batch(a, &dups, err), 0, "async: written");
        ok(lp_journal_commit_pending(j), "async: its commit is syncing");
        ok(lp_archive_busy(a), "async: busy meanwhile");
        is_int(lp_journal_covers(dirfd, "jm/as.jsonl", 11, who, sizeof who,
                                 err), 1, "async: rotate sees the record");
        uint64_t before = lp_journal_bytes(j);
        usleep(1100 * 1000);            /* an epoch is due */
        is_int(lp_archive_flush(a, err), 0, "async: flush while committing");
        ok(lp_journal_commit_pending(j) && lp_journal_bytes(j) == before,
           "async: ... does nothing then");
        is_int(lp_archive_sync_finish(a, err), 0, "async: finished");
        ok(!lp_journal_commit_pending(j) && lp_journal_bytes(j) > before,
           "async: the record counts once synced");
        is_int(lp_archive_sync_finish(a, err), 0,
               "async: a second finish is nothing");
        got = slurp("jm/as.jsonl", &n);
        is_int(got ? count_lines(got, n) : 0, 1, "async: the line is in "
               "its file");
        free(got);
        f = lp_archive_get(a, "jm/as.jsonl", 11, err);
        g = lp_archive_get(a, "jm/at.jsonl", 11, err);
        line(lp_afile_buf(f), 1700000000401ULL, 0, 10);
        line(lp_afile_buf(g), 1700000000401ULL, 1, 10);
        lp_archive_async(a, 1);
        is_int(write_batch(a, &dups, err), 0, "async: a second batch");
        is_int(lp_archive_flush_all(a, err), 0, "async: flush_all with a "
               "commit syncing");
        ok(!lp_journal_commit_pending(j) && lp_journal_bytes(j) == 0,
           "async: ... finished it, then cut the journal whole");
        f = lp_archive_get(a, "jm/as.jsonl", 11, err);
        g = lp_archive_get(a, "jm/at.jsonl", 11, err);
        line(lp_afile_buf(f), 1700000000402ULL, 0, 10);
        line(lp_afile_buf(g), 1700000000402ULL, 1, 10);
        is_int(write_batch(a, &dups, err), 0, "async: reset by the write");
        ok(!lp_journal_commit_pending(j), "async: the next commit is whole");
        is_int(lp_archive_flush_all(a, err), 0, "async: flushed");
    }
    /* a batch that writes one file: that file's sync is its commit, in
     * the lane; its lines do not go to the journal, only a mark of the
     * file (lp_journal_mark), for rotate */
    {
        struct lp_afile *f;
        char who[64];
        uint64_t before = lp_journal_bytes(j);
        f = lp_archive_get(a, "jm/new/one.jsonl", 16, err);
        line(lp_afile_buf(f), 1700000000499ULL, 0, 10);
        lp_archive_hold(a, 0, 0);
        lp_archive_async(a, 1);
        is_int(write_batch(a, &dups, err), 0, "one new file: written");
        is_int(lp_archive_sync_finish(a, err), 0, "one new file: committed");
        is_int(lp_journal_bytes(j), before + (before ? 0 : 8) + MARK(16),
               "one new file in a new directory: only a mark of it in the "
               "journal, not its lines (both directories synced with it)");
        is_int(lp_journal_covers(dirfd, "jm/new/one.jsonl", 16, who,
                                 sizeof who, err), 1,
               "one new file: rotate sees the mark");
        before = lp_journal_bytes(j);
        f = lp_archive_get(a, "jm/new/one.jsonl", 16, err);
        line(lp_afile_buf(f), 1700000000500ULL, 0, 10);
        lp_archive_hold(a, 0, 0);
        lp_archive_async(a, 1);
        is_int(write_batch(a, &dups, err), 0, "one file: written");
        ok(lp_archive_busy(a), "one file: busy while it syncs");
        ok(!lp_journal_commit_pending(j) &&
           lp_journal_bytes(j) == before + MARK(16),
           "one file: a mark in the journal, not its lines");
        is_int(lp_archive_flush(a, err), 0, "one file: flush while it syncs");
        is_int(lp_archive_sync_finish(a, err), 0, "one file: synced");
        got = slurp("jm/new/one.jsonl", &n);
        is_int(got ? count_lines(got, n) : 0, 2, "one file: the lines are "
               "in their file");
        free(got);
        /* a copy found in it, and the batch empty then: synced still */
        f = lp_archive_get(a, "jm/new/one.jsonl", 16, err);
        lp_afile_check(f, "1700000000500-0", 15);
        line(lp_afile_buf(f), 1700000000500ULL, 0, 10);
        lp_archive_async(a, 1);
        dups = 0;
        is_int(write_batch(a, &dups, err), 0, "one file: only a copy");
        is_int(dups, 1, "one file: the copy recognised");
        ok(lp_archive_busy(a), "one file: its sync runs (the copy may be "
           "another run's, never synced)");
        is_int(lp_archive_sync_finish(a, err), 0, "one file: synced again");
        dups = 0;
        is_int(lp_archive_flush_all(a, err), 0, "one file: flushed");
    }
    is_int(lp_archive_flush(a, err), 0, "journal mode: flush, nothing due");
    is_int(lp_journal_remove(j, err), 0, "journal mode: removed");
    lp_archive_free(a);
    lp_journal_close(j);
}

/* A batch that writes one new file: with its few new directories, synced
 * with it, its commit; with too many, the journal */
static void test_direct_dirs(void)
{
    struct lp_archive *a = lp_archive_new(dirfd, 64, NULL);
    struct lp_journal *j;
    char err[LP_ERRLEN], who[64];
    const char *deep = "jd/n1/n2/n3/deep.jsonl", *near = "jd/n1/x.jsonl";
    uint64_t dups = 0;
    struct lp_afile *f;

    j = lp_journal_open(dirfd, "jd", NULL, err);
    lp_archive_set_journal(a, j, 0);
    f = lp_archive_get(a, deep, strlen(deep), err);
    line(lp_afile_buf(f), 1700000000600ULL, 0, 10);
    lp_archive_hold(a, 0, 0);
    lp_archive_async(a, 1);
    is_int(write_batch(a, &dups, err), 0, "new deep file: written");
    is_int(lp_archive_sync_finish(a, err), 0, "new deep file: committed");
    is_int(lp_journal_covers(dirfd, deep, strlen(deep), who, sizeof who,
                             err), 1,
           "new file in 4 new directories: in the journal (too many "
           "directories to sync with it)");
    f = lp_archive_get(a, deep, strlen(deep), err);
    line(lp_afile_buf(f), 1700000000601ULL, 0, 10);
    lp_archive_hold(a, 0, 0);
    lp_archive_async(a, 1);
    uint64_t before = lp_journal_bytes(j);
    is_int(write_batch(a, &dups, err), 0, "deep file again: written");
    is_int(lp_archive_sync_finish(a, err), 0, "deep file again: committed");
    ok(lp_journal_bytes(j) > before, "deep file again: in the journal, its "
       "directories not synced yet");
    is_int(lp_archive_flush_all(a, err), 0, "flushed: directories synced");
    f = lp_archive_get(a, deep, strlen(deep), err);
    line(lp_afile_buf(f), 1700000000602ULL, 0, 10);
    lp_archive_hold(a, 0, 0);
    lp_archive_async(a, 1);
    is_int(write_batch(a, &dups, err), 0, "deep file, synced names: written");
    is_int(lp_archive_sync_finish(a, err), 0, "... committed");
    is_int(lp_journal_bytes(j), 8 + MARK(strlen(deep)),
           "... by its own sync: a mark in the journal, not its lines");
    before = lp_journal_bytes(j);
    f = lp_archive_get(a, near, strlen(near), err);
    line(lp_afile_buf(f), 1700000000603ULL, 0, 10);
    lp_archive_hold(a, 0, 0);
    lp_archive_async(a, 1);
    is_int(write_batch(a, &dups, err), 0, "new file, its directories there: "
           "written");
    is_int(lp_archive_sync_finish(a, err), 0, "... committed");
    is_int(lp_journal_bytes(j), before + MARK(strlen(near)),
           "... with its directories in the lane: a mark, not its lines");
    is_int(lp_archive_flush_all(a, err), 0, "flushed");
    size_t n;
    char *got = slurp(deep, &n);
    is_int(got ? count_lines(got, n) : 0, 3, "the deep file has its 3 lines");
    free(got);
    is_int(lp_journal_remove(j, err), 0, "removed");
    lp_archive_free(a);
    lp_journal_close(j);
}

struct recs {
    size_t lines[3];            /* of he/A, he/B, he/C */
    size_t other;
};

static int count_rec(void *ctx, const char *path, size_t plen,
                     const char *lines, size_t len, char *err)
{
    struct recs *r = ctx;
    static const char *names[3] = { "he/A.jsonl", "he/B.jsonl", "he/C.jsonl" };

    (void)err;
    for (int k = 0; k < 3; k++)
        if (plen == strlen(names[k]) && memcmp(path, names[k], plen) == 0) {
            r->lines[k] += count_lines(lines, len);
            return 0;
        }
    r->other++;
    return 0;
}

static size_t lines_of(const char *rel)
{
    size_t n, k;
    char *got = slurp(rel, &n);

    k = got ? count_lines(got, n) : 0;
    free(got);
    return k;
}

/*
 * Lines held over an epoch's start stay held when they were committed
 * after the seal before it, and so do their journal segments; the next
 * epoch writes them and cuts what they kept. A crash in between finds
 * them in the journal, and what was cut in the files. And more than
 * LP_HOLD_LOW held after a batch: files are written in turn, a few a
 * batch, not all at once.
 */
static void test_held_epochs(void)
{
    char err[LP_ERRLEN];
    struct lp_archive *a = lp_archive_new(dirfd, 64, NULL);
    struct lp_journal *j = lp_journal_open(dirfd, "he", NULL, err);
    struct recs r = { { 0 }, 0 };
    uint64_t dups = 0, second;
    struct lp_afile *f;

    ok(a != NULL && j != NULL, "held over epochs: archive and journal");
    lp_archive_set_journal(a, j, 0);
    f = lp_archive_get(a, "he/A.jsonl", 10, err);
    line(lp_afile_buf(f), 1700000001000ULL, 0, 10);
    f = lp_archive_get(a, "he/B.jsonl", 10, err);
    line(lp_afile_buf(f), 1700000001000ULL, 1, 10);
    is_int(write_batch(a, &dups, err), 0, "held over epochs: A and B held");
    uint64_t first = lp_journal_bytes(j);
    is_int(lp_archive_epoch(a, err), 0, "held over epochs: an epoch");
    ok(lines_of("he/A.jsonl") == 0 && lines_of("he/B.jsonl") == 0,
       "held over epochs: lines committed since the last seal stay held");
    is_int(lp_journal_bytes(j), first, "held over epochs: ... and their "
           "journal too");
    f = lp_archive_get(a, "he/B.jsonl", 10, err);
    line(lp_afile_buf(f), 1700000001001ULL, 1, 10);
    f = lp_archive_get(a, "he/C.jsonl", 10, err);
    line(lp_afile_buf(f), 1700000001001ULL, 2, 10);
    is_int(write_batch(a, &dups, err), 0, "held over epochs: B and C held");
    is_int(lp_archive_held(a) > 0, 1, "held over epochs: held");
    second = lp_journal_bytes(j);
    is_int(lp_archive_epoch(a, err), 0, "held over epochs: a second epoch");
    ok(lines_of("he/A.jsonl") == 1 && lines_of("he/B.jsonl") == 2,
       "held over epochs: the lines held over a seal are written (A 1, B 2)");
    is_int(lines_of("he/C.jsonl"), 0, "held over epochs: C's, committed "
           "since, still held");
    is_int(lp_journal_bytes(j), second - first, "held over epochs: the "
           "first batch's segment cut, the second's kept");
    /* a crash now: what the journal keeps is what the files may lack */
    lp_archive_free(a);
    lp_journal_close(j);
    j = lp_journal_open(dirfd, "he", NULL, err);
    ok(j != NULL && lp_journal_left(j), "held over epochs: a crash leaves "
       "the journal");
    is_int(lp_journal_replay(j, count_rec, &r, err), 0,
           "held over epochs: replayed");
    ok(r.lines[0] == 0 && r.lines[1] == 1 && r.lines[2] == 1 && r.other == 0,
       "held over epochs: the journal keeps B's second line and C's, not "
       "the first batch (A %zu, B %zu, C %zu)", r.lines[0], r.lines[1],
       r.lines[2]);
    is_int(lp_journal_cut(j, lp_journal_seal(j), err), 0,
           "held over epochs: cut");
    is_int(lp_journal_remove(j, err), 0, "held over epochs: removed");
    lp_journal_close(j);

    /* 320 files of 20,000-byte lines: one batch holds more than
     * LP_HOLD_LOW, so files are written in turn until no more is; then
     * another line for the first 160: the turn goes on from there */
    a = lp_archive_new(dirfd, 512, NULL);
    j = lp_journal_open(dirfd, "ht", NULL, err);
    lp_archive_set_journal(a, j, 0);
    size_t written[3] = { 0 }, held[2] = { 0 };
    int rc = 0;
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < (b ? 160 : 320) && rc == 0; k++) {
            char path[64];
            snprintf(path, sizeof path, "ht/f%03d.jsonl", k);
            if ((f = lp_archive_get(a, path, strlen(path), err)) == NULL)
                rc = -1;
            else
                line(lp_afile_buf(f), 1700000002000ULL + (uint64_t)b,
                     (uint64_t)k, 20000);
        }
        if (rc == 0)
            rc = write_batch(a, &dups, err);
        held[b] = lp_archive_held(a);
        for (int k = 0; k < 320; k++) {
            char path[64];
            snprintf(path, sizeof path, "ht/f%03d.jsonl", k);
            written[b] += lines_of(path);
        }
    }
    is_int(rc, 0, "held in turn: two batches (%s)", rc ? err : "");
    ok(held[0] > 0 && held[0] <= LP_HOLD_LOW && held[1] > 0 &&
       held[1] <= LP_HOLD_LOW, "held in turn: at most LP_HOLD_LOW held after "
       "each batch (%zu, %zu)", held[0], held[1]);
    ok(written[0] > 0 && written[0] < 16, "held in turn: the first batch "
       "wrote a few files (%zu lines)", written[0]);
    ok(written[1] >= written[0] + 40 && written[1] < 200,
       "held in turn: the second batch wrote more (%zu lines in all)",
       written[1]);
    is_int(lines_of("ht/f000.jsonl"), 1, "held in turn: ... the next files, "
           "not the first again (its second line held)");
    is_int(lp_archive_flush_all(a, err), 0, "held in turn: flushed");
    for (int k = 0; k < 320; k++) {
        char path[64];
        snprintf(path, sizeof path, "ht/f%03d.jsonl", k);
        written[2] += lines_of(path);
    }
    is_int(written[2], 480, "held in turn: every line in its file");
    ok(lp_journal_bytes(j) == 0 && lp_archive_held(a) == 0,
       "held in turn: nothing held, the journal cut whole");
    is_int(lp_journal_remove(j, err), 0, "held in turn: removed");
    lp_archive_free(a);
    lp_journal_close(j);
}

int main(void)
{
    char err[LP_ERRLEN];

    if (mkdtemp(root) == NULL || (dirfd = lp_fs_root(root, 0, err)) < 0) {
        printf("Bail out! %s\n", root);
        return 1;
    }
    test_line_id();
    test_shard_ids();
    test_file_holds();
    test_dedup();
    test_stop_rule();
    test_partial_and_rotation();
    test_journal_mode();
    test_direct_dirs();
    test_held_epochs();
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", root);
    }
    close(dirfd);
    return tap_done();
}
