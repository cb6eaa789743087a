/* logpipe-agg.c -- time-bucketed counts, sums and maxima from NDJSON */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lp_agg.h"
#include "lp_exit.h"
#include "lp_line.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "tool_msg.h"
#include "tool_opt.h"

/*
 * Events are counted into groups, a time bucket and the values of the
 * --by members, by the engine in lib/lp_agg.c (the watermark, lateness
 * and --max-groups are described in lp_agg.h); it prints each bucket when
 * it closes, as NDJSON or as SQL (lib/lp_agg_out.c). This file reads
 * stdin line by line into it, says what it has to say about lines (each
 * kind on its own budget), keeps --metrics and maps the end to the exit
 * status: 65 when an event was bad or late, 74 when stdin or stdout
 * failed, 70 when out of memory.
 */

struct agg_opt {
    struct lp_common com;
    struct lp_agg_conf conf;
    uint64_t max_line;
};

static int bucket_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err);
static int lateness_opt(const struct lp_optdef *o, void *base, char *arg,
                        char *err);
static int names_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err);
static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err);

#define OPT struct agg_opt
static const struct lp_optdef longopts[] = {
    { "bucket", 0, LP_CALL(OPT, conf.bucket, bucket_opt), "DUR",
      "bucket length, whole seconds (1m)" },
    { "by", 0, LP_CALL(OPT, conf.by, names_opt), "A,B,...",
      "group by these top-level members (at most 16)", .max = LP_AGG_MAXBY },
    { "sum", 0, LP_CALL(OPT, conf.sum, names_opt), "M",
      "also the sum of numeric member M (sum_M)", .max = LP_AGG_MAXAGG },
    { "max", 0, LP_CALL(OPT, conf.max, names_opt), "M",
      "also the maximum of numeric member M (max_M)", .max = LP_AGG_MAXAGG },
    { "lateness", 0, LP_CALL(OPT, conf.lateness, lateness_opt), "DUR|end",
      "wait this long for late events (0); end: until\n"
      "the end of input (for logpipe-replay | agg)" },
    { "threshold", 0, LP_UINT(OPT, conf.threshold), "N",
      "print only groups counted at least N times", .min = 1 },
    { "sql", 0, LP_CALL(OPT, conf.sql, sql_opt), "TABLE",
      "SQL for sqlite3 and psql, not NDJSON" },
    { "max-groups", 0, LP_UINT(OPT, conf.max_groups), "N",
      "open groups before new ones become \"(other)\"\n(100000)",
      .min = 1, .max = 100000000 },
    { "time-field", 0, LP_STR(OPT, conf.time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest line accepted (1M)", .min = 2, .max = 1 << 30 },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "metrics", "write Prometheus metrics to FILE", 0 },
    { "metrics-interval", "rewrite them this often (15s)", 0 },
    { "verbose", "more messages: every bad line, a summary", 0 },
    { "quiet", "only errors; of bad lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-agg",
    .synopsis =
"usage: logpipe-agg [options] <NDJSON\n"
"Count events per time bucket and group (--by), with sums and maxima of\n"
"numeric members; print each bucket when it closes, as NDJSON or as SQL\n"
"upserts (--sql) for sqlite3 or psql.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 bad input lines or late events (the rest was\n"
"counted), 70 internal error, 74 output error.\n"
"See logpipe-agg(1).\n",
    .opts = longopts,
    .notes = notes,
    .stray = " (events are read from stdin)",
};

/* ---- options ------------------------------------------------------------ */

/* --by, --sum, --max: the comma-separated names of arg join the list
 * (at most o->max) */
static int names_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err)
{
    struct lp_list *l = (struct lp_list *)((char *)base + o->off);
    char *item[LP_AGG_MAXBY + 1];
    int k = lp_parse_list(arg, item, LP_AGG_MAXBY + 1, err);

    if (k < 0)
        return -1;
    for (int i = 0; i < k; i++) {
        if (!lp_sql_ident_ok(item[i]) || strlen(item[i]) > 59) {
            snprintf(err, LP_ERRLEN, "'%s' is not a name of letters, digits "
                     "and _ (not starting with a digit, at most 59)",
                     item[i]);
            return -1;
        }
        for (int j = 0; j < l->n; j++)
            if (strcmp(l->item[j], item[i]) == 0) {
                snprintf(err, LP_ERRLEN, "'%s' is given twice", item[i]);
                return -1;
            }
        if (l->n >= o->max) {
            snprintf(err, LP_ERRLEN, "at most %d members", (int)o->max);
            return -1;
        }
        l->item[l->n++] = item[i];
    }
    return 0;
}

static int bucket_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err)
{
    struct lp_agg_conf *c = &((struct agg_opt *)base)->conf;

    (void)o;
    if (lp_parse_duration(arg, "s", &c->bucket, err) < 0)
        return -1;
    if (c->bucket < 1000 || c->bucket % 1000) {
        snprintf(err, LP_ERRLEN, "'%s' is not a whole number of seconds "
                 "(1s or more)", arg);
        return -1;
    }
    return 0;
}

static int lateness_opt(const struct lp_optdef *o, void *base, char *arg,
                        char *err)
{
    struct lp_agg_conf *c = &((struct agg_opt *)base)->conf;

    (void)o;
    c->at_end = strcmp(arg, "end") == 0;
    if (!c->at_end && lp_parse_duration(arg, "s", &c->lateness, err) < 0) {
        snprintf(err, LP_ERRLEN, "'%s' is not a duration (like 30s, 5m) "
                 "nor end", arg);
        return -1;
    }
    return 0;
}

static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err)
{
    (void)o;
    if (!lp_sql_ident_ok(arg)) {
        snprintf(err, LP_ERRLEN, "'%s' is not a table name of letters, "
                 "digits and _ (not starting with a digit, at most 63)", arg);
        return -1;
    }
    ((struct agg_opt *)base)->conf.sql = arg;
    return 0;
}

