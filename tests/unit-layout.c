/* unit-layout.c -- lp_layout: templates, safe names, expansion, matching */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_event.h"
#include "lp_json.h"
#include "lp_layout.h"
#include "lp_parse.h"
#include "tap.h"

#define T2026 1795255200000LL   /* 2026-11-21T10:00:00Z */
#define T0305 1772694489123LL   /* 2026-03-05T07:08:09.123Z */

/* ---- lp_layout_new ----------------------------------------------------- */

static void tmpl_bad(const char *tmpl, const char *what)
{
    struct lp_layout *l = (struct lp_layout *)1;
    char err[LP_ERRLEN] = "", want[LP_ERRLEN];
    int r = lp_layout_new(tmpl, &l, err);

    snprintf(want, sizeof want, "layout '%s': %s", tmpl, what);
    is_int(r, -1, "template '%s' refused", tmpl);
    is_str(err, want, "template '%s': message", tmpl);
    ok(l == NULL, "template '%s': *out set to NULL", tmpl);
    if (r == 0)
        lp_layout_free(l);
}

static void tmpl_ok(const char *tmpl, int nfields)
{
    struct lp_layout *l = NULL;
    char err[LP_ERRLEN] = "";
    int r = lp_layout_new(tmpl, &l, err);

    is_int(r, 0, "template '%s' accepted", tmpl);
    if (r != 0) {
        printf("#   %s\n", err);
        return;
    }
    ok(l != NULL, "template '%s': layout returned", tmpl);
    is_int(lp_layout_nfields(l), nfields, "template '%s': %d fields", tmpl,
           nfields);
    lp_layout_free(l);
}

