/* unit-wal.c -- lp_wal: records, torn tails at every offset, progress,
 * locks */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_parse.h"
#include "lp_resp.h"
#include "lp_wal.h"
#include "tap.h"

static char root[] = "/tmp/unit-wal.XXXXXX";

static void rmrf(const char *dir)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

/* RESP of XADD key * data <ev> */
static void xadd(struct lp_buf *b, const char *key, const char *ev)
{
    const char *argv[5] = { "XADD", key, "*", "data", ev };
    size_t lens[5];

    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    lp_resp_command(b, 5, argv, lens);
}

/* The one segment in dir, or "" */
static void segment_name(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    out[0] = '\0';
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 8 && strncmp(de->d_name, "wal-", 4) == 0 &&
            strcmp(de->d_name + n - 4, ".log") == 0)
            snprintf(out, cap, "%s", de->d_name);
    }
    if (d)
        closedir(d);
}

/* Reads every record the WAL in dir hands out; returns their count and
 * checks each is one of ours ("{"n":<i>}" in order). */
static int drain_all(const char *dir, int *in_order, int ack)
{
    char err[LP_ERRLEN];
    struct lp_wal *w = lp_wal_open(dir, 0, NULL, err);
    struct lp_wal_seg *s;
    int count = 0;

    *in_order = 1;
    if (w == NULL) {
        printf("# open: %s\n", err);
        return -1;
    }
    while (lp_wal_take(w, &s, err) == 1) {
        const char *rec, *key, *ev;
        size_t len, kl, el;
        uint64_t end = 0;
        while (lp_wal_seg_next(s, &rec, &len, &end)) {
            char want[32];
            snprintf(want, sizeof want, "{\"n\":%d}", count);
            if (!lp_wal_event(rec, len, &key, &kl, &ev, &el) ||
                el != strlen(want) || memcmp(ev, want, el) != 0)
                *in_order = 0;
            count++;
        }
        if (ack) {
            lp_wal_seg_ack(w, s, end, err);
            lp_wal_seg_done(w, s, err);
        } else {
            lp_wal_seg_release(w, s);
            break;
        }
    }
    lp_wal_close(w);
    return count;
}

static void test_codec(void)
{
    struct lp_buf b = { 0 }, seg = { 0 };
    char hdr[LP_WAL_REC];
    const char *rec, *key, *ev;
    size_t pos = 0, len, kl, el;

    xadd(&b, "logs:stream", "{\"a\":1}");
    lp_buf_add(&seg, LP_WAL_MAGIC, LP_WAL_HDR);
    lp_wal_encode(hdr, b.p, b.len);
    lp_buf_add(&seg, hdr, sizeof hdr);
    lp_buf_add(&seg, b.p, b.len);
    is_int(lp_wal_decode(seg.p, seg.len, &pos, &rec, &len), 1, "decode");
    ok(len == b.len && memcmp(rec, b.p, len) == 0, "record round trip");
    is_int(lp_wal_decode(seg.p, seg.len, &pos, &rec, &len), 0, "clean end");
    ok(lp_wal_event(rec, len, &key, &kl, &ev, &el) == 1 &&
       kl == 11 && memcmp(key, "logs:stream", 11) == 0 &&
       el == 7 && memcmp(ev, "{\"a\":1}", 7) == 0, "event and key found");
    seg.p[LP_WAL_HDR + LP_WAL_REC + 3] ^= 1;
    pos = 0;
    is_int(lp_wal_decode(seg.p, seg.len, &pos, &rec, &len), -1,
           "a flipped bit fails the CRC");
    pos = 0;
    is_int(lp_wal_decode("NOTAWAL!", 8, &pos, &rec, &len), -1,
           "a wrong header is refused");
    {
        const char *argv[3] = { "PING", "a", "b" };
        size_t lens[3] = { 4, 1, 1 };
        b.len = 0;
        lp_resp_command(&b, 3, argv, lens);
        is_int(lp_wal_event(b.p, b.len, &key, &kl, &ev, &el), 0,
               "not an XADD: no event");
        is_int(lp_wal_event("*5\r\n$4\r\nXADD", 12, &key, &kl, &ev, &el), 0,
               "a cut command: no event, no crash");
    }
    lp_buf_free(&b);
    lp_buf_free(&seg);
}

