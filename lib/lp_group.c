/* lp_group.c -- a consumer of a Redis consumer group, as drain reads it */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_group.h"
#include "lp_resp.h"

struct lp_group {
    struct lp_redis *r;
    const char *stream, *group, *consumer;
    struct lp_notify nt;
    /* the ack queue: XACK's argv, [0..2] "XACK <stream> <group>" */
    const char **ack;
    size_t *acklen;
    size_t nack, capack;
    struct lp_buf ackcmd;       /* XACK in RESP, made here: hiredis's
                                 * formatting took 4% of a drain */
    struct lp_sid *mine;        /* lp_group_not_ours: our pending IDs */
    size_t capmine;
};

struct lp_group *lp_group_new(struct lp_redis *r, const char *stream,
                              const char *group, const char *consumer,
                              uint64_t count, const struct lp_notify *nt)
{
    struct lp_group *g = calloc(1, sizeof *g);

    if (g == NULL)
        return NULL;
    g->r = r;
    g->stream = stream;
    g->group = group;
    g->consumer = consumer;
    if (nt)
        g->nt = *nt;
    g->capack = count + 64;
    g->ack = calloc(g->capack, sizeof *g->ack);
    g->acklen = calloc(g->capack, sizeof *g->acklen);
    /* an XPENDING over a batch's range lists at most its count + 16 */
    g->capmine = count + 17;
    g->mine = calloc(g->capmine, sizeof *g->mine);
    if (g->ack == NULL || g->acklen == NULL || g->mine == NULL) {
        lp_group_free(g);
        return NULL;
    }
    return g;
}

void lp_group_free(struct lp_group *g)
{
    if (g == NULL)
        return;
    free(g->ack);
    free(g->acklen);
    lp_buf_free(&g->ackcmd);
    free(g->mine);
    free(g);
}

static int not_connected(struct lp_group *g, char *err)
{
    snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(g->r));
    return -1;
}

/* Appends argv[0..n), each a C string. */
static int append_strs(struct lp_group *g, int n, const char **argv,
                       char *err)
{
    size_t lens[16];

    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (lp_redis_append(g->r, n, argv, lens) < 0)
        return not_connected(g, err);
    return 0;
}

int lp_group_ensure(struct lp_group *g, char *err)
{
    struct lp_reply *rep = lp_redis_cmd(g->r, err, "XGROUP", "CREATE",
                                        g->stream, g->group, "0",
                                        "MKSTREAM", NULL);
    int rc = 0, cls;

    if (rep == NULL)
        return -1;
    if (lp_reply_is_error(rep, "OOM")) {
        /* at maxmemory Redis refuses XGROUP CREATE even for a group that
         * exists; reads, acks and trims still work: look */
        struct lp_reply *gr = lp_redis_cmd(g->r, err, "XINFO", "GROUPS",
                                           g->stream, NULL);
        int found = 0;
        for (size_t i = 0; gr && i < lp_reply_len(gr); i++) {
            const struct lp_reply *grp = lp_reply_at(gr, i);
            for (size_t k = 0; k + 1 < lp_reply_len(grp); k += 2) {
                const char *f = lp_reply_str(lp_reply_at(grp, k), NULL);
                const char *v = lp_reply_str(lp_reply_at(grp, k + 1), NULL);
                if (f && v && strcmp(f, "name") == 0 &&
                    strcmp(v, g->group) == 0)
                    found = 1;
            }
        }
        lp_reply_free(gr);
        if (found) {
            lp_notice(&g->nt, LP_NOTICE_WARN, "%s is out of memory (OOM): "
                      "the group exists, going on (acknowledging and "
                      "trimming free memory)", lp_redis_name(g->r));
            lp_reply_free(rep);
            return 0;
        }
    }
    cls = lp_reply_error_class(rep);
    if (cls && !lp_reply_is_error(rep, "BUSYGROUP")) {
        char t[300];
        snprintf(err, LP_ERRLEN, "XGROUP CREATE %s %s: %s", g->stream,
                 g->group, lp_reply_text(rep, t, sizeof t));
        rc = cls == LP_RERR_KEY || cls == LP_RERR_COMMAND ? LP_GROUP_CONFIG
                                                          : -1;
    } else if (!cls) {
        lp_notice(&g->nt, LP_NOTICE_INFO, "created group %s on %s", g->group,
                  g->stream);
        rc = 1;
    }
    lp_reply_free(rep);
    return rc;
}

