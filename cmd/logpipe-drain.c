/* logpipe-drain.c -- a consumer group into per-key, per-day JSONL files */
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "lp_drain.h"
#include "lp_exit.h"
#include "lp_json.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "tool_msg.h"
#include "tool_opt.h"

/*
 * The options, usage and what the user reads; the engine is lib/lp_drain.c
 * (struct lp_drain: the read -> sink -> durable -> ack loop) over
 * lib/lp_group.c (every Redis command of a consumer).
 */


static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err);

#define OPT struct lp_drain_conf
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_TLS,
    LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ, LP_LONG_DIR,
    LP_LONG_PASSWORD_FILE,
    { "consumer", 'c', LP_STR(OPT, consumer), "NAME",
      "consumer name (the host name); a live drain\n"
      "under the same name makes this one exit 75",
      .flags = LP_OF_NONEMPTY },
    { "count", 'n', LP_UINT(OPT, count), "N", "entries per read (1000)",
      .min = 1, .max = 100000 },
    { "block", 0, LP_DURATION(OPT, block), "DUR",
      "wait this long for new entries (2s; bare = ms)", .unit = "ms",
      .min = 1, .max = 3600000 },
    { "timeout", 't', LP_DURATION(OPT, timeout), "DUR",
      "give up when Redis fails this long (30s)" },
    { "layout", 0, LP_STR(OPT, layout), "TEMPLATE",
      "file path below --dir\n({service}/%Y-%m-%d.jsonl)" },
    { "shared-dir", 0, LP_FLAG(OPT, shared_dir), NULL,
      "write into a --dir that drains of another group\n"
      "or stream write into too (else: exit 78)" },
    { "stdout", 0, LP_FLAG(OPT, to_stdout), NULL,
      "write archive lines to stdout instead" },
    { "exec", 0, LP_STR(OPT, exec), "CMD",
      "pipe each batch to sh -c CMD instead; acknowledge\n"
      "when it exits 0", .flags = LP_OF_NONEMPTY },
    { "exec-timeout", 0, LP_DURATION(OPT, exec_timeout), "DUR",
      "kill CMD after this long (60s)", .min = 1 },
    { "sql", 0, LP_CALL(OPT, sql, sql_opt), "TABLE",
      "--stdout or --exec batches as idempotent SQL\n"
      "INSERTs into TABLE (sqlite3, psql)" },
    { "once", 0, LP_FLAG(OPT, once), NULL,
      "drain what is there, then exit" },
    { "field", 0, LP_STR(OPT, field), "NAME",
      "entry field holding the event (data)", .flags = LP_OF_NONEMPTY },
    { "time-field", 0, LP_STR(OPT, time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "where", 0, LP_STR(OPT, where), "JQ",
      "archive only events for which JQ is true" },
    { "claim-idle", 0, LP_DURATION(OPT, claim_idle), "DUR",
      "take over entries idle this long (60s)", .min = 1 },
    { "max-deliveries", 0, LP_UINT(OPT, max_deliveries), "N",
      "DLQ an entry delivered more often to drains\n"
      "that did not finish (5); failures of ours\n"
      "(full disk, failing --exec) do not count", .min = 1,
      .max = 1000000 },
    { "keep", 0, LP_DURATION(OPT, keep), "DUR",
      "keep acknowledged entries this long (0)" },
    { "max-depth", 0, LP_UINT(OPT, max_depth), "N",
      "deepest nesting accepted (64)", .min = 1, .max = 10000 },
    { "max-open", 0, LP_UINT(OPT, max_open), "N",
      "day files kept open (4096, or what the\nlimit on descriptors allows)",
      .min = 1, .max = 100000 },
    { "max-files", 0, LP_UINT(OPT, max_files), "N",
      "day files one batch writes; more: a new batch\n(--max-open)",
      .min = 1, .max = 100000 },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest event archived; longer: DLQ (1M)", .min = 2,
      .max = 1 << 30 },
    { "max-members", 0, LP_UINT(OPT, max_members), "N",
      "most members of one object or array (10000)", .min = 1,
      .max = UINT32_MAX },
    { "max-dlq-size", 0, LP_SIZE(OPT, max_dlq_size), "SIZE",
      "most bytes of an event kept in the DLQ\n(--max-line)", .min = 1,
      .max = 1 << 30 },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "dir", "archive root, made if missing (./logs, which\nmust exist)", 0 },
    TOOL_NOTE_METRICS_LIVE,
    { "verbose", "more messages: every DLQ move, a line per batch", 0 },
    { "quiet", "only errors, none about single entries", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-drain",
    .synopsis =
"usage: logpipe-drain [options]\n"
"Read a Redis stream as a consumer group member and archive each event in\n"
"per-key, per-day JSONL files (or on stdout); acknowledge only what is on\n"
"disk.\n"
"\n",
    .epilog =
"Exit: 0 ok (also after SIGTERM), 64 usage, 65 --where failed on some\n"
"events (in the DLQ), 69 Redis unreachable, 70 internal error, 73 cannot\n"
"create output, 74 write or fsync failed, 75 a live drain runs under this\n"
"consumer name, or --once --exec: the command fails whatever the entry,\n"
"78 bad configuration (also: --exec CMD cannot be run, --where failed on\n"
"every event, --dir used by another group).\n"
"See logpipe-drain(1).\n",
    .opts = longopts,
    .notes = notes,
};

static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err)
{
    (void)o;
    ((struct lp_drain_conf *)base)->sql = arg;
    if (!lp_sql_ident_ok(arg)) {
        snprintf(err, LP_ERRLEN, "'%s' is not a plain table name "
                 "([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)", arg);
        return -1;
    }
    return 0;
}

