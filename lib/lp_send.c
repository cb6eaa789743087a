/* lp_send.c -- the send engine: NDJSON events into a Redis stream */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_cluster.h"
#include "lp_dlq.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_follow.h"
#include "lp_jsource.h"
#include "lp_json.h"
#include "lp_line.h"
#include "lp_metrics.h"
#include "lp_rate.h"
#include "lp_redis.h"
#include "lp_send.h"
#include "lp_send_int.h"
#include "lp_shards.h"
#include "lp_resp.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "lp_wal.h"

/*
 * The loop: read lines, validate each event in one pass, append its XADD
 * (already in RESP form) to the input batch; when the batch is full, the
 * linger time has passed or input ends, hand it to hiredis in one append
 * and write it out, while up to LP_INFLIGHT earlier batches wait for their
 * replies. One round trip per batch, not per event.
 *
 * Every event keeps the input offset of its line, so that when Redis stays
 * away longer than --timeout we can say exactly how much of the input is
 * in Redis: everything before the first unacknowledged event's line.
 *
 * With --wal, a failure does not wait: every command not acknowledged
 * goes to the WAL, in order, synced, and from then on ("WAL mode") new
 * batches go there too, behind it, while the WAL's oldest segment is
 * re-sent through the same pipeline whenever Redis answers. When the WAL
 * is empty again, batches go straight to Redis.
 *
 * The engine's files and how they share struct lp_send: lp_send_int.h.
 */

/* --require's names all fit lp_event's rules */
_Static_assert(LP_SEND_MAXREQ <= LP_EVENT_MAXREQ, "LP_SEND_MAXREQ");

/* Ends the run with status code: back to lp_send_run, which returns
 * it. What is to be said was said. */
_Noreturn void lp_send_end_run(struct lp_send *s, int code)
{
    s->exit_code = code;
    longjmp(s->out, 1);
}

_Noreturn void lp_send_oom(struct lp_send *s)
{
    say(s, LP_NOTICE_ERROR, "out of memory");
    lp_send_end_run(s, LP_EX_SOFTWARE);
}

static void where(struct lp_send *s, char *buf, size_t cap, uint64_t lineno)
{
    if (s->js)
        snprintf(buf, cap, "journal: entry %" PRIu64, lineno);
    else if (s->fl)             /* lineno: the line's offset */
        snprintf(buf, cap, "%s: the line at byte %" PRIu64, s->name,
                 lineno);
    else if (s->name)
        snprintf(buf, cap, "%s: line %" PRIu64, s->name, lineno);
    else
        snprintf(buf, cap, "line %" PRIu64, lineno);
}

/* ---- metrics ------------------------------------------------------------ */

/* The metrics; the counters are s->n's own (lp_counter_of: counted
 * once). 0, or -1 out of memory. */
static int metrics_init(struct lp_send *s)
{
    struct lp_metrics *m;
    struct lp_send_counts *n = &s->n;

    if (s->c.metrics == NULL)
        return 0;
    if ((m = s->m = lp_metrics_new(&s->nt)) == NULL)
        return -1;
    lp_counter_of(m, "logpipe_send_lines_total", "", "Input lines read.",
                  &n->lines);
    lp_counter_of(m, "logpipe_send_events_total", "result=\"sent\"",
                  "Events by what became of them.", &n->sent);
    lp_counter_of(m, "logpipe_send_events_total", "result=\"rejected\"", "",
                  &n->rejected);
    lp_counter_of(m, "logpipe_send_events_total", "result=\"wal\"", "",
                  &n->wal);
    lp_counter_of(m, "logpipe_send_events_total", "result=\"limited\"", "",
                  &n->limited);
    lp_counter_of(m, "logpipe_send_wal_replayed_total", "",
                  "Events sent again from the WAL.", &n->replayed);
    lp_counter_of(m, "logpipe_send_dlq_total", "",
                  "Rejected lines added to the DLQ.", &n->dlq);
    lp_counter_of(m, "logpipe_send_already_stored_total", "",
                  "Events found stored after their reply was lost (not "
                  "sent again).", &n->already);
    lp_counter_of(m, "logpipe_send_batches_total", "",
                  "Batches acknowledged.", &n->batches);
    s->batch_s = lp_histogram(m, "logpipe_send_batch_seconds", "",
                              "From writing a batch to its last reply.",
                              lp_seconds_buckets, lp_seconds_nbuckets);
    lp_counter_of(m, "logpipe_send_redis_errors_total", "",
                  "Failures of Redis: I/O errors and error replies.",
                  &n->errors);
    lp_counter_of(m, "logpipe_send_reconnects_total", "",
                  "Connections made again after a failure.",
                  &n->reconnects);
    s->wal_bytes = lp_gauge(m, "logpipe_send_wal_bytes", "",
                            "Bytes of records waiting in the WAL.");
    if (s->c.rate > 0) {
        s->rate_wait = lp_counter(m, "logpipe_send_rate_wait_seconds_total",
                                  "", "Time spent waiting for --rate.");
        s->rate_keys = lp_gauge(m, "logpipe_send_rate_keys", "",
                                "Rate keys with a bucket of their own.");
        lp_counter_of(m, "logpipe_send_rate_overflow_total", "",
                      "Events whose key was new past --max-keys: they "
                      "share one bucket.", &n->overflow);
    }
    return 0;
}

/* Writes the metrics file when due (or now, with force). */
static void metrics_tick(struct lp_send *s, int force)
{
    if (s->m == NULL)
        return;
    lp_metric_set(s->wal_bytes, s->wal ? (double)lp_wal_bytes(s->wal) : 0);
    if (s->rate) {
        /* not counts but what they come to: seconds, buckets held */
        lp_metric_set(s->rate_wait, (double)s->n.wait_ms / 1000.0);
        lp_metric_set(s->rate_keys, (double)lp_rate_nkeys(s->rate));
    }
    lp_metrics_tick(s->m, s->c.metrics, s->c.metrics_interval, force);
}

/* The caller's periodic work (its held-back messages): ms until due, -1
 * none; and doing it. */
static int64_t idle_due(const struct lp_send *s)
{
    return s->c.due ? s->c.due(s->c.ctx) : -1;
}

static void idle_tick(const struct lp_send *s)
{
    if (s->c.tick)
        s->c.tick(s->c.ctx);
}

/* ---- Redis failing ------------------------------------------------------ */

/* ---- requests (lp_send_serve) ------------------------------------------ */

static void dispatch(struct lp_send *s);
static int lanes_split(struct lp_send *s);
static int64_t redis_timeout(const struct lp_send *s);
static int plain_member(const char *k);
static void add_command(struct lp_send *s, size_t start, uint64_t line_start,
                        int kind);
static size_t rate_key(struct lp_send *s, const char *txt, size_t n,
                       const struct lp_jevent *ev, char *buf, size_t cap);
static int64_t req_rate(struct lp_send *s, struct lp_send_req *q);
static struct lp_bucket *req_bucket(struct lp_send *s, const char *key,
                                    size_t klen, int64_t now);
static int64_t rate_take(struct lp_send *s, struct lp_bucket *b);
static const char *req_key_at(const struct lp_send_req *q, size_t *off,
                              size_t *klen, uint64_t *count);
static void req_refund(struct lp_send_req *q);
static void unpark_failed(struct lp_send *s, const char *why);

/* The message of an event over --rate under bucket b (klen 0: no key). */
static void over_rate(const struct lp_bucket *b, size_t klen, char *why,
                      size_t cap)
{
    if (klen)
        snprintf(why, cap, "over --rate for key \"%.*s\"",
                 (int)(b->klen < 64 ? b->klen : 64), b->key);
    else
        snprintf(why, cap, "over --rate");
}

/* q is over: its outcome to done(), then it is freed. */
static void req_over(struct lp_send_req *q, int how)
{
    /* failed (answered 503): its tokens are not spent, even when its
     * reply was lost and it may have been stored: a retry must not be
     * refused by the rate for a failure of Redis */
    if (how == LP_REQ_FAILED)
        req_refund(q);
    q->ended = 1;
    q->r.how = how;
    q->r.first = q->first;
    q->r.last = q->last;
    q->r.error = q->error[0] ? q->error : NULL;
    q->done(q->ctx, &q->r);
    lp_send_req_abort(q);
}

void lp_req_answered(struct lp_send *s, struct lp_cmd *e, int ok,
                     const char *id, size_t idn, const char *error)
{
    struct lp_send_req *q = e->req;

    (void)s;
    e->req = NULL;
    if (!ok) {
        q->r.failed++;
        if (q->error[0] == '\0')
            snprintf(q->error, sizeof q->error, "%s", error);
    } else if (e->kind == LP_CMD_EVENT) {
        q->r.events++;
        if (id && idn < sizeof q->last) {
            memcpy(q->last, id, idn);
            q->last[idn] = '\0';
            if (q->first[0] == '\0')
                memcpy(q->first, q->last, idn + 1);
        }
    } else {
        q->r.dlq++;
    }
    if (--q->pending == 0)
        req_over(q, LP_REQ_STORED);
}

void lp_req_in_wal(struct lp_send *s, struct lp_batch *b)
{
    (void)s;
    for (size_t k = 0; k < b->n; k++) {
        struct lp_cmd *e = &b->ev[k];
        struct lp_send_req *q = e->req;
        /* done: synced in the WAL (a command Redis answered has no
         * request any more) */
        if (q == NULL || !e->done)
            continue;
        e->req = NULL;
        if (e->kind == LP_CMD_EVENT)
            q->r.events++;
        else
            q->r.dlq++;
        if (--q->pending == 0)
            req_over(q, LP_REQ_WAL);
    }
}

/* Request command e will not be stored by this run (why; maybe: Redis
 * may have stored it): done() comes FAILED when it was the last. */
static void req_failed(struct lp_cmd *e, const char *why, int maybe)
{
    struct lp_send_req *q = e->req;

    e->req = NULL;
    q->r.maybe |= maybe;
    if (q->error[0] == '\0')
        snprintf(q->error, sizeof q->error, "%s", why);
    if (--q->pending == 0)
        req_over(q, LP_REQ_FAILED);
}

/*
 * Serving without a WAL, Redis failed (why): the requests in flight fail
 * at once, rather than wait through --timeout: a batch Redis answered
 * (refused) stored nothing; one whose reply was lost may have been stored
 * (maybe). The batches go; the connection is closed, so that the next one
 * reads the committed position first and numbers on from it; submits
 * answer UNAVAILABLE for the backoff's wait.
 */
static void serve_failed(struct lp_send *s, const char *why)
{
    s->n.errors++;
    lp_pipeline_collect(s);
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        int maybe = (b->tried && !b->answered) || b->unconfirmed;
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].req && !b->ev[k].done)
                req_failed(&b->ev[k], why, maybe);
    }
    while (s->count > 0)
        lp_pipeline_release(s);
    unpark_failed(s, why);
    if (s->shards_changed && s->sh == NULL) {
        /* the stream spread over shards since the start: no request will
         * be stored, as none would at a start now (unsharded_check) */
        say(s, LP_NOTICE_ERROR, "%s", why);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    lp_redis_disconnect(s->r);
    s->pos_known = 0;
    s->down_until = lp_mono_ms() + lp_backoff_next(&s->backoff);
    if (!s->warned) {
        say(s, LP_NOTICE_WARN, "%s: requests fail until Redis answers", why);
        s->warned = 1;
    }
    s->last_permanent = 0;
}

struct lp_send_req *lp_send_req_begin(struct lp_send *s, lp_send_req_fn *done,
                                      void *ctx)
{
    struct lp_send_req *q = calloc(1, sizeof *q);

    if (q == NULL)
        return NULL;
    q->s = s;
    q->done = done;
    q->ctx = ctx;
    /* the buffer a request before this one left: grown already, its
     * pages touched */
    q->blob = s->spare;
    s->spare = (struct lp_buf){ 0 };
    return q;
}

/* q's buffer becomes the next request's when larger than the one kept
 * (up to a batch's bytes), else it is freed */
static void req_recycle(struct lp_send_req *q)
{
    struct lp_send *s = q->s;

    if (q->blob.cap > s->spare.cap && q->blob.cap <= s->c.batch_bytes) {
        lp_buf_free(&s->spare);
        s->spare = q->blob;
        s->spare.len = 0;
        q->blob = (struct lp_buf){ 0 };
    }
    lp_buf_free(&q->blob);
}

static int req_room(struct lp_send_req *q)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        uint32_t *at = realloc(q->at, cap * sizeof *at);
        if (at == NULL)
            return -1;
        q->at = at;
        q->cap = cap;
    }
    return 0;
}

/* A request's count of events under --rate-key's key[0..len): records
 * {u64 count, u32 len, the bytes} in q->keys, each padded to 8 bytes;
 * past REQ_KEYS distinct keys, the rest count under LP_RATE_OVERFLOW's. */
#define REQ_KEYS 256
#define KREC(len) ((12 + (size_t)(len) + 7) & ~(size_t)7)

static int req_tally(struct lp_send_req *q, const char *key, size_t len)
{
    for (int again = 0; again < 2; again++) {
        size_t off = 0;
        for (size_t i = 0; i < q->nkeys; i++) {
            uint64_t c;
            uint32_t l;
            memcpy(&c, q->keys.p + off, 8);
            memcpy(&l, q->keys.p + off + 8, 4);
            if (l == len && memcmp(q->keys.p + off + 12, key, len) == 0) {
                c++;
                memcpy(q->keys.p + off, &c, 8);
                return 0;
            }
            off += KREC(l);
        }
        if (q->nkeys < REQ_KEYS || again) {
            uint64_t one = 1;
            uint32_t l = (uint32_t)len;
            char pad[8] = { 0 };
            if (lp_buf_add(&q->keys, &one, 8) < 0 ||
                lp_buf_add(&q->keys, &l, 4) < 0 ||
                lp_buf_add(&q->keys, key, len) < 0 ||
                lp_buf_add(&q->keys, pad, KREC(len) - 12 - len) < 0)
                return -1;
            q->nkeys++;
            return 0;
        }
        key = LP_RATE_OVERFLOW;
        len = strlen(LP_RATE_OVERFLOW);
    }
    return -1;
}

int lp_send_req_event(struct lp_send_req *q, const char *stored, size_t len,
                      const char *txt, size_t n, const struct lp_jevent *ev)
{
    struct lp_send *s = q->s;
    size_t start = q->blob.len;

    if (req_room(q) < 0 || start >= 0x80000000u ||
        lp_pipeline_xadd_to(s, &q->blob, stored, len, NULL) < 0)
        return -1;
    if (s->rate && s->c.on_limit == LP_SEND_ON_BLOCK && txt &&
        (s->rkey_idx >= 0 || s->rkey_jq)) {
        /* the request's tokens are taken whole at its submit */
        char key[1024];
        size_t klen = rate_key(s, txt, n, ev, key, sizeof key);
        if (req_tally(q, key, klen) < 0)
            return -1;
    }
    q->at[q->n++] = (uint32_t)start;
    q->nev++;
    return 0;
}

int lp_send_req_admit(struct lp_send_req *q, const char *txt, size_t n,
                      const struct lp_jevent *ev, char *why, size_t cap)
{
    struct lp_send *s = q->s;
    char key[1024];
    size_t klen;
    struct lp_bucket *b;

    if (!s->rate || s->c.on_limit == LP_SEND_ON_BLOCK)
        return 1;
    if (txt && (s->rkey_idx >= 0 || s->rkey_jq)) {
        klen = rate_key(s, txt, n, ev, key, sizeof key);
    } else {
        /* the request's one key: its client's */
        klen = q->klen < sizeof key ? q->klen : sizeof key;
        if (klen)
            memcpy(key, q->key, klen);
    }
    b = req_bucket(s, key, klen, lp_mono_ms());
    if (rate_take(s, b) == 0) {
        /* tallied, to be given back if the request stores nothing */
        if (req_tally(q, key, klen) == 0)
            q->taken = 1;
        return 1;
    }
    s->n.limited++;
    over_rate(b, klen, why, cap);
    return 0;
}

int lp_send_req_dlq(struct lp_send_req *q, const struct lp_dlq_rec *rec)
{
    size_t start = q->blob.len;

    if (req_room(q) < 0 || start >= 0x80000000u ||
        lp_dlq_encode_xadd(rec, q->s->c.dlq, &q->blob) < 0)
        return -1;
    /* a dead letter is written too: --rate counts it, under the
     * request's key (with --rate-key: the keyless bucket) */
    if (q->s->rate && (q->s->rkey_idx >= 0 || q->s->rkey_jq) &&
        req_tally(q, "", 0) < 0)
        return -1;
    q->at[q->n++] = (uint32_t)start | 0x80000000u;
    q->ndlq++;
    return 0;
}

uint64_t lp_send_req_count(const struct lp_send_req *q)
{
    return q->n;
}

int lp_send_req_key(struct lp_send_req *q, const char *key, size_t len)
{
    char *k = malloc(len + 1);

    if (k == NULL)
        return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    free(q->key);
    q->key = k;
    q->klen = len;
    return 0;
}

int lp_send_req_producer(struct lp_send_req *q, const char *name,
                         size_t len, const char *cursor, size_t clen)
{
    char *p = malloc(len + 1), *c = malloc(clen + 1);

    if (p == NULL || c == NULL) {
        free(p);
        free(c);
        return -1;
    }
    memcpy(p, name, len);
    p[len] = '\0';
    memcpy(c, cursor, clen);
    c[clen] = '\0';
    free(q->prod);
    free(q->cursor);
    q->prod = p;
    q->prodlen = len;
    q->cursor = c;
    q->curlen = clen;
    return 0;
}

/* q stored nothing: the tokens it took go back to their buckets (local
 * ones; --shared-rate's stay spent in Redis). */
static void req_refund(struct lp_send_req *q)
{
    struct lp_send *s = q->s;
    size_t nk, off = 0, klen;
    uint64_t count;
    int64_t now = lp_mono_ms();

    if (!q->taken || !s->rate || s->c.shared_rate)
        return;
    q->taken = 0;
    /* block: taken whole at submit (its tally, or its one key); reject,
     * dlq: each admitted event tallied under its key */
    nk = q->nkeys ? q->nkeys : s->c.on_limit == LP_SEND_ON_BLOCK ? 1 : 0;
    for (size_t i = 0; i < nk; i++) {
        const char *key = req_key_at(q, &off, &klen, &count);
        lp_bucket_give_n(s->rate, req_bucket(s, key, klen, now), count, now);
    }
}

void lp_send_req_abort(struct lp_send_req *q)
{
    if (q == NULL)
        return;
    if (!q->ended)
        req_refund(q);          /* never submitted, or refused at submit */
    req_recycle(q);
    lp_buf_free(&q->keys);
    free(q->at);
    free(q->key);
    free(q->prod);
    free(q->cursor);
    free(q);
}

/* Can q join the batch being filled now, without waiting for a slot of
 * the ring? (It must go alone, or the batch is full, and every slot is
 * in flight.) */
static int req_fits(const struct lp_send *s, const struct lp_send_req *q)
{
    if (s->walmode || s->count < LP_INFLIGHT || !lp_batch_busy(s->in))
        return 1;
    return !(s->want_dispatch || s->in->fixed || q->prod ||
             s->in->n + q->n > s->c.batch ||
             s->in->blob.len + q->blob.len > s->c.batch_bytes);
}

/* q's commands into the batch being filled: whole in one batch. */
static void req_take(struct lp_send_req *q)
{
    struct lp_send *s = q->s;

    /* the one being filled goes first when q does not fit in what is
     * left of it, or when q is of its own producer (a batch of its own:
     * its gate then says STORED for it alone) */
    if (s->in->n && (q->prod || s->in->fixed ||
                    s->in->n + q->n > s->c.batch ||
                    s->in->blob.len + q->blob.len > s->c.batch_bytes))
        dispatch(s);
    q->pending = q->n;
    s->cur_req = q;
    s->mid_line = 1;
    for (size_t k = 0; k < q->n; k++) {
        size_t off = q->at[k] & 0x7fffffffu,
               end = k + 1 < q->n ? (q->at[k + 1] & 0x7fffffffu)
                                  : q->blob.len,
               start = s->in->blob.len;
        int dlq = (q->at[k] & 0x80000000u) != 0;
        if (lp_buf_add(&s->in->blob, q->blob.p + off, end - off) < 0)
            lp_send_oom(s);
        if (!dlq)
            s->n.events++;
        add_command(s, start, 0, dlq ? LP_CMD_DLQ : LP_CMD_EVENT);
        if (q->prod) {
            /* every command at position 1 of the key's producer: the
             * request is one unit, stored once (from 0 to 1) */
            struct lp_cmd *e = &s->in->ev[s->in->n - 1];
            e->prod = lp_batch_prod(s, s->in, q->prod, q->prodlen,
                                    q->cursor, q->curlen);
            e->pos = 1;
            s->in->fixed = 1;
        }
    }
    s->mid_line = 0;
    s->cur_req = NULL;
    if (q->prod)
        s->want_dispatch = 1;
    /* q's commands are the batch's now; q is done()'s to end; its
     * buffer is the next request's (the larger kept, up to a batch) */
    req_recycle(q);
    if (s->want_dispatch || s->in->n >= s->c.batch ||
        s->in->blob.len >= s->c.batch_bytes) {
        s->want_dispatch = 0;
        dispatch(s);
    }
}

int lp_send_req_submit(struct lp_send_req *q, int64_t *retry_after_ms)
{
    struct lp_send *s = q->s;
    char err[LP_ERRLEN];

    *retry_after_ms = 0;
    if (q->n == 0) {
        req_over(q, LP_REQ_STORED);
        return LP_REQ_EMPTY;
    }
    if (s->rate && s->c.on_limit == LP_SEND_ON_BLOCK) {
        /* all its tokens or none: a request is taken whole or not (else
         * each event took its own: lp_send_req_admit) */
        int64_t wait = req_rate(s, q);
        if (wait != 0) {
            *retry_after_ms = wait;
            s->n.limited += q->nev;
            lp_send_req_abort(q);
            return LP_REQ_LIMITED;
        }
        q->taken = 1;
    }
    if (!s->wal && !lp_redis_connected(s->r)) {
        int64_t now = lp_mono_ms();
        int down = now < s->down_until;
        if (!down && lp_pipeline_connect(s, err) < 0) {
            s->down_until = now + lp_backoff_next(&s->backoff);
            down = 1;
        }
        if (down) {
            *retry_after_ms = s->down_until - now;
            lp_send_req_abort(q);
            return LP_REQ_UNAVAILABLE;
        }
    }
    if (lp_pipeline_backlogged(s)) {
        *retry_after_ms = 1000;
        lp_send_req_abort(q);
        return LP_REQ_BACKLOG;
    }
    if (s->serving && (s->park || !req_fits(s, q))) {
        /* the ring is full: q waits, whole, for a slot, rather than the
         * loop waiting for Redis (its tokens are taken: it is admitted) */
        q->next = NULL;
        if (s->park_tail)
            s->park_tail->next = q;
        else
            s->park = q;
        s->park_tail = q;
        return LP_REQ_QUEUED;
    }
    req_take(q);
    return LP_REQ_QUEUED;
}

