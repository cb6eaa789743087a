/* unit-json.c -- lp_json: JSONTestSuite, member spans, "_id" cuts, limits */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lp_json.h"
#include "tap.h"

/* ---- helpers ----------------------------------------------------------- */

/* Reads a whole file of any size; returns malloc'd bytes, caller frees. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *nb;
    size_t cap = 0, len = 0, got;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            if ((nb = realloc(buf, cap)) == NULL) {
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    } else if ((nb = realloc(buf, len ? len : 1)) != NULL) {
        buf = nb;               /* exact size: valgrind sees any over-read */
    }
out:
    fclose(f);
    *n = len;
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int valid(const char *s, struct lp_jerr *e)
{
    return lp_json_valid(s, strlen(s), NULL, e);
}

static int valid_lim(const char *s, int depth, uint32_t members,
                     struct lp_jerr *e)
{
    struct lp_jlimits lim = { depth, members };

    return lp_json_valid(s, strlen(s), &lim, e);
}

/* Expects s to be rejected with exactly msg, the offending byte at off. */
static void bad_json(const char *label, const char *s, size_t n,
                     const char *msg, size_t off)
{
    struct lp_jerr e;
    char *copy = malloc(n ? n : 1);     /* exact size, for valgrind */

    memcpy(copy, s, n);
    memset(&e, 0, sizeof e);
    is_int(lp_json_valid(copy, n, NULL, &e), -1, "%s: rejected", label);
    is_str(e.msg, msg, "%s: message", label);
    is_int(e.off, off, "%s: offset", label);
    free(copy);
}

#define BAD(label, lit, msg, off) \
    bad_json(label, lit, sizeof(lit) - 1, msg, off)

/* Offset of the first occurrence of needle in s (must be there). */
static uint32_t at(const char *s, const char *needle)
{
    const char *p = strstr(s, needle);

    return p ? (uint32_t)(p - s) : 0xffffffffu;
}

/* s with control characters escaped, for a one-line TAP description;
 * returns one of two static buffers, so two calls can share a printf. */
static const char *show(const char *s)
{
    static char buf[2][512];
    static int which;
    char *o = buf[which ^= 1], *start = o;

    for (; *s && o - start < 500; s++) {
        if (*s == '\n' || *s == '\t' || *s == '\r') {
            *o++ = '\\';
            *o++ = *s == '\n' ? 'n' : *s == '\t' ? 't' : 'r';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return start;
}

/* Removes JSON whitespace outside strings (s is valid JSON). */
static void squeeze(const char *s, size_t n, char *out)
{
    int in_str = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            *out++ = c;
            if (c == '\\' && i + 1 < n)
                *out++ = s[++i];
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
            *out++ = c;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *out++ = c;
        }
    }
    *out = '\0';
}

/*
 * Scans in, applies the "_id" cuts, and checks the result: exactly want
 * (or want once whitespace outside strings is removed, when loose), no
 * byte written past lp_json_cut_len, and valid JSON. why != NULL marks a
 * known lib bug.
 */
static void cut_is(const char *in, const char *want, int loose,
                   const char *why)
{
    struct lp_jevent ev;
    struct lp_jerr e;
    size_t n = strlen(in), cl;
    char out[512], sq[512];
    int r, pass;

    memset(&ev, 0, sizeof ev);
    r = lp_json_event(in, n, NULL, NULL, &ev, &e);
    is_int(r, 0, "cut %s: scanned", show(in));
    if (r < 0)
        return;
    cl = lp_json_cut_len(&ev, n);
    memset(out, '#', sizeof out);
    lp_json_cut_copy(&ev, in, n, out);
    pass = cl < sizeof out - 1 && out[cl] == '#';
    ok(pass, "cut %s: cut_copy writes exactly cut_len (%zu) bytes",
       show(in), cl);
    out[cl < sizeof out ? cl : sizeof out - 1] = '\0';
    if (loose) {
        squeeze(out, strlen(out), sq);
        pass = strcmp(sq, want) == 0;
    } else {
        pass = strcmp(out, want) == 0;
    }
    if (why)
        ok_fixed(pass, why, "cut %s -> %s", show(in), want);
    else
        ok(pass, "cut %s -> %s", show(in), want);
    if (!pass)
        printf("#   got:  '%s'\n", out);
    pass = lp_json_valid(out, strlen(out), NULL, &e) == 0;
    if (why)
        ok_fixed(pass, why, "cut %s: result is valid JSON", show(in));
    else
        ok(pass, "cut %s: result is valid JSON", show(in));
}

/* A string of depth nested arrays around inner, or objects {"a": ...}. */
static char *nest(int depth, int objects, const char *inner)
{
    size_t il = strlen(inner);
    char *s = malloc((size_t)depth * 6 + il + 1), *p = s;

    for (int i = 0; i < depth; i++) {
        if (objects) {
            memcpy(p, "{\"a\":", 5);
            p += 5;
        } else {
            *p++ = '[';
        }
    }
    memcpy(p, inner, il);
    p += il;
    for (int i = 0; i < depth; i++)
        *p++ = objects ? '}' : ']';
    *p = '\0';
    return s;
}

/* ---- JSONTestSuite ----------------------------------------------------- */

