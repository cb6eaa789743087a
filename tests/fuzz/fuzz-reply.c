/* fuzz-reply.c -- libFuzzer harness: walking Redis replies (lp_redis) */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_dlq.h"
#include "lp_json.h"
#include "lp_parse.h"
#include "lp_redis.h"

/*
 * The input is RESP bytes, as a server sends them; seeds are real replies
 * of Redis 7.0 to XREADGROUP, XRANGE, XAUTOCLAIM, XPENDING, XINFO, EXEC...
 *
 * Checks (abort() on failure):
 *  1. lp_reply_parse: 1 with a reply, 0 or -1 without one.
 *  2. Every accessor on every node of the reply tree stays inside it:
 *     lp_reply_str, _int, _len, _at (NULL past the end), _is_error, and
 *     lp_reply_text with buffers of every small size (NUL-terminated,
 *     within cap).
 *  3. On every array node, read as XREADGROUP (xrange 0) and as XRANGE
 *     (xrange 1) output: lp_reply_entries and lp_entry_get accept exactly
 *     the shapes an independent check accepts ([id, nil] or [id, [f, v,
 *     ...]] with string id, fields and values), lp_entry_pair and
 *     lp_entry_field give the pairs in order (the first match), and
 *     lp_stream_id_parse agrees with an independent parser of "ms[-seq]"
 *     (two decimal uint64).
 *  4. Every entry read as a dead letter: lp_dlq_decode finds what
 *     lp_entry_field finds (the first of each name), takes a number field
 *     only when it is 1 to 15 digits without a leading zero, and
 *     lp_dlq_json gives valid JSON.
 */

static const uint8_t *cur;
#define FUZZ_NAME "fuzz-reply"
#include "fuzz.h"

static volatile unsigned char sink;

static void touch(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink ^= (unsigned char)s[i];
}

/* "ms" or "ms-seq", each a decimal uint64: 0 and the values, or -1. */
static int id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
    uint64_t v[2] = { 0, 0 };
    size_t i = 0;

    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            unsigned d = (unsigned)(s[i] - '0');
            if (v[part] > (UINT64_MAX - d) / 10)
                return -1;
            v[part] = v[part] * 10 + d;
            i++;
        }
        if (i == start)
            return -1;
        if (i == n)
            break;
        if (part == 1 || s[i] != '-')
            return -1;
        i++;
        if (i == n)
            return -1;
    }
    *ms = v[0];
    *seq = v[1];
    return 0;
}

static void check_id(const char *s, size_t n)
{
    uint64_t a = 1, b = 2, c = 3, d = 4;
    int r = lp_stream_id_parse(s, n, &a, &b);
    int want = id_parse(s, n, &c, &d);

    CHECK(r == want, "lp_stream_id_parse(\"%.*s\") gives %d, want %d",
          (int)(n > 60 ? 60 : n), s, r, want);
    if (r == 0)
        CHECK(a == c && b == d, "lp_stream_id_parse(\"%.*s\") gives %" PRIu64
              "-%" PRIu64 ", want %" PRIu64 "-%" PRIu64, (int)n, s, a, b, c, d);
}

/* The round trip: any two uint64 printed as an ID parse back. */
static void check_id_roundtrip(uint64_t ms, uint64_t seq)
{
    char buf[64];
    uint64_t a, b;
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "-%" PRIu64, ms, seq);

    CHECK(lp_stream_id_parse(buf, (size_t)n, &a, &b) == 0 && a == ms &&
          b == seq, "stream ID %s does not parse back", buf);
}

static int is_str(const struct lp_reply *r)
{
    return r != NULL && lp_reply_type(r) == LP_REPLY_STRING;
}

/* Is en an entry: [string id, nil] or [string id, [string...] even]? */
static int entry_ok(const struct lp_reply *en)
{
    const struct lp_reply *f;

    if (lp_reply_type(en) != LP_REPLY_ARRAY || lp_reply_len(en) != 2 ||
        !is_str(lp_reply_at(en, 0)))
        return 0;
    f = lp_reply_at(en, 1);
    if (lp_reply_type(f) == LP_REPLY_NIL)
        return 1;
    if (lp_reply_type(f) != LP_REPLY_ARRAY || lp_reply_len(f) % 2)
        return 0;
    for (size_t k = 0; k < lp_reply_len(f); k++)
        if (!is_str(lp_reply_at(f, k)))
            return 0;
    return 1;
}

static struct lp_buf json;