/* The requests parked for a slot of the ring, in order, as far as they
 * go without waiting (block: waiting for slots, when stopping). */
static void unpark(struct lp_send *s, int block)
{
    char err[LP_ERRLEN];

    while (s->park) {
        struct lp_send_req *q = s->park;
        if (!req_fits(s, q)) {
            if (!block)
                return;
            if (lp_pipeline_pump(s, 1, err) < 0)
                lp_send_recover(s, err);
            continue;
        }
        s->park = q->next;
        if (s->park == NULL)
            s->park_tail = NULL;
        req_take(q);
    }
}

/* Serving without a WAL, Redis failed: the parked requests fail too
 * (nothing of them was sent). */
static void unpark_failed(struct lp_send *s, const char *why)
{
    while (s->park) {
        struct lp_send_req *q = s->park;
        s->park = q->next;
        if (s->park == NULL)
            s->park_tail = NULL;
        if (q->error[0] == '\0')
            snprintf(q->error, sizeof q->error, "%s", why);
        req_over(q, LP_REQ_FAILED);
    }
}

/*
 * Something failed: an I/O error (connection gone, replies in flight
 * lost) or an error reply (OOM, READONLY, LOADING, ...). With a WAL, what
 * is not acknowledged goes there. Without, collect the replies still
 * coming, keep what was not acknowledged, and send it again in order once
 * Redis answers, for at most --timeout.
 */
void lp_send_recover(struct lp_send *s, const char *why)
{
    char err[LP_ERRLEN], msg[LP_ERRLEN + 64], d[32];
    int64_t now = lp_mono_ms(), wait;

    if (s->serving && !s->wal) {
        serve_failed(s, why);
        return;
    }
    s->n.errors++;
    if (s->walmode) {
        lp_spool_replay_failed(s, why);
        /* --shards in a cluster: a shard of the lane that another master
         * holds now (a MOVED) gets a lane there, for the next re-send */
        lanes_split(s);
        return;
    }
    if (s->wal && !s->last_permanent) {
        lp_spool_spill(s, why);
        return;
    }
    snprintf(msg, sizeof msg, "%s", why);
    lp_format_duration(s->c.timeout, d, sizeof d);
    if (s->fail_since == 0)
        s->fail_since = now;
    for (;;) {
        int behind = 0;
        lp_pipeline_collect(s);
        if (s->last_permanent && lp_redis_connected(s->r))
            lp_spool_give_up(s, msg, LP_EX_CONFIG);
        for (int i = 0; i < s->count; i++)
            lp_pipeline_compact(s, &s->ring[(s->head + i) % LP_INFLIGHT],
                                &behind);
        while (s->count > 0 && s->ring[s->head].n == 0)
            lp_pipeline_release(s);
        /* --shards in a cluster: shards of this lane that went to another
         * master take their batches to a connection of their own */
        lanes_split(s);
        if (s->count == 0) {
            s->fail_since = 0;
            s->n_ahead = 0;
            return;
        }

        now = lp_mono_ms();
        if (!s->warned && s->c.timeout > 0) {
            say(s, LP_NOTICE_WARN, "%s; retrying for up to %s", msg, d);
            s->warned = 1;
        }
        if (now - s->fail_since >= s->c.timeout) {
            char m2[LP_ERRLEN + 128];
            snprintf(m2, sizeof m2, "giving up (--timeout %s): %s", d, msg);
            lp_spool_give_up(s, m2, LP_EX_TEMPFAIL);
        }
        if (lp_send_stopping(s)) {
            char m2[LP_ERRLEN + 64];
            snprintf(m2, sizeof m2, "interrupted while Redis fails: %s", msg);
            lp_spool_give_up(s, m2, LP_EX_TEMPFAIL);
        }
        wait = lp_backoff_next(&s->backoff);
        if (wait > s->c.timeout - (now - s->fail_since))
            wait = s->c.timeout - (now - s->fail_since);
        poll(NULL, 0, (int)wait);

        s->last_permanent = 0;
        if (!lp_redis_connected(s->r)) {
            int rc = lp_redis_connect(s->r, err);
            if (rc == LP_REDIS_EAUTH)
                lp_spool_give_up(s, err, LP_EX_CONFIG);
            if (rc < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                continue;
            }
            s->n.reconnects++;
            if (lp_pipeline_probe(s, err) < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                continue;       /* refused: for good, given up above */
            }
        }
        /* what of ours did Redis store? the rest gets new positions */
        if (lp_pipeline_resolve(s, err) < 0) {
            snprintf(msg, sizeof msg, "%s", err);
            continue;
        }
        while (s->count > 0 && s->ring[s->head].n == 0)
            lp_pipeline_release(s);
        if (s->count == 0) {
            s->fail_since = 0;
            s->n_ahead = 0;
            return;
        }
        int ok = 1;
        for (int i = 0; i < s->count && ok; i++)
            if (lp_pipeline_send(s, &s->ring[(s->head + i) % LP_INFLIGHT],
                                 err) < 0) {
                snprintf(msg, sizeof msg, "%s", err);
                ok = 0;
            }
        if (ok)
            return;             /* replies are checked by the main loop */
    }
}

/* ---- sharded streams ---------------------------------------------------- */

/*
 * Sharded streams (--shards N, N > 1; issue 17 step 2).
 *
 * The events go to N stream keys, shard i named lp_shard_name(S, i, N)
 * ("S:{T}"), each with its own keys named from it (S:{T}:producers,
 * S:{T}:send-hold) and its own DLQ (DLQBASE:{T}: the shard's slot). The
 * count is recorded at start in S:shards, and in each shard's marker
 * S:{T}:shards (lp_shards_record: another count there is changed to
 * ours when every shard is drained, else the run ends, 78); the gate of
 * each batch checks its shard's marker (lp_pipeline.c), so that a run
 * still going when another changed the count ends (78) at its next
 * batch, not stored.
 *
 * Which shard: a function of the command alone, so that a run that reads
 * the same input again sends each command to the same shard.
 *   - by default, positions round-robin: the command at position p
 *     goes to shard (p - 1) % N, whatever --batch, --batch-bytes or
 *     --linger cut (a resumed run with another --batch sends each
 *     command where the first run did: each shard's input batch fills
 *     with every N-th command);
 *   - --shard-key JQ: FNV-1a of the program's output (a string's text,
 *     anything else its JSON) mod N: one key, one shard, in order. A dead
 *     letter goes by its position, as by default.
 *
 * Positions stay the run's producer's, one counter over all shards,
 * given as each command is added (in input order), so that they do not
 * depend on which shard's batch fills first. Each shard's field of the
 * producer holds the position of the last command stored *on that
 * shard*: the gate of a batch for shard i moves it from the last
 * position of the batch before it on shard i (lp_shard.last when the
 * batch is numbered: lp_batch.sfrom) to the batch's last. So on each
 * shard the field only moves over stored batches, in order, and all that
 * was said of one stream holds per shard: after a lost reply a batch is
 * stored when its shard's field is at or past its last position
 * (was_stored reads that shard's field); a resumed run (--producer P
 * --position 1 on the same input) passes over, shard by shard, every
 * command at or below that shard's field (lp_shard.skip).
 *
 * At start every shard's field is read: a --producer run goes on after
 * the highest, each shard's gate from its own. Each shard has its own
 * input batch (batches never mix shards: N x --batch events in memory at
 * most), cut by --batch, --batch-bytes and --linger as one stream's is.
 *
 * Connections: standalone, one, whose ring carries the batches of every
 * shard (each batch's gate names its shard's keys). In a Redis Cluster,
 * one connection (a lane: lp_lane) a master, shared by the shards the
 * slot map puts there (key_node), routed by one of their names
 * (redis_new_key), each lane with its own ring: batches for shards on
 * different masters are in flight at once, one connection re-routed per
 * batch never. A MOVED closes only its lane's connection (an ASK is
 * followed in place by lp_redis, the lane's batch sent whole there); the
 * recovery then reads the map again (lanes_split): shards of the lane
 * now on another master take their batches, in order, to a new lane
 * there, and the engine's recovery by positions sends them again.
 *
 * --wal: each record is an XADD to its shard with its producer and
 * position; the re-send (lp_spool_replay) makes one shard's batch at a
 * time, gated by that shard's field as Redis holds it, passing over the
 * records at or below it. So a shard's records must be in the WAL in the
 * order of their positions: in a cluster a failure on one lane spills
 * the batches in flight on every lane (lp_spool_spill), each lane's in
 * order, before any batch read later; and the re-send keeps one batch in
 * flight over all lanes (lp_lanes_inflight), on the lane of its shard
 * (the next record, held, chooses it), so that the WAL is acknowledged
 * in order. A run begun with --wal while Redis is away checks the count
 * at its first connection (lp_shards_verify, shards_start).
 */

void lp_shard_keys(struct lp_send *s, int i)
{
    struct lp_shard *h;

    if (s->sh == NULL || i < 0 || i == s->kshard)
        return;
    h = &s->sh[i];
    s->c.stream = h->name;
    s->c.dlq = s->dlq0 ? h->dlq : NULL;
    strcpy(s->pkey, h->pkey);
    strcpy(s->shold, h->shold);
    strcpy(s->dhold, h->dhold);
    s->kshard = i;
}

void lp_lane_use(struct lp_send *s, int l)
{
    struct lp_lane *o, *n;

    if (s->lanes == NULL || l == s->cur_lane)
        return;
    o = &s->lanes[s->cur_lane];
    n = &s->lanes[l];
    o->r = s->r;
    o->head = s->head;
    o->count = s->count;
    o->pcache = s->pcache;
    o->npcache = s->npcache;
    o->capcache = s->capcache;
    o->fail_since = s->fail_since;
    o->backoff = s->backoff;
    o->warned = s->warned;
    o->lose_now = s->lose_now;
    o->pruned = s->pruned;
    s->r = n->r;
    s->ring = n->ring;
    s->head = n->head;
    s->count = n->count;
    s->pcache = n->pcache;
    s->npcache = n->npcache;
    s->capcache = n->capcache;
    s->fail_since = n->fail_since;
    s->backoff = n->backoff;
    s->warned = n->warned;
    s->lose_now = n->lose_now;
    s->pruned = n->pruned;
    s->cur_lane = l;
}

int lp_lanes_inflight(struct lp_send *s)
{
    int n = 0, busy = -1;

    if (s->lanes == NULL)
        return s->count;
    for (int l = 0; l < s->nlanes; l++) {
        /* (the engine's lane: its state is the engine's, not saved) */
        int c = l == s->cur_lane ? s->count : s->lanes[l].count;
        if (c > 0 && busy < 0)
            busy = l;
        n += c;
    }
    if (busy >= 0)
        lp_lane_use(s, busy);
    return n;
}

/* The input batch of shard i becomes the one being filled. */
static void shard_in(struct lp_send *s, int i)
{
    if (i == s->cur_in)
        return;
    s->in = &s->sh[i].in;
    s->prefix = s->sh[i].prefix;
    s->cur_in = i;
}

/* The shard of the command added next, by its position alone (round-
 * robin), never by how batches are cut: a run fed the same input with
 * another --batch must send each command where the first did. */
static unsigned shard_by_pos(const struct lp_send *s)
{
    /* --journal: the entry's position */
    uint64_t p = s->js ? s->jpos : s->next_pos;

    return (unsigned)((p - 1) % s->nsh);
}