static void test_new(void)
{
    static const char day[] = "the file name must hold the day (%F, or %Y, "
                              "%m and %d) for logpipe-rotate";
    struct lp_layout *l;
    char err[LP_ERRLEN];

    tmpl_bad("", "must be a relative path");
    tmpl_bad("/var/log/%F.jsonl", "must be a relative path");
    tmpl_bad("/%F.jsonl", "must be a relative path");
    tmpl_bad("a//b/%F.jsonl", "empty path component");
    tmpl_bad("a/%Y//%F.jsonl", "empty path component");
    tmpl_bad("../x/%F.jsonl", "a path component may not start with '.'");
    tmpl_bad("x/../%F.jsonl", "a path component may not start with '.'");
    tmpl_bad("x/./%F.jsonl", "a path component may not start with '.'");
    tmpl_bad(".hidden/%F.jsonl", "a path component may not start with '.'");
    tmpl_bad("x/.%F.jsonl", "a path component may not start with '.'");
    tmpl_bad("{service}/.x/%F.jsonl",
             "a path component may not start with '.'");
    tmpl_bad("x/", "ends with '/'");
    tmpl_bad("x/%F.jsonl/", "ends with '/'");
    tmpl_bad("a b/%F.jsonl",
             "character ' ' is not allowed (only A-Z a-z 0-9 . _ - /)");
    tmpl_bad("~/%F.jsonl",
             "character '~' is not allowed (only A-Z a-z 0-9 . _ - /)");
    tmpl_bad("a\\b/%F.jsonl",
             "character '\\' is not allowed (only A-Z a-z 0-9 . _ - /)");
    tmpl_bad("x:y/%F.jsonl",
             "character ':' is not allowed (only A-Z a-z 0-9 . _ - /)");
    tmpl_bad("%F}.jsonl",
             "character '}' is not allowed (only A-Z a-z 0-9 . _ - /)");
    tmpl_bad("%Z/%F.jsonl", "unsupported conversion '%Z' (use %Y %y %m %d "
             "%H %M %S %j %F)");
    tmpl_bad("%s/%F.jsonl", "unsupported conversion '%s' (use %Y %y %m %d "
             "%H %M %S %j %F)");
    tmpl_bad("%%/%F.jsonl", "unsupported conversion '%%' (use %Y %y %m %d "
             "%H %M %S %j %F)");
    tmpl_bad("%F.jsonl%", "unsupported conversion '% ' (use %Y %y %m %d "
             "%H %M %S %j %F)");
    tmpl_bad("{service}/%F.json", "the file name must end in .jsonl");
    tmpl_bad("{service}/%F", "the file name must end in .jsonl");
    tmpl_bad("%F.jsonl.gz", "the file name must end in .jsonl");
    tmpl_bad("%F.JSONL", "the file name must end in .jsonl");
    tmpl_bad("%Y/%m/%d/{service}.jsonl", day);
    tmpl_bad("{service}.jsonl", day);
    tmpl_bad("%F/x.jsonl", day);
    tmpl_bad("%Y-%m.jsonl", day);
    tmpl_bad("%y-%m-%d.jsonl", day);
    tmpl_bad("%Y-%j.jsonl", day);
    tmpl_bad("{/%F.jsonl", "'{' without a field name and '}'");
    tmpl_bad("{}/%F.jsonl", "'{' without a field name and '}'");
    tmpl_bad("%F{x.jsonl", "'{' without a field name and '}'");
    tmpl_bad("{a{b}/%F.jsonl", "nested '{'");
    tmpl_bad("{a}{b}{c}{d}{e}{f}{g}{h}{i}/%F.jsonl", "more than 8 fields");
    /* fuzz finding layout-1: values may hold digits, so a day between two
     * fields has no fixed place and was read from the wrong digits */
    tmpl_bad("{a}%Y%m%d{b}.jsonl", "%Y sits between two fields in the file "
             "name, so the day cannot be read back (a value may hold "
             "digits): keep the fields on one side of the day");
    tmpl_bad("x/{a}-%F-{b}.jsonl", "%F sits between two fields in the file "
             "name, so the day cannot be read back (a value may hold "
             "digits): keep the fields on one side of the day");
    tmpl_bad("%Y{a}%m{b}%d.jsonl", "%m sits between two fields in the file "
             "name, so the day cannot be read back (a value may hold "
             "digits): keep the fields on one side of the day");
    tmpl_ok("{a}/%F-{b}.jsonl", 2);
    tmpl_ok("{a}-{b}-%F.jsonl", 2);
    tmpl_ok("%F-{a}-{b}.jsonl", 2);
    tmpl_ok("%Y{a}%m%d.jsonl", 1);
    tmpl_ok("{a}/%Y/{b}/%F.jsonl", 2);
    tmpl_ok("{a}%j{b}%F.jsonl", 2);     /* %j is not read when %F is there */
    tmpl_ok("{a}%H{b}-%F.jsonl", 2);

    tmpl_ok("{service}/%Y-%m-%d.jsonl", 1);
    tmpl_ok("%F.jsonl", 0);
    tmpl_ok("%Y%m%d.jsonl", 0);
    tmpl_ok("{a}/{b}/%Y/%m/%F-%H.jsonl", 2);
    tmpl_ok("x.y/z_1-2/%Y/%d-%m-%Y.jsonl", 0);
    tmpl_ok("{a}/{a}-%F.jsonl", 1);
    tmpl_ok("%F-{host}.jsonl", 1);
    tmpl_ok("%Y/%j/%H%M%S-%y-%F.jsonl", 0);
    tmpl_ok("{a}{b}{c}{d}{e}{f}{g}{h}/%F.jsonl", 8);
    tmpl_ok("{a}{b}{c}{d}{e}{f}{g}{h}{a}/%F.jsonl", 8);
    tmpl_ok("_x/-y/0/%F.jsonl", 0);
    tmpl_ok("a..b/%F..jsonl", 0);

    /* a '/' inside {field} is part of a member name, not a directory */
    l = NULL;
    ok_fixed(lp_layout_new("x/%F-{a/b}.jsonl", &l, err) == 0,
            "lp_layout_new: strrchr(tmpl, '/') finds the '/' inside a "
            "{field}, so the file name is taken to start after it",
            "x/%%F-{a/b}.jsonl: day in the file name, field 'a/b'");
    if (l == NULL)
        printf("#   %s\n", err);
    lp_layout_free(l);

    l = NULL;
    lp_layout_new("{host}/{service}/{host}/%F.jsonl", &l, err);
    ok(l != NULL && lp_layout_nfields(l) == 2 &&
       strcmp(lp_layout_field(l, 0), "host") == 0 &&
       strcmp(lp_layout_field(l, 1), "service") == 0,
       "fields in order of first use, each once");
    lp_layout_free(l);
    lp_layout_free(NULL);
    ok(1, "lp_layout_free(NULL) is a no-op");
}

