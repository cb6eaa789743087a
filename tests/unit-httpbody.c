/* unit-httpbody.c -- lp_httpbody: request bodies into events, chunk by chunk */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_httpbody.h"
#include "lp_parse.h"
#include "lp_time.h"
#include "tap.h"

static struct lp_buf got;       /* one line per item */

static void on_item(void *ctx, const struct lp_httpbody_item *it)
{
    char head[64];

    (void)ctx;
    if (it->index >= 0)
        snprintf(head, sizeof head, "i%ld", it->index);
    else if (it->element)
        snprintf(head, sizeof head, "l%llu.%d", (unsigned long long)it->line,
                 it->element);
    else
        snprintf(head, sizeof head, "l%llu", (unsigned long long)it->line);
    lp_buf_adds(&got, head);
    if (it->ev) {
        lp_buf_adds(&got, " ok ");
        lp_buf_add(&got, it->stored, it->stored_len);
    } else {
        lp_buf_adds(&got, " bad ");
        lp_buf_adds(&got, it->code);
        lp_buf_adds(&got, ": ");
        lp_buf_adds(&got, it->msg);
        if (it->txt == NULL)
            lp_buf_adds(&got, " (not kept)");
    }
    lp_buf_addc(&got, '\n');
}

static struct lp_event_rules rules;
static struct lp_httpbody *body;
static int64_t now;

static struct lp_httpbody *make(uint64_t max_body, uint64_t max_line,
                                const char *client_field)
{
    char err[LP_ERRLEN];
    struct lp_httpbody_conf c = {
        .rules = &rules, .max_body = max_body, .max_line = max_line,
        .client_field = client_field, .item = on_item,
    };
    struct lp_httpbody *b = lp_httpbody_new(&c, err);

    if (b == NULL)
        abort();
    return b;
}

/* Runs a request through b in chunks of step bytes (0: whole); returns
 * the outcome, with got holding the items and "=> STATUS error" last. */
static int run(struct lp_httpbody *b, int kind, int enc, const void *p,
               size_t n, size_t step, const char *client)
{
    const char *s = p;
    int st = lp_httpbody_begin(b, kind, enc, now, client);
    char tail[LP_ERRLEN + 64];

    got.len = 0;
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n && st == 200; i += step)
        st = lp_httpbody_feed(b, s + i, n - i < step ? n - i : step);
    if (st == 200)
        st = lp_httpbody_end(b);
    snprintf(tail, sizeof tail, "=> %d %s\n", st, lp_httpbody_error(b));
    lp_buf_adds(&got, tail);
    lp_buf_addc(&got, '\0');
    got.len--;
    return st;
}

static void check(int kind, int enc, const void *p, size_t n,
                  const char *want, const char *what)
{
    /* whole, then byte by byte, then in 7-byte chunks: the same */
    run(body, kind, enc, p, n, 0, NULL);
    is_str(got.p, want, "%s", what);
    run(body, kind, enc, p, n, 1, NULL);
    is_str(got.p, want, "%s, fed a byte at a time", what);
    run(body, kind, enc, p, n, 7, NULL);
    is_str(got.p, want, "%s, fed 7 bytes at a time", what);
}

static void checks(int kind, const char *s, const char *want,
                   const char *what)
{
    check(kind, LP_BODY_IDENTITY, s, strlen(s), want, what);
}

