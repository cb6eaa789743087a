/* unit-aside.c -- lp_aside: questions to Redis that a loop never waits
 * for, against a real Redis (t0040 starts one and names it in
 * LOGPIPE_REDIS_URL) */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_aside.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_time.h"
#include "lp_url.h"
#include "tap.h"

static struct lp_url url;
static char got[16][64];        /* what each callback saw, in order */
static int ngot;

static void cb(void *ctx, const struct lp_reply *rep, const char *err)
{
    if (ngot == 16)
        return;
    if (err)
        snprintf(got[ngot++], 64, "%s:err:%.40s", (const char *)ctx, err);
    else
        snprintf(got[ngot++], 64, "%s:%.50s", (const char *)ctx,
                 lp_reply_str(rep, NULL) ? lp_reply_str(rep, NULL) : "?");
}

static struct lp_aside *aside(size_t max, int64_t timeout)
{
    struct lp_redis *r = lp_redis_new(&url, NULL);
    struct lp_aside *a;
    char err[LP_ERRLEN];

    lp_redis_set_timeout(r, 2000);
    a = lp_aside_new(r, max, timeout);
    if (a == NULL || lp_aside_connect(a, err) != 0) {
        printf("Bail out! cannot connect: %s\n", err);
        exit(1);
    }
    return a;
}

static int ask(struct lp_aside *a, const char *ctx, const char *cmd,
               const char *arg, char *err)
{
    const char *argv[2] = { cmd, arg };
    size_t lens[2] = { strlen(cmd), arg ? strlen(arg) : 0 };

    return lp_aside_cmdv(a, arg ? 2 : 1, argv, lens, cb, (void *)ctx, err);
}

/* The loop's part: wait for the fd (or the due time) up to ms, then ready
 * and tick. */
static void turn(struct lp_aside *a, int ms)
{
    struct pollfd p = { .fd = lp_aside_fd(a), .events = POLLIN };
    int64_t d = lp_aside_due(a);

    if (d >= 0 && d < ms)
        ms = (int)d;
    if (p.fd >= 0 && poll(&p, 1, ms) > 0)
        lp_aside_ready(a);
    else if (p.fd < 0)
        poll(NULL, 0, ms);
    lp_aside_tick(a);
}

static void until(struct lp_aside *a, int n, int ms)
{
    int64_t end = lp_mono_ms() + ms;

    while (ngot < n && lp_mono_ms() < end)
        turn(a, 50);
}

int main(void)
{
    const char *u = getenv("LOGPIPE_REDIS_URL");
    char err[LP_ERRLEN];
    struct lp_aside *a;
    struct lp_redis *ctl;
    struct lp_reply *rep;

    if (u == NULL || lp_url_parse(u, &url, err) < 0) {
        printf("Bail out! no LOGPIPE_REDIS_URL\n");
        return 1;
    }
    ctl = lp_redis_new(&url, NULL);
    lp_redis_set_timeout(ctl, 5000);
    if (lp_redis_connect(ctl, err) != 0) {
        printf("Bail out! %s\n", err);
        return 1;
    }

    /* replies in order, each to its own callback */
    a = aside(4, 2000);
    ok(ask(a, "a", "ECHO", "one", err) == 0 &&
       ask(a, "b", "ECHO", "two", err) == 0 &&
       ask(a, "c", "PING", NULL, err) == 0, "three questions asked");
    is_int((long long)lp_aside_pending(a), 3, "three in flight");
    until(a, 3, 5000);
    is_int(ngot, 3, "three answers");
    is_str(got[0], "a:one", "the first's");
    is_str(got[1], "b:two", "the second's");
    is_str(got[2], "c:PONG", "the third's");
    is_int((long long)lp_aside_pending(a), 0, "none in flight");

    /* bounded: past max_pending refused at once, its callback never */
    ngot = 0;
    for (int i = 0; i < 4; i++)
        ask(a, "m", "PING", NULL, err);
    ok(ask(a, "x", "PING", NULL, err) < 0 && strstr(err, "4 questions"),
       "a fifth refused: %s", err);
    until(a, 4, 5000);
    is_int(ngot, 4, "the four answered, the fifth never");

    /* forgotten: its reply read and dropped, the next one still its own */
    ngot = 0;
    ask(a, "gone", "ECHO", "g", err);
    ask(a, "kept", "ECHO", "k", err);
    lp_aside_forget(a, "gone");
    until(a, 1, 5000);
    turn(a, 100);
    is_int(ngot, 1, "one callback");
    is_str(got[0], "kept:k", "the kept one's");

    /* a server that does not answer in time: every question fails, the
     * connection is closed (a late reply could not be told apart) */
    lp_aside_free(a);
    a = aside(8, 300);
    ngot = 0;
    rep = lp_redis_cmd(ctl, err, "CLIENT", "PAUSE", "5000", "ALL", NULL);
    lp_reply_free(rep);
    ask(a, "p1", "PING", NULL, err);
    ask(a, "p2", "PING", NULL, err);
    ok(lp_aside_due(a) >= 0 && lp_aside_due(a) <= 300, "due within 300 ms");
    until(a, 2, 5000);
    is_int(ngot, 2, "both failed");
    ok(strstr(got[0], "p1:err:") && strstr(got[0], "no reply within 300"),
       "the first: %s", got[0]);
    ok(strstr(got[1], "p2:err:") != NULL, "the second: %s", got[1]);
    ok(!lp_aside_connected(a) && lp_aside_fd(a) < 0, "closed");
    ok(ask(a, "n", "PING", NULL, err) < 0 && strstr(err, "not connected"),
       "asking a closed one: refused (%s)", err);
    rep = lp_redis_cmd(ctl, err, "CLIENT", "UNPAUSE", NULL);
    lp_reply_free(rep);

    /* an idle connection the server closes: seen, closed, made again */
    ok(lp_aside_connect(a, err) == 0, "connected again");
    ngot = 0;
    ask(a, "id", "CLIENT", "ID", err);
    until(a, 1, 5000);
    {
        /* CLIENT ID's reply is an integer: cb printed "?" */
        rep = lp_redis_cmd(ctl, err, "CLIENT", "KILL", "SKIPME", "yes",
                           NULL);
        lp_reply_free(rep);
    }
    for (int i = 0; i < 40 && lp_aside_connected(a); i++)
        turn(a, 50);
    ok(!lp_aside_connected(a), "a connection the server closed is seen");

    /* freed with questions in flight: they fail, "stopping" */
    lp_aside_connect(a, err);
    ngot = 0;
    rep = lp_redis_cmd(ctl, err, "CLIENT", "PAUSE", "5000", "ALL", NULL);
    lp_reply_free(rep);
    ask(a, "f", "PING", NULL, err);
    lp_aside_free(a);
    is_str(got[0], "f:err:stopping", "freed: its question fails");
    rep = lp_redis_cmd(ctl, err, "CLIENT", "UNPAUSE", NULL);
    lp_reply_free(rep);

    lp_redis_free(ctl);
    return tap_done();
}
