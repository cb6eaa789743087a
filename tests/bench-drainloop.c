/* bench-drainloop.c -- the ceiling logpipe-drain is measured against: the
 * least a consumer that keeps its promise must do, in plain hiredis
 *
 *   bench-drainloop PORT STREAM GROUP FILE N [FILES]
 *
 * XREADGROUP COUNT 1000, the data of each entry appended to FILE (one
 * write per batch), fdatasync, and the batch's XACK sent with the next
 * read, until N entries are done. No validation, no layout, no locks, no
 * duplicate check, no metrics: what is left is Redis and the disk.
 *
 * With FILES > 1 the entries are spread over FILE.0 .. FILE.<FILES-1> by
 * the value of their "service" member (its bytes hashed: no parsing), one
 * write per file per batch, and the files a batch touched are fdatasynced
 * at once by one thread each (kept from batch to batch): the same work
 * as logpipe-drain's --layout {service}/%F, with the file system's group
 * commit, and nothing else.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define COUNT 1000
#define MAXFILES 64

/* ---- FILES > 1: one syncing thread per file --------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int fds[MAXFILES], todo[MAXFILES], failed;
static unsigned gen, left;

static void *syncer(void *arg)
{
    int i = (int)(long)arg;
    unsigned seen = 0;

    pthread_mutex_lock(&mu);
    for (;;) {
        while (gen == seen)
            pthread_cond_wait(&go, &mu);
        seen = gen;
        if (!todo[i])
            continue;
        pthread_mutex_unlock(&mu);
        int rc = fdatasync(fds[i]);
        pthread_mutex_lock(&mu);
        todo[i] = 0;
        failed |= rc < 0;
        if (--left == 0)
            pthread_cond_signal(&done_cv);
    }
    return NULL;
}

/* fdatasyncs the files marked in todo[] at once; 0 or -1 */
static int sync_marked(int nfiles)
{
    pthread_mutex_lock(&mu);
    left = 0;
    for (int i = 0; i < nfiles; i++)
        left += todo[i] != 0;
    if (left) {
        gen++;
        pthread_cond_broadcast(&go);
        while (left)
            pthread_cond_wait(&done_cv, &mu);
    }
    pthread_mutex_unlock(&mu);
    return failed ? -1 : 0;
}

/* which file: the service's own, in order of first sight */
static char names[MAXFILES][64];
static size_t namelens[MAXFILES];
static int nnames;

static int file_of(const char *s, size_t n, int nfiles)
{
    const char *p = memmem(s, n, "\"service\":\"", 11), *q;
    size_t len;

    if (p == NULL)
        return 0;
    p += 11;
    if ((q = memchr(p, '"', (size_t)(s + n - p))) == NULL ||
        (len = (size_t)(q - p)) > sizeof names[0])
        return 0;
    for (int i = 0; i < nnames; i++)
        if (namelens[i] == len && memcmp(names[i], p, len) == 0)
            return i;
    if (nnames == nfiles)
        return 0;
    memcpy(names[nnames], p, len);
    namelens[nnames] = len;
    return nnames++;
}

static void die(const char *what, redisContext *c)
{
    fprintf(stderr, "bench-drainloop: %s: %s\n", what,
            c && c->err ? c->errstr : "unexpected reply");
    exit(1);
}

