/* logpipe-drain.c -- a consumer group into per-key, per-day JSONL files */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lp_drain.h"
#include "lp_exit.h"
#include "lp_json.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_shards.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "lp_time.h"
#include "tool_msg.h"
#include "tool_opt.h"

/*
 * The options, usage and what the user reads; the engine is lib/lp_drain.c
 * (struct lp_drain: the read -> sink -> durable -> ack loop) over
 * lib/lp_group.c (every Redis command of a consumer).
 *
 * A sharded stream (its count recorded by send --shards, lp_shards.h):
 * one child process per shard in --shard-range, each the engine as for
 * an unsharded stream, on the shard's stream key and DLQ, its entries'
 * archive IDs "<i>-<ms>-<seq>"; this process supervises them (signals
 * passed on, the first failure stops the others, the worst status is
 * its own) and merges their --metrics into one file.
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
    { "shard-range", 0, LP_STR(OPT, shard_range), "A-B",
      "of a sharded stream, drain shards A to B only\n"
      "(0-based, both included; or one: A); default all",
      .flags = LP_OF_NONEMPTY },
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
"every event, --dir used by another group, --shard-range past the\n"
"stream's shards). A sharded stream: the worst status of its shards'\n"
"drains, in the order 78 70 74 73 69 75 65 0.\n"
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

/* --shard-range: shards lo..hi */
struct range {
    int set;
    unsigned lo, hi;
};

/* "A-B" or "A", 0 <= A <= B < LP_SHARDS_MAX: 0, or -1 */
static int parse_range(const char *s, struct range *rg)
{
    unsigned long a, b;
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    a = b = strtoul(s, &end, 10);
    if (*end == '-') {
        if (end[1] < '0' || end[1] > '9')
            return -1;
        b = strtoul(end + 1, &end, 10);
    }
    if (*end != '\0' || errno || a > b || b >= LP_SHARDS_MAX)
        return -1;
    rg->set = 1;
    rg->lo = (unsigned)a;
    rg->hi = (unsigned)b;
    return 0;
}

