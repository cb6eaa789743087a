/* unit-line.c -- lp_lines: LF, CRLF, BOM, offsets, long lines, real read(2) */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lp_fs.h"
#include "lp_line.h"
#include "tap.h"

#define STUCK (-99)             /* next_line: AGAIN after end of input */

/* ---- helpers ----------------------------------------------------------- */

static void wr(int fd, const void *p, size_t n)
{
    if (lp_fs_write_all(fd, p, n) < 0) {
        perror("write");
        exit(2);
    }
}

/* A pipe already holding s[0..n) with its write end closed. */
static int pipe_with(const char *s, size_t n)
{
    int fd[2];

    if (pipe(fd) < 0) {
        perror("pipe");
        exit(2);
    }
    wr(fd[1], s, n);
    close(fd[1]);
    return fd[0];
}

/* An unlinked temp file holding s[0..n), positioned at its start. */
static int file_with(const char *s, size_t n)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd;

    snprintf(path, sizeof path, "%s/unit-line.XXXXXX",
             dir && *dir ? dir : "/tmp");
    if ((fd = mkstemp(path)) < 0) {
        perror("mkstemp");
        exit(2);
    }
    unlink(path);
    wr(fd, s, n);
    if (lseek(fd, 0, SEEK_SET) != 0) {
        perror("lseek");
        exit(2);
    }
    return fd;
}

/* The next line or chunk, filling as needed; STUCK if the reader keeps
 * asking for input after end of input, LP_LINE_ERR on a read error. */
static int next_line(struct lp_lines *l, struct lp_line *ln)
{
    int rc, zeros = 0;

    while ((rc = lp_lines_next(l, ln)) == LP_LINE_AGAIN) {
        long n = lp_lines_fill(l);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return LP_LINE_ERR;
        if (n == 0 && ++zeros > 3)
            return STUCK;
    }
    return rc;
}

/* Checks one result against everything expected of it. */
static void check(int rc, const struct lp_line *ln, int want_rc,
                  const char *s, size_t len, uint64_t lineno, uint64_t start,
                  uint64_t end, const char *desc)
{
    int pass = rc == want_rc;

    if (pass && (rc == LP_LINE_OK || rc == LP_LINE_LONG))
        pass = ln->len == len && memcmp(ln->p, s, len) == 0 &&
               ln->lineno == lineno && ln->start == start &&
               ln->end == end;
    ok(pass, "%s", desc);
    if (!pass) {
        printf("#   want rc %d len %zu line %llu [%llu, %llu)\n", want_rc,
               len, (unsigned long long)lineno, (unsigned long long)start,
               (unsigned long long)end);
        if (rc == LP_LINE_OK || rc == LP_LINE_LONG)
            printf("#   got  rc %d len %zu line %llu [%llu, %llu) '%.*s'\n",
                   rc, ln->len, (unsigned long long)ln->lineno,
                   (unsigned long long)ln->start,
                   (unsigned long long)ln->end,
                   (int)(ln->len > 60 ? 60 : ln->len), ln->p);
        else
            printf("#   got  rc %d\n", rc);
    }
}

/* next_line + check, for an input that is all there. */
static void expect(struct lp_lines *l, int want_rc, const char *s,
                   uint64_t lineno, uint64_t start, uint64_t end,
                   const char *desc)
{
    struct lp_line ln;
    int rc = next_line(l, &ln);

    check(rc, &ln, want_rc, s, s ? strlen(s) : 0, lineno, start, end, desc);
}

/* lp_lines_next once, no fill + check. */
static void expect_now(struct lp_lines *l, int want_rc, const char *s,
                       uint64_t lineno, uint64_t start, uint64_t end,
                       const char *desc)
{
    struct lp_line ln;
    int rc = lp_lines_next(l, &ln);

    check(rc, &ln, want_rc, s, s ? strlen(s) : 0, lineno, start, end, desc);
}

/* Writes s to the pipe and has the reader take it in one read. */
static void feed(struct lp_lines *l, int wfd, const char *s, size_t n)
{
    long got;

    wr(wfd, s, n);
    got = lp_lines_fill(l);
    if (got != (long)n)
        printf("# feed: fill read %ld of %zu bytes\n", got, n);
}

/* ---- the basics -------------------------------------------------------- */

