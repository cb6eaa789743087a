/* lp_drain.c -- the drain engine: a consumer group into files, stdout or
 * a command, acknowledged only once durable */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_archive.h"
#include "lp_journal.h"
#include "lp_buf.h"
#include "lp_dlq.h"
#include "lp_drain.h"
#include "lp_event.h"
#include "lp_exec.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_group.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_layout.h"
#include "lp_metrics.h"
#include "lp_owner.h"
#include "lp_parse.h"
#include "lp_sig.h"
#include "lp_sql.h"
#include "lp_time.h"

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

enum { M_PENDING = LP_GROUP_PENDING, M_CLAIM = LP_GROUP_CLAIM,
       M_NEW = LP_GROUP_NEW };

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

/*
 * --metrics. The counts of entries are the engine's own (struct
 * lp_drain_result, which the tool reads at the end); the counters read
 * them when the file is written (lp_counter_of): counted once.
 */
struct drain_metrics {
    struct lp_metrics *m;
    struct lp_metric *batches, *batch_s, *write_s, *fsync_s;
    struct lp_metric *errors, *reconnects, *lag, *exec_fail, *exec_s;
    int64_t newest_ms;          /* time of the newest entry acknowledged */
    int caught_up;              /* the last read found nothing new */
};

struct lp_drain {
    struct lp_drain_conf conf;  /* the options, a copy */
    struct lp_notify nt;        /* where it says things */
    int ended;                  /* the run ends: res.status says how */
    struct lp_drain_result res;
    struct lp_redis *r;
    struct lp_layout *layout;
    struct lp_jq *where;
    struct lp_jkeys keys;
    int time_idx;
    int field_idx[LP_LAYOUT_MAXFIELDS];
    struct lp_jlimits lim;
    int dirfd;
    struct lp_archive *arch;
    struct lp_journal *journal; /* the files' group commit (lp_journal.h) */
    size_t replay_bytes;        /* lines of the journal in hand */
    /* what the journal a killed run left held (replay_record), until our
     * pending entries are read: the entries it archived, which a delivery
     * count past --max-deliveries does not move to the DLQ (archived) */
    struct lp_sid *done;        /* its lines' entries, sorted */
    size_t ndone, capdone;
    char **marks;               /* the files of its marks: single-file */
    size_t nmarks;              /* batches, whose lines it did not hold */
    uint64_t n_done_acked;      /* over the limit, archived: acked */
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
    struct lp_buf dlq_buf;      /* one move encoded, reused (lp_dlq) */
    struct lp_group *grp;       /* reading, acks, trims */
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
    uint64_t n_badtime;         /* filed by their ID's time */
    int config_error;           /* a DLQ move was refused for good */
    int dlq_quiet;              /* to_dlq: not said (counted elsewhere) */
    int64_t batch_t0;
    /* the read in hand, whose deliveries a failure of ours gives back */
    const struct lp_reply *cur; /* its entries (borrowed), or NULL */
    size_t ncur;
    int cur_new;                /* M_NEW: each at its first delivery */
    int read_sent;              /* request() sent a read while a batch
                                   synced: its reply is still to come */
    /* the read ahead (see read_ahead): the next batch's read, sent before
     * the batch in hand is worked on; its reply (after those of a trim
     * and a heartbeat queued before it) is still to come, or was taken
     * early into pre_rep by settle, for a round trip of the batch's own */
    int pre;
    struct lp_reply *pre_rep;
    /* the archive's "_id" of the entry in hand: conf.id_prefix (pfxlen
     * bytes, put there once), then the entry's ID */
    char aid[96];
    size_t aidlen, pfxlen;
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
    struct drain_metrics m;
};