static void test_suite(const char *dir)
{
    char path[4096], **names = NULL;
    size_t nnames = 0, cap = 0;
    int ny = 0, nn = 0, ni = 0;
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof path, "%s/test_parsing", dir);
    d = opendir(path);
    ok(d != NULL, "opened %s", path);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strlen(de->d_name) < 7 ||
            strcmp(de->d_name + strlen(de->d_name) - 5, ".json") != 0)
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 512;
            names = realloc(names, cap * sizeof *names);
        }
        names[nnames++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, nnames, sizeof *names, cmp_names);

    for (size_t i = 0; i < nnames; i++) {
        const char *nm = names[i];
        struct lp_jerr e;
        size_t n;
        char *buf;
        int r;

        snprintf(path, sizeof path, "%s/test_parsing/%s", dir, nm);
        buf = slurp(path, &n);
        if (buf == NULL) {
            ok(0, "read %s", nm);
            continue;
        }
        memset(&e, 0, sizeof e);
        r = lp_json_valid(buf, n, NULL, &e);
        if (nm[0] == 'y') {
            ny++;
            ok(r == 0, "accepts %s", nm);
            if (r != 0)
                printf("#   %s\n", e.msg);
        } else if (nm[0] == 'n') {
            nn++;
            ok(r == -1 && e.msg[0] != '\0', "rejects %s (%s)", nm,
               r == 0 ? "accepted" : e.msg);
        } else {
            ni++;
            printf("# %s: %s%s\n", nm, r == 0 ? "accepted" : "rejected: ",
                   r == 0 ? "" : e.msg);
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    ok(ny >= 95 && nn >= 188 && ni >= 35,
       "suite has all files (y %d, n %d, i %d)", ny, nn, ni);
}

/* ---- validation: messages, offsets, UTF-8, limits ---------------------- */

static void test_errors(void)
{
    struct lp_jerr e;

    BAD("leading zero", "{\"a\":01}",
             "leading zero in number at byte 7", 6);
    BAD("leading zero negative", "-012",
             "leading zero in number at byte 3", 2);
    BAD("unterminated string", "\"abc",
             "unterminated string at byte 5", 4);
    BAD("unterminated member string", "{\"a\":\"bc",
             "unterminated string at byte 9", 8);
    BAD("unterminated long string", "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "unterminated string at byte 31", 30);
    BAD("backslash at end", "\"ab\\",
             "unterminated string at byte 4", 3);
    BAD("overlong C0 80", "\"\xc0\x80\"", "invalid UTF-8 at byte 2",
             1);
    BAD("surrogate ED A0 80", "\"\xed\xa0\x80\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("F5 lead byte", "\"\xf5\x80\x80\x80\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("above U+10FFFF F4 90", "\"\xf4\x90\x80\x80\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("overlong E0 80 80", "\"\xe0\x80\x80\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("overlong F0 80 80 80", "\"\xf0\x80\x80\x80\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("stray continuation", "\"a\x80\"", "invalid UTF-8 at byte 3",
             2);
    BAD("truncated sequence", "\"\xe2\x82\"",
             "invalid UTF-8 at byte 2", 1);
    BAD("invalid UTF-8 in a key", "{\"\xff\":1}",
             "invalid UTF-8 at byte 3", 2);
    BAD("raw tab in string", "\"a\tb\"",
             "control character in string at byte 3", 2);
    BAD("raw newline in string", "[\"ab\ncd\"]",
             "control character in string at byte 5", 4);
    BAD("raw NUL in string", "\"a\0b\"",
             "control character in string at byte 3", 2);
    BAD("lone high surrogate", "\"\\ud800\"",
             "lone high surrogate in \\u escape at byte 2", 1);
    BAD("high surrogate + non-low", "\"\\ud800\\u0041\"",
             "lone high surrogate in \\u escape at byte 2", 1);
    BAD("lone low surrogate", "\"x\\udc00\"",
             "lone low surrogate in \\u escape at byte 3", 2);
    BAD("bad \\u escape", "\"\\u12g4\"",
             "invalid \\u escape at byte 2", 1);
    BAD("bad escape", "\"\\x\"", "invalid escape at byte 2", 1);
    BAD("empty input", "", "empty input at byte 1", 0);
    BAD("whitespace only", " \n\t\r", "empty input at byte 5", 4);
    BAD("trailing comma", "[1,]", "unexpected ']' at byte 4", 3);
    BAD("missing colon", "{\"a\" 1}", "unexpected '1' at byte 6", 5);
    BAD("truncated literal", "tru",
             "unexpected end of input at byte 4", 3);
    BAD("bad literal", "nul1", "unexpected '1' at byte 4", 3);
    BAD("NaN", "NaN", "unexpected 'N' at byte 1", 0);
    BAD("trailing garbage", "[1] x", "unexpected 'x' at byte 5", 4);
    BAD("two values", "{} {}", "unexpected '{' at byte 4", 3);
    BAD("control byte", "\x01", "unexpected byte 0x01 at byte 1", 0);
    BAD("minus alone", "-", "number without digits at byte 2", 1);
    BAD("dot no digits", "1.",
             "number without digits after '.' at byte 3", 2);
    BAD("exponent no digits", "1e+",
             "number without digits in exponent at byte 4", 3);
    BAD("unterminated object", "{\"a\":1",
             "unterminated object at byte 7", 6);
    BAD("unterminated array", "[1", "unterminated array at byte 3",
             2);
    BAD("single quotes", "{'a':1}", "unexpected \"'\" at byte 2", 1);

    /* valid corner cases */
    is_int(valid("-0", &e), 0, "-0 is valid");
    is_int(valid("0.0e-0", &e), 0, "0.0e-0 is valid");
    is_int(valid("  \"\\u00e9\\ud83d\\ude00\" \r\n", &e), 0,
           "escapes and surrounding whitespace are valid");
    is_int(valid("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"",
                 &e), 0, "2, 3 and 4-byte UTF-8 up to U+10FFFF are valid");
    is_int(valid("{\"a\":[],\"b\":{},\"c\":[{}],\"d\":\"\"}", &e), 0,
           "empty containers are valid");
    is_int(lp_json_valid("[1] junk", 3, NULL, &e), 0,
           "only s[0..n) is looked at");
}

/*
 * Strings cross the 16-byte blocks of the SSE2 scanner at every offset:
 * a bad byte must be found exactly where it is, and a good multi-byte
 * character must be accepted wherever it falls.
 */
static void test_string_blocks(void)
{
    static const struct { const char *seq; int bad; } seqs[] = {
        { "\xc3\xa9", 0 }, { "\xe2\x82\xac", 0 }, { "\xf0\x9f\x98\x80", 0 },
        { "\\\"", 0 }, { "\\u00e9", 0 }, { "\\ud83d\\ude00", 0 },
        { "\xc0\x80", 1 }, { "\xed\xa0\x80", 1 }, { "\x1f", 2 },
        { "\x7f", 0 }, { "\xe2\x82", 1 },
    };
    int wrong = 0, checks = 0;
    char s[128], first[200] = "";

    for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++) {
        for (int k = 0; k < 40; k++) {
            struct lp_jerr e;
            size_t sl = strlen(seqs[q].seq), n;
            char *h;
            int r;

            s[0] = '"';
            memset(s + 1, 'a', (size_t)k);
            memcpy(s + 1 + k, seqs[q].seq, sl);
            memset(s + 1 + k + sl, 'b', 20);
            s[1 + k + sl + 20] = '"';
            n = (size_t)k + sl + 22;
            memset(&e, 0, sizeof e);
            h = malloc(n);              /* exact size, for valgrind */
            memcpy(h, s, n);
            r = lp_json_valid(h, n, NULL, &e);
            free(h);
            checks++;
            if (seqs[q].bad == 0 ? r != 0 :
                (r != -1 || e.off != (size_t)k + 1 ||
                 strstr(e.msg, seqs[q].bad == 1 ? "invalid UTF-8" :
                        "control character") == NULL)) {
                if (!wrong++)
                    snprintf(first, sizeof first, "seq %zu at %d: r %d, %s",
                             q, k, r, e.msg);
            }
        }
    }
    ok(wrong == 0, "sequences at every block offset (%d checks)", checks);
    if (wrong)
        printf("#   %d wrong, first: %s\n", wrong, first);
}

static void test_limits(void)
{
    struct lp_jlimits lim3 = { 3, 0 };
    struct lp_jevent ev;
    struct lp_jerr e;
    char *s;
    size_t n;

    s = nest(64, 0, "1");
    is_int(valid(s, &e), 0, "64 nested arrays accepted (default limit)");
    free(s);
    s = nest(65, 0, "1");
    memset(&e, 0, sizeof e);
    is_int(valid(s, &e), -1, "65 nested arrays rejected");
    is_str(e.msg, "nesting deeper than 64 at byte 65", "65 arrays: message");
    is_int(e.off, 64, "65 arrays: offset of the 65th '['");
    free(s);
    s = nest(64, 1, "1");
    is_int(valid(s, &e), 0, "64 nested objects accepted");
    free(s);
    s = nest(65, 1, "1");
    memset(&e, 0, sizeof e);
    is_int(valid(s, &e), -1, "65 nested objects rejected");
    is_str(e.msg, "nesting deeper than 64 at byte 321", "65 objects: message");
    free(s);
    s = nest(64, 0, "{}");
    is_int(valid(s, &e), -1, "64 arrays around {} (depth 65) rejected");
    free(s);
    s = nest(63, 0, "\"x\"");
    memset(&e, 0, sizeof e);
    is_int(valid_lim(s, 0, 0, &e), 0, "limits {0, 0} mean the defaults");
    free(s);

    is_int(valid_lim("[[[1]]]", 3, 0, &e), 0, "depth 3 within limit 3");
    memset(&e, 0, sizeof e);
    is_int(valid_lim("[[[[1]]]]", 3, 0, &e), -1, "depth 4 over limit 3");
    is_str(e.msg, "nesting deeper than 3 at byte 4", "depth 4: message");
    is_int(valid_lim("{\"a\":{\"b\":{\"c\":1}}}", 3, 0, &e), 0,
           "3 nested objects within limit 3");
    is_int(valid_lim("{\"a\":{\"b\":{\"c\":[]}}}", 3, 0, &e), -1,
           "3 objects + array over limit 3");

    /* lp_json_event: the event object itself is depth 1 */
    s = nest(63, 0, "1");
    n = strlen(s);
    {
        char *ev64 = malloc(n + 8);
        snprintf(ev64, n + 8, "{\"a\":%s}", s);
        is_int(lp_json_event(ev64, strlen(ev64), NULL, NULL, &ev, &e), 0,
               "event of depth 64 accepted");
        free(ev64);
    }
    free(s);
    s = nest(64, 0, "1");
    n = strlen(s);
    {
        char *ev65 = malloc(n + 8);
        snprintf(ev65, n + 8, "{\"a\":%s}", s);
        memset(&e, 0, sizeof e);
        is_int(lp_json_event(ev65, strlen(ev65), NULL, NULL, &ev, &e), -1,
               "event of depth 65 rejected");
        is_str(e.msg, "nesting deeper than 64 at byte 69",
               "event depth 65: message");
        is_int(e.not_object, 0, "event depth 65: not_object is 0");
        free(ev65);
    }
    free(s);
    is_int(lp_json_event("{\"a\":[[1]]}", 11, NULL, &lim3, &ev, &e), 0,
           "event depth 3 within limit 3");
    memset(&e, 0, sizeof e);
    is_int(lp_json_event("{\"a\":[[[1]]]}", 13, NULL, &lim3, &ev, &e), -1,
           "event depth 4 over limit 3");
    is_str(e.msg, "nesting deeper than 3 at byte 8", "event depth 4: message");

    /* members */
    is_int(valid_lim("[1,2]", 0, 2, &e), 0, "2 elements within members 2");
    memset(&e, 0, sizeof e);
    is_int(valid_lim("[1,2,3]", 0, 2, &e), -1, "3 elements over members 2");
    is_str(e.msg, "more than 2 members at byte 6", "members: message");
    is_int(valid_lim("{\"a\":1,\"b\":2}", 0, 2, &e), 0,
           "2 members within members 2");
    memset(&e, 0, sizeof e);
    is_int(valid_lim("{\"a\":1,\"b\":2,\"c\":3}", 0, 2, &e), -1,
           "3 members over members 2");
    is_str(e.msg, "more than 2 members at byte 14", "3 members: message");
    is_int(valid_lim("[[1,2],[3,4]]", 0, 2, &e), 0,
           "members counts per container");
    is_int(valid_lim("[[1,2],[3,4,5]]", 0, 2, &e), -1,
           "members limit applies at any depth");
    {
        struct lp_jlimits m2 = { 0, 2 };
        is_int(lp_json_event("{\"a\":1,\"b\":[1,2]}", 17, NULL, &m2, &ev, &e),
               0, "event: 2 members within members 2");
        memset(&e, 0, sizeof e);
        is_int(lp_json_event("{\"a\":1,\"b\":2,\"c\":3}", 19, NULL, &m2, &ev,
                             &e), -1, "event: 3 members over members 2");
        is_str(e.msg, "more than 2 members at byte 14",
               "event members: message");
        is_int(lp_json_event("{\"a\":1,\"b\":[1,2,3]}", 19, NULL, &m2, &ev,
                             &e), -1, "event: nested array over members 2");
    }

    /* 100000 '[': refused early, no deep recursion */
    n = 100000;
    s = malloc(n);
    memset(s, '[', n);
    memset(&e, 0, sizeof e);
    is_int(lp_json_valid(s, n, NULL, &e), -1, "100000 '[' rejected");
    is_str(e.msg, "nesting deeper than 64 at byte 65", "100000 '[': message");
    memcpy(s, "{\"a\":", 5);
    memset(&e, 0, sizeof e);
    is_int(lp_json_event(s, n, NULL, NULL, &ev, &e), -1,
           "{\"a\": + 99995 '[' rejected by lp_json_event");
    is_str(e.msg, "nesting deeper than 64 at byte 69",
           "{\"a\": + 99995 '[': message");
    free(s);
}

/* ---- lp_json_event ----------------------------------------------------- */

static void test_keys(void)
{
    static char names[40][8];
    struct lp_jkeys k;
    int i, full = 1;

    memset(&k, 0, sizeof k);
    is_int(lp_jkeys_add(&k, "timestamp"), 0, "first key gets index 0");
    is_int(lp_jkeys_add(&k, "service"), 1, "second key gets index 1");
    is_int(lp_jkeys_add(&k, "timestamp"), 0, "a key asked twice: same index");
    is_int(k.n, 2, "two distinct keys");
    ok(k.lens == (((uint64_t)1 << 9) | ((uint64_t)1 << 7)),
       "length bits 9 and 7 set");
    for (i = 2; i < LP_JSON_MAXKEYS; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        if (lp_jkeys_add(&k, names[i]) != i)
            full = 0;
    }
    ok(full, "keys 2..31 get their indexes");
    snprintf(names[32], sizeof names[32], "k32");
    is_int(lp_jkeys_add(&k, names[32]), -1, "the 33rd key: -1");
    is_int(lp_jkeys_add(&k, "service"), 1, "a known key when full: its index");
    is_int(k.n, LP_JSON_MAXKEYS, "n stays at the maximum");
}

static void test_event(void)
{
    struct lp_jkeys k;
    struct lp_jevent ev;
    struct lp_jerr e;
    const char *s;
    int kt, ks, kl, kn, ko, ka, kb, kf, kid;
    char long_key[80], long_key2[80], long_ev[128];

    memset(&k, 0, sizeof k);
    kt = lp_jkeys_add(&k, "timestamp");
    ks = lp_jkeys_add(&k, "service");
    kl = lp_jkeys_add(&k, "level");
    kn = lp_jkeys_add(&k, "n");
    ko = lp_jkeys_add(&k, "o");
    ka = lp_jkeys_add(&k, "arr");
    kb = lp_jkeys_add(&k, "b");
    kf = lp_jkeys_add(&k, "f");
    kid = lp_jkeys_add(&k, "_id");

    s = "{\"timestamp\":\"2026-11-21T10:00:00Z\", \"service\" : \"api\","
        "\"level\":null,\"n\":-1.5e3,\"o\":{\"timestamp\":1,\"x\":[1]},"
        "\"arr\":[1,\"]\"],\"b\":true,\"f\":false}";
    memset(&ev, 0xa5, sizeof ev);
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0, "event scans");
    is_int(ev.nmembers, 8, "nmembers 8 (nested members not counted)");
    is_int(ev.ncuts, 0, "no _id: no cuts");
    is_int(ev.val[kt].type, LP_JSTRING, "timestamp: string");
    is_int(ev.val[kt].off, at(s, "\"2026"), "timestamp: off at the quote");
    is_int(ev.val[kt].len, 22, "timestamp: len with quotes");
    is_int(ev.val[kt].esc, 0, "timestamp: no escape");
    is_int(ev.val[ks].type, LP_JSTRING, "service: string");
    is_int(ev.val[ks].off, at(s, "\"api\""), "service: off (spaces skipped)");
    is_int(ev.val[ks].len, 5, "service: len 5");
    is_int(ev.val[kl].type, LP_JNULL, "level: null");
    is_int(ev.val[kl].off, at(s, "null"), "level: off");
    is_int(ev.val[kl].len, 4, "level: len 4");
    is_int(ev.val[kn].type, LP_JNUMBER, "n: number");
    is_int(ev.val[kn].off, at(s, "-1.5e3"), "n: off");
    is_int(ev.val[kn].len, 6, "n: len 6");
    is_int(ev.val[ko].type, LP_JOBJECT, "o: object");
    is_int(ev.val[ko].off, at(s, "{\"timestamp\":1"), "o: off");
    is_int(ev.val[ko].len, strlen("{\"timestamp\":1,\"x\":[1]}"), "o: len");
    is_int(ev.val[ka].type, LP_JARRAY, "arr: array");
    is_int(ev.val[ka].off, at(s, "[1,\"]\"]"), "arr: off");
    is_int(ev.val[ka].len, 7, "arr: len 7 (a ']' in a string is data)");
    is_int(ev.val[kb].type, LP_JTRUE, "b: true");
    is_int(ev.val[kb].len, 4, "b: len 4");
    is_int(ev.val[kf].type, LP_JFALSE, "f: false");
    is_int(ev.val[kf].off, at(s, "false"), "f: off");
    is_int(ev.val[kf].len, 5, "f: len 5");
    is_int(ev.val[kid].type, LP_JNONE, "_id absent: LP_JNONE");

    /* a second event: values of the first one do not leak */
    s = "{\"level\":\"info\"}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "second event scans");
    is_int(ev.val[kt].type, LP_JNONE, "second event: timestamp reset");
    is_int(ev.val[kl].type, LP_JSTRING, "second event: level string");
    is_int(ev.val[kl].off, 9, "second event: level off 9");
    is_int(ev.nmembers, 1, "second event: nmembers 1");

    /* nested keys are not top-level members */
    s = "{\"o\":{\"service\":\"x\"},\"a\":[{\"service\":1}]}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0, "nested scans");
    is_int(ev.val[ks].type, LP_JNONE, "nested service is not top-level");

    /* last duplicate wins */
    s = "{\"service\":\"one\",\"x\":0,\"service\":\"two\"}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "duplicates scan");
    is_int(ev.val[ks].off, at(s, "\"two\""), "last duplicate wins: off");
    is_int(ev.val[ks].len, 5, "last duplicate wins: len");
    is_int(ev.nmembers, 3, "duplicates counted as members");
    s = "{\"service\":\"one\",\"service\":null}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "duplicate null scans");
    is_int(ev.val[ks].type, LP_JNULL, "last duplicate wins even if null");

    /* escaped keys are compared decoded */
    s = "{\"time\\u0073tamp\":5,\"\\u0073ervice\":\"a\\u0062\"}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "escaped keys scan");
    is_int(ev.val[kt].type, LP_JNUMBER, "time\\u0073tamp matches timestamp");
    is_int(ev.val[kt].off, at(s, "5,"), "escaped key: value off");
    is_int(ev.val[kt].len, 1, "escaped key: value len");
    is_int(ev.val[ks].type, LP_JSTRING, "\\u0073ervice matches service");
    is_int(ev.val[ks].esc, 1, "escaped value: esc 1");
    s = "{\"timestamp\\u0000\":5,\"servic\":1,\"Service\":2}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "near-miss keys scan");
    is_int(ev.val[kt].type, LP_JNONE, "timestamp\\u0000 is another key");
    is_int(ev.val[ks].type, LP_JNONE, "servic/Service are other keys");
    s = "{\"service\":\"a\\\"b\",\"level\":\"\\/\"}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "escaped values scan");
    is_int(ev.val[ks].esc, 1, "\\\" sets esc");
    is_int(ev.val[ks].len, 6, "escaped value len with quotes");
    is_int(ev.val[kl].esc, 1, "\\/ sets esc");

    /* whitespace around the object, empty object */
    s = " \t{ \"n\" :\n1 }\r\n";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "whitespace around and inside scans");
    is_int(ev.val[kn].off, at(s, "1 }"), "whitespace: value off");
    is_int(ev.val[kn].len, 1, "whitespace: value len excludes spaces");
    is_int(lp_json_event("{}", 2, &k, NULL, &ev, &e), 0, "{} scans");
    is_int(ev.nmembers, 0, "{}: nmembers 0");
    is_int(lp_json_event("{ }", 3, NULL, NULL, &ev, &e), 0,
           "{ } scans with no keys (k NULL)");

    /* wanted keys of 63 and 64 bytes (the length bitmask has 64 bits) */
    memset(long_key, 'k', sizeof long_key);
    long_key[63] = '\0';
    {
        int kk = lp_jkeys_add(&k, long_key);
        snprintf(long_ev, sizeof long_ev, "{\"%s\":1}", long_key);
        is_int(lp_json_event(long_ev, strlen(long_ev), &k, NULL, &ev, &e), 0,
               "event with a 63-byte key scans");
        ok(kk >= 0 && ev.val[kk].type == LP_JNUMBER,
           "a wanted 63-byte key is found");
    }
    memset(long_key2, 'q', sizeof long_key2);
    long_key2[64] = '\0';
    {
        int kk = lp_jkeys_add(&k, long_key2);
        snprintf(long_ev, sizeof long_ev, "{\"%s\":1}", long_key2);
        is_int(lp_json_event(long_ev, strlen(long_ev), &k, NULL, &ev, &e), 0,
               "event with a 64-byte key scans");
        ok_fixed(kk >= 0 && ev.val[kk].type == LP_JNUMBER,
                "keys of 64+ bytes never match (lens bitmask, klen < 64)",
                "a wanted 64-byte key is found");
    }

    /* not an object vs invalid */
    {
        static const char *const notobj[] = { "[1]", "3", "\"x\"", " null ",
                                              "true", "[{\"a\":1}]" };
        static const char *const invalid[] = { "[1", "", "  ", "{", "{\"a\"}",
                                               "{\"a\":1} x", "{\"a\":1}}",
                                               "x", "{\"a\":01}" };
        for (size_t i = 0; i < sizeof notobj / sizeof notobj[0]; i++) {
            memset(&e, 0, sizeof e);
            int r = lp_json_event(notobj[i], strlen(notobj[i]), &k, NULL, &ev,
                                  &e);
            ok(r == -1 && e.not_object == 1 &&
               strcmp(e.msg, "not a JSON object") == 0,
               "'%s': not_object, \"not a JSON object\" (%s)", notobj[i],
               e.msg);
        }
        for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
            memset(&e, 0, sizeof e);
            e.not_object = 7;
            int r = lp_json_event(invalid[i], strlen(invalid[i]), &k, NULL,
                                  &ev, &e);
            ok(r == -1 && e.not_object == 0 && e.msg[0] != '\0' &&
               strcmp(e.msg, "not a JSON object") != 0,
               "'%s': invalid, not_object 0 (%s)", invalid[i], e.msg);
        }
        memset(&e, 0, sizeof e);
        lp_json_event("  [1]", 5, &k, NULL, &ev, &e);
        is_int(e.off, 2, "not_object: off at the first byte of the value");
        memset(&e, 0, sizeof e);
        lp_json_event("{\"a\":01}", 8, &k, NULL, &ev, &e);
        is_str(e.msg, "leading zero in number at byte 7",
               "lp_json_event: same message as lp_json_valid");
        memset(&e, 0, sizeof e);
        lp_json_event("{\"a\":1} x", 9, &k, NULL, &ev, &e);
        is_str(e.msg, "unexpected 'x' at byte 9", "event: trailing garbage");
        memset(&e, 0, sizeof e);
        lp_json_event("{\"a\":1,}", 8, &k, NULL, &ev, &e);
        is_str(e.msg, "unexpected '}' at byte 8", "event: trailing comma");
        memset(&e, 0, sizeof e);
        lp_json_event("{\"a\":\"\xed\xa0\x80\"}", 10, &k, NULL, &ev, &e);
        is_str(e.msg, "invalid UTF-8 at byte 7", "event: invalid UTF-8");
    }
}