/* s compressed: gzip (wb 31), zlib (15) or raw deflate (-15) */
static size_t zip(const void *s, size_t n, int wb, unsigned char **out)
{
    z_stream z;
    size_t cap = compressBound((uLong)n) + 64;
    unsigned char *o = malloc(cap);

    memset(&z, 0, sizeof z);
    if (o == NULL || deflateInit2(&z, 6, Z_DEFLATED, wb, 8,
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

static void headers(void)
{
    char err[LP_ERRLEN];
    int k = 0, e = -1;

    is_int(lp_httpbody_type("application/x-ndjson", &k, err), 0,
           "application/x-ndjson");
    is_int(k, LP_BODY_NDJSON, "is NDJSON");
    is_int(lp_httpbody_type("Application/JSON; charset=UTF-8", &k, err), 0,
           "application/json with charset=UTF-8, any case");
    is_int(k, LP_BODY_JSON, "is JSON");
    is_int(lp_httpbody_type("application/json;charset=\"utf-8\"", &k, err),
           0, "a quoted charset");
    is_int(lp_httpbody_type("application/json; charset=latin1", &k, err),
           415, "another charset: 415");
    is_str(err, "unsupported Content-Type \"application/json; "
           "charset=latin1\": JSON is UTF-8", "says why");
    is_int(lp_httpbody_type("text/plain", &k, err), 415, "text/plain: 415");
    is_str(err, "unsupported Content-Type \"text/plain\": "
           "application/x-ndjson or application/json", "names it");
    is_int(lp_httpbody_type(NULL, &k, err), 415, "none: 415");
    is_int(lp_httpbody_type("application/jsonx", &k, err), 415,
           "a longer name is not json");
    is_int(lp_httpbody_encoding(NULL, &e, err), 0, "no Content-Encoding");
    is_int(e, LP_BODY_IDENTITY, "is identity");
    is_int(lp_httpbody_encoding(" GZIP ", &e, err), 0, "GZIP");
    is_int(e, LP_BODY_GZIP, "is gzip");
    is_int(lp_httpbody_encoding("x-gzip", &e, err), 0, "x-gzip");
    is_int(lp_httpbody_encoding("deflate", &e, err), 0, "deflate");
    is_int(e, LP_BODY_DEFLATE, "is deflate");
    is_int(lp_httpbody_encoding("br", &e, err), 415, "br: 415");
    is_str(err, "unsupported Content-Encoding \"br\": gzip, deflate or "
           "identity, one of them", "says which are known");
    is_int(lp_httpbody_encoding("gzip, deflate", &e, err), 415,
           "stacked codings: 415");
}

static void ndjson(void)
{
    checks(LP_BODY_NDJSON,
           "\xef\xbb\xbf{\"a\":1}\r\n"
           "\n"
           "{\"a\":01}\n"
           "  {\"_id\":\"x\",\"b\":2}  \n"
           "[{\"c\":3},4,{\"d\":}]\n"
           "[{\"c\":3},4]\n"
           "\"str\"\n"
           "{\"last\":true}",
           "l1 ok {\"a\":1}\n"
           "l3 bad invalid-json: invalid JSON: leading zero in number at byte 7\n"
           "l4 ok {\"b\":2}\n"
           "l5 bad invalid-json: invalid JSON: unexpected '}' at byte 17\n"
           "l6.1 ok {\"c\":3}\n"
           "l6.2 bad not-object: element 2: not a JSON object\n"
           "l7 bad not-object: not a JSON object\n"
           "l8 ok {\"last\":true}\n"
           "=> 200 \n",
           "NDJSON: BOM, CRLF, blank, bad, _id cut, array lines, no last LF");
    checks(LP_BODY_NDJSON, "", "=> 200 \n", "an empty NDJSON body: nothing");
}

static void json(void)
{
    checks(LP_BODY_JSON, " {\"a\":\"[{\\\"\"}\n",
           "i0 ok {\"a\":\"[{\\\"\"}\n=> 200 \n",
           "one object, brackets and quotes in its string");
    checks(LP_BODY_JSON, "\xef\xbb\xbf[ {\"a\":1} , {\"b\":[1,{\"c\":2}]},"
           "7,\"s\",{\"x\":01}, [1] ,{\"_id\":1}]  ",
           "i0 ok {\"a\":1}\n"
           "i1 ok {\"b\":[1,{\"c\":2}]}\n"
           "i2 bad not-object: not a JSON object\n"
           "i3 bad not-object: not a JSON object\n"
           "i4 bad invalid-json: invalid JSON: leading zero in number at byte 7\n"
           "i5 bad not-object: not a JSON object\n"
           "i6 ok {}\n"
           "=> 200 \n",
           "an array: each element judged, indexed from 0");
    checks(LP_BODY_JSON, "[]", "=> 200 \n", "an empty array");
    checks(LP_BODY_JSON, " \n", "=> 400 invalid JSON body: no value in it\n",
           "no value: 400");
    checks(LP_BODY_JSON, "[{\"a\":1} {\"b\":2}]",
           "i0 ok {\"a\":1}\n"
           "=> 400 invalid JSON body: unexpected '{' at byte 10\n",
           "elements without a comma: 400");
    checks(LP_BODY_JSON, "[{\"a\":1},",
           "i0 ok {\"a\":1}\n"
           "=> 400 invalid JSON body: it ends inside the array (after 9 bytes)\n",
           "a cut array: 400");
    checks(LP_BODY_JSON, "[{\"a\":1},]",
           "i0 ok {\"a\":1}\n"
           "=> 400 invalid JSON body: unexpected ']' at byte 10\n",
           "a trailing comma: 400");
    checks(LP_BODY_JSON, "[{\"a\":[1}]",
           "=> 400 invalid JSON body: unexpected '}' at byte 9\n",
           "brackets that do not match: 400");
    ok_fixed(run(body, LP_BODY_JSON, LP_BODY_IDENTITY, "[}", 2, 0, NULL) ==
             400 && strcmp(got.p, "=> 400 invalid JSON body: unexpected "
                           "'}' at byte 2\n") == 0,
             "fuzz-httpbody: '}' began an empty element, judged from a NULL "
             "buffer", "[}: 400, not an empty element");
    checks(LP_BODY_JSON, "[{\"a\":1}] x",
           "i0 ok {\"a\":1}\n"
           "=> 400 invalid JSON body: unexpected 'x' at byte 11\n",
           "something after the array: 400");
    checks(LP_BODY_JSON, "{\"a\":1} {\"b\":2}",
           "i0 bad invalid-json: invalid JSON: unexpected '{' at byte 9\n"
           "=> 200 \n",
           "two objects in application/json: one bad value");
    checks(LP_BODY_JSON, "\xef\xbb{}",
           "=> 400 invalid JSON body: unexpected '{' at byte 3\n",
           "half a BOM: 400");
}

static void limits(void)
{
    struct lp_httpbody *b = make(100, 16, NULL);

    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY,
        "{\"a\":\"0123456789abcdef\"}\n{\"b\":1}\n", 33, 3, NULL);
    is_str(got.p, "l1 bad too-long: longer than --max-line (16 bytes) "
           "(not kept)\nl2 ok {\"b\":1}\n=> 200 \n",
           "a line over --max-line is rejected by number, the next taken");
    run(b, LP_BODY_JSON, LP_BODY_IDENTITY,
        "[{\"a\":\"0123456789abcdef\"},{\"b\":1}]", 34, 5, NULL);
    is_str(got.p, "i0 bad too-long: longer than --max-line (16 bytes) "
           "(not kept)\ni1 ok {\"b\":1}\n=> 200 \n",
           "an element over --max-line likewise");
    run(b, LP_BODY_JSON, LP_BODY_IDENTITY, "{\"a\":\"01234567\"}     \n",
        22, 5, NULL);
    is_str(got.p, "i0 ok {\"a\":\"01234567\"}\n=> 200 \n",
           "whitespace after one object past --max-line does not count");
    char big[200];
    memset(big, '\n', sizeof big);
    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY, big, sizeof big, 0, NULL);
    is_str(got.p, "=> 413 body over --max-body (100 bytes)\n",
           "a body over --max-body: 413");
    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY, big, sizeof big, 60, NULL);
    is_str(got.p, "=> 413 body over --max-body (100 bytes)\n",
           "likewise when it comes in chunks");
    lp_httpbody_free(b);

    /* a gzip bomb: 64 MiB of newlines in 64 KiB, against 1 MiB */
    size_t n = 64u << 20;
    char *zeros = malloc(n);
    unsigned char *z;
    memset(zeros, '\n', n);
    size_t zn = zip(zeros, n, 31, &z);
    free(zeros);
    b = make(1 << 20, 1 << 20, NULL);
    int st = run(b, LP_BODY_NDJSON, LP_BODY_GZIP, z, zn, 4096, NULL);
    uint64_t sent, dec;
    lp_httpbody_sizes(b, &sent, &dec);
    is_int(st, 413, "a gzip bomb: 413");
    is_str(got.p, "=> 413 body over --max-body (1048576 bytes) once "
           "decoded\n", "said once decoded");
    ok(dec <= 1 << 20 && sent < zn, "stopped at --max-body of output "
       "(%llu decoded, %llu of %zu sent)", (unsigned long long)dec,
       (unsigned long long)sent, zn);
    free(z);
    lp_httpbody_free(b);
}

