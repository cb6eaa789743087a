/* lp_pipeline.c -- send's batches in flight to Redis, replies in order */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lp_cluster.h"
#include "lp_dlq.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_resp.h"
#include "lp_send_int.h"
#include "lp_shards.h"
#include "lp_stream.h"
#include "lp_time.h"

/*
 * Up to LP_INFLIGHT batches are in flight at once, each written whole in
 * one append and one write; Redis answers every command in order, so the
 * n-th reply is for the oldest command not answered yet. A batch leaves
 * the ring when all of its commands are answered (retire). See
 * lp_send_int.h for the engine as a whole.
 *
 * A batch is stored whole or not at all, and only right after the batch
 * before it of each of its producers. It goes as one transaction:
 *
 *   MULTI, the gate, the commands (XADDs), the undoing, EXEC
 *
 * The gate (GATE below) looks at each producer's field in
 * <stream>:producers: when every field holds the position just before
 * the batch's, it sets them to the batch's last (and cursor), and the
 * commands run. (A producer with a cursor only, lines that made no
 * command, whose field a later batch moved past already, is left as it
 * is: that batch's cursor is past its own.) Otherwise -- an earlier batch was refused (OOM) while
 * this one came after it, or this one is stored already, or a key has the
 * wrong type -- it renames the stream (and the DLQ) aside, so that the
 * XADDs write into a fresh key, and the undoing (UNDO) puts the stream
 * back over it: the commands store nothing. Redis runs a transaction with
 * no other client between its commands, so no reader ever sees the fresh
 * key. A field so only ever moves over positions that are all stored:
 * "at or below the committed position" means stored, after a lost reply
 * as after a restart, and a batch refused while a later one came is sent
 * again before it, never lost behind it. Renaming is O(1); the fresh
 * key's entries are freed, only when the gate is shut.
 *
 * --shards N: the gate's last key is the shard's marker (lp_shard_mark)
 * and its last argument N. A batch not stored yet goes in only while the
 * marker holds "N": after the count changed (lp_shards_record took the
 * shard for another), the batch is put aside as above and the gate says
 * LPSHARDS <marker> <value>, which ends the run (78): a sender started
 * before the change never stores where the readers of the new count do
 * not look. A batch found stored (STORED) is said stored all the same:
 * it was, before the change, which found its shard drained. A field not
 * where the batch goes on from is LPSHARDS too when the marker is not
 * N: a change sets the fields of the count before aside (lp_shards.h,
 * LP_SHARDS_PRODUCERS_WAS), and a sender of N learns of the change, not
 * of a field that moved.
 *
 * Without --shards the marker is the stream's count key, given as the
 * last but one argument (the last ''), not as a key: Redis checks an
 * ACL's key patterns on EVAL's keys, and a user of before the shards may
 * not read it (it is in the stream's slot, which a script may reach in a
 * cluster without naming it). A batch goes in only while no count of
 * shards (2 or more) is recorded there. A sender running when the first
 * --shards recorded one (lp_shards_record checks the stream empty and
 * sets the count in one script, in the same slot) is refused at its next
 * batch (LPSHARDS, 78),
 * never writing on into a key its drains, following the count, no longer
 * read. What a user may not GET, or what is not a count, lets the batch
 * in, as at the start (unsharded_check): pcall, so that no ACL of before
 * the shards turns the gate into an error.
 */

#define LP_STR_(x) #x
#define LP_XSTR(x) LP_STR_(x)

static const char GATE[] =
    "local nk, na, mark, umark = #KEYS, #ARGV, nil, nil\n"
    "if nk % 2 == 0 then mark, nk, na = KEYS[nk], nk - 1, na - 1\n"
    "elseif (na - 1) % 5 == 2 then umark, na = ARGV[na - 1], na - 2 end\n"
    "local function aside(why)\n"
    "  for k = 2, nk, 2 do\n"
    "    local t = redis.call('TYPE', KEYS[k]).ok\n"
    "    if t == 'stream' then redis.call('RENAME', KEYS[k], KEYS[k + 1])\n"
    "    elseif t == 'none' then redis.call('SET', KEYS[k + 1], '') end\n"
    "  end\n"
    "  return why\n"
    "end\n"
    "local function marked()\n"
    "  if umark then\n"
    "    local v = redis.pcall('GET', umark)\n"
    "    if type(v) == 'string' and string.match(v, '^[1-9]%d*$') and\n"
    "       tonumber(v) > 1 and tonumber(v) <= " LP_XSTR(LP_SHARDS_MAX) " then\n"
    "      return aside({err = 'LPSHARDS ' .. umark .. ' ' .. v})\n"
    "    end\n"
    "    return nil\n"
    "  end\n"
    "  if not mark then return nil end\n"
    "  local t = redis.call('TYPE', mark).ok\n"
    "  local m = ''\n"
    "  if t == 'string' then m = redis.call('GET', mark)\n"
    "  elseif t ~= 'none' then m = '(a ' .. t .. ')' end\n"
    "  if m ~= ARGV[#ARGV] then\n"
    "    return aside({err = 'LPSHARDS ' .. mark .. ' ' .. m})\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "for k = 3, nk, 2 do redis.call('DEL', KEYS[k]) end\n"
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'hash' and t ~= 'none' then\n"
    "  return aside({err = 'WRONGTYPE ' .. KEYS[1] .. ' is a ' .. t ..\n"
    "                      ', not a hash'})\n"
    "end\n"
    "for k = 2, nk, 2 do\n"
    "  t = redis.call('TYPE', KEYS[k]).ok\n"
    "  if t ~= 'stream' and t ~= 'none' then\n"
    "    return aside({err = 'WRONGTYPE ' .. KEYS[k] .. ' is a ' .. t ..\n"
    "                        ', not a stream'})\n"
    "  end\n"
    "end\n"
    "local n, stored, skip = 0, 0, {}\n"
    "for i = 2, na, 5 do\n"
    "  local v = redis.call('HGET', KEYS[1], ARGV[i])\n"
    "  local have = v and tonumber(string.match(v, '^%d+')) or 0\n"
    "  local from, to = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "  if to == from and have > from then skip[i] = true\n"
    "  else n = n + 1 end\n"
    "  if skip[i] then\n"
    "  elseif to > from and have >= to then\n"
    "    stored = stored + 1\n"
    "    -- an idempotency key's field (logpipe-http): stored with this\n"
    "    -- body, or another's (its cursor starts with the body's hash)\n"
    "    local c = ARGV[i + 3]\n"
    "    if (string.sub(ARGV[i], 1, 5) == 'http:' or\n"
    "        string.sub(ARGV[i], 1, 6) == 'httph:') and c ~= '' then\n"
    "      local had = string.match(v or '', '^%d+ %d+ (%x+)%.')\n"
    "      local mine = string.match(c, '^(%x+)%.')\n"
    "      if had and mine and had ~= mine then\n"
    "        return aside({err = 'LPKEY ' .. ARGV[i] ..\n"
    "                            ' holds another body'})\n"
    "      end\n"
    "    end\n"
    "  elseif have ~= from and not (have == 0 and ARGV[i + 4] == '1') then\n"
    "    local m = marked()\n"
    "    if m then return m end\n"
    "    return aside({err = 'LPGATE ' .. KEYS[1] .. ' holds position ' ..\n"
    "                  have .. ' of producer ' .. ARGV[i] ..\n"
    "                  ', the batch goes on from ' .. from})\n"
    "  end\n"
    "end\n"
    "if n > 0 and stored == n then return aside('STORED') end\n"
    "if stored > 0 then\n"
    "  return aside({err = 'LPGATE ' .. KEYS[1] .. ': part of the batch ' ..\n"
    "                      'is stored, part not'})\n"
    "end\n"
    "do local m = marked() if m then return m end end\n"
    "for i = 2, na, 5 do\n"
    "  if not skip[i] then\n"
    "    local v = ARGV[i + 2] .. ' ' .. ARGV[1]\n"
    "    if ARGV[i + 3] ~= '' then v = v .. ' ' .. ARGV[i + 3] end\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], v)\n"
    "  end\n"
    "end\n"
    "return 'OK'\n";

/* Runs every command the gate and the undoing may run, on the hold names
 * (which the gate deletes anyway): a user that may not run one of them
 * would make the gate an error, and the XADDs after it would store the
 * batch all the same. */
static const char PROBE[] =
    "for k = 2, #KEYS, 2 do\n"
    "  redis.call('TYPE', KEYS[k])\n"
    "  redis.call('DEL', KEYS[k + 1])\n"
    "  redis.call('SET', KEYS[k + 1], '')\n"
    "  redis.call('RENAME', KEYS[k + 1], KEYS[k + 1])\n"
    "  redis.call('DEL', KEYS[k + 1])\n"
    "  redis.call('HSET', KEYS[k + 1], 'probe', '')\n"
    "  redis.call('DEL', KEYS[k + 1])\n"
    "end\n"
    "redis.call('TYPE', KEYS[1])\n"
    "redis.call('HGET', KEYS[1], '')\n"
    "return 'OK'\n";

