/* unit-drain.c -- lp_group and lp_drain, drain's library: their API
 * against a real Redis (t0024 starts it and passes LOGPIPE_REDIS_URL) */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_dlq.h"
#include "lp_drain.h"
#include "lp_exit.h"
#include "lp_group.h"
#include "lp_json.h"
#include "lp_url.h"
#include "tap.h"

static struct lp_url url;
static char err[LP_ERRLEN];

/* ---- lp_group ----------------------------------------------------------- */

#define STREAM "s"
#define GROUP "g"
#define DLQ "dlq"

static struct lp_redis *r;

/* One command given as words; its integer reply, or -1. */
static long long cmd_int(const char *a, const char *b, const char *c,
                         const char *d, const char *e)
{
    struct lp_reply *rep = lp_redis_cmd(r, err, a, b, c, d, e, NULL);
    long long v = rep && lp_reply_type(rep) == LP_REPLY_INTEGER
                      ? lp_reply_int(rep) : -1;
    lp_reply_free(rep);
    return v;
}

static void add(int i)
{
    char v[16];
    snprintf(v, sizeof v, "{\"i\":%d}", i);
    lp_reply_free(lp_redis_cmd(r, err, "XADD", STREAM, "*", "data", v,
                               NULL));
}

/* Queues a read, reads its reply (caller frees) */
static struct lp_reply *read_for(struct lp_group *g, int mode,
                                 const char *from, long count)
{
    struct lp_reply *rep = NULL;

    if (lp_group_queue_read(g, mode, from, count, 1, -1, err) < 0 ||
        lp_redis_reply(r, &rep, err) < 0)
        return NULL;
    return rep;
}

/* The delivery count of entry i of entries, as XPENDING says it */
static unsigned count_of(struct lp_group *g, const struct lp_reply *entries,
                         size_t n, size_t i)
{
    unsigned deliv[16] = { 0 };

    if (n > 16 || lp_group_delivery_counts(g, entries, n, deliv, err) < 0)
        return 0;
    return deliv[i];
}

