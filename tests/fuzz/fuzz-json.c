/* fuzz-json.c -- libFuzzer harness: lib/lp_json against jq 1.6's parser */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "lp_json.h"

/*
 * The input is one candidate JSON text, used as it is, so that files of
 * JSONTestSuite and plain .json files work as seeds without a header.
 * Everything else (extra limits) is derived from a hash of the bytes.
 *
 * Checks, all of which abort() on failure so that libFuzzer keeps the
 * input:
 *
 *  1. Differential against jq 1.6 (jv_parse_sized):
 *     a. lp_json_valid accepts (depth <= 64)  =>  jq accepts. jq's only
 *        stricter rule is its depth limit of 256, which 64 never reaches.
 *     b. jq accepts a "clean" input  =>  lp_json_valid accepts. "Clean"
 *        means no leniency of jq 1.6 can be at work; see struct shape.
 *  2. lp_json_event agrees with lp_json_valid (accepts exactly the valid
 *     objects, not_object exactly for valid non-objects), and every
 *     wanted member it reports is the one jq finds: same kind, same
 *     decoded string (lp_json_unescape, with exact-size buffers), same
 *     number (lp_json_number), absent when jq has no such key.
 *  3. The "_id" cuts: the copy without them is a valid object that jq
 *     reads as the original object less its "_id" key.
 *  4. Limits: with a depth limit d <= 64 and a member limit m, both
 *     functions accept exactly the valid inputs whose nesting is <= d and
 *     whose objects and arrays hold <= m members each.
 *  5. lp_json_array_next walks exactly the elements jq sees.
 */

#define MAXDEPTH_TRACK 512

/*
 * What an independent tokenizer sees. It splits the input the way jq 1.6
 * does (whitespace " \t\r\n"; structure "[]{},:"; strings from '"' to the
 * next unescaped '"'; any other run of bytes is a "literal" token that jq
 * hands to check_literal/strtod), and decides whether the input is clean:
 *
 *  - every byte is valid UTF-8 (independent decoder, RFC 3629 table), and
 *    the input does not start with a BOM: jq replaces invalid sequences
 *    by U+FFFD and skips a leading BOM;
 *  - no control byte other than \t \n \r anywhere: jq accepts raw U+0000
 *    and U+001F inside strings (its check is c > 0 && c < 0x1f), and a NUL
 *    ends a literal token for strtod ("1\0" is 1, "\0" is 0), and strtod
 *    skips a leading \v or \f in a literal ("\f1" is 1);
 *  - every literal token is exactly true, false, null or an RFC 8259
 *    number: this excludes NaN, nan, Infinity, inf, .5, 1., 012, +1 and
 *    everything else strtod takes;
 *  - every escape is one of RFC 8259's, and every \u escape of a surrogate
 *    is a high one followed at once by an escaped low one: jq turns a
 *    lone low surrogate into U+FFFD;
 *  - nesting depth <= 64 (ours by default; jq's limit is 256).
 *
 * Anything not clean is still fuzzed, but only in direction 1a.
 */
struct shape {
    int clean;
    int maxdepth;               /* 1 = a top-level object or array */
    uint32_t maxcount;          /* members of the largest container */
    uint32_t topcount;          /* members of the top-level container */
    int first;                  /* first non-whitespace byte, or 0 */
    int seen;                   /* there is a non-whitespace byte */
};

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_struct(int c)
{
    return c == '[' || c == ']' || c == '{' || c == '}' || c == ',' ||
           c == ':';
}