/* ---- lp_safe_name ------------------------------------------------------ */

static void test_safe_name(void)
{
    char s[80];

    memset(s, 'a', sizeof s);
    is_int(lp_safe_name(s, 64), 1, "64 bytes: safe");
    is_int(lp_safe_name(s, 65), 0, "65 bytes: unsafe");
    is_int(lp_safe_name(s, 1), 1, "1 byte: safe");
    is_int(lp_safe_name("", 0), 0, "empty: unsafe");
    is_int(lp_safe_name(".x", 2), 0, "leading '.': unsafe");
    is_int(lp_safe_name(".", 1), 0, "'.': unsafe");
    is_int(lp_safe_name("..", 2), 0, "'..': unsafe");
    is_int(lp_safe_name("-x", 2), 0, "leading '-': unsafe");
    is_int(lp_safe_name("_x", 2), 1, "leading '_': safe");
    is_int(lp_safe_name("0", 1), 1, "'0': safe");
    is_int(lp_safe_name("x.-_", 4), 1, "'.', '-', '_' after the first: safe");
    is_int(lp_safe_name("A-Z_a.z09", 9), 1, "mixed: safe");
    is_int(lp_safe_name("a/b", 3), 0, "'/': unsafe");
    is_int(lp_safe_name("a b", 3), 0, "space: unsafe");
    is_int(lp_safe_name("a\\b", 3), 0, "backslash: unsafe");
    is_int(lp_safe_name("a\0b", 3), 0, "NUL inside: unsafe");
    is_int(lp_safe_name("caf\xc3\xa9", 5), 0, "non-ASCII: unsafe");
    is_int(lp_safe_name("\xff", 1), 0, "byte 0xFF: unsafe");
    is_int(lp_safe_name("a~", 2), 0, "'~': unsafe");
    is_int(lp_safe_name("a:b", 3), 0, "':': unsafe");
    is_int(lp_safe_name("abc/", 3), 1, "only s[0..n) is looked at");
    s[10] = '.';
    s[63] = '-';
    is_int(lp_safe_name(s, 64), 1, "64 bytes with '.' and '-' inside: safe");
}

/* ---- lp_layout_expand -------------------------------------------------- */

/*
 * Compiles tmpl, scans json for its fields (after an unrelated wanted key,
 * so that keyidx is not the identity), and expands at time ms.
 */
static long expand(const char *tmpl, const char *json, int64_t ms,
                   char *out, size_t cap, char *err)
{
    struct lp_layout *l = NULL;
    struct lp_jkeys k;
    struct lp_jevent ev;
    struct lp_jerr e;
    int keyidx[LP_LAYOUT_MAXFIELDS];
    long r;

    out[0] = '\0';
    err[0] = '\0';
    if (lp_layout_new(tmpl, &l, err) < 0)
        return -100;
    memset(&k, 0, sizeof k);
    lp_jkeys_add(&k, "timestamp");
    for (int i = 0; i < lp_layout_nfields(l); i++)
        keyidx[i] = lp_jkeys_add(&k, lp_layout_field(l, i));
    if (lp_json_event(json, strlen(json), &k, NULL, &ev, &e) < 0) {
        lp_layout_free(l);
        return -200;
    }
    r = lp_layout_expand(l, ms, json, &ev, keyidx, out, cap, err);
    lp_layout_free(l);
    return r;
}

static void path_is(const char *tmpl, const char *json, int64_t ms,
                    const char *want)
{
    char out[LP_LAYOUT_PATHMAX], err[LP_ERRLEN];
    long r = expand(tmpl, json, ms, out, sizeof out, err);

    is_int(r, (long)strlen(want), "%s with %s: length", tmpl, json);
    is_str(out, want, "%s with %s: path", tmpl, json);
    if (r < 0)
        printf("#   %s\n", err);
}

static void unsafe(const char *json, const char *shown)
{
    char out[LP_LAYOUT_PATHMAX], err[LP_ERRLEN], want[LP_ERRLEN];
    long r = expand("{service}/%F.jsonl", json, T2026, out, sizeof out, err);

    snprintf(want, sizeof want, "member \"service\" is not a safe name: %s",
             shown);
    is_int(r, -1, "%s: unsafe", json);
    is_str(err, want, "%s: message names field and value", json);
}

