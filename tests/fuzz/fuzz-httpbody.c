/* fuzz-httpbody.c -- libFuzzer harness: lib/lp_httpbody, logpipe-http's bodies */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_httpbody.h"
#include "lp_json.h"
#include "lp_parse.h"

/*
 * The input is the body as sent, used as it is, so that JSONTestSuite's
 * files and plain .json/.ndjson files work as seeds; everything else (the
 * Content-Type, the chunk size, --max-line, --max-body, --max-depth, the
 * encoding) comes from a hash of the bytes. Checks, each abort()ing so
 * that libFuzzer keeps the input:
 *
 *  1. Whole or in chunks, the same items, outcome and error: framing
 *     does not depend on where libmicrohttpd cuts the body (a body over
 *     --max-body is refused both ways, 413 or 400 when found bad before
 *     the limit).
 *  2. Compressed here (gzip, zlib or raw deflate) and fed as such, the
 *     same items and outcome as the plain body (unless --max-body cut
 *     either).
 *  3. Every event handed over is a valid JSON object of at most --max-line
 *     bytes without an "_id" member; every rejection has a code and a
 *     message; the counts are the items'.
 *  4. Against an independent reading, built only from what send uses
 *     (lp_event_line, lp_event_check, lp_json_valid, lp_json_array_next):
 *     NDJSON split at LF here (BOM, CR, --max-line as lp_line does them)
 *     gives the same items, always; an application/json body that
 *     lp_json_valid accepts gives its elements (or its one value), each
 *     as lp_event_check judges it, and 200.
 *  5. The input taken as gzip or deflate bytes directly (for inflate's
 *     error paths): no crash, an outcome among 200, 400, 413.
 */

static struct lp_event_rules rules;
static struct lp_buf got, want;
static uint64_t max_line;

static void add_item(struct lp_buf *b, const char *head, const char *p,
                     size_t n)
{
    if (lp_buf_adds(b, head) < 0 || lp_buf_add(b, p, n) < 0 ||
        lp_buf_addc(b, '\n') < 0)
        abort();
}

static void on_item(void *ctx, const struct lp_httpbody_item *it)
{
    char head[96];
    struct lp_jerr je;
    struct lp_jevent ev;
    struct lp_jkeys k = { 0 };

    (void)ctx;
    snprintf(head, sizeof head, "%llu/%ld/%d %s ",
             (unsigned long long)it->line, it->index, it->element,
             it->ev ? "ok" : it->code);
    if (it->ev) {
        if (it->stored_len > max_line || it->stored_len == 0 ||
            it->stored[0] != '{' ||
            lp_json_event(it->stored, it->stored_len, &k, NULL, &ev,
                          &je) < 0 || ev.nids != 0) {
            fprintf(stderr, "FINDING: a stored event that is not a valid "
                    "object without _id of at most %llu bytes: %.*s\n",
                    (unsigned long long)max_line, (int)it->stored_len,
                    it->stored);
            abort();
        }
        add_item(&got, head, it->stored, it->stored_len);
    } else {
        if (it->code == NULL || it->msg == NULL || it->msg[0] == '\0')
            abort();
        add_item(&got, head, it->msg, strlen(it->msg));
    }
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Runs a request; got holds its items then "=> status error". */
static int run(struct lp_httpbody *b, int kind, int enc, const uint8_t *p,
               size_t n, size_t step)
{
    int st = lp_httpbody_begin(b, kind, enc, 1796553600000LL, NULL);
    uint64_t acc, rej, lines = 0;
    char tail[LP_ERRLEN + 32];

    got.len = 0;
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n && st == 200; i += step)
        st = lp_httpbody_feed(b, p + i, n - i < step ? n - i : step);
    if (st == 200)
        st = lp_httpbody_end(b);
    if (st != 200 && st != 400 && st != 413) {
        fprintf(stderr, "FINDING: outcome %d\n", st);
        abort();
    }
    lp_httpbody_counts(b, &acc, &rej);
    for (size_t i = 0; i < got.len; i++)
        lines += got.p[i] == '\n';
    if (acc + rej > lines) {
        fprintf(stderr, "FINDING: counts %llu + %llu over %llu items\n",
                (unsigned long long)acc, (unsigned long long)rej,
                (unsigned long long)lines);
        abort();
    }
    snprintf(tail, sizeof tail, "=> %d %s\n", st, lp_httpbody_error(b));
    if (lp_buf_adds(&got, tail) < 0)
        abort();
    return st;
}

