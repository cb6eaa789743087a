/* unit-gz.c -- lp_gzr: reading every member of damaged gzip files */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_gz.h"
#include "tap.h"

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void add(struct buf *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        if ((b->p = realloc(b->p, b->cap)) == NULL)
            abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* One gzip member of s at level (0: stored blocks), appended to out. */
static void member(struct buf *out, const char *s, int level)
{
    z_stream z;
    unsigned char tmp[4096];
    int zr;

    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)strlen(s);
    do {
        z.next_out = tmp;
        z.avail_out = sizeof tmp;
        zr = deflate(&z, Z_FINISH);
        add(out, tmp, sizeof tmp - z.avail_out);
    } while (zr == Z_OK);
    if (zr != Z_STREAM_END)
        abort();
    deflateEnd(&z);
}

/* Lines "<tag> 1\n" .. "<tag> n\n": a member's content. */
static char *lines(const char *tag, int n)
{
    struct buf b = { 0 };
    char l[64];

    for (int i = 1; i <= n; i++)
        add(&b, l, (size_t)snprintf(l, sizeof l, "{\"%s\":%d}\n", tag, i));
    add(&b, "", 1);
    return (char *)b.p;
}

/* Reads all of fd through lp_gzr, cap bytes at a time; counts damages. */
static void read_all(int fd, size_t cap, struct buf *out, int *damages,
                     char *first, size_t firstcap)
{
    struct lp_gzr *r = lp_gzr_new(fd);
    char *b = malloc(cap), msg[300];
    size_t got;
    int rc, calls = 0;

    *damages = 0;
    first[0] = '\0';
    while ((rc = lp_gzr_read(r, b, cap, &got, msg, sizeof msg)) != LP_GZ_END &&
           rc != LP_GZ_ERR && ++calls < 1000000) {
        if (rc == LP_GZ_DATA) {
            add(out, b, got);
        } else if ((*damages)++ == 0) {
            snprintf(first, firstcap, "%s", msg);
        }
    }
    free(b);
    lp_gzr_free(r);
}