static void parse_args(int argc, char **argv, struct lp_drain_conf *c,
                       struct range *rg)
{
    tool_opt_parse(&cli, argc, argv, c, &c->com);
    if (c->shard_range && parse_range(c->shard_range, rg) < 0)
        tool_opt_error(&cli, "--shard-range '%s': A-B or A, shards "
                       "0 <= A <= B < %d", c->shard_range, LP_SHARDS_MAX);
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

/* The engine on conf->com.stream, as for any stream: the connection routed
 * (tool_cluster), the run, what it ended with. Returns the exit status;
 * a reader of stdout gone ends the process as SIGPIPE would. */
static int run_drain(struct lp_drain_conf *conf, struct says *says)
{
    char err[LP_ERRLEN];
    const struct lp_notify nt = { say, says };
    struct lp_drain_result res;
    struct lp_drain *d = NULL;
    struct lp_redis *r;
    int st;

    if ((st = tool_cluster(&conf->com, conf->timeout, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    if ((d = lp_drain_new(conf, &nt, err)) == NULL) {
        lp_error("%s", err);
        st = LP_EX_SOFTWARE;
        goto out;
    }
    if ((st = lp_drain_open(d, err)) != 0) {
        lp_error("%s", err);
        goto out;
    }
    if ((r = tool_redis(&conf->com, err)) == NULL) {
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
                 "another --dlq", conf->com.dlq);
        break;
    case LP_DRAIN_SIGPIPE:
        lp_drain_free(d);       /* its metrics, written last */
        tool_sigpipe_exit();
    }
out:
    lp_drain_free(d);
    return st;
}

/*
 * How many shards the stream has (lp_shards_read: 0, not sharded), asked
 * over a connection of its own before anything else, retried for
 * --timeout as the engine's connect is. Returns 0 with *n; -1 when a stop
 * signal came meanwhile; else the exit status, said. *errors: the
 * attempts that failed.
 */
static int count_shards(struct lp_drain_conf *conf, unsigned *n,
                        uint64_t *errors)
{
    char err[LP_ERRLEN], dur[32];
    struct lp_common tmp = conf->com;
    struct lp_backoff backoff = { 0 };
    int64_t start = lp_mono_ms();
    struct lp_redis *r;
    int rc, warned = 0;

    /* --dlq's slot is checked later: by the engine on an unsharded
     * stream, for each shard's DLQ on a sharded one */
    tmp.dlq_set = NULL;
    if ((rc = tool_cluster(&tmp, conf->timeout, err)) != 0) {
        lp_error("%s", err);
        return rc;
    }
    if ((r = tool_redis(&tmp, err)) == NULL) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    conf->com.password_on_argv = 0;     /* said once, here */
    for (;;) {
        rc = lp_redis_connect(r, err);
        if (rc == 0)
            rc = lp_shards_read(r, tmp.cluster, conf->com.stream, n, err);
        if (rc == 0)
            break;
        if (rc != LP_SHARDS_EBAD)
            ++*errors;          /* Redis failed, not the key's value */
        if (rc == LP_SHARDS_EBAD || rc == LP_REDIS_EAUTH) {
            lp_error("%s", err);
            rc = LP_EX_CONFIG;
            goto out;
        }
        if (!warned) {
            lp_format_duration(conf->timeout, dur, sizeof dur);
            lp_warn("%s; retrying for up to %s", err, dur);
            warned = 1;
        }
        if (lp_stop) {
            rc = -1;
            goto out;
        }
        if (lp_mono_ms() - start >= conf->timeout) {
            lp_error("giving up: %s", err);
            rc = LP_EX_UNAVAILABLE;
            goto out;
        }
        poll(NULL, 0, (int)lp_backoff_next(&backoff));
    }
    if (warned)
        lp_warn("%s answers again", lp_redis_name(r));
out:
    lp_redis_free(r);
    return rc;
}

/* ---- a sharded stream: a child per shard -------------------------------- */

/* more shards than this in one drain: a warning (logpipe-drain(1)) */
#define LP_DRAIN_PROCS_WARN 64

struct child {
    pid_t pid;                  /* 0: not started, or reaped */
    unsigned shard;
    char name[1100];            /* the shard's stream */
    int status;                 /* its exit status, once reaped */
    int sig;                    /* the signal that ended it, 0: none */
};

/* --stdout: one batch's lines at a time, whichever child writes them (a
 * process-shared mutex in memory the children share; robust: a child
 * killed while it wrote does not stop the others) */
static void out_lock(void *ctx)
{
    if (pthread_mutex_lock(ctx) == EOWNERDEAD)
        pthread_mutex_consistent(ctx);
}

static void out_unlock(void *ctx)
{
    pthread_mutex_unlock(ctx);
}

static pthread_mutex_t *out_mutex(void)
{
    pthread_mutexattr_t a;
    pthread_mutex_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED)
        return NULL;
    if (pthread_mutexattr_init(&a) != 0 ||
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(m, &a) != 0) {
        munmap(m, sizeof *m);
        return NULL;
    }
    pthread_mutexattr_destroy(&a);
    return m;
}

/* The row of --dlq: a shard's DLQ counts as given (tool_cluster checks
 * that it shares the shard's slot, which it does by its name) */
static const struct lp_optdef *dlq_row(void)
{
    for (const struct lp_optdef *o = longopts; o->name; o++)
        if (strcmp(o->name, "dlq") == 0)
            return o;
    return NULL;
}

/* A child: the engine on shard ch (of n) of conf's stream */
static int shard_child(struct lp_drain_conf *conf, struct says *says,
                       const struct child *ch, unsigned n,
                       const char *dlqbase, pthread_mutex_t *mu)
{
    char dlq[1100], pfx[16], label[32], mfile[4200], err[LP_ERRLEN];

    lp_log_context("shard", (long)ch->shard);
    if (lp_shard_name(dlqbase, ch->shard, n, dlq, sizeof dlq, err) < 0) {
        lp_error("--dlq: %s", err);
        return LP_EX_CONFIG;
    }
    conf->dir_stream = conf->com.stream;
    conf->com.stream = ch->name;
    conf->com.dlq = dlq;
    conf->com.dlq_set = dlq_row();
    snprintf(pfx, sizeof pfx, "%u-", ch->shard);
    conf->id_prefix = pfx;
    snprintf(label, sizeof label, "shard=\"%u\"", ch->shard);
    conf->metrics_label = label;
    if (conf->com.metrics) {
        snprintf(mfile, sizeof mfile, "%s.shard-%u", conf->com.metrics,
                 ch->shard);
        conf->com.metrics = mfile;
    }
    if (mu) {
        conf->out_lock = out_lock;
        conf->out_unlock = out_unlock;
        conf->out_ctx = mu;
    }
    return run_drain(conf, says);
}

/* The order of statuses, best first: a sharded drain exits with its
 * children's worst (logpipe-drain(1), EXIT STATUS) */
static int rank(int st)
{
    static const int order[] = {
        LP_EX_OK, LP_EX_DATAERR, LP_EX_TEMPFAIL, LP_EX_UNAVAILABLE,
        LP_EX_CANTCREAT, LP_EX_IOERR, LP_EX_SOFTWARE, LP_EX_CONFIG
    };

    for (int i = 0; i < (int)(sizeof order / sizeof order[0]); i++)
        if (order[i] == st)
            return i;
    return 6;                   /* anything else: as 70 */
}

/* ---- --metrics: the children's files merged into one ------------------- */

/* One metric family of a child's file: its "# HELP" and "# TYPE" lines,
 * then its series. */
struct fam {
    const char *name, *hdr, *body;
    size_t nlen, hlen, blen;
    size_t child, idx;          /* where it was: for the order */
    size_t first;               /* its name's first place (sorted) */
};

static size_t split_families(const char *t, size_t child, struct fam **v,
                             size_t *n, size_t *cap)
{
    size_t k0 = *n;

    for (const char *p = t; *p; ) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl + 1 : p + strlen(p);
        if (strncmp(p, "# HELP ", 7) == 0) {
            if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 64;
                struct fam *w = realloc(*v, c * sizeof *w);
                if (w == NULL)
                    return k0;
                *v = w;
                *cap = c;
            }
            struct fam *f = &(*v)[(*n)++];
            memset(f, 0, sizeof *f);
            f->name = p + 7;
            f->nlen = strcspn(p + 7, " \n");
            f->hdr = p;
            f->child = child;
            f->idx = *n - k0;
        }
        if (*n > k0) {
            struct fam *f = &(*v)[*n - 1];
            if (*p == '#' && f->body == NULL) {
                f->hlen = (size_t)(end - f->hdr);
            } else {
                if (f->body == NULL)
                    f->body = p;
                f->blen = (size_t)(end - f->body);
            }
        }
        p = end;
    }
    return *n - k0;
}

