/* logpipe-dlq.c -- the operator's view of the dead letter stream */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_dlqtool.h"
#include "lp_exit.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_shards.h"
#include "tool_opt.h"
#include "tool_shards.h"

#include "tool_msg.h"

/*
 * list, show, stats, retry, purge, export: the engine is lp_dlqtool.c
 * (paging, --where, the atomic retry and purge); the records lp_dlq.c.
 * Here: the command line, what the user reads on stderr, the exit status.
 */

struct dlq_opt {
    struct lp_common com;
    int cmd;                    /* LP_DLQTOOL_*, -1 before the command word */
    uint64_t limit;
    const char *where;
    int all, dry_run;
    int64_t older_than;
    const struct lp_optdef *has_older;
    int64_t timeout;
    char **ids;
    int nids;
};

#define OPT struct dlq_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_TLS,
    LP_LONG_STREAM, LP_LONG_DLQ, LP_LONG_PASSWORD_FILE,
    { "limit", 0, LP_UINT(OPT, limit), "N",
      "at most N entries (printed, counted, retried\nor purged)",
      .min = 1 },
    { "where", 0, LP_STR(OPT, where), "JQ",
      "only entries for which JQ is true" },
    { "all", 0, LP_FLAG(OPT, all), NULL, "every entry (retry, purge)" },
    { "older-than", 0, LP_DURATION(OPT, older_than), "DUR",
      "entries that failed longer ago (purge)", LP_GIVEN(OPT, has_older) },
    { "dry-run", 'n', LP_FLAG(OPT, dry_run), NULL,
      "say what retry or purge would do" },
    { "timeout", 't', LP_DURATION(OPT, timeout), "DUR",
      "give up on Redis after DUR (10s)" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "stream", "retry's target when an entry names none\n(logs:stream)",
      0 },
    { "verbose", "more messages: every entry that failed", 0 },
    { "quiet", "only errors; of failed entries only their count", 0 },
    { NULL, NULL, 0 }
};

static void take_word(void *o, char *w, int argc);

static const struct tool_cmd cli = {
    .name = "logpipe-dlq",
    .synopsis =
"usage: logpipe-dlq [options] COMMAND [ID...]\n"
"Inspect and repair the dead letter stream. Commands:\n"
"  list [--limit N] [--where JQ]    the entries, one JSON object a line\n"
"  show ID...                       these entries\n"
"  stats                            counts per error and stage, oldest, newest\n"
"  retry ID...|--all [--where JQ]   back to their source stream, atomically\n"
"                                   removed from the DLQ\n"
"  purge ID...|--all|--older-than DUR [--where JQ] [--dry-run]\n"
"  export [--limit N] [--where JQ]  the bare events, for | logpipe-send\n"
"A sharded stream: every shard's DLQ (list, export: merged by time); an\n"
"entry's ID is <shard>-<ms>-<seq> (2-1700000000000-0).\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 an ID not in the DLQ (show), not an ID, an\n"
"entry that cannot be retried, or --where failed on some entries, 69 Redis\n"
"unreachable, 70 internal error, 74 output error, 78 bad configuration\n"
"(--where failing on every entry too) or permission refused.\n"
"See logpipe-dlq(1).\n",
    .opts = longopts,
    .notes = notes,
    /* options may come before and after the command and its IDs */
    .operand = take_word,
};

/* in the order of enum lp_dlqtool_cmd */
static const char *const cmds[] = { "list", "show", "stats", "retry",
                                    "purge", "export" };

/* A word of the command line: the command first, then IDs. */
static void take_word(void *o, char *w, int argc)
{
    struct dlq_opt *d = o;

    if (d->cmd < 0) {
        for (int i = 0; i < 6; i++)
            if (strcmp(w, cmds[i]) == 0)
                d->cmd = i;
        if (d->cmd < 0)
            tool_opt_error(&cli, "unknown command '%s' (list, show, stats, "
                           "retry, purge, export)", w);
        return;
    }
    if (d->ids == NULL && (d->ids = calloc((size_t)argc,
                                           sizeof *d->ids)) == NULL) {
        fprintf(stderr, "logpipe-dlq: out of memory\n");
        exit(LP_EX_SOFTWARE);
    }
    if (d->nids < argc)
        d->ids[d->nids++] = w;
}