long lp_group_pending_count(struct lp_group *g, const char *after,
                            uint64_t count, uint64_t max_deliveries,
                            char *err)
{
    char start[70], cnt[24];
    struct lp_reply *rep;
    long k = (long)count;

    if (strcmp(after, "0") == 0)
        strcpy(start, "-");
    else
        snprintf(start, sizeof start, "(%s", after);
    snprintf(cnt, sizeof cnt, "%" PRIu64, count);
    rep = lp_redis_cmd(g->r, err, "XPENDING", g->stream, g->group, start,
                       "+", cnt, g->consumer, NULL);
    if (rep == NULL)
        return -1;
    for (size_t i = 0; i < lp_reply_len(rep); i++) {
        const struct lp_reply *dc = lp_reply_at(lp_reply_at(rep, i), 3);
        if (dc && (uint64_t)lp_reply_int(dc) + 1 >= max_deliveries) {
            k = i ? (long)i : 1;
            break;
        }
    }
    lp_reply_free(rep);
    return k;
}

int lp_group_queue_read(struct lp_group *g, int mode, const char *from,
                        long count, int64_t idle_ms, int64_t block_ms,
                        char *err)
{
    char cnt[24], block[24], idle[24];
    const char *argv[14];
    int n = 0;

    snprintf(cnt, sizeof cnt, "%ld", count);
    if (mode == LP_GROUP_CLAIM) {
        snprintf(idle, sizeof idle, "%lld", (long long)idle_ms);
        argv[n++] = "XAUTOCLAIM";
        argv[n++] = g->stream;
        argv[n++] = g->group;
        argv[n++] = g->consumer;
        argv[n++] = idle;
        argv[n++] = from;
        argv[n++] = "COUNT";
        argv[n++] = cnt;
        argv[n++] = "JUSTID";
    } else {
        argv[n++] = "XREADGROUP";
        argv[n++] = "GROUP";
        argv[n++] = g->group;
        argv[n++] = g->consumer;
        argv[n++] = "COUNT";
        argv[n++] = cnt;
        if (mode == LP_GROUP_NEW && block_ms >= 0) {
            snprintf(block, sizeof block, "%lld", (long long)block_ms);
            argv[n++] = "BLOCK";
            argv[n++] = block;
        }
        argv[n++] = "STREAMS";
        argv[n++] = g->stream;
        argv[n++] = mode == LP_GROUP_PENDING ? from : ">";
    }
    return append_strs(g, n, argv, err);
}

int lp_group_claimed(const struct lp_reply *rep, char *cursor, size_t cap,
                     size_t *nclaimed, const struct lp_reply **deleted)
{
    const struct lp_reply *cur = lp_reply_at(rep, 0);
    const struct lp_reply *ids = lp_reply_at(rep, 1);
    size_t cl;
    const char *c = cur ? lp_reply_str(cur, &cl) : NULL;

    if (c == NULL || ids == NULL || cl >= cap)
        return -1;
    memcpy(cursor, c, cl);
    cursor[cl] = '\0';
    *nclaimed = lp_reply_len(ids);
    *deleted = lp_reply_at(rep, 2);
    return 0;
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

/* XPENDING of our entries over the ID range of entries[from..to): [id,
 * consumer, idle, deliveries] each, in ID order. Returns the reply
 * (caller frees), or NULL with err. */
static struct lp_reply *batch_pending(struct lp_group *g,
                                      const struct lp_reply *entries,
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
    return lp_redis_cmd(g->r, err, "XPENDING", g->stream, g->group, a, b,
                        count, g->consumer, NULL);
}

int lp_group_delivery_counts(struct lp_group *g,
                             const struct lp_reply *entries, size_t n,
                             unsigned *deliv, char *err)
{
    struct lp_entry e;
    struct lp_reply *rep;
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        deliv[i] = 1;
    if ((rep = batch_pending(g, entries, 0, n, err)) == NULL)
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
            deliv[k++] = (unsigned)lp_reply_int(cnt);
    }
    lp_reply_free(rep);
    return 0;
}

