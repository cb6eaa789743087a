/* lp_spool.c -- send's WAL failover: spill, replay, and the resume hint */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_cluster.h"
#include "lp_exit.h"
#include "lp_send_int.h"
#include "lp_time.h"

/*
 * With --wal, a failure of Redis does not wait: everything not
 * acknowledged goes to the WAL, in order, synced (spill), and from then
 * on new batches go there too, behind it, while the WAL's oldest segment
 * is re-sent through the pipeline whenever Redis answers (replay). An
 * event's state in its batch: done 0 not yet anywhere, 2 written to the
 * WAL and not synced, 1 acknowledged by Redis or synced in the WAL.
 * Without a WAL, or when the WAL fails, the run gives up with the resume
 * hint: how much of the input is in Redis (or the WAL), and the command
 * that sends the rest.
 */

/* The WAL was synced: what was written to it is safe (done 2 -> 1). */
static void wal_synced(struct lp_send *s)
{
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        for (size_t k = 0; k < b->n; k++)
            if (b->ev[k].done == 2)
                b->ev[k].done = 1;
    }
    for (size_t k = 0; k < s->in->n; k++)
        if (s->in->ev[k].done == 2)
            s->in->ev[k].done = 1;
}

/* Syncs the WAL; a failure is remembered (a sync is never tried again:
 * its pages may be gone while a second one succeeds). 0 or -1 with err. */
static int wal_sync(struct lp_send *s, char *err)
{
    if (s->wal_sync_failed || lp_wal_sync(s->wal, err) < 0) {
        if (!s->wal_sync_failed)
            s->wal_sync_failed = 1;
        else
            snprintf(err, LP_ERRLEN, "--wal %s: not synced", s->c.wal);
        return -1;
    }
    wal_synced(s);
    return 0;
}

static void dq_clear(struct lp_send *s);

_Noreturn void lp_spool_error(struct lp_send *s, const char *err)
{
    char e2[LP_ERRLEN];

    /* events the WAL cannot keep: stop, and say where the input is not
     * in Redis nor in the WAL; what was written before the failure is
     * in the WAL once synced */
    wal_sync(s, e2);
    lp_spool_give_up(s, err, LP_EX_IOERR);
}

/* The position of the first command of the line at offset off of input
 * file, as the ring and the input batch have it; 0 when not numbered. */
static uint64_t line_pos(struct lp_send *s, int file, uint64_t off)
{
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->source != LP_BATCH_INPUT || !b->numbered)
            continue;
        for (size_t k = 0; k < b->n; k++)
            if ((int)b->ev[k].file == file && b->ev[k].line_start == off)
                return b->ev[k].pos;
    }
    return 0;
}

/* The line of the oldest input event not acknowledged, else all read;
 * *pos: the position the resumed run gives its first command (0: it
 * cannot be told) */
static uint64_t unsent_offset(struct lp_send *s, int *file, uint64_t *pos)
{
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->source != LP_BATCH_INPUT)
            continue;
        for (size_t k = 0; k < b->n; k++) {
            if (b->ev[k].done != 1) {
                *file = (int)b->ev[k].file;
                *pos = line_pos(s, *file, b->ev[k].line_start);
                return b->ev[k].line_start;
            }
        }
    }
    for (size_t k = 0; k < s->in->n; k++) {
        if (s->in->ev[k].done != 1) {
            *file = (int)s->in->ev[k].file;
            *pos = line_pos(s, *file, s->in->ev[k].line_start);
            if (*pos == 0)
                *pos = s->next_pos;     /* the input batch: numbered next */
            return s->in->ev[k].line_start;
        }
    }
    *file = s->file;
    *pos = s->next_pos;
    return lp_lines_offset(&s->lines);
}

/* Appends a as one word to b, quoted for a POSIX shell when needed; a
 * password in a Redis URL is masked first. */
static void add_quoted(struct lp_buf *b, const char *a)
{
    const char *at = strchr(a, '@'), *sch = strstr(a, "://");
    struct lp_buf w = { 0 };
    int plain = 1;

    for (const char *p = a; *p; p++) {
        if (sch && at && p > sch + 2 && p < at && *p == ':') {
            lp_buf_adds(&w, ":***");    /* the password stays out of logs */
            p = at - 1;
            continue;
        }
        lp_buf_addc(&w, *p);
    }
    for (size_t i = 0; i < w.len; i++) {
        char c = w.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("-_./:=,+%@", c)))
            plain = 0;
    }
    lp_buf_addc(b, ' ');
    if (w.len == 0 || !plain)
        lp_buf_addc(b, '\'');
    for (size_t i = 0; i < w.len; i++) {
        if (w.p[i] == '\'')
            lp_buf_adds(b, "'\\''");
        else
            lp_buf_addc(b, w.p[i]);
    }
    if (w.len == 0 || !plain)
        lp_buf_addc(b, '\'');
    lp_buf_free(&w);
}

/*
 * --shards: the shard of a WAL record, from its key (a shard's, or a
 * shard's DLQ: *isdlq). A record a run without --shards wrote, for the
 * stream's own key or its DLQ, goes to a shard too, when it can be told
 * which (*bare set): one of a producer's numbered commands without a
 * cursor, and no --shard-key: by position, (p - 1) mod N, as a run of N
 * deals them; its gate is that shard's field, and one at or below the
 * producer's field on the stream's own key (the count before the first
 * --shards, 1: lp_was_stored_of) is passed over as stored. -1 with err
 * for any other record (a --follow or --journal record: its file's
 * numbering is per shard; --shard-key: the hash of the event is the
 * program's; an old segment's: no position).
 */
