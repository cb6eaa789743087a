/* logpipe-drain.c -- a consumer group into per-key, per-day JSONL files */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_archive.h"
#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exec.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_layout.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_owner.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "lp_time.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * One batch at a time: read, turn each entry into an archive line appended
 * to its file's buffer, write each touched file once under its lock,
 * fdatasync, and only then XACK, in the same round trip as the next read.
 *
 * Where entries come from, in this order after every (re)connect:
 *   PENDING  our own pending entries (XREADGROUP ... 0): a reply lost in
 *            transit, or a crash, leaves entries pending with nobody
 *            looking at them;
 *   CLAIM    entries other consumers left idle longer than --claim-idle
 *            (XAUTOCLAIM JUSTID, looping over its cursor), again every
 *            half --claim-idle; they become our pending entries, read as
 *            in PENDING;
 *   NEW      new entries (XREADGROUP ... >, BLOCK --block).
 * Pending entries were delivered before: their delivery counts come from
 * XPENDING (--max-deliveries), and their IDs are looked for in their
 * files before writing (at most one copy in the archive). An entry's last
 * allowed delivery is read alone, so that a poison entry, which crashes
 * every attempt, reaches the DLQ without taking its batch-mates along.
 *
 * Entries that can never be archived (bad JSON, unsafe path) or that were
 * delivered too often go to the DLQ, each with its XACK in one script.
 * Acknowledged entries are trimmed (XTRIM MINID, computed in a script from
 * every group's needs), never past an entry any group still needs.
 */

enum { M_PENDING, M_CLAIM, M_NEW };

struct dlq_item {
    size_t id_off, id_len;      /* in the batch's scratch */
    size_t data_off, data_len;
    const char *code;
    size_t detail_off, detail_len;
    unsigned deliveries;
    size_t full_len;            /* > data_len: cut to --max-dlq-size */
};

/* finish_batch: --exec failed; the batch stays pending */
#define EXEC_FAILED (-2)

/* one_entry: the entry needs a day file past --max-files: a new batch */
#define SPLIT 1

struct drain_opt {
    struct lp_common com;
    const char *consumer;
    uint64_t count;
    int64_t block, timeout, claim_idle, keep;
    uint64_t max_deliveries;
    const char *layout;
    int to_stdout, once;
    const char *exec;
    int64_t exec_timeout;
    const char *sql;
    const char *field;
    const char *time_field;
    const char *where;
    uint64_t max_depth;
    uint64_t max_open;
    uint64_t max_files, max_line, max_members, max_dlq_size;
    int shared_dir;
};

static struct drain_opt opt = {
    .count = 1000,
    .block = 2000,
    .timeout = 30000,
    .claim_idle = 60000,
    .max_deliveries = 5,
    .layout = "{service}/%Y-%m-%d.jsonl",
    .field = "data",
    .time_field = "timestamp",
    .max_depth = LP_JSON_DEPTH,
    .max_open = 256,
    .max_line = 1 << 20,
    .max_members = 10000,
    .exec_timeout = 60000,
};

static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err);

#define OPT struct drain_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ, LP_LONG_DIR,
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
      "day files kept open (256)", .min = 1, .max = 100000 },
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

static struct {
    struct lp_redis *r;
    struct lp_layout *layout;
    struct lp_jq *where;
    struct lp_jkeys keys;
    int time_idx;
    int field_idx[LP_LAYOUT_MAXFIELDS];
    struct lp_jlimits lim;
    int dirfd;
    struct lp_archive *arch;
    char host[256];
    /* the batch in hand */
    struct lp_buf scratch;      /* ids, DLQ data and details */
    struct lp_buf obj;          /* an event built from field pairs */
    struct lp_buf line;         /* stdout and --exec sinks */
    struct lp_buf tmp;          /* --sql: decoding, the event without _id */
    struct lp_buf tmp2;         /* --sql: the event without \u0000 */
    size_t *recs;               /* --sql: where each entry's INSERT starts */
    size_t nrecs, caprecs;
    char sql_head[160];         /* --sql: "INSERT INTO t (...) VALUES (" */
    size_t sql_headlen;
    int sql_idx[4];             /* --sql: service, level, app, message */
    int sql_created;            /* --stdout --sql: CREATE TABLE given */
    unsigned exec_fails;        /* --exec: failures in a row */
    char exec_err[LP_ERRLEN];   /* --exec: the last failure */
    int exec_unread_warned;
    struct dlq_item *dlq;
    size_t ndlq, dlq_cap;
    const char **ack;           /* XACK argv: 3 + the batch's ids */
    size_t *acklen;
    size_t nack, capack;
    unsigned *deliveries;       /* per entry of a PENDING/CLAIM batch */
    int check;                  /* entries may be in the archive already */
    int ack_queued, trim_queued;
    int ack_late;               /* the XACK was sent after the read */
    int syncing;                /* the batch's files sync in the pool */
    int64_t sync_t0;
    struct {                    /* batch_done's arguments, once synced */
        const struct lp_reply *entries;
        size_t from, to;
        int64_t t0;
        int mode;
    } synced;
    int stdout_is_file;
    /* reading */
    int mode;
    char after[64];             /* PENDING: last ID read */
    char cursor[64];            /* CLAIM: XAUTOCLAIM's cursor */
    int claiming;               /* PENDING reads claimed entries: CLAIM
                                   resumes at cursor when they are done */
    int64_t next_claim;         /* monotonic ms */
    int64_t last_trim;
    int trim_due;
    uint64_t recreated_ms;      /* group recreated: older entries checked */
    int64_t read_at;            /* monotonic ms the batch in hand was asked
                                   for: delivered no earlier than that */
    int64_t asked_at;
    struct lp_sid *drop;        /* entries of the batch no longer ours */
    size_t ndrop;
    const char *crash;          /* LOGPIPE_TEST_CRASH */
    uint64_t n_read, n_written, n_dlq, n_deleted, n_filtered, n_badtime;
    uint64_t n_dups, n_claimed, n_trimmed;
    int config_error;           /* a DLQ move was refused for good */
    int dlq_quiet;              /* to_dlq: not said (counted elsewhere) */
    int64_t batch_t0;
    /* per-line messages: a few said, the rest counted (lp_log.h) */
    struct lp_budget say_dlq, say_deleted, say_dlq_failed;
    /* the read in hand, whose deliveries a failure of ours gives back */
    const struct lp_reply *cur; /* its entries (borrowed), or NULL */
    size_t ncur;
    int cur_new;                /* M_NEW: each at its first delivery */
    int read_sent;              /* request() sent a read while a batch
                                   synced: its reply is still to come */
    /* --exec: telling an entry the command refuses from a command that
     * fails (see exec_failed) */
    int isolate;                /* read one entry at a time */
    int suspect;                /* an entry failed alone: the next run
                                   tells whether it or the command */
    char sus_id[64];
    size_t sus_idlen;
    unsigned sus_deliveries;    /* its count with the failed delivery */
    char sus_err[LP_ERRLEN];
    struct lp_buf sus_data;     /* its event, cut to --max-dlq-size */
    size_t sus_full;
    /* one live drain per consumer name (lp_owner.h) */
    struct lp_owner *owner;
    int64_t beat_ttl, beat_ms;  /* the heartbeat's TTL, refreshed every */
    int64_t next_beat;          /* monotonic ms */
    int beat_queued;
    int nobeat;                 /* Redis refused it: flock only */
} S;

/*
 * Test-only (LOGPIPE_TEST_CRASH): SIGKILL ourselves at an exact point of
 * the batch cycle ("after-write"), or stop ourselves there once
 * ("stop:after-read"), as a stalled process would be.
 */
/* --metrics: counters mirror the totals in S, set before each write */
static struct {
    struct lp_metrics *m;
    struct lp_metric *archived, *dups, *dlq, *filtered, *deleted, *claimed;
    struct lp_metric *trimmed, *batches, *batch_s, *write_s, *fsync_s;
    struct lp_metric *errors, *reconnects, *lag, *exec_fail, *exec_s;
    uint64_t n_batches, n_errors, n_reconnects, n_exec_fail;
    int64_t newest_ms;          /* time of the newest entry acknowledged */
    int caught_up;              /* the last read found nothing new */
} M;

static void metrics_init(void)
{
    if (opt.com.metrics == NULL)
        return;
    M.m = lp_metrics_new(&lp_log_notify);
    M.archived = lp_counter(M.m, "logpipe_drain_entries_total",
                            "result=\"archived\"",
                            "Entries by what became of them.");
    M.dups = lp_counter(M.m, "logpipe_drain_entries_total",
                        "result=\"duplicate\"", "");
    M.dlq = lp_counter(M.m, "logpipe_drain_entries_total",
                       "result=\"dlq\"", "");
    M.filtered = lp_counter(M.m, "logpipe_drain_entries_total",
                            "result=\"filtered\"", "");
    M.deleted = lp_counter(M.m, "logpipe_drain_entries_total",
                           "result=\"deleted\"", "");
    M.claimed = lp_counter(M.m, "logpipe_drain_claimed_total", "",
                           "Entries taken over from other consumers.");
    M.trimmed = lp_counter(M.m, "logpipe_drain_trimmed_total", "",
                           "Entries trimmed from the stream.");
    M.batches = lp_counter(M.m, "logpipe_drain_batches_total", "",
                           "Batches made durable.");
    M.batch_s = lp_histogram(M.m, "logpipe_drain_batch_seconds", "",
                             "From a batch's reply to its files synced.",
                             lp_seconds_buckets, lp_seconds_nbuckets);
    M.write_s = lp_histogram(M.m, "logpipe_drain_write_seconds", "",
                             "Locking and writing a batch's files.",
                             lp_seconds_buckets, lp_seconds_nbuckets);
    M.fsync_s = lp_histogram(M.m, "logpipe_drain_fsync_seconds", "",
                             "Syncing a batch's files.",
                             lp_seconds_buckets, lp_seconds_nbuckets);
    M.errors = lp_counter(M.m, "logpipe_drain_redis_errors_total", "",
                          "Failures of Redis: I/O errors and error replies.");
    M.reconnects = lp_counter(M.m, "logpipe_drain_reconnects_total", "",
                              "Connections made again after a failure.");
    M.lag = lp_gauge(M.m, "logpipe_drain_lag_seconds", "",
                     "Now minus the time of the newest entry acknowledged.");
    if (opt.exec) {
        M.exec_fail = lp_counter(M.m, "logpipe_drain_exec_failures_total",
                                 "", "Runs of --exec that did not exit 0.");
        M.exec_s = lp_histogram(M.m, "logpipe_drain_exec_seconds", "",
                                "Runs of --exec, start to exit.",
                                lp_seconds_buckets, lp_seconds_nbuckets);
    }
    if (M.m == NULL) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
}

