/* fuzz-wal.c -- libFuzzer harness: WAL records (lp_wal) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_parse.h"
#include "lp_wal.h"

/*
 * data[0] chooses the mode:
 *   bits 0-1  0: the rest is a segment as it is
 *             1: the rest follows a good segment header
 *             2: the rest is payloads (split at NUL bytes), encoded with
 *                lp_wal_encode into a segment, then damaged
 *             3: the same, each payload wrapped in an XADD command
 *   bit 2     also write the segment to a file and recover it with
 *             lp_wal_open / lp_wal_take / lp_wal_seg_next
 * Modes 2 and 3: data[1] bits 0-1 damage (0 none, 1 cut, 2 flip a byte,
 * 3 append garbage), bit 2 the header "LPWAL02", bits 3-7 a mask of the
 * records marked acknowledged (record i by bit i mod 5), data[2..3] where
 * (mod the length), data[4] the xor byte or the garbage, data[5] extra
 * XADD fields; payloads from data[6] on. Flipping both mark bits of a
 * record, or the header's version between 1 and 2, is no damage: it
 * makes another valid segment.
 *
 * Checks (abort() on failure):
 *  1. lp_wal_decode walks whole records only, moves forward, ends with 0
 *     exactly at the end of the buffer, and gives back exactly what
 *     lp_wal_encode encoded, up to the damage: records before it come back
 *     intact, with their marks, the damaged one is refused.
 *  2. lp_wal_event finds the key and the "data" value of an XADD, as an
 *     independent RESP reader does, and the payload of every XADD built.
 *  3. Recovery from a file (mode bit 2) keeps exactly the records that
 *     lp_wal_decode accepts, cuts the rest, reads back in order with
 *     lp_wal_seg_next those not marked, counts only them as waiting, and
 *     deletes a segment without such records.
 */

static const uint8_t *cur;
#define FUZZ_NAME "fuzz-wal"
#include "fuzz.h"

/* ---- a growing buffer ---- */

struct buf {
    char *p;
    size_t n, cap;
};