static void test_expand(void)
{
    static const char *const tm = "%Y/%y/%m/%d/%H/%M/%S/%j/%F.jsonl";
    char out[LP_LAYOUT_PATHMAX], err[LP_ERRLEN], v64[65], json[200];
    long r;

    path_is("{service}/%Y-%m-%d.jsonl", "{\"service\":\"api\"}", T2026,
            "api/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"level\":\"x\"}", T2026,
            "_none/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"service\":null}", T2026,
            "_none/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"service\":42}", T2026,
            "42/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"service\":0}", T2026,
            "0/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"service\":\"\\u0061pi\"}", T2026,
            "api/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"service\":\"_x.y-z\"}", T2026,
            "_x.y-z/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl",
            "{\"service\":\"old\",\"service\":\"new\"}", T2026,
            "new/2026-11-21.jsonl");
    path_is("{service}/%F.jsonl", "{\"o\":{\"service\":\"x\"}}", T2026,
            "_none/2026-11-21.jsonl");
    path_is("{a}/{b}/%F.jsonl", "{\"b\":\"B\",\"a\":\"A\"}", T2026,
            "A/B/2026-11-21.jsonl");
    path_is("{a}/{a}-%F.jsonl", "{\"a\":\"x\"}", T2026,
            "x/x-2026-11-21.jsonl");
    path_is("logs/{a}_{b}/%F.jsonl", "{\"a\":1,\"b\":\"z\"}", T2026,
            "logs/1_z/2026-11-21.jsonl");
    memset(v64, 'v', 64);
    v64[64] = '\0';
    snprintf(json, sizeof json, "{\"service\":\"%s\"}", v64);
    {
        char want[128];
        snprintf(want, sizeof want, "%s/2026-11-21.jsonl", v64);
        path_is("{service}/%F.jsonl", json, T2026, want);
    }

    unsafe("{\"service\":-5}", "-5");
    unsafe("{\"service\":1.5}", "1.5");
    unsafe("{\"service\":1e3}", "1e3");
    unsafe("{\"service\":true}", "true");
    unsafe("{\"service\":false}", "false");
    unsafe("{\"service\":{\"a\":1}}", "{\"a\":1}");
    unsafe("{\"service\":[1]}", "[1]");
    unsafe("{\"service\":\"../x\"}", "\"../x\"");
    unsafe("{\"service\":\"..\"}", "\"..\"");
    unsafe("{\"service\":\".hidden\"}", "\".hidden\"");
    unsafe("{\"service\":\"-rf\"}", "\"-rf\"");
    unsafe("{\"service\":\"a/b\"}", "\"a/b\"");
    unsafe("{\"service\":\"a\\/b\"}", "\"a\\/b\"");
    unsafe("{\"service\":\"\\u002e\\u002e\"}", "\"\\u002e\\u002e\"");
    unsafe("{\"service\":\"a\\u0000b\"}", "\"a\\u0000b\"");
    unsafe("{\"service\":\"\"}", "\"\"");
    unsafe("{\"service\":\"a b\"}", "\"a b\"");
    unsafe("{\"service\":\"caf\xc3\xa9\"}", "\"caf\xc3\xa9\"");
    snprintf(json, sizeof json, "{\"service\":\"%sv\"}", v64);
    {
        char shown[80];
        snprintf(shown, sizeof shown, "\"%sv\"", v64);
        unsafe(json, shown);
    }
    snprintf(json, sizeof json, "{\"service\":\"%s\\u0076\"}", v64);
    {
        char shown[90];
        snprintf(shown, sizeof shown, "\"%s\\u0076\"", v64);
        unsafe(json, shown);
    }
    {
        /* a long value is shown cut to 80 bytes */
        char big[300], shown[100];
        memset(big, 'w', 150);
        big[150] = '\0';
        snprintf(json, sizeof json, "{\"service\":\"%s\"}", big);
        snprintf(shown, sizeof shown, "\"%.79s", big);
        unsafe(json, shown);
    }

    /* every time conversion */
    path_is(tm, "{}", T0305, "2026/26/03/05/07/08/09/064/2026-03-05.jsonl");
    path_is(tm, "{}", T2026, "2026/26/11/21/10/00/00/325/2026-11-21.jsonl");
    path_is(tm, "{}", 1735689599999LL,
            "2024/24/12/31/23/59/59/366/2024-12-31.jsonl");
    path_is(tm, "{}", 0, "1970/70/01/01/00/00/00/001/1970-01-01.jsonl");
    path_is(tm, "{}", -1, "1969/69/12/31/23/59/59/365/1969-12-31.jsonl");
    path_is(tm, "{}", LP_TIME_MIN,
            "0000/00/01/01/00/00/00/001/0000-01-01.jsonl");
    path_is(tm, "{}", LP_TIME_MAX,
            "9999/99/12/31/23/59/59/365/9999-12-31.jsonl");
    path_is(tm, "{}", -62135596800000LL,
            "0001/01/01/01/00/00/00/001/0001-01-01.jsonl");
    path_is("%Y%m%d.jsonl", "{}", 946684800000LL, "20000101.jsonl");

    r = expand(tm, "{}", LP_TIME_MAX + 1, out, sizeof out, err);
    is_int(r, -1, "year 10000 refused");
    is_str(err, "event time is outside years 0000..9999",
           "year 10000: message");
    r = expand(tm, "{}", LP_TIME_MIN - 1, out, sizeof out, err);
    is_int(r, -1, "year -1 refused");
    is_str(err, "event time is outside years 0000..9999", "year -1: message");
    r = expand(tm, "{}", INT64_MAX / 2, out, sizeof out, err);
    is_int(r, -1, "far future refused");
    /* fuzz finding layout-2: lp_time_tm overflowed on these (UB) */
    r = expand(tm, "{}", INT64_MIN, out, sizeof out, err);
    ok(r == -1 && strcmp(err, "event time is outside years 0000..9999") == 0,
       "INT64_MIN refused");
    r = expand(tm, "{}", INT64_MAX, out, sizeof out, err);
    ok(r == -1 && strcmp(err, "event time is outside years 0000..9999") == 0,
       "INT64_MAX refused");

    /* the output buffer */
    r = expand("{service}/%F.jsonl", "{\"service\":\"api\"}", T2026, out, 21,
               err);
    ok(r == 20 && strcmp(out, "api/2026-11-21.jsonl") == 0,
       "cap = length + 1: fits");
    r = expand("{service}/%F.jsonl", "{\"service\":\"api\"}", T2026, out, 20,
               err);
    is_int(r, -1, "cap = length: refused");
    is_str(err, "path longer than 19 bytes", "cap = length: message");
    r = expand("{service}/%F.jsonl", "{\"service\":\"api\"}", T2026, out, 4,
               err);
    is_int(r, -1, "cap 4: refused");
}