static int rec_shard(struct lp_send *s, const char *rec, size_t len,
                     int *isdlq, int *bare, const char **keyp,
                     size_t *keylenp, char *err)
{
    const char *key, *data, *pn, *cur;
    size_t keylen, datalen, pnl, cl, cmd;
    uint64_t pos;
    char own[1100], e[LP_ERRLEN];
    int shard, ol;

    *bare = 0;
    if (!lp_wal_event(rec, len, &key, &keylen, &data, &datalen)) {
        snprintf(err, LP_ERRLEN, "--wal %s: %s holds a record that is not "
                 "an XADD", s->c.wal, lp_wal_seg_name(s->rseg));
        return -1;
    }
    *keyp = key;
    *keylenp = keylen;
    if ((shard = lp_shard_of_key(s, key, keylen, isdlq)) >= 0)
        return shard;
    /* the stream's own key, or its DLQ without --shards (--dlq, logs:dlq
     * standalone, {S}:dlq in a cluster) */
    *isdlq = -1;
    if (keylen == strlen(s->stream0) && memcmp(key, s->stream0, keylen) == 0)
        *isdlq = 0;
    else if (s->dlq0 &&         /* (the shards' DLQs: DLQBASE:{T}) */
             ((keylen == strlen(s->dlq0) &&
               memcmp(key, s->dlq0, keylen) == 0) ||
              ((ol = lp_key_aux(s->c.cluster, s->stream0, ":dlq", own,
                                sizeof own, e)) >= 0 &&
               keylen == (size_t)ol && memcmp(key, own, keylen) == 0)))
        *isdlq = 1;
    if (*isdlq < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s: %s holds a record for %.*s, "
                 "which is not for a shard of --stream %s nor its DLQ (a "
                 "record of another stream is flushed with that --stream; "
                 "a dead letter of another DLQ with that --dlq, and "
                 "--shards N once the stream is spread over shards)",
                 s->c.wal, lp_wal_seg_name(s->rseg),
                 (int)(keylen > 200 ? 200 : keylen), key, s->stream0);
        return -1;
    }
    if (!lp_wal_producer(rec, len, &pn, &pnl, &pos, &cur, &cl, &cmd) ||
        pos == 0 || cl != 0 || s->c.shard_key) {
        snprintf(err, LP_ERRLEN, "--wal %s: %s holds a record for %.*s, "
                 "the stream's own key, of a run without --shards, which "
                 "this run cannot tell the shard of (%s): not sent; see "
                 "send(1) CAVEATS", s->c.wal, lp_wal_seg_name(s->rseg),
                 (int)(keylen > 200 ? 200 : keylen), key,
                 s->c.shard_key ? "--shard-key: give --shards alone to send "
                 "it by its position" : cl ? "a --follow or --journal "
                 "record" : "no producer position");
        return -1;
    }
    *bare = 1;
    return (int)((pos - 1) % s->nsh);
}

/* Appends the command c[0..clen) to o with its key (key[0..keylen), in
 * c) named nkey instead: an XADD of a record rec_shard sent to a shard.
 * 0, or -1 out of memory. */
static int add_rekeyed(struct lp_buf *o, const char *c, size_t clen,
                       const char *key, size_t keylen, const char *nkey)
{
    /* "$<len>\r\n" before the key */
    const char *h = key - 2;
    char t[24];
    int n = snprintf(t, sizeof t, "$%zu\r\n", strlen(nkey));

    while (h > c && h[-1] != '$')
        h--;
    h--;
    return lp_buf_add(o, c, (size_t)(h - c)) < 0 ||
           lp_buf_add(o, t, (size_t)n) < 0 ||
           lp_buf_add(o, nkey, strlen(nkey)) < 0 ||
           lp_buf_add(o, key + keylen, clen - (size_t)(key + keylen - c)) < 0
           ? -1 : 0;
}

/* Ends the run with code after saying how much of the input went to
 * Redis, and the command that sends the rest. */