/* Says msg at level through the notify (lp_drain.h) */
static void say(struct lp_drain *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct lp_drain *d, int level, const char *fmt, ...)
{
    char msg[LP_NOTICELEN];
    va_list ap;

    if (d->nt.fn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->nt.fn(d->nt.ctx, level, msg);
}

/* The run ends with status, said already; returns -1 for the callers to
 * pass up (each looks at d->ended where the run may end). */
static int end(struct lp_drain *d, int status)
{
    if (!d->ended) {
        d->ended = 1;
        d->res.end = LP_DRAIN_SAID;
        d->res.status = status;
    }
    return -1;
}

static int oom(struct lp_drain *d)
{
    say(d, LP_NOTICE_ERROR, "out of memory");
    return end(d, LP_EX_SOFTWARE);
}

/* Registers the metrics (also without --metrics: nothing is written then,
 * and the counters cost nothing). 0, or -1 when out of memory. */
static int metrics_init(struct lp_drain *d)
{
    struct drain_metrics *m = &d->m;
    struct lp_drain_result *r = &d->res;

    m->m = lp_metrics_new(&d->nt);
    if (d->conf.metrics_label &&
        lp_metrics_label(m->m, d->conf.metrics_label) < 0)
        return -1;
    lp_counter_of(m->m, "logpipe_drain_entries_total", "result=\"archived\"",
                  "Entries by what became of them.", &r->archived);
    lp_counter_of(m->m, "logpipe_drain_entries_total",
                  "result=\"duplicate\"", "", &r->dups);
    lp_counter_of(m->m, "logpipe_drain_entries_total", "result=\"dlq\"", "",
                  &r->dlq);
    lp_counter_of(m->m, "logpipe_drain_entries_total",
                  "result=\"filtered\"", "", &r->filtered);
    lp_counter_of(m->m, "logpipe_drain_entries_total", "result=\"deleted\"",
                  "", &r->deleted);
    lp_counter_of(m->m, "logpipe_drain_claimed_total", "",
                  "Entries taken over from other consumers.", &r->claimed);
    lp_counter_of(m->m, "logpipe_drain_trimmed_total", "",
                  "Entries trimmed from the stream.", &r->trimmed);
    lp_counter_of(m->m, "logpipe_drain_file_opens_total", "",
                  "Day files opened: on first use, and again to write "
                  "after --max-open closed them.", &r->file_opens);
    m->batches = lp_counter(m->m, "logpipe_drain_batches_total", "",
                            "Batches made durable.");
    m->batch_s = lp_histogram(m->m, "logpipe_drain_batch_seconds", "",
                              "From a batch's reply to its files synced.",
                              lp_seconds_buckets, lp_seconds_nbuckets);
    m->write_s = lp_histogram(m->m, "logpipe_drain_write_seconds", "",
                              "Locking and writing a batch's files.",
                              lp_seconds_buckets, lp_seconds_nbuckets);
    m->fsync_s = lp_histogram(m->m, "logpipe_drain_fsync_seconds", "",
                              "Syncing a batch: its journal commit.",
                              lp_seconds_buckets, lp_seconds_nbuckets);
    m->errors = lp_counter(m->m, "logpipe_drain_redis_errors_total", "",
                           "Failures of Redis: I/O errors and error "
                           "replies.");
    m->reconnects = lp_counter(m->m, "logpipe_drain_reconnects_total", "",
                               "Connections made again after a failure.");
    m->lag = lp_gauge(m->m, "logpipe_drain_lag_seconds", "",
                      "Now minus the time of the newest entry "
                      "acknowledged.");
    if (d->conf.exec) {
        m->exec_fail = lp_counter(m->m, "logpipe_drain_exec_failures_total",
                                  "", "Runs of --exec that did not exit 0.");
        m->exec_s = lp_histogram(m->m, "logpipe_drain_exec_seconds", "",
                                 "Runs of --exec, start to exit.",
                                 lp_seconds_buckets, lp_seconds_nbuckets);
    }
    return m->m ? 0 : -1;
}

/* Writes --metrics when its interval passed, or when force. */
static void metrics_tick(struct lp_drain *d, int force)
{
    if (d->arch)
        d->res.file_opens = *lp_archive_opens(d->arch);
    if (d->conf.com.metrics == NULL)
        return;
    if (d->m.caught_up)
        lp_metric_set(d->m.lag, 0);    /* nothing waits: no lag */
    else if (d->m.newest_ms)
        lp_metric_set(d->m.lag,
                      (double)(lp_now_ms() - d->m.newest_ms) / 1000.0);
    lp_metrics_tick(d->m.m, d->conf.com.metrics,
                    d->conf.com.metrics_interval, force);
}

/*
 * Test-only (LOGPIPE_TEST_CRASH): SIGKILL ourselves at an exact point of
 * the batch cycle ("after-write"), or stop ourselves there once
 * ("stop:after-read"), as a stalled process would be. Before that stop,
 * the file LOGPIPE_TEST_STOP_MARK names (when set) is made: under strace
 * a process shows "t" at every traced system call too, so a test cannot
 * tell the stop by its state alone (t0259).
 */
static void test_crash(const char *crash, const char *where)
{
    static int stopped;         /* once per process: it is the process */

    if (crash == NULL)
        return;
    if (strcmp(crash, where) == 0)
        kill(getpid(), SIGKILL);
    if (!stopped && strncmp(crash, "stop:", 5) == 0 &&
        strcmp(crash + 5, where) == 0) {
        const char *mark = getenv("LOGPIPE_TEST_STOP_MARK");
        stopped = 1;
        if (mark)
            close(open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        raise(SIGSTOP);
    }
}

/* lp_fs_test_hook: lp_fs's points ("opened-dir") */
static void fs_crash(const char *where)
{
    test_crash(getenv("LOGPIPE_TEST_CRASH"), where);
}

static void crash_point(struct lp_drain *d, const char *where)
{
    test_crash(d->crash, where);
}

/* A failure of ours, not of the entries in hand: gives their delivery
 * back (see give_back_all), then ends the run with status. */
static int env_end(struct lp_drain *d, int status);

/* ---- the batch ---------------------------------------------------------- */

/* Queues e for the DLQ. Not for the plain XACK: the move carries its own
 * XACK in the same script, so a failed move leaves it pending. 0, or -1
 * when out of memory (the run ends). */
static int to_dlq(struct lp_drain *d, const struct lp_entry *e,
                  unsigned deliveries, const char *data, size_t dlen,
                  const char *code, const char *detail)
{
    struct dlq_item *it;
    size_t at = d->scratch.len, full = dlen, detail_len = strlen(detail);

    if (d->ndlq == d->dlq_cap) {
        size_t cap = d->dlq_cap ? d->dlq_cap * 2 : 16;
        struct dlq_item *p = realloc(d->dlq, cap * sizeof *p);
        if (p == NULL)
            return oom(d);
        d->dlq = p;
        d->dlq_cap = cap;
    }
    if (dlen > d->conf.max_dlq_size)
        dlen = d->conf.max_dlq_size;    /* the DLQ is not a second archive */
    /* id, data and detail in the batch's scratch, one after the other */
    if (lp_buf_add(&d->scratch, e->id, e->idlen) < 0 ||
        lp_buf_add(&d->scratch, data, dlen) < 0 ||
        lp_buf_add(&d->scratch, detail, detail_len) < 0)
        return oom(d);
    it = &d->dlq[d->ndlq++];
    it->id_off = at;
    it->id_len = e->idlen;
    it->full_len = full;
    it->data_off = at + e->idlen;
    it->data_len = dlen;
    it->code = code;
    it->detail_off = it->data_off + dlen;
    it->detail_len = detail_len;
    it->deliveries = deliveries;
    if (!d->dlq_quiet)           /* a --where error: said by lp_jq */
        say(d, LP_DRAIN_SAY_DLQ, "entry %.*s to the DLQ: %s: %s",
            (int)e->idlen, e->id, code, detail);
    return 0;
}

/* The entry is done with: acknowledged with the next read. id is
 * borrowed from the reply, which is kept until the XACK is sent. 0, or
 * -1 when out of memory (the run ends). */
static int ack_later(struct lp_drain *d, const char *id, size_t idlen)
{
    return lp_group_ack_add(d->grp, id, idlen) < 0 ? oom(d) : 0;
}

/* The event of an entry without our field: the object of its pairs. */
static int pairs_object(struct lp_drain *d, const struct lp_entry *e)
{
    const char *f, *v;
    size_t fl, vl;
    long bad = 0;

    d->obj.len = 0;
    lp_buf_addc(&d->obj, '{');
    for (size_t k = 0; k < e->nfields; k++) {
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (k)
            lp_buf_addc(&d->obj, ',');
        bad += lp_buf_add_jstr(&d->obj, f, fl);
        lp_buf_addc(&d->obj, ':');
        bad += lp_buf_add_jstr(&d->obj, v, vl);
    }
    lp_buf_addc(&d->obj, '}');
    return bad ? -1 : 0;
}

static int fatal_errno(int e)
{
    return e == ENOSPC || e == EIO || e == EDQUOT || e == EROFS ||
           e == EFBIG ? LP_EX_IOERR : LP_EX_CANTCREAT;
}


/* The table's shape: what lp_sql writes into it, portable to SQLite and
 * PostgreSQL (a table made beforehand with TIMESTAMPTZ and JSONB takes
 * these text literals too: see examples/analytics.sql). */
static int sql_create(struct lp_drain *d, struct lp_buf *b)
{
    char q[512];

    snprintf(q, sizeof q, "CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY "
             "KEY, ts TEXT, service TEXT, level TEXT, app TEXT, message "
             "TEXT, event TEXT);\n", d->conf.sql);
    return lp_buf_adds(b, q);
}

/* Appends the INSERT of the entry in hand (its archive ID d->aid, event
 * s[0..n), scanned in ev, time t) to d->line, a transaction per batch;
 * its offset goes to d->recs so that the entries another consumer took
 * over can be left out (sql_drop). */
static int add_sql(struct lp_drain *d, const char *s, size_t n,
                   const struct lp_jevent *ev, int64_t t)
{
    struct lp_buf *b = &d->line;
    char ts[40];
    int bad = 0;

    if (b->len == 0) {
        if ((d->conf.exec || !d->sql_created) && sql_create(d, b) < 0)
            return -1;
        d->sql_created = 1;
        if (lp_buf_adds(b, "BEGIN;\n") < 0)
            return -1;
    }
    if (d->nrecs == d->caprecs) {
        size_t cap = d->caprecs ? d->caprecs * 2 : 256;
        size_t *p = realloc(d->recs, cap * sizeof *p);
        if (p == NULL)
            return -1;
        d->recs = p;
        d->caprecs = cap;
    }
    d->recs[d->nrecs++] = b->len;
    bad |= lp_buf_add(b, d->sql_head, d->sql_headlen);
    bad |= lp_sql_add_str(b, d->aid, d->aidlen);
    bad |= lp_buf_add(b, ", ", 2);
    bad |= lp_sql_add_str(b, ts, lp_time_format(t, ts));
    for (int i = 0; i < 4; i++) {
        bad |= lp_buf_add(b, ", ", 2);
        bad |= lp_sql_add_jval(b, &d->tmp, s, &ev->val[d->sql_idx[i]]);
    }
    bad |= lp_buf_add(b, ", ", 2);
    if (ev->ncuts) {
        /* the event as archived: without its "_id" members */
        size_t cl = lp_json_cut_len(ev, n);
        d->tmp.len = 0;
        if (lp_buf_reserve(&d->tmp, cl) < 0)
            return -1;
        lp_json_cut_copy(ev, s, n, d->tmp.p);
        d->tmp.len = cl;
        bad |= lp_sql_add_json(b, &d->tmp2, d->tmp.p, cl);
    } else {
        bad |= lp_sql_add_json(b, &d->tmp2, s, n);
    }
    bad |= lp_buf_adds(b, ") ON CONFLICT (id) DO NOTHING;\n");
    return bad ? -1 : 0;
}

/* --sql: leaves out the INSERTs of the entries in d->drop (rare: read
 * their IDs back from the text rather than keep one per entry). */
static void sql_drop(struct lp_drain *d)
{
    struct lp_buf *b = &d->line;
    size_t w, k = 0;

    if (d->nrecs == 0)
        return;
    w = d->recs[0];
    for (size_t i = 0; i < d->nrecs; i++) {
        size_t end = i + 1 < d->nrecs ? d->recs[i + 1] : b->len;
        size_t len = end - d->recs[i];
        /* the ID: digits and '-', quoted right after the head */
        const char *id = b->p + d->recs[i] + d->sql_headlen + 1 +
                         d->pfxlen;
        const char *q = memchr(id, '\'', len - d->sql_headlen - 1 -
                               d->pfxlen);
        struct lp_sid sid;
        if (q && lp_stream_id_parse(id, (size_t)(q - id), &sid.ms,
                                    &sid.seq) == 0 &&
            bsearch(&sid, d->drop, d->ndrop, sizeof *d->drop, lp_sid_cmp))
            continue;
        memmove(b->p + w, b->p + d->recs[i], len);
        d->recs[k++] = w;
        w += len;
    }
    b->len = w;
    d->nrecs = k;
}

/* Is entry e one the journal a killed run left held (d->done)? */
static int archived(const struct lp_drain *d, const struct lp_entry *e)
{
    struct lp_sid id;

    return d->ndone &&
           lp_stream_id_parse(e->id, e->idlen, &id.ms, &id.seq) == 0 &&
           bsearch(&id, d->done, d->ndone, sizeof id, lp_sid_cmp) != NULL;
}

/* Files entry e, or queues it for the DLQ or the XACK. Returns 0;
 * SPLIT (nothing done) when it needs a day file past --max-files: it
 * starts the next batch; -1 when the run ends. */
static int one_entry(struct lp_drain *d, const struct lp_entry *e,
                     unsigned deliveries)
{
    const char *s;
    size_t n;
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN], path[LP_LAYOUT_PATHMAX];
    uint64_t id_ms = 0, id_seq;
    int64_t t, id_time;
    long plen;

    d->res.read++;
    if (e->fields == NULL) {
        /* pending, but its data was trimmed or deleted */
        d->res.deleted++;
        say(d, LP_DRAIN_SAY_DELETED, "entry %.*s was deleted from the "
            "stream before it was archived: acknowledging it",
            (int)e->idlen, e->id);
        return ack_later(d, e->id, e->idlen);
    }
    s = lp_entry_field(e, d->conf.field, strlen(d->conf.field), &n);
    if (s == NULL) {
        if (pairs_object(d, e) < 0)
            return to_dlq(d, e, deliveries, d->obj.p, d->obj.len,
                          "invalid-utf8", "a field or value is not valid "
                          "UTF-8");
        s = d->obj.p;
        n = d->obj.len;
    }
    if (n > d->conf.max_line) {
        char detail[96];
        snprintf(detail, sizeof detail, "%zu bytes, longer than --max-line "
                 "(%" PRIu64 ")", n, d->conf.max_line);
        return to_dlq(d, e, deliveries, s, n, "too-long", detail);
    }
    if (deliveries > d->conf.max_deliveries && archived(d, e)) {
        /* the run killed between writing it and its XACK did archive it:
         * a duplicate, not a dead letter (said once: done_free) */
        d->res.dups++;
        d->n_done_acked++;
        return ack_later(d, e->id, e->idlen);
    }
    if (deliveries > d->conf.max_deliveries) {
        /* it was handed out that often and never acknowledged, and not
         * because of a failure of ours (those give their delivery back,
         * see give_back_all): a drain holding it never came back, the last
         * time holding it alone (pending_count) */
        char detail[256];
        snprintf(detail, sizeof detail, "delivered %u time%s without being "
                 "archived: each time, the drain holding it did not finish "
                 "(it crashed, was killed, stalled or lost Redis)%s",
                 deliveries - 1, deliveries - 1 == 1 ? "" : "s",
                 d->conf.max_deliveries > 1 ? ", the last time with this "
                                              "entry alone" : "");
        return to_dlq(d, e, deliveries - 1, s, n, "max-deliveries", detail);
    }
    if (d->crash && strncmp(d->crash, "on-data:", 8) == 0 &&
        memmem(s, n, d->crash + 8, strlen(d->crash + 8)))
        kill(getpid(), SIGKILL);        /* test-only: a poison entry */
    lp_json_trim(&s, &n);
    if (lp_json_event(s, n, &d->keys, &d->lim, &ev, &je) < 0)
        return to_dlq(d, e, deliveries, s, n,
                      je.not_object ? "not-object" : "invalid-json", je.msg);
    if (d->where) {
        int m = lp_jq_match(d->where, s, n, err);
        if (m < 0) {
            /* the first few said; all counted, in the exit status too */
            int rc;
            d->dlq_quiet = !lp_jq_name_it(d->where);
            rc = to_dlq(d, e, deliveries, s, n, "where-error", err);
            d->dlq_quiet = 0;
            return rc;
        }
        if (m == 0) {
            d->res.filtered++;
            return ack_later(d, e->id, e->idlen);
        }
    }
    if (lp_stream_id_parse(e->id, e->idlen, &id_ms, &id_seq) < 0)
        id_ms = (uint64_t)lp_now_ms();
    /* an ID set by hand may be past 2^63: saturate, so that it is out of
     * range (unsafe-path) rather than wrapped to a date before 1970 */
    id_time = id_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)id_ms;
    t = id_time;
    if (d->time_idx >= 0) {
        int rc = lp_event_time(s, &ev.val[d->time_idx], &t, err);
        if (rc < 0) {
            /* another producer's idea of a time: file it by arrival */
            d->n_badtime++;
            say(d, LP_NOTICE_INFO, "entry %.*s: %s: filed by its stream ID "
                "time", (int)e->idlen, e->id, err);
            t = id_time;
        } else if (rc == 0) {
            t = id_time;
        }
    }

    /* the ID it is archived under: the entry's, after the shard's
     * prefix when it is one shard's (the tree holds every shard's) */
    d->aidlen = d->pfxlen + e->idlen;
    if (d->aidlen >= sizeof d->aid)
        d->aidlen = 0;          /* not an ID Redis makes */
    memcpy(d->aid + d->pfxlen, e->id, d->aidlen ? e->idlen : 0);
    if (d->conf.sql) {
        if (add_sql(d, s, n, &ev, t) < 0)
            return oom(d);
    } else if (d->conf.to_stdout || d->conf.exec) {
        if (lp_archive_format(&d->line, d->aid, d->aidlen, s, n, &ev) < 0)
            return oom(d);
    } else {
        struct lp_afile *f;
        plen = lp_layout_expand(d->layout, t, s, &ev, d->field_idx, path,
                                sizeof path, err);
        if (plen < 0)
            return to_dlq(d, e, deliveries, s, n, "unsafe-path", err);
        if (lp_archive_touched(d->arch) >= d->conf.max_files &&
            !lp_archive_touches(d->arch, path, (size_t)plen)) {
            d->res.read--;         /* read again as the next batch's first */
            return SPLIT;
        }
        if ((f = lp_archive_get(d->arch, path, (size_t)plen, err)) == NULL) {
            if (errno == ELOOP || errno == ENOTDIR || errno == EINVAL)
                return to_dlq(d, e, deliveries, s, n, "unsafe-path", err);
            /* err starts with the part of path that failed: the file
             * or one of its directories */
            int st = fatal_errno(errno);
            say(d, LP_NOTICE_ERROR, "cannot open %s/%s", d->conf.com.dir,
                err);
            return env_end(d, st);
        }
        if ((d->check || id_ms < d->recreated_ms) &&
            lp_afile_check(f, d->aid, d->aidlen) < 0)
            return oom(d);
        if (lp_archive_format(lp_afile_buf(f), d->aid, d->aidlen, s, n,
                              &ev) < 0)
            return oom(d);
    }
    d->res.archived++;
    return ack_later(d, e->id, e->idlen);
}

/* The dead letter of item it, moved at ms: its strings borrowed from the
 * batch's scratch and the options. */
static void dlq_rec(const struct lp_drain *d, const struct dlq_item *it,
                    int64_t ms, struct lp_dlq_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->data.p = d->scratch.p + it->data_off;
    rec->data.len = it->data_len;
    rec->error = lp_dlq_cstr(it->code);
    rec->detail.p = d->scratch.p + it->detail_off;
    rec->detail.len = it->detail_len;
    rec->stage = lp_dlq_cstr("drain");
    rec->source_stream = lp_dlq_cstr(d->conf.com.stream);
    rec->source_id.p = d->scratch.p + it->id_off;
    rec->source_id.len = it->id_len;
    rec->consumer = lp_dlq_cstr(d->conf.consumer);
    rec->deliveries = it->deliveries;
    rec->failed_at = ms;
    /* a cut event says how long it was; retry refuses it */
    rec->truncated = it->full_len > it->data_len ? it->full_len : 0;
}