static void test_basic(void)
{
    static const char in[] = "a\nbc\r\n\n\r\nx\ry\nwith\0nul\nlast";
    struct lp_lines l;
    struct lp_line ln;
    int fd = pipe_with(in, sizeof in - 1);

    is_int(lp_lines_init(&l, fd, 100), 0, "init");
    expect(&l, LP_LINE_OK, "a", 1, 0, 2, "LF line");
    expect(&l, LP_LINE_OK, "bc", 2, 2, 6, "CRLF line: CR dropped");
    expect(&l, LP_LINE_OK, "", 3, 6, 7, "empty line: len 0");
    expect(&l, LP_LINE_OK, "", 4, 7, 9, "empty CRLF line: len 0");
    expect(&l, LP_LINE_OK, "x\ry", 5, 9, 13, "CR inside a line kept");
    {
        int rc = next_line(&l, &ln);
        check(rc, &ln, LP_LINE_OK, "with\0nul", 8, 6, 13, 22,
              "NUL inside a line kept");
    }
    expect(&l, LP_LINE_OK, "last", 7, 22, 26, "last line without LF");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "then EOF");
    expect_now(&l, LP_LINE_EOF, NULL, 0, 0, 0, "and EOF again");
    is_int(lp_lines_fill(&l), 0, "fill after EOF: 0");
    is_int(lp_lines_offset(&l), sizeof in - 1, "offset = input size");
    close(fd);

    /* empty input, and input of LFs only */
    fd = pipe_with("", 0);
    lp_lines_reset(&l, fd);
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "empty input: EOF at once");
    is_int(lp_lines_offset(&l), 0, "empty input: offset 0");
    close(fd);
    fd = pipe_with("\n\n", 2);
    lp_lines_reset(&l, fd);
    expect(&l, LP_LINE_OK, "", 1, 0, 1, "LF LF: empty line 1");
    expect(&l, LP_LINE_OK, "", 2, 1, 2, "LF LF: empty line 2");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "LF LF: EOF, no third line");
    close(fd);

    /* the same input from a regular file */
    fd = file_with(in, sizeof in - 1);
    lp_lines_reset(&l, fd);
    expect(&l, LP_LINE_OK, "a", 1, 0, 2, "file: LF line");
    expect(&l, LP_LINE_OK, "bc", 2, 2, 6, "file: CRLF line");
    for (int i = 0; i < 4; i++)
        next_line(&l, &ln);
    expect(&l, LP_LINE_OK, "last", 7, 22, 26, "file: last line");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "file: EOF");
    close(fd);

    /* a read error */
    errno = 0;
    lp_lines_reset(&l, fd);     /* closed now */
    is_int(lp_lines_fill(&l), -1, "fill on a closed fd: -1");
    is_int(errno, EBADF, "fill on a closed fd: errno EBADF");
    lp_lines_free(&l);
    ok(l.buf == NULL, "free clears the buffer");
    lp_lines_free(&l);
    ok(1, "free twice is harmless");
}

/* A non-blocking pipe: EAGAIN is "no input yet", not an error. */
static void test_nonblock(void)
{
    struct lp_lines l;
    int fd[2];

    if (pipe(fd) < 0)
        exit(2);
    fcntl(fd[0], F_SETFL, fcntl(fd[0], F_GETFL) | O_NONBLOCK);
    lp_lines_init(&l, fd[0], 100);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "nothing read yet: AGAIN");
    errno = 0;
    is_int(lp_lines_fill(&l), -1, "fill on an empty non-blocking pipe: -1");
    is_int(errno, EAGAIN, "errno EAGAIN");
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "still AGAIN");
    feed(&l, fd[1], "ab", 2);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "a line without LF yet");
    feed(&l, fd[1], "c\nd", 3);
    expect_now(&l, LP_LINE_OK, "abc", 1, 0, 4, "line across two reads");
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "'d' waits for more");
    close(fd[1]);
    is_int(lp_lines_fill(&l), 0, "writer gone: fill 0");
    expect_now(&l, LP_LINE_OK, "d", 2, 4, 5, "'d' at EOF");
    expect_now(&l, LP_LINE_EOF, NULL, 0, 0, 0, "EOF");
    close(fd[0]);
    lp_lines_free(&l);
}

/* ---- the byte order mark ----------------------------------------------- */

