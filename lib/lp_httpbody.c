/* lp_httpbody.c -- HTTP request bodies into events, fed chunk by chunk */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "lp_buf.h"
#include "lp_httpbody.h"
#include "lp_line.h"
#include "lp_parse.h"

#define BLOCK 16384             /* inflate's output, one line read */
#define MAXDEPTH 10048          /* brackets a JSON array's framing tracks:
                                   send's --max-depth is at most 10000 */

/* where the application/json framer is */
enum {
    J_START,                    /* before the first value */
    J_SINGLE,                   /* one value, kept whole */
    J_VALUE,                    /* in the array: before an element */
    J_ELEM,                     /* inside an element */
    J_AFTER,                    /* after an element: ',' or ']' */
    J_DONE                      /* after the array: whitespace only */
};

struct lp_httpbody {
    struct lp_httpbody_conf c;
    int kind, enc, status;
    int64_t now;
    char error[LP_ERRLEN];
    uint64_t sent, decoded, accepted, rejected;

    /* Content-Encoding */
    z_stream z;
    int zinit;                  /* inflateInit2 done */
    int zmode;                  /* windowBits in use; 0: not chosen yet
                                   (deflate: zlib or raw, from the first
                                   two bytes) */
    int zend;                   /* a stream ended: more must be a new
                                   gzip member */
    unsigned char hdr[2];       /* deflate: the first bytes, held */
    size_t nhdr;
    unsigned char *out;         /* BLOCK bytes */

    /* application/x-ndjson */
    struct lp_lines lines;
    int lines_init;
    uint64_t lineno;            /* of the item being judged */

    /* application/json */
    int js;                     /* J_* */
    struct lp_buf elem;         /* the element (or single value) so far */
    int elong;                  /* it passed max_line */
    int escalar;                /* the element is not an array or object */
    int instr, esc;
    int depth;
    unsigned char stk[MAXDEPTH / 8];    /* bit d: level d is an object */
    long index;
    int bom;                    /* bytes of a BOM matched at the start */

    /* LP_BODY_WHOLE */
    struct lp_buf whole;

    /* the stored form of an event */
    struct lp_buf store;
    struct lp_buf client;       /* ,"field":"name" */
};

/* ---- headers ------------------------------------------------------------- */

/* s[0..n) without the spaces and tabs around it */
static void trim_ows(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* a printable rendering of a header value for a message */
static void shown(const char *s, char *out, size_t cap)
{
    size_t i = 0;

    for (; *s && i + 1 < cap && i < 64; s++)
        out[i++] = (*s >= 0x20 && *s < 0x7f && *s != '"') ? *s : '?';
    out[i] = '\0';
}

int lp_httpbody_type(const char *ct, int *kind, char *err)
{
    char show[80];
    const char *p, *semi;
    size_t n;

    if (ct == NULL) {
        snprintf(err, LP_ERRLEN, "no Content-Type: application/x-ndjson "
                 "or application/json");
        return 415;
    }
    semi = strchr(ct, ';');
    p = ct;
    n = semi ? (size_t)(semi - ct) : strlen(ct);
    trim_ows(&p, &n);
    if (is(p, n, "application/x-ndjson") || is(p, n, "application/jsonl") ||
        is(p, n, "application/jsonlines") ||
        is(p, n, "application/x-jsonlines"))
        *kind = LP_BODY_NDJSON;
    else if (is(p, n, "application/json"))
        *kind = LP_BODY_JSON;
    else
        goto unsupported;
    /* parameters: only a charset of UTF-8 (JSON's) means anything here */
    while (semi) {
        const char *eq, *v;
        size_t vn;
        p = semi + 1;
        semi = strchr(p, ';');
        n = semi ? (size_t)(semi - p) : strlen(p);
        trim_ows(&p, &n);
        if ((eq = memchr(p, '=', n)) == NULL)
            continue;
        size_t kn = (size_t)(eq - p);
        const char *k = p;
        trim_ows(&k, &kn);
        if (!is(k, kn, "charset"))
            continue;
        v = eq + 1;
        vn = n - (size_t)(v - p);
        trim_ows(&v, &vn);
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
            v++;
            vn -= 2;
        }
        if (!is(v, vn, "utf-8") && !is(v, vn, "utf8")) {
            shown(ct, show, sizeof show);
            snprintf(err, LP_ERRLEN, "unsupported Content-Type \"%s\": "
                     "JSON is UTF-8", show);
            return 415;
        }
    }
    return 0;
unsupported:
    shown(ct, show, sizeof show);
    snprintf(err, LP_ERRLEN, "unsupported Content-Type \"%s\": "
             "application/x-ndjson or application/json", show);
    return 415;
}

