/* fuzz-gz.c -- libFuzzer harness: reading damaged gzip files (lp_gzr) */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_gz.h"

/*
 * data[0] chooses the mode:
 *   bit 0  0: the rest of the input is the file as it is
 *          1: structured: the rest is parts (split at NUL bytes), each
 *             compressed by zlib into one gzip member, then damaged
 *   bit 1  short reads: read(2) on the file gives at most a few bytes at
 *          a time, and EINTR now and then (the schedule is in the input)
 *   bits 2, 3  both set, structured: big members (stored, each part
 *          repeated to pass the reader's 256 KiB input buffer)
 *   bits 4-7 and data[1]: the sizes of the buffers given to lp_gzr_read,
 *          1 byte and up, changing from call to call
 * Structured: data[2] = number of damages (0..3) and compression level;
 * then 3 damages of 4 bytes (kind, member, where, byte): 1 cut the member
 * short, 2 flip a byte in it, 3 put garbage before it, 4 cut its trailer;
 * parts from data[15] on.
 *
 * The file is a memfd: no disk. Checks (abort() on failure):
 *  1. lp_gzr_read always ends (LP_GZ_END), never returns LP_GZ_ERR on a
 *     memfd, never gives more bytes than the buffer holds, and its
 *     messages are NUL-terminated.
 *  2. Structured, no damage: the bytes that come out are exactly the
 *     parts, in order, and no damage is reported.
 *  3. Structured, with damage: every member left intact comes out whole
 *     and in order ("reading goes on at the next member found after the
 *     damaged member's start", lp_gz.h), and the damage is reported.
 */

static const uint8_t *cur;
#define FUZZ_NAME "fuzz-gz"
#include "fuzz.h"

/* ---- short reads: lp_gz.c's read(2) goes through here (-Wl,--wrap) ---- */

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);

static int short_fd = -1, short_big, eintr_last;
static const uint8_t *sched;
static size_t schedlen, schedpos;

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    if (fd == short_fd && schedlen > 0 && n > 0) {
        uint8_t c = sched[schedpos++ % schedlen];
        size_t most = ((size_t)(c % 16) + 1) * (short_big ? 1024 : 1);
        if (c == 0xff && !eintr_last) {
            eintr_last = 1;     /* never twice in a row: no livelock */
            errno = EINTR;
            return -1;
        }
        eintr_last = 0;
        if (most < n)
            n = most;
    }
    return __real_read(fd, buf, n);
}