static void encodings(void)
{
    const char *s = "{\"a\":1}\n{\"b\":2\n{\"c\":3}\n";
    const char *want = "l1 ok {\"a\":1}\n"
        "l2 bad invalid-json: invalid JSON: unterminated object at byte 7\n"
        "l3 ok {\"c\":3}\n=> 200 \n";
    unsigned char *z, *z2;
    size_t zn = zip(s, strlen(s), 31, &z);

    check(LP_BODY_NDJSON, LP_BODY_GZIP, z, zn, want, "gzip");
    /* two members, as gzip -c a >x; gzip -c b >>x */
    size_t z2n = zip(s, strlen(s), 31, &z2);
    z = realloc(z, zn + z2n);
    memcpy(z + zn, z2, z2n);
    free(z2);
    check(LP_BODY_NDJSON, LP_BODY_GZIP, z, zn + z2n,
          "l1 ok {\"a\":1}\n"
          "l2 bad invalid-json: invalid JSON: unterminated object at byte 7\n"
          "l3 ok {\"c\":3}\n"
          "l4 ok {\"a\":1}\n"
          "l5 bad invalid-json: invalid JSON: unterminated object at byte 7\n"
          "l6 ok {\"c\":3}\n=> 200 \n", "gzip of two members: both read");
    check(LP_BODY_NDJSON, LP_BODY_GZIP, z, zn - 3,
          "l1 ok {\"a\":1}\n"
          "l2 bad invalid-json: invalid JSON: unterminated object at byte 7\n"
          "l3 ok {\"c\":3}\n=> 400 bad gzip body: it is cut short\n",
          "a cut gzip body: 400");
    z[zn + 2] ^= 0xff;          /* the second member's method byte */
    run(body, LP_BODY_NDJSON, LP_BODY_GZIP, z, zn + z2n, 0, NULL);
    ok(strstr(got.p, "=> 400 bad gzip body: ") != NULL,
       "a damaged second member: 400 (%s)", got.p);
    free(z);
    check(LP_BODY_NDJSON, LP_BODY_GZIP, "{\"a\":1}\n", 8,
          "=> 400 bad gzip body: incorrect header check\n",
          "plain text said to be gzip: 400");
    zn = zip(s, strlen(s), 15, &z);
    check(LP_BODY_NDJSON, LP_BODY_DEFLATE, z, zn, want, "deflate (zlib)");
    z = realloc(z, zn + 1);
    z[zn] = 'x';
    check(LP_BODY_NDJSON, LP_BODY_DEFLATE, z, zn + 1,
          "l1 ok {\"a\":1}\n"
          "l2 bad invalid-json: invalid JSON: unterminated object at byte 7\n"
          "l3 ok {\"c\":3}\n=> 400 bad deflate body: data after its end\n",
          "bytes after a deflate stream: 400");
    free(z);
    zn = zip(s, strlen(s), -15, &z);
    check(LP_BODY_NDJSON, LP_BODY_DEFLATE, z, zn, want, "raw deflate");
    free(z);
    check(LP_BODY_JSON, LP_BODY_DEFLATE, "x", 1,
          "=> 400 bad deflate body: it is cut short\n",
          "one byte of deflate: 400");
    check(LP_BODY_NDJSON, LP_BODY_GZIP, "", 0, "=> 200 \n",
          "an empty gzip body is an empty body");
}

