/* unit-parse.c -- durations, sizes, lists, Redis URLs, RFC 3339, event time */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_event.h"
#include "lp_json.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_time.h"
#include "lp_url.h"
#include "tap.h"

/* ---- durations, sizes, numbers, lists ---------------------------------- */

static void dur_is(const char *s, const char *defunit, int64_t want)
{
    char err[LP_ERRLEN] = "";
    int64_t ms = -12345;
    int r = lp_parse_duration(s, defunit, &ms, err);

    ok(r == 0 && ms == want, "duration '%s' (bare = %s) = %lld ms", s, defunit,
       (long long)want);
    if (r != 0 || ms != want)
        printf("#   r %d, ms %lld, err '%s'\n", r, (long long)ms, err);
}

static void dur_bad(const char *s)
{
    char err[LP_ERRLEN] = "", want[LP_ERRLEN];
    int64_t ms = 0;

    snprintf(want, sizeof want,
             "'%s' is not a duration (like 500ms, 30s, 5m, 24h, 7d)", s);
    is_int(lp_parse_duration(s, "s", &ms, err), -1,
           "duration '%s' refused", s);
    is_str(err, want, "duration '%s': message", s);
}

static void test_duration(void)
{
    dur_is("500ms", "s", 500);
    dur_is("30s", "s", 30000);
    dur_is("5m", "s", 300000);
    dur_is("24h", "s", 86400000);
    dur_is("7d", "s", 604800000);
    dur_is("1w", "s", 604800000);
    dur_is("1.5s", "s", 1500);
    dur_is("0.5m", "s", 30000);
    dur_is(".25s", "s", 250);
    dur_is("2.5h", "s", 9000000);
    dur_is("0.001s", "s", 1);
    dur_is("30", "s", 30000);
    dur_is("30", "ms", 30);
    dur_is("1.5", "s", 1500);
    dur_is("0", "s", 0);
    dur_is("0", "ms", 0);
    dur_is("0ms", "s", 0);
    dur_is("0d", "s", 0);
    dur_is("007s", "s", 7000);
    dur_is("100000d", "s", 8640000000000LL);
    dur_is("250ms", "ms", 250);

    dur_bad("");
    dur_bad("-1");
    dur_bad("-1s");
    dur_bad("+1s");
    dur_bad("5x");
    dur_bad("1e3");
    dur_bad("1e3s");
    dur_bad("0x10");
    dur_bad("s");
    dur_bad("ms");
    dur_bad(".");
    dur_bad("5 s");
    dur_bad(" 5s");
    dur_bad("5s ");
    dur_bad("5S");
    dur_bad("5M");
    dur_bad("5sec");
    dur_bad("5s5");
    dur_bad("1h30m");
    dur_bad("inf");
    dur_bad("nan");
    dur_bad("1000000000w");
}

static void size_is(const char *s, uint64_t want, const char *why)
{
    char err[LP_ERRLEN] = "";
    uint64_t v = 12345;
    int r = lp_parse_size(s, &v, err);
    int pass = r == 0 && v == want;

    if (why)
        ok_fixed(pass, why, "size '%s' = %llu", s, (unsigned long long)want);
    else
        ok(pass, "size '%s' = %llu", s, (unsigned long long)want);
    if (!pass)
        printf("#   r %d, got %llu, err '%s'\n", r, (unsigned long long)v,
               err);
}

static void size_bad(const char *s)
{
    char err[LP_ERRLEN] = "", want[LP_ERRLEN];
    uint64_t v;

    snprintf(want, sizeof want, "'%s' is not a size (like 512, 64K, 10M, 1G)",
             s);
    is_int(lp_parse_size(s, &v, err), -1, "size '%s' refused", s);
    is_str(err, want, "size '%s': message", s);
}

static void test_size(void)
{
    size_is("512", 512, NULL);
    size_is("0", 0, NULL);
    size_is("64K", 65536, NULL);
    size_is("10M", 10485760, NULL);
    size_is("1G", 1073741824, NULL);
    size_is("2T", 2199023255552ULL, NULL);
    size_is("1.5K", 1536, NULL);
    size_is("0.5M", 524288, NULL);
    size_is("1KiB", 1024, NULL);
    size_is("1MiB", 1048576, NULL);
    size_is("3GiB", 3221225472ULL, NULL);
    size_is("1KB", 1024, NULL);
    size_is("100B", 100, NULL);
    size_is("4096", 4096, NULL);
    size_is("10000000000000000000", 10000000000000000000ULL,
            "lp_parse_size: llround() overflows above 2^63");
    size_is("10000000T", 10995116277760000000ULL,
            "lp_parse_size: llround() overflows above 2^63");
    size_is("9007199254740993", 9007199254740993ULL,
            "lp_parse_size: goes through double, integers above 2^53 "
            "rounded");

    size_bad("");
    size_bad("-1");
    size_bad("-1K");
    size_bad("K");
    size_bad("1X");
    size_bad("1KK");
    size_bad("1 K");
    size_bad(" 1K");
    size_bad("1e3");
    size_bad("0x10");
    size_bad("1Kb");
    size_bad("1P");
    size_bad("1.2.3");
    size_bad("20000000000000000000");
    size_bad("100000000T");
}

static void uint_is(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
    char err[LP_ERRLEN] = "";
    uint64_t v = 12345;
    int r = lp_parse_uint(s, min, max, &v, err);

    ok(r == 0 && v == want, "uint '%s' in %llu..%llu = %llu", s,
       (unsigned long long)min, (unsigned long long)max,
       (unsigned long long)want);
    if (r != 0 || v != want)
        printf("#   r %d, got %llu, err '%s'\n", r, (unsigned long long)v,
               err);
}

static void uint_bad(const char *s, uint64_t min, uint64_t max,
                     const char *msg)
{
    char err[LP_ERRLEN] = "";
    uint64_t v = 12345;

    is_int(lp_parse_uint(s, min, max, &v, err), -1, "uint '%s' in %llu..%llu "
           "refused", s, (unsigned long long)min, (unsigned long long)max);
    is_str(err, msg, "uint '%s': message", s);
    is_int(v, 12345, "uint '%s': out untouched", s);
}