/* Moves the batch's DLQ items, each with its XACK, atomically: all queued,
 * then all answers read (one round trip). A refusal is said and the entry
 * stays pending; one for good (the DLQ's key, or the user may not) ends
 * the run after the batch. 0, or -1 with err when Redis did not answer. */
static int settle(struct lp_drain *d, char *err);

static int send_dlq(struct lp_drain *d, char *err)
{
    int64_t ms;

    if (d->ndlq == 0)
        return 0;
    if (settle(d, err) < 0)
        return -1;
    ms = lp_now_ms();           /* one time for the batch */
    for (size_t i = 0; i < d->ndlq; i++) {
        struct lp_dlq_rec rec;
        dlq_rec(d, &d->dlq[i], ms, &rec);
        if (lp_dlq_move_append(d->r, &rec, d->conf.com.dlq,
                               d->conf.com.group, &d->dlq_buf) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected",
                     lp_redis_name(d->r));
            return -1;
        }
    }
    for (size_t i = 0; i < d->ndlq; i++) {
        char dlq_id[LP_STREAM_IDLEN];
        struct lp_stream_err e;
        if (lp_dlq_move_reply(d->r, dlq_id, &e) == 0) {
            d->res.dlq++;
            d->trim_due = 1;     /* the move acknowledged it */
            continue;
        }
        if (e.code == LP_STREAM_EIO) {
            snprintf(err, LP_ERRLEN, "%s", e.msg);
            return -1;
        }
        /* e.msg: Redis' words, without where in the script they stood */
        say(d, LP_DRAIN_SAY_DLQ_FAILED, "moving %.*s to the DLQ %s "
            "failed: %s (it stays pending)", (int)d->dlq[i].id_len,
            d->scratch.p + d->dlq[i].id_off, d->conf.com.dlq, e.msg);
        if (e.code == LP_RERR_KEY || e.code == LP_RERR_COMMAND)
            d->config_error = 1;
    }
    return 0;
}

/* ---- the group: reading, acknowledging, trimming, the heartbeat ------- */

static int queue_trim(struct lp_drain *d, char *err)
{
    d->trim_queued = 0;
    if (lp_group_queue_trim(d->grp, d->conf.keep > 0 ? lp_now_ms() -
                            d->conf.keep : 0, err) < 0)
        return -1;
    d->trim_queued = 1;
    d->trim_due = 0;
    d->last_trim = lp_mono_ms();
    return 0;
}

static void take_trim_reply(struct lp_drain *d, struct lp_reply *t)
{
    if (lp_reply_type(t) == LP_REPLY_INTEGER) {
        if (lp_reply_int(t) > 0)
            d->res.trimmed += (uint64_t)lp_reply_int(t);
    } else {
        char m[300];
        say(d, LP_NOTICE_WARN, "trimming %s failed: %s", d->conf.com.stream,
            lp_reply_text(t, m, sizeof m));
    }
    lp_reply_free(t);
    d->trim_queued = 0;
}

/* Takes our consumer name's heartbeat: 0, or -1 with err on an I/O
 * error; the run ends (75) when a live drain has the name. */
static int claim_name(struct lp_drain *d, char *err)
{
    int rc;

    if (d->nobeat)
        return 0;
    rc = lp_owner_claim(d->owner, d->r, d->beat_ttl, err);
    if (rc == LP_OWNER_TWIN) {
        say(d, LP_NOTICE_ERROR, "%s: give each drain its own --consumer",
            err);
        return end(d, LP_EX_TEMPFAIL);
    }
    if (rc == LP_OWNER_NOBEAT) {
        say(d, LP_NOTICE_WARN, "%s: going on without a heartbeat (a drain "
            "under this consumer name on another host goes unnoticed)", err);
        d->nobeat = 1;
        return 0;
    }
    if (rc < 0)
        return -1;
    d->next_beat = lp_mono_ms() + d->beat_ms;
    return 0;
}

/* The reply to a heartbeat refresh: 0, or -1 when the run ends (75):
 * another drain holds our name now (ours expired while this one
 * stalled). */
static int take_beat_reply(struct lp_drain *d, struct lp_reply *a)
{
    char err[LP_ERRLEN];
    int rc = lp_owner_beat_reply(d->owner, a, err);

    d->beat_queued = 0;
    if (rc == LP_OWNER_TWIN) {
        say(d, LP_NOTICE_ERROR, "%s: this drain stalled past its "
            "heartbeat and another took the name over; stopping", err);
        return end(d, LP_EX_TEMPFAIL);
    }
    if (rc == LP_OWNER_NOBEAT && !d->nobeat) {
        say(d, LP_NOTICE_WARN, "%s: going on without a heartbeat", err);
        d->nobeat = 1;
    }
    return 0;
}

/* (Re)connects and joins the group, retrying for --timeout. 0, or -1
 * when the run ends (it cannot, or a stop signal came meanwhile). */
static int connect_redis(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    struct lp_backoff backoff = { 0 };
    int64_t start = lp_mono_ms();
    int warned = 0, rc;

    for (;;) {
        rc = lp_redis_connect(d->r, err);
        if (rc == 0) {
            rc = lp_group_ensure(d->grp, err);
            if (rc == LP_GROUP_CONFIG) {
                say(d, LP_NOTICE_ERROR, "%s", err);
                return end(d, LP_EX_CONFIG);
            }
        }
        if (rc >= 0 && claim_name(d, err) < 0) {
            if (d->ended)
                return -1;
            rc = -1;
        }
        if (rc == LP_REDIS_EAUTH) {
            say(d, LP_NOTICE_ERROR, "%s", err);
            return end(d, LP_EX_CONFIG);
        }
        if (rc >= 0)
            break;
        lp_metric_add(d->m.errors, 1);
        if (!warned) {
            char dur[32];
            lp_format_duration(d->conf.timeout, dur, sizeof dur);
            say(d, LP_NOTICE_WARN, "%s; retrying for up to %s", err, dur);
            warned = 1;
        }
        if (lp_stop)
            return end(d, LP_EX_OK);    /* nothing in hand */
        if (lp_mono_ms() - start >= d->conf.timeout) {
            say(d, LP_NOTICE_ERROR, "giving up: %s", err);
            return end(d, LP_EX_UNAVAILABLE);
        }
        poll(NULL, 0, (int)lp_backoff_next(&backoff));
    }
    if (warned || d->res.read)
        lp_metric_add(d->m.reconnects, d->res.read > 0 || warned);
    if (warned)
        say(d, LP_NOTICE_WARN, "%s answers again", lp_redis_name(d->r));
    if (rc == 1 && d->res.read > 0) {
        /* made again while we ran (NOGROUP): the entries it hands out
         * again may be in the archive already */
        d->recreated_ms = (uint64_t)lp_now_ms();
    }
    /* after every (re)connect, our own pending entries come first */
    d->mode = M_PENDING;
    strcpy(d->after, "0");
    d->claiming = 0;
    d->ack_queued = d->trim_queued = d->beat_queued = 0;
    d->pre = 0;                 /* its reply went with the connection */
    lp_reply_free(d->pre_rep);
    d->pre_rep = NULL;
    return 0;
}

/* Queues XACK of the batch in hand (if any). */
static int queue_ack(struct lp_drain *d, char *err)
{
    int rc = lp_group_queue_ack(d->grp, err);

    d->ack_queued = rc > 0;
    return rc < 0 ? -1 : 0;
}

static void take_ack_reply(struct lp_drain *d, struct lp_reply *a)
{
    if (lp_reply_type(a) != LP_REPLY_INTEGER) {
        char t[200];
        say(d, LP_NOTICE_WARN, "XACK failed: %s (the entries stay pending "
            "and are delivered again)", lp_reply_text(a, t, sizeof t));
    } else {
        d->trim_due = 1;
        crash_point(d, "after-ack");
    }
    lp_reply_free(a);
    d->ack_queued = 0;
}

/*
 * How many of our next pending entries to read at once: those that, read
 * now, are not at their last allowed delivery; or just the first.
 * Returns the count, or -1 with err.
 */
static long pending_count(struct lp_drain *d, char *err)
{
    if (d->isolate || d->suspect)
        return 1;               /* --exec: see exec_failed */
    return lp_group_pending_count(d->grp, d->after, d->conf.count,
                                  d->conf.max_deliveries, err);
}

static void batch_done(struct lp_drain *d, const struct lp_reply *entries,
                       size_t from, size_t to, int64_t t0, int mode);
static int journal_flush(struct lp_drain *d, int all);

/*
 * Waits for the files of the batch in hand to be synced, when that runs
 * in the background (see lp_drain_run); 0, or -1 when it failed: the run
 * ends (74). Nothing may be acknowledged before.
 */
static int sync_finish(struct lp_drain *d)
{
    char err[LP_ERRLEN];

    if (!d->syncing)
        return 0;
    d->syncing = 0;
    if (lp_archive_sync_finish(d->arch, err) < 0) {
        say(d, LP_NOTICE_ERROR, "%s", err);
        return env_end(d, LP_EX_IOERR);
    }
    lp_metric_observe(d->m.fsync_s,
                      (double)(lp_mono_us() - d->sync_t0) / 1e6);
    crash_point(d, "after-fsync");
    batch_done(d, d->synced.entries, d->synced.from, d->synced.to,
               d->synced.t0, d->synced.mode);
    return 0;
}

/* Queues the XACK of the batch in hand, a trim when one is due, and the
 * next read; sends them in one write. Reading our pending entries takes
 * a round trip more: the XACK first, then XPENDING, then the read.
 * 0, or -1 with err (or when the run ends: d->ended). */
/* Queues a trim when one is due and the heartbeat when it is: 0, or -1
 * with err. */
static int queue_upkeep(struct lp_drain *d, char *err)
{
    if (d->trim_due && lp_mono_ms() - d->last_trim >= 1000 &&
        queue_trim(d, err) < 0)
        return -1;
    if (!d->nobeat && lp_mono_ms() >= d->next_beat) {
        if (lp_owner_queue_beat(d->owner, d->r, d->beat_ttl) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected",
                     lp_redis_name(d->r));
            return -1;
        }
        d->beat_queued = 1;
        d->next_beat = lp_mono_ms() + d->beat_ms;
    }
    return 0;
}

/* Sends the XACK of the batch in hand behind a read already sent: its
 * reply comes after the read's (receive). 0, or -1 with err. */
static int queue_late_ack(struct lp_drain *d, char *err)
{
    if (queue_ack(d, err) < 0)
        return -1;
    if (!d->ack_queued)
        return 0;
    d->ack_late = 1;
    return lp_redis_flush(d->r, err);
}

