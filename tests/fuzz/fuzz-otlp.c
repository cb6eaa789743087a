/* fuzz-otlp.c -- libFuzzer harness: lib/lp_otlp, OTLP/HTTP JSON log records */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_json.h"
#include "lp_otlp.h"
#include "lp_parse.h"

/*
 * The input is the request body as it is (JSONTestSuite's files and
 * OTLP examples are seeds); --max-line, --max-depth and the client come
 * from a hash of it. Checks, each abort()ing:
 *
 *  1. The outcome is 200 or 400; 400 exactly when lp_json_valid refuses
 *     the body or its frame is broken, and then no item was handed over
 *     (a request is stored whole or not at all).
 *  2. Every event is a valid JSON object of at most --max-line bytes and
 *     --max-depth, without "_id", whose member names are all different
 *     (decoded, at the top level), holding the client member when one is
 *     asked for; every rejected record has a path, a code, a message.
 *  3. The answer is valid JSON: {} or a partialSuccess whose count is the
 *     rejected records'.
 */

static struct lp_event_rules rules;
static uint64_t max_line, items, rejected;
static const char *client;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* top-level member names all different: decoded, compared pairwise */
static void distinct(const char *s, size_t n)
{
    char *names[512];
    size_t lens[512];
    int nn = 0;
    size_t pos = 1;

    /* the events are lp_otlp's own writing: no space between tokens
     * but inside values copied whole */
    while (pos < n && nn < 512) {
        while (pos < n && (s[pos] == ' ' || s[pos] == ','))
            pos++;
        if (pos >= n || s[pos] != '"')
            break;
        size_t st = pos++;
        while (pos < n && s[pos] != '"')
            pos += s[pos] == '\\' ? 2 : 1;
        pos++;
        struct lp_jval v = { (uint32_t)st, (uint32_t)(pos - st), LP_JSTRING,
                             1 };
        char *d = malloc(v.len);
        long dl = d ? lp_json_unescape(s, &v, d, v.len) : -1;
        if (dl < 0)
            abort();
        for (int i = 0; i < nn; i++)
            if (lens[i] == (size_t)dl && memcmp(names[i], d, (size_t)dl) == 0) {
                fprintf(stderr, "FINDING: member \"%.*s\" twice: %.*s\n",
                        (int)dl, d, (int)n, s);
                abort();
            }
        names[nn] = d;
        lens[nn++] = (size_t)dl;
        /* past ':' and the value: lp_json_array_next-like skip */
        pos++;                  /* ':' */
        int depth = 0, instr = 0;
        for (; pos < n; pos++) {
            char c = s[pos];
            if (instr) {
                if (c == '\\')
                    pos++;
                else if (c == '"')
                    instr = 0;
                continue;
            }
            if (c == '"')
                instr = 1;
            else if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (depth-- == 0)
                    break;
            } else if (c == ',' && depth == 0)
                break;
        }
    }
    for (int i = 0; i < nn; i++)
        free(names[i]);
}

static void on_item(void *ctx, const struct lp_otlp_item *it)
{
    struct lp_jkeys k = { 0 };
    struct lp_jevent ev;
    struct lp_jerr je;
    struct lp_jlimits lim = { rules.lim.depth, 0 };

    (void)ctx;
    items++;
    if (it->where == NULL || strncmp(it->where, "resourceLogs[", 13) != 0)
        abort();
    if (it->ev == NULL) {
        rejected++;
        if (it->code == NULL || it->msg == NULL || it->msg[0] == '\0')
            abort();
        return;
    }
    if (it->stored_len > max_line || it->stored[0] != '{' ||
        lp_json_event(it->stored, it->stored_len, &k, &lim, &ev, &je) < 0 ||
        ev.nids) {
        fprintf(stderr, "FINDING: a bad event: %.*s\n", (int)it->stored_len,
                it->stored);
        abort();
    }
    if (client && !memmem(it->stored, it->stored_len, "\"client\":\"c1\"}",
                          14)) {
        fprintf(stderr, "FINDING: no client member last: %.*s\n",
                (int)it->stored_len, it->stored);
        abort();
    }
    distinct(it->stored, it->stored_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lp_otlp *o;
    static uint64_t cur_line;
    static int cur_depth;
    char err[LP_ERRLEN];
    uint64_t h = fnv(data, size);
    uint64_t ml = (h & 3) == 0 ? 16 + (h >> 2) % 200 : 1 << 20;
    int depth = (h >> 10) % 4 == 0 ? 1 + (int)((h >> 12) % 8) : 64;
    struct lp_otlp_conf c = {
        .rules = &rules, .max_line = ml, .client_field = "client",
        .item = on_item,
    };
    struct lp_jerr je;
    struct lp_jlimits lim = { 1024, 0 };
    struct lp_buf ans = { 0 };

    if (o == NULL || cur_line != ml || cur_depth != depth) {
        lp_otlp_free(o);
        if (lp_event_rules_init(&rules, "timestamp", NULL, 0,
                                (uint64_t)depth, 10000, 0, 0, err) < 0 ||
            (o = lp_otlp_new(&c, err)) == NULL)
            abort();
        cur_line = ml;
        cur_depth = depth;
    }
    max_line = ml;
    client = (h >> 20) % 2 ? "c1" : NULL;
    items = rejected = 0;
    int st = lp_otlp_map(o, (const char *)data, size, 1796553600000LL,
                         client);
    if (st != 200 && st != 400)
        abort();
    if (st == 400 && items) {
        fprintf(stderr, "FINDING: 400 after %llu items\n",
                (unsigned long long)items);
        abort();
    }
    if (lp_json_valid((const char *)data, size, &lim, &je) < 0 && st != 400)
        abort();
    if (st == 200) {
        uint64_t a, r, d;
        lp_otlp_counts(o, &a, &r, &d);
        if (a + r != items || r != rejected)
            abort();
        if (lp_otlp_answer(o, &ans) < 0 ||
            lp_json_valid(ans.p, ans.len, NULL, &je) < 0) {
            fprintf(stderr, "FINDING: answer not JSON: %.*s\n",
                    (int)ans.len, ans.p);
            abort();
        }
        char want[64];
        snprintf(want, sizeof want, "\"rejectedLogRecords\":\"%llu\"",
                 (unsigned long long)r);
        if ((r || d) && !memmem(ans.p, ans.len, want, strlen(want)))
            abort();
    }
    lp_buf_free(&ans);
    return 0;
}