static void test_uint(void)
{
    uint_is("1000", 0, 2000, 1000);
    uint_is("0", 0, 10, 0);
    uint_is("10", 10, 20, 10);
    uint_is("20", 10, 20, 20);
    uint_is("007", 0, 10, 7);
    uint_is("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);

    uint_bad("9", 10, 20, "'9' is out of range (10..20)");
    uint_bad("21", 10, 20, "'21' is out of range (10..20)");
    uint_bad("0", 1, 65535, "'0' is out of range (1..65535)");
    uint_bad("18446744073709551616", 0, UINT64_MAX,
             "'18446744073709551616' is out of range "
             "(0..18446744073709551615)");
    uint_bad("99999999999999999999999", 0, 100,
             "'99999999999999999999999' is out of range (0..100)");
    uint_bad("", 0, 10, "'' is not a number");
    uint_bad("-1", 0, 10, "'-1' is not a number");
    uint_bad("+1", 0, 10, "'+1' is not a number");
    uint_bad(" 1", 0, 10, "' 1' is not a number");
    uint_bad("1 ", 0, 10, "'1 ' is not a number");
    uint_bad("1k", 0, 10000, "'1k' is not a number");
    uint_bad("1.0", 0, 10, "'1.0' is not a number");
    uint_bad("0x10", 0, 100, "'0x10' is not a number");
    uint_bad("1e3", 0, 10000, "'1e3' is not a number");
}

static void test_list(void)
{
    char err[LP_ERRLEN], buf[64], *item[8];
    int n;

    strcpy(buf, "a,bc,d.e");
    n = lp_parse_list(buf, item, 8, err);
    is_int(n, 3, "list a,bc,d.e: 3 items");
    if (n == 3) {
        is_str(item[0], "a", "item 0");
        is_str(item[1], "bc", "item 1");
        is_str(item[2], "d.e", "item 2");
        ok(item[0] == buf && item[1] == buf + 2 && item[2] == buf + 5,
           "items point into the string");
    }
    strcpy(buf, "service");
    n = lp_parse_list(buf, item, 8, err);
    ok(n == 1 && strcmp(item[0], "service") == 0, "one item");
    strcpy(buf, "a,b");
    is_int(lp_parse_list(buf, item, 2, err), 2, "2 items, max 2");
    strcpy(buf, "a b, c");
    n = lp_parse_list(buf, item, 8, err);
    ok(n == 2 && strcmp(item[0], "a b") == 0 && strcmp(item[1], " c") == 0,
       "spaces are kept (no trimming)");

    static const char *const bad[] = { "", ",", "a,,b", ",a", "a," };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(buf, bad[i]);
        err[0] = '\0';
        is_int(lp_parse_list(buf, item, 8, err), -1, "list '%s' refused",
               bad[i]);
        is_str(err, "empty item in list", "list '%s': message", bad[i]);
    }
    strcpy(buf, "a,b,c");
    is_int(lp_parse_list(buf, item, 2, err), -1, "3 items, max 2: refused");
    is_str(err, "more than 2 items in list", "max: message");
}

static void fmt_is(int64_t ms, const char *want, const char *why)
{
    char buf[64], err[LP_ERRLEN];
    int64_t back = -1;

    memset(buf, 0, sizeof buf);
    lp_format_duration(ms, buf, sizeof buf);
    (void)why;
    is_str(buf, want, "format %lld ms", (long long)ms);
    ok(lp_parse_duration(buf, "s", &back, err) == 0 && back == ms,
       "format %lld ms parses back (%s)", (long long)ms, buf);
}

static void test_format_duration(void)
{
    char small[4];

    fmt_is(0, "0", NULL);
    fmt_is(1, "1ms", NULL);
    fmt_is(500, "500ms", NULL);
    fmt_is(30000, "30s", NULL);
    fmt_is(90000, "90s", NULL);
    fmt_is(300000, "5m", NULL);
    fmt_is(5400000, "90m", NULL);
    fmt_is(3600000, "1h", NULL);
    fmt_is(86400000, "24h", NULL);
    fmt_is(172800000, "2d", NULL);
    fmt_is(604800000, "7d", NULL);
    fmt_is(1500, "1.5s", "lp_format_duration: 1500 gives 1500ms, contract "
           "says 1.5s");
    fmt_is(1001, "1001ms", NULL);
    lp_format_duration(604800000, small, sizeof small);
    is_str(small, "7d", "fits in a 3-byte buffer");
    lp_format_duration(30000, small, 3);
    is_str(small, "30", "cut to the buffer, NUL-terminated");
}

/* ---- Redis URLs -------------------------------------------------------- */

static void url_is(const char *url, int is_unix, const char *host, int port,
                   const char *path, int db, const char *user,
                   const char *pass, const char *desc)
{
    struct lp_url u;
    char err[LP_ERRLEN] = "", d[600];
    int r = lp_url_parse(url, &u, err);

    is_int(r, 0, "url %s parses", url);
    if (r != 0) {
        printf("#   %s\n", err);
        return;
    }
    is_int(u.is_unix, is_unix, "url %s: is_unix", url);
    if (is_unix) {
        is_str(u.path, path, "url %s: path", url);
    } else {
        is_str(u.host, host, "url %s: host", url);
        is_int(u.port, port, "url %s: port", url);
    }
    is_int(u.db, db, "url %s: db", url);
    is_str(u.user, user, "url %s: user", url);
    is_str(u.password, pass, "url %s: password", url);
    lp_url_describe(&u, d, sizeof d);
    is_str(d, desc, "url %s: describe", url);
}

static void url_bad(const char *url, const char *msg)
{
    struct lp_url u;
    char err[LP_ERRLEN] = "";

    is_int(lp_url_parse(url, &u, err), -1, "url '%s' refused", url);
    is_str(err, msg, "url '%s': message", url);
}