/* lp_group: each command and script, each queue */
static void group_tests(void)
{
    struct lp_group *g, *other;
    struct lp_reply *rep, *rep2, *a;
    const struct lp_reply *entries, *del;
    struct lp_entry e;
    struct lp_sid drop[8];
    size_t ndrop, nclaimed;
    char cursor[64];

    if ((r = lp_redis_new(&url, NULL)) == NULL || lp_redis_connect(r, err)) {
        printf("Bail out! no Redis: %s\n", err);
        exit(1);
    }
    g = lp_group_new(r, STREAM, GROUP, "me", 10, NULL);
    other = lp_group_new(r, STREAM, GROUP, "other", 10, NULL);
    ok(g && other, "made");

    /* ensure */
    is_int(lp_group_ensure(g, err), 1, "ensure: created");
    is_int(lp_group_ensure(g, err), 0, "ensure: existed");
    lp_reply_free(lp_redis_cmd(r, err, "SET", "str", "x", NULL));
    {
        struct lp_group *bad = lp_group_new(r, "str", GROUP, "me", 10, NULL);
        is_int(lp_group_ensure(bad, err), LP_GROUP_CONFIG,
               "ensure on a string: for good");
        is_str(err, "XGROUP CREATE str g: WRONGTYPE Operation against a key "
               "holding the wrong kind of value", "its message");
        lp_group_free(bad);
    }

    /* new entries, then our pending ones again */
    for (int i = 1; i <= 5; i++)
        add(i);
    rep = read_for(g, LP_GROUP_NEW, ">", 3);
    ok(rep && lp_reply_entries(rep, 0, &entries, err) == 0 && entries &&
       lp_reply_len(entries) == 3, "new: 3 entries read");
    is_int(count_of(g, entries, 3, 0), 1, "first delivery");
    is_int(lp_group_pending_count(g, "0", 10, 5, err), 10,
           "pending count: none near its last delivery: the whole count");
    is_int(lp_group_pending_count(g, "0", 10, 2, err), 1,
           "pending count: one at its last delivery is read alone");
    rep2 = read_for(g, LP_GROUP_PENDING, "0", 10);
    ok(rep2 && lp_reply_entries(rep2, 0, &entries, err) == 0 && entries &&
       lp_reply_len(entries) == 3, "pending: the same 3 again");
    is_int(count_of(g, entries, 3, 2), 2, "second delivery");

    /* give back */
    {
        unsigned deliv[3] = { 2, 2, 2 };
        is_int(lp_group_give_back(g, entries, 0, 3, deliv, err), 3,
               "give back: three");
        is_int(count_of(g, entries, 3, 1), 1, "counts back to 1");
        is_int(lp_group_give_back(g, entries, 0, 3, deliv, err), 0,
               "given back already: none");
        lp_entry_get(entries, 0, &e, err);
        is_int(lp_group_give_back_one(g, e.id, e.idlen, 0, err), 0,
               "give back one");
        is_int(count_of(g, entries, 3, 0), 0, "its count is 0");
    }

    /* is ours, not ours */
    lp_entry_get(entries, 1, &e, err);
    is_int(lp_group_is_ours(g, e.id, e.idlen), 1, "is ours");
    {
        char id[64];
        snprintf(id, sizeof id, "%.*s", (int)e.idlen, e.id);
        lp_reply_free(lp_redis_cmd(r, err, "XCLAIM", STREAM, GROUP, "other",
                                   "0", id, "JUSTID", NULL));
    }
    is_int(lp_group_is_ours(g, e.id, e.idlen), 0, "claimed: not ours");
    ok(lp_group_not_ours(g, entries, 0, 3, drop, &ndrop, err) == 0 &&
       ndrop == 1, "not ours: one");

    /* the ack queue */
    for (size_t i = 0; i < 3; i++) {
        lp_entry_get(entries, i, &e, err);
        lp_group_ack_add(g, e.id, e.idlen);
    }
    lp_group_ack_drop(g, drop, ndrop);
    is_int(lp_group_ack_count(g), 2, "ack queue: the one not ours dropped");
    is_int(lp_group_queue_ack(g, err), 1, "ack queued");
    ok(lp_redis_reply(r, &a, err) == 0 && lp_reply_int(a) == 2,
       "XACK: 2 acknowledged");
    lp_reply_free(a);
    lp_group_ack_clear(g);
    is_int(lp_group_queue_ack(g, err), 0, "empty queue: nothing queued");

    /* claim: the other's entry is idle > 1 ms */
    poll(NULL, 0, 10);
    a = read_for(g, LP_GROUP_CLAIM, "0-0", 10);
    ok(a && lp_group_claimed(a, cursor, sizeof cursor, &nclaimed, &del) == 0,
       "claimed: parsed");
    is_int(nclaimed, 1, "claimed: one");
    is_str(cursor, "0-0", "claimed: cursor done");
    is_int(del ? lp_reply_len(del) : 0, 0, "claimed: none deleted");
    lp_reply_free(a);
    is_int(lp_group_is_ours(g, e.id, e.idlen) + 0, 0, "entry 3 acked");
    lp_entry_get(entries, 1, &e, err);
    is_int(lp_group_is_ours(g, e.id, e.idlen), 1, "claimed back: ours");

    /* the DLQ move (lp_dlq's, as the engine queues it): XADD to the DLQ
     * and XACK at once */
    {
        struct lp_dlq_rec rec = {
            .data = lp_dlq_cstr("x"), .error = lp_dlq_cstr("bad"),
            .detail = lp_dlq_cstr("unit"), .stage = lp_dlq_cstr("drain"),
            .source_stream = lp_dlq_cstr(STREAM),
            .source_id = { e.id, e.idlen }, .consumer = lp_dlq_cstr("me"),
            .deliveries = 1, .failed_at = 1,
        };
        struct lp_buf scratch = { 0 };
        struct lp_stream_err se;
        char dlq_id[LP_STREAM_IDLEN];
        ok(lp_dlq_move_append(r, &rec, DLQ, GROUP, &scratch) == 0,
           "DLQ move queued");
        ok(lp_dlq_move_reply(r, dlq_id, &se) == 0 && dlq_id[0],
           "DLQ move: an ID");
        is_int(lp_group_is_ours(g, e.id, e.idlen), 0, "moved: acknowledged");
        is_int(cmd_int("XLEN", DLQ, NULL, NULL, NULL), 1, "in the DLQ");
        ok(lp_dlq_move_append(r, &rec, "str", GROUP, &scratch) == 0 &&
           lp_dlq_move_reply(r, dlq_id, &se) < 0 && se.code == LP_RERR_KEY,
           "DLQ move to a string: refused for good");
        lp_buf_free(&scratch);
    }

    /* trim: entries 1-3 are acknowledged, 4 and 5 never delivered */
    ok(lp_group_queue_trim(g, 0, err) == 0 && lp_redis_reply(r, &a, err) == 0,
       "trim answered");
    is_int(lp_reply_int(a), 3, "trim: the three done with");
    lp_reply_free(a);
    is_int(cmd_int("XLEN", STREAM, NULL, NULL, NULL), 2, "two left");

    lp_reply_free(rep);
    lp_reply_free(rep2);
    lp_group_free(g);
    lp_group_free(other);
    lp_redis_free(r);
}

