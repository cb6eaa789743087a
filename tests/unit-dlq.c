/* unit-dlq.c -- lp_dlq: the dead letter record encoded as send and drain
 * wrote it, decoded back, shown as JSON, and hostile entries */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lp_buf.h"
#include "lp_dlq.h"
#include "lp_dlqtool.h"
#include "lp_exit.h"
#include "lp_notice.h"
#include "lp_resp.h"
#include "lp_url.h"
#include "tap.h"

/* What logpipe-send wrote for a rejected line before lp_dlq (its add_dlq):
 * 21 arguments into its batch with lp_buf_add_resp (lp_resp_command now). */
static void send_wrote(struct lp_buf *b, const char *dlq, const char *line,
                       size_t len, const char *code, const char *msg,
                       const char *stream, const char *host, long long now)
{
    char ms[32];
    const char *argv[19] = {
        "XADD", dlq, "*", "data", line, "error", code,
        "detail", msg, "stage", "send", "source_stream", stream,
        "source_id", "", "deliveries", "0", "consumer", host,
    };
    const char *all[21];
    size_t lens[21];

    snprintf(ms, sizeof ms, "%lld", now);
    memcpy(all, argv, sizeof argv);
    all[19] = "failed_at";
    all[20] = ms;
    for (int i = 0; i < 21; i++)
        lens[i] = i == 4 ? len : strlen(all[i]);
    lp_resp_command(b, 21, all, lens);
}

/* The move script as logpipe-drain spelled it before lp_dlq. */
static const char drain_script[] =
    "local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "return id\n";

/* What logpipe-drain sent for one dead letter before lp_dlq (its
 * send_dlq): 25 or 27 arguments through lp_redis_append, which is
 * hiredis' redisAppendCommandArgv: hiredis' own bytes. Returns them
 * malloc'd (*n long). */