_Noreturn void lp_spool_give_up(struct lp_send *s, const char *why, int code)
{
    struct lp_buf cmd = { 0 };
    int file;
    uint64_t pos, off = unsent_offset(s, &file, &pos), unknown = 0;
    char posarg[48];
    int exact;
    char again[40] = "";

    /* events of batches whose reply was lost: Redis may hold them */
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->source != LP_BATCH_INPUT || !b->tried || b->answered)
            continue;
        for (size_t k = 0; k < b->n; k++)
            unknown += !b->ev[k].done && b->ev[k].kind == LP_CMD_EVENT;
    }
    exact = unknown && pos && !s->renumbered && !s->n_ahead;
    const char *name = s->c.nfiles ? s->c.files[file] : NULL;
    char from[32];

    if (name && strcmp(name, "-") == 0)
        name = NULL;
    say(s, LP_NOTICE_ERROR, "%s", why);
    /* not --shards, and the stream spread over shards since the start
     * (the gate said LPSHARDS): every way on is with --shards */
    if (s->serving) {
        /* logpipe-http: no input to resume; each request was answered
         * (503: its client sends it again) */
        lp_buf_free(&cmd);
        lp_send_end_run(s, code);
    }
    if (s->sh == NULL && s->shards_changed && s->shards_now)
        snprintf(again, sizeof again, " with --shards %u", s->shards_now);
    if (s->fl) {
        /* no hint to give: Redis holds each file's position */
        say(s, LP_NOTICE_ERROR, "the lines after the positions Redis holds "
            "for the files of producer %s are sent by the next run of the "
            "same command%s", s->producer, again);
        lp_buf_free(&cmd);
        lp_send_end_run(s, code);
    }
    if (s->sh && s->c.flush_wal) {
        lp_buf_free(&cmd);      /* no input: the WAL keeps the rest */
        lp_send_end_run(s, code);
    }
    if (s->sh && s->shards_changed) {
        /* the shards are another count's now: no position of ours holds
         * there; what was stored is counted (and with --ids listed) */
        say(s, LP_NOTICE_ERROR, "this run stored %" PRIu64 " %s; the "
            "others were not stored: send them again%s%.0u", s->n.sent,
            lp_plural(s->n.sent, "event", "events"), s->shards_now ?
            " with --shards " : "", s->shards_now);
        lp_buf_free(&cmd);
        lp_send_end_run(s, code);
    }
    if (s->sh) {
        /* --shards: each shard holds its own position of the producer;
         * the same input again, from its start, passes over what each
         * holds (lp_pipeline_number) */
        say(s, LP_NOTICE_ERROR, "the events not in their shards are sent "
            "by the same command on the same input, from its start, with "
            "--producer %s --position %" PRIu64 " (each shard passes over "
            "what it holds)", s->producer, s->pos0);
        lp_buf_free(&cmd);
        lp_send_end_run(s, code);
    }
    if (s->c.journal) {
        /* no hint to give: Redis holds the cursor of what it stored */
        say(s, LP_NOTICE_ERROR, "the journal's entries after the cursor "
            "Redis holds for producer %s are sent by the next run of the "
            "same command%s", s->producer, again);
        lp_buf_free(&cmd);
        lp_send_end_run(s, code);
    }
    snprintf(from, sizeof from, "+%" PRIu64, off + 1);
    lp_buf_adds(&cmd, "tail -c");
    add_quoted(&cmd, from);
    if (name)
        add_quoted(&cmd, name);
    lp_buf_adds(&cmd, " | logpipe-send");
    for (int i = 0; i < s->c.nargs; i++) {
        /* the producer and position of the resumed input are ours */
        if (strncmp(s->c.args[i], "--producer=", 11) == 0 ||
            strncmp(s->c.args[i], "--position=", 11) == 0)
            continue;
        if ((strcmp(s->c.args[i], "--producer") == 0 ||
             strcmp(s->c.args[i], "--position") == 0) &&
            i + 1 < s->c.nargs) {
            i++;
            continue;
        }
        add_quoted(&cmd, s->c.args[i]);
    }
    /* a resumed run numbered as this one: what this one stored after the
     * offset (a reply lost) is passed over, not sent twice; not when
     * commands went again out of their input order */
    if (exact) {
        add_quoted(&cmd, "--producer");
        add_quoted(&cmd, s->producer);
        snprintf(posarg, sizeof posarg, "--position=%" PRIu64, pos);
        add_quoted(&cmd, posarg);
    }
    if (again[0]) {
        char n[24];
        snprintf(n, sizeof n, "--shards=%u", s->shards_now);
        add_quoted(&cmd, n);
    }
    if (s->c.nfiles && file + 1 < s->c.nfiles) {
        lp_buf_adds(&cmd, " -");
        for (int i = file + 1; i < s->c.nfiles; i++)
            add_quoted(&cmd, s->c.files[i]);
    }
    lp_buf_addc(&cmd, '\0');
    if (s->c.wal) {
        /* what is before the offset may be in the WAL rather than in
         * Redis: the resumed run sends the WAL first, as any run does */
        char in[PATH_MAX + 64];
        if (name)
            snprintf(in, sizeof in, "%s%s", name, file + 1 < s->c.nfiles ?
                     " (none of the files after it)" : "");
        else
            snprintf(in, sizeof in, "the input");
        say(s, LP_NOTICE_ERROR, "%" PRIu64 " bytes of %s are in Redis or in "
            "the WAL %s; resume with: %s%s", off, in, s->c.wal, cmd.p,
            name ? "" : " (fed the same input)");
    } else if (name) {
        say(s, LP_NOTICE_ERROR, "sent %" PRIu64 " bytes of %s%s; resume with: "
            "%s", off, name, file + 1 < s->c.nfiles ?
            ", none of the files after it" : "", cmd.p);
    } else {
        say(s, LP_NOTICE_ERROR, "sent %" PRIu64 " bytes of the input; resume "
            "with: %s (fed the same input)", off, cmd.p);
    }
    if (s->wal_sync_failed) {
        uint64_t n = 0;
        for (int i = 0; i < s->count; i++) {
            struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            for (size_t k = 0; k < b->n; k++)
                n += b->ev[k].done == 2 && b->ev[k].kind == LP_CMD_EVENT;
        }
        for (size_t k = 0; k < s->in->n; k++)
            n += s->in->ev[k].done == 2 && s->in->ev[k].kind == LP_CMD_EVENT;
        if (n)
            say(s, LP_NOTICE_WARN, "%" PRIu64 " %s after the resume point "
                "may be in the WAL %s as well, not synced (a resume may send "
                "them twice)", n, lp_plural(n, "event", "events"), s->c.wal);
    }
    if (unknown && !exact)
        say(s, LP_NOTICE_WARN, "%" PRIu64 " %s after the resume point may "
            "be in Redis already (the reply was lost; a resume sends them "
            "twice)", unknown, lp_plural(unknown, "event", "events"));
    if (s->n_ahead)
        say(s, LP_NOTICE_WARN, "%" PRIu64 " %s after the resume point %s "
            "already in Redis (a resume sends them twice)", s->n_ahead,
            lp_plural(s->n_ahead, "event", "events"),
            lp_plural(s->n_ahead, "is", "are"));
    lp_buf_free(&cmd);
    lp_send_end_run(s, code);
}

