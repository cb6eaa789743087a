/* logpipe-dlq.c -- the operator's view of the dead letter stream */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_dlq.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_time.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * list, show, stats, retry, purge, export: all NDJSON on stdout, all
 * paging through XRANGE (10 to 1000 entries a page, about 64 MB at most),
 * so a DLQ of a million entries is never held at once. An entry is shown as one JSON object:
 * its ID, its fields, and its event as JSON when it parses ("event"),
 * else as a string ("data"); --where runs on that object.
 *
 * retry and purge act on each entry atomically: retry is one script that
 * reads the entry, XADDs its data to its source stream and XDELs it, so
 * running it twice (or two operators at once) sends nothing twice; purge
 * is one XDEL per entry.
 */

enum { C_LIST, C_SHOW, C_STATS, C_RETRY, C_PURGE, C_EXPORT };

struct dlq_opt {
    struct lp_common com;
    int cmd;                    /* C_*, -1 before the command word */
    uint64_t limit;
    const char *where;
    int all, dry_run;
    int64_t older_than;
    const struct lp_optdef *has_older;
    int64_t timeout;
    char **ids;
    int nids;
};

static struct dlq_opt opt = { .cmd = -1, .timeout = 10000 };

#define OPT struct dlq_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_DLQ, LP_LONG_PASSWORD_FILE,
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

static struct {
    struct lp_redis *r;
    struct lp_jq *where;
    struct lp_buf out;
    struct lp_buf obj;
    int exit_code;
    uint64_t n_seen, n_done, n_missing;
    uint64_t n_queued;          /* retry, purge: entries selected */
    /* per-entry messages: a few said, the rest counted (lp_log.h) */
    struct lp_budget say_skipped, say_failed, say_unknown;
} S;

static void flush_out(void)
{
    if (S.out.len && lp_fs_write_all(STDOUT_FILENO, S.out.p, S.out.len) < 0) {
        if (errno == EPIPE) {
            tool_sigpipe_exit();
        }
        lp_error("stdout: %s", strerror(errno));
        exit(LP_EX_IOERR);
    }
    S.out.len = 0;
}

/* An error reply that no retry cures: a refused permission or a key of
 * the wrong type. */
static int config_error(const struct lp_stream_err *e)
{
    return e->code == LP_RERR_KEY || e->code == LP_RERR_COMMAND;
}

/* Redis failed on a read of the DLQ: says so and exits. */
static void redis_die(const struct lp_stream_err *e)
{
    flush_out();
    if (e->code == LP_STREAM_EIO) {
        lp_error("%s: %s", e->cmd, e->msg);
        exit(LP_EX_UNAVAILABLE);
    }
    lp_error("%s %s: %s", e->cmd, opt.com.dlq, e->msg);
    exit(config_error(e) ? LP_EX_CONFIG : LP_EX_UNAVAILABLE);
}

/* The JSON object of a DLQ entry into S.obj (lp_dlq_json). */
static void entry_object(const struct lp_entry *e)
{
    S.obj.len = 0;
    lp_dlq_json(e, &S.obj);
}

/* Does the entry pass --where? (and not too old/new for --older-than) */
static int selected(const struct lp_entry *e)
{
    char err[LP_ERRLEN];
    uint64_t ms, seq;

    if (opt.has_older) {
        /* the entry's ID is when it was moved to the DLQ */
        if (lp_stream_id_parse(e->id, e->idlen, &ms, &seq) < 0 ||
            (int64_t)ms >= lp_now_ms() - opt.older_than)
            return 0;
    }
    if (S.where == NULL)
        return 1;
    entry_object(e);
    int m = lp_jq_match(S.where, S.obj.p, S.obj.len, err);
    if (m < 0) {
        /* a failed run (lp_jq_outcome at the end): not selected */
        if (lp_jq_name_it(S.where) && lp_log_verbosity() >= 0)
            lp_error("entry %.*s: --where: %s", (int)e->idlen, e->id, err);
        return 0;
    }
    return m;
}