static void bom_case(const char *in, size_t n, const char *first,
                     size_t flen, uint64_t start, uint64_t end,
                     const char *desc)
{
    struct lp_lines l;
    struct lp_line ln;
    int fd = pipe_with(in, n), rc;

    lp_lines_init(&l, fd, 100);
    rc = next_line(&l, &ln);
    if (first)
        check(rc, &ln, LP_LINE_OK, first, flen, 1, start, end, desc);
    else
        check(rc, &ln, LP_LINE_EOF, NULL, 0, 0, 0, 0, desc);
    close(fd);
    lp_lines_free(&l);
}

static void test_bom(void)
{
    static const char in[] = "\xef\xbb\xbf" "a\n\xef\xbb\xbf" "b\n";
    struct lp_lines l;
    int fd[2];

    fd[0] = pipe_with(in, sizeof in - 1);
    lp_lines_init(&l, fd[0], 100);
    expect(&l, LP_LINE_OK, "a", 1, 3, 5, "BOM at start dropped, offsets "
           "count it");
    expect(&l, LP_LINE_OK, "\xef\xbb\xbf" "b", 2, 5, 10,
           "BOM on line 2 kept");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "EOF");
    is_int(lp_lines_offset(&l), 10, "offset includes the BOM");
    close(fd[0]);

    /* a new input: its BOM is dropped too, numbers restart */
    fd[0] = pipe_with("\xef\xbb\xbf" "z\n", 5);
    lp_lines_reset(&l, fd[0]);
    expect(&l, LP_LINE_OK, "z", 1, 3, 5, "after reset: BOM dropped, line 1");
    close(fd[0]);
    lp_lines_free(&l);

    bom_case("\xef\xbb\xbf", 3, NULL, 0, 0, 0, "BOM alone: no line");
    bom_case("\xef\xbb\xbf\n", 4, "", 0, 3, 4, "BOM + LF: one empty line");
    bom_case("\xef\xbb\xbf\r\n", 5, "", 0, 3, 5,
             "BOM + CRLF: one empty line");
    bom_case("\xef\xbb\xbf\xef\xbb\xbfq\n", 8, "\xef\xbb\xbfq", 4, 3, 8,
             "two BOMs: only the first dropped");
    bom_case("\xef\xbb", 2, "\xef\xbb", 2, 0, 2,
             "half a BOM at EOF: a line of 2 bytes");
    bom_case("\xef\xbb\xbe\n", 4, "\xef\xbb\xbe", 3, 0, 4,
             "EF BB BE is not a BOM");
    bom_case(" \xef\xbb\xbf\n", 5, " \xef\xbb\xbf", 4, 0, 5,
             "BOM after a space is data");

    /* the BOM split across reads, one byte at a time */
    if (pipe(fd) < 0)
        exit(2);
    lp_lines_init(&l, fd[0], 100);
    feed(&l, fd[1], "\xef", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "BOM byte 1: AGAIN");
    feed(&l, fd[1], "\xbb", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "BOM byte 2: AGAIN");
    feed(&l, fd[1], "\xbf", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "BOM byte 3: AGAIN");
    feed(&l, fd[1], "x", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "'x': AGAIN");
    feed(&l, fd[1], "\n", 1);
    expect_now(&l, LP_LINE_OK, "x", 1, 3, 5, "split BOM dropped");
    feed(&l, fd[1], "\xef\xbb\xbfy\n", 5);
    expect_now(&l, LP_LINE_OK, "\xef\xbb\xbfy", 2, 5, 10,
               "a later BOM is data");
    close(fd[1]);
    close(fd[0]);
    lp_lines_free(&l);

    if (pipe(fd) < 0)
        exit(2);
    lp_lines_init(&l, fd[0], 100);
    feed(&l, fd[1], "\xef", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "EF: AGAIN");
    feed(&l, fd[1], "\xbb\xbf{}\n", 5);
    expect_now(&l, LP_LINE_OK, "{}", 1, 3, 6, "EF | BB BF {} LF: dropped");
    close(fd[1]);
    close(fd[0]);
    lp_lines_free(&l);

    if (pipe(fd) < 0)
        exit(2);
    lp_lines_init(&l, fd[0], 100);
    feed(&l, fd[1], "\xef\xbb", 2);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "EF BB: AGAIN");
    feed(&l, fd[1], "A\n", 2);
    expect_now(&l, LP_LINE_OK, "\xef\xbb" "A", 1, 0, 4,
               "EF BB | A LF: not a BOM, kept");
    close(fd[1]);
    close(fd[0]);
    lp_lines_free(&l);

    if (pipe(fd) < 0)
        exit(2);
    lp_lines_init(&l, fd[0], 100);
    feed(&l, fd[1], "\xef", 1);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "EF then EOF: AGAIN");
    close(fd[1]);
    is_int(lp_lines_fill(&l), 0, "EF then EOF: fill 0");
    expect_now(&l, LP_LINE_OK, "\xef", 1, 0, 1, "EF at EOF: a 1-byte line");
    expect_now(&l, LP_LINE_EOF, NULL, 0, 0, 0, "EF at EOF: then EOF");
    close(fd[0]);
    lp_lines_free(&l);
}

