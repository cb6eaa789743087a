/* logpipe-stat.c -- the state of the pipeline in one look */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_stat.h"
#include "lp_time.h"
#include "tool_opt.h"
#include "tool_shards.h"

#include "tool_msg.h"

/*
 * The tool over the stat engine (lib/lp_stat.c, which gathers the figures
 * and renders them as NDJSON or Prometheus text): options, where the
 * figures go (stdout, --metrics), --check against the thresholds given,
 * which says on stderr which were crossed and exits 1, and the exit
 * status. When Redis fails, the rest is still printed, with the Redis
 * part marked unknown.
 */

struct stat_opt {
    struct lp_common com;
    const char *wal;
    int prom, check, producers;
    int64_t timeout;
    uint64_t max_lag, max_pending, max_dlq;
    int64_t max_pending_age, max_journal_age;
    /* the thresholds given */
    const struct lp_optdef *has_lag, *has_pending, *has_age, *has_dlq,
                           *has_jage;
};

#define OPT struct stat_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_TLS,
    LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ, LP_LONG_DIR,
    { "wal", 0, LP_STR(OPT, wal), "DIR",
      "also the size of this logpipe-send WAL" },
    LP_LONG_PASSWORD_FILE,
    { "timeout", 't', LP_DURATION(OPT, timeout), "DUR",
      "give up on Redis after DUR (10s)" },
    { "prom", 0, LP_FLAG(OPT, prom), NULL, "Prometheus text format" },
    { "producers", 0, LP_FLAG(OPT, producers), NULL,
      "each producer of logpipe-send: name, position, age" },
    { "check", 0, LP_FLAG(OPT, check), NULL,
      "exit 1 when a threshold below is crossed" },
    { "max-lag", 0, LP_UINT(OPT, max_lag), "N",
      "entries not yet delivered to a group", LP_GIVEN(OPT, has_lag) },
    { "max-pending", 0, LP_UINT(OPT, max_pending), "N",
      "entries delivered, not acknowledged", LP_GIVEN(OPT, has_pending) },
    { "max-pending-age", 0, LP_DURATION(OPT, max_pending_age), "DUR",
      "age of the oldest pending entry", LP_GIVEN(OPT, has_age) },
    { "max-dlq", 0, LP_UINT(OPT, max_dlq), "N", "entries in the DLQ",
      LP_GIVEN(OPT, has_dlq) },
    { "max-journal-age", 0, LP_DURATION(OPT, max_journal_age), "DUR",
      "age of the oldest journal segment in --dir",
      LP_GIVEN(OPT, has_jage) },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

/* measuring a tree and narrowing the check are asked for on the command
 * line: LOGPIPE_DIR and LOGPIPE_GROUP, set for the other tools, do not
 * turn them on */
