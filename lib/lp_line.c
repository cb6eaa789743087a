/* lp_line.c -- NDJSON line reader with a hard line-length limit */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_line.h"

#define LP_READ (1024 * 1024)   /* default bytes asked of one read(2) */

int lp_lines_init(struct lp_lines *l, int fd, size_t max_line)
{
    memset(l, 0, sizeof *l);
    l->max_line = max_line;
    l->rsize = LP_READ;
    l->cap = 2 * LP_READ;
    if ((l->buf = malloc(l->cap)) == NULL)
        return -1;
    lp_lines_reset(l, fd);
    return 0;
}

void lp_lines_read_size(struct lp_lines *l, size_t n)
{
    char *p;

    l->rsize = n < 4096 ? 4096 : n;
    if (l->end == 0 && l->cap > 2 * l->rsize &&
        (p = realloc(l->buf, 2 * l->rsize)) != NULL) {
        l->buf = p;
        l->cap = 2 * l->rsize;
    }
}

/* Makes room for one read after the unconsumed bytes: moves them to the
 * front, and grows the buffer while a line can still fit (max_line). */
static int make_room(struct lp_lines *l)
{
    size_t want = l->rsize / 4;

    if (l->cap - l->end >= want)
        return 0;
    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->scanned = l->scanned;        /* relative to start: unchanged */
        l->start = 0;
    }
    if (l->cap - l->end < want) {
        size_t cap = l->cap * 2, limit = l->max_line + 1 + l->rsize;
        char *p;
        if (cap > limit)
            cap = limit;
        if (cap <= l->cap)
            return 0;           /* full size: the line is too long */
        if ((p = realloc(l->buf, cap)) == NULL)
            return -1;
        l->buf = p;
        l->cap = cap;
    }
    return 0;
}

int lp_lines_space(struct lp_lines *l, char **p, size_t *cap)
{
    if (make_room(l) < 0)
        return -1;
    *p = l->buf + l->end;
    *cap = l->cap - l->end;
    return 0;
}

void lp_lines_commit(struct lp_lines *l, size_t n)
{
    l->end += n;
}

void lp_lines_eof(struct lp_lines *l)
{
    l->eof = 1;
}

size_t lp_lines_drop_partial(struct lp_lines *l)
{
    size_t n = l->end - l->start;

    if (n && !l->skipping)
        l->lineno++;
    l->off += n;
    l->start = l->end = l->scanned = 0;
    l->skipping = 0;
    return n;
}

int lp_lines_swap(struct lp_lines *l, char **buf, size_t *cap, size_t *used)
{
    size_t keep = l->end - l->start, ncap = *cap;
    char *nb = *buf;

    if (nb == NULL || ncap < l->cap) {
        if ((nb = realloc(nb, l->cap)) == NULL)
            return -1;
        ncap = l->cap;
    }
    memcpy(nb, l->buf + l->start, keep);
    *used = l->start;
    *buf = l->buf;
    *cap = l->cap;
    l->buf = nb;
    l->cap = ncap;
    l->end = keep;
    l->start = 0;               /* scanned is relative to start: kept */
    return 0;
}

void lp_lines_reset(struct lp_lines *l, int fd)
{
    l->fd = fd;
    l->start = l->end = l->scanned = 0;
    l->lineno = 0;
    l->off = 0;
    l->eof = 0;
    l->fresh = 1;
    l->skipping = 0;
}

void lp_lines_free(struct lp_lines *l)
{
    free(l->buf);
    l->buf = NULL;
}

long lp_lines_fill(struct lp_lines *l)
{
    ssize_t n;
    size_t want;

    if (l->eof)
        return 0;
    if (make_room(l) < 0)
        return -1;
    want = l->cap - l->end;
    if (want > l->rsize)
        want = l->rsize;
    n = read(l->fd, l->buf + l->end, want);
    if (n < 0)
        return -1;
    if (n == 0) {
        l->eof = 1;
        return 0;
    }
    l->end += (size_t)n;
    return n;
}

static void take(struct lp_lines *l, size_t n)
{
    l->start += n;
    l->off += n;
    l->scanned = 0;
}

int lp_lines_next(struct lp_lines *l, struct lp_line *out)
{
    char *nl;
    size_t avail, len, skip;

again:
    avail = l->end - l->start;
    if (l->fresh) {
        /* a BOM may arrive split across reads */
        if (avail < 3 && !l->eof &&
            memcmp(l->buf + l->start, "\xef\xbb\xbf", avail) == 0)
            return LP_LINE_AGAIN;
        l->fresh = 0;
        if (avail >= 3 && memcmp(l->buf + l->start, "\xef\xbb\xbf", 3) == 0) {
            take(l, 3);
            avail -= 3;
        }
    }
    nl = memchr(l->buf + l->start + l->scanned, '\n', avail - l->scanned);

    if (l->skipping) {
        if (avail == 0 && l->eof) {
            /* the long line was the last, without LF: say it ended */
            out->p = l->buf + l->start;
            out->len = 0;
            out->lineno = l->lineno;
            out->start = out->end = l->off;
            out->first = 0;
            out->last = 1;
            l->skipping = 0;
            return LP_LINE_LONG;
        }
        if (avail == 0)
            return LP_LINE_AGAIN;
        len = nl ? (size_t)(nl - (l->buf + l->start)) : avail;
        out->p = l->buf + l->start;
        out->len = len;
        out->lineno = l->lineno;
        out->start = l->off;
        out->first = 0;
        out->last = nl != NULL || l->eof;
        take(l, len + (nl != NULL));
        out->end = l->off;
        if (out->last)
            l->skipping = 0;
        return LP_LINE_LONG;
    }

    if (nl == NULL) {
        l->scanned = avail;
        /* too long even if a CR before the coming LF is dropped? */
        if (avail > l->max_line + 1 ||
            (avail == l->max_line + 1 && l->buf[l->end - 1] != '\r')) {
            /* too long and no end in sight: hand it out in chunks */
            l->lineno++;
            out->p = l->buf + l->start;
            out->len = avail;
            out->lineno = l->lineno;
            out->start = l->off;
            out->first = 1;
            out->last = l->eof;
            take(l, avail);
            out->end = l->off;
            l->skipping = !out->last;
            return LP_LINE_LONG;
        }
        if (!l->eof)
            return LP_LINE_AGAIN;
        if (avail == 0)
            return LP_LINE_EOF;
        len = avail;            /* last line without LF */
        skip = avail;
    } else {
        len = (size_t)(nl - (l->buf + l->start));
        skip = len + 1;
    }
    l->lineno++;
    out->p = l->buf + l->start;
    out->lineno = l->lineno;
    out->start = l->off;
    if (len > 0 && out->p[len - 1] == '\r')
        len--;
    out->len = len;
    take(l, skip);
    out->end = l->off;
    if (len > l->max_line) {
        out->first = out->last = 1;
        return LP_LINE_LONG;
    }
    if (len == 0 && skip == 0)
        goto again;
    return LP_LINE_OK;
}