/* What the command needs, and what it does not take. */
static void check_command(const struct dlq_opt *o)
{
    if (o->cmd < 0)
        tool_opt_error_hint(&cli, "a command is needed (list, show, stats, "
                            "retry, purge, export)");
    int ret = o->cmd == LP_DLQTOOL_RETRY, pur = o->cmd == LP_DLQTOOL_PURGE;
    int wants_ids = o->cmd == LP_DLQTOOL_SHOW || ret || pur;
    int picks = (o->nids > 0) + o->all + (o->has_older && pur);
    if (o->cmd == LP_DLQTOOL_SHOW && o->nids == 0)
        tool_opt_error(&cli, "show needs IDs");
    if ((ret || pur) && picks != 1)
        tool_opt_error(&cli, "%s needs IDs, or --all%s (one of them)",
                       cmds[o->cmd], pur ? ", or --older-than" : "");
    if (!wants_ids && o->nids)
        tool_opt_error(&cli, "%s takes no IDs", cmds[o->cmd]);
    if (o->has_older && !pur)
        tool_opt_error(&cli, "--older-than is for purge");
}

/* What the engine says about single entries: a few said, the rest
 * counted (lp_budget: static storage, for lp_log_end). */
struct says {
    struct lp_budget skipped, failed, unknown;
};

/* Whether the engine makes a message: asked before it does (lp_dlqtool.h) */
static int take(void *ctx, enum lp_dlqtool_say what)
{
    struct says *s = ctx;

    switch (what) {
    case LP_DLQTOOL_SKIPPED:
        return lp_budget_take(&s->skipped);
    case LP_DLQTOOL_FAILED:
        return lp_budget_take(&s->failed);
    case LP_DLQTOOL_UNKNOWN:
        return lp_budget_take(&s->unknown);
    case LP_DLQTOOL_GONE:
        return lp_log_verbosity() >= 1;         /* an info: -v */
    case LP_DLQTOOL_WHERE:
        return lp_log_verbosity() >= 0;         /* the first named, but -q */
    case LP_DLQTOOL_MOVED:
        return lp_log_verbosity() >= 1;         /* an info: -v */
    }
    return 1;
}

/* A message take allowed, at its budget's level */
static void say(void *ctx, enum lp_dlqtool_say what, const char *msg)
{
    (void)ctx;
    switch (what) {
    case LP_DLQTOOL_SKIPPED:
        lp_warn("%s", msg);
        break;
    case LP_DLQTOOL_GONE:
    case LP_DLQTOOL_MOVED:
        lp_info("%s", msg);
        break;
    case LP_DLQTOOL_FAILED:
    case LP_DLQTOOL_UNKNOWN:
    case LP_DLQTOOL_WHERE:
        lp_error("%s", msg);
        break;
    }
}

/* lp_dlqtool_conf.reroute's: shard i over a connection of its own, or an
 * unsharded DLQ's connected again (its route reads the slot map again) */
struct reroute_ctx {
    struct lp_common *com;
    int64_t timeout;
    struct tool_shards *sh;
};

static int reroute(void *ctx, int shard, struct lp_redis **r, char *err)
{
    struct reroute_ctx *x = ctx;

    if (shard < 0)
        return lp_redis_connect(*r, err) < 0 ? -1 : 0;
    if (tool_shards_reroute(x->com, x->timeout, x->sh, (unsigned)shard,
                            err) < 0)
        return -1;
    *r = x->sh->r[shard];
    return 0;
}

/*
 * A sharded stream: the command over each shard's DLQ (tool_shards.h):
 * list and export merged by time (lp_dlqtool_run_merged), stats, retry
 * and purge shard by shard; IDs "<i>-<ms>-<seq>", each run on its shard
 * in the order given. Returns as lp_dlqtool_run; *bad: IDs that
 * are not a shard's (said).
 */
