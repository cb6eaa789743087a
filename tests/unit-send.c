/* unit-send.c -- lp_send, the send engine, as an object; lp_resp; the
 * metrics counted once. The engine's runs need a Redis: t0023-send.sh
 * starts one and names it in LOGPIPE_REDIS_URL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_metrics.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_resp.h"
#include "lp_send.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "lp_url.h"
#include "tap.h"

/* ---- lp_resp ------------------------------------------------------------ */

static void test_resp(void)
{
    struct lp_buf b = { 0 };
    const char *argv[3] = { "XADD", "k", "" };
    size_t lens[3] = { 4, 1, 0 };
    char *o;

    ok(lp_resp_command(&b, 3, argv, lens) == 0, "a command encodes");
    is_int(b.len, 27, "its length");
    ok(b.len == 27 && memcmp(b.p, "*3\r\n$4\r\nXADD\r\n$1\r\nk\r\n$0\r\n\r\n",
                             27) == 0, "its bytes, the empty argument too");
    b.len = 0;
    ok(lp_resp_head(&b, 2) == 0 && lp_resp_bulk(&b, "a\r\nb", 4) == 0,
       "a head and a binary argument");
    o = lp_resp_bulk_space(&b, 12);
    ok(o != NULL, "room for an argument written in place");
    memcpy(o, "hello world!", 12);
    ok(b.len == 33 && memcmp(b.p, "*2\r\n$4\r\na\r\nb\r\n"
                             "$12\r\nhello world!\r\n", 33) == 0,
       "both, framed");
    b.len = 0;
    o = lp_resp_bulk_space(&b, 100000);
    ok(o != NULL && b.len == 9 + 100000 + 2 && o == b.p + 9 &&
       b.p[b.len - 2] == '\r' && b.p[b.len - 1] == '\n',
       "a large one grows the buffer");
    lp_buf_free(&b);
}

/* ---- counted once ------------------------------------------------------- */

static void test_counted_once(void)
{
    struct lp_metrics *m = lp_metrics_new(NULL);
    uint64_t n = 0;
    struct lp_metric *c = lp_counter_of(m, "x_total", "", "X.", &n);
    char *txt;

    n = 41;
    n++;
    is_int((long long)lp_metric_value(c), 42, "a counter of the owner's "
           "count reads it");
    txt = lp_metrics_render(m);
    ok(txt && strstr(txt, "\nx_total 42\n"), "and renders it");
    free(txt);
    lp_metrics_free(m);
}

/* ---- the engine --------------------------------------------------------- */

/* What the engine said, one message a line: "LEVEL msg". */
static struct lp_buf said;

static void hear(void *ctx, int level, const char *msg)
{
    char t[16];

    (void)ctx;
    snprintf(t, sizeof t, "%d ", level);
    lp_buf_adds(&said, t);
    lp_buf_adds(&said, msg);
    lp_buf_addc(&said, '\n');
    lp_buf_addc(&said, '\0');
    said.len--;
}

static const char *url;

static struct lp_redis *redis_new(void *ctx, char *err)
{
    struct lp_url u;

    (void)ctx;
    if (lp_url_parse(url, &u, err) < 0)
        return NULL;
    return lp_redis_new(&u, NULL);
}

static struct lp_send_conf conf(const char *stream, char **files, int n)
{
    struct lp_send_conf c = {
        .stream = stream, .dlq = "t:dlq", .group = "logpipe",
        .batch = 2, .batch_bytes = 1 << 20, .linger = 20, .timeout = 5000,
        .max_age = 0, .max_skew = 0, .max_line = 1 << 16, .max_depth = 64,
        .max_members = 1000, .max_keys = 10, .time_field = "",
        .ids_fd = -1, .files = files, .nfiles = n, .metrics_interval = 15000,
        .redis_new = redis_new,
    };
    return c;
}