/* A producer's record: "#<pos> <name>[ <cursor>]\n" then the command;
 * old records (the command alone) have none; lp_wal_event reads past it;
 * lp_wal_max_pos finds the highest position of a name in a directory. */
static void test_producer_records(void)
{
    struct lp_buf b = { 0 }, x = { 0 };
    const char *name, *cur, *key, *ev;
    size_t nl, cl, cmd, kl, el;
    uint64_t pos, max;
    char dir[300], err[LP_ERRLEN];
    struct lp_wal *w;

    xadd(&x, "logs:stream", "{\"a\":1}");
    lp_buf_adds(&b, "#42 host-1:77:1700000000000\n");
    lp_buf_add(&b, x.p, x.len);
    ok(lp_wal_producer(b.p, b.len, &name, &nl, &pos, &cur, &cl, &cmd) == 1 &&
       pos == 42 && nl == 23 && memcmp(name, "host-1:77:1700000000000", 23)
       == 0 && cl == 0 && cmd == 28 && b.len - cmd == x.len,
       "a producer line: name, position, no cursor, the command after it");
    ok(lp_wal_event(b.p, b.len, &key, &kl, &ev, &el) == 1 && kl == 11 &&
       el == 7 && memcmp(ev, "{\"a\":1}", 7) == 0,
       "lp_wal_event reads the command after the producer line");
    b.len = 0;
    lp_buf_adds(&b, "#7 jr s=ab;i=3f\n");
    lp_buf_add(&b, x.p, x.len);
    ok(lp_wal_producer(b.p, b.len, &name, &nl, &pos, &cur, &cl, &cmd) == 1 &&
       pos == 7 && nl == 2 && cl == 9 && memcmp(cur, "s=ab;i=3f", 9) == 0,
       "a cursor after the name");
    is_int(lp_wal_producer(x.p, x.len, &name, &nl, &pos, &cur, &cl, &cmd), 0,
           "an old record: no producer");
    {
        static const char *bad[] = { "#0 a\n", "# a\n", "#12\n", "#12 \n",
                                     "#1 a", "#99999999999999999999999 a\n",
                                     "#x a\n" };
        int refused = 1;
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
            refused &= lp_wal_producer(bad[i], strlen(bad[i]), &name, &nl,
                                       &pos, &cur, &cl, &cmd) == 0;
        ok(refused, "malformed producer lines are refused");
    }
    snprintf(dir, sizeof dir, "%s/prod", root);
    w = lp_wal_open(dir, 0, NULL, err);
    ok(w != NULL, "opened (%s)", w ? "" : err);
    if (w) {
        const char *recs[] = { "#5 p1\n", "#3 p2\n", "#9 p1\n", "#4 p1\n" };
        for (size_t i = 0; i < 4; i++) {
            b.len = 0;
            lp_buf_adds(&b, recs[i]);
            lp_buf_add(&b, x.p, x.len);
            lp_wal_append(w, b.p, b.len, err);
        }
        lp_wal_sync(w, err);
        ok(lp_wal_max_pos(w, "p1", &max, err) == 0 && max == 9,
           "the highest position of p1 in the WAL: 9");
        ok(lp_wal_max_pos(w, "p3", &max, err) == 0 && max == 0,
           "none of p3: 0");
        lp_wal_close(w);
    }
    lp_buf_free(&b);
    lp_buf_free(&x);
}