static void add_line(const char *s, size_t n)
{
    lp_buf_add(&S.out, s, n);
    lp_buf_addc(&S.out, '\n');
    if (S.out.len >= 256 * 1024)
        flush_out();
}

/* ---- the commands, entry by entry ---------------------------------------- */

struct slot {
    char *key;
    size_t len;
    uint64_t n;
};

struct stats {
    uint64_t total;
    struct slot err[256], stage[16];
    int nerr, nstage;
    char oldest[64], newest[64];
    int64_t oldest_ms, newest_ms;
};

/* Counts value v[0..vl) (any bytes) in slots s[0..*n), at most max. */
static void count_in(struct slot *s, int *n, int max, const char *v,
                     size_t vl)
{
    int i;

    for (i = 0; i < *n; i++)
        if (s[i].len == vl && memcmp(s[i].key, v, vl) == 0)
            break;
    if (i == *n) {
        /* bounded: the last slot is "(other)", for all the rest */
        if (*n == max - 1) {
            v = "(other)";
            vl = 7;
        } else if (*n == max) {
            i = max - 1;
            goto count;
        }
        s[i].key = malloc(vl + 1);
        if (s[i].key == NULL) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
        memcpy(s[i].key, v, vl);
        s[i].len = vl;
        s[i].n = 0;
        (*n)++;
    }
count:
    s[i].n++;
}

static void one(const struct lp_entry *e, struct stats *st,
                struct lp_buf *acts)
{
    struct lp_dlq_rec rec;

    lp_dlq_decode(e, &rec);
    S.n_seen++;
    switch (opt.cmd) {
    case C_LIST:
    case C_SHOW:
        entry_object(e);
        add_line(S.obj.p, S.obj.len);
        S.n_done++;
        break;
    case C_EXPORT: {
        size_t n = rec.data.len;
        const char *d = rec.data.p;
        if (d == NULL || memchr(d, '\n', n)) {
            lp_budget_say(&S.say_skipped, "entry %.*s: %s: not exported",
                          (int)e->idlen, e->id, d ? "its data holds a newline"
                                                  : "no data field");
            break;
        }
        add_line(d, n);
        S.n_done++;
        break;
    }
    case C_STATS: {
        const struct lp_dlq_str none = { "(none)", 6 };
        uint64_t ms = 0, seq;
        st->total++;
        S.n_done++;
        struct lp_dlq_str v = rec.error.p ? rec.error : none;
        count_in(st->err, &st->nerr, 256, v.p, v.len);
        v = rec.stage.p ? rec.stage : none;
        count_in(st->stage, &st->nstage, 16, v.p, v.len);
        lp_stream_id_parse(e->id, e->idlen, &ms, &seq);
        if (st->oldest[0] == '\0') {
            snprintf(st->oldest, sizeof st->oldest, "%.*s", (int)e->idlen,
                     e->id);
            st->oldest_ms = (int64_t)ms;
        }
        snprintf(st->newest, sizeof st->newest, "%.*s", (int)e->idlen,
                 e->id);
        st->newest_ms = (int64_t)ms;
        break;
    }
    case C_RETRY:
    case C_PURGE: {
        /* queued as "ID\0TARGET\0": sent per page, one command each */
        const char *t = NULL;
        size_t tl = 0;
        lp_buf_add(acts, e->id, e->idlen);
        lp_buf_addc(acts, '\0');
        if (opt.cmd == C_RETRY) {
            t = rec.source_stream.p;
            tl = rec.source_stream.len;
        }
        if (t && memchr(t, '\0', tl)) {
            /* the queue holds C strings: a NUL cannot be passed on */
            lp_budget_say(&S.say_failed, "entry %.*s: its source_stream "
                          "holds a NUL byte: not retried", (int)e->idlen,
                          e->id);
            if (S.exit_code == LP_EX_OK)
                S.exit_code = LP_EX_DATAERR;
            acts->len -= e->idlen + 1;
            break;
        }
        if (t == NULL || tl == 0) {
            t = opt.com.stream;
            tl = strlen(t);
        }
        S.n_queued++;
        lp_buf_add(acts, t, tl);
        lp_buf_addc(acts, '\0');
        break;
    }
    }
}

