/* unit-lane.c -- the journal's commit synced in lp_sync's lane (a728e51):
 * a failed fdatasync of the segment must reach whoever acknowledges */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lp_archive.h"
#include "lp_buf.h"
#include "lp_journal.h"
#include "lp_parse.h"
#include "tap.h"

static char root[] = "/tmp/unit-lane.XXXXXX";
static int fail_segs;           /* a segment's fdatasync fails (EIO) */

/*
 * The library is linked in statically, so this fdatasync is the one it
 * calls, from the lane's thread too: a journal segment's fails while
 * fail_segs is set, every other file's is the kernel's.
 */
int fdatasync(int fd)
{
    char link[64], path[512];
    ssize_t n;

    if (__atomic_load_n(&fail_segs, __ATOMIC_SEQ_CST)) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof path - 1);
        if (n > 0) {
            path[n] = '\0';
            if (strstr(path, "/seg-") != NULL) {
                errno = EIO;
                return -1;
            }
        }
    }
    return (int)syscall(SYS_fdatasync, fd);
}

static void failing(int on)
{
    __atomic_store_n(&fail_segs, on, __ATOMIC_SEQ_CST);
}

static void rmrf(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

static void add(struct lp_journal *j, const char *id)
{
    char rec[64];

    snprintf(rec, sizeof rec, "{\"_id\":\"%s\"}\n", id);
    lp_journal_add(j, "x/1.jsonl", 9, rec, strlen(rec));
}

/* The two halves alone: the lane's failure comes back from the finish. */
static void test_finish(int dirfd)
{
    char err[LP_ERRLEN] = "";
    struct lp_journal *j = lp_journal_open(dirfd, "f", NULL, err);

    ok(j != NULL, "open f");
    add(j, "1-0");
    failing(1);
    is_int(lp_journal_commit_start(j, err), 0, "start, the lane to fail");
    errno = 0;
    ok(lp_journal_commit_finish(j, err) < 0 && errno == EIO,
       "finish: -1, EIO (%s)", err);
    failing(0);
    add(j, "2-0");
    is_int(lp_journal_commit(j, err), 0, "the next commit: a new segment");
    lp_journal_close(j);
}

/*
 * lp_journal_seal finishes a pending commit itself and drops what it
 * returned: the finish after it then says 0 for a commit whose sync
 * failed. lp_archive_sync_finish is that finish, and the drain sends the
 * batch's XACK when it returns 0; nothing keeps a seal from running
 * while lp_archive's `committing` is set but the callers' discipline
 * (make_room checks `locking`, not `committing`).
 */
static void test_seal(int dirfd)
{
    char err[LP_ERRLEN] = "";
    struct lp_journal *j = lp_journal_open(dirfd, "s", NULL, err);

    ok(j != NULL, "open s");
    add(j, "1-0");
    failing(1);
    is_int(lp_journal_commit_start(j, err), 0, "start, the lane to fail");
    lp_journal_seal(j);
    failing(0);
    errno = 0;
    ok(lp_journal_commit_finish(j, err) < 0,
       "a commit whose sync failed is not said to be durable after a "
       "seal finished it");
    lp_journal_close(j);
}

/*
 * The archive: lp_archive_async's contract lets lp_archive_flush_all run
 * while the commit syncs; it finishes the commit, says the failure, and
 * clears `committing`. lp_archive_sync_finish, "durable only once it
 * returns 0", then returns 0 for that batch.
 */
static void test_archive(int dirfd)
{
    char err[LP_ERRLEN] = "";
    struct lp_archive *a = lp_archive_new(dirfd, 4, NULL);
    struct lp_journal *j = lp_journal_open(dirfd, "a", NULL, err);
    struct lp_afile *f;
    uint64_t dups = 0;
    int rc;

    ok(a != NULL && j != NULL, "archive and journal made");
    lp_archive_set_journal(a, j, 0);
    f = lp_archive_get(a, "x/2.jsonl", 9, err);
    ok(f != NULL, "a day file");
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"5-0\"}\n");
    /* and a second: the batch goes through the journal (a batch of one
     * file is committed by that file's sync) */
    f = lp_archive_get(a, "y/2.jsonl", 9, err);
    lp_buf_adds(lp_afile_buf(f), "{\"_id\":\"5-1\"}\n");
    lp_archive_hold(a, 0, 0);
    lp_archive_async(a, 1);
    failing(1);
    rc = lp_archive_lock(a, err);
    if (rc == 0)
        rc = lp_archive_write(a, NULL, 0, &dups, err);
    is_int(rc, 0, "written, the commit syncing in the lane, to fail");
    ok(lp_archive_flush_all(a, err) < 0, "flush_all meanwhile: -1 (%s)",
       err);
    failing(0);
    ok(lp_archive_sync_finish(a, err) < 0,
       "the batch is not said to be durable after flush_all found its "
       "commit failed");
    lp_archive_free(a);
    lp_journal_close(j);
}

int main(void)
{
    int dirfd;

    if (!mkdtemp(root))
        return 1;
    dirfd = open(root, O_RDONLY | O_DIRECTORY);
    test_finish(dirfd);
    test_seal(dirfd);
    test_archive(dirfd);
    close(dirfd);
    rmrf(root);
    return tap_done();
}