static size_t zip(const uint8_t *s, size_t n, int wb, uint8_t **out)
{
    z_stream z;
    size_t cap = compressBound((uLong)n) + 64;
    uint8_t *o = malloc(cap);

    memset(&z, 0, sizeof z);
    if (o == NULL || deflateInit2(&z, 1 + (int)(n % 9), Z_DEFLATED, wb, 8,
                                  Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)n;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    deflateEnd(&z);
    *out = o;
    return cap - z.avail_out;
}

/* ---- the independent reading (check 4) ---------------------------------- */

static uint64_t ref_line;

static void ref_item(void *ctx, const char *txt, size_t n, int element,
                     const struct lp_jevent *ev,
                     const struct lp_event_bad *bad)
{
    char head[96];

    (void)ctx;
    snprintf(head, sizeof head, "%llu/-1/%d %s ",
             (unsigned long long)ref_line, element, ev ? "ok" : bad->code);
    if (ev) {
        /* stored as send stores it: the cuts */
        size_t cn = ev->ncuts ? lp_json_cut_len(ev, n) : n;
        char *c = malloc(cn + 1);
        if (c == NULL)
            abort();
        if (ev->ncuts)
            lp_json_cut_copy(ev, txt, n, c);
        else
            memcpy(c, txt, n);
        add_item(&want, head, c, cn);
        free(c);
    } else {
        add_item(&want, head, bad->msg, strlen(bad->msg));
    }
}

static void ref_ndjson(const uint8_t *p, size_t n)
{
    size_t at = 0;
    char msg[96];

    want.len = 0;
    if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        at = 3;
    for (ref_line = 1; at < n; ref_line++) {
        const uint8_t *nl = memchr(p + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (p + at)) : n - at;
        size_t full = len + (nl != NULL);
        if (len && p[at + len - 1] == '\r')
            len--;
        /* lp_line: a line is long when it is longer than max_line
         * without its CR and LF */
        if (len > max_line) {
            snprintf(msg, sizeof msg, "longer than --max-line (%llu bytes)",
                     (unsigned long long)max_line);
            char head[64];
            snprintf(head, sizeof head, "%llu/-1/0 too-long ",
                     (unsigned long long)ref_line);
            add_item(&want, head, msg, strlen(msg));
        } else {
            lp_event_line(&rules, (const char *)p + at, len,
                          1796553600000LL, ref_item, NULL);
        }
        at += full;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lp_httpbody *b;
    static uint64_t cur_line, cur_body;
    char err[LP_ERRLEN];
    uint64_t h = fnv(data, size);
    int kind = (h & 1) ? LP_BODY_NDJSON : LP_BODY_JSON;
    size_t step = (h >> 1) % 4 == 0 ? 0 : 1 + (h >> 3) % 61;
    uint64_t ml = (h >> 9) % 4 == 0 ? 8 + (h >> 11) % 120 : 1 << 20;
    uint64_t mb = (h >> 18) % 8 == 0 ? 16 + (h >> 21) % 4096 : 0;
    int depth = (h >> 33) % 4 == 0 ? 1 + (int)((h >> 35) % 6) : 64;
    struct lp_httpbody_conf c = {
        .rules = &rules, .max_line = ml, .max_body = mb, .item = on_item,
    };

    if (b == NULL || cur_line != ml || cur_body != mb ||
        rules.lim.depth != depth) {
        lp_httpbody_free(b);
        if (lp_event_rules_init(&rules, "timestamp", NULL, 0,
                                (uint64_t)depth, 10000, 0, 0, err) < 0 ||
            (b = lp_httpbody_new(&c, err)) == NULL)
            abort();
        cur_line = ml;
        cur_body = mb;
    }
    max_line = ml;

    /* 1: whole, then in chunks */
    int st = run(b, kind, LP_BODY_IDENTITY, data, size, 0);
    struct lp_buf whole = { 0 };
    if (lp_buf_add(&whole, got.p, got.len) < 0)
        abort();
    int st2 = run(b, kind, LP_BODY_IDENTITY, data, size, step ? step : 1);
    if (mb && size > mb) {
        /* over --max-body: refused whole, or found bad before the limit
         * when it comes in pieces; refused either way */
        if (st != 413 || st2 == 200) {
            fprintf(stderr, "FINDING: over --max-body: %d, %d\n", st, st2);
            abort();
        }
    } else if (got.len != whole.len ||
               memcmp(got.p, whole.p, got.len) != 0) {
        fprintf(stderr, "FINDING: chunks of %zu change the items:\n%.*s\n"
                "---- whole:\n%.*s\n", step ? step : 1, (int)got.len, got.p,
                (int)whole.len, whole.p);
        abort();
    }

    /* 2: compressed here */
    if (mb == 0) {
        static const int wbs[] = { 31, 15, -15 };
        int wb = wbs[(h >> 40) % 3];
        uint8_t *z;
        size_t zn = zip(data, size, wb, &z);
        run(b, kind, wb == 31 ? LP_BODY_GZIP : LP_BODY_DEFLATE, z, zn,
            step);
        free(z);
        if (size > 0 && (got.len != whole.len ||
                         memcmp(got.p, whole.p, got.len) != 0)) {
            fprintf(stderr, "FINDING: compressed (%d), the items differ:\n"
                    "%.*s\n---- plain:\n%.*s\n", wb, (int)got.len, got.p,
                    (int)whole.len, whole.p);
            abort();
        }
    }

    /* 4: the independent reading */
    if (mb == 0 && kind == LP_BODY_NDJSON) {
        ref_ndjson(data, size);
        if (lp_buf_adds(&want, "=> 200 \n") < 0)
            abort();
        if (want.len != whole.len || memcmp(want.p, whole.p, want.len)) {
            fprintf(stderr, "FINDING: NDJSON differs from send's reading:\n"
                    "%.*s\n---- send's:\n%.*s\n", (int)whole.len, whole.p,
                    (int)want.len, want.p);
            abort();
        }
    }
    if (mb == 0 && kind == LP_BODY_JSON) {
        const char *s = (const char *)data;
        size_t n = size;
        struct lp_jlimits big = { 10048, 0 };
        struct lp_jerr je;
        if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
        lp_json_trim(&s, &n);
        if (n > 0 && lp_json_valid(s, n, &big, &je) == 0 && st != 200) {
            fprintf(stderr, "FINDING: valid JSON, outcome %d\n%.*s\n", st,
                    (int)whole.len, whole.p);
            abort();
        }
        if (n > 0 && *s == '[' && lp_json_valid(s, n, &big, &je) == 0) {
            size_t pos = 0, off, len;
            int type;
            long i = 0;
            want.len = 0;
            while (lp_json_array_next(s, n, &pos, &off, &len, &type)) {
                char head[96];
                struct lp_jevent ev;
                struct lp_event_bad bad;
                if (len > ml) {
                    snprintf(head, sizeof head, "0/%ld/0 too-long ", i++);
                    snprintf(bad.msg, sizeof bad.msg, "longer than "
                             "--max-line (%llu bytes)",
                             (unsigned long long)ml);
                    add_item(&want, head, bad.msg, strlen(bad.msg));
                    continue;
                }
                if (lp_event_check(&rules, s + off, len, 1796553600000LL,
                                   NULL, &ev, &bad) < 0) {
                    snprintf(head, sizeof head, "0/%ld/0 %s ", i++, bad.code);
                    add_item(&want, head, bad.msg, strlen(bad.msg));
                    continue;
                }
                snprintf(head, sizeof head, "0/%ld/0 ok ", i++);
                size_t cn = ev.ncuts ? lp_json_cut_len(&ev, len) : len;
                char *cp = malloc(cn + 1);
                if (cp == NULL)
                    abort();
                if (ev.ncuts)
                    lp_json_cut_copy(&ev, s + off, len, cp);
                else
                    memcpy(cp, s + off, len);
                add_item(&want, head, cp, cn);
                free(cp);
            }
            if (lp_buf_adds(&want, "=> 200 \n") < 0)
                abort();
            if (want.len != whole.len || memcmp(want.p, whole.p, want.len)) {
                fprintf(stderr, "FINDING: a JSON array differs from its "
                        "elements:\n%.*s\n---- elements:\n%.*s\n",
                        (int)whole.len, whole.p, (int)want.len, want.p);
                abort();
            }
        }
    }

    /* 5: the bytes as gzip or deflate */
    if ((h >> 45) % 2 == 0)
        run(b, kind, (h >> 46) % 2 ? LP_BODY_GZIP : LP_BODY_DEFLATE, data,
            size, step);
    lp_buf_free(&whole);
    return 0;
}