static const char UNDO[] =
    "for k = 1, #KEYS, 2 do\n"
    "  local t = redis.call('TYPE', KEYS[k + 1]).ok\n"
    "  if t == 'stream' then redis.call('RENAME', KEYS[k + 1], KEYS[k])\n"
    "  elseif t == 'string' then redis.call('DEL', KEYS[k], KEYS[k + 1]) end\n"
    "end\n"
    "return 'OK'\n";

int lp_pipeline_init(struct lp_send *s)
{
    const char *xadd[4] = { "XADD", s->c.stream, "*", "data" };
    size_t lens[4] = { 4, strlen(s->c.stream), 1, 4 };

    if (s->c.replicas) {
        char n[24], ms[24];
        const char *w[3] = { "WAIT", n, ms };
        snprintf(n, sizeof n, "%" PRIu64, s->c.replicas);
        snprintf(ms, sizeof ms, "%" PRId64, s->c.replica_timeout > 0 ?
                 s->c.replica_timeout : 1);
        if (lp_resp_head(&s->waitcmd, 3) < 0)
            return -1;
        for (int i = 0; i < 3; i++)
            if (lp_resp_bulk(&s->waitcmd, w[i], strlen(w[i])) < 0)
                return -1;
    }
    {
        char e[LP_ERRLEN];
        if (lp_key_aux(s->c.cluster, s->c.stream, ":send-hold", s->shold,
                       sizeof s->shold, e) < 0)
            snprintf(s->shold, sizeof s->shold, "%s:send-hold", s->c.stream);
        /* not --shards: the count key every batch's gate looks at
         * (none when the name cannot have one: no count ever there) */
        if (lp_shards_key(s->c.cluster, s->c.stream, s->ukey,
                          sizeof s->ukey, e) < 0)
            s->ukey[0] = '\0';
        if (lp_key_aux(s->c.cluster, s->c.dlq ? s->c.dlq : "", ":send-hold",
                       s->dhold, sizeof s->dhold, e) < 0)
            snprintf(s->dhold, sizeof s->dhold, "%s:send-hold",
                     s->c.dlq ? s->c.dlq : "");
    }
    /* XADD <stream> * data: every event's command up to its data */
    if (lp_resp_head(&s->prefix, 5) < 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (lp_resp_bulk(&s->prefix, xadd[i], lens[i]) < 0)
            return -1;
    if ((s->in->ev = calloc(s->c.batch, sizeof(struct lp_cmd))) == NULL)
        return -1;
    s->in->cap = s->c.batch;
    for (int i = 0; i < LP_INFLIGHT; i++) {
        if ((s->ring[i].ev = calloc(s->c.batch,
                                    sizeof(struct lp_cmd))) == NULL)
            return -1;
        s->ring[i].cap = s->c.batch;
    }
    return 0;
}

int lp_pipeline_xadd_to(struct lp_send *s, struct lp_buf *blob,
                        const char *txt, size_t n, const struct lp_jevent *ev)
{
    size_t len = ev && ev->ncuts ? lp_json_cut_len(ev, n) : n;
    char *o;

    /* the prefix, then the event as the last argument, written in place */
    if (lp_buf_add(blob, s->prefix.p, s->prefix.len) < 0 ||
        (o = lp_resp_bulk_space(blob, len)) == NULL)
        return -1;
    if (ev && ev->ncuts)
        lp_json_cut_copy(ev, txt, n, o);
    else
        memcpy(o, txt, n);
    return 0;
}

size_t lp_pipeline_xadd_event(struct lp_send *s, const char *txt, size_t n,
                              const struct lp_jevent *ev)
{
    size_t start = s->in->blob.len;

    if (lp_pipeline_xadd_to(s, &s->in->blob, txt, n, ev) < 0)
        lp_send_oom(s);
    return start;
}

size_t lp_pipeline_xadd_dlq(struct lp_send *s, const struct lp_dlq_rec *rec)
{
    size_t start = s->in->blob.len;

    if (lp_dlq_encode_xadd(rec, s->sh ? s->sh[s->cur_in].dlq : s->c.dlq,
                           &s->in->blob) < 0)
        lp_send_oom(s);
    return start;
}

void lp_batch_reset(struct lp_batch *b)
{
    lp_reply_free(b->held);
    b->held = NULL;
    b->unconfirmed = 0;
    b->n = b->replied = b->failed = 0;
    b->nwire = b->wire = 0;
    b->blob.len = 0;
    b->flushed = b->tried = b->answered = b->aborted = b->numbered = 0;
    b->fixed = 0;
    b->ack_to = 0;
    b->qerr[0] = '\0';
    b->qperm = 0;
    b->nprods = 0;
    b->gated = b->lost = 0;
    b->pbuf.len = 0;
    b->head.len = 0;
    b->tail.len = 0;
    b->first[0] = b->last[0] = '\0';
}

void lp_pipeline_release(struct lp_send *s)
{
    lp_batch_reset(&s->ring[s->head]);
    s->head = (s->head + 1) % LP_INFLIGHT;
    s->count--;
}

/* An error reply no retry cures: the stream's type, the rights, the
 * credentials. */
static int permanent_error(const struct lp_reply *rep)
{
    return lp_reply_error_class(rep) >= LP_RERR_KEY;
}

void lp_pipeline_flush_ids(struct lp_send *s)
{
    if (s->out_ids.len == 0)
        return;
    if (!s->ids_off && lp_fs_write_all(s->c.ids_fd, s->out_ids.p,
                                      s->out_ids.len) < 0) {
        /* stop reading and finish what is in flight; then a closed pipe
         * ends us as SIGPIPE would (see main), other errors with 74 */
        if (errno != EPIPE) {
            say(s, LP_NOTICE_ERROR, "stdout: %s", strerror(errno));
            s->exit_code = LP_EX_IOERR;
        } else {
            s->stdout_gone = 1;
        }
        s->ids_off = 1;
        s->stop = 1;
    }
    s->out_ids.len = 0;
}

/* The oldest batch in flight still waiting for replies, or NULL. */
static struct lp_batch *unanswered(struct lp_send *s)
{
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->wire < b->nwire)
            return b;
    }
    return NULL;
}

/* What became of command k of b, from its element of EXEC's reply. */
static void take_result(struct lp_send *s, struct lp_batch *b, size_t k,
                        const struct lp_reply *rep)
{
    struct lp_cmd *e = &b->ev[k];

    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[LP_ERRLEN - 100];
        if (e->req) {
            /* a request's: its answer says so; not sent again (the
             * gate let the batch in: its positions are committed) */
            e->done = 1;
            lp_req_answered(s, e, 0, NULL, 0,
                            lp_reply_text(rep, t, sizeof t));
            return;
        }
        b->failed++;
        snprintf(s->last_error, sizeof s->last_error, "XADD %s: %s",
                 e->kind == LP_CMD_EVENT ? s->c.stream : s->c.dlq,
                 lp_reply_text(rep, t, sizeof t));
        s->last_permanent |= permanent_error(rep);
        return;
    }
    e->done = 1;
    if (e->kind == LP_CMD_EVENT) {
        size_t idn;
        const char *id = lp_reply_str(rep, &idn);
        if (id && idn < sizeof b->last) {
            memcpy(b->last, id, idn);
            b->last[idn] = '\0';
            if (b->first[0] == '\0')
                memcpy(b->first, b->last, idn + 1);
        }
        s->n.sent++;
        if (b->source == LP_BATCH_REPLAY)
            s->n.replayed++;
        if (s->c.ids && !s->ids_off && id) {
            /* a shard's entry: <i>-<ms>-<seq>, as drain's _id, dlq
             * and replay write it (the shards' IDs repeat each other) */
            if (s->sh && b->shard >= 0) {
                char pre[16];
                int pl = snprintf(pre, sizeof pre, "%d-", b->shard);
                lp_buf_add(&s->out_ids, pre, (size_t)pl);
            }
            lp_buf_add(&s->out_ids, id, idn);
            lp_buf_addc(&s->out_ids, '\n');
        }
    } else {
        s->n.dlq++;
    }
    if (e->req) {
        size_t idn = 0;
        const char *id = e->kind == LP_CMD_EVENT ? lp_reply_str(rep, &idn)
                                                 : NULL;
        lp_req_answered(s, e, 1, id, idn, NULL);
    }
}

static void batch_stored(struct lp_send *s, struct lp_batch *b);
static void pcache_set(struct lp_send *s, const char *name, size_t len,
                       uint64_t pos);

