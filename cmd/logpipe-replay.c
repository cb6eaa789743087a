/* logpipe-replay.c -- archives (and the stream) back to NDJSON */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "lp_exit.h"
#include "lp_jq.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_replay.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "tool_msg.h"
#include "tool_opt.h"
#include "tool_shards.h"

/*
 * The engine (lib/lp_replay.c) reads the inputs and prints what passes;
 * this file is its command line, the rationing of its per-line messages
 * (the budgets are the tool's) and its last words: the counts, the
 * --where outcome, the metrics and the exit status.
 */

struct replay_opt {
    struct lp_common com;
    const char *layout;
    const char *time_field;
    const char *where;
    const char *field;
    int64_t since, until;
    const struct lp_optdef *has_since, *has_until;
    int64_t now;                /* of --since and --until: one for both */
    int strip_id, dedup, sort, from_redis;
    uint64_t max_line;
    char **paths;
    int npaths;
};

static int when_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err);

#define OPT struct replay_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_DIR,
    { "layout", 0, LP_STR(OPT, layout), "TEMPLATE",
      "the drains' layout, to read days from names" },
    { "since", 0, LP_CALL(OPT, since, when_opt), "WHEN",
      "events at or after WHEN (2026-11-21,\n"
      "RFC 3339, epoch seconds, or 2h ago as 2h)",
      LP_GIVEN(OPT, has_since) },
    { "until", 0, LP_CALL(OPT, until, when_opt), "WHEN",
      "events before WHEN", LP_GIVEN(OPT, has_until) },
    { "time-field", 0, LP_STR(OPT, time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "where", 0, LP_STR(OPT, where), "JQ",
      "only events for which JQ is true" },
    { "strip-id", 0, LP_FLAG(OPT, strip_id), NULL,
      "print events without their _id" },
    { "dedup", 0, LP_FLAG(OPT, dedup), NULL, "drop an _id seen before" },
    { "sort", 0, LP_FLAG(OPT, sort), NULL,
      "merge the files of each day by event time" },
    { "from-redis", 0, LP_FLAG(OPT, from_redis), NULL,
      "read the stream (XRANGE), not files" },
    LP_LONG_REDIS, LP_LONG_TLS,
    LP_LONG_STREAM, LP_LONG_DLQ, LP_LONG_PASSWORD_FILE,
    { "field", 0, LP_STR(OPT, field), "NAME",
      "--from-redis: entry field holding the event",
      .flags = LP_OF_NONEMPTY },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest line accepted (16M)", .min = 2, .max = 1 << 30 },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "dir", "archive root when no PATH is given (./logs)", 0 },
    { "redis", "Redis URL, for --from-redis", 0 },
    { "dlq", "WAL records for this key are not events", 0 },
    { "verbose", "more messages: every damaged line", 0 },
    { "quiet", "only errors; of damaged lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-replay",
    .synopsis =
"usage: logpipe-replay [options] [PATH...]\n"
"Print the events of archives (.jsonl, .jsonl.gz, WAL segments, '-' for\n"
"stdin; directories walked in day order, default --dir) or of the stream\n"
"(--from-redis: every shard of a sharded stream, _id <shard>-<ms>-<seq>)\n"
"as NDJSON.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 damaged input (the rest was printed) or --where\n"
"failed on some events, 66 a PATH cannot be opened, 69 Redis unreachable,\n"
"74 I/O error, 78 bad --where (or one that failed on every event).\n"
"See logpipe-replay(1).\n",
    .opts = longopts,
    .notes = notes,
    .operands = 1,
};

static int when_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err)
{
    struct replay_opt *r = base;

    if (r->now == 0)
        r->now = lp_now_ms();
    return lp_parse_when(arg, r->now, (int64_t *)((char *)base + o->off),
                         err);
}

static void parse_args(struct replay_opt *opt, int argc, char **argv)
{
    int i = tool_opt_parse(&cli, argc, argv, opt, &opt->com);

    opt->paths = argv + i;
    opt->npaths = argc - i;
    if (opt->from_redis && opt->npaths)
        tool_opt_error(&cli, "--from-redis reads the stream, not PATHs");
    if (opt->has_since && opt->has_until && opt->until <= opt->since)
        tool_opt_error(&cli, "--until is not after --since");
}

