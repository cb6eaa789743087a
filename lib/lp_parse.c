/* lp_parse.c -- numbers, durations, sizes and lists from the command line */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_parse.h"
#include "lp_time.h"

int lp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                  char *err)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9') {
        snprintf(err, LP_ERRLEN, "'%s' is not a number", s);
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0') {
        snprintf(err, LP_ERRLEN, "'%s' is not a number", s);
        return -1;
    }
    if (errno == ERANGE || v < min || v > max) {
        snprintf(err, LP_ERRLEN, "'%s' is out of range (%llu..%llu)", s,
                 (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_number(const char *s, double *v, const char **rest)
{
    char *end;

    if ((*s < '0' || *s > '9') && *s != '.')
        return -1;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(*v) || *v < 0)
        return -1;
    /* strtod takes hex and exponents; we want plain decimals */
    for (const char *p = s; p < end; p++)
        if ((*p < '0' || *p > '9') && *p != '.')
            return -1;
    *rest = end;
    return 0;
}

int lp_parse_duration(const char *s, const char *defunit, int64_t *ms,
                      char *err)
{
    static const struct { const char *u; double ms; } units[] = {
        { "ms", 1 }, { "s", 1e3 }, { "m", 60e3 }, { "h", 3600e3 },
        { "d", 86400e3 }, { "w", 7 * 86400e3 },
    };
    const char *unit;
    double v, mult = -1;

    if (parse_number(s, &v, &unit) < 0)
        goto bad;
    if (*unit == '\0')
        unit = defunit;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].u) == 0)
            mult = units[i].ms;
    if (mult < 0)
        goto bad;
    v *= mult;
    if (v > 9.2e15)
        goto bad;
    *ms = (int64_t)llround(v);
    return 0;
bad:
    snprintf(err, LP_ERRLEN,
             "'%s' is not a duration (like 500ms, 30s, 5m, 24h, 7d)", s);
    return -1;
}

int lp_parse_size(const char *s, uint64_t *out, char *err)
{
    static const struct { const char *u; uint64_t mult; } units[] = {
        { "", 1 }, { "B", 1 },
        { "K", 1ULL << 10 }, { "KB", 1ULL << 10 }, { "KiB", 1ULL << 10 },
        { "k", 1ULL << 10 },
        { "M", 1ULL << 20 }, { "MB", 1ULL << 20 }, { "MiB", 1ULL << 20 },
        { "G", 1ULL << 30 }, { "GB", 1ULL << 30 }, { "GiB", 1ULL << 30 },
        { "T", 1ULL << 40 }, { "TB", 1ULL << 40 }, { "TiB", 1ULL << 40 },
    };
    const char *p = s;
    uint64_t ip = 0, v;
    double frac = 0;

    /* integers exactly; a fraction only adds below one unit */
    if (*p < '0' || *p > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(ip, 10, &ip) ||
            __builtin_add_overflow(ip, (uint64_t)(*p - '0'), &ip))
            goto bad;
    if (*p == '.') {
        double scale = 0.1;
        if (p[1] < '0' || p[1] > '9')
            goto bad;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].u) != 0)
            continue;
        if (__builtin_mul_overflow(ip, units[i].mult, &v) ||
            __builtin_add_overflow(v, (uint64_t)(frac * (double)units[i].mult),
                                   &v))
            goto bad;
        *out = v;
        return 0;
    }
bad:
    snprintf(err, LP_ERRLEN, "'%s' is not a size (like 512, 64K, 10M, 1G)",
             s);
    return -1;
}

int lp_parse_list(char *s, char **item, int max, char *err)
{
    int n = 0;
    char *p = s;

    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p == '\0') {
            snprintf(err, LP_ERRLEN, "empty item in list");
            return -1;
        }
        if (n >= max) {
            snprintf(err, LP_ERRLEN, "more than %d items in list", max);
            return -1;
        }
        item[n++] = p;
        if (comma == NULL)
            return n;
        p = comma + 1;
    }
}

void lp_format_duration(int64_t ms, char *buf, size_t cap)
{
    if (ms == 0)
        snprintf(buf, cap, "0");
    else if (ms % 86400000 == 0 && ms > 86400000)
        snprintf(buf, cap, "%lldd", (long long)(ms / 86400000));
    else if (ms % 3600000 == 0)
        snprintf(buf, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, cap, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%llds", (long long)(ms / 1000));
    else if (ms > 1000 && ms % 100 == 0)
        snprintf(buf, cap, "%lld.%llds", (long long)(ms / 1000),
                 (long long)(ms % 1000 / 100));
    else
        snprintf(buf, cap, "%lldms", (long long)ms);
}

int lp_parse_when(const char *s, int64_t now_ms, int64_t *ms, char *err)
{
    size_t n = strlen(s);
    int y, m, d;
    int64_t dur;
    char tail;

    if (n == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 &&
        s[4] == '-' && s[7] == '-') {
        char full[32];
        snprintf(full, sizeof full, "%sT00:00:00Z", s);
        if (lp_rfc3339_parse(full, strlen(full), ms) == 0)
            return 0;
    }
    if (n >= 20 && lp_rfc3339_parse(s, n, ms) == 0)
        return 0;
    /* epoch seconds, cut to the millisecond as event times are */
    if (n > 0 && strspn(s, "0123456789.") == n &&
        lp_epoch_ms_parse(s, n, ms) == 0)
        return 0;
    if (n > 1 && strspn(s, "0123456789.") < n &&
        lp_parse_duration(s, "s", &dur, err) == 0) {
        *ms = now_ms - dur;
        return 0;
    }
    snprintf(err, LP_ERRLEN, "'%s' is not a time (like 2026-11-21, "
             "2026-11-21T10:00:00Z, 1763683200, or 2h ago as 2h)", s);
    return -1;
}

int lp_parse_size_max1g(const char *s, uint64_t lo, uint64_t *out,
                        char *err)
{
    if (lp_parse_size(s, out, err) < 0)
        return -1;
    if (*out < lo || *out > (1u << 30)) {
        snprintf(err, LP_ERRLEN, "'%s' is out of range (%llu..1G)", s,
                 (unsigned long long)lo);
        return -1;
    }
    return 0;
}

void lp_field_parse(const char *v, size_t n, struct lp_field *f)
{
    const char *e = v + n, *p = v;

    f->pos = 0;
    f->ms = 0;
    f->have_ms = 0;
    f->cursor = NULL;
    f->clen = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++)
        f->pos = f->pos * 10 + (uint64_t)(*p - '0');
    if (p == e || *p != ' ')
        return;
    for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
        f->ms = f->ms * 10 + (*p - '0');
        f->have_ms = 1;
    }
    if (p < e && *p == ' ') {
        f->cursor = p + 1;
        f->clen = (size_t)(e - p - 1);
    }
}
