/* lp_line.h -- NDJSON line reader with a hard line-length limit */
#ifndef LP_LINE_H
#define LP_LINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Lines are returned in place, inside the reader's buffer, valid until the
 * next call. A UTF-8 BOM at the start of input and a CR before LF are
 * dropped. A line longer than max_line is never buffered whole: it comes
 * back in chunks (LP_LINE_LONG) so a caller can report it and copy it
 * verbatim, and memory stays at max_line + one read.
 */
struct lp_lines {
    int fd;
    char *buf;
    size_t cap, start, end, scanned;
    size_t max_line;
    size_t rsize;               /* bytes asked of one read(2) */
    uint64_t lineno;            /* lines seen so far in this input */
    uint64_t off;               /* input offset of buf[start] */
    int eof, fresh, skipping;
};

struct lp_line {
    const char *p;
    size_t len;
    uint64_t lineno;            /* 1-based */
    uint64_t start;             /* input offset of the first byte */
    uint64_t end;               /* input offset after the line's LF */
    int first, last;            /* LP_LINE_LONG: first and last chunk */
};

enum {
    LP_LINE_ERR = -2,           /* read error: errno set */
    LP_LINE_EOF = -1,
    LP_LINE_AGAIN = 0,          /* call lp_lines_fill */
    LP_LINE_OK = 1,
    LP_LINE_LONG = 2            /* a chunk of a line over max_line */
};

/* Returns 0, or -1 when out of memory. The buffer starts small and grows
 * to max_line + one read when a line needs it. */
int lp_lines_init(struct lp_lines *l, int fd, size_t max_line);

/* Sets the size of one read (default 1 MiB; smaller for many readers). */
void lp_lines_read_size(struct lp_lines *l, size_t n);

/* For input that does not come from read(2) (a gzip stream): room for
 * more bytes at *p, at most *cap; then lp_lines_commit the bytes written
 * there. Returns -1 when out of memory. */
int lp_lines_space(struct lp_lines *l, char **p, size_t *cap);
void lp_lines_commit(struct lp_lines *l, size_t n);
/* No more input: the last line may lack its LF. */
void lp_lines_eof(struct lp_lines *l);

/* Drops the bytes of an unfinished line (input was cut off mid-line).
 * Returns how many; that line still counts in lineno. */
size_t lp_lines_drop_partial(struct lp_lines *l);
/*
 * Hands the buffer, and in it every line returned so far, to the caller,
 * in exchange for *buf (*cap bytes, malloc'd; NULL and 0 for a new one):
 * the bytes not yet consumed move to the start of that one, which grows
 * as needed. Afterwards *buf and *cap are the old buffer, whose first
 * *used bytes hold the lines returned (each where it was returned); the
 * caller owns it until it gives it back in the next exchange or frees it.
 * Lets a reader keep a batch of lines without copying them. Returns 0,
 * or -1 when out of memory (nothing changed).
 */
int lp_lines_swap(struct lp_lines *l, char **buf, size_t *cap, size_t *used);

/* Starts a new input on fd, keeping the buffer. */
void lp_lines_reset(struct lp_lines *l, int fd);
void lp_lines_free(struct lp_lines *l);

/* One read(2). Returns bytes read, 0 at end of input, -1 on error
 * (errno; EAGAIN/EINTR mean try again). */
long lp_lines_fill(struct lp_lines *l);

/* The next line or chunk; see the enum. */
int lp_lines_next(struct lp_lines *l, struct lp_line *out);

/* Input bytes consumed so far (lines returned whole or in chunks). */
static inline uint64_t lp_lines_offset(const struct lp_lines *l)
{
    return l->off;
}

#endif