/* The gate let b's commands run: its fields moved to its positions. */
static void committed(struct lp_send *s, struct lp_batch *b)
{
    lp_shard_keys(s, b->shard);     /* --shards: its shard's fields */
    for (int i = 0; i < b->nprods; i++) {
        const struct lp_bprod *p = &b->prods[i];
        const char *name = b->pbuf.p + p->name;
        pcache_set(s, name, p->namelen, p->to);
        if (p->namelen == strlen(s->producer) &&
            memcmp(name, s->producer, p->namelen) == 0 && p->to > s->acked)
            s->acked = p->to;
    }
}

/* --shards: b's gate found its shard's marker another count's (GATE):
 * the run ends (78), b not stored; said once, for the first such batch */
static void shards_changed(struct lp_send *s, struct lp_batch *b,
                           const struct lp_reply *g)
{
    char t[LP_ERRLEN - 100], *mk, *v;
    size_t nev = 0;
    unsigned long now = 0;

    s->last_permanent = 1;
    if (s->shards_changed)
        return;
    s->shards_changed = 1;
    lp_reply_text(g, t, sizeof t);
    /* "LPSHARDS <marker> <value>" */
    mk = strchr(t, ' ');
    mk = mk ? mk + 1 : t;
    v = strrchr(mk, ' ');
    if (v)
        *v++ = '\0';
    else
        v = "";
    if (strncmp(v, "to:", 3) == 0)
        now = strtoul(v + 3, NULL, 10);
    else if (v[0] >= '1' && v[0] <= '9')
        now = strtoul(v, NULL, 10);
    s->shards_now = now <= LP_SHARDS_MAX ? (unsigned)now : 0;
    for (size_t k = 0; k < b->n; k++)
        nev += b->ev[k].kind == LP_CMD_EVENT;
    if (s->sh == NULL && s->serving)
        snprintf(s->last_error, sizeof s->last_error, "stream %s is spread "
                 "over %u shards now (%s, recorded by a logpipe-send "
                 "--shards %u after this run started): a batch of %zu %s "
                 "was not stored; logpipe-http stores to a stream that is "
                 "not (its events would go to the key %s, which no drain "
                 "of the shards reads): give another --stream",
                 s->c.stream, s->shards_now, mk, s->shards_now, nev,
                 lp_plural(nev, "event", "events"), s->c.stream);
    else if (s->sh == NULL)
        snprintf(s->last_error, sizeof s->last_error, "stream %s is spread "
                 "over %u shards now (%s, recorded by a logpipe-send "
                 "--shards %u after this run started): a batch of %zu %s "
                 "was not stored; restart with --shards %u, else these "
                 "events would go to the key %s, which no drain of the "
                 "shards reads", s->c.stream, s->shards_now, mk,
                 s->shards_now, nev, lp_plural(nev, "event", "events"),
                 s->shards_now, s->c.stream);
    else if (s->shards_now)
        snprintf(s->last_error, sizeof s->last_error, "the stream's count "
                 "of shards changed to %u while this run sent to %u shards "
                 "(%s holds %s): a batch of %zu %s for %s was not stored; "
                 "restart with --shards %u",
                 s->shards_now, s->nsh, mk, v, nev,
                 lp_plural(nev, "event", "events"), s->c.stream,
                 s->shards_now);
    else
        snprintf(s->last_error, sizeof s->last_error, "the stream's count "
                 "of shards is not this run's %u any more (%s holds '%s'): "
                 "a batch of %zu %s for %s was not stored; start "
                 "logpipe-send again", s->nsh, mk, v, nev,
                 lp_plural(nev, "event", "events"), s->c.stream);
}

/* The gate's answer g, the first of EXEC's: 1 when b's commands ran
 * (their own answers follow); 0 when they stored nothing, b then being
 * stored from before (STORED) or failed as a whole. */
static int gate_open(struct lp_send *s, struct lp_batch *b,
                     const struct lp_reply *g)
{
    char t[LP_ERRLEN - 100];
    size_t n = 0;
    const char *v = lp_reply_str(g, &n);

    if (lp_reply_type(g) != LP_REPLY_ERROR && v) {
        if (n == 2 && memcmp(v, "OK", 2) == 0) {
            committed(s, b);
            return 1;
        }
        if (n == 6 && memcmp(v, "STORED", 6) == 0) {
            batch_stored(s, b);     /* sent again after a lost reply */
            return 0;
        }
    }
    if (lp_reply_is_error(g, "LPKEY")) {
        /* an idempotency key stored with another body (a request of its
         * own in the batch): that request fails, nothing goes again */
        lp_reply_text(g, t, sizeof t);
        for (size_t k = 0; k < b->n; k++) {
            struct lp_cmd *e = &b->ev[k];
            if (e->done)
                continue;
            e->done = 1;
            if (e->req)
                lp_req_answered(s, e, 0, NULL, 0, t);
        }
        b->nprods = 0;
        b->pbuf.len = 0;
        return 0;
    }
    b->aborted = 1;
    b->failed = b->n ? b->n : 1;
    s->npcache = 0;             /* what the gate found: read it again */
    if (lp_reply_is_error(g, "LPSHARDS")) {
        shards_changed(s, b, g);
        return 0;
    }
    for (int i = 0; i < s->count; i++) {
        const struct lp_batch *o = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (o == b)
            break;
        if (o->failed)
            return 0;           /* it waits for that one: its error says */
    }
    snprintf(s->last_error, sizeof s->last_error, "%s",
             lp_reply_text(g, t, sizeof t));
    s->last_permanent |= permanent_error(g);
    return 0;
}

/*
 * Takes one reply of b's transaction: MULTI's and each QUEUED are only
 * looked at for an error (OOM: then EXEC answers EXECABORT, nothing of
 * the batch is stored); EXEC's says what the gate did and what became of
 * every command.
 */
static void take_reply(struct lp_send *s, struct lp_batch *b,
                       struct lp_reply *rep)
{
    size_t w = b->wire++, g = (size_t)b->gated;
    size_t last = b->nwire - 1 - (s->c.replicas != 0);     /* EXEC's */
    char t[LP_ERRLEN - 100];

    lp_shard_keys(s, b->shard);     /* --shards: its messages name it */

    if (s->c.replicas && w == last) {
        b->held = rep;          /* EXEC's: what WAIT says decides */
        return;
    }
    if (s->c.replicas && w == last + 1) {
        /* WAIT: the replicas that have everything this connection wrote */
        long long got = lp_reply_type(rep) == LP_REPLY_INTEGER
                        ? lp_reply_int(rep) : -1;
        if (got < 0 || (uint64_t)got < s->c.replicas) {
            char d[32];
            lp_format_duration(s->c.replica_timeout, d, sizeof d);
            if (got < 0)
                snprintf(s->last_error, sizeof s->last_error, "WAIT: %s",
                         lp_reply_text(rep, t, sizeof t));
            else
                snprintf(s->last_error, sizeof s->last_error, "WAIT: %lld "
                         "of --replicas %" PRIu64 " replicas had the batch "
                         "within %s", got, s->c.replicas, d);
            s->last_permanent |= got < 0 && permanent_error(rep);
            /* not stored as far as anyone may tell: sent again (its gate
             * then says STORED, and WAIT is asked again) */
            lp_reply_free(rep);
            lp_reply_free(b->held);
            b->held = NULL;
            b->answered = 1;
            b->aborted = 1;
            b->unconfirmed = 1;
            b->failed = b->n ? b->n : 1;
            return;
        }
        lp_reply_free(rep);
        rep = b->held;
        b->held = NULL;
    } else if (w < last) {
        if (lp_reply_type(rep) == LP_REPLY_ERROR && b->qerr[0] == '\0') {
            snprintf(b->qerr, sizeof b->qerr, "%s",
                     lp_reply_text(rep, t, sizeof t));
            b->qperm = permanent_error(rep);
        }
        lp_reply_free(rep);
        return;
    }
    b->answered = 1;
    b->replied = b->n;
    if (lp_reply_type(rep) == LP_REPLY_ARRAY &&
        lp_reply_len(rep) >= b->n + 2 * g) {
        if (!g || gate_open(s, b, lp_reply_at(rep, 0)))
            for (size_t k = 0; k < b->n; k++)
                take_result(s, b, k, lp_reply_at(rep, g + k));
    } else {
        /* EXECABORT (or no transaction): nothing of it was stored */
        b->aborted = 1;
        b->failed = b->n ? b->n : 1;
        if (b->qerr[0]) {
            snprintf(s->last_error, sizeof s->last_error, "%s", b->qerr);
            s->last_permanent |= b->qperm;
        } else {
            snprintf(s->last_error, sizeof s->last_error, "EXEC: %s",
                     lp_reply_text(rep, t, sizeof t));
            s->last_permanent |= permanent_error(rep);
        }
    }
    lp_reply_free(rep);
}