int lp_httpbody_encoding(const char *ce, int *enc, char *err)
{
    char show[80];
    const char *p = ce;
    size_t n = ce ? strlen(ce) : 0;

    trim_ows(&p, &n);
    if (n == 0 || is(p, n, "identity"))
        *enc = LP_BODY_IDENTITY;
    else if (is(p, n, "gzip") || is(p, n, "x-gzip"))
        *enc = LP_BODY_GZIP;
    else if (is(p, n, "deflate"))
        *enc = LP_BODY_DEFLATE;
    else {
        shown(ce, show, sizeof show);
        snprintf(err, LP_ERRLEN, "unsupported Content-Encoding \"%s\": "
                 "gzip, deflate or identity, one of them", show);
        return 415;
    }
    return 0;
}

/* ---- the object --------------------------------------------------------- */

struct lp_httpbody *lp_httpbody_new(const struct lp_httpbody_conf *c,
                                    char *err)
{
    struct lp_httpbody *b = calloc(1, sizeof *b);

    if (b == NULL || (b->out = malloc(BLOCK)) == NULL)
        goto oom;
    b->c = *c;
    if (b->c.max_line == 0)
        b->c.max_line = 1024 * 1024;
    return b;
oom:
    free(b);
    snprintf(err, LP_ERRLEN, "out of memory");
    return NULL;
}

void lp_httpbody_free(struct lp_httpbody *b)
{
    if (b == NULL)
        return;
    if (b->zinit)
        inflateEnd(&b->z);
    if (b->lines_init)
        lp_lines_free(&b->lines);
    lp_buf_free(&b->elem);
    lp_buf_free(&b->whole);
    lp_buf_free(&b->store);
    lp_buf_free(&b->client);
    free(b->out);
    free(b);
}

static int fail(struct lp_httpbody *b, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct lp_httpbody *b, int status, const char *fmt, ...)
{
    va_list ap;

    if (b->status != 200)
        return b->status;
    va_start(ap, fmt);
    vsnprintf(b->error, sizeof b->error, fmt, ap);
    va_end(ap);
    b->status = status;
    return status;
}

static int oom(struct lp_httpbody *b)
{
    return fail(b, 500, "out of memory");
}

int lp_httpbody_begin(struct lp_httpbody *b, int kind, int enc, int64_t now,
                      const char *client)
{
    b->kind = kind;
    b->enc = enc;
    b->now = now;
    b->status = 200;
    b->error[0] = '\0';
    b->sent = b->decoded = b->accepted = b->rejected = 0;
    b->zmode = 0;
    b->zend = 0;
    b->nhdr = 0;
    b->lineno = 0;
    b->js = J_START;
    b->elem.len = 0;
    b->elong = b->escalar = b->instr = b->esc = b->depth = 0;
    b->index = 0;
    b->bom = 0;
    b->whole.len = 0;
    b->client.len = 0;
    if (kind == LP_BODY_NDJSON) {
        if (!b->lines_init) {
            if (lp_lines_init(&b->lines, -1, (size_t)b->c.max_line) < 0)
                return oom(b);
            /* many connections: a small buffer, grown for long lines */
            lp_lines_read_size(&b->lines, BLOCK);
            b->lines_init = 1;
        }
        lp_lines_reset(&b->lines, -1);
    }
    if (b->c.client_field && client) {
        if (lp_buf_addc(&b->client, ',') < 0 ||
            lp_buf_add_jstr(&b->client, b->c.client_field,
                            strlen(b->c.client_field)) < 0 ||
            lp_buf_addc(&b->client, ':') < 0 ||
            lp_buf_add_jstr(&b->client, client, strlen(client)) < 0)
            return oom(b);
    }
    return 200;
}

