/* logpipe-send.c -- NDJSON on stdin (or files) into a Redis stream */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_exit.h"
#include "lp_json.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_send.h"
#include "lp_sig.h"
#include "lp_shards.h"
#include "tool_msg.h"
#include "tool_opt.h"

/*
 * The command line of the send engine (lib/lp_send.c, which owns the
 * loop, the batches, the WAL and the limits): its options, and what the
 * user reads at the end of a run.
 */

struct send_opt {
    struct lp_common com;
    struct lp_send_conf c;
    const struct lp_optdef *needs_rate;  /* the last option that means
                                            nothing without --rate */
};

static int match_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err);
static int follow_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err);

#define OPT struct send_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_TLS,
    LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ,
    LP_LONG_PASSWORD_FILE,
    { "batch", 'b', LP_UINT(OPT, c.batch), "N", "events per batch (1000)",
      .min = 1, .max = 1000000 },
    { "linger", 'l', LP_DURATION(OPT, c.linger), "DUR",
      "send a partial batch after DUR (20ms; bare = ms)", .unit = "ms" },
    { "timeout", 't', LP_DURATION(OPT, c.timeout), "DUR",
      "retry a failing Redis this long (30s)" },
    { "wal", 0, LP_STR(OPT, c.wal), "DIR",
      "keep what Redis cannot take in a write-ahead log",
      .flags = LP_OF_NONEMPTY },
    { "wal-max", 0, LP_SIZE(OPT, c.wal_max), "SIZE",
      "exit 75 rather than let the WAL pass SIZE" },
    { "flush-wal", 0, LP_FLAG(OPT, c.flush_wal), NULL,
      "send what the WAL holds, then exit" },
    { "replicas", 0, LP_UINT(OPT, c.replicas), "N",
      "a batch is stored once N replicas have it (WAIT)",
      .min = 1, .max = 1000 },
    { "replica-timeout", 0, LP_DURATION(OPT, c.replica_timeout), "DUR",
      "with --replicas: wait this long for them (1s; a bare number: ms)",
      .min = 1,
      .unit = "ms" },
    { "max-backlog", 0, LP_UINT(OPT, c.max_backlog), "N",
      "wait while the group lag exceeds N", .min = 1 },
    { "rate", 0, LP_CALL(OPT, c.rate, tool_rate_opt), "N/s|N/m|N/h",
      "at most this many events (per key)" },
    { "burst", 0, LP_UINT(OPT, c.burst), "N",
      "events let through at once (a second's worth)", .min = 1,
      .max = 1000000000, LP_GIVEN(OPT, needs_rate) },
    { "rate-key", 0, LP_STR(OPT, c.rate_key), "JQ",
      "one limit per value of JQ, e.g. .app (one in all)",
      LP_GIVEN(OPT, needs_rate) },
    { "on-limit", 0, LP_ENUM(OPT, c.on_limit), "WHAT",
      "block (wait: the pipe pushes back), reject (65),\n"
      "or dlq (rejected into the DLQ) (block)",
      .words = "block|reject|dlq", LP_GIVEN(OPT, needs_rate) },
    { "shared-rate", 0, LP_FLAG(OPT, c.shared_rate), NULL,
      "keep the limit in Redis, shared by all senders",
      LP_GIVEN(OPT, needs_rate) },
    { "max-keys", 0, LP_UINT(OPT, c.max_keys), "N",
      "new rate keys a minute; later ones share (10000)", .min = 1,
      .max = 1000000, LP_GIVEN(OPT, needs_rate) },
    { "time-field", 0, LP_STR(OPT, c.time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "max-age", 0, LP_DURATION(OPT, c.max_age), "DUR",
      "reject events older than DUR (24h; with --journal\n"
      "or --follow 0; 0 = off)" },
    { "max-skew", 0, LP_DURATION(OPT, c.max_skew), "DUR",
      "reject events more than DUR ahead (5m; 0 = off)" },
    { "max-line", 0, LP_SIZE(OPT, c.max_line), "SIZE",
      "longest line accepted (1M)", .min = 2, .max = 1 << 30 },
    { "max-depth", 0, LP_UINT(OPT, c.max_depth), "N",
      "deepest nesting accepted (64)", .min = 1, .max = 10000 },
    { "max-members", 0, LP_UINT(OPT, c.max_members), "N",
      "most members of one object or array (10000)", .min = 1,
      .max = UINT32_MAX },
    { "require", 0, LP_LIST(OPT, c.require), "LIST",
      "reject events missing any of these members", .max = LP_SEND_MAXREQ },
    { "rejects", 0, LP_STR(OPT, c.rejects), "FILE",
      "append rejected lines to FILE, verbatim" },
    { "rejects-to-dlq", 0, LP_FLAG(OPT, c.rejects_to_dlq), NULL,
      "also add rejected lines to the DLQ" },
    { "ids", 0, LP_FLAG(OPT, c.ids), NULL,
      "print the stream ID of each event sent" },
    { "producer", 0, LP_STR(OPT, c.producer), "NAME",
      "send as producer NAME, going on from its position\n"
      "(default: a name of this run's own)", .flags = LP_OF_NONEMPTY },
    { "position", 0, LP_UINT(OPT, c.position), "N",
      "the input's first command is position N of\n"
      "--producer (a resume, as the resume hint says)", .min = 1 },
    { "shards", 0, LP_UINT(OPT, c.shards), "N",
      "spread the events over N streams, STREAM:{TAG} (1)",
      .min = 1, .max = LP_SHARDS_MAX },
    { "shard-key", 0, LP_STR(OPT, c.shard_key), "JQ",
      "with --shards: one shard per value of JQ, in order\n"
      "(default: events round-robin, one by one;\n"
      "with --follow, a file's lines to several shards,\n"
      "each (file, shard) its own offset)",
      .flags = LP_OF_NONEMPTY },
    { "producer-ttl", 0, LP_DURATION(OPT, c.producer_ttl), "DUR",
      "forget producers silent this long (7d; 0 = never)" },
    { "journal", 0, LP_FLAG(OPT, c.journal), NULL,
      "read the systemd journal, not FILEs: each entry\n"
      "once, going on after the cursor Redis holds" },
    { "journal-dir", 0, LP_STR(OPT, c.journal_dir), "DIR",
      "with --journal: the journal files of DIR", .flags = LP_OF_NONEMPTY },
    { "journal-match", 0, LP_CALL(OPT, c.journal_match, match_opt),
      "FIELD=VALUE", "with --journal: only matching entries (repeat:\n"
      "one FIELD ORed, different ones ANDed)" },
    { "from-start", 0, LP_FLAG(OPT, c.from_start), NULL,
      "with --journal, no cursor yet: from the oldest\n"
      "entry (default: from the end)" },
    { "follow", 'F', LP_CALL(OPT, c.follow, follow_opt), "PATTERN",
      "follow the files PATTERN names (a glob), not FILEs:\n"
      "each line once, going on where Redis says (repeat)" },
    { "from-end", 0, LP_FLAG(OPT, c.from_end), NULL,
      "with --follow: a file there at start with no\n"
      "position yet is read from its end (from its start)" },
    { "partial-timeout", 0, LP_DURATION(OPT, c.partial_timeout), "DUR",
      "with --follow: send a last line without its\n"
      "newline once the file is still for DUR (5s)" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "group", "group whose lag --max-backlog watches (logpipe)", 0 },
    TOOL_NOTE_METRICS_LIVE,
    { "verbose", "more messages: every bad line, a line per batch", 0 },
    { "quiet", "only errors; of bad lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-send",
    .synopsis =
"usage: logpipe-send [options] [FILE...]\n"
"       logpipe-send --follow PATTERN... [options]\n"
"       logpipe-send --journal [options]\n"
"Send NDJSON events from FILEs (or stdin, or '-'), from files followed\n"
"as they grow, or the entries of the systemd journal, to a Redis stream.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 some lines rejected (or rate-limited, or\n"
"--rate-key failed on some), 66 input missing, 70 internal error,\n"
"73 cannot create --rejects or the --wal directory, 74 I/O error,\n"
"75 Redis failed longer than --timeout (or another send runs as\n"
"--producer NAME), 78 bad configuration (--rate-key failing on every\n"
"event too).\n"
"See logpipe-send(1).\n",
    .opts = longopts,
    .notes = notes,
    .operands = 1,
};

/* What the engine says, said: per-line messages within their budgets,
 * which live in main's frame (registered with lp_log, they outlive every
 * use: nothing at exit looks at them). */
struct talk {
    struct lp_budget bad, limited;
};

static void say(void *ctx, int level, const char *msg)
{
    struct talk *t = ctx;

    switch (level) {
    case LP_SEND_BAD:
    case LP_SEND_LIMITED:
        if (lp_budget_take(level == LP_SEND_BAD ? &t->bad : &t->limited))
            lp_error("%s", msg);
        break;
    case LP_SEND_DEBUG:
        lp_debug("%s", msg);
        break;
    case LP_SEND_TRACE:
        lp_trace("batch", msg);
        break;
    default:
        lp_log_notify.fn(lp_log_notify.ctx, level, msg);
    }
}

static int64_t log_due(void *ctx)
{
    (void)ctx;
    return lp_log_due();
}

static void log_tick(void *ctx)
{
    (void)ctx;
    lp_log_tick();
}

static struct lp_redis *redis_new(void *ctx, char *err)
{
    return tool_redis(ctx, err);
}

static struct lp_redis *redis_new_key(void *ctx, const char *key, char *err)
{
    return tool_redis_key(ctx, key, err);
}

static int key_node(void *ctx, const char *key, int fresh, char *out,
                    size_t cap)
{
    (void)ctx;
    return tool_key_node(key, fresh, out, cap);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* --journal-match FIELD=VALUE, repeatable: one more item */
static int match_opt(const struct lp_optdef *o, void *base, char *arg,
                     char *err)
{
    struct lp_list *l = (struct lp_list *)((char *)base + o->off);
    size_t f = strcspn(arg, "=");

    if (f == 0 || arg[f] != '=' ||
        strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != f) {
        snprintf(err, LP_ERRLEN, "'%s' is not FIELD=VALUE (FIELD: A-Z "
                 "0-9 _)", arg);
        return -1;
    }
    if (l->n >= LP_LIST_MAX) {
        snprintf(err, LP_ERRLEN, "at most %d", LP_LIST_MAX);
        return -1;
    }
    l->item[l->n++] = arg;
    return 0;
}

/* --follow PATTERN, repeatable: one more pattern */
static int follow_opt(const struct lp_optdef *o, void *base, char *arg,
                      char *err)
{
    struct lp_list *l = (struct lp_list *)((char *)base + o->off);

    if (*arg == '\0') {
        snprintf(err, LP_ERRLEN, "an empty pattern");
        return -1;
    }
    if (l->n >= LP_LIST_MAX) {
        snprintf(err, LP_ERRLEN, "at most %d patterns", LP_LIST_MAX);
        return -1;
    }
    l->item[l->n++] = arg;
    return 0;
}

static void parse_args(struct send_opt *opt, int argc, char **argv)
{
    struct lp_send_conf *c = &opt->c;
    int i = tool_opt_parse(&cli, argc, argv, opt, &opt->com);

    /* getopt_long moved the options before the files */
    c->args = argv + 1;
    c->nargs = i - 1;
    c->files = argv + i;
    c->nfiles = argc - i;
    if (!c->journal && (c->journal_dir || c->journal_match.n ||
                        c->from_start))
        tool_opt_error(&cli, "--%s needs --journal", c->journal_dir ?
                       "journal-dir" : c->journal_match.n ?
                       "journal-match" : "from-start");
    if (c->journal && c->nfiles)
        tool_opt_error(&cli, "--journal reads no FILE");
    if (!c->follow.n && (c->from_end || c->partial_timeout >= 0))
        tool_opt_error(&cli, "--%s needs --follow", c->from_end ?
                       "from-end" : "partial-timeout");
    if (c->follow.n && (c->nfiles || c->journal || c->position ||
                        c->flush_wal))
        tool_opt_error(&cli, "--follow %s", c->nfiles ? "reads no FILE "
                       "(the patterns name the files)" : c->journal ?
                       "and --journal: one or the other" : c->position ?
                       "does not go with --position (each file goes on "
                       "from its own position)" : "reads input: not with "
                       "--flush-wal");
    if (c->partial_timeout < 0)
        c->partial_timeout = 5000;
    if (c->journal && (c->wal || c->position))
        tool_opt_error(&cli, "--%s does not go with --journal (the journal "
                       "keeps its entries until Redis has them)",
                       c->wal ? "wal" : "position");
    /* an old backlog of the journal is what it is for: --max-age only
     * when asked for */
    if (c->max_age < 0)
        c->max_age = c->journal || c->follow.n ? 0 : 24 * 3600 * 1000LL;
    if (c->flush_wal && (c->wal == NULL || c->nfiles))
        tool_opt_error(&cli, "--flush-wal needs --wal DIR and no FILE");
    if (c->shard_key && c->shards < 2)
        tool_opt_error(&cli, "--shard-key needs --shards N (N > 1)");
    if (c->position && c->producer == NULL)
        tool_opt_error(&cli, "--position needs --producer NAME");
    if ((c->wal_max) && c->wal == NULL)
        tool_opt_error(&cli, "--wal-max needs --wal DIR");
    if (c->rate == 0 && opt->needs_rate)
        tool_opt_error(&cli, "--%s needs --rate", opt->needs_rate->name);
    if (c->rate > 0 && c->burst == 0)
        c->burst = tool_burst_default(c->rate);
    c->stream = opt->com.stream;
    c->dlq = opt->com.dlq;
    c->group = opt->com.group;
    c->metrics = opt->com.metrics;
    c->metrics_interval = opt->com.metrics_interval;
    c->verbosity = opt->com.verbosity;
    c->ids_fd = STDOUT_FILENO;
}

/* The last words of a run that read all its input; the exit status. */
static int summary(struct lp_send *s, const struct lp_send_conf *c)
{
    const struct lp_send_counts *n = lp_send_counts(s);
    int code = lp_send_status(s), st;
    char msg[LP_ERRLEN];
    uint64_t off;
    const char *name = lp_send_input(s, &off);

    const char *unit = c->journal ? "entry" : "line";
    const char *units = c->journal ? "entries" : "lines";
    if (c->follow.n && lp_send_stopped(s))
        lp_info("stopped: %" PRIu64 " %s sent, %" PRIu64 " %s followed",
                n->sent, plural(n->sent, "event", "events"), off,
                plural(off, "file", "files"));
    else if (c->journal && lp_send_stopped(s))
        lp_info("stopped: %" PRIu64 " %s sent, %" PRIu64 " journal %s read",
                n->sent, plural(n->sent, "event", "events"), off,
                plural(off, "entry", "entries"));
    else if (lp_send_stopped(s) && !lp_send_stdout_gone(s))
        lp_warn("interrupted: %" PRIu64 " %s sent, %s read up to byte %"
                PRIu64, n->sent, plural(n->sent, "event", "events"),
                name ? name : "input", off);
    if (n->already)
        lp_info("%" PRIu64 " %s found stored after a lost reply (not sent "
                "again)", n->already, plural(n->already, "event was",
                                             "events were"));
    lp_info("%" PRIu64 " %s, %" PRIu64 " %s sent%s", n->lines,
            plural(n->lines, unit, units), n->sent,
            plural(n->sent, "event", "events"),
            n->wal ? " (some through the WAL)" : "");
    if (n->past_limit)
        lp_warn("%" PRIu64 " %s sent past --rate when stopped: they had been "
                "read from the input", n->past_limit,
                plural(n->past_limit, "event was", "events were"));
    lp_log_end();
    if (n->rejected) {
        lp_error("%" PRIu64 " invalid %s in %" PRIu64 " %s", n->rejected,
                 plural(n->rejected, "event", "events"), n->lines,
                 plural(n->lines, unit, units));
        if (code == 0)
            code = LP_EX_DATAERR;
    }
    if (n->limited) {
        lp_error("%" PRIu64 " %s over --rate %s", n->limited,
                 plural(n->limited, "event", "events"),
                 c->on_limit == LP_SEND_ON_DLQ ? "went to the DLQ"
                                               : "rejected");
        if (code == 0)
            code = LP_EX_DATAERR;
    }
    /* --rate-key failed at run time: 65, or 78 when it failed on every
     * event it ran on; a worse status (66, 74, 75) stays */
    if ((st = lp_send_rate_key_outcome(s, msg)) != 0) {
        lp_error("--rate-key %s: they shared the limit of events without "
                 "a key", msg);
        if (code == 0 || code == LP_EX_DATAERR)
            code = st;
    }
    if ((st = lp_send_shard_key_outcome(s, msg)) != 0) {
        lp_error("--shard-key %s: they went to the shard of events "
                 "without a key", msg);
        if (code == 0 || code == LP_EX_DATAERR)
            code = st;
    }
    return code;
}

int main(int argc, char **argv)
{
    struct send_opt opt = {
        .c = {
            .batch = 1000,
            .batch_bytes = 8 << 20,
            .linger = 20,
            .timeout = 30000,
            .replica_timeout = 1000,
            .max_age = -1,      /* parse_args: 24h, 0 with --journal
                                   or --follow */
            .partial_timeout = -1,
            .max_skew = 5 * 60 * 1000LL,
            .max_line = 1 << 20,
            .max_depth = LP_JSON_DEPTH,
            .max_members = 10000,
            .max_keys = 10000,
            .producer_ttl = 7 * 24 * 3600 * 1000LL,
            .time_field = "timestamp",
            .redis_new = redis_new,
            .redis_new_key = redis_new_key,
            .key_node = key_node,
            .due = log_due,
            .tick = log_tick,
        },
    };
    struct talk talk;
    struct lp_notify nt = { say, &talk };
    struct lp_send *s;
    char err[LP_ERRLEN];
    int code, gone;

    parse_args(&opt, argc, argv);
    opt.c.ctx = &opt.com;
    {
        /* --shards: each shard's DLQ is DLQBASE:{TAG}, in its shard's
         * slot, DLQBASE --dlq or logs:dlq in both modes: not the one
         * stream's {STREAM}:dlq of a cluster, nor held to its slot */
        const char *dlq = opt.com.dlq;
        const struct lp_optdef *set = opt.com.dlq_set;
        if (opt.c.shards > 1)
            opt.com.dlq_set = NULL;
        code = tool_cluster(&opt.com, opt.c.timeout, err);
        if (opt.c.shards > 1) {
            opt.com.dlq = dlq;
            opt.com.dlq_set = set;
        }
        if (code != 0) {
            lp_error("%s", err);
            return tool_opt_end(&opt.com, code);
        }
    }
    opt.c.dlq = opt.com.dlq;
    opt.c.cluster = opt.com.cluster;
    {
        /* test-only: a reply lost after Redis ran its batch */
        const char *t = getenv("LOGPIPE_TEST_LOSE_REPLY");
        if (t)
            opt.c.test_lose_reply = strtoull(t, NULL, 10);
        /* test-only: batch N refused by Redis (EXECABORT) once */
        if ((t = getenv("LOGPIPE_TEST_REFUSE_BATCH")) != NULL)
            opt.c.test_refuse = strtoull(t, NULL, 10);
        /* test-only: --follow's walks this often (ms), without inotify */
        if ((t = getenv("LOGPIPE_TEST_FOLLOW_POLL")) != NULL)
            opt.c.follow_poll = strtoll(t, NULL, 10);
        opt.c.follow_no_inotify = getenv("LOGPIPE_TEST_NO_INOTIFY") != NULL;
        if ((t = getenv("LOGPIPE_TEST_FOLLOW_FORGET")) != NULL)
            opt.c.follow_forget = strtoll(t, NULL, 10);
    }
    lp_log_init("logpipe-send", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&talk.bad, LP_LEVEL_ERROR, "invalid events");
    lp_budget_init(&talk.limited, LP_LEVEL_ERROR, "events over --rate");
    lp_sig_init(0);
    if ((s = lp_send_new(&opt.c, &nt, err)) == NULL) {
        lp_error("%s", err);
        return tool_opt_end(&opt.com, LP_EX_SOFTWARE);
    }
    if ((code = lp_send_open(s, err)) != 0)
        lp_error("%s", err);
    else if (lp_send_run(s) < 0)
        code = lp_send_status(s);       /* said: nothing more to say */
    else
        code = summary(s, &opt.c);
    gone = lp_send_stdout_gone(s);
    lp_send_free(s);                    /* writes the metrics last */
    if (gone) {
        /* stdout went away (| head): leave as a filter killed by SIGPIPE
         * does, so the shell sees 141 and pipefail notices; what was read
         * was sent first */
        tool_sigpipe_exit();
    }
    return tool_opt_end(&opt.com, code);
}