/* Releases answered batches at the head; -1 when the head had errors. */
int lp_pipeline_retire(struct lp_send *s)
{
    char err[LP_ERRLEN];

    while (s->count > 0) {
        struct lp_batch *b = &s->ring[s->head];
        if (b->wire < b->nwire)
            break;
        if (b->failed)
            return -1;
        if (b->source == LP_BATCH_REPLAY && b->n &&
            b->ack_to != UINT64_MAX &&
            lp_wal_seg_ack(s->wal, s->rseg, b->ack_to ? b->ack_to
                                                      : b->ev[b->n - 1].wend,
                           err) < 0)
            lp_spool_error(s, err);
        {
            double ms = (double)(lp_mono_us() - b->sent_us) / 1000.0;
            s->n.batches++;
            lp_metric_observe(s->batch_s, ms / 1000.0);
            if (s->c.verbosity >= 1) {
                /* count: events into the stream; dlq: rejected lines
                 * into the DLQ; no first and last without events */
                char kv[200], ids[120] = "";
                size_t nd = 0;
                for (size_t i = 0; i < b->n; i++)
                    nd += b->ev[i].kind == LP_CMD_DLQ;
                if (b->first[0])
                    snprintf(ids, sizeof ids, "first=%s last=%s ", b->first,
                             b->last);
                snprintf(kv, sizeof kv, "%scount=%zu dlq=%zu ms=%.1f%s", ids,
                         b->n - nd, nd, ms,
                         b->source == LP_BATCH_REPLAY ? " from=wal" : "");
                say(s, LP_SEND_TRACE, "%s", kv);
            }
        }
        lp_pipeline_release(s);
        s->fail_since = 0;
        lp_backoff_reset(&s->backoff);
        if (s->count == 0)
            s->n_ahead = 0;      /* nothing unacknowledged before them */
        if (s->warned) {
            say(s, LP_NOTICE_WARN, "%s answers again", lp_redis_name(s->r));
            s->warned = 0;
        }
    }
    /* a segment all sent and all acknowledged is done */
    if (s->rseg && s->rseg_eof && s->count == 0) {
        if (lp_wal_seg_done(s->wal, s->rseg, err) < 0)
            lp_spool_error(s, err);
        s->rseg = NULL;
        s->rseg_eof = 0;
    }
    lp_pipeline_flush_ids(s);
    return 0;
}

/* Takes the replies that have arrived; with block, waits for at least
 * one. Returns 0, or -1 with err on an I/O error or an error reply. */
int lp_pipeline_pump(struct lp_send *s, int block, char *err)
{
    struct lp_reply *rep;
    struct lp_batch *b;
    int got = 0, rc;

    if (s->lose_now) {
        /* Redis runs what was written meanwhile; its replies die with
         * the connection */
        s->lose_now = 0;
        poll(NULL, 0, 300);
        lp_redis_disconnect(s->r);
        snprintf(err, LP_ERRLEN, "%s: connection dropped "
                 "(LOGPIPE_TEST_LOSE_REPLY)", lp_redis_name(s->r));
        return -1;
    }
    for (;;) {
        while ((rc = lp_redis_next(s->r, &rep, err)) == 1) {
            if ((b = unanswered(s)) == NULL) {
                lp_reply_free(rep);     /* cannot happen: no command out */
                snprintf(err, LP_ERRLEN, "reply without a command");
                lp_redis_disconnect(s->r);
                return -1;
            }
            take_reply(s, b, rep);
            got = 1;
        }
        if (rc < 0)
            return -1;
        if (lp_pipeline_retire(s) < 0) {
            snprintf(err, LP_ERRLEN, "%s", s->last_error);
            return -1;
        }
        if (got || !block || s->count == 0)
            return 0;
        if (lp_redis_read(s->r, err) < 0)
            return -1;
    }
}

/* Keeps only the commands of b without a success reply, in order.
 * *behind: an earlier event is not acknowledged (in ring order). */
void lp_pipeline_compact(struct lp_send *s, struct lp_batch *b, int *behind)
{
    size_t keep = 0, pos = 0;

    for (size_t k = 0; k < b->n; k++) {
        struct lp_cmd e = b->ev[k];
        if (e.done) {
            if (*behind && e.kind == LP_CMD_EVENT)
                s->n_ahead++;
            continue;
        }
        *behind = 1;
        if (e.cmd != pos)
            memmove(b->blob.p + pos, b->blob.p + e.cmd, e.cmdlen);
        e.cmd = (uint32_t)pos;
        pos += e.cmdlen;
        b->ev[keep++] = e;
    }
    b->n = keep;
    b->blob.len = pos;
    b->replied = b->failed = 0;
    b->nwire = b->wire = 0;
    b->qerr[0] = '\0';
    b->qperm = 0;
    /* tried and answered stay: lp_pipeline_resolve reads them */
    b->flushed = 0;
}

/* Appends the EVAL of script with its keys: the producers' hash, then the
 * stream and where it goes aside, and the DLQ's when b has dead letters;
 * mark: the shard's marker last (--shards), its count the caller's last
 * argument (counted in nargs). */
static void eval_head(struct lp_send *s, struct lp_buf *o, const char *script,
                      size_t slen, int gate, int dlq, int mark, int nargs)
{
    char nk[4], mk[1100], e[LP_ERRLEN];
    int nkeys = (gate ? 1 : 0) + (dlq ? 4 : 2), ml = 0;
    size_t nkl;

    if (mark && (ml = lp_shard_mark(s->c.cluster, s->c.stream, mk,
                                    sizeof mk, e)) < 0)
        ml = snprintf(mk, sizeof mk, "%s%s", s->c.stream, LP_SHARDS_SUFFIX);
    nkeys += mark != 0;
    nkl = (size_t)snprintf(nk, sizeof nk, "%d", nkeys);
    if (lp_resp_head(o, 3 + nkeys + nargs) < 0 ||
        lp_resp_bulk(o, "EVAL", 4) < 0 ||
        lp_resp_bulk(o, script, slen) < 0 ||
        lp_resp_bulk(o, nk, nkl) < 0 ||
        (gate && lp_resp_bulk(o, s->pkey, strlen(s->pkey)) < 0) ||
        lp_resp_bulk(o, s->c.stream, strlen(s->c.stream)) < 0 ||
        lp_resp_bulk(o, s->shold, strlen(s->shold)) < 0 ||
        (dlq && (lp_resp_bulk(o, s->c.dlq, strlen(s->c.dlq)) < 0 ||
                 lp_resp_bulk(o, s->dhold, strlen(s->dhold)) < 0)) ||
        (mark && lp_resp_bulk(o, mk, (size_t)ml) < 0))
        lp_send_oom(s);
}

static int add_num(struct lp_buf *o, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRIu64, v);

    return lp_resp_bulk(o, t, (size_t)n);
}

/*
 * MULTI and the gate into b->head, the undoing and EXEC into b->tail (a
 * batch without producers, records of a WAL older than positions: MULTI
 * and EXEC alone). Each producer's field goes from "from" to "to": from
 * the position before its first command in the batch to its last; for a
 * batch re-sent from the WAL, from the position read from Redis (its
 * records are in the WAL in order, and what lies between was never sent
 * or is stored); for a producer with a cursor only, from base to base.
 */