/* ---- a run -------------------------------------------------------------- */

/* What main holds for a run; the budgets are registered with lp_log and
 * used until lp_log_end, which main calls before it returns. */
struct agg_run {
    const struct agg_opt *opt;
    struct lp_agg *a;
    struct lp_lines lines;
    struct lp_budget say_bad, say_late;
    struct lp_metrics *m;       /* --metrics */
    struct lp_agg_series series;
};

/* The engine's messages: a bad or late event on its budget. */
static int take(void *ctx, int kind)
{
    struct agg_run *r = ctx;

    return lp_budget_take(kind == LP_AGG_SAY_BAD ? &r->say_bad
                                                 : &r->say_late);
}

static void say(void *ctx, int kind, const char *msg)
{
    (void)ctx;
    if (kind == LP_AGG_SAY_BAD)
        lp_error("%s", msg);
    else
        lp_warn("%s", msg);
}

/* --metrics: the engine's counts, written when due (force: now). */
static void metrics_tick(struct agg_run *r, int force)
{
    static const struct lp_agg_stats none;

    if (r->m == NULL)
        return;
    lp_agg_series_set(&r->series, r->a ? lp_agg_stats(r->a) : &none);
    lp_metrics_tick(r->m, r->opt->com.metrics, r->opt->com.metrics_interval,
                    force);
}

/* The metrics once more at the end of the run, however it ends. */
static void metrics_end(struct agg_run *r)
{
    if (r->m == NULL)
        return;
    metrics_tick(r, 1);
    lp_metrics_free(r->m);
    r->m = NULL;
}

/* Waits for input, at most until the metrics or the line saying what
 * per-line messages were held back are due. */
static void wait_input(struct agg_run *r)
{
    struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
    int64_t iv = r->opt->com.metrics_interval;

    while (!lp_stop) {
        int64_t t = -1, due = lp_log_due();
        if (r->m)
            t = iv < 1000 ? iv : 1000;
        if (due >= 0 && (t < 0 || due < t))
            t = due;
        if (t < 0 || poll(&p, 1, (int)t) != 0)
            return;             /* read(2) blocks */
        metrics_tick(r, 0);
        lp_log_tick();
    }
}

/* stdin into the engine, to its end or a stop signal. Returns LP_AGG_OK
 * (*status 74 when stdin failed, said) or the engine's failure with err. */
static int run(struct agg_run *r, int *status, char *err)
{
    struct lp_line ln;
    uint64_t since_tick = 0;
    int rc;

    for (;;) {
        int got = lp_lines_next(&r->lines, &ln);
        if (got == LP_LINE_OK) {
            rc = lp_agg_line(r->a, ln.p, ln.len, ln.lineno, err);
            if (rc != LP_AGG_OK)
                return rc;
            if (++since_tick >= 4096) {
                metrics_tick(r, 0);
                lp_log_tick();
                since_tick = 0;
            }
            continue;
        }
        if (got == LP_LINE_LONG) {
            char why[64];
            if (ln.first) {
                snprintf(why, sizeof why, "longer than --max-line (%"
                         PRIu64 " bytes)", r->opt->max_line);
                lp_agg_bad_line(r->a, ln.lineno, why);
            }
            continue;
        }
        if (got == LP_LINE_EOF || lp_stop)
            return LP_AGG_OK;
        wait_input(r);
        if (lp_stop)
            return LP_AGG_OK;
        if (lp_lines_fill(&r->lines) < 0 && errno != EINTR &&
            errno != EAGAIN) {
            lp_error("stdin: %s", strerror(errno));
            *status = LP_EX_IOERR;
            return LP_AGG_OK;
        }
    }
}