int lp_group_not_ours(struct lp_group *g, const struct lp_reply *entries,
                      size_t from, size_t to, struct lp_sid *drop,
                      size_t *ndrop, char *err)
{
    struct lp_entry e;
    struct lp_reply *rep;
    size_t nmine = 0;

    *ndrop = 0;
    if ((rep = batch_pending(g, entries, from, to, err)) == NULL)
        return -1;
    for (size_t j = 0; j < lp_reply_len(rep) && nmine < g->capmine; j++) {
        size_t l;
        const char *id = lp_reply_str(lp_reply_at(lp_reply_at(rep, j), 0),
                                      &l);
        if (id && lp_stream_id_parse(id, l, &g->mine[nmine].ms,
                                     &g->mine[nmine].seq) == 0)
            nmine++;
    }
    lp_reply_free(rep);
    for (size_t i = from; i < to; i++) {
        struct lp_sid id;
        if (lp_entry_get(entries, i, &e, err) < 0 ||
            lp_stream_id_parse(e.id, e.idlen, &id.ms, &id.seq) < 0)
            continue;
        if (!bsearch(&id, g->mine, nmine, sizeof id, lp_sid_cmp))
            drop[(*ndrop)++] = id;
    }
    return 0;
}

int lp_group_is_ours(struct lp_group *g, const char *id, size_t idlen)
{
    char err[LP_ERRLEN], s[64];
    struct lp_reply *rep;
    int ours;

    snprintf(s, sizeof s, "%.*s", (int)idlen, id);
    rep = lp_redis_cmd(g->r, err, "XPENDING", g->stream, g->group, s, s,
                       "1", g->consumer, NULL);
    ours = rep != NULL && lp_reply_type(rep) == LP_REPLY_ARRAY &&
           lp_reply_len(rep) == 1;
    lp_reply_free(rep);
    return ours;
}

/*
 * Gives deliveries back (see lp_group_give_back): XCLAIM ... RETRYCOUNT,
 * JUSTID so that it is not a delivery, its idle time kept. XCLAIM would
 * drop a deleted entry from the pending list (the drain reports those):
 * it is left alone, as are entries no longer pending for us.
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

/* Runs the give-back script over argv's pairs: the count, or -1. */
static long give_back_run(struct lp_group *g, int argc, const char **argv,
                          size_t *lens, char *err)
{
    struct lp_reply *rep;
    long n;

    argv[0] = "EVAL";
    argv[1] = giveback_script;
    argv[2] = "1";
    argv[3] = g->stream;
    argv[4] = g->group;
    argv[5] = g->consumer;
    for (int k = 0; k < 6; k++)
        lens[k] = strlen(argv[k]);
    if ((rep = lp_redis_cmdv(g->r, err, argc, argv, lens)) == NULL)
        return -1;
    if (lp_reply_type(rep) != LP_REPLY_INTEGER) {
        lp_reply_text(rep, err, LP_ERRLEN);
        lp_reply_free(rep);
        return -1;
    }
    n = lp_reply_int(rep);
    lp_reply_free(rep);
    return n;
}

long lp_group_give_back(struct lp_group *g, const struct lp_reply *entries,
                        size_t from, size_t to, const unsigned *deliv,
                        char *err)
{
    enum { CHUNK = 500 };       /* entries per script: Redis stays free */
    const char **argv = malloc((6 + 2 * CHUNK) * sizeof *argv);
    size_t *lens = malloc((6 + 2 * CHUNK) * sizeof *lens);
    char (*cnt)[12] = malloc(CHUNK * sizeof *cnt);
    long given = 0;
    int again = 0;

    if (argv == NULL || lens == NULL || cnt == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        given = -1;
        goto out;
    }
    if (!lp_redis_connected(g->r) && lp_redis_connect(g->r, err) != 0) {
        given = -1;
        goto out;
    }
    while (from < to) {
        int argc = 6;
        long k;
        for (size_t i = 0; i < CHUNK && from < to; i++, from++) {
            struct lp_entry e;
            unsigned dv = deliv ? deliv[from] : 1;
            if (lp_entry_get(entries, from, &e, err) < 0) {
                given = -1;
                goto out;
            }
            snprintf(cnt[i], sizeof cnt[i], "%u", dv ? dv - 1 : 0);
            argv[argc] = e.id;
            lens[argc++] = e.idlen;
            argv[argc] = cnt[i];
            lens[argc++] = strlen(cnt[i]);
        }
        k = give_back_run(g, argc, argv, lens, err);
        if (k < 0 && !again && !lp_redis_connected(g->r)) {
            /* the connection was lost before we came (a Redis restart,
             * CLIENT KILL, a failover): once more over a new one (a
             * count set twice is set once) */
            again = 1;
            if (lp_redis_connect(g->r, err) == 0)
                k = give_back_run(g, argc, argv, lens, err);
        }
        if (k < 0) {
            given = -1;
            goto out;
        }
        given += k;
    }
out:
    free(argv);
    free(lens);
    free(cnt);
    return given;
}