static void test_cuts(void)
{
    struct lp_jkeys k;
    struct lp_jevent ev;
    struct lp_jerr e;
    const char *s;
    char buf[256];
    int kid;

    cut_is("{\"_id\":1}", "{}", 0, NULL);
    cut_is("{\"_id\":1,\"a\":2}", "{\"a\":2}", 0, NULL);
    cut_is("{\"a\":2,\"_id\":1}", "{\"a\":2}", 0, NULL);
    cut_is("{\"a\":1,\"_id\":2,\"b\":3}", "{\"a\":1,\"b\":3}", 0, NULL);
    cut_is("{\"_id\":\"x\",\"_id\":{\"y\":[1]}}", "{}", 0, NULL);
    cut_is("{\"_id\":1,\"_id\":2,\"a\":3}", "{\"a\":3}", 0, NULL);
    cut_is("{\"_id\":1,\"a\":2,\"_id\":3}", "{\"a\":2}", 0, NULL);
    cut_is("{\"a\":1,\"_id\":2,\"b\":3,\"_id\":4}", "{\"a\":1,\"b\":3}", 0,
           NULL);
    cut_is("{\"_id\":1,\"a\":2,\"_id\":3,\"b\":4}", "{\"a\":2,\"b\":4}", 0,
           NULL);
    cut_is("{\"a\":1,\"_id\":2,\"_id\":3,\"b\":4}", "{\"a\":1,\"b\":4}", 0,
           NULL);
    cut_is("{\"a\":1,\"_id\":2,\"_id\":3}", "{\"a\":1}", 0,
           "lp_json_event: comma before a run of trailing _id members kept");
    cut_is("{\"_id\":1,\"_id\":2,\"_id\":3}", "{}", 0, NULL);
    cut_is("{\"_id\":1,\"a\":2,\"_id\":3,\"_id\":4}", "{\"a\":2}", 0,
           "lp_json_event: comma before a run of trailing _id members kept");
    cut_is("{\"_id\":1,\"_id\":2,\"a\":3,\"_id\":4}", "{\"a\":3}", 0, NULL);
    cut_is("{\"a\":1,\"b\":2,\"_id\":3,\"_id\":4,\"_id\":5}",
           "{\"a\":1,\"b\":2}", 0,
           "lp_json_event: comma before a run of trailing _id members kept");
    cut_is("{ \"_id\" : 1 }", "{}", 1, NULL);
    cut_is("{ \"_id\" : 1 , \"a\" : 2 }", "{\"a\":2}", 1, NULL);
    cut_is("{ \"a\" : 2 , \"_id\" : 1 }", "{\"a\":2}", 1, NULL);
    cut_is("{\n\t\"a\": 1,\n\t\"_id\": 2,\n\t\"b\": 3\n}",
           "{\"a\":1,\"b\":3}", 1, NULL);
    cut_is("  {\"_id\":1 ,\"a\":\"_id\"}  ", "{\"a\":\"_id\"}", 1, NULL);
    cut_is("{\"\\u005fid\":1,\"a\":2}", "{\"a\":2}", 0, NULL);
    cut_is("{\"a\":2,\"_\\u0069d\":1}", "{\"a\":2}", 0, NULL);
    cut_is("{\"x\":{\"_id\":1}}", "{\"x\":{\"_id\":1}}", 0, NULL);
    cut_is("{\"x\":[{\"_id\":1}],\"_id\":2}", "{\"x\":[{\"_id\":1}]}", 0,
           NULL);
    cut_is("{\"_idx\":1,\"_i\":2,\"id\":3}", "{\"_idx\":1,\"_i\":2,\"id\":3}",
           0, NULL);

    /* cuts with wanted keys too: _id can be both wanted and cut */
    memset(&k, 0, sizeof k);
    kid = lp_jkeys_add(&k, "_id");
    s = "{\"a\":1,\"_id\":\"1-0\",\"b\":2}";
    is_int(lp_json_event(s, strlen(s), &k, NULL, &ev, &e), 0,
           "wanted _id scans");
    is_int(ev.val[kid].off, at(s, "\"1-0\""), "wanted _id: off");
    is_int(ev.ncuts, 1, "wanted _id: one cut");
    is_int(lp_json_cut_len(&ev, strlen(s)), 13, "wanted _id: cut len");

    /* no cuts: copy is the input */
    s = "{\"a\":1}";
    lp_json_event(s, strlen(s), NULL, NULL, &ev, &e);
    is_int(lp_json_cut_len(&ev, 7), 7, "no cuts: cut_len = n");
    memset(buf, 0, sizeof buf);
    lp_json_cut_copy(&ev, s, 7, buf);
    is_str(buf, s, "no cuts: cut_copy copies");

    /* LP_JSON_MAXCUTS separate runs of "_id" members, and one more; a
     * run of adjacent ones is one cut, however long */
    {
        char big[512], *p = big;
        p += sprintf(p, "{");
        for (int i = 0; i < LP_JSON_MAXCUTS; i++)
            p += sprintf(p, "%s\"_id\":%d,\"k%d\":%d", i ? "," : "", i, i, i);
        sprintf(p, "}");
        is_int(lp_json_event(big, strlen(big), NULL, NULL, &ev, &e), 0,
               "%d _id runs scan", LP_JSON_MAXCUTS);
        is_int(ev.ncuts, LP_JSON_MAXCUTS, "%d cuts", LP_JSON_MAXCUTS);
        lp_json_cut_copy(&ev, big, strlen(big), buf);
        buf[lp_json_cut_len(&ev, strlen(big))] = '\0';
        ok(strstr(buf, "_id") == NULL && lp_json_valid(buf, strlen(buf),
                                                       NULL, &e) == 0,
           "%d _id runs all cut, result valid (%s)", LP_JSON_MAXCUTS, buf);
        sprintf(p, ",\"_id\":9,\"z\":1}");
        memset(&e, 0, sizeof e);
        is_int(lp_json_event(big, strlen(big), NULL, NULL, &ev, &e), -1,
               "%d _id runs refused", LP_JSON_MAXCUTS + 1);
        ok(strstr(e.msg, "too many \"_id\" members") != NULL,
           "too many _id: message (%s)", e.msg);
        is_int(e.not_object, 0, "too many _id: not_object 0");

        p = big;
        p += sprintf(p, "{\"a\":1");
        for (int i = 0; i < 30; i++)
            p += sprintf(p, ",\"_id\":%d", i);
        sprintf(p, ",\"b\":2}");
        is_int(lp_json_event(big, strlen(big), NULL, NULL, &ev, &e), 0,
               "30 adjacent _id members scan");
        is_int(ev.ncuts, 1, "30 adjacent _id members: one cut");
        lp_json_cut_copy(&ev, big, strlen(big), buf);
        buf[lp_json_cut_len(&ev, strlen(big))] = '\0';
        is_str(buf, "{\"a\":1,\"b\":2}", "30 adjacent _id members cut");
    }
}