/* Appends one record to the WAL: producer line and command; ends the run
 * at --wal-max (75) or on an error (74). */
static void append_rec(struct lp_send *s, const char *name, size_t namelen,
                       uint64_t pos, const char *cursor, size_t cursorlen,
                       const char *cmd, size_t cmdlen)
{
    char err[LP_ERRLEN], head[40];
    int rc, hl = snprintf(head, sizeof head, "#%" PRIu64 " ", pos);

    s->walrec.len = 0;
    if (lp_buf_add(&s->walrec, head, (size_t)hl) < 0 ||
        lp_buf_add(&s->walrec, name, namelen) < 0 ||
        (cursorlen && (lp_buf_addc(&s->walrec, ' ') < 0 ||
                       lp_buf_add(&s->walrec, cursor, cursorlen) < 0)) ||
        lp_buf_addc(&s->walrec, '\n') < 0 ||
        lp_buf_add(&s->walrec, cmd, cmdlen) < 0)
        lp_send_oom(s);
    rc = lp_wal_append(s->wal, s->walrec.p, s->walrec.len, err);
    if (rc == 0 && pos > s->pos_floor && namelen == strlen(s->producer) &&
        memcmp(name, s->producer, namelen) == 0)
        s->pos_floor = pos;     /* ours in the WAL: numbering stays above */
    if (rc == -2) {
        char e2[LP_ERRLEN];
        if (wal_sync(s, e2) < 0)
            lp_spool_error(s, e2);
        lp_spool_give_up(s, err, LP_EX_TEMPFAIL);
    }
    if (rc < 0)
        lp_spool_error(s, err);
}

/* Appends the not-yet-done commands of b to the WAL and marks them done,
 * each with its producer and position (the input batch gets its positions
 * here). Does not sync. Exits 75 at --wal-max. */
void lp_spool_batch(struct lp_send *s, struct lp_batch *b)
{
    if (b == s->in && b->n && !b->numbered)
        lp_pipeline_number(s, b);
    for (size_t k = 0; k < b->n; k++) {
        struct lp_cmd *e = &b->ev[k];
        const struct lp_bprod *p;
        if (e->done)
            continue;
        p = &b->prods[e->prod < b->nprods ? e->prod : 0];
        append_rec(s, b->pbuf.p + p->name, p->namelen, e->pos,
                   b->pbuf.p + p->cursor, p->cursorlen, b->blob.p + e->cmd,
                   e->cmdlen);
        e->done = 2;
        if (e->kind == LP_CMD_EVENT)
            s->n.wal++;
    }
}

int lp_spool_floor_open(struct lp_send *s, uint64_t *floor, char *err)
{
    char path[4096 + 64], buf[32];
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *k[2] = { s->c.stream, s->producer };
    ssize_t n;

    *floor = 0;
    for (int j = 0; j < 2; j++)
        for (size_t i = 0; i <= strlen(k[j]); i++) {
            h ^= (unsigned char)k[j][i];
            h *= 0x100000001b3ULL;
        }
    snprintf(path, sizeof path, "%s/floor-%016" PRIx64 ".pos", s->c.wal, h);
    s->floor_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (s->floor_fd < 0) {
        snprintf(err, LP_ERRLEN, "--wal %s: %s", path, strerror(errno));
        return -1;
    }
    n = pread(s->floor_fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
        buf[n] = '\0';
        *floor = strtoull(buf, NULL, 10);
    }
    s->floor_res = *floor;
    return 0;
}

void lp_spool_reserve(struct lp_send *s, uint64_t upto)
{
    char buf[32];
    uint64_t v;
    int n;

    if (s->floor_fd < 0 || upto < s->floor_res)
        return;
    v = upto + (1u << 20);
    n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", v);
    if (pwrite(s->floor_fd, buf, (size_t)n, 0) != n ||
        ftruncate(s->floor_fd, n) < 0 || fdatasync(s->floor_fd) < 0) {
        char err[LP_ERRLEN];
        snprintf(err, LP_ERRLEN, "--wal %s: the producer's floor: %s",
                 s->c.wal, strerror(errno));
        lp_spool_error(s, err);
    }
    s->floor_res = v;
}

void lp_spool_sync(struct lp_send *s)
{
    char err[LP_ERRLEN];

    if (wal_sync(s, err) < 0)
        lp_spool_error(s, err);
}

/* The commands of b that failed though b was stored (an error inside
 * EXEC): to the WAL as the run's own, with new positions. */
static int requeue(struct lp_send *s, struct lp_batch *b)
{
    int any = 0;

    lp_spool_reserve(s, s->next_pos + b->n);
    for (size_t k = 0; k < b->n; k++) {
        struct lp_cmd *e = &b->ev[k];
        if (e->done || e->prod == LP_NOPROD)
            continue;
        append_rec(s, s->producer, strlen(s->producer), s->next_pos++, NULL,
                   0, b->blob.p + e->cmd, e->cmdlen);
        e->done = 3;            /* in the WAL again: done with here */
        any = 1;
        s->renumbered = 1;
    }
    return any;
}

/* Redis failed with batches of input in flight: everything not
 * acknowledged goes to the WAL, in order, with its positions (a batch
 * refused, or whose gate waited for it, stored nothing), and we are in WAL
 * mode. A command that failed in a batch that was stored (its position
 * committed all the same) goes behind the others as the run's own, with
 * a new position. */
