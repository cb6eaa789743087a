/* unit-group.c -- lp_group: a consumer of a group against a real Redis
 * (t0024 starts it and passes LOGPIPE_REDIS_URL) */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_group.h"
#include "lp_url.h"
#include "tap.h"

#define STREAM "s"
#define GROUP "g"
#define DLQ "dlq"

static struct lp_redis *r;
static char err[LP_ERRLEN];

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

int main(void)
{
    const char *url = getenv("LOGPIPE_REDIS_URL");
    struct lp_url u;
    struct lp_group *g, *other;
    struct lp_reply *rep, *rep2, *a;
    const struct lp_reply *entries, *del;
    struct lp_entry e;
    struct lp_sid drop[8];
    size_t ndrop, nclaimed;
    char cursor[64];

    if (url == NULL || lp_url_parse(url, &u, err) < 0 ||
        (r = lp_redis_new(&u, NULL)) == NULL || lp_redis_connect(r, err)) {
        printf("Bail out! no Redis: %s\n", url ? err : "no URL");
        return 1;
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

    /* the DLQ move: XADD to the DLQ and XACK at once */
    {
        const char *fv[4] = { "data", "x", "error", "bad" };
        size_t fl[4] = { 4, 1, 5, 3 };
        ok(lp_group_queue_dlq_move(g, DLQ, e.id, e.idlen, 4, fv, fl,
                                   err) == 0, "DLQ move queued");
        ok(lp_redis_reply(r, &a, err) == 0 &&
           lp_reply_type(a) == LP_REPLY_STRING, "DLQ move: an ID");
        lp_reply_free(a);
        is_int(lp_group_is_ours(g, e.id, e.idlen), 0, "moved: acknowledged");
        is_int(cmd_int("XLEN", DLQ, NULL, NULL, NULL), 1, "in the DLQ");
        ok(lp_group_queue_dlq_move(g, "str", e.id, e.idlen, 4, fv, fl,
                                   err) == 0 &&
           lp_redis_reply(r, &a, err) == 0 &&
           lp_reply_error_class(a) == LP_RERR_KEY,
           "DLQ move to a string: refused for good");
        lp_reply_free(a);
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
    return tap_done();
}