/* ---- lp_drain ----------------------------------------------------------- */

/* what the engine said, by level */
static int heard[32];
static char last[32][256];

static void hear(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level >= 0 && level < 32) {
        heard[level]++;
        snprintf(last[level], sizeof last[level], "%s", msg);
    }
}

static const struct lp_notify nt = { hear, NULL };

static struct lp_drain_conf conf_for(const char *dir, const char *dlq)
{
    struct lp_drain_conf c = lp_drain_defaults;
    static const struct lp_optdef given = { 0 };

    c.consumer = "unit";
    c.count = 100;
    c.block = 100;
    c.timeout = 2000;
    c.max_open = 16;
    c.max_files = 16;
    c.max_dlq_size = 1 << 20;
    c.once = 1;

    c.com.stream = "ds";
    c.com.group = "dg";
    c.com.dlq = dlq;
    c.com.dir = dir;
    c.com.dir_set = &given;
    return c;
}

static struct lp_redis *redis(void)
{
    return lp_redis_new(&url, NULL);
}

static void add_event(const char *data)
{
    struct lp_redis *c = redis();
    if (c && lp_redis_connect(c, err) == 0)
        lp_reply_free(lp_redis_cmd(c, err, "XADD", "ds", "*", "data", data,
                                   NULL));
    lp_redis_free(c);
}

/* lp_drain_open's status for conf c, its message in err */
static int open_status(struct lp_drain_conf c)
{
    struct lp_drain *d = lp_drain_new(&c, &nt, err);
    int st = d ? lp_drain_open(d, err) : -1;

    lp_drain_free(d);
    return st;
}

/* A run of conf c to its end; its result in *res */
static int run(struct lp_drain_conf c, struct lp_drain_result *res)
{
    struct lp_drain *d = lp_drain_new(&c, &nt, err);
    int st;

    memset(heard, 0, sizeof heard);
    if (d == NULL || lp_drain_open(d, err) != 0) {
        lp_drain_free(d);
        return -1;
    }
    st = lp_drain_run(d, redis(), res);
    lp_drain_free(d);
    return st;
}