/* ---- long lines -------------------------------------------------------- */

static void test_long(void)
{
    static const char in[] = "0123456789abcdef\nxy\n01234567\n012345678\n"
                             "01234567\r\n\n";
    struct lp_lines l;
    struct lp_line ln;
    int fd[2], rc;

    /* everything in one read: a long line is one chunk, first and last */
    fd[0] = pipe_with(in, sizeof in - 1);
    lp_lines_init(&l, fd[0], 8);
    rc = next_line(&l, &ln);
    check(rc, &ln, LP_LINE_LONG, "0123456789abcdef", 16, 1, 0, 17,
          "16 bytes, max 8: LP_LINE_LONG");
    ok(rc == LP_LINE_LONG && ln.first == 1 && ln.last == 1,
       "one chunk: first and last");
    expect(&l, LP_LINE_OK, "xy", 2, 17, 20, "next line is normal");
    expect(&l, LP_LINE_OK, "01234567", 3, 20, 29, "exactly 8 bytes: OK");
    rc = next_line(&l, &ln);
    check(rc, &ln, LP_LINE_LONG, "012345678", 9, 4, 29, 39,
          "9 bytes: LP_LINE_LONG");
    ok(ln.first == 1 && ln.last == 1, "9 bytes: first and last");
    expect(&l, LP_LINE_OK, "01234567", 5, 39, 49,
           "8 bytes + CRLF: OK (CR not counted)");
    expect(&l, LP_LINE_OK, "", 6, 49, 50, "empty line after");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "EOF");
    close(fd[0]);
    lp_lines_free(&l);

    /* a long line arriving in pieces: chunks, never buffered whole */
    if (pipe(fd) < 0)
        exit(2);
    lp_lines_init(&l, fd[0], 8);
    feed(&l, fd[1], "0123456", 7);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "7 bytes, no LF: AGAIN");
    feed(&l, fd[1], "789", 3);
    rc = lp_lines_next(&l, &ln);
    check(rc, &ln, LP_LINE_LONG, "0123456789", 10, 1, 0, 10,
          "10 bytes, no LF: first chunk");
    ok(ln.first == 1 && ln.last == 0, "first chunk: first, not last");
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "then AGAIN");
    feed(&l, fd[1], "abcdefghij", 10);
    rc = lp_lines_next(&l, &ln);
    check(rc, &ln, LP_LINE_LONG, "abcdefghij", 10, 1, 10, 20,
          "middle chunk, same line number");
    ok(ln.first == 0 && ln.last == 0, "middle chunk: neither first nor last");
    feed(&l, fd[1], "kl\nxy\n", 6);
    rc = lp_lines_next(&l, &ln);
    check(rc, &ln, LP_LINE_LONG, "kl", 2, 1, 20, 23,
          "last chunk ends at the LF");
    ok(ln.first == 0 && ln.last == 1, "last chunk: last");
    expect_now(&l, LP_LINE_OK, "xy", 2, 23, 26, "the line after is normal");
    is_int(lp_lines_offset(&l), 26, "offset after the long line");
    feed(&l, fd[1], "0123", 4);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0, "4 of 8 bytes: AGAIN");
    feed(&l, fd[1], "4567", 4);
    expect_now(&l, LP_LINE_AGAIN, NULL, 0, 0, 0,
               "8 of 8 bytes, no LF: AGAIN, not LONG");
    feed(&l, fd[1], "\n", 1);
    expect_now(&l, LP_LINE_OK, "01234567", 3, 26, 35,
               "8 bytes then LF in another read: OK");
    feed(&l, fd[1], "01234567\r", 9);
    rc = lp_lines_next(&l, &ln);
    if (rc == LP_LINE_AGAIN) {
        feed(&l, fd[1], "\n", 1);
        rc = lp_lines_next(&l, &ln);
    } else {
        wr(fd[1], "\n", 1);
    }
    ok_fixed(rc == LP_LINE_OK && ln.len == 8 &&
            memcmp(ln.p, "01234567", 8) == 0,
            "lp_lines_next: a line of max_line bytes whose CR and LF arrive "
            "in different reads is cut as LP_LINE_LONG",
            "8 bytes + CR | LF: OK, len 8 (got rc %d, len %zu)", rc,
            rc > 0 ? ln.len : (size_t)0);
    close(fd[1]);
    close(fd[0]);
    lp_lines_free(&l);

    /* a long last line without LF: the chunks still end with "last" */
    for (int how = 0; how < 2; how++) {
        static const char tail[] = "ok\n0123456789abcdefghij";
        char got[64];
        size_t gl = 0;
        int last = 0, first = 0, nchunks = 0, bad = 0;
        int fdi = how ? file_with(tail, sizeof tail - 1)
                      : pipe_with(tail, sizeof tail - 1);
        lp_lines_init(&l, fdi, 8);
        expect(&l, LP_LINE_OK, "ok", 1, 0, 3, "line before a long tail");
        while ((rc = next_line(&l, &ln)) == LP_LINE_LONG) {
            if (ln.lineno != 2 || ln.start != 3 + gl ||
                ln.end != ln.start + ln.len || gl + ln.len > sizeof got)
                bad = 1;
            else
                memcpy(got + gl, ln.p, ln.len);
            gl += ln.len;
            first += ln.first;
            last = ln.last;
            nchunks++;
        }
        ok(!bad && gl == 20 && memcmp(got, tail + 3, 20) == 0 && first == 1,
           "%s: long tail without LF comes back whole, first once",
           how ? "file" : "pipe");
        is_int(rc, LP_LINE_EOF, "%s: then EOF", how ? "file" : "pipe");
        ok_fixed(last == 1, "lp_lines_next: a long last line without LF "
                "never gets a chunk with last set (EOF is seen only after "
                "the chunk)", "%s: the final chunk has last set (%d chunks)",
                how ? "file" : "pipe", nchunks);
        close(fdi);
        lp_lines_free(&l);
    }
}

