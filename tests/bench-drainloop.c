/* bench-drainloop.c -- the ceiling logpipe-drain is measured against: the
 * least a consumer that keeps its promise must do, in plain hiredis
 *
 *   bench-drainloop PORT STREAM GROUP FILE N
 *
 * XREADGROUP COUNT 1000, the data of each entry appended to FILE (one
 * write per batch), fdatasync, and the batch's XACK sent with the next
 * read, until N entries are done. No validation, no layout, no locks, no
 * duplicate check, no metrics: what is left is Redis and the disk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define COUNT 1000

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
    char *buf, **acks = NULL;
    size_t *acklens = NULL, nack = 0, cap = 1 << 20;
    long n, done = 0;
    int fd;

    if (argc != 6) {
        fprintf(stderr, "usage: bench-drainloop PORT STREAM GROUP FILE N\n");
        return 64;
    }
    stream = argv[2];
    group = argv[3];
    n = atol(argv[5]);
    if ((c = redisConnect("127.0.0.1", atoi(argv[1]))) == NULL || c->err)
        die("connect", c);
    r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
    if (r == NULL)
        die("XGROUP", c);
    freeReplyObject(r);
    fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0640);
    buf = malloc(cap);
    acks = malloc((COUNT + 3) * sizeof *acks);
    acklens = malloc((COUNT + 3) * sizeof *acklens);
    if (fd < 0 || buf == NULL || acks == NULL || acklens == NULL) {
        perror("bench-drainloop");
        return 1;
    }
    acks[0] = "XACK";
    acks[1] = (char *)stream;
    acks[2] = (char *)group;
    for (int i = 0; i < 3; i++)
        acklens[i] = strlen(acks[i]);

    while (done < n) {
        size_t len = 0, k;
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
        redisReply *entries = batch->element[0]->element[1];
        for (k = 0; k < entries->elements; k++) {
            redisReply *e = entries->element[k];
            redisReply *f = e->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                redisReply *v = f->element[j + 1];
                if (len + v->len + 1 > cap) {
                    cap = (len + v->len + 1) * 2;
                    if ((buf = realloc(buf, cap)) == NULL)
                        die("out of memory", NULL);
                }
                memcpy(buf + len, v->str, v->len);
                len += v->len;
                buf[len++] = '\n';
            }
            acks[3 + nack] = e->element[0]->str;
            acklens[3 + nack] = e->element[0]->len;
            nack++;
        }
        if (write(fd, buf, len) != (ssize_t)len || fdatasync(fd) < 0) {
            perror("bench-drainloop: write");
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
    close(fd);
    redisFree(c);
    free(buf);
    free(acks);
    free(acklens);
    return 0;
}
