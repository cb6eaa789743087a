/* lp_log.c -- diagnostics on stderr, as text or one JSON object per line */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_log.h"
#include "lp_time.h"

static const char *log_prog = "logpipe";
static int log_format = LP_LOG_TEXT;
static int log_verbosity;

void lp_log_init(const char *prog, int format, int verbosity)
{
    log_prog = prog;
    log_format = format;
    log_verbosity = verbosity;
}

int lp_log_format(const char *s)
{
    if (strcmp(s, "text") == 0)
        return LP_LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return LP_LOG_JSON;
    return -1;
}

int lp_log_verbosity(void)
{
    return log_verbosity;
}

const char *lp_log_prog(void)
{
    return log_prog;
}

static void emit(const char *level, const char *fmt, va_list ap)
{
    char msg[2048], out[8192];
    size_t o = 0;
    int n;

    n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);

    if (log_format == LP_LOG_JSON) {
        char ts[40];
        struct lp_buf b = { out, 0, sizeof out };
        lp_time_format(lp_now_ms(), ts);
        /* lp_buf_add_jstr escapes controls and keeps b inside out: the
         * worst case (6 bytes per byte of msg) fits in out */
        o = (size_t)snprintf(out, sizeof out,
                             "{\"ts\":\"%s\",\"prog\":\"%s\",\"level\":\"%s\","
                             "\"msg\":", ts, log_prog, level);
        b.len = o;
        b.cap = sizeof out;
        if (strlen(msg) * 6 + 8 < sizeof out - o)
            lp_buf_add_jstr(&b, msg, strlen(msg));
        else
            lp_buf_adds(&b, "\"\"");
        o = b.len;
        out[o++] = '}';
    } else {
        static const char hex[] = "0123456789abcdef";
        n = snprintf(out, sizeof out, "%s: ", log_prog);
        o = (size_t)n;
        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
            if (o + 5 >= sizeof out)
                break;
            if (*p < 0x20 || *p == 0x7f) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[*p >> 4];
                out[o++] = hex[*p & 15];
            } else {
                out[o++] = (char)*p;
            }
        }
    }
    out[o++] = '\n';
    /* one write, so lines of concurrent tools never interleave */
    if (write(STDERR_FILENO, out, o) < 0)
        return;
}

#define LP_LOG_FN(name, level, min)                 \
    void name(const char *fmt, ...)                 \
    {                                               \
        va_list ap;                                 \
        if (log_verbosity < (min))                  \
            return;                                 \
        va_start(ap, fmt);                          \
        emit(level, fmt, ap);                       \
        va_end(ap);                                 \
    }

LP_LOG_FN(lp_error, "error", -1)
LP_LOG_FN(lp_warn, "warning", 0)
LP_LOG_FN(lp_info, "info", 1)
LP_LOG_FN(lp_debug, "debug", 2)

void lp_trace(const char *msg, const char *kv)
{
    char out[4096];
    size_t o;

    if (log_verbosity < 1)
        return;
    if (log_format != LP_LOG_JSON) {
        o = (size_t)snprintf(out, sizeof out, "%s: %s %s\n", log_prog, msg,
                             kv);
        if (o >= sizeof out)
            o = sizeof out - 1;
    } else {
        char ts[40];
        struct lp_buf b = { out, 0, sizeof out };
        lp_time_format(lp_now_ms(), ts);
        b.len = (size_t)snprintf(out, sizeof out, "{\"ts\":\"%s\",\"prog\":"
                                 "\"%s\",\"level\":\"info\",\"msg\":\"%s\"",
                                 ts, log_prog, msg);
        for (const char *p = kv; *p; ) {
            const char *eq = strchr(p, '='), *end = strchr(p, ' ');
            if (end == NULL)
                end = p + strlen(p);
            if (eq == NULL || eq > end || b.len + (size_t)(end - p) * 6 + 16
                > sizeof out)
                break;
            const char *v = eq + 1;
            char *num_end;
            size_t vl = (size_t)(end - v);
            char tmp[64];
            int is_num = vl > 0 && vl < sizeof tmp &&
                         ((*v >= '0' && *v <= '9') || *v == '-');
            if (is_num) {
                memcpy(tmp, v, vl);
                tmp[vl] = '\0';
                strtod(tmp, &num_end);
                is_num = *num_end == '\0';
            }
            lp_buf_adds(&b, ",\"");
            lp_buf_add(&b, p, (size_t)(eq - p));
            lp_buf_adds(&b, "\":");
            if (is_num)
                lp_buf_add(&b, v, vl);
            else
                lp_buf_add_jstr(&b, v, vl);
            p = *end ? end + 1 : end;
        }
        lp_buf_adds(&b, "}\n");
        o = b.len;
    }
    if (write(STDERR_FILENO, out, o) < 0)
        return;
}