static int fam_by_name(const void *x, const void *y)
{
    const struct fam *a = x, *b = y;
    size_t l = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = memcmp(a->name, b->name, l);

    if (c || a->nlen != b->nlen)
        return c ? c : a->nlen < b->nlen ? -1 : 1;
    if (a->child != b->child)
        return a->child < b->child ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int fam_by_first(const void *x, const void *y)
{
    const struct fam *a = x, *b = y;

    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->child != b->child)
        return a->child < b->child ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Reads a child's metrics file (NULL: none yet) */
static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    size_t len = 0, cap = 8192;
    char *b = NULL, *w;
    ssize_t got;

    if (fd < 0)
        return NULL;
    for (;;) {
        if ((w = realloc(b, cap + 1)) == NULL)
            break;
        b = w;
        got = read(fd, b + len, cap - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == cap)
            cap *= 2;
    }
    close(fd);
    if (b)
        b[len] = '\0';
    return b;
}

/*
 * The children's --metrics files (FILE.shard-I, each series labelled
 * shard="I") as one FILE: each family once, with its HELP and TYPE, then
 * every child's series of it. unlink: the children's files go (the end).
 */
static void merge_metrics(const char *path, const struct child *ch,
                          size_t nch, int unlink_them, int *warned)
{
    char file[4200], err[LP_ERRLEN];
    char **texts = calloc(nch, sizeof *texts);
    struct fam *v = NULL;
    size_t n = 0, cap = 0;
    struct lp_buf out = { 0 };

    if (texts == NULL)
        return;
    for (size_t i = 0; i < nch; i++) {
        snprintf(file, sizeof file, "%s.shard-%u", path, ch[i].shard);
        if ((texts[i] = slurp(file)) != NULL)
            split_families(texts[i], i, &v, &n, &cap);
    }
    if (n) {
        /* each family's first place, then families in that order */
        qsort(v, n, sizeof *v, fam_by_name);
        for (size_t i = 0, g = 0; i < n; i++) {
            if (i == 0 || v[i].nlen != v[g].nlen ||
                memcmp(v[i].name, v[g].name, v[i].nlen) != 0)
                g = i;
            v[i].first = v[g].child * 100000 + v[g].idx;
        }
        qsort(v, n, sizeof *v, fam_by_first);
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || v[i].first != v[i - 1].first)
                lp_buf_add(&out, v[i].hdr, v[i].hlen);
            if (v[i].body)
                lp_buf_add(&out, v[i].body, v[i].blen);
        }
        if (lp_buf_addc(&out, '\0') == 0 &&
            lp_metrics_write_text(path, out.p, err) < 0 && !*warned) {
            lp_warn("%s", err);
            *warned = 1;
        }
    }
    if (unlink_them)
        for (size_t i = 0; i < nch; i++) {
            snprintf(file, sizeof file, "%s.shard-%u", path, ch[i].shard);
            unlink(file);
        }
    for (size_t i = 0; i < nch; i++)
        free(texts[i]);
    free(texts);
    free(v);
    free(out.p);
}

