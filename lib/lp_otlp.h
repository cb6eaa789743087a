/* lp_otlp.h -- OTLP/HTTP JSON logs (ExportLogsServiceRequest) into events */
#ifndef LP_OTLP_H
#define LP_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_json.h"

/*
 * logpipe-http's POST /v1/logs: an OpenTelemetry ExportLogsServiceRequest
 * in OTLP's JSON encoding (opentelemetry-proto logs_service.proto, the
 * OTLP specification's "JSON Protobuf Encoding": lowerCamelCase names,
 * the proto names accepted too; 64-bit integers as decimal strings or
 * numbers; trace and span IDs in hex; enums as integers), one event per
 * logRecord, members in this order:
 *
 *   timestamp   timeUnixNano, else observedTimeUnixNano (0 or absent:
 *               none), as RFC 3339 UTC with nanoseconds; the member is
 *               named by conf time_field (send's --time-field)
 *   level       severityText, else severityNumber's short name (INFO,
 *               WARN2, ...: the data model's table); none when neither
 *   message     the body: a string body as the string, any other as its
 *               JSON value (kvlistValue an object, arrayValue an array,
 *               intValue a number, bytesValue {"base64":"..."})
 *   service     the resource's service.name attribute, a string
 *   trace_id, span_id   lower-case hex, when not empty
 *   the record's attributes, each a member (values as for message); one
 *               named like a member above, or like an attribute before
 *               it, is dropped (and counted: the answer says so)
 *   client_field        last, as lp_httpbody adds it
 *
 * Each event then goes through send's checks (lp_event_check: the time
 * window, --require, --max-depth, --max-members; "_id" cut) and
 * --max-line. A record that cannot be mapped (a member of the wrong type,
 * a number out of range, a trace ID that is not 32 hex digits, nesting
 * deeper than the event may be) is rejected on its own, named by its
 * path: "resourceLogs[0].scopeLogs[1].logRecords[3]: timeUnixNano: not an
 * unsigned 64-bit integer". A request whose frame cannot be walked
 * (invalid JSON, resourceLogs not an array of objects, ...) is 400, and
 * nothing of it is stored: OTLP's answer for a permanent error.
 *
 * The answer is OTLP's ExportLogsServiceResponse: {} when every record
 * was taken, else {"partialSuccess":{"rejectedLogRecords":"N",
 * "errorMessage":"..."}} (an int64 is a string in proto3's JSON), the
 * message naming the first records rejected and how many more; with
 * rejectedLogRecords "0" and a message when attributes were dropped (a
 * warning, as the specification allows).
 *
 * The body is parsed in place (lp_httpbody's LP_BODY_WHOLE keeps it);
 * one event is built at a time into a buffer the object keeps, so that
 * nothing is allocated per record once the buffers have grown.
 */

/* One event made of a log record, or one record rejected. */
struct lp_otlp_item {
    const char *where;          /* "resourceLogs[0].scopeLogs[0].
                                   logRecords[2]" */
    uint64_t record;            /* the record's number in the request,
                                   from 0 */
    const char *txt;            /* the event as built; NULL when rejected
                                   before it was */
    size_t n;
    const struct lp_jevent *ev; /* an event: its scan; NULL: rejected */
    const char *stored;         /* an event: the bytes to store */
    size_t stored_len;
    const char *code;           /* rejected: "otlp", or lp_event_check's */
    const char *msg;            /* rejected: what is wrong */
};

struct lp_otlp_conf {
    const struct lp_event_rules *rules;     /* borrowed */
    uint64_t max_line;          /* an event's bytes (0: 1 MiB) */
    const char *time_field;     /* NULL: "timestamp" */
    const char *client_field;   /* as lp_httpbody_conf's */
    void (*item)(void *ctx, const struct lp_otlp_item *it);
    void *ctx;
};

struct lp_otlp;

/* NULL with err when out of memory. c is copied; what it points to is
 * borrowed. */
struct lp_otlp *lp_otlp_new(const struct lp_otlp_conf *c, char *err);
void lp_otlp_free(struct lp_otlp *o);

/*
 * Maps the request s[0..n) at wall-clock now (ms) for client (NULL: none),
 * handing each event or rejected record to c->item in order. Returns 200
 * (lp_otlp_counts says what was taken), 400 with lp_otlp_error (nothing
 * may be stored), or 500 (out of memory).
 */
int lp_otlp_map(struct lp_otlp *o, const char *s, size_t n, int64_t now,
                const char *client);

/* Why lp_otlp_map did not return 200; borrowed until the next map. */
const char *lp_otlp_error(const struct lp_otlp *o);

/* An event handed to item, refused after all by its caller (over a rate
 * limit): counted rejected, with msg, in the answer. */
void lp_otlp_refuse(struct lp_otlp *o, const char *where, const char *msg);

/* Records taken and rejected by the last map, attributes dropped. */
void lp_otlp_counts(const struct lp_otlp *o, uint64_t *accepted,
                    uint64_t *rejected, uint64_t *dropped);

/* Appends the ExportLogsServiceResponse of the last map to out. Returns
 * 0, or -1 when out of memory. */
int lp_otlp_answer(const struct lp_otlp *o, struct lp_buf *out);

/* Appends OTLP's body of a failed request, a google.rpc.Status:
 * {"code":C,"message":"msg"} (C: 3 INVALID_ARGUMENT for a 400, 8
 * RESOURCE_EXHAUSTED for 429, 14 UNAVAILABLE for 503, ...). Returns 0 or
 * -1. */
int lp_otlp_status(struct lp_buf *out, int code, const char *msg);

#endif