/* ---- arrays, unescape, numbers, first byte ----------------------------- */

static void test_array(void)
{
    static const char *const want[] = { "{\"a\":1}", "2", "\"x\"", "[3]" };
    static const int wtype[] = { LP_JOBJECT, LP_JNUMBER, LP_JSTRING,
                                 LP_JARRAY };
    static const size_t woff[] = { 2, 12, 14, 18 };
    const char *s = "[ {\"a\":1} , 2,\"x\",[3] ]";
    size_t n = strlen(s), pos = 0, off, len;
    struct lp_jerr e;
    int type, i;

    is_int(lp_json_valid(s, n, NULL, &e), 0, "array is valid");
    for (i = 0; i < 4; i++) {
        off = len = 999;
        type = -1;
        int r = lp_json_array_next(s, n, &pos, &off, &len, &type);
        is_int(r, 1, "element %d: found", i);
        is_int(off, woff[i], "element %d: off", i);
        is_int(len, strlen(want[i]), "element %d: len", i);
        ok(r == 1 && len == strlen(want[i]) &&
           memcmp(s + off, want[i], len) == 0, "element %d: bytes %s", i,
           want[i]);
        is_int(type, wtype[i], "element %d: type", i);
    }
    is_int(lp_json_array_next(s, n, &pos, &off, &len, &type), 0,
           "after the last element: 0");
    is_int(lp_json_array_next(s, n, &pos, &off, &len, &type), 0,
           "and 0 again");

    pos = 0;
    is_int(lp_json_array_next("[]", 2, &pos, &off, &len, &type), 0,
           "[]: no element");
    pos = 0;
    is_int(lp_json_array_next(" [ \n] ", 6, &pos, &off, &len, &type), 0,
           "[ ]: no element");
    pos = 0;
    is_int(lp_json_array_next("{\"a\":1}", 7, &pos, &off, &len, &type), 0,
           "an object is not an array: 0");

    s = "[true,false,null,-1.5e2,\"a,]\",{\"b\":[1,{}]}]";
    n = strlen(s);
    pos = 0;
    {
        static const int t2[] = { LP_JTRUE, LP_JFALSE, LP_JNULL, LP_JNUMBER,
                                  LP_JSTRING, LP_JOBJECT };
        static const char *const w2[] = { "true", "false", "null", "-1.5e2",
                                          "\"a,]\"", "{\"b\":[1,{}]}" };
        int good = 1;
        for (i = 0; i < 6; i++) {
            if (lp_json_array_next(s, n, &pos, &off, &len, &type) != 1 ||
                type != t2[i] || len != strlen(w2[i]) ||
                memcmp(s + off, w2[i], len) != 0) {
                good = 0;
                printf("#   element %d wrong\n", i);
            }
        }
        ok(good, "literals, number, string with ',]', nested object");
        is_int(lp_json_array_next(s, n, &pos, &off, &len, &type), 0,
               "six elements, then 0");
    }
}