static void on_chld(int sig)
{
    (void)sig;                  /* wakes ppoll up */
}

static void signal_all(struct child *ch, size_t nch, int sig)
{
    for (size_t i = 0; i < nch; i++)
        if (ch[i].pid > 0)
            kill(ch[i].pid, sig);
}

/* how often a sharded drain (not --once) asks whether the count of
 * shards changed (logpipe-drain(1), "Sharded streams") */
#define LP_DRAIN_COUNT_WATCH_MS 5000

/* A running drain's question every LP_DRAIN_COUNT_WATCH_MS: the count
 * of shards now, over a connection kept for it (made at the first ask). */
struct count_ask {
    struct lp_redis *r;
    int cluster;                /* as tool_cluster found the URL */
    int said;                   /* an unreadable count said */
};

/* 0 with *m; -1 when not known now, asked again next time (Redis not
 * answering: the engines' own connections say what fails). A count key
 * it cannot read (not a count, or GET refused by an ACL) is said once,
 * followed by goes_on: what the drain does meanwhile. */
static int count_ask(struct lp_drain_conf *conf, struct count_ask *ca,
                     unsigned *m, const char *goes_on)
{
    char err[LP_ERRLEN];
    int rc;

    *m = 0;
    if (ca->r == NULL) {
        struct lp_common tmp = conf->com;
        tmp.dlq_set = NULL;
        if (tool_cluster(&tmp, conf->timeout, err) != 0 ||
            (ca->r = tool_redis(&tmp, err)) == NULL)
            return -1;
        ca->cluster = tmp.cluster;
    }
    if (!lp_redis_connected(ca->r) && lp_redis_connect(ca->r, err) != 0) {
        lp_redis_disconnect(ca->r);
        return -1;
    }
    rc = lp_shards_read(ca->r, ca->cluster, conf->com.stream, m, err);
    if ((rc == LP_SHARDS_EBAD || rc == LP_REDIS_EAUTH) && !ca->said) {
        lp_warn("%s: %s", err, goes_on);
        ca->said = 1;
    }
    if (rc == LP_REDIS_ETEMP)
        lp_redis_disconnect(ca->r);
    return rc == 0 ? 0 : -1;
}

/*
 * A drain of an unsharded stream (not --once) asks as often whether the
 * stream became sharded (the first send --shards recorded a count): it
 * then stops as on SIGTERM, everything it wrote acknowledged, and the
 * drains of the shards start in its place (main), as a sharded drain's
 * do after a change of the count. Asked from the engine's loop, whose
 * wait its log_due hook bounds, over one connection kept for it.
 */
static struct {
    struct lp_drain_conf *conf; /* NULL: not watching */
    struct count_ask ca;
    int64_t next;
    unsigned got;               /* the count found: the drain stops */
} watch;

#define WATCH_STOP (-1)         /* lp_stop set by the watch, not a signal */