/* Descriptors for --max-open files, as many kept until their sync (the
 * drain journal: see lp_archive.h) and the rest: the soft limit is raised
 * as far as the hard one allows (the default of 1024 would not hold 4096
 * files), and the default --max-open lowered to what fits. */
static void fit_max_open(struct lp_drain_conf *c)
{
    struct rlimit rl;
    rlim_t want = 2 * (rlim_t)c->max_open + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur >= want)
        return;
    uint64_t fit = rl.rlim_cur > 96 ? ((uint64_t)rl.rlim_cur - 64) / 2 : 16;
    if (c->max_open != lp_drain_defaults.max_open)
        lp_warn("--max-open %" PRIu64 ": the limit on open files (%llu, "
                    "ulimit -n) allows %" PRIu64, c->max_open,
                    (unsigned long long)rl.rlim_cur, fit);
    c->max_open = fit;
    if (c->max_files > fit)
        c->max_files = fit;
}

static void parse_args(int argc, char **argv, struct lp_drain_conf *c)
{
    tool_opt_parse(&cli, argc, argv, c, &c->com);
    if (c->max_files == 0)
        c->max_files = c->max_open;
    if (c->max_files > c->max_open) {
        /* the files of a batch stay open until it is synced */
        tool_opt_error(&cli, "--max-files %" PRIu64 " is more than "
                       "--max-open %" PRIu64, c->max_files, c->max_open);
    }
    if (c->max_dlq_size == 0)
        c->max_dlq_size = c->max_line;
    if (c->exec && c->to_stdout)
        tool_opt_error(&cli, "--exec and --stdout exclude each other");
    if (c->sql && !c->exec && !c->to_stdout)
        tool_opt_error(&cli, "--sql needs --exec or --stdout");
}

/* per-entry messages: a few said, the rest counted (lp_log.h) */
struct says {
    struct lp_budget dlq, deleted, dlq_failed;
};

/* The engine's notify (lp_drain.h): each level as lp_log says it */
static void say(void *ctx, int level, const char *msg)
{
    struct says *b = ctx;

    switch (level) {
    case LP_DRAIN_SAY_DLQ:
        lp_budget_say(&b->dlq, "%s", msg);
        break;
    case LP_DRAIN_SAY_DELETED:
        lp_budget_say(&b->deleted, "%s", msg);
        break;
    case LP_DRAIN_SAY_DLQ_FAILED:
        lp_budget_say(&b->dlq_failed, "%s", msg);
        break;
    case LP_DRAIN_SAY_TRACE:
        lp_trace("batch", msg);
        break;
    default:
        lp_log_notify.fn(lp_log_notify.ctx, level, msg);
    }
}

/* What a run that ended by itself says: its counts, --where's failures */
static int summary(const struct lp_drain_result *r)
{
    if (r->dlq)
        lp_warn("%" PRIu64 " %s to the DLQ", r->dlq,
                r->dlq == 1 ? "entry moved" : "entries moved");
    if (r->deleted)
        lp_warn("%" PRIu64 " %s deleted from the stream before %s archived",
                r->deleted, r->deleted == 1 ? "entry was" : "entries were",
                r->deleted == 1 ? "it was" : "they were");
    lp_info("%" PRIu64 " entries read, %" PRIu64 " archived, %" PRIu64
            " already archived, %" PRIu64 " to the DLQ, %" PRIu64
            " filtered out, %" PRIu64 " deleted, %" PRIu64 " claimed, %"
            PRIu64 " trimmed", r->read, r->archived, r->dups, r->dlq,
            r->filtered, r->deleted, r->claimed, r->trimmed);
    if (r->status)
        lp_error("--where %s: moved to the DLQ as where-error",
                 r->where_msg);
    return r->status;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    struct lp_drain_conf conf = lp_drain_defaults;
    struct says says;
    const struct lp_notify nt = { say, &says };
    struct lp_drain_result res;
    struct lp_drain *d = NULL;
    struct lp_redis *r;
    int st;

    parse_args(argc, argv, &conf);
    conf.log_tick = lp_log_tick;
    conf.log_due = lp_log_due;
    lp_log_init("logpipe-drain", conf.com.log_format, conf.com.verbosity);
    fit_max_open(&conf);
    lp_budget_init(&says.dlq, LP_LEVEL_WARN, "entries to the DLQ");
    lp_budget_init(&says.deleted, LP_LEVEL_WARN, "entries deleted before "
                   "they were archived");
    lp_budget_init(&says.dlq_failed, LP_LEVEL_ERROR, "failed moves to the "
                   "DLQ");
    lp_sig_init(1);
    if ((st = tool_cluster(&conf.com, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    if ((d = lp_drain_new(&conf, &nt, err)) == NULL) {
        lp_error("%s", err);
        st = LP_EX_SOFTWARE;
        goto out;
    }
    if ((st = lp_drain_open(d, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    if ((r = tool_redis(&conf.com, err)) == NULL) {
        lp_error("%s", err);
        st = LP_EX_CONFIG;
        goto out;
    }
    st = lp_drain_run(d, r, &res);
    switch (res.end) {
    case LP_DRAIN_DONE:
        lp_log_end();
        st = summary(&res);
        break;
    case LP_DRAIN_DLQ_REFUSED:
        lp_log_end();
        lp_error("--dlq %s cannot take dead letters: fix it, or give "
                 "another --dlq", conf.com.dlq);
        break;
    case LP_DRAIN_SIGPIPE:
        lp_drain_free(d);       /* its metrics, written last */
        tool_sigpipe_exit();
    }
out:
    lp_drain_free(d);
    return tool_opt_end(&conf.com, st);
}