static long unesc(const char *s, char *out, size_t cap)
{
    struct lp_jval v = { 0, (uint32_t)strlen(s), LP_JSTRING, 1 };

    return lp_json_unescape(s, &v, out, cap);
}

static void test_unescape(void)
{
    char out[64];
    long r;

    r = unesc("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", out, sizeof out);
    is_int(r, 12, "simple escapes: length");
    ok(r == 12 && memcmp(out, "a\"b\\c/d\b\f\n\r\t", 12) == 0,
       "simple escapes: bytes");
    r = unesc("\"\\u00e9\"", out, sizeof out);
    ok(r == 2 && memcmp(out, "\xc3\xa9", 2) == 0, "\\u00e9 -> C3 A9");
    r = unesc("\"\\u20AC\"", out, sizeof out);
    ok(r == 3 && memcmp(out, "\xe2\x82\xac", 3) == 0,
       "\\u20AC (upper-case hex) -> E2 82 AC");
    r = unesc("\"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"", out,
              sizeof out);
    ok(r == 1 + 1 + 2 + 2 + 3 + 3 &&
       memcmp(out, "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 12) == 0,
       "UTF-8 length boundaries 7f/80/7ff/800/ffff");
    r = unesc("\"\\ud83d\\ude00\"", out, sizeof out);
    ok(r == 4 && memcmp(out, "\xf0\x9f\x98\x80", 4) == 0,
       "surrogate pair -> F0 9F 98 80");
    r = unesc("\"\\udbff\\udfff\"", out, sizeof out);
    ok(r == 4 && memcmp(out, "\xf4\x8f\xbf\xbf", 4) == 0,
       "\\udbff\\udfff -> U+10FFFF");
    r = unesc("\"x\\ud800\\udc00y\"", out, sizeof out);
    ok(r == 6 && memcmp(out, "x\xf0\x90\x80\x80y", 6) == 0,
       "pair between ASCII -> x U+10000 y");
    r = unesc("\"\\u0000\"", out, sizeof out);
    ok(r == 1 && out[0] == '\0', "\\u0000 -> one NUL byte");
    r = unesc("\"plain \xc3\xa9\"", out, sizeof out);
    ok(r == 8 && memcmp(out, "plain \xc3\xa9", 8) == 0,
       "raw UTF-8 copied");
    is_int(unesc("\"\"", out, sizeof out), 0, "empty string: 0");
    is_int(unesc("\"\"", out, 0), 0, "empty string with cap 0: 0");
    is_int(unesc("\"abcd\"", out, 3), -1, "4 bytes into cap 3: -1");
    is_int(unesc("\"abcd\"", out, 4), 4, "4 bytes into cap 4: 4");
    is_int(unesc("\"\\u20ac\"", out, 2), -1, "3-byte char into cap 2: -1");
    is_int(unesc("\"\\ud83d\\ude00\"", out, 3), -1,
           "4-byte char into cap 3: -1");
    is_int(unesc("\"a\\n\"", out, 1), -1, "escape past cap: -1");
    {
        /* a value in the middle of a buffer: off and len are honoured */
        const char *s = "{\"k\":\"v\\u0031\",\"z\":1}";
        struct lp_jval v = { 5, 9, LP_JSTRING, 1 };
        r = lp_json_unescape(s, &v, out, sizeof out);
        ok(r == 2 && memcmp(out, "v1", 2) == 0, "value inside an object");
    }
}

static void test_number(void)
{
    const char *s = "[42,-1.5e3,0.5,1e400,-1e400,12345678901234567890,1E2]";
    struct lp_jval v;
    double d;

    v.type = LP_JNUMBER;
    v.esc = 0;
    v.off = 1; v.len = 2;
    d = 0;
    ok(lp_json_number(s, &v, &d) == 0 && d == 42.0, "42");
    v.off = 4; v.len = 6;
    ok(lp_json_number(s, &v, &d) == 0 && d == -1500.0, "-1.5e3");
    v.off = 11; v.len = 3;
    ok(lp_json_number(s, &v, &d) == 0 && d == 0.5, "0.5");
    v.off = 15; v.len = 5;
    is_int(lp_json_number(s, &v, &d), -1, "1e400 out of range: -1");
    v.off = 21; v.len = 6;
    is_int(lp_json_number(s, &v, &d), -1, "-1e400 out of range: -1");
    v.off = 28; v.len = 20;
    ok(lp_json_number(s, &v, &d) == 0 && d == 12345678901234567890.0,
       "20-digit integer as a double");
    v.off = 49; v.len = 3;
    ok(lp_json_number(s, &v, &d) == 0 && d == 100.0, "1E2");

    /* fuzz finding json-2: 64 bytes or more were refused */
    {
        static const struct { const char *s; double d; } longs[] = {
            { "1.0000000000000000000000000000000000000000000000000000000000"
              "0000000000001", 1.0 },
            { "1234567890123456789012345678901234567890123456789012345678901"
              "234", 1.2345678901234568e63 },
            { "-0.00000000000000000000000000000000000000000000000000000000"
              "000000000000000000000000000000000000000000000025", -2.5e-103 },
            /* 2^53 + 1 and a tail: rounds up only when every digit counts */
            { "9007199254740993.0000000000000000000000000000000000000000000"
              "00000000000000000000000000001", 9007199254740994.0 },
            { "9007199254740993.0000000000000000000000000000000000000000000"
              "00000000000000000000000000000", 9007199254740992.0 },
        };
        for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
            v.off = 0;
            v.len = (uint32_t)strlen(longs[i].s);
            d = 0;
            ok(v.len >= 64 && lp_json_number(longs[i].s, &v, &d) == 0 &&
               d == longs[i].d, "a number of %u bytes: %.17g", v.len,
               longs[i].d);
        }
        v.off = 0;
        v.len = (uint32_t)strlen("1e400000000000000000000000000000000000000"
                                 "00000000000000000000000000");
        is_int(lp_json_number("1e40000000000000000000000000000000000000000"
                              "000000000000000000000000", &v, &d), -1,
               "a long number out of range: -1");
    }
}