static void test_url(void)
{
    url_is("redis://host", 0, "host", 6379, NULL, 0, "", "", "host:6379");
    url_is("redis://host:1234/2", 0, "host", 1234, NULL, 2, "", "",
           "host:1234");
    url_is("redis://user:p%40ss@h:1/3", 0, "h", 1, NULL, 3, "user", "p@ss",
           "h:1");
    url_is("redis://:pw@h", 0, "h", 6379, NULL, 0, "", "pw", "h:6379");
    url_is("redis://alice@h", 0, "h", 6379, NULL, 0, "alice", "", "h:6379");
    url_is("redis://u:p@ss@h", 0, "h", 6379, NULL, 0, "u", "p@ss", "h:6379");
    url_is("redis://%61:%2F%3a@h", 0, "h", 6379, NULL, 0, "a", "/:",
           "h:6379");
    url_is("redis://[::1]:6380", 0, "::1", 6380, NULL, 0, "", "",
           "[::1]:6380");
    url_is("redis://", 0, "127.0.0.1", 6379, NULL, 0, "", "",
           "127.0.0.1:6379");
    url_is("redis://h/", 0, "h", 6379, NULL, 0, "", "", "h:6379");
    url_is("redis://h:65535/65535", 0, "h", 65535, NULL, 65535, "", "",
           "h:65535");
    url_is("redis://10.0.0.1:7000/0", 0, "10.0.0.1", 7000, NULL, 0, "", "",
           "10.0.0.1:7000");
    url_is("unix:///run/redis.sock?db=4", 1, NULL, 0, "/run/redis.sock", 4,
           "", "", "unix:///run/redis.sock");
    url_is("unix:///run/redis.sock", 1, NULL, 0, "/run/redis.sock", 0, "",
           "", "unix:///run/redis.sock");
    url_is("rediss://u:p%40w@cache.example:6380/3", 0, "cache.example", 6380,
           NULL, 3, "u", "p@w", "cache.example:6380");
    {
        struct lp_url u;
        char err[LP_ERRLEN];
        is_int(lp_url_parse("rediss://h", &u, err) == 0 && u.tls, 1,
               "rediss:// is TLS");
        is_int(lp_url_parse("redis://h", &u, err) == 0 && !u.tls, 1,
               "redis:// is not");
    }

    url_bad("rediss://h:0", "bad port in Redis URL");
    url_bad("http://h", "Redis URL must start with redis://, rediss:// (TLS) "
            "or unix://");
    url_bad("h:6379", "Redis URL must start with redis://, rediss:// (TLS) "
            "or unix://");
    url_bad("", "Redis URL must start with redis://, rediss:// (TLS) or "
            "unix://");
    url_bad("redis://h:0", "bad port in Redis URL");
    url_bad("redis://h:70000", "bad port in Redis URL");
    url_bad("redis://h:65536", "bad port in Redis URL");
    url_bad("redis://h:abc", "bad port in Redis URL");
    url_bad("redis://h:", "bad port in Redis URL");
    url_bad("redis://h:-1", "bad port in Redis URL");
    url_bad("redis://h:1:2", "bad port in Redis URL");
    url_bad("redis://h/x", "bad database number in Redis URL");
    url_bad("redis://h/-1", "bad database number in Redis URL");
    url_bad("redis://h/65536", "bad database number in Redis URL");
    url_bad("redis://h/1/2", "bad database number in Redis URL");
    url_bad("redis://[::1", "bad IPv6 address in Redis URL");
    url_bad("redis://[]:1", "bad IPv6 address in Redis URL");
    url_bad("redis://[::1]x", "bad host in Redis URL");
    url_bad("redis://u:p%zz@h", "bad password in Redis URL");
    url_bad("redis://u:p%00@h", "bad password in Redis URL");
    url_bad("redis://u%4@h", "bad user name in Redis URL");
    url_bad("unix://relative", "unix socket URL needs an absolute path: "
            "unix:///path");
    url_bad("unix://", "unix socket URL needs an absolute path: "
            "unix:///path");
    url_bad("unix:///s?db=x", "bad database number in Redis URL");
    url_bad("unix:///s?db=", "bad database number in Redis URL");
    url_bad("unix:///s?x=1", "unix socket URL takes only ?db=N");

    /* the password never shows in a message or a description */
    {
        static const char *const leak[] = {
            "redis://u:hunter2@h:0", "redis://u:hunter2@h:70000",
            "redis://u:hunter2@h:abc", "redis://u:hunter2@h/x",
            "redis://u:hunter2@h/99999", "redis://u:hunter2%zz@h",
            "redis://u:hunter2%@h", "redis://:hunter2@[::1",
            "redis://:hunter2@[::1]x", "rediss://u:hunter2@h:x",
            "http://u:hunter2@h", "redis://u:hun/ter2@h",
            "redis://u:hunter2@h:1/2/3", "redis://hunter2:hunter2@h:x",
        };
        int leaked = 0, refused = 0;
        for (size_t i = 0; i < sizeof leak / sizeof leak[0]; i++) {
            struct lp_url u;
            char err[LP_ERRLEN] = "";
            if (lp_url_parse(leak[i], &u, err) == -1 && err[0] != '\0')
                refused++;
            if (strstr(err, "hunter2") || strstr(err, "hun/ter2") ||
                strstr(err, "ter2")) {
                leaked++;
                printf("#   %s -> %s\n", leak[i], err);
            }
        }
        is_int(refused, sizeof leak / sizeof leak[0],
               "every bad URL with a password refused with a message");
        is_int(leaked, 0, "no message contains the password");
    }
    {
        struct lp_url u;
        char err[LP_ERRLEN], d[600];
        lp_url_parse("redis://u:hunter2@h:7/1", &u, err);
        lp_url_describe(&u, d, sizeof d);
        ok(strstr(d, "hunter2") == NULL && strcmp(d, "h:7") == 0,
           "describe leaves the password out (%s)", d);
    }
    {
        /* limits of the fixed-size fields */
        char url[2048], err[LP_ERRLEN];
        struct lp_url u;
        memset(url, 0, sizeof url);
        strcpy(url, "redis://u:");
        memset(url + 10, 'p', 511);
        strcpy(url + 521, "@h");
        ok(lp_url_parse(url, &u, err) == 0 && strlen(u.password) == 511,
           "511-byte password fits");
        memset(url + 10, 'p', 512);
        strcpy(url + 522, "@h");
        ok(lp_url_parse(url, &u, err) == -1 &&
           strcmp(err, "bad password in Redis URL") == 0,
           "512-byte password refused without echoing it");
        strcpy(url, "redis://");
        memset(url + 8, 'h', 300);
        url[308] = '\0';
        ok(lp_url_parse(url, &u, err) == -1 &&
           strcmp(err, "host name too long in Redis URL") == 0,
           "300-byte host refused");
    }
}

/* ---- civil dates, lp_time_tm ------------------------------------------- */

static int my_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int my_mdays(int64_t y, int m)
{
    static const int md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return md[m - 1] + (m == 2 && my_leap(y));
}

static int64_t fmod64(int64_t a, int64_t b)
{
    int64_t r = a % b;

    return r < 0 ? r + b : r;
}

/*
 * Walks every day from 1970-01-01 forwards to 10400 and backwards to -800
 * with a naive calendar, and compares day numbers and broken-down times
 * (date, yday, wday, time of day) with the library, which uses closed
 * formulas.
 */
static void test_calendar_walk(void)
{
    long wrong = 0, days = 0;
    char first[256] = "";

    for (int dir = 1; dir >= -1; dir -= 2) {
        int64_t y = 1970, z = 0;
        int m = 1, d = 1, yday = 1;
        for (;;) {
            struct lp_tm tm;
            int64_t tod = fmod64(z * 7919 + 13, 86400000);
            int64_t dz = lp_days_from_civil(y, m, d);

            lp_time_tm(z * 86400000 + tod, &tm);
            days++;
            if (dz != z || tm.year != y || tm.mon != m || tm.mday != d ||
                tm.yday != yday || tm.wday != fmod64(z + 4, 7) ||
                tm.hour != tod / 3600000 || tm.min != tod / 60000 % 60 ||
                tm.sec != tod / 1000 % 60 || tm.ms != tod % 1000) {
                if (!wrong++)
                    snprintf(first, sizeof first, "%lld-%02d-%02d (day %lld):"
                             " days_from_civil %lld, tm %d-%02d-%02d yday %d"
                             " wday %d %02d:%02d:%02d.%03d",
                             (long long)y, m, d, (long long)z, (long long)dz,
                             tm.year, tm.mon, tm.mday, tm.yday, tm.wday,
                             tm.hour, tm.min, tm.sec, tm.ms);
            }
            if (dir > 0) {
                if (y == 10400)
                    break;
                z++;
                yday++;
                if (++d > my_mdays(y, m)) {
                    d = 1;
                    if (++m > 12) {
                        m = 1;
                        y++;
                        yday = 1;
                    }
                }
            } else {
                if (y == -800)
                    break;
                z--;
                if (--d < 1) {
                    if (--m < 1) {
                        m = 12;
                        y--;
                    }
                    d = my_mdays(y, m);
                }
                yday = yday > 1 ? yday - 1 : 365 + my_leap(y);
            }
        }
    }
    ok(wrong == 0, "calendar walk -800..10400: %ld days agree", days);
    if (wrong)
        printf("#   %ld wrong, first: %s\n", wrong, first);
}