static long long xlen(const char *key)
{
    char err[LP_ERRLEN];
    struct lp_redis *r = redis_new(NULL, err);
    struct lp_reply *rep;
    long long n = -1;

    if (r && lp_redis_connect(r, err) == 0 &&
        (rep = lp_redis_cmd(r, err, "XLEN", key, NULL)) != NULL) {
        n = lp_reply_int(rep);
        lp_reply_free(rep);
    }
    lp_redis_free(r);
    return n;
}

static void test_engine(const char *dir)
{
    struct lp_notify nt = { hear, NULL };
    char path[4096], err[LP_ERRLEN], msg[600];
    char *files[1] = { path };
    struct lp_send_conf c;
    struct lp_send *s;
    const struct lp_send_counts *n;
    FILE *f;

    snprintf(path, sizeof path, "%s/in.ndjson", dir);
    f = fopen(path, "w");
    fputs("{\"a\":1}\n{\"a\":\n[{\"a\":2},3,{\"a\":4}]\n\n{\"a\":5}\n", f);
    fclose(f);

    c = conf("t:one", files, 1);
    c.rejects_to_dlq = 1;
    s = lp_send_new(&c, &nt, err);
    ok(s != NULL, "an engine is made");
    is_int(lp_send_open(s, err), 0, "and opened");
    is_int(lp_send_run(s), 0, "a run reads all its input");
    n = lp_send_counts(s);
    is_int(n->lines, 5, "lines counted");
    is_int(n->sent, 4, "events sent: an array's elements each");
    is_int(n->rejected, 2, "the bad line and the bad element rejected");
    is_int(n->dlq, 2, "both in the DLQ");
    is_int(n->batches, 3, "three batches of two");
    is_int(lp_send_status(s), 0, "status 0: the tool adds 65");
    is_int(xlen("t:one"), 4, "the stream holds them");
    is_int(xlen("t:dlq"), 2, "the DLQ holds the rejects");
    snprintf(msg, sizeof msg, "%d %s: line 2: invalid JSON: ", LP_SEND_BAD,
             path);
    ok(said.p && strstr(said.p, msg) != NULL,
       "a rejected line is said as BAD, with its file and line");
    snprintf(msg, sizeof msg, "%d %s: line 3: element 2: not a JSON "
             "object\n", LP_SEND_BAD, path);
    ok(said.p && strstr(said.p, msg) != NULL, "an element, with its number");
    lp_send_free(s);

    /* a failure deep in the loop comes back as a status */
    said.len = 0;
    url = "redis://127.0.0.1:1";
    c = conf("t:two", files, 1);
    c.timeout = 200;
    s = lp_send_new(&c, &nt, err);
    is_int(lp_send_open(s, err), 0, "opened with Redis away");
    is_int(lp_send_run(s), -1, "the run gives up");
    is_int(lp_send_status(s), LP_EX_TEMPFAIL, "with 75");
    snprintf(msg, sizeof msg, "%d giving up (--timeout 200ms): ",
             LP_NOTICE_ERROR);
    ok(said.p && strstr(said.p, msg) != NULL, "having said why");
    snprintf(msg, sizeof msg, "%d sent 0 bytes of %s; resume with: tail -c "
             "+1 %s | logpipe-send\n", LP_NOTICE_ERROR, path, path);
    ok(said.p && strstr(said.p, msg) != NULL, "and where to resume");
    lp_send_free(s);

    /* what cannot be opened is said in err, with the status */
    c = conf("t:three", NULL, 0);
    c.rejects = "/nonexistent/dir/rejects";
    s = lp_send_new(&c, &nt, err);
    is_int(lp_send_open(s, err), LP_EX_CANTCREAT, "--rejects: 73");
    is_str(err, "--rejects /nonexistent/dir/rejects: No such file or "
           "directory", "its message");
    lp_send_free(s);
    lp_send_free(NULL);
    unlink(path);
}