/* ---- big inputs through real reads ------------------------------------- */

/* Deterministic line i of the big input: its length, byte j, CRLF or not. */
static size_t big_len(size_t i)
{
    if (i % 97 == 5)
        return 100 + i % 300;           /* some over max_line (100) */
    return (i * 37 + i / 7) % 96;
}

static char big_byte(size_t i, size_t j)
{
    return (char)('!' + (i * 31 + j * 7) % 90);
}

static int big_crlf(size_t i)
{
    return i % 5 == 2 && big_len(i) < 90;
}

/* The big input: a BOM, then nlines lines. Returns malloc'd bytes. */
static char *big_input(size_t nlines, size_t *total)
{
    char *in, *p;
    size_t i;

    *total = 3;
    for (i = 0; i < nlines; i++)
        *total += big_len(i) + 1 + big_crlf(i);
    p = in = malloc(*total);
    memcpy(p, "\xef\xbb\xbf", 3);
    p += 3;
    for (i = 0; i < nlines; i++) {
        for (size_t j = 0; j < big_len(i); j++)
            *p++ = big_byte(i, j);
        if (big_crlf(i))
            *p++ = '\r';
        *p++ = '\n';
    }
    return in;
}

/*
 * Reads the big input from fd and checks every line, chunk, number and
 * offset, whatever the read boundaries were.
 */
