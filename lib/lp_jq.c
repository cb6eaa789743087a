/* lp_jq.c -- user-supplied jq 1.6 programs, compiled once */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "lp_exit.h"
#include "lp_jq.h"
#include "lp_parse.h"

/*
 * The only file that includes jq.h. libjq 1.6: every jv-taking function
 * consumes its argument except jv_get_kind, jv_string_value,
 * jv_number_value, jv_is_valid and jv_copy; after halt_error the state
 * must be torn down and compiled again; not thread-safe.
 */

struct lp_jq {
    jq_state *jq;
    char *prog;
    char cerr[LP_ERRLEN];
    uint64_t runs, failed;      /* lp_jq_status */
};

static void on_error(void *data, jv msg)
{
    struct lp_jq *q = data;
    size_t used = strlen(q->cerr);

    if (jv_get_kind(msg) == JV_KIND_STRING && used + 2 < sizeof q->cerr) {
        snprintf(q->cerr + used, sizeof q->cerr - used, "%s%s",
                 used ? "; " : "", jv_string_value(msg));
        /* jq's messages span lines: one line for ours */
        for (char *c = q->cerr + used; *c; c++)
            if (*c == '\n')
                *c = ' ';
    }
    jv_free(msg);
}

static int compile(struct lp_jq *q, char *err)
{
    q->cerr[0] = '\0';
    if ((q->jq = jq_init()) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    jq_set_error_cb(q->jq, on_error, q);
    if (!jq_compile(q->jq, q->prog)) {
        snprintf(err, LP_ERRLEN, "jq program '%.200s' does not compile: %.700s",
                 q->prog, q->cerr[0] ? q->cerr : "syntax error");
        jq_teardown(&q->jq);
        return -1;
    }
    return 0;
}

int lp_jq_new(const char *prog, struct lp_jq **out, char *err)
{
    struct lp_jq *q = calloc(1, sizeof *q);

    *out = NULL;
    if (q == NULL || (q->prog = strdup(prog)) == NULL) {
        free(q);
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    if (compile(q, err) < 0) {
        free(q->prog);
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

void lp_jq_free(struct lp_jq *q)
{
    if (q == NULL)
        return;
    if (q->jq)
        jq_teardown(&q->jq);
    free(q->prog);
    free(q);
}

/* Runs the program; returns its first output (or an invalid jv). */
static jv first_output(struct lp_jq *q, const char *s, size_t n, int *rc,
                       char *err)
{
    jv in, out;

    *rc = 0;
    q->runs++;
    if (q->jq == NULL && compile(q, err) < 0) {
        q->failed++;
        *rc = -1;
        return jv_invalid();
    }
    in = jv_parse_sized(s, (int)n);
    if (!jv_is_valid(in)) {
        jv msg = jv_invalid_get_msg(in);
        snprintf(err, LP_ERRLEN, "jq cannot parse the event: %s",
                 jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
                                                    : "invalid JSON");
        jv_free(msg);
        q->failed++;
        *rc = -1;
        return jv_invalid();
    }
    jq_start(q->jq, in, 0);
    out = jq_next(q->jq);
    if (!jv_is_valid(out)) {
        jv msg = jv_invalid_get_msg(jv_copy(out));
        if (jv_get_kind(msg) != JV_KIND_NULL) {
            if (jv_get_kind(msg) == JV_KIND_STRING) {
                snprintf(err, LP_ERRLEN, "jq: %s", jv_string_value(msg));
            } else {
                jv d = jv_dump_string(jv_copy(msg), 0);
                snprintf(err, LP_ERRLEN, "jq: %s", jv_string_value(d));
                jv_free(d);
            }
            q->failed++;
            *rc = -1;
        }
        jv_free(msg);
    }
    if (jq_halted(q->jq)) {
        /* halt_error leaves the state unusable (double free on reuse) */
        jq_teardown(&q->jq);
        q->jq = NULL;
    }
    return out;
}

int lp_jq_match(struct lp_jq *q, const char *s, size_t n, char *err)
{
    int rc;
    jv out = first_output(q, s, n, &rc, err);
    jv_kind k = jv_get_kind(out);

    jv_free(out);
    if (rc < 0)
        return -1;
    return k != JV_KIND_INVALID && k != JV_KIND_FALSE && k != JV_KIND_NULL;
}

long lp_jq_string(struct lp_jq *q, const char *s, size_t n, char *out,
                  size_t cap, char *err)
{
    int rc;
    jv v = first_output(q, s, n, &rc, err);
    jv_kind k = jv_get_kind(v);
    const char *str;
    size_t len;
    long ret = 0;

    if (rc < 0 || k == JV_KIND_INVALID || k == JV_KIND_NULL) {
        jv_free(v);
        return rc < 0 ? -1 : 0;
    }
    if (k != JV_KIND_STRING)
        v = jv_dump_string(v, 0);
    str = jv_string_value(v);
    len = (size_t)jv_string_length_bytes(jv_copy(v));
    if (len >= cap) {
        snprintf(err, LP_ERRLEN, "jq output longer than %zu bytes", cap - 1);
        q->failed++;
        ret = -1;
    } else {
        memcpy(out, str, len);
        out[len] = '\0';
        ret = (long)len;
    }
    jv_free(v);
    return ret;
}

int lp_jq_name_it(const struct lp_jq *q)
{
    return q->failed <= LP_JQ_NAMED;
}

int lp_jq_status(const struct lp_jq *q, int verbosity, char *msg)
{
    if (q == NULL || q->failed == 0)
        return 0;
    snprintf(msg, LP_ERRLEN, "failed at run time on %" PRIu64 " of %" PRIu64
             " event%s%s", q->failed, q->runs, q->runs == 1 ? "" : "s",
             q->failed > LP_JQ_NAMED && verbosity >= 0 ?
             " (the first " LP_JQ_NAMED_S " named above)" : "");
    return q->failed == q->runs ? LP_EX_CONFIG : LP_EX_DATAERR;
}
