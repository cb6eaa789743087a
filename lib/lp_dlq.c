/* lp_dlq.c -- the dead letter record: its struct, encoded, decoded, moved */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_dlq.h"
#include "lp_json.h"
#include "lp_resp.h"
#include "lp_time.h"

/*
 * XADD to the DLQ, then XACK, as one script: redis.call raises on an error,
 * so when the XADD fails (WRONGTYPE, OOM) the XACK never runs and the entry
 * stays pending. MULTI/EXEC would not do: it runs the XACK even when the
 * XADD inside it fails at run time.
 * KEYS: stream, dlq. ARGV: group, id, then the DLQ entry's field/values.
 */
static const char move_script[] =
    "local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "return id\n";

/*
 * Reads entry ARGV[1] of the DLQ KEYS[1]; XADDs its data to KEYS[2], its
 * source_stream (or ARGV[2] when it names none, as the caller read it from
 * the page: entries never change, and IDs are never reused), and XDELs it,
 * in one script. ARGV[3], when given, is the name of a sharded stream:
 * an entry whose source_stream names it goes to KEYS[2], the shard of the
 * DLQ it is in. Both keys are declared, as Redis asks of scripts. Returns
 * {stream, new id}, or false when the entry is gone already.
 */
static const char retry_script[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])\n"
    "if #e == 0 then return false end\n"
    "local f, data, src, cut = e[1][2]\n"
    "for i = 1, #f, 2 do\n"
    "  if f[i] == 'data' then data = data or f[i + 1]\n"
    "  elseif f[i] == 'source_stream' then src = f[i + 1]\n"
    "  elseif f[i] == 'truncated' then cut = f[i + 1] end\n"
    "end\n"
    "if data == nil then return redis.error_reply('ERR no data field') end\n"
    "if cut ~= nil then\n"
    "  return redis.error_reply('ERR its data was cut from ' .. cut ..\n"
    "    ' bytes (truncated): not the whole event')\n"
    "end\n"
    "if src == nil or src == '' then src = ARGV[2]\n"
    "elseif ARGV[3] and src == ARGV[3] then src = KEYS[2] end\n"
    "if src ~= KEYS[2] then\n"
    "  return redis.error_reply('ERR source_stream is not ' .. KEYS[2])\n"
    "end\n"
    "local id = redis.call('XADD', src, '*', 'data', data)\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    "return {src, id}\n";

/* The fields, in the order written; the index is the LP_DLQ_* bit's. */
enum { F_DATA, F_ERROR, F_DETAIL, F_STAGE, F_SOURCE_STREAM, F_SOURCE_ID,
       F_DELIVERIES, F_CONSUMER, F_FAILED_AT, F_TRUNCATED, F_N };

static const struct {
    const char *name;
    size_t len;
} field[F_N] = {
    { "data", 4 }, { "error", 5 }, { "detail", 6 }, { "stage", 5 },
    { "source_stream", 13 }, { "source_id", 9 }, { "deliveries", 10 },
    { "consumer", 8 }, { "failed_at", 9 }, { "truncated", 9 },
};

/* ---- encoding ----------------------------------------------------------- */

/* One RESP bulk string (lp_resp, the one encoder). */
static int bulk(struct lp_buf *b, const char *p, size_t n)
{
    return lp_resp_bulk(b, p, n);
}

static int bulks(struct lp_buf *b, const char *s)
{
    return bulk(b, s, strlen(s));
}

static int bulk_str(struct lp_buf *b, struct lp_dlq_str v)
{
    return bulk(b, v.p, v.p ? v.len : 0);
}

/* A number in decimal, as the tools formatted it ("%u", "%lld", "%zu") */
static int bulk_num(struct lp_buf *b, long long v, int is_signed)
{
    char s[24];

    return bulk(b, s, (size_t)snprintf(s, sizeof s, is_signed ? "%lld"
                                       : "%llu", v));
}

/* The strings lp_dlq_encode appends. */
static int nstrings(const struct lp_dlq_rec *rec)
{
    return rec->truncated ? 2 * F_N : 2 * (F_N - 1);
}

/* RESP's array header: *n */
static int header(struct lp_buf *b, int n)
{
    return lp_resp_head(b, n);
}

