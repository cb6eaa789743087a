/* unit-sync.c -- lp_sync_all: many files at once, failures reported */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_sync.h"
#include "tap.h"

int main(void)
{
    char dir[] = "/tmp/unit-sync.XXXXXX", path[64];
    int fds[40];
    size_t bad = 99;

    if (mkdtemp(dir) == NULL)
        return 1;
    for (int i = 0; i < 40; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        fds[i] = open(path, O_WRONLY | O_CREAT, 0600);
        if (fds[i] < 0 || write(fds[i], "x\n", 2) != 2)
            return 1;
    }
    /* first use in the background: the workers made for this job must
     * take it even when they first run after it was posted (they used to
     * wait for the next one, and this hung) */
    lp_sync_start(fds, 40);
    ok(lp_sync_wait(&bad) == 0, "first job in the background, fresh pool");
    ok(lp_sync_all(fds, 0, &bad) == 0, "no file: nothing to do");
    ok(lp_sync_all(fds, 1, &bad) == 0, "one file, in the caller");
    ok(lp_sync_all(fds, 40, &bad) == 0, "forty files, with the pool");
    for (int round = 0; round < 200; round++)
        if (lp_sync_all(fds, 1 + (size_t)round % 40, &bad) < 0)
            break;
    ok(1, "200 rounds of 1 to 40 files, pool reused");
    lp_sync_start(fds, 40);
    ok(lp_sync_wait(&bad) == 0, "forty files in the background, waited for");
    lp_sync_start(fds, 1);
    ok(lp_sync_wait(&bad) == 0, "one file in the background");
    for (int round = 0; round < 100; round++) {
        lp_sync_start(fds, 1 + (size_t)round % 40);
        if (lp_sync_wait(&bad) < 0)
            break;
    }
    ok(1, "100 background rounds of 1 to 40 files");
    {
        /* a directory, given as -1 - fd, is fsynced */
        int d = open(dir, O_RDONLY | O_DIRECTORY), keep = fds[3];
        fds[3] = -1 - d;
        lp_sync_start(fds, 5);
        ok(d >= 0 && lp_sync_wait(&bad) == 0, "a directory among the files");
        fds[3] = keep;
        close(d);
    }
    {
        /* the lane: beside a running job of the pool, on its own thread */
        int lane[2] = { fds[0], fds[1] };
        lp_sync_start(fds + 2, 30);
        lp_sync_lane_start(lane, 2);
        ok(lp_sync_lane_wait(&bad) == 0, "the lane syncs beside a job");
        ok(lp_sync_wait(&bad) == 0, "and the job ends as well");
        ok(lp_sync_lane_wait(&bad) == 0, "a wait with no job: 0");
        int rounds = 0;
        for (int round = 0; round < 100; round++) {
            lp_sync_lane_start(lane, 1 + (size_t)round % 2);
            if (lp_sync_lane_wait(&bad) < 0)
                break;
            rounds++;
        }
        is_int(rounds, 100, "100 lane rounds");
        int five[5] = { fds[0], fds[1], fds[2], fds[3], fds[4] };
        lp_sync_lane_start(five, 5);
        errno = 0;
        ok(lp_sync_lane_wait(&bad) < 0 && errno == E2BIG,
           "more files than the lane takes: refused, not synced in part");
        int d = open(dir, O_RDONLY | O_DIRECTORY);
        int bads[3] = { fds[0], -1 - d, 1 << 20 };
        lp_sync_lane_start(bads, 3);
        errno = 0;
        ok(lp_sync_lane_wait(&bad) < 0 && errno == EBADF && bad == 2,
           "a failing lane file: -1, its errno and its index (%zu)", bad);
        lp_sync_lane_start(bads, 2);
        ok(lp_sync_lane_wait(&bad) == 0, "a directory in the lane, clean");
        close(d);
    }
    int f17 = fds[17];
    close(f17);
    fds[17] = 1 << 20;          /* not open: EBADF */
    lp_sync_start(fds, 40);
    errno = 0;
    ok(lp_sync_wait(&bad) < 0 && errno == EBADF && bad == 17,
       "in the background: a failing file reported (%zu)", bad);
    errno = 0;
    ok(lp_sync_all(fds, 40, &bad) < 0 && errno == EBADF && bad == 17,
       "a failing file: -1, its errno and its index (%zu)", bad);
    ok(lp_sync_all(fds, 17, &bad) == 0, "the next job is clean again");
    close(fds[0]);
    fds[0] = 1 << 20;
    ok(lp_sync_all(fds, 1, &bad) < 0 && bad == 0, "a failing lone file");
    for (int i = 1; i < 40; i++) {
        if (i != 17)
            close(fds[i]);
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/f0", dir);
    unlink(path);
    rmdir(dir);
    return tap_done();
}