static long lines_in(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int ch;

    if (f == NULL)
        return -1;
    while ((ch = getc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

int main(void)
{
    const char *u = getenv("LOGPIPE_REDIS_URL");
    char dir[] = "/tmp/unit-drain.XXXXXX", path[512];
    struct lp_drain_conf c;
    struct lp_drain_result res;

    if (u == NULL || lp_url_parse(u, &url, err) < 0 ||
        mkdtemp(dir) == NULL) {
        printf("Bail out! no Redis URL, or no temp dir\n");
        return 1;
    }
    group_tests();

    /* getting ready: what is wrong, as the tool says it, and its status */
    c = conf_for(dir, "dlq");
    c.where = "(";
    is_int(open_status(c), LP_EX_CONFIG, "bad --where: 78");
    ok(strncmp(err, "--where: ", 9) == 0, "named: %s", err);
    c = conf_for(dir, "dlq");
    c.layout = "{service";
    is_int(open_status(c), LP_EX_CONFIG, "bad --layout: 78");
    ok(strncmp(err, "--layout: ", 10) == 0, "named: %s", err);
    c = conf_for("/nonexistent/unit-drain", "dlq");
    c.com.dir_set = NULL;
    is_int(open_status(c), LP_EX_CANTCREAT, "the default --dir missing: 73");
    is_str(err, "--dir /nonexistent/unit-drain (the default) does not "
           "exist: create it, or name the archive with -d DIR or "
           "LOGPIPE_DIR", "its message");

    /* a run: two events archived, one to the DLQ, said as it went */
    add_event("{\"timestamp\":\"2026-12-06T08:00:00Z\",\"service\":\"a\",\"n\":1}");
    add_event("{\"service\":\"a\",\"n\":2");
    add_event("{\"timestamp\":\"2026-12-06T08:00:01Z\",\"service\":\"a\",\"n\":3}");
    is_int(run(conf_for(dir, "ddlq"), &res), 0, "run: 0");
    is_int(res.end, LP_DRAIN_DONE, "ran to its end");
    is_int(res.read, 3, "3 read");
    is_int(res.archived, 2, "2 archived");
    is_int(res.dlq, 1, "1 to the DLQ");
    is_int(res.dups + res.filtered + res.deleted + res.claimed, 0,
           "no duplicates, filtered, deleted or claimed");
    is_int(heard[LP_DRAIN_SAY_DLQ], 1, "the DLQ move said once");
    ok(strstr(last[LP_DRAIN_SAY_DLQ], " to the DLQ: invalid-json: ") != NULL,
       "as: %s", last[LP_DRAIN_SAY_DLQ]);
    is_int(heard[LP_NOTICE_INFO], 1, "the group's creation told");
    is_int(heard[LP_NOTICE_ERROR], 0, "no error");
    snprintf(path, sizeof path, "%s/a/2026-12-06.jsonl", dir);
    is_int(lines_in(path), 2, "two lines in the day file");

    /* again: nothing left, nothing twice */
    is_int(run(conf_for(dir, "ddlq"), &res), 0, "again: 0");
    is_int(res.read, 0, "nothing read");

    /* a DLQ that cannot take entries: the run ends, 78 */
    {
        struct lp_redis *k = redis();
        if (k && lp_redis_connect(k, err) == 0)
            lp_reply_free(lp_redis_cmd(k, err, "SET", "notastream", "x",
                                       NULL));
        lp_redis_free(k);
    }
    add_event("not json");
    is_int(run(conf_for(dir, "notastream"), &res), LP_EX_CONFIG,
           "a DLQ of the wrong type: 78");
    is_int(res.end, LP_DRAIN_DLQ_REFUSED, "refused for good");
    is_int(heard[LP_DRAIN_SAY_DLQ_FAILED], 1, "the failed move said");
    ok(strstr(last[LP_DRAIN_SAY_DLQ_FAILED], "WRONGTYPE") != NULL, "as: %s",
       last[LP_DRAIN_SAY_DLQ_FAILED]);

    /* Redis unreachable: 69 after --timeout, said as an error */
    {
        struct lp_url saved = url;
        url.port = 1;
        c = conf_for(dir, "dlq");
        c.timeout = 300;
        is_int(run(c, &res), LP_EX_UNAVAILABLE, "no Redis: 69");
        is_int(res.end, LP_DRAIN_SAID, "said by the engine");
        ok(strncmp(last[LP_NOTICE_ERROR], "giving up: ", 11) == 0,
           "as: %s", last[LP_NOTICE_ERROR]);
        url = saved;
    }

    lp_drain_free(NULL);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
