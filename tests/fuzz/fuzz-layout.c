/* fuzz-layout.c -- libFuzzer harness: archive path templates (lp_layout) */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp_json.h"
#include "lp_layout.h"
#include "lp_parse.h"

/*
 * Input, as text so that seeds can be written by hand:
 *
 *     TEMPLATE \n MS [CAP] \n EVENT-JSON
 *
 * MS is the event time in milliseconds (strtoll: out-of-range values
 * saturate, so INT64_MIN and INT64_MAX are reachable; logpipe-drain passes
 * a stream ID's milliseconds, up to 2^64-1, cast to int64_t); CAP is the
 * output buffer size (default LP_LAYOUT_PATHMAX), allocated exactly.
 *
 * Checks (abort() on failure):
 *  1. lp_layout_new accepts exactly the templates that the grammar of
 *     lp_layout.h allows (an independent reading of it below), and fails
 *     with a message otherwise.
 *  2. lp_layout_expand gives exactly the path built independently
 *     (gmtime_r for the date, the member values lp_json_event reports, the
 *     safe-name rule of SPEC "File tree"), or -1 exactly when that path is
 *     impossible (a year outside 0000..9999, an unsafe value, too long for
 *     CAP). Any path it gives is relative, has no empty, "." or ".."
 *     component, no component starting with '.', no NUL, only
 *     [A-Za-z0-9._-/], ends in ".jsonl", and is NUL-terminated in CAP.
 *  3. lp_layout_match on that path says it matches, with the day of MS
 *     (when shorter than LP_LAYOUT_PATHMAX; a longer one never matches).
 *  4. lp_layout_match on arbitrary bytes does not crash or hang.
 */

static const uint8_t *cur;
static size_t curlen;

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nfuzz-layout: FINDING: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ninput (%zu bytes): \"", curlen);
    for (size_t i = 0; i < curlen; i++) {
        if (cur[i] == '"' || cur[i] == '\\')
            fprintf(stderr, "\\%c", cur[i]);
        else if (cur[i] == '\n')
            fprintf(stderr, "\\n");
        else if (cur[i] >= 0x20 && cur[i] < 0x7f)
            fputc(cur[i], stderr);
        else
            fprintf(stderr, "\\x%02x", cur[i]);
    }
    fprintf(stderr, "\"\n");
    abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static int safe_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* SPEC: [A-Za-z0-9_][A-Za-z0-9._-]{0,63} */
