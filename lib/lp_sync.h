/* lp_sync.h -- fdatasync many files at once */
#ifndef LP_SYNC_H
#define LP_SYNC_H

#include <stddef.h>

/*
 * fdatasyncs fds[0..n), concurrently when n > 1: a small pool of threads
 * (made on first use, kept) and the caller each take the next file. The
 * file system commits concurrent syncs together (ext4 groups them into one
 * journal commit), so twenty files cost about what one does, where one
 * after the other they cost twenty times as much. Returns 0, or -1 with
 * errno and *bad set to the index of a file that failed (the others were
 * synced or failed too: trust none of them then).
 */
int lp_sync_all(const int *fds, size_t n, size_t *bad);

/*
 * The same in two halves, so that the caller works meanwhile; a
 * descriptor given as -1 - fd (a directory) is fsynced, not fdatasynced: start
 * syncing fds[0..n) in the pool and return at once (fds must stay valid
 * until the wait); lp_sync_wait waits for the job to end and returns as
 * lp_sync_all does. One job at a time.
 */
void lp_sync_start(const int *fds, size_t n);
int lp_sync_wait(size_t *bad);

/*
 * The same for a whole file system: syncfs(2) of *fd's (fd borrowed, valid
 * until the wait), then fsync(2) of *fd (a directory: its cache flush
 * comes after the last blocks syncfs writes), as the pool's job, in one
 * of its threads. It writes every file of that file system with data not
 * yet written, whoever wrote it, its directories and inodes, with one or
 * two cache flushes; lp_sync_wait
 * returns as for a job of one file (Linux reports a write error of any
 * file of the file system since fd was opened, from 5.8 on: the caller
 * checks the kernel, lp_sync_fs_reports).
 */
void lp_sync_fs_start(const int *fd);

/* Does syncfs(2) report write errors here (Linux 5.8 or later)? */
int lp_sync_fs_reports(void);

/* Is a job started by lp_sync_start still running? (lp_sync_wait then
 * blocks.) Never blocks. */
int lp_sync_busy(void);

/*
 * The lane: a thread of its own for a few files that must not wait
 * behind the pool's job (a batch's commit beside an epoch of thousands of
 * files). lp_sync_lane_start syncs fds[0..n) (copied, n <= LP_SYNC_LANE;
 * -1 - fd: fsync) one after the other in that thread and returns at once;
 * lp_sync_lane_wait waits and returns as lp_sync_all does (more than
 * LP_SYNC_LANE files: the job fails with E2BIG, nothing synced). One job
 * at a time; without a thread (none could be made) the start syncs them
 * itself.
 */
#define LP_SYNC_LANE 4
void lp_sync_lane_start(const int *fds, size_t n);
int lp_sync_lane_wait(size_t *bad);

#endif