/*
 * Fuzz finding json-1: an escaped key that decodes to more than 256 bytes
 * was compared as 257 bytes of a 256-byte buffer (a stack over-read when
 * a wanted name had 257 bytes) and never matched a longer wanted name.
 */
static void test_long_escaped_keys(void)
{
    static const size_t lens[] = { 255, 256, 257, 300, 1000 };
    static char names[5][1001];
    struct lp_jkeys k;
    struct lp_jevent ev;
    struct lp_jerr e;
    char *s = malloc(8000);

    memset(&k, 0, sizeof k);
    for (int i = 0; i < 5; i++) {
        memset(names[i], 'k', lens[i]);
        names[i][lens[i]] = '\0';
        lp_jkeys_add(&k, names[i]);
    }
    lp_jkeys_add(&k, "a");
    for (int i = 0; i < 5; i++) {
        /* the key, its first 'k' escaped; value i; then an escaped key one
         * byte longer than every name, and one that differs at the end */
        int n = sprintf(s, "{\"\\u006b%s\":%d,\"\\u006b%sk\":-1,"
                        "\"\\u006b%.*sx\":-2,\"a\":0}", names[i] + 1, i,
                        names[4], (int)lens[i] - 2, names[i] + 1);
        int good = lp_json_event(s, (size_t)n, &k, NULL, &ev, &e) == 0;
        for (int j = 0; j < 5; j++) {
            if (j == i)
                good &= ev.val[j].type == LP_JNUMBER &&
                        ev.val[j].len == 1 && s[ev.val[j].off] == '0' + i;
            else
                good &= ev.val[j].type == LP_JNONE;
        }
        good &= ev.val[5].type == LP_JNUMBER;
        ok_fixed(good, "lp_json_event: a decoded key longer than its "
                 "256-byte buffer was compared as 257 bytes",
                 "an escaped key of %zu bytes matches exactly the name of "
                 "%zu bytes", lens[i], lens[i]);
    }
    free(s);
}