/* ---- a growing buffer ---- */

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void add(struct buf *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* One gzip member of s[0..n) at level, appended to out. One deflate
 * state per level, reset between members: a deflateInit per member costs
 * 270 KB of allocation, which under ASan made this harness 100x slower. */
static void gzip_member(struct buf *out, const void *s, size_t n, int level)
{
    static z_stream zs[10];
    static int ready[10];
    z_stream *zp = &zs[level];
    unsigned char tmp[16384];
    int zr;

    if (!ready[level]) {
        if (deflateInit2(zp, level, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            abort();
        ready[level] = 1;
    } else if (deflateReset(zp) != Z_OK) {
        abort();
    }
#define z (*zp)
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)n;
    do {
        z.next_out = tmp;
        z.avail_out = sizeof tmp;
        zr = deflate(&z, Z_FINISH);
        add(out, tmp, sizeof tmp - z.avail_out);
    } while (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0));
    if (zr != Z_STREAM_END)
        abort();
#undef z
}

/* ---- reading it back ---- */

static const size_t caps[16] = { 1, 2, 3, 5, 7, 8, 13, 64, 100, 255, 511,
                                 1024, 4093, 4096, 65536, 300000 };

/* Reads the whole file through lp_gzr; returns the output and counts. */
static void read_all(int fd, uint8_t capsel, uint8_t capsel2, int big,
                     int keep, struct buf *out, int *damages, int *truncated)
{
    struct lp_gzr *r = lp_gzr_new(fd);
    char *bufs[16] = { 0 }, *buf, msg[200];
    size_t got, calls = 0, total = 0;
    int rc;

    CHECK(r != NULL, "lp_gzr_new failed");
    *damages = 0;
    for (;;) {
        /* big files: 4 KiB and up, or a run takes minutes */
        int k = (int)((capsel + calls * (capsel2 | 1)) % 16);
        size_t cap;
        if (big && k < 12)
            k = 12 + k % 4;
        cap = caps[k];
        if (bufs[k] == NULL)
            bufs[k] = malloc(cap);      /* exact size: ASan sees more */
        buf = bufs[k];
        memset(msg, 'x', sizeof msg);
        got = (size_t)-1;
        rc = lp_gzr_read(r, buf, cap, &got, msg, sizeof msg);
        CHECK(++calls < 4000000, "lp_gzr_read does not end");
        if (rc == LP_GZ_DATA) {
            CHECK(got > 0 && got <= cap, "LP_GZ_DATA with %zu bytes, cap %zu",
                  got, cap);
            total += got;
            if (keep)
                add(out, buf, got);
            /* a few KB of deflate can say "16 MB of zeros": read on in
             * big gulps past 1 MB, and stop at 8 MB (a structured file
             * holds at most 1.2 MB) */
            if (total > (1u << 20))
                big = 1;
            if (total > (8u << 20)) {
                *truncated = 1;
                break;
            }
        } else if (rc == LP_GZ_DAMAGE) {
            if (getenv("FUZZ_DEBUG"))
                fprintf(stderr, "damage after %zu bytes out: %s\n", out->n,
                        msg);
            CHECK(memchr(msg, '\0', sizeof msg) != NULL && msg[0],
                  "LP_GZ_DAMAGE without a message");
            (*damages)++;
        } else {
            CHECK(rc == LP_GZ_END, "lp_gzr_read gives %d (errno %d)", rc,
                  errno);
            break;
        }
    }
    /* LP_GZ_END stays */
    CHECK(*truncated || (lp_gzr_read(r, buf, 1, &got, msg, sizeof msg) ==
                         LP_GZ_END && got == 0),
          "lp_gzr_read goes on after LP_GZ_END");
    for (int k = 0; k < 16; k++)
        free(bufs[k]);
    lp_gzr_free(r);
}

static int memfd_with(const void *s, size_t n)
{
    int fd = memfd_create("fuzz-gz", MFD_CLOEXEC);

    CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
    CHECK(n == 0 || write(fd, s, n) == (ssize_t)n, "write: %s",
          strerror(errno));
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf file = { 0 }, out = { 0 }, clean = { 0 };
    int fd, damages, ndmg = 0, level = 6, big, must_report = 0;
    int truncated = 0;
    uint8_t capsel, capsel2;
    const char *part[64];
    size_t plen[64], nparts = 0, mstart[65];
    int intact[64], cutm[64] = { 0 };
    unsigned char *owned[64] = { 0 };
    const uint8_t *dmg = NULL;

    cur = data;
    curlen = size;
    if (size < 2)
        return 0;
    capsel = data[0] >> 4;
    capsel2 = data[1];
    big = (data[0] & 13) == 13;

    if (!(data[0] & 1)) {
        add(&file, data + 2, size - 2);
    } else {
        const char *p, *q, *e;
        if (size < 15)
            return 0;
        ndmg = data[2] % 4;
        level = big ? 0 : (data[2] >> 2) % 10;
        dmg = data + 2;
        p = (const char *)data + 15;
        e = (const char *)data + size;
        while (p <= e && nparts < (big ? 2 : 64)) {
            q = memchr(p, '\0', (size_t)(e - p));
            if (q == NULL)
                q = e;
            part[nparts] = p;
            plen[nparts++] = (size_t)(q - p);
            p = q + 1;
        }
        /* members, with their start offsets */
        struct buf m[64], fm[64], flipped = { 0 };
        for (size_t i = 0; i < nparts; i++) {
            memset(&m[i], 0, sizeof m[i]);
            if (big && plen[i] > 0) {
                struct buf rep = { 0 };
                while (rep.n < 270000)
                    add(&rep, part[i], plen[i]);
                gzip_member(&m[i], rep.p, rep.n, level);
                /* from now on the part is what was compressed */
                part[i] = (const char *)rep.p;
                plen[i] = rep.n;
                owned[i] = rep.p;
            } else {
                gzip_member(&m[i], part[i], plen[i], level);
            }
            intact[i] = 1;
            add(&clean, m[i].p, m[i].n);
            /* the member with its flips only: see flipped below */
            memset(&fm[i], 0, sizeof fm[i]);
            add(&fm[i], m[i].p, m[i].n);
        }
        for (int k = 0; k < ndmg; k++) {
            const uint8_t *d = dmg + 1 + 4 * k;
            size_t mi = d[1] % nparts, at, cut;
            unsigned char x = d[3] ? d[3] : 1;
            if (m[mi].n == 0)
                continue;       /* cut to nothing already */
            at = d[2] % m[mi].n;
            switch (d[0] % 5) {
            case 1:             /* cut short */
                m[mi].n = at;
                intact[mi] = 0;
                cutm[mi] = 1;
                break;
            case 2:             /* flip a byte */
                m[mi].p[at] ^= x;
                fm[mi].p[at] ^= x;
                /* the header's MTIME, XFL and OS bytes are not checked */
                if (!(at >= 4 && at <= 9))
                    intact[mi] = 0;
                break;
            case 4:             /* cut in the trailer */
                cut = 1 + d[2] % 8u;
                m[mi].n -= cut < m[mi].n ? cut : m[mi].n;
                intact[mi] = 0;
                cutm[mi] = 1;
                break;
            case 3:             /* garbage before it */
                must_report = 1;
                break;
            }
        }
        for (size_t i = 0; i < nparts; i++) {
            const uint8_t *d = dmg + 1;
            for (int k = 0; k < ndmg; k++, d += 4) {
                if (d[0] % 5 == 3 && d[1] % nparts == i) {
                    unsigned char g[16];
                    memset(g, d[3], sizeof g);
                    add(&file, g, (size_t)(d[2] % 16) + 1);
                }
            }
            mstart[i] = file.n;
            /* a cut member is reported, unless nothing is left of it */
            must_report |= cutm[i] && m[i].n > 0;
            add(&file, m[i].p, m[i].n);
            free(m[i].p);
            if (m[i].n > 0)
                add(&flipped, fm[i].p, fm[i].n);
            free(fm[i].p);
        }
        mstart[nparts] = file.n;
        /* garbage can put back what a cut took (a trailer cut by one 00
         * byte, then a 00 byte of garbage): when the file is its members
         * with their flips, less those cut to nothing, there is nothing
         * to report, as a flip alone need not be */
        if (file.n == flipped.n &&
            (file.n == 0 || memcmp(file.p, flipped.p, file.n) == 0))
            must_report = 0;
        free(flipped.p);
        /* and when it is the clean file, nothing happened */
        if (file.n == clean.n &&
            (file.n == 0 || memcmp(file.p, clean.p, file.n) == 0)) {
            must_report = 0;
            for (size_t i = 0; i < nparts; i++)
                intact[i] = 1;
        }
    }

    if (getenv("FUZZ_DEBUG")) {
        for (size_t i = 0; i < nparts; i++)
            fprintf(stderr, "member %zu: part %zu bytes, at %zu..%zu%s\n", i,
                    plen[i], mstart[i], mstart[i + 1],
                    intact[i] ? "" : " (damaged)");
        fprintf(stderr, "file %zu bytes; must_report %d\n", file.n,
                must_report);
    }
    fd = memfd_with(file.p, file.n);
    if (data[0] & 2) {
        short_fd = fd;
        sched = data;
        schedlen = size;
        schedpos = 0;
        short_big = big;
        eintr_last = 0;
    }
    read_all(fd, capsel, capsel2, big, data[0] & 1, &out, &damages,
             &truncated);
    short_fd = -1;
    close(fd);

    if ((data[0] & 1) && !truncated) {
        int damaged = file.n != clean.n ||
                      (file.n && memcmp(file.p, clean.p, file.n) != 0);
        if (!damaged) {
            size_t at = 0;
            CHECK(damages == 0, "%d damages reported in an intact file",
                  damages);
            for (size_t i = 0; i < nparts; i++) {
                if (plen[i] == 0)
                    continue;
                CHECK(at + plen[i] <= out.n &&
                      memcmp(out.p + at, part[i], plen[i]) == 0,
                      "member %zu does not come out as it went in", i);
                at += plen[i];
            }
            CHECK(at == out.n, "%zu bytes come out, %zu went in", out.n, at);
        } else {
            /* every intact member, in order, somewhere in the output */
            size_t at = 0;
            int seen_damaged = 0, false_header = 0;
            for (size_t k = 0, i = 0; k + 3 <= file.n; k++) {
                while (i < nparts && mstart[i] < k)
                    i++;
                if (file.p[k] == 0x1f && file.p[k + 1] == 0x8b &&
                    file.p[k + 2] == 8 && !(i < nparts && mstart[i] == k))
                    false_header = 1;
            }
            for (size_t i = 0; i < nparts; i++) {
                const unsigned char *hit;
                seen_damaged |= !intact[i];
                if (!intact[i] || plen[i] == 0)
                    continue;
                /* finding gz-1: the search for the next header started
                 * where inflate failed, which may be past the start of
                 * the members after the damaged one. Now it starts after
                 * the damaged member's first byte, so every intact member
                 * comes out, however many are damaged, unless a false
                 * header (1f 8b 08 inside a member's bytes, which level 0
                 * stores as they are) starts a false member that swallows
                 * them and still passes its CRC check */
                if (seen_damaged && false_header)
                    break;
                hit = out.n ? memmem(out.p + at, out.n - at, part[i],
                                     plen[i]) : NULL;
                CHECK(hit != NULL, "intact member %zu (of %zu, at byte %zu "
                      "of the file) is lost after damage", i, nparts,
                      mstart[i]);
                at = (size_t)(hit - out.p) + plen[i];
            }
            CHECK(damages > 0 || !must_report,
                  "damage in a structured file is not reported");
        }
    }
    for (size_t i = 0; i < nparts; i++)
        free(owned[i]);
    free(clean.p);
    free(file.p);
    free(out.p);
    return 0;
}