static int safe_name(const char *s, size_t n)
{
    if (n < 1 || n > 64)
        return 0;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
          (s[0] >= '0' && s[0] <= '9') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!safe_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* ---- an independent reading of the template grammar ---- */

enum { T_LIT, T_CONV, T_FIELD, T_SLASH };

struct tok {
    int kind;
    char conv;
    const char *s;              /* T_LIT, T_FIELD: text */
    size_t n;
};

struct tmpl {
    int ntok;
    struct tok *tok;            /* one per byte at most: strlen + 1 */
    int nfields;
    const char *field[16];
    size_t fieldlen[16];
};

/*
 * Does a day conversion of the file name sit between two fields there
 * ("{a}%Y%m%d{b}.jsonl")? Then the digits of the day have no fixed place
 * in a path, and a match may read them from a field's value (finding
 * layout-1): lp_layout_new refuses these. %j is not counted: the day is
 * read from it only when %F or %Y %m %d give none, never for a path that
 * lp_layout_expand made.
 */
static int ambiguous_day(const struct tmpl *p)
{
    int last = 0, field_before = 0, day_after_field = 0;

    for (int j = 0; j < p->ntok; j++)
        if (p->tok[j].kind == T_SLASH)
            last = j + 1;
    for (int j = last; j < p->ntok; j++) {
        const struct tok *k = &p->tok[j];
        if (k->kind == T_FIELD) {
            if (day_after_field)
                return 1;
            field_before = 1;
        } else if (k->kind == T_CONV && strchr("YmdF", k->conv) &&
                   field_before) {
            day_after_field = 1;
        }
    }
    return 0;
}

/* 1 when the grammar of lp_layout.h allows t; fills p. */
static int grammar_ok(const char *t, struct tmpl *p)
{
    size_t n = strlen(t), i = 0;
    int comp_tokens = 0, comp_starts_dot = 0, last_comp = 0;
    int has_y = 0, has_m = 0, has_d = 0, has_f = 0;

    p->ntok = 0;
    p->nfields = 0;
    if (n == 0)
        return 0;
    while (i < n) {
        struct tok k = { 0 };
        if (t[i] == '%') {
            if (i + 1 >= n || strchr("YymdHMSjF", t[i + 1]) == NULL)
                return 0;
            k.kind = T_CONV;
            k.conv = t[i + 1];
            i += 2;
        } else if (t[i] == '{') {
            const char *close = strchr(t + i, '}');
            if (close == NULL || close == t + i + 1)
                return 0;
            k.kind = T_FIELD;
            k.s = t + i + 1;
            k.n = (size_t)(close - (t + i + 1));
            if (memchr(k.s, '{', k.n))
                return 0;
            i = (size_t)(close - t) + 1;
        } else if (t[i] == '/') {
            k.kind = T_SLASH;
            i++;
        } else if (safe_char((unsigned char)t[i])) {
            k.kind = T_LIT;
            k.s = t + i;
            while (i < n && safe_char((unsigned char)t[i]))
                i++;
            k.n = (size_t)(t + i - k.s);
        } else {
            return 0;
        }
        p->tok[p->ntok++] = k;
    }
    /* components: no empty one, none starting with '.' */
    for (int j = 0; j <= p->ntok; j++) {
        if (j == p->ntok || p->tok[j].kind == T_SLASH) {
            if (comp_tokens == 0 || comp_starts_dot)
                return 0;
            comp_tokens = 0;
            comp_starts_dot = 0;
            if (j < p->ntok)
                last_comp = j + 1;
            continue;
        }
        if (comp_tokens == 0 && p->tok[j].kind == T_LIT &&
            p->tok[j].s[0] == '.')
            comp_starts_dot = 1;
        comp_tokens++;
    }
    /* the file name ends in ".jsonl" and holds the day */
    if (n < 6 || strcmp(t + n - 6, ".jsonl") != 0 ||
        p->tok[p->ntok - 1].kind != T_LIT)
        return 0;
    for (int j = last_comp; j < p->ntok; j++) {
        if (p->tok[j].kind != T_CONV)
            continue;
        has_y |= p->tok[j].conv == 'Y';
        has_m |= p->tok[j].conv == 'm';
        has_d |= p->tok[j].conv == 'd';
        has_f |= p->tok[j].conv == 'F';
    }
    if (!has_f && !(has_y && has_m && has_d))
        return 0;
    if (ambiguous_day(p))
        return 0;
    for (int j = 0; j < p->ntok; j++) {
        int f;
        if (p->tok[j].kind != T_FIELD)
            continue;
        for (f = 0; f < p->nfields; f++)
            if (p->fieldlen[f] == p->tok[j].n &&
                memcmp(p->field[f], p->tok[j].s, p->tok[j].n) == 0)
                break;
        if (f == p->nfields) {
            if (p->nfields >= 8)
                return -1;      /* too many fields: refused, that's all */
            p->field[f] = p->tok[j].s;
            p->fieldlen[f] = p->tok[j].n;
            p->nfields++;
        }
    }
    return 1;
}

/* The parts lp_layout.c makes: literal runs between conversions and
 * fields, slashes included. */
static int count_parts(const struct tmpl *p)
{
    int parts = 0, in_lit = 0;

    for (int j = 0; j < p->ntok; j++) {
        if (p->tok[j].kind == T_LIT || p->tok[j].kind == T_SLASH) {
            if (!in_lit)
                parts++;
            in_lit = 1;
        } else {
            parts++;
            in_lit = 0;
        }
    }
    return parts;
}

/* ---- the expected expansion ---- */

static size_t put(char *o, size_t at, size_t cap, const char *s, size_t n)
{
    if (at < cap)
        memcpy(o + at, s, at + n <= cap ? n : cap - at);
    return at + n;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * The expected path, or -1 (year out of range) or -2 (unsafe value).
 * Writes at most cap bytes of it to o; returns its full length.
 */
static long expect_path(const struct tmpl *p, int64_t ms, const char *s,
                        const struct lp_jevent *ev, const int *keyidx,
                        char *o, size_t cap)
{
    size_t at = 0;
    struct tm tm;
    int have_tm = 0;

    for (int j = 0; j < p->ntok; j++) {
        const struct tok *k = &p->tok[j];
        char tmp[80];
        switch (k->kind) {
        case T_LIT:
            at = put(o, at, cap, k->s, k->n);
            break;
        case T_SLASH:
            at = put(o, at, cap, "/", 1);
            break;
        case T_CONV:
            if (!have_tm) {
                time_t secs = (time_t)floordiv(ms, 1000);
                if (gmtime_r(&secs, &tm) == NULL || tm.tm_year < -1900 ||
                    tm.tm_year > 9999 - 1900)
                    return -1;
                have_tm = 1;
            }
            switch (k->conv) {
            case 'Y': snprintf(tmp, sizeof tmp, "%04d", tm.tm_year + 1900);
                      break;
            case 'y': snprintf(tmp, sizeof tmp, "%02d",
                               (tm.tm_year + 1900) % 100);
                      break;
            case 'm': snprintf(tmp, sizeof tmp, "%02d", tm.tm_mon + 1); break;
            case 'd': snprintf(tmp, sizeof tmp, "%02d", tm.tm_mday); break;
            case 'H': snprintf(tmp, sizeof tmp, "%02d", tm.tm_hour); break;
            case 'M': snprintf(tmp, sizeof tmp, "%02d", tm.tm_min); break;
            case 'S': snprintf(tmp, sizeof tmp, "%02d", tm.tm_sec); break;
            case 'j': snprintf(tmp, sizeof tmp, "%03d", tm.tm_yday + 1);
                      break;
            case 'F': snprintf(tmp, sizeof tmp, "%04d-%02d-%02d",
                               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
                      break;
            }
            at = put(o, at, cap, tmp, strlen(tmp));
            break;
        case T_FIELD: {
            int f;
            const struct lp_jval *v;
            for (f = 0; f < p->nfields; f++)
                if (p->fieldlen[f] == k->n &&
                    memcmp(p->field[f], k->s, k->n) == 0)
                    break;
            v = &ev->val[keyidx[f]];
            if (v->type == LP_JNONE || v->type == LP_JNULL) {
                at = put(o, at, cap, "_none", 5);
            } else if (v->type == LP_JSTRING) {
                char val[4096];
                long r = lp_json_unescape(s, v, val, sizeof val);
                if (r < 0 || !safe_name(val, (size_t)r))
                    return -2;
                at = put(o, at, cap, val, (size_t)r);
            } else if (v->type == LP_JNUMBER) {
                /* an integer: no fraction, no exponent (and no sign,
                 * which safe_name refuses) */
                const char *t = s + v->off;
                if (memchr(t, '.', v->len) || memchr(t, 'e', v->len) ||
                    memchr(t, 'E', v->len) || !safe_name(t, v->len))
                    return -2;
                at = put(o, at, cap, t, v->len);
            } else {
                return -2;
            }
            break;
        }
        }
    }
    return (long)at;
}

static void check_path(const char *o, long r, size_t cap)
{
    size_t n = (size_t)r;

    CHECK(n < cap, "path of %zu bytes in a buffer of %zu", n, cap);
    CHECK(o[n] == '\0', "path not NUL-terminated");
    CHECK(memchr(o, '\0', n) == NULL, "NUL inside the path");
    CHECK(n > 0 && o[0] != '/', "absolute or empty path");
    CHECK(n >= 6 && memcmp(o + n - 6, ".jsonl", 6) == 0,
          "path does not end in .jsonl");
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i < n && o[i] != '/') {
            CHECK(safe_char((unsigned char)o[i]), "byte 0x%02x in the path",
                  (unsigned char)o[i]);
            continue;
        }
        CHECK(i > start, "empty component at byte %zu", i);
        CHECK(o[start] != '.', "component starting with '.' at byte %zu",
              start);
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl1, *nl2;
    char *tmpl, *json, *out, *want, err[LP_ERRLEN], line[64], *end;
    size_t tlen, jlen, cap = LP_LAYOUT_PATHMAX;
    struct lp_layout *l = NULL;
    struct tmpl tp = { 0 };
    struct lp_jkeys keys = { 0 };
    struct lp_jevent ev;
    struct lp_jerr je;
    int keyidx[LP_LAYOUT_MAXFIELDS], g, r;
    int64_t ms = 0, day;
    long got, exp;

    cur = data;
    curlen = size;
    nl1 = memchr(data, '\n', size);
    tlen = nl1 ? (size_t)(nl1 - data) : size;
    tmpl = malloc(tlen + 1);
    memcpy(tmpl, data, tlen);
    tmpl[tlen] = '\0';          /* lp_layout_new reads up to a NUL */
    json = NULL;
    jlen = 0;
    if (nl1) {
        const uint8_t *rest = nl1 + 1;
        size_t rn = size - (size_t)(rest - data);
        nl2 = memchr(rest, '\n', rn);
        size_t ln = nl2 ? (size_t)(nl2 - rest) : rn;
        if (ln >= sizeof line)
            ln = sizeof line - 1;
        memcpy(line, rest, ln);
        line[ln] = '\0';
        ms = strtoll(line, &end, 10);
        if (*end == ' ') {
            long c = strtol(end + 1, NULL, 10);
            if (c >= 1 && c <= 4096)
                cap = (size_t)c;
        }
        if (nl2) {
            jlen = size - (size_t)(nl2 + 1 - data);
            json = malloc(jlen ? jlen : 1);
            memcpy(json, nl2 + 1, jlen);
        }
    }

    /* 1: the template */
    err[0] = '\0';
    r = lp_layout_new(tmpl, &l, err);
    /* every token takes at least one byte (finding layout-4: a fixed
     * 512 tokens refused "a/a/.../%F.jsonl", which lp_layout keeps as one
     * literal part) */
    tp.tok = malloc((tlen + 1) * sizeof *tp.tok);
    g = grammar_ok(tmpl, &tp);
    if (r == 0) {
        CHECK(l != NULL, "lp_layout_new: 0 without a layout");
        CHECK(g == 1, "lp_layout_new accepts a template the grammar refuses");
        CHECK(lp_layout_nfields(l) == tp.nfields, "%d fields, want %d",
              lp_layout_nfields(l), tp.nfields);
        for (int i = 0; i < tp.nfields; i++)
            CHECK(strlen(lp_layout_field(l, i)) == tp.fieldlen[i] &&
                  memcmp(lp_layout_field(l, i), tp.field[i],
                         tp.fieldlen[i]) == 0, "field %d differs", i);
    } else {
        CHECK(l == NULL, "lp_layout_new: -1 with a layout");
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL,
              "lp_layout_new: -1 without a message");
        /* the only refusal of a grammatical template: more than 128
         * parts ("template too complex") or 8 fields */
        CHECK(g != 1 || count_parts(&tp) > 128 ||
              strstr(err, "too complex") != NULL,
              "lp_layout_new refuses a grammatical template: %s", err);
    }
    if (r < 0)
        goto out;

    /* 4: match on arbitrary bytes (the JSON part); finding layout-3 was
     * 64^k tries for k fields in a row (now memoized) */
    if (json)
        lp_layout_match(l, json, jlen, &day);
    if (json == NULL)
        goto out;

    /* 2: expansion */
    for (int i = 0; i < lp_layout_nfields(l); i++)
        keyidx[i] = lp_jkeys_add(&keys, lp_layout_field(l, i));
    if (lp_json_event(json, jlen, &keys, NULL, &ev, &je) < 0)
        goto out;
    out = malloc(cap);
    want = malloc(cap + 1);
    err[0] = '\0';
    got = lp_layout_expand(l, ms, json, &ev, keyidx, out, cap, err);
    exp = expect_path(&tp, ms, json, &ev, keyidx, want, cap + 1);
    if (exp < 0 || (size_t)exp >= cap) {
        CHECK(got == -1, "lp_layout_expand gives a path (%ld bytes) where "
              "none is possible (%s)", got, exp == -1 ? "year" :
              exp == -2 ? "unsafe value" : "too long");
        CHECK(err[0] != '\0', "lp_layout_expand: -1 without a message");
    } else {
        CHECK(got == exp, "lp_layout_expand gives %ld bytes, want %ld: %s",
              got, exp, got < 0 ? err : "");
        check_path(out, got, cap);
        CHECK(memcmp(out, want, (size_t)got) == 0,
              "lp_layout_expand gives \"%s\", want \"%.*s\"", out, (int)exp,
              want);
        /* 3: the day comes back (from paths of the length logpipe-drain
         * makes: LP_LAYOUT_PATHMAX - 1 at most; longer never match) */
        day = INT64_MIN;
        r = lp_layout_match(l, out, (size_t)got, &day);
        if (got >= LP_LAYOUT_PATHMAX) {
            CHECK(r == 0, "lp_layout_match matches a path of %ld bytes", got);
        } else {
            CHECK(r == 1, "lp_layout_match does not match its own path "
                  "\"%s\"", out);
            CHECK(day == floordiv(ms, 86400000),
                  "lp_layout_match reads day %lld from \"%s\", want %lld",
                  (long long)day, out, (long long)floordiv(ms, 86400000));
        }
    }
    free(out);
    free(want);
out:
    lp_layout_free(l);
    free(tp.tok);
    free(tmpl);
    free(json);
    return 0;
}
