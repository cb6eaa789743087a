/* unit-otlp.c -- lp_otlp: OTLP/HTTP JSON log records into events */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_otlp.h"
#include "lp_parse.h"
#include "tap.h"

static struct lp_buf got;

static void on_item(void *ctx, const struct lp_otlp_item *it)
{
    (void)ctx;
    lp_buf_adds(&got, it->where + strlen("resourceLogs"));
    if (it->ev) {
        lp_buf_adds(&got, " ok ");
        lp_buf_add(&got, it->stored, it->stored_len);
    } else {
        lp_buf_adds(&got, " bad ");
        lp_buf_adds(&got, it->code);
        lp_buf_adds(&got, ": ");
        lp_buf_adds(&got, it->msg);
    }
    lp_buf_addc(&got, '\n');
}

static struct lp_event_rules rules;
static struct lp_otlp *otlp;
static int64_t now = 1796553600000LL;   /* 2026-12-06T12:00:00Z */

/* maps s; got: the items, "=> STATUS error", the answer */
static int run(struct lp_otlp *o, const char *s, const char *client)
{
    int st;
    char tail[LP_ERRLEN + 64];

    got.len = 0;
    st = lp_otlp_map(o, s, strlen(s), now, client);
    snprintf(tail, sizeof tail, "=> %d %s\n", st, lp_otlp_error(o));
    lp_buf_adds(&got, tail);
    if (st == 200)
        lp_otlp_answer(o, &got);
    lp_buf_addc(&got, '\0');
    got.len--;
    return st;
}

#define RL(res, recs) "{\"resourceLogs\":[{\"resource\":" res ",\"scopeLogs\":" \
    "[{\"scope\":{\"name\":\"x\"},\"logRecords\":[" recs "]}]}]}"
#define SVC "{\"attributes\":[{\"key\":\"host.name\",\"value\":" \
    "{\"stringValue\":\"h1\"}},{\"key\":\"service.name\",\"value\":" \
    "{\"stringValue\":\"checkout\"}}]}"

static void mapping(void)
{
    run(otlp, RL(SVC,
        "{\"timeUnixNano\":\"1796547600123456789\","
        "\"observedTimeUnixNano\":\"1796547601000000000\","
        "\"severityNumber\":9,\"severityText\":\"Information\","
        "\"traceId\":\"5B8EFFF798038103D269B633813FC60C\","
        "\"spanId\":\"EEE19B7EC3C1B174\","
        "\"body\":{\"stringValue\":\"Example log record\"},"
        "\"attributes\":["
        "{\"key\":\"string.attribute\",\"value\":{\"stringValue\":\"some "
        "string\"}},"
        "{\"key\":\"boolean.attribute\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"int.attribute\",\"value\":{\"intValue\":\"10\"}},"
        "{\"key\":\"double.attribute\",\"value\":{\"doubleValue\":637.704}},"
        "{\"key\":\"array.attribute\",\"value\":{\"arrayValue\":{\"values\":"
        "[{\"stringValue\":\"many\"},{\"intValue\":-7}]}}},"
        "{\"key\":\"map.attribute\",\"value\":{\"kvlistValue\":{\"values\":"
        "[{\"key\":\"some.map.key\",\"value\":{\"stringValue\":\"v\"}}]}}},"
        "{\"key\":\"bytes\",\"value\":{\"bytesValue\":\"AAEC\"}},"
        "{\"key\":\"empty\",\"value\":{}}"
        "]},"
        "{\"observedTimeUnixNano\":1796547601000000000,"
        "\"severityNumber\":18,"
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":"
        "{\"intValue\":1}}]}}},"
        "{}"), NULL);
    is_str(got.p,
           "[0].scopeLogs[0].logRecords[0] ok {\"timestamp\":"
           "\"2026-12-06T09:00:00.123456789Z\",\"level\":\"Information\","
           "\"message\":\"Example log record\",\"service\":\"checkout\","
           "\"trace_id\":\"5b8efff798038103d269b633813fc60c\","
           "\"span_id\":\"eee19b7ec3c1b174\","
           "\"string.attribute\":\"some string\","
           "\"boolean.attribute\":true,\"int.attribute\":10,"
           "\"double.attribute\":637.704,"
           "\"array.attribute\":[\"many\",-7],"
           "\"map.attribute\":{\"some.map.key\":\"v\"},"
           "\"bytes\":{\"base64\":\"AAEC\"},\"empty\":null}\n"
           "[0].scopeLogs[0].logRecords[1] ok {\"timestamp\":"
           "\"2026-12-06T09:00:01.000000000Z\",\"level\":\"ERROR2\","
           "\"message\":{\"a\":1},\"service\":\"checkout\"}\n"
           "[0].scopeLogs[0].logRecords[2] ok {\"service\":\"checkout\"}\n"
           "=> 200 \n{}",
           "the specification's example record and two more: each member "
           "mapped, the answer {}");
    run(otlp, "{\"resource_logs\":[{\"scope_logs\":[{\"log_records\":["
        "{\"time_unix_nano\":1,\"severity_text\":\"W\",\"trace_id\":\"\"}"
        "]}]}]}", NULL);
    is_str(got.p, "[0].scopeLogs[0].logRecords[0] ok {\"timestamp\":"
           "\"1970-01-01T00:00:00.000000001Z\",\"level\":\"W\"}\n"
           "=> 200 \n{}", "proto field names are read too; empty traceId "
           "left out");
    run(otlp, "{}", NULL);
    is_str(got.p, "=> 200 \n{}", "no resourceLogs: nothing, 200");
    run(otlp, "{\"resourceLogs\":[]}", NULL);
    is_str(got.p, "=> 200 \n{}", "empty resourceLogs: nothing, 200");
}