int lp_group_give_back_one(struct lp_group *g, const char *id, size_t idlen,
                           unsigned prev, char *err)
{
    char cnt[12];
    const char *argv[8];
    size_t lens[8];

    snprintf(cnt, sizeof cnt, "%u", prev);
    argv[6] = id;
    lens[6] = idlen;
    argv[7] = cnt;
    lens[7] = strlen(cnt);
    if (!lp_redis_connected(g->r) && lp_redis_connect(g->r, err) != 0)
        return -1;
    if (give_back_run(g, 8, argv, lens, err) >= 0)
        return 0;
    /* the connection lost before we came: once more (as above) */
    if (lp_redis_connected(g->r) || lp_redis_connect(g->r, err) != 0)
        return -1;
    return give_back_run(g, 8, argv, lens, err) < 0 ? -1 : 0;
}

/* ---- the ack queue ------------------------------------------------------ */

int lp_group_ack_add(struct lp_group *g, const char *id, size_t idlen)
{
    if (g->nack + 3 >= g->capack) {
        size_t cap = g->capack * 2;
        const char **a = realloc(g->ack, cap * sizeof *a);
        size_t *l = a ? realloc(g->acklen, cap * sizeof *l) : NULL;
        if (a)
            g->ack = a;
        if (a == NULL || l == NULL)
            return -1;
        g->acklen = l;
        g->capack = cap;
    }
    g->ack[3 + g->nack] = id;
    g->acklen[3 + g->nack] = idlen;
    g->nack++;
    return 0;
}

size_t lp_group_ack_count(const struct lp_group *g)
{
    return g->nack;
}

void lp_group_ack_drop(struct lp_group *g, const struct lp_sid *drop,
                       size_t ndrop)
{
    size_t k = 0;

    for (size_t i = 0; i < g->nack; i++) {
        struct lp_sid id;
        if (lp_stream_id_parse(g->ack[3 + i], g->acklen[3 + i], &id.ms,
                               &id.seq) == 0 &&
            bsearch(&id, drop, ndrop, sizeof id, lp_sid_cmp))
            continue;
        g->ack[3 + k] = g->ack[3 + i];
        g->acklen[3 + k] = g->acklen[3 + i];
        k++;
    }
    g->nack = k;
}

void lp_group_ack_clear(struct lp_group *g)
{
    g->nack = 0;
}

int lp_group_queue_ack(struct lp_group *g, char *err)
{
    if (g->nack == 0)
        return 0;
    g->ack[0] = "XACK";
    g->acklen[0] = 4;
    g->ack[1] = g->stream;
    g->acklen[1] = strlen(g->stream);
    g->ack[2] = g->group;
    g->acklen[2] = strlen(g->group);
    g->ackcmd.len = 0;
    if (lp_resp_command(&g->ackcmd, (int)g->nack + 3, g->ack, g->acklen) < 0) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return -1;
    }
    if (lp_redis_append_raw(g->r, g->ackcmd.p, g->ackcmd.len) < 0)
        return not_connected(g, err);
    return 1;
}

/* ---- trimming ----------------------------------------------------------- */

/*
 * XTRIM MINID to the oldest entry any group still needs: its oldest
 * pending entry, or the one after its last delivered. Computed and applied
 * in one script, so no group can move back in between. No group, or no
 * stream (deleted: the group goes with it, which the next read says): no
 * trim.
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
    "local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])\n"
    "if groups.err then\n"
    "  if string.find(groups.err, 'no such key') then return -1 end\n"
    "  return groups\n"
    "end\n"
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

int lp_group_queue_trim(struct lp_group *g, int64_t floor_ms, char *err)
{
    char floor[32] = "";
    const char *argv[5] = { "EVAL", trim_script, "1", g->stream, floor };

    if (floor_ms > 0)
        snprintf(floor, sizeof floor, "%lld-0", (long long)floor_ms);
    return append_strs(g, 5, argv, err);
}