static void add(struct buf *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void add_bulk(struct buf *b, const char *s, size_t n)
{
    char h[32];

    snprintf(h, sizeof h, "$%zu\r\n", n);
    add(b, h, strlen(h));
    add(b, s, n);
    add(b, "\r\n", 2);
}

/* ---- an independent reader of "*N\r\n$L\r\n...\r\n" XADDs ---- */

/* Digits after p (leading zeros taken, as logpipe's own writer never
 * makes them and lp_wal_event takes them); -1 when none fit in limit. */
static long long digits(const char **p, const char *end, long long limit)
{
    long long v = 0;

    while (*p < end && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        if (v > limit)
            return -1;
        (*p)++;
    }
    return v;
}

static int crlf(const char **p, const char *end)
{
    if (end - *p < 2 || (*p)[0] != '\r' || (*p)[1] != '\n')
        return 0;
    *p += 2;
    return 1;
}

static int rbulk(const char **p, const char *end, const char **s, size_t *n)
{
    long long v;

    if (*p >= end || **p != '$')
        return 0;
    (*p)++;
    if ((v = digits(p, end, LP_WAL_MAXREC)) < 0 || !crlf(p, end) ||
        end - *p < v + 2)
        return 0;
    *s = *p;
    *n = (size_t)v;
    *p += v;
    return crlf(p, end);
}

/* 1 with key and ev when rec is an XADD with a "data" field. */
static int expect_event(const char *rec, size_t n, const char **key,
                        size_t *kl, const char **ev, size_t *el)
{
    const char *p = rec, *end = rec + n, *s;
    size_t sn;
    long long argc;

    if (p >= end || *p != '*')
        return 0;
    p++;
    if ((argc = digits(&p, end, 1000000)) < 5 || argc > 1000 ||
        argc % 2 == 0 || !crlf(&p, end))
        return 0;
    if (!rbulk(&p, end, &s, &sn) || sn != 4 || strncasecmp(s, "XADD", 4))
        return 0;
    if (!rbulk(&p, end, key, kl) || !rbulk(&p, end, &s, &sn))
        return 0;
    for (long long i = 3; i + 1 < argc; i += 2) {
        const char *f, *v;
        size_t fl, vl;
        if (!rbulk(&p, end, &f, &fl) || !rbulk(&p, end, &v, &vl))
            return 0;
        if (fl == 4 && memcmp(f, "data", 4) == 0) {
            *ev = v;
            *el = vl;
            return 1;
        }
    }
    return 0;
}

static void check_event(const char *rec, size_t n)
{
    const char *k = NULL, *e = NULL, *k2 = NULL, *e2 = NULL;
    size_t kl = 0, el = 0, kl2 = 0, el2 = 0;
    int r = lp_wal_event(rec, n, &k, &kl, &e, &el);
    int want = expect_event(rec, n, &k2, &kl2, &e2, &el2);

    CHECK(r == want, "lp_wal_event says %d, want %d", r, want);
    if (r == 1) {
        CHECK(k == k2 && kl == kl2, "lp_wal_event: wrong key");
        CHECK(e == e2 && el == el2, "lp_wal_event: wrong data");
        CHECK(k >= rec && k + kl <= rec + n && e >= rec && e + el <= rec + n,
              "lp_wal_event: pointers outside the record");
    }
}

/* ---- decoding ---- */

struct rec {
    size_t off, len;            /* payload in the segment */
    int done;                   /* marked acknowledged */
};

/* Decodes every record of seg; returns the last lp_wal_decode result and
 * the records in *out (caller frees), *end the offset after the last. */
static int decode_all(const char *seg, size_t n, struct rec **out,
                      size_t *nrec, size_t *end)
{
    size_t pos = 0, cap = 0, last = 0;
    const char *r;
    size_t rl;
    int rc;

    *out = NULL;
    *nrec = 0;
    while ((rc = lp_wal_decode(seg, n, &pos, &r, &rl)) == 1) {
        CHECK(pos > last && pos <= n, "lp_wal_decode: pos %zu after %zu",
              pos, last);
        CHECK(r == seg + pos - rl && pos - rl >= LP_WAL_HDR + LP_WAL_REC,
              "lp_wal_decode: record not just before pos");
        if (*nrec == cap)
            *out = realloc(*out, (cap = cap * 2 + 8) * sizeof **out);
        (*out)[*nrec].off = (size_t)(r - seg);
        (*out)[*nrec].len = rl;
        (*out)[*nrec].done = lp_wal_rec_done(r);
        (*nrec)++;
        last = pos;
        check_event(r, rl);
    }
    if (rc == 0)
        CHECK(pos == n, "lp_wal_decode: clean end at %zu of %zu", pos, n);
    else
        CHECK(rc == -1, "lp_wal_decode returns %d", rc);
    *end = last ? last : (rc == 0 ? n : 0);
    if (last == 0 && rc == -1 && lp_wal_magic(seg, n))
        *end = LP_WAL_HDR;
    return rc;
}

/* ---- recovery from a file ---- */

static char dir[64];

static void rm_all(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            char p[128];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
}

static void cleanup(void)
{
    rm_all();
    rmdir(dir);
}

static void init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    snprintf(dir, sizeof dir, "%s/fuzz-wal-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("fuzz-wal: mkdtemp");
        exit(2);
    }
    atexit(cleanup);
}