/* ---- items --------------------------------------------------------------- */

/* The bytes to store of the valid event txt[0..n): its "_id" members cut
 * (as send stores it), the client member added last. */
static int store(struct lp_httpbody *b, const char *txt, size_t n,
                 const struct lp_jevent *ev, const char **out, size_t *len)
{
    size_t cn;

    if (ev->ncuts == 0 && b->client.len == 0) {
        *out = txt;
        *len = n;
        return 0;
    }
    cn = ev->ncuts ? lp_json_cut_len(ev, n) : n;
    b->store.len = 0;
    if (lp_buf_reserve(&b->store, cn + b->client.len) < 0)
        return -1;
    if (ev->ncuts)
        lp_json_cut_copy(ev, txt, n, b->store.p);
    else
        memcpy(b->store.p, txt, n);
    b->store.len = cn;
    if (b->client.len) {
        /* before the closing brace; without the comma in {} */
        char *s = b->store.p;
        size_t close = cn - 1, i = close;
        while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t' ||
                         s[i - 1] == '\n' || s[i - 1] == '\r'))
            i--;
        int empty = i > 0 && s[i - 1] == '{';
        const char *add = b->client.p + empty;
        size_t addn = b->client.len - (size_t)empty;
        memmove(s + close + addn, s + close, cn - close);
        memcpy(s + close, add, addn);
        b->store.len = cn + addn;
    }
    *out = b->store.p;
    *len = b->store.len;
    return 0;
}

static void item_bad(struct lp_httpbody *b, const char *txt, size_t n,
                     int element, const char *code, const char *msg)
{
    struct lp_httpbody_item it = {
        .line = b->kind == LP_BODY_NDJSON ? b->lineno : 0,
        .index = b->kind == LP_BODY_NDJSON ? -1 : b->index,
        .element = element,
        .txt = txt, .n = n,
        .code = code, .msg = msg,
    };

    b->rejected++;
    if (b->c.item)
        b->c.item(b->c.ctx, &it);
}

/* lp_event_fn: one event or rejection of an NDJSON line, or of a JSON
 * body's element */
static void item_of(void *ctx, const char *txt, size_t n, int element,
                    const struct lp_jevent *ev,
                    const struct lp_event_bad *bad)
{
    struct lp_httpbody *b = ctx;
    struct lp_httpbody_item it = {
        .line = b->kind == LP_BODY_NDJSON ? b->lineno : 0,
        .index = b->kind == LP_BODY_NDJSON ? -1 : b->index,
        .element = element,
        .txt = txt, .n = n,
        .ev = ev,
    };

    if (b->status != 200)
        return;
    if (ev == NULL) {
        item_bad(b, txt, n, element, bad->code, bad->msg);
        return;
    }
    if (store(b, txt, n, ev, &it.stored, &it.stored_len) < 0) {
        oom(b);
        return;
    }
    b->accepted++;
    if (b->c.item)
        b->c.item(b->c.ctx, &it);
}

static void too_long(struct lp_httpbody *b)
{
    char msg[96];

    snprintf(msg, sizeof msg, "longer than --max-line (%" PRIu64 " bytes)",
             b->c.max_line);
    item_bad(b, NULL, 0, 0, "too-long", msg);
}

/* ---- application/x-ndjson ------------------------------------------------ */

static void ndjson_lines(struct lp_httpbody *b)
{
    struct lp_line ln;
    int rc;

    while (b->status == 200 &&
           (rc = lp_lines_next(&b->lines, &ln)) != LP_LINE_AGAIN &&
           rc != LP_LINE_EOF) {
        b->lineno = ln.lineno;
        if (rc == LP_LINE_LONG) {
            if (ln.first)
                too_long(b);
            continue;
        }
        /* inline: item_of is a direct call */
        if (rc == LP_LINE_OK)
            lp_event_line(b->c.rules, ln.p, ln.len, b->now, item_of, b);
    }
}

static void ndjson(struct lp_httpbody *b, const unsigned char *p, size_t n)
{
    while (n > 0 && b->status == 200) {
        char *dst;
        size_t cap;
        if (lp_lines_space(&b->lines, &dst, &cap) < 0) {
            oom(b);
            return;
        }
        if (cap > n)
            cap = n;
        memcpy(dst, p, cap);
        lp_lines_commit(&b->lines, cap);
        p += cap;
        n -= cap;
        ndjson_lines(b);
    }
}

