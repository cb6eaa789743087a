/* lp_sync.c -- fdatasync many files at once */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "lp_sync.h"

#define LP_SYNC_THREADS 15      /* and the caller: 16 syncs at once */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fin = PTHREAD_COND_INITIALIZER;
static int nthreads;            /* workers started */
static unsigned gen;            /* a new job each time it moves */
static int active;              /* workers inside a job */
static const int *job_fds;
static size_t job_n;
static atomic_size_t job_next;
static int job_errno;
static size_t job_bad;

/* Takes files until none is left; the first failure is kept. */
static void run(void)
{
    size_t i;

    while ((i = atomic_fetch_add(&job_next, 1)) < job_n) {
        if (fdatasync(job_fds[i]) < 0) {
            int e = errno;
            pthread_mutex_lock(&mu);
            if (job_errno == 0) {
                job_errno = e;
                job_bad = i;
            }
            pthread_mutex_unlock(&mu);
        }
    }
}

static void *worker(void *arg)
{
    unsigned seen;

    (void)arg;
    pthread_mutex_lock(&mu);
    seen = gen;
    for (;;) {
        while (gen == seen)
            pthread_cond_wait(&go, &mu);
        seen = gen;
        active++;
        pthread_mutex_unlock(&mu);
        run();
        pthread_mutex_lock(&mu);
        if (--active == 0)
            pthread_cond_signal(&fin);
    }
    return NULL;
}

int lp_sync_all(const int *fds, size_t n, size_t *bad)
{
    int e;

    if (n <= 1) {
        if (n == 1 && fdatasync(fds[0]) < 0) {
            *bad = 0;
            return -1;
        }
        return 0;
    }
    pthread_mutex_lock(&mu);
    /* enough workers for this many files, made once */
    while (nthreads < LP_SYNC_THREADS && (size_t)nthreads < n - 1) {
        pthread_t t;
        pthread_attr_t at;
        sigset_t all, old;
        /* signals stay with the main thread, whose loops wait for them:
         * the worker starts with every signal blocked */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 64 * 1024);
        int rc = pthread_create(&t, &at, worker, NULL);
        pthread_attr_destroy(&at);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            break;              /* fewer helpers: still correct */
        nthreads++;
    }
    job_fds = fds;
    job_n = n;
    atomic_store(&job_next, 0);
    job_errno = 0;
    gen++;
    pthread_cond_broadcast(&go);
    pthread_mutex_unlock(&mu);
    run();
    pthread_mutex_lock(&mu);
    while (active > 0)
        pthread_cond_wait(&fin, &mu);
    e = job_errno;
    *bad = job_bad;
    job_fds = NULL;
    job_n = 0;
    pthread_mutex_unlock(&mu);
    if (e) {
        errno = e;
        return -1;
    }
    return 0;
}
