/* lp_dlqtool.c -- logpipe-dlq's engine: the operator's commands over the DLQ */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_cluster.h"
#include "lp_dlq.h"
#include "lp_dlqtool.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_notice.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_time.h"

/* stats: a count per value of error and of stage, bounded */
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

struct lp_dlqtool {
    struct lp_dlqtool_conf conf;
    struct lp_jq *where;
    struct lp_redis *r;         /* during a run; borrowed */
    struct lp_buf out;          /* NDJSON not yet written */
    struct lp_buf obj;          /* the JSON of the entry in hand */
    struct lp_buf acts;         /* retry, purge: a page's "ID\0TARGET\0" */
    struct lp_dlqtool_result res;
    struct stats st;
    int stats_due;              /* lp_dlqtool_stats: print them now */
    char pfx[16];               /* a shard's IDs: "<i>-"; "" unsharded */
    int shard;                  /* its index; -1 unsharded */
    const char *base;           /* the DLQ named in stats: conf.dlq as
                                 * given (a sharded stream's base) */
    int paused;                 /* conf.test_pause was done */
    int stop;                   /* what stops the run: an LP_EX_* status,
                                 * LP_DLQTOOL_EPIPE; 0: going on */
    char err[LP_ERRLEN];        /* why it stops */
};

/* Tells the tool about one entry. */
static void say(struct lp_dlqtool *t, enum lp_dlqtool_say what,
                const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(struct lp_dlqtool *t, enum lp_dlqtool_say what,
                const char *fmt, ...)
{
    char msg[LP_NOTICELEN];
    va_list ap;

    /* asked first: a message not to be said is not made */
    if (t->conf.say == NULL ||
        (t->conf.take && !t->conf.take(t->conf.ctx, what)))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->conf.say(t->conf.ctx, what, msg);
}

/* Stops the run with status and the message; -1 for the caller to return. */
static int stop(struct lp_dlqtool *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int stop(struct lp_dlqtool *t, int status, const char *fmt, ...)
{
    va_list ap;

    t->stop = status;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    return -1;
}

int lp_dlqtool_new(const struct lp_dlqtool_conf *conf, struct lp_dlqtool **t,
                   char *err)
{
    char jerr[LP_ERRLEN];

    if ((*t = calloc(1, sizeof **t)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_EX_SOFTWARE;
    }
    (*t)->conf = *conf;
    (*t)->base = conf->dlq;
    (*t)->shard = -1;
    if (conf->where && lp_jq_new(conf->where, &(*t)->where, jerr) < 0) {
        snprintf(err, LP_ERRLEN, "--where: %s", jerr);
        free(*t);
        *t = NULL;
        return LP_EX_CONFIG;
    }
    return 0;
}

void lp_dlqtool_free(struct lp_dlqtool *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < t->st.nerr; i++)
        free(t->st.err[i].key);
    for (int i = 0; i < t->st.nstage; i++)
        free(t->st.stage[i].key);
    lp_buf_free(&t->out);
    lp_buf_free(&t->obj);
    lp_buf_free(&t->acts);
    lp_jq_free(t->where);
    free(t);
}

void lp_dlqtool_shard(struct lp_dlqtool *t, unsigned i, const char *dlq,
                      const char *stream)
{
    t->conf.dlq = dlq;
    t->conf.stream = stream;
    t->shard = (int)i;
    snprintf(t->pfx, sizeof t->pfx, "%u-", i);
}

/*
 * Before a read of the DLQ: a connection a redirect closed (on another
 * shard's read) is connected again, its route going where the map says
 * now. After a failed read re: when a cluster's redirect (the DLQ's slot
 * moved), t->r becomes a connection where it went (conf.reroute), and 1
 * says to read again; 0: a failure as it was. since, bo: the caller's,
 * zeroed, for the read's retries.
 */
static void ready(struct lp_dlqtool *t)
{
    char err[LP_ERRLEN];

    if (t->conf.reroute && t->r && !lp_redis_connected(t->r))
        lp_redis_connect(t->r, err);    /* a failure: the read says it */
}

/* The connection of the next read: t->r, or after an ASK the node it
 * named, given ASKING first (its own round trip: Redis keeps the flag
 * until the client's next command) */
static struct lp_redis *reader(struct lp_dlqtool *t, struct lp_redis *via)
{
    struct lp_reply *rep;
    char err[LP_ERRLEN];

    if (via == NULL) {
        ready(t);
        return t->r;
    }
    /* a failure: the read on it says it */
    if (lp_cluster_asking(via) == 0 && lp_redis_reply(via, &rep, err) == 0)
        lp_reply_free(rep);
    return via;
}

static int moved(struct lp_dlqtool *t, const struct lp_stream_err *re,
                 int64_t *since, struct lp_backoff *bo, struct lp_redis **via)
{
    char err[LP_ERRLEN];

    *via = NULL;
    if (!t->conf.reroute || !lp_stream_redirected(re))
        return 0;
    if (*since == 0)
        *since = lp_mono_ms();
    if (lp_mono_ms() - *since >= t->conf.reroute_timeout)
        return 0;
    if (t->conf.cluster && strncmp(re->msg, "ASK ", 4) == 0 &&
        lp_cluster_ask_node(t->conf.cluster, re->msg, t->r, via, err) == 0) {
        /* the slot half moved: this read where the key went */
        say(t, LP_DLQTOOL_MOVED, "%s %s: %s: read again on %s (ASKING)",
            re->cmd, t->conf.dlq, re->msg, lp_redis_name(*via));
        return 1;
    }
    if (t->conf.reroute(t->conf.reroute_ctx, t->shard, &t->r, err) < 0)
        return 0;
    say(t, LP_DLQTOOL_MOVED, "%s %s: %s: read again on %s", re->cmd,
        t->conf.dlq, re->msg, lp_redis_name(t->r));
    poll(NULL, 0, (int)lp_backoff_next(bo));
    return 1;
}

/* lp_stream_range over t->r, through a moving slot (moved) */
static int range(struct lp_dlqtool *t, const char *from, int after,
                 const char *to, uint64_t count, struct lp_page *p,
                 struct lp_stream_err *re)
{
    struct lp_backoff bo = { 0 };
    struct lp_redis *via = NULL;
    int64_t since = 0;
    int rc;

    do {
        rc = lp_stream_range(reader(t, via), t->conf.dlq, from, after, to,
                             count, p, re);
    } while (rc < 0 && moved(t, re, &since, &bo, &via));
    return rc;
}

/* e with its ID as the tool shows it: "<i>-<id>" in a shard's DLQ (id:
 * room for it) */
static const struct lp_entry *shown(const struct lp_dlqtool *t,
                                    const struct lp_entry *e,
                                    struct lp_entry *pe,
                                    char id[LP_STREAM_IDLEN + 16])
{
    if (t->pfx[0] == '\0')
        return e;
    *pe = *e;
    snprintf(id, LP_STREAM_IDLEN + 16, "%s%.*s", t->pfx, (int)e->idlen,
             e->id);
    pe->id = id;
    pe->idlen = strlen(id);
    return pe;
}

const struct lp_dlqtool_result *lp_dlqtool_result(const struct lp_dlqtool *t)
{
    return &t->res;
}

int lp_dlqtool_where_outcome(const struct lp_dlqtool *t, int verbosity,
                             char *msg)
{
    return lp_jq_status(t->where, verbosity, msg);
}

/* ---- output ------------------------------------------------------------- */

static int flush_out(struct lp_dlqtool *t)
{
    if (t->out.len &&
        lp_fs_write_all(t->conf.out_fd, t->out.p, t->out.len) < 0) {
        if (errno == EPIPE) {
            t->stop = LP_DLQTOOL_EPIPE;
            t->err[0] = '\0';
            return -1;
        }
        return stop(t, LP_EX_IOERR, "%s: %s", t->conf.out_name,
                    strerror(errno));
    }
    t->out.len = 0;
    return 0;
}

static int add_line(struct lp_dlqtool *t, const char *s, size_t n)
{
    if (lp_buf_add(&t->out, s, n) < 0 || lp_buf_addc(&t->out, '\n') < 0)
        return stop(t, LP_EX_SOFTWARE, "out of memory");
    if (t->out.len >= 256 * 1024)
        return flush_out(t);
    return 0;
}

/* The line of an entry done, counted once it is taken (not when the
 * output fails on it). */
static int done_line(struct lp_dlqtool *t, const char *s, size_t n)
{
    if (add_line(t, s, n) < 0)
        return -1;
    t->res.done++;
    return 0;
}

/* ---- Redis's answers ---------------------------------------------------- */

/* An error reply that no retry cures: a refused permission or a key of
 * the wrong type. */
static int config_error(const struct lp_stream_err *e)
{
    return e->code == LP_RERR_KEY || e->code == LP_RERR_COMMAND;
}

/* Redis failed on a read of the DLQ: stops the run. */
static int redis_failed(struct lp_dlqtool *t, const struct lp_stream_err *e)
{
    /* what is printed already goes out first; its own failure wins */
    if (flush_out(t) < 0)
        return -1;
    if (e->code == LP_STREAM_EIO)
        return stop(t, LP_EX_UNAVAILABLE, "%s: %s", e->cmd, e->msg);
    return stop(t, config_error(e) ? LP_EX_CONFIG : LP_EX_UNAVAILABLE,
                "%s %s: %s", e->cmd, t->conf.dlq, e->msg);
}

/* ---- one entry ---------------------------------------------------------- */

/* Does the entry pass --where? (and is it old enough for --older-than) */
static int selected(struct lp_dlqtool *t, const struct lp_entry *e)
{
    char err[LP_ERRLEN];
    uint64_t ms, seq;

    if (t->conf.older) {
        /* the entry's ID is when it was moved to the DLQ */
        if (lp_stream_id_parse(e->id, e->idlen, &ms, &seq) < 0 ||
            (int64_t)ms >= lp_now_ms() - t->conf.older_than)
            return 0;
    }
    if (t->where == NULL)
        return 1;
    struct lp_entry pe;
    char pid[LP_STREAM_IDLEN + 16];
    t->obj.len = 0;
    lp_dlq_json(shown(t, e, &pe, pid), &t->obj);
    int m = lp_jq_match(t->where, t->obj.p, t->obj.len, err);
    if (m < 0) {
        /* a failed run (lp_dlqtool_where_outcome at the end): not
         * selected */
        if (lp_jq_name_it(t->where))
            say(t, LP_DLQTOOL_WHERE, "entry %s%.*s: --where: %s", t->pfx,
                (int)e->idlen, e->id, err);
        return 0;
    }
    return m;
}

/* Counts value v[0..vl) (any bytes) in slots s[0..*n), at most max. */
static int count_in(struct lp_dlqtool *t, struct slot *s, int *n, int max,
                    struct lp_dlq_str v)
{
    int i;

    for (i = 0; i < *n; i++)
        if (s[i].len == v.len && memcmp(s[i].key, v.p, v.len) == 0)
            break;
    if (i == *n) {
        /* bounded: the last slot is "(other)", for all the rest */
        if (*n == max - 1) {
            v = lp_dlq_cstr("(other)");
        } else if (*n == max) {
            i = max - 1;
            goto count;
        }
        if ((s[i].key = malloc(v.len + 1)) == NULL)
            return stop(t, LP_EX_SOFTWARE, "out of memory");
        memcpy(s[i].key, v.p, v.len);
        s[i].len = v.len;
        s[i].n = 0;
        (*n)++;
    }
count:
    s[i].n++;
    return 0;
}

static int stats_one(struct lp_dlqtool *t, const struct lp_entry *e,
                     const struct lp_dlq_rec *rec)
{
    const struct lp_dlq_str none = { "(none)", 6 };
    struct stats *st = &t->st;
    uint64_t ms = 0, seq;

    st->total++;
    t->res.done++;
    if (count_in(t, st->err, &st->nerr, 256,
                 rec->error.p ? rec->error : none) < 0 ||
        count_in(t, st->stage, &st->nstage, 16,
                 rec->stage.p ? rec->stage : none) < 0)
        return -1;
    lp_stream_id_parse(e->id, e->idlen, &ms, &seq);
    /* a shard's entries after another's: by the time they came in */
    if (st->oldest[0] == '\0' || (int64_t)ms < st->oldest_ms) {
        snprintf(st->oldest, sizeof st->oldest, "%s%.*s", t->pfx,
                 (int)e->idlen, e->id);
        st->oldest_ms = (int64_t)ms;
    }
    if (st->newest[0] == '\0' || (int64_t)ms >= st->newest_ms) {
        snprintf(st->newest, sizeof st->newest, "%s%.*s", t->pfx,
                 (int)e->idlen, e->id);
        st->newest_ms = (int64_t)ms;
    }
    return 0;
}

/* retry, purge: queues the entry as "ID\0TARGET\0", sent per page */
static int queue_one(struct lp_dlqtool *t, const struct lp_entry *e,
                     const struct lp_dlq_rec *rec)
{
    struct lp_buf *acts = &t->acts;
    struct lp_dlq_str target = { NULL, 0 };

    if (t->conf.cmd == LP_DLQTOOL_RETRY)
        target = rec->source_stream;
    if (target.p && memchr(target.p, '\0', target.len)) {
        /* the queue holds C strings: a NUL cannot be passed on */
        say(t, LP_DLQTOOL_FAILED, "entry %s%.*s: its source_stream holds "
            "a NUL byte: not retried", t->pfx, (int)e->idlen, e->id);
        if (t->res.status == LP_EX_OK)
            t->res.status = LP_EX_DATAERR;
        return 0;
    }
    if (target.p == NULL || target.len == 0 ||
        (t->conf.shards_of && target.len == strlen(t->conf.shards_of) &&
         memcmp(target.p, t->conf.shards_of, target.len) == 0))
        /* none named, or a sharded stream's own name: this shard */
        target = lp_dlq_cstr(t->conf.stream);
    t->res.queued++;
    if (lp_buf_add(acts, e->id, e->idlen) < 0 || lp_buf_addc(acts, 0) < 0 ||
        lp_buf_add(acts, target.p, target.len) < 0 ||
        lp_buf_addc(acts, 0) < 0)
        return stop(t, LP_EX_SOFTWARE, "out of memory");
    return 0;
}

/* The command on one selected entry (with fields). */
static int one(struct lp_dlqtool *t, const struct lp_entry *e)
{
    struct lp_dlq_rec rec;

    lp_dlq_decode(e, &rec);
    t->res.seen++;
    switch (t->conf.cmd) {
    case LP_DLQTOOL_LIST:
    case LP_DLQTOOL_SHOW: {
        struct lp_entry pe;
        char pid[LP_STREAM_IDLEN + 16];
        t->obj.len = 0;
        if (lp_dlq_json(shown(t, e, &pe, pid), &t->obj) < 0)
            return stop(t, LP_EX_SOFTWARE, "out of memory");
        return done_line(t, t->obj.p, t->obj.len);
    }
    case LP_DLQTOOL_EXPORT:
        if (rec.data.p == NULL || memchr(rec.data.p, '\n', rec.data.len)) {
            say(t, LP_DLQTOOL_SKIPPED, "entry %s%.*s: %s: not exported",
                t->pfx, (int)e->idlen, e->id, rec.data.p ? "its data holds a "
                "newline" : "no data field");
            return 0;
        }
        return done_line(t, rec.data.p, rec.data.len);
    case LP_DLQTOOL_STATS:
        return stats_one(t, e, &rec);
    case LP_DLQTOOL_RETRY:
    case LP_DLQTOOL_PURGE:
        return queue_one(t, e, &rec);
    }
    return 0;
}

/* ---- retry and purge, a page at a time ---------------------------------- */

/* The answer to one retry or purge of entry id (to target), as
 * lp_dlq_retry_reply or lp_dlq_purge_reply judged it: rc, nid, e. */
static int answered(struct lp_dlqtool *t, const char *id, const char *target,
                    int rc, const char *nid, struct lp_stream_err e,
                    int *fatal)
{
    int retry = t->conf.cmd == LP_DLQTOOL_RETRY;
    char line[512];

    if (rc < 0 && e.code == LP_STREAM_EIO) {
        if (flush_out(t) < 0)
            return -1;
        return stop(t, LP_EX_UNAVAILABLE, "%s", e.msg);
    }
    if (rc < 0) {
        if (retry)
            say(t, LP_DLQTOOL_FAILED, "entry %s%s: to %s: %s", t->pfx, id,
                target, e.msg);
        else
            say(t, LP_DLQTOOL_FAILED, "entry %s%s: %s", t->pfx, id, e.msg);
        /* the worst status wins; a refused command, which will refuse
         * every entry, ends the run after this page; a refused or wrong
         * key is the entry's own */
        if (config_error(&e)) {
            /* purge's key is always the DLQ: a refusal meets them all */
            *fatal |= e.code == LP_RERR_COMMAND || !retry;
            t->res.status = LP_EX_CONFIG;
        } else if (t->res.status == LP_EX_OK) {
            t->res.status = LP_EX_DATAERR;
        }
        return 0;
    }
    if (rc == 0) {
        /* retried or purged already, by an earlier run or someone else */
        t->res.missing++;
        say(t, LP_DLQTOOL_GONE, "entry %s%s is not in %s (done already)",
            t->pfx, id, t->conf.dlq);
        return 0;
    }
    if (retry) {
        struct lp_buf *b = &t->obj;
        b->len = 0;
        if (lp_buf_adds(b, "{\"id\":\"") < 0 || lp_buf_adds(b, t->pfx) < 0 ||
            lp_buf_adds(b, id) < 0 ||
            lp_buf_adds(b, "\",\"action\":\"retried\",\"stream\":") < 0 ||
            lp_buf_add_jstr(b, target, strlen(target)) < 0 ||
            lp_buf_adds(b, ",\"new_id\":") < 0 ||
            lp_buf_add_jstr(b, nid, strlen(nid)) < 0 ||
            lp_buf_addc(b, '}') < 0)
            return stop(t, LP_EX_SOFTWARE, "out of memory");
        return done_line(t, b->p, b->len);
    }
    snprintf(line, sizeof line, "{\"id\":\"%s%s\",\"action\":\"purged\"}",
             t->pfx, id);
    return done_line(t, line, strlen(line));
}

/* The answer to one queued retry or purge of entry id (to target). */
static int acted(struct lp_dlqtool *t, const char *id, const char *target,
                 int *fatal)
{
    struct lp_stream_err e;
    char nid[LP_STREAM_IDLEN];
    int rc;

    rc = t->conf.cmd == LP_DLQTOOL_RETRY ? lp_dlq_retry_reply(t->r, nid, &e)
                                         : lp_dlq_purge_reply(t->r, &e);
    return answered(t, id, target, rc, nid, e, fatal);
}

/* Queues entry id's retry (to target) or purge on r. */
static void act_append(struct lp_dlqtool *t, struct lp_redis *r,
                       const char *id, const char *target)
{
    /* a failed queueing fails its reply */
    if (t->conf.cmd == LP_DLQTOOL_RETRY)
        lp_dlq_retry_append_shard(r, t->conf.dlq, id, target,
                                  t->conf.stream, t->conf.shards_of);
    else
        lp_dlq_purge_append(r, t->conf.dlq, id);
}

/*
 * act in a Redis Cluster: the n queued commands (acts) sent to the
 * master of the DLQ's slot, each answer looked at; those a redirect
 * turned away (they did not run) are sent again, in order, where
 * lp_cluster_resend says (after ASK each after its own ASKING), until
 * none is left. Nothing that ran is sent again: no entry answered twice.
 */
static int act_cluster(struct lp_dlqtool *t, size_t n, int *fatal)
{
    struct lp_cluster *c = t->conf.cluster;
    const char *cmd = t->conf.cmd == LP_DLQTOOL_RETRY ? "EVAL" : "XDEL";
    unsigned slot = lp_key_slot(t->conf.dlq, strlen(t->conf.dlq));
    struct lp_buf *acts = &t->acts;
    struct lp_cluster_try tr;
    struct lp_redis *r = NULL;
    char err[LP_ERRLEN], *todo;
    size_t left = n, k, p;
    int asking = 0, rc, res = 0;
    int64_t ms;

    if ((todo = malloc(n ? n : 1)) == NULL)
        return stop(t, LP_EX_SOFTWARE, "out of memory");
    memset(todo, 1, n);
    lp_cluster_try_start(c, &tr, slot);
    rc = lp_cluster_slot_node(c, slot, &r, err);
    for (;;) {
        if (rc == LP_REDIS_EAUTH) {
            res = -1;
            if (flush_out(t) == 0)
                stop(t, LP_EX_CONFIG, "%s", err);
            break;
        }
        if (rc != 0) {
            lp_cluster_unreachable(c, &tr, err);
            goto resend;
        }
        for (k = 0, p = 0; k < n; k++) {
            const char *id = acts->p + p;
            const char *target = id + strlen(id) + 1;
            p = (size_t)(target - acts->p) + strlen(target) + 1;
            if (!todo[k])
                continue;
            if (asking)
                lp_cluster_asking(r);
            act_append(t, r, id, target);
        }
        for (k = 0, p = 0; k < n && res == 0; k++) {
            const char *id = acts->p + p;
            const char *target = id + strlen(id) + 1;
            struct lp_reply *rep;
            struct lp_stream_err e;
            char nid[LP_STREAM_IDLEN];
            p = (size_t)(target - acts->p) + strlen(target) + 1;
            if (!todo[k])
                continue;
            /* ASKING's +OK: a failure shows in the command's answer */
            if (asking && lp_redis_reply(r, &rep, e.msg) == 0)
                lp_reply_free(rep);
            e.msg[0] = '\0';
            if (lp_redis_reply(r, &rep, e.msg) < 0) {
                /* no answer: which of them ran is not known (stop, as
                 * ever) */
                lp_cluster_stale(c);
                rep = NULL;
            } else if (lp_cluster_check(c, &tr, r, rep) != LP_REDIR_NONE) {
                lp_reply_free(rep);     /* it did not run: again */
                continue;
            }
            todo[k] = 0;
            left--;
            rc = t->conf.cmd == LP_DLQTOOL_RETRY
                     ? lp_dlq_retry_judge(rep, nid, &e)
                     : lp_dlq_purge_judge(rep, &e);
            if (answered(t, id, target, rc, nid, e, fatal) < 0)
                res = -1;
        }
        if (res < 0 || left == 0)
            break;
    resend:
        rc = lp_cluster_resend(c, &tr, &r, &asking, &ms, err);
        if (rc < 0) {
            res = -1;
            if (flush_out(t) == 0)
                stop(t, LP_EX_UNAVAILABLE, "%s %s: %s", cmd, t->conf.dlq,
                     err);
            break;
        }
        if (rc == LP_CLUSTER_WAIT) {
            say(t, LP_DLQTOOL_MOVED, "%s %s: %s: %zu %s sent again after "
                "%lldms", cmd, t->conf.dlq, tr.why, left,
                left == 1 ? "entry" : "entries", (long long)ms);
            poll(NULL, 0, (int)ms);
            /* a wait is the cluster in flux, not redirects in a loop:
             * the ASKs of a long migration are counted from here */
            tr.redirects = 0;
            rc = lp_cluster_slot_node(c, slot, &r, err);
        } else {
            say(t, LP_DLQTOOL_MOVED, "%s %s: %s: %zu %s sent again on %s%s",
                cmd, t->conf.dlq, tr.why, left,
                left == 1 ? "entry" : "entries", lp_redis_name(r),
                asking ? " (ASKING)" : "");
            rc = 0;
        }
    }
    free(todo);
    return res;
}

/* conf.test_pause, once: the file made, then gone (up to 60 s) */
static void test_pause(struct lp_dlqtool *t)
{
    FILE *f;

    if (t->conf.test_pause == NULL || t->paused)
        return;
    t->paused = 1;
    if ((f = fopen(t->conf.test_pause, "w")) == NULL)
        return;
    fclose(f);
    for (int i = 0; i < 6000 && !lp_stop &&
                    access(t->conf.test_pause, F_OK) == 0; i++)
        poll(NULL, 0, 10);
}

/* Runs the queued retries or purges of a page, one command per entry,
 * pipelined; one NDJSON line per entry. */
static int act(struct lp_dlqtool *t)
{
    struct lp_buf *acts = &t->acts;
    int retry = t->conf.cmd == LP_DLQTOOL_RETRY, fatal = 0;
    char line[512];
    size_t n = 0, p;

    if (!t->conf.dry_run)
        test_pause(t);
    for (p = 0; p < acts->len; ) {
        const char *id = acts->p + p;
        const char *target = id + strlen(id) + 1;
        p = (size_t)(target - acts->p) + strlen(target) + 1;
        if (t->conf.dry_run) {
            snprintf(line, sizeof line, "{\"id\":\"%s%s\",\"action\":"
                     "\"%s\",\"dry_run\":true}", t->pfx, id,
                     retry ? "retry" : "purge");
            if (done_line(t, line, strlen(line)) < 0)
                return -1;
            continue;
        }
        if (t->conf.cluster == NULL)
            act_append(t, t->r, id, target);
        n++;
    }
    if (t->conf.cluster && n) {
        if (act_cluster(t, n, &fatal) < 0)
            return -1;
        n = 0;
    }
    p = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = acts->p + p;
        const char *target = id + strlen(id) + 1;
        p += strlen(id) + 1;
        p += strlen(target) + 1;
        if (acted(t, id, target, &fatal) < 0)
            return -1;
    }
    acts->len = 0;
    if (fatal) {
        if (flush_out(t) < 0)
            return -1;
        return stop(t, LP_EX_CONFIG, "stopped: Redis refuses the %s of %s "
                    "entries (see Permissions in logpipe-dlq(1))",
                    retry ? "retry" : "purge", t->conf.dlq);
    }
    return 0;
}

/* --limit: entries printed, counted, or selected to retry or purge */
static int limit_reached(const struct lp_dlqtool *t)
{
    uint64_t n = t->conf.cmd == LP_DLQTOOL_RETRY ||
                 t->conf.cmd == LP_DLQTOOL_PURGE ? t->res.queued
                                                 : t->res.done;
    return t->conf.limit && n >= t->conf.limit;
}

/* ---- walking the DLQ ---------------------------------------------------- */

/* The last entry to walk to into end ("" when none): the last one there
 * now, or the last one older than --older-than. */
static int walk_end(struct lp_dlqtool *t, char end[LP_STREAM_IDLEN])
{
    struct lp_stream_err re;

    struct lp_backoff bo = { 0 };
    int64_t since = 0;
    int rc;

    struct lp_redis *via = NULL;

    do {
        rc = lp_stream_last_id(reader(t, via), t->conf.dlq, end, &re);
    } while (rc < 0 && moved(t, &re, &since, &bo, &via));
    if (rc < 0) {
        if (re.code != LP_STREAM_ESHAPE)
            return redis_failed(t, &re);
        return stop(t, LP_EX_SOFTWARE, "%s %s: %s", re.cmd, t->conf.dlq,
                    re.msg);
    }
    if (end[0] && t->conf.older) {
        /* IDs are the times entries came in: stop at the cut-off */
        int64_t cut = lp_now_ms() - t->conf.older_than;
        uint64_t ms, seq;
        if (cut <= 0)
            end[0] = '\0';
        else if (lp_stream_id_parse(end, strlen(end), &ms, &seq) == 0 &&
                 (int64_t)ms >= cut)
            snprintf(end, LP_STREAM_IDLEN, "%" PRId64, cut - 1);
    }
    return 0;
}

/* The longest value among e's fields: a page's entries size the next
 * page (list, export) */
static size_t value_max(const struct lp_entry *e)
{
    size_t max = 0;

    for (size_t k = 0; k < e->nfields; k++) {
        const char *f, *v;
        size_t fl, vl;
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (vl > max)
            max = vl;
    }
    return max;
}

/* Pages through the whole DLQ, up to the entries there when it started. */
static int walk(struct lp_dlqtool *t)
{
    char err[LP_ERRLEN], last[80] = "", end[LP_STREAM_IDLEN];
    struct lp_stream_err re;

    if (limit_reached(t))
        return 0;               /* by an earlier shard's run */
    if (walk_end(t, end) < 0 || end[0] == '\0')
        return t->stop ? -1 : 0;

    /* pages of 10 entries at first, growing to 1000 while they stay
     * small: a page holds at most about 64 MB of the largest entries */
    size_t page = 10;
    for (;;) {
        struct lp_page pg;
        size_t biggest = 1;

        /* from the first entry, then past the last one seen */
        if (range(t, last[0] ? last : NULL, 1, end, page, &pg, &re) < 0)
            return redis_failed(t, &re);
        if (pg.n == 0) {
            lp_page_free(&pg);
            break;
        }
        for (size_t i = 0; i < pg.n && !lp_stop; i++) {
            struct lp_entry e;
            if (lp_entry_get(pg.entries, i, &e, err) < 0) {
                lp_page_free(&pg);
                if (flush_out(t) < 0)
                    return -1;
                return stop(t, LP_EX_SOFTWARE, "%s %s: %s", re.cmd,
                            t->conf.dlq, err);
            }
            snprintf(last, sizeof last, "%.*s", (int)e.idlen, e.id);
            if (e.fields == NULL)
                continue;
            size_t m = value_max(&e);
            if (m > biggest)
                biggest = m;
            if (!selected(t, &e))
                continue;
            if (one(t, &e) < 0) {
                lp_page_free(&pg);
                return -1;
            }
            if (limit_reached(t))
                break;
        }
        lp_page_free(&pg);
        if ((t->acts.len && act(t) < 0) || flush_out(t) < 0)
            return -1;
        page = (64u << 20) / biggest;
        if (page > 1000)
            page = 1000;
        if (page < 10)
            page = 10;
        if (lp_stop || limit_reached(t))
            break;
        if (strcmp(last, end) == 0)
            break;              /* the last entry: past it is no ID */
    }
    return 0;
}

/* ---- a sharded stream's DLQs, merged ----------------------------------- */

/* One shard's walk in a merge: its page, the next entry in it */
struct mcur {
    struct lp_page pg;
    size_t i;
    char last[80], end[LP_STREAM_IDLEN];
    size_t page;                /* entries a page, as walk() sizes them */
    uint64_t ms, seq;           /* the next entry's ID */
    int done;
};

/* The next run's shard, in a merge */
static void use_shard(struct lp_dlqtool *t, size_t k,
                      const struct lp_dlqtool_shardv *v)
{
    lp_dlqtool_shard(t, (unsigned)k, v->dlq[k], v->stream[k]);
    t->r = v->r[k];
}

/* Reads shard k's next page (past its last entry, up to its end): 0, or
 * -1 stopping the run; c->done when nothing is left. */
static int mfill(struct lp_dlqtool *t, struct mcur *c, size_t nshards)
{
    char err[LP_ERRLEN];
    struct lp_stream_err re;
    struct lp_entry e;

    lp_page_free(&c->pg);
    c->i = 0;
    if (c->last[0] && strcmp(c->last, c->end) == 0) {
        c->done = 1;            /* its last entry: past it is no ID */
        return 0;
    }
    if (range(t, c->last[0] ? c->last : NULL, 1, c->end, c->page, &c->pg,
              &re) < 0)
        return redis_failed(t, &re);
    if (c->pg.n == 0) {
        c->done = 1;
        return 0;
    }
    /* the next page's size, by the largest value of this one: the pages
     * of all shards together about 64 MB at most */
    size_t biggest = 1;
    for (size_t i = 0; i < c->pg.n; i++) {
        if (lp_entry_get(c->pg.entries, i, &e, err) < 0 || e.fields == NULL)
            continue;
        size_t m = value_max(&e);
        if (m > biggest)
            biggest = m;
    }
    c->page = ((64u << 20) / nshards) / biggest;
    c->page = c->page > 1000 ? 1000 : c->page < 10 ? 10 : c->page;
    return 0;
}

/* The ID of shard c's next entry into c->ms, c->seq (reading a page when
 * it needs one): 0, or -1 stopping the run. */
static int mhead(struct lp_dlqtool *t, struct mcur *c, size_t nshards)
{
    char err[LP_ERRLEN];
    struct lp_entry e;

    if (c->i >= c->pg.n && mfill(t, c, nshards) < 0)
        return -1;
    if (c->done)
        return 0;
    if (lp_entry_get(c->pg.entries, c->i, &e, err) < 0 ||
        lp_stream_id_parse(e.id, e.idlen, &c->ms, &c->seq) < 0) {
        if (flush_out(t) < 0)
            return -1;
        return stop(t, LP_EX_SOFTWARE, "XRANGE %s: %s", t->conf.dlq,
                    "an entry of no known shape");
    }
    return 0;
}

int lp_dlqtool_run_merged(struct lp_dlqtool *t,
                          const struct lp_dlqtool_shardv *v, char *err)
{
    struct mcur *c = calloc(v->n, sizeof *c);
    size_t k;
    int rc = 0;

    t->stop = 0;
    t->err[0] = '\0';
    if (c == NULL) {
        rc = stop(t, LP_EX_SOFTWARE, "out of memory");
        goto out;
    }
    /* each shard's end: its last entry now */
    for (k = 0; k < v->n && rc == 0; k++) {
        use_shard(t, k, v);
        c[k].page = 10;
        if ((rc = walk_end(t, c[k].end)) == 0 && c[k].end[0] == '\0')
            c[k].done = 1;
        if (rc == 0 && !c[k].done)
            rc = mhead(t, &c[k], v->n);
    }
    while (rc == 0 && !lp_stop && !limit_reached(t)) {
        struct lp_entry e;
        size_t best = v->n;
        /* the oldest next entry of all shards; on a tie, the first shard */
        for (k = 0; k < v->n; k++)
            if (!c[k].done &&
                (best == v->n || c[k].ms < c[best].ms ||
                 (c[k].ms == c[best].ms && c[k].seq < c[best].seq)))
                best = k;
        if (best == v->n)
            break;
        use_shard(t, best, v);
        lp_entry_get(c[best].pg.entries, c[best].i++, &e, err);
        snprintf(c[best].last, sizeof c[best].last, "%.*s", (int)e.idlen,
                 e.id);
        if (e.fields && selected(t, &e) && one(t, &e) < 0)
            rc = -1;
        if (rc == 0)
            rc = mhead(t, &c[best], v->n);
    }
    if (rc == 0)
        rc = flush_out(t);
out:
    for (k = 0; c && k < v->n; k++)
        lp_page_free(&c[k].pg);
    free(c);
    t->r = NULL;
    snprintf(err, LP_ERRLEN, "%s", t->err);
    return rc < 0 ? t->stop : 0;
}

/* The entries named, in that order. */
static int by_id(struct lp_dlqtool *t)
{
    char err[LP_ERRLEN];
    int show = t->conf.cmd == LP_DLQTOOL_SHOW;

    for (int i = 0; i < t->conf.nids && !lp_stop && !limit_reached(t); i++) {
        uint64_t ms, seq;
        struct lp_stream_err re;
        struct lp_page pg;
        struct lp_entry e;
        const char *id = t->conf.ids[i];
        int rc = 0;

        if (lp_stream_id_parse(id, strlen(id), &ms, &seq) < 0 ||
            strchr(id, '-') == NULL) {
            say(t, LP_DLQTOOL_UNKNOWN, "'%s' is not a stream entry ID "
                "(like 1700000000000-0)", id);
            t->res.status = LP_EX_DATAERR;
            continue;
        }
        if (range(t, id, 0, id, 0, &pg, &re) < 0)
            return redis_failed(t, &re);
        if (pg.n == 0) {
            lp_page_free(&pg);
            t->res.missing++;
            if (show) {
                say(t, LP_DLQTOOL_UNKNOWN, "entry %s%s is not in %s", t->pfx,
                    id, t->conf.dlq);
                t->res.status = LP_EX_DATAERR;
            } else {
                say(t, LP_DLQTOOL_GONE, "entry %s%s is not in %s (done "
                    "already)", t->pfx, id, t->conf.dlq);
            }
            continue;
        }
        if (lp_entry_get(pg.entries, 0, &e, err) == 0 && e.fields &&
            (show || selected(t, &e)))
            rc = one(t, &e);
        lp_page_free(&pg);
        if (rc < 0 || (t->acts.len && act(t) < 0))
            return -1;
    }
    return flush_out(t);
}

/* {"key":count,...} of slots s[0..n); -1 when out of memory */
static int add_counts(struct lp_buf *b, const struct slot *s, int n)
{
    int rc = lp_buf_addc(b, '{');

    for (int i = 0; i < n; i++) {
        if (i)
            rc |= lp_buf_addc(b, ',');
        rc |= lp_buf_add_jstr(b, s[i].key, s[i].len) < 0;
        rc |= lp_buf_addc(b, ':');
        rc |= lp_buf_addu(b, s[i].n);
    }
    rc |= lp_buf_addc(b, '}');
    return rc ? -1 : 0;
}

static int print_stats(struct lp_dlqtool *t)
{
    if (t->conf.shards_of && !t->stats_due)
        return 0;               /* after the last shard: lp_dlqtool_stats */
    struct stats *st = &t->st;
    struct lp_buf *b = &t->obj;
    char ts[40];
    int rc = 0;

    b->len = 0;
    rc |= lp_buf_adds(b, "{\"key\":");
    rc |= lp_buf_add_jstr(b, t->base, strlen(t->base)) < 0;
    rc |= lp_buf_adds(b, ",\"total\":");
    rc |= lp_buf_addu(b, st->total);
    rc |= lp_buf_adds(b, ",\"by_error\":");
    rc |= add_counts(b, st->err, st->nerr);
    rc |= lp_buf_adds(b, ",\"by_stage\":");
    rc |= add_counts(b, st->stage, st->nstage);
    if (st->total) {
        rc |= lp_buf_adds(b, ",\"oldest\":{\"id\":\"");
        rc |= lp_buf_adds(b, st->oldest);
        lp_time_format(st->oldest_ms, ts);
        rc |= lp_buf_adds(b, "\",\"time\":\"");
        rc |= lp_buf_adds(b, ts);
        rc |= lp_buf_adds(b, "\"},\"newest\":{\"id\":\"");
        rc |= lp_buf_adds(b, st->newest);
        lp_time_format(st->newest_ms, ts);
        rc |= lp_buf_adds(b, "\",\"time\":\"");
        rc |= lp_buf_adds(b, ts);
        rc |= lp_buf_adds(b, "\"}");
    }
    rc |= lp_buf_addc(b, '}');
    if (rc)
        return stop(t, LP_EX_SOFTWARE, "out of memory");
    if (add_line(t, b->p, b->len) < 0)
        return -1;
    return flush_out(t);
}

int lp_dlqtool_run(struct lp_dlqtool *t, struct lp_redis *r, char *err)
{
    int rc;

    t->r = r;
    t->stop = 0;
    t->err[0] = '\0';
    rc = t->conf.nids ? by_id(t) : walk(t);
    if (rc == 0 && t->conf.cmd == LP_DLQTOOL_STATS)
        rc = print_stats(t);
    t->r = NULL;
    t->acts.len = 0;
    snprintf(err, LP_ERRLEN, "%s", t->err);
    return rc < 0 ? t->stop : 0;
}

void lp_dlqtool_set_ids(struct lp_dlqtool *t, char *const *ids, int nids)
{
    t->conf.ids = ids;
    t->conf.nids = nids;
}

int lp_dlqtool_stats(struct lp_dlqtool *t, char *err)
{
    int rc;

    t->stop = 0;
    t->err[0] = '\0';
    t->stats_due = 1;
    rc = print_stats(t);
    t->stats_due = 0;
    snprintf(err, LP_ERRLEN, "%s", t->err);
    return rc < 0 ? t->stop : 0;
}
