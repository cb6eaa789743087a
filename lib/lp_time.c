/* lp_time.c -- UTC civil dates, RFC 3339, clocks */
#include <stdio.h>
#include <time.h>

#include "lp_time.h"

int64_t lp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lp_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil / civil_from_days: exact for every
 * proleptic Gregorian date, no tables, no timegm(). */
int64_t lp_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Floor division and its remainder, without the overflow of the usual
 * (a - (b - 1)) / b: exact for every int64_t a, b > 0.
 */
int64_t lp_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a % b + (a % b < 0 ? b : 0);
}

/* Every int64_t ms is a date: years -292277022..292278994 fit an int, and
 * no step below overflows (|z| < 2^37). Which years a caller accepts is
 * its own business (file names: LP_TIME_MIN..LP_TIME_MAX). */
void lp_time_tm(int64_t ms, struct lp_tm *tm)
{
    int64_t secs = lp_floor_div(ms, 1000);
    int64_t z = lp_floor_div(secs, 86400);
    int64_t sod = floor_mod(secs, 86400);
    int64_t era, doe, yoe, y, doy, mp;
    int d, m;

    tm->ms = (int)floor_mod(ms, 1000);
    tm->hour = (int)(sod / 3600);
    tm->min = (int)(sod / 60 % 60);
    tm->sec = (int)(sod % 60);
    tm->wday = (int)((z % 7 + 11) % 7);     /* 1970-01-01 was a Thursday */
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = (int)(doy - (153 * mp + 2) / 5 + 1);
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y += m <= 2;
    tm->year = (int)y;
    tm->mon = m;
    tm->mday = d;
    tm->yday = (int)(lp_days_from_civil(y, m, d) -
                     lp_days_from_civil(y, 1, 1)) + 1;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int lp_rfc3339_parse(const char *s, size_t n, int64_t *ms)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
    int y, mo, d, h, mi, se, frac = 0, oh = 0, om = 0, sign = 0;
    size_t i;

    /* 2026-11-21T10:00:00Z is the shortest form: 20 bytes */
    if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 || mi > 59 ||
        se > 60)
        return -1;
    if (se == 60)
        se = 59;                /* a leap second stays in its minute */
    i = 19;
    if (i < n && s[i] == '.') {
        int nd = 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (nd < 3)
                frac = frac * 10 + (s[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    if (i >= n)
        return -1;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '-' ? -1 : 1;
        if (n - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        i += 6;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    *ms = ((lp_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
           - sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return 0;
}

int lp_epoch_ms_parse(const char *s, size_t n, int64_t *ms)
{
    const char *p = s, *end = s + n, *i0, *i1, *f0 = NULL, *f1 = NULL;
    int neg = 0, rest = 0;
    int64_t exp = 0, keep, k = 0, v;
    uint64_t acc = 0;
    /* past LP_TIME_MAX and -LP_TIME_MIN, with room for one more digit */
    const uint64_t big = 1000000000000000ULL;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    for (i0 = p; p < end && *p >= '0' && *p <= '9'; p++)
        ;
    i1 = p;
    if (p < end && *p == '.') {
        for (f0 = ++p; p < end && *p >= '0' && *p <= '9'; p++)
            ;
        f1 = p;
    }
    if (i1 == i0 && f1 == f0)
        return -1;              /* no digit: "", "-", "." */
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        const char *e0;
        if (++p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        for (e0 = p; p < end && *p >= '0' && *p <= '9'; p++)
            if (exp < 100000)   /* saturated: far past any year */
                exp = exp * 10 + (*p - '0');
        if (p == e0)
            return -1;
        if (eneg)
            exp = -exp;
    }
    if (p != end)
        return -1;
    /* the digits that make whole milliseconds: those before the point,
     * moved by the exponent, and 3 more; the others are cut */
    keep = (i1 - i0) + exp + 3;
    for (p = i0; p < (f1 ? f1 : i1); p++) {
        if (p == i1)
            continue;           /* the point */
        if (k++ < keep) {
            if (acc < big)
                acc = acc * 10 + (uint64_t)(*p - '0');
        } else if (*p != '0') {
            rest = 1;
        }
    }
    for (; k < keep && acc != 0 && acc < big; k++)
        acc *= 10;
    if (acc >= big)
        return -1;
    v = neg ? -(int64_t)acc - rest : (int64_t)acc;  /* toward -inf */
    if (v < LP_TIME_MIN || v > LP_TIME_MAX)
        return -1;
    *ms = v;
    return 0;
}

size_t lp_time_format(int64_t ms, char *buf)
{
    struct lp_tm tm;

    lp_time_tm(ms, &tm);
    return (size_t)snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                            tm.year, tm.mon, tm.mday, tm.hour, tm.min,
                            tm.sec, tm.ms);
}

size_t lp_day_format(int64_t ms, char *buf)
{
    struct lp_tm tm;

    lp_time_tm(ms, &tm);
    return (size_t)snprintf(buf, 16, "%04d-%02d-%02d", tm.year, tm.mon,
                            tm.mday);
}