/* Check 4: entry e as a dead letter. */
static void check_dlq(const struct lp_entry *e)
{
    static const char *const str[] = { "data", "error", "detail", "stage",
                                       "source_stream", "source_id",
                                       "consumer" };
    static const char *const num[] = { "deliveries", "failed_at",
                                       "truncated" };
    static const unsigned numbit[] = { LP_DLQ_DELIVERIES, LP_DLQ_FAILED_AT,
                                       LP_DLQ_TRUNCATED };
    /* one level deeper than the event, which met the default limits */
    static const struct lp_jlimits lim = { LP_JSON_DEPTH + 1, 0 };
    struct lp_dlq_rec rec;
    struct lp_jerr je;

    CHECK(lp_dlq_decode(e, &rec) == 0, "lp_dlq_decode refuses an entry");
    const struct lp_dlq_str *got[] = { &rec.data, &rec.error, &rec.detail,
                                       &rec.stage, &rec.source_stream,
                                       &rec.source_id, &rec.consumer };
    for (int k = 0; k < 7; k++) {
        size_t vl;
        const char *v = lp_entry_field(e, str[k], strlen(str[k]), &vl);
        CHECK(got[k]->p == v && (v == NULL || got[k]->len == vl),
              "lp_dlq_decode: %s is not the first field", str[k]);
    }
    for (int k = 0; k < 3; k++) {
        size_t vl;
        const char *v = lp_entry_field(e, num[k], strlen(num[k]), &vl);
        int good = v && vl >= 1 && vl <= 15 &&
                   strspn(v, "0123456789") >= vl && (v[0] != '0' || vl == 1);
        CHECK(!!(rec.has & numbit[k]) == good &&
              !!(rec.bad & numbit[k]) == (v && !good),
              "lp_dlq_decode: %s taken wrongly", num[k]);
    }
    json.len = 0;
    CHECK(lp_dlq_json(e, &json) == 0, "lp_dlq_json failed");
    CHECK(lp_json_valid(json.p, json.len, &lim, &je) == 0,
          "lp_dlq_json gives invalid JSON: %.*s", (int)json.len, json.p);
}

static void check_entries(const struct lp_reply *entries)
{
    char err[LP_ERRLEN];

    for (size_t i = 0; i <= lp_reply_len(entries); i++) {
        struct lp_entry e;
        const struct lp_reply *en = lp_reply_at(entries, i);
        int r = lp_entry_get(entries, i, &e, err);
        int want = en != NULL && entry_ok(en);
        size_t idl;
        const char *id;

        CHECK(r == (want ? 0 : -1), "lp_entry_get(%zu) gives %d, want %d", i,
              r, want ? 0 : -1);
        if (r < 0)
            continue;
        id = lp_reply_str(lp_reply_at(en, 0), &idl);
        CHECK(e.id == id && e.idlen == idl, "entry %zu: wrong id", i);
        check_id(e.id, e.idlen);
        if (lp_reply_type(lp_reply_at(en, 1)) == LP_REPLY_NIL) {
            CHECK(e.fields == NULL && e.nfields == 0,
                  "entry %zu: nil fields not reported as deleted", i);
            continue;
        }
        CHECK(e.fields == lp_reply_at(en, 1) &&
              e.nfields * 2 == lp_reply_len(e.fields),
              "entry %zu: wrong fields", i);
        for (size_t k = 0; k < e.nfields; k++) {
            const char *f, *v, *fv;
            size_t fl, vl, fvl, wl, wvl;
            const char *wf = lp_reply_str(lp_reply_at(e.fields, 2 * k), &wl);
            const char *wv = lp_reply_str(lp_reply_at(e.fields, 2 * k + 1),
                                          &wvl);
            lp_entry_pair(&e, k, &f, &fl, &v, &vl);
            CHECK(f == wf && fl == wl && v == wv && vl == wvl,
                  "entry %zu: pair %zu differs", i, k);
            touch(f, fl);
            touch(v, vl);
            /* lp_entry_field finds the first pair of that name */
            fv = lp_entry_field(&e, f, fl, &fvl);
            for (size_t j = 0; j <= k; j++) {
                const char *f2, *v2;
                size_t fl2, vl2;
                lp_entry_pair(&e, j, &f2, &fl2, &v2, &vl2);
                if (fl2 == fl && memcmp(f2, f, fl) == 0) {
                    CHECK(fv == v2 && fvl == vl2,
                          "entry %zu: lp_entry_field misses pair %zu", i, j);
                    break;
                }
            }
        }
        lp_entry_field(&e, "data", 4, &idl);
        check_dlq(&e);
    }
}