static void check_recovery(const char *seg, size_t n, const struct rec *rs,
                           size_t nrec, size_t end)
{
    char path[128], err[LP_ERRLEN];
    struct lp_wal *w;
    struct lp_wal_seg *s;
    struct stat st;
    int fd, rc, magic = lp_wal_magic(seg, n);
    size_t live = 0, live_bytes = 0;

    for (size_t i = 0; i < nrec; i++) {
        if (!rs[i].done) {
            live++;
            live_bytes += LP_WAL_REC + rs[i].len;
        }
    }

    snprintf(path, sizeof path, "%s/wal-0000000000000001-1.log", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, seg, n) == (ssize_t)n && close(fd) == 0,
          "cannot write %s: %s", path, strerror(errno));
    w = lp_wal_open(dir, 0, NULL, err);
    CHECK(w != NULL, "lp_wal_open: %s", err);

    if (n < LP_WAL_HDR || (magic && live == 0)) {
        /* no record to send: deleted at recovery */
        CHECK(stat(path, &st) < 0 && errno == ENOENT,
              "a segment without records survives recovery");
        CHECK(lp_wal_bytes(w) == 0, "lp_wal_bytes %llu, want 0",
              (unsigned long long)lp_wal_bytes(w));
    } else if (!magic) {
        /* not a segment: left alone */
        CHECK(stat(path, &st) == 0 && (size_t)st.st_size == n,
              "a foreign file was changed by recovery");
    } else {
        CHECK(stat(path, &st) == 0 && (size_t)st.st_size == end,
              "recovery leaves %lld bytes, want %zu (the valid records)",
              (long long)st.st_size, end);
        CHECK(lp_wal_bytes(w) == live_bytes,
              "lp_wal_bytes %llu, want %zu",
              (unsigned long long)lp_wal_bytes(w), live_bytes);
        CHECK(lp_wal_pending(w, err) == 1, "lp_wal_pending: not pending");
        rc = lp_wal_take(w, &s, err);
        CHECK(rc == 1, "lp_wal_take gives %d: %s", rc, err);
        for (size_t i = 0, k = 0; ; i++, k++) {
            const char *r;
            size_t rl;
            uint64_t e;
            while (k < nrec && rs[k].done)
                k++;            /* marked: never handed out */
            if (lp_wal_seg_next(s, &r, &rl, &e) != 1) {
                CHECK(i == live, "lp_wal_seg_next gives %zu records, "
                      "lp_wal_decode %zu not marked", i, live);
                break;
            }
            CHECK(k < nrec, "lp_wal_seg_next gives more records than "
                  "lp_wal_decode (%zu not marked)", live);
            CHECK(rl == rs[k].len && memcmp(r, seg + rs[k].off, rl) == 0 &&
                  e == rs[k].off + rl, "record %zu differs", k);
        }
        CHECK(lp_wal_seg_done(w, s, err) == 0, "lp_wal_seg_done: %s", err);
        CHECK(stat(path, &st) < 0 && errno == ENOENT,
              "lp_wal_seg_done leaves the segment");
    }
    lp_wal_close(w);
    rm_all();
}