static char *drain_wrote(size_t *n, const char *stream, const char *dlq,
                         const char *group, const char *id, size_t idlen,
                         const char *data, size_t dlen, const char *code,
                         const char *detail, size_t detail_len,
                         unsigned deliveries, const char *consumer,
                         long long now, size_t full_len)
{
    char ms[32], dl[16], full[24];
    char *cmd;

    snprintf(ms, sizeof ms, "%lld", now);
    snprintf(dl, sizeof dl, "%u", deliveries);
    snprintf(full, sizeof full, "%zu", full_len);
    const char *argv[27] = {
        "EVAL", drain_script, "2", stream, dlq,
        group, id,
        "data", data,
        "error", code,
        "detail", detail,
        "stage", "drain",
        "source_stream", stream,
        "source_id", id,
        "deliveries", dl,
        "consumer", consumer,
        "failed_at", ms,
        "truncated", full,
    };
    int argc = full_len > dlen ? 27 : 25;
    size_t lens[27];
    for (int k = 0; k < argc; k++) {
        if (k == 6 || k == 18)
            lens[k] = idlen;
        else if (k == 8)
            lens[k] = dlen;
        else if (k == 12)
            lens[k] = detail_len;
        else
            lens[k] = strlen(argv[k]);
    }
    long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    *n = len < 0 ? 0 : (size_t)len;
    return cmd;
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

static int str_is(struct lp_dlq_str v, const char *p, size_t n)
{
    return v.p != NULL && same(v.p, v.len, p, n);
}

/*
 * An XRANGE reply of one entry id with the given fields (RESP bulk strings,
 * nstr of them, as lp_dlq_encode appends them) parsed into *rep, and its
 * entry into *e. 0, or -1 when it does not parse or lp_entry_get refuses.
 */
static int as_entry(const char *id, const char *fields, size_t flen,
                    int nstr, struct lp_reply **rep, struct lp_entry *e)
{
    struct lp_buf b = { 0 };
    const struct lp_reply *entries;
    char err[LP_ERRLEN];
    int rc = -1;

    *rep = NULL;
    lp_buf_adds(&b, "*1\r\n*2\r\n$");
    lp_buf_addu(&b, strlen(id));
    lp_buf_adds(&b, "\r\n");
    lp_buf_adds(&b, id);
    lp_buf_adds(&b, "\r\n");
    if (nstr < 0) {
        lp_buf_adds(&b, "*-1\r\n");
    } else {
        lp_buf_addc(&b, '*');
        lp_buf_addu(&b, (unsigned)nstr);
        lp_buf_adds(&b, "\r\n");
        if (flen)
            lp_buf_add(&b, fields, flen);
    }
    if (lp_reply_parse(b.p, b.len, rep) == 1 &&
        lp_reply_entries(*rep, 1, &entries, err) == 0 && entries &&
        lp_entry_get(entries, 0, e, err) == 0)
        rc = 0;
    lp_buf_free(&b);
    return rc;
}

/* One RESP bulk string of any bytes into b. */
static void bulk(struct lp_buf *b, const char *p, size_t n)
{
    lp_buf_addc(b, '$');
    lp_buf_addu(b, n);
    lp_buf_adds(b, "\r\n");
    lp_buf_add(b, p, n);
    lp_buf_adds(b, "\r\n");
}

/* n C strings (names and values in turn) as RESP bulk strings into b. */
static void bulks(struct lp_buf *b, const char *const *s, int n)
{
    for (int i = 0; i < n; i++)
        bulk(b, s[i], strlen(s[i]));
}

/* Decodes an entry of n C-string fields into rec; its JSON into json. */
static int decode_of(const char *const *s, int n, struct lp_dlq_rec *rec,
                     struct lp_buf *json, struct lp_reply **rep)
{
    struct lp_buf b = { 0 };
    struct lp_entry e;
    int rc;

    bulks(&b, s, n);
    rc = as_entry("7-1", b.p, b.len, n, rep, &e);
    lp_buf_free(&b);
    if (rc < 0)
        return -9;
    if (json) {
        json->len = 0;
        lp_dlq_json(&e, json);
        lp_buf_addc(json, '\0');
    }
    return lp_dlq_decode(&e, rec);
}

static void test_send_bytes(void)
{
    struct lp_buf want = { 0 }, got = { 0 };
    /* a rejected line of any bytes: NUL, CR LF, invalid UTF-8 */
    static const char line[] = "{\"a\":\0\r\n\xff}";
    struct lp_dlq_rec rec = {
        .data = { line, sizeof line - 1 },
        .error = lp_dlq_cstr("invalid-json"),
        .detail = lp_dlq_cstr("invalid JSON: unexpected '\\0' at byte 5"),
        .stage = lp_dlq_cstr("send"),
        .source_stream = lp_dlq_cstr("logs:stream"),
        .source_id = lp_dlq_cstr(""),
        .deliveries = 0,
        .consumer = lp_dlq_cstr("host-1.example"),
        .failed_at = 1763800000123LL,
    };

    send_wrote(&want, "logs:dlq", line, sizeof line - 1, "invalid-json",
               "invalid JSON: unexpected '\\0' at byte 5", "logs:stream",
               "host-1.example", 1763800000123LL);
    is_int(lp_dlq_encode_xadd(&rec, "logs:dlq", &got), 0, "send: encoded");
    ok(same(want.p, want.len, got.p, got.len),
       "send: byte for byte the XADD send built from 21 arguments");

    /* appended after what the batch holds, nothing else touched */
    got.len = 0;
    lp_buf_adds(&got, "PREFIX");
    lp_dlq_encode_xadd(&rec, "logs:dlq", &got);
    ok(got.len == want.len + 6 && memcmp(got.p, "PREFIX", 6) == 0 &&
       memcmp(got.p + 6, want.p, want.len) == 0,
       "send: appended to the caller's buffer");

    /* rate-limited, an empty consumer (gethostname failed), a NULL one */
    want.len = got.len = 0;
    send_wrote(&want, "d", "{}", 2, "rate-limited", "over --rate 5/s",
               "s", "", 0);
    rec.data = lp_dlq_cstr("{}");
    rec.error = lp_dlq_cstr("rate-limited");
    rec.detail = lp_dlq_cstr("over --rate 5/s");
    rec.source_stream = lp_dlq_cstr("s");
    rec.consumer.p = NULL;
    rec.consumer.len = 0;
    rec.source_id.p = NULL;
    rec.failed_at = 0;
    lp_dlq_encode_xadd(&rec, "d", &got);
    ok(same(want.p, want.len, got.p, got.len),
       "send: NULL strings are empty ones");

    /* no allocation per record once the buffer is warm */
    char *p = got.p;
    size_t cap = got.cap;
    for (int i = 0; i < 1000; i++) {
        got.len = 0;
        lp_dlq_encode_xadd(&rec, "d", &got);
    }
    ok(got.p == p && got.cap == cap, "send: a warm buffer is reused");
    lp_buf_free(&want);
    lp_buf_free(&got);
}

static void test_drain_bytes(void)
{
    struct lp_buf got = { 0 };
    char *want;
    size_t wn;
    static const char data[] = "{\"service\":\"../etc\",\"x\":\"\0\"}";
    static const char id[] = "1763800000000-17";
    static const char detail[] = "unsafe-path: service \"../etc\"";
    struct lp_dlq_rec rec = {
        .data = { data, sizeof data - 1 },
        .error = lp_dlq_cstr("unsafe-path"),
        .detail = { detail, sizeof detail - 1 },
        .stage = lp_dlq_cstr("drain"),
        .source_stream = lp_dlq_cstr("logs:stream"),
        .source_id = { id, sizeof id - 1 },
        .deliveries = 3,
        .consumer = lp_dlq_cstr("web-1"),
        .failed_at = 1763800000999LL,
    };

    want = drain_wrote(&wn, "logs:stream", "logs:dlq", "archivers", id,
                       sizeof id - 1, data, sizeof data - 1, "unsafe-path",
                       detail, sizeof detail - 1, 3, "web-1",
                       1763800000999LL, sizeof data - 1);
    is_int(lp_dlq_encode_move(&rec, "logs:dlq", "archivers", &got), 0,
           "drain: encoded");
    ok(same(want, wn, got.p, got.len),
       "drain: byte for byte the move drain sent from 25 arguments");
    free(want);

    /* cut to --max-dlq-size: truncated, the whole length */
    rec.data.len = 10;
    rec.truncated = sizeof data - 1;
    rec.deliveries = 4294967295u;
    want = drain_wrote(&wn, "logs:stream", "logs:dlq", "archivers", id,
                       sizeof id - 1, data, 10, "unsafe-path", detail,
                       sizeof detail - 1, 4294967295u, "web-1",
                       1763800000999LL, sizeof data - 1);
    got.len = 0;
    lp_dlq_encode_move(&rec, "logs:dlq", "archivers", &got);
    ok(same(want, wn, got.p, got.len),
       "drain: byte for byte the move of a cut event, 27 arguments");
    free(want);
    lp_buf_free(&got);
}

/* Encodes rec, reads it back as an XRANGE entry, decodes it into out. */
static int round_trip(const struct lp_dlq_rec *rec, struct lp_dlq_rec *out,
                      struct lp_reply **rep)
{
    struct lp_buf b = { 0 };
    struct lp_entry e;
    int n = lp_dlq_encode(rec, &b), rc = -9;

    if (n > 0 && as_entry("1763800000000-0", b.p, b.len, n, rep, &e) == 0)
        rc = lp_dlq_decode(&e, out);
    lp_buf_free(&b);
    return rc;
}

static void test_round_trip(void)
{
    static const char data[] = "\0\x01\xfe\r\n{\"a\":1}";
    static const char cons[] = "c\0n";
    struct lp_dlq_rec rec = {
        .data = { data, sizeof data - 1 },
        .error = lp_dlq_cstr("max-deliveries"),
        .detail = lp_dlq_cstr("delivered 5 times, --max-deliveries 5"),
        .stage = lp_dlq_cstr("drain"),
        .source_stream = lp_dlq_cstr("logs:{a}stream"),
        .source_id = lp_dlq_cstr("1-2"),
        .deliveries = 5,
        .consumer = { cons, sizeof cons - 1 },
        .failed_at = 253402300799999LL,
        .truncated = 123456789012345ULL,
    }, out;
    struct lp_reply *rep = NULL;
    struct lp_buf b = { 0 };

    is_int(lp_dlq_encode(&rec, &b), 20, "encode: 20 strings with truncated");
    lp_buf_free(&b);
    is_int(round_trip(&rec, &out, &rep), 0, "round trip: decoded");
    ok(str_is(out.data, data, sizeof data - 1), "round trip: data, binary");
    ok(str_is(out.error, "max-deliveries", 14), "round trip: error");
    ok(str_is(out.detail, rec.detail.p, rec.detail.len), "round trip: detail");
    ok(str_is(out.stage, "drain", 5), "round trip: stage");
    ok(str_is(out.source_stream, "logs:{a}stream", 14),
       "round trip: source_stream");
    ok(str_is(out.source_id, "1-2", 3), "round trip: source_id");
    is_int(out.deliveries, 5, "round trip: deliveries");
    ok(str_is(out.consumer, cons, sizeof cons - 1),
       "round trip: consumer, with a NUL");
    is_int(out.failed_at, 253402300799999LL, "round trip: failed_at");
    is_int(out.truncated, 123456789012345LL, "round trip: truncated");
    is_int(out.has, 0x3ff, "round trip: every field found");
    is_int(out.bad, 0, "round trip: no bad number");
    lp_reply_free(rep);

    /* as send writes it: empty source_id, no truncated */
    rec.truncated = 0;
    rec.source_id = lp_dlq_cstr("");
    rec.deliveries = 0;
    rec.failed_at = 0;
    b.len = 0;
    is_int(lp_dlq_encode(&rec, &b), 18, "encode: 18 strings without");
    lp_buf_free(&b);
    is_int(round_trip(&rec, &out, &rep), 0, "round trip (send): decoded");
    ok(out.source_id.p != NULL && out.source_id.len == 0,
       "round trip (send): an empty source_id is there, empty");
    ok(out.has == (0x3ff & ~LP_DLQ_TRUNCATED) && out.truncated == 0,
       "round trip (send): no truncated");
    ok(out.deliveries == 0 && out.failed_at == 0 &&
       (out.has & LP_DLQ_DELIVERIES) && (out.has & LP_DLQ_FAILED_AT),
       "round trip (send): zeros are numbers");
    lp_reply_free(rep);
}

static void test_hostile(void)
{
    struct lp_dlq_rec rec;
    struct lp_reply *rep;
    struct lp_buf json = { 0 }, b = { 0 };
    struct lp_entry e;

    /* fields missing: only what is there */
    const char *only[] = { "data", "{}" };
    is_int(decode_of(only, 2, &rec, NULL, &rep), 0, "only data: decoded");
    ok(rec.has == LP_DLQ_DATA && rec.error.p == NULL &&
       rec.stage.p == NULL && rec.source_stream.p == NULL &&
       rec.deliveries == 0 && rec.truncated == 0,
       "only data: the rest missing");
    lp_reply_free(rep);
    is_int(decode_of(NULL, 0, &rec, NULL, &rep), 0, "no fields: decoded");
    is_int(rec.has, 0, "no fields: nothing found");
    lp_reply_free(rep);

    /* deleted (trimmed) entry: nil fields */
    ok(as_entry("1-1", NULL, 0, -1, &rep, &e) == 0 && e.fields == NULL,
       "a deleted entry reads as nil fields");
    rec.has = 99;
    is_int(lp_dlq_decode(&e, &rec), -1, "a deleted entry: -1");
    is_int(rec.has, 0, "a deleted entry: rec zeroed");
    lp_reply_free(rep);

    /* odd counts never reach decode: lp_entry_get refuses them */
    const char *odd[] = { "data", "{}", "error" };
    bulks(&b, odd, 3);
    ok(as_entry("1-1", b.p, b.len, 3, &rep, &e) < 0,
       "an odd count of fields is refused before decode");
    lp_reply_free(rep);
    lp_buf_free(&b);

    /* the first of each name wins, others are passed over */
    const char *dup[] = { "error", "first", "data", "A", "x", "y",
                          "error", "second", "data", "B",
                          "source_stream", "s1", "source_stream", "s2" };
    is_int(decode_of(dup, 14, &rec, &json, &rep), 0, "duplicates: decoded");
    ok(str_is(rec.error, "first", 5) && str_is(rec.data, "A", 1) &&
       str_is(rec.source_stream, "s1", 2), "duplicates: the first wins");
    is_str(json.p, "{\"id\":\"7-1\",\"error\":\"first\",\"data\":\"A\","
           "\"x\":\"y\",\"error\":\"second\",\"field:data\":\"B\","
           "\"source_stream\":\"s1\",\"source_stream\":\"s2\"}",
           "duplicates: JSON shows every field, in order");
    lp_reply_free(rep);

    /* numbers that are none: bad, not found */
    const char *nums[] = { "deliveries", "007", "failed_at", "-1",
                           "truncated", "1e3" };
    is_int(decode_of(nums, 6, &rec, &json, &rep), 0, "bad numbers: decoded");
    is_int(rec.has, 0, "bad numbers: not found");
    is_int(rec.bad, LP_DLQ_DELIVERIES | LP_DLQ_FAILED_AT | LP_DLQ_TRUNCATED,
           "bad numbers: said bad");
    is_str(json.p, "{\"id\":\"7-1\",\"deliveries\":\"007\",\"failed_at\":"
           "\"-1\",\"truncated\":\"1e3\"}", "bad numbers: strings in JSON");
    lp_reply_free(rep);
    const char *big[] = { "deliveries", "1234567890123456", "failed_at", "",
                          "deliveries", "2" };
    is_int(decode_of(big, 6, &rec, NULL, &rep), 0, "16 digits: decoded");
    ok(rec.bad == (LP_DLQ_DELIVERIES | LP_DLQ_FAILED_AT) &&
       !(rec.has & LP_DLQ_DELIVERIES) && rec.deliveries == 0,
       "16 digits, empty: bad; a later good one does not count either");
    lp_reply_free(rep);
    const char *late[] = { "failed_at", "999999999999999" };
    decode_of(late, 2, &rec, &json, &rep);
    ok((rec.has & LP_DLQ_FAILED_AT) && rec.failed_at == 999999999999999LL,
       "failed_at past year 9999: a number");
    is_str(json.p, "{\"id\":\"7-1\",\"failed_at\":\"999999999999999\"}",
           "failed_at past year 9999: shown as it is");
    lp_reply_free(rep);

    /* binary bytes in names and values */
    struct lp_buf f = { 0 };
    bulk(&f, "data\0", 5);
    bulk(&f, "x", 1);
    bulk(&f, "DATA", 4);
    bulk(&f, "y", 1);
    bulk(&f, "error", 5);
    bulk(&f, "\0\xff\n", 3);
    ok(as_entry("1-1", f.p, f.len, 6, &rep, &e) == 0, "binary: parsed");
    lp_dlq_decode(&e, &rec);
    ok(rec.has == LP_DLQ_ERROR && rec.data.p == NULL,
       "binary: data\\0 and DATA are not data");
    ok(str_is(rec.error, "\0\xff\n", 3), "binary: a value of any bytes");
    json.len = 0;
    lp_dlq_json(&e, &json);
    lp_buf_addc(&json, '\0');
    is_str(json.p, "{\"id\":\"1-1\",\"data\\u0000\":\"x\",\"DATA\":\"y\","
           "\"error\":\"\\u0000\xef\xbf\xbd\\n\"}",
           "binary: JSON escapes, invalid UTF-8 as U+FFFD");
    lp_reply_free(rep);
    lp_buf_free(&f);

    /* the view: event trimmed, field:id, deliveries, failed_at */
    const char *view[] = { "data", " \t{\"a\": [1]}\r\n", "id", "x",
                           "event", "e", "deliveries", "12",
                           "failed_at", "1700000000000" };
    decode_of(view, 10, &rec, &json, &rep);
    is_str(json.p, "{\"id\":\"7-1\",\"event\":{\"a\": [1]},\"field:id\":\"x\","
           "\"field:event\":\"e\",\"deliveries\":12,"
           "\"failed_at\":\"2023-11-14T22:13:20.000Z\"}",
           "JSON: the event as it is, own fields renamed, numbers, time");
    lp_reply_free(rep);
    const char *notjson[] = { "data", "{\"a\":" };
    decode_of(notjson, 2, &rec, &json, &rep);
    is_str(json.p, "{\"id\":\"7-1\",\"data\":\"{\\\"a\\\":\"}",
           "JSON: data that is no JSON, a string");
    lp_reply_free(rep);
    lp_buf_free(&json);
}

/* A command's reply as an integer (-1 when it failed). */
static long long cmd_int(struct lp_redis *r, const char *a, const char *b,
                         const char *c)
{
    char err[LP_ERRLEN];
    struct lp_reply *rep = lp_redis_cmd(r, err, a, b, c, NULL);
    long long n = rep && lp_reply_type(rep) == LP_REPLY_INTEGER ?
                  lp_reply_int(rep) : -1;

    lp_reply_free(rep);
    return n;
}

/* The pending count of group g of logs:s (XPENDING's summary). */
static long long pending(struct lp_redis *r)
{
    char err[LP_ERRLEN];
    struct lp_reply *rep = lp_redis_cmd(r, err, "XPENDING", "logs:s", "g",
                                        NULL);
    long long n = rep ? lp_reply_int(lp_reply_at(rep, 0)) : -1;

    lp_reply_free(rep);
    return n;
}

/* One new entry of logs:s delivered to group g, its ID into id. */
static int delivered(struct lp_redis *r, char id[LP_STREAM_IDLEN])
{
    char err[LP_ERRLEN];
    struct lp_reply *rep;
    size_t n;
    const char *s;

    rep = lp_redis_cmd(r, err, "XADD", "logs:s", "*", "data", "{\"n\":1}",
                       NULL);
    s = rep ? lp_reply_str(rep, &n) : NULL;
    if (s == NULL || n >= LP_STREAM_IDLEN) {
        lp_reply_free(rep);
        return -1;
    }
    memcpy(id, s, n);
    id[n] = '\0';
    lp_reply_free(rep);
    rep = lp_redis_cmd(r, err, "XREADGROUP", "GROUP", "g", "c", "COUNT",
                       "1", "STREAMS", "logs:s", ">", NULL);
    lp_reply_free(rep);
    return rep ? 0 : -1;
}

/* What lp_dlqtool said, by kind, and the last message. */
struct heard {
    int n[5];
    int asked[5];               /* take_first */
    char last[LP_NOTICELEN];
};

/* A budget of one message of each kind */
static int take_first(void *ctx, enum lp_dlqtool_say what)
{
    struct heard *h = ctx;

    return h->asked[what]++ == 0;
}

static void hear(void *ctx, enum lp_dlqtool_say what, const char *msg)
{
    struct heard *h = ctx;

    h->n[what]++;
    snprintf(h->last, sizeof h->last, "%s", msg);
}

/* One run of lp_dlqtool over logs:t; its output into out (NUL ended). */
static int run_tool(struct lp_redis *r, struct lp_dlqtool_conf *c,
                    struct heard *h, char *out, size_t cap,
                    struct lp_dlqtool_result *res, char *err)
{
    struct lp_dlqtool *t;
    FILE *f = tmpfile();
    int rc;

    memset(h, 0, sizeof *h);
    c->dlq = "logs:t";
    c->stream = "logs:s";
    c->out_fd = fileno(f);
    c->out_name = "out";
    c->say = hear;
    c->ctx = h;
    if ((rc = lp_dlqtool_new(c, &t, err)) != 0) {
        fclose(f);
        return rc;
    }
    rc = lp_dlqtool_run(t, r, err);
    *res = *lp_dlqtool_result(t);
    lp_dlqtool_free(t);
    rewind(f);
    out[fread(out, 1, cap - 1, f)] = '\0';
    fclose(f);
    return rc;
}

/* lp_dlqtool's API: output, what it says, its result, its stops. */
static void test_tool(struct lp_redis *r)
{
    char err[LP_ERRLEN], out[4096];
    struct heard h;
    struct lp_dlqtool_result res;
    char *ids[] = { "5-1", "9-9", "nonsense" };

    lp_reply_free(lp_redis_cmd(r, err, "DEL", "logs:t", NULL));
    lp_reply_free(lp_redis_cmd(r, err, "XADD", "logs:t", "5-1", "data",
                               "{\"a\":1}", "error", "x", NULL));
    lp_reply_free(lp_redis_cmd(r, err, "XADD", "logs:t", "5-2", "error",
                               "y", NULL));

    struct lp_dlqtool_conf c = { .cmd = LP_DLQTOOL_EXPORT };
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), 0,
           "tool export: ran");
    is_str(out, "{\"a\":1}\n", "tool export: the data");
    ok(h.n[LP_DLQTOOL_SKIPPED] == 1 &&
       strcmp(h.last, "entry 5-2: no data field: not exported") == 0,
       "tool export: the entry without data said (%s)", h.last);
    ok(res.seen == 2 && res.done == 1 && res.status == LP_EX_OK,
       "tool export: counted");

    c = (struct lp_dlqtool_conf){ .cmd = LP_DLQTOOL_SHOW, .ids = ids,
                                  .nids = 3 };
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), 0,
           "tool show: ran");
    is_str(out, "{\"id\":\"5-1\",\"event\":{\"a\":1},\"error\":\"x\"}\n",
       "tool show: the entry named");
    ok(h.n[LP_DLQTOOL_UNKNOWN] == 2 && res.missing == 1 &&
       res.status == LP_EX_DATAERR, "tool show: two unknown, 65");
    c.take = take_first;
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), 0,
           "tool show, a budget of one: ran");
    ok(h.asked[LP_DLQTOOL_UNKNOWN] == 2 && h.n[LP_DLQTOOL_UNKNOWN] == 1 &&
       strcmp(h.last, "entry 9-9 is not in logs:t") == 0 &&
       res.missing == 1 && res.status == LP_EX_DATAERR,
       "tool show, a budget of one: asked for both, the first said (%s)",
       h.last);

    c = (struct lp_dlqtool_conf){ .cmd = LP_DLQTOOL_LIST,
                                  .where = ".data | test(\"a\")" };
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), 0,
           "tool list --where: ran");
    ok(h.n[LP_DLQTOOL_WHERE] == 2 && out[0] == '\0',
       "tool list --where: failed on both, said");
    c = (struct lp_dlqtool_conf){ .cmd = LP_DLQTOOL_LIST, .where = ".[" };
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), LP_EX_CONFIG,
           "tool: a --where that does not compile: 78");
    ok(strncmp(err, "--where: ", 9) == 0, "tool: --where said (%s)", err);

    lp_reply_free(lp_redis_cmd(r, err, "SET", "logs:t", "x", NULL));
    c = (struct lp_dlqtool_conf){ .cmd = LP_DLQTOOL_STATS };
    is_int(run_tool(r, &c, &h, out, sizeof out, &res, err), LP_EX_CONFIG,
           "tool on a string key: 78");
    ok(strncmp(err, "XREVRANGE logs:t: WRONGTYPE", 27) == 0,
       "tool on a string key: the command and key said (%s)", err);
    lp_reply_free(lp_redis_cmd(r, err, "DEL", "logs:t", NULL));
}