static int64_t watch_due(void)
{
    int64_t due = lp_log_due(), w;

    if (watch.conf == NULL || watch.got)
        return due;
    w = watch.next - lp_mono_ms();
    if (w < 0)
        w = 0;
    return due < 0 || w < due ? w : due;
}

static void watch_tick(void)
{
    char goes_on[1200];
    struct lp_drain_conf *conf = watch.conf;
    unsigned m;

    lp_log_tick();
    if (conf == NULL || watch.got || lp_stop || lp_mono_ms() < watch.next)
        return;
    watch.next = lp_mono_ms() + LP_DRAIN_COUNT_WATCH_MS;
    snprintf(goes_on, sizeof goes_on, "this drain goes on reading the "
             "unsharded key %s", conf->com.stream);
    if (count_ask(conf, &watch.ca, &m, goes_on) == 0 && m > 1) {
        lp_warn("stream %s is spread over %u shards now (recorded by "
                "logpipe-send --shards %u): this drain of its unsharded "
                "key stops, those of the %u shards start", conf->com.stream,
                m, m, m);
        watch.got = m;
        lp_stop = WATCH_STOP;
    }
}

static void watch_end(void)
{
    lp_redis_free(watch.ca.r);
    memset(&watch, 0, sizeof watch);
}

/*
 * A stream of n shards: a child for each of shards lo..hi, supervised
 * until all have ended. Returns the worst status (rank); a child ended by
 * SIGPIPE (stdout's reader gone) ends this process the same way.
 */