static void stored(void)
{
    struct lp_httpbody *b = make(0, 1 << 20, "client");
    const char *s = "{\"a\":1}\n{}\n{ }\n{\"_id\":1,\"a\":2}\n{\"_id\":1}\n"
        "[{\"x\":1},{\"y\":2}]\n";

    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY, s, strlen(s), 3, "ali\"ce");
    is_str(got.p, "l1 ok {\"a\":1,\"client\":\"ali\\\"ce\"}\n"
           "l2 ok {\"client\":\"ali\\\"ce\"}\n"
           "l3 ok { \"client\":\"ali\\\"ce\"}\n"
           "l4 ok {\"a\":2,\"client\":\"ali\\\"ce\"}\n"
           "l5 ok {\"client\":\"ali\\\"ce\"}\n"
           "l6.1 ok {\"x\":1,\"client\":\"ali\\\"ce\"}\n"
           "l6.2 ok {\"y\":2,\"client\":\"ali\\\"ce\"}\n=> 200 \n",
           "--client-field: the member added last, escaped, after the cuts");
    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY, s, 8, 0, NULL);
    is_str(got.p, "l1 ok {\"a\":1}\n=> 200 \n",
           "no client name: nothing added");
    uint64_t acc, rej;
    run(b, LP_BODY_WHOLE, LP_BODY_IDENTITY, s, strlen(s), 5, NULL);
    size_t n;
    const char *w = lp_httpbody_whole(b, &n);
    ok(n == strlen(s) && memcmp(w, s, n) == 0, "LP_BODY_WHOLE keeps the "
       "decoded body whole");
    lp_httpbody_counts(b, &acc, &rej);
    ok(acc == 0 && rej == 0, "and hands nothing over");
    lp_httpbody_free(b);
}