/* ---- requests: a front door's events (lp_send_serve) -------------------- */

struct door {
    struct lp_send *s;
    int fds[2];                 /* a byte written: the next request */
    int next, nreq, over;       /* submitted, to submit, done() calls */
    int sizes[8];               /* events in each request */
    int said[8];                /* what lp_send_req_submit answered */
    int64_t retry[8];
    struct lp_send_req_result r[8];
    char first[8][48], last[8][48], error[8][200];
};

static void req_done(void *ctx, const struct lp_send_req_result *r)
{
    struct door *d = *(struct door **)ctx;
    int i = (int)(intptr_t)((struct door **)ctx)[1];

    d->r[i] = *r;
    snprintf(d->first[i], sizeof d->first[i], "%s", r->first);
    snprintf(d->last[i], sizeof d->last[i], "%s", r->last);
    snprintf(d->error[i], sizeof d->error[i], "%s", r->error ? r->error : "");
    d->r[i].error = NULL;
    if (++d->over == d->nreq)
        lp_send_stop(d->s);     /* all answered: the loop may end */
}

static void *ctxs[8][2];

/* ready: one request a byte read */
static void door_ready(void *ctx)
{
    struct door *d = ctx;
    char b;

    while (read(d->fds[0], &b, 1) == 1 && d->next < d->nreq) {
        int i = d->next++;
        struct lp_send_req *q;
        ctxs[i][0] = d;
        ctxs[i][1] = (void *)(intptr_t)i;
        q = lp_send_req_begin(d->s, req_done, ctxs[i]);
        for (int k = 0; k < d->sizes[i]; k++) {
            char ev[64];
            int n = snprintf(ev, sizeof ev, "{\"req\":%d,\"k\":%d}", i, k);
            lp_send_req_event(q, ev, (size_t)n, NULL, 0, NULL);
        }
        d->said[i] = lp_send_req_submit(q, &d->retry[i]);
        if ((d->said[i] == LP_REQ_UNAVAILABLE ||
             d->said[i] == LP_REQ_LIMITED) && ++d->over == d->nreq)
            lp_stop = 1;
    }
}

/* serve REQUESTS (their sizes) through engine c; the door's record */
static void serve(struct door *d, struct lp_send_conf *c, const int *sizes,
                  int nreq)
{
    struct lp_notify nt = { hear, NULL };
    char err[LP_ERRLEN];

    memset(d, 0, sizeof *d);
    d->nreq = nreq;
    memcpy(d->sizes, sizes, (size_t)nreq * sizeof *sizes);
    if (pipe(d->fds) < 0)
        exit(2);
    for (int i = 0; i < nreq; i++)
        if (write(d->fds[1], "x", 1) != 1)
            exit(2);
    close(d->fds[1]);
    d->s = lp_send_new(c, &nt, err);
    if (d->s == NULL || lp_send_open(d->s, err) != 0) {
        fprintf(stderr, "engine: %s\n", err);
        exit(2);
    }
    lp_stop = 0;
    lp_send_serve(d->s, d->fds[0], door_ready, d);
    lp_stop = 0;
    close(d->fds[0]);
}