static void big_read(int fd, size_t nlines, size_t total, const char *how)
{
    struct lp_lines l;
    struct lp_line ln;
    char *acc = malloc(1000);
    size_t i = 0, acc_len = 0;
    size_t bad_ok = 0, bad_long = 0, seen = 0, nlong = 0, nchunked = 0;
    uint64_t off = 3;
    int rc;

    lp_lines_init(&l, fd, 100);
    while ((rc = next_line(&l, &ln)) == LP_LINE_OK || rc == LP_LINE_LONG) {
        size_t want = big_len(i), raw = want + 1 + big_crlf(i);
        if (rc == LP_LINE_OK) {
            int good = ln.lineno == i + 1 && ln.start == off &&
                       ln.end == off + raw && ln.len == want;
            for (size_t j = 0; good && j < want; j++)
                good = ln.p[j] == big_byte(i, j);
            if (!good && bad_ok++ == 0)
                printf("#   line %zu wrong: len %zu start %llu\n", i + 1,
                       ln.len, (unsigned long long)ln.start);
            if (want > 100 && bad_ok++ == 0)
                printf("#   line %zu of %zu bytes came back OK\n", i + 1,
                       want);
            off += raw;
            i++;
            seen++;
            continue;
        }
        /* a chunk: contiguous, same line number, adds up to the line */
        if (ln.first) {
            acc_len = 0;
            nlong++;
            nchunked += !ln.last;
            if (ln.start != off && bad_long++ == 0)
                printf("#   line %zu: first chunk at %llu, want %llu\n",
                       i + 1, (unsigned long long)ln.start,
                       (unsigned long long)off);
        }
        if (ln.lineno != i + 1 || ln.start != off + acc_len ||
            acc_len + ln.len > 1000) {
            if (bad_long++ == 0)
                printf("#   line %zu: chunk line %llu start %llu\n", i + 1,
                       (unsigned long long)ln.lineno,
                       (unsigned long long)ln.start);
        } else {
            memcpy(acc + acc_len, ln.p, ln.len);
            acc_len += ln.len;
        }
        if (ln.last) {
            int good = acc_len == want && ln.end == off + raw;
            for (size_t j = 0; good && j < want; j++)
                good = acc[j] == big_byte(i, j);
            if (!good && bad_long++ == 0)
                printf("#   line %zu: chunks add up to %zu bytes, want "
                       "%zu\n", i + 1, acc_len, want);
            off += raw;
            i++;
            seen++;
        }
    }
    is_int(rc, LP_LINE_EOF, "%s: ends with EOF", how);
    is_int(seen, nlines, "%s: %zu lines seen", how, nlines);
    is_int(bad_ok, 0, "%s: every normal line exact (content, number, "
           "offsets)", how);
    ok(nlong == 679 && bad_long == 0,
       "%s: %zu long lines come back exact (%zu of them in several chunks)",
       how, nlong, nchunked);
    is_int(lp_lines_offset(&l), total, "%s: offset = input size", how);
    lp_lines_free(&l);
    free(acc);
}

/*
 * About 3 MiB of lines of 0..399 bytes (max_line 100), a BOM first, some
 * CRLF: once from a file in reads of 1 MiB (refills and compaction), once
 * from a pipe written in pieces of 1..3000 bytes by a child (lines and
 * long lines cut at many places).
 */
static void test_big(void)
{
    const size_t nlines = 66000;
    size_t total;
    char *in = big_input(nlines, &total);
    int fd, pfd[2], status = -1;
    pid_t pid;

    fd = file_with(in, total);
    big_read(fd, nlines, total, "big file");
    close(fd);

    if (pipe(pfd) < 0)
        exit(2);
#ifdef F_SETPIPE_SZ
    fcntl(pfd[1], F_SETPIPE_SZ, 4096);  /* small reads: many boundaries */
#endif
    fflush(stdout);
    if ((pid = fork()) < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        size_t k = 0;
        close(pfd[0]);
        for (size_t o = 0; o < total; k++) {
            size_t n = 1 + (k * 7919) % 3000;
            if (n > total - o)
                n = total - o;
            wr(pfd[1], in + o, n);
            o += n;
        }
        _exit(0);
    }
    close(pfd[1]);
    big_read(pfd[0], nlines, total, "big pipe");
    close(pfd[0]);
    waitpid(pid, &status, 0);
    is_int(status, 0, "writer child exited 0");
    free(in);
}