/* Runs the queued retries or purges of a page, one command per entry,
 * pipelined; one NDJSON line per entry. */
static void act(struct lp_buf *acts)
{
    char line[512];
    size_t n = 0;
    int fatal = 0;

    for (size_t p = 0; p < acts->len; ) {
        const char *id = acts->p + p;
        const char *target = id + strlen(id) + 1;
        p = (size_t)(target - acts->p) + strlen(target) + 1;
        if (opt.dry_run) {
            snprintf(line, sizeof line, "{\"id\":\"%s\",\"action\":\"%s\","
                     "\"dry_run\":true}", id, opt.cmd == C_RETRY ? "retry"
                                                                  : "purge");
            add_line(line, strlen(line));
            S.n_done++;
            continue;
        }
        /* a failed queueing fails its reply below */
        if (opt.cmd == C_RETRY)
            lp_dlq_retry_append(S.r, opt.com.dlq, id, target,
                                       opt.com.stream);
        else
            lp_dlq_purge_append(S.r, opt.com.dlq, id);
        n++;
    }
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        struct lp_stream_err e;
        char nid[LP_STREAM_IDLEN];
        const char *id = acts->p + p;
        const char *target = id + strlen(id) + 1;
        int rc;
        p += strlen(id) + 1;
        p += strlen(target) + 1;
        rc = opt.cmd == C_RETRY ? lp_dlq_retry_reply(S.r, nid, &e)
                                : lp_dlq_purge_reply(S.r, &e);
        if (rc < 0 && e.code == LP_STREAM_EIO) {
            flush_out();
            lp_error("%s", e.msg);
            exit(LP_EX_UNAVAILABLE);
        }
        if (rc < 0) {
            if (opt.cmd == C_RETRY)
                lp_budget_say(&S.say_failed, "entry %s: to %s: %s", id,
                              target, e.msg);
            else
                lp_budget_say(&S.say_failed, "entry %s: %s", id, e.msg);
            /* the worst status wins; a refused command, which will refuse
             * every entry, ends the run after this page; a refused or
             * wrong key is the entry's own */
            if (config_error(&e)) {
                /* purge's key is always the DLQ: a refusal meets them all */
                fatal |= e.code == LP_RERR_COMMAND || opt.cmd == C_PURGE;
                S.exit_code = LP_EX_CONFIG;
            } else if (S.exit_code == LP_EX_OK) {
                S.exit_code = LP_EX_DATAERR;
            }
        } else if (opt.cmd == C_RETRY && rc == 1) {
            struct lp_buf b = { 0 };
            lp_buf_adds(&b, "{\"id\":\"");
            lp_buf_adds(&b, id);
            lp_buf_adds(&b, "\",\"action\":\"retried\",\"stream\":");
            lp_buf_add_jstr(&b, target, strlen(target));
            lp_buf_adds(&b, ",\"new_id\":");
            lp_buf_add_jstr(&b, nid, strlen(nid));
            lp_buf_addc(&b, '}');
            add_line(b.p, b.len);
            lp_buf_free(&b);
            S.n_done++;
        } else if (opt.cmd == C_PURGE && rc == 1) {
            snprintf(line, sizeof line, "{\"id\":\"%s\",\"action\":"
                     "\"purged\"}", id);
            add_line(line, strlen(line));
            S.n_done++;
        } else {
            /* retried or purged already, by an earlier run or someone else */
            S.n_missing++;
            lp_info("entry %s is not in %s (done already)", id, opt.com.dlq);
        }
    }
    acts->len = 0;
    if (fatal) {
        flush_out();
        lp_error("stopped: Redis refuses the %s of %s entries (see "
                 "Permissions in logpipe-dlq(1))", opt.cmd == C_RETRY ?
                 "retry" : "purge", opt.com.dlq);
        exit(LP_EX_CONFIG);
    }
}

