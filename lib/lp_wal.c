/* lp_wal.c -- write-ahead log for logpipe-send */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "lp_crc.h"
#include "lp_fs.h"
#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_wal.h"

#define ACK_MAGIC 0x4b434157u           /* "WACK" */
#define READ_CHUNK (1u << 20)

struct lp_wal_seg {
    char name[80];
    int fd;
    uint64_t size;
    uint64_t acked;             /* records before this offset are in Redis */
    uint64_t off;               /* next record to hand out */
    char *buf;                  /* buf[bstart..]: the file bytes [bufoff,
                                   bufoff + buflen) */
    size_t buflen, bufcap, bstart;
    uint64_t bufoff;
    int ackfd;
    int v2;                     /* header LPWAL02 or 03: may hold marks */
    int v3;                     /* header LPWAL03: producers' records */
    uint64_t nmarks;            /* marked records after acked */
    int mdirty;                 /* marked since the last sync */
};

struct lp_wal {
    char *dir;
    int dirfd;
    uint64_t max_bytes;
    uint64_t bytes;             /* records waiting, all segments seen */
    int afd;                    /* our active segment, or -1 */
    char aname[80];
    uint64_t asize;
    int anew;                   /* made since the last directory sync */
    int dirty;                  /* appended since the last sync */
    struct lp_notify nt;        /* segments cut or passed over: said here */
};

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* castagnoli: CRC-32C (lp_crc, the drain journal's), else zlib's CRC-32
 * (the WAL's own format) */
static uint32_t rec_crc(const unsigned char *lenbytes, const char *rec,
                        size_t n, int castagnoli)
{
    uLong c;

    if (castagnoli)
        return lp_crc32c(lp_crc32c(0, lenbytes, 4), rec, n);
    c = crc32(0L, lenbytes, 4);

    /* zlib takes uInt lengths */
    while (n > 0) {
        uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, (const Bytef *)rec, k);
        rec += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* The CRC of a record of n payload bytes: of the length without the
 * LP_WAL_DONE mark, so that marking keeps it valid. */
static uint32_t rec_crc_n(uint32_t n, const char *rec, int castagnoli)
{
    unsigned char lb[4];

    put32(lb, n);
    return rec_crc(lb, rec, n, castagnoli);
}

/* The payload length in a record's length word v; *done: it is marked.
 * Both mark bits, or neither: a single flipped bit is damage (a length
 * past LP_WAL_MAXREC, or a CRC that fails), never a mark. */
static uint32_t rec_len(uint32_t v, int *done)
{
    *done = (v & LP_WAL_DONE) == LP_WAL_DONE;
    return *done ? v & ~LP_WAL_DONE : v;
}

int lp_wal_magic(const char *buf, size_t len)
{
    return len >= LP_WAL_HDR && (memcmp(buf, LP_WAL_MAGIC, LP_WAL_HDR) == 0 ||
                                 memcmp(buf, LP_WAL_MAGIC2, LP_WAL_HDR) == 0 ||
                                 memcmp(buf, LP_WAL_MAGIC3, LP_WAL_HDR) == 0);
}

int lp_wal_rec_done(const char *rec)
{
    int done;

    rec_len(get32((const unsigned char *)rec - LP_WAL_REC), &done);
    return done;
}

static void encode(char *hdr, const char *rec, size_t rlen, int castagnoli)
{
    unsigned char *h = (unsigned char *)hdr;

    put32(h, (uint32_t)rlen);
    put32(h + 4, rec_crc(h, rec, rlen, castagnoli));
}

void lp_wal_encode(char *hdr, const char *rec, size_t rlen)
{
    encode(hdr, rec, rlen, 0);
}

void lp_wal_encode_c(char *hdr, const char *rec, size_t rlen)
{
    encode(hdr, rec, rlen, 1);
}

/* A record at buf[*pos..len), *pos past the segment's header. */
static int decode(const char *buf, size_t len, size_t *pos, const char **rec,
                  size_t *rlen, int castagnoli)
{
    const unsigned char *h;
    uint32_t n;
    int done;

    if (*pos == len)
        return 0;
    if (len - *pos < LP_WAL_REC)
        return -1;
    h = (const unsigned char *)buf + *pos;
    n = rec_len(get32(h), &done);
    if (n > LP_WAL_MAXREC || len - *pos - LP_WAL_REC < n ||
        rec_crc_n(n, buf + *pos + LP_WAL_REC, castagnoli) != get32(h + 4))
        return -1;
    *rec = buf + *pos + LP_WAL_REC;
    *rlen = n;
    *pos += LP_WAL_REC + n;
    return 1;
}

int lp_wal_decode(const char *buf, size_t len, size_t *pos, const char **rec,
                  size_t *rlen)
{
    if (*pos == 0) {
        if (!lp_wal_magic(buf, len))
            return -1;
        *pos = LP_WAL_HDR;
    }
    return decode(buf, len, pos, rec, rlen, 0);
}

int lp_wal_decode_c(const char *buf, size_t len, size_t *pos,
                    const char **rec, size_t *rlen)
{
    return decode(buf, len, pos, rec, rlen, 1);
}

/* One RESP bulk string at p; returns the byte after it or NULL. */
static const char *bulk(const char *p, const char *end, const char **s,
                        size_t *n)
{
    size_t v = 0;

    if (p >= end || *p != '$')
        return NULL;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (size_t)(*p - '0');
        if (v > LP_WAL_MAXREC)
            return NULL;
    }
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return NULL;
    p += 2;
    if ((size_t)(end - p) < v + 2 || p[v] != '\r' || p[v + 1] != '\n')
        return NULL;
    *s = p;
    *n = v;
    return p + v + 2;
}

int lp_wal_producer(const char *rec, size_t rlen, const char **name,
                    size_t *namelen, uint64_t *pos, const char **cursor,
                    size_t *cursorlen, size_t *cmd)
{
    const char *p = rec, *end = rec + rlen, *nl, *sp;
    uint64_t v = 0;

    if (rlen < 4 || *p != '#' ||
        (nl = memchr(rec, '\n', rlen)) == NULL)
        return 0;
    for (p++; p < nl && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == rec + 1 || p >= nl || *p != ' ' || v == 0)
        return 0;
    p++;
    sp = memchr(p, ' ', (size_t)(nl - p));
    *name = p;
    *namelen = (size_t)((sp ? sp : nl) - p);
    if (*namelen == 0)
        return 0;
    *cursor = sp ? sp + 1 : nl;
    *cursorlen = sp ? (size_t)(nl - sp - 1) : 0;
    *pos = v;
    *cmd = (size_t)(nl + 1 - rec);
    (void)end;
    return 1;
}

int lp_wal_event(const char *rec, size_t rlen, const char **key,
                 size_t *keylen, const char **ev, size_t *evlen)
{
    const char *p = rec, *end = rec + rlen, *s;
    size_t argc = 0, n;

    if (p < end && *p == '#') {
        /* a producer's record: its position first */
        const char *nl = memchr(p, '\n', rlen);
        if (nl == NULL)
            return 0;
        p = nl + 1;
    }
    if (p >= end || *p != '*')
        return 0;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++)
        argc = argc * 10 + (size_t)(*p - '0');
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n' || argc < 5 ||
        argc % 2 == 0 || argc > 1000)
        return 0;
    p += 2;
    /* XADD key id field value ... */
    if ((p = bulk(p, end, &s, &n)) == NULL || n != 4 ||
        strncasecmp(s, "XADD", 4) != 0)
        return 0;
    if ((p = bulk(p, end, key, keylen)) == NULL ||
        (p = bulk(p, end, &s, &n)) == NULL)
        return 0;
    for (size_t i = 3; i + 1 < argc; i += 2) {
        const char *f, *v;
        size_t fl, vl;
        if ((p = bulk(p, end, &f, &fl)) == NULL ||
            (p = bulk(p, end, &v, &vl)) == NULL)
            return 0;
        if (fl == 4 && memcmp(f, "data", 4) == 0) {
            *ev = v;
            *evlen = vl;
            return 1;
        }
    }
    return 0;
}