static void times(void)
{
    char err[LP_ERRLEN];
    char *req[] = { "service" };
    struct lp_event_rules r2;
    uint64_t acc, rej;

    if (lp_event_rules_init(&r2, "timestamp", req, 1, 64, 10000,
                            24 * 3600 * 1000LL, 5 * 60 * 1000LL, err) < 0)
        abort();
    struct lp_httpbody_conf c = {
        .rules = &r2, .max_line = 1 << 20, .item = on_item,
    };
    struct lp_httpbody *b = lp_httpbody_new(&c, err);
    const char *s =
        "{\"timestamp\":\"2026-12-06T10:00:00Z\",\"service\":\"a\"}\n"
        "{\"timestamp\":\"2026-12-04T10:00:00Z\",\"service\":\"a\"}\n"
        "{\"timestamp\":\"2026-12-06T12:10:00Z\",\"service\":\"a\"}\n"
        "{\"timestamp\":\"yesterday\",\"service\":\"a\"}\n"
        "{\"timestamp\":1796515199}\n";

    now = 1796553600000LL;      /* 2026-12-06T12:00:00Z */
    run(b, LP_BODY_NDJSON, LP_BODY_IDENTITY, s, strlen(s), 0, NULL);
    is_str(got.p,
           "l1 ok {\"timestamp\":\"2026-12-06T10:00:00Z\",\"service\":\"a\"}\n"
           "l2 bad too-old: event time 2026-12-04T10:00:00.000Z is older "
           "than --max-age 24h\n"
           "l3 bad too-new: event time 2026-12-06T12:10:00.000Z is more than "
           "--max-skew 5m ahead\n"
           "l4 bad bad-time: time member is not epoch seconds or an RFC 3339 "
           "date-time: \"yesterday\"\n"
           "l5 bad missing-member: required member \"service\" is missing\n"
           "=> 200 \n", "send's time window and --require, send's words");
    lp_httpbody_counts(b, &acc, &rej);
    ok(acc == 1 && rej == 4, "counted: 1 accepted, 4 rejected");
    lp_httpbody_free(b);
    now = 0;
}

/* --decode: stdin as a body through send's default checks, for t0310 */
static void print_item(void *ctx, const struct lp_httpbody_item *it)
{
    (void)ctx;
    if (it->ev) {
        fwrite(it->stored, 1, it->stored_len, stdout);
        putchar('\n');
    } else if (it->index >= 0) {
        fprintf(stderr, "index %ld: %s\n", it->index, it->msg);
    } else {
        fprintf(stderr, "line %llu: %s\n", (unsigned long long)it->line,
                it->msg);
    }
}

static int decode(int argc, char **argv)
{
    char err[LP_ERRLEN], buf[4096];
    int kind = argc > 2 && strcmp(argv[2], "json") == 0 ? LP_BODY_JSON :
        LP_BODY_NDJSON;
    int enc = argc > 3 && strcmp(argv[3], "gzip") == 0 ? LP_BODY_GZIP :
        argc > 3 && strcmp(argv[3], "deflate") == 0 ? LP_BODY_DEFLATE :
        LP_BODY_IDENTITY;
    size_t n;
    int st;

    /* logpipe-send's defaults: timestamp, --max-age 24h, --max-skew 5m */
    if (lp_event_rules_init(&rules, "timestamp", NULL, 0, 64, 10000,
                            24 * 3600 * 1000LL, 5 * 60 * 1000LL, err) < 0)
        return 1;
    struct lp_httpbody_conf c = {
        .rules = &rules, .max_line = 1 << 20, .max_body = 10 << 20,
        .item = print_item,
    };
    struct lp_httpbody *b = lp_httpbody_new(&c, err);
    st = lp_httpbody_begin(b, kind, enc, lp_now_ms(), NULL);
    while (st == 200 && (n = fread(buf, 1, sizeof buf, stdin)) > 0)
        st = lp_httpbody_feed(b, buf, n);
    if (st == 200)
        st = lp_httpbody_end(b);
    if (st != 200)
        fprintf(stderr, "=> %d %s\n", st, lp_httpbody_error(b));
    lp_httpbody_free(b);
    return st == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];

    if (argc > 1 && strcmp(argv[1], "--decode") == 0)
        return decode(argc, argv);

    if (lp_event_rules_init(&rules, "", NULL, 0, 64, 10000, 0, 0, err) < 0)
        return 1;
    body = make(0, 1 << 20, NULL);
    headers();
    ndjson();
    json();
    limits();
    encodings();
    stored();
    times();
    lp_httpbody_free(body);
    lp_buf_free(&got);
    return tap_done();
}
