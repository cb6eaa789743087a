/* powerloss-cut.c -- make a tree look as after a power cut, from a shim log
 *
 *   powerloss-cut [-n] LOG
 *
 * LOG is what tests/powerloss.so wrote (LOGPIPE_POWERLOSS_LOG) for a
 * process that is dead now (SIGKILLed). Following the model stated at the
 * head of powerloss.c, for every file and directory in LOG, in the order
 * LOG first names them:
 *
 *   - a file whose name never became durable is removed;
 *   - a file longer than its durable prefix is truncated to it;
 *   - a directory whose name never became durable is removed with all it
 *     holds (deepest first).
 *
 * Each action is one line on stdout ("truncate PATH FROM TO", "remove
 * PATH", "removedir PATH"); -n prints them without acting. A path that no
 * longer holds the recorded file (renamed or replaced by a process not
 * under the shim) is left alone and said on stderr ("stale PATH"). Same log
 * and same tree, same result: nothing here depends on time or order of
 * hashing.
 *
 * Exit status: 0 done, 1 the log says the shim could not follow something
 * (an X record: nothing is cut), 2 a malformed log or a failed action.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ent {
    uint64_t dev, ino;
    char kind;                  /* f or d */
    int64_t d;                  /* durable prefix */
    int pending;                /* its name is not durable yet */
    long since;                 /* record number from which it is pending */
    uint64_t pdev, pino;        /* its directory */
    int gone;
    long first;                 /* record number that first named it */
    char *path;
};

struct syncrec {
    uint64_t pid, id;
    long at;
};

static struct ent *ents;
static size_t nents, cap;
static size_t *slots;           /* open addressing over ents, SIZE_MAX empty */
static size_t nslots;
static struct syncrec *syncs;
static size_t nsyncs, capsyncs;
static const char *prog = "powerloss-cut";

static void *xrealloc(void *p, size_t n)
{
    if ((p = realloc(p, n)) == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(2);
    }
    return p;
}

static size_t hash(uint64_t dev, uint64_t ino)
{
    uint64_t h = (dev * 0x9E3779B97F4A7C15ull) ^ (ino * 0xC2B2AE3D27D4EB4Full);

    return (size_t)(h ^ (h >> 29));
}

static void rehash(void)
{
    size_t i, j;

    nslots = nslots ? nslots * 2 : 1024;
    slots = xrealloc(slots, nslots * sizeof *slots);
    for (i = 0; i < nslots; i++)
        slots[i] = SIZE_MAX;
    for (i = 0; i < nents; i++) {
        j = hash(ents[i].dev, ents[i].ino) & (nslots - 1);
        while (slots[j] != SIZE_MAX)
            j = (j + 1) & (nslots - 1);
        slots[j] = i;
    }
}

/* the entry of dev:ino; made (zeroed but for the key) when create */
static struct ent *get(uint64_t dev, uint64_t ino, int create)
{
    size_t j;

    if (nslots)
        for (j = hash(dev, ino) & (nslots - 1); slots[j] != SIZE_MAX;
             j = (j + 1) & (nslots - 1))
            if (ents[slots[j]].dev == dev && ents[slots[j]].ino == ino)
                return &ents[slots[j]];
    if (!create)
        return NULL;
    if (nents == cap) {
        cap = cap ? cap * 2 : 256;
        ents = xrealloc(ents, cap * sizeof *ents);
    }
    memset(&ents[nents], 0, sizeof ents[nents]);
    ents[nents].dev = dev;
    ents[nents].ino = ino;
    nents++;
    if (nents * 2 > nslots)
        rehash();
    else {
        j = hash(dev, ino) & (nslots - 1);
        while (slots[j] != SIZE_MAX)
            j = (j + 1) & (nslots - 1);
        slots[j] = nents - 1;
    }
    return &ents[nents - 1];
}

static long sync_at(uint64_t pid, uint64_t id)
{
    size_t i = nsyncs;

    while (i-- > 0)
        if (syncs[i].pid == pid && syncs[i].id == id)
            return syncs[i].at;
    return -1;
}

/* names pending before record `before` in directory pdev:pino (all of
 * file system pdev when pino is 0; everything when both are 0) become
 * durable */
static void names_durable(long before, uint64_t pdev, uint64_t pino)
{
    size_t i;

    for (i = 0; i < nents; i++) {
        struct ent *e = &ents[i];
        if (!e->pending || e->since >= before)
            continue;
        if (pdev && e->pdev != pdev)
            continue;
        if (pino && e->pino != pino)
            continue;
        e->pending = 0;
    }
}

static int bad(long n, const char *line)
{
    fprintf(stderr, "%s: record %ld: malformed: %s\n", prog, n, line);
    exit(2);
}