static void test_requests(const char *good, const char *dir)
{
    struct lp_send_conf c;
    struct door d;
    char wal[4096];
    const struct lp_send_counts *n;
    static const int four[4] = { 2, 2, 5, 0 };
    static const int one[1] = { 3 };

    url = good;
    c = conf("t:req", NULL, 0);
    c.batch = 3;
    serve(&d, &c, four, 4);
    for (int i = 0; i < 3; i++) {
        is_int(d.said[i], LP_REQ_QUEUED, "request %d taken", i);
        is_int(d.r[i].how, LP_REQ_STORED, "request %d stored", i);
        is_int((long long)d.r[i].events, four[i], "all its events");
        ok(d.first[i][0] && d.last[i][0], "with its first and last IDs");
    }
    is_int(d.said[3], LP_REQ_EMPTY, "an empty request: done at once");
    is_int(d.r[3].how, LP_REQ_STORED, "as stored");
    n = lp_send_counts(d.s);
    is_int(n->batches, 3, "each request whole in one batch: 2, 2, 5 in "
           "batches of 3 are three batches");
    {
        struct lp_send_state st;
        lp_send_state(d.s, &st);
        ok(st.connected && !st.walmode && st.down_ms == 0 &&
           st.inflight == 0 && st.waiting == 0,
           "its state after: connected, nothing in hand");
    }
    is_int(xlen("t:req"), 9, "the stream holds the nine");
    lp_send_free(d.s);

    /* Redis refuses a batch, no WAL: its request fails at once, not
     * stored; the next submit waits for the backoff */
    c = conf("t:req2", NULL, 0);
    c.test_refuse = 1;
    serve(&d, &c, one, 1);
    is_int(d.r[0].how, LP_REQ_FAILED, "a refused batch: its request fails");
    is_int(d.r[0].maybe, 0, "not stored (Redis answered)");
    ok(strstr(d.error[0], "unknown command") != NULL, "saying why: %s",
       d.error[0]);
    is_int(xlen("t:req2"), 0, "nothing stored");
    {
        struct lp_send_state st;
        lp_send_state(d.s, &st);
        ok(!st.connected && st.down_ms > 0, "its state: not connected, "
           "unavailable for %lld ms", (long long)st.down_ms);
    }
    {
        struct lp_send_req *q = lp_send_req_begin(d.s, req_done, ctxs[0]);
        int64_t ra = 0;
        lp_send_req_event(q, "{}", 2, NULL, 0, NULL);
        is_int(lp_send_req_submit(q, &ra), LP_REQ_UNAVAILABLE,
               "a request right after: unavailable");
        ok(ra > 0, "with the wait: %lld ms", (long long)ra);
    }
    lp_send_free(d.s);

    /* --rate: a request takes all its tokens or none */
    {
        static const int three[3] = { 3, 3, 10 };
        c = conf("t:req5", NULL, 0);
        c.rate = 1.0 / 3600000;
        c.burst = 4;
        serve(&d, &c, three, 3);
        is_int(d.said[0], LP_REQ_QUEUED, "--rate: 3 of a burst of 4 pass");
        is_int(d.r[0].how, LP_REQ_STORED, "and are stored");
        is_int(d.said[1], LP_REQ_LIMITED, "3 more with 1 token left: "
               "limited, whole");
        ok(d.retry[1] > 3000000, "until 2 more come: %lld ms",
           (long long)d.retry[1]);
        is_int(d.said[2], LP_REQ_LIMITED, "10, over the burst: limited");
        is_int(d.retry[2], -1, "for ever");
        is_int(xlen("t:req5"), 3, "only the first is in the stream");
        lp_send_free(d.s);
    }

    /* Redis away, no WAL: unavailable at once, nothing waits */
    url = "redis://127.0.0.1:1";
    c = conf("t:req3", NULL, 0);
    serve(&d, &c, one, 1);
    is_int(d.said[0], LP_REQ_UNAVAILABLE, "Redis away, no WAL: unavailable");
    ok(d.retry[0] > 0, "with a wait to retry after");
    lp_send_free(d.s);

    /* Redis away, a WAL: kept there, synced, and said so */
    snprintf(wal, sizeof wal, "%s/wal", dir);
    c = conf("t:req4", NULL, 0);
    c.wal = wal;
    c.wal_max = 1 << 20;
    serve(&d, &c, one, 1);
    is_int(d.said[0], LP_REQ_QUEUED, "Redis away, a WAL: taken");
    is_int(d.r[0].how, LP_REQ_WAL, "kept in the WAL");
    is_int((long long)d.r[0].events, 3, "all three");
    lp_send_free(d.s);
    url = good;
    {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", wal);
        if (system(cmd) != 0)
            ok(0, "rm -rf %s", wal);
    }
}