/* A 3 MiB line: many chunks, memory fixed, the next line intact. */
static void test_huge_line(void)
{
    const size_t n = 3 * 1024 * 1024 + 17;
    struct lp_lines l;
    struct lp_line ln;
    char *in = malloc(n + 4);
    size_t got = 0, cap;
    int fd, rc, chunks = 0, bad = 0, firsts = 0, lasts = 0;

    for (size_t j = 0; j < n; j++)
        in[j] = (char)('a' + j % 26);
    memcpy(in + n, "\nok\n", 4);
    fd = file_with(in, n + 4);
    lp_lines_init(&l, fd, 1000);
    cap = l.cap;
    while ((rc = next_line(&l, &ln)) == LP_LINE_LONG) {
        if (ln.lineno != 1 || ln.start != got || got + ln.len > n ||
            memcmp(ln.p, in + got, ln.len) != 0)
            bad++;
        got += ln.len;
        firsts += ln.first;
        lasts += ln.last;
        chunks++;
        if (ln.last)
            break;
    }
    ok(bad == 0 && got == n, "3 MiB line: %d chunks add up to the line",
       chunks);
    ok(chunks >= 3 && firsts == 1 && lasts == 1,
       "3 MiB line: one first chunk, one last chunk");
    is_int(ln.end, n + 1, "3 MiB line: last chunk ends after the LF");
    ok(l.cap <= 2 * 1024 * 1024 && l.cap <= cap + 1000 + 1 + 1024 * 1024,
       "the buffer stays within max_line + one read (%zu)", l.cap);
    expect(&l, LP_LINE_OK, "ok", 2, n + 1, n + 4, "the next line is normal");
    expect(&l, LP_LINE_EOF, NULL, 0, 0, 0, "then EOF");
    close(fd);
    lp_lines_free(&l);
    free(in);
}

/*
 * lp_lines_swap, as logpipe-replay uses it: the lines returned since the
 * last exchange are kept in the buffer handed out, and checked there right
 * after the exchange and again after the next one, while reading goes on
 * in the other buffers (three in turn); every line of the big input, with
 * its CRLFs, long lines and 4 KiB reads, comes through.
 */
struct kept {
    size_t off, len, i;
};

static int kept_bad(const char *b, size_t used, const struct kept *k,
                    size_t n)
{
    int bad = 0;

    for (size_t x = 0; x < n; x++) {
        if (k[x].off + k[x].len > used || k[x].len != big_len(k[x].i))
            bad++;
        else
            for (size_t j = 0; j < k[x].len; j++)
                if (b[k[x].off + j] != big_byte(k[x].i, j)) {
                    bad++;
                    break;
                }
    }
    return bad;
}

static void test_swap(void)
{
    const size_t nlines = 66000;
    size_t total, used = 0, prev_used = 0, cap[3] = { 0, 0, 0 };
    size_t nkept = 0, nprev = 0, seen = 0;
    char *in = big_input(nlines, &total), *buf[3] = { NULL, NULL, NULL };
    struct kept *kept = malloc(nlines * sizeof *kept);
    struct kept *prev = malloc(nlines * sizeof *prev);
    struct lp_lines l;
    struct lp_line ln;
    int fd = file_with(in, total), rc, bad = 0, swaps = 0, k = 0, pk = -1;

    lp_lines_init(&l, fd, 100);
    lp_lines_read_size(&l, 4096);
    for (;;) {
        rc = lp_lines_next(&l, &ln);
        if (rc == LP_LINE_OK) {
            kept[nkept].off = (size_t)(ln.p - l.buf);
            kept[nkept].len = ln.len;
            kept[nkept].i = ln.lineno - 1;
            nkept++;
            continue;
        }
        if (rc == LP_LINE_LONG) {
            seen += ln.first;
            continue;
        }
        if (rc != LP_LINE_AGAIN && rc != LP_LINE_EOF) {
            bad++;
            break;
        }
        if (nkept > 0) {
            if (lp_lines_swap(&l, &buf[k], &cap[k], &used) < 0) {
                bad++;
                break;
            }
            swaps++;
            bad += kept_bad(buf[k], used, kept, nkept);
            if (pk >= 0)        /* the batch before: untouched */
                bad += kept_bad(buf[pk], prev_used, prev, nprev);
            seen += nkept;
            memcpy(prev, kept, nkept * sizeof *kept);
            nprev = nkept;
            prev_used = used;
            pk = k;
            k = (k + 1) % 3;
            nkept = 0;
        }
        if (rc == LP_LINE_EOF)
            break;
        if (lp_lines_fill(&l) < 0) {
            bad++;
            break;
        }
    }
    ok(bad == 0 && seen == nlines, "swap: %zu lines of %zu, each intact in "
       "the buffer it was handed out in", seen, nlines);
    ok(swaps > 100, "swap: %d exchanges", swaps);
    close(fd);
    lp_lines_free(&l);
    for (int i = 0; i < 3; i++)
        free(buf[i]);
    free(kept);
    free(prev);
    free(in);
}

int main(void)
{
    test_basic();
    test_nonblock();
    test_bom();
    test_long();
    test_big();
    test_huge_line();
    test_swap();
    return tap_done();
}