static int by_depth(const void *a, const void *b)
{
    const struct ent *x = *(struct ent *const *)a, *y = *(struct ent *const *)b;
    size_t lx = strlen(x->path), ly = strlen(y->path);

    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0) {
        fprintf(stderr, "%s: cannot remove %s: %s\n", prog, path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* does path hold e now? */
static int holds(const struct ent *e, struct stat *st)
{
    return lstat(e->path, st) == 0 && (uint64_t)st->st_dev == e->dev &&
        (uint64_t)st->st_ino == e->ino;
}

int main(int argc, char **argv)
{
    FILE *in;
    char *line = NULL, *xs = NULL;
    size_t lcap = 0, i;
    ssize_t len;
    long n = 0;
    int dry = 0, rc = 0, nx = 0;
    struct ent **dirs;
    size_t ndirs = 0;

    if (argc == 3 && strcmp(argv[1], "-n") == 0) {
        dry = 1;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s [-n] LOG\n", prog);
        return 2;
    }
    if ((in = fopen(argv[1], "r")) == NULL) {
        fprintf(stderr, "%s: %s: %s\n", prog, argv[1], strerror(errno));
        return 2;
    }
    while ((len = getline(&line, &lcap, in)) > 0) {
        uint64_t dev, ino, pdev, pino, pid, id;
        int64_t d;
        int created, off = 0;
        char kind;
        struct ent *e;

        n++;
        if (line[len - 1] != '\n')
            break;              /* cut by the kill: never happened */
        line[len - 1] = '\0';
        switch (line[0]) {
        case 'F':
            if (sscanf(line, "F %" SCNu64 " %" SCNu64 " %c %" SCNd64 " %d %"
                       SCNu64 " %" SCNu64 " %n", &dev, &ino, &kind, &d,
                       &created, &pdev, &pino, &off) != 7 || off == 0 ||
                (kind != 'f' && kind != 'd'))
                bad(n, line);
            e = get(dev, ino, 0);
            if (e && !e->gone && !created) {
                /* another process's first change: its "before" may hold
                 * bytes the first one never synced */
                if (d < e->d)
                    e->d = d;
                break;
            }
            if (e == NULL)
                e = get(dev, ino, 1);
            else
                free(e->path);
            e->kind = kind;
            e->d = d;
            e->pending = created;
            e->since = n;
            e->pdev = pdev;
            e->pino = pino;
            e->gone = 0;
            e->first = n;
            e->path = strdup(line + off);
            break;
        case 'L':
            if (sscanf(line, "L %" SCNu64 " %" SCNu64 " %" SCNd64, &dev, &ino,
                       &d) != 3)
                bad(n, line);
            if ((e = get(dev, ino, 0)) != NULL && !e->gone)
                e->d = d;
            break;
        case 'R':
            if (sscanf(line, "R %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                       " %n", &dev, &ino, &pdev, &pino, &off) != 4 || off == 0)
                bad(n, line);
            if ((e = get(dev, ino, 0)) != NULL && !e->gone) {
                free(e->path);
                e->path = strdup(line + off);
                e->pdev = pdev;
                e->pino = pino;
                if (e->pending)
                    e->since = n;
            }
            break;
        case 'P':
            if (sscanf(line, "P %" SCNu64 " %" SCNu64 " %n", &dev, &ino,
                       &off) != 2 || off == 0)
                bad(n, line);
            if ((e = get(dev, ino, 0)) != NULL && !e->gone) {
                free(e->path);
                e->path = strdup(line + off);
            }
            break;
        case 'U':
            if (sscanf(line, "U %" SCNu64 " %" SCNu64, &dev, &ino) != 2)
                bad(n, line);
            if ((e = get(dev, ino, 0)) != NULL)
                e->gone = 1;
            break;
        case 'S':
            if (sscanf(line, "S %" SCNu64 " %" SCNu64, &pid, &id) != 2)
                bad(n, line);
            if (nsyncs == capsyncs) {
                capsyncs = capsyncs ? capsyncs * 2 : 256;
                syncs = xrealloc(syncs, capsyncs * sizeof *syncs);
            }
            syncs[nsyncs].pid = pid;
            syncs[nsyncs].id = id;
            syncs[nsyncs++].at = n;
            break;
        case 'Y':
            if (sscanf(line, "Y %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                       &pid, &id, &dev, &ino) != 4)
                bad(n, line);
            if (ino == 0)
                bad(n, line);
            names_durable(sync_at(pid, id), dev, ino);
            break;
        case 'A':
            if (sscanf(line, "A %" SCNu64 " %" SCNu64 " %" SCNu64, &pid, &id,
                       &dev) != 3)
                bad(n, line);
            names_durable(sync_at(pid, id), dev, 0);
            break;
        case 'X':
            if (nx++ == 0)
                xs = strdup(line + (line[1] ? 2 : 1));
            break;
        default:
            bad(n, line);
        }
    }
    fclose(in);
    free(line);
    if (nx) {
        fprintf(stderr, "%s: the shim could not follow the process (%d "
                "times), nothing cut: %s\n", prog, nx, xs ? xs : "");
        return 1;
    }

    /* files first, in the order the log named them */
    dirs = xrealloc(NULL, (nents + 1) * sizeof *dirs);
    for (i = 0; i < nents; i++) {
        struct ent *e = &ents[i];
        struct stat st;

        if (e->gone || e->path == NULL)
            continue;
        if (e->kind == 'd') {
            if (e->pending)
                dirs[ndirs++] = e;
            continue;
        }
        if (!holds(e, &st)) {
            fprintf(stderr, "stale %s\n", e->path);
            continue;
        }
        if (e->pending) {
            printf("remove %s\n", e->path);
            if (!dry && unlink(e->path) < 0) {
                fprintf(stderr, "%s: cannot remove %s: %s\n", prog, e->path,
                        strerror(errno));
                rc = 2;
            }
        } else if (st.st_size > e->d) {
            printf("truncate %s %jd %jd\n", e->path, (intmax_t)st.st_size,
                   (intmax_t)e->d);
            if (!dry && truncate(e->path, e->d) < 0) {
                fprintf(stderr, "%s: cannot truncate %s: %s\n", prog, e->path,
                        strerror(errno));
                rc = 2;
            }
        }
    }
    /* then directories whose names never became durable, deepest first */
    qsort(dirs, ndirs, sizeof *dirs, by_depth);
    for (i = 0; i < ndirs; i++) {
        struct stat st;

        if (!holds(dirs[i], &st))
            continue;           /* moved away, or removed by another */
        printf("removedir %s\n", dirs[i]->path);
        if (!dry && nftw(dirs[i]->path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
            rc = 2;
    }
    fflush(stdout);
    return rc;
}