static void test_civil(void)
{
    struct lp_tm tm;

    is_int(lp_days_from_civil(1970, 1, 1), 0, "1970-01-01 is day 0");
    is_int(lp_days_from_civil(1969, 12, 31), -1, "1969-12-31 is day -1");
    is_int(lp_days_from_civil(2000, 3, 1), 11017, "2000-03-01");
    is_int(lp_days_from_civil(2024, 2, 29), 19782, "2024-02-29");
    is_int(lp_days_from_civil(1900, 3, 1), -25508, "1900-03-01");
    is_int(lp_days_from_civil(1600, 1, 1), -135140, "1600-01-01");
    is_int(lp_days_from_civil(1, 1, 1), -719162, "0001-01-01");
    is_int(lp_days_from_civil(0, 1, 1), -719528, "0000-01-01");
    is_int(lp_days_from_civil(9999, 12, 31), 2932896, "9999-12-31");
    is_int(lp_days_from_civil(0, 1, 1) * 86400000LL, LP_TIME_MIN,
           "LP_TIME_MIN is 0000-01-01");
    is_int(lp_days_from_civil(10000, 1, 1) * 86400000LL - 1, LP_TIME_MAX,
           "LP_TIME_MAX is the last ms of 9999");
    is_int(lp_days_from_civil(-1, 12, 31), -719529, "-0001-12-31");

    /* Feb 29 in leap years only: 1 day from Feb 28 to Mar 1, or 2 */
    {
        static const struct { int y, days; } leap[] = {
            { 2024, 2 }, { 2023, 1 }, { 2000, 2 }, { 1900, 1 }, { 2100, 1 },
            { 1600, 2 }, { 0, 2 }, { -4, 2 }, { -100, 1 }, { -400, 2 },
            { 9996, 2 }, { 9999, 1 },
        };
        int good = 1;
        for (size_t i = 0; i < sizeof leap / sizeof leap[0]; i++) {
            int64_t dd = lp_days_from_civil(leap[i].y, 3, 1) -
                         lp_days_from_civil(leap[i].y, 2, 28);
            if (dd != leap[i].days) {
                good = 0;
                printf("#   %d: %lld days\n", leap[i].y, (long long)dd);
            }
        }
        ok(good, "Feb 28 -> Mar 1 is 2 days in leap years only");
    }

    lp_time_tm(-1, &tm);
    ok(tm.year == 1969 && tm.mon == 12 && tm.mday == 31 && tm.hour == 23 &&
       tm.min == 59 && tm.sec == 59 && tm.ms == 999 && tm.yday == 365 &&
       tm.wday == 3, "-1 ms is 1969-12-31 23:59:59.999, a Wednesday");
    lp_time_tm(-1000, &tm);
    ok(tm.sec == 59 && tm.ms == 0 && tm.mday == 31,
       "-1000 ms is 23:59:59.000");
    lp_time_tm(-86400000, &tm);
    ok(tm.mday == 31 && tm.hour == 0 && tm.min == 0 && tm.sec == 0 &&
       tm.ms == 0, "-86400000 ms is 1969-12-31 00:00");
    lp_time_tm(LP_TIME_MAX, &tm);
    ok(tm.year == 9999 && tm.mon == 12 && tm.mday == 31 && tm.hour == 23 &&
       tm.min == 59 && tm.sec == 59 && tm.ms == 999 && tm.yday == 365 &&
       tm.wday == 5, "LP_TIME_MAX is 9999-12-31 23:59:59.999, a Friday");
    lp_time_tm(LP_TIME_MIN, &tm);
    ok(tm.year == 0 && tm.mon == 1 && tm.mday == 1 && tm.hour == 0 &&
       tm.ms == 0 && tm.yday == 1 && tm.wday == 6,
       "LP_TIME_MIN is 0000-01-01 00:00, a Saturday");
    lp_time_tm(LP_TIME_MIN - 1, &tm);
    ok(tm.year == -1 && tm.mon == 12 && tm.mday == 31 && tm.ms == 999,
       "LP_TIME_MIN - 1 is -0001-12-31 23:59:59.999");
    lp_time_tm(1795255200123LL, &tm);
    ok(tm.year == 2026 && tm.mon == 11 && tm.mday == 21 && tm.hour == 10 &&
       tm.min == 0 && tm.sec == 0 && tm.ms == 123 && tm.yday == 325 &&
       tm.wday == 6, "2026-11-21T10:00:00.123Z, day 325, a Saturday");
    lp_time_tm(1735603200000LL, &tm);
    ok(tm.year == 2024 && tm.mon == 12 && tm.mday == 31 && tm.yday == 366,
       "2024-12-31 is day 366");

    test_calendar_walk();

    /* fuzz finding layout-2: the floor divisions overflowed near
     * INT64_MIN (undefined behaviour; in practice a date 292 million
     * years off). Every int64_t is a date: check it back exactly. */
    {
        static const int64_t far[] = {
            INT64_MIN, INT64_MIN + 1, INT64_MIN + 999, INT64_MIN + 1000,
            INT64_MIN / 2, -1, 0, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX,
        };
        int good = 1;
        for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
            __int128 back;
            lp_time_tm(far[i], &tm);
            back = (__int128)lp_days_from_civil(tm.year, tm.mon, tm.mday) *
                   86400000 + (__int128)tm.hour * 3600000 +
                   tm.min * 60000 + tm.sec * 1000 + tm.ms;
            if (back != far[i] || tm.mon < 1 || tm.mon > 12 ||
                tm.mday < 1 || tm.mday > 31 || tm.hour < 0 || tm.hour > 23 ||
                tm.min < 0 || tm.min > 59 || tm.sec < 0 || tm.sec > 59 ||
                tm.ms < 0 || tm.ms > 999 || tm.wday < 0 || tm.wday > 6 ||
                tm.yday < 1 || tm.yday > 366) {
                good = 0;
                printf("#   %lld: %d-%02d-%02d %02d:%02d:%02d.%03d\n",
                       (long long)far[i], tm.year, tm.mon, tm.mday, tm.hour,
                       tm.min, tm.sec, tm.ms);
            }
        }
        ok(good, "lp_time_tm is exact from INT64_MIN to INT64_MAX ms");
        lp_time_tm(INT64_MIN, &tm);
        ok(tm.year == -292275055 && tm.ms == 192,
           "INT64_MIN ms is in year -292275055, .192");
        lp_time_tm(INT64_MAX, &tm);
        ok(tm.year == 292278994 && tm.mon == 8 && tm.mday == 17 &&
           tm.ms == 807, "INT64_MAX ms is 292278994-08-17, .807");
    }
}

