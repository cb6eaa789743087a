/* lp_readahead.c -- asks the disk for files ahead of their reader */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_readahead.h"

struct lp_readahead {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t read;              /* bytes the reader read so far */
    int quit;                   /* lp_readahead_free: end now */
    char **names;               /* the files, in order; copies */
    size_t n;
    pthread_t t;
};

/* Waits until the reader is less than LP_RA_AHEAD behind asked; 0, or -1
 * when told to end. */
static int wait_reader(struct lp_readahead *ra, uint64_t asked)
{
    int quit;

    pthread_mutex_lock(&ra->mu);
    while (!ra->quit && asked >= ra->read + LP_RA_AHEAD)
        pthread_cond_wait(&ra->cv, &ra->mu);
    quit = ra->quit;
    pthread_mutex_unlock(&ra->mu);
    return quit ? -1 : 0;
}

static void *ra_thread(void *arg)
{
    struct lp_readahead *ra = arg;
    uint64_t asked = 0;

    for (size_t i = 0; i < ra->n; i++) {
        struct stat st;
        int fd;
        /* regular files only, and looked at before opened (see .h) */
        if (stat(ra->names[i], &st) < 0 || !S_ISREG(st.st_mode) ||
            (fd = open(ra->names[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
            continue;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            continue;
        }
        for (off_t off = 0; off < st.st_size; off += LP_RA_STEP) {
            if (wait_reader(ra, asked) < 0) {
                close(fd);
                return NULL;
            }
            posix_fadvise(fd, off, LP_RA_STEP, POSIX_FADV_WILLNEED);
            asked += (uint64_t)(st.st_size - off < LP_RA_STEP ?
                                st.st_size - off : LP_RA_STEP);
        }
        close(fd);
    }
    return NULL;
}

static void names_free(struct lp_readahead *ra)
{
    for (size_t i = 0; i < ra->n; i++)
        free(ra->names[i]);
    free(ra->names);
}

struct lp_readahead *lp_readahead_start(const char *const *names, size_t n)
{
    struct lp_readahead *ra;
    sigset_t all, old;
    int rc;

    if (n == 0 || (ra = calloc(1, sizeof *ra)) == NULL)
        return NULL;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    if ((ra->names = calloc(n, sizeof *ra->names)) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((ra->names[ra->n] = strdup(names[i])) != NULL)
            ra->n++;
    if (ra->n == 0)
        goto fail;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&ra->t, NULL, ra_thread, ra);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        return ra;
fail:
    names_free(ra);
    pthread_cond_destroy(&ra->cv);
    pthread_mutex_destroy(&ra->mu);
    free(ra);
    return NULL;
}

void lp_readahead_read(struct lp_readahead *ra, long n)
{
    if (ra == NULL || n <= 0)
        return;
    pthread_mutex_lock(&ra->mu);
    ra->read += (uint64_t)n;
    pthread_cond_signal(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
}

void lp_readahead_free(struct lp_readahead *ra)
{
    if (ra == NULL)
        return;
    pthread_mutex_lock(&ra->mu);
    ra->quit = 1;
    pthread_cond_signal(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
    pthread_join(ra->t, NULL);
    names_free(ra);
    pthread_cond_destroy(&ra->cv);
    pthread_mutex_destroy(&ra->mu);
    free(ra);
}
