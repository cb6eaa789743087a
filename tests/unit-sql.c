/* unit-sql.c -- SQL literals no input can break */
#include <stdio.h>
#include <string.h>

#include "lp_json.h"
#include "lp_sql.h"
#include "tap.h"

/* lp_sql_add_str of s[0..n) equals want */
static int lit(const char *s, size_t n, const char *want)
{
    struct lp_buf b = { 0 };
    int good;

    if (lp_sql_add_str(&b, s, n) < 0)
        return 0;
    good = b.len == strlen(want) && memcmp(b.p, want, b.len) == 0;
    if (!good)
        printf("#   got %.*s, want %s\n", (int)b.len, b.p, want);
    lp_buf_free(&b);
    return good;
}

/* the literal of member "k" of the object s */
static int jval(const char *s, const char *want)
{
    struct lp_jkeys keys = { 0 };
    struct lp_jlimits lim = { 64, 0 };
    struct lp_jevent ev;
    struct lp_jerr je;
    struct lp_buf b = { 0 }, tmp = { 0 };
    int good = 0;

    lp_jkeys_add(&keys, "k");
    if (lp_json_event(s, strlen(s), &keys, &lim, &ev, &je) == 0 &&
        lp_sql_add_jval(&b, &tmp, s, &ev.val[0]) == 0) {
        good = b.len == strlen(want) && memcmp(b.p, want, b.len) == 0;
        if (!good)
            printf("#   %s: got %.*s, want %s\n", s, (int)b.len, b.p, want);
    }
    lp_buf_free(&b);
    lp_buf_free(&tmp);
    return good;
}

int main(void)
{
    char big[3000], want[6100];

    ok(lit("", 0, "''"), "empty string");
    ok(lit("plain", 5, "'plain'"), "plain text");
    ok(lit("it's", 4, "'it''s'"), "a quote doubled");
    ok(lit("'", 1, "''''"), "a lone quote");
    ok(lit("'); DROP TABLE t; --", 20, "'''); DROP TABLE t; --'"),
       "an injection attempt stays inside the literal");
    ok(lit("a\\'b", 4, "'a\\''b'"), "a backslash is a plain character");
    ok(lit("a\nb\tc\r", 6, "'a\nb\tc\r'"), "control characters kept");
    ok(lit("a\r\nb\r", 5, "'a\r' || '\nb\r'"),
       "CR LF: the literal ends after the CR (the sqlite3 shell)");
    ok(lit("\r\n\r\n", 4, "'\r' || '\n\r' || '\n'"), "CR LF twice");
    ok(lit("a\0b", 3, "'a\xef\xbf\xbd" "b'"), "NUL becomes U+FFFD");
    ok(lit("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "'caf\xc3\xa9 \xf0\x9f\x98\x80'"),
       "valid UTF-8 kept");
    ok(lit("\xff", 1, "'\xef\xbf\xbd'"), "a stray byte becomes U+FFFD");
    ok(lit("\xed\xa0\x80", 3, "'\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd'"),
       "an encoded surrogate: each byte U+FFFD");
    ok(lit("\xc3", 1, "'\xef\xbf\xbd'"), "a cut sequence at the end");
    ok(lit("\xc3'", 2, "'\xef\xbf\xbd'''"), "a cut sequence before a quote");
    memset(big, '\'', sizeof big);
    memset(want, '\'', sizeof want);
    ok(lit(big, sizeof big, (want[2 * sizeof big + 2] = '\0', want)),
       "3000 quotes: 6002 bytes");

    ok(jval("{\"k\":\"x\"}", "'x'"), "a string member");
    ok(jval("{\"k\":\"a\\\"b\\u0027c\\\\\"}", "'a\"b''c\\'"),
       "escapes decoded, then quoted");
    ok(jval("{\"k\":\"\\u0000\"}", "'\xef\xbf\xbd'"), "\\u0000 decoded");
    ok(jval("{\"k\":12.5e3}", "'12.5e3'"), "a number as its text");
    ok(jval("{\"k\":true}", "'true'"), "true as its text");
    ok(jval("{\"k\":{\"a\":[1,\"'\"]}}", "'{\"a\":[1,\"''\"]}'"),
       "an object as its JSON text, quoted");
    ok(jval("{\"k\":null}", "NULL"), "null is NULL");
    ok(jval("{\"j\":1}", "NULL"), "an absent member is NULL");

    {
        struct lp_buf b = { 0 }, tmp = { 0 };
        const char *j = "{\"a\":\"x\\u0000y\\\\u0000z\\u00001\"}";
        const char *w = "'{\"a\":\"x\\ufffdy\\\\u0000z\\ufffd1\"}'";
        ok(lp_sql_add_json(&b, &tmp, j, strlen(j)) == 0 &&
           b.len == strlen(w) && memcmp(b.p, w, b.len) == 0,
           "JSON text: \\u0000 written \\ufffd, an escaped backslash "
           "before u0000 left alone");
        lp_buf_free(&b);
        lp_buf_free(&tmp);
    }
    ok(lp_sql_ident_ok("events") && lp_sql_ident_ok("_T1"),
       "plain identifiers");
    ok(!lp_sql_ident_ok("") && !lp_sql_ident_ok("1t") &&
       !lp_sql_ident_ok("a b") && !lp_sql_ident_ok("t;drop") &&
       !lp_sql_ident_ok("\"t\"") && !lp_sql_ident_ok("t\xc3\xa9"),
       "anything else refused");
    memset(big, 'a', 64);
    big[64] = '\0';
    ok(!lp_sql_ident_ok(big), "64 bytes: too long for PostgreSQL");
    big[63] = '\0';
    ok(lp_sql_ident_ok(big), "63 bytes: fine");
    return tap_done();
}