/* ---- RFC 3339 ---------------------------------------------------------- */

#define T2026 1795255200000LL   /* 2026-11-21T10:00:00Z */

static void rfc_is(const char *s, int64_t want)
{
    int64_t ms = -12345;
    int r = lp_rfc3339_parse(s, strlen(s), &ms);

    ok(r == 0 && ms == want, "rfc3339 '%s' = %lld", s, (long long)want);
    if (r != 0 || ms != want)
        printf("#   r %d, got %lld\n", r, (long long)ms);
}

static void rfc_bad(const char *s)
{
    int64_t ms = -12345;
    char *copy = malloc(strlen(s) + 1);     /* exact size, for valgrind */

    memcpy(copy, s, strlen(s));
    is_int(lp_rfc3339_parse(copy, strlen(s), &ms), -1,
           "rfc3339 '%s' refused", s);
    free(copy);
}

static void test_rfc3339(void)
{
    static const char *const frac[] = { "1", "12", "123", "1234", "12345",
                                        "123456", "1234567", "12345678",
                                        "123456789" };
    static const int fms[] = { 100, 120, 123, 123, 123, 123, 123, 123, 123 };
    int64_t ms;

    rfc_is("2026-11-21T10:00:00Z", T2026);
    for (int i = 0; i < 9; i++) {
        char s[64];
        snprintf(s, sizeof s, "2026-11-21T10:00:00.%sZ", frac[i]);
        rfc_is(s, T2026 + fms[i]);
    }
    rfc_is("2026-11-21T10:00:00.999999999Z", T2026 + 999);
    rfc_is("2026-11-21T10:00:00.000Z", T2026);
    rfc_is("2026-11-21T12:00:00+02:00", T2026);
    rfc_is("2026-11-21T04:30:00-05:30", T2026);
    rfc_is("2026-11-21T10:00:00+00:00", T2026);
    rfc_is("2026-11-21T10:00:00-00:00", T2026);
    rfc_is("2026-11-22T09:59:00+23:59", T2026);
    rfc_is("2026-11-21T12:00:00.5+02:00", T2026 + 500);
    rfc_is("2026-11-21t10:00:00z", T2026);
    rfc_is("2026-11-21 10:00:00Z", T2026);
    rfc_is("2024-02-29T00:00:00Z", 1709164800000LL);
    rfc_is("2000-02-29T00:00:00Z", 951782400000LL);
    rfc_is("2026-03-05T07:08:09Z", 1772694489000LL);
    rfc_is("1970-01-01T00:00:00Z", 0);
    rfc_is("1970-01-01T00:00:00+01:00", -3600000);
    rfc_is("1969-12-31T23:59:59.999Z", -1);
    rfc_is("0000-01-01T00:00:00Z", LP_TIME_MIN);
    rfc_is("9999-12-31T23:59:59.999Z", LP_TIME_MAX);
    rfc_is("2026-12-31T23:59:59Z", 1798761599000LL);

    /* a leap second stays within its day */
    ms = 0;
    ok(lp_rfc3339_parse("2016-12-31T23:59:60Z", 20, &ms) == 0 &&
       ms >= 1483228799000LL && ms <= 1483228800000LL,
       "23:59:60 accepted, within 23:59:59..00:00:00 (%lld)", (long long)ms);
    ok(lp_rfc3339_parse("2016-12-31T23:59:60.5Z", 22, &ms) == 0,
       "23:59:60.5 accepted");

    /* only s[0..n) is read */
    ok(lp_rfc3339_parse("2026-11-21T10:00:00Zjunk", 20, &ms) == 0 &&
       ms == T2026, "n bounds the input");

    rfc_bad("2023-02-29T00:00:00Z");
    rfc_bad("1900-02-29T00:00:00Z");
    rfc_bad("2026-04-31T00:00:00Z");
    rfc_bad("2026-11-32T00:00:00Z");
    rfc_bad("2026-11-00T00:00:00Z");
    rfc_bad("2026-13-01T00:00:00Z");
    rfc_bad("2026-00-01T00:00:00Z");
    rfc_bad("2026-11-21T24:00:00Z");
    rfc_bad("2026-11-21T10:60:00Z");
    rfc_bad("2026-11-21T10:00:61Z");
    rfc_bad("2026-11-21T10:00:00");
    rfc_bad("2026-11-21T10:00:00.5");
    rfc_bad("2026-11-21T10:00:00Z ");
    rfc_bad("2026-11-21T10:00:00ZZ");
    rfc_bad("2026-11-21T10:00:00Zx");
    rfc_bad("2026-11-21T10:00:00+02:00Z");
    rfc_bad("2026-11-21T10:00:00.Z");
    rfc_bad("2026-11-21T10:00:00,5Z");
    rfc_bad("2026-11-21T10:00:00+02");
    rfc_bad("2026-11-21T10:00:00+0200");
    rfc_bad("2026-11-21T10:00:00+2:00");
    rfc_bad("2026-11-21T10:00:00+24:00");
    rfc_bad("2026-11-21T10:00:00+02:60");
    rfc_bad("2026-11-21T10:00:00+02:0");
    rfc_bad("2026-11-21T10:00Z");
    rfc_bad("2026-11-21X10:00:00Z");
    rfc_bad("2026-11-21_10:00:00Z");
    rfc_bad("2026/11/21T10:00:00Z");
    rfc_bad("26-11-21T10:00:00Z");
    rfc_bad("2026-1-21T10:00:00Z");
    rfc_bad("2026-11-21T1:00:00Z");
    rfc_bad("+2026-11-21T10:00:00Z");
    rfc_bad("2026-11-21");
    rfc_bad("");
    rfc_bad(" 2026-11-21T10:00:00Z");
    rfc_bad("2026-11-21T10:00:00 Z");
    rfc_bad("2026-11-2aT10:00:00Z");

    /* format and parse back */
    {
        static const int64_t v[] = {
            0, -1, 1, 999, T2026 + 123, LP_TIME_MIN, LP_TIME_MAX,
            951782400000LL, -86400001LL, 1709164799999LL, 4102444800000LL,
        };
        int good = 1;
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            char buf[32];
            size_t n = lp_time_format(v[i], buf);
            int64_t back = 0;
            if (n != 24 || strlen(buf) != 24 ||
                lp_rfc3339_parse(buf, n, &back) != 0 || back != v[i]) {
                good = 0;
                printf("#   %lld -> '%s' -> %lld\n", (long long)v[i], buf,
                       (long long)back);
            }
        }
        ok(good, "lp_time_format output parses back to the same ms");
    }
}