static void make_gate(struct lp_send *s, struct lp_batch *b)
{
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n",
                      exec[] = "*1\r\n$4\r\nEXEC\r\n";
    uint64_t lo[LP_BATCH_PRODS + 1];
    int has[LP_BATCH_PRODS + 1] = { 0 }, dlq = 0, mark, umark;
    char now[24];
    size_t nowl;

    lp_shard_keys(s, b->shard);     /* --shards: its shard's keys */
    b->head.len = b->tail.len = 0;
    b->gated = b->nprods > 0;
    if (lp_buf_add(&b->head, multi, sizeof multi - 1) < 0)
        lp_send_oom(s);
    if (!b->gated)
        goto out;
    for (int i = 0; i < b->nprods; i++) {
        lo[i] = UINT64_MAX;
        b->prods[i].to = 0;
    }
    for (size_t k = 0; k < b->n; k++) {
        const struct lp_cmd *e = &b->ev[k];
        dlq |= e->kind == LP_CMD_DLQ;
        if (e->prod == LP_NOPROD || e->prod >= b->nprods)
            continue;
        has[e->prod] = 1;
        if (e->pos < lo[e->prod])
            lo[e->prod] = e->pos;
        if (e->pos > b->prods[e->prod].to)
            b->prods[e->prod].to = e->pos;
    }
    dlq &= s->c.dlq != NULL;
    for (int i = 0; i < b->nprods; i++) {
        struct lp_bprod *p = &b->prods[i];
        if (s->sh && s->js && b->shard >= 0 &&
            b->source == LP_BATCH_INPUT) {
            /* --journal --shards: from the shard's batch before it, to
             * the position of its cursor's entry (lp_pipeline_number) */
            p->from = b->sfrom;
            if (p->base > p->to)
                p->to = p->base;
        } else if (!has[i])
            p->from = p->to = p->base;
        else if (b->source == LP_BATCH_REPLAY)
            ;                       /* from Redis's, when it was made */
        else if (s->sh && b->shard >= 0 && !s->fl)
            p->from = b->sfrom;     /* the shard's batch before it */
        else
            p->from = lo[i] - 1;
        /* else: set from Redis's when the batch was made */
    }
    /* --shards: the shard's marker, which must hold the count; else the
     * stream's count key, which must hold none (a count of shards
     * recorded after this run's start refuses the batch) */
    mark = s->sh && b->shard >= 0;
    umark = s->sh == NULL && s->ukey[0];
    eval_head(s, &b->head, GATE, sizeof GATE - 1, 1, dlq, mark,
              1 + 5 * b->nprods + mark + 2 * umark);
    nowl = (size_t)snprintf(now, sizeof now, "%" PRId64, lp_now_ms());
    if (lp_resp_bulk(&b->head, now, nowl) < 0)
        lp_send_oom(s);
    for (int i = 0; i < b->nprods; i++) {
        const struct lp_bprod *p = &b->prods[i];
        const char *name = b->pbuf.p + p->name;
        /* stdin's field, gone when every position before the batch's was
         * answered: removed by another sender's --producer-ttl */
        int may_be_gone = !s->fl && !s->js && !b->lost && !s->sh &&
                          p->from &&
                          p->from <= s->acked &&
                          p->namelen == strlen(s->producer) &&
                          memcmp(name, s->producer, p->namelen) == 0;
        if (lp_resp_bulk(&b->head, name, p->namelen) < 0 ||
            add_num(&b->head, p->from) < 0 || add_num(&b->head, p->to) < 0 ||
            lp_resp_bulk(&b->head, b->pbuf.p + p->cursor, p->cursorlen) < 0 ||
            lp_resp_bulk(&b->head, may_be_gone ? "1" : "0", 1) < 0)
            lp_send_oom(s);
    }
    if (mark && add_num(&b->head, s->nsh) < 0)
        lp_send_oom(s);     /* the count the shard's marker must hold */
    if (umark && (lp_resp_bulk(&b->head, s->ukey, strlen(s->ukey)) < 0 ||
                  lp_resp_bulk(&b->head, "", 0) < 0))
        lp_send_oom(s);     /* the count key, which must hold none */
    eval_head(s, &b->tail, UNDO, sizeof UNDO - 1, 0, dlq, 0, 0);
out:
    if (lp_buf_add(&b->tail, exec, sizeof exec - 1) < 0)
        lp_send_oom(s);
}

int lp_pipeline_send(struct lp_send *s, struct lp_batch *b, char *err)
{
    int rc;
    char *x = NULL;

    b->tried = 1;
    b->answered = b->aborted = 0;
    b->wire = b->nwire = 0;
    b->qerr[0] = '\0';
    if (b->n == 0 && b->nprods == 0)
        return 0;               /* nothing left: answered as it is */
    make_gate(s, b);
    b->nwire = 1 + b->n + 2 * (size_t)b->gated + 1 + (s->c.replicas != 0);
    lp_reply_free(b->held);
    b->held = NULL;
    if (s->c.test_refuse && b->source == LP_BATCH_INPUT && b->n &&
        ++s->nrefuse == s->c.test_refuse &&
        (x = memmem(b->blob.p + b->ev[0].cmd, b->ev[0].cmdlen < 32 ?
                    b->ev[0].cmdlen : 32, "XADD", 4)) != NULL)
        x[3] = 'X';     /* test-only: a command Redis does not know:
                           refused while queueing, EXEC answers
                           EXECABORT, the batches after it wait for it */
    if (!lp_redis_connected(s->r)) {
        if (x)
            x[3] = 'D';
        b->nwire = 0;
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(s->r));
        return -1;
    }
    /* the transaction in one write, from the batch's own buffers */
    struct iovec iov[4] = {
        { b->head.p, b->head.len }, { b->blob.p, b->blob.len },
        { b->tail.p, b->tail.len }, { s->waitcmd.p, s->waitcmd.len }
    };
    b->sent_us = lp_mono_us();
    rc = lp_redis_writev(s->r, iov, s->c.replicas ? 4 : 3, err);
    if (x)
        x[3] = 'D';
    if (rc < 0)
        return -1;
    b->flushed = 1;
    if (s->c.test_lose_reply && ++s->nwritten == s->c.test_lose_reply)
        s->lose_now = 1;        /* lp_pipeline_pump drops the connection */
    return 0;
}

/* Command e of b was found stored (a resumed run's input that the first
 * run sent): counted as sent, not sent again. */
static void stored(struct lp_send *s, struct lp_cmd *e)
{
    e->done = 1;
    if (e->kind == LP_CMD_EVENT) {
        s->n.sent++;
        s->n.already++;
    } else {
        s->n.dlq++;
    }
    if (e->req)
        lp_req_answered(s, e, 1, NULL, 0, NULL);
}

/* Batch b's EXEC ran and its reply was lost: what is left of it is
 * stored, counted once, not sent again. */
static void batch_stored(struct lp_send *s, struct lp_batch *b)
{
    for (size_t k = 0; k < b->n; k++)
        if (!b->ev[k].done)
            stored(s, &b->ev[k]);
    b->n = 0;
    b->blob.len = 0;
    b->nprods = 0;              /* nothing to commit either */
    b->pbuf.len = 0;
}

uint16_t lp_batch_prod(struct lp_send *s, struct lp_batch *b,
                       const char *name, size_t len, const char *cursor,
                       size_t clen)
{
    int i = b->hint;

    /* the producer asked for last, most often (a file's lines come in
     * runs), before the others */
    if (i >= b->nprods || b->prods[i].namelen != len ||
        memcmp(b->pbuf.p + b->prods[i].name, name, len) != 0)
        for (i = 0; i < b->nprods; i++)
            if (b->prods[i].namelen == len &&
                memcmp(b->pbuf.p + b->prods[i].name, name, len) == 0)
                break;
    b->hint = i;
    if (i == b->nprods) {
        b->prods[i].name = (uint32_t)b->pbuf.len;
        b->prods[i].namelen = (uint32_t)len;
        b->prods[i].cursorlen = 0;
        b->prods[i].base = b->prods[i].from = b->prods[i].to = 0;
        if (lp_buf_add(&b->pbuf, name, len) < 0)
            lp_send_oom(s);
        b->nprods++;
    }
    if (clen) {
        /* the cursor it replaces, when last in pbuf, goes: --journal
         * sets one per entry, and pbuf stays one cursor long */
        if (b->prods[i].cursorlen &&
            b->prods[i].cursor + b->prods[i].cursorlen == b->pbuf.len)
            b->pbuf.len = b->prods[i].cursor;
        b->prods[i].cursor = (uint32_t)b->pbuf.len;
        b->prods[i].cursorlen = (uint32_t)clen;
        if (lp_buf_add(&b->pbuf, cursor, clen) < 0)
            lp_send_oom(s);
    }
    return (uint16_t)i;
}

void lp_pipeline_number(struct lp_send *s, struct lp_batch *b)
{
    int skipped = 0;
    uint16_t me;

    if (s->fl || b->fixed) {    /* numbered by their files as added,
                                   or a request's key */
        b->numbered = 1;
        return;
    }
    if (s->sh && b->shard >= 0) {
        /* --shards: numbered as added; what a first run stored on the
         * shard is passed over; the gate goes on from the shard's last */
        struct lp_shard *h = &s->sh[b->shard];
        uint64_t to = 0;
        for (size_t k = 0; k < b->n; k++)
            if (!b->ev[k].done && (b->ev[k].pos <= h->skip ||
                                   (s->was_skip &&
                                    lp_was_stored(s, b->ev[k].pos,
                                                  b->ev[k].wshard,
                                                  s->c.shard_key == NULL)
                                    == 1))) {
                stored(s, &b->ev[k]);
                skipped = 1;
            }
        if (skipped) {
            int behind = 0;
            lp_pipeline_compact(s, b, &behind);
        }
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].pos > to)
                to = b->ev[k].pos;
        /* --journal: the field goes to the position of the entry whose
         * cursor it takes (entries after the last command made none);
         * a cursor at or below the shard's field is passed over */
        if (s->js && b->nprods > 0 && b->prods[0].base > to &&
            b->prods[0].base > h->last)
            to = b->prods[0].base;
        b->sfrom = h->last;
        if (b->n || to > h->last) {
            h->last = to;
        } else {
            b->nprods = 0;      /* all there: nothing to send */
            b->pbuf.len = 0;
        }
        b->numbered = 1;
        return;
    }
    /* stdin's producer, as any input's: the batch's table of them */
    me = lp_batch_prod(s, b, s->producer, strlen(s->producer), NULL, 0);
    lp_spool_reserve(s, s->next_pos + b->n);
    for (size_t k = 0; k < b->n; k++) {
        if (b->ev[k].done)
            continue;
        if (me != LP_NOPROD)
            b->ev[k].prod = me;
        b->ev[k].pos = s->next_pos++;
        if (b->ev[k].pos <= s->skip_upto) {
            stored(s, &b->ev[k]);
            skipped = 1;
        }
    }
    /* a journal batch of entries that made no command: its cursor */
    b->prods[me].base = s->next_pos - 1;
    if (skipped) {
        int behind = 0;
        lp_pipeline_compact(s, b, &behind);
    }
    b->numbered = 1;
}