void lp_spool_spill(struct lp_send *s, const char *why)
{
    int behind = 0, keep = s->cur_lane, nl = s->lanes ? s->nlanes : 1;

    /* --shards in a cluster: every lane's batches, not only the failed
     * one's: a shard's batches in flight must be in the WAL before its
     * batches read from now on, which go there (its records in order of
     * their positions, or the re-send, gated from what Redis holds,
     * would pass over the older as stored) */
    for (int l = 0; l < nl; l++) {
        if (s->lanes)
            lp_lane_use(s, l);
        lp_pipeline_collect(s);
        for (int i = 0; i < s->count; i++)
            lp_pipeline_compact(s, &s->ring[(s->head + i) % LP_INFLIGHT],
                                &behind);
        for (int i = 0; i < s->count; i++) {
            struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            if (!b->answered || b->aborted)
                lp_spool_batch(s, b);
        }
    }
    for (int l = 0; l < nl; l++) {
        if (s->lanes)
            lp_lane_use(s, l);
        for (int i = 0; i < s->count; i++) {
            struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
            if (b->answered && !b->aborted)
                requeue(s, b);
        }
    }
    /* --follow in the middle of a line (its events wait for a token):
     * the input batch stays, and goes to the WAL behind these at its end,
     * so that the line's events and the offset after it go together */
    if (!s->mid_line)
        lp_spool_batch(s, s->in);
    lp_spool_sync(s);
    /* the requests whose commands are in the WAL now are kept */
    for (int l = 0; l < nl; l++) {
        if (s->lanes)
            lp_lane_use(s, l);
        for (int i = 0; i < s->count; i++)
            lp_req_in_wal(s, &s->ring[(s->head + i) % LP_INFLIGHT]);
        while (s->count > 0)
            lp_pipeline_release(s);
    }
    if (s->lanes)
        lp_lane_use(s, keep);
    lp_req_in_wal(s, s->in);
    if (!s->mid_line)
        lp_batch_reset(s->in);
    s->n_ahead = 0;              /* a WAL has no resume point */
    if (!s->walmode)
        say(s, LP_NOTICE_WARN, "%s: keeping events in the WAL %s until Redis "
            "answers", why, s->c.wal);
    s->walmode = 1;
    s->replay_at = lp_mono_ms() + 100;
}

/*
 * Re-sending from the WAL failed (one batch is in flight at most while
 * the WAL is re-sent, so no later batch can be stored after one that
 * failed): acknowledge the records that made it, in order, mark those
 * that made it after one that did not; a command EXEC answered with an
 * error (its batch's position was stored all the same) goes to the end of
 * the WAL again with a new position of ours, and its record is marked;
 * then try again later with the rest. EXECABORT stored nothing: the batch
 * goes again as it is. A lost reply: the next attempt reads the committed
 * positions first.
 */
void lp_spool_replay_failed(struct lp_send *s, const char *why)
{
    char err[LP_ERRLEN];
    uint64_t acked = 0;
    int broken = 0, marked = 0, requeued = 0;

    s->n.errors++;
    lp_pipeline_collect(s);
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        if (b->answered && !b->aborted)
            requeued |= requeue(s, b);
    }
    if (requeued) {
        lp_spool_sync(s);
        say(s, LP_NOTICE_WARN, "%s: the commands that failed go to the end "
            "of the WAL %s", why, s->c.wal);
    }
    for (int i = 0; i < s->count; i++) {
        struct lp_batch *b = &s->ring[(s->head + i) % LP_INFLIGHT];
        /* built from the queue of another shard's records (dq): records
         * before its own wait there, never acknowledged past; marked */
        if (b->source == LP_BATCH_REPLAY && b->ack_to)
            broken = 1;
        for (size_t k = 0; k < b->n; k++) {
            struct lp_cmd *e = &b->ev[k];
            if (!broken && e->done) {
                acked = e->wend;
            } else if (e->done) {
                /* it has its stream ID: never send it again */
                if (lp_wal_seg_mark(s->wal, s->rseg, e->wend, e->cmdlen +
                                    e->plen, err) < 0)
                    lp_spool_error(s, err);
                marked = 1;
            } else {
                broken = 1;
            }
        }
    }
    if ((acked || marked) &&
        lp_wal_seg_ack(s->wal, s->rseg, acked, err) < 0)
        lp_spool_error(s, err);
    while (s->count > 0)
        lp_pipeline_release(s);
    if (s->rseg) {
        lp_wal_seg_rewind(s->rseg);
        s->rseg_eof = 0;
        s->hrec_on = 0;         /* read again after the rewind */
        dq_clear(s);            /* so are the queued ones */
    }
    if (s->last_permanent && lp_redis_connected(s->r)) {
        say(s, LP_NOTICE_ERROR, "%s", why);
        say(s, LP_NOTICE_ERROR, "the events stay in the WAL %s", s->c.wal);
        lp_send_end_run(s, LP_EX_CONFIG);
    }
    s->replay_at = lp_mono_ms() + lp_backoff_next(&s->backoff);
    if (s->fail_since == 0)
        s->fail_since = lp_mono_ms();
    if (!s->warned) {
        say(s, LP_NOTICE_WARN, "%s; the WAL %s is sent again when Redis "
            "answers", why, s->c.wal);
        s->warned = 1;
    }
    s->last_permanent = 0;
}