int main(int argc, char **argv)
{
    redisContext *c;
    redisReply *r, *held = NULL;
    const char *stream, *group;
    char *buf[MAXFILES], **acks = NULL;
    size_t *acklens = NULL, nack = 0, cap[MAXFILES], len[MAXFILES];
    long n, done = 0;
    int nfiles = 1;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: bench-drainloop PORT STREAM GROUP FILE N "
                "[FILES]\n");
        return 64;
    }
    stream = argv[2];
    group = argv[3];
    n = atol(argv[5]);
    if (argc == 7 && ((nfiles = atoi(argv[6])) < 1 || nfiles > MAXFILES)) {
        fprintf(stderr, "bench-drainloop: FILES: 1..%d\n", MAXFILES);
        return 64;
    }
    if ((c = redisConnect("127.0.0.1", atoi(argv[1]))) == NULL || c->err)
        die("connect", c);
    r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
    if (r == NULL)
        die("XGROUP", c);
    freeReplyObject(r);
    for (int i = 0; i < nfiles; i++) {
        char name[4096];
        if (nfiles == 1)
            snprintf(name, sizeof name, "%s", argv[4]);
        else
            snprintf(name, sizeof name, "%s.%d", argv[4], i);
        fds[i] = open(name, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0640);
        cap[i] = 1 << 20;
        buf[i] = malloc(cap[i]);
        if (fds[i] < 0 || buf[i] == NULL) {
            perror("bench-drainloop");
            return 1;
        }
        if (nfiles > 1) {
            pthread_t t;
            if (pthread_create(&t, NULL, syncer, (void *)(long)i) != 0) {
                perror("bench-drainloop: pthread_create");
                return 1;
            }
            pthread_detach(t);
        }
    }
    acks = malloc((COUNT + 3) * sizeof *acks);
    acklens = malloc((COUNT + 3) * sizeof *acklens);
    if (acks == NULL || acklens == NULL) {
        perror("bench-drainloop");
        return 1;
    }
    acks[0] = "XACK";
    acks[1] = (char *)stream;
    acks[2] = (char *)group;
    for (int i = 0; i < 3; i++)
        acklens[i] = strlen(acks[i]);

    while (done < n) {
        size_t k;
        redisReply *batch = NULL;
        /* the last batch's XACK rides with this read: one round trip */
        if (nack)
            redisAppendCommandArgv(c, (int)(nack + 3), (const char **)acks,
                                   acklens);
        redisAppendCommand(c, "XREADGROUP GROUP %s c COUNT %d BLOCK 2000 "
                           "STREAMS %s >", group, COUNT, stream);
        if (nack) {
            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                die("XACK", c);
            freeReplyObject(r);
        }
        if (redisGetReply(c, (void **)&batch) != REDIS_OK)
            die("XREADGROUP", c);
        /* the acks of the last batch borrowed its IDs: free it now */
        freeReplyObject(held);
        held = NULL;
        nack = 0;
        if (batch->type != REDIS_REPLY_ARRAY || batch->elements == 0) {
            freeReplyObject(batch);
            continue;
        }
        memset(len, 0, sizeof len);
        redisReply *entries = batch->element[0]->element[1];
        for (k = 0; k < entries->elements; k++) {
            redisReply *e = entries->element[k];
            redisReply *f = e->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                redisReply *v = f->element[j + 1];
                int i = nfiles > 1 ? file_of(v->str, v->len, nfiles) : 0;
                if (len[i] + v->len + 1 > cap[i]) {
                    cap[i] = (len[i] + v->len + 1) * 2;
                    if ((buf[i] = realloc(buf[i], cap[i])) == NULL)
                        die("out of memory", NULL);
                }
                memcpy(buf[i] + len[i], v->str, v->len);
                len[i] += v->len;
                buf[i][len[i]++] = '\n';
            }
            acks[3 + nack] = e->element[0]->str;
            acklens[3 + nack] = e->element[0]->len;
            nack++;
        }
        for (int i = 0; i < nfiles; i++) {
            if (len[i] == 0)
                continue;
            if (write(fds[i], buf[i], len[i]) != (ssize_t)len[i]) {
                perror("bench-drainloop: write");
                return 1;
            }
            todo[i] = 1;
        }
        if (nfiles == 1 ? fdatasync(fds[0]) < 0 : sync_marked(nfiles) < 0) {
            perror("bench-drainloop: fdatasync");
            return 1;
        }
        done += (long)entries->elements;
        held = batch;
    }
    if (nack) {
        r = redisCommandArgv(c, (int)(nack + 3), (const char **)acks,
                             acklens);
        freeReplyObject(r);
    }
    freeReplyObject(held);
    for (int i = 0; i < nfiles; i++) {
        close(fds[i]);
        free(buf[i]);
    }
    redisFree(c);
    free(acks);
    free(acklens);
    return 0;
}