static int request(struct lp_drain *d, char *err)
{
    long k = (long)d->conf.count;
    int64_t b = -1;

    if (d->pre) {
        /* the read went ahead (read_ahead): the XACK of the batch in
         * hand follows it, once the batch is durable */
        int was = d->syncing;
        if (was && sync_finish(d) < 0)
            return -1;
        if (queue_late_ack(d, err) < 0)
            return -1;
        /* the epoch waited for the commit; it runs beside the read */
        return was && journal_flush(d, 0) < 0 ? -1 : 0;
    }
    /* while the batch in hand syncs, its XACK must wait: it follows the
     * read, below */
    if (!d->syncing && queue_ack(d, err) < 0)
        return -1;
    if (d->mode == M_PENDING) {
        struct lp_reply *a;
        if (d->ack_queued) {
            if (lp_redis_reply(d->r, &a, err) < 0)
                return -1;
            take_ack_reply(d, a);
            lp_group_ack_clear(d->grp);
        }
        if ((k = pending_count(d, err)) < 0)
            return -1;
    }
    if (queue_upkeep(d, err) < 0)
        return -1;
    if (d->mode == M_NEW && d->suspect)
        k = 1;                  /* --exec: the entry that judges it */
    if (d->mode == M_NEW && !d->conf.once) {
        /* an idle drain still rewrites --metrics on time */
        int64_t due = d->conf.log_due ? d->conf.log_due() : -1;
        b = d->conf.block;
        if (d->conf.com.metrics && b > d->conf.com.metrics_interval)
            b = d->conf.com.metrics_interval;
        if (due >= 0 && due < b)
            b = due > 0 ? due : 1;  /* and says what it held back */
        if (!d->nobeat && b > d->beat_ms)
            b = d->beat_ms;     /* and refreshes its heartbeat */
        if (d->journal && b > LP_EPOCH_MS && lp_archive_busy(d->arch))
            b = LP_EPOCH_MS;    /* and syncs its files, cuts its journal */
    }
    /* CLAIM: ownership moves, the delivery count does not; the entries
     * are then read as our pending ones */
    if (lp_group_queue_read(d->grp, d->mode, d->mode == M_CLAIM ? d->cursor
                                                               : d->after,
                            k, d->conf.claim_idle, b, err) < 0)
        return -1;
    /* the entries are delivered (their idle time starts) after this */
    d->asked_at = lp_mono_ms();
    if (lp_redis_flush(d->r, err) < 0)
        return -1;
    if (d->mode == M_NEW) {
        crash_point(d, "after-request");
        if (d->ack_queued)      /* the XACK of a batch before the read */
            crash_point(d, "after-request-ack");
    }
    if (d->syncing) {
        /* Redis works on the read while the files sync: now the XACK */
        d->read_sent = 1;
        if (sync_finish(d) < 0)
            return -1;
        d->read_sent = 0;
        if (queue_late_ack(d, err) < 0)
            return -1;
        /* the epoch waited for the commit; it runs beside the read,
         * whose entries a failure gives back (read_sent) */
        d->read_sent = 1;
        if (journal_flush(d, 0) < 0)
            return -1;
        d->read_sent = 0;
    }
    return 0;
}

/* Reads the replies of the trim and the heartbeat queued before a read
 * (queue_upkeep), when they were. 0, or -1 with err (or when the run
 * ends: d->ended). */
static int take_upkeep(struct lp_drain *d, char *err)
{
    struct lp_reply *a;

    if (d->trim_queued) {
        if (lp_redis_reply(d->r, &a, err) < 0)
            return -1;
        take_trim_reply(d, a);
    }
    if (d->beat_queued) {
        if (lp_redis_reply(d->r, &a, err) < 0 || take_beat_reply(d, a) < 0)
            return -1;
    }
    return 0;
}

/* Reads the XACK and trim replies (if sent) and the read's reply. 0, or
 * -1 with err (or when the run ends: d->ended). */
static int receive(struct lp_drain *d, struct lp_reply **rep, char *err)
{
    struct lp_reply *a;
    int blocking = d->mode == M_NEW && !d->conf.once && !d->pre, rc;

    if (d->pre_rep) {
        /* the read ahead's reply, taken early (settle) */
        *rep = d->pre_rep;
        d->pre_rep = NULL;
        d->pre = 0;
        rc = 0;
        goto late;
    }
    if (d->ack_queued && !d->ack_late) {
        if (lp_redis_reply(d->r, &a, err) < 0)
            return -1;
        take_ack_reply(d, a);
        lp_group_ack_clear(d->grp);
    }
    if (take_upkeep(d, err) < 0)
        return -1;
    /* a stop signal during a blocking read shuts the socket: entries the
     * server delivered meanwhile stay pending for the next start */
    if (blocking) {
        lp_sig_shutdown_fd(lp_redis_fd(d->r));
        if (lp_stop) {
            lp_sig_shutdown_fd(-1);
            /* the read's reply is still to come: whatever is sent on
             * the way out goes over a new connection */
            lp_redis_disconnect(d->r);
            snprintf(err, LP_ERRLEN, "stopped");
            return -1;
        }
    }
    rc = lp_redis_reply(d->r, rep, err);
    if (blocking)
        lp_sig_shutdown_fd(-1);
    d->pre = 0;
late:
    if (rc == 0 && d->ack_queued && d->ack_late) {
        d->ack_late = 0;
        if (lp_redis_reply(d->r, &a, err) < 0) {
            lp_reply_free(*rep);
            *rep = NULL;
            return -1;
        }
        take_ack_reply(d, a);
        lp_group_ack_clear(d->grp);
    }
    d->ack_late = 0;
    return rc;
}

/*
 * The read ahead. With a full batch of new entries in hand more are
 * likely waiting, so the read of the next batch goes out before this one
 * is worked on, not once it is durable: Redis makes the next reply while
 * the drain writes this batch, and on two cores their times overlap
 * rather than add up (tests/bench.sh: drain's rows). What is
 * acknowledged and when does not change: the XACK of the batch in hand
 * follows the read once the batch is durable (request). The read does not
 * block (one that finds nothing is followed by the usual blocking read)
 * and asks for new entries only; for day files only (not --stdout, nor
 * --exec, whose failures read a batch again as our pending entries), and
 * not when a claim is due. A failure or a stop gives its deliveries back
 * (give_back_sent); a SIGKILL leaves its entries pending for us, as it
 * does the batch in hand, for the next start. 0, or -1 with err.
 */
static int read_ahead(struct lp_drain *d, char *err)
{
    if (queue_upkeep(d, err) < 0 ||
        lp_group_queue_read(d->grp, M_NEW, d->after, (long)d->conf.count,
                            d->conf.claim_idle, -1, err) < 0)
        return -1;
    d->asked_at = lp_mono_ms();
    if (lp_redis_flush(d->r, err) < 0)
        return -1;
    d->pre = 1;
    crash_point(d, "after-request");
    return 0;
}

/*
 * Takes the read ahead's reply now (after the trim's and the heartbeat's
 * queued before it), so that the batch in hand may use the connection
 * for a round trip of its own: its DLQ moves, the check of a stalled
 * batch's ownership, the XACK of a part (--max-files). 0, or -1 with err
 * (or when the run ends: d->ended).
 */