static void metrics_tick(int force)
{
    if (M.m == NULL)
        return;
    lp_metric_set(M.archived, (double)(S.n_written - S.n_dups));
    lp_metric_set(M.dups, (double)S.n_dups);
    lp_metric_set(M.dlq, (double)S.n_dlq);
    lp_metric_set(M.filtered, (double)S.n_filtered);
    lp_metric_set(M.deleted, (double)S.n_deleted);
    lp_metric_set(M.claimed, (double)S.n_claimed);
    lp_metric_set(M.trimmed, (double)S.n_trimmed);
    lp_metric_set(M.batches, (double)M.n_batches);
    lp_metric_set(M.errors, (double)M.n_errors);
    lp_metric_set(M.reconnects, (double)M.n_reconnects);
    lp_metric_set(M.exec_fail, (double)M.n_exec_fail);
    if (M.caught_up)
        lp_metric_set(M.lag, 0);    /* nothing waits: no lag */
    else if (M.newest_ms)
        lp_metric_set(M.lag, (double)(lp_now_ms() - M.newest_ms) / 1000.0);
    lp_metrics_tick(M.m, opt.com.metrics, opt.com.metrics_interval, force);
}

static void crash_point(const char *where)
{
    static int stopped;

    if (S.crash == NULL)
        return;
    if (strcmp(S.crash, where) == 0)
        kill(getpid(), SIGKILL);
    if (!stopped && strncmp(S.crash, "stop:", 5) == 0 &&
        strcmp(S.crash + 5, where) == 0) {
        stopped = 1;
        raise(SIGSTOP);
    }
}

static void fatal_oom(void)
{
    lp_error("out of memory");
    exit(LP_EX_SOFTWARE);
}

/* A failure of ours, not of the entries in hand: gives their delivery
 * back (see give_back), then exits with status. */
static void env_exit(int status) __attribute__((noreturn));

/* ---- the batch ---------------------------------------------------------- */

static size_t scratch_add(const void *p, size_t n)
{
    size_t off = S.scratch.len;

    if (lp_buf_add(&S.scratch, p, n) < 0)
        fatal_oom();
    return off;
}

/* Queues e for the DLQ. Not for the plain XACK: the move carries its own
 * XACK in the same script, so a failed move leaves it pending. */
static void to_dlq(const struct lp_entry *e, unsigned deliveries,
                   const char *data, size_t dlen, const char *code,
                   const char *detail)
{
    struct dlq_item *d;

    if (S.ndlq == S.dlq_cap) {
        size_t cap = S.dlq_cap ? S.dlq_cap * 2 : 16;
        struct dlq_item *p = realloc(S.dlq, cap * sizeof *p);
        if (p == NULL)
            fatal_oom();
        S.dlq = p;
        S.dlq_cap = cap;
    }
    d = &S.dlq[S.ndlq++];
    d->id_off = scratch_add(e->id, e->idlen);
    d->id_len = e->idlen;
    d->full_len = dlen;
    if (dlen > opt.max_dlq_size)
        dlen = opt.max_dlq_size;    /* the DLQ is not a second archive */
    d->data_off = scratch_add(data, dlen);
    d->data_len = dlen;
    d->code = code;
    d->detail_len = strlen(detail);
    d->detail_off = scratch_add(detail, d->detail_len);
    d->deliveries = deliveries;
    if (!S.dlq_quiet)           /* a --where error: said by lp_jq */
        lp_budget_say(&S.say_dlq, "entry %.*s to the DLQ: %s: %s",
                      (int)e->idlen, e->id, code, detail);
}

static void ack_later(const char *id, size_t idlen)
{
    if (S.nack + 3 >= S.capack) {
        size_t cap = S.capack * 2;
        const char **a = realloc(S.ack, cap * sizeof *a);
        size_t *l = a ? realloc(S.acklen, cap * sizeof *l) : NULL;
        if (a)
            S.ack = a;
        if (a == NULL || l == NULL)
            fatal_oom();
        S.acklen = l;
        S.capack = cap;
    }
    /* borrowed from the reply, which is kept until the XACK is sent */
    S.ack[3 + S.nack] = id;
    S.acklen[3 + S.nack] = idlen;
    S.nack++;
}

/* The event of an entry without our field: the object of its pairs. */
static int pairs_object(const struct lp_entry *e)
{
    const char *f, *v;
    size_t fl, vl;
    long bad = 0;

    S.obj.len = 0;
    lp_buf_addc(&S.obj, '{');
    for (size_t k = 0; k < e->nfields; k++) {
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (k)
            lp_buf_addc(&S.obj, ',');
        bad += lp_buf_add_jstr(&S.obj, f, fl);
        lp_buf_addc(&S.obj, ':');
        bad += lp_buf_add_jstr(&S.obj, v, vl);
    }
    lp_buf_addc(&S.obj, '}');
    return bad ? -1 : 0;
}

static int fatal_errno(int e)
{
    return e == ENOSPC || e == EIO || e == EDQUOT || e == EROFS ||
           e == EFBIG ? LP_EX_IOERR : LP_EX_CANTCREAT;
}

/* Appends the archive line of e (event s[0..n), scanned in ev) to dst. */
static void add_line(struct lp_buf *dst, const struct lp_entry *e,
                     const char *s, size_t n, const struct lp_jevent *ev)
{
    if (lp_archive_format(dst, e->id, e->idlen, s, n, ev) < 0)
        fatal_oom();
}

/* The table's shape: what lp_sql writes into it, portable to SQLite and
 * PostgreSQL (a table made beforehand with TIMESTAMPTZ and JSONB takes
 * these text literals too: see examples/analytics.sql). */
static void sql_create(struct lp_buf *b)
{
    char q[512];

    snprintf(q, sizeof q, "CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY "
             "KEY, ts TEXT, service TEXT, level TEXT, app TEXT, message "
             "TEXT, event TEXT);\n", opt.sql);
    if (lp_buf_adds(b, q) < 0)
        fatal_oom();
}

/* Appends the INSERT of entry e (event s[0..n), scanned in ev, time t) to
 * S.line, a transaction per batch; its offset goes to S.recs so that the
 * entries another consumer took over can be left out (sql_drop). */
static void add_sql(const struct lp_entry *e, const char *s, size_t n,
                    const struct lp_jevent *ev, int64_t t)
{
    struct lp_buf *b = &S.line;
    char ts[40];
    int bad = 0;

    if (b->len == 0) {
        if (opt.exec || !S.sql_created)
            sql_create(b);
        S.sql_created = 1;
        if (lp_buf_adds(b, "BEGIN;\n") < 0)
            fatal_oom();
    }
    if (S.nrecs == S.caprecs) {
        size_t cap = S.caprecs ? S.caprecs * 2 : 256;
        size_t *p = realloc(S.recs, cap * sizeof *p);
        if (p == NULL)
            fatal_oom();
        S.recs = p;
        S.caprecs = cap;
    }
    S.recs[S.nrecs++] = b->len;
    bad |= lp_buf_add(b, S.sql_head, S.sql_headlen);
    bad |= lp_sql_add_str(b, e->id, e->idlen);
    bad |= lp_buf_add(b, ", ", 2);
    bad |= lp_sql_add_str(b, ts, lp_time_format(t, ts));
    for (int i = 0; i < 4; i++) {
        bad |= lp_buf_add(b, ", ", 2);
        bad |= lp_sql_add_jval(b, &S.tmp, s, &ev->val[S.sql_idx[i]]);
    }
    bad |= lp_buf_add(b, ", ", 2);
    if (ev->ncuts) {
        /* the event as archived: without its "_id" members */
        size_t cl = lp_json_cut_len(ev, n);
        S.tmp.len = 0;
        if (lp_buf_reserve(&S.tmp, cl) < 0)
            fatal_oom();
        lp_json_cut_copy(ev, s, n, S.tmp.p);
        S.tmp.len = cl;
        bad |= lp_sql_add_json(b, &S.tmp2, S.tmp.p, cl);
    } else {
        bad |= lp_sql_add_json(b, &S.tmp2, s, n);
    }
    bad |= lp_buf_adds(b, ") ON CONFLICT (id) DO NOTHING;\n");
    if (bad)
        fatal_oom();
}

/* --sql: leaves out the INSERTs of the entries in S.drop (rare: read
 * their IDs back from the text rather than keep one per entry). */
static void sql_drop(void)
{
    struct lp_buf *b = &S.line;
    size_t w, k = 0;

    if (S.nrecs == 0)
        return;
    w = S.recs[0];
    for (size_t i = 0; i < S.nrecs; i++) {
        size_t end = i + 1 < S.nrecs ? S.recs[i + 1] : b->len;
        size_t len = end - S.recs[i];
        /* the ID: digits and '-', quoted right after the head */
        const char *id = b->p + S.recs[i] + S.sql_headlen + 1;
        const char *q = memchr(id, '\'', len - S.sql_headlen - 1);
        struct lp_sid sid;
        if (q && lp_stream_id_parse(id, (size_t)(q - id), &sid.ms,
                                    &sid.seq) == 0 &&
            bsearch(&sid, S.drop, S.ndrop, sizeof *S.drop, lp_sid_cmp))
            continue;
        memmove(b->p + w, b->p + S.recs[i], len);
        S.recs[k++] = w;
        w += len;
    }
    b->len = w;
    S.nrecs = k;
}

/* Files entry e, or queues it for the DLQ or the XACK. Returns 0, or
 * SPLIT (nothing done) when it needs a day file past --max-files: it
 * starts the next batch. */
