/* lp_sync.c -- fdatasync many files at once */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lp_sync.h"

#define LP_SYNC_THREADS 15      /* and the caller: 16 syncs at once */

/* One job at a time; every field under mu. Workers and the caller take
 * the next file under the lock and sync it without: a few files per
 * batch, so the lock costs nothing next to a sync. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fin = PTHREAD_COND_INITIALIZER;
static int nthreads;            /* workers started */
static unsigned gen;            /* a new job each time it moves */
static const int *job_fds;
static size_t job_n, job_next, job_done;
static int job_errno;
static size_t job_bad;
static int job_fs;              /* the job is a syncfs of job_fds[0] */

/* syncfs(2) of fd's file system, then fsync(2) of fd: on ext4 without a
 * journal, syncfs flushes the disk's cache before it writes the last
 * inode and directory blocks (sync_filesystem: ->sync_fs(sb, 1), then
 * sync_blockdev), and the fsync of a directory always ends with a flush
 * there, which makes them durable too. Elsewhere it costs a flush at
 * most. */
static int sync_fs(int fd)
{
    return syncfs(fd) < 0 || fsync(fd) < 0 ? -1 : 0;
}

/* Takes files until none is left; the first failure is kept. Called and
 * returns with mu held. */
static void run_locked(void)
{
    while (job_next < job_n) {
        size_t i = job_next++;
        int fd = job_fds[i], rc, e;

        pthread_mutex_unlock(&mu);
        if (job_fs)
            rc = sync_fs(fd);
        else
            rc = fd < 0 ? fsync(-1 - fd) : fdatasync(fd);
        e = errno;
        pthread_mutex_lock(&mu);
        if (rc < 0 && job_errno == 0) {
            job_errno = e;
            job_bad = i;
        }
        if (++job_done == job_n)
            pthread_cond_broadcast(&fin);
    }
}

/* arg: the generation before the job it was made for, which it must not
 * miss even when it first runs after that job was posted */
static void *worker(void *arg)
{
    unsigned seen = (unsigned)(uintptr_t)arg;

    pthread_mutex_lock(&mu);
    for (;;) {
        while (gen == seen)
            pthread_cond_wait(&go, &mu);
        seen = gen;
        run_locked();
    }
    return NULL;
}

static void fork_child(void);
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

/* Makes workers up to want (at most LP_SYNC_THREADS). With mu held. */
static void spawn_locked(size_t want)
{
    pthread_once(&atfork_once, atfork_register);
    while (nthreads < LP_SYNC_THREADS && (size_t)nthreads < want) {
        pthread_t t;
        pthread_attr_t at;
        sigset_t all, old;
        int rc;
        /* signals stay with the main thread, whose loops wait for them:
         * the worker starts with every signal blocked */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 64 * 1024);
        rc = pthread_create(&t, &at, worker, (void *)(uintptr_t)gen);
        pthread_attr_destroy(&at);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            break;              /* fewer helpers: still correct */
        nthreads++;
    }
}

/* Posts fds[0..n) as the job, with workers enough for `workers` of the
 * files. With mu held. */
static void post_locked(const int *fds, size_t n, size_t workers)
{
    spawn_locked(workers);
    job_fds = fds;
    job_n = n;
    job_next = job_done = 0;
    job_errno = 0;
    job_fs = 0;
    gen++;
    pthread_cond_broadcast(&go);
}

void lp_sync_start(const int *fds, size_t n)
{
    pthread_mutex_lock(&mu);
    post_locked(fds, n, n);
    if (nthreads == 0)
        run_locked();           /* no thread to be had: in the caller */
    pthread_mutex_unlock(&mu);
}

void lp_sync_fs_start(const int *fd)
{
    pthread_mutex_lock(&mu);
    post_locked(fd, 1, 1);
    job_fs = 1;                 /* before any worker can take it: mu */
    if (nthreads == 0)
        run_locked();
    pthread_mutex_unlock(&mu);
}

int lp_sync_fs_reports(void)
{
    struct utsname u;
    char *end;
    long major, minor = 0;

    /* before 5.8, syncfs returned 0 whatever the writeback found (5.8:
     * "vfs: track per-sb writeback errors and report them to syncfs") */
    if (uname(&u) < 0)
        return 0;
    major = strtol(u.release, &end, 10);
    if (*end == '.')
        minor = strtol(end + 1, NULL, 10);
    return major > 5 || (major == 5 && minor >= 8);
}

