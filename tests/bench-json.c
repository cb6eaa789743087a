/* bench-json.c -- validator throughput on realistic log lines, with jq's
 * parser measured in the same run for comparison */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jv.h>

#include "lp_json.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ~200-byte events: 20 services, 5 apps, 1000 users, nested metadata,
 * non-ASCII text, escapes; the shape of the benchmark corpus */
static size_t corpus(char *buf, size_t n, size_t *off, size_t *len)
{
    static const char *lvl[] = { "debug", "info", "info", "info", "warn",
                                 "error" };
    static const char *msg[] = {
        "request completed", "cache miss for key user:\\u00e9t\\u00e9",
        "connexion r\xc3\xa9tablie apr\xc3\xa8s 3 essais",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe3\x81\xae\xe3\x83\xa1\xe3\x83\x83\xe3\x82\xbb\xe3\x83\xbc\xe3\x82\xb8",
        "slow query \\\"SELECT 1\\\"", "upstream returned 503",
    };
    size_t pos = 0;
    unsigned r = 12345;

    for (size_t i = 0; i < n; i++) {
        r = r * 1103515245 + 12345;
        off[i] = pos;
        pos += (size_t)sprintf(buf + pos,
            "{\"timestamp\":\"2026-11-21T10:%02u:%02u.%03uZ\",\"service\":"
            "\"svc-%02u\",\"app\":\"app%u\",\"level\":\"%s\",\"user_id\":%u,"
            "\"msg\":\"%s\",\"meta\":{\"path\":\"/v1/items/%u\",\"status\":%u,"
            "\"dur_ms\":%u.%02u},\"trace_id\":\"%08x\"}",
            r % 60, (r >> 6) % 60, (r >> 3) % 1000, (r >> 4) % 20,
            (r >> 9) % 5, lvl[(r >> 11) % 6], (r >> 7) % 1000,
            msg[(r >> 13) % 6], r % 10000, 200 + (r >> 5) % 4 * 100,
            r % 900, r % 100, r);
        len[i] = pos - off[i];
    }
    return pos;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    char *buf = malloc(n * 400);
    size_t *off = malloc(n * sizeof *off), *len = malloc(n * sizeof *len);
    size_t total = corpus(buf, n, off, len);
    struct lp_jkeys k = { 0 };
    struct lp_jevent ev;
    struct lp_jerr e;
    double best_ev = 0, best_jq = 0;
    int bad = 0;

    lp_jkeys_add(&k, "timestamp");
    lp_jkeys_add(&k, "service");
    for (int round = 0; round < 5; round++) {
        double t = now();
        for (int rep = 0; rep < 5; rep++)
            for (size_t i = 0; i < n; i++)
                bad += lp_json_event(buf + off[i], len[i], &k, NULL, &ev,
                                     &e) != 0;
        t = (double)total * 5 / (now() - t) / 1e6;
        if (t > best_ev)
            best_ev = t;
    }
    for (int round = 0; round < 2; round++) {
        double t = now();
        for (size_t i = 0; i < n; i++) {
            jv v = jv_parse_sized(buf + off[i], (int)len[i]);
            bad += !jv_is_valid(v);
            jv_free(v);
        }
        t = (double)total / (now() - t) / 1e6;
        if (t > best_jq)
            best_jq = t;
    }
    printf("json validation, %zu events of %zu bytes on average:\n", n,
           total / n);
    printf("  lp_json_event   %8.0f MB/s  %6.2f M events/s\n", best_ev,
           best_ev * 1e6 / ((double)total / n) / 1e6);
    printf("  jq jv_parse     %8.0f MB/s  (lp_json is %.1fx)\n", best_jq,
           best_ev / best_jq);
    if (bad) {
        printf("  %d events failed: the corpus is broken\n", bad);
        return 1;
    }
    return 0;
}