/* ---- application/json ---------------------------------------------------- */

static int json_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* at: the offending byte's offset; said from 1, as lp_json says it */
static void unexpected(struct lp_httpbody *b, unsigned char c, uint64_t at)
{
    at++;
    if (c >= 0x20 && c < 0x7f)
        fail(b, 400, "invalid JSON body: unexpected '%c' at byte %" PRIu64,
             c, at);
    else
        fail(b, 400, "invalid JSON body: unexpected byte 0x%02x at byte %"
             PRIu64, c, at);
}

/* An element (or the single value) is complete: judge it. */
static void json_elem(struct lp_httpbody *b)
{
    if (b->elong) {
        too_long(b);
    } else {
        const char *t = b->elem.p ? b->elem.p : "";
        size_t n = b->elem.len;
        struct lp_jevent ev;
        struct lp_event_bad bad;
        lp_json_trim(&t, &n);
        if (lp_event_check(b->c.rules, t, n, b->now, NULL, &ev, &bad) < 0)
            item_of(b, t, n, 0, NULL, &bad);
        else
            item_of(b, t, n, 0, &ev, NULL);
    }
    b->elem.len = 0;
    b->elong = 0;
    b->index++;
}

/* Keeps bytes p[0..n) of the element, up to max_line. */
static void keep(struct lp_httpbody *b, const unsigned char *p, size_t n)
{
    if (b->elong || n == 0)
        return;
    if (b->elem.len + n > b->c.max_line) {
        b->elong = 1;
        return;
    }
    if (lp_buf_add(&b->elem, p, n) < 0)
        oom(b);
}

static void json(struct lp_httpbody *b, const unsigned char *p, size_t n)
{
    uint64_t base = b->decoded - n;     /* body offset of p[0] */
    size_t i = 0;

    while (i < n && b->status == 200) {
        unsigned char c = p[i];
        switch (b->js) {
        case J_START:
            /* a UTF-8 BOM, which may come split, then whitespace */
            if (base + i < 3 && b->bom == (int)(base + i) &&
                c == (unsigned char)"\xef\xbb\xbf"[b->bom]) {
                b->bom++;
                i++;
                break;
            }
            if (b->bom > 0 && b->bom < 3) {
                unexpected(b, c, base + i);
                break;
            }
            if (json_ws(c)) {
                i++;
                break;
            }
            if (c == '[') {
                b->js = J_VALUE;
                i++;
                break;
            }
            b->js = J_SINGLE;
            break;
        case J_SINGLE: {
            /* one value, kept whole up to max_line; trailing whitespace
             * past it does not count */
            size_t k = i;
            while (k < n && !(b->elem.len + (k - i) >= b->c.max_line))
                k++;
            keep(b, p + i, k - i);
            for (; k < n; k++)
                if (!json_ws(p[k]))
                    b->elong = 1;
            i = n;
            break;
        }
        case J_VALUE:
            if (json_ws(c)) {
                i++;
                break;
            }
            if (c == ']' && b->index == 0 && b->elem.len == 0) {
                b->js = J_DONE;
                i++;
                break;
            }
            if (c == ']' || c == ',' || c == '}' || c == ':') {
                unexpected(b, c, base + i);
                break;
            }
            b->js = J_ELEM;
            b->escalar = c != '{' && c != '[';
            b->depth = 0;
            b->instr = b->esc = 0;
            break;
        case J_ELEM: {
            /* up to the element's end: strings and brackets followed */
            size_t k = i;
            int end = 0;
            for (; k < n; k++) {
                unsigned char d = p[k];
                if (b->instr) {
                    if (b->esc)
                        b->esc = 0;
                    else if (d == '\\')
                        b->esc = 1;
                    else if (d == '"')
                        b->instr = 0;
                    continue;
                }
                if (d == '"') {
                    b->instr = 1;
                } else if (d == '{' || d == '[') {
                    if (b->escalar) {
                        end = 1;        /* "1[": the framing's to judge */
                        break;
                    }
                    if (b->depth >= MAXDEPTH) {
                        fail(b, 400, "invalid JSON body: nesting deeper "
                             "than %d at byte %" PRIu64, MAXDEPTH,
                             base + k + 1);
                        return;
                    }
                    if (d == '{')
                        b->stk[b->depth / 8] |= (unsigned char)
                            (1u << (b->depth % 8));
                    else
                        b->stk[b->depth / 8] &= (unsigned char)
                            ~(1u << (b->depth % 8));
                    b->depth++;
                } else if (d == '}' || d == ']') {
                    if (b->escalar || b->depth == 0) {
                        end = 1;
                        break;
                    }
                    int obj = b->stk[(b->depth - 1) / 8] >>
                        ((b->depth - 1) % 8) & 1;
                    if (obj != (d == '}')) {
                        keep(b, p + i, k - i);
                        unexpected(b, d, base + k);
                        return;
                    }
                    if (--b->depth == 0) {
                        k++;
                        end = 1;
                        break;
                    }
                } else if (b->escalar && (json_ws(d) || d == ',')) {
                    end = 1;
                    break;
                }
            }
            keep(b, p + i, k - i);
            i = k;
            if (end && b->status == 200) {
                json_elem(b);
                b->js = J_AFTER;
            }
            break;
        }
        case J_AFTER:
            if (json_ws(c)) {
                i++;
            } else if (c == ',') {
                b->js = J_VALUE;
                b->elem.len = 0;
                i++;
                /* "[1,]": J_VALUE refuses the ']' (index > 0) */
            } else if (c == ']') {
                b->js = J_DONE;
                i++;
            } else {
                unexpected(b, c, base + i);
            }
            break;
        case J_DONE:
            if (!json_ws(c))
                unexpected(b, c, base + i);
            i++;
            break;
        }
    }
}