/* The per-line messages, rationed: a few said, the rest counted (lp_log.h).
 * In main's frame, which outlives every use: lp_log_end is called before
 * main returns, and nothing at exit looks at the budgets. */
struct budgets {
    struct lp_budget bad, gz;
};

/* Whether the engine makes a message about a line: damaged lines and
 * gzip members on their budgets, --where's (the first LP_JQ_NAMED
 * already) but with -q (lp_replay.h) */
static int take(void *ctx, int level)
{
    struct budgets *b = ctx;

    switch (level) {
    case LP_REPLAY_SAY_DAMAGED:
        return lp_budget_take(&b->bad);
    case LP_REPLAY_SAY_GZ:
        return lp_budget_take(&b->gz);
    default:                    /* LP_REPLAY_SAY_WHERE */
        return lp_log_verbosity() >= 0;
    }
}

/* The engine's notices, said as they come (lp_replay.h); take allowed
 * those about a line */
static void say(void *ctx, int level, const char *msg)
{
    (void)ctx;
    switch (level) {
    case LP_REPLAY_SAY_WARN:
        lp_warn("%s", msg);
        break;
    case LP_REPLAY_SAY_DEBUG:
        lp_debug("%s", msg);
        break;
    case LP_REPLAY_SAY_INFO:
        lp_info("%s", msg);
        break;
    default:
        lp_error("%s", msg);
    }
}

/* --metrics, at the end whatever the status (rp NULL: nothing was read);
 * a file that cannot be written is said and changes nothing else. */