static int run_shards(const struct dlq_opt *o, struct lp_dlqtool *t,
                      const struct tool_shards *sh, struct says *ss,
                      int *bad, char *err)
{
    int rc = 0;

    if (o->nids == 0 && (o->cmd == LP_DLQTOOL_LIST ||
                         o->cmd == LP_DLQTOOL_EXPORT))
        return lp_dlqtool_run_merged(t, &(struct lp_dlqtool_shardv){
                                         sh->n, sh->dlq, sh->name, sh->r },
                                     err);
    if (o->nids == 0) {
        for (unsigned i = 0; i < sh->n && rc == 0 && !lp_stop; i++) {
            lp_dlqtool_shard(t, i, sh->dlq[i], sh->name[i]);
            rc = lp_dlqtool_run(t, sh->r[i], err);
        }
        if (rc == 0 && o->cmd == LP_DLQTOOL_STATS)
            rc = lp_dlqtool_stats(t, err);
        return rc;
    }
    for (int k = 0; k < o->nids && rc == 0 && !lp_stop; k++) {
        uint64_t ms, seq;
        int i;
        char *id = o->ids[k];
        if (lp_shard_id_parse(id, strlen(id), &i, &ms, &seq) != 1 ||
            (unsigned)i >= sh->n) {
            if (lp_budget_take(&ss->unknown))
                lp_error("'%s' is not an entry ID of a shard of %s (like "
                         "%u-1700000000000-0: the shard, 0 to %u, then the "
                         "entry)", id, o->com.stream, sh->n - 1, sh->n - 1);
            *bad = 1;
            continue;
        }
        lp_dlqtool_shard(t, (unsigned)i, sh->dlq[i], sh->name[i]);
        lp_dlqtool_set_ids(t, (char *const[]){ strchr(id, '-') + 1 }, 1);
        rc = lp_dlqtool_run(t, sh->r[i], err);
    }
    return rc;
}

/* --metrics, at every end after the command line (a reader gone among
 * them); a file that cannot be written is said and changes nothing else. */
