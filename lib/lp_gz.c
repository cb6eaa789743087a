/* lp_gz.c -- gzip members: compress, verify, and read damaged files */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_fs.h"
#include "lp_gz.h"
#include "lp_parse.h"

#define IN_BUF (256 * 1024)
#define OUT_BUF (256 * 1024)

int lp_gz_compress(int in_fd, int out_fd, int level, uint32_t *crc,
                   uint64_t *len, uint64_t *zlen, char *err)
{
    z_stream z;
    unsigned char *in = malloc(IN_BUF), *out = malloc(OUT_BUF);
    int rc = -1, flush = Z_NO_FLUSH, zr;
    ssize_t got;

    memset(&z, 0, sizeof z);
    *zlen = 0;
    if (in == NULL || out == NULL ||
        deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        snprintf(err, LP_ERRLEN, "out of memory");
        errno = ENOMEM;
        free(in);
        free(out);
        return -1;
    }
    do {
        got = read(in_fd, in, IN_BUF);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, LP_ERRLEN, "read: %s", strerror(errno));
            goto out;
        }
        flush = got == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = in;
        z.avail_in = (uInt)got;
        do {
            z.next_out = out;
            z.avail_out = OUT_BUF;
            zr = deflate(&z, flush);
            if (zr == Z_STREAM_ERROR) {
                snprintf(err, LP_ERRLEN, "deflate failed");
                errno = EIO;
                goto out;
            }
            size_t have = OUT_BUF - z.avail_out;
            if (have && lp_fs_write_all(out_fd, out, have) < 0) {
                snprintf(err, LP_ERRLEN, "write: %s", strerror(errno));
                rc = LP_GZ_EWRITE;
                goto out;
            }
            *zlen += have;
        } while (z.avail_out == 0);
    } while (flush != Z_FINISH);
    /* for a gzip stream, zlib keeps the CRC-32 of the input in adler */
    *crc = (uint32_t)z.adler;
    *len = (uint64_t)z.total_in;
    rc = 0;
out:
    deflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

int lp_gz_verify(int fd, off_t off, uint64_t zlen, uint32_t crc,
                 uint64_t len, char *err)
{
    z_stream z;
    unsigned char *in = malloc(IN_BUF), *out = malloc(OUT_BUF);
    int rc = -1, zr = Z_OK;
    uint64_t left = zlen;

    memset(&z, 0, sizeof z);
    if (in == NULL || out == NULL || inflateInit2(&z, 15 + 16) != Z_OK) {
        snprintf(err, LP_ERRLEN, "out of memory");
        free(in);
        free(out);
        return -1;
    }
    while (left > 0 && zr != Z_STREAM_END) {
        size_t want = left < IN_BUF ? (size_t)left : IN_BUF;
        ssize_t got = pread(fd, in, want, off);
        if (got <= 0) {
            snprintf(err, LP_ERRLEN, "verify: read: %s",
                     got < 0 ? strerror(errno) : "short");
            goto out;
        }
        off += got;
        left -= (uint64_t)got;
        z.next_in = in;
        z.avail_in = (uInt)got;
        do {
            z.next_out = out;
            z.avail_out = OUT_BUF;
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                snprintf(err, LP_ERRLEN, "verify: %s",
                         z.msg ? z.msg : "inflate failed");
                goto out;
            }
        } while (z.avail_out == 0 && zr != Z_STREAM_END);
    }
    if (zr != Z_STREAM_END || (uint32_t)z.adler != crc ||
        (uint64_t)z.total_out != len) {
        snprintf(err, LP_ERRLEN, "verify: the compressed copy differs "
                 "(%llu bytes, CRC %08x; want %llu, %08x)",
                 (unsigned long long)z.total_out, (unsigned)z.adler,
                 (unsigned long long)len, (unsigned)crc);
        goto out;
    }
    rc = 0;
out:
    inflateEnd(&z);
    free(in);
    free(out);
    return rc;
}

struct lp_gzr {
    int fd;
    z_stream z;
    unsigned char *in;
    size_t inlen;               /* bytes in in[], z.next_in points inside */
    uint64_t inoff;             /* file offset of in[0] */
    uint64_t mstart;            /* file offset of the member being read */
    int eof, in_member, members, done;
    int started;
    char damage[256];           /* reported at the next call */
};

struct lp_gzr *lp_gzr_new(int fd)
{
    struct lp_gzr *r = calloc(1, sizeof *r);

    if (r == NULL || (r->in = malloc(IN_BUF)) == NULL ||
        inflateInit2(&r->z, 15 + 16) != Z_OK) {
        if (r)
            free(r->in);
        free(r);
        return NULL;
    }
    r->fd = fd;
    return r;
}

void lp_gzr_free(struct lp_gzr *r)
{
    if (r == NULL)
        return;
    inflateEnd(&r->z);
    free(r->in);
    free(r);
}

/* Refills the input buffer, keeping what inflate has not consumed. */
static int refill(struct lp_gzr *r)
{
    size_t keep = r->z.avail_in;
    ssize_t got;

    if (r->eof)
        return 0;
    if (keep && r->z.next_in != r->in)
        memmove(r->in, r->z.next_in, keep);
    r->inoff += r->inlen - keep;
    r->inlen = keep;
    do
        got = read(r->fd, r->in + keep, IN_BUF - keep);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return -1;
    if (got == 0)
        r->eof = 1;
    r->inlen += (size_t)got;
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)r->inlen;
    return (int)(got > 0);
}

static uint64_t in_pos(const struct lp_gzr *r)
{
    return r->inoff + (uint64_t)(r->z.next_in - r->in);
}

/*
 * Puts the input back at file offset off (offsets count from where reading
 * began), behind the current position: in the buffer when it still holds
 * it, else by seeking (the fd is at inoff + inlen). Returns 0, or -1 when
 * the fd cannot seek (a pipe).
 */