uint64_t lp_cursor_num(const char *p, size_t n)
{
    uint64_t v = 0;

    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}


/* HGET of producer name's field: the reply (a string, or nil when there
 * is none), or NULL with err (an I/O error, or an error reply). */
static struct lp_reply *hget_field(struct lp_send *s, const char *name,
                                   size_t len, char *err)
{
    const char *argv[3] = { "HGET", s->pkey, name };
    size_t lens[3] = { 4, strlen(s->pkey), len };
    struct lp_reply *rep;

    if ((rep = lp_redis_cmdv(s->r, err, 3, argv, lens)) == NULL)
        return NULL;
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[LP_ERRLEN - 100];
        snprintf(err, LP_ERRLEN, "HGET %s: %s", s->pkey,
                 lp_reply_text(rep, t, sizeof t));
        s->last_permanent |= permanent_error(rep);
        lp_reply_free(rep);
        return NULL;
    }
    return rep;
}

/* A batch of producer name moved its field to pos: what was read of it on
 * this connection follows. */
static void pcache_set(struct lp_send *s, const char *name, size_t len,
                       uint64_t pos)
{
    for (size_t i = 0; i < s->npcache; i++)
        if (s->pcache[i].shard == s->kshard &&
            strlen(s->pcache[i].name) == len &&
            memcmp(s->pcache[i].name, name, len) == 0) {
            s->pcache[i].pos = pos;
            return;
        }
}

int lp_pipeline_committed(struct lp_send *s, const char *name, size_t len,
                          uint64_t *pos, char *err)
{
    struct lp_reply *rep;

    for (size_t i = 0; i < s->npcache; i++)
        if (s->pcache[i].shard == s->kshard &&
            strlen(s->pcache[i].name) == len &&
            memcmp(s->pcache[i].name, name, len) == 0) {
            *pos = s->pcache[i].pos;
            return 0;
        }
    if (len > LP_PRODUCER_MAX) {
        snprintf(err, LP_ERRLEN, "producer name of %zu bytes", len);
        return -1;
    }
    if ((rep = hget_field(s, name, len, err)) == NULL)
        return -1;
    *pos = 0;
    if (lp_reply_type(rep) == LP_REPLY_STRING) {
        size_t n;
        const char *v = lp_reply_str(rep, &n);
        struct lp_field fv;
        lp_field_parse(v, n, &fv);
        *pos = fv.pos;
    }
    lp_reply_free(rep);
    if (s->npcache == s->capcache) {
        size_t cap = s->capcache ? s->capcache * 2 : 8;
        struct lp_pcache *p = realloc(s->pcache, cap * sizeof *p);
        if (p == NULL)
            lp_send_oom(s);
        s->pcache = p;
        s->capcache = cap;
    }
    memcpy(s->pcache[s->npcache].name, name, len);
    s->pcache[s->npcache].name[len] = '\0';
    s->pcache[s->npcache].shard = s->kshard;
    s->pcache[s->npcache++].pos = *pos;
    return 0;
}

int lp_pipeline_cursor(struct lp_send *s, struct lp_buf *out, char *err)
{
    struct lp_reply *rep;

    out->len = 0;
    if ((rep = hget_field(s, s->producer, strlen(s->producer), err)) == NULL)
        return -1;
    if (lp_reply_type(rep) == LP_REPLY_STRING) {
        size_t n;
        const char *v = lp_reply_str(rep, &n);
        struct lp_field fv;
        lp_field_parse(v, n, &fv);
        if (fv.clen && lp_buf_add(out, fv.cursor, fv.clen) < 0) {
            lp_reply_free(rep);
            lp_send_oom(s);
        }
    }
    lp_reply_free(rep);
    return 0;
}

/*
 * --producer-ttl: removes the fields of producers not heard of for that
 * long, once a run, when it first connects. Bounded: HSCAN, at most 20
 * rounds of 100 fields; what is left is for the next run. Failures are
 * not the run's business: the fields are only kept longer.
 */
static void prune(struct lp_send *s)
{
    char cursor[32] = "0", err[LP_ERRLEN];
    int64_t before = lp_now_ms() - s->c.producer_ttl;
    uint64_t gone = 0;
    const char *argv[202];
    size_t lens[202], nd;

    if (s->c.producer_ttl <= 0)
        return;
    argv[0] = "HDEL";
    lens[0] = 4;
    argv[1] = s->pkey;
    lens[1] = strlen(s->pkey);
    for (int round = 0; round < 20; round++) {
        struct lp_reply *rep = lp_redis_cmd(s->r, err, "HSCAN", s->pkey,
                                            cursor, "COUNT", "100", NULL);
        const struct lp_reply *kv;
        size_t n;
        const char *c;
        if (rep == NULL)
            return;
        if (lp_reply_type(rep) != LP_REPLY_ARRAY || lp_reply_len(rep) != 2 ||
            (c = lp_reply_str(lp_reply_at(rep, 0), &n)) == NULL ||
            n >= sizeof cursor) {
            lp_reply_free(rep);
            return;
        }
        memcpy(cursor, c, n);
        cursor[n] = '\0';
        kv = lp_reply_at(rep, 1);
        /* one HDEL for the page's old fields */
        nd = 2;
        for (size_t i = 0; i + 1 < lp_reply_len(kv) && nd < 202; i += 2) {
            size_t fl, vl;
            const char *f = lp_reply_str(lp_reply_at(kv, i), &fl);
            const char *v = lp_reply_str(lp_reply_at(kv, i + 1), &vl);
            struct lp_field fv;
            if (f == NULL || v == NULL || memchr(v, ' ', vl) == NULL)
                continue;
            lp_field_parse(v, vl, &fv);
            /* a field with a cursor (a followed file's offset, the
             * journal's cursor) is its sender's to remove: a file quiet
             * for a week is still followed, and read again from its
             * start without it */
            if (fv.cursor)
                continue;
            if (fv.ms >= before || (fl == strlen(s->producer) &&
                                 memcmp(f, s->producer, fl) == 0))
                continue;
            /* --follow: our files' fields, however quiet the file */
            if (s->fl && fl > s->fbase &&
                memcmp(f, s->fprod, s->fbase) == 0)
                continue;
            argv[nd] = f;
            lens[nd++] = fl;
        }
        if (nd > 2) {
            struct lp_reply *d = lp_redis_cmdv(s->r, err, (int)nd, argv,
                                               lens);
            if (d && lp_reply_type(d) == LP_REPLY_INTEGER)
                gone += (uint64_t)lp_reply_int(d);
            lp_reply_free(d);
        }
        lp_reply_free(rep);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    if (gone && s->c.verbosity >= 1)
        say(s, LP_NOTICE_INFO, "removed %" PRIu64 " %s older than "
            "--producer-ttl from %s", gone,
            lp_plural(gone, "producer", "producers"), s->pkey);
}

/*
 * A batch whose reply was lost is stored when the field of its first
 * producer is at or past its last position (a batch is stored whole or not
 * at all, and fields move only over stored positions); a batch with a
 * cursor only is sent again (its gate then finds nothing to move, or
 * moves it). The first producer with a command is asked.
 */
static int was_stored(struct lp_send *s, struct lp_batch *b, int *yes,
                      char *err)
{
    uint64_t c, last = 0;
    const struct lp_cmd *e = NULL;

    *yes = 0;
    for (size_t k = 0; k < b->n; k++)
        if (!b->ev[k].done && b->ev[k].prod != LP_NOPROD) {
            if (e == NULL)
                e = &b->ev[k];
            if (b->ev[k].prod == e->prod && b->ev[k].pos > last)
                last = b->ev[k].pos;
        }
    if (e == NULL || e->prod >= b->nprods)
        return 0;
    lp_shard_keys(s, b->shard);     /* --shards: its shard's field */
    if (lp_pipeline_committed(s, b->pbuf.p + b->prods[e->prod].name,
                              b->prods[e->prod].namelen, &c, err) < 0)
        return -1;
    *yes = last <= c;
    return 0;
}

int lp_pipeline_resolve(struct lp_send *s, char *err)
{
    uint64_t c, p;

    s->npcache = 0;             /* what was read before may have moved */
    for (int i = 0; i < s->count; i++) {
        /* nothing is owed on this connection */
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        b->wire = b->nwire = 0;
    }
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        int yes;
        if (b->source != LP_BATCH_INPUT || !b->tried || b->answered)
            continue;
        if (was_stored(s, b, &yes, err) < 0)
            return -1;
        if (yes && !s->c.replicas)
            batch_stored(s, b); /* its EXEC ran, its reply was lost */
        else
            b->lost = 1;        /* --replicas: sent again, its gate says
                                   STORED, and WAIT is asked on this
                                   connection before it counts */
    }
    if (s->fl || s->pos_known) {
        /* the rest goes again as it is, in order: each batch's gate
         * waits for the one before it; but what failed in a batch that
         * was stored (an error inside EXEC, after the gate) has its
         * positions committed already: new ones, the run's own */
        for (int i = 0; i < s->count; i++) {
            struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            if (b->answered && !b->aborted && s->sh)
                for (size_t k = 0; k < b->n; k++)
                    if (!b->ev[k].done)
                        /* --shards: new positions would break the
                         * shard's order; Redis refused it inside its
                         * transaction, after the gate: for good */
                        lp_spool_give_up(s, s->last_error[0] ?
                                         s->last_error : "a command of a "
                                         "stored batch failed",
                                         LP_EX_CONFIG);
            if (b->answered && !b->aborted)
                lp_spool_reserve(s, s->next_pos + b->n);
            if (b->answered && !b->aborted)
                for (size_t k = 0; k < b->n; k++)
                    if (!b->ev[k].done) {
                        b->ev[k].prod = lp_batch_prod(s, b, s->producer,
                                                      strlen(s->producer),
                                                      NULL, 0);
                        b->ev[k].pos = s->next_pos++;
                        s->renumbered = 1;
                    }
            b->tried = b->answered = b->aborted = 0;
        }
        s->pos_known = 1;
        goto pruning;
    }
    /* the first connection of the run: stdin's and the journal's
     * positions go on from the committed one */
    if (lp_pipeline_committed(s, s->producer, strlen(s->producer), &c,
                              err) < 0)
        return -1;
    s->acked = c;
    if (s->c.position) {
        /* a resumed run (--position): its input was numbered from there
         * on; what the first run stored is passed over, now and as the
         * rest is read */
        s->skip_upto = c;
        for (int i = 0; i < s->count; i++) {
            struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            int behind = 0;
            if (b->source != LP_BATCH_INPUT)
                continue;
            for (size_t k = 0; k < b->n; k++)
                if (!b->ev[k].done && b->ev[k].pos <= c)
                    stored(s, &b->ev[k]);
            lp_pipeline_compact(s, b, &behind);
            b->tried = b->answered = b->aborted = 0;
        }
        s->pos_known = 1;
        goto pruning;
    }
    /* numbered before Redis was asked: after the committed position, and
     * after ours in the WAL */
    p = c > s->pos_floor ? c : s->pos_floor;
    s->next_pos = p + 1;
    {
        uint64_t all = 0;
        for (int i = 0; i < s->count; i++)
            all += s->ring[(s->head + i) % LP_INFLIGHT].n;
        lp_spool_reserve(s, s->next_pos + all);
    }
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->source != LP_BATCH_INPUT)
            continue;
        for (size_t k = 0; k < b->n; k++)
            if (!b->ev[k].done)
                b->ev[k].pos = s->next_pos++;
        for (int j = 0; j < b->nprods; j++)
            b->prods[j].base = s->next_pos - 1;
        b->tried = b->answered = b->aborted = 0;
    }
    s->pos_known = 1;