static int is_segment(const char *name)
{
    size_t n = strlen(name);

    return n > 8 && strncmp(name, "wal-", 4) == 0 &&
           strcmp(name + n - 4, ".log") == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segment names in the directory, sorted (oldest first). Caller frees
 * the array and the names. */
static char **list_segments(struct lp_wal *w, size_t *count, char *err)
{
    DIR *d;
    struct dirent *de;
    char **v = NULL;
    size_t n = 0, cap = 0;
    int fd = dup(w->dirfd);

    *count = 0;
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        snprintf(err, LP_ERRLEN, "--wal %s: %s", w->dir, strerror(errno));
        return NULL;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (!is_segment(de->d_name))
            continue;
        if (n == cap) {
            char **p = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
            if (p == NULL)
                break;
            v = p;
        }
        if ((v[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, by_name);
    *count = n;
    if (v == NULL)
        v = calloc(1, sizeof *v);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The acknowledged offset of segment name (0 when none or damaged). */
static uint64_t read_ack(struct lp_wal *w, const char *name)
{
    char an[96];
    unsigned char b[16];
    int fd;
    uint64_t v = 0;

    snprintf(an, sizeof an, "%s.ack", name);
    if ((fd = openat(w->dirfd, an, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return 0;
    if (pread(fd, b, sizeof b, 0) == (ssize_t)sizeof b &&
        get32(b + 12) == ACK_MAGIC &&
        get32(b + 8) == (uint32_t)crc32(0L, b, 8)) {
        for (int i = 7; i >= 0; i--)
            v = v << 8 | b[i];
    }
    close(fd);
    return v;
}

static void seg_free(struct lp_wal_seg *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);       /* drops the lock */
    if (s->ackfd >= 0)
        close(s->ackfd);
    free(s->buf);
    free(s);
}

/* Makes sure buf holds the bytes [off, off + need) of the segment, reading
 * more as needed. Returns the bytes available from off (maybe fewer). */
static size_t seg_fill(struct lp_wal_seg *s, uint64_t off, size_t need)
{
    if (off < s->bufoff || off > s->bufoff + s->buflen) {
        s->bufoff = off;
        s->buflen = s->bstart = 0;
    } else if (off > s->bufoff) {
        /* records read: passed over, moved out only when more is read
         * (a move per record would copy the buffer each time) */
        size_t drop = (size_t)(off - s->bufoff);
        s->bstart += drop;
        s->buflen -= drop;
        s->bufoff = off;
    }
    if (s->buflen < need && s->bufoff + s->buflen < s->size &&
        s->bstart > 0) {
        memmove(s->buf, s->buf + s->bstart, s->buflen);
        s->bstart = 0;
    }
    while (s->buflen < need && s->bufoff + s->buflen < s->size) {
        size_t want = need - s->buflen;
        if (want < READ_CHUNK)
            want = READ_CHUNK;
        if (s->bufcap - s->buflen < want) {
            char *p = realloc(s->buf, s->buflen + want);
            if (p == NULL)
                break;
            s->buf = p;
            s->bufcap = s->buflen + want;
        }
        ssize_t got = pread(s->fd, s->buf + s->buflen, s->bufcap - s->buflen,
                            (off_t)(s->bufoff + s->buflen));
        if (got <= 0)
            break;
        s->buflen += (size_t)got;
    }
    return s->buflen;
}

/*
 * Reads the record at s->off: 1 with rec/len (*done: it is marked), 0 at
 * the end of the valid records (*torn set when bytes follow that are not
 * a whole record).
 */
static int seg_read(struct lp_wal_seg *s, const char **rec, size_t *len,
                    int *done, int *torn)
{
    size_t have;
    uint32_t n;

    *torn = 0;
    *done = 0;
    if (s->off >= s->size)
        return 0;
    have = seg_fill(s, s->off, LP_WAL_REC);
    if (have < LP_WAL_REC) {
        *torn = 1;
        return 0;
    }
    n = get32((const unsigned char *)s->buf + s->bstart);
    n = rec_len(n, done);
    if (n > LP_WAL_MAXREC) {
        *torn = 1;
        return 0;
    }
    have = seg_fill(s, s->off, LP_WAL_REC + n);
    if (have < LP_WAL_REC + (size_t)n) {
        *torn = 1;
        return 0;
    }
    {
        const unsigned char *h = (const unsigned char *)s->buf + s->bstart;
        if (rec_crc_n(n, s->buf + s->bstart + LP_WAL_REC, 0) != get32(h + 4)) {
            *torn = 1;
            return 0;
        }
    }
    *rec = s->buf + s->bstart + LP_WAL_REC;
    *len = n;
    return 1;
}

/*
 * Opens and locks segment name without waiting. Returns 1 with *out, 0
 * when someone else holds it (or it vanished), -1 with err.
 */
static int seg_open(struct lp_wal *w, const char *name,
                    struct lp_wal_seg **out, char *err)
{
    struct lp_wal_seg *s;
    struct stat st, cur;
    char hdr[LP_WAL_HDR];

    *out = NULL;
    if ((s = calloc(1, sizeof *s)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    s->ackfd = -1;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (s->fd < 0) {
        int e = errno;
        seg_free(s);
        if (e == ENOENT)
            return 0;
        snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, name,
                 strerror(e));
        return -1;
    }
    if (flock(s->fd, LOCK_EX | LOCK_NB) < 0) {
        seg_free(s);
        return 2;                       /* another sender's */
    }
    /* deleted between readdir and the lock by whoever held it? */
    if (fstat(s->fd, &st) < 0 || st.st_nlink == 0 ||
        fstatat(w->dirfd, name, &cur, AT_SYMLINK_NOFOLLOW) < 0 ||
        cur.st_ino != st.st_ino) {
        seg_free(s);
        return 0;
    }
    s->size = (uint64_t)st.st_size;
    if (s->size < LP_WAL_HDR) {
        /* made, header not yet written when its sender died: empty */
        s->acked = s->off = s->size;
        *out = s;
        return 1;
    }
    if (pread(s->fd, hdr, LP_WAL_HDR, 0) != LP_WAL_HDR ||
        !lp_wal_magic(hdr, LP_WAL_HDR)) {
        lp_notice(&w->nt, LP_NOTICE_WARN,
                  "--wal %s/%s: not a logpipe WAL segment: left alone",
                  w->dir, name);
        seg_free(s);
        return 0;
    }
    s->v2 = memcmp(hdr, LP_WAL_MAGIC, LP_WAL_HDR) != 0;   /* 02, 03 */
    s->v3 = memcmp(hdr, LP_WAL_MAGIC3, LP_WAL_HDR) == 0;
    s->acked = read_ack(w, name);
    if (s->acked < LP_WAL_HDR || s->acked > s->size)
        s->acked = LP_WAL_HDR;
    s->off = s->acked;
    *out = s;
    return 1;
}

/* Walks the records after the acknowledged ones, cutting a torn tail and
 * counting the marked ones. Returns the bytes of records waiting (marked
 * ones are not), or -1 with err. */
static int64_t seg_check(struct lp_wal *w, struct lp_wal_seg *s, char *err)
{
    const char *rec;
    size_t len;
    int done, torn;
    uint64_t marked = 0;

    s->off = s->acked;
    s->nmarks = 0;
    while (seg_read(s, &rec, &len, &done, &torn) == 1) {
        s->off += LP_WAL_REC + len;
        if (done) {
            s->nmarks++;
            marked += LP_WAL_REC + len;
        }
    }
    if (torn) {
        lp_notice(&w->nt, LP_NOTICE_WARN, "--wal %s/%s: cutting a torn "
                  "tail of %llu bytes (a record cut short or damaged)",
                  w->dir, s->name, (unsigned long long)(s->size - s->off));
        if (ftruncate(s->fd, (off_t)s->off) < 0 || fdatasync(s->fd) < 0) {
            snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, s->name,
                     strerror(errno));
            return -1;
        }
        s->size = s->off;
    }
    s->off = s->acked;
    s->buflen = 0;
    return (int64_t)(s->size - s->acked - marked);
}

/* The bytes of the records in [from, to) that are not marked, and the
 * number of marked ones, from their headers (a segment with marks only;
 * the records were checked by seg_check). Returns 0, or -1 with errno. */
static int seg_span(struct lp_wal_seg *s, uint64_t from, uint64_t to,
                    uint64_t *bytes, uint64_t *marks)
{
    unsigned char h[LP_WAL_REC];

    *bytes = *marks = 0;
    while (from < to) {
        uint32_t n;
        int done;
        errno = 0;
        if (pread(s->fd, h, sizeof h, (off_t)from) != (ssize_t)sizeof h) {
            if (errno == 0)
                errno = EIO;
            return -1;
        }
        n = rec_len(get32(h), &done);
        if (done)
            (*marks)++;
        else
            *bytes += LP_WAL_REC + n;
        from += LP_WAL_REC + n;
    }
    return 0;
}

struct lp_wal *lp_wal_open(const char *dir, uint64_t max_bytes,
                           const struct lp_notify *nt, char *err)
{
    struct lp_wal *w = calloc(1, sizeof *w);
    char **names;
    size_t n;

    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        free(w);
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    w->afd = -1;
    w->max_bytes = max_bytes;
    if (nt)
        w->nt = *nt;
    if ((w->dirfd = lp_fs_root(dir, 1, err)) < 0) {
        free(w->dir);
        free(w);
        return NULL;
    }
    if ((names = list_segments(w, &n, err)) == NULL) {
        lp_wal_close(w);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct lp_wal_seg *s;
        struct stat st;
        int rc = seg_open(w, names[i], &s, err);
        if (rc < 0) {
            free_list(names, n);
            lp_wal_close(w);
            return NULL;
        }
        if (rc != 1) {
            /* another sender's active segment: counted, not touched */
            if (fstatat(w->dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
                w->bytes += (uint64_t)st.st_size;
            continue;
        }
        int64_t left = seg_check(w, s, err);
        if (left < 0) {
            seg_free(s);
            free_list(names, n);
            lp_wal_close(w);
            return NULL;
        }
        if (left == 0) {
            if (lp_wal_seg_done(w, s, err) < 0) {
                free_list(names, n);
                lp_wal_close(w);
                return NULL;
            }
        } else {
            w->bytes += (uint64_t)left;
            seg_free(s);
        }
    }
    free_list(names, n);
    return w;
}

void lp_wal_close(struct lp_wal *w)
{
    if (w == NULL)
        return;
    if (w->afd >= 0)
        close(w->afd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->dir);
    free(w);
}

uint64_t lp_wal_bytes(const struct lp_wal *w)
{
    return w->bytes;
}

/* Reads n bytes from the start of fd: 0, or -1 with errno. */
static int read_whole(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

int lp_wal_records(struct lp_wal *w, lp_wal_rec_fn *fn, void *arg,
                   char *err)
{
    char **names;
    size_t n;

    if ((names = list_segments(w, &n, err)) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int fd = openat(w->dirfd, names[i], O_RDONLY | O_CLOEXEC |
                        O_NOFOLLOW);
        struct stat st;
        char *buf = NULL;
        size_t pos = 0, rl;
        const char *rec;
        if (fd < 0)
            continue;           /* gone since: done with */
        if (fstat(fd, &st) < 0 || (buf = malloc((size_t)st.st_size + 1))
            == NULL || read_whole(fd, buf, (size_t)st.st_size) < 0) {
            snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, names[i],
                     buf ? strerror(errno) : "out of memory");
            free(buf);
            close(fd);
            free_list(names, n);
            return -1;
        }
        close(fd);
        /* a torn tail ends the walk: it holds no whole record */
        while ((size_t)st.st_size >= LP_WAL_HDR &&
               memcmp(buf, LP_WAL_MAGIC3, LP_WAL_HDR) == 0 &&
               lp_wal_decode(buf, (size_t)st.st_size, &pos, &rec, &rl) == 1) {
            const char *pn, *cur;
            size_t pnl, cl, cmd;
            uint64_t p;
            if (lp_wal_producer(rec, rl, &pn, &pnl, &p, &cur, &cl, &cmd))
                fn(arg, pn, pnl, p, cur, cl, rec, rl);
        }
        free(buf);
    }
    free_list(names, n);
    return 0;
}

struct prod_fn {
    lp_wal_prod_fn *fn;
    void *arg;
};

static void prod_of_rec(void *arg, const char *name, size_t namelen,
                        uint64_t pos, const char *cursor, size_t cursorlen,
                        const char *rec, size_t reclen)
{
    struct prod_fn *p = arg;

    (void)rec;
    (void)reclen;
    p->fn(p->arg, name, namelen, pos, cursor, cursorlen);
}

int lp_wal_producers(struct lp_wal *w, lp_wal_prod_fn *fn, void *arg,
                     char *err)
{
    struct prod_fn p = { fn, arg };

    return lp_wal_records(w, prod_of_rec, &p, err);
}

struct max_pos {
    const char *name;
    size_t len;
    uint64_t max;
};

static void max_pos_of(void *arg, const char *name, size_t namelen,
                       uint64_t pos, const char *cursor, size_t cursorlen)
{
    struct max_pos *m = arg;

    (void)cursor;
    (void)cursorlen;
    if (namelen == m->len && memcmp(name, m->name, namelen) == 0 &&
        pos > m->max)
        m->max = pos;
}

int lp_wal_max_pos(struct lp_wal *w, const char *name, uint64_t *max,
                   char *err)
{
    struct max_pos m = { name, strlen(name), 0 };
    int rc = lp_wal_producers(w, max_pos_of, &m, err);

    *max = m.max;
    return rc;
}

int lp_wal_pending(struct lp_wal *w, char *err)
{
    char **names;
    size_t n;
    int any = 0;

    if (w->afd >= 0 && w->asize > LP_WAL_HDR)
        return 1;
    if ((names = list_segments(w, &n, err)) == NULL)
        return -1;
    for (size_t i = 0; i < n && !any; i++) {
        struct lp_wal_seg *s;
        if (w->afd >= 0 && strcmp(names[i], w->aname) == 0)
            continue;
        if (seg_open(w, names[i], &s, err) == 1) {
            any = 1;    /* no one holds it: ours to send (or to delete) */
            seg_free(s);
        }
    }
    free_list(names, n);
    return any;
}

/* Closes our active segment: it becomes an ordinary one. */
static void seal(struct lp_wal *w)
{
    if (w->afd >= 0) {
        close(w->afd);
        w->afd = -1;
    }
}

static int new_segment(struct lp_wal *w, char *err)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    for (int tries = 0; ; tries++) {
        snprintf(w->aname, sizeof w->aname, "wal-%016llx-%d.log",
                 (unsigned long long)tv.tv_sec * 1000000ULL +
                 (unsigned long long)tv.tv_usec + (unsigned)tries,
                 (int)getpid());
        w->afd = openat(w->dirfd, w->aname, O_WRONLY | O_APPEND | O_CREAT |
                        O_EXCL | O_CLOEXEC | O_NOFOLLOW, LP_FILE_MODE);
        if (w->afd >= 0 || errno != EEXIST || tries > 100)
            break;
    }
    if (w->afd < 0 || flock(w->afd, LOCK_EX) < 0 ||
        lp_fs_write_all(w->afd, LP_WAL_MAGIC3, LP_WAL_HDR) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, w->aname,
                 strerror(errno));
        if (w->afd >= 0) {
            close(w->afd);
            w->afd = -1;
        }
        return -1;
    }
    w->asize = LP_WAL_HDR;
    w->anew = 1;
    return 0;
}

int lp_wal_append(struct lp_wal *w, const char *rec, size_t len, char *err)
{
    char hdr[LP_WAL_REC];
    struct iovec iov[2];

    if (len > LP_WAL_MAXREC) {
        snprintf(err, LP_ERRLEN, "--wal: record of %zu bytes too large", len);
        errno = EFBIG;
        return -1;
    }
    if (w->max_bytes && w->bytes + LP_WAL_REC + len > w->max_bytes) {
        snprintf(err, LP_ERRLEN, "--wal %s holds %llu bytes: --wal-max "
                 "reached", w->dir, (unsigned long long)w->bytes);
        return -2;
    }
    if (w->afd >= 0 && w->asize >= LP_WAL_SEGMENT) {
        if (lp_wal_sync(w, err) < 0)
            return -1;
        seal(w);
    }
    if (w->afd < 0 && new_segment(w, err) < 0)
        return -1;
    lp_wal_encode(hdr, rec, len);
    iov[0].iov_base = hdr;
    iov[0].iov_len = LP_WAL_REC;
    iov[1].iov_base = (void *)rec;
    iov[1].iov_len = len;
    size_t want = LP_WAL_REC + len, done = 0;
    while (done < want) {
        ssize_t k = writev(w->afd, iov, 2);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, LP_ERRLEN, "--wal %s/%s: write: %s", w->dir,
                     w->aname, strerror(errno));
            /* a partial record is a torn tail: cut at the next open */
            return -1;
        }
        done += (size_t)k;
        /* rare short write: move the iovecs on */
        size_t k2 = (size_t)k;
        for (int i = 0; i < 2 && k2; i++) {
            size_t t = k2 < iov[i].iov_len ? k2 : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + t;
            iov[i].iov_len -= t;
            k2 -= t;
        }
    }
    w->asize += want;
    w->bytes += want;
    w->dirty = 1;
    return 0;
}

int lp_wal_sync(struct lp_wal *w, char *err)
{
    if (w->afd < 0 || !w->dirty)
        return 0;
    if (fdatasync(w->afd) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: fsync: %s", w->dir, w->aname,
                 strerror(errno));
        return -1;
    }
    if (w->anew && fsync(w->dirfd) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s: fsync: %s", w->dir,
                 strerror(errno));
        return -1;
    }
    w->anew = 0;
    w->dirty = 0;
    return 0;
}

int lp_wal_take(struct lp_wal *w, struct lp_wal_seg **seg, char *err)
{
    char **names;
    size_t n;
    int rc = 0;

    *seg = NULL;
    if ((names = list_segments(w, &n, err)) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct lp_wal_seg *s;
        if (w->afd >= 0 && strcmp(names[i], w->aname) == 0) {
            /* ours: close it (new records go to a new segment), then take
             * it like any other */
            if (lp_wal_sync(w, err) < 0) {
                rc = -1;
                break;
            }
            seal(w);
        }
        int o = seg_open(w, names[i], &s, err);
        if (o < 0) {
            rc = -1;
            break;
        }
        if (o == 2) {
            /* another sender holds an older segment (sending it, or
             * writing it): a producer's records go in order, so nothing
             * after it goes before it (a gate from Redis's position would
             * let the later ones in first, and the older taken for
             * stored) */
            rc = 2;
            break;
        }
        if (o == 0)
            continue;
        int64_t left = seg_check(w, s, err);
        if (left < 0) {
            seg_free(s);
            rc = -1;
            break;
        }
        if (left == 0) {
            if (lp_wal_seg_done(w, s, err) < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        *seg = s;
        rc = 1;
        break;
    }
    free_list(names, n);
    return rc;
}

int lp_wal_seg_next(struct lp_wal_seg *s, const char **rec, size_t *len,
                    uint64_t *end)
{
    int done, torn;

    do {
        if (seg_read(s, rec, len, &done, &torn) != 1)
            return 0;
        s->off += LP_WAL_REC + *len;
    } while (done);             /* in Redis already: never again */
    *end = s->off;
    return 1;
}

int lp_wal_seg_ack(struct lp_wal *w, struct lp_wal_seg *s, uint64_t end,
                   char *err)
{
    unsigned char b[16];
    uint64_t gone = end - s->acked, marks = 0;

    /* the marks first: an .ack past a record whose mark is lost is
     * harmless, a mark lost before it is not */
    if (s->mdirty) {
        if (fdatasync(s->fd) < 0) {
            snprintf(err, LP_ERRLEN, "--wal %s/%s: fsync: %s", w->dir,
                     s->name, strerror(errno));
            return -1;
        }
        s->mdirty = 0;
    }
    if (end <= s->acked)
        return 0;
    if (s->nmarks && seg_span(s, s->acked, end, &gone, &marks) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: read: %s", w->dir, s->name,
                 strerror(errno));
        return -1;
    }
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(end >> (8 * i));
    put32(b + 8, (uint32_t)crc32(0L, b, 8));
    put32(b + 12, ACK_MAGIC);
    if (s->ackfd < 0) {
        char an[96];
        snprintf(an, sizeof an, "%s.ack", s->name);
        s->ackfd = openat(w->dirfd, an, O_WRONLY | O_CREAT | O_CLOEXEC |
                          O_NOFOLLOW, LP_FILE_MODE);
        /* made once per segment: its directory entry must last, or a
         * crash would send the acknowledged records again */
        if (s->ackfd < 0 || fsync(w->dirfd) < 0) {
            snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, an,
                     strerror(errno));
            return -1;
        }
    }
    /* 16 bytes at offset 0: within one sector, so rewritten whole or not
     * at all; the CRC tells a torn write anyway */
    if (pwrite(s->ackfd, b, sizeof b, 0) != (ssize_t)sizeof b ||
        fdatasync(s->ackfd) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s.ack: %s", w->dir, s->name,
                 strerror(errno));
        return -1;
    }
    w->bytes -= w->bytes < gone ? w->bytes : gone;
    s->nmarks -= marks;
    s->acked = end;
    return 0;
}

int lp_wal_seg_mark(struct lp_wal *w, struct lp_wal_seg *s, uint64_t end,
                    size_t len, char *err)
{
    unsigned char h[4];
    uint64_t start = end - LP_WAL_REC - len;
    uint32_t v;
    int done;

    if (len > LP_WAL_MAXREC || end < LP_WAL_HDR + LP_WAL_REC + len ||
        start < s->acked || end > s->size) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: no record of %zu bytes ends "
                 "at %llu", w->dir, s->name, len, (unsigned long long)end);
        return -1;
    }
    if (len > ~LP_WAL_DONE)
        return 0;               /* a GiB: the mark does not fit its length */
    /* the header first, synced: a reader that does not know marks must
     * leave the segment alone, not cut it at the first one */
    errno = 0;
    if (!s->v2 && (pwrite(s->fd, LP_WAL_MAGIC2, LP_WAL_HDR, 0) != LP_WAL_HDR
                   || fdatasync(s->fd) < 0))
        goto failed;
    s->v2 = 1;
    errno = 0;
    if (pread(s->fd, h, sizeof h, (off_t)start) != (ssize_t)sizeof h)
        goto failed;
    if ((v = rec_len(get32(h), &done)) != len) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: no record of %zu bytes ends "
                 "at %llu", w->dir, s->name, len, (unsigned long long)end);
        return -1;
    }
    if (done)
        return 0;
    /* one byte, the top one of the length: written whole or not at all */
    h[3] |= (unsigned char)(LP_WAL_DONE >> 24);
    if (pwrite(s->fd, h + 3, 1, (off_t)start + 3) != 1)
        goto failed;
    if (start + 3 >= s->bufoff && start + 3 < s->bufoff + s->buflen)
        s->buf[s->bstart + start + 3 - s->bufoff] = (char)h[3];
    s->mdirty = 1;
    s->nmarks++;
    w->bytes -= w->bytes < LP_WAL_REC + len ? w->bytes : LP_WAL_REC + len;
    return 0;