static void rejects(void)
{
    run(otlp, RL("{}",
        "{\"timeUnixNano\":\"abc\"},"
        "{\"timeUnixNano\":\"99999999999999999999\"},"
        "{\"timeUnixNano\":1.5},"
        "{\"severityNumber\":25},"
        "{\"severityText\":7},"
        "{\"traceId\":\"xyz\"},"
        "{\"spanId\":\"0123456789abcdeg\"},"
        "{\"body\":\"plain\"},"
        "{\"body\":{\"stringValue\":\"a\",\"intValue\":1}},"
        "{\"body\":{\"intValue\":\"9223372036854775808\"}},"
        "{\"body\":{\"intValue\":\"-9223372036854775808\"}},"
        "{\"attributes\":{}},"
        "{\"attributes\":[{\"key\":1}]},"
        "{\"attributes\":[7]},"
        "{\"body\":{\"doubleValue\":\"NaN\"}},"
        "{\"body\":{\"doubleValue\":\"1e999\"}},"
        "{\"body\":{\"doubleValue\":\"x\"}},"
        "{\"body\":{\"bytesValue\":\"a b\"}},"
        "{\"body\":{\"arrayValue\":{\"values\":{}}}},"
        "7,"
        "{\"timeUnixNano\":\"1700000000000000000\"}"), NULL);
    is_str(got.p,
           "[0].scopeLogs[0].logRecords[0] bad otlp: timeUnixNano: not an "
           "unsigned 64-bit integer\n"
           "[0].scopeLogs[0].logRecords[1] bad otlp: timeUnixNano: not an "
           "unsigned 64-bit integer\n"
           "[0].scopeLogs[0].logRecords[2] bad otlp: timeUnixNano: not an "
           "unsigned 64-bit integer\n"
           "[0].scopeLogs[0].logRecords[3] bad otlp: severityNumber: not an "
           "integer from 0 to 24\n"
           "[0].scopeLogs[0].logRecords[4] bad otlp: severityText: not a "
           "string\n"
           "[0].scopeLogs[0].logRecords[5] bad otlp: traceId: not 32 hex "
           "digits\n"
           "[0].scopeLogs[0].logRecords[6] bad otlp: spanId: not 16 hex "
           "digits\n"
           "[0].scopeLogs[0].logRecords[7] bad otlp: body: not an AnyValue "
           "object\n"
           "[0].scopeLogs[0].logRecords[8] bad otlp: body: an AnyValue with "
           "more than one value\n"
           "[0].scopeLogs[0].logRecords[9] bad otlp: body: intValue is not a "
           "64-bit integer\n"
           "[0].scopeLogs[0].logRecords[10] ok {\"message\":"
           "-9223372036854775808}\n"
           "[0].scopeLogs[0].logRecords[11] bad otlp: attributes: not an "
           "array\n"
           "[0].scopeLogs[0].logRecords[12] bad otlp: attributes[0]: key is "
           "not a string\n"
           "[0].scopeLogs[0].logRecords[13] bad otlp: attributes[0]: not an "
           "object\n"
           "[0].scopeLogs[0].logRecords[14] ok {\"message\":\"NaN\"}\n"
           "[0].scopeLogs[0].logRecords[15] ok {\"message\":1e999}\n"
           "[0].scopeLogs[0].logRecords[16] bad otlp: body: doubleValue is "
           "not a number\n"
           "[0].scopeLogs[0].logRecords[17] bad otlp: body: bytesValue is "
           "not base64\n"
           "[0].scopeLogs[0].logRecords[18] bad otlp: body: values is not an "
           "array\n"
           "[0].scopeLogs[0].logRecords[19] bad otlp: not an object\n"
           "[0].scopeLogs[0].logRecords[20] ok {\"timestamp\":"
           "\"2023-11-14T22:13:20.000000000Z\"}\n"
           "=> 200 \n"
           "{\"partialSuccess\":{\"rejectedLogRecords\":\"17\","
           "\"errorMessage\":\"17 of 21 log records rejected: "
           "resourceLogs[0].scopeLogs[0].logRecords[0]: timeUnixNano: not an "
           "unsigned 64-bit integer; resourceLogs[0].scopeLogs[0]."
           "logRecords[1]: timeUnixNano: not an unsigned 64-bit integer; "
           "resourceLogs[0].scopeLogs[0].logRecords[2]: timeUnixNano: not an "
           "unsigned 64-bit integer (and 14 more)\"}}",
           "wrong types, numbers out of range: each record rejected by its "
           "path, the rest taken; partialSuccess counts and names them");
}