/* The shard of an event: by --shard-key, else by its position. */
static unsigned shard_of(struct lp_send *s, const char *txt, size_t n,
                         const struct lp_jevent *ev)
{
    char key[1024], err[LP_ERRLEN];
    uint64_t h = 0xcbf29ce484222325ULL;
    long len = 0;

    if (s->fl && !s->fkmode)
        return s->fshard;       /* --follow: its file's */
    if (s->skey_idx >= 0 && ev) {
        /* .name: the scanner found it (a string's text, else its JSON
         * as written); none, or null: the empty key */
        const struct lp_jval *v = &ev->val[s->skey_idx];
        if (v->type == LP_JSTRING) {
            if ((len = lp_json_unescape(txt, v, key, sizeof key)) < 0) {
                len = (long)(v->len - 2 < sizeof key ? v->len - 2
                                                     : sizeof key);
                memcpy(key, txt + v->off + 1, (size_t)len);
            }
        } else if (v->type != LP_JNONE && v->type != LP_JNULL) {
            len = (long)(v->len < sizeof key ? v->len : sizeof key);
            memcpy(key, txt + v->off, (size_t)len);
        }
    } else if (s->skey_jq == NULL) {
        return shard_by_pos(s);
    } else {
        len = lp_jq_string(s->skey_jq, txt, n, key, sizeof key, err);
    }
    if (len < 0) {
        /* as an event without a key; said (the first few), counted: a
         * failed run (lp_jq_status at the end) */
        if (lp_jq_name_it(s->skey_jq) && s->c.verbosity >= 0)
            say(s, LP_NOTICE_ERROR, "--shard-key: %s (such events go to "
                "the shard of events without a key)", err);
        len = 0;
    }
    for (long i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    s->key_hash = h;            /* its shard of the count before too */
    s->key_hashed = 1;
    return (unsigned)(h % s->nsh);
}

int lp_shard_of_key(struct lp_send *s, const char *key, size_t len,
                    int *dlq)
{
    /* a WAL's records come in runs of one shard: the last one first */
    int i = s->kshard >= 0 ? s->kshard : 0;

    for (unsigned k = 0; k < s->nsh; k++, i = (i + 1) % (int)s->nsh) {
        const struct lp_shard *h = &s->sh[i];
        if (strlen(h->name) == len && memcmp(h->name, key, len) == 0) {
            *dlq = 0;
            return i;
        }
        if (s->dlq0 && strlen(h->dlq) == len &&
            memcmp(h->dlq, key, len) == 0) {
            *dlq = 1;
            return i;
        }
    }
    return -1;
}

int lp_shards_refresh(struct lp_send *s, char *err)
{
    for (unsigned i = 0; i < s->nsh; i++) {
        uint64_t c;
        lp_lane_use(s, s->sh[i].lane);
        /* in a cluster, a lane the WAL's records did not need may be
         * down still: asked again later */
        if (lp_pipeline_connect(s, err) < 0)
            return -1;
        lp_shard_keys(s, (int)i);
        if (lp_pipeline_committed(s, s->producer, strlen(s->producer), &c,
                                  err) < 0)
            return -1;
        s->sh[i].last = c;
        /* --position: what the shard holds is passed over (read here
         * first when the run began with Redis away); what is still in
         * an input batch was numbered after all that went before it on
         * its shard, so nothing of this run's is passed over wrongly */
        if (s->c.position && c > s->sh[i].skip)
            s->sh[i].skip = c;
    }
    /* the count before a change, known since (a run begun with Redis
     * away): its fields too */
    return lp_shards_was_load(s, err);
}

/* Hands every shard's input batch that holds something to Redis. */
static void dispatch_all(struct lp_send *s)
{
    if (s->sh == NULL) {
        dispatch(s);
        return;
    }
    for (unsigned i = 0; i < s->nsh; i++)
        if (lp_batch_busy(&s->sh[i].in)) {
            shard_in(s, (int)i);
            dispatch(s);
        }
}

static int add_xadd_prefix(struct lp_buf *b, const char *stream)
{
    const char *xadd[4] = { "XADD", stream, "*", "data" };

    if (lp_resp_head(b, 5) < 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (lp_resp_bulk(b, xadd[i], strlen(xadd[i])) < 0)
            return -1;
    return 0;
}

/* --shards in a cluster: a new lane for shard i, on master node (""
 * when not known), its connection routed by the shard's name. Its index,
 * or -1 with err. */
static int lane_new(struct lp_send *s, int i, const char *node, char *err)
{
    int l = s->nlanes;
    struct lp_lane *ln = &s->lanes[l];

    for (int k = 0; k < LP_INFLIGHT; k++) {
        if ((ln->ring[k].ev = calloc(s->c.batch,
                                     sizeof *ln->ring[k].ev)) == NULL) {
            snprintf(err, LP_ERRLEN, "out of memory");
            return -1;
        }
        ln->ring[k].cap = s->c.batch;
    }
    snprintf(ln->key, sizeof ln->key, "%s", s->sh[i].name);
    snprintf(ln->node, sizeof ln->node, "%s", node);
    /* the connection routes by ln->key as it is at each connect */
    if ((ln->r = s->c.redis_new_key(s->c.ctx, ln->key, err)) == NULL)
        return -1;
    lp_redis_set_timeout(ln->r, redis_timeout(s));
    ln->head = ln->count = 0;
    s->nlanes++;
    return l;
}

/*
 * --shards in a cluster, a failure on the current lane (a MOVED or ASK
 * closes its connection): the shards of a lane are on one master as far
 * as the slot map said; after a resharding some may not be. The map is
 * read again; the shards of the lane on another master than its first
 * shard's go to a new lane, one a master, with their batches, in order
 * (a shard's batches are all in its lane's ring), which is connected and
 * sent at once (resolved by their positions, as after any reconnect).
 * Returns 1 when it moved any.
 */
static int lanes_split(struct lp_send *s)
{
    char err[LP_ERRLEN], (*node)[sizeof s->lanes[0].node];
    int L = s->cur_lane, first = -1, moved = 0, fresh = 1;

    if (s->lanes == NULL || s->c.key_node == NULL)
        return 0;
    for (unsigned i = 0; i < s->nsh; i++)
        if (s->sh[i].lane == L && first < 0)
            first = (int)i;
        else if (s->sh[i].lane == L)
            moved = 1;          /* at least two: worth asking */
    if (!moved)
        return 0;
    moved = 0;
    if ((node = calloc(s->nsh, sizeof *node)) == NULL)
        lp_send_oom(s);
    for (unsigned i = 0; i < s->nsh; i++)
        if (s->sh[i].lane == L) {
            if (s->c.key_node(s->c.ctx, s->sh[i].name, fresh, node[i],
                              sizeof node[i]) < 0)
                node[i][0] = '\0';     /* not known: it stays */
            fresh = 0;
        }
    /* the lane stays on its master, routed by a shard still there; when
     * none is, it follows its first shard */
    {
        int stay = -1;
        for (unsigned i = 0; i < s->nsh && stay < 0; i++)
            if (s->sh[i].lane == L &&
                strcmp(node[i], s->lanes[L].node) == 0)
                stay = (int)i;
        if (stay < 0 && node[first][0])
            stay = first;
        if (stay >= 0) {
            snprintf(s->lanes[L].node, sizeof s->lanes[L].node, "%s",
                     node[stay]);
            snprintf(s->lanes[L].key, sizeof s->lanes[L].key, "%s",
                     s->sh[stay].name);
        }
    }
    for (unsigned i = 0; i < s->nsh; i++) {
        int l = -1;
        if (s->sh[i].lane != L || node[i][0] == '\0' ||
            strcmp(node[i], s->lanes[L].node) == 0)
            continue;
        /* a lane made here for that master (room in its ring: the
         * batches of this lane's, LP_INFLIGHT at most), else a new one */
        for (unsigned j = 0; j < i && l < 0; j++)
            if (node[j][0] && s->sh[j].lane != L &&
                strcmp(node[j], node[i]) == 0)
                l = s->sh[j].lane;
        if (l < 0 && (l = lane_new(s, (int)i, node[i], err)) < 0) {
            free(node);
            say(s, LP_NOTICE_ERROR, "%s", err);
            lp_send_end_run(s, LP_EX_CONFIG);
        }
        s->sh[i].lane = l;
        moved = 1;
        if (s->c.verbosity >= 1)
            say(s, LP_NOTICE_INFO, "shard %s is on %s now: a connection "
                "of its own", s->sh[i].name, node[i]);
    }
    free(node);
    if (!moved)
        return 0;
    {
        /* the ring: the lane's own batches stay, in order; the others go
         * to their shards' lanes, in order; the slots' storage follows */
        struct lp_batch keep[LP_INFLIGHT], pool[2 * LP_INFLIGHT];
        int nk = 0, np = 0;
        for (int k = 0; k < LP_INFLIGHT; k++) {
            int in = (k - s->head + LP_INFLIGHT) % LP_INFLIGHT < s->count;
            if (!in)
                pool[np++] = s->ring[k];
        }
        for (int k = 0; k < s->count; k++) {
            struct lp_batch *b = &s->ring[(s->head + k) % LP_INFLIGHT];
            struct lp_lane *to;
            if (b->shard < 0 || s->sh[b->shard].lane == L) {
                keep[nk++] = *b;
                continue;
            }
            to = &s->lanes[s->sh[b->shard].lane];
            pool[np++] = to->ring[(to->head + to->count) % LP_INFLIGHT];
            to->ring[(to->head + to->count) % LP_INFLIGHT] = *b;
            to->count++;
        }
        for (int k = 0; k < LP_INFLIGHT; k++)
            s->ring[k] = k < nk ? keep[k] : pool[k - nk];
        s->head = 0;
        s->count = nk;
    }
    /* the new lanes' batches go now, on their own connections */
    for (int l = 0; l < s->nlanes; l++) {
        if (l == L || s->lanes[l].count == 0 ||
            lp_redis_connected(s->lanes[l].r))
            continue;
        lp_lane_use(s, l);
        if (lp_pipeline_connect(s, err) < 0 && s->c.verbosity >= 1)
            say(s, LP_NOTICE_INFO, "%s (tried again with its next batch)",
                err);
        lp_lane_use(s, L);
    }
    return 1;
}

/* --shards: the shards' names, batches and connections (not connected
 * yet). 0, or the exit status with err. */
static int shards_init(struct lp_send *s, char *err)
{
    unsigned n = (unsigned)s->c.shards;
    if (lp_shards_check(s->c.stream, n, err) < 0)
        return LP_EX_CONFIG;
    if (s->c.dlq && strpbrk(s->c.dlq, "{}")) {
        snprintf(err, LP_ERRLEN, "--dlq %s: with --shards, a name without "
                 "braces (each shard's DLQ is named DLQ:{TAG}, in its "
                 "shard's slot)", s->c.dlq);
        return LP_EX_CONFIG;
    }
    s->skey_idx = -1;
    if (s->c.shard_key && plain_member(s->c.shard_key)) {
        if ((s->skey_idx = lp_jkeys_add(&s->rules.keys,
                                        s->c.shard_key + 1)) < 0) {
            snprintf(err, LP_ERRLEN, "--shard-key: too many members "
                     "asked for");
            return LP_EX_USAGE;
        }
    } else if (s->c.shard_key &&
               lp_jq_new(s->c.shard_key, &s->skey_jq, err) < 0) {
        char e2[LP_ERRLEN];
        snprintf(e2, sizeof e2, "--shard-key: %s", err);
        snprintf(err, LP_ERRLEN, "%s", e2);
        return LP_EX_CONFIG;
    }
    s->stream0 = s->c.stream;
    s->dlq0 = s->c.dlq;
    if ((s->sh = calloc(n, sizeof *s->sh)) == NULL)
        goto oom;
    s->nsh = n;
    for (unsigned i = 0; i < n; i++) {
        struct lp_shard *h = &s->sh[i];
        if (lp_shard_name(s->stream0, i, n, h->name, sizeof h->name,
                          err) < 0 ||
            (s->dlq0 && lp_shard_name(s->dlq0, i, n, h->dlq, sizeof h->dlq,
                                      err) < 0) ||
            lp_key_aux(s->c.cluster, h->name, LP_PRODUCERS_SUFFIX, h->pkey,
                       sizeof h->pkey, err) < 0 ||
            lp_key_aux(s->c.cluster, h->name, ":send-hold", h->shold,
                       sizeof h->shold, err) < 0 ||
            lp_key_aux(s->c.cluster, s->dlq0 ? h->dlq : "", ":send-hold",
                       h->dhold, sizeof h->dhold, err) < 0)
            return LP_EX_CONFIG;
        if (add_xadd_prefix(&h->prefix, h->name) < 0 ||
            (h->in.ev = calloc(s->c.batch, sizeof *h->in.ev)) == NULL)
            goto oom;
        h->in.cap = s->c.batch;
        h->in.shard = (int)i;
    }
    s->kshard = -1;
    s->cur_in = -1;
    if (s->c.follow.n && s->c.shard_key) {
        s->fkmode = 1;
        if ((s->ftouch = calloc(n, sizeof *s->ftouch)) == NULL ||
            (s->ftouched = calloc(n, 1)) == NULL)
            goto oom;
    }
    lp_buf_free(&s->prefix);    /* each shard has its own */
    shard_in(s, 0);
    lp_shard_keys(s, 0);
    if (s->c.cluster) {
        /* a connection a shard, routed to its slot's master */
        if (s->c.redis_new_key == NULL) {
            snprintf(err, LP_ERRLEN, "--shards in a Redis Cluster: not "
                     "here");
            return LP_EX_CONFIG;
        }
        /* room for a lane a shard: lanes_split may make them (their
         * rings as they are made) */
        if ((s->lanes = calloc(n, sizeof *s->lanes)) == NULL ||
            (s->pfd = calloc(n + 3, sizeof *s->pfd)) == NULL)
            goto oom;
        s->nlanes = 0;
        for (unsigned i = 0; i < n; i++) {
            /* the shards on one master share its lane */
            char node[sizeof s->lanes[0].node] = "";
            int l = -1;
            if (s->c.key_node &&
                s->c.key_node(s->c.ctx, s->sh[i].name, 0, node,
                              sizeof node) == 0)
                for (int k = 0; k < s->nlanes && l < 0; k++)
                    if (strcmp(s->lanes[k].node, node) == 0)
                        l = k;
            if (l < 0 && (l = lane_new(s, (int)i, node, err)) < 0)
                return LP_EX_CONFIG;
            s->sh[i].lane = l;
        }
        /* lane 0 is the engine's now; the stream's own connection is
         * not used */
        lp_redis_free(s->r);
        s->r = s->lanes[0].r;
        s->ring = s->lanes[0].ring;
        s->cur_lane = 0;
    }
    return 0;
oom:
    snprintf(err, LP_ERRLEN, "out of memory");
    return LP_EX_SOFTWARE;
}

/* Connects the current lane, retrying for --timeout; a refusal ends the
 * run (78), a Redis away for --timeout too (75). */
/* One failed try of a read at the start of a run that is retried for
 * --timeout (err says why): a refusal of Redis (last_permanent, when
 * refusal_ends) ends the run (78), so do --timeout past since and a stop
 * (75); otherwise it waits bo's next step. */
static void start_retry(struct lp_send *s, int64_t since,
                        struct lp_backoff *bo, int refusal_ends,
                        const char *err)
{
    char d[32];

    if (refusal_ends && s->last_permanent) {
        say(s, LP_NOTICE_ERROR, "%s", err);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    lp_format_duration(s->c.timeout, d, sizeof d);
    if (lp_mono_ms() - since >= s->c.timeout || lp_send_stopping(s)) {
        say(s, LP_NOTICE_ERROR, "giving up (--timeout %s): %s", d, err);
        lp_send_end_run(s, LP_EX_TEMPFAIL);
    }
    /* said once (a slot held half moved waits here, silent else); the
     * first batch stored says Redis answers again */
    if (!s->warned) {
        say(s, LP_NOTICE_WARN, "%s; retrying for up to %s", err, d);
        s->warned = 1;
    }
    poll(NULL, 0, (int)lp_backoff_next(bo));
}

/* Connects the current lane at the start, for --timeout. In a cluster
 * its shards were put on it by the slot map read before: one that has
 * moved since (a resharding, or a slot held half moved that ended) makes
 * the probe of its keys fail with MOVED on the lane's connection, again
 * and again; so each failed try reads the map again and gives such a
 * shard a lane of its own (lanes_split), as a failure later in the run
 * does (lp_send_recover). The current lane stays the caller's. */
static void shards_connect(struct lp_send *s)
{
    char err[LP_ERRLEN];
    int64_t since = lp_mono_ms();

    lp_backoff_reset(&s->backoff);
    while (lp_pipeline_connect(s, err) < 0) {
        start_retry(s, since, &s->backoff, 1, err);
        lanes_split(s);
    }
    lp_backoff_reset(&s->backoff);
}

/* The lane of shard i, connected: it may change while connecting
 * (shards_connect splits a lane whose shards are not on one master). */
static void shard_connect(struct lp_send *s, unsigned i)
{
    do {
        lp_lane_use(s, s->sh[i].lane);
        shards_connect(s);
    } while (s->lanes && s->sh[i].lane != s->cur_lane);
}

/* The count refused (another recorded, a stream holding its own
 * entries, the credentials), said in err: what was read goes to the WAL
 * (with --wal), which keeps it, and the run ends (78). */
static _Noreturn void shards_refused(struct lp_send *s, const char *err,
                                     unsigned now)
{
    say(s, LP_NOTICE_ERROR, "%s", err);
    if (s->wal && s->walmode) {
        for (unsigned i = 0; i < s->nsh; i++)
            if (lp_batch_busy(&s->sh[i].in))
                lp_spool_batch(s, &s->sh[i].in);
        lp_spool_sync(s);
        if (now > s->nsh)
            /* the shards of nsh are shards of now too: a flush with now
             * sends each record to the shard it names, passing over
             * what the fields of the count before say is stored */
            say(s, LP_NOTICE_ERROR, "the events stay in the WAL %s, each "
                "for its shard of --shards %u, which is a shard of the %u "
                "Redis records: logpipe-send --shards %u --wal %s "
                "--flush-wal (the other options as here) sends them now",
                s->c.wal, s->nsh, now, now, s->c.wal);
        else
            say(s, LP_NOTICE_ERROR, "the events stay in the WAL %s, each "
                "for its shard of --shards %u: a run with --shards %u "
                "sends them (--flush-wal) once Redis records that count",
                s->c.wal, s->nsh, s->nsh);
    }
    lp_send_end_run(s, LP_EX_CONFIG);
}

int lp_shards_verify(struct lp_send *s, char *err)
{
    struct lp_redis *r;
    int rc;
    unsigned now = 0;
    /* each shard's marker is in its slot: a connection a master */
    struct lp_shards_net net = {
        .new_key = s->c.cluster ? s->c.redis_new_key : NULL,
        .key_node = s->c.key_node, .ctx = s->c.ctx,
        .timeout = redis_timeout(s),
    };

    if (s->shards_checked)
        return 0;
    /* a connection of its own: the count's key is in the stream's slot,
     * not a shard's */
    if ((r = s->c.redis_new(s->c.ctx, err)) == NULL)
        shards_refused(s, err, 0);
    lp_redis_set_timeout(r, redis_timeout(s));
    rc = lp_redis_connect(r, err);
    if (rc == 0)
        rc = lp_shards_record(r, s->c.cluster, s->stream0, s->nsh, &net,
                              err);
    if (rc == 0 || rc == 1) {
        /* the count before the last change: its shards' fields are read
         * at start too (was_fields) */
        char e2[LP_ERRLEN];
        unsigned w = 0;
        int rc2 = lp_shards_was(r, s->c.cluster, s->stream0, &w, e2);
        if (rc2 < 0) {
            if (rc == 1)        /* the change is said all the same */
                say(s, LP_NOTICE_WARN, "%s", err);
            snprintf(err, LP_ERRLEN, "%s", e2);
            rc = rc2;           /* checked again at the next try */
        } else {
            unsigned g = 0;
            /* 1: the stream's own key, before the first --shards */
            s->was_n = w >= 1 && w != s->nsh ? w : 0;
            /* a second change forgot the count before (said by
             * shards_start to a resume that may store its events again);
             * an error here: nothing said */
            if (s->was_n &&
                lp_shards_gone(r, s->c.cluster, s->stream0, &g, e2) == 0)
                s->gone_n = g >= 1 && g != w ? g : 0;
        }
    }
    if (rc == LP_SHARDS_EBAD) {
        /* the count Redis records, for the way to send a WAL on */
        char e2[LP_ERRLEN];
        if (lp_shards_read(r, s->c.cluster, s->stream0, &now, e2) != 0)
            now = 0;
    }
    lp_redis_free(r);
    if (rc == 1)                /* this run changed the count: said */
        say(s, LP_NOTICE_WARN, "%s", err);
    if (rc == LP_REDIS_EAUTH || rc == LP_SHARDS_EBAD)
        shards_refused(s, err, now);
    if (rc < 0)
        return -1;
    s->shards_checked = 1;
    return 0;
}

/*
 * After a change of the count N -> M (one step of history: S:shards:was,
 * lp_shards_was), a run of M reads its producer's fields on the shards of
 * N too: what a run of N stored there is stored, and is passed over.
 *   - stdin --producer: positions go on after the highest field over
 *     the shards of both counts; with --position a command is passed over
 *     when its position is at or below the field of its new shard or of
 *     its old one (lp_cmd.wshard: by position (p - 1) mod N, or
 *     --shard-key's hash mod N, as the run of N chose it): exact.
 *   - --journal: the same, the run going on after the lowest field over
 *     both counts' shards (every entry at or below it is stored on its
 *     old shard or its new), the new shards without a field marked there.
 *   - --follow: a file's field is on its shard alone; its cursor is the
 *     highest over its fields on both counts' shards, its position (the
 *     gate's) the field on its shard of M (0: none yet, it starts there).
 *     --follow --shard-key after a change is refused (78) when old
 *     fields of ours are there: "the lowest of its shards" has no exact
 *     meaning across two counts.
 * A shard of N with the name of a shard of M (names are the smallest tag
 * in a range of slots, ranges can share one) had its fields of N set
 * aside by the change (LP_SHARDS_PRODUCERS_WAS): read there, they never
 * mix with M's. A second change M -> K keeps only M.
 */

/* Shard j of the count before, was_n, of base (the stream, or the DLQ's
 * base): a count before of 1 is the stream's own key, which senders
 * without --shards wrote before the first --shards (lp_shards_record
 * records 1 then when they left positions there), its DLQ the one such a
 * sender names. Length, or -1 with err. */
static int was_name(struct lp_send *s, const char *base, unsigned j,
                    char *out, size_t cap, char *err)
{
    if (s->was_n == 1) {
        int n = snprintf(out, cap, "%s", base);
        if (n < 0 || (size_t)n >= cap) {
            snprintf(err, LP_ERRLEN, "%.200s: a name too long", base);
            return -1;
        }
        return n;
    }
    return lp_shard_name(base, j, s->was_n, out, cap, err);
}

/* A connection to shard j of was_n's slot (shard's name in name, its
 * producers hash in pkey). NULL with err. */
static struct lp_redis *was_conn(struct lp_send *s, unsigned j, char *name,
                                 size_t ncap, char *pkey, size_t pcap,
                                 char *err)
{
    struct lp_redis *r;

    unsigned i;

    if (was_name(s, s->stream0, j, name, ncap, err) < 0)
        return NULL;
    /* a shard of both counts: the old fields were set aside (lp_shards.h
     * LP_SHARDS_PRODUCERS_WAS) */
    for (i = 0; i < s->nsh && strcmp(s->sh[i].name, name) != 0; i++)
        ;
    if (lp_key_aux(s->c.cluster, name, i < s->nsh ? LP_SHARDS_PRODUCERS_WAS
                                                  : ":producers",
                   pkey, pcap, err) < 0)
        return NULL;
    r = s->c.cluster && s->c.redis_new_key
        ? s->c.redis_new_key(s->c.ctx, name, err)
        : s->c.redis_new(s->c.ctx, err);
    if (r == NULL)
        return NULL;
    lp_redis_set_timeout(r, redis_timeout(s));
    if (lp_redis_connect(r, err) < 0) {
        lp_redis_free(r);
        return NULL;
    }
    return r;
}

/* Producer name's field on every shard of was_n: its position into
 * pos[j], its cursor into cur[j] (NULL: not wanted; empty: no field).
 * 0, or -1 with err. */
static int was_fields(struct lp_send *s, const char *pname, uint64_t *pos,
                      struct lp_buf *cur, char *err)
{
    char name[1100], pkey[1100];

    for (unsigned j = 0; j < s->was_n; j++) {
        struct lp_redis *r;
        struct lp_reply *rep;
        if ((r = was_conn(s, j, name, sizeof name, pkey, sizeof pkey,
                          err)) == NULL)
            return -1;
        rep = lp_redis_cmd(r, err, "HGET", pkey, pname, (char *)NULL);
        if (rep == NULL) {
            lp_redis_free(r);
            return -1;
        }
        pos[j] = 0;
        if (cur)
            cur[j].len = 0;
        if (lp_reply_type(rep) == LP_REPLY_ERROR) {
            char t[LP_ERRLEN - 100];
            snprintf(err, LP_ERRLEN, "HGET %s: %s", pkey,
                     lp_reply_text(rep, t, sizeof t));
            s->last_permanent |= lp_reply_error_class(rep) >= LP_RERR_KEY;
            lp_reply_free(rep);
            lp_redis_free(r);
            return -1;
        }
        if (lp_reply_type(rep) == LP_REPLY_STRING) {
            size_t n;
            const char *v = lp_reply_str(rep, &n);
            struct lp_field fv;
            lp_field_parse(v, n, &fv);
            pos[j] = fv.pos;
            if (cur && lp_buf_add(&cur[j], fv.cursor ? fv.cursor : "",
                                  fv.cursor ? fv.clen : 0) < 0)
                lp_send_oom(s);
        }
        lp_reply_free(rep);
        lp_redis_free(r);
    }
    return 0;
}

int lp_shards_was_load(struct lp_send *s, char *err)
{
    uint64_t *w;

    if (s->was_n == 0 || s->was_skip)
        return 0;
    if ((w = calloc(s->was_n, sizeof *w)) == NULL)
        lp_send_oom(s);
    if (was_fields(s, s->producer, w, NULL, err) < 0) {
        free(w);
        return -1;
    }
    s->was_skip = w;
    if (s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "--shards %u: the fields of producer %s on "
            "the %u shards of the count before are read: what they hold "
            "is passed over", s->nsh, s->producer, s->was_n);
    return 0;
}

int lp_was_stored_of(struct lp_send *s, const uint64_t *skip,
                     const char *pname, uint64_t pos, unsigned wshard,
                     int rr)
{
    uint64_t lo = UINT64_MAX, hi = 0;

    if (skip == NULL || s->was_n == 0)
        return 0;
    if (wshard == LP_WSHARD_UNKNOWN && rr)
        wshard = (unsigned)((pos - 1) % s->was_n);
    if (wshard < s->was_n)
        return pos <= skip[wshard];
    for (unsigned j = 0; j < s->was_n; j++) {
        if (skip[j] < lo)
            lo = skip[j];
        if (skip[j] > hi)
            hi = skip[j];
    }
    if (pos <= lo)
        return 1;
    if (pos > hi)
        return 0;
    if (s->n_was_unsure++ == 0)
        say(s, LP_NOTICE_WARN, "--shards %u: position %" PRIu64 " of "
            "producer %s may be stored on a shard of the count before "
            "(%u): its --shard-key's shard of %u was not known when it was "
            "read (Redis away) and is not kept; sent, maybe twice (so "
            "every position from %" PRIu64 " to %" PRIu64 ")", s->nsh, pos,
            pname, s->was_n, s->was_n, lo + 1, hi);
    return 2;
}

int lp_was_stored(struct lp_send *s, uint64_t pos, unsigned wshard, int rr)
{
    return lp_was_stored_of(s, s->was_skip, s->producer, pos, wshard, rr);
}

/* Producer pn's fields on the shards of was_n, read once and kept
 * (with their cursors). NULL with err. */
static struct lp_was_prod *was_prod(struct lp_send *s, const char *pn,
                                    size_t pnl, char *err)
{
    struct lp_was_prod *p;
    struct lp_buf *cur;
    char name[LP_PRODUCER_MAX + 1];

    for (unsigned i = 0; i < s->n_was_prods; i++) {
        p = &s->was_prods[i];
        if (strlen(p->name) == pnl && memcmp(p->name, pn, pnl) == 0)
            return p;
    }
    if (pnl > LP_PRODUCER_MAX) {
        snprintf(err, LP_ERRLEN, "a WAL record names a producer longer "
                 "than %d bytes", LP_PRODUCER_MAX);
        s->last_permanent = 1;
        return NULL;
    }
    memcpy(name, pn, pnl);
    name[pnl] = '\0';
    p = realloc(s->was_prods, (s->n_was_prods + 1) * sizeof *p);
    if (p == NULL)
        lp_send_oom(s);
    s->was_prods = p;
    p = &s->was_prods[s->n_was_prods];
    if ((p->name = strdup(name)) == NULL ||
        (p->skip = calloc(s->was_n, sizeof *p->skip)) == NULL ||
        (p->cur = calloc(s->was_n, sizeof *p->cur)) == NULL ||
        (cur = calloc(s->was_n, sizeof *cur)) == NULL)
        lp_send_oom(s);
    if (was_fields(s, name, p->skip, cur, err) < 0) {
        for (unsigned j = 0; j < s->was_n; j++)
            lp_buf_free(&cur[j]);
        free(cur);
        free(p->name);
        free(p->skip);
        free(p->cur);
        return NULL;
    }
    for (unsigned j = 0; j < s->was_n; j++) {
        p->cur[j] = lp_cursor_num(cur[j].p, cur[j].len);
        lp_buf_free(&cur[j]);
    }
    free(cur);
    s->n_was_prods++;
    if (s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "--shards %u: the fields of producer %s "
            "(of records in the WAL %s) on the %u shards of the count "
            "before are read: what they hold is passed over", s->nsh, name,
            s->c.wal, s->was_n);
    return p;
}

int lp_shards_was_of(struct lp_send *s, const char *pn, size_t pnl,
                     const uint64_t **skip, char *err)
{
    struct lp_was_prod *p;

    *skip = NULL;
    if (s->was_n == 0)
        return 0;
    if (pnl == strlen(s->producer) && memcmp(pn, s->producer, pnl) == 0) {
        if (lp_shards_was_load(s, err) < 0)
            return -1;
        *skip = s->was_skip;
        return 0;
    }
    if ((p = was_prod(s, pn, pnl, err)) == NULL)
        return -1;
    *skip = p->skip;
    return 0;
}

int lp_shards_was_cur_of(struct lp_send *s, const char *pn, size_t pnl,
                         const uint64_t **skip, const uint64_t **cur,
                         char *err)
{
    struct lp_was_prod *p;

    *skip = NULL;
    *cur = NULL;
    if (s->was_n == 0)
        return 0;
    if ((p = was_prod(s, pn, pnl, err)) == NULL)
        return -1;
    *skip = p->skip;
    *cur = p->cur;
    return 0;
}

int lp_was_shard_of_key(struct lp_send *s, const char *key, size_t len,
                        int dlq)
{
    char name[1100], err[LP_ERRLEN];
    const char *base = dlq ? s->dlq0 : s->stream0;

    if (base == NULL)
        return -1;
    for (unsigned j = 0; j < s->was_n; j++)
        if (was_name(s, base, j, name, sizeof name, err) >= 0 &&
            strlen(name) == len && memcmp(name, key, len) == 0)
            return (int)j;
    return -1;
}

/* was_fields of the run's producer into s->was_skip, retried for
 * --timeout; a refusal ends the run. cur as was_fields. */
static void was_read(struct lp_send *s, struct lp_buf *cur)
{
    char err[LP_ERRLEN];
    int64_t since = lp_mono_ms();
    struct lp_backoff bo = { 0 };

    if (s->was_n == 0)
        return;
    if (s->was_skip == NULL &&
        (s->was_skip = calloc(s->was_n, sizeof *s->was_skip)) == NULL)
        lp_send_oom(s);
    while (was_fields(s, s->producer, s->was_skip, cur, err) < 0)
        start_retry(s, since, &bo, 1, err);
}

/*
 * --shards at the start of a run: records the count (another recorded
 * ends the run, 78), connects, and reads the field of the run's producer
 * on every shard: a shard's batches go on from its own, the positions
 * from the highest (with --position, from there, and each shard passes
 * over what it holds).
 *
 * With --wal, a Redis that does not answer at once is not waited for:
 * the run keeps its events in the WAL, each record an XADD to its shard
 * with its position, numbered from the WAL's floor (above every position
 * the producer was given: lp_spool_reserve) or from --position, and the
 * count is recorded or checked at the first connection (lp_pipeline_probe);
 * the replay then sends each record to its shard, gated by that shard's
 * field as Redis holds it, and passes over those at or below it.
 */
static void shards_start(struct lp_send *s)
{
    char err[LP_ERRLEN];
    int64_t since = lp_mono_ms();
    struct lp_backoff bo = { 0 };
    uint64_t max = 0;

    while (lp_shards_verify(s, err) < 0) {
        if (s->wal) {
            /* the count and the fields are read when Redis answers */
            s->pos_known = 1;
            s->pos0 = s->next_pos;
            say(s, LP_NOTICE_WARN, "%s: keeping events in the WAL %s until "
                "Redis answers (the count of --shards %u is checked then)",
                err, s->c.wal, s->nsh);
            s->walmode = 1;
            s->fail_since = lp_mono_ms();
            s->replay_at = lp_mono_ms() + 100;
            s->warned = 1;
            return;
        }
        start_retry(s, since, &bo, 0, err);
    }
    /* what is committed is read here: each connection's resolve finds
     * the positions known */
    s->pos_known = 1;
    for (unsigned i = 0; i < s->nsh; i++) {
        uint64_t c;
        shard_connect(s, i);
        lp_shard_keys(s, (int)i);
        while (lp_pipeline_committed(s, s->producer, strlen(s->producer), &c,
                                     err) < 0) {
            if (s->last_permanent) {
                say(s, LP_NOTICE_ERROR, "%s", err);
                lp_send_end_run(s, LP_EX_CONFIG);
            }
            shard_connect(s, i);
            lp_shard_keys(s, (int)i);
        }
        s->sh[i].last = c;
        if (s->c.position)
            s->sh[i].skip = c;
        if (c > max)
            max = c;
    }
    /* the count before a change: its shards' fields (was_read) */
    was_read(s, NULL);
    if (s->gone_n && s->c.position) {
        /* a second change forgot the count before was_n: a resume whose
         * producer has no field on some shard of was_n went past nothing
         * there, and what a run of gone_n stored there comes again */
        unsigned none = 0;
        char who[64];
        for (unsigned j = 0; j < s->was_n; j++)
            none += s->was_skip[j] == 0;
        if (none)
            say(s, LP_NOTICE_WARN, "--position: the count of shards of %s "
                "changed twice (%u, %u, now %u: one step of history is "
                "kept, %u is forgotten), and producer %s has no field on "
                "%u of the %u shards of %u: what %s stored "
                "of it and no run of %u went past is stored again (see "
                "send(1) CAVEATS)", s->stream0, s->gone_n, s->was_n, s->nsh,
                s->gone_n, s->producer, none, s->was_n, s->was_n,
                lp_shards_who(s->gone_n, who, sizeof who), s->was_n);
    }
    for (unsigned j = 0; s->was_skip && j < s->was_n; j++)
        if (s->was_skip[j] > max)
            max = s->was_skip[j];
    if (s->was_skip && !s->c.position && !s->wal) {
        /* numbering above them is enough (with --wal, the WAL's records
         * of a run begun with Redis away are passed over by them) */
        free(s->was_skip);
        s->was_skip = NULL;
    }
    /* ours in the WAL (--wal --producer): numbering stays above them */
    if (s->pos_floor > max)
        max = s->pos_floor;
    s->next_pos = s->c.position ? s->c.position : max + 1;
    s->pos0 = s->next_pos;
    if (s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "--shards %u: %d %s (the shards of a "
            "master share one); producer %s goes on from position %" PRIu64,
            s->nsh, s->lanes ? s->nlanes : 1,
            lp_plural((uint64_t)(s->lanes ? s->nlanes : 1), "connection",
                      "connections"), s->producer, s->next_pos);
}

/* ---- --follow with --shard-key ------------------------------------------ */

/*
 * --follow --shard-key JQ --shards N. The lines of one file go to the
 * shards of their keys, so each (file, shard) has a field of its own: the
 * file's producer "<producer>:<identity>" in that shard's producers hash
 * (the same name in each, the hashes are the shards'), its position the
 * (file, shard)'s own counter (lp_fkey.seq: the file's commands on that
 * shard), its cursor an offset of the file such that every line before
 * it whose commands go to that shard is stored there. A batch of shard k
 * commits the file's offset after the line last read of it (the lines
 * before whose commands are for k are in that batch or one before it on
 * k), whether that line went to k or not: so each line read commits its
 * end on the shards its commands went to and on those whose input batch
 * holds the file already (no round trip more); the first line of a file
 * in a run and every --batch-th after it on every shard (a cursor alone,
 * from base to base: a shard the file's lines never go to is not left
 * behind at the file's start); and when nothing is to be read, every
 * file not committed so on every shard (fk_idle: the fields of files at
 * rest at their ends, a restart after a stop reads nothing again). A line
 * that made no command goes nowhere: a later line or a sync commits past
 * it.
 *
 * At start every shard's hash is read: the file goes on from the lowest
 * of its shards' cursors (a shard without a field: the file's start, 0),
 * each shard's counter from its field, and each shard passes over the
 * commands of lines that begin before its own cursor (add_command): they
 * are stored there. Rotation keeps the identity, hence the fields; a cut
 * back or rewritten file is a new identity, fields of its own. A file
 * forgotten loses its field on every shard. Dead letters go to the file's
 * shard (file_shard), numbered as its commands there. With --wal a
 * record is one command to its shard (its key says which: fpos_of_wal)
 * with the (file, shard)'s position and the cursor of its batch, what its
 * field would take: a restart takes the higher of each (file, shard)'s
 * field and records (the lowest of the shards still the file's start),
 * the replay gates each record by its shard's field. Cursors committed
 * alone are not written to the WAL: when it is empty again every file
 * read is behind (lp_send_fk_rest), for fk_idle.
 */
static size_t u64dec(char *o, uint64_t v);

struct lp_fkey {
    struct lp_fkey *next;
    char id[LP_FOLLOW_IDLEN];
    uint64_t lines;             /* lines of the file read by this run */
    uint64_t end;               /* the offset after the last of them */
    int behind;                 /* a shard's batch may not commit it */
    uint64_t *seq;              /* a shard: the last position given */
    uint64_t *skip;             /* a shard: its field's cursor at start */
};

static size_t fk_bucket(const struct lp_send *s, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *id; id++) {
        h ^= (unsigned char)*id;
        h *= 0x100000001b3ULL;
    }
    return (size_t)(h & (s->capfkeys - 1));
}

/* The state of file id, made (zero) when new. */
static struct lp_fkey *fk_get(struct lp_send *s, const char *id)
{
    struct lp_fkey *k;
    size_t b;

    if (s->capfkeys && strlen(id) < LP_FOLLOW_IDLEN)
        for (k = s->fkeys[fk_bucket(s, id)]; k; k = k->next)
            if (strcmp(k->id, id) == 0)
                return k;
    if (s->nfkeys >= s->capfkeys) {
        size_t cap = s->capfkeys ? s->capfkeys * 2 : 64, old = s->capfkeys;
        struct lp_fkey **t = calloc(cap, sizeof *t), **o = s->fkeys;
        if (t == NULL)
            lp_send_oom(s);
        s->fkeys = t;
        s->capfkeys = cap;
        for (size_t i = 0; i < old; i++)
            while ((k = o[i]) != NULL) {
                o[i] = k->next;
                b = fk_bucket(s, k->id);
                k->next = t[b];
                t[b] = k;
            }
        free(o);
    }
    if ((k = calloc(1, sizeof *k + 2 * s->nsh * sizeof(uint64_t))) == NULL)
        lp_send_oom(s);
    snprintf(k->id, sizeof k->id, "%s", id);
    k->seq = (uint64_t *)(k + 1);
    k->skip = k->seq + s->nsh;
    b = fk_bucket(s, k->id);
    k->next = s->fkeys[b];
    s->fkeys[b] = k;
    s->nfkeys++;
    return k;
}

/* A file forgotten: its state goes. */
static void fk_drop(struct lp_send *s, const char *id)
{
    struct lp_fkey **p;

    if (s->capfkeys == 0)
        return;
    for (p = &s->fkeys[fk_bucket(s, id)]; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            struct lp_fkey *k = *p;
            *p = k->next;
            if (s->fk == k)
                s->fk = NULL;
            free(k);
            s->nfkeys--;
            return;
        }
}

static void fk_free_all(struct lp_send *s)
{
    for (size_t i = 0; i < s->capfkeys; i++)
        while (s->fkeys[i]) {
            struct lp_fkey *k = s->fkeys[i];
            s->fkeys[i] = k->next;
            free(k);
        }
    free(s->fkeys);
    free(s->ftouch);
    free(s->ftouched);
}

/* The current command of the line's file goes to the current shard: 1
 * when that shard holds it already (the line begins before its cursor:
 * passed over), else 0, the file's counter there made current and the
 * shard noted for the line's commit. */
static int fk_command(struct lp_send *s, uint64_t line_start)
{
    unsigned k = (unsigned)s->cur_in;

    if (line_start < s->fk->skip[k])
        return 1;
    s->fseq = &s->fk->seq[k];
    if (!s->ftouched[k]) {
        s->ftouched[k] = 1;
        s->ftouch[s->nftouch++] = k;
    }
    return 0;
}

/* The index of the current file's producer in b's table, or -1. */
static int fk_batch_has(const struct lp_send *s, const struct lp_batch *b)
{
    for (int i = 0; i < b->nprods; i++)
        if (b->prods[i].namelen == s->fprodlen &&
            memcmp(b->pbuf.p + b->prods[i].name, s->fprod, s->fprodlen) == 0)
            return i;
    return -1;
}

/* Shard k's input batch commits the file's offset after its last line
 * read (s->fcur); not below the shard's own cursor. */
static void fk_put(struct lp_send *s, unsigned k, uint64_t end)
{
    uint16_t i;

    if (end <= s->fk->skip[k])
        return;
    shard_in(s, (int)k);
    if (s->in->nprods >= LP_BATCH_PRODS && fk_batch_has(s, s->in) < 0)
        dispatch(s);            /* its table of producers is full */
    if (!lp_batch_busy(s->in))
        s->in->opened_ms = lp_mono_ms();
    i = lp_batch_prod(s, s->in, s->fprod, s->fprodlen, s->fcur, s->fcurlen);
    s->in->prods[i].base = s->fk->seq[k];
}

/* Before a line (or its first chunk): no shard's table of producers is
 * full without the file, as its commands may go to any shard. */
static void fk_line_begin(struct lp_send *s)
{
    for (unsigned k = 0; k < s->nsh; k++)
        if (s->sh[k].in.nprods >= LP_BATCH_PRODS &&
            fk_batch_has(s, &s->sh[k].in) < 0) {
            shard_in(s, (int)k);
            dispatch(s);
        }
    for (size_t i = 0; i < s->nftouch; i++)
        s->ftouched[s->ftouch[i]] = 0;
    s->nftouch = 0;
}

/* After a line (its last chunk): its end committed where its commands
 * went, and on every shard at the file's first line and every --batch-th;
 * then the batches that filled meanwhile go. */
static void fk_line_end(struct lp_send *s, uint64_t end)
{
    int all = s->fk->lines++ % (uint64_t)s->c.batch == 0;

    for (size_t i = 0; i < s->nftouch; i++)
        fk_put(s, s->ftouch[i], end);
    for (unsigned k = 0; k < s->nsh; k++)
        /* (a shard whose batch holds the file already: no cost) */
        if (!s->ftouched[k] &&
            (all || fk_batch_has(s, &s->sh[k].in) >= 0))
            fk_put(s, k, end);
    s->fk->end = end;
    s->fk->behind = !all;
    s->fkbehind |= !all;
}

/* The input quiet (nothing to read now): every file whose last line some
 * shard's batch did not commit commits it on every shard, so that the
 * fields of files at rest are at their ends (a restart reads nothing
 * again). */
static void fk_idle(struct lp_send *s)
{
    if (!s->fkbehind)
        return;
    s->fkbehind = 0;
    for (size_t i = 0; i < s->capfkeys; i++)
        for (struct lp_fkey *k = s->fkeys[i]; k; k = k->next) {
            size_t n = strlen(k->id);
            if (!k->behind)
                continue;
            k->behind = 0;
            if (s->fbase + n > LP_PRODUCER_MAX)
                n = LP_PRODUCER_MAX - s->fbase;
            memcpy(s->fprod + s->fbase, k->id, n);
            s->fprodlen = s->fbase + n;
            s->fprod[s->fprodlen] = '\0';
            s->fcurlen = u64dec(s->fcur, k->end);
            s->fk = k;
            for (unsigned h = 0; h < s->nsh; h++)
                fk_put(s, h, k->end);
        }
    s->fk = NULL;
}

void lp_send_fk_rest(struct lp_send *s)
{
    if (!s->fkmode)
        return;
    for (size_t i = 0; i < s->capfkeys; i++)
        for (struct lp_fkey *k = s->fkeys[i]; k; k = k->next)
            if (k->lines) {
                k->behind = 1;
                s->fkbehind = 1;
            }
}

/* want_dispatch with --shard-key: every shard's batch that is full. */
static void fk_dispatch_full(struct lp_send *s)
{
    for (unsigned k = 0; k < s->nsh; k++) {
        const struct lp_batch *b = &s->sh[k].in;
        if (b->n >= s->c.batch || b->blob.len >= s->c.batch_bytes) {
            shard_in(s, (int)k);
            dispatch(s);
        }
    }
}

/* ---- the input batch ---------------------------------------------------- */

/* Hands the input batch to Redis (or to the WAL in WAL mode). */
static void dispatch(struct lp_send *s)
{
    char err[LP_ERRLEN] = "";
    struct lp_batch *b;

    if (!lp_batch_busy(s->in))
        return;
    if (s->sh)
        lp_lane_use(s, s->sh[s->cur_in].lane);  /* its shard's connection */
    if (s->mid_line) {
        /* --follow: a line's commands go in one batch, the position of
         * the line's end with them */
        s->want_dispatch = 1;
        return;
    }
    if (s->walmode) {
        lp_spool_batch(s, s->in);
        lp_spool_sync(s);
        lp_req_in_wal(s, s->in);
        lp_batch_reset(s->in);
        lp_spool_replay(s);
        return;
    }
    lp_pipeline_check_backlog(s);
    if (s->walmode) {            /* the check failed over to the WAL */
        dispatch(s);
        return;
    }
    if (s->serving && !s->finishing && s->count >= LP_INFLIGHT) {
        /* serving: the loop never waits for a slot; the batch goes when
         * a reply frees one (wait_io) */
        s->want_dispatch = 1;
        return;
    }
    for (;;) {
        /* (a recovery may have moved the shard to another connection) */
        if (s->sh)
            lp_lane_use(s, s->sh[s->cur_in].lane);
        if (s->count < LP_INFLIGHT)
            break;
        if (lp_pipeline_pump(s, 1, err) < 0) {
            lp_send_recover(s, err);
            if (s->walmode) {
                dispatch(s);
                return;
            }
        }
    }
    /* connected first: a new connection resolves what is in the ring
     * (and sends it again) before this batch is numbered */
    int conn = lp_pipeline_connect(s, err);
    /* the input batch becomes the free slot, the slot the input batch */
    b = &s->ring[(s->head + s->count) % LP_INFLIGHT];
    struct lp_batch tmp = *b;
    *b = *s->in;
    *s->in = tmp;
    lp_batch_reset(s->in);
    b->source = LP_BATCH_INPUT;
    b->shard = s->sh ? s->cur_in : -1;
    s->in->shard = b->shard;    /* the slot's storage is the shard's now */
    lp_pipeline_number(s, b);
    s->count++;
    if (conn < 0 || lp_pipeline_send(s, b, err) < 0)
        lp_send_recover(s, err);
    metrics_tick(s, 0);
}

/* ---- events ------------------------------------------------------------- */

static void add_command(struct lp_send *s, size_t start, uint64_t line_start,
                        int kind)
{
    struct lp_batch *b = s->in;

    if (s->fkmode && fk_command(s, line_start)) {
        b->blob.len = start;    /* on its shard already: passed over */
        return;
    }
    if (b->n == 0)
        b->opened_ms = lp_mono_ms();
    if (b->n == b->cap) {
        /* --follow: a line's events stay in one batch past --batch (at
         * most --max-members more) */
        struct lp_cmd *ev = realloc(b->ev, 2 * b->cap * sizeof *ev);
        if (ev == NULL)
            lp_send_oom(s);
        b->ev = ev;
        b->cap *= 2;
    }
    s->ncmds++;
    if (s->js) {                /* the batch commits the entry's cursor */
        uint16_t i = lp_batch_prod(s, b, s->producer, strlen(s->producer),
                                   s->jcur.p, s->jcur.len);
        if (s->sh)
            b->prods[i].base = s->jpos;     /* that cursor's position */
    }
    /* --follow: the file's producer, the offset after the line, and the
     * file's next position */
    b->ev[b->n].prod = LP_NOPROD;
    if (s->sh && !s->fl) {
        /* numbered as added, in input order, whichever shard's batch
         * goes first (lp_pipeline_number then passes over and gates) */
        b->ev[b->n].prod = lp_batch_prod(s, b, s->producer,
                                         strlen(s->producer), NULL, 0);
        if (s->js) {
            b->ev[b->n].pos = s->jpos;  /* --journal: its entry's */
        } else {
            /* --wal --producer: the floor stays above every position
             * given, for a run that starts while Redis is away (it
             * numbers from the floor, not from the shards' fields) */
            if (s->floor_fd >= 0 && s->next_pos >= s->floor_res)
                lp_spool_reserve(s, s->next_pos);
            b->ev[b->n].pos = s->next_pos++;
        }
        /* after a change of the count: its shard of the count before,
         * as that run chose it (by the key's hash, else its position) */
        b->ev[b->n].wshard = s->was_n
            ? (uint16_t)(s->key_hashed ? s->key_hash % s->was_n
                                       : (b->ev[b->n].pos - 1) % s->was_n)
            : LP_WSHARD_UNKNOWN;
    }
    s->key_hashed = 0;
    if (s->fl) {
        /* (the line's end sets the cursor: file_line) */
        b->ev[b->n].prod = lp_batch_prod(s, b, s->fprod, s->fprodlen, NULL,
                                         0);
        b->ev[b->n].pos = ++*s->fseq;
    }
    b->ev[b->n].cmd = (uint32_t)start;
    b->ev[b->n].cmdlen = (uint32_t)(b->blob.len - start);
    b->ev[b->n].file = (uint32_t)s->file;
    b->ev[b->n].kind = (uint8_t)kind;
    b->ev[b->n].done = 0;
    b->ev[b->n].line_start = line_start;
    b->ev[b->n].req = s->cur_req;
    b->n++;
    if (b->n >= s->c.batch || b->blob.len >= s->c.batch_bytes)
        dispatch(s);
}

/*
 * The dead letter of a rejected line (lp_dlq.h's record, stage "send"):
 * its XADD to the DLQ, in the input batch, in order with the events.
 */
static void add_dlq(struct lp_send *s, const char *line, size_t len,
                    uint64_t line_start, const char *code, const char *msg)
{
    struct lp_dlq_rec rec = {
        .data = { line, len },
        .error = { code, strlen(code) },
        .detail = { msg, strlen(msg) },
        .stage = { "send", 4 },
        .source_stream = { s->c.stream, strlen(s->c.stream) },
        .source_id = { "", 0 },
        .consumer = { s->host, strlen(s->host) },
        .deliveries = 0,
        .failed_at = s->now,
    };

    if (s->sh) {
        /* by its position (--follow: its file's shard); the shard it
         * was meant for is its source */
        shard_in(s, (int)(s->fl ? s->fshard : shard_by_pos(s)));
        rec.source_stream.p = s->sh[s->cur_in].name;
        rec.source_stream.len = strlen(s->sh[s->cur_in].name);
    }

    add_command(s, lp_pipeline_xadd_dlq(s, &rec), line_start, LP_CMD_DLQ);
}

/* --rejects cannot be written: the run ends (74). */
static _Noreturn void rejects_failed(struct lp_send *s)
{
    say(s, LP_NOTICE_ERROR, "--rejects %s: %s", s->c.rejects, strerror(errno));
    lp_send_end_run(s, LP_EX_IOERR);
}

/* Reports a rejected event; line[0..len) is what --rejects and the DLQ
 * get: the whole line as read, or the rejected element of an array. */
static void reject(struct lp_send *s, const char *line, size_t len,
                   uint64_t lineno, uint64_t line_start, const char *code,
                   const char *what)
{
    char at[PATH_MAX + 64];

    s->n.rejected++;
    where(s, at, sizeof at, lineno);
    say(s, strcmp(code, "rate-limited") == 0 ? LP_SEND_LIMITED : LP_SEND_BAD,
        "%s: %s", at, what);
    if (s->rejects_fd >= 0 && len > 0) {
        if (lp_fs_write_all(s->rejects_fd, line, len) < 0 ||
            lp_fs_write_all(s->rejects_fd, "\n", 1) < 0)
            rejects_failed(s);
    }
    if ((s->c.rejects_to_dlq || (s->c.on_limit == LP_SEND_ON_DLQ &&
                                strcmp(code, "rate-limited") == 0)) &&
        len > 0)
        add_dlq(s, line, len, line_start, code, what);
}

/* ---- --rate ------------------------------------------------------------- */

/* The rate key of an event into buf; its length (0: the global bucket). */
static size_t rate_key(struct lp_send *s, const char *txt, size_t n,
                       const struct lp_jevent *ev, char *buf, size_t cap)
{
    char err[LP_ERRLEN];
    long len;

    if (s->rkey_idx >= 0) {
        const struct lp_jval *v = &ev->val[s->rkey_idx];
        switch (v->type) {
        case LP_JNONE:
        case LP_JNULL:
            return 0;
        case LP_JSTRING:
            len = lp_json_unescape(txt, v, buf, cap);
            if (len >= 0)
                return (size_t)len;
            /* longer than cap: its first bytes, as the text is */
            len = (long)(v->len - 2 < cap ? v->len - 2 : cap);
            memcpy(buf, txt + v->off + 1, (size_t)len);
            return (size_t)len;
        default:
            len = (long)(v->len < cap ? v->len : cap);
            memcpy(buf, txt + v->off, (size_t)len);
            return (size_t)len;
        }
    }
    if (s->rkey_jq == NULL)
        return 0;
    len = lp_jq_string(s->rkey_jq, txt, n, buf, cap, err);
    if (len < 0) {
        /* the keyless bucket; the first few said, all counted: a failed
         * run (lp_jq_status at the end) */
        if (lp_jq_name_it(s->rkey_jq) && s->c.verbosity >= 0)
            say(s, LP_NOTICE_ERROR, "--rate-key: %s (such events share the "
                "limit of events without a key)", err);
        return 0;
    }
    return (size_t)len;
}

/* --shared-rate: Redis may be asked now (connected): 0; -1 with err when
 * it does not answer; -2 when it failed a moment ago (not tried) */
static int shared_begin(struct lp_send *s, char *err)
{
    if (s->rr_local && lp_mono_ms() < s->rr_retry_at)
        return -2;              /* failed a moment ago: not yet again */
    if (!lp_redis_connected(s->rr) && lp_redis_connect(s->rr, err) < 0)
        return -1;
    return 0;
}

/* the answer came: the limit is shared (again) */
static void shared_ok(struct lp_send *s)
{
    if (s->rr_local) {
        s->rr_local = 0;
        say(s, LP_NOTICE_INFO, "--shared-rate: Redis answers again: the "
            "limit is shared again");
    }
}

/* Redis failed (err): this sender limits alone for 5 s, said once */
static int shared_failed(struct lp_send *s, const char *err)
{
    if (!s->rr_local)
        say(s, LP_NOTICE_WARN, "--shared-rate: %s: limiting in this sender "
            "alone until Redis answers", err);
    s->rr_local = 1;
    s->rr_retry_at = lp_mono_ms() + 5000;
    lp_redis_disconnect(s->rr);
    return -1;
}

/* <stream>:rate:<key>, the key's bytes as they are, appended to b */
static void shared_key(struct lp_send *s, struct lp_buf *b, const char *key,
                       size_t klen)
{
    if (lp_buf_adds(b, s->rkey_pre) < 0 ||
        lp_buf_add(b, key, klen) < 0)
        lp_send_oom(s);
}

/*
 * --shared-rate: takes tokens of key[0..klen)'s bucket in Redis
 * (<stream>:rate:<key>): up to want, or all n of them (all). Returns 0
 * with *got and *wait, or -1 when Redis failed: then this sender limits
 * alone (its local buckets) for 5 s, said once.
 */
static int shared_ask(struct lp_send *s, const char *key, size_t klen,
                      uint64_t want, int all, uint64_t *got, int64_t *wait)
{
    char err[LP_ERRLEN];
    int rc;

    if ((rc = shared_begin(s, err)) < 0)
        return rc == -2 ? -1 : shared_failed(s, err);
    s->rkey_buf.len = 0;
    shared_key(s, &s->rkey_buf, key, klen);
    rc = all ? lp_rate_shared_take_n(s->rr, s->rkey_buf.p, s->rkey_buf.len,
                                     s->c.rate, s->c.burst, want, wait, err)
             : lp_rate_shared_take(s->rr, s->rkey_buf.p, s->rkey_buf.len,
                                   s->c.rate, s->c.burst, want, got, wait,
                                   err);
    if (rc < 0)
        return shared_failed(s, err);
    if (all)
        *got = *wait == 0 ? want : 0;
    shared_ok(s);
    return 0;
}

/* --shared-rate: asks Redis for up to want tokens of bucket b. Returns
 * 0 with the lease set, or -1 when Redis failed (b untouched). */
static int rate_ask(struct lp_send *s, struct lp_bucket *b, int64_t now)
{
    uint64_t want, got;
    int64_t wait;

    /* a twentieth of a second's worth, so that every sender gets its
     * share and little is left unused when one stops */
    want = (uint64_t)(s->c.rate * 50.0);
    if (want < 1)
        want = 1;
    if (want > s->c.burst)
        want = s->c.burst;
    if (shared_ask(s, b->key, b->klen, want, 0, &got, &wait) < 0)
        return -1;
    lp_bucket_lease_set(b, got, wait, now);
    return 0;
}

/* The bucket of key[0..klen) now, counted when it overflows. */
static struct lp_bucket *req_bucket(struct lp_send *s, const char *key,
                                    size_t klen, int64_t now)
{
    int over = 0;
    struct lp_bucket *b = lp_rate_bucket(s->rate, key, klen, now, &over);

    if (b == NULL)
        lp_send_oom(s);
    s->n.overflow += over != 0;
    return b;
}

/*
 * A request's tokens, all or none: its events' count under each of its
 * keys (--rate-key), or under its one key (the client's, lp_send_req_key;
 * none: ""). Returns 0 when taken, else the ms until they are all there
 * (LP_RATE_NEVER: more than --burst under one key). Locally every bucket
 * is asked before any is taken; with --shared-rate each key is taken in
 * Redis whole or not at all, in turn, and a refusal after a first key was
 * taken leaves that key's tokens spent (said in logpipe-http(1)).
 */
/* The i-th key of q's tally (i from 0; off walks the records), or its
 * one key when it has no tally. */
static const char *req_key_at(const struct lp_send_req *q, size_t *off,
                              size_t *klen, uint64_t *count)
{
    uint32_t l;
    const char *key;

    if (q->nkeys == 0) {
        *klen = q->klen;
        *count = q->nev + q->ndlq;
        return q->key ? q->key : "";
    }
    memcpy(count, q->keys.p + *off, 8);
    memcpy(&l, q->keys.p + *off + 8, 4);
    key = q->keys.p + *off + 12;
    *klen = l;
    *off += KREC(l);
    return key;
}

static int64_t req_rate(struct lp_send *s, struct lp_send_req *q)
{
    int64_t now = lp_mono_ms(), worst = 0, wait;
    size_t nk = q->nkeys ? q->nkeys : 1, off = 0, klen;
    uint64_t count, got;
    const char *key;

    if (s->c.shared_rate && nk == 1) {
        key = req_key_at(q, &off, &klen, &count);
        if (shared_ask(s, key, klen, count, 1, &got, &wait) == 0)
            return wait;
        off = 0;                /* Redis away: the local buckets */
    } else if (s->c.shared_rate) {
        /* every key's tokens in one script: all or none */
        char err[LP_ERRLEN];
        const char *keys[REQ_KEYS + 1];
        size_t klens[REQ_KEYS + 1], at[REQ_KEYS + 1];
        uint64_t want[REQ_KEYS + 1];
        if ((wait = shared_begin(s, err)) == 0) {
            s->rkey_buf.len = 0;
            for (size_t i = 0; i < nk; i++) {
                key = req_key_at(q, &off, &klen, &want[i]);
                at[i] = s->rkey_buf.len;
                shared_key(s, &s->rkey_buf, key, klen);
                klens[i] = s->rkey_buf.len - at[i];
            }
            for (size_t i = 0; i < nk; i++)
                keys[i] = s->rkey_buf.p + at[i];
            if (lp_rate_shared_take_all(s->rr, (int)nk, keys, klens, want,
                                        s->c.rate, s->c.burst, &wait,
                                        err) == 0) {
                shared_ok(s);
                return wait;
            }
            shared_failed(s, err);
        } else if (wait == -1) {
            shared_failed(s, err);      /* it did not answer */
        }
        off = 0;                /* Redis away: the local buckets */
    }
    for (int take = 0; take < 2; take++) {
        off = 0;
        for (size_t i = 0; i < nk; i++) {
            key = req_key_at(q, &off, &klen, &count);
            struct lp_bucket *b = req_bucket(s, key, klen, now);
            if (take) {
                lp_bucket_take_n(s->rate, b, count, now);
                continue;
            }
            wait = lp_bucket_need_n(s->rate, b, count, now);
            if (wait == LP_RATE_NEVER)
                return wait;
            if (wait > worst)
                worst = wait;
        }
        if (worst != 0)
            return worst;
    }
    return 0;
}

/* Takes a token of bucket b: 0, or the ms until one is there. */
static int64_t rate_take(struct lp_send *s, struct lp_bucket *b)
{
    int64_t now = lp_mono_ms();

    if (s->c.shared_rate) {
        for (int tries = 0; tries < 2; tries++) {
            int64_t rc = lp_bucket_lease_take(b, now);
            if (rc > 0)
                return 0;
            if (rc < 0)
                return -rc;
            if (rate_ask(s, b, now) < 0)
                break;          /* Redis away: the local bucket */
        }
        if (!s->rr_local)
            return 1;
    }
    return lp_bucket_take(s->rate, b, now);
}

/*
 * Waits ms for the limit, sending the events admitted so far once their
 * linger time is over, and taking replies and WAL re-sends meanwhile.
 */
static void rate_pause(struct lp_send *s, int64_t ms)
{
    char err[LP_ERRLEN];
    int64_t start = lp_mono_ms(), until = start + ms;

    for (;;) {
        int64_t now = lp_mono_ms(), left = until - now;
        struct pollfd p = { -1, POLLIN, 0 };
        if (left <= 0 || lp_send_stopping(s))
            break;
        if (lp_batch_busy(s->in) && !s->mid_line) {
            /* (--follow: a line's events wait for its end in the batch:
             * no linger inside a line) */
            int64_t linger = s->in->opened_ms + s->c.linger - now;
            if (linger <= 0) {
                dispatch(s);
                continue;
            }
            if (linger < left)
                left = linger;
        }
        if (s->count > 0 && lp_redis_connected(s->r))
            p.fd = lp_redis_fd(s->r);
        if (s->m && left > s->c.metrics_interval)
            left = s->c.metrics_interval;
        int64_t due = idle_due(s);
        if (due >= 0 && due < left)
            left = due;
        if (poll(&p, 1, (int)left) > 0 && p.revents) {
            if (lp_redis_read(s->r, err) < 0 ||
                lp_pipeline_pump(s, 0, err) < 0)
                lp_send_recover(s, err);
        }
        lp_spool_replay(s);
        metrics_tick(s, 0);
        idle_tick(s);
    }
    s->n.wait_ms += lp_mono_ms() - start;
}

/*
 * Applies --rate to one valid event: 1 when it may go, 0 when it is over
 * the limit (--on-limit reject or dlq; what says why). With block, waits
 * for its token; a stop signal ends the wait and lets it go: it was read
 * from the input already, and losing it would be worse than passing the
 * limit by what the read buffer holds.
 */
static int rate_admit(struct lp_send *s, const char *txt, size_t n,
                      const struct lp_jevent *ev, char *what, size_t cap)
{
    char key[1024];             /* longer keys: cut (then hashed) */
    size_t klen = rate_key(s, txt, n, ev, key, sizeof key);
    int over;
    struct lp_bucket *b = lp_rate_bucket(s->rate, key, klen, lp_mono_ms(),
                                         &over);
    int64_t wait;

    if (b == NULL)
        lp_send_oom(s);
    if (over && s->n.overflow++ == 0)
        say(s, LP_NOTICE_WARN, "--max-keys %" PRIu64 ": more new rate keys "
            "this minute share the limit of \"%s\"", s->c.max_keys,
            LP_RATE_OVERFLOW);
    while ((wait = rate_take(s, b)) > 0) {
        if (s->c.on_limit != LP_SEND_ON_BLOCK) {
            over_rate(b, klen, what, cap);
            return 0;
        }
        if (lp_send_stopping(s)) {
            s->n.past_limit++;
            return 1;
        }
        rate_pause(s, wait);
        /* the pause may have moved the table: look the key up again */
        b = lp_rate_bucket(s->rate, key, klen, lp_mono_ms(), &over);
        if (b == NULL)
            lp_send_oom(s);
    }
    return 1;
}

static void add_event(struct lp_send *s, const char *txt, size_t n,
                      const struct lp_jevent *ev, uint64_t line_start)
{
    size_t start;

    if (s->sh)
        shard_in(s, (int)shard_of(s, txt, n, ev));
    start = lp_pipeline_xadd_event(s, txt, n, ev);
    s->n.events++;
    add_command(s, start, line_start, LP_CMD_EVENT);
}

/*
 * An event that passed lp_event's checks: --rate, then its XADD. ln is its
 * line; element is its number in an array line, 0 for a whole line: when
 * over the limit, --rejects and the DLQ get the element, or the line as
 * read, and the message names the element as lp_event's do. Inline: one
 * frame less an event in the loop (callgrind).
 */
static inline void admit(struct lp_send *s, const char *txt, size_t n,
                  const struct lp_jevent *ev, const struct lp_line *ln,
                  int element)
{
    char err[LP_ERRLEN], what[LP_ERRLEN + 64];

    if (s->rate && !rate_admit(s, txt, n, ev, err, sizeof err)) {
        s->n.limited++;
        s->n.rejected--;         /* counted apart, reported the same way */
        if (element) {
            snprintf(what, sizeof what, "element %d: %s", element, err);
            reject(s, txt, n, ln->lineno, ln->start, "rate-limited", what);
        } else {
            reject(s, ln->p, ln->len, ln->lineno, ln->start, "rate-limited",
                   err);
        }
        return;
    }
    add_event(s, txt, n, ev, ln->start);
}

/* lp_event's verdict on each event of a line (lp_event_line's fn; ctx a
 * struct line_ctx). It may leave by lp_send_end_run: lp_event_line holds
 * nothing across its calls. */
struct line_ctx {
    struct lp_send *s;
    const struct lp_line *ln;
};

static void judged(void *ctx, const char *txt, size_t n, int element,
                   const struct lp_jevent *ev, const struct lp_event_bad *bad)
{
    const struct line_ctx *l = ctx;

    if (bad)
        reject(l->s, txt, n, l->ln->lineno, l->ln->start, bad->code,
               bad->msg);
    else
        admit(l->s, txt, n, ev, l->ln, element);
}

/* One event on its own, as read (a journal entry): judged, admitted. */
static void one_event(struct lp_send *s, const struct lp_line *ln)
{
    struct line_ctx l = { s, ln };
    struct lp_jevent ev;
    struct lp_event_bad bad;

    if (lp_event_check(&s->rules, ln->p, ln->len, s->now, NULL, &ev,
                       &bad) < 0)
        judged(&l, ln->p, ln->len, 0, NULL, &bad);
    else
        judged(&l, ln->p, ln->len, 0, &ev, NULL);
}

/* One line: nothing, one event, or an array's events (lp_event_line). */
static void one_line(struct lp_send *s, const struct lp_line *ln)
{
    struct line_ctx l = { s, ln };

    s->n.lines++;
    lp_event_line(&s->rules, ln->p, ln->len, s->now, judged, &l);
}

static void long_line(struct lp_send *s, const struct lp_line *ln)
{
    if (ln->first) {
        char at[PATH_MAX + 64];
        s->n.lines++;
        s->n.rejected++;
        where(s, at, sizeof at, ln->lineno);
        say(s, LP_SEND_BAD, "%s: longer than --max-line (%" PRIu64 " bytes)",
            at, s->c.max_line);
    }
    if (s->rejects_fd >= 0) {
        if (lp_fs_write_all(s->rejects_fd, ln->p, ln->len) < 0 ||
            (ln->last && lp_fs_write_all(s->rejects_fd, "\n", 1) < 0))
            rejects_failed(s);
    }
}

/* ---- the loop ----------------------------------------------------------- */

/*
 * Waits for input (fd >= 0, for events) or replies, at most until the
 * input batch's linger time is over, the next WAL attempt is due, or cap
 * ms (-1: no cap). Returns 1 when input is readable.
 */
/* Serving: every slot of the ring in flight (the batch being filled waits
 * for a reply to free one, rather than the loop waiting for it). */
static int ring_full(const struct lp_send *s)
{
    return s->serving && !s->finishing && !s->walmode &&
           s->count >= LP_INFLIGHT;
}

/* --shards: every shard's input batch whose --linger is over goes;
 * returns the ms until the next one's is (-1: none waits). */
static int64_t shards_linger(struct lp_send *s)
{
    int64_t next = -1, now = lp_mono_ms();

    for (unsigned i = 0; i < s->nsh; i++) {
        struct lp_batch *b = &s->sh[i].in;
        int64_t left;
        if (!lp_batch_busy(b))
            continue;
        left = b->opened_ms + s->c.linger - now;
        if (left <= 0) {
            shard_in(s, (int)i);
            dispatch(s);
            now = lp_mono_ms();
            continue;
        }
        if (next < 0 || left < next)
            next = left;
    }
    return next;
}

/* --shards in a cluster: the replies that came on every lane with
 * batches in flight, as poll found them (p[from..], lane by lane in
 * order of the lanes that had some). */
static void lanes_poll_add(struct lp_send *s, struct pollfd *p, int *np,
                           int *lane_of)
{
    int keep = s->cur_lane;

    for (int l = 0; l < s->nlanes; l++) {
        lp_lane_use(s, l);
        lane_of[l] = -1;
        if (s->count > 0 && lp_redis_connected(s->r)) {
            lane_of[l] = *np;
            p[*np].fd = lp_redis_fd(s->r);
            p[*np].events = POLLIN;
            p[*np].revents = 0;
            (*np)++;
        }
    }
    lp_lane_use(s, keep);
}

static void lanes_poll_take(struct lp_send *s, const struct pollfd *p,
                            const int *lane_of, int n)
{
    char err[LP_ERRLEN];

    /* the n lanes polled: a recovery here may make more (lanes_split) */
    for (int l = 0; l < n; l++) {
        if (lane_of[l] < 0 || !p[lane_of[l]].revents)
            continue;
        lp_lane_use(s, l);
        if (lp_redis_read(s->r, err) < 0 || lp_pipeline_pump(s, 0, err) < 0)
            lp_send_recover(s, err);
    }
}

static int wait_io(struct lp_send *s, int fd, short events, int cap)
{
    struct pollfd p3[3], *p = s->pfd ? s->pfd : p3;
    int lane_of[LP_SHARDS_MAX], nlanes = s->nlanes;
    int np = 0, timeout = cap, rc, rfd = -1, afd = -1, aside;
    char err[LP_ERRLEN];
    int64_t now = lp_mono_ms(), left;

    if (fd >= 0) {
        p[np].fd = fd;
        p[np].events = events;
        p[np].revents = 0;
        np++;
    }
    if (s->lanes)
        lanes_poll_add(s, p, &np, lane_of);
    /* serving: also with nothing in flight, so that Redis closing the
     * connection is seen at once (the door's health says it) */
    else if ((s->count > 0 || s->serving) && lp_redis_connected(s->r)) {
        rfd = np;
        p[np].fd = lp_redis_fd(s->r);
        p[np].events = POLLIN;
        p[np].revents = 0;
        np++;
    }
    if ((aside = s->aside ? lp_aside_fd(s->aside) : -1) >= 0) {
        afd = np;
        p[np].fd = aside;
        p[np].events = POLLIN;
        p[np].revents = 0;
        np++;
    }
    if (s->aside && (left = lp_aside_due(s->aside)) >= 0 &&
        (timeout < 0 || left < timeout))
        timeout = (int)left;
    if (s->serving && s->c.max_backlog) {
        /* --max-backlog's lag, asked every 100 ms */
        lp_pipeline_ask_backlog(s);
        if (!s->backlog_asking && s->aside && lp_aside_connected(s->aside)) {
            left = s->backlog_at - now;
            if (left < 0)
                left = 0;
            if (timeout < 0 || left < timeout)
                timeout = (int)left;
        }
    }
    if (s->sh) {
        if ((left = shards_linger(s)) >= 0 &&
            (timeout < 0 || left < timeout))
            timeout = (int)left;
    } else if (lp_batch_busy(s->in) && !ring_full(s)) {
        left = s->in->opened_ms + s->c.linger - now;
        if (left <= 0) {
            dispatch(s);
            return 0;
        }
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (s->walmode && s->count == 0 && !(s->rseg && s->rseg_eof)) {
        left = s->replay_at - now;
        if (left <= 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (s->m && (timeout < 0 || timeout > s->c.metrics_interval))
        timeout = (int)s->c.metrics_interval;
    if ((left = idle_due(s)) >= 0 && (timeout < 0 || left < timeout))
        timeout = (int)left;
    rc = poll(p, (nfds_t)np, timeout);
    metrics_tick(s, 0);
    idle_tick(s);
    if (rc < 0)
        return 0;               /* EINTR: the caller checks for a stop */
    if (rfd >= 0 && p[rfd].revents) {
        if (lp_redis_read(s->r, err) < 0 || lp_pipeline_pump(s, 0, err) < 0)
            lp_send_recover(s, err);
    }
    if (s->lanes)
        lanes_poll_take(s, p, lane_of, nlanes);
    if (afd >= 0 && p[afd].revents)
        lp_aside_ready(s->aside);
    if (s->aside)
        lp_aside_tick(s->aside);
    if (s->sh)
        shards_linger(s);
    else if (lp_batch_busy(s->in) && !ring_full(s) &&
             lp_mono_ms() >= s->in->opened_ms + s->c.linger)
        dispatch(s);
    if (s->park)
        unpark(s, 0);
    lp_spool_replay(s);
    return fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static int wait_input(struct lp_send *s, int fd)
{
    return wait_io(s, fd, POLLIN, -1);
}

static void drain_input(struct lp_send *s, int fd)
{
    struct lp_line ln;
    int rc;

    for (;;) {
        if (lp_send_stopping(s)) {
            /* finish the complete lines already read: they left the pipe */
            while ((rc = lp_lines_next(&s->lines, &ln)) == LP_LINE_OK ||
                   rc == LP_LINE_LONG) {
                if (rc == LP_LINE_OK)
                    one_line(s, &ln);
                else
                    long_line(s, &ln);
            }
            return;
        }
        rc = lp_lines_next(&s->lines, &ln);
        if (rc == LP_LINE_OK) {
            one_line(s, &ln);
            continue;
        }
        if (rc == LP_LINE_LONG) {
            long_line(s, &ln);
            continue;
        }
        if (rc == LP_LINE_EOF)
            return;
        /* need more input */
        if (!wait_input(s, fd))
            continue;
        long got = lp_lines_fill(&s->lines);
        s->now = lp_now_ms();
        if (got < 0 && errno != EAGAIN && errno != EINTR) {
            say(s, LP_NOTICE_ERROR, "%s: %s", s->name ? s->name : "stdin",
                strerror(errno));
            s->exit_code = errno == EISDIR ? LP_EX_NOINPUT : LP_EX_IOERR;
            return;
        }
    }
}

/* ---- --journal ---------------------------------------------------------- */

/*
 * The journal's cursor is the run's producer's (lp_send_open named it):
 * each batch commits, with its events, the cursor of the last entry read
 * into it (add_command, and one_entry for an entry that made no
 * command), so Redis holds exactly the entries up to the cursor it holds.
 * A restart seeks just after that cursor. Batches whose reply was lost
 * are resolved by position as stdin's are (lp_pipeline_resolve): the
 * producer's positions count the commands.
 */

/*
 * --journal with --shards. Each entry takes one position of the run's
 * producer, whether it makes a command or not (s->jpos), and goes to a
 * shard by it (round-robin, an entry each) or by --shard-key. Each
 * shard's field holds the cursor of the last entry its stored batches
 * took, and as its position that entry's (a batch moves the field from
 * the shard's batch before it to the position of the entry whose cursor
 * it takes: lp_pipeline_number, make_gate). So on every shard: the
 * entries at or below its position that go to it are stored, none above
 * it, and the entry after its cursor has the next position.
 *
 * A restart reads every shard's field and goes on just after the cursor
 * of the lowest position, numbering from there: the entries come again in
 * the journal's order and take the positions they took before (one an
 * entry, whatever the checks, --max-age or --rate, say of it now), so
 * each goes to the shard it went to, and each shard passes over those at
 * or below its own position (lp_shard.skip), as a --position run does.
 * Cursors are never compared, only sought, as for one stream.
 *
 * A shard that stored nothing has no cursor: so that a restart knows
 * where the first run began, the first run writes, before it reads, on
 * every shard the place it starts after ("0 <ms> <cursor>", or "head"
 * for the journal's first entry); a later run does the same for a shard
 * without a field (only after a first run stopped while writing them:
 * nothing was sent then). A shard without a field beside a shard past
 * position 0 ends the run (78): a field was removed by hand.
 */

#define JOURNAL_HEAD "head"     /* a shard's cursor: the journal's start */

/* Reads the run's producer's field on every shard: its position into
 * sh[i].last, its cursor into cur[i]. 0, or -1 with err. */
static int jshards_read(struct lp_send *s, struct lp_buf *cur, char *err)
{
    for (unsigned i = 0; i < s->nsh; i++) {
        uint64_t c;
        lp_lane_use(s, s->sh[i].lane);
        if (lp_pipeline_connect(s, err) < 0)
            return -1;
        lp_shard_keys(s, (int)i);
        s->npcache = 0;
        if (lp_pipeline_committed(s, s->producer, strlen(s->producer), &c,
                                  err) < 0 ||
            lp_pipeline_cursor(s, &cur[i], err) < 0)
            return -1;
        s->sh[i].last = c;
    }
    return 0;
}

/* Writes the field "pos <ms> cursor" on every shard that has none (HSETNX:
 * it never moves one). 0, or -1 with err. */
static int jshards_mark(struct lp_send *s, const struct lp_buf *cur,
                        uint64_t pos, const char *cursor, char *err)
{
    char v[64];

    for (unsigned i = 0; i < s->nsh; i++) {
        struct lp_buf val = { 0 };
        struct lp_reply *rep;
        const char *argv[4] = { "HSETNX", NULL, s->producer, NULL };
        size_t lens[4];
        if (cur[i].len)
            continue;
        lp_lane_use(s, s->sh[i].lane);
        lp_shard_keys(s, (int)i);
        snprintf(v, sizeof v, "%" PRIu64 " %" PRId64 " ", pos, lp_now_ms());
        if (lp_buf_adds(&val, v) < 0 || lp_buf_adds(&val, cursor) < 0)
            lp_send_oom(s);
        argv[1] = s->pkey;
        argv[3] = val.p;
        lens[0] = 6;
        lens[1] = strlen(s->pkey);
        lens[2] = strlen(s->producer);
        lens[3] = val.len;
        rep = lp_redis_cmdv(s->r, err, 4, argv, lens);
        lp_buf_free(&val);
        if (rep == NULL)
            return -1;
        if (lp_reply_type(rep) == LP_REPLY_ERROR) {
            char t[LP_ERRLEN - 100];
            snprintf(err, LP_ERRLEN, "HSETNX %s: %s", s->pkey,
                     lp_reply_text(rep, t, sizeof t));
            s->last_permanent |= lp_reply_error_class(rep) >= LP_RERR_KEY;
            lp_reply_free(rep);
            return -1;
        }
        lp_reply_free(rep);
        s->sh[i].last = pos;
    }
    s->npcache = 0;
    return 0;
}

/* Retries f for --timeout (journal_open, the shards' reads); a refusal
 * or the time over ends the run. */
static void jshards_retry(struct lp_send *s, struct lp_buf *cur,
                          int (*f)(struct lp_send *, struct lp_buf *,
                                   void *, char *), void *arg)
{
    char err[LP_ERRLEN], d[32];
    int64_t since = lp_mono_ms();
    int warned = 0;

    lp_format_duration(s->c.timeout, d, sizeof d);
    while (f(s, cur, arg, err) < 0) {
        if (s->last_permanent) {
            say(s, LP_NOTICE_ERROR, "%s", err);
            lp_send_end_run(s, LP_EX_CONFIG);
        }
        if (lp_send_stopping(s)) {
            say(s, LP_NOTICE_ERROR, "interrupted while Redis fails: %s", err);
            lp_send_end_run(s, LP_EX_TEMPFAIL);
        }
        if (lp_mono_ms() - since >= s->c.timeout) {
            say(s, LP_NOTICE_ERROR, "giving up (--timeout %s): %s; nothing "
                "of the journal was read", d, err);
            lp_send_end_run(s, LP_EX_TEMPFAIL);
        }
        if (!warned++)
            say(s, LP_NOTICE_WARN, "%s; retrying for up to %s", err, d);
        poll(NULL, 0, (int)lp_backoff_next(&s->backoff));
        lanes_split(s);
    }
    lp_backoff_reset(&s->backoff);
}

static int jshards_read_f(struct lp_send *s, struct lp_buf *cur, void *arg,
                          char *err)
{
    (void)arg;
    return jshards_read(s, cur, err);
}

struct jmark { uint64_t pos; const char *cursor; };

static int jshards_mark_f(struct lp_send *s, struct lp_buf *cur, void *arg,
                          char *err)
{
    const struct jmark *m = arg;

    return jshards_mark(s, cur, m->pos, m->cursor, err);
}

/* journal_open with --shards: the journal opened where the shard of the
 * lowest position stopped, the positions and the shards' skips set, the
 * shards without a field marked. */
static void journal_shards_open(struct lp_send *s, struct lp_jsource_conf *jc)
{
    char err[LP_ERRLEN];
    struct lp_buf *cur = calloc(s->nsh, sizeof *cur);
    int low = -1, none = 0, head = 0;
    struct jmark m = { 0, NULL };

    struct lp_buf *wcur = NULL;
    unsigned wn = 0;
    int wlow = -1;

    if (cur == NULL)
        lp_send_oom(s);
    jshards_retry(s, cur, jshards_read_f, NULL);
    if (s->was_n) {
        /* after a change of the count: the fields of the count before
         * (was_read), each entry passed over at or below its old
         * shard's too (lp_cmd.wshard) */
        if ((wcur = calloc(s->was_n, sizeof *wcur)) == NULL)
            lp_send_oom(s);
        was_read(s, wcur);
        for (unsigned j = 0; j < s->was_n; j++) {
            if (wcur[j].len == 0)
                continue;
            if (lp_buf_addc(&wcur[j], '\0') < 0)
                lp_send_oom(s);
            wcur[j].len--;
            wn++;
            if (wlow < 0 || s->was_skip[j] < s->was_skip[wlow])
                wlow = (int)j;
        }
    }
    for (unsigned i = 0; i < s->nsh; i++) {
        if (cur[i].len == 0) {
            none++;
            continue;
        }
        if (lp_buf_addc(&cur[i], '\0') < 0)
            lp_send_oom(s);
        cur[i].len--;
        if (low < 0 || s->sh[i].last < s->sh[low].last)
            low = (int)i;
    }
    if (low >= 0 && none && s->sh[low].last > 0 && wn == 0) {
        say(s, LP_NOTICE_ERROR, "--journal --shards: producer %s has no "
            "field on %u of the %u shards, and is at position %" PRIu64
            " or past on the others (a field removed by hand?): not sent, "
            "lest entries be lost or sent twice", s->producer, none,
            s->nsh, s->sh[low].last);
        for (unsigned i = 0; i < s->nsh; i++)
            lp_buf_free(&cur[i]);
        free(cur);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    if (low >= 0 || wlow >= 0) {
        /* on after the lowest, over the shards of both counts after a
         * change (every entry at or below it is stored, on its old shard
         * or its new one); each shard passes over what it holds, and
         * what the entry's old shard holds (was_skip) */
        int old = wlow >= 0 &&
                  (low < 0 || s->was_skip[wlow] < s->sh[low].last);
        m.pos = old ? s->was_skip[wlow] : s->sh[low].last;
        m.cursor = old ? wcur[wlow].p : cur[low].p;
        if (strcmp(m.cursor, JOURNAL_HEAD) == 0) {
            jc->from_end = 0;
            jc->cursor = NULL;
        } else {
            jc->cursor = m.cursor;
            say(s, LP_SEND_DEBUG, "journal: going on after cursor %s (shard "
                "%u of %u, position %" PRIu64 ")", m.cursor,
                old ? (unsigned)wlow : (unsigned)low,
                old ? s->was_n : s->nsh, m.pos);
        }
    }
    if ((s->js = lp_jsource_new(jc, err)) == NULL) {
        say(s, LP_NOTICE_ERROR, "%s", err);
        for (unsigned i = 0; i < s->nsh; i++)
            lp_buf_free(&cur[i]);
        free(cur);
        lp_send_end_run(s, LP_EX_NOINPUT);
    }
    if (low < 0 && wlow < 0) {
        /* the first run: where it begins, on every shard */
        m.cursor = lp_jsource_start(s->js, &head);
        if (m.cursor == NULL && !head) {
            say(s, LP_NOTICE_ERROR, "journal: the cursor of its last entry "
                "could not be read");
            for (unsigned i = 0; i < s->nsh; i++)
                lp_buf_free(&cur[i]);
            free(cur);
            lp_send_end_run(s, LP_EX_NOINPUT);
        }
        if (m.cursor == NULL)
            m.cursor = JOURNAL_HEAD;
    }
    if (none)
        jshards_retry(s, cur, jshards_mark_f, &m);
    s->next_pos = m.pos + 1;
    for (unsigned i = 0; i < s->nsh; i++) {
        s->sh[i].skip = s->sh[i].last;
        lp_buf_free(&cur[i]);
    }
    free(cur);
    for (unsigned j = 0; wcur && j < s->was_n; j++)
        lp_buf_free(&wcur[j]);
    free(wcur);
    if (s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "--journal --shards %u: producer %s goes on "
            "from position %" PRIu64 "%s", s->nsh, s->producer, s->next_pos,
            low < 0 && wlow < 0 ? " (its start marked on every shard)"
                                : "");
}

/* jshards_retry's step of one stream: connected, its committed cursor */
static int jcursor_f(struct lp_send *s, struct lp_buf *cur, void *arg,
                     char *err)
{
    (void)arg;
    if (lp_pipeline_connect(s, err) < 0)
        return -1;
    return lp_pipeline_cursor(s, cur, err);
}

/* Connects and reads the committed cursor, retrying for --timeout; then
 * opens the journal just after it (none: at its end, or its start with
 * --from-start). A failure ends the run. */
static void journal_open(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct lp_jsource_conf jc = {
        .dir = s->c.journal_dir,
        .match = (const char *const *)s->c.journal_match.item,
        .nmatch = s->c.journal_match.n,
        .from_end = !s->c.from_start,
        .max_event = s->c.max_line,
    };

    if (s->sh) {
        journal_shards_open(s, &jc);
        s->jcur.len = 0;
        s->name = "journal";
        return;
    }
    jshards_retry(s, &s->jcur, jcursor_f, NULL);
    if (s->jcur.len) {
        if (lp_buf_addc(&s->jcur, '\0') < 0)
            lp_send_oom(s);
        jc.cursor = s->jcur.p;
        say(s, LP_SEND_DEBUG, "journal: going on after cursor %s", jc.cursor);
    }
    if ((s->js = lp_jsource_new(&jc, err)) == NULL) {
        say(s, LP_NOTICE_ERROR, "%s", err);
        lp_send_end_run(s, LP_EX_NOINPUT);
    }
    s->jcur.len = 0;
    s->name = "journal";
}

/*
 * --journal --shards, every --batch entries: a shard that has taken no
 * entry for more than N x --batch positions (more than a round of the
 * blocks) and holds none waiting (--shard-key with few keys, or none of
 * its own) gets the entry's cursor alone
 * in its batch, which moves its field there after its batches before
 * (all its entries up to here are in them): a restart then goes on from
 * near the end, not from the last entry that shard took, which may be
 * the first run's start.
 */
static void jshards_lagging(struct lp_send *s)
{
    int keep = s->cur_in;

    for (unsigned i = 0; i < s->nsh; i++) {
        struct lp_batch *b = &s->sh[i].in;
        uint16_t k;
        if (lp_batch_busy(b) ||
            s->sh[i].last + (uint64_t)s->nsh * s->c.batch >= s->jpos)
            continue;
        b->opened_ms = lp_mono_ms();
        k = lp_batch_prod(s, b, s->producer, strlen(s->producer), s->jcur.p,
                          s->jcur.len);
        b->prods[k].base = s->jpos;
        /* now: while entries come, only full batches and the current
         * one's linger are looked at */
        shard_in(s, (int)i);
        dispatch(s);
    }
    shard_in(s, keep);
}

/* One entry: through one_event, as a line's event is; its cursor goes
 * with the batch being filled. */
static void one_entry(struct lp_send *s, const struct lp_jentry *e)
{
    struct lp_line ln;
    char at[64];
    uint64_t made = s->ncmds;

    s->jentry++;
    s->n.lines++;
    if (s->sh)
        s->jpos = s->next_pos++;    /* a command or not */
    s->jcur.len = 0;
    if (lp_buf_adds(&s->jcur, e->cursor) < 0)
        lp_send_oom(s);
    memset(&ln, 0, sizeof ln);
    ln.p = e->event;
    ln.len = e->len;
    ln.lineno = s->jentry;
    ln.start = s->jentry - 1;
    where(s, at, sizeof at, s->jentry);
    if (e->kind == LP_JENTRY_SKIPPED) {
        s->n.rejected++;
        say(s, LP_SEND_BAD, "%s: longer than --max-line (%" PRIu64 " bytes) "
            "even cut: skipped", at, s->c.max_line);
    } else {
        if (e->kind == LP_JENTRY_CUT)
            say(s, LP_SEND_DEBUG, "%s: cut to --max-line (%" PRIu64 " bytes): "
                "%d %s dropped or cut", at, s->c.max_line, e->dropped,
                e->dropped == 1 ? "value" : "values");
        one_event(s, &ln);
    }
    /* an entry that made no command (rejected, skipped) moves the
     * cursor all the same: the batch commits the cursor alone then (one
     * that made commands set it with them, in the batch they went to) */
    if (s->sh && s->jpos % s->c.batch == 0)
        jshards_lagging(s);
    if (s->ncmds != made)
        return;
    if (!lp_batch_busy(s->in))
        s->in->opened_ms = lp_mono_ms();
    {
        uint16_t i = lp_batch_prod(s, s->in, s->producer,
                                   strlen(s->producer), s->jcur.p,
                                   s->jcur.len);
        if (s->sh)
            s->in->prods[i].base = s->jpos;
    }
}

/* --journal: entries as they come, until a stop. Rate limits and
 * backpressure wait inside one_entry: no entry is read meanwhile. */
static void journal_input(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct lp_jentry e;
    int rc;

    journal_open(s);
    while (!lp_send_stopping(s)) {
        rc = lp_jsource_next(s->js, &e, err);
        if (rc > 0) {
            if ((s->jentry & 255) == 0)
                s->now = lp_now_ms();
            one_entry(s, &e);
            continue;
        }
        if (rc == 0) {
            /* the cap: a stop signal between the check and the poll
             * waits at most a second */
            int t = lp_jsource_timeout(s->js);
            wait_io(s, lp_jsource_fd(s->js), lp_jsource_events(s->js),
                    t < 0 || t > 1000 ? 1000 : t);
            s->now = lp_now_ms();
            rc = lp_jsource_process(s->js, err);
        }
        if (rc < 0) {
            say(s, LP_NOTICE_ERROR, "journal: %s", err);
            s->exit_code = LP_EX_IOERR;
            return;
        }
    }
}

/* ---- --follow ----------------------------------------------------------- */

/*
 * Each file followed is a producer of its own, "<producer>:<identity>"
 * (lp_follow.h: the identity), and the cursor its batches commit is the
 * offset after the last line of the file they hold: Redis holds exactly
 * the lines before it, so a restart hands each file its cursor and reads
 * on from there. Each file numbers its commands with a counter of its own
 * (lp_follow_line.seq), which goes on from the highest position Redis or
 * the WAL holds for it: a batch's gate commits it only right after the
 * file's batch before it.
 */

/*
 * --follow with --shards. Every line of one file goes to one shard, its
 * file's: FNV-1a of the file's identity, as its producer field names it,
 * mod N (file_shard). So a file's producer field lives in that shard's
 * producers hash alone, all the commands it moves over are on that shard,
 * in its order, and all that is said above holds per shard: a file's
 * batches are its shard's, gated from the file's field there, its cursor
 * committed with them; at start each shard's hash is read for the files'
 * positions (a field is in one of them). A file rotated (renamed) keeps
 * its identity, hence its shard; one cut back (copytruncate) or rewritten
 * is a new identity, a new producer, maybe on another shard. Files spread
 * over the shards, the lines of one file do not: a stream of one busy
 * file is one shard's. With --shard-key the lines of a file go to several
 * shards, each (file, shard) with a field of its own: "--follow with
 * --shard-key" below.
 */
static uint64_t fnv(uint64_t h, const char *p, size_t n);

/* The shard of the file of identity id[0..n) (cut as file_producer cuts
 * it for its producer's name): FNV-1a, mixed (MurmurHash3's fmix64: FNV's
 * multiplier is 1 mod 3, and identities that differ in a few hex digits
 * fell on one shard of 3 more often than a third of the time). */
static unsigned file_shard(const struct lp_send *s, const char *id, size_t n)
{
    uint64_t h;

    if (s->fbase + n > LP_PRODUCER_MAX)
        n = LP_PRODUCER_MAX - s->fbase;
    h = fnv(0xcbf29ce484222325ULL, id, n);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (unsigned)(h % s->nsh);
}

/* The shard fpos.shard gives the fields of the count before a change
 * (fpos_of_was: was_n's shard j is FPOS_WAS + j), and the WAL's records
 * (with --shard-key, a record's shard: its key's) */
#define FPOS_WAS 0x10000u
#define FPOS_WAL 0xffffffffu

/* A position of one file, as Redis or the WAL has it */
struct fpos {
    char id[LP_FOLLOW_IDLEN];
    uint64_t cur, pos;
    unsigned shard;             /* --shards: whose hash holds it */
};

struct fpos_list {
    struct lp_send *s;
    struct fpos *v;
    size_t n, cap;
    unsigned shard;             /* the hash being read */
};

/* One field or record of ours: a file's cursor and position are kept
 * (the highest of each wins later); the run's own (commands that failed
 * inside a stored batch, in the WAL again) sets the run's counter. */
static void fpos_add(struct fpos_list *l, const char *name, size_t len,
                     uint64_t pos, const char *cur, size_t curlen)
{
    struct lp_send *s = l->s;
    size_t idlen;

    if (len < s->fbase - 1 || memcmp(name, s->fprod, s->fbase - 1) != 0)
        return;
    if (len == s->fbase - 1 && pos >= s->next_pos)
        s->next_pos = pos + 1;
    if (len <= s->fbase || name[s->fbase - 1] != ':' ||
        (idlen = len - s->fbase) >= LP_FOLLOW_IDLEN)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct fpos *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            lp_send_oom(s);
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n].id, name + s->fbase, idlen);
    l->v[l->n].id[idlen] = '\0';
    l->v[l->n].pos = pos;
    l->v[l->n].shard = l->shard;
    l->v[l->n++].cur = lp_cursor_num(cur, curlen);
}

static void fpos_of_wal(void *arg, const char *name, size_t len,
                        uint64_t pos, const char *cur, size_t curlen,
                        const char *rec, size_t reclen)
{
    struct fpos_list *l = arg;
    const char *key, *data;
    size_t keylen, datalen;
    int shard = -1, isdlq;

    l->shard = FPOS_WAL;
    /* --follow --shard-key: a record is its (file, shard)'s, the shard its
     * key's (a dead letter: the DLQ of the file's shard, numbered there) */
    if (l->s->fkmode &&
        (!lp_wal_event(rec, reclen, &key, &keylen, &data, &datalen) ||
         (shard = lp_shard_of_key(l->s, key, keylen, &isdlq)) < 0))
        return;                 /* not a shard's: the replay says so */
    if (l->s->fkmode)
        l->shard = (unsigned)shard;
    fpos_add(arg, name, len, pos, cur, curlen);
}

static int fpos_cmp(const void *a, const void *b)
{
    const struct fpos *x = a, *y = b;
    int c = strcmp(x->id, y->id);

    return c ? c : (x->cur < y->cur ? -1 : x->cur > y->cur);
}

/* HSCAN of <stream>:producers for our fields. 0, or -1 with err. */
static int fpos_of_redis(struct fpos_list *l, char *err)
{
    struct lp_send *s = l->s;
    char cursor[32] = "0", match[LP_PRODUCER_MAX + 4];

    snprintf(match, sizeof match, "%.*s*", (int)(s->fbase - 1), s->fprod);
    do {
        struct lp_reply *rep = lp_redis_cmd(s->r, err, "HSCAN", s->pkey,
                                            cursor, "MATCH", match, "COUNT",
                                            "1000", NULL);
        const struct lp_reply *kv;
        const char *c;
        size_t n;
        if (rep == NULL)
            return -1;
        if (lp_reply_type(rep) == LP_REPLY_ERROR) {
            char t[LP_ERRLEN - 100];
            snprintf(err, LP_ERRLEN, "HSCAN %s: %s", s->pkey,
                     lp_reply_text(rep, t, sizeof t));
            s->last_permanent |= lp_reply_error_class(rep) >= LP_RERR_KEY;
            lp_reply_free(rep);
            return -1;
        }
        if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2 ||
            (c = lp_reply_str(lp_reply_at(rep, 0), &n)) == NULL ||
            n >= sizeof cursor) {
            snprintf(err, LP_ERRLEN, "HSCAN %s: an odd reply", s->pkey);
            lp_reply_free(rep);
            return -1;
        }
        memcpy(cursor, c, n);
        cursor[n] = '\0';
        kv = lp_reply_at(rep, 1);
        for (size_t i = 0; i + 1 < lp_reply_len(kv); i += 2) {
            size_t fl, vl;
            const char *f = lp_reply_str(lp_reply_at(kv, i), &fl);
            const char *v = lp_reply_str(lp_reply_at(kv, i + 1), &vl);
            struct lp_field fv;
            if (f == NULL || v == NULL)
                continue;
            /* "<pos> <unix-ms> <offset>" */
            lp_field_parse(v, vl, &fv);
            fpos_add(l, f, fl, fv.pos, fv.cursor, fv.clen);
        }
        lp_reply_free(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* fpos_of_redis of every shard (--shards), each on its connection; the
 * lane is the first shard's after. 0, or -1 with err. */
static int fpos_of_shards(struct fpos_list *l, char *err)
{
    for (unsigned i = 0; i < l->s->nsh; i++) {
        struct lp_send *s = l->s;
        lp_lane_use(s, s->sh[i].lane);
        if (lp_pipeline_connect(s, err) < 0)
            return -1;
        lp_shard_keys(s, (int)i);
        l->shard = i;
        if (fpos_of_redis(l, err) < 0)
            return -1;
    }
    return 0;
}


/* fpos_of_redis of every shard of the count before a change (was_n),
 * its fields where was_conn says. 0, or -1 with err. */
static int fpos_of_was(struct fpos_list *l, char *err)
{
    struct lp_send *s = l->s;
    struct lp_redis *r0 = s->r;
    char name[1100], pkey0[sizeof s->pkey];
    int rc = 0;

    memcpy(pkey0, s->pkey, sizeof pkey0);
    for (unsigned j = 0; j < s->was_n && rc == 0; j++) {
        struct lp_redis *r;
        if ((r = was_conn(s, j, name, sizeof name, s->pkey, sizeof s->pkey,
                          err)) == NULL) {
            rc = -1;
            break;
        }
        s->r = r;
        l->shard = FPOS_WAS + j;
        rc = fpos_of_redis(l, err);
        s->r = r0;
        lp_redis_free(r);
    }
    memcpy(s->pkey, pkey0, sizeof pkey0);
    return rc;
}

/* --follow --shard-key: each file's fields (l sorted by identity) into
 * its state, the file handed the lowest of its shards' cursors (0 when a
 * shard has none). The count of files known. */
static size_t fk_positions(struct lp_send *s, struct fpos_list *l)
{
    char err[LP_ERRLEN];
    size_t known = 0, j;

    for (size_t i = 0; i < l->n; i = j) {
        struct lp_fkey *k = fk_get(s, l->v[i].id);
        uint64_t low = UINT64_MAX, base = 0;
        unsigned nf = 0;
        for (j = i; j < l->n && strcmp(l->v[j].id, l->v[i].id) == 0; j++) {
            const struct fpos *f = &l->v[j];
            if (f->shard >= FPOS_WAS) {
                /* the stream's own key, before the first --shards
                 * (was_n 1: follow_open refuses any other count): the
                 * lines up to its cursor are stored, on no shard */
                if (f->cur > base)
                    base = f->cur;
                continue;
            }
            if (k->skip[f->shard] == 0 && k->seq[f->shard] == 0)
                nf++;
            if (f->pos > k->seq[f->shard])
                k->seq[f->shard] = f->pos;
            if (f->cur > k->skip[f->shard])
                k->skip[f->shard] = f->cur;
        }
        if (base) {
            for (unsigned h = 0; h < s->nsh; h++)
                if (k->skip[h] < base)
                    k->skip[h] = base;
            nf = s->nsh;        /* every shard goes on past it */
        }
        for (unsigned h = 0; h < s->nsh; h++)
            if (k->skip[h] < low)
                low = k->skip[h];
        if (nf < s->nsh)
            low = 0;            /* a shard without a field: all of it */
        if (lp_follow_position(s->fl, k->id, low, 0, err) < 0) {
            say(s, LP_NOTICE_WARN, "%s: %.*s%s: %s (passed over)", s->pkey,
                (int)s->fbase, s->fprod, k->id, err);
            fk_drop(s, k->id);
            continue;
        }
        if (s->c.verbosity >= 2)
            say(s, LP_SEND_DEBUG, "--follow: %.*s%s goes on at byte %" PRIu64
                " (%u of %u shards with a field)", (int)s->fbase, s->fprod,
                k->id, low, nf, s->nsh);
        known++;
    }
    return known;
}

/* Makes the follower, connects, and hands it each file's position (the
 * higher of Redis's and the WAL's), retrying Redis for --timeout; the
 * counter goes above every position of ours. A failure ends the run. */
static void follow_open(struct lp_send *s)
{
    char err[LP_ERRLEN], d[32];
    struct lp_follow_conf fc = {
        .patterns = (const char *const *)s->c.follow.item,
        .npatterns = (size_t)s->c.follow.n,
        .max_line = s->c.max_line,
        .partial_ms = (uint64_t)s->c.partial_timeout,
        .poll_ms = (uint64_t)s->c.follow_poll,
        .from_end = s->c.from_end,
        .no_inotify = s->c.follow_no_inotify,
        .forget_ms = (uint64_t)s->c.follow_forget,
        .notify = s->nt,
    };
    struct fpos_list l = { .s = s };
    int64_t since = lp_mono_ms();
    int warned = 0;
    size_t known = 0;

    if ((s->fl = lp_follow_new(&fc, err)) == NULL) {
        say(s, LP_NOTICE_ERROR, "--follow: %s", err);
        lp_send_end_run(s, LP_EX_SOFTWARE);
    }
    lp_format_duration(s->c.timeout, d, sizeof d);
    for (;;) {
        l.n = 0;
        if (s->sh ? fpos_of_shards(&l, err) == 0 &&
                    fpos_of_was(&l, err) == 0 :
            lp_pipeline_connect(s, err) == 0 && fpos_of_redis(&l, err) == 0)
            break;
        if (s->last_permanent) {
            say(s, LP_NOTICE_ERROR, "%s", err);
            free(l.v);
            lp_send_end_run(s, LP_EX_CONFIG);
        }
        if (lp_send_stopping(s)) {
            say(s, LP_NOTICE_ERROR, "interrupted while Redis fails: %s", err);
            free(l.v);
            lp_send_end_run(s, LP_EX_TEMPFAIL);
        }
        if (lp_mono_ms() - since >= s->c.timeout) {
            say(s, LP_NOTICE_ERROR, "giving up (--timeout %s): %s; nothing "
                "was read: the files' positions are in Redis", d, err);
            free(l.v);
            lp_send_end_run(s, LP_EX_TEMPFAIL);
        }
        if (!warned++)
            say(s, LP_NOTICE_WARN, "%s; retrying for up to %s", err, d);
        poll(NULL, 0, (int)lp_backoff_next(&s->backoff));
        lanes_split(s);
    }
    lp_backoff_reset(&s->backoff);
    if (s->sh && s->was_n) {
        /* after a change of the count (fpos_of_was): a file's field on a
         * shard that is not its shard now gives its cursor (the lines
         * before it are stored, on that shard), not its position: the
         * gate of its shard now goes on from the field there, or from 0 */
        for (size_t i = 0; i < l.n; i++) {
            /* a count before of 1, the stream's own key: one field a
             * file, where it stopped over every shard (fk_positions) */
            if (l.v[i].shard >= FPOS_WAS && s->fkmode && s->was_n > 1) {
                say(s, LP_NOTICE_ERROR, "--follow --shard-key: the count "
                    "of shards of %s changed from %u to %u, and file %s "
                    "has a field of %.*s on a shard of %u: where its lines "
                    "stopped cannot be told across two counts; not sent "
                    "(go on with --shards %u; or, the files read and the "
                    "stream drained, start with another --producer and "
                    "--from-end: see send(1) CAVEATS)", s->stream0,
                    s->was_n, s->nsh, l.v[i].id, (int)(s->fbase - 1),
                    s->fprod, s->was_n, s->was_n);
                free(l.v);
                lp_send_end_run(s, LP_EX_CONFIG);
            }
            if (!s->fkmode &&
                l.v[i].shard != file_shard(s, l.v[i].id, strlen(l.v[i].id)))
                l.v[i].pos = 0;
        }
    }
    l.shard = FPOS_WAL;
    if (s->wal && lp_wal_records(s->wal, fpos_of_wal, &l, err) < 0) {
        say(s, LP_NOTICE_ERROR, "%s", err);
        free(l.v);
        lp_send_end_run(s, LP_EX_IOERR);
    }
    /* sorted by identity, then cursor: the last of each is its highest,
     * and lp_follow_position keeps the last it is given */
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, fpos_cmp);
    if (s->fkmode) {
        known = fk_positions(s, &l);
        l.n = 0;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (i + 1 < l.n && strcmp(l.v[i].id, l.v[i + 1].id) == 0) {
            if (l.v[i].pos > l.v[i + 1].pos)
                l.v[i + 1].pos = l.v[i].pos;
            continue;
        }
        if (lp_follow_position(s->fl, l.v[i].id, l.v[i].cur, l.v[i].pos,
                               err) < 0) {
            say(s, LP_NOTICE_WARN, "%s: %.*s%s: %s (passed over)", s->pkey,
                (int)s->fbase, s->fprod, l.v[i].id, err);
            continue;
        }
        if (s->c.verbosity >= 2)
            say(s, LP_SEND_DEBUG, "--follow: %.*s%s goes on at byte %" PRIu64,
                (int)s->fbase, s->fprod, l.v[i].id, l.v[i].cur);
        known++;
    }
    free(l.v);
    if (s->c.verbosity >= 2)
        say(s, LP_SEND_DEBUG, "--follow: %zu %s of producer %s known",
            known, lp_plural(known, "file", "files"), s->producer);
    s->name = "--follow";
}

/* v in decimal into o (room for 20 digits): its length. A line's offset
 * is written so for every line read: snprintf was a tenth of --follow's
 * instructions (callgrind). */
static size_t u64dec(char *o, uint64_t v)
{
    char t[20];
    size_t n = 0;

    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        o[i] = t[n - 1 - i];
    return n;
}

/* The producer of a file's lines: "<producer>:<identity>". */
static void file_producer(struct lp_send *s, const struct lp_follow_line *fl)
{
    size_t n = strlen(fl->id);

    if (s->fbase + n > LP_PRODUCER_MAX)
        n = LP_PRODUCER_MAX - s->fbase; /* lp_send_open left room */
    memcpy(s->fprod + s->fbase, fl->id, n);
    s->fprodlen = s->fbase + n;
    s->fprod[s->fprodlen] = '\0';
    s->fcurlen = u64dec(s->fcur, fl->end);
    s->fseq = fl->seq;
    if (s->sh)
        s->fshard = file_shard(s, fl->id, n);
    if (s->fkmode)
        s->fk = fk_get(s, fl->id);
}

/* The index of the file's producer in the input batch, or -1. */
static int batch_has(const struct lp_send *s)
{
    const struct lp_batch *b = s->in;

    for (int i = 0; i < b->nprods; i++)
        if (b->prods[i].namelen == s->fprodlen &&
            memcmp(b->pbuf.p + b->prods[i].name, s->fprod, s->fprodlen) == 0)
            return i;
    return -1;
}

/* One line (or chunk of one) of a file: through one_line as stdin's; its
 * commands in one batch, which then commits the offset after it. A line
 * that made no command (rejected, empty) moves the offset all the same:
 * the batch commits the file's cursor alone then. */
static void file_line(struct lp_send *s, const struct lp_follow_line *fl,
                      int chunk)
{
    struct lp_line ln;

    file_producer(s, fl);
    if (s->fkmode && (!chunk || fl->first))
        fk_line_begin(s);
    if (s->sh)
        shard_in(s, (int)s->fshard);    /* its file's shard's batch */
    if (s->in->nprods >= LP_BATCH_PRODS && batch_has(s) < 0)
        dispatch(s);            /* its table of producers is full */
    s->name = fl->path;
    memset(&ln, 0, sizeof ln);
    ln.p = fl->p;
    ln.len = fl->len;
    ln.lineno = fl->start;      /* where(): files have offsets */
    ln.start = fl->start;
    s->mid_line = 1;
    if (chunk) {
        ln.first = fl->first;
        ln.last = fl->last;
        long_line(s, &ln);
    } else {
        if (fl->partial && s->c.verbosity >= 2)
            say(s, LP_SEND_DEBUG, "%s: the line at byte %" PRIu64 " has no "
                "newline after --partial-timeout: sent as it is", fl->path,
                fl->start);
        one_line(s, &ln);
    }
    s->mid_line = 0;
    if (!chunk || fl->last) {
        /* the batch commits the offset after the line, whatever it made:
         * a rejected or empty line is not read again */
        uint16_t i;
        if (s->fkmode) {
            fk_line_end(s, fl->end);
        } else {
            if (!lp_batch_busy(s->in))
                s->in->opened_ms = lp_mono_ms();
            i = lp_batch_prod(s, s->in, s->fprod, s->fprodlen, s->fcur,
                              s->fcurlen);
            s->in->prods[i].base = *s->fseq;
        }
    }
    if (s->want_dispatch) {
        s->want_dispatch = 0;
        if (s->fkmode)
            fk_dispatch_full(s);
        else
            dispatch(s);
    }
}

/* Drops the fields of files gone for good (lp_follow's forget_ms), when
 * nothing is in flight; a failure keeps them for the next time (and
 * --producer-ttl removes them in the end). */
static void forget_shards(struct lp_send *s);

static void forget_files(struct lp_send *s)
{
    char err[LP_ERRLEN];
    const char *argv[66];
    size_t lens[66], n = 2, off = 0;
    char names[64][LP_PRODUCER_MAX + 1];

    if (s->sh) {
        forget_shards(s);
        return;
    }
    if (s->forget.len == 0 || s->count > 0 || lp_batch_busy(s->in) ||
        s->walmode || !lp_redis_connected(s->r))
        return;
    argv[0] = "HDEL";
    lens[0] = 4;
    argv[1] = s->pkey;
    lens[1] = strlen(s->pkey);
    while (off < s->forget.len && n < 66) {
        const char *id = s->forget.p + off;
        size_t il = strlen(id);
        snprintf(names[n - 2], sizeof names[0], "%.*s%s", (int)s->fbase,
                 s->fprod, id);
        argv[n] = names[n - 2];
        lens[n] = strlen(names[n - 2]);
        n++;
        off += il + 1;
    }
    struct lp_reply *rep = lp_redis_cmdv(s->r, err, (int)n, argv, lens);
    if (rep && lp_reply_type(rep) == LP_REPLY_INTEGER) {
        if (s->c.verbosity >= 1)
            say(s, LP_NOTICE_INFO, "--follow: forgot the positions of %zu "
                "%s deleted long ago", n - 2, lp_plural(n - 2, "file", "files"));
        memmove(s->forget.p, s->forget.p + off, s->forget.len - off);
        s->forget.len -= off;
    }
    lp_reply_free(rep);
}

/* forget_files with --shards: each file's field is in its shard's hash;
 * nothing in flight on any connection, no shard's batch filling. One HDEL
 * a file (they are rare), up to 64 a call; a failure keeps the rest. */
static void forget_shards(struct lp_send *s)
{
    char err[LP_ERRLEN], name[LP_PRODUCER_MAX + 1];
    size_t off = 0, done = 0;

    if (s->forget.len == 0 || s->walmode)
        return;
    for (unsigned i = 0; i < s->nsh; i++)
        if (lp_batch_busy(&s->sh[i].in))
            return;
    for (int l = 0; l < (s->lanes ? s->nlanes : 1); l++) {
        lp_lane_use(s, l);
        if (s->count > 0 || !lp_redis_connected(s->r))
            return;
    }
    while (off < s->forget.len && done < 64) {
        const char *id = s->forget.p + off;
        size_t il = strlen(id), n = il;
        unsigned h;
        struct lp_reply *rep;
        if (s->fbase + n > LP_PRODUCER_MAX)
            n = LP_PRODUCER_MAX - s->fbase;
        int bad = 0;
        h = file_shard(s, id, n);
        snprintf(name, sizeof name, "%.*s%.*s", (int)s->fbase, s->fprod,
                 (int)n, id);
        /* --shard-key: its field on every shard */
        for (unsigned k = s->fkmode ? 0 : h;
             k < (s->fkmode ? s->nsh : h + 1) && !bad; k++) {
            lp_lane_use(s, s->sh[k].lane);
            lp_shard_keys(s, (int)k);
            rep = lp_redis_cmd(s->r, err, "HDEL", s->pkey, name, NULL);
            bad = rep == NULL || lp_reply_type(rep) != LP_REPLY_INTEGER;
            lp_reply_free(rep);
        }
        if (bad)
            break;
        off += il + 1;
        done++;
    }
    if (done && s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "--follow: forgot the positions of %zu "
            "%s deleted long ago", done, lp_plural(done, "file", "files"));
    memmove(s->forget.p, s->forget.p + off, s->forget.len - off);
    s->forget.len -= off;
}

/* --follow: lines as the files grow, until a stop. Rate limits and
 * backpressure wait inside file_line: nothing is read meanwhile. */
static void follow_input(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct lp_follow_line fl;
    uint64_t n = 0;
    int rc;

    follow_open(s);
    while (!lp_send_stopping(s)) {
        rc = lp_follow_next(s->fl, &fl, err);
        if (rc == LP_FOLLOW_LINE || rc == LP_FOLLOW_LONG) {
            if ((++n & 255) == 0)
                s->now = lp_now_ms();
            file_line(s, &fl, rc == LP_FOLLOW_LONG);
            continue;
        }
        if (rc == LP_FOLLOW_FORGET) {
            if (s->fkmode)
                fk_drop(s, fl.id);
            if (lp_buf_add(&s->forget, fl.id, strlen(fl.id) + 1) < 0)
                lp_send_oom(s);
            continue;
        }
        if (rc < 0) {
            say(s, LP_NOTICE_ERROR, "--follow: %s", err);
            lp_send_end_run(s, LP_EX_SOFTWARE);
        }
        /* nothing now: what is waiting goes, then a wait for the files,
         * Redis, the linger; the cap: a stop signal between the check
         * and the poll waits at most a second */
        if (s->fkmode)
            fk_idle(s);
        forget_files(s);
        int t = lp_follow_timeout(s->fl);
        wait_io(s, lp_follow_fd(s->fl), POLLIN, t < 0 || t > 1000 ? 1000 : t);
        s->now = lp_now_ms();
    }
}

/*
 * A run of its own producer (stdin, FILEs, no --producer), all its
 * batches answered, no WAL: nothing will ever be resolved against its
 * field again, so it goes (HDEL), and the hash does not keep one field
 * per run for --producer-ttl. With a WAL it stays: records of ours may
 * still be sent from it, by us or by a --flush-wal beside us. A failure
 * only leaves the field to --producer-ttl.
 */
static void forget_own(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct lp_reply *rep;

    if (s->c.producer || s->js || s->fl || s->wal || s->count > 0 ||
        s->in->n > 0 || !s->pos_known || !lp_redis_connected(s->r))
        return;
    if (s->sh) {
        /* every shard's field: all its batches were answered */
        for (unsigned i = 0; i < s->nsh; i++) {
            lp_lane_use(s, s->sh[i].lane);
            lp_shard_keys(s, (int)i);
            if (s->count > 0 || !lp_redis_connected(s->r))
                continue;
            rep = lp_redis_cmd(s->r, err, "HDEL", s->pkey, s->producer, NULL);
            lp_reply_free(rep);
        }
        return;
    }
    rep = lp_redis_cmd(s->r, err, "HDEL", s->pkey, s->producer, NULL);
    lp_reply_free(rep);
}

/* Serving: a request's command in the batch being filled or in the ring? */
static int serve_in_hand(const struct lp_send *s)
{
    if (s->park)
        return 1;
    for (int i = -1; i < s->count; i++) {
        const struct lp_batch *b = i < 0 ? s->in
                                         : &s->ring[(s->head + i) %
                                                    LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].req)
                return 1;
    }
    return 0;
}

/* The requests of the batch being filled and of the ring fail (why): a
 * batch sent and not answered "maybe stored". */
static void fail_in_hand(struct lp_send *s, const char *why)
{
    for (int i = -1; i < s->count; i++) {
        struct lp_batch *b = i < 0 ? s->in
                                   : &s->ring[(s->head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].req)
                req_failed(&b->ev[k], why,
                           b != s->in && b->tried && !b->answered);
    }
}

/* Input is over: waits for the batches in flight; in WAL mode, re-sends
 * the WAL while Redis takes it. Every event is in Redis or in the WAL by
 * then, so a failure ends the run (exit 0) rather than holding the
 * writer's pipe; only --flush-wal keeps trying, for --timeout. */
static void finish(struct lp_send *s)
{
    char err[LP_ERRLEN], d[32];

    s->finishing = 1;
    if (s->serving && serve_in_hand(s)) {
        /* the door stops only once it has answered every request, but
         * for a second signal: exit now, the requests not stored get
         * 503 (those sent to Redis "maybe stored"), nothing more is
         * sent or waited for */
        unpark_failed(s, "stopping");
        fail_in_hand(s, "stopping");
        lp_batch_reset(s->in);
        while (s->count > 0)
            lp_pipeline_release(s);
        lp_redis_disconnect(s->r);      /* their replies are not read */
    }
    dispatch_all(s);
    for (int l = 0; l < (s->lanes ? s->nlanes : 1); l++) {
        lp_lane_use(s, l);
        while (!s->walmode && s->count > 0) {
            if (lp_pipeline_pump(s, 1, err) < 0)
                lp_send_recover(s, err);
        }
    }
    lp_format_duration(s->c.timeout, d, sizeof d);
    while (s->walmode) {
        /* stopping: no more re-sends, but the replies to those in flight
         * are waited for, so that what Redis stored is acknowledged in
         * the WAL and never sent again by the next run */
        int stop = lp_send_stopping(s) ||
                   (s->fail_since && (!s->c.flush_wal ||
                                     lp_mono_ms() - s->fail_since >=
                                     s->c.timeout));
        lp_lanes_inflight(s);   /* --shards in a cluster: the re-send's */
        if (stop && s->count == 0)
            break;
        if (!stop)
            lp_spool_replay(s);
        if (s->count > 0) {
            if (lp_pipeline_pump(s, 1, err) < 0)
                lp_send_recover(s, err);
        } else if (s->walmode) {
            wait_input(s, -1);
        }
    }
    lp_pipeline_flush_ids(s);
    if (s->walmode) {
        uint64_t left = lp_wal_bytes(s->wal);
        if (s->c.flush_wal) {
            say(s, LP_NOTICE_ERROR, "giving up (--timeout %s): the WAL %s "
                "still holds %" PRIu64 " bytes", d, s->c.wal, left);
            lp_send_end_run(s, LP_EX_TEMPFAIL);
        }
        say(s, LP_NOTICE_WARN, "the WAL %s holds %" PRIu64 " bytes of events "
            "not in Redis yet; the next logpipe-send --wal %s sends them",
            s->c.wal, left, s->c.wal);
    }
    forget_own(s);
}

/* ---- the engine --------------------------------------------------------- */

/* Opens input i; returns the fd, or -1 after saying why (status 66). */
static int open_input(struct lp_send *s, int i)
{
    struct stat st;
    int fd;

    if (strcmp(s->c.files[i], "-") == 0) {
        s->name = NULL;
        return STDIN_FILENO;
    }
    s->name = s->c.files[i];
    if ((fd = open(s->c.files[i], O_RDONLY | O_CLOEXEC)) < 0 ||
        fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        say(s, LP_NOTICE_ERROR, "%s: %s", s->c.files[i],
            fd < 0 ? strerror(errno) : "is a directory");
        if (fd >= 0)
            close(fd);
        s->exit_code = LP_EX_NOINPUT;
        return -1;
    }
    return fd;
}

struct lp_send *lp_send_new(const struct lp_send_conf *c,
                            const struct lp_notify *nt, char *err)
{
    struct lp_send *s = calloc(1, sizeof *s);

    if (s == NULL)
        goto oom;
    s->c = *c;
    if (nt)
        s->nt = *nt;
    s->rejects_fd = -1;
    s->plock_fd = -1;
    s->floor_fd = -1;
    s->rkey_idx = -1;
    s->in = &s->in0;
    s->ring = s->ring0;
    if (metrics_init(s) < 0)
        goto oom;
    return s;
oom:
    lp_send_free(s);
    snprintf(err, LP_ERRLEN, "out of memory");
    return NULL;
}

/* Is --rate-key a plain ".name", read by the scanner rather than jq? */
static int plain_member(const char *k)
{
    return k[0] == '.' && k[1] != '\0' &&
           strspn(k + 1, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
           strlen(k + 1) && !(k[1] >= '0' && k[1] <= '9');
}

int lp_producer_valid(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n <= LP_PRODUCER_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/+-") == n;
}

/* FNV-1a, for the name of --producer's lock file. */
static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

/*
 * --producer NAME: one process at a time sends as NAME (two would give the
 * same positions to different events), on this host: a lock file in
 * $XDG_RUNTIME_DIR (else /tmp) named by the Redis server, the stream and
 * the name, held (flock) for the life of the process. 0, or the exit
 * status with err (75: another one holds it).
 */
static int lock_producer(struct lp_send *s, char *err)
{
    const char *dir = getenv("XDG_RUNTIME_DIR");
    const char *who = lp_redis_name(s->r);
    char path[PATH_MAX];
    uint64_t h = 0xcbf29ce484222325ULL;

    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    h = fnv(h, who, strlen(who) + 1);
    h = fnv(h, s->c.stream, strlen(s->c.stream) + 1);
    h = fnv(h, s->producer, strlen(s->producer));
    snprintf(path, sizeof path, "%s/logpipe-send-%016" PRIx64 ".lock", dir,
             h);
    s->plock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                       0600);
    if (s->plock_fd < 0) {
        snprintf(err, LP_ERRLEN, "--producer: %s: %s", path, strerror(errno));
        return LP_EX_CANTCREAT;
    }
    if (flock(s->plock_fd, LOCK_EX | LOCK_NB) < 0) {
        char who2[128] = "";
        ssize_t k = pread(s->plock_fd, who2, sizeof who2 - 1, 0);
        who2[k > 0 ? k : 0] = '\0';
        who2[strcspn(who2, "\n")] = '\0';
        snprintf(err, LP_ERRLEN, "--producer %s: another logpipe-send sends "
                 "as this producer to %s %s%s%s (lock %s)", s->producer,
                 who, s->c.stream, who2[0] ? ": " : "", who2, path);
        return LP_EX_TEMPFAIL;
    }
    {
        char me[128];
        int n = snprintf(me, sizeof me, "pid %ld on %s\n", (long)getpid(),
                         s->host);
        if (ftruncate(s->plock_fd, 0) == 0 &&
            pwrite(s->plock_fd, me, (size_t)n, 0) < 0)
            (void)0;            /* only for the message of a twin */
    }
    return 0;
}

/* Is key a's gate hold name "<b>:send-hold"? */
static int hold_of(const char *a, const char *b)
{
    size_t n = strlen(b);

    return strncmp(a, b, n) == 0 && strcmp(a + n, ":send-hold") == 0;
}

/* The socket timeout of the engine's connections: --timeout, within 1 s
 * and 10 s. */
static int64_t redis_timeout(const struct lp_send *s)
{
    return s->c.timeout < 10000 ? (s->c.timeout > 1000 ? s->c.timeout : 1000)
                                : 10000;
}

int lp_send_open(struct lp_send *s, char *err)
{
    if (gethostname(s->host, sizeof s->host - 1) < 0)
        strcpy(s->host, "unknown");
    /* the gate moves the stream and the DLQ aside to their hold names:
     * two of those keys that are one would lose a stream */
    if (s->c.dlq && (strcmp(s->c.dlq, s->c.stream) == 0 ||
                     hold_of(s->c.dlq, s->c.stream) ||
                     hold_of(s->c.stream, s->c.dlq))) {
        snprintf(err, LP_ERRLEN, "--dlq %s and --stream %s: the same key, or "
                 "one the other's :send-hold (the gate's)", s->c.dlq,
                 s->c.stream);
        return LP_EX_USAGE;
    }
    if (s->c.producer) {
        if (!lp_producer_valid(s->c.producer)) {
            snprintf(err, LP_ERRLEN, "--producer '%s': 1 to %d of "
                     "A-Z a-z 0-9 . _ : @ / + -", s->c.producer,
                     LP_PRODUCER_MAX);
            return LP_EX_USAGE;
        }
        if (strcmp(s->c.producer, "http") == 0 ||
            strcmp(s->c.producer, "httph") == 0 ||
            strncmp(s->c.producer, "http:", 5) == 0 ||
            strncmp(s->c.producer, "httph:", 6) == 0) {
            snprintf(err, LP_ERRLEN, "--producer '%s': http: and httph: "
                     "are logpipe-http's Idempotency-Keys", s->c.producer);
            return LP_EX_USAGE;
        }
        snprintf(s->producer, sizeof s->producer, "%s", s->c.producer);
    } else if (s->c.journal) {
        /* stable, one per journal and filter: HOST:journal:HASH of the
         * directory and the matches */
        uint64_t h = 0xcbf29ce484222325ULL;
        const char *dir = s->c.journal_dir ? s->c.journal_dir : "";
        size_t n = strspn(s->host, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        h = fnv(h, dir, strlen(dir) + 1);
        for (int i = 0; i < s->c.journal_match.n; i++)
            h = fnv(h, s->c.journal_match.item[i],
                    strlen(s->c.journal_match.item[i]) + 1);
        snprintf(s->producer, sizeof s->producer, "%.*s:journal:%08" PRIx32,
                 (int)(n < 63 ? n : 63), n ? s->host : "unknown",
                 (uint32_t)(h ^ (h >> 32)));
    } else if (s->c.follow.n) {
        /* stable, one per set of patterns: HOST:follow:HASH of them */
        uint64_t h = 0xcbf29ce484222325ULL;
        size_t n = strspn(s->host, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        for (int i = 0; i < s->c.follow.n; i++)
            h = fnv(h, s->c.follow.item[i], strlen(s->c.follow.item[i]) + 1);
        snprintf(s->producer, sizeof s->producer, "%.*s:follow:%08" PRIx32,
                 (int)(n < 63 ? n : 63), n ? s->host : "unknown",
                 (uint32_t)(h ^ (h >> 32)));
    } else {
        /* stdin cannot resume: a name of its own per run, from 1 */
        char h[64];
        size_t n = strspn(s->host, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        snprintf(h, sizeof h, "%.*s", (int)(n < 63 ? n : 63), s->host);
        snprintf(s->producer, sizeof s->producer, "%s:%ld:%" PRId64,
                 h[0] ? h : "unknown", (long)getpid(), lp_now_ms());
    }
    if (s->c.follow.n) {
        /* the files' producers: "<producer>:<identity>" */
        s->fbase = (size_t)snprintf(s->fprod, sizeof s->fprod, "%s:",
                                    s->producer);
        if (s->fbase + LP_FOLLOW_IDLEN - 1 > LP_PRODUCER_MAX) {
            snprintf(err, LP_ERRLEN, "--producer '%s': with --follow, at "
                     "most %d bytes (each file's name adds its identity)",
                     s->producer, LP_PRODUCER_MAX - LP_FOLLOW_IDLEN);
            return LP_EX_USAGE;
        }
    }
    if (lp_key_aux(s->c.cluster, s->c.stream, LP_PRODUCERS_SUFFIX, s->pkey,
                   sizeof s->pkey, err) < 0 ||
        lp_key_aux(s->c.cluster, s->c.stream, ":rate:", s->rkey_pre,
                   sizeof s->rkey_pre, err) < 0) {
        if (!s->c.cluster)
            snprintf(err, LP_ERRLEN, "--stream: too long");
        return s->c.cluster ? LP_EX_CONFIG : LP_EX_USAGE;
    }
    if (s->c.journal_dir) {
        /* said before Redis is waited for */
        struct stat st;
        int rc = stat(s->c.journal_dir, &st);
        if (rc < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, LP_ERRLEN, "--journal-dir %s: %s",
                     s->c.journal_dir, rc < 0 ? strerror(errno) :
                     "not a directory");
            return LP_EX_NOINPUT;
        }
    }
    s->next_pos = s->c.position ? s->c.position : 1;
    /* what we look for in each event, compiled once; --rate-key's
     * member is added to its keys below */
    if (lp_event_rules_init(&s->rules, s->c.time_field, s->c.require.item,
                            s->c.require.n, s->c.max_depth,
                            s->c.max_members, s->c.max_age, s->c.max_skew,
                            err) < 0)
        return LP_EX_USAGE;
    if (s->c.rate > 0) {
        if ((s->rate = lp_rate_new(s->c.rate, (double)s->c.burst,
                                   s->c.max_keys)) == NULL)
            goto oom;
        if (s->c.rate_key && plain_member(s->c.rate_key)) {
            if ((s->rkey_idx = lp_jkeys_add(&s->rules.keys,
                                            s->c.rate_key + 1)) < 0) {
                snprintf(err, LP_ERRLEN, "--rate-key: too many members "
                         "asked for");
                return LP_EX_USAGE;
            }
        } else if (s->c.rate_key) {
            char e2[LP_ERRLEN];
            if (lp_jq_new(s->c.rate_key, &s->rkey_jq, e2) < 0) {
                snprintf(err, LP_ERRLEN, "--rate-key: %s", e2);
                return LP_EX_CONFIG;
            }
        }
    }
    if (lp_pipeline_init(s) < 0)
        goto oom;
    if (lp_lines_init(&s->lines, STDIN_FILENO, s->c.max_line) < 0)
        goto oom;
    if (s->c.rejects) {
        s->rejects_fd = open(s->c.rejects, O_WRONLY | O_APPEND | O_CREAT |
                             O_CLOEXEC, 0640);
        if (s->rejects_fd < 0) {
            snprintf(err, LP_ERRLEN, "--rejects %s: %s", s->c.rejects,
                     strerror(errno));
            return LP_EX_CANTCREAT;
        }
    }
    if ((s->r = s->c.redis_new(s->c.ctx, err)) == NULL)
        return LP_EX_CONFIG;
    if (s->c.shared_rate) {
        if ((s->rr = s->c.redis_new(s->c.ctx, err)) == NULL)
            return LP_EX_CONFIG;
        /* a Redis that hangs must not hold the limit up long */
        lp_redis_set_timeout(s->rr, 500);
    }
    lp_redis_set_timeout(s->r, redis_timeout(s));
    if (s->c.shards > 1) {
        int rc = shards_init(s, err);
        if (rc)
            return rc;
    }
    if (s->c.producer || s->c.journal || s->c.follow.n) {
        int rc = lock_producer(s, err);
        if (rc)
            return rc;
    }
    if (s->c.wal) {
        int rc;
        if ((s->wal = lp_wal_open(s->c.wal, s->c.wal_max, &s->nt,
                                  err)) == NULL)
            return LP_EX_CANTCREAT;
        if (s->c.producer && !s->c.follow.n) {
            /* our positions still in the WAL: numbering goes on above;
             * and until Redis tells the committed one, records of ours
             * written to the WAL take positions from the clock (us since
             * 1970: above any earlier run's, which sent less than a
             * million commands a second) */
            uint64_t floor;
            if (lp_wal_max_pos(s->wal, s->producer, &s->pos_floor, err) < 0)
                return LP_EX_IOERR;
            if (lp_spool_floor_open(s, &floor, err) < 0)
                return LP_EX_CANTCREAT;
            /* above every position given before: the floor file's, or,
             * with none yet (a log of an older send), the clock's */
            s->next_pos = floor ? floor : (uint64_t)lp_now_ms() * 1000;
            if (s->next_pos <= s->pos_floor)
                s->next_pos = s->pos_floor + 1;
        }
        if (s->c.position)
            s->next_pos = s->c.position;
        if ((rc = lp_wal_pending(s->wal, err)) < 0)
            return LP_EX_IOERR;
        if (rc > 0) {
            /* an earlier run's events: they go first */
            s->walmode = 1;
            say(s, LP_NOTICE_INFO, "the WAL %s holds %" PRIu64 " bytes from "
                "an earlier run: sending them first", s->c.wal,
                lp_wal_bytes(s->wal));
        }
    }
    return 0;
oom:
    snprintf(err, LP_ERRLEN, "out of memory");
    return LP_EX_SOFTWARE;
}

/* The inputs, one after the other, as far as a stop lets them. */
static void read_inputs(struct lp_send *s)
{
    if (s->c.journal) {
        journal_input(s);
        return;
    }
    if (s->c.follow.n) {
        follow_input(s);
        return;
    }
    if (s->c.nfiles == 0)
        drain_input(s, STDIN_FILENO);
    for (int i = 0; i < s->c.nfiles && !lp_send_stopping(s); i++) {
        int fd;
        s->file = i;
        if ((fd = open_input(s, i)) < 0)
            continue;
        lp_lines_reset(&s->lines, fd);
        drain_input(s, fd);
        /* the last events of this file must not be counted against the
         * next one's offsets: send them now */
        dispatch_all(s);
        if (fd != STDIN_FILENO)
            close(fd);
    }
}

int lp_send_run(struct lp_send *s)
{
    if (setjmp(s->out))
        return -1;              /* end_run: said, status in exit_code */
    s->now = lp_now_ms();
    if (s->sh)
        shards_start(s);
    if (!s->c.flush_wal)
        read_inputs(s);
    finish(s);
    return 0;
}

int lp_send_serve(struct lp_send *s, int fd, void (*ready)(void *ctx),
                  void *ctx)
{
    if (setjmp(s->out))
        return -1;              /* end_run: said, status in exit_code */
    s->serving = 1;
    s->name = "requests";
    s->now = lp_now_ms();
    if (s->aside == NULL) {
        char err[LP_ERRLEN];
        struct lp_redis *r = s->c.redis_new(s->c.ctx, err);
        /* its socket's timeout bounds what connecting it may hold the
         * loop (its questions are never waited on: lp_aside's own
         * timeout is theirs) */
        if (r == NULL || (lp_redis_set_timeout(r, 1000),
                          (s->aside = lp_aside_new(r, 4096,
                                                   redis_timeout(s))) == NULL))
            lp_send_oom(s);
    }
    if (!lp_redis_connected(s->r)) {
        char err[LP_ERRLEN];
        if (lp_pipeline_connect(s, err) < 0) {
            s->down_until = lp_mono_ms() + lp_backoff_next(&s->backoff);
            say(s, LP_NOTICE_WARN, "%s: %s until Redis answers", err,
                s->wal ? "requests go to the WAL" : "requests get 503");
            s->warned = 1;
        }
    }
    while (!lp_send_stopping(s)) {
        /* no WAL, Redis failed: connect again once the backoff is over,
         * requests or not (so that the door's health says it) */
        if (!s->wal && !lp_redis_connected(s->r) &&
            lp_mono_ms() >= s->down_until) {
            char err[LP_ERRLEN];
            if (lp_pipeline_connect(s, err) < 0)
                s->down_until = lp_mono_ms() + lp_backoff_next(&s->backoff);
        }
        /* the questions' connection, made again while Redis answers
         * the engine's (so that it does not wait on a Redis that is
         * down), after its backoff */
        if (lp_redis_connected(s->r))
            lp_send_aside_connect(s, 0);
        /* the cap: a stop signal between the check and the poll waits
         * at most a second */
        if (wait_io(s, fd, POLLIN, 1000))
            ready(ctx);
        s->now = lp_now_ms();
    }
    finish(s);
    return 0;
}

void lp_send_aside_connect(struct lp_send *s, int now)
{
    char err[LP_ERRLEN];
    int rc;

    if (!s->serving || s->aside == NULL || lp_aside_connected(s->aside) ||
        (!now && lp_mono_ms() < s->aside_at))
        return;
    rc = lp_aside_connect(s->aside, err);
    if (rc == 0) {
        s->aside_wait = 0;
        return;
    }
    s->aside_wait = s->aside_wait ? s->aside_wait * 2 : 1000;
    if (s->aside_wait > 30000)
        s->aside_wait = 30000;
    s->aside_at = lp_mono_ms() + s->aside_wait;
    if (rc == LP_REDIS_EAUTH)
        say(s, LP_NOTICE_WARN, "%s", err);
}

struct lp_aside *lp_send_aside(struct lp_send *s)
{
    return s->aside;
}

void lp_send_stop(struct lp_send *s)
{
    s->stop = 1;
}

void lp_send_state(const struct lp_send *s, struct lp_send_state *st)
{
    int64_t now = lp_mono_ms();

    st->connected = lp_redis_connected(s->r);
    st->walmode = s->walmode;
    st->wal_bytes = s->wal ? lp_wal_bytes(s->wal) : 0;
    st->down_ms = !s->wal && s->down_until > now ? s->down_until - now : 0;
    st->inflight = s->count;
    st->waiting = s->in->n;
}

int lp_send_status(const struct lp_send *s)
{
    return s->exit_code;
}

const struct lp_send_counts *lp_send_counts(const struct lp_send *s)
{
    return &s->n;
}

const char *lp_send_input(const struct lp_send *s, uint64_t *offset)
{
    if (s->fl) {                /* --follow: the files followed */
        *offset = lp_follow_files(s->fl);
        return NULL;
    }
    *offset = s->c.journal ? s->jentry : lp_lines_offset(&s->lines);
    return s->name;
}

const char *lp_send_producer(const struct lp_send *s, uint64_t *pos)
{
    *pos = s->next_pos - 1;
    return s->producer;
}

int lp_send_stopped(const struct lp_send *s)
{
    return lp_send_stopping(s);
}

int lp_send_stdout_gone(const struct lp_send *s)
{
    return s->stdout_gone;
}

const struct lp_event_rules *lp_send_rules(const struct lp_send *s)
{
    return &s->rules;
}

int lp_send_rate_key_outcome(struct lp_send *s, char *msg)
{
    return lp_jq_status(s->rkey_jq, s->c.verbosity, msg);
}

int lp_send_shard_key_outcome(struct lp_send *s, char *msg)
{
    return lp_jq_status(s->skey_jq, s->c.verbosity, msg);
}

void lp_send_free(struct lp_send *s)
{
    if (s == NULL)
        return;
    if (s->m) {
        metrics_tick(s, 1);     /* the last word, whatever the end */
        lp_metrics_free(s->m);
    }
    /* requests still in hand (the run gave up): they fail */
    unpark_failed(s, s->last_error[0] ? s->last_error : "the engine stopped");
    fail_in_hand(s, s->last_error[0] ? s->last_error : "the engine stopped");
    if (s->rseg)
        lp_wal_seg_release(s->wal, s->rseg);
    lp_wal_close(s->wal);
    lp_jsource_free(s->js);
    lp_follow_free(s->fl);
    fk_free_all(s);
    if (s->lanes) {
        /* the engine's is one lane's: back in its place, then all go */
        s->lanes[s->cur_lane].r = s->r;
        s->lanes[s->cur_lane].pcache = s->pcache;
        for (unsigned l = 0; l < s->nsh; l++) {   /* each allocated */
            struct lp_lane *ln = &s->lanes[l];
            lp_redis_free(ln->r);
            free(ln->pcache);
            for (int i = 0; i < LP_INFLIGHT; i++) {
                free(ln->ring[i].ev);
                lp_buf_free(&ln->ring[i].blob);
                lp_buf_free(&ln->ring[i].head);
                lp_buf_free(&ln->ring[i].tail);
                lp_buf_free(&ln->ring[i].pbuf);
                lp_reply_free(ln->ring[i].held);
            }
        }
        free(s->lanes);
        s->r = NULL;
        s->pcache = NULL;
    }
    s->ring = s->ring0;
    if (s->sh) {
        for (unsigned i = 0; i < s->nsh; i++) {
            struct lp_batch *b = &s->sh[i].in;
            free(b->ev);
            lp_buf_free(&b->blob);
            lp_buf_free(&b->head);
            lp_buf_free(&b->tail);
            lp_buf_free(&b->pbuf);
            lp_reply_free(b->held);
            lp_buf_free(&s->sh[i].prefix);
        }
        free(s->sh);
        free(s->was_skip);
        for (unsigned i = 0; i < s->n_was_prods; i++) {
            free(s->was_prods[i].name);
            free(s->was_prods[i].skip);
            free(s->was_prods[i].cur);
        }
        free(s->was_prods);
        s->in = &s->in0;
        memset(&s->prefix, 0, sizeof s->prefix);
    }
    free(s->pfd);
    lp_buf_free(&s->hrec);
    lp_buf_free(&s->dq);
    lp_buf_free(&s->dq_cur);
    lp_jq_free(s->skey_jq);
    lp_buf_free(&s->forget);
    lp_buf_free(&s->jcur);
    lp_redis_free(s->r);
    lp_redis_free(s->rr);
    lp_aside_free(s->aside);
    lp_rate_free(s->rate);
    lp_jq_free(s->rkey_jq);
    lp_buf_free(&s->rkey_buf);
    free(s->in->ev);
    lp_buf_free(&s->in->blob);
    lp_buf_free(&s->in->head);
    lp_buf_free(&s->in->tail);
    lp_buf_free(&s->in->pbuf);
    lp_reply_free(s->in->held);
    lp_buf_free(&s->spare);
    lp_buf_free(&s->waitcmd);
    for (int i = 0; i < LP_INFLIGHT; i++) {
        free(s->ring[i].ev);
        lp_buf_free(&s->ring[i].blob);
        lp_buf_free(&s->ring[i].head);
        lp_buf_free(&s->ring[i].tail);
        lp_buf_free(&s->ring[i].pbuf);
        lp_reply_free(s->ring[i].held);
    }
    free(s->pcache);
    lp_buf_free(&s->walrec);
    if (s->plock_fd >= 0)
        close(s->plock_fd);
    if (s->floor_fd >= 0)
        close(s->floor_fd);
    lp_lines_free(&s->lines);
    lp_buf_free(&s->prefix);
    lp_buf_free(&s->out_ids);
    if (s->rejects_fd >= 0)
        close(s->rejects_fd);
    free(s);
}