static void write_metrics(const struct dlq_opt *o, const struct lp_dlqtool *t)
{
    char err[LP_ERRLEN], l[64];
    struct lp_metrics *m;
    const struct lp_dlqtool_result *res = t ? lp_dlqtool_result(t) : NULL;

    if (o->com.metrics == NULL)
        return;
    m = lp_metrics_new(&lp_log_notify);
    snprintf(l, sizeof l, "command=\"%s\"", cmds[o->cmd]);
    lp_metric_set(lp_counter(m, "logpipe_dlq_entries_total", l,
                             "Entries the command acted on."),
                  res ? (double)res->done : 0);
    lp_metric_set(lp_counter(m, "logpipe_dlq_missing_total", l,
                             "Entries named that were gone already."),
                  res ? (double)res->missing : 0);
    if (lp_metrics_write(m, o->com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

/* What the budgets held back, and the run in one line. */
static int say_end(const struct dlq_opt *o, const struct says *s,
                   const struct lp_dlqtool *t, int bad)
{
    const struct lp_dlqtool_result *res = lp_dlqtool_result(t);
    char err[LP_ERRLEN];
    int status = res->status, rc;

    if (bad && status == LP_EX_OK)
        status = LP_EX_DATAERR;     /* an ID of no shard */

    lp_log_end();
    if (s->skipped.total)
        lp_warn("%" PRIu64 " %s not exported", s->skipped.total,
                s->skipped.total == 1 ? "entry" : "entries");
    if (s->failed.total)
        lp_error("%" PRIu64 " %s not %s", s->failed.total,
                 s->failed.total == 1 ? "entry" : "entries",
                 o->cmd == LP_DLQTOOL_RETRY ? "retried" : "purged");
    if (s->unknown.total)
        lp_error("%" PRIu64 " unknown %s", s->unknown.total,
                 s->unknown.total == 1 ? "ID" : "IDs");
    if ((rc = lp_dlqtool_where_outcome(t, o->com.verbosity, err)) != 0) {
        /* 65, or 78 when it failed on every entry it ran on; a worse
         * status stays */
        lp_error("--where %s: they were not selected", err);
        if (status == LP_EX_OK || status == LP_EX_DATAERR)
            status = rc;
    }
    if (o->cmd == LP_DLQTOOL_RETRY || o->cmd == LP_DLQTOOL_PURGE)
        lp_info("%" PRIu64 " entries %s%s, %" PRIu64 " gone already",
                res->done, o->cmd == LP_DLQTOOL_RETRY ? "retried" : "purged",
                o->dry_run ? " (dry run)" : "", res->missing);
    return status;
}

int main(int argc, char **argv)
{
    static struct says says;
    struct dlq_opt opt = { .cmd = -1, .timeout = 10000 };
    struct lp_dlqtool *t = NULL;
    struct lp_redis *r = NULL;
    struct tool_shards sh = { 0 };
    char err[LP_ERRLEN];
    int rc, status, bad = 0;

    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    check_command(&opt);
    lp_log_init("logpipe-dlq", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&says.skipped, LP_LEVEL_WARN, "entries not exported");
    lp_budget_init(&says.failed, LP_LEVEL_ERROR, opt.cmd == LP_DLQTOOL_RETRY ?
                   "entries not retried" : "entries not purged");
    lp_budget_init(&says.unknown, LP_LEVEL_ERROR, "unknown IDs");
    lp_sig_init(0);
    if ((status = tool_cluster(&opt.com, opt.timeout, err)) != 0) {
        lp_error("%s", err);
        return tool_opt_end(&opt.com, status);
    }
    /* a sharded stream: each shard's DLQ over its node */
    if ((status = tool_shards_open(&opt.com, opt.timeout, &sh, err)) != 0) {
        lp_error("%s", err);
        tool_shards_free(&sh);
        return tool_opt_end(&opt.com, status);
    }

    struct lp_dlqtool_conf conf = {
        .cmd = (enum lp_dlqtool_cmd)opt.cmd,
        .dlq = !sh.n ? opt.com.dlq : opt.com.dlq_set ? opt.com.dlq
                                                      : "logs:dlq",
        .stream = opt.com.stream,
        .shards_of = sh.n ? opt.com.stream : NULL,
        .limit = opt.limit,
        .where = opt.where,
        .dry_run = opt.dry_run,
        .older = opt.has_older != NULL,
        .older_than = opt.older_than,
        .ids = opt.ids,
        .nids = opt.nids,
        .out_fd = STDOUT_FILENO,
        .out_name = "stdout",
        .say = say,
        .take = take,
        .ctx = &says,
        /* reads of a DLQ whose slot moves, in a Redis Cluster */
        .reroute = opt.com.cluster ? reroute : NULL,
        .reroute_ctx = &(struct reroute_ctx){ &opt.com, opt.timeout, &sh },
        .reroute_timeout = opt.timeout,
        /* retry and purge through a moving slot */
        .cluster = tool_cluster_get(),
        .test_pause = getenv("LOGPIPE_TEST_DLQ_PAUSE"),
    };
    if ((status = lp_dlqtool_new(&conf, &t, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    if (sh.n) {
        rc = run_shards(&opt, t, &sh, &says, &bad, err);
        goto ran;
    }
    if ((r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        status = LP_EX_CONFIG;
        goto out;
    }
    lp_redis_set_timeout(r, opt.timeout);
    if ((rc = lp_redis_connect(r, err)) < 0) {
        lp_error("%s", err);
        status = rc == LP_REDIS_EAUTH ? LP_EX_CONFIG : LP_EX_UNAVAILABLE;
        goto out;
    }
    rc = lp_dlqtool_run(t, r, err);
ran:
    if (rc == LP_DLQTOOL_EPIPE) {
        write_metrics(&opt, t);
        tool_sigpipe_exit();
    }
    if (rc > 0) {
        /* it stopped: what ends the run, nothing more */
        lp_error("%s", err);
        status = rc;
        goto out;
    }
    status = say_end(&opt, &says, t, bad);
out:
    write_metrics(&opt, t);
    free(opt.ids);
    lp_dlqtool_free(t);
    lp_redis_free(r);
    tool_shards_free(&sh);
    return tool_opt_end(&opt.com, status);
}