/* --limit: entries printed, counted, or selected to retry or purge */
static int limit_reached(void)
{
    uint64_t n = opt.cmd == C_RETRY || opt.cmd == C_PURGE ? S.n_queued
                                                          : S.n_done;
    return opt.limit && n >= opt.limit;
}

/* Pages through the whole DLQ (or from the given IDs). */
static void walk(struct stats *st)
{
    char err[LP_ERRLEN], last[80] = "", end[LP_STREAM_IDLEN];
    struct lp_buf acts = { 0 };
    struct lp_stream_err re;

    /*
     * Only the entries there when the run starts: a retried entry that a
     * running drain fails again comes back with a new ID, and must not be
     * retried again by the same run (nor purged, nor listed twice).
     */
    if (lp_stream_last_id(S.r, opt.com.dlq, end, &re) < 0) {
        if (re.code != LP_STREAM_ESHAPE)
            redis_die(&re);
        lp_error("%s %s: %s", re.cmd, opt.com.dlq, re.msg);
        exit(LP_EX_SOFTWARE);
    }
    if (end[0] == '\0')
        return;
    if (opt.has_older) {
        /* IDs are the times entries came in: stop at the cut-off */
        int64_t cut = lp_now_ms() - opt.older_than;
        uint64_t ms, seq;
        if (cut <= 0)
            return;
        if (lp_stream_id_parse(end, strlen(end), &ms, &seq) == 0 &&
            (int64_t)ms >= cut)
            snprintf(end, sizeof end, "%" PRId64, cut - 1);
    }

    /* pages of 10 entries at first, growing to 1000 while they stay
     * small: a page holds at most about 64 MB of the largest entries */
    size_t page = 10;
    for (;;) {
        struct lp_page pg;
        size_t biggest = 1;

        /* from the first entry, then past the last one seen */
        if (lp_stream_range(S.r, opt.com.dlq, last[0] ? last : NULL, 1, end,
                            page, &pg, &re) < 0)
            redis_die(&re);
        if (pg.n == 0) {
            lp_page_free(&pg);
            break;
        }
        for (size_t i = 0; i < pg.n && !lp_stop; i++) {
            struct lp_entry e;
            if (lp_entry_get(pg.entries, i, &e, err) < 0) {
                flush_out();
                lp_error("%s %s: %s", re.cmd, opt.com.dlq, err);
                exit(LP_EX_SOFTWARE);
            }
            snprintf(last, sizeof last, "%.*s", (int)e.idlen, e.id);
            if (e.fields == NULL)
                continue;
            for (size_t k = 0; k < e.nfields; k++) {
                const char *f, *v;
                size_t fl, vl;
                lp_entry_pair(&e, k, &f, &fl, &v, &vl);
                if (vl > biggest)
                    biggest = vl;
            }
            if (!selected(&e))
                continue;
            one(&e, st, &acts);
            if (limit_reached())
                break;
        }
        lp_page_free(&pg);
        if (acts.len)
            act(&acts);
        flush_out();
        page = (64u << 20) / biggest;
        if (page > 1000)
            page = 1000;
        if (page < 10)
            page = 10;
        if (lp_stop || limit_reached())
            break;
        if (strcmp(last, end) == 0)
            break;              /* the last entry: past it is no ID */
    }
    lp_buf_free(&acts);
}