/* ---- the input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    struct buf seg = { 0 };
    struct rec *rs;
    size_t nrec, end, nparts = 0, bounds[512];
    const char *payload[512];
    size_t plen[512];
    int mode, damage = 0, rc, marks = 0;
    size_t where = 0, cutat = 0;
    uint8_t x = 0, extra = 0;
    unsigned char mark[512] = { 0 };

    if (!inited) {
        init();
        inited = 1;
    }
    cur = data;
    curlen = size;
    if (size < 1)
        return 0;
    mode = data[0] & 3;

    if (mode == 0) {
        add(&seg, data + 1, size - 1);
    } else if (mode == 1) {
        add(&seg, LP_WAL_MAGIC, LP_WAL_HDR);
        add(&seg, data + 1, size - 1);
    } else {
        const char *p, *q, *e;
        if (size < 6)
            return 0;
        damage = data[1] & 3;
        marks = data[1] >> 3;
        where = (size_t)data[2] | (size_t)data[3] << 8;
        x = data[4] ? data[4] : 1;
        extra = data[5];
        p = (const char *)data + 6;
        e = (const char *)data + size;
        while (p <= e && nparts < 512) {
            q = memchr(p, '\0', (size_t)(e - p));
            if (q == NULL)
                q = e;
            payload[nparts] = p;
            plen[nparts++] = (size_t)(q - p);
            p = q + 1;
        }
        add(&seg, (data[1] & 4) ? LP_WAL_MAGIC2 : LP_WAL_MAGIC, LP_WAL_HDR);
        for (size_t i = 0; i < nparts; i++) {
            struct buf cmd = { 0 };
            char hdr[LP_WAL_REC], h[32];
            const char *rp = payload[i];
            size_t rl = plen[i];
            if (mode == 3) {
                /* XADD key * [f v ...] data <payload> [f v ...] */
                int before = extra & 3, after = (extra >> 2) & 3;
                snprintf(h, sizeof h, "*%d\r\n", 5 + 2 * (before + after));
                add(&cmd, h, strlen(h));
                add_bulk(&cmd, (extra & 16) ? "xadd" : "XADD", 4);
                add_bulk(&cmd, "logs", 4);
                add_bulk(&cmd, "*", 1);
                for (int k = 0; k < before; k++) {
                    add_bulk(&cmd, k == 1 ? "Data" : "dat", 3 + (k == 1));
                    add_bulk(&cmd, "v", 1);
                }
                add_bulk(&cmd, "data", 4);
                add_bulk(&cmd, rp, rl);
                for (int k = 0; k < after; k++) {
                    add_bulk(&cmd, "data", 4);
                    add_bulk(&cmd, "second", 6);
                }
                rp = cmd.p;
                rl = cmd.n;
                {
                    const char *k, *ev;
                    size_t kl, el;
                    CHECK(lp_wal_event(rp, rl, &k, &kl, &ev, &el) == 1 &&
                          kl == 4 && memcmp(k, "logs", 4) == 0 &&
                          el == plen[i] && memcmp(ev, payload[i], el) == 0,
                          "lp_wal_event misreads XADD %zu", i);
                }
            }
            lp_wal_encode(hdr, rp, rl);
            if (marks & (1 << (i % 5))) {
                hdr[3] |= (char)(LP_WAL_DONE >> 24);
                mark[i] = 1;
            }
            add(&seg, hdr, LP_WAL_REC);
            add(&seg, rp, rl);
            bounds[i] = seg.n;
            if (mode == 3) {
                /* keep the command for the comparison below */
                payload[i] = NULL;
                plen[i] = rl;
            }
            free(cmd.p);
        }
        where %= seg.n;
        if (damage == 2 && where < LP_WAL_HDR) {
            /* LPWAL01, 02 and 03 differ in one byte: a flip there that
             * makes another version's header is a valid header, read as
             * that version (the framing is the same) */
            int valid;
            seg.p[where] ^= (char)x;
            valid = lp_wal_magic(seg.p, seg.n);
            seg.p[where] ^= (char)x;
            if (valid) {
                damage = 0;
                seg.p[where] ^= (char)x;
            }
        } else if (damage == 2 && x == (LP_WAL_DONE >> 24)) {
            /* both mark bits of a record's length: marked <-> not */
            for (size_t i = 0; i < nparts; i++) {
                size_t at = (i ? bounds[i - 1] : LP_WAL_HDR) + 3;
                if (at == where) {
                    damage = 0;
                    mark[i] = !mark[i];
                    seg.p[where] ^= (char)x;
                }
            }
        }
        if (damage == 1) {
            cutat = where;
            seg.n = cutat;
        } else if (damage == 2) {
            seg.p[where] ^= (char)x;
        } else if (damage == 3) {
            char g[64];
            memset(g, x, sizeof g);
            add(&seg, g, where % 64 + 1);
        }
    }

    rc = decode_all(seg.p, seg.n, &rs, &nrec, &end);

    if (mode >= 2) {
        /* the records before the damage come back as they were */
        size_t intact = nparts, start = LP_WAL_HDR;
        if (damage == 1 || damage == 2) {
            intact = 0;
            while (intact < nparts && bounds[intact] <= where)
                intact++;
            if (damage == 2 && where < LP_WAL_HDR)
                intact = 0;
        }
        if (damage == 1 && where < LP_WAL_HDR)
            CHECK(rc == -1 && nrec == 0, "a cut header is accepted");
        CHECK(nrec >= (damage == 1 && where < LP_WAL_HDR ? 0 : intact) ||
              (damage == 2 && where < LP_WAL_HDR),
              "%zu records come back, %zu were intact", nrec, intact);
        if (!(damage == 2 && where < LP_WAL_HDR) &&
            !(damage == 1 && where < LP_WAL_HDR)) {
            CHECK(nrec == intact, "%zu records come back, %zu were intact "
                  "(damage %d at %zu)", nrec, intact, damage, where);
        } else {
            CHECK(nrec == 0, "records behind a damaged header");
        }
        for (size_t i = 0; i < nrec && i < intact; i++) {
            size_t want = i ? bounds[i - 1] : start;
            CHECK(rs[i].off == want + LP_WAL_REC && rs[i].len == plen[i],
                  "record %zu: offset or length differs", i);
            CHECK(rs[i].done == mark[i], "record %zu: mark %d, want %d", i,
                  rs[i].done, mark[i]);
            if (payload[i])
                CHECK(memcmp(seg.p + rs[i].off, payload[i], plen[i]) == 0,
                      "record %zu: payload differs", i);
        }
        if (damage == 0)
            CHECK(rc == 0, "an undamaged segment does not end cleanly");
        if (damage == 1 && where >= LP_WAL_HDR) {
            int boundary = where == LP_WAL_HDR;
            for (size_t i = 0; i < nparts; i++)
                boundary |= bounds[i] == where;
            CHECK(rc == (boundary ? 0 : -1), "a cut at %zu gives %d", where,
                  rc);
        }
        if (damage >= 2)
            CHECK(rc == -1, "damage %d at %zu is not noticed", damage, where);
    }

    if (data[0] & 4)
        check_recovery(seg.p, seg.n, rs, nrec, end);

    free(rs);
    free(seg.p);
    return 0;
}