int lp_sync_wait(size_t *bad)
{
    int e;

    pthread_mutex_lock(&mu);
    while (job_done < job_n)
        pthread_cond_wait(&fin, &mu);
    e = job_errno;
    *bad = job_bad;
    job_fds = NULL;
    job_n = job_next = job_done = 0;
    pthread_mutex_unlock(&mu);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

int lp_sync_busy(void)
{
    int busy;

    pthread_mutex_lock(&mu);
    busy = job_done < job_n;
    pthread_mutex_unlock(&mu);
    return busy;
}

/* ---- the lane ----------------------------------------------------------- */

/* Every field under lmu. lane_state: 0 idle, 1 posted, 2 done. */
static pthread_mutex_t lmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lgo = PTHREAD_COND_INITIALIZER;
static pthread_cond_t lfin = PTHREAD_COND_INITIALIZER;
static int lane_thread = -1;    /* -1: not tried yet; 0: none; 1: running */
static int lane_fds[LP_SYNC_LANE];
static size_t lane_n, lane_bad;
static int lane_state, lane_errno;

/*
 * A child of fork(2) has none of these threads (logpipe-drain runs an
 * unsharded stream's engine, then forks the drains of its shards when
 * the stream becomes sharded): made again at its first job, as in a new
 * process, with the locks made anew (a worker may have held one at the
 * fork). Without this its first sync posted to a worker that is not
 * there waits for ever.
 */
static void fork_child(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&go, NULL);
    pthread_cond_init(&fin, NULL);
    nthreads = 0;
    job_fds = NULL;
    job_n = job_next = job_done = 0;
    job_errno = 0;
    job_fs = 0;
    pthread_mutex_init(&lmu, NULL);
    pthread_cond_init(&lgo, NULL);
    pthread_cond_init(&lfin, NULL);
    lane_thread = -1;
    lane_n = lane_bad = 0;
    lane_state = lane_errno = 0;
}

/* Syncs lane_fds in order, stopping at the first failure. Called without
 * lmu (the fields are the job's until it is done). */
static void lane_run(void)
{
    lane_errno = 0;
    for (size_t i = 0; i < lane_n; i++) {
        int fd = lane_fds[i];
        if ((fd < 0 ? fsync(-1 - fd) : fdatasync(fd)) < 0) {
            lane_errno = errno;
            lane_bad = i;
            break;
        }
    }
}

static void *lane_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lmu);
    for (;;) {
        while (lane_state != 1)
            pthread_cond_wait(&lgo, &lmu);
        pthread_mutex_unlock(&lmu);
        lane_run();
        pthread_mutex_lock(&lmu);
        lane_state = 2;
        pthread_cond_signal(&lfin);
    }
    return NULL;
}

void lp_sync_lane_start(const int *fds, size_t n)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&mu);            /* lane_thread: made once */
    if (lane_thread < 0) {
        pthread_t t;
        pthread_attr_t at;
        sigset_t all, old;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 64 * 1024);
        lane_thread = pthread_create(&t, &at, lane_worker, NULL) == 0;
        pthread_attr_destroy(&at);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&mu);
    pthread_mutex_lock(&lmu);
    if (n > LP_SYNC_LANE) {
        /* a caller's mistake: fail the job rather than sync a part */
        lane_n = 0;
        lane_errno = E2BIG;
        lane_bad = LP_SYNC_LANE;
        lane_state = 2;
        pthread_mutex_unlock(&lmu);
        return;
    }
    for (size_t i = 0; i < n; i++)
        lane_fds[i] = fds[i];
    lane_n = n;
    if (lane_thread) {
        lane_state = 1;
        pthread_cond_signal(&lgo);
    } else {
        lane_run();             /* no thread to be had: here */
        lane_state = 2;
    }
    pthread_mutex_unlock(&lmu);
}

int lp_sync_lane_wait(size_t *bad)
{
    int e;

    pthread_mutex_lock(&lmu);
    while (lane_state == 1)
        pthread_cond_wait(&lfin, &lmu);
    e = lane_state == 2 ? lane_errno : 0;
    *bad = lane_bad;
    lane_state = 0;
    pthread_mutex_unlock(&lmu);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}

int lp_sync_all(const int *fds, size_t n, size_t *bad)
{
    if (n <= 1) {
        if (n == 1 && fdatasync(fds[0]) < 0) {
            *bad = 0;
            return -1;
        }
        return 0;
    }
    pthread_mutex_lock(&mu);
    post_locked(fds, n, n - 1);
    run_locked();               /* the caller takes files too */
    pthread_mutex_unlock(&mu);
    return lp_sync_wait(bad);
}