failed:
    if (errno == 0)
        errno = EIO;
    snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, s->name,
             strerror(errno));
    return -1;
}

void lp_wal_seg_rewind(struct lp_wal_seg *s)
{
    s->off = s->acked;
    s->buflen = 0;
}

int lp_wal_seg_done(struct lp_wal *w, struct lp_wal_seg *s, char *err)
{
    char an[96];
    uint64_t gone = s->size - s->acked, marks;

    snprintf(an, sizeof an, "%s.ack", s->name);
    if (s->nmarks && seg_span(s, s->acked, s->size, &gone, &marks) < 0)
        gone = 0;               /* counted at most once: better too many */
    w->bytes -= w->bytes < gone ? w->bytes : gone;
    s->acked = s->size;
    if (unlinkat(w->dirfd, s->name, 0) < 0 && errno != ENOENT) {
        snprintf(err, LP_ERRLEN, "--wal %s/%s: %s", w->dir, s->name,
                 strerror(errno));
        seg_free(s);
        return -1;
    }
    unlinkat(w->dirfd, an, 0);
    seg_free(s);
    if (fsync(w->dirfd) < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s: fsync: %s", w->dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

void lp_wal_seg_release(struct lp_wal *w, struct lp_wal_seg *s)
{
    (void)w;
    seg_free(s);
}

const char *lp_wal_seg_name(const struct lp_wal_seg *s)
{
    return s->name;
}
