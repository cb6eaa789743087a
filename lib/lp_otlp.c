/* lp_otlp.c -- OTLP/HTTP JSON logs (ExportLogsServiceRequest) into events */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_otlp.h"
#include "lp_parse.h"
#include "lp_time.h"

#define MSGS 3                  /* records the answer names */
#define DEPTH_CAP 1024          /* nesting of a request: lp_json recurses */

/* the members of each message of the request, as lp_jkeys indexes; each
 * camelCase name is followed by its proto name */
enum { T_RL, T_RL_ };
enum { R_RES, R_SL, R_SL_ };
enum { A_ATTR };
enum { S_LR, S_LR_ };
enum {
    L_TIME, L_TIME_, L_OBS, L_OBS_, L_SEVN, L_SEVN_, L_SEVT, L_SEVT_,
    L_BODY, L_ATTR, L_TRACE, L_TRACE_, L_SPAN, L_SPAN_
};
enum { KV_KEY, KV_VALUE };
enum {
    V_STR, V_STR_, V_BOOL, V_BOOL_, V_INT, V_INT_, V_DBL, V_DBL_,
    V_ARR, V_ARR_, V_KV, V_KV_, V_BYTES, V_BYTES_, V_N
};
enum { VS_VALUES };

struct lp_otlp {
    struct lp_otlp_conf c;
    struct lp_jkeys top, rl, res, sl, rec, kv, any, vals;
    struct lp_jlimits lim;      /* the request's: depth only */
    int maxdepth;               /* an event's (--max-depth) */
    int status;
    char error[LP_ERRLEN];
    char bad[LP_ERRLEN];        /* why the record in hand is rejected */
    uint64_t accepted, rejected, dropped, record;
    int64_t now;
    struct lp_buf out;          /* the event being built */
    struct lp_buf svc;          /* the resource's service, as JSON */
    struct lp_buf store;        /* its stored form, when cut */
    struct lp_buf client;       /* ,"field":"name" */
    struct lp_buf msgs;         /* the first MSGS rejections */
    int nmsgs;
    /* the record's member names so far, decoded: an open-addressing set
     * of offsets into keys (each name there as u32 length, bytes) */
    struct lp_buf keys;
    uint32_t *set;
    size_t setcap, setn;
};

/* ---- the object ---------------------------------------------------------- */

static void add2(struct lp_jkeys *k, const char *camel, const char *proto)
{
    lp_jkeys_add(k, camel);
    if (proto)
        lp_jkeys_add(k, proto);
}

struct lp_otlp *lp_otlp_new(const struct lp_otlp_conf *c, char *err)
{
    struct lp_otlp *o = calloc(1, sizeof *o);