static int settle(struct lp_drain *d, char *err)
{
    if (!d->pre || d->pre_rep)
        return 0;
    if (take_upkeep(d, err) < 0)
        return -1;
    return lp_redis_reply(d->r, &d->pre_rep, err);
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
 * See lp_group_give_back.
 */

/* --exec: the suspect is not judged (the command failed on the next entry
 * too, or nothing came, or we stop): its deliveries are given back. */
static void suspect_release(struct lp_drain *d)
{
    char err[LP_ERRLEN];

    if (!d->suspect)
        return;
    d->suspect = 0;
    if (lp_group_give_back_one(d->grp, d->sus_id, d->sus_idlen,
                               d->sus_deliveries - 1, err) < 0)
        say(d, LP_NOTICE_WARN, "giving back the deliveries of %.*s failed: "
            "%s (they count toward --max-deliveries)", (int)d->sus_idlen,
            d->sus_id, err);
}

/* The read sent while a batch synced, whose sync then failed, or the read
 * ahead of a batch that fails or stops: its reply (after those of the
 * trim and the heartbeat queued before it) holds new entries, delivered
 * to us but not worked on; give those back too. */
static void give_back_sent(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    struct lp_reply *rep;
    const struct lp_reply *entries = NULL;
    int mode = d->pre ? M_NEW : d->mode;

    d->read_sent = 0;
    d->pre = 0;
    if (d->pre_rep) {
        rep = d->pre_rep;       /* taken early (settle) */
        d->pre_rep = NULL;
        goto got;
    }
    if (d->trim_queued) {
        if (lp_redis_reply(d->r, &rep, err) < 0)
            return;
        take_trim_reply(d, rep);
    }
    if (d->beat_queued) {
        if (lp_redis_reply(d->r, &rep, err) < 0)
            return;
        d->beat_queued = 0;
        lp_reply_free(rep);
    }
    if (lp_redis_reply(d->r, &rep, err) < 0)
        return;
got:
    if (d->ack_queued && d->ack_late) {
        /* an XACK sent behind that read: its reply comes next, before
         * those of the give-backs */
        struct lp_reply *a;
        d->ack_late = 0;
        if (lp_redis_reply(d->r, &a, err) == 0) {
            take_ack_reply(d, a);
            lp_group_ack_clear(d->grp);
        }
    }
    if (mode == M_NEW && lp_reply_type(rep) == LP_REPLY_ARRAY &&
        lp_reply_entries(rep, 0, &entries, err) == 0 && entries &&
        lp_group_give_back(d->grp, entries, 0, lp_reply_len(entries), NULL,
                           err) < 0)
        say(d, LP_NOTICE_WARN, "giving back the deliveries of the entries "
            "read meanwhile failed: %s (they count toward "
            "--max-deliveries)", err);
    lp_reply_free(rep);
}

/* The read in hand (and one sent meanwhile) failed because of us: give
 * its deliveries back. */
static void give_back_all(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    long k;

    if (d->read_sent || d->pre)
        give_back_sent(d);
    suspect_release(d);
    if (d->cur == NULL || d->ncur == 0)
        return;
    k = lp_group_give_back(d->grp, d->cur, 0, d->ncur,
                           d->cur_new ? NULL : d->deliveries, err);
    if (k < 0)
        say(d, LP_NOTICE_WARN, "giving back the deliveries of the batch "
            "failed: %s (they count toward --max-deliveries)", err);
    else if (k > 0)
        say(d, LP_NOTICE_INFO, "%ld deliveries given back: a failure of ours "
            "does not count against entries", k);
}

/* An end that is not a twin's frees our name at once, so that a drain
 * started elsewhere under it need not wait for the heartbeat's TTL (a
 * stop during a blocking read shut the connection: connect again, as
 * final_ack does). */
static void release_name(struct lp_drain *d)
{
    char err[LP_ERRLEN];

    if (d->owner && d->r && !d->nobeat &&
        (lp_redis_connected(d->r) || lp_redis_connect(d->r, err) == 0))
        lp_owner_release(d->owner, d->r);
}

static int env_end(struct lp_drain *d, int status)
{
    give_back_all(d);
    release_name(d);
    return end(d, status);
}

/* ---- the sink: files, stdout, --exec, --sql ---------------------------- */

/*
 * Which entries of the batch are still ours? A batch held for half of
 * --claim-idle or more (a stop signal, a stall) may have been claimed by
 * another consumer meanwhile, who then archives it: we must not write it
 * too. Called with the batch's files locked, so a claim after this check
 * waits for our write, and the claimer's duplicate check finds it.
 * Fills d->drop with the entries not in our pending list, and takes them
 * off the XACK and DLQ lists. Returns 0 or -1 with err (or when the run
 * ends: d->ended).
 */
static int not_ours(struct lp_drain *d, const struct lp_reply *entries,
                    size_t from, size_t to, char *err)
{
    size_t k = 0;

    d->ndrop = 0;
    if (to <= from || lp_mono_ms() - d->read_at < d->conf.claim_idle / 2)
        return 0;
    if (settle(d, err) < 0)
        return -1;
    /* our name too may have been taken meanwhile, by a drain that then
     * reads this batch as its own pending entries: the run ends (75) */
    if (claim_name(d, err) < 0)
        return -1;
    if (lp_group_not_ours(d->grp, entries, from, to, d->drop, &d->ndrop,
                          err) < 0)
        return -1;
    if (d->ndrop == 0)
        return 0;
    say(d, LP_NOTICE_WARN, "%zu entries of the batch were taken over by "
        "another consumer while this one stalled: leaving them to it",
        d->ndrop);
    /* as many fewer written (dups are counted apart, in res.dups) */
    uint64_t written = d->res.archived + d->res.dups;
    d->res.archived -= d->ndrop < written ? d->ndrop : written;
    /* d->drop is in entry order, which is ID order */
    lp_group_ack_drop(d->grp, d->drop, d->ndrop);
    for (size_t i = 0; i < d->ndlq; i++) {
        struct lp_sid id;
        if (lp_stream_id_parse(d->scratch.p + d->dlq[i].id_off,
                               d->dlq[i].id_len, &id.ms, &id.seq) == 0 &&
            bsearch(&id, d->drop, d->ndrop, sizeof id, lp_sid_cmp))
            continue;
        d->dlq[k++] = d->dlq[i];
    }
    d->ndlq = k;
    return 0;
}

/* stdout and --exec: the batch's text in d->line without the entries
 * another consumer took over, its transaction closed (--sql; none at
 * all when no INSERT is left). Returns 0, or -1 with err (or when the
 * run ends: d->ended). */
static int line_batch(struct lp_drain *d, const struct lp_reply *entries,
                      size_t from, size_t to, char *err)
{
    if (not_ours(d, entries, from, to, err) < 0)
        return -1;
    if (d->ndrop && d->conf.sql)
        sql_drop(d);
    else if (d->ndrop)
        lp_archive_drop_lines(&d->line, d->drop, d->ndrop);
    if (d->conf.sql && d->nrecs == 0) {
        d->line.len = 0;
        d->sql_created = 0;      /* if it was in there, it went too */
    } else if (d->conf.sql && lp_buf_adds(&d->line, "COMMIT;\n") < 0) {
        return oom(d);
    }
    d->nrecs = 0;
    return 0;
}

/* --exec: the batch in d->line to the command. Returns 0 when it exited 0,
 * -1 with d->exec_err when it failed; -1 and the run ends when it cannot
 * be run at all (sh's 126 and 127: a typo would otherwise fill the DLQ). */
static int run_exec(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    size_t unread;
    int64_t t0 = lp_mono_us();
    int rc;

    rc = lp_exec_run(d->conf.exec, d->line.p, d->line.len,
                     d->conf.exec_timeout, &unread, err);
    lp_metric_observe(d->m.exec_s, (double)(lp_mono_us() - t0) / 1e6);
    if (rc == LP_EXEC_NOTRUN) {
        say(d, LP_NOTICE_ERROR, "--exec: %s: the command cannot be run "
            "(the batch stays pending)", err);
        return env_end(d, LP_EX_CONFIG);
    }
    if (rc < 0) {
        lp_metric_add(d->m.exec_fail, 1);
        d->exec_fails++;
        snprintf(d->exec_err, sizeof d->exec_err, "%s", err);
        return -1;
    }
    d->exec_fails = 0;
    if (unread && !d->exec_unread_warned) {
        say(d, LP_NOTICE_WARN, "--exec: the command exited 0 without reading "
            "all of its input (%zu of %zu bytes unread): acknowledged, as "
            "it said", unread, d->line.len);
        d->exec_unread_warned = 1;
    }
    return 0;
}

/* --exec failed: wait before the batch is delivered again, longer after
 * each failure in a row (1s, 2s, 4s ... 30s); a stop signal ends it. */
static void exec_backoff(struct lp_drain *d, size_t n)
{
    char dur[32];
    unsigned k = d->exec_fails > 6 ? 5 : d->exec_fails - 1;
    int64_t ms = 1000LL << k, until;

    if (ms > 30000)
        ms = 30000;
    lp_format_duration(ms, dur, sizeof dur);
    say(d, LP_NOTICE_WARN, "--exec: %s: %zu entries stay pending; trying "
        "again in %s", d->exec_err, n, dur);
    until = lp_mono_ms() + ms;
    while (!lp_stop && lp_mono_ms() < until) {
        int64_t left = until - lp_mono_ms();
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
static int suspect_set(struct lp_drain *d, const struct lp_entry *e,
                       unsigned deliveries)
{
    const char *s;
    size_t n;

    d->suspect = 1;
    d->sus_idlen = e->idlen < sizeof d->sus_id ? e->idlen
                                             : sizeof d->sus_id - 1;
    memcpy(d->sus_id, e->id, d->sus_idlen);
    d->sus_deliveries = deliveries ? deliveries : 1;
    snprintf(d->sus_err, sizeof d->sus_err, "%s", d->exec_err);
    d->sus_data.len = 0;
    d->sus_full = 0;
    if (e->fields == NULL)
        return 0;
    s = lp_entry_field(e, d->conf.field, strlen(d->conf.field), &n);
    if (s == NULL) {
        pairs_object(d, e);
        s = d->obj.p;
        n = d->obj.len;
    } else {
        lp_json_trim(&s, &n);
    }
    d->sus_full = n;
    if (lp_buf_add(&d->sus_data, s, n < d->conf.max_dlq_size
                                        ? n : d->conf.max_dlq_size) < 0)
        return oom(d);
    return 0;
}

static int is_suspect(struct lp_drain *d, const struct lp_entry *e)
{
    return d->suspect && e->idlen == d->sus_idlen &&
           memcmp(e->id, d->sus_id, e->idlen) == 0;
}

/* The command took an entry read after the suspect: the suspect goes to
 * the DLQ with this batch's dead letters, if it is still ours. 0, or -1
 * when out of memory (the run ends). */
static int suspect_guilty(struct lp_drain *d)
{
    char detail[LP_ERRLEN + 96];
    struct lp_entry e = { 0 };

    d->suspect = 0;
    if (!lp_group_is_ours(d->grp, d->sus_id, d->sus_idlen))
        return 0;   /* taken over meanwhile, or Redis failed: judged again */
    e.id = d->sus_id;
    e.idlen = d->sus_idlen;
    snprintf(detail, sizeof detail, "the command failed on this entry "
             "alone (%s), then took the next entry", d->sus_err);
    if (to_dlq(d, &e, d->sus_deliveries, d->sus_data.p ? d->sus_data.p : "",
               d->sus_data.len, "exec-failed", detail) < 0)
        return -1;
    d->dlq[d->ndlq - 1].full_len = d->sus_full;
    return 0;
}

/*
 * --exec failed on entries[from..to) of a read of n: gives the read back.
 * Returns 1 when the next read follows at once (a suspect to judge), 0
 * when it follows a pause; -1 when the run ends: 75 with --once when the
 * command is failing, whatever the entry.
 */
static int exec_failed(struct lp_drain *d, const struct lp_reply *entries,
                       size_t from, size_t to, size_t n, int mode)
{
    char err[LP_ERRLEN];
    struct lp_entry e;
    int alone = (d->isolate || d->suspect) && to - from == 1;
    unsigned threshold = d->conf.max_deliveries > 1
                             ? (unsigned)(d->conf.max_deliveries - 1) : 1;

    if (lp_group_give_back(d->grp, entries, 0, n,
                           mode == M_NEW ? NULL : d->deliveries, err) < 0)
        say(d, LP_NOTICE_WARN, "giving back the deliveries of the batch "
            "failed: %s (they count toward --max-deliveries)", err);
    if (alone && !d->suspect && lp_entry_get(entries, from, &e, err) == 0) {
        if (suspect_set(d, &e, mode == M_NEW ? 1 : d->deliveries[from]) < 0)
            return -1;
        say(d, LP_NOTICE_WARN, "--exec: %s on entry %.*s alone: reading the "
            "next entry to tell whether the entry or the command fails",
            d->exec_err, (int)e.idlen, e.id);
        return 1;
    }
    if (d->suspect) {
        say(d, LP_NOTICE_WARN, "--exec: %s on entry %.*s alone, then %s on "
            "the next one: the command is failing, not the entries",
            d->sus_err, (int)d->sus_idlen, d->sus_id, d->exec_err);
        suspect_release(d);
        if (d->conf.once) {
            say(d, LP_NOTICE_ERROR, "--exec: the command fails whatever "
                "the entry (%s): the entries stay pending", d->exec_err);
            release_name(d);
            return end(d, LP_EX_TEMPFAIL);
        }
    }
    if (d->exec_fails >= threshold && !d->isolate) {
        d->isolate = 1;
        say(d, LP_NOTICE_WARN, "--exec: %u failures in a row: reading the "
            "entries one at a time, to find one the command refuses",
            d->exec_fails);
    }
    exec_backoff(d, n);
    return 0;
}

/* Makes the batch durable: files, stdout or --exec, then the DLQ moves.
 * async: the files may sync in the background (no DLQ moves then), while
 * the next read goes out; sync_finish waits. Returns 0, -1 with err (or
 * when the run ends: d->ended), or EXEC_FAILED. */
static int finish_batch(struct lp_drain *d, const struct lp_reply *entries,
                        size_t from, size_t to, int async, char *err)
{
    if (d->conf.exec) {
        int rc = line_batch(d, entries, from, to, err);
        if (rc == 0 && d->line.len && run_exec(d) < 0)
            rc = d->ended ? -1 : EXEC_FAILED;
        else if (rc == 0 && d->line.len && d->suspect)
            rc = suspect_guilty(d); /* the command works: the entry is bad */
        d->line.len = 0;
        if (rc < 0)
            return rc;
        crash_point(d, "after-write");
    } else if (d->conf.to_stdout) {
        if (line_batch(d, entries, from, to, err) < 0)
            return -1;
        int wrc;
        if (d->conf.out_lock)
            d->conf.out_lock(d->conf.out_ctx);
        wrc = lp_fs_write_all(STDOUT_FILENO, d->line.p, d->line.len);
        if (d->conf.out_unlock) {
            int e = errno;
            d->conf.out_unlock(d->conf.out_ctx);
            errno = e;
        }
        if (wrc < 0) {
            if (errno != EPIPE) {
                say(d, LP_NOTICE_ERROR, "stdout: %s", strerror(errno));
                return env_end(d, LP_EX_IOERR);
            }
            /* the reader went away (| head): nothing of this batch is
             * acknowledged; leave as a filter killed by SIGPIPE does */
            give_back_all(d);
            end(d, LP_EX_IOERR);
            d->res.end = LP_DRAIN_SIGPIPE;
            return -1;
        }
        crash_point(d, "after-write");
        if (d->stdout_is_file && d->line.len &&
            fdatasync(STDOUT_FILENO) < 0) {
            say(d, LP_NOTICE_ERROR, "stdout: fsync: %s", strerror(errno));
            return env_end(d, LP_EX_IOERR);
        }
        d->line.len = 0;
    } else if (lp_archive_touched(d->arch)) {
        /* the files stay locked from the ownership check to the write;
         * a batch held so long that not_ours asks is written through, not
         * held (lp_archive_hold): a claim after the check finds it. Lines
         * are held only while a backlog is drained (full batches): a
         * drain that has caught up writes at once */
        d->batch_t0 = lp_mono_us();
        lp_archive_hold(d->arch,
                        async && lp_mono_ms() - d->read_at <
                                     d->conf.claim_idle / 2,
                        d->read_at);
        if (lp_archive_lock(d->arch, err) < 0) {
            int st = fatal_errno(errno);
            say(d, LP_NOTICE_ERROR, "%s", err);
            return env_end(d, st);
        }
        if (not_ours(d, entries, from, to, err) < 0) {
            lp_archive_discard_locked(d->arch);
            return -1;
        }
        uint64_t dups = 0;
        /* the journal's commit syncs while the next read goes out */
        lp_archive_async(d->arch, d->journal && async && d->ndlq == 0);
        int wrc = lp_archive_write(d->arch, d->drop, d->ndrop, &dups, err);
        /* written, but already there: a duplicate, not archived again */
        d->res.dups += dups;
        d->res.archived -= dups;
        if (wrc < 0) {
            int st = fatal_errno(errno);
            say(d, LP_NOTICE_ERROR, "%s", err);
            return env_end(d, st);
        }
        crash_point(d, "after-write");
        int64_t t1 = lp_mono_us();
        int64_t commit = d->journal ? lp_archive_commit_us(d->arch) : 0;
        lp_metric_observe(d->m.write_s,
                          (double)(t1 - d->batch_t0 - commit) / 1e6);
        if (d->journal && async && d->ndlq == 0) {
            /* the journal's commit syncs in the background: durable at
             * sync_finish; the files sync by epochs (lp_archive_flush) */
            d->syncing = 1;
            d->sync_t0 = t1;
            return 0;
        } else if (d->journal) {
            /* durable: the journal's commit was part of the write */
            lp_metric_observe(d->m.fsync_s, (double)commit / 1e6);
        } else if (async && d->ndlq == 0) {
            if (lp_archive_sync_start(d->arch, err) < 0) {
                say(d, LP_NOTICE_ERROR, "%s", err);
                return end(d, LP_EX_SOFTWARE);
            }
            d->syncing = 1;
            d->sync_t0 = t1;
            return 0;
        }
        else if (lp_archive_sync(d->arch, err) < 0) {
            /* never retry an fsync and trust it: the pages may be gone;
             * the entries stay pending and are delivered again */
            say(d, LP_NOTICE_ERROR, "%s", err);
            return env_end(d, LP_EX_IOERR);
        } else {
            lp_metric_observe(d->m.fsync_s,
                              (double)(lp_mono_us() - t1) / 1e6);
        }
    } else if (d->ndlq && not_ours(d, entries, from, to, err) < 0) {
        return -1;
    }
    crash_point(d, "after-fsync");
    return send_dlq(d, err);
}

/* ---- the loop ----------------------------------------------------------- */

/*
 * Stopping: acknowledge the batch in hand without reading more, and trim.
 * A stop signal during a blocking read shuts the socket down, possibly just
 * after the reply of that read arrived: connect again rather than leave a
 * written batch pending (it would be checked against the archive at the
 * next start, but that costs a scan).
 */
static void final_ack(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    struct lp_reply *a;

    if (d->pre)
        give_back_sent(d);      /* the read ahead: not worked on */
    if (lp_group_ack_count(d->grp) == 0 && !d->trim_due)
        return;
    if (!lp_redis_connected(d->r) && lp_redis_connect(d->r, err) < 0) {
        say(d, LP_NOTICE_WARN, "%s (the last batch stays pending and is "
            "delivered again at the next start)", err);
        return;
    }
    if (queue_ack(d, err) < 0 || (d->ack_queued &&
                                  lp_redis_reply(d->r, &a, err) < 0)) {
        say(d, LP_NOTICE_WARN, "%s (the last batch stays pending and is "
            "delivered again at the next start)", err);
        return;
    }
    if (d->ack_queued)
        take_ack_reply(d, a);
    lp_group_ack_clear(d->grp);
    if (d->trim_due && queue_trim(d, err) == 0 &&
        lp_redis_reply(d->r, &a, err) == 0)
        take_trim_reply(d, a);
}

/* Reads the reply of the mode's request into entries (NULL: none). For
 * CLAIM, acknowledges the deleted IDs and advances the cursor. Returns 0,
 * or -1 when the reply was an error that was dealt with (or the run ends:
 * d->ended). */
static int take_read_reply(struct lp_drain *d, struct lp_reply *rep,
                           const struct lp_reply **entries)
{
    char err[LP_ERRLEN];

    *entries = NULL;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[300];
        int cls = lp_reply_error_class(rep);
        lp_reply_text(rep, t, sizeof t);
        if (strncmp(t, "NOGROUP", 7) == 0) {
            say(d, LP_NOTICE_WARN, "group %s is gone (Redis restarted "
                "without persistence, or the key was deleted): creating it "
                "again at the start of the stream", d->conf.com.group);
            poll(NULL, 0, 500);     /* NOGROUP comes back at once */
            connect_redis(d);
            return -1;
        }
        say(d, LP_NOTICE_ERROR, "%s: %s",
            d->mode == M_CLAIM ? "XAUTOCLAIM" : "XREADGROUP", t);
        /* no retry helps; nor a Redis without the command (XAUTOCLAIM
         * came in 6.2) */
        if (cls == LP_RERR_KEY || cls == LP_RERR_COMMAND ||
            strncmp(t, "ERR unknown command", 19) == 0)
            return end(d, LP_EX_CONFIG);
        poll(NULL, 0, 1000);
        return -1;
    }
    if (d->mode == M_CLAIM) {
        const struct lp_reply *del;
        size_t nclaimed;
        if (lp_group_claimed(rep, d->cursor, sizeof d->cursor, &nclaimed,
                             &del) < 0) {
            say(d, LP_NOTICE_ERROR, "XAUTOCLAIM: unexpected reply shape");
            return end(d, LP_EX_SOFTWARE);
        }
        for (size_t i = 0; del && i < lp_reply_len(del); i++) {
            size_t dl;
            const char *did = lp_reply_str(lp_reply_at(del, i), &dl);
            if (did) {
                d->res.deleted++;
                say(d, LP_DRAIN_SAY_DELETED, "entry %.*s was deleted from "
                    "the stream before it was archived: acknowledging it",
                    (int)dl, did);
                if (ack_later(d, did, dl) < 0)
                    return -1;
            }
        }
        if (nclaimed > 0) {
            /* ours now: read them as our pending entries, then claim on */
            d->res.claimed += nclaimed;
            d->mode = M_PENDING;
            strcpy(d->after, "0");
            d->claiming = 1;
        } else if (strcmp(d->cursor, "0-0") == 0) {
            d->mode = M_NEW;
            d->next_claim = lp_mono_ms() + d->conf.claim_idle / 2;
        }
        return 0;
    }
    if (lp_reply_entries(rep, 0, entries, err) < 0) {
        say(d, LP_NOTICE_ERROR, "%s", err);
        return end(d, LP_EX_SOFTWARE);
    }
    return 0;
}

/* A batch (or part of one) is durable: metrics and its -v line. */
static void batch_done(struct lp_drain *d, const struct lp_reply *entries,
                       size_t from, size_t to, int64_t t0, int mode)
{
    char err[LP_ERRLEN];
    struct lp_entry a, b;
    double ms = (double)(lp_mono_us() - t0) / 1000.0;
    uint64_t bms = 0, bseq;

    if (lp_entry_get(entries, from, &a, err) < 0 ||
        lp_entry_get(entries, to - 1, &b, err) < 0)
        return;
    lp_metric_add(d->m.batches, 1);
    lp_metric_observe(d->m.batch_s, ms / 1000.0);
    if (lp_stream_id_parse(b.id, b.idlen, &bms, &bseq) == 0 &&
        (int64_t)bms > d->m.newest_ms)
        d->m.newest_ms = (int64_t)bms;
    if (d->conf.com.verbosity >= 1) {
        char kv[256];
        snprintf(kv, sizeof kv, "first=%.*s last=%.*s count=%zu dlq=%zu "
                 "ms=%.1f%s", (int)a.idlen, a.id, (int)b.idlen, b.id,
                 to - from, d->ndlq, ms,
                 mode == M_NEW ? "" : " redelivered=1");
        say(d, LP_DRAIN_SAY_TRACE, "%s", kv);
    }
    metrics_tick(d, 0);
}


/* ---- the engine --------------------------------------------------------- */

/* what drain does when nothing says otherwise */
const struct lp_drain_conf lp_drain_defaults = {
    .count = 1000,
    .block = 2000,
    .timeout = 30000,
    .claim_idle = 60000,
    .max_deliveries = 5,
    .layout = "{service}/%Y-%m-%d.jsonl",
    .field = "data",
    .time_field = "timestamp",
    .max_depth = LP_JSON_DEPTH,
    .max_open = 4096,
    .max_line = 1 << 20,
    .max_members = 10000,
    .exec_timeout = 60000,
};

struct lp_drain *lp_drain_new(const struct lp_drain_conf *conf,
                              const struct lp_notify *nt, char *err)
{
    struct lp_drain *d = calloc(1, sizeof *d);

    if (d == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    d->conf = *conf;
    if (nt)
        d->nt = *nt;
    d->dirfd = -1;
    if (conf->id_prefix) {
        d->pfxlen = strlen(conf->id_prefix);
        if (d->pfxlen > 16) {
            lp_drain_free(d);
            snprintf(err, LP_ERRLEN, "an ID prefix too long");
            return NULL;
        }
        memcpy(d->aid, conf->id_prefix, d->pfxlen);
    }
    if (metrics_init(d) < 0) {
        lp_drain_free(d);
        snprintf(err, LP_ERRLEN, "out of memory");
        return NULL;
    }
    return d;
}

void lp_drain_redis_errors(struct lp_drain *d, uint64_t n)
{
    lp_metric_add(d->m.errors, (double)n);
}

/* Fills err and returns status: lp_drain_open's failures */
static int failed(char *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failed(char *err, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, LP_ERRLEN, fmt, ap);
    va_end(ap);
    return status;
}

/* Writes the lines the journal's replay gathered (lines already in
 * their files left out) and syncs them. 0 or -1 with err and errno. */
static int replay_flush(struct lp_drain *d, uint64_t *dups, char *err)
{
    d->replay_bytes = 0;
    if (lp_archive_touched(d->arch) == 0)
        return 0;
    if (lp_archive_lock(d->arch, err) < 0)
        return -1;
    if (lp_archive_write(d->arch, NULL, 0, dups, err) < 0)
        return -1;
    /* the files, and every directory on their paths: an entry there may
     * be one whose sync the crashed run had deferred */
    if (lp_archive_sync(d->arch, err) < 0)
        return -1;
    return lp_archive_sync_dirs(d->arch, err);
}

/* The entries of the archive lines s[0..n) of a journal's record go to
 * d->done (sorted by done_sort). 0, or -1 when out of memory. */
static int add_done(struct lp_drain *d, const char *s, size_t n)
{
    const char *end = s + n;

    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)(nl ? nl + 1 - s : end - s);
        struct lp_sid id;
        if (lp_archive_line_id(s, len, &id.ms, &id.seq) == 0) {
            if (d->ndone == d->capdone) {
                size_t cap = d->capdone ? d->capdone * 2 : 1024;
                struct lp_sid *p = realloc(d->done, cap * sizeof *p);
                if (p == NULL)
                    return -1;
                d->done = p;
                d->capdone = cap;
            }
            d->done[d->ndone++] = id;
        }
        s += len;
    }
    return 0;
}

/* Sorts d->done, each ID once. */
static void done_sort(struct lp_drain *d)
{
    size_t k = 0;

    if (d->ndone == 0)
        return;
    qsort(d->done, d->ndone, sizeof *d->done, lp_sid_cmp);
    for (size_t i = 1; i < d->ndone; i++)
        if (lp_sid_cmp(&d->done[k], &d->done[i]) != 0)
            d->done[++k] = d->done[i];
    d->ndone = k + 1;
}

/* The file of a mark record (path, made safe by replay_record) goes to
 * d->marks, once. 0, or -1 with err when out of memory. */
static int add_mark(struct lp_drain *d, const char *path)
{
    char **p;

    for (size_t i = 0; i < d->nmarks; i++)
        if (strcmp(d->marks[i], path) == 0)
            return 0;
    if ((p = realloc(d->marks, (d->nmarks + 1) * sizeof *p)) == NULL)
        return -1;
    d->marks = p;
    if ((p[d->nmarks] = strdup(path)) == NULL)
        return -1;
    d->nmarks++;
    return 0;
}

/* Our pending entries are read (a claim reads others'): what the killed
 * run left is forgotten. */
static void done_free(struct lp_drain *d)
{
    if (d->n_done_acked)
        say(d, LP_NOTICE_INFO, "%" PRIu64 " entries delivered more than "
            "--max-deliveries times were archived by a run killed before "
            "their XACK (its journal said so): acknowledged, not moved to "
            "the DLQ", d->n_done_acked);
    d->n_done_acked = 0;
    free(d->done);
    d->done = NULL;
    d->ndone = d->capdone = 0;
    for (size_t i = 0; i < d->nmarks; i++)
        free(d->marks[i]);
    free(d->marks);
    d->marks = NULL;
    d->nmarks = 0;
}

/*
 * The entries of the batch in hand over --max-deliveries that are not in
 * d->done may be in a file of a mark (a single-file batch, written and
 * synced by the killed run without its lines in the journal): looked for
 * there, once per batch, those found added to d->done. A file that cannot
 * be read is said, and its entries go to the DLQ as they would have.
 * 0, or -1 when out of memory (the run ends).
 */
static int check_marks(struct lp_drain *d, const struct lp_reply *entries,
                       size_t n)
{
    struct lp_sid *ids;
    unsigned char *found;
    size_t k = 0, nfound = 0;
    char err[LP_ERRLEN];

    if (d->nmarks == 0 || d->arch == NULL)
        return 0;
    ids = malloc(n * sizeof *ids + 1);
    found = calloc(n + 1, 1);
    if (ids == NULL || found == NULL) {
        free(ids);
        free(found);
        return oom(d);
    }
    for (size_t i = 0; i < n; i++) {
        struct lp_entry e;
        if (d->deliveries[i] <= d->conf.max_deliveries ||
            lp_entry_get(entries, i, &e, err) < 0 || e.fields == NULL ||
            archived(d, &e) ||
            lp_stream_id_parse(e.id, e.idlen, &ids[k].ms, &ids[k].seq) < 0)
            continue;
        k++;
    }
    for (size_t m = 0; m < d->nmarks && nfound < k; m++) {
        long got = lp_archive_file_holds(d->arch, d->marks[m],
                                         d->conf.id_prefix, ids, k, found,
                                         err);
        if (got < 0) {
            if (errno == ENOMEM) {
                free(ids);
                free(found);
                return oom(d);
            }
            say(d, LP_NOTICE_WARN, "looking for entries a killed run "
                "archived: %s", err);
            continue;
        }
    }
    for (size_t i = 0; i < k; i++) {
        if (!found[i])
            continue;
        if (d->ndone == d->capdone) {
            size_t cap = d->capdone ? d->capdone * 2 : 1024;
            struct lp_sid *p = realloc(d->done, cap * sizeof *p);
            if (p == NULL) {
                free(ids);
                free(found);
                return oom(d);
            }
            d->done = p;
            d->capdone = cap;
        }
        d->done[d->ndone++] = ids[i];
        nfound++;
    }
    if (nfound)
        done_sort(d);
    free(ids);
    free(found);
    return 0;
}

/* One record of the journal a run left: its lines, for their file. */
static int replay_record(void *ctx, const char *path, size_t plen,
                         const char *lines, size_t len, char *err)
{
    struct lp_drain *d = ctx;
    char p[LP_LAYOUT_PATHMAX];
    struct lp_afile *f;
    uint64_t dups = 0;
    long n;

    if (plen == 0 || plen >= sizeof p || memchr(path, '\0', plen)) {
        snprintf(err, LP_ERRLEN, "a record names no file it can be");
        errno = EINVAL;
        return -1;
    }
    memcpy(p, path, plen);
    p[plen] = '\0';
    /* no layout makes a name starting with '.': not a day file (a lock
     * file of ours, the journal itself) */
    for (const char *c = p; c; c = strchr(c, '/')) {
        if (*c == '/')
            c++;
        /* ("." and ".." are lp_fs_open's to refuse: unsafe path) */
        int dots = c[0] == '.' && (c[1] == '/' || c[1] == '\0' ||
                                   (c[1] == '.' &&
                                    (c[2] == '/' || c[2] == '\0')));
        if (*c == '.' && !dots) {
            snprintf(err, LP_ERRLEN, "%s: a record names what is no day "
                     "file", p);
            errno = EINVAL;
            return -1;
        }
    }
    if (len == 0)
        goto mark;              /* a mark (lp_journal_mark): no lines */
    if (add_done(d, lines, len) < 0)
        goto nomem;
    /* at most --max-files open at once, as a batch */
    if (!lp_archive_touches(d->arch, p, plen) &&
        lp_archive_touched(d->arch) >= d->conf.max_files &&
        replay_flush(d, &dups, err) < 0)
        return -1;
    d->res.replay_dups += dups;
    dups = 0;
    if ((f = lp_archive_get(d->arch, p, plen, err)) == NULL)
        return -1;
    /* the entries may be in the file already */
    if ((n = lp_afile_check_lines(f, lines, len)) < 0 ||
        lp_buf_add(lp_afile_buf(f), lines, len) < 0)
        goto nomem;
    d->res.replayed += (uint64_t)n;
    d->replay_bytes += len;
    if (d->replay_bytes >= LP_EPOCH_BYTES &&
        replay_flush(d, &dups, err) < 0)
        return -1;
    d->res.replay_dups += dups;
    return 0;
mark:
    if (add_mark(d, p) == 0)
        return 0;
nomem:
    snprintf(err, LP_ERRLEN, "out of memory");
    errno = ENOMEM;
    return -1;
}

/*
 * Opens this consumer's journal in --dir and applies what a run that
 * crashed (or lost power) left in it, before anything is read: lines not
 * in their day files yet are written and synced, and the journal cut.
 * 0, or a status with err.
 */
static int open_journal(struct lp_drain *d, char *err)
{
    char name[32], msg[LP_ERRLEN];
    uint64_t dups = 0;

    lp_owner_name(d->owner, name, sizeof name);
    d->journal = lp_journal_open(d->dirfd, name, &d->nt, msg);
    if (d->journal == NULL)
        return failed(err, LP_EX_CANTCREAT, "--dir %s: %s", d->conf.com.dir,
                      msg);
    if (lp_journal_left(d->journal)) {
        lp_archive_defer_dirs(d->arch, 1);
        if (lp_journal_replay(d->journal, replay_record, d, msg) < 0 ||
            replay_flush(d, &dups, msg) < 0) {
            int st = errno == ENOMEM ? LP_EX_SOFTWARE : fatal_errno(errno);
            lp_archive_discard(d->arch);
            return failed(err, st, "--dir %s: applying the journal %s/%s: "
                          "%s", d->conf.com.dir, LP_JOURNAL_DIR, name, msg);
        }
        d->res.replay_dups += dups;
        done_sort(d);
        lp_archive_defer_dirs(d->arch, 0);
        if (lp_journal_cut(d->journal, lp_journal_seal(d->journal),
                           msg) < 0)
            return failed(err, LP_EX_CANTCREAT, "--dir %s: %s",
                          d->conf.com.dir, msg);
        say(d, LP_NOTICE_INFO, "journal %s/%s: %" PRIu64 " lines a run "
            "left unsynced applied, %" PRIu64 " of them in their files "
            "already", LP_JOURNAL_DIR, name, d->res.replayed,
            d->res.replay_dups);
    }
    /* lines held past half of --claim-idle may have been claimed and
     * written by another consumer: checked for first (see not_ours) */
    lp_archive_set_journal(d->arch, d->journal, d->conf.claim_idle / 2);
    {
        /* tests only: epochs and held lines' turns at small sizes, so
         * that a short run goes through them (t0190) */
        const char *e = getenv("LOGPIPE_TEST_EPOCH_MS");
        const char *h = getenv("LOGPIPE_TEST_HOLD_LOW");
        uint64_t ems, low;
        int has_e = e && lp_parse_uint(e, 0, 86400000, &ems, msg) == 0;
        int has_h = h && lp_parse_uint(h, 1, 1u << 30, &low, msg) == 0;
        if (has_e || has_h)
            lp_archive_tune(d->arch, has_e ? (int64_t)ems : -1,
                            has_h ? (size_t)low : 0);
    }
    return 0;
}

int lp_drain_check(const struct lp_drain_conf *conf, char *err)
{
    char msg[LP_ERRLEN];
    struct lp_jq *q = NULL;
    struct lp_layout *l = NULL;

    if (conf->where && lp_jq_new(conf->where, &q, msg) < 0)
        return failed(err, LP_EX_CONFIG, "--where: %s", msg);
    lp_jq_free(q);
    if (lp_layout_new(conf->layout, &l, msg) < 0)
        return failed(err, LP_EX_CONFIG, "--layout: %s", msg);
    lp_layout_free(l);
    return 0;
}

int lp_drain_open(struct lp_drain *d, char *err)
{
    char msg[LP_ERRLEN];
    struct stat st;

    if (gethostname(d->host, sizeof d->host - 1) < 0 || d->host[0] == '\0')
        strcpy(d->host, "logpipe-drain");
    if (d->conf.consumer == NULL)
        d->conf.consumer = d->host;
    if ((d->owner = lp_owner_new(d->conf.com.stream, d->conf.com.group,
                                 d->conf.consumer, d->host,
                                 d->conf.com.cluster)) == NULL)
        goto nomem;
    if (d->conf.dir_stream && lp_owner_dir_stream(d->owner,
                                                  d->conf.dir_stream) < 0)
        goto nomem;
    /* a drain silent for --claim-idle is dead to the group: its entries
     * are claimed, and its name may be taken */
    d->beat_ttl = d->conf.claim_idle < 1000 ? 1000 : d->conf.claim_idle;
    d->beat_ms = d->beat_ttl / 3;
    d->crash = getenv("LOGPIPE_TEST_CRASH");
    if (d->crash)
        lp_fs_test_hook = fs_crash;
    d->time_idx = d->conf.time_field[0]
                      ? lp_jkeys_add(&d->keys, d->conf.time_field) : -1;
    d->lim.depth = (int)d->conf.max_depth;
    d->lim.members = (uint32_t)d->conf.max_members;
    if (d->conf.where && lp_jq_new(d->conf.where, &d->where, msg) < 0)
        return failed(err, LP_EX_CONFIG, "--where: %s", msg);
    if (lp_layout_new(d->conf.layout, &d->layout, msg) < 0)
        return failed(err, LP_EX_CONFIG, "--layout: %s", msg);
    for (int i = 0; i < lp_layout_nfields(d->layout); i++) {
        d->field_idx[i] = lp_jkeys_add(&d->keys,
                                       lp_layout_field(d->layout, i));
        if (d->field_idx[i] < 0)
            return failed(err, LP_EX_CONFIG, "--layout: too many fields");
    }
    if (d->conf.sql) {
        static const char *const col[4] = { "service", "level", "app",
                                            "message" };
        d->sql_headlen = (size_t)snprintf(d->sql_head, sizeof d->sql_head,
                                         "INSERT INTO %s (id, ts, service, "
                                         "level, app, message, event) "
                                         "VALUES (", d->conf.sql);
        for (int i = 0; i < 4; i++)
            if ((d->sql_idx[i] = lp_jkeys_add(&d->keys, col[i])) < 0)
                return failed(err, LP_EX_CONFIG, "--sql: too many members "
                              "wanted");
    }
    if (d->conf.to_stdout) {
        d->stdout_is_file = fstat(STDOUT_FILENO, &st) == 0 &&
                           S_ISREG(st.st_mode);
    } else if (!d->conf.exec) {
        /* made when named (-d, LOGPIPE_DIR), not the default: a drain
         * started in the wrong directory would archive there unnoticed */
        d->dirfd = lp_fs_root(d->conf.com.dir, d->conf.com.dir_set != NULL,
                              msg);
        if (d->dirfd < 0) {
            if (!d->conf.com.dir_set && errno == ENOENT)
                return failed(err, LP_EX_CANTCREAT, "--dir %s (the default) "
                              "does not exist: create it, or name the "
                              "archive with -d DIR or LOGPIPE_DIR",
                              d->conf.com.dir);
            return failed(err, LP_EX_CANTCREAT, "--dir: %s", msg);
        }
        int rc = lp_owner_lock_dir(d->owner, d->dirfd, d->conf.shared_dir,
                                   msg);
        if (rc == LP_OWNER_TWIN)
            return failed(err, LP_EX_TEMPFAIL, "%s: give each drain its own "
                          "--consumer", msg);
        if (rc == LP_OWNER_SHARED)
            return failed(err, LP_EX_CONFIG, "--dir %s: %s; give each group "
                          "its own --dir, or --shared-dir if that is what "
                          "you want", d->conf.com.dir, msg);
        if (rc < 0)
            return failed(err, LP_EX_CANTCREAT, "--dir %s: %s",
                          d->conf.com.dir, msg);
        if ((d->arch = lp_archive_new(d->dirfd, d->conf.max_open,
                                      &d->nt)) == NULL)
            goto nomem;
        if ((rc = open_journal(d, err)) != 0)
            return rc;
    }
    d->deliveries = calloc(d->conf.count, sizeof *d->deliveries);
    d->drop = calloc(d->conf.count + 1, sizeof *d->drop);
    if (d->deliveries == NULL || d->drop == NULL)
        goto nomem;
    return 0;
nomem:
    return failed(err, LP_EX_SOFTWARE, "out of memory");
}

/*
 * The journal's epochs (lp_archive_flush): the files written are synced
 * in the background and the journal cut behind them; all: everything, at
 * once. 0, or -1 when a file's fsync failed: the run ends (74), the
 * journal keeps the lines for the next start.
 */
static int journal_flush(struct lp_drain *d, int all)
{
    char err[LP_ERRLEN];
    int rc;

    if (d->journal == NULL)
        return 0;
    rc = all ? lp_archive_flush_all(d->arch, err)
             : lp_archive_flush(d->arch, err);
    if (rc < 0) {
        /* the disk's failure, not the entries': deliveries given back */
        say(d, LP_NOTICE_ERROR, "%s", err);
        return env_end(d, LP_EX_IOERR);
    }
    return 0;
}

/*
 * The loop: read, file each entry, make the batch durable, acknowledge
 * it with the next read. Returns when a stop signal or --once ends it
 * (d->ended is 0 then: the run is done) or when the run ends otherwise.
 */
static void loop(struct lp_drain *d)
{
    char err[LP_ERRLEN];
    struct lp_reply *held = NULL;   /* the batch whose IDs the acks borrow */
    struct lp_reply *rep = NULL;

    for (;;) {
        const struct lp_reply *entries;
        size_t n;
        int64_t t0;
        int mode;

        if (lp_stop) {
            if (sync_finish(d) == 0)
                final_ack(d);
            break;
        }
        if (lp_hup) {
            if (sync_finish(d) < 0)
                break;
            lp_hup = 0;
            if (d->arch && journal_flush(d, 1) < 0)
                break;
            if (d->arch)
                lp_archive_close_all(d->arch);  /* reopened on next use */
        }
        /* (with a commit syncing, after it: in request) */
        if (d->journal && !d->syncing && journal_flush(d, 0) < 0)
            break;
        metrics_tick(d, 0);     /* an idle drain comes by every --block */
        if (d->conf.log_tick)
            d->conf.log_tick();
        if (d->mode == M_NEW && !d->pre && lp_mono_ms() >= d->next_claim) {
            d->mode = M_CLAIM;
            strcpy(d->cursor, "0-0");
        }
        if (d->mode != M_NEW && sync_finish(d) < 0)
            break;              /* those requests wait for replies */
        mode = d->mode;
        if (request(d, err) < 0 || receive(d, &rep, err) < 0) {
            if (d->ended || sync_finish(d) < 0)
                break;
            if (lp_stop) {
                final_ack(d);   /* no acks left if their XACK was answered */
                break;
            }
            say(d, LP_NOTICE_WARN, "%s", err);
            lp_metric_add(d->m.errors, 1);
            lp_group_ack_clear(d->grp);
            d->cur = NULL;
            lp_reply_free(held);
            held = NULL;
            if (connect_redis(d) < 0)
                break;
            continue;
        }
        lp_group_ack_clear(d->grp);
        d->cur = NULL;
        lp_reply_free(held);
        held = NULL;
        d->ndlq = 0;
        d->scratch.len = 0;

        if (take_read_reply(d, rep, &entries) < 0) {
            if (d->ended)
                break;
            lp_reply_free(rep);
            rep = NULL;
            continue;
        }
        d->m.caught_up = entries == NULL && mode == M_NEW;
        if (entries == NULL) {
            if (mode == M_PENDING) {
                /* our backlog is done: claim (on, after claimed ones) */
                d->isolate = 0;
                if (d->done || d->marks)
                    done_free(d);
                d->mode = d->claiming && strcmp(d->cursor, "0-0") == 0
                              ? M_NEW : M_CLAIM;
                if (!d->claiming)
                    strcpy(d->cursor, "0-0");
                if (d->mode == M_NEW)
                    d->next_claim = lp_mono_ms() + d->conf.claim_idle / 2;
                d->claiming = 0;
            } else if (mode == M_NEW && d->conf.once) {
                final_ack(d);
                if (d->suspect) {
                    say(d, LP_NOTICE_ERROR, "--exec: %s on entry %.*s "
                        "alone, and no other entry came to tell whether the "
                        "entry or the command fails: it stays pending",
                        d->sus_err, (int)d->sus_idlen, d->sus_id);
                    suspect_release(d);
                    release_name(d);
                    end(d, LP_EX_TEMPFAIL);
                }
                break;
            }
            held = rep;         /* CLAIM: deleted IDs the acks borrow */
            rep = NULL;
            continue;
        }
        t0 = lp_mono_us();
        d->read_at = d->asked_at;
        crash_point(d, "after-read");
        n = lp_reply_len(entries);
        if (mode == M_NEW && n == d->conf.count && d->arch &&
            !d->conf.to_stdout && !d->conf.exec && !d->suspect &&
            !d->isolate && !lp_stop && !lp_hup &&
            lp_mono_ms() < d->next_claim && read_ahead(d, err) < 0) {
            /* the batch stays pending: read again after the reconnect */
            say(d, LP_NOTICE_WARN, "%s", err);
            lp_metric_add(d->m.errors, 1);
            lp_reply_free(rep);
            rep = NULL;
            if (connect_redis(d) < 0)
                break;
            continue;
        }
        d->check = mode != M_NEW;
        if (mode == M_NEW && (d->done || d->marks))
            done_free(d);
        if (n > d->conf.count)
            n = d->conf.count;  /* cannot happen: COUNT bounds replies */
        d->cur = entries;
        d->ncur = n;
        d->cur_new = mode == M_NEW;
        if (d->check && lp_group_delivery_counts(d->grp, entries, n,
                                                 d->deliveries, err) < 0) {
            say(d, LP_NOTICE_WARN, "%s", err);
            d->cur = NULL;
            lp_reply_free(rep);
            rep = NULL;
            if (connect_redis(d) < 0)
                break;
            continue;
        }
        if (d->check && check_marks(d, entries, n) < 0)
            goto out;
        /* one batch, or several when it writes more than --max-files day
         * files: each part is made durable and acknowledged before the
         * next part opens its files */
        size_t from = 0, to = 0;
        int failed = 0, rc;
        while (from < n && !failed) {
            for (to = from; to < n; to++) {
                struct lp_entry e;
                if (lp_entry_get(entries, to, &e, err) < 0) {
                    say(d, LP_NOTICE_ERROR, "%s", err);
                    end(d, LP_EX_SOFTWARE);
                    goto out;
                }
                /* --exec: a suspect read again waits for its verdict */
                if (!is_suspect(d, &e)) {
                    rc = one_entry(d, &e, d->check ? d->deliveries[to] : 1);
                    if (rc < 0)
                        goto out;
                    if (rc == SPLIT && to > from)
                        break;
                }
                if (mode == M_PENDING && to == n - 1)
                    snprintf(d->after, sizeof d->after, "%.*s",
                             (int)e.idlen, e.id);
            }
            /* a full batch of new entries: more are likely waiting, so
             * the next read goes out while this one's files sync */
            int async = mode == M_NEW && from == 0 && to == n &&
                        n == d->conf.count;
            if ((rc = finish_batch(d, entries, from, to, async, err)) ==
                EXEC_FAILED) {
                failed = 2;
                break;
            }
            if (rc < 0) {
                if (d->ended)
                    goto out;
                /* the DLQ moves failed midway: what was not moved stays
                 * pending; the files are durable, so acknowledge nothing
                 * and let redelivery sort it out */
                say(d, LP_NOTICE_WARN, "%s", err);
                failed = 1;
                break;
            }
            if (d->syncing) {
                d->synced.entries = entries;
                d->synced.from = from;
                d->synced.to = to;
                d->synced.t0 = t0;
                d->synced.mode = mode;
            } else {
                batch_done(d, entries, from, to, t0, mode);
            }
            if (to < n) {
                /* acknowledge this part now: its files are done */
                struct lp_reply *a;
                if (settle(d, err) < 0 || queue_ack(d, err) < 0 ||
                    (d->ack_queued && lp_redis_reply(d->r, &a, err) < 0)) {
                    say(d, LP_NOTICE_WARN, "%s", err);
                    failed = 1;
                    break;
                }
                if (d->ack_queued)
                    take_ack_reply(d, a);
                lp_group_ack_clear(d->grp);
                d->ndlq = 0;
                d->scratch.len = 0;
                t0 = lp_mono_us();
            }
            from = to;
        }
        if (failed == 2) {
            /* read it again as our pending entries, given back: see
             * exec_failed */
            int next = exec_failed(d, entries, from, to, n, mode);
            if (next < 0)
                goto out;
            d->cur = NULL;
            lp_reply_free(rep);
            rep = NULL;
            lp_group_ack_clear(d->grp);
            d->ndlq = 0;
            if (next)
                continue;       /* the entry after the suspect, at once */
            d->mode = M_PENDING;
            strcpy(d->after, "0");
            d->claiming = 0;
            continue;
        }
        if (failed) {
            d->cur = NULL;
            lp_reply_free(rep);
            rep = NULL;
            lp_group_ack_clear(d->grp);
            if (connect_redis(d) < 0)
                break;
            continue;
        }
        held = rep;             /* acknowledged with the next request */
        rep = NULL;
        if (d->config_error) {
            /* the DLQ cannot take entries: stop rather than leave them
             * stuck while exiting 0 */
            final_ack(d);
            release_name(d);
            d->ended = 1;
            d->res.end = LP_DRAIN_DLQ_REFUSED;
            d->res.status = LP_EX_CONFIG;
            break;
        }
    }
out:
    lp_reply_free(rep);
    lp_reply_free(held);
    d->cur = NULL;
}

int lp_drain_run(struct lp_drain *d, struct lp_redis *r,
                 struct lp_drain_result *res)
{
    char err[LP_ERRLEN];

    d->r = r;
    if ((d->grp = lp_group_new(d->r, d->conf.com.stream, d->conf.com.group,
                               d->conf.consumer, d->conf.count,
                               &d->nt)) == NULL) {
        oom(d);
    } else {
        /* the socket timeout must outlast BLOCK */
        lp_redis_set_timeout(d->r, d->conf.block + 10000);
        if (connect_redis(d) == 0)
            loop(d);
        if (d->pre && !d->ended)
            give_back_sent(d);  /* before the name is released */
    }
    /* every end: the files synced, the journal cut and, when empty,
     * removed (--once leaves none behind); but for an end by an I/O
     * error, which a sync would only repeat: the journal stays for the
     * next start */
    if (d->journal && !(d->ended && d->res.status == LP_EX_IOERR) &&
        journal_flush(d, 1) == 0 && lp_journal_remove(d->journal, err) < 0)
        say(d, LP_NOTICE_WARN, "%s", err);
    if (!d->ended) {
        suspect_release(d);     /* stopped before its verdict */
        release_name(d);
        d->res.end = LP_DRAIN_DONE;
        /* --where failed at run time: a failed run, 65, or 78 when it
         * failed on every event it ran on (the entries are in the DLQ) */
        d->res.status = lp_jq_status(d->where, d->conf.com.verbosity,
                                      d->res.where_msg);
    }
    *res = d->res;
    return res->status;
}

void lp_drain_free(struct lp_drain *d)
{
    if (d == NULL)
        return;
    /* every end writes the metrics last (69, 74, 78 among them) */
    metrics_tick(d, 1);
    lp_metrics_free(d->m.m);
    lp_archive_free(d->arch);   /* waits for its sync first */
    lp_journal_close(d->journal);
    lp_owner_free(d->owner);    /* last: the journal is ours till here */
    if (d->dirfd >= 0)
        close(d->dirfd);
    lp_group_free(d->grp);
    lp_redis_free(d->r);
    lp_jq_free(d->where);
    lp_layout_free(d->layout);
    lp_buf_free(&d->scratch);
    lp_buf_free(&d->obj);
    lp_buf_free(&d->line);
    lp_buf_free(&d->tmp);
    lp_buf_free(&d->tmp2);
    lp_buf_free(&d->sus_data);
    lp_buf_free(&d->dlq_buf);
    free(d->recs);
    free(d->dlq);
    free(d->deliveries);
    free(d->drop);
    d->n_done_acked = 0;        /* said at the first read of new ones */
    done_free(d);
    lp_reply_free(d->pre_rep);
    free(d);
}