static int memfd_of(const struct buf *f)
{
    int fd = memfd_create("unit-gz", 0);

    if (fd < 0 || write(fd, f->p, f->n) != (ssize_t)f->n ||
        lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

/* Does out hold each of want[0..n), whole and in this order? */
static int holds_in_order(const struct buf *out, char *const *want, int n)
{
    size_t at = 0;

    for (int i = 0; i < n; i++) {
        size_t wl = strlen(want[i]);
        const unsigned char *hit = memmem(out->p + at, out->n - at, want[i],
                                          wl);
        if (hit == NULL) {
            printf("#   member with \"%.12s\" not found\n", want[i]);
            return 0;
        }
        at = (size_t)(hit - out->p) + wl;
    }
    return 1;
}

/*
 * Fuzz finding gz-1: after damage, the search for the next member started
 * where inflate failed, which can be past the start of the members after
 * the damaged one: they were lost. Each case: the members, what to do to
 * member 0, and which members must come out.
 */
enum { CUT_HALF, CUT_TRAILER, CUT_STORED, FLIP_STORED_LEN, CUT_BIG };

static void damaged_then_intact(const char *what, int damage, int level)
{
    struct buf f = { 0 }, m0 = { 0 }, out = { 0 };
    char *part[4], first[300];
    int damages, fd;

    part[0] = lines("a", damage == CUT_BIG ? 30000 : level == 0 ? 400 : 50);
    part[1] = lines("b", 3);
    part[2] = lines("c", 4);
    part[3] = lines("d", 5);
    member(&m0, part[0], level);
    switch (damage) {
    case CUT_HALF:
        m0.n /= 2;
        break;
    case CUT_TRAILER:
        m0.n -= 4;              /* the length of the member's input */
        break;
    case CUT_STORED:
        /* stored blocks of up to 64 KiB: what is left of the first one
         * takes the next members for its data */
        m0.n = 100;
        break;
    case CUT_BIG:
        /* 300 KB stored: its start is out of the reader's 256 KiB
         * buffer when the damage is seen, so it seeks back */
        m0.n -= 5000;
        break;
    case FLIP_STORED_LEN:
        /* the header (10 bytes), the stored block's own (1), LEN (2):
         * a longer block swallows every member after it up to the end */
        m0.p[11] = 0xff;
        m0.p[12] = 0xff;
        m0.p[13] = (unsigned char)~0xff;
        m0.p[14] = (unsigned char)~0xff;
        break;
    }
    add(&f, m0.p, m0.n);
    for (int i = 1; i < 4; i++)
        member(&f, part[i], 6);

    for (size_t cap = 1; cap <= 65536; cap *= 64) {
        fd = memfd_of(&f);
        out.n = 0;
        read_all(fd, cap, &out, &damages, first, sizeof first);
        close(fd);
        ok_fixed(damages >= 1 && holds_in_order(&out, part + 1, 3),
                 "lp_gzr: the search for the next header began where "
                 "inflate failed, past the members after the damage",
                 "%s: damage reported, the 3 members after it read "
                 "(reads of %zu bytes)", what, cap);
        if (damages < 1)
            printf("#   no damage reported\n");
        else
            printf("#   %s\n", first);
    }
    for (int i = 0; i < 4; i++)
        free(part[i]);
    free(m0.p);
    free(f.p);
    free(out.p);
}

/* The same from a pipe: it cannot seek back, so the search starts where
 * the damage was seen; it must still end and report the damage. */
static void from_pipe(void)
{
    struct buf f = { 0 }, out = { 0 };
    char *a = lines("a", 400), *b = lines("b", 3), first[300];
    int p[2], damages;
    pid_t pid;

    member(&f, a, 0);
    f.n = 100;
    member(&f, b, 6);
    member(&f, b, 6);
    if (pipe(p) < 0 || (pid = fork()) < 0)
        abort();
    if (pid == 0) {
        int rc;
        close(p[0]);
        rc = write(p[1], f.p, f.n) != (ssize_t)f.n;
        /* the child's copies too: valgrind follows it (make valgrind) */
        free(a);
        free(b);
        free(f.p);
        _exit(rc);
    }
    close(p[1]);
    read_all(p[0], 4096, &out, &damages, first, sizeof first);
    close(p[0]);
    ok(damages >= 1, "a damaged member on a pipe: reported, reading ends");
    free(a);
    free(b);
    free(f.p);
    free(out.p);
}

static void intact(void)
{
    struct buf f = { 0 }, out = { 0 };
    char *part[3] = { lines("a", 1000), lines("b", 1), lines("c", 2) };
    char first[300];
    int damages, fd;

    member(&f, part[0], 0);
    member(&f, part[1], 9);
    member(&f, part[2], 1);
    fd = memfd_of(&f);
    read_all(fd, 100, &out, &damages, first, sizeof first);
    close(fd);
    ok(damages == 0 && out.n == strlen(part[0]) + strlen(part[1]) +
       strlen(part[2]) && holds_in_order(&out, part, 3),
       "three intact members: exactly their bytes, no damage");
    for (int i = 0; i < 3; i++)
        free(part[i]);
    free(f.p);
    free(out.p);
}

int main(void)
{
    intact();
    damaged_then_intact("member 0 cut in half", CUT_HALF, 6);
    damaged_then_intact("member 0 without its last 4 bytes", CUT_TRAILER, 6);
    damaged_then_intact("member 0 stored, cut", CUT_STORED, 0);
    damaged_then_intact("member 0 stored, its block made longer",
                        FLIP_STORED_LEN, 0);
    damaged_then_intact("member 0 stored, 300 KB, cut", CUT_BIG, 0);
    from_pipe();
    return tap_done();
}