/* Writes n records with lp_wal into dir; returns the segment's size. */
static off_t write_records(const char *dir, int n, char *name, size_t cap)
{
    char err[LP_ERRLEN], path[600];
    struct lp_wal *w = lp_wal_open(dir, 0, NULL, err);
    struct lp_buf b = { 0 };
    struct stat st;

    for (int i = 0; i < n; i++) {
        char ev[32];
        snprintf(ev, sizeof ev, "{\"n\":%d}", i);
        b.len = 0;
        xadd(&b, "logs:stream", ev);
        lp_wal_append(w, b.p, b.len, err);
    }
    lp_wal_sync(w, err);
    lp_wal_close(w);
    lp_buf_free(&b);
    segment_name(dir, name, cap);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    stat(path, &st);
    return st.st_size;
}

/* Cut the segment at every byte offset: every complete record before the
 * cut comes back, in order, and nothing else. */
static void test_torn_everywhere(void)
{
    char dir[600], name[128], path[800], tmpl[700];
    int n = 6, bad = 0;
    off_t size, rec_end[16];
    int k = 0;

    snprintf(dir, sizeof dir, "%s/torn", root);
    size = write_records(dir, n, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmpl, sizeof tmpl, "%s/segment.copy", root);
    {
        /* record boundaries, from the file itself */
        FILE *f = fopen(path, "rb");
        char *buf = malloc((size_t)size);
        size_t pos = 0, len;
        const char *rec;
        if (fread(buf, 1, (size_t)size, f) != (size_t)size)
            bad = 1;
        fclose(f);
        while (lp_wal_decode(buf, (size_t)size, &pos, &rec, &len) == 1)
            rec_end[k++] = (off_t)pos;
        /* keep a copy to cut from */
        f = fopen(tmpl, "wb");
        fwrite(buf, 1, (size_t)size, f);
        fclose(f);
        free(buf);
    }
    is_int(k, n, "%d records written", n);
    for (off_t cut = 0; cut <= size; cut++) {
        int complete = 0, in_order, got;
        char cmd[2000];
        for (int i = 0; i < k; i++)
            complete += rec_end[i] <= cut;
        snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'",
                 (long long)cut, tmpl, path);
        if (system(cmd) != 0)
            bad = 1;
        got = drain_all(dir, &in_order, 0);
        if (got != complete || !in_order) {
            printf("# cut at %lld: got %d records, want %d%s\n",
                   (long long)cut, got, complete,
                   in_order ? "" : " (out of order)");
            bad++;
        }
    }
    ok(bad == 0, "cut at each of %lld offsets: every complete record "
       "recovered, in order", (long long)size + 1);
    rmrf(dir);
}

static void test_progress_and_locks(void)
{
    char dir[600], name[128], path[800], err[LP_ERRLEN];
    struct lp_wal *w;
    struct lp_wal_seg *s;
    const char *rec;
    size_t len;
    uint64_t end = 0;
    int in_order, fd;

    snprintf(dir, sizeof dir, "%s/progress", root);
    write_records(dir, 10, name, sizeof name);
    w = lp_wal_open(dir, 0, NULL, err);
    is_int(lp_wal_take(w, &s, err), 1, "a segment to send");
    for (int i = 0; i < 4; i++)
        lp_wal_seg_next(s, &rec, &len, &end);
    is_int(lp_wal_seg_ack(w, s, end, err), 0, "4 records acknowledged");
    lp_wal_seg_release(w, s);
    lp_wal_close(w);
    /* a new process sees only the 6 left */
    {
        struct lp_wal *w2 = lp_wal_open(dir, 0, NULL, err);
        struct lp_wal_seg *s2;
        int left = 0;
        lp_wal_take(w2, &s2, err);
        while (lp_wal_seg_next(s2, &rec, &len, &end))
            left++;
        is_int(left, 6, "after a restart, the 6 not acknowledged");
        lp_wal_seg_release(w2, s2);
        lp_wal_close(w2);
    }
    /* a damaged .ack: everything again (duplicates, never loss) */
    snprintf(path, sizeof path, "%s/%s.ack", dir, name);
    fd = open(path, O_WRONLY);
    if (fd >= 0) {
        if (pwrite(fd, "garbage", 7, 0) != 7)
            printf("# pwrite failed\n");
        close(fd);
    }
    is_int(drain_all(dir, &in_order, 0), 10,
           "a damaged .ack: all 10 records sent again");

    /* a segment someone else holds is not taken, not cut */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDWR);
    flock(fd, LOCK_EX);
    w = lp_wal_open(dir, 0, NULL, err);
    is_int(lp_wal_take(w, &s, err), 2, "a locked segment is left alone, and "
           "nothing after it is taken (2: another's)");
    lp_wal_close(w);
    close(fd);
    is_int(drain_all(dir, &in_order, 1), 10, "free again: taken, all 10");
    segment_name(dir, name, sizeof name);
    is_str(name, "", "done: the segment is deleted");
    rmrf(dir);
}