static int one_entry(const struct lp_entry *e, unsigned deliveries)
{
    const char *s;
    size_t n;
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN], path[LP_LAYOUT_PATHMAX];
    uint64_t id_ms = 0, id_seq;
    int64_t t, id_time;
    long plen;

    S.n_read++;
    if (e->fields == NULL) {
        /* pending, but its data was trimmed or deleted */
        S.n_deleted++;
        lp_budget_say(&S.say_deleted, "entry %.*s was deleted from the "
                      "stream before it was archived: acknowledging it",
                      (int)e->idlen, e->id);
        ack_later(e->id, e->idlen);
        return 0;
    }
    s = lp_entry_field(e, opt.field, strlen(opt.field), &n);
    if (s == NULL) {
        if (pairs_object(e) < 0) {
            to_dlq(e, deliveries, S.obj.p, S.obj.len, "invalid-utf8",
                   "a field or value is not valid UTF-8");
            return 0;
        }
        s = S.obj.p;
        n = S.obj.len;
    }
    if (n > opt.max_line) {
        char detail[96];
        snprintf(detail, sizeof detail, "%zu bytes, longer than --max-line "
                 "(%" PRIu64 ")", n, opt.max_line);
        to_dlq(e, deliveries, s, n, "too-long", detail);
        return 0;
    }
    if (deliveries > opt.max_deliveries) {
        /* it was handed out that often and never acknowledged, and not
         * because of a failure of ours (those give their delivery back,
         * see give_back): a drain holding it never came back, the last
         * time holding it alone (pending_count) */
        char detail[256];
        snprintf(detail, sizeof detail, "delivered %u time%s without being "
                 "archived: each time, the drain holding it did not finish "
                 "(it crashed, was killed, stalled or lost Redis)%s",
                 deliveries - 1, deliveries - 1 == 1 ? "" : "s",
                 opt.max_deliveries > 1 ? ", the last time with this entry "
                                          "alone" : "");
        to_dlq(e, deliveries - 1, s, n, "max-deliveries", detail);
        return 0;
    }
    if (S.crash && strncmp(S.crash, "on-data:", 8) == 0 &&
        memmem(s, n, S.crash + 8, strlen(S.crash + 8)))
        kill(getpid(), SIGKILL);        /* test-only: a poison entry */
    lp_json_trim(&s, &n);
    if (lp_json_event(s, n, &S.keys, &S.lim, &ev, &je) < 0) {
        to_dlq(e, deliveries, s, n,
               je.not_object ? "not-object" : "invalid-json", je.msg);
        return 0;
    }
    if (S.where) {
        int m = lp_jq_match(S.where, s, n, err);
        if (m < 0) {
            /* the first few said; all counted, in the exit status too */
            S.dlq_quiet = !lp_jq_name_it(S.where);
            to_dlq(e, deliveries, s, n, "where-error", err);
            S.dlq_quiet = 0;
            return 0;
        }
        if (m == 0) {
            S.n_filtered++;
            ack_later(e->id, e->idlen);
            return 0;
        }
    }
    if (lp_stream_id_parse(e->id, e->idlen, &id_ms, &id_seq) < 0)
        id_ms = (uint64_t)lp_now_ms();
    /* an ID set by hand may be past 2^63: saturate, so that it is out of
     * range (unsafe-path) rather than wrapped to a date before 1970 */
    id_time = id_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)id_ms;
    t = id_time;
    if (S.time_idx >= 0) {
        int rc = lp_event_time(s, &ev.val[S.time_idx], &t, err);
        if (rc < 0) {
            /* another producer's idea of a time: file it by arrival */
            S.n_badtime++;
            lp_info("entry %.*s: %s: filed by its stream ID time",
                    (int)e->idlen, e->id, err);
            t = id_time;
        } else if (rc == 0) {
            t = id_time;
        }
    }

    if (opt.sql) {
        add_sql(e, s, n, &ev, t);
    } else if (opt.to_stdout || opt.exec) {
        add_line(&S.line, e, s, n, &ev);
    } else {
        struct lp_afile *f;
        plen = lp_layout_expand(S.layout, t, s, &ev, S.field_idx, path,
                                sizeof path, err);
        if (plen < 0) {
            to_dlq(e, deliveries, s, n, "unsafe-path", err);
            return 0;
        }
        if (lp_archive_touched(S.arch) >= opt.max_files &&
            !lp_archive_touches(S.arch, path, (size_t)plen)) {
            S.n_read--;         /* read again as the next batch's first */
            return SPLIT;
        }
        if ((f = lp_archive_get(S.arch, path, (size_t)plen, err)) == NULL) {
            if (errno == ELOOP || errno == ENOTDIR || errno == EINVAL) {
                to_dlq(e, deliveries, s, n, "unsafe-path", err);
                return 0;
            }
            /* err starts with the part of path that failed: the file
             * or one of its directories */
            int st = fatal_errno(errno);
            lp_error("cannot open %s/%s", opt.com.dir, err);
            env_exit(st);
        }
        if ((S.check || id_ms < S.recreated_ms) &&
            lp_afile_check(f, e->id, e->idlen) < 0)
            fatal_oom();
        add_line(lp_afile_buf(f), e, s, n, &ev);
    }
    S.n_written++;
    ack_later(e->id, e->idlen);
    return 0;
}

/*
 * XADD to the DLQ, then XACK, as one script: redis.call raises on an error,
 * so when the XADD fails (WRONGTYPE, OOM) the XACK never runs and the entry
 * stays pending. MULTI/EXEC would not do: it runs the XACK even when the
 * XADD inside it fails at run time.
 * KEYS: stream, dlq. ARGV: group, id, then the DLQ entry's field/values.
 */
static const char dlq_script[] =
    "local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "return id\n";

/* Moves the batch's DLQ items, each with its XACK, atomically. */
static int send_dlq(char *err)
{
    char ms[32];

    if (S.ndlq == 0)
        return 0;
    snprintf(ms, sizeof ms, "%lld", (long long)lp_now_ms());
    for (size_t i = 0; i < S.ndlq; i++) {
        const struct dlq_item *d = &S.dlq[i];
        const char *id = S.scratch.p + d->id_off;
        char deliveries[16], full[24];
        snprintf(deliveries, sizeof deliveries, "%u", d->deliveries);
        snprintf(full, sizeof full, "%zu", d->full_len);
        const char *argv[27] = {
            "EVAL", dlq_script, "2", opt.com.stream, opt.com.dlq,
            opt.com.group, id,
            "data", S.scratch.p + d->data_off,
            "error", d->code,
            "detail", S.scratch.p + d->detail_off,
            "stage", "drain",
            "source_stream", opt.com.stream,
            "source_id", id,
            "deliveries", deliveries,
            "consumer", opt.consumer,
            "failed_at", ms,
            "truncated", full,
        };
        /* a cut event says how long it was; retry refuses it */
        int argc = d->full_len > d->data_len ? 27 : 25;
        size_t lens[27];
        for (int k = 0; k < argc; k++) {
            /* id, data and detail live in the scratch buffer, unterminated */
            if (k == 6 || k == 18)
                lens[k] = d->id_len;
            else if (k == 8)
                lens[k] = d->data_len;
            else if (k == 12)
                lens[k] = d->detail_len;
            else
                lens[k] = strlen(argv[k]);
        }
        if (lp_redis_append(S.r, argc, argv, lens) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
            return -1;
        }
    }
    for (size_t i = 0; i < S.ndlq; i++) {
        struct lp_reply *rep;
        if (lp_redis_reply(S.r, &rep, err) < 0)
            return -1;
        if (lp_reply_type(rep) == LP_REPLY_STRING) {
            S.n_dlq++;
            S.trim_due = 1;     /* the move acknowledged it */
        } else {
            char t[300], *cut;
            lp_reply_text(rep, t, sizeof t);
            /* Redis wraps errors inside scripts: keep the first words */
            if ((cut = strstr(t, " script:")) != NULL)
                *cut = '\0';
            lp_budget_say(&S.say_dlq_failed, "moving %.*s to the DLQ %s "
                          "failed: %s (it stays pending)",
                          (int)S.dlq[i].id_len,
                          S.scratch.p + S.dlq[i].id_off, opt.com.dlq, t);
            if (strstr(t, "WRONGTYPE") || strstr(t, "NOPERM"))
                S.config_error = 1;
        }
        lp_reply_free(rep);
    }
    return 0;
}

/* ---- Redis -------------------------------------------------------------- */

/*
 * XTRIM MINID to the oldest entry any group still needs: its oldest
 * pending entry, or the one after its last delivered. Computed and applied
 * in one script, so no group can move back in between. No group: no trim.
 * KEYS: stream. ARGV: the --keep floor ID, or "".
 */
static const char trim_script[] =
    "local function parse(id)\n"
    "  local ms, seq = string.match(id, '^(%d+)-(%d+)$')\n"
    "  return ms, seq\n"
    "end\n"
    "local function less(a, b)\n"
    "  local am, as = parse(a)\n"
    "  local bm, bs = parse(b)\n"
    "  if #am ~= #bm then return #am < #bm end\n"
    "  if am ~= bm then return am < bm end\n"
    "  if #as ~= #bs then return #as < #bs end\n"
    "  return as < bs\n"
    "end\n"
    "local groups = redis.call('XINFO', 'GROUPS', KEYS[1])\n"
    "if #groups == 0 then return -1 end\n"
    "local need\n"
    "for _, g in ipairs(groups) do\n"
    "  local f = {}\n"
    "  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "  local cand\n"
    "  if tonumber(f['pending']) > 0 then\n"
    "    cand = redis.call('XPENDING', KEYS[1], f['name'])[2]\n"
    "  else\n"
    "    local ms, seq = parse(f['last-delivered-id'])\n"
    "    cand = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)\n"
    "  end\n"
    "  if need == nil or less(cand, need) then need = cand end\n"
    "end\n"
    "if ARGV[1] ~= '' and less(ARGV[1], need) then need = ARGV[1] end\n"
    "return redis.call('XTRIM', KEYS[1], 'MINID', need)\n";

