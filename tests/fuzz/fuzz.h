/* fuzz.h -- what the harnesses of tests/fuzz share: a finding's report
 * (fail, CHECK) and the inputs hiredis itself cannot take. A harness
 * defines FUZZ_NAME ("fuzz-gz") and includes this once; it sets curlen to
 * each input's length. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static size_t curlen;

/* A finding: said on stderr, then abort() so that libFuzzer keeps the
 * input. */
__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n" FUZZ_NAME ": FINDING: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ninput: %zu bytes\n", curlen);
    abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

/*
 * hiredis 0.14.1 allocates an array's element pointers when it reads the
 * header, before the elements come: "*2147483647\r\n" is a 16 GiB calloc,
 * which libFuzzer's malloc limit reports as out-of-memory. Not ours (see
 * the report); the harnesses that parse RESP skip such inputs. Any '*'
 * counts, not only one at the start of a line: hiredis skips the two
 * bytes after a bulk string without looking at them, so
 * "$2\r\nabcd*1709551616\r\n" is a header too (finding reply-1, a 13 GiB
 * calloc).
 */
static inline int fuzz_huge_array(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (d[i] != '*')
            continue;
        while (i + 1 + k < n && d[i + 1 + k] >= '0' && d[i + 1 + k] <= '9')
            k++;
        if (k >= 6)
            return 1;
    }
    return 0;
}

#endif