    if (o == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    o->c = *c;
    if (o->c.max_line == 0)
        o->c.max_line = 1024 * 1024;
    if (o->c.time_field == NULL)
        o->c.time_field = "timestamp";
    add2(&o->top, "resourceLogs", "resource_logs");
    lp_jkeys_add(&o->rl, "resource");
    add2(&o->rl, "scopeLogs", "scope_logs");
    lp_jkeys_add(&o->res, "attributes");
    add2(&o->sl, "logRecords", "log_records");
    add2(&o->rec, "timeUnixNano", "time_unix_nano");
    add2(&o->rec, "observedTimeUnixNano", "observed_time_unix_nano");
    add2(&o->rec, "severityNumber", "severity_number");
    add2(&o->rec, "severityText", "severity_text");
    lp_jkeys_add(&o->rec, "body");
    lp_jkeys_add(&o->rec, "attributes");
    add2(&o->rec, "traceId", "trace_id");
    add2(&o->rec, "spanId", "span_id");
    lp_jkeys_add(&o->kv, "key");
    lp_jkeys_add(&o->kv, "value");
    add2(&o->any, "stringValue", "string_value");
    add2(&o->any, "boolValue", "bool_value");
    add2(&o->any, "intValue", "int_value");
    add2(&o->any, "doubleValue", "double_value");
    add2(&o->any, "arrayValue", "array_value");
    add2(&o->any, "kvlistValue", "kvlist_value");
    add2(&o->any, "bytesValue", "bytes_value");
    lp_jkeys_add(&o->vals, "values");
    o->maxdepth = c->rules && c->rules->lim.depth > 0 ? c->rules->lim.depth :
        LP_JSON_DEPTH;
    /* an event level is at most four of the request's (kvlistValue,
     * values, the KeyValue, value), and the frame takes ten */
    o->lim.depth = o->maxdepth > (DEPTH_CAP - 16) / 4 ? DEPTH_CAP :
        4 * o->maxdepth + 16;
    o->lim.members = 0;
    return o;
}

void lp_otlp_free(struct lp_otlp *o)
{
    if (o == NULL)
        return;
    lp_buf_free(&o->out);
    lp_buf_free(&o->svc);
    lp_buf_free(&o->store);
    lp_buf_free(&o->client);
    lp_buf_free(&o->msgs);
    lp_buf_free(&o->keys);
    free(o->set);
    free(o);
}

/* ---- helpers ------------------------------------------------------------- */

static int bad(struct lp_otlp *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(struct lp_otlp *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->bad, sizeof o->bad, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct lp_otlp *o)
{
    o->status = 500;
    snprintf(o->error, sizeof o->error, "out of memory");
    return bad(o, "out of memory");
}

/* s[off..off+len), an object, scanned for k; spans made absolute.
 * Returns 0, or -1 when it is not an object. */
static int scan(const struct lp_otlp *o, const char *s, size_t off,
                size_t len, const struct lp_jkeys *k, struct lp_jevent *ev)
{
    struct lp_jerr je;

    if (lp_json_event(s + off, len, k, &o->lim, ev, &je) < 0)
        return -1;
    for (int i = 0; i < k->n; i++)
        if (ev->val[i].type != LP_JNONE)
            ev->val[i].off += (uint32_t)off;
    return 0;
}

static const struct lp_jval *pick(const struct lp_jevent *ev, int camel,
                                  int proto)
{
    return ev->val[camel].type != LP_JNONE ? &ev->val[camel] :
        &ev->val[proto];
}

static int add(struct lp_otlp *o, const void *p, size_t n)
{
    return lp_buf_add(&o->out, p, n) < 0 ? oom(o) : 0;
}

static int adds(struct lp_otlp *o, const char *s)
{
    return add(o, s, strlen(s));
}

static int span(struct lp_otlp *o, const char *s, const struct lp_jval *v)
{
    return add(o, s + v->off, v->len);
}

/* The value of v without its quotes, when a string; else as it is. */
static void text(const char *s, const struct lp_jval *v, const char **p,
                 size_t *n)
{
    *p = s + v->off;
    *n = v->len;
    if (v->type == LP_JSTRING) {
        (*p)++;
        *n -= 2;
    }
}

/* p[0..n) as decimal digits of an unsigned 64-bit integer. */
static int digits_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* An unsigned 64-bit integer: a number or a string of digits (proto3's
 * JSON writes 64-bit integers as strings, and reads both). */
static int get_u64(const char *s, const struct lp_jval *v, uint64_t *out)
{
    const char *p;
    size_t n;

    if (v->type != LP_JNUMBER && v->type != LP_JSTRING)
        return -1;
    text(s, v, &p, &n);
    return digits_u64(p, n, out);
}

/* A signed 64-bit integer: a number or a string, a "-" and digits. */
static int get_i64(const char *s, const struct lp_jval *v, int64_t *out)
{
    const char *p;
    size_t n;
    uint64_t x;
    int neg;

    if (v->type != LP_JNUMBER && v->type != LP_JSTRING)
        return -1;
    text(s, v, &p, &n);
    neg = n > 0 && p[0] == '-';
    if (digits_u64(p + neg, n - (size_t)neg, &x) < 0)
        return -1;
    if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

/* ---- AnyValue ------------------------------------------------------------ */

static int any(struct lp_otlp *o, const char *s, const struct lp_jval *v,
               int depth, const char *what);

/* A KeyValue list's values as an object's members (kvlistValue), or
 * AnyValues as an array's elements (arrayValue), at depth. */
static int list(struct lp_otlp *o, const char *s, const struct lp_jval *v,
                int depth, int kv, const char *what)
{
    struct lp_jevent ev;
    const struct lp_jval *vals;
    size_t pos = 0, eoff, elen;
    int type, k = 0;

    if (depth > o->maxdepth)
        return bad(o, "%s: nesting deeper than %d", what, o->maxdepth);
    if (v->type != LP_JOBJECT || scan(o, s, v->off, v->len, &o->vals,
                                      &ev) < 0)
        return bad(o, "%s: %s is not an object", what,
                   kv ? "kvlistValue" : "arrayValue");
    vals = &ev.val[VS_VALUES];
    if (adds(o, kv ? "{" : "[") < 0)
        return -1;
    if (vals->type != LP_JNONE && vals->type != LP_JNULL) {
        if (vals->type != LP_JARRAY)
            return bad(o, "%s: values is not an array", what);
        while (lp_json_array_next(s + vals->off, vals->len, &pos, &eoff,
                                  &elen, &type)) {
            struct lp_jval e = {
                .off = (uint32_t)(vals->off + eoff), .len = (uint32_t)elen,
                .type = (uint8_t)type,
            };
            if (k++ && adds(o, ",") < 0)
                return -1;
            if (!kv) {
                if (any(o, s, &e, depth + 1, what) < 0)
                    return -1;
                continue;
            }
            struct lp_jevent kev;
            if (type != LP_JOBJECT ||
                scan(o, s, e.off, e.len, &o->kv, &kev) < 0)
                return bad(o, "%s: a KeyValue is not an object", what);
            if (kev.val[KV_KEY].type != LP_JSTRING)
                return bad(o, "%s: a KeyValue's key is not a string", what);
            if (span(o, s, &kev.val[KV_KEY]) < 0 || adds(o, ":") < 0)
                return -1;
            if (kev.val[KV_VALUE].type == LP_JNONE) {
                if (adds(o, "null") < 0)
                    return -1;
            } else if (any(o, s, &kev.val[KV_VALUE], depth + 1, what) < 0) {
                return -1;
            }
        }
    }
    return adds(o, kv ? "}" : "]");
}

static int b64char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=' ||
        c == '-' || c == '_';
}

/* Appends the AnyValue v as JSON; depth: the level its value is at in
 * the event (lp_json's count: the event's members are at 2). */
static int any(struct lp_otlp *o, const char *s, const struct lp_jval *v,
               int depth, const char *what)
{
    struct lp_jevent ev;
    const struct lp_jval *x = NULL;
    int kind = -1, nkinds = 0;
    char num[32];

    if (v->type == LP_JNULL)
        return adds(o, "null");
    if (v->type != LP_JOBJECT || scan(o, s, v->off, v->len, &o->any,
                                      &ev) < 0)
        return bad(o, "%s: not an AnyValue object", what);
    for (int i = 0; i < V_N; i += 2) {
        const struct lp_jval *y = pick(&ev, i, i + 1);
        if (y->type != LP_JNONE) {
            x = y;
            kind = i;
            nkinds++;
        }
    }
    if (nkinds == 0)
        return adds(o, "null");         /* an empty AnyValue */
    if (nkinds > 1)
        return bad(o, "%s: an AnyValue with more than one value", what);
    switch (kind) {
    case V_STR:
        if (x->type != LP_JSTRING)
            return bad(o, "%s: stringValue is not a string", what);
        return span(o, s, x);
    case V_BOOL:
        if (x->type != LP_JTRUE && x->type != LP_JFALSE)
            return bad(o, "%s: boolValue is not true or false", what);
        return span(o, s, x);
    case V_INT: {
        int64_t i;
        if (get_i64(s, x, &i) < 0)
            return bad(o, "%s: intValue is not a 64-bit integer", what);
        snprintf(num, sizeof num, "%" PRId64, i);
        return adds(o, num);
    }
    case V_DBL: {
        const char *p;
        size_t n;
        struct lp_jerr je;
        if (x->type == LP_JNUMBER)
            return span(o, s, x);
        if (x->type != LP_JSTRING)
            return bad(o, "%s: doubleValue is not a number", what);
        text(s, x, &p, &n);
        /* proto3's JSON: NaN and the infinities as strings, which JSON
         * has no number for: kept as strings */
        if ((n == 3 && memcmp(p, "NaN", 3) == 0) ||
            (n == 8 && memcmp(p, "Infinity", 8) == 0) ||
            (n == 9 && memcmp(p, "-Infinity", 9) == 0))
            return span(o, s, x);
        if (n == 0 || !(p[0] == '-' || (p[0] >= '0' && p[0] <= '9')) ||
            lp_json_valid(p, n, NULL, &je) < 0)
            return bad(o, "%s: doubleValue is not a number", what);
        return add(o, p, n);
    }
    case V_ARR:
        return list(o, s, x, depth, 0, what);
    case V_KV:
        return list(o, s, x, depth, 1, what);
    default: {                          /* V_BYTES */
        const char *p;
        size_t n;
        if (x->type != LP_JSTRING)
            return bad(o, "%s: bytesValue is not a string", what);
        text(s, x, &p, &n);
        for (size_t i = 0; i < n; i++)
            if (!b64char((unsigned char)p[i]))
                return bad(o, "%s: bytesValue is not base64", what);
        if (depth > o->maxdepth)
            return bad(o, "%s: nesting deeper than %d", what, o->maxdepth);
        if (adds(o, "{\"base64\":") < 0 || span(o, s, x) < 0)
            return -1;
        return adds(o, "}");
    }
    }
}

/* ---- member names -------------------------------------------------------- */

static uint64_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static void names_reset(struct lp_otlp *o)
{
    o->keys.len = 0;
    o->setn = 0;
    if (o->set)
        memset(o->set, 0, o->setcap * sizeof *o->set);
}

static int set_put(struct lp_otlp *o, uint32_t at)
{
    uint32_t len;
    memcpy(&len, o->keys.p + at, 4);
    size_t i = hash(o->keys.p + at + 4, len) & (o->setcap - 1);

    while (o->set[i])
        i = (i + 1) & (o->setcap - 1);
    o->set[i] = at + 1;
    o->setn++;
    return 0;
}

/*
 * Adds the name p[0..n) (decoded) to the record's names. Returns 1 when
 * it is new, 0 when the record has it already, -1 when out of memory.
 */
static int name_new(struct lp_otlp *o, const char *p, size_t n)
{
    uint32_t len = (uint32_t)n;

    if (o->setcap == 0 || (o->setn + 1) * 2 > o->setcap) {
        size_t cap = o->setcap ? o->setcap * 2 : 64;
        uint32_t *set = calloc(cap, sizeof *set);
        if (set == NULL)
            return -1;
        free(o->set);
        o->set = set;
        o->setcap = cap;
        o->setn = 0;
        /* every name again */
        for (size_t at = 0; at < o->keys.len;) {
            uint32_t l;
            memcpy(&l, o->keys.p + at, 4);
            set_put(o, (uint32_t)at);
            at += 4 + l;
        }
    }
    for (size_t i = hash(p, n) & (o->setcap - 1); o->set[i];
         i = (i + 1) & (o->setcap - 1)) {
        uint32_t at = o->set[i] - 1, l;
        memcpy(&l, o->keys.p + at, 4);
        if (l == len && memcmp(o->keys.p + at + 4, p, n) == 0)
            return 0;
    }
    size_t at = o->keys.len;
    if (lp_buf_add(&o->keys, &len, 4) < 0 || lp_buf_add(&o->keys, p, n) < 0)
        return -1;
    set_put(o, (uint32_t)at);
    return 1;
}

/* The member named by the JSON string v, if new (decoded). */
static int key_new(struct lp_otlp *o, const char *s, const struct lp_jval *v)
{
    long n;

    if (!v->esc)
        return name_new(o, s + v->off + 1, v->len - 2);
    if (lp_buf_reserve(&o->store, v->len) < 0)
        return -1;
    n = lp_json_unescape(s, v, o->store.p, v->len);
    if (n < 0)
        return -1;
    return name_new(o, o->store.p, (size_t)n);
}

/* ---- a record ------------------------------------------------------------ */

static const char *const sev_names[] = {
    "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"
};

/* A member name and its colon, with a comma before all but the first. */
static int member(struct lp_otlp *o, const char *name)
{
    if (o->out.len > 1 && adds(o, ",") < 0)
        return -1;
    if (lp_buf_add_jstr(&o->out, name, strlen(name)) < 0)
        return oom(o);
    if (name_new(o, name, strlen(name)) < 0)
        return oom(o);
    return adds(o, ":");
}

static int hexid(struct lp_otlp *o, const char *s, const struct lp_jval *v,
                 const char *field, const char *name, size_t digits)
{
    const char *p;
    size_t n;
    char hex[40];

    if (v->type == LP_JNONE || v->type == LP_JNULL)
        return 0;
    if (v->type != LP_JSTRING)
        return bad(o, "%s: not a string", field);
    text(s, v, &p, &n);
    if (n == 0)
        return 0;
    if (n != digits)
        return bad(o, "%s: not %zu hex digits", field, digits);
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return bad(o, "%s: not %zu hex digits", field, digits);
        hex[i] = c;
    }
    if (member(o, name) < 0 || adds(o, "\"") < 0 || add(o, hex, n) < 0)
        return -1;
    return adds(o, "\"");
}

/* Builds the event of record r into o->out. Returns 0, or -1 with o->bad
 * (or o->status 500). */
static int build(struct lp_otlp *o, const char *s, const struct lp_jval *r)
{
    struct lp_jevent ev;
    const struct lp_jval *v;
    uint64_t ns = 0;

    o->out.len = 0;
    names_reset(o);
    if (r->type != LP_JOBJECT || scan(o, s, r->off, r->len, &o->rec, &ev) < 0)
        return bad(o, "not an object");
    if (adds(o, "{") < 0)
        return -1;
    /* timestamp */
    v = pick(&ev, L_TIME, L_TIME_);
    if (v->type != LP_JNONE && get_u64(s, v, &ns) < 0)
        return bad(o, "timeUnixNano: not an unsigned 64-bit integer");
    if (ns == 0) {
        v = pick(&ev, L_OBS, L_OBS_);
        if (v->type != LP_JNONE && get_u64(s, v, &ns) < 0)
            return bad(o, "observedTimeUnixNano: not an unsigned 64-bit "
                       "integer");
    }
    if (ns) {
        struct lp_tm tm;
        char ts[48];
        lp_time_tm((int64_t)(ns / 1000000), &tm);
        snprintf(ts, sizeof ts, "\"%04d-%02d-%02dT%02d:%02d:%02d.%09uZ\"",
                 tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec,
                 (unsigned)(ns % 1000000000));
        if (member(o, o->c.time_field) < 0 || adds(o, ts) < 0)
            return -1;
    }
    /* level */
    v = pick(&ev, L_SEVT, L_SEVT_);
    if (v->type != LP_JNONE && v->type != LP_JNULL &&
        v->type != LP_JSTRING)
        return bad(o, "severityText: not a string");
    if (v->type == LP_JSTRING && v->len > 2) {
        if (member(o, "level") < 0 || span(o, s, v) < 0)
            return -1;
    } else {
        int64_t sev = 0;
        v = pick(&ev, L_SEVN, L_SEVN_);
        if (v->type != LP_JNONE && v->type != LP_JNULL &&
            (v->type != LP_JNUMBER || get_i64(s, v, &sev) < 0 || sev < 0 ||
             sev > 24))
            return bad(o, "severityNumber: not an integer from 0 to 24");
        if (sev > 0) {
            char lv[16];
            int base = (int)(sev - 1) / 4, step = (int)(sev - 1) % 4;
            if (step)
                snprintf(lv, sizeof lv, "\"%s%d\"", sev_names[base],
                         step + 1);
            else
                snprintf(lv, sizeof lv, "\"%s\"", sev_names[base]);
            if (member(o, "level") < 0 || adds(o, lv) < 0)
                return -1;
        }
    }
    /* message */
    v = &ev.val[L_BODY];
    if (v->type != LP_JNONE) {
        if (member(o, "message") < 0 || any(o, s, v, 2, "body") < 0)
            return -1;
    }
    if (o->svc.len) {
        if (member(o, "service") < 0 || add(o, o->svc.p, o->svc.len) < 0)
            return -1;
    }
    if (hexid(o, s, pick(&ev, L_TRACE, L_TRACE_), "traceId", "trace_id",
              32) < 0 ||
        hexid(o, s, pick(&ev, L_SPAN, L_SPAN_), "spanId", "span_id",
              16) < 0)
        return -1;
    if (o->c.client_field && o->client.len &&
        name_new(o, o->c.client_field, strlen(o->c.client_field)) < 0)
        return oom(o);
    /* attributes */
    v = &ev.val[L_ATTR];
    if (v->type != LP_JNONE && v->type != LP_JNULL) {
        size_t pos = 0, eoff, elen;
        int type, k = 0;
        if (v->type != LP_JARRAY)
            return bad(o, "attributes: not an array");
        while (lp_json_array_next(s + v->off, v->len, &pos, &eoff, &elen,
                                  &type)) {
            struct lp_jevent kev;
            char what[48];
            snprintf(what, sizeof what, "attributes[%d]", k++);
            if (type != LP_JOBJECT ||
                scan(o, s, v->off + eoff, elen, &o->kv, &kev) < 0)
                return bad(o, "%s: not an object", what);
            if (kev.val[KV_KEY].type != LP_JSTRING)
                return bad(o, "%s: key is not a string", what);
            int isnew = key_new(o, s, &kev.val[KV_KEY]);
            if (isnew < 0)
                return oom(o);
            if (isnew == 0) {
                o->dropped++;
                continue;
            }
            if (o->out.len > 1 && adds(o, ",") < 0)
                return -1;
            if (span(o, s, &kev.val[KV_KEY]) < 0 || adds(o, ":") < 0)
                return -1;
            if (kev.val[KV_VALUE].type == LP_JNONE) {
                if (adds(o, "null") < 0)
                    return -1;
            } else if (any(o, s, &kev.val[KV_VALUE], 2, what) < 0) {
                return -1;
            }
            if (o->out.len > o->c.max_line)
                break;
        }
    }
    if (o->client.len && add(o, o->client.p + (o->out.len == 1),
                             o->client.len - (o->out.len == 1)) < 0)
        return -1;
    return adds(o, "}");
}

static void note(struct lp_otlp *o, const char *where, const char *msg)
{
    o->rejected++;
    if (o->nmsgs >= MSGS)
        return;
    if (o->nmsgs++ &&
        lp_buf_adds(&o->msgs, "; ") < 0)
        return;
    if (lp_buf_adds(&o->msgs, where) < 0 || lp_buf_adds(&o->msgs, ": ") < 0)
        return;
    lp_buf_adds(&o->msgs, msg);
}

void lp_otlp_refuse(struct lp_otlp *o, const char *where, const char *msg)
{
    if (o->accepted > 0)
        o->accepted--;
    note(o, where, msg);
}

static void record(struct lp_otlp *o, const char *s, const struct lp_jval *r,
                   const char *where)
{
    struct lp_otlp_item it = { .where = where, .record = o->record++ };
    struct lp_jevent ev;
    struct lp_event_bad eb;

    if (build(o, s, r) < 0) {
        if (o->status != 200)
            return;
        it.code = "otlp";
        it.msg = o->bad;
        goto rejected;
    }
    it.txt = o->out.p;
    it.n = o->out.len;
    if (o->out.len > o->c.max_line) {
        snprintf(o->bad, sizeof o->bad, "longer than --max-line (%" PRIu64
                 " bytes)", o->c.max_line);
        it.code = "too-long";
        it.msg = o->bad;
        goto rejected;
    }
    if (lp_event_check(o->c.rules, o->out.p, o->out.len, o->now,
                       NULL, &ev, &eb) < 0) {
        it.code = eb.code;
        snprintf(o->bad, sizeof o->bad, "%s", eb.msg);
        it.msg = o->bad;
        goto rejected;
    }
    it.ev = &ev;
    it.stored = o->out.p;
    it.stored_len = o->out.len;
    if (ev.ncuts) {
        size_t cn = lp_json_cut_len(&ev, o->out.len);
        if (lp_buf_reserve(&o->store, cn) < 0) {
            oom(o);
            return;
        }
        lp_json_cut_copy(&ev, o->out.p, o->out.len, o->store.p);
        it.stored = o->store.p;
        it.stored_len = cn;
    }
    o->accepted++;
    if (o->c.item)
        o->c.item(o->c.ctx, &it);
    return;
rejected:
    note(o, where, it.msg);
    if (o->c.item)
        o->c.item(o->c.ctx, &it);
}

/* ---- the request --------------------------------------------------------- */

static int frame(struct lp_otlp *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int frame(struct lp_otlp *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->error, sizeof o->error, fmt, ap);
    va_end(ap);
    o->status = 400;
    return 400;
}

/* The resource's service.name, as JSON, into o->svc ("" without). */
static int service(struct lp_otlp *o, const char *s, const struct lp_jval *r,
                   size_t ri)
{
    struct lp_jevent ev;
    const struct lp_jval *a;
    size_t pos = 0, eoff, elen;
    int type, k = 0;

    o->svc.len = 0;
    if (r->type == LP_JNONE || r->type == LP_JNULL)
        return 0;
    if (r->type != LP_JOBJECT || scan(o, s, r->off, r->len, &o->res, &ev) < 0)
        return frame(o, "resourceLogs[%zu].resource: not an object", ri);
    a = &ev.val[A_ATTR];
    if (a->type == LP_JNONE || a->type == LP_JNULL)
        return 0;
    if (a->type != LP_JARRAY)
        return frame(o, "resourceLogs[%zu].resource.attributes: not an "
                     "array", ri);
    while (lp_json_array_next(s + a->off, a->len, &pos, &eoff, &elen,
                              &type)) {
        struct lp_jevent kev;
        char name[16];
        long n;
        k++;
        if (type != LP_JOBJECT ||
            scan(o, s, a->off + eoff, elen, &o->kv, &kev) < 0 ||
            kev.val[KV_KEY].type != LP_JSTRING)
            return frame(o, "resourceLogs[%zu].resource.attributes[%d]: not "
                         "a KeyValue", ri, k - 1);
        n = lp_json_unescape(s, &kev.val[KV_KEY], name, sizeof name);
        if (n != 12 || memcmp(name, "service.name", 12) != 0 ||
            kev.val[KV_VALUE].type == LP_JNONE)
            continue;
        /* built in o->out, then kept */
        o->out.len = 0;
        if (any(o, s, &kev.val[KV_VALUE], 2, "service.name") < 0) {
            if (o->status != 200)
                return o->status;
            return frame(o, "resourceLogs[%zu].resource: %s", ri, o->bad);
        }
        o->svc.len = 0;
        if (lp_buf_add(&o->svc, o->out.p, o->out.len) < 0)
            return oom(o), 500;
    }
    return 0;
}

int lp_otlp_map(struct lp_otlp *o, const char *s, size_t n, int64_t now,
                const char *client)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    const struct lp_jval *rls;
    size_t rpos = 0, roff, rlen;
    int rtype;
    size_t ri = 0;