/* The field/value pairs; -1 when out of memory (b cut anywhere). */
static int pairs(const struct lp_dlq_rec *rec, struct lp_buf *b)
{
    const struct lp_dlq_str *s[F_N] = {
        [F_DATA] = &rec->data, [F_ERROR] = &rec->error,
        [F_DETAIL] = &rec->detail, [F_STAGE] = &rec->stage,
        [F_SOURCE_STREAM] = &rec->source_stream,
        [F_SOURCE_ID] = &rec->source_id, [F_CONSUMER] = &rec->consumer,
    };

    for (int k = 0; k < F_N; k++) {
        int rc;
        if (k == F_TRUNCATED && rec->truncated == 0)
            break;
        if (bulk(b, field[k].name, field[k].len) < 0)
            return -1;
        if (k == F_DELIVERIES)
            rc = bulk_num(b, (long long)rec->deliveries, 0);
        else if (k == F_FAILED_AT)
            rc = bulk_num(b, (long long)rec->failed_at, 1);
        else if (k == F_TRUNCATED)
            rc = bulk_num(b, (long long)rec->truncated, 0);
        else
            rc = bulk_str(b, *s[k]);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int lp_dlq_encode(const struct lp_dlq_rec *rec, struct lp_buf *b)
{
    size_t len = b->len;

    if (pairs(rec, b) < 0) {
        b->len = len;
        return -1;
    }
    return nstrings(rec);
}

int lp_dlq_encode_xadd(const struct lp_dlq_rec *rec, const char *dlq,
                       struct lp_buf *b)
{
    size_t len = b->len;

    if (header(b, 3 + nstrings(rec)) < 0 || bulks(b, "XADD") < 0 ||
        bulks(b, dlq) < 0 || bulks(b, "*") < 0 || pairs(rec, b) < 0) {
        b->len = len;
        return -1;
    }
    return 0;
}

int lp_dlq_encode_move(const struct lp_dlq_rec *rec, const char *dlq,
                       const char *group, struct lp_buf *b)
{
    size_t len = b->len;

    if (header(b, 7 + nstrings(rec)) < 0 || bulks(b, "EVAL") < 0 ||
        bulk(b, move_script, sizeof move_script - 1) < 0 ||
        bulks(b, "2") < 0 || bulk_str(b, rec->source_stream) < 0 ||
        bulks(b, dlq) < 0 || bulks(b, group) < 0 ||
        bulk_str(b, rec->source_id) < 0 || pairs(rec, b) < 0) {
        b->len = len;
        return -1;
    }
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* A decimal number JSON takes as it is: digits, no leading zero. */
static int json_uint(const char *v, size_t vl)
{
    return vl > 0 && vl < 16 && strspn(v, "0123456789") >= vl &&
           (v[0] != '0' || vl == 1);
}

/* v[0..vl), a json_uint: its value. */
static uint64_t uint_of(const char *v, size_t vl)
{
    uint64_t n = 0;

    for (size_t i = 0; i < vl; i++)
        n = n * 10 + (uint64_t)(v[i] - '0');
    return n;
}

int lp_dlq_decode(const struct lp_entry *e, struct lp_dlq_rec *rec)
{
    struct lp_dlq_str *s[F_N] = {
        [F_DATA] = &rec->data, [F_ERROR] = &rec->error,
        [F_DETAIL] = &rec->detail, [F_STAGE] = &rec->stage,
        [F_SOURCE_STREAM] = &rec->source_stream,
        [F_SOURCE_ID] = &rec->source_id, [F_CONSUMER] = &rec->consumer,
    };

    memset(rec, 0, sizeof *rec);
    if (e->fields == NULL)
        return -1;
    for (size_t i = 0; i < e->nfields; i++) {
        const char *f, *v;
        size_t fl, vl;
        int k;
        lp_entry_pair(e, i, &f, &fl, &v, &vl);
        for (k = 0; k < F_N; k++)
            if (fl == field[k].len && memcmp(f, field[k].name, fl) == 0)
                break;
        if (k == F_N || ((rec->has | rec->bad) & (1u << k)))
            continue;           /* another name, or not the first */
        if (s[k]) {
            s[k]->p = v;
            s[k]->len = vl;
        } else if (!json_uint(v, vl)) {
            rec->bad |= 1u << k;
            continue;
        } else if (k == F_DELIVERIES) {
            rec->deliveries = uint_of(v, vl);
        } else if (k == F_FAILED_AT) {
            rec->failed_at = (int64_t)uint_of(v, vl);
        } else {
            rec->truncated = uint_of(v, vl);
        }
        rec->has |= 1u << k;
    }
    return 0;
}

/* Appends v[0..vl) as it is, without the white space around it. */
static int add_trimmed(struct lp_buf *b, const char *v, size_t vl)
{
    while (vl && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\n' ||
                  v[vl - 1] == '\r' || v[vl - 1] == '\t'))
        vl--;
    return lp_buf_add(b, v, vl);
}

int lp_dlq_json(const struct lp_entry *e, struct lp_buf *b)
{
    int seen_data = 0, rc = 0;

    rc |= lp_buf_adds(b, "{\"id\":");
    rc |= lp_buf_add_jstr(b, e->id, e->idlen) < 0;
    for (size_t k = 0; k < e->nfields; k++) {
        const char *f, *v;
        size_t fl, vl;
        struct lp_jerr je;
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (fl == 4 && memcmp(f, "data", 4) == 0 && !seen_data) {
            seen_data = 1;
            if (lp_json_valid(v, vl, NULL, &je) == 0) {
                /* as it is: its bytes are the event's */
                rc |= lp_buf_adds(b, ",\"event\":");
                rc |= add_trimmed(b, v, vl);
            } else {
                rc |= lp_buf_adds(b, ",\"data\":");
                rc |= lp_buf_add_jstr(b, v, vl) < 0;
            }
            continue;
        }
        rc |= lp_buf_addc(b, ',');
        if ((fl == 2 && memcmp(f, "id", 2) == 0) ||
            (fl == 5 && memcmp(f, "event", 5) == 0) ||
            (fl == 4 && memcmp(f, "data", 4) == 0)) {
            char k2[16];
            snprintf(k2, sizeof k2, "field:%.*s", (int)fl, f);
            rc |= lp_buf_add_jstr(b, k2, strlen(k2)) < 0;
        } else {
            rc |= lp_buf_add_jstr(b, f, fl) < 0;
        }
        rc |= lp_buf_addc(b, ':');
        if (fl == 10 && memcmp(f, "deliveries", 10) == 0 &&
            json_uint(v, vl)) {
            rc |= lp_buf_add(b, v, vl);
        } else if (fl == 9 && memcmp(f, "failed_at", 9) == 0 &&
                   json_uint(v, vl) &&
                   (int64_t)uint_of(v, vl) <= LP_TIME_MAX) {
            char ts[40];
            lp_time_format((int64_t)uint_of(v, vl), ts);
            rc |= lp_buf_add_jstr(b, ts, strlen(ts)) < 0;
        } else {
            rc |= lp_buf_add_jstr(b, v, vl) < 0;
        }
    }
    rc |= lp_buf_addc(b, '}');
    return rc ? -1 : 0;
}

/* ---- in Redis ------------------------------------------------------------ */

int lp_dlq_move_append(struct lp_redis *r, const struct lp_dlq_rec *rec,
                       const char *dlq, const char *group,
                       struct lp_buf *scratch)
{
    scratch->len = 0;
    if (lp_dlq_encode_move(rec, dlq, group, scratch) < 0)
        return -1;
    return lp_redis_append_raw(r, scratch->p, scratch->len);
}

int lp_dlq_retry_append(struct lp_redis *r, const char *dlq, const char *id,
                        const char *target, const char *fallback)
{
    return lp_dlq_retry_append_shard(r, dlq, id, target, fallback, NULL);
}

int lp_dlq_retry_append_shard(struct lp_redis *r, const char *dlq,
                              const char *id, const char *target,
                              const char *fallback, const char *base)
{
    const char *argv[8] = { "EVAL", retry_script, "2", dlq, target, id,
                            fallback, base };
    size_t lens[8];
    int argc = base ? 8 : 7;

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return lp_redis_append(r, argc, argv, lens);
}

int lp_dlq_purge_append(struct lp_redis *r, const char *dlq, const char *id)
{
    const char *argv[3] = { "XDEL", dlq, id };
    size_t lens[3] = { 4, strlen(dlq), strlen(id) };

    return lp_redis_append(r, 3, argv, lens);
}

/* A DLQ command's answer rep (taken; NULL: none came, e->msg says why):
 * 0 with *out, which is no error reply, or -1 with e (a script's error
 * without where in the script it stood). */
static int dlq_judge(struct lp_reply *rep, const char *cmd,
                     struct lp_reply **out, struct lp_stream_err *e)
{
    char *cut;

    *out = NULL;
    e->cmd = cmd;
    if (rep == NULL) {
        e->code = LP_STREAM_EIO;
        return -1;
    }
    e->code = 0;
    e->msg[0] = '\0';
    if (lp_reply_type(rep) != LP_REPLY_ERROR) {
        *out = rep;
        return 0;
    }
    e->code = lp_reply_error_class(rep);
    lp_reply_text(rep, e->msg, 300);
    lp_reply_free(rep);
    if ((cut = strstr(e->msg, " script:")) != NULL)
        *cut = '\0';
    return -1;
}

/* The answer to the oldest DLQ command queued: as dlq_judge. */
static int dlq_reply(struct lp_redis *r, const char *cmd,
                     struct lp_reply **rep, struct lp_stream_err *e)
{
    struct lp_reply *x = NULL;

    e->msg[0] = '\0';
    if (lp_redis_reply(r, &x, e->msg) < 0)
        x = NULL;
    return dlq_judge(x, cmd, rep, e);
}

/* An ID inside a reply into id ("" when it is no string that fits). */
static void copy_id(const struct lp_reply *x, char id[LP_STREAM_IDLEN])
{
    size_t n;
    const char *s = x ? lp_reply_str(x, &n) : NULL;

    id[0] = '\0';
    if (s && n < LP_STREAM_IDLEN) {
        memcpy(id, s, n);
        id[n] = '\0';
    }
}

int lp_dlq_move_reply(struct lp_redis *r, char dlq_id[LP_STREAM_IDLEN],
                      struct lp_stream_err *e)
{
    struct lp_reply *rep;
    int rc = 0;

    dlq_id[0] = '\0';
    if (dlq_reply(r, "EVAL", &rep, e) < 0)
        return -1;
    if (lp_reply_type(rep) == LP_REPLY_STRING) {
        copy_id(rep, dlq_id);
    } else {
        e->code = LP_STREAM_ESHAPE;
        snprintf(e->msg, sizeof e->msg, "unexpected reply");
        rc = -1;
    }
    lp_reply_free(rep);
    return rc;
}

int lp_dlq_retry_judge(struct lp_reply *x, char new_id[LP_STREAM_IDLEN],
                       struct lp_stream_err *e)
{
    struct lp_reply *rep;
    int rc;

    new_id[0] = '\0';
    if (dlq_judge(x, "EVAL", &rep, e) < 0)
        return -1;
    /* {stream, new id}: the stream is the target, the script saw to it */
    rc = lp_reply_type(rep) == LP_REPLY_ARRAY;
    if (rc)
        copy_id(lp_reply_at(rep, 1), new_id);
    lp_reply_free(rep);
    return rc;
}

int lp_dlq_retry_reply(struct lp_redis *r, char new_id[LP_STREAM_IDLEN],
                       struct lp_stream_err *e)
{
    struct lp_reply *x = NULL;

    e->msg[0] = '\0';
    if (lp_redis_reply(r, &x, e->msg) < 0)
        x = NULL;
    return lp_dlq_retry_judge(x, new_id, e);
}

int lp_dlq_purge_judge(struct lp_reply *x, struct lp_stream_err *e)
{
    struct lp_reply *rep;
    int rc;

    if (dlq_judge(x, "XDEL", &rep, e) < 0)
        return -1;
    rc = lp_reply_int(rep) == 1;
    lp_reply_free(rep);
    return rc;
}

int lp_dlq_purge_reply(struct lp_redis *r, struct lp_stream_err *e)
{
    struct lp_reply *x = NULL;

    e->msg[0] = '\0';
    if (lp_redis_reply(r, &x, e->msg) < 0)
        x = NULL;
    return lp_dlq_purge_judge(x, e);
}