static void test_time_format(void)
{
    char buf[32];

    memset(buf, 'x', sizeof buf);
    is_int(lp_time_format(0, buf), 24, "format 0: length 24");
    is_str(buf, "1970-01-01T00:00:00.000Z", "format 0");
    lp_time_format(T2026 + 123, buf);
    is_str(buf, "2026-11-21T10:00:00.123Z", "format 2026-11-21T10:00:00.123");
    lp_time_format(1772694489007LL, buf);
    is_str(buf, "2026-03-05T07:08:09.007Z", "format pads every field");
    lp_time_format(-1, buf);
    is_str(buf, "1969-12-31T23:59:59.999Z", "format -1");
    lp_time_format(-1500, buf);
    is_str(buf, "1969-12-31T23:59:58.500Z", "format -1500");
    lp_time_format(LP_TIME_MIN, buf);
    is_str(buf, "0000-01-01T00:00:00.000Z", "format LP_TIME_MIN");
    lp_time_format(LP_TIME_MAX, buf);
    is_str(buf, "9999-12-31T23:59:59.999Z", "format LP_TIME_MAX");
    lp_time_format(1709164800000LL, buf);
    is_str(buf, "2024-02-29T00:00:00.000Z", "format a leap day");

    memset(buf, 'x', sizeof buf);
    is_int(lp_day_format(T2026 + 123, buf), 10, "day format: length 10");
    is_str(buf, "2026-11-21", "day format 2026-11-21");
    lp_day_format(-1, buf);
    is_str(buf, "1969-12-31", "day format -1");
    lp_day_format(LP_TIME_MIN, buf);
    is_str(buf, "0000-01-01", "day format LP_TIME_MIN");
    lp_day_format(LP_TIME_MAX, buf);
    is_str(buf, "9999-12-31", "day format LP_TIME_MAX");
    lp_day_format(T2026 + 50400000 - 1, buf);
    is_str(buf, "2026-11-21", "day format 23:59:59.999 is the same day");
    lp_day_format(T2026 + 50400000, buf);
    is_str(buf, "2026-11-22", "day format 00:00 is the next day");
}

/* ---- lp_event_time ----------------------------------------------------- */

/* Scans json for "timestamp" and runs lp_event_time; -99 if not scanned. */
static int ev_time(const char *json, int64_t *ms, char *err)
{
    struct lp_jkeys k;
    struct lp_jevent ev;
    struct lp_jerr e;
    int i;

    memset(&k, 0, sizeof k);
    i = lp_jkeys_add(&k, "timestamp");
    if (lp_json_event(json, strlen(json), &k, NULL, &ev, &e) < 0)
        return -99;
    err[0] = '\0';
    return lp_event_time(json, &ev.val[i], ms, err);
}

static void evt_is(const char *json, int want_r, int64_t want_ms)
{
    char err[LP_ERRLEN];
    int64_t ms = -12345;
    int r = ev_time(json, &ms, err);

    if (want_r == 1)
        ok(r == 1 && ms == want_ms, "event time %s = %lld", json,
           (long long)want_ms);
    else
        ok(r == want_r, "event time %s: %d", json, want_r);
    if (r != want_r || (want_r == 1 && ms != want_ms))
        printf("#   r %d, ms %lld, err '%s'\n", r, (long long)ms, err);
    if (want_r == -1) {
        static const char pfx[] = "time member is not epoch seconds or "
                                  "an RFC 3339 date-time: ";
        ok((strncmp(err, pfx, sizeof pfx - 1) == 0 &&
            strlen(err) > sizeof pfx - 1) ||
           (strncmp(err, "time member ", 12) == 0 &&
            strstr(err, " is outside years 0000..9999") != NULL),
           "event time %s: message (%s)", json, err);
    }
}

static void test_event_time(void)
{
    char err[LP_ERRLEN];
    int64_t ms;

    evt_is("{\"timestamp\":1795255200}", 1, T2026);
    evt_is("{\"timestamp\":1795255200.123}", 1, T2026 + 123);
    evt_is("{\"timestamp\":1795255200.5}", 1, T2026 + 500);
    evt_is("{\"timestamp\":1.7952552e9}", 1, T2026);
    evt_is("{\"timestamp\":0}", 1, 0);
    evt_is("{\"timestamp\":-1.5}", 1, -1500);
    evt_is("{\"timestamp\":\"2026-11-21T10:00:00Z\"}", 1, T2026);
    evt_is("{\"timestamp\":\"2026-11-21T12:00:00.250+02:00\"}", 1,
           T2026 + 250);
    evt_is("{\"timestamp\":\"2026-11-21T10:00:00\\u005a\"}", 1, T2026);
    evt_is("{\"timestamp\":\"2026\\u002d11-21T10:00:00Z\"}", 1, T2026);
    evt_is("{\"timestamp\":null}", 0, 0);
    evt_is("{\"a\":1}", 0, 0);
    evt_is("{\"o\":{\"timestamp\":1}}", 0, 0);
    evt_is("{\"timestamp\":-62167219200}", 1, LP_TIME_MIN);
    evt_is("{\"timestamp\":253402300799.999}", 1, LP_TIME_MAX);
    evt_is("{\"timestamp\":\"0000-01-01T00:00:00Z\"}", 1, LP_TIME_MIN);
    evt_is("{\"timestamp\":\"9999-12-31T23:59:59.999Z\"}", 1, LP_TIME_MAX);

    evt_is("{\"timestamp\":true}", -1, 0);
    evt_is("{\"timestamp\":false}", -1, 0);
    evt_is("{\"timestamp\":{}}", -1, 0);
    evt_is("{\"timestamp\":[1795255200]}", -1, 0);
    evt_is("{\"timestamp\":\"yesterday\"}", -1, 0);
    evt_is("{\"timestamp\":\"\"}", -1, 0);
    evt_is("{\"timestamp\":\"1795255200\"}", -1, 0);
    evt_is("{\"timestamp\":\"2026-11-21\"}", -1, 0);
    evt_is("{\"timestamp\":\"2026-11-21T10:00:00\"}", -1, 0);
    evt_is("{\"timestamp\":\"2026-11-21T10:00:00\\u0000\"}", -1, 0);
    evt_is("{\"timestamp\":253402300800}", -1, 0);
    evt_is("{\"timestamp\":-62167219201}", -1, 0);
    evt_is("{\"timestamp\":1e400}", -1, 0);
    evt_is("{\"timestamp\":\"0000-01-01T00:00:00+00:01\"}", -1, 0);
    evt_is("{\"timestamp\":\"9999-12-31T23:59:59-00:01\"}", -1, 0);

    ev_time("{\"timestamp\":true}", &ms, err);
    is_str(err, "time member is not epoch seconds or an RFC 3339 date-time: "
           "true", "message names the value");
    ev_time("{\"timestamp\":\"yesterday\"}", &ms, err);
    is_str(err, "time member is not epoch seconds or an RFC 3339 date-time: "
           "\"yesterday\"", "message quotes a string value");
    {
        char json[256], want[256];
        memset(want, 0, sizeof want);
        strcpy(json, "{\"timestamp\":\"");
        memset(json + 14, 'x', 100);
        strcpy(json + 114, "\"}");
        ev_time(json, &ms, err);
        snprintf(want, sizeof want, "time member is not epoch seconds or an "
                 "RFC 3339 date-time: %.60s", json + 13);
        is_str(err, want, "message shows at most 60 bytes of the value");
    }
}

