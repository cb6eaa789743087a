/* lp_json.c -- strict RFC 8259 validation and top-level member spans */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "lp_json.h"
#include "lp_utf8.h"

/*
 * Why not jq's parser: it accepts NaN, leading zeros and invalid UTF-8, and
 * runs at ~55 MB/s. Events are forwarded byte for byte, so all we need is
 * "is this valid" plus where a few top-level members are: one pass, no
 * allocation, no tree. Strings take most of the bytes of a log line, so
 * they are scanned 16 bytes at a time where SSE2 is there.
 */

typedef const unsigned char *ptr;

struct ctx {
    ptr base, end;
    int depth;
    uint32_t members;
    struct lp_jerr *e;
};

/* 1: whitespace; 2: needs a look inside a string (quote, backslash,
 * control character, non-ASCII). */
static const unsigned char cls[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1,
};
static unsigned char strcls[256];

__attribute__((constructor)) static void init_tables(void)
{
    for (int i = 0; i < 256; i++)
        strcls[i] = (i < 0x20 || i == '"' || i == '\\' || i >= 0x80);
}

static ptr fail(struct ctx *c, ptr p, const char *what)
{
    size_t off = (size_t)(p - c->base);

    c->e->off = off;
    snprintf(c->e->msg, sizeof c->e->msg, "%s at byte %zu", what, off + 1);
    return NULL;
}

static ptr unexpected(struct ctx *c, ptr p, const char *expected)
{
    char what[64];

    if (p >= c->end)
        return fail(c, p, expected ? expected : "unexpected end of input");
    if (*p == '\'')
        snprintf(what, sizeof what, "unexpected \"'\"");
    else if (*p >= 0x21 && *p < 0x7f)
        snprintf(what, sizeof what, "unexpected '%c'", *p);
    else
        snprintf(what, sizeof what, "unexpected byte 0x%02X", *p);
    return fail(c, p, what);
}

static inline ptr skip_ws(ptr p, ptr end)
{
    while (p < end && cls[*p] == 1)
        p++;
    return p;
}

static int hex4(ptr p, unsigned *v)
{
    unsigned x = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        x <<= 4;
        if (ch >= '0' && ch <= '9')
            x |= ch - '0';
        else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
            x |= (ch | 0x20) - 'a' + 10;
        else
            return -1;
    }
    *v = x;
    return 0;
}

/* p at a backslash; returns the byte after the escape. */
static ptr scan_escape(struct ctx *c, ptr p)
{
    unsigned u, u2;

    if (c->end - p < 2)
        return fail(c, p, "unterminated string");
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return p + 2;
    case 'u':
        if (c->end - p < 6 || hex4(p + 2, &u) < 0)
            return fail(c, p, "invalid \\u escape");
        if (u >= 0xdc00 && u <= 0xdfff)
            return fail(c, p, "lone low surrogate in \\u escape");
        if (u >= 0xd800 && u <= 0xdbff) {
            if (c->end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
                hex4(p + 8, &u2) < 0 || u2 < 0xdc00 || u2 > 0xdfff)
                return fail(c, p, "lone high surrogate in \\u escape");
            return p + 12;
        }
        return p + 6;
    default:
        return fail(c, p, "invalid escape");
    }
}

/* p at the opening quote; returns the byte after the closing quote. */
static ptr scan_string(struct ctx *c, ptr p, int *esc)
{
    ptr end = c->end;
    size_t k;

    p++;
    for (;;) {
#ifdef __SSE2__
        const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
        const __m128i sp = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            /* signed compare: controls and bytes >= 0x80 are both < 0x20 */
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                                  _mm_cmpeq_epi8(v, bs)),
                                     _mm_cmplt_epi8(v, sp));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            if (mask) {
                p += __builtin_ctz(mask);
                goto special;
            }
            p += 16;
        }
#endif
        while (p < end && !strcls[*p])
            p++;
        if (p >= end)
            return fail(c, p, "unterminated string");