    o->status = 200;
    o->error[0] = '\0';
    o->accepted = o->rejected = o->dropped = o->record = 0;
    o->msgs.len = 0;
    o->nmsgs = 0;
    o->now = now;
    o->client.len = 0;
    if (o->c.client_field && client) {
        if (lp_buf_addc(&o->client, ',') < 0 ||
            lp_buf_add_jstr(&o->client, o->c.client_field,
                            strlen(o->c.client_field)) < 0 ||
            lp_buf_addc(&o->client, ':') < 0 ||
            lp_buf_add_jstr(&o->client, client, strlen(client)) < 0)
            return oom(o), 500;
    }
    if (lp_json_event(s, n, &o->top, &o->lim, &ev, &je) < 0) {
        if (je.not_object)
            return frame(o, "the body is not a JSON object");
        return frame(o, "invalid JSON: %s", je.msg);
    }
    rls = pick(&ev, T_RL, T_RL_);
    if (rls->type == LP_JNONE || rls->type == LP_JNULL)
        return 200;
    if (rls->type != LP_JARRAY)
        return frame(o, "resourceLogs: not an array");
    /* the frame first, whole: a request that is 400 hands nothing over */
    for (int pass = 0; pass < 2; pass++) {
        rpos = 0;
        ri = 0;
        while (lp_json_array_next(s + rls->off, rls->len, &rpos, &roff,
                                  &rlen, &rtype)) {
            struct lp_jevent rev;
            const struct lp_jval *sls;
            size_t spos = 0, soff, slen, si = 0;
            int stype;
            if (rtype != LP_JOBJECT ||
                scan(o, s, rls->off + roff, rlen, &o->rl, &rev) < 0)
                return frame(o, "resourceLogs[%zu]: not an object", ri);
            if (service(o, s, &rev.val[R_RES], ri) != 0)
                return o->status;
            sls = pick(&rev, R_SL, R_SL_);
            if (sls->type != LP_JNONE && sls->type != LP_JNULL &&
                sls->type != LP_JARRAY)
                return frame(o, "resourceLogs[%zu].scopeLogs: not an array",
                             ri);
            while (sls->type == LP_JARRAY &&
                   lp_json_array_next(s + sls->off, sls->len, &spos, &soff,
                                      &slen, &stype)) {
                struct lp_jevent sev;
                const struct lp_jval *lrs;
                size_t lpos = 0, loff, llen, li = 0;
                int ltype;
                if (stype != LP_JOBJECT ||
                    scan(o, s, sls->off + soff, slen, &o->sl, &sev) < 0)
                    return frame(o, "resourceLogs[%zu].scopeLogs[%zu]: not "
                                 "an object", ri, si);
                lrs = pick(&sev, S_LR, S_LR_);
                if (lrs->type != LP_JNONE && lrs->type != LP_JNULL &&
                    lrs->type != LP_JARRAY)
                    return frame(o, "resourceLogs[%zu].scopeLogs[%zu]."
                                 "logRecords: not an array", ri, si);
                while (pass == 1 && lrs->type == LP_JARRAY &&
                       lp_json_array_next(s + lrs->off, lrs->len, &lpos,
                                          &loff, &llen, &ltype)) {
                    char where[96];
                    struct lp_jval r = {
                        .off = (uint32_t)(lrs->off + loff),
                        .len = (uint32_t)llen, .type = (uint8_t)ltype,
                    };
                    snprintf(where, sizeof where, "resourceLogs[%zu]."
                             "scopeLogs[%zu].logRecords[%zu]", ri, si, li++);
                    record(o, s, &r, where);
                    if (o->status != 200)
                        return o->status;
                }
                si++;
            }
            ri++;
        }
    }
    return o->status;
}