/* The entries named on the command line, in that order. */
static void by_id(struct stats *st)
{
    char err[LP_ERRLEN];
    struct lp_buf acts = { 0 };

    for (int i = 0; i < opt.nids && !lp_stop && !limit_reached(); i++) {
        uint64_t ms, seq;
        struct lp_stream_err re;
        struct lp_page pg;
        const char *id = opt.ids[i];

        if (lp_stream_id_parse(id, strlen(id), &ms, &seq) < 0 ||
            strchr(id, '-') == NULL) {
            lp_budget_say(&S.say_unknown, "'%s' is not a stream entry ID "
                          "(like 1700000000000-0)", id);
            S.exit_code = LP_EX_DATAERR;
            continue;
        }
        if (lp_stream_range(S.r, opt.com.dlq, id, 0, id, 0, &pg, &re) < 0)
            redis_die(&re);
        if (pg.n == 0) {
            lp_page_free(&pg);
            S.n_missing++;
            if (opt.cmd == C_SHOW) {
                lp_budget_say(&S.say_unknown, "entry %s is not in %s", id,
                              opt.com.dlq);
                S.exit_code = LP_EX_DATAERR;
            } else {
                lp_info("entry %s is not in %s (done already)", id,
                        opt.com.dlq);
            }
            continue;
        }
        struct lp_entry e;
        if (lp_entry_get(pg.entries, 0, &e, err) == 0 && e.fields &&
            (opt.cmd == C_SHOW || selected(&e)))
            one(&e, st, &acts);
        lp_page_free(&pg);
        if (acts.len)
            act(&acts);
    }
    flush_out();
    lp_buf_free(&acts);
}

static void print_stats(struct stats *st)
{
    struct lp_buf b = { 0 };
    char ts[40];

    lp_buf_adds(&b, "{\"key\":");
    lp_buf_add_jstr(&b, opt.com.dlq, strlen(opt.com.dlq));
    lp_buf_adds(&b, ",\"total\":");
    lp_buf_addu(&b, st->total);
    lp_buf_adds(&b, ",\"by_error\":{");
    for (int i = 0; i < st->nerr; i++) {
        if (i)
            lp_buf_addc(&b, ',');
        lp_buf_add_jstr(&b, st->err[i].key, st->err[i].len);
        lp_buf_addc(&b, ':');
        lp_buf_addu(&b, st->err[i].n);
        free(st->err[i].key);
    }
    lp_buf_adds(&b, "},\"by_stage\":{");
    for (int i = 0; i < st->nstage; i++) {
        if (i)
            lp_buf_addc(&b, ',');
        lp_buf_add_jstr(&b, st->stage[i].key, st->stage[i].len);
        lp_buf_addc(&b, ':');
        lp_buf_addu(&b, st->stage[i].n);
        free(st->stage[i].key);
    }
    lp_buf_addc(&b, '}');
    if (st->total) {
        lp_buf_adds(&b, ",\"oldest\":{\"id\":\"");
        lp_buf_adds(&b, st->oldest);
        lp_time_format(st->oldest_ms, ts);
        lp_buf_adds(&b, "\",\"time\":\"");
        lp_buf_adds(&b, ts);
        lp_buf_adds(&b, "\"},\"newest\":{\"id\":\"");
        lp_buf_adds(&b, st->newest);
        lp_time_format(st->newest_ms, ts);
        lp_buf_adds(&b, "\",\"time\":\"");
        lp_buf_adds(&b, ts);
        lp_buf_adds(&b, "\"}");
    }
    lp_buf_addc(&b, '}');
    add_line(b.p, b.len);
    lp_buf_free(&b);
    flush_out();
}

static const char *cmds[] = { "list", "show", "stats", "retry", "purge",
                              "export" };

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
static void check_command(void)
{
    if (opt.cmd < 0)
        tool_opt_error_hint(&cli, "a command is needed (list, show, stats, "
                            "retry, purge, export)");
    int wants_ids = opt.cmd == C_SHOW || opt.cmd == C_RETRY ||
                    opt.cmd == C_PURGE;
    int picks = (opt.nids > 0) + opt.all + (opt.has_older &&
                                            opt.cmd == C_PURGE);
    if (opt.cmd == C_SHOW && opt.nids == 0)
        tool_opt_error(&cli, "show needs IDs");
    if ((opt.cmd == C_RETRY || opt.cmd == C_PURGE) && picks != 1)
        tool_opt_error(&cli, "%s needs IDs, or --all%s (one of them)",
                       cmds[opt.cmd], opt.cmd == C_PURGE ?
                       ", or --older-than" : "");
    if (!wants_ids && opt.nids)
        tool_opt_error(&cli, "%s takes no IDs", cmds[opt.cmd]);
    if (opt.has_older && opt.cmd != C_PURGE)
        tool_opt_error(&cli, "--older-than is for purge");
}