static void write_metrics(const struct replay_opt *opt,
                          const struct lp_replay *rp)
{
    static const struct lp_replay_result none;
    const struct lp_replay_result *r = rp ? lp_replay_result(rp) : &none;
    char err[LP_ERRLEN];
    struct lp_metrics *m;

    if (opt->com.metrics == NULL)
        return;
    m = lp_metrics_new(&lp_log_notify);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"printed\"",
                             "Lines read, by what became of them."),
                  (double)r->printed);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"damaged\"", ""), (double)r->damaged);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"filtered\"", ""),
                  (double)(r->lines > r->printed + r->damaged ?
                           r->lines - r->printed - r->damaged : 0));
    lp_metric_set(lp_counter(m, "logpipe_replay_files_total", "",
                             "Inputs read."), (double)r->inputs);
    if (lp_metrics_write(m, opt->com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

/* The end of every run: err said (NULL: nothing to say), the metrics, the
 * status. */
static int end(struct replay_opt *opt, struct lp_replay *rp, int status,
               const char *err)
{
    if (err && err[0])
        lp_error("%s", err);
    write_metrics(opt, rp);
    lp_replay_free(rp);
    return tool_opt_end(&opt->com, status);
}

/* lp_replay_conf.reroute's: shard i over a connection of its own, or the
 * stream's connected again (its route reads the slot map again) */
struct reroute_ctx {
    struct lp_common *com;
    struct tool_shards *sh;
};

static int reroute(void *ctx, int shard, struct lp_redis **r, char *err)
{
    struct reroute_ctx *x = ctx;

    if (shard < 0)
        return lp_redis_connect(*r, err) < 0 ? -1 : 0;
    if (tool_shards_reroute(x->com, 10000, x->sh, (unsigned)shard, err) < 0)
        return -1;
    *r = x->sh->r[shard];
    return 0;
}

/* Where the inputs come from: the stream, or PATHs (--dir by default).
 * Returns 0, or the status to end with (err says why). */
static int add_inputs(struct replay_opt *opt, struct lp_replay *rp,
                      struct lp_redis **r, struct tool_shards *sh, char *err)
{
    if (opt->from_redis) {
        int rc;
        /* a sharded stream: every shard, over its node's connection */
        if ((rc = tool_shards_open(&opt->com, 10000, sh, err)) != 0)
            return rc;
        for (unsigned i = 0; i < sh->n; i++)
            if (lp_replay_add_shard(rp, sh->r[i], sh->name[i], (int)i,
                                    err) < 0)
                return LP_EX_SOFTWARE;
        if (sh->n)
            return 0;
        if ((*r = tool_redis(&opt->com, err)) == NULL)
            return LP_EX_CONFIG;
        if ((rc = lp_redis_connect(*r, err)) < 0)
            return rc == LP_REDIS_EAUTH ? LP_EX_CONFIG : LP_EX_UNAVAILABLE;
        return lp_replay_add_stream(rp, *r, opt->com.stream, err) < 0 ?
               LP_EX_SOFTWARE : 0;
    }
    if (opt->npaths == 0)
        return lp_replay_add_path(rp, opt->com.dir, err) < 0 ?
               LP_EX_SOFTWARE : 0;
    for (int i = 0; i < opt->npaths; i++)
        if (lp_replay_add_path(rp, opt->paths[i], err) < 0)
            return LP_EX_SOFTWARE;
    return 0;
}

int main(int argc, char **argv)
{
    struct replay_opt opt = {
        .layout = "{service}/%Y-%m-%d.jsonl",
        .time_field = "timestamp",
        .field = "data",
        .max_line = 16 << 20,
    };
    struct budgets say_budgets;
    struct lp_replay_conf conf;
    const struct lp_replay_result *res;
    struct lp_replay *rp = NULL;
    struct lp_redis *r = NULL;
    struct tool_shards sh = { 0 };
    struct reroute_ctx rctx = { &opt.com, &sh };
    char err[LP_ERRLEN], msg[LP_ERRLEN];
    int st;

    parse_args(&opt, argc, argv);
    lp_log_init("logpipe-replay", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&say_budgets.bad, LP_LEVEL_ERROR, "damaged lines");
    lp_budget_init(&say_budgets.gz, LP_LEVEL_ERROR, "damaged gzip members");
    lp_sig_init(0);
    if (opt.from_redis && (st = tool_cluster(&opt.com, 10000, err)) != 0)
        return end(&opt, NULL, st, err);
    conf = (struct lp_replay_conf){
        .layout = opt.layout,
        .time_field = opt.time_field,
        .where = opt.where,
        .field = opt.field,
        .dlq = opt.com.dlq,
        .since = opt.since,
        .until = opt.until,
        .has_since = opt.has_since != NULL,
        .has_until = opt.has_until != NULL,
        .strip_id = opt.strip_id,
        .dedup = opt.dedup,
        .sort = opt.sort,
        .max_line = opt.max_line,
        .out_fd = STDOUT_FILENO,
        .out_name = "stdout",
        .notify = { say, &say_budgets },
        .take = take,
        /* a stream in a Redis Cluster whose slots move while read */
        .reroute = opt.com.cluster ? reroute : NULL,
        .reroute_ctx = &rctx,
        .reroute_timeout = 10000,
    };
    if ((st = lp_replay_new(&conf, &rp, err)) != 0)
        return end(&opt, NULL, st, err);
    if ((st = add_inputs(&opt, rp, &r, &sh, err)) != 0) {
        lp_redis_free(r);
        tool_shards_free(&sh);
        return end(&opt, rp, st, err);
    }
    if (lp_replay_run(rp, err) < 0) {
        lp_redis_free(r);
        tool_shards_free(&sh);
        if (lp_replay_result(rp)->epipe) {
            /* the reader has what it wanted (| head): leave quietly */
            write_metrics(&opt, rp);
            tool_sigpipe_exit();
        }
        return end(&opt, rp, lp_replay_result(rp)->status, err);
    }
    lp_log_end();
    res = lp_replay_result(rp);
    if (res->damaged)
        lp_error("%" PRIu64 " damaged %s in %" PRIu64 " %s", res->damaged,
                 res->damaged == 1 ? "line" : "lines", res->damaged_files,
                 res->damaged_files == 1 ? "file" : "files");
    if (lp_replay_where_outcome(rp, opt.com.verbosity, msg) != 0)
        lp_error("--where %s: they were not printed", msg);
    lp_info("%" PRIu64 " lines read, %" PRIu64 " printed, %" PRIu64
            " damaged", res->lines, res->printed, res->damaged);
    st = res->status;
    lp_redis_free(r);
    tool_shards_free(&sh);
    return end(&opt, rp, st, NULL);
}