/* Against a real Redis (LOGPIPE_REDIS_URL, set by t0025): the move of
 * drain, retry and purge of logpipe-dlq, and a record through Redis. */
static void test_redis(const char *url)
{
    char err[LP_ERRLEN], id[LP_STREAM_IDLEN], dlq_id[LP_STREAM_IDLEN];
    char nid[LP_STREAM_IDLEN];
    struct lp_url u;
    struct lp_redis *r;
    struct lp_stream_err e;
    struct lp_buf scratch = { 0 };
    struct lp_page pg;
    struct lp_entry en;
    struct lp_dlq_rec out;
    static const char data[] = "{\"bin\":\"\0\xff\"}";
    struct lp_dlq_rec rec = {
        .data = { data, sizeof data - 1 },
        .error = lp_dlq_cstr("unsafe-path"),
        .detail = lp_dlq_cstr("service \"..\""),
        .stage = lp_dlq_cstr("drain"),
        .source_stream = lp_dlq_cstr("logs:s"),
        .deliveries = 2,
        .consumer = lp_dlq_cstr("c"),
        .failed_at = 1763800000000LL,
        .truncated = 4096,
    };

    if (lp_url_parse(url, &u, err) < 0 || (r = lp_redis_new(&u, NULL)) ==
        NULL || lp_redis_connect(r, err) < 0) {
        ok(0, "redis: connected (%s)", err);
        return;
    }
    lp_reply_free(lp_redis_cmd(r, err, "DEL", "logs:s", "logs:d", "str",
                               NULL));
    lp_reply_free(lp_redis_cmd(r, err, "XGROUP", "CREATE", "logs:s", "g",
                               "0", "MKSTREAM", NULL));
    ok(delivered(r, id) == 0 && pending(r) == 1, "redis: an entry pending");
    rec.source_id = lp_dlq_cstr(id);

    /* a refused move: the entry stays pending */
    lp_reply_free(lp_redis_cmd(r, err, "SET", "str", "x", NULL));
    is_int(lp_dlq_move_append(r, &rec, "str", "g", &scratch), 0,
           "move to a string key: queued");
    is_int(lp_dlq_move_reply(r, dlq_id, &e), -1, "move to a string: -1");
    is_int(e.code, LP_RERR_KEY, "move to a string: the key's error");
    ok(strncmp(e.msg, "WRONGTYPE", 9) == 0 && !strstr(e.msg, "script:"),
       "move to a string: Redis' words, not the script's place (%s)",
       e.msg);
    is_int(pending(r), 1, "move refused: still pending");

    /* the move: XADD and XACK at once, twice pipelined */
    char id2[LP_STREAM_IDLEN];
    delivered(r, id2);
    struct lp_dlq_rec rec2 = rec;
    rec2.source_id = lp_dlq_cstr(id2);
    rec2.truncated = 0;
    rec2.data = lp_dlq_cstr("{\"n\":1}");
    ok(lp_dlq_move_append(r, &rec, "logs:d", "g", &scratch) == 0 &&
       lp_dlq_move_append(r, &rec2, "logs:d", "g", &scratch) == 0,
       "move: two queued");
    ok(lp_dlq_move_reply(r, dlq_id, &e) == 0 && dlq_id[0],
       "move: the dead letter's ID (%s)", dlq_id);
    ok(lp_dlq_move_reply(r, nid, &e) == 0 && strcmp(nid, dlq_id) > 0,
       "move: the second's, later");
    is_int(pending(r), 0, "move: acknowledged");
    is_int(cmd_int(r, "XLEN", "logs:d", NULL), 2, "move: in the DLQ");

    /* read back: the record as it went in */
    ok(lp_stream_range(r, "logs:d", dlq_id, 0, dlq_id, 0, &pg, &e) == 0 &&
       pg.n == 1 && lp_entry_get(pg.entries, 0, &en, err) == 0 &&
       lp_dlq_decode(&en, &out) == 0, "through Redis: decoded");
    ok(str_is(out.data, data, sizeof data - 1) &&
       str_is(out.source_id, id, strlen(id)) && out.deliveries == 2 &&
       out.failed_at == 1763800000000LL && out.truncated == 4096 &&
       out.has == 0x3ff, "through Redis: the same record");
    lp_page_free(&pg);

    /* retry: a cut event refused; a whole one back to its stream, once */
    ok(lp_dlq_retry_append(r, "logs:d", dlq_id, "logs:s", "logs:s") == 0 &&
       lp_dlq_retry_reply(r, nid, &e) == -1 && e.code == LP_RERR_REQUEST &&
       strcmp(e.msg, "ERR its data was cut from 4096 bytes (truncated): "
              "not the whole event") == 0, "retry: a cut event refused");
    lp_stream_last_id(r, "logs:d", id2, &e);
    is_int(lp_dlq_retry_append(r, "logs:d", id2, "logs:s", "logs:s"), 0,
           "retry: queued");
    ok(lp_dlq_retry_reply(r, nid, &e) == 1 && nid[0], "retry: new ID %s",
       nid);
    lp_dlq_retry_append(r, "logs:d", id2, "logs:s", "logs:s");
    is_int(lp_dlq_retry_reply(r, nid, &e), 0, "retry again: gone already");

    /* purge: once */
    lp_dlq_purge_append(r, "logs:d", dlq_id);
    lp_dlq_purge_append(r, "logs:d", dlq_id);
    is_int(lp_dlq_purge_reply(r, &e), 1, "purge: purged");
    is_int(lp_dlq_purge_reply(r, &e), 0, "purge again: gone already");
    is_int(cmd_int(r, "XLEN", "logs:d", NULL), 0, "the DLQ is empty");

    lp_buf_free(&scratch);
    test_tool(r);
    lp_redis_free(r);
}

int main(void)
{
    const char *url = getenv("LOGPIPE_REDIS_URL");

    test_send_bytes();
    test_drain_bytes();
    test_round_trip();
    test_hostile();
    if (url)
        test_redis(url);
    return tap_done();
}