/* Reads the records seg hands out from where it is; their "n" numbers
 * go to got[] (at most cap), their ends to ends[]. Returns the count. */
static int read_ns(struct lp_wal_seg *s, int *got, uint64_t *ends, int cap)
{
    const char *rec, *key, *ev;
    size_t len, kl, el;
    uint64_t end;
    int k = 0;

    while (k < cap && lp_wal_seg_next(s, &rec, &len, &end)) {
        got[k] = -1;
        if (lp_wal_event(rec, len, &key, &kl, &ev, &el) && el > 5)
            got[k] = atoi(ev + 5);
        ends[k++] = end;
    }
    return k;
}

/* Records acknowledged out of order (an error reply in the middle of a
 * batch) are marked: skipped after a rewind and by a later process, not
 * counted as waiting, and the segment stays whole for every reader. */
static void test_marks(void)
{
    char dir[600], name[128], path[800], err[LP_ERRLEN], hdr[LP_WAL_HDR];
    struct lp_wal *w;
    struct lp_wal_seg *s;
    struct lp_buf b = { 0 };
    int got[16], n, fd;
    uint64_t ends[16], bytes0, rec_bytes;

    snprintf(dir, sizeof dir, "%s/marks", root);
    write_records(dir, 6, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    w = lp_wal_open(dir, 0, NULL, err);
    bytes0 = lp_wal_bytes(w);
    rec_bytes = bytes0 / 6;             /* all six are the same size */
    lp_wal_take(w, &s, err);
    n = read_ns(s, got, ends, 16);
    is_int(n, 6, "6 records handed out");
    /* Redis stored 0 and 1, refused 2, stored 3 and 5, refused 4 */
    is_int(lp_wal_seg_mark(w, s, ends[3], (size_t)(ends[3] - ends[2]) -
                           LP_WAL_REC, err), 0, "record 3 marked");
    is_int(lp_wal_seg_mark(w, s, ends[5], (size_t)(ends[5] - ends[4]) -
                           LP_WAL_REC, err), 0, "record 5 marked");
    is_int(lp_wal_seg_mark(w, s, ends[5], (size_t)(ends[5] - ends[4]) -
                           LP_WAL_REC, err), 0, "marking twice is harmless");
    ok(lp_wal_seg_mark(w, s, ends[5] - 1, 10, err) < 0,
       "no record there: refused (%s)", err);
    is_int(lp_wal_seg_ack(w, s, ends[1], err), 0, "0 and 1 acknowledged");
    ok(lp_wal_bytes(w) == bytes0 - 4 * rec_bytes,
       "waiting: the 2 refused only (%llu bytes)",
       (unsigned long long)lp_wal_bytes(w));
    lp_wal_seg_rewind(s);
    n = read_ns(s, got, ends, 16);
    ok(n == 2 && got[0] == 2 && got[1] == 4,
       "after a rewind: the refused 2 and 4, and nothing else");
    lp_wal_seg_release(w, s);
    lp_wal_close(w);

    fd = open(path, O_RDONLY);
    ok(fd >= 0 && pread(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr &&
       memcmp(hdr, LP_WAL_MAGIC3, LP_WAL_HDR) == 0,
       "a segment of this version keeps its header when marked (LPWAL03 "
       "may hold marks)");
    if (fd >= 0)
        close(fd);
    {
        /* every record is still a valid record, the marked ones say so */
        FILE *f = fopen(path, "rb");
        char buf[4096];
        size_t size = f ? fread(buf, 1, sizeof buf, f) : 0, pos = 0, len;
        const char *rec;
        int k = 0, marked = 0, rc;
        if (f)
            fclose(f);
        while ((rc = lp_wal_decode(buf, size, &pos, &rec, &len)) == 1) {
            if (lp_wal_rec_done(rec))
                marked |= 1 << k;
            k++;
        }
        ok(rc == 0 && k == 6 && marked == (1 << 3 | 1 << 5),
           "decoded whole: 6 records, 3 and 5 marked");
        /* one flipped bit of a mark is damage, not another mark; ends[0]
         * is where the marked record 3 starts (read after the rewind) */
        buf[(size_t)ends[0] + 3] ^= 0x80;
        pos = 0;
        k = 0;
        while ((rc = lp_wal_decode(buf, size, &pos, &rec, &len)) == 1)
            k++;
        ok(rc == -1 && k == 3, "half a mark is damage: 3 records, then -1");
    }

    w = lp_wal_open(dir, 0, NULL, err);
    ok(lp_wal_bytes(w) == 2 * rec_bytes,
       "a later process counts the 2 waiting (%llu bytes)",
       (unsigned long long)lp_wal_bytes(w));
    lp_wal_take(w, &s, err);
    n = read_ns(s, got, ends, 16);
    ok(n == 2 && got[0] == 2 && got[1] == 4, "and is handed 2 and 4 only");
    /* 2 stored now, 4 refused again: 4 is all that is left */
    is_int(lp_wal_seg_ack(w, s, ends[0], err), 0, "2 acknowledged");
    ok(lp_wal_bytes(w) == rec_bytes, "1 record waiting (%llu bytes)",
       (unsigned long long)lp_wal_bytes(w));
    lp_wal_seg_rewind(s);
    n = read_ns(s, got, ends, 16);
    ok(n == 1 && got[0] == 4, "after a rewind: 4");
    is_int(lp_wal_seg_ack(w, s, ends[0], err), 0, "4 acknowledged");
    ok(lp_wal_bytes(w) == 0, "nothing waiting (%llu)",
       (unsigned long long)lp_wal_bytes(w));
    n = read_ns(s, got, ends, 16);
    is_int(n, 0, "the marked 5 at the end is not handed out");
    is_int(lp_wal_seg_done(w, s, err), 0, "the segment is done");
    is_int(lp_wal_pending(w, err), 0, "nothing pending");
    lp_wal_close(w);

    /* a segment whose records left are all marked is deleted when taken */
    write_records(dir, 3, name, sizeof name);
    w = lp_wal_open(dir, 0, NULL, err);
    lp_wal_take(w, &s, err);
    n = read_ns(s, got, ends, 16);
    lp_wal_seg_mark(w, s, ends[1], (size_t)(ends[1] - ends[0]) - LP_WAL_REC,
                    err);
    lp_wal_seg_mark(w, s, ends[2], (size_t)(ends[2] - ends[1]) - LP_WAL_REC,
                    err);
    lp_wal_seg_ack(w, s, ends[0], err);
    lp_wal_seg_release(w, s);
    lp_wal_close(w);
    w = lp_wal_open(dir, 0, NULL, err);
    segment_name(dir, name, sizeof name);
    ok(name[0] == '\0' && lp_wal_bytes(w) == 0,
       "all marked or acknowledged: deleted at the next open");
    lp_wal_close(w);
    lp_buf_free(&b);
    rmrf(dir);
}

/* The notices lp_wal says (lp_notice.h), kept for the test to look at. */
struct heard {
    char msg[4][LP_NOTICELEN];
    int level[4], n;
};

static void hear(void *ctx, int level, const char *msg)
{
    struct heard *h = ctx;

    if (h->n < 4) {
        snprintf(h->msg[h->n], sizeof h->msg[0], "%s", msg);
        h->level[h->n] = level;
    }
    h->n++;
}

/* lib does not print: a torn tail cut and a file that is not a segment
 * are said through the notify the WAL was opened with, in its words. */
static void test_notices(void)
{
    char dir[600], name[128], path[800], err[LP_ERRLEN], want[1200];
    struct heard h = { .n = 0 };
    struct lp_notify nt = { hear, &h };
    struct lp_wal *w;
    struct lp_wal_seg *s;
    off_t size;
    FILE *f;

    snprintf(dir, sizeof dir, "%s/notices", root);
    size = write_records(dir, 3, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (truncate(path, size - 5) < 0)
        printf("# truncate failed\n");
    snprintf(path, sizeof path, "%s/wal-0-0.log", dir);
    if ((f = fopen(path, "wb")) != NULL) {
        fputs("not a segment at all\n", f);
        fclose(f);
    }
    w = lp_wal_open(dir, 0, &nt, err);
    ok(w != NULL, "opened (%s)", w ? "" : err);
    is_int(h.n, 2, "two notices at open");
    snprintf(want, sizeof want, "--wal %s/wal-0-0.log: not a logpipe WAL "
             "segment: left alone", dir);
    is_str(h.msg[0], want, "a foreign file: said, in these words");
    is_int(h.level[0], LP_NOTICE_WARN, "as a warning");
    snprintf(want, sizeof want, "--wal %s/%s: cutting a torn tail of %lld "
             "bytes (a record cut short or damaged)", dir, name,
             (long long)(size - 5 - (size - LP_WAL_HDR) / 3 * 2 -
                         LP_WAL_HDR));
    is_str(h.msg[1], want, "a torn tail: said, in these words");
    is_int(h.level[1], LP_NOTICE_WARN, "as a warning");
    h.n = 0;
    is_int(lp_wal_take(w, &s, err), 1, "the mended segment is taken");
    is_int(h.n, 1, "the foreign file is said again when passed over");
    lp_wal_seg_release(w, s);
    lp_wal_close(w);
    h.n = 0;
    w = lp_wal_open(dir, 0, NULL, err);
    is_int(h.n, 0, "a NULL notify is allowed: nothing said");
    lp_wal_close(w);
    rmrf(dir);
}

static void test_limits(void)
{
    char dir[600], err[LP_ERRLEN];
    struct lp_wal *w;
    struct lp_buf b = { 0 };
    int rc = 0, i;

    snprintf(dir, sizeof dir, "%s/limit", root);
    w = lp_wal_open(dir, 1000, NULL, err);
    xadd(&b, "logs:stream", "{\"n\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}");
    for (i = 0; i < 100 && (rc = lp_wal_append(w, b.p, b.len, err)) == 0; i++)
        ;
    is_int(rc, -2, "--wal-max: refused past the limit (%s)", err);
    ok(lp_wal_bytes(w) <= 1000, "the WAL stays under its limit (%llu)",
       (unsigned long long)lp_wal_bytes(w));
    ok(i > 5, "%d records fitted", i);
    lp_wal_close(w);
    lp_buf_free(&b);
    rmrf(dir);
}

int main(void)
{
    if (mkdtemp(root) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    test_codec();
    test_producer_records();
    test_torn_everywhere();
    test_progress_and_locks();
    test_marks();
    test_notices();
    test_limits();
    rmrf(root);
    return tap_done();
}
