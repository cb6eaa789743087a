/* bench-latency.c -- end-to-end latency of a pipeline, for make bench
 *
 *   bench-latency gen RATE SECONDS [SERVICES]
 *       prints RATE events a second for SECONDS, each carrying the wall
 *       clock time (microseconds) it was written at, as "t"; of service
 *       "lat", or with SERVICES, one in ten of service "lat" and the others
 *       spread over SERVICES more (a batch touches many files)
 *   bench-latency measure FILE
 *       reads logpipe-drain's "-v --log-format json" lines on stdin; at
 *       each batch line (printed once the batch is synced) takes the lines
 *       of FILE up to the batch's last ID, and prints the percentiles of
 *       "synced - t" over all of them at the end
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

static int gen(double rate, double seconds, long services)
{
    int64_t start = now_us(), n = (int64_t)(rate * seconds);
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
                           PRId64 ",\"msg\":\"latency probe, caf\xc3\xa9\"}\n",
                           svc, i, now_us());
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

static int measure(const char *path)
{
    FILE *f = NULL;
    char *line = NULL, *fl = NULL;
    size_t cap = 0, fcap = 0, n = 0, ncap = 1 << 16;
    int64_t *lat = malloc(ncap * sizeof *lat);

    while (getline(&line, &cap, stdin) > 0) {
        char *last = strstr(line, "\"last\":\"");
        uint64_t lms, lseq;
        if (strstr(line, "\"msg\":\"batch\"") == NULL || last == NULL)
            continue;
        int64_t synced = now_us();
        parse_id(last + 8, &lms, &lseq);
        if (f == NULL && (f = fopen(path, "r")) == NULL)
            continue;
        for (;;) {
            long pos = ftell(f);
            ssize_t got = getline(&fl, &fcap, f);
            if (got <= 0 || fl[got - 1] != '\n') {
                clearerr(f);
                fseek(f, pos, SEEK_SET);    /* a line still being written */
                break;
            }
            char *id = strstr(fl, "\"_id\":\""), *t = strstr(fl, "\"t\":");
            uint64_t ms, seq;
            if (id == NULL || t == NULL)
                continue;
            parse_id(id + 7, &ms, &seq);
            if (ms > lms || (ms == lms && seq > lseq)) {
                fseek(f, pos, SEEK_SET);    /* the next batch's */
                break;
            }
            if (n == ncap && (lat = realloc(lat, (ncap *= 2) *
                                            sizeof *lat)) == NULL)
                return 1;
            lat[n++] = synced - strtoll(t + 4, NULL, 10);
        }
    }
    if (n == 0) {
        fprintf(stderr, "bench-latency: no events measured\n");
        return 1;
    }
    qsort(lat, n, sizeof *lat, cmp64);
    printf("events %zu p50 %.1f p90 %.1f p99 %.1f max %.1f ms\n", n,
           (double)lat[n / 2] / 1000, (double)lat[n * 9 / 10] / 1000,
           (double)lat[n * 99 / 100] / 1000, (double)lat[n - 1] / 1000);
    free(lat);
    free(line);
    free(fl);
    if (f)
        fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "gen") == 0)
        return gen(atof(argv[2]), atof(argv[3]),
                   argc == 5 ? atol(argv[4]) : 0);
    if (argc == 3 && strcmp(argv[1], "measure") == 0)
        return measure(argv[2]);
    fprintf(stderr, "usage: bench-latency gen RATE SECONDS [SERVICES] | "
            "measure FILE\n");
    return 64;
}