/* ---- the rules a front door borrows ------------------------------------- */

/* lp_send_rules: the engine's own checks, as lp_send_open compiled them
 * from its options; needs no Redis (made, never connected). */
static void test_rules(void)
{
    struct lp_notify nt = { hear, NULL };
    char err[LP_ERRLEN] = "";
    const char *saved = url;
    struct lp_send_conf c = conf("t:rules", NULL, 0);
    const struct lp_event_rules *r;
    struct lp_jevent ev;
    struct lp_event_bad bad;
    struct lp_send *s;
    int64_t now;
    const char *good = "{\"ts\":\"2026-12-06T17:00:00Z\",\"a\":1,"
                       "\"app\":\"x\"}";
    const char *no_a = "{\"ts\":\"2026-12-06T17:00:00Z\",\"app\":\"x\"}";
    const char *old = "{\"ts\":\"2026-12-06T15:00:00Z\",\"a\":1}";
    const char *deep = "{\"a\":[[[[1]]]]}";

    url = "redis://127.0.0.1:1";
    lp_rfc3339_parse("2026-12-06T17:00:00Z", 20, &now);
    c.time_field = "ts";
    c.require.n = 1;
    c.require.item[0] = "a";
    c.max_age = 3600 * 1000;
    c.max_skew = 60 * 1000;
    c.max_depth = 3;
    c.max_members = 5;
    c.rate = 1.0;
    c.burst = 10;
    c.rate_key = ".app";
    s = lp_send_new(&c, &nt, err);
    ok(s != NULL && lp_send_open(s, err) == 0, "opened without Redis%s%s",
       err[0] ? ": " : "", err);
    r = lp_send_rules(s);
    ok(r != NULL && r->time_idx >= 0 && r->nreq == 1 &&
       strcmp(r->req[0], "a") == 0, "its rules: --time-field, --require");
    ok(r != NULL && r->max_age == 3600 * 1000 && r->max_skew == 60 * 1000 &&
       r->lim.depth == 3 && r->lim.members == 5,
       "--max-age, --max-skew, --max-depth, --max-members");
    is_int(r ? r->keys.n : -1, 3, "keys: the time, the required member, "
           "--rate-key's member");
    is_int(lp_event_check(r, good, strlen(good), now, NULL, &ev, &bad), 0,
           "an event within them passes");
    ok(lp_event_check(r, no_a, strlen(no_a), now, NULL, &ev, &bad) < 0 &&
       strcmp(bad.code, "missing-member") == 0 &&
       strcmp(bad.msg, "required member \"a\" is missing") == 0,
       "one without the member: send's code and words");
    ok(lp_event_check(r, old, strlen(old), now, NULL, &ev, &bad) < 0 &&
       strcmp(bad.code, "too-old") == 0 &&
       strstr(bad.msg, "older than --max-age 1h") != NULL,
       "one older than --max-age: %s", bad.msg);
    ok(lp_event_check(r, deep, strlen(deep), now, NULL, &ev, &bad) < 0 &&
       strcmp(bad.code, "invalid-json") == 0 &&
       strstr(bad.msg, "nesting deeper than 3") != NULL,
       "one past --max-depth: %s", bad.msg);
    lp_send_free(s);
    url = saved;
}

int main(void)
{
    char dir[] = "/tmp/unit-send.XXXXXX";

    test_resp();
    test_counted_once();
    test_rules();
    url = getenv("LOGPIPE_REDIS_URL");
    if (url == NULL || mkdtemp(dir) == NULL) {
        printf("# no Redis (LOGPIPE_REDIS_URL): the engine not run\n");
    } else {
        const char *good = url;
        test_engine(dir);
        test_requests(good, dir);
        rmdir(dir);
    }
    lp_buf_free(&said);
    return tap_done();
}