/*
 * --shards, the records of a run without --shards (rec_shard: bare), dealt
 * to consecutive shards by position: a re-send batch is one shard's, and
 * ending it at every change of shard sent them one a transaction (review
 * rw3's x0410: 22 s for 100,000). So a record of another shard than the
 * batch's is queued (lp_send.dq) rather than ending it, and the batch
 * reads on; the next passes take their first records from the queue, in
 * order, then the segment. Each shard's records stay in the order of the
 * WAL (a pass takes the whole queue before the segment, and queues again
 * what is not its shard's, in order), which the gate of each shard's
 * fields needs. Once a record is queued, every later one of another shard
 * is too (a held one, hrec, would go before the queue). The WAL is
 * acknowledged only up to what is stored: a batch built while the queue
 * holds records acknowledges nothing; the one that empties it, up to the
 * last record read (dq_max). A failure rewinds the segment to what was
 * acknowledged and empties the queue. At most DQ_MAX bytes are queued:
 * then the segment is not read on until the queue drains.
 */
#define DQ_MAX (8u << 20)

static int dq_empty(const struct lp_send *s)
{
    return s->dq.len == 0 && s->dq_off >= s->dq_cur.len;
}

static void dq_push(struct lp_send *s, const char *rec, size_t len,
                    uint64_t end)
{
    uint32_t l = (uint32_t)len;

    if (lp_buf_add(&s->dq, &end, sizeof end) < 0 ||
        lp_buf_add(&s->dq, &l, sizeof l) < 0 ||
        lp_buf_add(&s->dq, rec, len) < 0)
        lp_send_oom(s);
}

/* The queue's next record of this pass: 1, or 0 (none left). */
static int dq_pop(struct lp_send *s, const char **rec, size_t *len,
                  uint64_t *end)
{
    uint32_t l;

    if (s->dq_off + sizeof *end + sizeof l > s->dq_cur.len)
        return 0;
    memcpy(end, s->dq_cur.p + s->dq_off, sizeof *end);
    memcpy(&l, s->dq_cur.p + s->dq_off + sizeof *end, sizeof l);
    *rec = s->dq_cur.p + s->dq_off + sizeof *end + sizeof l;
    *len = l;
    s->dq_off += sizeof *end + sizeof l + l;
    return 1;
}

/* A pass begins: the queue is what it takes from. */
static void dq_begin(struct lp_send *s)
{
    struct lp_buf t = s->dq_cur;   /* empty: dq_end */

    if (s->dq.len == 0)
        return;
    s->dq_cur = s->dq;
    s->dq = t;
    s->dq.len = 0;
    s->dq_off = 0;
}

/* A pass ends: what it did not take goes after what it queued again
 * (the WAL's order: a pass that did not take the whole queue read nothing
 * of the segment, and what it queued came before the remainder). */
static void dq_end(struct lp_send *s)
{
    if (s->dq_off < s->dq_cur.len &&
        lp_buf_add(&s->dq, s->dq_cur.p + s->dq_off,
                   s->dq_cur.len - s->dq_off) < 0)
        lp_send_oom(s);
    s->dq_cur.len = 0;
    s->dq_off = 0;
}

/* The next record of a pass: the queue's first, then the segment's (not
 * while the queue is full: it drains first). 1, or 0 (none now; the
 * segment's end when the queue is empty too). */
static int next_rec(struct lp_send *s, const char **rec, size_t *len,
                    uint64_t *end)
{
    if (dq_pop(s, rec, len, end))
        return 1;
    if (s->dq.len >= DQ_MAX || !lp_wal_seg_next(s->rseg, rec, len, end))
        return 0;
    if (*end > s->dq_max)
        s->dq_max = *end;
    return 1;
}

/* A segment read anew (its start, or a rewind): nothing queued, nothing
 * read of it yet (offsets are the segment's) */
static void dq_clear(struct lp_send *s)
{
    s->dq.len = s->dq_cur.len = 0;
    s->dq_off = 0;
    s->dq_max = 0;
    s->dq_used = 0;
}

/* The oldest WAL records go into the ring, as a batch in flight (one at a
 * time); records at or below their producer's committed position are
 * stored already: counted, not sent again. */