const char *lp_otlp_error(const struct lp_otlp *o)
{
    return o->error;
}

void lp_otlp_counts(const struct lp_otlp *o, uint64_t *accepted,
                    uint64_t *rejected, uint64_t *dropped)
{
    *accepted = o->accepted;
    *rejected = o->rejected;
    *dropped = o->dropped;
}

int lp_otlp_answer(const struct lp_otlp *o, struct lp_buf *out)
{
    char head[160];
    size_t start = out->len;

    if (o->rejected == 0 && o->dropped == 0)
        return lp_buf_adds(out, "{}");
    snprintf(head, sizeof head, "{\"partialSuccess\":{\"rejectedLogRecords\":"
             "\"%" PRIu64 "\",\"errorMessage\":", o->rejected);
    struct lp_buf m = { 0 };
    char tmp[160];
    int rc = -1;
    if (o->rejected) {
        snprintf(tmp, sizeof tmp, "%" PRIu64 " of %" PRIu64 " log records "
                 "rejected: ", o->rejected, o->record);
        if (lp_buf_adds(&m, tmp) < 0 ||
            (o->msgs.len && lp_buf_add(&m, o->msgs.p, o->msgs.len) < 0))
            goto out;
        if (o->rejected > (uint64_t)o->nmsgs) {
            snprintf(tmp, sizeof tmp, " (and %" PRIu64 " more)",
                     o->rejected - (uint64_t)o->nmsgs);
            if (lp_buf_adds(&m, tmp) < 0)
                goto out;
        }
    }
    if (o->dropped) {
        snprintf(tmp, sizeof tmp, "%s%" PRIu64 " attributes dropped: named "
                 "like a member the record maps to or like an attribute "
                 "before them", o->rejected ? "; " : "", o->dropped);
        if (lp_buf_adds(&m, tmp) < 0)
            goto out;
    }
    if (lp_buf_adds(out, head) < 0 ||
        lp_buf_add_jstr(out, m.p ? m.p : "", m.len) < 0 ||
        lp_buf_adds(out, "}}") < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        out->len = start;
    lp_buf_free(&m);
    return rc;
}

int lp_otlp_status(struct lp_buf *out, int code, const char *msg)
{
    char head[32];

    snprintf(head, sizeof head, "{\"code\":%d,\"message\":", code);
    if (lp_buf_adds(out, head) < 0 ||
        lp_buf_add_jstr(out, msg, strlen(msg)) < 0 ||
        lp_buf_adds(out, "}") < 0)
        return -1;
    return 0;
}
