/* bench-latency.c -- end-to-end latency of a pipeline, for make bench
 *
 *   bench-latency gen RATE SECONDS [SERVICES [WARMUP]]
 *       prints RATE events a second for SECONDS, each carrying the wall
 *       clock time (microseconds) it was written at, as "t"; of service
 *       "lat", or with SERVICES, one in ten of service "lat" and the others
 *       spread over SERVICES more (a batch touches many files). With
 *       WARMUP, the same for WARMUP seconds first, marked "warm":1 (they
 *       make the day files; measure leaves them out)
 *   bench-latency measure FILE
 *       reads logpipe-drain's "-v --log-format json" lines on stdin; each
 *       batch line is printed once the batch is durable (its journal
 *       commit, or its files synced), with the batch's last ID. An event
 *       is durable at the first batch line whose last ID is at or past
 *       its own: FILE's lines (read at each batch line, and at the end:
 *       a drain may hold a line in its journal a while before it writes
 *       it to FILE) are each matched to that batch line's time, and the
 *       percentiles of "durable - t" over all of them printed at the end
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int gen(double rate, double seconds, long services, double warmup)
{
    int64_t start = now_us(), n = (int64_t)(rate * (seconds + warmup));
    int64_t warm = (int64_t)(rate * warmup);
    char line[512];

    for (int64_t i = 0; i < n; i++) {
        /* event i is due at start + i / rate */
        int64_t due = start + (int64_t)((double)i * 1e6 / rate);
        int64_t wait = due - now_us();
        if (wait > 0) {
            fflush(stdout);
            struct timespec ts = { wait / 1000000, (wait % 1000000) * 1000 };
            nanosleep(&ts, NULL);
        }
        char svc[32] = "lat";
        if (services > 0 && i % 10 != 0)
            snprintf(svc, sizeof svc, "s%05ld", (long)(i % services));
        int len = snprintf(line, sizeof line,
                           "{\"service\":\"%s\",\"seq\":%" PRId64 ",\"t\":%"
                           PRId64 ",%s\"msg\":\"latency probe, caf\xc3\xa9\"}\n",
                           svc, i, now_us(), i < warm ? "\"warm\":1," : "");
        if (fwrite(line, 1, (size_t)len, stdout) != (size_t)len)
            return 1;
    }
    return fflush(stdout) != 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* "1700000000000-5" -> comparable pair */
static void parse_id(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *end;

    *ms = strtoull(s, &end, 10);
    *seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

/* the batch lines seen: their last IDs grow (new entries, in order) */
struct batch {
    uint64_t ms, seq;
    int64_t at;
};
static struct batch *batches;
static size_t nbatches, capbatches;

/* the time of the first batch whose last ID is at or past (ms, seq), or
 * -1 when none is yet */
static int64_t durable_at(uint64_t ms, uint64_t seq)
{
    size_t lo = 0, hi = nbatches;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (batches[mid].ms < ms ||
            (batches[mid].ms == ms && batches[mid].seq < seq))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nbatches ? batches[lo].at : -1;
}

static int64_t *lat;
static size_t n, ncap = 1 << 16;

/* Takes FILE's whole lines from where it stopped: each whose batch is
 * known is measured; it stops at the first whose batch is not (yet). */
static int take(FILE *f, char **fl, size_t *fcap)
{
    for (;;) {
        long pos = ftell(f);
        ssize_t got = getline(fl, fcap, f);
        if (got <= 0 || (*fl)[got - 1] != '\n') {
            clearerr(f);
            fseek(f, pos, SEEK_SET);    /* a line still being written */
            return 0;
        }
        char *id = strstr(*fl, "\"_id\":\""), *t = strstr(*fl, "\"t\":");
        uint64_t ms, seq;
        if (id == NULL || t == NULL || strstr(*fl, "\"warm\":1"))
            continue;
        parse_id(id + 7, &ms, &seq);
        int64_t at = durable_at(ms, seq);
        if (at < 0) {
            fseek(f, pos, SEEK_SET);    /* the next batch's */
            return 0;
        }
        if (n == ncap && (lat = realloc(lat, (ncap *= 2) * sizeof *lat)) ==
                             NULL)
            return -1;
        lat[n++] = at - strtoll(t + 4, NULL, 10);
    }
}

static int measure(const char *path)
{
    FILE *f = NULL;
    char *line = NULL, *fl = NULL;
    size_t cap = 0, fcap = 0;

    if ((lat = malloc(ncap * sizeof *lat)) == NULL)
        return 1;
    while (getline(&line, &cap, stdin) > 0) {
        char *last = strstr(line, "\"last\":\"");
        if (strstr(line, "\"msg\":\"batch\"") == NULL || last == NULL)
            continue;
        if (nbatches == capbatches &&
            (batches = realloc(batches, (capbatches = capbatches * 2 + 64) *
                                            sizeof *batches)) == NULL)
            return 1;
        struct batch *b = &batches[nbatches++];
        b->at = now_us();
        parse_id(last + 8, &b->ms, &b->seq);
        if (f == NULL && (f = fopen(path, "r")) == NULL)
            continue;
        if (take(f, &fl, &fcap) < 0)
            return 1;
    }
    /* the drain has ended: what it held is in FILE now */
    if ((f != NULL || (f = fopen(path, "r")) != NULL) &&
        take(f, &fl, &fcap) < 0)
        return 1;
    if (n == 0) {
        fprintf(stderr, "bench-latency: no events measured\n");
        return 1;
    }
    qsort(lat, n, sizeof *lat, cmp64);
    printf("events %zu p50 %.1f p90 %.1f p99 %.1f max %.1f ms\n", n,
           (double)lat[n / 2] / 1000, (double)lat[n * 9 / 10] / 1000,
           (double)lat[n * 99 / 100] / 1000, (double)lat[n - 1] / 1000);
    free(lat);
    free(batches);
    free(line);
    free(fl);
    if (f)
        fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "gen") == 0)
        return gen(atof(argv[2]), atof(argv[3]),
                   argc >= 5 ? atol(argv[4]) : 0,
                   argc == 6 ? atof(argv[5]) : 0);
    if (argc == 3 && strcmp(argv[1], "measure") == 0)
        return measure(argv[2]);
    fprintf(stderr, "usage: bench-latency gen RATE SECONDS [SERVICES "
            "[WARMUP]] | measure FILE\n");
    return 64;
}
