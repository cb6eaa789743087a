/* tap.h -- a tiny TAP producer for the unit tests */
#ifndef LP_TAP_H
#define LP_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_count, tap_failed;

static void tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    tap_count++;
    if (!pass)
        tap_failed++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass)
        printf("#   failed at %s:%d\n", file, line);
    fflush(stdout);
}

/* ok(condition, "description %d", ...) */
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* ok_fixed(cond, bug, "description"): an assertion that once failed;
 * bug says what was wrong, for whoever breaks it again */
#define ok_fixed(cond, bug, ...) \
    ((void)(bug), tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__))

/* is_str(got, want, "description") */
#define is_str(got, want, ...) do { \
        const char *g_ = (got), *w_ = (want); \
        int p_ = g_ && w_ && strcmp(g_, w_) == 0; \
        tap_ok(p_, __FILE__, __LINE__, __VA_ARGS__); \
        if (!p_) printf("#   got:  '%s'\n#   want: '%s'\n", \
                        g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
    } while (0)

/* is_int(got, want, "description") */
#define is_int(got, want, ...) do { \
        long long g_ = (long long)(got), w_ = (long long)(want); \
        tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__); \
        if (g_ != w_) printf("#   got:  %lld\n#   want: %lld\n", g_, w_); \
    } while (0)

/* Prints the plan; the exit status tells prove whether all passed. */
static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