static int rewind_to(struct lp_gzr *r, uint64_t off)
{
    if (off >= r->inoff && off <= r->inoff + r->inlen) {
        r->z.next_in = r->in + (off - r->inoff);
        r->z.avail_in = (uInt)(r->inoff + r->inlen - off);
        return 0;
    }
    if (off > r->inoff ||
        lseek(r->fd, -(off_t)(r->inoff + r->inlen - off), SEEK_CUR) < 0)
        return -1;
    r->inoff = off;
    r->inlen = 0;
    r->z.next_in = r->in;
    r->z.avail_in = 0;
    r->eof = 0;
    return 0;
}

/*
 * After damage: looks for the next gzip header (1f 8b 08). Inside a
 * damaged member (member set), inflate may have taken the members after
 * it for its own data before it failed or met the end of the file (a cut
 * stored block swallows any number of them), so the search starts at the
 * byte after the member's first. Between members, or when the fd cannot
 * seek back that far (a pipe), it starts at the byte after the current
 * one. Each member start found is past the one before, so reading ends.
 * Returns 1 with inflate reset at the header, 0 at the end of the file.
 */
static int resync(struct lp_gzr *r, int member)
{
    inflateReset(&r->z);
    r->in_member = 0;
    if ((!member || rewind_to(r, r->mstart + 1) < 0) && r->z.avail_in > 0) {
        r->z.next_in++;
        r->z.avail_in--;
    }
    for (;;) {
        while (r->z.avail_in >= 3) {
            unsigned char *p = memchr(r->z.next_in, 0x1f, r->z.avail_in - 2);
            if (p == NULL) {
                /* keep the last two bytes: a header may straddle */
                r->z.next_in += r->z.avail_in - 2;
                r->z.avail_in = 2;
                break;
            }
            r->z.avail_in -= (uInt)(p - r->z.next_in);
            r->z.next_in = p;
            if (p[1] == 0x8b && p[2] == 8)
                return 1;
            r->z.next_in++;
            r->z.avail_in--;
        }
        if (r->eof || refill(r) <= 0)
            return 0;
    }
}

int lp_gzr_read(struct lp_gzr *r, char *buf, size_t cap, size_t *got,
                char *msg, size_t msgcap)
{
    *got = 0;
    if (r->damage[0]) {
        snprintf(msg, msgcap, "%s", r->damage);
        r->damage[0] = '\0';
        return LP_GZ_DAMAGE;
    }
    if (r->done)
        return LP_GZ_END;
    for (;;) {
        if (r->z.avail_in == 0) {
            int rc = refill(r);
            if (rc < 0)
                return LP_GZ_ERR;
            if (rc == 0 && r->z.avail_in == 0) {
                if (r->in_member) {
                    /* cut short, or it swallowed the members after it */
                    uint64_t at = in_pos(r);
                    int n = r->members, found = resync(r, 1);
                    r->done = !found;
                    snprintf(msg, msgcap, "member %d is cut short at byte "
                             "%llu%s", n, (unsigned long long)at,
                             found ? ", resuming at the next member" :
                             " (a truncated file)");
                    return LP_GZ_DAMAGE;
                }
                r->done = 1;
                if (!r->started) {
                    snprintf(msg, msgcap, "empty file, not gzip");
                    return LP_GZ_DAMAGE;
                }
                return LP_GZ_END;
            }
        }
        if (!r->in_member) {
            /* between members: the next must start with a gzip header */
            if (r->z.avail_in < 3 && !r->eof) {
                if (refill(r) < 0)
                    return LP_GZ_ERR;
                continue;
            }
            if (r->z.avail_in >= 2 && r->z.next_in[0] == 0x1f &&
                r->z.next_in[1] == 0x8b) {
                r->in_member = 1;
                r->started = 1;
                r->members++;
                r->mstart = in_pos(r);
            } else {
                uint64_t at = in_pos(r);
                int found = resync(r, 0);
                r->started = 1;
                snprintf(msg, msgcap, "%s at byte %llu%s",
                         r->members ? "garbage after a member" :
                         "not gzip data", (unsigned long long)at,
                         found ? ", resuming at the next member" : "");
                if (!found)
                    r->done = 1;
                return LP_GZ_DAMAGE;
            }
        }
        r->z.next_out = (unsigned char *)buf;
        r->z.avail_out = (uInt)cap;
        int zr = inflate(&r->z, Z_NO_FLUSH);
        *got = cap - r->z.avail_out;
        if (zr == Z_STREAM_END) {
            inflateReset(&r->z);
            r->in_member = 0;
            if (*got)
                return LP_GZ_DATA;
            continue;
        }
        if (zr == Z_OK || zr == Z_BUF_ERROR) {
            if (*got)
                return LP_GZ_DATA;
            if (zr == Z_BUF_ERROR && r->z.avail_in > 0)
                goto damaged;   /* no progress possible */
            continue;           /* needs input */
        }
damaged:
        {
            uint64_t at = in_pos(r);
            char m[128];
            int n = r->members, found;
            snprintf(m, sizeof m, "%s", r->z.msg ? r->z.msg : "inflate "
                     "failed");
            found = resync(r, 1);
            snprintf(r->damage, sizeof r->damage, "member %d is damaged at "
                     "byte %llu (%s)%s", n, (unsigned long long)at, m,
                     found ? ", resuming at the next member" : "");
            if (!found)
                r->done = 1;
            if (*got)
                return LP_GZ_DATA;      /* the damage comes next call */
            snprintf(msg, msgcap, "%s", r->damage);
            r->damage[0] = '\0';
            return LP_GZ_DAMAGE;
        }
    }
}