/*
 * Epoch-second numbers are cut to the millisecond toward minus infinity,
 * exactly, as an RFC 3339 fraction is: the expected value is built from
 * the digits themselves (whole seconds, three decimals, the digits past
 * them), never from a double. Each number is also written with an
 * exponent, and when it is not negative as an RFC 3339 string: all three
 * must agree, over the whole range of years.
 */
static void test_event_time_exact(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int bad = 0, n = 0, out = 0;

    for (int i = 0; i < 200000; i++) {
        char json[3][128], digs[64], frac[16], err[LP_ERRLEN];
        int64_t sec, mag, want, ms = 0;
        uint64_t f7;
        int dec, neg, rest, nf = 2, r;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sec = (int64_t)(x % 320000000000ULL) - 64000000000LL;
        if (i % 3 == 0)
            sec %= 2000000000;               /* the usual epoch seconds */
        if (i % 7 == 0)
            sec = sec % 1000;                /* around 1970 */
        neg = sec < 0 || (sec == 0 && (x >> 63));
        dec = (int)((x >> 40) % 8);          /* 0..7 decimals */
        f7 = (x >> 8) % 10000000;            /* 7 digits of fraction */
        if (i % 5 == 0)
            f7 = (x >> 8) % 2 ? 9999999 : 0; /* at the edges */
        snprintf(frac, sizeof frac, "%07llu", (unsigned long long)f7);
        frac[dec] = '\0';
        /* the expected value, from the digits */
        mag = (int64_t)llabs(sec) * 1000;
        rest = 0;
        for (int k = 0; k < dec; k++) {
            if (k < 3)
                mag += (frac[k] - '0') * (k == 0 ? 100 : k == 1 ? 10 : 1);
            else if (frac[k] != '0')
                rest = 1;
        }
        want = neg ? -mag - rest : mag;
        /* plain, then d.ddde+N, then RFC 3339 */
        snprintf(json[0], sizeof json[0], "{\"timestamp\":%s%lld%s%s}",
                 neg ? "-" : "", (long long)llabs(sec), dec ? "." : "",
                 frac);
        snprintf(digs, sizeof digs, "%lld%s", (long long)llabs(sec), frac);
        {
            int nint = (int)strlen(digs) - dec;
            snprintf(json[1], sizeof json[1], "{\"timestamp\":%s%c%s%s%s%d}",
                     neg ? "-" : "", digs[0], digs[1] ? "." : "",
                     digs + 1, (i & 1) ? "e" : "E+", nint - 1);
        }
        if (!neg && want <= LP_TIME_MAX) {
            char ts[40];
            lp_time_format(sec * 1000, ts);
            ts[19] = '\0';
            snprintf(json[2], sizeof json[2], "{\"timestamp\":\"%s%s%sZ\"}",
                     ts, dec ? "." : "", frac);
            nf = 3;
        }
        for (int j = 0; j < nf; j++) {
            r = ev_time(json[j], &ms, err);
            n++;
            if (want < LP_TIME_MIN || want > LP_TIME_MAX) {
                out++;
                if (r == -1)
                    continue;
            } else if (r == 1 && ms == want) {
                continue;
            }
            if (bad++ < 5)
                printf("#   %s: r %d, ms %lld, want %lld (%s)\n", json[j],
                       r, (long long)ms, (long long)want, err);
        }
    }
    ok(bad == 0 && n > 450000 && out > 1000, "event time: %d numbers, "
       "plain, with an exponent and as RFC 3339, cut to the millisecond "
       "(%d outside the years refused)", n, out);

    /* the day boundary: cut, never rounded into the next day */
    evt_is("{\"timestamp\":1796515199.9995}", 1, 1796515199999LL);
    evt_is("{\"timestamp\":1796515199.99999999999999999999}", 1,
           1796515199999LL);
    evt_is("{\"timestamp\":\"2026-12-05T23:59:59.9995Z\"}", 1,
           1796515199999LL);
    evt_is("{\"timestamp\":1796515200}", 1, 1796515200000LL);
    evt_is("{\"timestamp\":1.7965151999995e9}", 1, 1796515199999LL);
    evt_is("{\"timestamp\":17965151999995e-4}", 1, 1796515199999LL);
    evt_is("{\"timestamp\":0.0017965151999995E+12}", 1, 1796515199999LL);
    /* before 1970: toward minus infinity, as the day files count */
    evt_is("{\"timestamp\":-0.0005}", 1, -1);
    evt_is("{\"timestamp\":-0.0000000001}", 1, -1);
    evt_is("{\"timestamp\":-0.001}", 1, -1);
    evt_is("{\"timestamp\":-0.0010001}", 1, -2);
    evt_is("{\"timestamp\":-0}", 1, 0);
    evt_is("{\"timestamp\":-0.0}", 1, 0);
    evt_is("{\"timestamp\":-0.000e5}", 1, 0);
    evt_is("{\"timestamp\":-86400.0005}", 1, -86400001);
    evt_is("{\"timestamp\":0.0005}", 1, 0);
    evt_is("{\"timestamp\":1.001}", 1, 1001);
    evt_is("{\"timestamp\":1.0010}", 1, 1001);
    evt_is("{\"timestamp\":1e-400}", 1, 0);
    evt_is("{\"timestamp\":-1e-400}", 1, -1);
    evt_is("{\"timestamp\":0e400}", 1, 0);
    evt_is("{\"timestamp\":1795255200.1234}", 1, T2026 + 123);
    evt_is("{\"timestamp\":1795255200.0005}", 1, T2026);
    evt_is("{\"timestamp\":253402300799.9999}", 1, LP_TIME_MAX);
    evt_is("{\"timestamp\":-62167219200}", 1, LP_TIME_MIN);
    evt_is("{\"timestamp\":-62167219200.0001}", -1, 0);
    evt_is("{\"timestamp\":253402300800}", -1, 0);
    evt_is("{\"timestamp\":1e400}", -1, 0);
    evt_is("{\"timestamp\":1e99999999999999999999}", -1, 0);
    evt_is("{\"timestamp\":999999999999}", -1, 0);
    evt_is("{\"timestamp\":1795255200000}", -1, 0);
    {
        char err[LP_ERRLEN];
        int64_t ms;
        ev_time("{\"timestamp\":1795255200000}", &ms, err);
        ok(strstr(err, "(milliseconds? it must be epoch seconds)") != NULL,
           "milliseconds hinted: %s", err);
        ev_time("{\"timestamp\":253402300800}", &ms, err);
        ok(strstr(err, "outside years 0000..9999") != NULL &&
           strstr(err, "milliseconds") == NULL, "seconds past 9999: %s",
           err);
    }
}