static const struct tool_note notes[] = {
    { "group", "the group --check looks at (every group)", TOOL_NOENV },
    { "dir", "also the size of this archive tree", TOOL_NOENV },
    { "metrics", "also write the Prometheus text to FILE", 0 },
    { "metrics-interval", "(accepted for uniformity; stat runs once)", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-stat",
    .synopsis =
"usage: logpipe-stat [options]\n"
"The state of the pipeline: stream length, each group's consumers,\n"
"pending entries, lag and oldest pending age, DLQ length, the producers of\n"
"logpipe-send, WAL and archive sizes, the archive's drain journals. One\n"
"NDJSON object, or Prometheus text with --prom. A sharded stream: the\n"
"totals, and each shard's figures and node in \"shards\".\n"
"\n",
    .epilog =
"Exit: 0 ok, 1 a --check threshold crossed, 64 usage, 69 Redis\n"
"unreachable (the WAL and archive sizes are printed all the same), 70\n"
"internal error, 73 --metrics file not written, 74 output error, 78 bad\n"
"configuration or permission refused.\n"
"See logpipe-stat(1).\n",
    .opts = longopts,
    .notes = notes,
};

/* Compares with the thresholds; says which were crossed. 1 if any, -1
 * when out of memory. */
static int check(const struct stat_opt *opt, struct lp_stat *st,
                 const char *dlq)
{
    const struct lp_stat_figures *f = lp_stat_figures(st);
    int crossed = 0, found = 0, sharded = lp_stat_shard(st, 0) != NULL;

    for (size_t i = 0; i < f->ng; i++) {
        const struct lp_group_info *x = &f->g[i];
        const struct lp_stat_oldest *o = &f->old[i];
        if (opt->com.group_set && (x->namelen != strlen(opt->com.group) ||
                                   memcmp(x->name, opt->com.group,
                                          x->namelen) != 0))
            continue;
        found = 1;
        if (opt->has_lag && x->lag < 0 && sharded) {
            uint64_t n;
            if (lp_stat_lag(st, i, opt->max_lag, &n) == LP_STAT_ENOMEM)
                return -1;
            if (n > opt->max_lag) {
                lp_error("group %s: more than %" PRIu64 " entries not yet "
                         "delivered over its shards, over --max-lag",
                         x->name, opt->max_lag);
                crossed = 1;
            }
        } else if (opt->has_lag && x->lag < 0) {
            uint64_t n;
            if (lp_stat_lag(st, i, opt->max_lag, &n) == LP_STAT_ENOMEM)
                return -1;
            if (n > opt->max_lag) {
                lp_error("group %s: more than %" PRIu64 " entries after its "
                         "last delivered one %s, over --max-lag (Redis "
                         "gives no lag)", x->name, opt->max_lag,
                         x->last_delivered);
                crossed = 1;
            }
        } else if (opt->has_lag && (uint64_t)x->lag > opt->max_lag) {
            lp_error("group %s: lag %lld is over --max-lag %" PRIu64,
                     x->name, x->lag, opt->max_lag);
            crossed = 1;
        }
        if (opt->has_pending && (uint64_t)x->pending > opt->max_pending) {
            lp_error("group %s: %lld pending, over --max-pending %" PRIu64,
                     x->name, x->pending, opt->max_pending);
            crossed = 1;
        }
        if (opt->has_age && o->age_ms > opt->max_pending_age) {
            char d[32];
            lp_format_duration(opt->max_pending_age, d, sizeof d);
            lp_error("group %s: oldest pending entry %s is %.1fs old, over "
                     "--max-pending-age %s", x->name, o->id,
                     (double)o->age_ms / 1000.0, d);
            crossed = 1;
        }
    }
    if (opt->com.group_set && !found &&
        (opt->has_lag || opt->has_pending || opt->has_age)) {
        /* a drain that never started, or a typo: nothing is archived */
        lp_error("group %s: no such group on %s", opt->com.group,
                 opt->com.stream);
        crossed = 1;
    }
    if (opt->has_dlq && (uint64_t)f->dlq > opt->max_dlq) {
        lp_error("%s%s holds %lld %s, over --max-dlq %" PRIu64,
                 dlq, sharded ? ":{N}" : "", f->dlq, f->dlq == 1 ? "entry" : "entries",
                 opt->max_dlq);
        crossed = 1;
    }
    if (opt->has_jage && !f->have_journal) {
        /* said above why; a check that cannot look must not pass */
        lp_error("--dir %s: journals not read, --max-journal-age not met",
                 opt->com.dir);
        crossed = 1;
    } else if (opt->has_jage && f->journal_age_ms > opt->max_journal_age) {
        char d[32];
        lp_format_duration(opt->max_journal_age, d, sizeof d);
        lp_error("--dir %s: oldest journal segment is %.1fs old, over "
                 "--max-journal-age %s (%u %s, %" PRIu64 " bytes)",
                 opt->com.dir,
                 (double)f->journal_age_ms / 1000.0, d, f->journals,
                 f->journals == 1 ? "journal" : "journals", f->journal_bytes);
        crossed = 1;
    }
    return crossed;
}

/* The exit status of a Redis failure. */
static int redis_status(const struct lp_stat *st)
{
    switch (lp_stat_figures(st)->redis_failed) {
    case LP_STAT_REDIS_OK:      return LP_EX_OK;
    case LP_STAT_REDIS_PERM:    return LP_EX_CONFIG;
    default:                    return LP_EX_UNAVAILABLE;
    }
}

/* lp_stat_conf.reroute's: shard i over a connection of its own */
struct reroute_ctx {
    struct lp_common *com;
    int64_t timeout;
    struct tool_shards *sh;
};

static int reroute(void *ctx, size_t i, struct lp_redis **r, char *node,
                   size_t cap, char *err)
{
    struct reroute_ctx *x = ctx;

    if (tool_shards_reroute(x->com, x->timeout, x->sh, (unsigned)i,
                            err) < 0)
        return -1;
    *r = x->sh->r[i];
    snprintf(node, cap, "%s", x->sh->node[i]);
    return 0;
}

int main(int argc, char **argv)
{
    struct stat_opt opt = { .timeout = 10000 };
    char err[LP_ERRLEN], *out = NULL;
    const char *dlq;
    struct lp_metrics *m = NULL;
    struct lp_redis *r = NULL;
    struct lp_stat *st = NULL;
    struct tool_shards sh = { 0 };
    struct lp_stat_shard *shv = NULL;
    int code = LP_EX_OK, crossed = 0;

    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    if (opt.check && !opt.has_lag && !opt.has_pending && !opt.has_age &&
        !opt.has_dlq && !opt.has_jage)
        tool_opt_error(&cli, "--check needs a threshold (--max-lag, "
                       "--max-pending, --max-pending-age, --max-dlq, "
                       "--max-journal-age)");
    if (opt.has_jage && !opt.com.dir_set)
        tool_opt_error(&cli, "--max-journal-age needs --dir");
    lp_log_init("logpipe-stat", opt.com.log_format, opt.com.verbosity);
    /* one short run: SIGINT and SIGTERM end it as they do by default */
    signal(SIGPIPE, SIG_IGN);
    if ((code = tool_cluster(&opt.com, opt.timeout, err)) != 0) {
        lp_error("%s", err);
        return tool_opt_end(&opt.com, code);
    }
    dlq = opt.com.dlq;
    /* a sharded stream: each shard over its node (tool_shards.h) */
    if ((code = tool_shards_open(&opt.com, opt.timeout, &sh, err)) != 0) {
        lp_error("%s", err);
        tool_shards_free(&sh);
        return tool_opt_end(&opt.com, code);
    }
    if (sh.n && (shv = calloc(sh.n, sizeof *shv)) == NULL)
        goto oom;
    for (unsigned i = 0; i < sh.n; i++)
        shv[i] = (struct lp_stat_shard){ sh.name[i], sh.dlq[i], sh.node[i],
                                         sh.r[i] };
    if (sh.n == 0 && (r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        return tool_opt_end(&opt.com, LP_EX_CONFIG);
    }
    if (sh.n)
        dlq = opt.com.dlq_set ? opt.com.dlq : "logs:dlq";
    st = lp_stat_new(&(struct lp_stat_conf){
        .redis = r, .timeout = opt.timeout,
        .stream = opt.com.stream, .dlq = dlq, .wal = opt.wal,
        .cluster = opt.com.cluster,
        .dir = opt.com.dir_set ? opt.com.dir : NULL,
        .producers = opt.producers,
        .shards = shv, .nshards = sh.n,
        .reroute = reroute,
        .ctx = &(struct reroute_ctx){ &opt.com, opt.timeout, &sh },
        .notify = lp_log_notify,
    });
    if (st == NULL || lp_stat_redis(st) == LP_STAT_ENOMEM)
        goto oom;
    lp_stat_files(st);
    if ((m = lp_stat_metrics(st)) == NULL)
        goto oom;
    /* the file first: a reader of stdout that goes away must not cost it */
    if (opt.com.metrics && lp_metrics_write(m, opt.com.metrics, err) < 0) {
        lp_error("%s", err);
        code = LP_EX_CANTCREAT;
    }
    out = opt.prom ? lp_metrics_render(m) : lp_stat_json(st);
    if (out == NULL || lp_fs_write_all(STDOUT_FILENO, out, strlen(out)) < 0) {
        if (out && errno == EPIPE)
            tool_sigpipe_exit();
        lp_error("stdout: %s", out ? strerror(errno) : "out of memory");
        code = LP_EX_IOERR;
    }
    if (opt.check && redis_status(st)) {
        lp_error("--check: nothing checked: Redis did not answer");
    } else if (opt.check) {
        if ((crossed = check(&opt, st, dlq)) < 0)
            goto oom;
        if (crossed && code == LP_EX_OK)
            code = LP_EX_CHECK;
    }
    if (redis_status(st))
        code = redis_status(st);   /* count_after in check() may fail too */
    goto out;
oom:
    lp_error("out of memory");
    code = LP_EX_SOFTWARE;
out:
    free(out);
    lp_metrics_free(m);
    lp_stat_free(st);
    free(shv);
    tool_shards_free(&sh);
    return tool_opt_end(&opt.com, code);
}
