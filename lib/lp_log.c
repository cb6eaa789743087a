/* lp_log.c -- diagnostics on stderr, as text or one JSON object per line */
#include <inttypes.h>
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
/* lp_log_context's: "shard 3: " in text, ,"shard":3 in JSON; "": none */
static char ctx_text[64], ctx_json[64];

void lp_log_init(const char *prog, int format, int verbosity)
{
    log_prog = prog;
    log_format = format;
    log_verbosity = verbosity;
}

void lp_log_context(const char *key, long value)
{
    if (key == NULL) {
        ctx_text[0] = ctx_json[0] = '\0';
        return;
    }
    snprintf(ctx_text, sizeof ctx_text, "%.40s %ld: ", key, value);
    snprintf(ctx_json, sizeof ctx_json, ",\"%.40s\":%ld", key, value);
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
                             "{\"ts\":\"%s\",\"prog\":\"%s\"%s,\"level\":"
                             "\"%s\",\"msg\":", ts, log_prog, ctx_json,
                             level);
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
        n = snprintf(out, sizeof out, "%s: %s", log_prog, ctx_text);
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

static void say_notice(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level == LP_NOTICE_INFO)
        lp_info("%s", msg);
    else if (level == LP_NOTICE_ERROR)
        lp_error("%s", msg);
    else
        lp_warn("%s", msg);
}

const struct lp_notify lp_log_notify = { say_notice, NULL };

void lp_trace(const char *msg, const char *kv)
{
    char out[4096];
    size_t o;

    if (log_verbosity < 1)
        return;
    if (log_format != LP_LOG_JSON) {
        o = (size_t)snprintf(out, sizeof out, "%s: %s%s %s\n", log_prog,
                             ctx_text, msg, kv);
        if (o >= sizeof out)
            o = sizeof out - 1;
    } else {
        char ts[40];
        struct lp_buf b = { out, 0, sizeof out };
        lp_time_format(lp_now_ms(), ts);
        b.len = (size_t)snprintf(out, sizeof out, "{\"ts\":\"%s\",\"prog\":"
                                 "\"%s\"%s,\"level\":\"info\",\"msg\":"
                                 "\"%s\"", ts, log_prog, ctx_json, msg);
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

/* ---- per-line budgets --------------------------------------------------- */

static struct lp_budget *budgets;       /* in the order registered */

static void say(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level == LP_LEVEL_ERROR ? "error" : "warning", fmt, ap);
    va_end(ap);
}

void lp_budget_init(struct lp_budget *b, int level, const char *what)
{
    struct lp_budget **p = &budgets;

    b->what = what;
    b->level = level;
    b->since = 0;
    b->shown = b->held = b->total = 0;
    while (*p != NULL && *p != b)
        p = &(*p)->next;
    if (*p == NULL) {
        b->next = NULL;
        *p = b;
    }
}

/* Ends b's period when it is over (at the end of the run: whatever its
 * age), saying how many of its messages were held back. */
static void roll(struct lp_budget *b, int64_t now, int end)
{
    if (b->since == 0 || (!end && now - b->since < LP_BUDGET_PERIOD))
        return;
    if (b->held)
        say(b->level, "%" PRIu64 " more %s%s", b->held, b->what,
            end ? "" : " in the last minute");
    b->since = 0;
    b->shown = b->held = 0;
}

int lp_budget_take(struct lp_budget *b)
{
    int64_t now;

    b->total++;
    if (log_verbosity < 0)
        return 0;               /* -q: only what ends the run */
    if (log_verbosity > 0)
        return 1;               /* -v: every one */
    now = lp_mono_ms();
    roll(b, now, 0);
    if (b->since == 0)
        b->since = now > 0 ? now : 1;
    if (b->shown < LP_BUDGET_SHOWN) {
        b->shown++;
        return 1;
    }
    b->held++;
    return 0;
}

void lp_budget_say(struct lp_budget *b, const char *fmt, ...)
{
    va_list ap;

    if (!lp_budget_take(b))
        return;
    va_start(ap, fmt);
    emit(b->level == LP_LEVEL_ERROR ? "error" : "warning", fmt, ap);
    va_end(ap);
}

void lp_log_tick(void)
{
    int64_t now = 0;

    for (struct lp_budget *b = budgets; b != NULL; b = b->next) {
        if (b->since == 0)
            continue;
        if (now == 0)
            now = lp_mono_ms();
        roll(b, now, 0);
    }
}

int64_t lp_log_due(void)
{
    int64_t now = 0, due = -1;

    for (struct lp_budget *b = budgets; b != NULL; b = b->next) {
        if (b->held == 0)
            continue;
        if (now == 0)
            now = lp_mono_ms();
        int64_t left = b->since + LP_BUDGET_PERIOD - now;
        if (left < 0)
            left = 0;
        if (due < 0 || left < due)
            due = left;
    }
    return due;
}

void lp_log_end(void)
{
    for (struct lp_budget *b = budgets; b != NULL; b = b->next)
        roll(b, 0, 1);
}