static int json_end(struct lp_httpbody *b)
{
    switch (b->js) {
    case J_START:
        return fail(b, 400, "invalid JSON body: no value in it");
    case J_SINGLE:
        json_elem(b);
        return b->status;
    case J_DONE:
        return b->status;
    default:
        return fail(b, 400, "invalid JSON body: it ends inside the array "
                    "(after %" PRIu64 " bytes)", b->decoded);
    }
}

/* ---- decoded bytes ------------------------------------------------------- */

static void decoded(struct lp_httpbody *b, const unsigned char *p, size_t n)
{
    if (n == 0 || b->status != 200)
        return;
    if (b->c.max_body && n > b->c.max_body - b->decoded) {
        fail(b, 413, "body over --max-body (%" PRIu64 " bytes) once "
             "decoded", b->c.max_body);
        return;
    }
    b->decoded += n;
    switch (b->kind) {
    case LP_BODY_NDJSON:
        ndjson(b, p, n);
        break;
    case LP_BODY_JSON:
        json(b, p, n);
        break;
    default:
        if (lp_buf_add(&b->whole, p, n) < 0)
            oom(b);
        break;
    }
}

/* ---- Content-Encoding ---------------------------------------------------- */

static const char *coding(const struct lp_httpbody *b)
{
    return b->enc == LP_BODY_GZIP ? "gzip" : "deflate";
}

/* Starts inflate with windowBits wb. */
static int zstart(struct lp_httpbody *b, int wb)
{
    int zr;

    if (b->zinit) {
        zr = inflateReset2(&b->z, wb);
    } else {
        memset(&b->z, 0, sizeof b->z);
        zr = inflateInit2(&b->z, wb);
        b->zinit = zr == Z_OK;
    }
    if (zr != Z_OK) {
        oom(b);
        return -1;
    }
    b->zmode = wb;
    b->zend = 0;
    return 0;
}