static void frames(void)
{
    static const struct { const char *in, *want; } t[] = {
        { "[1]", "=> 400 the body is not a JSON object\n" },
        { "{\"resourceLogs\":[", "=> 400 invalid JSON: unexpected end of input "
          "at byte 18\n" },
        { "{\"resourceLogs\":{}}", "=> 400 resourceLogs: not an array\n" },
        { "{\"resourceLogs\":[1]}",
          "=> 400 resourceLogs[0]: not an object\n" },
        { "{\"resourceLogs\":[{\"scopeLogs\":7}]}",
          "=> 400 resourceLogs[0].scopeLogs: not an array\n" },
        { "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{}]},"
          "{\"logRecords\":\"x\"}]}]}",
          "=> 400 resourceLogs[0].scopeLogs[1].logRecords: not an array\n" },
        { "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":"
          "\"service.name\",\"value\":{\"intValue\":\"x\"}}]}}]}",
          "=> 400 resourceLogs[0].resource: service.name: intValue is not a "
          "64-bit integer\n" },
        { "{\"resourceLogs\":[{\"resource\":[]}]}",
          "=> 400 resourceLogs[0].resource: not an object\n" },
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        run(otlp, t[i].in, NULL);
        is_str(got.p, t[i].want, "a broken frame is 400, nothing handed "
               "over: %s", t[i].in);
    }
}

static void hostile(void)
{
    /* kvlists nested: 63 make an event 64 deep, 64 one too deep: that
     * record rejected by its path */
    struct lp_buf b = { 0 };
    for (int depth = 63; depth <= 64; depth++) {
        b.len = 0;
        lp_buf_adds(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                    "{\"body\":");
        for (int i = 0; i < depth; i++)
            lp_buf_adds(&b, "{\"kvlistValue\":{\"values\":[{\"key\":\"k\","
                        "\"value\":");
        lp_buf_adds(&b, "{}");
        for (int i = 0; i < depth; i++)
            lp_buf_adds(&b, "}]}}");
        lp_buf_adds(&b, "},{}]}]}]}");
        lp_buf_addc(&b, '\0');
        run(otlp, b.p, NULL);
        if (depth == 63)
            ok(strstr(got.p, "logRecords[0] ok {\"message\":{\"k\":{") &&
               strstr(got.p, "{\"k\":null}}}") &&
               strstr(got.p, "[0].scopeLogs[0].logRecords[1] ok {}\n=> 200"),
               "an event 64 deep: taken");
        else
            ok(strstr(got.p, "logRecords[0] bad otlp: body: nesting deeper "
                      "than 64\n[0].scopeLogs[0].logRecords[1] ok {}\n"
                      "=> 200") != NULL, "65 deep: that record rejected, "
               "the next taken");
    }
    /* past the request's cap: 400, not a deep recursion */
    b.len = 0;
    for (int i = 0; i < 2000; i++)
        lp_buf_adds(&b, "{\"a\":");
    lp_buf_adds(&b, "1");
    for (int i = 0; i < 2000; i++)
        lp_buf_adds(&b, "}");
    lp_buf_addc(&b, '\0');
    run(otlp, b.p, NULL);
    is_str(got.p, "=> 400 invalid JSON: nesting deeper than 272 at byte "
           "1361\n", "a request nested 2000 deep: 400");
    lp_buf_free(&b);
    /* duplicate and reserved attribute names: dropped, said */
    run(otlp, RL(SVC, "{\"severityText\":\"I\",\"attributes\":["
                 "{\"key\":\"a\",\"value\":{\"intValue\":1}},"
                 "{\"key\":\"a\",\"value\":{\"intValue\":2}},"
                 "{\"key\":\"\\u0061\",\"value\":{\"intValue\":3}},"
                 "{\"key\":\"level\",\"value\":{\"stringValue\":\"x\"}},"
                 "{\"key\":\"service\",\"value\":{\"stringValue\":\"x\"}},"
                 "{\"key\":\"_id\",\"value\":{\"stringValue\":\"x\"}}]}"),
        NULL);
    is_str(got.p, "[0].scopeLogs[0].logRecords[0] ok {\"level\":\"I\","
           "\"service\":\"checkout\",\"a\":1}\n=> 200 \n"
           "{\"partialSuccess\":{\"rejectedLogRecords\":\"0\","
           "\"errorMessage\":\"4 attributes dropped: named like a member the "
           "record maps to or like an attribute before them\"}}",
           "attributes named like one before (escaped too) or like a mapped "
           "member are dropped and said; _id is cut as send cuts it");
    /* many attributes: the set grows */
    struct lp_buf m = { 0 };
    lp_buf_adds(&m, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                "{\"attributes\":[");
    for (int i = 0; i < 3000; i++) {
        char kv[80];
        snprintf(kv, sizeof kv, "%s{\"key\":\"k%d\",\"value\":{\"intValue\":"
                 "%d}}", i ? "," : "", i % 2000, i);
        lp_buf_adds(&m, kv);
    }
    lp_buf_adds(&m, "]}]}]}]}");
    lp_buf_addc(&m, '\0');
    run(otlp, m.p, NULL);
    ok(strstr(got.p, "\"k1999\":1999}\n=> 200") != NULL &&
       strstr(got.p, "\"1000 attributes dropped") != NULL,
       "3000 attributes, 1000 of them repeats: 2000 kept, 1000 dropped");
    lp_buf_free(&m);
}