#ifdef __SSE2__
special:
#endif
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            *esc = 1;
            if ((p = scan_escape(c, p)) == NULL)
                return NULL;
            continue;
        }
        if (*p < 0x20)
            return fail(c, p, "control character in string");
        if ((k = lp_utf8_seq(p, (size_t)(end - p))) == 0)
            return fail(c, p, "invalid UTF-8");
        p += k;
    }
}

static ptr scan_number(struct ctx *c, ptr p)
{
    ptr end = c->end;

    if (*p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return unexpected(c, p, "number without digits");
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return fail(c, p, "leading zero in number");
    } else {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return unexpected(c, p, "number without digits after '.'");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return unexpected(c, p, "number without digits in exponent");
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static ptr scan_literal(struct ctx *c, ptr p, const char *lit, size_t n)
{
    if ((size_t)(c->end - p) < n || memcmp(p, lit, n) != 0) {
        size_t i = 0;
        while (p + i < c->end && i < n && p[i] == (unsigned char)lit[i])
            i++;
        return unexpected(c, p + i, NULL);
    }
    return p + n;
}

static ptr scan_value(struct ctx *c, ptr p, int depth, int *type);

static ptr too_deep(struct ctx *c, ptr p)
{
    char what[48];

    snprintf(what, sizeof what, "nesting deeper than %d", c->depth);
    return fail(c, p, what);
}

static ptr too_many(struct ctx *c, ptr p)
{
    char what[64];

    snprintf(what, sizeof what, "more than %u members", c->members);
    return fail(c, p, what);
}

static ptr scan_object(struct ctx *c, ptr p, int depth)
{
    ptr end = c->end;
    uint32_t n = 0;
    int esc, type;

    if (depth > c->depth)
        return too_deep(c, p);
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (c->members && n++ >= c->members)
            return too_many(c, p);
        if (p >= end || *p != '"')
            return unexpected(c, p, "unterminated object");
        if ((p = scan_string(c, p, &esc)) == NULL)
            return NULL;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return unexpected(c, p, "unterminated object");
        p = skip_ws(p + 1, end);
        if ((p = scan_value(c, p, depth + 1, &type)) == NULL)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        return unexpected(c, p, "unterminated object");
    }
}

static ptr scan_array(struct ctx *c, ptr p, int depth)
{
    ptr end = c->end;
    uint32_t n = 0;
    int type;

    if (depth > c->depth)
        return too_deep(c, p);
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        if (c->members && n++ >= c->members)
            return too_many(c, p);
        if ((p = scan_value(c, p, depth + 1, &type)) == NULL)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        return unexpected(c, p, "unterminated array");
    }
}