static int supervise(struct lp_drain_conf *conf, struct says *says,
                     unsigned n, unsigned lo, unsigned hi, unsigned *changed)
{
    const char *dlqbase = conf->com.dlq;    /* --dlq, or logs:dlq */
    char err[LP_ERRLEN];
    pthread_mutex_t *mu = NULL;
    struct child *ch;
    size_t nch = hi - lo + 1, alive = 0;
    sigset_t block, old, waitmask;
    struct sigaction sa;
    int worst = LP_EX_OK, stopping = 0, piped = 0, mwarned = 0;
    struct count_ask ca = { 0 };
    int64_t next_merge = 0, next_watch = 0;

    *changed = 0;
    if (lp_shards_check(conf->com.stream, n, err) < 0) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    if (strpbrk(dlqbase, "{}")) {
        lp_error("--dlq %s: the dead letter streams of a sharded stream are "
                 "named from it, one a shard in its slot (%s:{N}): give a "
                 "name without '{' or '}'", dlqbase, dlqbase);
        return LP_EX_CONFIG;
    }
    if (hi >= n) {
        lp_error("--shard-range %s: stream %s has %u shards (0-%u)",
                 conf->shard_range, conf->com.stream, n, n - 1);
        return LP_EX_CONFIG;
    }
    if ((ch = calloc(nch, sizeof *ch)) == NULL) {
        lp_error("out of memory");
        return LP_EX_SOFTWARE;
    }
    for (size_t i = 0; i < nch; i++) {
        ch[i].shard = lo + (unsigned)i;
        if (lp_shard_name(conf->com.stream, ch[i].shard, n, ch[i].name,
                          sizeof ch[i].name, err) < 0) {
            lp_error("%s", err);
            free(ch);
            return LP_EX_CONFIG;
        }
    }
    if (conf->to_stdout && (mu = out_mutex()) == NULL) {
        lp_error("--stdout: a lock for %zu shards: %s", nch, strerror(errno));
        free(ch);
        return LP_EX_SOFTWARE;
    }
    /* each child asks the cluster for itself: no connection shared */
    tool_cluster_forget();

    /* the signals wait for ppoll below, so that none comes between the
     * look at the flags and the wait */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    waitmask = old;
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGHUP);
    sigdelset(&waitmask, SIGCHLD);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    lp_info("stream %s has %u shards: draining %u to %u, a process each",
            conf->com.stream, n, lo, hi);
    if (nch > LP_DRAIN_PROCS_WARN)
        lp_warn("%zu shards, a process each (a connection, a journal, up "
                "to --max-open files): split them over several drains with "
                "--shard-range", nch);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    for (size_t i = 0; i < nch && !lp_stop; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int st;
            sa.sa_handler = SIG_DFL;
            sigaction(SIGCHLD, &sa, NULL);
            /* the parent gone (SIGKILL, a crash), each shard's drain
             * stops as on SIGTERM: acknowledged what it wrote, its
             * journal cut; no orphans left to hold the consumer names
             * against the next start */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (getppid() != parent)
                raise(SIGTERM);
            st = shard_child(conf, says, &ch[i], n, dlqbase, mu);
            exit(tool_opt_end(&conf->com, st));
        }
        if (pid < 0) {
            lp_error("fork: %s", strerror(errno));
            worst = LP_EX_SOFTWARE;
            stopping = 1;
            signal_all(ch, nch, SIGTERM);
            break;
        }
        ch[i].pid = pid;
        alive++;
        lp_info("shard %u: %s, pid %ld", ch[i].shard, ch[i].name, (long)pid);
    }
    if (conf->com.metrics)
        next_merge = lp_mono_ms() + conf->com.metrics_interval;
    /* a count that changes (a sender of another count found every shard
     * drained): the shards of the new count are drained from then on,
     * by children of their own */
    if (!conf->once)
        next_watch = lp_mono_ms() + LP_DRAIN_COUNT_WATCH_MS;

    while (alive > 0) {
        int ws;
        pid_t pid;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
            struct child *c = NULL;
            for (size_t i = 0; i < nch; i++)
                if (ch[i].pid == pid)
                    c = &ch[i];
            if (c == NULL)
                continue;
            c->pid = 0;
            alive--;
            if (WIFEXITED(ws)) {
                c->status = WEXITSTATUS(ws);
            } else {
                c->sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : SIGKILL;
                c->status = LP_EX_SOFTWARE;
                if (c->sig == SIGPIPE) {
                    piped = 1;
                    c->status = LP_EX_OK;
                } else {
                    lp_error("shard %u (%s, pid %ld): killed by signal %d "
                             "(%s)", c->shard, c->name, (long)pid, c->sig,
                             strsignal(c->sig));
                }
            }
            if (rank(c->status) > rank(worst))
                worst = c->status;
            if ((c->status != LP_EX_OK && c->status != LP_EX_DATAERR) ||
                c->sig) {
                if (!stopping && alive > 0 && c->sig == SIGPIPE)
                    lp_info("shard %u (%s): its standard output's reader "
                            "went away (SIGPIPE): stopping the drains of "
                            "the other shards", c->shard, c->name);
                else if (!stopping && alive > 0)
                    lp_warn("shard %u (%s) ended with status %d: stopping "
                            "the drains of the other shards", c->shard,
                            c->name, c->status);
                if (!stopping)
                    signal_all(ch, nch, SIGTERM);
                stopping = 1;
            }
        }
        if (alive == 0)
            break;
        if (lp_stop && !stopping) {
            signal_all(ch, nch, SIGTERM);
            stopping = 1;
        }
        if (lp_hup) {
            lp_hup = 0;
            signal_all(ch, nch, SIGHUP);
        }
        struct timespec ts, *tp = NULL;
        int64_t now = lp_mono_ms(), w = -1;
        if (next_merge) {
            if (now >= next_merge) {
                merge_metrics(conf->com.metrics, ch, nch, 0, &mwarned);
                next_merge = now + conf->com.metrics_interval;
            }
            w = next_merge - now;
        }
        if (next_watch && !stopping) {
            unsigned m = 0;
            if (now >= next_watch) {
                if (count_ask(conf, &ca, &m, "the drains of the shards "
                              "of now go on") == 0 &&
                    m != n && m > 1) {
                    lp_warn("stream %s: its count of shards changed from "
                            "%u to %u: the drains of the %u shards stop, "
                            "those of the %u start", conf->com.stream, n,
                            m, n, m);
                    *changed = m;
                    signal_all(ch, nch, SIGTERM);
                    stopping = 1;
                }
                next_watch = now + LP_DRAIN_COUNT_WATCH_MS;
            }
            if (w < 0 || next_watch - now < w)
                w = next_watch - now;
        }
        if (w >= 0) {
            ts.tv_sec = w / 1000;
            ts.tv_nsec = (w % 1000) * 1000000;
            tp = &ts;
        }
        ppoll(NULL, 0, tp, &waitmask);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (conf->com.metrics)
        merge_metrics(conf->com.metrics, ch, nch, 1, &mwarned);
    if (mu)
        munmap(mu, sizeof *mu);
    lp_redis_free(ca.r);
    free(ch);
    if (piped && rank(worst) <= rank(LP_EX_DATAERR))
        tool_sigpipe_exit();
    return worst;
}