static void checks(void)
{
    char err[LP_ERRLEN];
    char *req[] = { "service" };
    struct lp_event_rules r2;
    struct lp_otlp_conf c = {
        .rules = &r2, .max_line = 120, .client_field = "client",
        .item = on_item,
    };

    if (lp_event_rules_init(&r2, "timestamp", req, 1, 64, 10000,
                            24 * 3600 * 1000LL, 5 * 60 * 1000LL, err) < 0)
        abort();
    struct lp_otlp *o = lp_otlp_new(&c, err);
    run(o, RL(SVC, "{\"timeUnixNano\":\"1796547600000000000\"},"
              "{\"timeUnixNano\":\"1700000000000000000\"},"
              "{\"body\":{\"stringValue\":\"0123456789012345678901234567890"
              "123456789012345678901234567890123456789\"}}"), "team-a");
    is_str(got.p, "[0].scopeLogs[0].logRecords[0] ok {\"timestamp\":"
           "\"2026-12-06T09:00:00.000000000Z\",\"service\":\"checkout\","
           "\"client\":\"team-a\"}\n"
           "[0].scopeLogs[0].logRecords[1] bad too-old: event time "
           "2023-11-14T22:13:20.000Z is older than --max-age 24h\n"
           "[0].scopeLogs[0].logRecords[2] bad too-long: longer than "
           "--max-line (120 bytes)\n=> 200 \n"
           "{\"partialSuccess\":{\"rejectedLogRecords\":\"2\",\"errorMessage\":"
           "\"2 of 3 log records rejected: resourceLogs[0].scopeLogs[0]."
           "logRecords[1]: event time 2023-11-14T22:13:20.000Z is older than "
           "--max-age 24h; resourceLogs[0].scopeLogs[0].logRecords[2]: longer "
           "than --max-line (120 bytes)\"}}",
           "send's checks: --max-age, --max-line; --client-field last");
    run(o, RL("{}", "{}"), NULL);
    is_str(got.p, "[0].scopeLogs[0].logRecords[0] bad missing-member: "
           "required member \"service\" is missing\n=> 200 \n"
           "{\"partialSuccess\":{\"rejectedLogRecords\":\"1\",\"errorMessage\":"
           "\"1 of 1 log records rejected: resourceLogs[0].scopeLogs[0]."
           "logRecords[0]: required member \\\"service\\\" is missing\"}}",
           "--require: a record without service rejected, the message "
           "escaped");
    lp_otlp_free(o);
    struct lp_buf st = { 0 };
    lp_otlp_status(&st, 3, "invalid JSON: \"x\"");
    lp_buf_addc(&st, '\0');
    is_str(st.p, "{\"code\":3,\"message\":\"invalid JSON: \\\"x\\\"\"}",
           "a failed request's google.rpc.Status");
    lp_buf_free(&st);
}

int main(void)
{
    char err[LP_ERRLEN];
    struct lp_otlp_conf c = { .rules = &rules, .item = on_item };

    if (lp_event_rules_init(&rules, "timestamp", NULL, 0, 64, 10000, 0, 0,
                            err) < 0 ||
        (otlp = lp_otlp_new(&c, err)) == NULL)
        return 1;
    mapping();
    rejects();
    frames();
    hostile();
    checks();
    lp_otlp_free(otlp);
    lp_buf_free(&got);
    return tap_done();
}