/* ---- lp_layout_match --------------------------------------------------- */

/* Expands tmpl for json at ms, then matches the path: 1 when it matches
 * with the day of ms. */
static int round_trip(const char *tmpl, const char *json, int64_t ms)
{
    char out[LP_LAYOUT_PATHMAX], err[LP_ERRLEN];
    struct lp_layout *l = NULL;
    long r = expand(tmpl, json, ms, out, sizeof out, err);
    int64_t day = INT64_MIN, want = ms / 86400000 - (ms % 86400000 < 0);
    int m;

    if (r < 0 || lp_layout_new(tmpl, &l, err) < 0) {
        printf("#   %s: %s\n", tmpl, err);
        return 0;
    }
    m = lp_layout_match(l, out, (size_t)r, &day);
    lp_layout_free(l);
    if (m != 1 || day != want)
        printf("#   %s: match %d, day %lld, want %lld\n", out, m,
               (long long)day, (long long)want);
    return m == 1 && day == want;
}

static int match_day(const char *tmpl, const char *path, int64_t *day)
{
    struct lp_layout *l = NULL;
    char err[LP_ERRLEN];
    int m;

    if (lp_layout_new(tmpl, &l, err) < 0) {
        printf("#   %s\n", err);
        return -1;
    }
    *day = INT64_MIN;
    m = lp_layout_match(l, path, strlen(path), day);
    lp_layout_free(l);
    return m;
}