/* lp_epoch_ms_parse alone, and lp_parse_when's epoch seconds through it */
static void test_epoch_ms(void)
{
    static const struct { const char *s; int r; int64_t ms; } t[] = {
        { "1796515199.9995", 0, 1796515199999LL },
        { "1796515199.999", 0, 1796515199999LL },
        { "1796515200", 0, 1796515200000LL },
        { "0001796515200", 0, 1796515200000LL },
        { ".5", 0, 500 },
        { "5.", 0, 5000 },
        { "-.0005", 0, -1 },
        { "1.5e3", 0, 1500000 },
        { "1.5E-3", 0, 1 },
        { "-1.5e-3", 0, -2 },
        { "", -1, 0 },
        { "-", -1, 0 },
        { ".", -1, 0 },
        { "1e", -1, 0 },
        { "1e+", -1, 0 },
        { "e5", -1, 0 },
        { "1.2.3", -1, 0 },
        { "1 ", -1, 0 },
        { "+1", -1, 0 },
        { "0x10", -1, 0 },
        { "nan", -1, 0 },
        { "253402300800", -1, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t ms = -12345;
        int r = lp_epoch_ms_parse(t[i].s, strlen(t[i].s), &ms);
        ok(r == t[i].r && (r < 0 ? ms == -12345 : ms == t[i].ms),
           "epoch seconds '%s': %d, %lld", t[i].s, t[i].r,
           (long long)t[i].ms);
        if (r != t[i].r || (r == 0 && ms != t[i].ms))
            printf("#   r %d, ms %lld\n", r, (long long)ms);
    }
    {
        char err[LP_ERRLEN];
        int64_t a = 0, b = 0, c = 0;
        ok_fixed(lp_parse_when("1796515199.9995", 0, &a, err) == 0 &&
                 lp_parse_when("2026-12-05T23:59:59.9995Z", 0, &b, err) == 0 &&
                 a == 1796515199999LL && b == a,
                 "--since took epoch seconds through a double",
                 "--since 1796515199.9995 is the RFC 3339 time, cut");
        ok_fixed(lp_parse_when("1.001", 0, &c, err) == 0 && c == 1001,
                 "(int64_t)(1.001 * 1000) was 1000",
                 "--since 1.001 is 1001 ms");
        ok(lp_parse_when("253402300800", 0, &c, err) == -1,
           "--since past 9999 refused");
    }
}

/* ---- stream IDs -------------------------------------------------------- */

static void sid_is(const char *s, int want_r, uint64_t want_ms,
                   uint64_t want_seq)
{
    uint64_t ms = 7, seq = 7;
    int r = lp_stream_id_parse(s, strlen(s), &ms, &seq);

    if (want_r == 0)
        ok(r == 0 && ms == want_ms && seq == want_seq, "stream ID '%s'", s);
    else
        ok(r == -1 && ms == 7 && seq == 7, "stream ID '%s' refused", s);
}

static void test_stream_id(void)
{
    sid_is("0", 0, 0, 0);
    sid_is("0-0", 0, 0, 0);
    sid_is("1763799940000-20", 0, 1763799940000ULL, 20);
    sid_is("9999999999999999999-9999999999999999999", 0,
           9999999999999999999ULL, 9999999999999999999ULL);
    sid_is("18446744073709551615-18446744073709551615", 0, UINT64_MAX,
           UINT64_MAX);
    sid_is("000000000000000000000001-00000000000000000000002", 0, 1, 2);
    sid_is("", -1, 0, 0);
    sid_is("-", -1, 0, 0);
    sid_is("-1", -1, 0, 0);
    sid_is("1-", -1, 0, 0);
    sid_is("1-a", -1, 0, 0);
    sid_is("1a", -1, 0, 0);
    sid_is("1--2", -1, 0, 0);
    sid_is("1-2-3", -1, 0, 0);
    sid_is("1-2 ", -1, 0, 0);
    sid_is(" 1-2", -1, 0, 0);
    sid_is("18446744073709551616-0", -1, 0, 0);
    sid_is("0-18446744073709551616", -1, 0, 0);
    sid_is("99999999999999999999", -1, 0, 0);
    sid_is("1-99999999999999999999", -1, 0, 0);
}

/* send's producer fields: "<pos> <unix-ms>[ <cursor>]" */
static void test_field(void)
{
    struct lp_field f;
    const char *v;

    v = "1500 1796515199000";
    lp_field_parse(v, strlen(v), &f);
    ok(f.pos == 1500 && f.ms == 1796515199000 && f.have_ms &&
       f.cursor == NULL, "a field: position and time, no cursor");
    v = "7 1796515199000 4096";
    lp_field_parse(v, strlen(v), &f);
    ok(f.pos == 7 && f.clen == 4 && memcmp(f.cursor, "4096", 4) == 0,
       "with a cursor (an offset)");
    v = "7 1 s=ab;i=1 x";
    lp_field_parse(v, strlen(v), &f);
    ok(f.clen == 10 && memcmp(f.cursor, "s=ab;i=1 x", 10) == 0,
       "the cursor is the rest, spaces and all");
    v = "42";
    lp_field_parse(v, strlen(v), &f);
    ok(f.pos == 42 && !f.have_ms && f.cursor == NULL, "a position alone");
    v = "x";
    lp_field_parse(v, strlen(v), &f);
    ok(f.pos == 0 && !f.have_ms && f.cursor == NULL, "no number: 0");
    lp_field_parse("", 0, &f);
    ok(f.pos == 0 && f.cursor == NULL, "empty: 0");
}

int main(void)
{
    test_field();
    test_duration();
    test_size();
    test_uint();
    test_list();
    test_format_duration();
    test_url();
    test_civil();
    test_rfc3339();
    test_time_format();
    test_event_time();
    test_event_time_exact();
    test_epoch_ms();
    test_stream_id();
    return tap_done();
}