/* The engine failed: leave as a filter does when its reader went away,
 * else say why; the exit status. */
static int failed(struct agg_run *r, int rc, const char *err)
{
    if (rc == LP_AGG_EPIPE) {
        metrics_end(r);
        tool_sigpipe_exit();    /* the reader has what it wanted */
    }
    lp_error("%s", err);
    metrics_end(r);
    return rc == LP_AGG_NOMEM ? LP_EX_SOFTWARE : LP_EX_IOERR;
}

/* What the user must read at the end; the exit status. */
static int summary(struct agg_run *r, int status)
{
    const struct lp_agg_stats *st = lp_agg_stats(r->a);
    uint64_t lines = r->lines.lineno;
    char kv[256];

    if (st->late) {
        /* events not counted: never a success */
        lp_error("%" PRIu64 " late event%s dropped, not counted: %s",
                 st->late, st->late == 1 ? "" : "s", r->opt->conf.at_end ?
                 "their buckets were printed before the end of the input, "
                 "to stay within --max-groups" :
                 "their buckets were printed already (see --lateness; "
                 "for a finite input, such as logpipe-replay's, give "
                 "--lateness end)");
    }
    if (st->bad)
        lp_error("%" PRIu64 " bad %s in %" PRIu64 " %s", st->bad,
                 st->bad == 1 ? "event" : "events", lines,
                 lines == 1 ? "line" : "lines");
    snprintf(kv, sizeof kv, "events=%" PRIu64 " bad=%" PRIu64 " late=%"
             PRIu64 " folded=%" PRIu64 " groups=%" PRIu64 " buckets=%"
             PRIu64, st->ok, st->bad, st->late, st->folded, st->emitted,
             st->buckets);
    lp_trace("done", kv);
    if (status == 0 && (st->bad || st->late))
        status = LP_EX_DATAERR;
    return status;
}

int main(int argc, char **argv)
{
    struct agg_opt opt = {
        .conf = {
            .bucket = 60000,
            .time_field = "timestamp",
            .max_groups = 100000,
            .fd = STDOUT_FILENO,
            .fd_name = "stdout",
        },
        .max_line = 1 << 20,
    };
    struct agg_run r = { .opt = &opt };
    const struct lp_agg_notify notify = { take, say, &r };
    char err[LP_ERRLEN];
    int rc, status = 0;

    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    if (lp_agg_conf_check(&opt.conf, err) < 0)
        tool_opt_error(&cli, "%s", err);
    lp_log_init("logpipe-agg", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&r.say_bad, LP_LEVEL_ERROR, "bad events");
    lp_budget_init(&r.say_late, LP_LEVEL_WARN, "late events");
    lp_sig_init(0);
    if (opt.com.metrics) {
        if ((r.m = lp_metrics_new(&lp_log_notify)) == NULL) {
            lp_error("out of memory");
            return tool_opt_end(&opt.com, LP_EX_SOFTWARE);
        }
        lp_agg_series_add(&r.series, r.m);
    }
    rc = lp_agg_new(&r.a, &opt.conf, &notify, err);
    if (rc == LP_AGG_MEMBERS) {
        metrics_end(&r);
        tool_opt_error(&cli, "%s", err);
    }
    if (rc == LP_AGG_OK && lp_lines_init(&r.lines, STDIN_FILENO,
                                         opt.max_line) < 0) {
        snprintf(err, sizeof err, "out of memory");
        rc = LP_AGG_NOMEM;
    }
    if (rc == LP_AGG_OK)
        rc = lp_agg_start(r.a, err);
    if (rc == LP_AGG_OK) {
        metrics_tick(&r, 1);
        rc = run(&r, &status, err);
    }
    if (rc == LP_AGG_OK)
        rc = lp_agg_finish(r.a, err);
    if (rc != LP_AGG_OK) {
        status = failed(&r, rc, err);
    } else {
        lp_log_end();
        status = summary(&r, status);
        metrics_end(&r);
    }
    lp_lines_free(&r.lines);
    lp_agg_free(r.a);
    return tool_opt_end(&opt.com, status);
}