static void test_first(void)
{
    is_int(lp_json_first("  \t\n\r{\"a\":1}", 11), '{', "first: '{'");
    is_int(lp_json_first("[1]", 3), '[', "first: '['");
    is_int(lp_json_first("", 0), 0, "first of empty: 0");
    {
        const char *t = " \t{\"a\": 1} \r\n";
        size_t tn = strlen(t);
        lp_json_trim(&t, &tn);
        ok(tn == 8 && memcmp(t, "{\"a\": 1}", 8) == 0,
           "trim: JSON whitespace off both ends, inner space kept");
        t = " \r\n\t";
        tn = 4;
        lp_json_trim(&t, &tn);
        ok(tn == 0, "trim of a blank line: empty");
        t = "\v1\f";
        tn = 3;
        lp_json_trim(&t, &tn);
        ok(tn == 3, "trim: \\v and \\f are not JSON whitespace");
    }
    is_int(lp_json_first(" \n\t\r ", 5), 0, "first of whitespace: 0");
    is_int(lp_json_first("  x", 2), 0, "first looks at s[0..n) only");
    is_int(lp_json_first("\xef\xbb\xbf{", 4), 0xef,
           "first returns the byte unsigned (0xEF)");
}

int main(int argc, char **argv)
{
    test_suite(argc > 1 ? argv[1] : "tests/jsontestsuite");
    test_errors();
    test_string_blocks();
    test_limits();
    test_keys();
    test_event();
    test_cuts();
    test_array();
    test_unescape();
    test_number();
    test_long_escaped_keys();
    test_first();
    return tap_done();
}
