/* lp_time.h -- UTC civil dates, RFC 3339, clocks */
#ifndef LP_TIME_H
#define LP_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Years 0000..9999 in ms since the epoch: the range of a day file name,
 * and of the event times logpipe accepts. */
#define LP_TIME_MIN (-62167219200000LL)
#define LP_TIME_MAX (253402300799999LL)

/* Broken-down UTC time; no time zone, no locale, no libc state. */
struct lp_tm {
    int year;                   /* e.g. 2026; 0..9999 in file names */
    int mon;                    /* 1..12 */
    int mday;                   /* 1..31 */
    int hour, min, sec;
    int yday;                   /* 1..366 */
    int wday;                   /* 0 = Sunday */
    int ms;                     /* 0..999 */
};

int64_t lp_now_ms(void);        /* CLOCK_REALTIME */
int64_t lp_mono_ms(void);       /* CLOCK_MONOTONIC */
int64_t lp_mono_us(void);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
/* a / b rounded toward minus infinity, for b > 0; exact for every a. */
int64_t lp_floor_div(int64_t a, int64_t b);

int64_t lp_days_from_civil(int64_t y, int m, int d);

/* Fills tm from milliseconds since the epoch; exact for every int64_t
 * (proleptic Gregorian, years beyond 0000..9999 included). */
void lp_time_tm(int64_t ms, struct lp_tm *tm);

/*
 * Parses an RFC 3339 date-time ("2026-11-21T10:00:00.5Z", offset "+02:00";
 * 't', 'z' and a space for 'T' are accepted as RFC 3339 5.6 allows) into
 * milliseconds since the epoch. Returns 0 or -1.
 */
int lp_rfc3339_parse(const char *s, size_t n, int64_t *ms);

/*
 * Parses epoch seconds written as a decimal number, JSON's grammar with
 * leading zeros and a bare point allowed ("1796515199.9995", "-1.5",
 * "1.7965152e9", ".5"), into milliseconds since the epoch, exactly and
 * rounded toward minus infinity: the digits past the millisecond are cut,
 * as they are from an RFC 3339 fraction, so 1796515199.9995 is
 * 23:59:59.999 of its day and -0.0005 is 1969-12-31T23:59:59.999. No
 * floating point (a double holds 1.001 as 1.000999...). Returns 0, or -1
 * when s[0..n) is not such a number or is outside years 0000..9999.
 */
int lp_epoch_ms_parse(const char *s, size_t n, int64_t *ms);

/* Formats ms as "2026-11-21T10:00:00.123Z" into buf (at least 32 bytes).
 * Returns the length. */
size_t lp_time_format(int64_t ms, char *buf);

/* Formats the day of ms as "2026-11-21" into buf (at least 16 bytes). */
size_t lp_day_format(int64_t ms, char *buf);

#endif
