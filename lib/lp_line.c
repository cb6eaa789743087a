/* lp_line.c -- NDJSON line reader with a hard line-length limit */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_line.h"

#define LP_READ (1024 * 1024)   /* bytes asked of one read(2) */

int lp_lines_init(struct lp_lines *l, int fd, size_t max_line)
{
    memset(l, 0, sizeof *l);
    l->max_line = max_line;
    l->cap = max_line + 1 + LP_READ;
    if ((l->buf = malloc(l->cap)) == NULL)
        return -1;
    lp_lines_reset(l, fd);
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

    if (l->eof)
        return 0;
    if (l->cap - l->end < LP_READ / 4 && l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->start = 0;
    }
    n = read(l->fd, l->buf + l->end, l->cap - l->end);
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