static void watchdog(int sig)
{
    static const char msg[] = "not ok - lp_layout_match ends within 60 s "
                              "(exponential backtracking?)\n";
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static void test_match(void)
{
    char path[LP_LAYOUT_PATHMAX + 8];
    int64_t day;

    ok(match_day("{service}/%F.jsonl", "api/2026-11-21.jsonl", &day) == 1 &&
       day == 20778, "api/2026-11-21.jsonl: day 20778");
    ok(match_day("%Y/%m/%d/{s}-%F.jsonl", "2026/11/21/x-2026-11-21.jsonl",
                 &day) == 1 && day == 20778, "the file name's day");
    ok(match_day("%Y%m%d.jsonl", "20261121.jsonl", &day) == 1 &&
       day == 20778, "%%Y%%m%%d");
    is_int(match_day("{service}/%F.jsonl", "api/2026-13-21.jsonl", &day), 0,
           "month 13: no match");
    is_int(match_day("{service}/%F.jsonl", ".x/2026-11-21.jsonl", &day), 0,
           "unsafe field value: no match");
    is_int(match_day("{service}/%F.jsonl", "a/b/2026-11-21.jsonl", &day), 0,
           "a '/' in a field value: no match");
    is_int(match_day("{service}/%F.jsonl", "api/2026-11-21.jsonl.gz", &day),
           0, "a suffix: no match");

    /* fuzz finding layout-1: fields whose values hold digits next to the
     * day; the templates that made it ambiguous are refused, these are not */
    ok(round_trip("{a}-%F.jsonl", "{\"a\":\"x-2001-01-01\"}", T2026),
       "{a}-%%F with a = x-2001-01-01: the right day");
    ok(round_trip("%F-{a}.jsonl", "{\"a\":\"2001-01-01-1\"}", T2026),
       "%%F-{a} with a = 2001-01-01-1: the right day");
    ok(round_trip("%Y{a}%m%d.jsonl", "{\"a\":\"1231\"}", T0305),
       "%%Y{a}%%m%%d with a = 1231: the right day");
    ok(round_trip("{a}{b}%Y%m%d.jsonl", "{\"a\":\"1\",\"b\":\"2\"}", T0305),
       "{a}{b}%%Y%%m%%d: the right day");
    ok(round_trip("{a}/{b}{c}/%F-{b}{c}.jsonl",
                  "{\"a\":\"9\",\"b\":\"2024\",\"c\":\"01\"}", -1),
       "fields in a directory and after the day: the right day");
    ok(round_trip("%Y/%m/%d/%F.jsonl", "{}", LP_TIME_MIN),
       "year 0000 round trip");
    ok(round_trip("%Y/%m/%d/%F.jsonl", "{}", LP_TIME_MAX),
       "year 9999 round trip");

    /* fuzz finding layout-3: 64^k tries for k fields in a row that cannot
     * match; a watchdog, as the old code took years, not seconds */
    signal(SIGALRM, watchdog);
    alarm(60);
    memset(path, 'a', 300);
    strcpy(path + 300, "/2026-11-21.jsonl");
    is_int(match_day("{a}{b}{c}{d}{e}{f}{g}{h}-%F.jsonl", path, &day), 0,
           "8 fields in a row, no match: ends");
    is_int(match_day("{a}{b}{c}{d}{e}{f}{g}{h}{a}{b}{c}{d}{e}{f}{g}{h}/"
                     "%F.jsonl", path, &day), 1,
           "16 fields in a row, 300 bytes, then the day: matches");
    memset(path, '7', 1000);
    strcpy(path + 1000, "!");
    is_int(match_day("{a}{b}{c}{d}{e}{f}{g}{h}{a}{b}{c}{d}{e}{f}{g}{h}"
                     "%F.jsonl", path, &day), 0,
           "16 fields in a row against 1000 digits: ends");
    memset(path, 'a', LP_LAYOUT_PATHMAX);
    strcpy(path + LP_LAYOUT_PATHMAX - 17, "/2026-11-21.jsonl");
    is_int(match_day("{a}{b}{c}{d}{e}{f}{g}{h}{a}{b}{c}{d}{e}{f}{g}{h}/"
                     "%F.jsonl", path, &day), 0,
           "a path of LP_LAYOUT_PATHMAX bytes never matches");
    alarm(0);
}

int main(void)
{
    test_new();
    test_safe_name();
    test_expand();
    test_match();
    return tap_done();
}