/* Whole-buffer UTF-8 check by decoding code points. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp, need, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f; need = 1; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f; need = 2; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07; need = 3; min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* Is t[0..n) an RFC 8259 number? */
static int strict_number(const unsigned char *t, size_t n)
{
    size_t i = 0;

    if (i < n && t[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (t[i] == '0') {
        i++;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < n && t[i] >= '0' && t[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && t[i] == '.') {
        size_t d = ++i;
        while (i < n && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        size_t d;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        d = i;
        while (i < n && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

static int hexval(const unsigned char *p, unsigned *v)
{
    unsigned x = 0;

    for (int i = 0; i < 4; i++) {
        int c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

static void shape_of(const unsigned char *s, size_t n, struct shape *sh)
{
    static uint32_t commas[MAXDEPTH_TRACK];
    static unsigned char nonempty[MAXDEPTH_TRACK];
    int depth = 0;
    size_t i = 0;

    memset(sh, 0, sizeof *sh);
    sh->clean = 1;
    if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
        sh->clean = 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] < 0x20 && !is_ws(s[k]))
            sh->clean = 0;
    if (!utf8_ok(s, n))
        sh->clean = 0;
    while (i < n) {
        int c = s[i];
        if (is_ws(c)) {
            i++;
            continue;
        }
        if (!sh->seen) {
            sh->first = c;
            sh->seen = 1;
        }
        if (depth > 0 && depth <= MAXDEPTH_TRACK && c != ',' && c != ':' &&
            c != ']' && c != '}')
            nonempty[depth - 1] = 1;
        if (c == '[' || c == '{') {
            depth++;
            if (depth > sh->maxdepth)
                sh->maxdepth = depth;
            if (depth <= MAXDEPTH_TRACK) {
                commas[depth - 1] = 0;
                nonempty[depth - 1] = 0;
            }
            i++;
        } else if (c == ']' || c == '}') {
            if (depth > 0 && depth <= MAXDEPTH_TRACK) {
                uint32_t cnt = nonempty[depth - 1] ? commas[depth - 1] + 1 : 0;
                if (cnt > sh->maxcount)
                    sh->maxcount = cnt;
                if (depth == 1)
                    sh->topcount = cnt;
            }
            if (depth > 0)
                depth--;
            i++;
        } else if (c == ',') {
            if (depth > 0 && depth <= MAXDEPTH_TRACK)
                commas[depth - 1]++;
            i++;
        } else if (c == ':') {
            i++;
        } else if (c == '"') {
            i++;
            while (i < n && s[i] != '"') {
                unsigned u, u2;
                if (s[i] != '\\') {
                    i++;
                    continue;
                }
                if (i + 1 >= n) {
                    i++;
                    break;
                }
                switch (s[i + 1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n':
                case 'r': case 't':
                    i += 2;
                    break;
                case 'u':
                    if (n - i < 6 || hexval(s + i + 2, &u) < 0) {
                        sh->clean = 0;
                        i += 2;
                        break;
                    }
                    i += 6;
                    if (u >= 0xdc00 && u <= 0xdfff) {
                        sh->clean = 0;          /* lone low surrogate */
                    } else if (u >= 0xd800 && u <= 0xdbff) {
                        if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u' ||
                            hexval(s + i + 2, &u2) < 0 || u2 < 0xdc00 ||
                            u2 > 0xdfff)
                            sh->clean = 0;
                        else
                            i += 6;
                    }
                    break;
                default:
                    sh->clean = 0;
                    i += 2;
                }
            }
            i++;                /* the closing quote */
        } else {
            size_t j = i;
            while (j < n && !is_ws(s[j]) && !is_struct(s[j]) && s[j] != '"')
                j++;
            if (!((j - i == 4 && memcmp(s + i, "true", 4) == 0) ||
                  (j - i == 5 && memcmp(s + i, "false", 5) == 0) ||
                  (j - i == 4 && memcmp(s + i, "null", 4) == 0) ||
                  strict_number(s + i, j - i)))
                sh->clean = 0;
            i = j;
        }
    }
    if (sh->maxdepth > LP_JSON_DEPTH)
        sh->clean = 0;
}

/* ---- reporting ---- */

static const unsigned char *cur;
static size_t curlen;

static void show(const char *what, const unsigned char *s, size_t n)
{
    fprintf(stderr, "%s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n && i < 2000; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fprintf(stderr, "\\%c", s[i]);
        else if (s[i] >= 0x20 && s[i] < 0x7f)
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    fprintf(stderr, "%s\"\n", n > 2000 ? "..." : "");
}

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nfuzz-json: FINDING: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    show("input", cur, curlen);
    abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static const char *jq_msg(jv v, char *buf, size_t cap)
{
    jv m = jv_invalid_get_msg(v);

    if (jv_get_kind(m) == JV_KIND_STRING)
        snprintf(buf, cap, "%s", jv_string_value(m));
    else
        snprintf(buf, cap, "(no message)");
    jv_free(m);
    return buf;
}

/* ---- the wanted members ---- */

static struct lp_jkeys keys;
static char long_name[64];
static char name257[258], name300[301];

static void init_keys(void)
{
    static int done;

    if (done)
        return;
    done = 1;
    lp_jkeys_add(&keys, "timestamp");
    lp_jkeys_add(&keys, "service");
    lp_jkeys_add(&keys, "_id");
    lp_jkeys_add(&keys, "a");
    lp_jkeys_add(&keys, "");
    lp_jkeys_add(&keys, "msg");
    lp_jkeys_add(&keys, "\xc3\xa9t\xc3\xa9");         /* "été" */
    lp_jkeys_add(&keys, "a\"b\\c/d\n");
    /* a name of 63 bytes shares bit 63 with every longer one */
    memset(long_name, 'k', 63);
    lp_jkeys_add(&keys, long_name);
    /* finding json-1: a key with escapes that decodes to more than 256
     * bytes was compared as 257 bytes of a 256-byte buffer (a stack
     * over-read when a wanted name had 257 bytes) and never matched a
     * longer wanted name */
    memset(name257, 'k', 257);
    lp_jkeys_add(&keys, name257);
    memset(name300, 'k', 300);
    lp_jkeys_add(&keys, name300);
}

static int kind_of(int t)
{
    switch (t) {
    case LP_JOBJECT: return JV_KIND_OBJECT;
    case LP_JARRAY: return JV_KIND_ARRAY;
    case LP_JSTRING: return JV_KIND_STRING;
    case LP_JNUMBER: return JV_KIND_NUMBER;
    case LP_JTRUE: return JV_KIND_TRUE;
    case LP_JFALSE: return JV_KIND_FALSE;
    case LP_JNULL: return JV_KIND_NULL;
    }
    return -1;
}

static int type_of_byte(int c)
{
    switch (c) {
    case '{': return LP_JOBJECT;
    case '[': return LP_JARRAY;
    case '"': return LP_JSTRING;
    case 't': return LP_JTRUE;
    case 'f': return LP_JFALSE;
    case 'n': return LP_JNULL;
    }
    return (c == '-' || (c >= '0' && c <= '9')) ? LP_JNUMBER : -1;
}

/* A value our scanner reported: check it against jq's value jv (borrowed). */
static void check_value(const char *s, const struct lp_jval *v, jv jval,
                        const char *what)
{
    struct lp_jerr e;
    int k = jv_get_kind(jval);

    CHECK(v->len > 0 && v->off + (size_t)v->len <= curlen,
          "%s: span [%u,+%u) outside the input", what, v->off, v->len);
    CHECK(lp_json_valid(s + v->off, v->len, NULL, &e) == 0,
          "%s: reported span is not valid JSON: %s", what, e.msg);
    CHECK(type_of_byte((unsigned char)s[v->off]) == v->type,
          "%s: type %d does not match its first byte", what, v->type);
    CHECK(kind_of(v->type) == k, "%s: type %d, jq has kind %d", what,
          v->type, k);
    if (v->type == LP_JSTRING) {
        size_t cap = v->len - 2;
        char *out = malloc(cap ? cap : 1);
        long r;
        CHECK(v->esc == (memchr(s + v->off, '\\', v->len) != NULL),
              "%s: esc flag %d is wrong", what, v->esc);
        r = lp_json_unescape(s, v, out, cap);
        CHECK(r >= 0, "%s: lp_json_unescape failed with cap %zu", what, cap);
        CHECK((size_t)r == (size_t)jv_string_length_bytes(jv_copy(jval)) &&
              memcmp(out, jv_string_value(jval), (size_t)r) == 0,
              "%s: unescaped to %ld bytes, jq has %d", what, r,
              jv_string_length_bytes(jv_copy(jval)));
        free(out);
        /* exact-size buffers: r fits, r - 1 does not */
        out = malloc(r ? (size_t)r : 1);
        CHECK(lp_json_unescape(s, v, out, (size_t)r) == r,
              "%s: does not fit in exactly %ld bytes", what, r);
        if (r > 0)
            CHECK(lp_json_unescape(s, v, out, (size_t)r - 1) == -1,
                  "%s: claims to fit in %ld bytes", what, r - 1);
        free(out);
    } else if (v->type == LP_JNUMBER) {
        double d = 0, j = jv_number_value(jval);
        if (lp_json_number(s, v, &d) == 0) {
            CHECK(d == j && signbit(d) == signbit(j),
                  "%s: lp_json_number %.17g, jq %.17g", what, d, j);
        } else {
            /* -1 is "out of range": overflow, or underflow to zero or a
             * subnormal (strtod's ERANGE) */
            int range = fabs(j) < 2.2250738585072014e-308 ||
                        fabs(j) >= 1.7976931348623157e308;
            CHECK(range, "%s: lp_json_number refuses %.*s (jq: %.17g)", what,
                  (int)v->len, s + v->off, j);
        }
    }
}

/* Counts the top-level members of the object text s[0..n) (valid). */
static uint32_t members_of(const char *s, size_t n)
{
    struct shape sh;

    shape_of((const unsigned char *)s, n, &sh);
    return sh.topcount;
}

static void check_event(const char *s, size_t n, const struct lp_jlimits *lim,
                        int valid, const struct shape *sh, jv parsed)
{
    struct lp_jevent ev;
    struct lp_jerr e;
    int r = lp_json_event(s, n, &keys, lim, &ev, &e);
    int dup_ids_limit = 0;

    if (r < 0 && strstr(e.msg, "too many \"_id\"") != NULL)
        dup_ids_limit = 1;
    if (valid && sh->first == '{') {
        CHECK(r == 0 || dup_ids_limit,
              "lp_json_event refuses a valid object: %s", e.msg);
    } else if (valid) {
        CHECK(r < 0 && e.not_object,
              "lp_json_event: a valid non-object gives r=%d not_object=%d",
              r, e.not_object);
    } else {
        CHECK(r < 0 && !e.not_object,
              "lp_json_event accepts what lp_json_valid refuses (r=%d, "
              "not_object=%d)", r, e.not_object);
    }
    if (r < 0 || jv_get_kind(parsed) != JV_KIND_OBJECT)
        return;

    CHECK(ev.nmembers == sh->topcount, "nmembers %u, the text has %u",
          ev.nmembers, sh->topcount);
    for (int i = 0; i < keys.n; i++) {
        jv name = jv_string_sized(keys.name[i], (int)keys.len[i]);
        jv val = jv_object_get(jv_copy(parsed), name);
        char what[80];
        snprintf(what, sizeof what, "member \"%.20s\"", keys.name[i]);
        if (ev.val[i].type == LP_JNONE) {
            CHECK(!jv_is_valid(val), "%s: absent for us, jq has it", what);
        } else {
            CHECK(jv_is_valid(val), "%s: present for us, jq has no such key",
                  what);
            check_value(s, &ev.val[i], val, what);
        }
        jv_free(val);
    }

    /* the "_id" cuts */
    {
        size_t cl = lp_json_cut_len(&ev, n);
        char *out;
        struct lp_jerr ce;
        jv want, got;
        CHECK(cl <= n, "cut length %zu > %zu", cl, n);
        if (ev.nids == 0)
            CHECK(ev.ncuts == 0 && cl == n, "cuts without \"_id\"");
        out = malloc(cl ? cl : 1);
        lp_json_cut_copy(&ev, s, n, out);
        CHECK(lp_json_valid(out, cl, NULL, &ce) == 0 &&
              lp_json_first(out, cl) == '{',
              "the copy without \"_id\" is not a valid object: %s", ce.msg);
        CHECK(members_of(out, cl) == ev.nmembers - ev.nids,
              "the copy without \"_id\" has %u members, want %u - %u",
              members_of(out, cl), ev.nmembers, ev.nids);
        got = jv_parse_sized(out, (int)cl);
        want = jv_object_delete(jv_copy(parsed), jv_string("_id"));
        CHECK(jv_is_valid(got) && jv_equal(jv_copy(got), jv_copy(want)),
              "the copy without \"_id\" is not the object less \"_id\"");
        jv_free(got);
        jv_free(want);
        free(out);
    }
}

static void check_array(const char *s, size_t n, const struct shape *sh,
                        jv parsed)
{
    size_t pos = 0, off, len, count = 0;
    int type;

    if (sh->first != '[') {
        CHECK(lp_json_array_next(s, n, &pos, &off, &len, &type) == 0,
              "lp_json_array_next walks a non-array");
        return;
    }
    while (lp_json_array_next(s, n, &pos, &off, &len, &type) == 1) {
        struct lp_jval v = { (uint32_t)off, (uint32_t)len, (uint8_t)type, 0 };
        jv el = jv_array_get(jv_copy(parsed), (int)count);
        char what[48];
        snprintf(what, sizeof what, "array element %zu", count);
        CHECK(jv_is_valid(el), "%s: jq has only %d", what,
              jv_array_length(jv_copy(parsed)));
        CHECK(pos <= n, "%s: pos %zu past the end", what, pos);
        v.esc = memchr(s + off, '\\', len) != NULL;
        check_value(s, &v, el, what);
        jv_free(el);
        count++;
    }
    CHECK((int)count == jv_array_length(jv_copy(parsed)),
          "lp_json_array_next gives %zu elements, jq %d", count,
          jv_array_length(jv_copy(parsed)));
    CHECK(count == sh->topcount, "lp_json_array_next gives %zu elements, "
          "the text has %u", count, sh->topcount);
}

/* jq 1.6 leaks a value on some syntax errors ({"a" "b"}): not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libjq.so\n";
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s;
    struct lp_jlimits lim = { LP_JSON_DEPTH, 0 }, lim2;
    struct lp_jerr e;
    struct shape sh;
    char msg[256];
    uint64_t h;
    int ours, theirs, r2;
    jv parsed;

    if (size > (1u << 20))
        return 0;
    init_keys();
    /* an exact-size copy, so that a read past the end is caught */
    s = memcpy(malloc(size ? size : 1), data, size);
    cur = (const unsigned char *)s;
    curlen = size;
    shape_of(cur, size, &sh);

    ours = lp_json_valid(s, size, &lim, &e) == 0;
    CHECK(lp_json_first(s, size) == sh.first, "lp_json_first %d, want %d",
          lp_json_first(s, size), sh.first);
    parsed = jv_parse_sized(s, (int)size);
    theirs = jv_is_valid(parsed);
    if (ours && !theirs)
        fail("lp_json_valid accepts, jq refuses: %s",
             jq_msg(jv_copy(parsed), msg, sizeof msg));
    if (theirs && sh.clean && !ours)
        fail("jq accepts a clean input, lp_json_valid refuses: %s", e.msg);
    if (!ours) {
        CHECK(e.off <= size, "error offset %zu past the end", e.off);
        CHECK(memchr(e.msg, '\0', sizeof e.msg) != NULL && e.msg[0],
              "bad error message");
    }

    check_event(s, size, &lim, ours, &sh, parsed);
    check_event(s, size, NULL, ours, &sh, parsed);
    if (ours)
        check_array(s, size, &sh, parsed);

    /* 4: derived limits */
    h = fnv(data, size);
    lim2.depth = 1 + (int)(h % LP_JSON_DEPTH);
    lim2.members = (h >> 8) % 3 == 0 ? 0 : (uint32_t)((h >> 16) % 9);
    r2 = lp_json_valid(s, size, &lim2, &e) == 0;
    {
        int want = ours && sh.maxdepth <= lim2.depth &&
                   (lim2.members == 0 || sh.maxcount <= lim2.members);
        CHECK(r2 == want, "limits depth %d members %u: lp_json_valid says %d, "
              "want %d (depth %d, largest %u): %s", lim2.depth, lim2.members,
              r2, want, sh.maxdepth, sh.maxcount, r2 ? "" : e.msg);
        check_event(s, size, &lim2, want, &sh, parsed);
    }

    jv_free(parsed);
    free((void *)s);
    return 0;
}