/* --metrics, at every exit (SIGPIPE's among them); a file that cannot be
 * written is said and changes nothing else. */
static void write_metrics(void)
{
    char err[LP_ERRLEN], l[64];
    struct lp_metrics *m;

    if (opt.com.metrics == NULL || opt.cmd < 0)
        return;
    m = lp_metrics_new(&lp_log_notify);
    snprintf(l, sizeof l, "command=\"%s\"", cmds[opt.cmd]);
    lp_metric_set(lp_counter(m, "logpipe_dlq_entries_total", l,
                             "Entries the command acted on."),
                  (double)S.n_done);
    lp_metric_set(lp_counter(m, "logpipe_dlq_missing_total", l,
                             "Entries named that were gone already."),
                  (double)S.n_missing);
    if (lp_metrics_write(m, opt.com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    struct stats st;
    int rc;

    memset(&st, 0, sizeof st);
    tool_opt_parse(&cli, argc, argv, &opt, &opt.com);
    check_command();
    lp_log_init("logpipe-dlq", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&S.say_skipped, LP_LEVEL_WARN, "entries not exported");
    lp_budget_init(&S.say_failed, LP_LEVEL_ERROR, opt.cmd == C_RETRY ?
                   "entries not retried" : "entries not purged");
    lp_budget_init(&S.say_unknown, LP_LEVEL_ERROR, "unknown IDs");
    lp_sig_init(0);
    tool_at_exit(write_metrics);
    if (opt.where && lp_jq_new(opt.where, &S.where, err) < 0) {
        lp_error("--where: %s", err);
        return LP_EX_CONFIG;
    }
    if ((S.r = tool_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        return LP_EX_CONFIG;
    }
    lp_redis_set_timeout(S.r, opt.timeout);
    if ((rc = lp_redis_connect(S.r, err)) < 0) {
        lp_error("%s", err);
        return rc == LP_REDIS_EAUTH ? LP_EX_CONFIG : LP_EX_UNAVAILABLE;
    }
    if (opt.nids)
        by_id(&st);
    else
        walk(&st);
    if (opt.cmd == C_STATS)
        print_stats(&st);
    lp_log_end();
    if (S.say_skipped.total)
        lp_warn("%" PRIu64 " %s not exported", S.say_skipped.total,
                S.say_skipped.total == 1 ? "entry" : "entries");
    if (S.say_failed.total)
        lp_error("%" PRIu64 " %s not %s", S.say_failed.total,
                 S.say_failed.total == 1 ? "entry" : "entries",
                 opt.cmd == C_RETRY ? "retried" : "purged");
    if (S.say_unknown.total)
        lp_error("%" PRIu64 " unknown %s", S.say_unknown.total,
                 S.say_unknown.total == 1 ? "ID" : "IDs");
    if ((rc = lp_jq_outcome(S.where, err)) != 0) {
        /* 65, or 78 when it failed on every entry it ran on; a worse
         * status stays */
        lp_error("--where %s: they were not selected", err);
        if (S.exit_code == LP_EX_OK || S.exit_code == LP_EX_DATAERR)
            S.exit_code = rc;
    }
    if (opt.cmd == C_RETRY || opt.cmd == C_PURGE)
        lp_info("%" PRIu64 " entries %s%s, %" PRIu64 " gone already",
                S.n_done, opt.cmd == C_RETRY ? "retried" : "purged",
                opt.dry_run ? " (dry run)" : "", S.n_missing);
    free(opt.ids);
    lp_buf_free(&S.out);
    lp_buf_free(&S.obj);
    lp_jq_free(S.where);
    lp_redis_free(S.r);
    return S.exit_code;
}