pruning:
    if (!s->pruned) {
        s->pruned = 1;
        if (s->sh) {
            /* --shards: the fields of each shard on this connection */
            for (unsigned i = 0; i < s->nsh; i++)
                if (s->lanes == NULL || s->sh[i].lane == s->cur_lane) {
                    lp_shard_keys(s, (int)i);
                    prune(s);
                }
        } else {
            prune(s);
        }
    }
    return 0;
}

/* Collects the replies still coming on a live connection after a failure,
 * without retiring anything. */
void lp_pipeline_collect(struct lp_send *s)
{
    char err[LP_ERRLEN];

    while (lp_redis_connected(s->r)) {
        struct lp_reply *rep;
        struct lp_batch *b = unanswered(s);
        int rc;
        if (b == NULL)
            break;
        if ((rc = lp_redis_next(s->r, &rep, err)) == 1)
            take_reply(s, b, rep);
        else if (rc < 0 || lp_redis_read(s->r, err) < 0)
            break;
    }
    lp_pipeline_flush_ids(s);
}

static int probe_one(struct lp_send *s, char *err);

/* Not --shards: is the stream sharded by other senders (a count
 * recorded)? Then this run's events would go to a key no drain reads:
 * the run ends (78) before it sends anything. Asked at the first
 * connection that answers; a user refused GET (an ACL of before the
 * shards) cannot tell, and goes on. 0, or -1 with err (I/O). */