static int queue_trim(char *err)
{
    char floor[32] = "";
    const char *argv[5] = { "EVAL", trim_script, "1", opt.com.stream, floor };
    size_t lens[5];

    S.trim_queued = 0;
    if (opt.keep > 0)
        snprintf(floor, sizeof floor, "%lld-0",
                 (long long)(lp_now_ms() - opt.keep));
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    if (lp_redis_append(S.r, 5, argv, lens) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    S.trim_queued = 1;
    S.trim_due = 0;
    S.last_trim = lp_mono_ms();
    return 0;
}

static void take_trim_reply(struct lp_reply *t)
{
    if (lp_reply_type(t) == LP_REPLY_INTEGER) {
        if (lp_reply_int(t) > 0)
            S.n_trimmed += (uint64_t)lp_reply_int(t);
    } else {
        char m[300];
        lp_warn("trimming %s failed: %s", opt.com.stream,
                lp_reply_text(t, m, sizeof m));
    }
    lp_reply_free(t);
    S.trim_queued = 0;
}

/* Creates the group at the start of the stream (and the stream). Returns
 * 1 when it was created, 0 when it existed, -1/-2 (config) on errors. */
static int ensure_group(char *err)
{
    struct lp_reply *rep = lp_redis_cmd(S.r, err, "XGROUP", "CREATE",
                                        opt.com.stream, opt.com.group, "0",
                                        "MKSTREAM", NULL);
    int rc = 0;

    if (rep == NULL)
        return -1;
    if (lp_reply_is_error(rep, "OOM")) {
        /* at maxmemory Redis refuses XGROUP CREATE even for a group that
         * exists; reads, acks and trims still work: look */
        struct lp_reply *g = lp_redis_cmd(S.r, err, "XINFO", "GROUPS",
                                          opt.com.stream, NULL);
        int found = 0;
        for (size_t i = 0; g && i < lp_reply_len(g); i++) {
            const struct lp_reply *grp = lp_reply_at(g, i);
            for (size_t k = 0; k + 1 < lp_reply_len(grp); k += 2) {
                const char *f = lp_reply_str(lp_reply_at(grp, k), NULL);
                const char *v = lp_reply_str(lp_reply_at(grp, k + 1), NULL);
                if (f && v && strcmp(f, "name") == 0 &&
                    strcmp(v, opt.com.group) == 0)
                    found = 1;
            }
        }
        lp_reply_free(g);
        if (found) {
            lp_warn("%s is out of memory (OOM): the group exists, going on "
                    "(acknowledging and trimming free memory)",
                    lp_redis_name(S.r));
            lp_reply_free(rep);
            return 0;
        }
    }
    if (lp_reply_type(rep) == LP_REPLY_ERROR &&
        !lp_reply_is_error(rep, "BUSYGROUP")) {
        char t[300];
        snprintf(err, LP_ERRLEN, "XGROUP CREATE %s %s: %s", opt.com.stream,
                 opt.com.group, lp_reply_text(rep, t, sizeof t));
        rc = lp_reply_is_error(rep, "WRONGTYPE") ||
             lp_reply_is_error(rep, "NOPERM") ? -2 : -1;
    } else if (lp_reply_type(rep) != LP_REPLY_ERROR) {
        lp_info("created group %s on %s", opt.com.group, opt.com.stream);
        rc = 1;
    }
    lp_reply_free(rep);
    return rc;
}

/* Takes our consumer name's heartbeat: 0, or -1 with err on an I/O
 * error; exits 75 when a live drain has the name. */
static int claim_name(char *err)
{
    int rc;

    if (S.nobeat)
        return 0;
    rc = lp_owner_claim(S.owner, S.r, S.beat_ttl, err);
    if (rc == LP_OWNER_TWIN) {
        lp_error("%s: give each drain its own --consumer", err);
        exit(LP_EX_TEMPFAIL);
    }
    if (rc == LP_OWNER_NOBEAT) {
        lp_warn("%s: going on without a heartbeat (a drain under this "
                "consumer name on another host goes unnoticed)", err);
        S.nobeat = 1;
        return 0;
    }
    if (rc < 0)
        return -1;
    S.next_beat = lp_mono_ms() + S.beat_ms;
    return 0;
}

/* The reply to a heartbeat refresh: exits 75 when another drain holds
 * our name now (ours expired while this one stalled). */
static void take_beat_reply(struct lp_reply *a)
{
    char err[LP_ERRLEN];
    int rc = lp_owner_beat_reply(S.owner, a, err);

    S.beat_queued = 0;
    if (rc == LP_OWNER_TWIN) {
        lp_error("%s: this drain stalled past its heartbeat and another "
                 "took the name over; stopping", err);
        exit(LP_EX_TEMPFAIL);
    }
    if (rc == LP_OWNER_NOBEAT && !S.nobeat) {
        lp_warn("%s: going on without a heartbeat", err);
        S.nobeat = 1;
    }
}

/* (Re)connects and joins the group, retrying for --timeout. */
static void connect_redis(void)
{
    char err[LP_ERRLEN];
    int64_t backoff = 0, start = lp_mono_ms();
    int warned = 0, rc;

    for (;;) {
        rc = lp_redis_connect(S.r, err);
        if (rc == 0) {
            rc = ensure_group(err);
            if (rc == -2) {
                lp_error("%s", err);
                exit(LP_EX_CONFIG);
            }
        }
        if (rc >= 0 && claim_name(err) < 0)
            rc = -1;
        if (rc == LP_REDIS_EAUTH) {
            lp_error("%s", err);
            exit(LP_EX_CONFIG);
        }
        if (rc >= 0)
            break;
        M.n_errors++;
        if (!warned) {
            char d[32];
            lp_format_duration(opt.timeout, d, sizeof d);
            lp_warn("%s; retrying for up to %s", err, d);
            warned = 1;
        }
        if (lp_stop)
            exit(LP_EX_OK);     /* nothing in hand */
        if (lp_mono_ms() - start >= opt.timeout) {
            lp_error("giving up: %s", err);
            exit(LP_EX_UNAVAILABLE);
        }
        backoff = backoff ? backoff * 2 : 100;
        if (backoff > 2000)
            backoff = 2000;
        poll(NULL, 0, (int)backoff);
    }
    if (warned || S.n_read)
        M.n_reconnects += S.n_read > 0 || warned;
    if (warned)
        lp_warn("%s answers again", lp_redis_name(S.r));
    if (rc == 1 && S.n_read > 0) {
        /* made again while we ran (NOGROUP): the entries it hands out
         * again may be in the archive already */
        S.recreated_ms = (uint64_t)lp_now_ms();
    }
    /* after every (re)connect, our own pending entries come first */
    S.mode = M_PENDING;
    strcpy(S.after, "0");
    S.claiming = 0;
    S.ack_queued = S.trim_queued = S.beat_queued = 0;
}

/* Queues XACK of the batch in hand (if any); S.ack[0..2] are reserved
 * for "XACK <stream> <group>", the IDs follow. */
static int queue_ack(char *err)
{
    S.ack_queued = 0;
    if (S.nack == 0)
        return 0;
    S.ack[0] = "XACK";
    S.acklen[0] = 4;
    S.ack[1] = opt.com.stream;
    S.acklen[1] = strlen(opt.com.stream);
    S.ack[2] = opt.com.group;
    S.acklen[2] = strlen(opt.com.group);
    if (lp_redis_append(S.r, (int)S.nack + 3, S.ack, S.acklen) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    S.ack_queued = 1;
    return 0;
}

static void take_ack_reply(struct lp_reply *a)
{
    if (lp_reply_type(a) != LP_REPLY_INTEGER) {
        char t[200];
        lp_warn("XACK failed: %s (the entries stay pending and are "
                "delivered again)", lp_reply_text(a, t, sizeof t));
    } else {
        S.trim_due = 1;
        crash_point("after-ack");
    }
    lp_reply_free(a);
    S.ack_queued = 0;
}

/*
 * How many of our next pending entries to read at once: those that, read
 * now, are not at their last allowed delivery; or just the first. XPENDING
 * does not count as a delivery. Returns the count, or -1 with err.
 */
static long pending_count(char *err)
{
    char start[70], count[24];
    struct lp_reply *rep;
    long k = (long)opt.count;

    if (S.isolate || S.suspect)
        return 1;               /* --exec: see exec_failed */
    if (strcmp(S.after, "0") == 0)
        strcpy(start, "-");
    else
        snprintf(start, sizeof start, "(%s", S.after);
    snprintf(count, sizeof count, "%" PRIu64, opt.count);
    rep = lp_redis_cmd(S.r, err, "XPENDING", opt.com.stream, opt.com.group,
                       start, "+", count, opt.consumer, NULL);
    if (rep == NULL)
        return -1;
    for (size_t i = 0; i < lp_reply_len(rep); i++) {
        const struct lp_reply *d = lp_reply_at(lp_reply_at(rep, i), 3);
        if (d && (uint64_t)lp_reply_int(d) + 1 >= opt.max_deliveries) {
            k = i ? (long)i : 1;
            break;
        }
    }
    lp_reply_free(rep);
    return k;
}

/* Queues the XACK of the batch in hand, a trim when one is due, and the
 * next read; sends them in one write. Reading our pending entries takes
 * a round trip more: the XACK first, then XPENDING, then the read. */
static void batch_done(const struct lp_reply *entries, size_t from,
                       size_t to, int64_t t0, int mode);

/*
 * Waits for the files of the batch in hand to be synced, when that runs
 * in the background (see main); exits 74 when it failed. Nothing may be
 * acknowledged before.
 */
static void sync_finish(void)
{
    char err[LP_ERRLEN];

    if (!S.syncing)
        return;
    S.syncing = 0;
    if (lp_archive_sync_finish(S.arch, err) < 0) {
        lp_error("%s", err);
        env_exit(LP_EX_IOERR);
    }
    lp_metric_observe(M.fsync_s, (double)(lp_mono_us() - S.sync_t0) / 1e6);
    crash_point("after-fsync");
    batch_done(S.synced.entries, S.synced.from, S.synced.to, S.synced.t0,
               S.synced.mode);
}

static int request(char *err)
{
    char count[24], block[24], idle[24];
    const char *argv[14];
    size_t lens[14];
    int n = 0;
    long k = (long)opt.count;

    /* while the batch in hand syncs, its XACK must wait: it follows the
     * read, below */
    if (!S.syncing && queue_ack(err) < 0)
        return -1;
    if (S.mode == M_PENDING) {
        struct lp_reply *a;
        if (S.ack_queued) {
            if (lp_redis_reply(S.r, &a, err) < 0)
                return -1;
            take_ack_reply(a);
            S.nack = 0;
        }
        if ((k = pending_count(err)) < 0)
            return -1;
    }
    if (S.trim_due && lp_mono_ms() - S.last_trim >= 1000 &&
        queue_trim(err) < 0)
        return -1;
    if (!S.nobeat && lp_mono_ms() >= S.next_beat) {
        if (lp_owner_queue_beat(S.owner, S.r, S.beat_ttl) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
            return -1;
        }
        S.beat_queued = 1;
        S.next_beat = lp_mono_ms() + S.beat_ms;
    }
    if (S.mode == M_NEW && S.suspect)
        k = 1;                  /* --exec: the entry that judges it */
    snprintf(count, sizeof count, "%ld", k);
    if (S.mode == M_CLAIM) {
        /* JUSTID: ownership moves, the delivery count does not; the
         * entries are then read as our pending ones */
        snprintf(idle, sizeof idle, "%lld", (long long)opt.claim_idle);
        argv[n++] = "XAUTOCLAIM";
        argv[n++] = opt.com.stream;
        argv[n++] = opt.com.group;
        argv[n++] = opt.consumer;
        argv[n++] = idle;
        argv[n++] = S.cursor;
        argv[n++] = "COUNT";
        argv[n++] = count;
        argv[n++] = "JUSTID";
    } else {
        argv[n++] = "XREADGROUP";
        argv[n++] = "GROUP";
        argv[n++] = opt.com.group;
        argv[n++] = opt.consumer;
        argv[n++] = "COUNT";
        argv[n++] = count;
        if (S.mode == M_NEW && !opt.once) {
            /* an idle drain still rewrites --metrics on time */
            int64_t b = opt.block;
            int64_t due = lp_log_due();
            if (M.m && b > opt.com.metrics_interval)
                b = opt.com.metrics_interval;
            if (due >= 0 && due < b)
                b = due > 0 ? due : 1;  /* and says what it held back */
            if (!S.nobeat && b > S.beat_ms)
                b = S.beat_ms;  /* and refreshes its heartbeat */
            snprintf(block, sizeof block, "%lld", (long long)b);
            argv[n++] = "BLOCK";
            argv[n++] = block;
        }
        argv[n++] = "STREAMS";
        argv[n++] = opt.com.stream;
        argv[n++] = S.mode == M_PENDING ? S.after : ">";
    }
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (lp_redis_append(S.r, n, argv, lens) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    /* the entries are delivered (their idle time starts) after this */
    S.asked_at = lp_mono_ms();
    if (lp_redis_flush(S.r, err) < 0)
        return -1;
    if (S.mode == M_NEW)
        crash_point("after-request");
    if (S.syncing) {
        /* Redis works on the read while the files sync: now the XACK */
        S.read_sent = 1;
        sync_finish();
        S.read_sent = 0;
        if (queue_ack(err) < 0)
            return -1;
        if (S.ack_queued) {
            S.ack_late = 1;
            if (lp_redis_flush(S.r, err) < 0)
                return -1;
        }
    }
    return 0;
}


/* Reads the XACK and trim replies (if sent) and the read's reply. */
static int receive(struct lp_reply **rep, char *err)
{
    struct lp_reply *a;
    int blocking = S.mode == M_NEW && !opt.once, rc;

    if (S.ack_queued && !S.ack_late) {
        if (lp_redis_reply(S.r, &a, err) < 0)
            return -1;
        take_ack_reply(a);
        S.nack = 0;
    }
    if (S.trim_queued) {
        if (lp_redis_reply(S.r, &a, err) < 0)
            return -1;
        take_trim_reply(a);
    }
    if (S.beat_queued) {
        if (lp_redis_reply(S.r, &a, err) < 0)
            return -1;
        take_beat_reply(a);
    }
    /* a stop signal during a blocking read shuts the socket: entries the
     * server delivered meanwhile stay pending for the next start */
    if (blocking) {
        lp_sig_shutdown_fd(lp_redis_fd(S.r));
        if (lp_stop) {
            lp_sig_shutdown_fd(-1);
            snprintf(err, LP_ERRLEN, "stopped");
            return -1;
        }
    }
    rc = lp_redis_reply(S.r, rep, err);
    if (blocking)
        lp_sig_shutdown_fd(-1);
    if (rc == 0 && S.ack_queued && S.ack_late) {
        S.ack_late = 0;
        if (lp_redis_reply(S.r, &a, err) < 0) {
            lp_reply_free(*rep);
            *rep = NULL;
            return -1;
        }
        take_ack_reply(a);
        S.nack = 0;
    }
    S.ack_late = 0;
    return rc;
}

/* Compares two stream IDs. */
static int id_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t am = 0, as = 0, bm = 0, bs = 0;

    lp_stream_id_parse(a, an, &am, &as);
    lp_stream_id_parse(b, bn, &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

/* XPENDING of our entries over the ID range of a batch: [id, consumer,
 * idle, deliveries] each, in ID order. Returns the reply (caller frees),
 * or NULL with err. */
static struct lp_reply *batch_pending(const struct lp_reply *entries,
                                      size_t from, size_t to, char *err)
{
    struct lp_entry first, last;
    char a[64], b[64], count[24];

    if (lp_entry_get(entries, from, &first, err) < 0 ||
        lp_entry_get(entries, to - 1, &last, err) < 0)
        return NULL;
    snprintf(a, sizeof a, "%.*s", (int)first.idlen, first.id);
    snprintf(b, sizeof b, "%.*s", (int)last.idlen, last.id);
    snprintf(count, sizeof count, "%zu", to - from + 16);
    return lp_redis_cmd(S.r, err, "XPENDING", opt.com.stream, opt.com.group,
                        a, b, count, opt.consumer, NULL);
}

/*
 * Delivery counts of a batch of entries already delivered before (ours
 * now), from XPENDING over the batch's ID range, into S.deliveries.
 * Returns 0, or -1 with err on an I/O error.
 */
static int delivery_counts(const struct lp_reply *entries, size_t n,
                           char *err)
{
    struct lp_entry e;
    struct lp_reply *rep;
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        S.deliveries[i] = 1;
    if ((rep = batch_pending(entries, 0, n, err)) == NULL)
        return -1;
    /* both lists in ID order: walk them together */
    for (size_t j = 0; j < lp_reply_len(rep) && k < n; j++) {
        const struct lp_reply *p = lp_reply_at(rep, j);
        const struct lp_reply *pid = lp_reply_at(p, 0);
        const struct lp_reply *cnt = lp_reply_at(p, 3);
        size_t pl;
        const char *ps;
        if (pid == NULL || cnt == NULL || (ps = lp_reply_str(pid, &pl)) ==
            NULL)
            continue;
        while (k < n && lp_entry_get(entries, k, &e, err) == 0 &&
               id_cmp(e.id, e.idlen, ps, pl) < 0)
            k++;
        if (k < n && lp_entry_get(entries, k, &e, err) == 0 &&
            id_cmp(e.id, e.idlen, ps, pl) == 0)
            S.deliveries[k++] = (unsigned)lp_reply_int(cnt);
    }
    lp_reply_free(rep);
    return 0;
}

/* ---- failures of ours ---------------------------------------------------- */

/*
 * A failure of our own environment (a full disk, a quota, an I/O error, a
 * failed fsync, a read-only file system, a standard output that fails, an
 * --exec command that cannot run or fails) says nothing about the entries
 * in hand: their delivery must not count toward --max-deliveries, which is
 * there for entries that break the drain. So it is given back: each entry
 * still pending for us gets the delivery count it had before this read
 * (XCLAIM ... RETRYCOUNT, JUSTID so that it is not a delivery, its idle
 * time kept). Entries acknowledged, taken over by another consumer, or
 * deleted from the stream meanwhile are left alone (XCLAIM would drop a
 * deleted one from the pending list, and the drain reports those).
 * KEYS: stream. ARGV: group, consumer, then ID, count pairs.
 */
static const char giveback_script[] =
    "local n = 0\n"
    "for i = 3, #ARGV, 2 do\n"
    "  local id = ARGV[i]\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1,\n"
    "                       ARGV[2])\n"
    "  if #p == 1 and p[1][4] > tonumber(ARGV[i + 1]) and\n"
    "     #redis.call('XRANGE', KEYS[1], id, id) == 1 then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE',\n"
    "               p[1][3], 'RETRYCOUNT', ARGV[i + 1], 'JUSTID')\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/*
 * Gives back this delivery of entries[from..to): deliv[i] is entry i's
 * count with it (NULL: new entries, at their first). Connects once when
 * the connection is gone. Returns how many were given back, or -1 with
 * err (then they count).
 */
static long give_back(const struct lp_reply *entries, size_t from,
                      size_t to, const unsigned *deliv, char *err)
{
    enum { CHUNK = 500 };       /* entries per script: Redis stays free */
    const char **argv = malloc((6 + 2 * CHUNK) * sizeof *argv);
    size_t *lens = malloc((6 + 2 * CHUNK) * sizeof *lens);
    char (*cnt)[12] = malloc(CHUNK * sizeof *cnt);
    long given = 0;

    if (argv == NULL || lens == NULL || cnt == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        given = -1;
        goto out;
    }
    if (!lp_redis_connected(S.r) && lp_redis_connect(S.r, err) != 0) {
        given = -1;
        goto out;
    }
    argv[0] = "EVAL";
    argv[1] = giveback_script;
    argv[2] = "1";
    argv[3] = opt.com.stream;
    argv[4] = opt.com.group;
    argv[5] = opt.consumer;
    for (int k = 0; k < 6; k++)
        lens[k] = strlen(argv[k]);
    while (from < to) {
        int argc = 6;
        struct lp_reply *rep;
        for (size_t k = 0; k < CHUNK && from < to; k++, from++) {
            struct lp_entry e;
            unsigned d = deliv ? deliv[from] : 1;
            if (lp_entry_get(entries, from, &e, err) < 0) {
                given = -1;
                goto out;
            }
            snprintf(cnt[k], sizeof cnt[k], "%u", d ? d - 1 : 0);
            argv[argc] = e.id;
            lens[argc++] = e.idlen;
            argv[argc] = cnt[k];
            lens[argc++] = strlen(cnt[k]);
        }
        if ((rep = lp_redis_cmdv(S.r, err, argc, argv, lens)) == NULL) {
            given = -1;
            goto out;
        }
        if (lp_reply_type(rep) != LP_REPLY_INTEGER) {
            lp_reply_text(rep, err, LP_ERRLEN);
            lp_reply_free(rep);
            given = -1;
            goto out;
        }
        given += lp_reply_int(rep);
        lp_reply_free(rep);
    }
out:
    free(argv);
    free(lens);
    free(cnt);
    return given;
}

/* Gives back the delivery of one entry: its count becomes prev. */
static int give_back_one(const char *id, size_t idlen, unsigned prev,
                         char *err)
{
    char cnt[12];
    const char *argv[8] = { "EVAL", giveback_script, "1", opt.com.stream,
                            opt.com.group, opt.consumer, id, cnt };
    size_t lens[8];
    struct lp_reply *rep;
    int rc = 0;

    snprintf(cnt, sizeof cnt, "%u", prev);
    for (int k = 0; k < 8; k++)
        lens[k] = strlen(argv[k]);
    lens[6] = idlen;
    if (!lp_redis_connected(S.r) && lp_redis_connect(S.r, err) != 0)
        return -1;
    if ((rep = lp_redis_cmdv(S.r, err, 8, argv, lens)) == NULL)
        return -1;
    if (lp_reply_type(rep) != LP_REPLY_INTEGER) {
        lp_reply_text(rep, err, LP_ERRLEN);
        rc = -1;
    }
    lp_reply_free(rep);
    return rc;
}

/* --exec: the suspect is not judged (the command failed on the next entry
 * too, or nothing came, or we stop): its deliveries are given back. */
static void suspect_release(void)
{
    char err[LP_ERRLEN];

    if (!S.suspect)
        return;
    S.suspect = 0;
    if (give_back_one(S.sus_id, S.sus_idlen, S.sus_deliveries - 1, err) < 0)
        lp_warn("giving back the deliveries of %.*s failed: %s (they count "
                "toward --max-deliveries)", (int)S.sus_idlen, S.sus_id, err);
}

/* The read sent while a batch synced, whose sync then failed: its reply
 * (after those of the trim and the heartbeat queued before it) holds new
 * entries, delivered to us; give those back too. */
static void give_back_sent(void)
{
    char err[LP_ERRLEN];
    struct lp_reply *rep;
    const struct lp_reply *entries = NULL;
    int mode = S.mode;

    S.read_sent = 0;
    if (S.trim_queued) {
        if (lp_redis_reply(S.r, &rep, err) < 0)
            return;
        take_trim_reply(rep);
    }
    if (S.beat_queued) {
        if (lp_redis_reply(S.r, &rep, err) < 0)
            return;
        S.beat_queued = 0;
        lp_reply_free(rep);
    }
    if (lp_redis_reply(S.r, &rep, err) < 0)
        return;
    if (mode == M_NEW && lp_reply_type(rep) == LP_REPLY_ARRAY &&
        lp_reply_entries(rep, 0, &entries, err) == 0 && entries &&
        give_back(entries, 0, lp_reply_len(entries), NULL, err) < 0)
        lp_warn("giving back the deliveries of the entries read meanwhile "
                "failed: %s (they count toward --max-deliveries)", err);
    lp_reply_free(rep);
}

/* The read in hand (and one sent meanwhile) failed because of us: give
 * its deliveries back. */
static void give_back_all(void)
{
    char err[LP_ERRLEN];
    long k;

    if (S.read_sent)
        give_back_sent();
    suspect_release();
    if (S.cur == NULL || S.ncur == 0)
        return;
    k = give_back(S.cur, 0, S.ncur, S.cur_new ? NULL : S.deliveries, err);
    if (k < 0)
        lp_warn("giving back the deliveries of the batch failed: %s (they "
                "count toward --max-deliveries)", err);
    else if (k > 0)
        lp_info("%ld deliveries given back: a failure of ours does not "
                "count against entries", k);
}

/* An exit that is not a twin's frees our name at once, so that a drain
 * started elsewhere under it need not wait for the heartbeat's TTL (a
 * stop during a blocking read shut the connection: connect again, as
 * final_ack does). */
static void release_name(void)
{
    char err[LP_ERRLEN];

    if (S.owner && S.r && !S.nobeat &&
        (lp_redis_connected(S.r) || lp_redis_connect(S.r, err) == 0))
        lp_owner_release(S.owner, S.r);
}

static void env_exit(int status)
{
    give_back_all();
    release_name();
    exit(status);
}

/* ---- main --------------------------------------------------------------- */

static int sql_opt(const struct lp_optdef *o, void *base, char *arg,
                   char *err)
{
    (void)o;
    ((struct drain_opt *)base)->sql = arg;
    if (!lp_sql_ident_ok(arg)) {
        snprintf(err, LP_ERRLEN, "'%s' is not a plain table name "
                 "([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)", arg);
        return -1;
    }
    return 0;
}

static void parse_args(int argc, char **argv)
{
    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    if (opt.max_files == 0)
        opt.max_files = opt.max_open;
    if (opt.max_files > opt.max_open) {
        /* the files of a batch stay open until it is synced */
        tool_opt_error(&cli, "--max-files %" PRIu64 " is more than "
                       "--max-open %" PRIu64, opt.max_files, opt.max_open);
    }
    if (opt.max_dlq_size == 0)
        opt.max_dlq_size = opt.max_line;
    if (opt.exec && opt.to_stdout)
        tool_opt_error(&cli, "--exec and --stdout exclude each other");
    if (opt.sql && !opt.exec && !opt.to_stdout)
        tool_opt_error(&cli, "--sql needs --exec or --stdout");
}

static void setup(void)
{
    char err[LP_ERRLEN];
    struct stat st;

    if (gethostname(S.host, sizeof S.host - 1) < 0 || S.host[0] == '\0')
        strcpy(S.host, "logpipe-drain");
    if (opt.consumer == NULL)
        opt.consumer = S.host;
    if ((S.owner = lp_owner_new(opt.com.stream, opt.com.group, opt.consumer,
                                S.host)) == NULL)
        fatal_oom();
    /* a drain silent for --claim-idle is dead to the group: its entries
     * are claimed, and its name may be taken */
    S.beat_ttl = opt.claim_idle < 1000 ? 1000 : opt.claim_idle;
    S.beat_ms = S.beat_ttl / 3;
    S.crash = getenv("LOGPIPE_TEST_CRASH");
    if (S.crash)
        lp_fs_test_hook = crash_point;
    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    S.lim.depth = (int)opt.max_depth;
    S.lim.members = (uint32_t)opt.max_members;
    if (opt.where && lp_jq_new(opt.where, &S.where, err) < 0) {
        lp_error("--where: %s", err);
        exit(LP_EX_CONFIG);
    }
    if (lp_layout_new(opt.layout, &S.layout, err) < 0) {
        lp_error("--layout: %s", err);
        exit(LP_EX_CONFIG);
    }
    for (int i = 0; i < lp_layout_nfields(S.layout); i++) {
        S.field_idx[i] = lp_jkeys_add(&S.keys, lp_layout_field(S.layout, i));
        if (S.field_idx[i] < 0) {
            lp_error("--layout: too many fields");
            exit(LP_EX_CONFIG);
        }
    }
    if (opt.sql) {
        static const char *const col[4] = { "service", "level", "app",
                                            "message" };
        S.sql_headlen = (size_t)snprintf(S.sql_head, sizeof S.sql_head,
                                         "INSERT INTO %s (id, ts, service, "
                                         "level, app, message, event) "
                                         "VALUES (", opt.sql);
        for (int i = 0; i < 4; i++)
            if ((S.sql_idx[i] = lp_jkeys_add(&S.keys, col[i])) < 0) {
                lp_error("--sql: too many members wanted");
                exit(LP_EX_CONFIG);
            }
    }
    if (opt.to_stdout) {
        S.stdout_is_file = fstat(STDOUT_FILENO, &st) == 0 &&
                           S_ISREG(st.st_mode);
    } else if (!opt.exec) {
        /* made when named (-d, LOGPIPE_DIR), not the default: a drain
         * started in the wrong directory would archive there unnoticed */
        if ((S.dirfd = lp_fs_root(opt.com.dir, opt.com.dir_set != NULL, err)) < 0) {
            if (!opt.com.dir_set && errno == ENOENT)
                lp_error("--dir %s (the default) does not exist: create it, "
                         "or name the archive with -d DIR or LOGPIPE_DIR",
                         opt.com.dir);
            else
                lp_error("--dir: %s", err);
            exit(LP_EX_CANTCREAT);
        }
        int rc = lp_owner_lock_dir(S.owner, S.dirfd, opt.shared_dir, err);
        if (rc == LP_OWNER_TWIN) {
            lp_error("%s: give each drain its own --consumer", err);
            exit(LP_EX_TEMPFAIL);
        }
        if (rc == LP_OWNER_SHARED) {
            lp_error("--dir %s: %s; give each group its own --dir, or "
                     "--shared-dir if that is what you want", opt.com.dir,
                     err);
            exit(LP_EX_CONFIG);
        }
        if (rc < 0) {
            lp_error("--dir %s: %s", opt.com.dir, err);
            exit(LP_EX_CANTCREAT);
        }
        if ((S.arch = lp_archive_new(S.dirfd, opt.max_open,
                                     &lp_log_notify)) == NULL)
            fatal_oom();
    }
    S.capack = opt.count + 64;
    S.ack = calloc(S.capack, sizeof *S.ack);
    S.acklen = calloc(S.capack, sizeof *S.acklen);
    S.deliveries = calloc(opt.count, sizeof *S.deliveries);
    if (S.ack == NULL || S.acklen == NULL || S.deliveries == NULL)
        fatal_oom();
    if ((S.r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        exit(LP_EX_CONFIG);
    }
    /* the socket timeout must outlast BLOCK */
    lp_redis_set_timeout(S.r, opt.block + 10000);
}

/*
 * Which entries of the batch are still ours? A batch held for half of
 * --claim-idle or more (a stop signal, a stall) may have been claimed by
 * another consumer meanwhile, who then archives it: we must not write it
 * too. Called with the batch's files locked, so a claim after this check
 * waits for our write, and the claimer's duplicate check finds it.
 * Fills S.drop with the entries not in our pending list, and takes them
 * off the XACK and DLQ lists. Returns 0 or -1 with err.
 */
static int not_ours(const struct lp_reply *entries, size_t from, size_t to,
                    char *err)
{
    struct lp_entry e;
    struct lp_reply *rep;
    struct lp_sid *mine;
    size_t nmine = 0;

    S.ndrop = 0;
    if (to <= from || lp_mono_ms() - S.read_at < opt.claim_idle / 2)
        return 0;
    /* our name too may have been taken meanwhile, by a drain that then
     * reads this batch as its own pending entries: exits 75 if so */
    if (claim_name(err) < 0)
        return -1;
    if ((rep = batch_pending(entries, from, to, err)) == NULL)
        return -1;
    mine = calloc(lp_reply_len(rep) + 1, sizeof *mine);
    S.drop = realloc(S.drop, (to - from + 1) * sizeof *S.drop);
    if (mine == NULL || S.drop == NULL)
        fatal_oom();
    for (size_t j = 0; j < lp_reply_len(rep); j++) {
        size_t l;
        const char *id = lp_reply_str(lp_reply_at(lp_reply_at(rep, j), 0),
                                      &l);
        if (id && lp_stream_id_parse(id, l, &mine[nmine].ms,
                                     &mine[nmine].seq) == 0)
            nmine++;
    }
    lp_reply_free(rep);
    for (size_t i = from; i < to; i++) {
        struct lp_sid id;
        if (lp_entry_get(entries, i, &e, err) < 0 ||
            lp_stream_id_parse(e.id, e.idlen, &id.ms, &id.seq) < 0)
            continue;
        if (!bsearch(&id, mine, nmine, sizeof id, lp_sid_cmp))
            S.drop[S.ndrop++] = id;
    }
    free(mine);
    if (S.ndrop == 0)
        return 0;
    lp_warn("%zu entries of the batch were taken over by another consumer "
            "while this one stalled: leaving them to it", S.ndrop);
    S.n_written -= S.ndrop < S.n_written ? S.ndrop : S.n_written;
    /* S.drop is in entry order, which is ID order */
    size_t k = 0;
    for (size_t i = 0; i < S.nack; i++) {
        struct lp_sid id;
        if (lp_stream_id_parse(S.ack[3 + i], S.acklen[3 + i], &id.ms,
                               &id.seq) == 0 &&
            bsearch(&id, S.drop, S.ndrop, sizeof id, lp_sid_cmp))
            continue;
        S.ack[3 + k] = S.ack[3 + i];
        S.acklen[3 + k] = S.acklen[3 + i];
        k++;
    }
    S.nack = k;
    k = 0;
    for (size_t i = 0; i < S.ndlq; i++) {
        struct lp_sid id;
        if (lp_stream_id_parse(S.scratch.p + S.dlq[i].id_off,
                               S.dlq[i].id_len, &id.ms, &id.seq) == 0 &&
            bsearch(&id, S.drop, S.ndrop, sizeof id, lp_sid_cmp))
            continue;
        S.dlq[k++] = S.dlq[i];
    }
    S.ndlq = k;
    return 0;
}

/* stdout and --exec: the batch's text in S.line without the entries
 * another consumer took over, its transaction closed (--sql; none at
 * all when no INSERT is left). Returns 0, or -1 with err. */
static int line_batch(const struct lp_reply *entries, size_t from,
                      size_t to, char *err)
{
    if (not_ours(entries, from, to, err) < 0)
        return -1;
    if (S.ndrop && opt.sql)
        sql_drop();
    else if (S.ndrop)
        lp_archive_drop_lines(&S.line, S.drop, S.ndrop);
    if (opt.sql && S.nrecs == 0) {
        S.line.len = 0;
        S.sql_created = 0;      /* if it was in there, it went too */
    } else if (opt.sql && lp_buf_adds(&S.line, "COMMIT;\n") < 0) {
        fatal_oom();
    }
    S.nrecs = 0;
    return 0;
}

/* --exec: the batch in S.line to the command. Returns 0 when it exited 0,
 * -1 with S.exec_err when it failed; exits when it cannot be run at all
 * (sh's 126 and 127: a typo would otherwise fill the DLQ). */
static int run_exec(void)
{
    char err[LP_ERRLEN];
    size_t unread;
    int64_t t0 = lp_mono_us();
    int rc;

    rc = lp_exec_run(opt.exec, S.line.p, S.line.len, opt.exec_timeout,
                     &unread, err);
    lp_metric_observe(M.exec_s, (double)(lp_mono_us() - t0) / 1e6);
    if (rc == LP_EXEC_NOTRUN) {
        lp_error("--exec: %s: the command cannot be run (the batch stays "
                 "pending)", err);
        env_exit(LP_EX_CONFIG);
    }
    if (rc < 0) {
        M.n_exec_fail++;
        S.exec_fails++;
        snprintf(S.exec_err, sizeof S.exec_err, "%s", err);
        return -1;
    }
    S.exec_fails = 0;
    if (unread && !S.exec_unread_warned) {
        lp_warn("--exec: the command exited 0 without reading all of its "
                "input (%zu of %zu bytes unread): acknowledged, as it said",
                unread, S.line.len);
        S.exec_unread_warned = 1;
    }
    return 0;
}

/* --exec failed: wait before the batch is delivered again, longer after
 * each failure in a row (1s, 2s, 4s ... 30s); a stop signal ends it. */
static void exec_backoff(size_t n)
{
    char d[32];
    unsigned k = S.exec_fails > 6 ? 5 : S.exec_fails - 1;
    int64_t ms = 1000LL << k, end;

    if (ms > 30000)
        ms = 30000;
    lp_format_duration(ms, d, sizeof d);
    lp_warn("--exec: %s: %zu entries stay pending; trying again in %s",
            S.exec_err, n, d);
    end = lp_mono_ms() + ms;
    while (!lp_stop && lp_mono_ms() < end) {
        int64_t left = end - lp_mono_ms();
        poll(NULL, 0, left > 1000 ? 1000 : (int)left);
    }
}

/*
 * --exec: which entry, if any, does the command refuse? Its exit status
 * does not say, so a failure counts against no entry: the deliveries are
 * given back and the entries read again after a pause. After
 * --max-deliveries - 1 failures in a row (at least one), our pending
 * entries are read one at a time. An entry the command fails on alone is
 * the suspect, and the next entry, read alone at once, judges it: when the
 * command takes that one, it works, and the suspect goes to the DLQ
 * (exec-failed); when it fails too, the command is failing, not the
 * entries, and the suspect is cleared. Until judged, the suspect stays
 * pending and is skipped when read again.
 */
static void suspect_set(const struct lp_entry *e, unsigned deliveries)
{
    const char *s;
    size_t n;

    S.suspect = 1;
    S.sus_idlen = e->idlen < sizeof S.sus_id ? e->idlen
                                             : sizeof S.sus_id - 1;
    memcpy(S.sus_id, e->id, S.sus_idlen);
    S.sus_deliveries = deliveries ? deliveries : 1;
    snprintf(S.sus_err, sizeof S.sus_err, "%s", S.exec_err);
    S.sus_data.len = 0;
    S.sus_full = 0;
    if (e->fields == NULL)
        return;
    if ((s = lp_entry_field(e, opt.field, strlen(opt.field), &n)) == NULL) {
        pairs_object(e);
        s = S.obj.p;
        n = S.obj.len;
    } else {
        lp_json_trim(&s, &n);
    }
    S.sus_full = n;
    if (lp_buf_add(&S.sus_data, s, n < opt.max_dlq_size ? n
                                                       : opt.max_dlq_size) < 0)
        fatal_oom();
}

static int is_suspect(const struct lp_entry *e)
{
    return S.suspect && e->idlen == S.sus_idlen &&
           memcmp(e->id, S.sus_id, e->idlen) == 0;
}

/* The command took an entry read after the suspect: the suspect goes to
 * the DLQ with this batch's dead letters, if it is still ours. */
static void suspect_guilty(void)
{
    char err[LP_ERRLEN], id[64], detail[LP_ERRLEN + 96];
    struct lp_reply *rep;
    struct lp_entry e = { 0 };

    S.suspect = 0;
    snprintf(id, sizeof id, "%.*s", (int)S.sus_idlen, S.sus_id);
    rep = lp_redis_cmd(S.r, err, "XPENDING", opt.com.stream, opt.com.group,
                       id, id, "1", opt.consumer, NULL);
    if (rep == NULL || lp_reply_type(rep) != LP_REPLY_ARRAY ||
        lp_reply_len(rep) != 1) {
        /* taken over meanwhile, or Redis failed: it is judged again */
        lp_reply_free(rep);
        return;
    }
    lp_reply_free(rep);
    e.id = S.sus_id;
    e.idlen = S.sus_idlen;
    snprintf(detail, sizeof detail, "the command failed on this entry "
             "alone (%s), then took the next entry", S.sus_err);
    to_dlq(&e, S.sus_deliveries, S.sus_data.p ? S.sus_data.p : "",
           S.sus_data.len, "exec-failed", detail);
    S.dlq[S.ndlq - 1].full_len = S.sus_full;
}

/*
 * --exec failed on entries[from..to) of a read of n: gives the read back.
 * Returns 1 when the next read follows at once (a suspect to judge), 0
 * when it follows a pause; exits 75 with --once when the command is
 * failing, whatever the entry.
 */
static int exec_failed(const struct lp_reply *entries, size_t from,
                       size_t to, size_t n, int mode)
{
    char err[LP_ERRLEN];
    struct lp_entry e;
    int alone = (S.isolate || S.suspect) && to - from == 1;
    unsigned threshold = opt.max_deliveries > 1
                             ? (unsigned)(opt.max_deliveries - 1) : 1;

    if (give_back(entries, 0, n, mode == M_NEW ? NULL : S.deliveries,
                  err) < 0)
        lp_warn("giving back the deliveries of the batch failed: %s (they "
                "count toward --max-deliveries)", err);
    if (alone && !S.suspect && lp_entry_get(entries, from, &e, err) == 0) {
        suspect_set(&e, mode == M_NEW ? 1 : S.deliveries[from]);
        lp_warn("--exec: %s on entry %.*s alone: reading the next entry "
                "to tell whether the entry or the command fails",
                S.exec_err, (int)e.idlen, e.id);
        return 1;
    }
    if (S.suspect) {
        lp_warn("--exec: %s on entry %.*s alone, then %s on the next one: "
                "the command is failing, not the entries", S.sus_err,
                (int)S.sus_idlen, S.sus_id, S.exec_err);
        suspect_release();
        if (opt.once) {
            lp_error("--exec: the command fails whatever the entry (%s): "
                     "the entries stay pending", S.exec_err);
            release_name();
            exit(LP_EX_TEMPFAIL);
        }
    }
    if (S.exec_fails >= threshold && !S.isolate) {
        S.isolate = 1;
        lp_warn("--exec: %u failures in a row: reading the entries one at "
                "a time, to find one the command refuses", S.exec_fails);
    }
    exec_backoff(n);
    return 0;
}

/* Makes the batch durable: files, stdout or --exec, then the DLQ moves.
 * async: the files may sync in the background (no DLQ moves then), while
 * the next read goes out; sync_finish waits. Returns 0, -1 with err, or
 * EXEC_FAILED. */
static int finish_batch(const struct lp_reply *entries, size_t from,
                        size_t to, int async, char *err)
{
    if (opt.exec) {
        int rc = line_batch(entries, from, to, err);
        if (rc == 0 && S.line.len && run_exec() < 0)
            rc = EXEC_FAILED;
        else if (rc == 0 && S.line.len && S.suspect)
            suspect_guilty();   /* the command works: the entry is bad */
        S.line.len = 0;
        if (rc < 0)
            return rc;
        crash_point("after-write");
    } else if (opt.to_stdout) {
        if (line_batch(entries, from, to, err) < 0)
            return -1;
        if (lp_fs_write_all(STDOUT_FILENO, S.line.p, S.line.len) < 0) {
            if (errno != EPIPE) {
                lp_error("stdout: %s", strerror(errno));
                env_exit(LP_EX_IOERR);
            }
            /* the reader went away (| head): nothing of this batch is
             * acknowledged; leave as a filter killed by SIGPIPE does */
            give_back_all();
            tool_sigpipe_exit();
            exit(LP_EX_IOERR);
        }
        crash_point("after-write");
        if (S.stdout_is_file && S.line.len && fdatasync(STDOUT_FILENO) < 0) {
            lp_error("stdout: fsync: %s", strerror(errno));
            env_exit(LP_EX_IOERR);
        }
        S.line.len = 0;
    } else if (lp_archive_touched(S.arch)) {
        /* the files stay locked from the ownership check to the write */
        S.batch_t0 = lp_mono_us();
        if (lp_archive_lock(S.arch, err) < 0) {
            int st = fatal_errno(errno);
            lp_error("%s", err);
            env_exit(st);
        }
        if (not_ours(entries, from, to, err) < 0) {
            lp_archive_discard_locked(S.arch);
            return -1;
        }
        if (lp_archive_write(S.arch, S.drop, S.ndrop, &S.n_dups, err) < 0) {
            int st = fatal_errno(errno);
            lp_error("%s", err);
            env_exit(st);
        }
        crash_point("after-write");
        int64_t t1 = lp_mono_us();
        lp_metric_observe(M.write_s, (double)(t1 - S.batch_t0) / 1e6);
        if (async && S.ndlq == 0) {
            if (lp_archive_sync_start(S.arch, err) < 0) {
                lp_error("%s", err);
                exit(LP_EX_SOFTWARE);
            }
            S.syncing = 1;
            S.sync_t0 = t1;
            return 0;
        }
        if (lp_archive_sync(S.arch, err) < 0) {
            /* never retry an fsync and trust it: the pages may be gone;
             * the entries stay pending and are delivered again */
            lp_error("%s", err);
            env_exit(LP_EX_IOERR);
        }
        lp_metric_observe(M.fsync_s, (double)(lp_mono_us() - t1) / 1e6);
    } else if (S.ndlq && not_ours(entries, from, to, err) < 0) {
        return -1;
    }
    crash_point("after-fsync");
    return send_dlq(err);
}

/* Frees what setup() made, so leak checkers see a clean exit. */
static void teardown(void)
{
    release_name();
    lp_owner_free(S.owner);
    lp_archive_free(S.arch);
    if (S.dirfd > 0)
        close(S.dirfd);
    lp_redis_free(S.r);
    lp_jq_free(S.where);
    lp_layout_free(S.layout);
    lp_buf_free(&S.scratch);
    lp_buf_free(&S.obj);
    lp_buf_free(&S.line);
    lp_buf_free(&S.tmp);
    lp_buf_free(&S.tmp2);
    lp_buf_free(&S.sus_data);
    free(S.recs);
    free(S.dlq);
    free(S.ack);
    free(S.acklen);
    free(S.deliveries);
    free(S.drop);
}

/*
 * Stopping: acknowledge the batch in hand without reading more, and trim.
 * A stop signal during a blocking read shuts the socket down, possibly just
 * after the reply of that read arrived: connect again rather than leave a
 * written batch pending (it would be checked against the archive at the
 * next start, but that costs a scan).
 */
static void final_ack(void)
{
    char err[LP_ERRLEN];
    struct lp_reply *a;

    if (S.nack == 0 && !S.trim_due)
        return;
    if (!lp_redis_connected(S.r) && lp_redis_connect(S.r, err) < 0) {
        lp_warn("%s (the last batch stays pending and is delivered again "
                "at the next start)", err);
        return;
    }
    if (queue_ack(err) < 0 || (S.ack_queued &&
                               lp_redis_reply(S.r, &a, err) < 0)) {
        lp_warn("%s (the last batch stays pending and is delivered again "
                "at the next start)", err);
        return;
    }
    if (S.ack_queued)
        take_ack_reply(a);
    S.nack = 0;
    if (S.trim_due && queue_trim(err) == 0 &&
        lp_redis_reply(S.r, &a, err) == 0)
        take_trim_reply(a);
}

/* Reads the reply of the mode's request into entries (NULL: none). For
 * CLAIM, acknowledges the deleted IDs and advances the cursor. Returns 0,
 * or -1 when the reply was an error that was dealt with. */
static int take_read_reply(struct lp_reply *rep,
                           const struct lp_reply **entries)
{
    char err[LP_ERRLEN];

    *entries = NULL;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[300];
        lp_reply_text(rep, t, sizeof t);
        if (strncmp(t, "NOGROUP", 7) == 0) {
            lp_warn("group %s is gone (Redis restarted without "
                    "persistence, or the key was deleted): creating it "
                    "again at the start of the stream", opt.com.group);
            poll(NULL, 0, 500);     /* NOGROUP comes back at once */
            connect_redis();
            return -1;
        }
        lp_error("%s: %s", S.mode == M_CLAIM ? "XAUTOCLAIM" : "XREADGROUP",
                 t);
        if (strncmp(t, "WRONGTYPE", 9) == 0 || strncmp(t, "NOPERM", 6) == 0 ||
            strncmp(t, "ERR unknown command", 19) == 0)
            exit(LP_EX_CONFIG);
        poll(NULL, 0, 1000);
        return -1;
    }
    if (S.mode == M_CLAIM) {
        const struct lp_reply *cur = lp_reply_at(rep, 0);
        const struct lp_reply *ids = lp_reply_at(rep, 1);
        const struct lp_reply *del = lp_reply_at(rep, 2);
        size_t cl;
        const char *c = cur ? lp_reply_str(cur, &cl) : NULL;
        if (c == NULL || ids == NULL || cl >= sizeof S.cursor) {
            lp_error("XAUTOCLAIM: unexpected reply shape");
            exit(LP_EX_SOFTWARE);
        }
        memcpy(S.cursor, c, cl);
        S.cursor[cl] = '\0';
        for (size_t i = 0; del && i < lp_reply_len(del); i++) {
            size_t dl;
            const char *d = lp_reply_str(lp_reply_at(del, i), &dl);
            if (d) {
                S.n_deleted++;
                lp_budget_say(&S.say_deleted, "entry %.*s was deleted from "
                              "the stream before it was archived: "
                              "acknowledging it", (int)dl, d);
                ack_later(d, dl);
            }
        }
        if (lp_reply_len(ids) > 0) {
            /* ours now: read them as our pending entries, then claim on */
            S.n_claimed += lp_reply_len(ids);
            S.mode = M_PENDING;
            strcpy(S.after, "0");
            S.claiming = 1;
        } else if (strcmp(S.cursor, "0-0") == 0) {
            S.mode = M_NEW;
            S.next_claim = lp_mono_ms() + opt.claim_idle / 2;
        }
        return 0;
    }
    if (lp_reply_entries(rep, 0, entries, err) < 0) {
        lp_error("%s", err);
        exit(LP_EX_SOFTWARE);
    }
    return 0;
}

/* A batch (or part of one) is durable: metrics and its -v line. */
static void batch_done(const struct lp_reply *entries, size_t from,
                       size_t to, int64_t t0, int mode)
{
    char err[LP_ERRLEN];
    struct lp_entry a, b;
    double ms = (double)(lp_mono_us() - t0) / 1000.0;
    uint64_t bms = 0, bseq;

    if (lp_entry_get(entries, from, &a, err) < 0 ||
        lp_entry_get(entries, to - 1, &b, err) < 0)
        return;
    M.n_batches++;
    lp_metric_observe(M.batch_s, ms / 1000.0);
    if (lp_stream_id_parse(b.id, b.idlen, &bms, &bseq) == 0 &&
        (int64_t)bms > M.newest_ms)
        M.newest_ms = (int64_t)bms;
    if (lp_log_verbosity() >= 1) {
        char kv[256];
        snprintf(kv, sizeof kv, "first=%.*s last=%.*s count=%zu dlq=%zu "
                 "ms=%.1f%s", (int)a.idlen, a.id, (int)b.idlen, b.id,
                 to - from, S.ndlq, ms, mode == M_NEW ? "" : " redelivered=1");
        lp_trace("batch", kv);
    }
    metrics_tick(0);
}

/* Every exit writes the metrics last (69, 74, 78 among them). */
static void metrics_at_exit(void)
{
    if (M.m == NULL)
        return;
    metrics_tick(1);
    lp_metrics_free(M.m);
    M.m = NULL;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    struct lp_reply *held = NULL;   /* the batch whose IDs S.ack borrows */

    parse_args(argc, argv);
    lp_log_init("logpipe-drain", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&S.say_dlq, LP_LEVEL_WARN, "entries to the DLQ");
    lp_budget_init(&S.say_deleted, LP_LEVEL_WARN, "entries deleted before "
                   "they were archived");
    lp_budget_init(&S.say_dlq_failed, LP_LEVEL_ERROR, "failed moves to the "
                   "DLQ");
    lp_sig_init(1);
    metrics_init();
    tool_at_exit(metrics_at_exit);     /* also when setup fails */
    setup();
    connect_redis();

    for (;;) {
        struct lp_reply *rep = NULL;
        const struct lp_reply *entries;
        size_t n;
        int64_t t0;
        int mode;

        if (lp_stop) {
            sync_finish();
            final_ack();
            break;
        }
        if (lp_hup) {
            sync_finish();
            lp_hup = 0;
            if (S.arch)
                lp_archive_close_all(S.arch);   /* reopened on next use */
        }
        metrics_tick(0);        /* an idle drain comes by every --block */
        lp_log_tick();
        if (S.mode == M_NEW && lp_mono_ms() >= S.next_claim) {
            S.mode = M_CLAIM;
            strcpy(S.cursor, "0-0");
        }
        if (S.mode != M_NEW)
            sync_finish();      /* those requests wait for replies */
        mode = S.mode;
        if (request(err) < 0 || receive(&rep, err) < 0) {
            sync_finish();
            if (lp_stop) {
                final_ack();    /* S.nack is 0 if its XACK was answered */
                break;
            }
            lp_warn("%s", err);
            M.n_errors++;
            S.nack = 0;
            S.cur = NULL;
            lp_reply_free(held);
            held = NULL;
            connect_redis();
            continue;
        }
        S.nack = 0;
        S.cur = NULL;
        lp_reply_free(held);
        held = NULL;
        S.ndlq = 0;
        S.scratch.len = 0;

        if (take_read_reply(rep, &entries) < 0) {
            lp_reply_free(rep);
            continue;
        }
        M.caught_up = entries == NULL && mode == M_NEW;
        if (entries == NULL) {
            if (mode == M_PENDING) {
                /* our backlog is done: claim (on, after claimed ones) */
                S.isolate = 0;
                S.mode = S.claiming && strcmp(S.cursor, "0-0") == 0 ? M_NEW
                                                                    : M_CLAIM;
                if (!S.claiming)
                    strcpy(S.cursor, "0-0");
                if (S.mode == M_NEW)
                    S.next_claim = lp_mono_ms() + opt.claim_idle / 2;
                S.claiming = 0;
            } else if (mode == M_NEW && opt.once) {
                lp_reply_free(rep);
                final_ack();
                if (S.suspect) {
                    lp_error("--exec: %s on entry %.*s alone, and no other "
                             "entry came to tell whether the entry or the "
                             "command fails: it stays pending", S.sus_err,
                             (int)S.sus_idlen, S.sus_id);
                    suspect_release();
                    teardown();
                    return LP_EX_TEMPFAIL;
                }
                break;
            }
            held = rep;         /* CLAIM: deleted IDs borrowed by S.ack */
            continue;
        }
        t0 = lp_mono_us();
        S.read_at = S.asked_at;
        crash_point("after-read");
        n = lp_reply_len(entries);
        S.check = mode != M_NEW;
        if (n > opt.count)
            n = opt.count;      /* cannot happen: COUNT bounds replies */
        S.cur = entries;
        S.ncur = n;
        S.cur_new = mode == M_NEW;
        if (S.check) {
            if (delivery_counts(entries, n, err) < 0) {
                lp_warn("%s", err);
                S.cur = NULL;
                lp_reply_free(rep);
                connect_redis();
                continue;
            }
        }
        /* one batch, or several when it writes more than --max-files day
         * files: each part is made durable and acknowledged before the
         * next part opens its files */
        size_t from = 0, to = 0;
        int failed = 0, rc;
        while (from < n && !failed) {
            for (to = from; to < n; to++) {
                struct lp_entry e;
                if (lp_entry_get(entries, to, &e, err) < 0) {
                    lp_error("%s", err);
                    exit(LP_EX_SOFTWARE);
                }
                /* --exec: a suspect read again waits for its verdict */
                if (!is_suspect(&e) &&
                    one_entry(&e, S.check ? S.deliveries[to] : 1) == SPLIT &&
                    to > from)
                    break;
                if (mode == M_PENDING && to == n - 1)
                    snprintf(S.after, sizeof S.after, "%.*s", (int)e.idlen,
                             e.id);
            }
            /* a full batch of new entries: more are likely waiting, so
             * the next read goes out while this one's files sync */
            int async = mode == M_NEW && from == 0 && to == n &&
                        n == opt.count;
            if ((rc = finish_batch(entries, from, to, async, err)) ==
                EXEC_FAILED) {
                failed = 2;
                break;
            }
            if (rc < 0) {
                /* the DLQ moves failed midway: what was not moved stays
                 * pending; the files are durable, so acknowledge nothing
                 * and let redelivery sort it out */
                lp_warn("%s", err);
                failed = 1;
                break;
            }
            if (S.syncing) {
                S.synced.entries = entries;
                S.synced.from = from;
                S.synced.to = to;
                S.synced.t0 = t0;
                S.synced.mode = mode;
            } else {
                batch_done(entries, from, to, t0, mode);
            }
            if (to < n) {
                /* acknowledge this part now: its files are done */
                struct lp_reply *a;
                if (queue_ack(err) < 0 || (S.ack_queued &&
                                           lp_redis_reply(S.r, &a, err) < 0)) {
                    lp_warn("%s", err);
                    failed = 1;
                    break;
                }
                if (S.ack_queued)
                    take_ack_reply(a);
                S.nack = 0;
                S.ndlq = 0;
                S.scratch.len = 0;
                t0 = lp_mono_us();
            }
            from = to;
        }
        if (failed == 2) {
            /* read it again as our pending entries, given back: see
             * exec_failed */
            int next = exec_failed(entries, from, to, n, mode);
            S.cur = NULL;
            lp_reply_free(rep);
            S.nack = 0;
            S.ndlq = 0;
            if (next)
                continue;       /* the entry after the suspect, at once */
            S.mode = M_PENDING;
            strcpy(S.after, "0");
            S.claiming = 0;
            continue;
        }
        if (failed) {
            S.cur = NULL;
            lp_reply_free(rep);
            S.nack = 0;
            connect_redis();
            continue;
        }
        held = rep;             /* acknowledged with the next request */
        if (S.config_error) {
            /* the DLQ cannot take entries: stop rather than leave them
             * stuck while exiting 0 */
            final_ack();
            lp_log_end();
            lp_error("--dlq %s cannot take dead letters: fix it, or give "
                     "another --dlq", opt.com.dlq);
            lp_reply_free(held);
            teardown();
            return LP_EX_CONFIG;
        }
    }
    lp_reply_free(held);
    suspect_release();          /* stopped before its verdict */
    lp_log_end();
    if (S.n_dlq)
        lp_warn("%" PRIu64 " %s to the DLQ", S.n_dlq,
                S.n_dlq == 1 ? "entry moved" : "entries moved");
    if (S.n_deleted)
        lp_warn("%" PRIu64 " %s deleted from the stream before %s archived",
                S.n_deleted, S.n_deleted == 1 ? "entry was" : "entries were",
                S.n_deleted == 1 ? "it was" : "they were");
    lp_info("%" PRIu64 " entries read, %" PRIu64 " archived, %" PRIu64
            " already archived, %" PRIu64 " to the DLQ, %" PRIu64
            " filtered out, %" PRIu64 " deleted, %" PRIu64 " claimed, %"
            PRIu64 " trimmed", S.n_read, S.n_written - S.n_dups, S.n_dups,
            S.n_dlq, S.n_filtered, S.n_deleted, S.n_claimed, S.n_trimmed);
    {
        /* --where failed at run time: a failed run, 65, or 78 when it
         * failed on every event it ran on (the entries are in the DLQ) */
        char msg[LP_ERRLEN];
        int st = lp_jq_outcome(S.where, msg);
        if (st)
            lp_error("--where %s: moved to the DLQ as where-error", msg);
        metrics_at_exit();
        teardown();
        return st ? st : LP_EX_OK;
    }
}