static void inflate_some(struct lp_httpbody *b, const unsigned char *p,
                         size_t n)
{
    b->z.next_in = (Bytef *)p;
    b->z.avail_in = (uInt)n;
    while (b->z.avail_in > 0 && b->status == 200) {
        if (b->zend) {
            /* after a gzip member, only another member (RFC 1952 2.2) */
            if (b->enc != LP_BODY_GZIP) {
                fail(b, 400, "bad deflate body: data after its end");
                return;
            }
            const unsigned char *rest = b->z.next_in;
            uInt left = b->z.avail_in;
            if (zstart(b, 15 + 16) < 0)
                return;
            b->z.next_in = (Bytef *)rest;
            b->z.avail_in = left;
        }
        b->z.next_out = b->out;
        b->z.avail_out = BLOCK;
        int zr = inflate(&b->z, Z_NO_FLUSH);
        size_t got = BLOCK - b->z.avail_out;
        if (zr == Z_STREAM_END)
            b->zend = 1;
        else if (zr == Z_MEM_ERROR) {
            oom(b);
            return;
        } else if (zr != Z_OK && !(zr == Z_BUF_ERROR && got > 0)) {
            fail(b, 400, "bad %s body: %s", coding(b),
                 b->z.msg ? b->z.msg : "cannot be decoded");
            return;
        }
        decoded(b, b->out, got);
        /* output full with input used up: inflate may hold more */
        while (b->status == 200 && !b->zend && b->z.avail_in == 0 &&
               got == BLOCK) {
            b->z.next_out = b->out;
            b->z.avail_out = BLOCK;
            zr = inflate(&b->z, Z_NO_FLUSH);
            got = BLOCK - b->z.avail_out;
            if (zr == Z_STREAM_END)
                b->zend = 1;
            else if (zr == Z_MEM_ERROR) {
                oom(b);
                return;
            } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                fail(b, 400, "bad %s body: %s", coding(b),
                     b->z.msg ? b->z.msg : "cannot be decoded");
                return;
            }
            decoded(b, b->out, got);
        }
    }
}

int lp_httpbody_feed(struct lp_httpbody *b, const void *data, size_t n)
{
    const unsigned char *p = data;

    if (b->status != 200 || n == 0)
        return b->status;
    if (b->c.max_body && n > b->c.max_body - b->sent)
        return fail(b, 413, "body over --max-body (%" PRIu64 " bytes)",
                    b->c.max_body);
    b->sent += n;
    if (b->enc == LP_BODY_IDENTITY) {
        decoded(b, p, n);
        return b->status;
    }
    if (b->zmode == 0 && b->enc == LP_BODY_GZIP) {
        if (zstart(b, 15 + 16) < 0)
            return b->status;
    } else if (b->zmode == 0) {
        /* deflate: zlib's header (RFC 1950, as RFC 9110 says), or raw
         * deflate (RFC 1951), which some clients send instead */
        while (b->nhdr < 2 && n > 0) {
            b->hdr[b->nhdr++] = *p++;
            n--;
        }
        if (b->nhdr < 2)
            return b->status;
        int zlib = (b->hdr[0] & 0x0f) == 8 && (b->hdr[0] >> 4) <= 7 &&
            ((unsigned)b->hdr[0] << 8 | b->hdr[1]) % 31 == 0;
        if (zstart(b, zlib ? 15 : -15) < 0)
            return b->status;
        inflate_some(b, b->hdr, 2);
    }
    inflate_some(b, p, n);
    return b->status;
}

int lp_httpbody_end(struct lp_httpbody *b)
{
    if (b->status != 200)
        return b->status;
    if (b->enc != LP_BODY_IDENTITY) {
        if (b->sent > 0 && !b->zend)
            return fail(b, 400, "bad %s body: it is cut short", coding(b));
    }
    switch (b->kind) {
    case LP_BODY_NDJSON:
        lp_lines_eof(&b->lines);
        ndjson_lines(b);
        break;
    case LP_BODY_JSON:
        json_end(b);
        break;
    }
    return b->status;
}

const char *lp_httpbody_error(const struct lp_httpbody *b)
{
    return b->error;
}

void lp_httpbody_counts(const struct lp_httpbody *b, uint64_t *accepted,
                        uint64_t *rejected)
{
    *accepted = b->accepted;
    *rejected = b->rejected;
}

const char *lp_httpbody_whole(const struct lp_httpbody *b, size_t *n)
{
    *n = b->whole.len;
    return b->whole.p ? b->whole.p : "";
}

void lp_httpbody_sizes(const struct lp_httpbody *b, uint64_t *sent,
                       uint64_t *dec)
{
    *sent = b->sent;
    *dec = b->decoded;
}