static ptr scan_value(struct ctx *c, ptr p, int depth, int *type)
{
    int esc;

    if (p >= c->end)
        return unexpected(c, p, NULL);
    switch (*p) {
    case '"':
        *type = LP_JSTRING;
        return scan_string(c, p, &esc);
    case '{':
        *type = LP_JOBJECT;
        return scan_object(c, p, depth);
    case '[':
        *type = LP_JARRAY;
        return scan_array(c, p, depth);
    case 't':
        *type = LP_JTRUE;
        return scan_literal(c, p, "true", 4);
    case 'f':
        *type = LP_JFALSE;
        return scan_literal(c, p, "false", 5);
    case 'n':
        *type = LP_JNULL;
        return scan_literal(c, p, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9':
        *type = LP_JNUMBER;
        return scan_number(c, p);
    default:
        return unexpected(c, p, NULL);
    }
}

static void ctx_init(struct ctx *c, const char *s, size_t n,
                     const struct lp_jlimits *lim, struct lp_jerr *e)
{
    c->base = (ptr)s;
    c->end = (ptr)s + n;
    c->depth = lim && lim->depth > 0 ? lim->depth : LP_JSON_DEPTH;
    c->members = lim ? lim->members : 0;
    c->e = e;
}

int lp_json_valid(const char *s, size_t n, const struct lp_jlimits *lim,
                  struct lp_jerr *e)
{
    struct ctx c;
    ptr p;
    int type;

    ctx_init(&c, s, n, lim, e);
    e->not_object = 0;
    p = skip_ws(c.base, c.end);
    if (p >= c.end) {
        fail(&c, p, "empty input");
        return -1;
    }
    if ((p = scan_value(&c, p, 1, &type)) == NULL)
        return -1;
    p = skip_ws(p, c.end);
    if (p < c.end) {
        unexpected(&c, p, NULL);
        return -1;
    }
    return 0;
}

int lp_jkeys_add(struct lp_jkeys *k, const char *name)
{
    size_t len = strlen(name);

    for (int i = 0; i < k->n; i++)
        if (k->len[i] == len && memcmp(k->name[i], name, len) == 0)
            return i;
    if (k->n >= LP_JSON_MAXKEYS)
        return -1;
    k->name[k->n] = name;
    k->len[k->n] = len;
    /* bit 63 stands for every length from 63 up */
    k->lens |= (uint64_t)1 << (len < 63 ? len : 63);
    return k->n++;
}

/* Records a wanted key's value, and a cut for "_id". key/klen decoded. */
static int key_equals(ptr ks, ptr ke, const char *name, size_t len);

/*
 * Records v as the value of every wanted key named key[0..klen). key NULL:
 * the key at ks..ke (quotes included) decodes to more than klen bytes,
 * and is compared in place with the longer wanted names.
 */
static void note_member(const struct lp_jkeys *k, struct lp_jevent *ev,
                        const char *key, size_t klen, ptr ks, ptr ke,
                        ptr base, ptr v, ptr vend, int type, int esc)
{
    for (int i = 0; i < k->n; i++) {
        if (key ? k->len[i] == klen && memcmp(k->name[i], key, klen) == 0
                : k->len[i] > klen &&
                  key_equals(ks, ke, k->name[i], k->len[i])) {
            ev->val[i].off = (uint32_t)(v - base);
            ev->val[i].len = (uint32_t)(vend - v);
            ev->val[i].type = (uint8_t)type;
            ev->val[i].esc = (uint8_t)esc;
        }
    }
}

int lp_json_event(const char *s, size_t n, const struct lp_jkeys *k,
                  const struct lp_jlimits *lim, struct lp_jevent *ev,
                  struct lp_jerr *e)
{
    static const struct lp_jkeys none;
    struct ctx c;
    ptr p, end, ks, ke, v, mstart, kept_end;
    char kbuf[256];
    uint32_t nm = 0;
    int esc, vesc, type;

    if (k == NULL)
        k = &none;
    if (n > UINT32_MAX) {
        e->off = 0;
        snprintf(e->msg, sizeof e->msg, "event larger than 4 GiB");
        return -1;
    }
    ctx_init(&c, s, n, lim, e);
    end = c.end;
    for (int i = 0; i < k->n; i++)
        ev->val[i].type = LP_JNONE;
    ev->ncuts = 0;
    ev->nids = 0;

    e->not_object = 0;
    p = skip_ws(c.base, end);
    if (p >= end || *p != '{') {
        if (lp_json_valid(s, n, lim, e) == 0) {
            e->not_object = 1;
            e->off = (size_t)(p - c.base);
            snprintf(e->msg, sizeof e->msg, "not a JSON object");
        }
        return -1;
    }
    p++;
    mstart = kept_end = p;
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
        goto tail;
    }
    for (;;) {
        if (c.members && nm >= c.members) {
            too_many(&c, p);
            return -1;
        }
        nm++;
        if (p >= end || *p != '"') {
            unexpected(&c, p, "unterminated object");
            return -1;
        }
        ks = p;
        esc = 0;
        if ((p = scan_string(&c, p, &esc)) == NULL)
            return -1;
        ke = p;
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            unexpected(&c, p, "unterminated object");
            return -1;
        }
        v = p = skip_ws(p + 1, end);
        vesc = 0;
        if (p < end && *p == '"') {
            type = LP_JSTRING;
            p = scan_string(&c, p, &vesc);
        } else {
            p = scan_value(&c, p, 2, &type);
        }
        if (p == NULL)
            return -1;

        /* the key, without quotes, decoded when it has escapes; one
         * that does not fit kbuf is compared in place (key NULL) */
        {
            const char *key = (const char *)ks + 1;
            size_t klen = (size_t)(ke - ks) - 2;
            if (esc) {
                struct lp_jval kv = { (uint32_t)(ks - c.base),
                                      (uint32_t)(ke - ks), LP_JSTRING, 1 };
                long r = lp_json_unescape(s, &kv, kbuf, sizeof kbuf);
                klen = r < 0 ? sizeof kbuf : (size_t)r;
                key = r < 0 ? NULL : kbuf;
            }
            if ((k->lens >> (klen < 63 ? klen : 63)) & 1)
                note_member(k, ev, key, klen, ks, ke, c.base, v, p, type,
                            vesc);
            if (key && klen == 3 && memcmp(key, "_id", 3) == 0) {
                ptr sep = skip_ws(p, end);
                uint32_t from;
                ev->nids++;
                if (sep < end && *sep == ',') {
                    /* the member and its comma */
                    from = (uint32_t)(mstart - c.base);
                } else {
                    /* the last member: cut from the end of the last member
                     * kept, so the comma before a run of trailing "_id"
                     * members goes too; the run's own cuts merge into it */
                    from = (uint32_t)(kept_end - c.base);
                    while (ev->ncuts > 0 && ev->cut[ev->ncuts - 1].from >= from)
                        ev->ncuts--;
                }
                if (ev->ncuts > 0 && ev->cut[ev->ncuts - 1].to == from) {
                    from = ev->cut[ev->ncuts - 1].from;     /* adjacent */
                    ev->ncuts--;
                }
                if (ev->ncuts >= LP_JSON_MAXCUTS) {
                    fail(&c, ks, "too many \"_id\" members");
                    return -1;
                }
                ev->cut[ev->ncuts].from = from;
                ev->cut[ev->ncuts].to = (uint32_t)((sep < end && *sep == ','
                                                    ? sep + 1 : sep) - c.base);
                ev->ncuts++;
            } else {
                kept_end = p;
            }
        }

        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            mstart = p;
            p = skip_ws(p, end);
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        unexpected(&c, p, "unterminated object");
        return -1;
    }