void lp_spool_replay(struct lp_send *s)
{
    char err[LP_ERRLEN];
    struct lp_batch *b;
    const char *rec;
    size_t len;
    uint64_t end, skipped_end = 0;

    /* one batch in flight at most, over all lanes (--shards in a
     * cluster): the WAL is acknowledged in order */
    lp_lanes_inflight(s);
    if (s->rseg && s->rseg_eof && s->count == 0)
        lp_pipeline_retire(s);               /* finishes the segment */
    if (!s->walmode || s->count >= 1 ||
        lp_mono_ms() < s->replay_at || (s->rseg && s->rseg_eof))
        return;
    /* (in a cluster, the lane of the next record's shard: below) */
    if (s->lanes == NULL && lp_pipeline_connect(s, err) < 0) {
        lp_spool_replay_failed(s, err);
        return;
    }
    if (s->rseg == NULL) {
        int rc;
        /* input waiting for the WAL goes first, behind what is there
         * (not a line's events before its end: --follow) */
        if (lp_batch_busy(s->in) && !s->mid_line) {
            lp_spool_batch(s, s->in);
            lp_spool_sync(s);
            lp_req_in_wal(s, s->in);
            lp_batch_reset(s->in);
        }
        rc = lp_wal_take(s->wal, &s->rseg, err);
        if (rc < 0)
            lp_spool_error(s, err);
        dq_clear(s);
        if (rc == 2) {
            /* an older segment is another sender's: after it, in order;
             * --flush-wal waits for it for --timeout */
            if (s->fail_since == 0)
                s->fail_since = lp_mono_ms();
            if (!s->warned) {
                say(s, LP_NOTICE_INFO, "--wal %s: an older segment is "
                    "another sender's: waiting for it", s->c.wal);
                s->warned = 1;
            }
            s->replay_at = lp_mono_ms() + lp_backoff_next(&s->backoff);
            return;
        }
        if (rc == 0) {
            if (s->count == 0) {
                /* --shards: each shard's batches go on from its field */
                if (s->sh && lp_shards_refresh(s, err) < 0) {
                    lp_spool_replay_failed(s, err);
                    return;
                }
                s->walmode = 0;  /* all sent: straight to Redis again */
                lp_send_fk_rest(s);
                say(s, LP_NOTICE_INFO, "the WAL %s is empty again", s->c.wal);
            }
            return;
        }
        s->rseg_eof = 0;
    }
    dq_begin(s);                /* queued records go first */
    if (s->lanes && !s->hrec_on && next_rec(s, &rec, &len, &end)) {
        /* --shards in a cluster: the next record, held, says the lane */
        s->hrec.len = 0;
        if (lp_buf_add(&s->hrec, rec, len) < 0)
            lp_send_oom(s);
        s->hrec_end = end;
        s->hrec_on = 1;
    }
    if (s->lanes && s->hrec_on) {
        int shard, isdlq, bare;
        const char *key;
        size_t keylen;
        if ((shard = rec_shard(s, s->hrec.p, s->hrec.len, &isdlq, &bare,
                               &key, &keylen, err)) >= 0)
            lp_lane_use(s, s->sh[shard].lane);
        /* (not a shard's: the loop below says so) */
        if (lp_pipeline_connect(s, err) < 0) {
            lp_spool_replay_failed(s, err);
            return;
        }
    }
    b = &s->ring[(s->head + s->count) % LP_INFLIGHT];
    lp_batch_reset(b);
    b->source = LP_BATCH_REPLAY;
    b->shard = -1;
    while (b->n < s->c.batch && b->blob.len < s->c.batch_bytes &&
           b->nprods < LP_BATCH_PRODS) {
        const char *pn = NULL, *cur = NULL;
        size_t pnl = 0, cl = 0, cmd = 0;
        uint64_t pos = 0, committed = 0;
        int prod, shard = -1, isdlq = 0, bare = 0;
        const char *rkey = NULL;    /* --shards: the record's key */
        size_t rkeylen = 0;
        if (s->hrec_on) {
            /* the record that ended the batch before: another shard's */
            rec = s->hrec.p;
            len = s->hrec.len;
            end = s->hrec_end;
            s->hrec_on = 0;
        } else if (!next_rec(s, &rec, &len, &end)) {
            if (dq_empty(s))
                s->rseg_eof = 1;
            break;
        }
        if (s->sh) {
            /* --shards: a batch is one shard's; its gate that shard's */
            if ((shard = rec_shard(s, rec, len, &isdlq, &bare, &rkey,
                                   &rkeylen, err)) < 0)
                lp_spool_error(s, err);
            /* (in a cluster, a record for another lane ends it even
             * when all before it were passed over: its HGET goes on its
             * own lane, after the lane is chosen by it) */
            if (((b->n > 0 && shard != b->shard) ||
                 (s->lanes && s->sh[shard].lane != s->cur_lane)) &&
                (bare || !dq_empty(s))) {
                /* another shard's: queued, the batch reads on */
                dq_push(s, rec, len, end);
                s->dq_used = 1;
                continue;
            }
            if ((b->n > 0 && shard != b->shard) ||
                (s->lanes && s->sh[shard].lane != s->cur_lane)) {
                s->hrec.len = 0;
                if (lp_buf_add(&s->hrec, rec, len) < 0)
                    lp_send_oom(s);
                s->hrec_end = end;
                s->hrec_on = 1;
                break;
            }
            lp_shard_keys(s, shard);
        } else {
            /* a record is an XADD to --stream or its DLQ: one to
             * another key (another stream's WAL, a shard's) would be
             * gated on the producers of this stream, not its own, and
             * found again stored twice */
            const char *key, *data;
            size_t keylen, datalen;
            if (lp_wal_event(rec, len, &key, &keylen, &data, &datalen) &&
                !(keylen == strlen(s->c.stream) &&
                  memcmp(key, s->c.stream, keylen) == 0) &&
                !(s->c.dlq && keylen == strlen(s->c.dlq) &&
                  memcmp(key, s->c.dlq, keylen) == 0)) {
                snprintf(err, LP_ERRLEN, "--wal %s: %s holds a record for "
                         "%.*s, which is not --stream %s nor its DLQ "
                         "(flush it with the options of the run that "
                         "wrote it)", s->c.wal, lp_wal_seg_name(s->rseg),
                         (int)(keylen > 200 ? 200 : keylen), key,
                         s->c.stream);
                lp_spool_error(s, err);
            }
        }
        prod = lp_wal_producer(rec, len, &pn, &pnl, &pos, &cur, &cl, &cmd);
        if (prod) {
            if (lp_pipeline_committed(s, pn, pnl, &committed, err) < 0) {
                lp_spool_replay_failed(s, err);
                return;
            }
            /* --shards after a change: a record at or below its
             * producer's field on its shard of the count before is
             * stored there (the fields of the producer the record
             * names, not only the run's own: a flush is often run
             * without --producer; read at the first connection of a run
             * begun with Redis away); by position when the record's
             * shard is its position's, else as lp_was_stored can tell.
             * A record with a cursor (--follow's: --journal has no
             * WAL) below */
            if (pos > committed && s->sh && s->was_n && cl == 0) {
                const uint64_t *skip;
                if (lp_shards_was_of(s, pn, pnl, &skip, err) < 0) {
                    lp_spool_replay_failed(s, err);
                    return;
                }
                char pname[LP_PRODUCER_MAX + 1];
                snprintf(pname, sizeof pname, "%.*s", (int)pnl, pn);
                if (lp_was_stored_of(s, skip, pname, pos, LP_WSHARD_UNKNOWN,
                                     s->c.shard_key == NULL &&
                                     (uint64_t)shard ==
                                     (pos - 1) % s->nsh) == 1)
                    committed = pos;
            } else if (pos > committed && s->sh && s->was_n) {
                /* --follow's: its (file, shard) numbers each shard on
                 * its own, so only its old shard's field can tell, the
                 * one its key names when a run of the count before
                 * wrote it. Stored there when at or below that field's
                 * position and cursor both: a run of the count now
                 * (numbered from its new shard's field, which may be
                 * below) read the file from past the highest cursor of
                 * its fields over both counts, so its records' cursors
                 * are above any old field's */
                const char *key, *data;
                size_t keylen, datalen;
                const uint64_t *skip, *wcur;
                uint64_t c = lp_cursor_num(cur, cl);
                int j = c && lp_wal_event(rec, len, &key, &keylen, &data,
                                          &datalen)
                        ? lp_was_shard_of_key(s, key, keylen, isdlq) : -1;
                if (j >= 0) {
                    if (lp_shards_was_cur_of(s, pn, pnl, &skip, &wcur,
                                             err) < 0) {
                        lp_spool_replay_failed(s, err);
                        return;
                    }
                    if (skip && pos <= skip[j] && c <= wcur[j])
                        committed = pos;
                }
            }
            if (pos <= committed) {
                const char *key, *data;
                size_t keylen, datalen;
                int ev = s->sh ? !isdlq :
                         !(lp_wal_event(rec, len, &key, &keylen, &data,
                                        &datalen) &&
                           keylen == strlen(s->c.dlq) &&
                           memcmp(key, s->c.dlq, keylen) == 0);
                /* its batch was stored, its reply lost */
                if (ev) {
                    s->n.sent++;
                    s->n.replayed++;
                    s->n.already++;
                } else {
                    s->n.dlq++;
                }
                skipped_end = end;
                continue;
            }
        } else if (!s->old_wal_said) {
            say(s, LP_NOTICE_WARN, "--wal %s: %s is of an older logpipe-send "
                "(no producer positions): its events are sent as before, "
                "and a reply lost meanwhile sends them twice", s->c.wal,
                lp_wal_seg_name(s->rseg));
            s->old_wal_said = 1;
        }
        size_t at = b->blob.len;
        const char *key, *data;
        size_t keylen, datalen;
        if (bare) {
            /* a record of a run without --shards: to its shard's key */
            if (add_rekeyed(&b->blob, rec + cmd, len - cmd, rkey, rkeylen,
                            isdlq ? s->sh[shard].dlq : s->sh[shard].name) < 0)
                lp_send_oom(s);
        } else if (lp_buf_add(&b->blob, rec + cmd, len - cmd) < 0) {
            lp_send_oom(s);
        }
        struct lp_cmd *e = &b->ev[b->n++];
        e->cmd = (uint32_t)at;
        e->cmdlen = (uint32_t)(b->blob.len - at);
        /* cmdlen + plen: the record's length (lp_wal_seg_mark), in
         * uint32_t arithmetic when the key grew */
        e->plen = (uint32_t)len - e->cmdlen;
        /* an event for a stream, or a dead letter (counted apart) */
        e->kind = s->sh ? (isdlq ? LP_CMD_DLQ : LP_CMD_EVENT) :
                  lp_wal_event(rec, len, &key, &keylen, &data, &datalen) &&
                  keylen == strlen(s->c.dlq) &&
                  memcmp(key, s->c.dlq, keylen) == 0 ? LP_CMD_DLQ
                                                     : LP_CMD_EVENT;
        b->shard = shard;
        e->done = 0;
        e->wend = end;
        e->file = 0;
        e->line_start = 0;
        e->pos = pos;
        e->prod = prod ? lp_batch_prod(s, b, pn, pnl, cur, cl) : LP_NOPROD;
        if (prod)               /* its gate: on from Redis's position */
            b->prods[e->prod].from = committed;
    }
    dq_end(s);
    /* records queued before this batch's last: nothing acknowledged; the
     * batch that empties the queue, up to the last record read */
    if (!dq_empty(s))
        b->ack_to = UINT64_MAX;
    else if (b->n && s->dq_used && !s->hrec_on)
        /* (a record held for the next batch was read: not past it) */
        b->ack_to = s->dq_max > b->ev[b->n - 1].wend ? s->dq_max
                                                       : b->ev[b->n - 1].wend;
    if (dq_empty(s))
        s->dq_used = 0;
    if (b->n == 0) {
        if (skipped_end && dq_empty(s) &&
            lp_wal_seg_ack(s->wal, s->rseg, skipped_end, err) < 0)
            lp_spool_error(s, err);
        if (!dq_empty(s))
            return;             /* the queue's records: the next pass */
        lp_pipeline_retire(s);  /* an empty remainder: the segment is done */
        return;
    }
    s->count++;
    if (s->c.verbosity >= 2)
        say(s, LP_SEND_DEBUG, "re-sending %zu commands of %s", b->n,
            lp_wal_seg_name(s->rseg));
    if (lp_pipeline_send(s, b, err) < 0)
        lp_send_recover(s, err);
}
