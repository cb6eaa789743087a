/* lp_notice.c -- how lib tells its caller what it did on its own */
#include <stdarg.h>
#include <stdio.h>

#include "lp_notice.h"

void lp_notice(const struct lp_notify *n, int level, const char *fmt, ...)
{
    char msg[LP_NOTICELEN];
    va_list ap;

    if (n == NULL || n->fn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n->fn(n->ctx, level, msg);
}
