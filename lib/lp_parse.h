/* lp_parse.h -- numbers, durations, sizes and lists from the command line */
#ifndef LP_PARSE_H
#define LP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define LP_ERRLEN 1024

/* Unsigned integer in [min, max]; "1000" only (no sign, no suffix).
 * Returns 0, or -1 with err filled. */
int lp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                  char *err);

/*
 * Duration: a number (fraction allowed) and a unit among ms, s, m, h, d, w;
 * a bare number is in defunit ("s" or "ms"). "0" is zero. Result in
 * milliseconds. Returns 0, or -1 with err filled.
 */
int lp_parse_duration(const char *s, const char *defunit, int64_t *ms,
                      char *err);

/* Size: a number and an optional binary suffix K, M, G, T (KiB.. also
 * accepted; B alone is bytes). Returns 0, or -1 with err filled. */
int lp_parse_size(const char *s, uint64_t *out, char *err);

/* A size from 1 byte to 1G: the limits on lines and DLQ entries. Returns
 * 0, or -1 with err ("'X' is out of range (LO..1G)"). */
int lp_parse_size_max1g(const char *s, uint64_t lo, uint64_t *out,
                        char *err);

/*
 * Splits a comma-separated list in place: s is modified, item[] borrow
 * from it. Empty items are refused. Returns the count, or -1 with err.
 */
int lp_parse_list(char *s, char **item, int max, char *err);

/*
 * A point in time for --since/--until: "2026-11-21" (its midnight UTC), an
 * RFC 3339 date-time, epoch seconds ("1763683200", fraction allowed), or a
 * duration ago ("2h", "7d", "90m"). Result in ms since the epoch.
 * Returns 0, or -1 with err.
 */
int lp_parse_when(const char *s, int64_t now_ms, int64_t *ms, char *err);

/* Formats a duration in ms as "1.5s", "30s", "5m", "24h", "7d". */
void lp_format_duration(int64_t ms, char *buf, size_t cap);

/* A field of logpipe-send's <stream>:producers, "<pos> <unix-ms>[
 * <cursor>]", as read: the cursor points into the value (NULL: none). */
struct lp_field {
    uint64_t pos;
    int64_t ms;
    int have_ms;
    const char *cursor;
    size_t clen;
};

/* Parses a field's value v[0..n); what is missing is 0 (NULL). The one
 * reader of the format (send, stat); send's gate writes it, in Lua. */
void lp_field_parse(const char *v, size_t n, struct lp_field *f);

#endif