static int unsharded_check(struct lp_send *s, char *err)
{
    unsigned n = 0;
    int rc;

    if (s->shards_checked)
        return 0;
    rc = lp_shards_read(s->r, s->c.cluster, s->c.stream, &n, err);
    if (rc == LP_REDIS_ETEMP)
        return -1;
    s->shards_checked = 1;
    if (rc == 0 && n > 1 && s->serving) {
        /* logpipe-http: one stream key, no --shards */
        say(s, LP_NOTICE_ERROR, "stream %s is spread over %u shards "
            "(recorded by logpipe-send --shards %u): logpipe-http stores "
            "to a stream that is not, else its events would go to the key "
            "%s, which no drain of the shards reads: give another "
            "--stream", s->c.stream, n, n, s->c.stream);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    if (rc == 0 && n > 1) {
        say(s, LP_NOTICE_ERROR, "stream %s is spread over %u shards "
            "(recorded by logpipe-send --shards %u): give --shards %u, "
            "else these events would go to the key %s, which no drain of "
            "the shards reads", s->c.stream, n, n, n, s->c.stream);
        if (s->walmode)
            say(s, LP_NOTICE_ERROR, "the events stay in the WAL %s",
                s->c.wal);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    return 0;
}

int lp_pipeline_probe(struct lp_send *s, char *err)
{
    if (s->sh == NULL)
        return unsharded_check(s, err) < 0 ? -1 : probe_one(s, err);
    /* --shards, a run begun while Redis was away (--wal): the count is
     * recorded or checked before anything is sent */
    if (lp_shards_verify(s, err) < 0) {
        lp_redis_disconnect(s->r);      /* connected again to ask again */
        return -1;
    }
    /* --shards: the keys of each shard on this connection */
    for (unsigned i = 0; i < s->nsh; i++)
        if (s->lanes == NULL || s->sh[i].lane == s->cur_lane) {
            lp_shard_keys(s, (int)i);
            if (probe_one(s, err) < 0)
                return -1;
        }
    return 0;
}

static int probe_one(struct lp_send *s, char *err)
{
    struct lp_buf cmd = { 0 };
    struct lp_reply *rep;
    /* the DLQ's keys when dead letters may come: rejected lines or
     * events over --rate to it, or a WAL's records */
    int dlq = s->c.dlq != NULL && (s->c.rejects_to_dlq || s->wal ||
                                   s->c.on_limit == LP_SEND_ON_DLQ), rc = 0;

    eval_head(s, &cmd, PROBE, sizeof PROBE - 1, 1, dlq, 0, 0);
    if (lp_redis_append_raw(s->r, cmd.p, cmd.len) < 0 ||
        lp_redis_flush(s->r, err) < 0 ||
        lp_redis_reply(s->r, &rep, err) < 0) {
        lp_buf_free(&cmd);
        if (err[0] == '\0')
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(s->r));
        lp_redis_disconnect(s->r);
        return -1;
    }
    lp_buf_free(&cmd);
    if (lp_reply_type(rep) == LP_REPLY_ERROR) {
        char t[LP_ERRLEN - 100];
        snprintf(err, LP_ERRLEN, "the gate's commands (EVAL, TYPE, SET, "
                 "RENAME, DEL, HSET, HGET) on %s's keys: %s", s->c.stream,
                 lp_reply_text(rep, t, sizeof t));
        s->last_permanent |= permanent_error(rep);
        rc = -1;
    }
    lp_reply_free(rep);
    return rc;
}

/* Connects when not connected. Returns 0, or -1 with err (EAUTH ends
 * the run). */
int lp_pipeline_connect(struct lp_send *s, char *err)
{
    int rc;

    if (lp_redis_connected(s->r))
        return 0;
    rc = lp_redis_connect(s->r, err);
    if (rc == LP_REDIS_EAUTH) {
        say(s, LP_NOTICE_ERROR, "%s", err);
        if (s->walmode)
            say(s, LP_NOTICE_ERROR, "the events stay in the WAL %s", s->c.wal);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    if (rc < 0)
        return -1;
    if (s->fail_since || s->n.errors)
        s->n.reconnects++;
    /* serving: Redis answers again: the questions' connection too, now,
     * before the loop takes the next request */
    lp_send_aside_connect(s, 1);
    if (lp_pipeline_probe(s, err) < 0)
        return -1;
    /* before anything is sent on it: what of ours did Redis store? the
     * rest of the ring goes again */
    s->npcache = 0;
    if (lp_pipeline_resolve(s, err) < 0)
        return -1;
    for (int i = 0; i < s->count; i++)
        if (lp_pipeline_send(s, &s->ring[(s->head + i) % LP_INFLIGHT],
                             err) < 0)
            return -1;
    return 0;
}

/* The lag of --group (XINFO GROUPS), or the stream length when that
 * group does not exist or Redis cannot tell its lag (after deletions).
 * -1 with err on an I/O error. */
static long long backlog(struct lp_send *s, char *err)
{
    struct lp_stream_err e;
    struct lp_group_info *g;
    size_t ng;
    long long lag = -1;

    if (lp_stream_groups(s->r, s->c.stream, &g, &ng, &e) < 0) {
        /* an error reply (no such stream): the length then */
        if (e.code == LP_STREAM_EIO) {
            snprintf(err, LP_ERRLEN, "%s", e.msg);
            return -1;
        }
    }
    for (size_t i = 0; i < ng; i++)
        if (strcmp(g[i].name, s->c.group) == 0)
            lag = g[i].lag;
    lp_group_info_free(g, ng);
    if (lag < 0) {
        /* an error reply counts as empty, as it always did */
        if (lp_stream_len(s->r, s->c.stream, &lag, &e) < 0 &&
            e.code == LP_STREAM_EIO) {
            snprintf(err, LP_ERRLEN, "%s", e.msg);
            return -1;
        }
    }
    return lag;
}

/*
 * --shards: the backlog of the stream, what its drains have not read: the
 * sum over its shards of each shard's lag of --group, or its length when
 * Redis does not tell it (no such group on that shard, a lag unknown
 * after deletions; an error reply counts as empty, as for one stream).
 * The questions of all the shards of a connection go in one write, their
 * answers read after (one round trip a connection, not two a shard).
 * Nothing may be in flight on any lane. -1 with err on an I/O error (the
 * next send notices and recovers); the lane in use is the caller's again.
 */
static long long shards_backlog(struct lp_send *s, char *err)
{
    int keep = s->cur_lane, nl = s->lanes ? s->nlanes : 1;
    long long sum = 0;

    for (int l = 0; l < nl; l++) {
        size_t asked = 0;
        lp_lane_use(s, l);
        if (lp_pipeline_connect(s, err) < 0)
            goto fail;
        for (unsigned i = 0; i < s->nsh; i++) {
            const char *name = s->sh[i].name;
            const char *a1[] = { "XINFO", "GROUPS", name },
                       *a2[] = { "XLEN", name };
            size_t l1[] = { 5, 6, strlen(name) }, l2[] = { 4, strlen(name) };
            if (s->lanes && s->sh[i].lane != l)
                continue;
            if (lp_redis_append(s->r, 3, a1, l1) < 0 ||
                lp_redis_append(s->r, 2, a2, l2) < 0) {
                snprintf(err, LP_ERRLEN, "%s: not connected",
                         lp_redis_name(s->r));
                lp_redis_disconnect(s->r);
                goto fail;
            }
            asked++;
        }
        for (size_t k = 0; k < asked; k++) {
            struct lp_reply *g, *n;
            long long lag;
            if (lp_redis_reply(s->r, &g, err) < 0)
                goto fail;
            if (lp_redis_reply(s->r, &n, err) < 0) {
                lp_reply_free(g);
                goto fail;
            }
            if ((lag = lp_stream_group_lag(g, s->c.group)) < 0)
                lag = lp_reply_type(n) == LP_REPLY_INTEGER ? lp_reply_int(n)
                                                           : 0;
            sum += lag;
            lp_reply_free(g);
            lp_reply_free(n);
        }
    }
    lp_lane_use(s, keep);
    return sum;
fail:
    lp_lane_use(s, keep);
    return -1;
}

/* --shards: the batches in flight on every lane land (a lane that fails
 * is recovered, and 0 returned then: the check waits for another time). */
static int shards_land(struct lp_send *s)
{
    char err[LP_ERRLEN];
    int keep = s->cur_lane;

    for (int l = 0; l < (s->lanes ? s->nlanes : 1); l++) {
        lp_lane_use(s, l);
        while (s->count > 0)
            if (lp_pipeline_pump(s, 1, err) < 0) {
                lp_send_recover(s, err);
                lp_lane_use(s, keep);
                return 0;
            }
    }
    lp_lane_use(s, keep);
    return 1;
}

/* Every 100ms and 4 batches at most: waits while the backlog is above
 * --max-backlog, so that the pipe pushes back on the writer. */
void lp_pipeline_check_backlog(struct lp_send *s)
{
    char err[LP_ERRLEN];
    int64_t wait = 100;
    int waited = 0;

    /* serving: a submit asks lp_pipeline_backlogged, and a request over
     * it is refused, not held */
    if (!s->c.max_backlog || s->serving ||
        ++s->batches_since_backlog < 4 || lp_mono_ms() < s->backlog_at)
        return;
    s->batches_since_backlog = 0;
    s->backlog_at = lp_mono_ms() + 100;
    /* a command with batches in flight would need its reply sorted out of
     * theirs: let them land first (--shards: on every connection) */
    if (s->sh && !shards_land(s))
        return;
    while (s->count > 0)
        if (lp_pipeline_pump(s, 1, err) < 0) {
            lp_send_recover(s, err);
            return;
        }
    for (;;) {
        long long n;
        if (s->sh)
            n = shards_backlog(s, err);
        else if (lp_pipeline_connect(s, err) < 0)
            return;
        else
            n = backlog(s, err);
        if (n < 0)
            return;             /* the next send notices and recovers */
        if (n <= (long long)s->c.max_backlog || lp_send_stopping(s))
            break;
        if (!waited)
            say(s, LP_NOTICE_INFO, "backlog %lld over --max-backlog %" PRIu64
                ": waiting", n, s->c.max_backlog);
        waited = 1;
        poll(NULL, 0, (int)wait);
        wait = wait < 1000 ? wait * 2 : 1000;
    }
    if (waited)
        say(s, LP_NOTICE_INFO, "backlog under --max-backlog again");
}

/* --max-backlog's answers, serving: the lag of --group, or the stream's
 * length when Redis does not tell it (no such group, a lag unknown after
 * deletions; an error reply counts as empty, as it always did). */
static void backlog_groups(void *ctx, const struct lp_reply *rep,
                           const char *err)
{
    struct lp_send *s = ctx;

    s->backlog_lag = err ? -2 : lp_stream_group_lag(rep, s->c.group);
}

static void backlog_len(void *ctx, const struct lp_reply *rep,
                        const char *err)
{
    struct lp_send *s = ctx;
    long long n = s->backlog_lag;

    s->backlog_asking = 0;
    if (err || n == -2)
        return;                 /* not known now: the last answer holds */
    if (n < 0)
        n = lp_reply_type(rep) == LP_REPLY_INTEGER ? lp_reply_int(rep) : 0;
    if ((n > (long long)s->c.max_backlog) !=
        (s->backlog_seen > (long long)s->c.max_backlog))
        say(s, LP_NOTICE_INFO, n > (long long)s->c.max_backlog ?
            "backlog %lld over --max-backlog %" PRIu64 ": requests get 503" :
            "backlog %lld under --max-backlog %" PRIu64 " again", n,
            s->c.max_backlog);
    s->backlog_seen = n;
    s->backlog_read = lp_mono_ms();
}

/*
 * Serving: never waits. The loop asks the lag every 100 ms on the
 * engine's questions' connection (lp_aside: lp_pipeline_ask_backlog), and
 * a submit is judged by the last answer while it is fresh (2 s); with
 * none (yet, or the questions' connection down) it is not refused for it.
 */
void lp_pipeline_ask_backlog(struct lp_send *s)
{
    char err[LP_ERRLEN];
    const char *a1[] = { "XINFO", "GROUPS", s->c.stream },
               *a2[] = { "XLEN", s->c.stream };
    size_t l1[] = { 5, 6, strlen(s->c.stream) },
           l2[] = { 4, strlen(s->c.stream) };

    if (!s->c.max_backlog || !s->serving || s->backlog_asking ||
        s->aside == NULL || !lp_aside_connected(s->aside) ||
        lp_mono_ms() < s->backlog_at)
        return;
    s->backlog_at = lp_mono_ms() + 100;
    if (lp_aside_cmdv(s->aside, 3, a1, l1, backlog_groups, s, err) == 0 &&
        lp_aside_cmdv(s->aside, 2, a2, l2, backlog_len, s, err) == 0)
        s->backlog_asking = 1;
}

int lp_pipeline_backlogged(struct lp_send *s)
{
    if (!s->c.max_backlog || lp_mono_ms() - s->backlog_read > 2000)
        return 0;
    return s->backlog_seen > (long long)s->c.max_backlog;
}