static void walk(const struct lp_reply *r, int depth)
{
    char err[LP_ERRLEN], small[16];
    int t = lp_reply_type(r);
    size_t len = 99;
    const char *s = lp_reply_str(r, &len);

    CHECK(t >= LP_REPLY_STRING && t <= LP_REPLY_ERROR, "reply type %d", t);
    if (t == LP_REPLY_STRING || t == LP_REPLY_STATUS || t == LP_REPLY_ERROR) {
        CHECK(s != NULL && s[len] == '\0', "string reply not terminated");
        touch(s, len);
        check_id(s, len);
    } else {
        CHECK(s == NULL && len == 0, "lp_reply_str on a non-string");
    }
    if (t != LP_REPLY_INTEGER)
        CHECK(lp_reply_int(r) == 0, "lp_reply_int on a non-integer");
    lp_reply_is_error(r, "NOGROUP");
    lp_reply_is_error(r, "");
    for (size_t cap = 1; cap <= sizeof small; cap++) {
        char *b = malloc(cap);  /* exact size: ASan sees an overflow */
        const char *o = lp_reply_text(r, b, cap);
        CHECK(o == b && memchr(b, '\0', cap) != NULL,
              "lp_reply_text: not terminated in %zu bytes", cap);
        free(b);
    }
    lp_reply_text(r, small, sizeof small);
    if (t != LP_REPLY_ARRAY) {
        const struct lp_reply *en = (const struct lp_reply *)1;
        CHECK(lp_reply_len(r) == 0 && lp_reply_at(r, 0) == NULL,
              "lp_reply_len/at on a non-array");
        if (t != LP_REPLY_NIL) {
            CHECK(lp_reply_entries(r, 0, &en, err) == -1 && en == NULL &&
                  lp_reply_entries(r, 1, &en, err) == -1 && en == NULL,
                  "lp_reply_entries takes a reply of type %d", t);
            return;
        }
    }
    /* as stream-read output */
    for (int xrange = 0; xrange <= 1; xrange++) {
        const struct lp_reply *entries = (const struct lp_reply *)1;
        int rc = lp_reply_entries(r, xrange, &entries, err), want;
        const struct lp_reply *want_entries = NULL;
        if (t == LP_REPLY_NIL) {
            want = 0;
        } else if (xrange) {
            want = 0;
            want_entries = r;
        } else if (lp_reply_len(r) == 0) {
            want = 0;
        } else {
            const struct lp_reply *s0 = lp_reply_at(r, 0);
            want = lp_reply_type(s0) == LP_REPLY_ARRAY &&
                   lp_reply_len(s0) == 2 &&
                   lp_reply_type(lp_reply_at(s0, 1)) == LP_REPLY_ARRAY ? 0 : -1;
            if (want == 0 && lp_reply_len(lp_reply_at(s0, 1)) > 0)
                want_entries = lp_reply_at(s0, 1);
        }
        CHECK(rc == want, "lp_reply_entries(xrange %d) gives %d, want %d",
              xrange, rc, want);
        if (rc == 0) {
            CHECK(entries == want_entries,
                  "lp_reply_entries(xrange %d): wrong entries", xrange);
            if (entries)
                check_entries(entries);
        }
    }
    if (t == LP_REPLY_NIL)
        return;
    for (size_t i = 0; i < lp_reply_len(r); i++) {
        const struct lp_reply *c = lp_reply_at(r, i);
        CHECK(c != NULL, "lp_reply_at(%zu) of %zu is NULL", i,
              lp_reply_len(r));
        walk(c, depth + 1);
    }
    CHECK(lp_reply_at(r, lp_reply_len(r)) == NULL,
          "lp_reply_at past the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lp_reply *rep = (struct lp_reply *)1;
    char *buf;
    int rc;

    cur = data;
    curlen = size;
    if (fuzz_huge_array(data, size))
        return 0;
    if (size >= 16) {
        uint64_t a, b;
        memcpy(&a, data + size - 16, 8);
        memcpy(&b, data + size - 8, 8);
        check_id_roundtrip(a, b);
    }
    check_id((const char *)data, size);

    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    rc = lp_reply_parse(buf, size, &rep);
    CHECK(rc >= -1 && rc <= 1, "lp_reply_parse gives %d", rc);
    CHECK(rc == 1 ? rep != NULL : rep == NULL,
          "lp_reply_parse gives %d with reply %p", rc, (void *)rep);
    if (rc == 1)
        walk(rep, 0);
    lp_reply_free(rep);
    lp_reply_free(NULL);
    free(buf);
    return 0;
}