/* A stream of n shards drained (lo..hi of rg) until the end, again with
 * the new count whenever its count changes. The status. */
static int drain_shards(struct lp_drain_conf *conf, struct says *says,
                        unsigned n, const struct range *rg, uint64_t *errors)
{
    unsigned changed;
    int st;

    for (;;) {
        st = supervise(conf, says, n, rg->set ? rg->lo : 0,
                       rg->set ? rg->hi : n - 1, &changed);
        if (!changed || lp_stop || rank(st) > rank(LP_EX_DATAERR))
            break;
        /* the count changed: its shards now (read again: it may
         * have changed once more meanwhile) */
        if ((st = count_shards(conf, &n, errors)) != 0) {
            if (st < 0)
                st = LP_EX_OK;
            break;
        }
        if (n <= 1) {
            st = run_drain(conf, says);
            break;
        }
    }
    return st;
}

int main(int argc, char **argv)
{
    struct lp_drain_conf conf = lp_drain_defaults;
    struct range rg = { 0, 0, 0 };
    struct says says;
    unsigned n = 0;
    uint64_t errors = 0;
    int st;

    /* Each batch's reply (1,000 entries: chunks of up to 256 KiB,
     * lib/lp_redis.c) is freed when the next has come: glibc would hand
     * those chunks back to the kernel (munmap, heap trim) and fault them
     * in again a batch later (4,000 to 7,000 page faults in 200,000
     * events into one file, 770 with these; the peak RSS is the same) */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    parse_args(argc, argv, &conf, &rg);
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
    {
        /* what needs no Redis is said before Redis is waited for */
        char err[LP_ERRLEN];
        if ((st = lp_drain_check(&conf, err)) != 0) {
            lp_error("%s", err);
            goto out;
        }
    }
    if ((st = count_shards(&conf, &n, &errors)) != 0) {
        char err[LP_ERRLEN];
        struct lp_drain *d;
        if (st < 0)
            st = LP_EX_OK;      /* stopped before it began */
        /* every end writes --metrics, this one too: the engine's, with
         * the failed attempts as its Redis errors */
        if (conf.com.metrics &&
            (d = lp_drain_new(&conf, NULL, err)) != NULL) {
            lp_drain_redis_errors(d, errors);
            lp_drain_free(d);
        }
        goto out;
    }
    if (n > 1) {
        st = drain_shards(&conf, &says, n, &rg, &errors);
    } else if (rg.set) {
        lp_error("--shard-range %s: stream %s is not sharded (no count of "
                 "shards recorded: send --shards records it)",
                 conf.shard_range, conf.com.stream);
        st = LP_EX_CONFIG;
    } else {
        if (!conf.once) {
            watch.conf = &conf;
            watch.next = lp_mono_ms() + LP_DRAIN_COUNT_WATCH_MS;
            conf.log_tick = watch_tick;
            conf.log_due = watch_due;
        }
        sigset_t sigs, old;
        st = run_drain(&conf, &says);
        n = watch.got;
        /* a stop signal from here on is kept for the shards' drains:
         * held until lp_stop is ours to clear (review rw1: one that came
         * between the look and the clearing was forgotten) */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGHUP);
        sigprocmask(SIG_BLOCK, &sigs, &old);
        if (n > 1 && lp_stop == WATCH_STOP &&
            rank(st) <= rank(LP_EX_DATAERR)) {
            /* the stream became sharded: its shards' drains now */
            lp_stop = 0;
            sigprocmask(SIG_SETMASK, &old, NULL);
            watch_end();
            conf.log_tick = lp_log_tick;
            conf.log_due = lp_log_due;
            st = drain_shards(&conf, &says, n, &rg, &errors);
        } else {
            sigprocmask(SIG_SETMASK, &old, NULL);
            watch_end();
        }
    }
out:
    return tool_opt_end(&conf.com, st);
}