tail:
    ev->nmembers = nm;
    p = skip_ws(p, end);
    if (p < end) {
        unexpected(&c, p, NULL);
        return -1;
    }
    return 0;
}

size_t lp_json_cut_len(const struct lp_jevent *ev, size_t n)
{
    size_t pos = 0, out = n;

    for (int i = 0; i < ev->ncuts; i++) {
        size_t from = ev->cut[i].from, to = ev->cut[i].to;
        if (from < pos)
            from = pos;
        if (to > from) {
            out -= to - from;
            pos = to;
        }
    }
    return out;
}

void lp_json_cut_copy(const struct lp_jevent *ev, const char *s, size_t n,
                      char *out)
{
    size_t pos = 0;

    for (int i = 0; i < ev->ncuts; i++) {
        size_t from = ev->cut[i].from, to = ev->cut[i].to;
        if (from > pos) {
            memcpy(out, s + pos, from - pos);
            out += from - pos;
        }
        if (to > pos)
            pos = to;
    }
    memcpy(out, s + pos, n - pos);
}

int lp_json_array_next(const char *s, size_t n, size_t *pos, size_t *off,
                       size_t *len, int *type)
{
    struct lp_jerr e;
    struct ctx c;
    ptr p, v;

    ctx_init(&c, s, n, NULL, &e);
    c.depth = 1 << 30;          /* validated already */
    p = c.base + *pos;
    if (*pos == 0) {
        p = skip_ws(p, c.end);
        if (p >= c.end || *p != '[')
            return 0;
        p = skip_ws(p + 1, c.end);
    } else {
        p = skip_ws(p, c.end);
        if (p >= c.end || *p != ',')
            return 0;
        p = skip_ws(p + 1, c.end);
    }
    if (p >= c.end || *p == ']')
        return 0;
    v = p;
    if ((p = scan_value(&c, p, 2, type)) == NULL)
        return 0;
    *off = (size_t)(v - c.base);
    *len = (size_t)(p - v);
    *pos = (size_t)(p - c.base);
    return 1;
}

