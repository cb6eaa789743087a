/* unit-jmode.c -- lp_archive in journal mode, at its edges: lp_archive_free
 * cuts nothing (the journal keeps what is only held), and a held file
 * whose reopen fails keeps its lines in the journal (found in review) */
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

static char root[] = "/tmp/unit-jmode.XXXXXX";
static int dirfd;

static size_t file_lines(const char *rel)
{
    char path[600], buf[65536];
    size_t k = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    if ((fd = open(path, O_RDONLY)) < 0)
        return 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            k += buf[i] == '\n';
    close(fd);
    return k;
}

static void line(struct lp_buf *b, uint64_t ms, uint64_t seq)
{
    char s[96];

    snprintf(s, sizeof s, "{\"_id\":\"%llu-%llu\",\"m\":\"x\"}\n",
             (unsigned long long)ms, (unsigned long long)seq);
    lp_buf_adds(b, s);
}

static int count_replay(void *ctx, const char *path, size_t plen,
                        const char *lines, size_t len, char *err)
{
    size_t *k = ctx;
    (void)path; (void)plen; (void)err;
    for (size_t i = 0; i < len; i++)
        *k += lines[i] == '\n';
    return 0;
}

/* Lines a fresh open of journal name would replay. */
static size_t journal_lines(const char *name)
{
    char err[LP_ERRLEN];
    size_t k = 0;
    struct lp_journal *j = lp_journal_open(dirfd, name, NULL, err);

    if (j == NULL)
        return 0;
    if (lp_journal_left(j))
        lp_journal_replay(j, count_replay, &k, err);
    lp_journal_close(j);
    return k;
}

/*
 * A: lp_archive_free after an end that left the journal (74: the drain
 * skips flush_all): close_file drops held lines ("the journal has them"),
 * but release_fd -> orphan_fd -> make_room runs an epoch once max_open
 * orphans are kept, and that epoch cuts the journal.
 */
static void test_free_cuts(void)
{
    char err[LP_ERRLEN], p[64];
    struct lp_archive *a = lp_archive_new(dirfd, 2, NULL);
    struct lp_journal *j = lp_journal_open(dirfd, "A", NULL, err);
    uint64_t dups = 0;
    size_t inj, infiles = 0;

    lp_archive_set_journal(a, j, 0);
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "A/f%d.jsonl", k);
        struct lp_afile *f = lp_archive_get(a, p, strlen(p), err);
        line(lp_afile_buf(f), 1700000000000ULL, (uint64_t)k);
    }
    is_int(lp_archive_lock(a, err), 0, "A: locked");
    is_int(lp_archive_write(a, NULL, 0, &dups, err), 0,
           "A: 3 lines committed (held): acknowledged now");
    /* the run ends by an I/O error elsewhere: no flush_all; free */
    lp_archive_free(a);
    lp_journal_close(j);
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "A/f%d.jsonl", k);
        infiles += file_lines(p);
    }
    inj = journal_lines("A");
    printf("# A: after free: %zu lines in the day files, %zu in the journal\n",
         infiles, inj);
    ok(infiles + inj >= 3, "A: every acknowledged line is in a file or in "
       "the journal after lp_archive_free (files %zu, journal %zu)",
       infiles, inj);
}

/*
 * B: a held file found rotated away whose reopen fails (EISDIR here;
 * EMFILE, EACCES, ELOOP alike): release_fd took it off the dirty list,
 * its held lines stay in memory only; the drain ends with 73 and its end
 * runs flush_all, whose epoch skips the file and cuts the journal.
 */
static void test_reopen_fails(void)
{
    char err[LP_ERRLEN], from[600], to[600];
    struct lp_archive *a = lp_archive_new(dirfd, 16, NULL);
    struct lp_journal *j = lp_journal_open(dirfd, "B", NULL, err);
    uint64_t dups = 0;
    struct lp_afile *f;
    int rc;

    mkdir("/dev/null/x", 0); /* nothing */
    lp_archive_set_journal(a, j, 0);
    f = lp_archive_get(a, "B/h.jsonl", 9, err);
    line(lp_afile_buf(f), 1700000000000ULL, 1);
    lp_archive_lock(a, err);
    is_int(lp_archive_write(a, NULL, 0, &dups, err), 0,
           "B: L1 committed and held (acknowledged)");
    /* rotate moves the (empty) file away; something not a file takes
     * its name */
    snprintf(from, sizeof from, "%s/B/h.jsonl", root);
    snprintf(to, sizeof to, "%s/B/h.old", root);
    rename(from, to);
    mkdir(from, 0750);
    /* the next batch writes through (caught up) */
    f = lp_archive_get(a, "B/h.jsonl", 9, err);
    line(lp_afile_buf(f), 1700000000000ULL, 2);
    lp_archive_hold(a, 0, 0);
    rc = lp_archive_lock(a, err);
    is_int(rc, -1, "B: lock fails (%s, errno %d)", err, errno);
    /* drain: env_end(fatal_errno(EISDIR)) = 73; the end flushes */
    rc = lp_archive_flush_all(a, err);
    printf("# B: flush_all at the end returned %d (%s)\n", rc, rc ? err : "");
    {
        size_t inj = journal_lines("B");
        size_t inf = file_lines("B/h.old");
        ok(inj + inf >= 1, "B: L1 (acknowledged) is in a file or in the "
           "journal after the end's flush_all (journal %zu, files %zu)",
           inj, inf);
    }
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
    test_free_cuts();
    test_reopen_fails();
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", root);
    }
    close(dirfd);
    return tap_done();
}