static size_t put_utf8(char *o, unsigned u)
{
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xc0 | u >> 6);
        o[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xe0 | u >> 12);
        o[1] = (char)(0x80 | ((u >> 6) & 0x3f));
        o[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | u >> 18);
    o[1] = (char)(0x80 | ((u >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3f));
    o[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

/*
 * Decodes the escape at *pp (a backslash; a surrogate pair is one) of a
 * string the scanner accepted into tmp; moves *pp past it. Returns the
 * length, 1 to 4, or 0 on a bad \u escape.
 */
static size_t unescape_one(ptr *pp, char tmp[4])
{
    ptr p = *pp;
    unsigned u, u2;
    size_t k;

    switch (p[1]) {
    case 'b': tmp[0] = '\b'; k = 1; break;
    case 'f': tmp[0] = '\f'; k = 1; break;
    case 'n': tmp[0] = '\n'; k = 1; break;
    case 'r': tmp[0] = '\r'; k = 1; break;
    case 't': tmp[0] = '\t'; k = 1; break;
    case 'u':
        if (hex4(p + 2, &u) < 0)
            return 0;
        if (u >= 0xd800 && u <= 0xdbff) {
            if (hex4(p + 8, &u2) < 0)
                return 0;
            u = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
            p += 6;
        }
        k = put_utf8(tmp, u);
        p += 4;
        break;
    default: tmp[0] = (char)p[1]; k = 1; break;
    }
    *pp = p + 2;
    return k;
}

long lp_json_unescape(const char *s, const struct lp_jval *v, char *out,
                      size_t cap)
{
    ptr p = (ptr)s + v->off + 1, end = (ptr)s + v->off + v->len - 1;
    size_t o = 0;

    while (p < end) {
        char tmp[4];
        size_t k;

        if (*p != '\\') {
            if (o >= cap)
                return -1;
            out[o++] = (char)*p++;
            continue;
        }
        if ((k = unescape_one(&p, tmp)) == 0 || cap - o < k)
            return -1;
        memcpy(out + o, tmp, k);
        o += k;
    }
    return (long)o;
}

/* Does the string at ks..ke (quotes included, escapes allowed) decode to
 * exactly name[0..len)? Allocates nothing, whatever the length. */
static int key_equals(ptr ks, ptr ke, const char *name, size_t len)
{
    ptr p = ks + 1, end = ke - 1;
    size_t o = 0;

    while (p < end) {
        char tmp[4];
        size_t k = 1;

        if (*p != '\\')
            tmp[0] = (char)*p++;
        else if ((k = unescape_one(&p, tmp)) == 0)
            return 0;
        if (len - o < k || memcmp(name + o, tmp, k) != 0)
            return 0;
        o += k;
    }
    return o == len;
}

int lp_json_number(const char *s, const struct lp_jval *v, double *out)
{
    char tmp[64], *buf = tmp, *end;
    double d;
    int rc = -1;

    if (v->len == 0)
        return -1;
    /* JSON puts no limit on digits, and strtod rounds them all correctly
     * (cutting them would not): a rare long number gets its own copy */
    if (v->len >= sizeof tmp && (buf = malloc((size_t)v->len + 1)) == NULL)
        return -1;
    memcpy(buf, s + v->off, v->len);
    buf[v->len] = '\0';
    errno = 0;
    d = strtod(buf, &end);
    if (*end == '\0' && errno != ERANGE && isfinite(d)) {
        *out = d;
        rc = 0;
    }
    if (buf != tmp)
        free(buf);
    return rc;
}

int lp_json_first(const char *s, size_t n)
{
    ptr p = skip_ws((ptr)s, (ptr)s + n);

    return p < (ptr)s + n ? *p : 0;
}

void lp_json_trim(const char **s, size_t *n)
{
    ptr end = (ptr)*s + *n, p = skip_ws((ptr)*s, end);

    while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
                       end[-1] == '\r' || end[-1] == '\n'))
        end--;
    *s = (const char *)p;
    *n = (size_t)(end - p);
}
