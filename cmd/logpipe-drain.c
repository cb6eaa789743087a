/* logpipe-drain.c -- a consumer group into per-key, per-day JSONL files */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_layout.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_time.h"

/*
 * One batch at a time: XREADGROUP, turn each entry into an archive line
 * appended to its file's buffer, write each touched file once, fdatasync
 * it, and only then XACK, in the same round trip as the next read.
 * Entries that can never be archived (bad JSON, unsafe path) go to the
 * DLQ and are acknowledged in one script each (XADD, then XACK). After every (re)start
 * the consumer first reads its own pending entries (ID 0), since a reply
 * lost in transit leaves entries pending with nobody looking at them.
 */

#define LP_HASH 1024

struct out {
    struct out *next;           /* hash chain */
    char *path;                 /* relative to --dir */
    int fd;
    struct lp_buf pend;         /* lines of this batch */
    int touched;                /* in the current batch */
    uint64_t used;              /* batch number of last use (LRU) */
};

struct dlq_item {
    size_t id_off, id_len;      /* in the batch's scratch */
    size_t data_off, data_len;
    const char *code;
    size_t detail_off, detail_len;
};

enum {
    OPT_LAYOUT = LP_OPT_TOOL, OPT_STDOUT, OPT_ONCE, OPT_FIELD,
    OPT_TIME_FIELD, OPT_WHERE, OPT_MAX_DEPTH, OPT_MAX_OPEN
};

static const struct option longopts[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_GROUP, LP_LONG_DLQ, LP_LONG_DIR,
    LP_LONG_PASSWORD_FILE,
    { "consumer", required_argument, NULL, 'c' },
    { "count", required_argument, NULL, 'n' },
    { "block", required_argument, NULL, 'b' },
    { "timeout", required_argument, NULL, 't' },
    { "layout", required_argument, NULL, OPT_LAYOUT },
    { "stdout", no_argument, NULL, OPT_STDOUT },
    { "once", no_argument, NULL, OPT_ONCE },
    { "field", required_argument, NULL, OPT_FIELD },
    { "time-field", required_argument, NULL, OPT_TIME_FIELD },
    { "where", required_argument, NULL, OPT_WHERE },
    { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
    { "max-open", required_argument, NULL, OPT_MAX_OPEN },
    LP_LONG_LOG,
    { NULL, 0, NULL, 0 }
};

static const char shortopts[] = "r:s:g:d:c:n:b:t:vqhV";

static void usage(void)
{
    printf(
"usage: logpipe-drain [options]\n"
"Read a Redis stream as a consumer group member and archive each event in\n"
"per-key, per-day JSONL files (or on stdout); acknowledge only what is on\n"
"disk.\n"
"\n"
"  -r, --redis URL          Redis URL (redis://127.0.0.1:6379/0)\n"
"  -s, --stream KEY         stream key (logs:stream)\n"
"  -g, --group NAME         consumer group (logpipe)\n"
"      --dlq KEY            dead letter stream (logs:dlq)\n"
"  -d, --dir DIR            archive root (./logs)\n"
"      --password-file FILE read the Redis password from FILE\n"
"  -c, --consumer NAME      consumer name (the host name)\n"
"  -n, --count N            entries per read (1000)\n"
"  -b, --block DUR          wait this long for new entries (2s; bare = ms)\n"
"  -t, --timeout DUR        give up when Redis fails this long (30s)\n"
"      --layout TEMPLATE    file path below --dir\n"
"                           ({service}/%%Y-%%m-%%d.jsonl)\n"
"      --stdout             write archive lines to stdout instead\n"
"      --once               drain what is there, then exit\n"
"      --field NAME         entry field holding the event (data)\n"
"      --time-field NAME    member holding the event time (timestamp)\n"
"      --where JQ           archive only events for which JQ is true\n"
"      --max-depth N        deepest nesting accepted (64)\n"
"      --max-open N         day files kept open (256)\n"
"  -v, --verbose            more messages (-vv: per batch)\n"
"  -q, --quiet              only errors\n"
"      --log-format FMT     text or json (text)\n"
"  -h, --help               this help\n"
"  -V, --version            version\n"
"\n"
"Exit: 0 ok (also after SIGTERM), 64 usage, 69 Redis unreachable,\n"
"70 internal error, 73 cannot create output, 74 write or fsync failed,\n"
"78 bad configuration.\n"
"See logpipe-drain(1).\n");
}

static struct {
    struct lp_common com;
    const char *consumer;
    uint64_t count;
    int64_t block, timeout;
    const char *layout;
    int to_stdout, once;
    const char *field;
    const char *time_field;
    const char *where;
    uint64_t max_depth;
    uint64_t max_open;
} opt;

static struct {
    struct lp_redis *r;
    struct lp_layout *layout;
    struct lp_jq *where;
    struct lp_jkeys keys;
    int time_idx;
    int field_idx[LP_LAYOUT_MAXFIELDS];
    struct lp_jlimits lim;
    int dirfd;
    char host[256];
    /* files */
    struct out *bucket[LP_HASH];
    struct out **touched;
    size_t ntouched, nopen;
    uint64_t batchno;
    struct out *last;           /* one-entry cache: runs of one file */
    /* the batch in hand */
    struct lp_buf scratch;      /* ids, DLQ data and details */
    struct lp_buf obj;          /* an event built from field pairs */
    struct lp_buf line;         /* stdout sink */
    struct dlq_item *dlq;
    size_t ndlq, dlq_cap;
    const char **ack;           /* XACK argv: ids once the batch is durable */
    size_t *acklen;
    size_t nack;
    int ack_queued;             /* an XACK went out with the last read */
    int stdout_is_file;
    /* reading */
    int pending;                /* reading our own pending entries */
    char after[64];             /* pending: last ID read */
    int64_t fail_since;
    uint64_t n_read, n_written, n_dlq, n_deleted, n_filtered, n_badtime;
} S;

/* ---- file sink ---------------------------------------------------------- */

static uint32_t hash_path(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void close_out(struct out *o)
{
    struct out **pp = &S.bucket[hash_path(o->path, strlen(o->path)) %
                                LP_HASH];

    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    if (o->fd >= 0)
        close(o->fd);
    if (S.last == o)
        S.last = NULL;
    lp_buf_free(&o->pend);
    free(o->path);
    free(o);
    S.nopen--;
}

/* Closes the least recently used file not touched in this batch. */
static void evict_one(void)
{
    struct out *victim = NULL;

    for (size_t b = 0; b < LP_HASH; b++)
        for (struct out *o = S.bucket[b]; o; o = o->next)
            if (!o->touched && (victim == NULL || o->used < victim->used))
                victim = o;
    if (victim)
        close_out(victim);
}

/* Opens path for appending (made, with its directories, when missing).
 * Returns the fd or -1 with errno and err. */
static int open_append(const char *path, char *err)
{
    int created;

    return lp_fs_open(S.dirfd, path, O_RDWR | O_APPEND | O_CREAT,
                      LP_FILE_MODE, &created, err);
}

/*
 * Cuts a partial last line. Called with the file locked: every writer
 * appends under the lock, so a tail without its newline was left by a
 * writer that died mid-write (or a full disk). Its entry was not
 * acknowledged and will be written again whole.
 */
static int cut_partial(struct out *o, off_t size, char *err)
{
    char buf[4096], c;
    off_t end = size, cut = 0;

    if (size == 0 || pread(o->fd, &c, 1, size - 1) != 1 || c == '\n')
        return 0;
    while (end > 0) {
        off_t from = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t n = pread(o->fd, buf, (size_t)(end - from), from);
        if (n <= 0)
            break;
        char *nl = memrchr(buf, '\n', (size_t)n);
        if (nl) {
            cut = from + (nl - buf) + 1;
            break;
        }
        end = from;
    }
    lp_warn("%s: cutting a partial last line (%lld bytes) left by an "
            "interrupted write", o->path, (long long)(size - cut));
    if (ftruncate(o->fd, cut) < 0 || fdatasync(o->fd) < 0) {
        snprintf(err, LP_ERRLEN, "%s: %s", o->path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Locks o's file for appending (flock, the lock logpipe-rotate takes too)
 * and makes it ready: reopened when rotation unlinked or replaced it, its
 * partial last line cut. Returns 0 with the lock held, or -1 with err.
 */
static int lock_for_append(struct out *o, char *err)
{
    struct stat st, cur;

    for (;;) {
        if (flock(o->fd, LOCK_EX) < 0) {
            snprintf(err, LP_ERRLEN, "%s: lock: %s", o->path,
                     strerror(errno));
            return -1;
        }
        if (fstat(o->fd, &st) < 0) {
            snprintf(err, LP_ERRLEN, "%s: %s", o->path, strerror(errno));
            return -1;
        }
        if (st.st_nlink > 0 &&
            fstatat(S.dirfd, o->path, &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
            cur.st_ino == st.st_ino && cur.st_dev == st.st_dev)
            return cut_partial(o, st.st_size, err);
        /* rotated away: the next file by that name is ours */
        lp_info("%s was rotated: reopening", o->path);
        close(o->fd);
        if ((o->fd = open_append(o->path, err)) < 0)
            return -1;
    }
}

/* The open file for path, opened on first use. NULL with errno/err. */
static struct out *get_out(const char *path, size_t n, char *err)
{
    uint32_t h;
    struct out *o;

    if (S.last && strcmp(S.last->path, path) == 0)
        return S.last;
    h = hash_path(path, n) % LP_HASH;
    for (o = S.bucket[h]; o; o = o->next)
        if (strcmp(o->path, path) == 0)
            return S.last = o;
    if (S.nopen >= opt.max_open)
        evict_one();
    if ((o = calloc(1, sizeof *o)) == NULL ||
        (o->path = strdup(path)) == NULL) {
        free(o);
        snprintf(err, LP_ERRLEN, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    o->fd = open_append(path, err);
    if (o->fd < 0 && (errno == EMFILE || errno == ENFILE) && S.nopen > 0) {
        evict_one();
        o->fd = open_append(path, err);
    }
    if (o->fd < 0) {
        int e = errno;
        free(o->path);
        free(o);
        errno = e;
        return NULL;
    }
    o->next = S.bucket[h];
    S.bucket[h] = o;
    S.nopen++;
    return S.last = o;
}

static int fatal_errno(int e)
{
    return e == ENOSPC || e == EIO || e == EDQUOT || e == EROFS ||
           e == EFBIG ? LP_EX_IOERR : LP_EX_CANTCREAT;
}

/* Writes and fdatasyncs every file touched by the batch. On failure the
 * batch is not acknowledged: we exit and redelivery recovers. */
static void sync_files(void)
{
    char err[LP_ERRLEN];

    for (size_t i = 0; i < S.ntouched; i++) {
        struct out *o = S.touched[i];
        if (lock_for_append(o, err) < 0) {
            lp_error("%s", err);
            exit(fatal_errno(errno));
        }
        if (lp_fs_write_all(o->fd, o->pend.p, o->pend.len) < 0) {
            lp_error("%s: write: %s", o->path, strerror(errno));
            exit(fatal_errno(errno));
        }
        flock(o->fd, LOCK_UN);
    }
    /* all writes first, then the syncs: the kernel can start writeback of
     * every file before we wait on the first */
    for (size_t i = 0; i < S.ntouched; i++) {
        struct out *o = S.touched[i];
        if (fdatasync(o->fd) < 0) {
            /* never retry an fsync and trust it: the pages may be gone */
            lp_error("%s: fsync: %s", o->path, strerror(errno));
            exit(LP_EX_IOERR);
        }
        o->pend.len = 0;
        o->touched = 0;
    }
    S.ntouched = 0;
}

/* ---- the batch ---------------------------------------------------------- */

static size_t scratch_add(const void *p, size_t n)
{
    size_t off = S.scratch.len;

    if (lp_buf_add(&S.scratch, p, n) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    return off;
}

/* Queues e for the DLQ. Not for the plain XACK: the move carries its own
 * XACK in the same script, so a failed move leaves it pending. */
static void to_dlq(const struct lp_entry *e, const char *data, size_t dlen,
                   const char *code, const char *detail)
{
    struct dlq_item *d;

    if (S.ndlq == S.dlq_cap) {
        size_t cap = S.dlq_cap ? S.dlq_cap * 2 : 16;
        struct dlq_item *p = realloc(S.dlq, cap * sizeof *p);
        if (p == NULL) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
        S.dlq = p;
        S.dlq_cap = cap;
    }
    d = &S.dlq[S.ndlq++];
    d->id_off = scratch_add(e->id, e->idlen);
    d->id_len = e->idlen;
    d->data_off = scratch_add(data, dlen);
    d->data_len = dlen;
    d->code = code;
    d->detail_len = strlen(detail);
    d->detail_off = scratch_add(detail, d->detail_len);
    lp_warn("entry %.*s to the DLQ: %s: %s", (int)e->idlen, e->id, code,
            detail);
}

static void ack_later(const struct lp_entry *e)
{
    /* borrowed from the reply, which is kept until the XACK is sent */
    S.ack[3 + S.nack] = e->id;
    S.acklen[3 + S.nack] = e->idlen;
    S.nack++;
}

/* The event of an entry without our field: the object of its pairs. */
static int pairs_object(const struct lp_entry *e)
{
    const char *f, *v;
    size_t fl, vl;
    long bad = 0;

    S.obj.len = 0;
    lp_buf_addc(&S.obj, '{');
    for (size_t k = 0; k < e->nfields; k++) {
        lp_entry_pair(e, k, &f, &fl, &v, &vl);
        if (k)
            lp_buf_addc(&S.obj, ',');
        bad += lp_buf_add_jstr(&S.obj, f, fl);
        lp_buf_addc(&S.obj, ':');
        bad += lp_buf_add_jstr(&S.obj, v, vl);
    }
    lp_buf_addc(&S.obj, '}');
    return bad ? -1 : 0;
}

static int json_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void one_entry(const struct lp_entry *e)
{
    const char *s;
    size_t n;
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN], path[LP_LAYOUT_PATHMAX];
    uint64_t id_ms, id_seq;
    int64_t t;
    long plen;

    S.n_read++;
    if (e->fields == NULL) {
        /* pending, but its data was trimmed or deleted */
        S.n_deleted++;
        lp_warn("entry %.*s was deleted from the stream before it was "
                "archived: acknowledging it", (int)e->idlen, e->id);
        ack_later(e);
        return;
    }
    s = lp_entry_field(e, opt.field, strlen(opt.field), &n);
    if (s == NULL) {
        if (pairs_object(e) < 0) {
            to_dlq(e, S.obj.p, S.obj.len, "invalid-utf8",
                   "a field or value is not valid UTF-8");
            return;
        }
        s = S.obj.p;
        n = S.obj.len;
    }
    while (n > 0 && json_ws((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && json_ws((unsigned char)s[n - 1]))
        n--;
    if (lp_json_event(s, n, &S.keys, &S.lim, &ev, &je) < 0) {
        to_dlq(e, s, n, je.not_object ? "not-object" : "invalid-json",
               je.msg);
        return;
    }
    if (S.where) {
        int m = lp_jq_match(S.where, s, n, err);
        if (m < 0) {
            to_dlq(e, s, n, "where-error", err);
            return;
        }
        if (m == 0) {
            S.n_filtered++;
            ack_later(e);
            return;
        }
    }
    if (lp_stream_id_parse(e->id, e->idlen, &id_ms, &id_seq) < 0)
        id_ms = (uint64_t)lp_now_ms();
    t = (int64_t)id_ms;
    if (S.time_idx >= 0) {
        int rc = lp_event_time(s, &ev.val[S.time_idx], &t, err);
        if (rc < 0) {
            /* another producer's idea of a time: file it by arrival */
            S.n_badtime++;
            lp_info("entry %.*s: %s: filed by its stream ID time",
                    (int)e->idlen, e->id, err);
            t = (int64_t)id_ms;
        } else if (rc == 0) {
            t = (int64_t)id_ms;
        }
    }

    /* the archive line: {"_id":"<id>", then the event's members */
    struct lp_buf *dst;
    struct out *o = NULL;
    if (opt.to_stdout) {
        dst = &S.line;
    } else {
        plen = lp_layout_expand(S.layout, t, s, &ev, S.field_idx, path,
                                sizeof path, err);
        if (plen < 0) {
            to_dlq(e, s, n, "unsafe-path", err);
            return;
        }
        o = get_out(path, (size_t)plen, err);
        if (o == NULL) {
            if (errno == ELOOP || errno == ENOTDIR || errno == EINVAL) {
                to_dlq(e, s, n, "unsafe-path", err);
                return;
            }
            lp_error("%s", err);
            exit(fatal_errno(errno));
        }
        if (!o->touched) {
            o->touched = 1;
            S.touched[S.ntouched++] = o;
        }
        o->used = S.batchno;
        dst = &o->pend;
    }
    size_t body = ev.ncuts ? lp_json_cut_len(&ev, n) : n;
    if (lp_buf_reserve(dst, body + e->idlen + 16) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    char *w = dst->p + dst->len;
    memcpy(w, "{\"_id\":\"", 8);
    w += 8;
    memcpy(w, e->id, e->idlen);
    w += e->idlen;
    *w++ = '"';
    /* s starts with '{'; the members follow, or only '}' when empty */
    if (ev.nmembers > (uint32_t)ev.ncuts)
        *w++ = ',';
    if (ev.ncuts) {
        char *tmp = w;
        lp_json_cut_copy(&ev, s, n, tmp);
        memmove(w, tmp + 1, body - 1);
    } else {
        memcpy(w, s + 1, n - 1);
    }
    w += body - 1;
    *w++ = '\n';
    dst->len = (size_t)(w - dst->p);
    S.n_written++;
    ack_later(e);
}

/*
 * XADD to the DLQ, then XACK, as one script: redis.call raises on an error,
 * so when the XADD fails (WRONGTYPE, OOM) the XACK never runs and the entry
 * stays pending. MULTI/EXEC would not do: it runs the XACK even when the
 * XADD inside it fails at run time.
 * KEYS: stream, dlq. ARGV: group, id, then the DLQ entry's field/values.
 */
static const char dlq_script[] =
    "local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "return id\n";

/* Moves the batch's DLQ items, each with its XACK, atomically. */
static int send_dlq(char *err)
{
    char ms[32], deliveries[8] = "1";

    if (S.ndlq == 0)
        return 0;
    snprintf(ms, sizeof ms, "%lld", (long long)lp_now_ms());
    for (size_t i = 0; i < S.ndlq; i++) {
        const struct dlq_item *d = &S.dlq[i];
        const char *id = S.scratch.p + d->id_off;
        const char *argv[25] = {
            "EVAL", dlq_script, "2", opt.com.stream, opt.com.dlq,
            opt.com.group, id,
            "data", S.scratch.p + d->data_off,
            "error", d->code,
            "detail", S.scratch.p + d->detail_off,
            "stage", "drain",
            "source_stream", opt.com.stream,
            "source_id", id,
            "deliveries", deliveries,
            "consumer", opt.consumer,
            "failed_at", ms,
        };
        size_t lens[25];
        for (int k = 0; k < 25; k++) {
            /* id, data and detail live in the scratch buffer, unterminated */
            if (k == 6 || k == 18)
                lens[k] = d->id_len;
            else if (k == 8)
                lens[k] = d->data_len;
            else if (k == 12)
                lens[k] = d->detail_len;
            else
                lens[k] = strlen(argv[k]);
        }
        if (lp_redis_append(S.r, 25, argv, lens) < 0) {
            snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
            return -1;
        }
    }
    for (size_t i = 0; i < S.ndlq; i++) {
        struct lp_reply *rep;
        if (lp_redis_reply(S.r, &rep, err) < 0)
            return -1;
        if (lp_reply_type(rep) == LP_REPLY_STRING) {
            S.n_dlq++;
        } else {
            char t[300];
            lp_error("DLQ move of %.*s failed: %s (it stays pending)",
                     (int)S.dlq[i].id_len, S.scratch.p + S.dlq[i].id_off,
                     lp_reply_text(rep, t, sizeof t));
        }
        lp_reply_free(rep);
    }
    return 0;
}

/* ---- Redis -------------------------------------------------------------- */

/* Creates the group at the start of the stream (and the stream). */
static int ensure_group(char *err)
{
    struct lp_reply *rep = lp_redis_cmd(S.r, err, "XGROUP", "CREATE",
                                        opt.com.stream, opt.com.group, "0",
                                        "MKSTREAM", NULL);
    int rc = 0;

    if (rep == NULL)
        return -1;
    if (lp_reply_type(rep) == LP_REPLY_ERROR &&
        !lp_reply_is_error(rep, "BUSYGROUP")) {
        char t[300];
        snprintf(err, LP_ERRLEN, "XGROUP CREATE %s %s: %s", opt.com.stream,
                 opt.com.group, lp_reply_text(rep, t, sizeof t));
        rc = lp_reply_is_error(rep, "WRONGTYPE") ||
             lp_reply_is_error(rep, "NOPERM") ? -2 : -1;
    } else if (lp_reply_type(rep) != LP_REPLY_ERROR) {
        lp_info("created group %s on %s", opt.com.group, opt.com.stream);
    }
    lp_reply_free(rep);
    return rc;
}

/* (Re)connects and joins the group, retrying for --timeout. */
static void connect_redis(void)
{
    char err[LP_ERRLEN];
    int64_t backoff = 0, start = lp_mono_ms();
    int warned = 0, rc;

    for (;;) {
        rc = lp_redis_connect(S.r, err);
        if (rc == 0) {
            rc = ensure_group(err);
            if (rc == -2) {
                lp_error("%s", err);
                exit(LP_EX_CONFIG);
            }
        }
        if (rc == LP_REDIS_EAUTH) {
            lp_error("%s", err);
            exit(LP_EX_CONFIG);
        }
        if (rc == 0)
            break;
        if (!warned) {
            lp_warn("%s; retrying for up to %llds", err,
                    (long long)(opt.timeout / 1000));
            warned = 1;
        }
        if (lp_stop)
            exit(LP_EX_OK);     /* nothing in hand */
        if (lp_mono_ms() - start >= opt.timeout) {
            lp_error("giving up: %s", err);
            exit(LP_EX_UNAVAILABLE);
        }
        backoff = backoff ? backoff * 2 : 100;
        if (backoff > 2000)
            backoff = 2000;
        poll(NULL, 0, (int)backoff);
    }
    if (warned)
        lp_warn("%s answers again", lp_redis_name(S.r));
    /* after every (re)connect, our own pending entries come first */
    S.pending = 1;
    strcpy(S.after, "0");
    S.ack_queued = 0;
}

/* Queues XACK of the batch in hand (if any); S.ack[0..2] are reserved
 * for "XACK <stream> <group>", the IDs follow. */
static int queue_ack(char *err)
{
    S.ack_queued = 0;
    if (S.nack == 0)
        return 0;
    S.ack[0] = "XACK";
    S.acklen[0] = 4;
    S.ack[1] = opt.com.stream;
    S.acklen[1] = strlen(opt.com.stream);
    S.ack[2] = opt.com.group;
    S.acklen[2] = strlen(opt.com.group);
    if (lp_redis_append(S.r, (int)S.nack + 3, S.ack, S.acklen) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    S.ack_queued = 1;
    return 0;
}

/* Queues XACK for the batch in hand and the next read; sends both. */
static int request(char *err)
{
    char count[24], block[24];
    const char *argv[12];
    size_t lens[12];
    int n = 0;

    if (queue_ack(err) < 0)
        return -1;
    snprintf(count, sizeof count, "%" PRIu64, opt.count);
    argv[n++] = "XREADGROUP";
    argv[n++] = "GROUP";
    argv[n++] = opt.com.group;
    argv[n++] = opt.consumer;
    argv[n++] = "COUNT";
    argv[n++] = count;
    if (!S.pending && !opt.once) {
        snprintf(block, sizeof block, "%lld", (long long)opt.block);
        argv[n++] = "BLOCK";
        argv[n++] = block;
    }
    argv[n++] = "STREAMS";
    argv[n++] = opt.com.stream;
    argv[n++] = S.pending ? S.after : ">";
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (lp_redis_append(S.r, n, argv, lens) < 0) {
        snprintf(err, LP_ERRLEN, "%s: not connected", lp_redis_name(S.r));
        return -1;
    }
    return lp_redis_flush(S.r, err);
}

static void take_ack_reply(struct lp_reply *a)
{
    if (lp_reply_type(a) != LP_REPLY_INTEGER) {
        char t[200];
        lp_warn("XACK failed: %s (the entries stay pending and are "
                "delivered again)", lp_reply_text(a, t, sizeof t));
    }
    lp_reply_free(a);
    S.ack_queued = 0;
}

/* Reads the XACK reply (if one was sent) and the read's reply. */
static int receive(struct lp_reply **rep, char *err)
{
    if (S.ack_queued) {
        struct lp_reply *a;
        if (lp_redis_reply(S.r, &a, err) < 0)
            return -1;
        take_ack_reply(a);
        S.nack = 0;
    }
    /* a stop signal during a blocking read shuts the socket: entries the
     * server delivered meanwhile stay pending for the next start */
    if (!S.pending && !opt.once) {
        lp_sig_shutdown_fd(lp_redis_fd(S.r));
        if (lp_stop) {
            lp_sig_shutdown_fd(-1);
            snprintf(err, LP_ERRLEN, "stopped");
            return -1;
        }
    }
    int rc = lp_redis_reply(S.r, rep, err);
    lp_sig_shutdown_fd(-1);
    return rc;
}

/* ---- main --------------------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
    char err[LP_ERRLEN];
    int c;

    lp_common_init(&opt.com);
    opt.count = 1000;
    opt.block = 2000;
    opt.timeout = 30000;
    opt.layout = "{service}/%Y-%m-%d.jsonl";
    opt.field = "data";
    opt.time_field = "timestamp";
    opt.max_depth = LP_JSON_DEPTH;
    opt.max_open = 256;

    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int rc = lp_common_opt(&opt.com, c, optarg, err);
        if (rc < 0)
            goto bad;
        if (rc > 0)
            continue;
        switch (c) {
        case 'h':
            usage();
            exit(0);
        case 'V':
            printf("logpipe-drain %s\n", LP_VERSION);
            exit(0);
        case 'c':
            opt.consumer = optarg;
            if (*optarg == '\0') {
                snprintf(err, sizeof err, "must not be empty");
                goto badopt;
            }
            break;
        case 'n':
            if (lp_parse_uint(optarg, 1, 100000, &opt.count, err) < 0)
                goto badopt;
            break;
        case 'b':
            if (lp_parse_duration(optarg, "ms", &opt.block, err) < 0)
                goto badopt;
            if (opt.block < 1 || opt.block > 3600000) {
                snprintf(err, sizeof err, "'%s' is out of range (1ms..1h)",
                         optarg);
                goto badopt;
            }
            break;
        case 't':
            if (lp_parse_duration(optarg, "s", &opt.timeout, err) < 0)
                goto badopt;
            break;
        case OPT_LAYOUT:
            opt.layout = optarg;
            break;
        case OPT_STDOUT:
            opt.to_stdout = 1;
            break;
        case OPT_ONCE:
            opt.once = 1;
            break;
        case OPT_FIELD:
            opt.field = optarg;
            break;
        case OPT_TIME_FIELD:
            opt.time_field = optarg;
            break;
        case OPT_WHERE:
            opt.where = optarg;
            break;
        case OPT_MAX_DEPTH:
            if (lp_parse_uint(optarg, 1, 10000, &opt.max_depth, err) < 0)
                goto badopt;
            break;
        case OPT_MAX_OPEN:
            if (lp_parse_uint(optarg, 1, 100000, &opt.max_open, err) < 0)
                goto badopt;
            break;
        default:
            exit(lp_usage_hint("logpipe-drain"));
        }
        continue;
badopt:
        fprintf(stderr, "logpipe-drain: %s: %s\n", lp_optname(longopts, c),
                err);
        exit(LP_EX_USAGE);
bad:
        fprintf(stderr, "logpipe-drain: %s\n", err);
        exit(LP_EX_USAGE);
    }
    if (optind < argc) {
        fprintf(stderr, "logpipe-drain: unexpected argument '%s'\n",
                argv[optind]);
        exit(lp_usage_hint("logpipe-drain"));
    }
}

static void setup(void)
{
    char err[LP_ERRLEN];
    struct stat st;

    if (gethostname(S.host, sizeof S.host - 1) < 0 || S.host[0] == '\0')
        strcpy(S.host, "logpipe-drain");
    if (opt.consumer == NULL)
        opt.consumer = S.host;
    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    S.lim.depth = (int)opt.max_depth;
    if (opt.where && lp_jq_new(opt.where, &S.where, err) < 0) {
        lp_error("--where: %s", err);
        exit(LP_EX_CONFIG);
    }
    if (lp_layout_new(opt.layout, &S.layout, err) < 0) {
        lp_error("--layout: %s", err);
        exit(LP_EX_CONFIG);
    }
    if (opt.to_stdout) {
        S.stdout_is_file = fstat(STDOUT_FILENO, &st) == 0 &&
                           S_ISREG(st.st_mode);
    } else {
        for (int i = 0; i < lp_layout_nfields(S.layout); i++) {
            S.field_idx[i] = lp_jkeys_add(&S.keys,
                                          lp_layout_field(S.layout, i));
            if (S.field_idx[i] < 0) {
                lp_error("--layout: too many fields");
                exit(LP_EX_CONFIG);
            }
        }
        if ((S.dirfd = lp_fs_root(opt.com.dir, 1, err)) < 0) {
            lp_error("--dir: %s", err);
            exit(LP_EX_CANTCREAT);
        }
        S.touched = calloc(opt.count, sizeof *S.touched);
    }
    S.ack = calloc(opt.count + 3, sizeof *S.ack);
    S.acklen = calloc(opt.count + 3, sizeof *S.acklen);
    if (S.ack == NULL || S.acklen == NULL ||
        (!opt.to_stdout && S.touched == NULL)) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    if ((S.r = lp_common_redis(&opt.com, err)) == NULL) {
        lp_error("%s", err);
        exit(LP_EX_CONFIG);
    }
    /* the socket timeout must outlast BLOCK */
    lp_redis_set_timeout(S.r, opt.block + 10000);
}

/* Makes the batch durable: files or stdout, then the DLQ moves. */
static int finish_batch(char *err)
{
    if (opt.to_stdout) {
        if (lp_fs_write_all(STDOUT_FILENO, S.line.p, S.line.len) < 0) {
            if (errno == EPIPE)
                exit(LP_EX_OK);         /* reader gone: like head(1) */
            lp_error("stdout: %s", strerror(errno));
            exit(LP_EX_IOERR);
        }
        if (S.stdout_is_file && S.line.len && fdatasync(STDOUT_FILENO) < 0) {
            lp_error("stdout: fsync: %s", strerror(errno));
            exit(LP_EX_IOERR);
        }
        S.line.len = 0;
    } else {
        sync_files();
    }
    return send_dlq(err);
}

/* Frees what setup() made, so leak checkers see a clean exit. */
static void teardown(void)
{
    for (size_t b = 0; b < LP_HASH; b++)
        while (S.bucket[b])
            close_out(S.bucket[b]);
    if (S.dirfd > 0)
        close(S.dirfd);
    lp_redis_free(S.r);
    lp_jq_free(S.where);
    lp_layout_free(S.layout);
    lp_buf_free(&S.scratch);
    lp_buf_free(&S.obj);
    lp_buf_free(&S.line);
    free(S.dlq);
    free(S.touched);
    free(S.ack);
    free(S.acklen);
}

/*
 * Stopping: acknowledge the batch in hand without reading more. A stop
 * signal during a blocking read shuts the socket down, possibly just after
 * the reply of that read arrived: connect again rather than leave a
 * written batch pending (it would be written twice at the next start).
 */
static void final_ack(void)
{
    char err[LP_ERRLEN];
    struct lp_reply *a;

    if (S.nack == 0)
        return;
    if (!lp_redis_connected(S.r) && lp_redis_connect(S.r, err) < 0) {
        lp_warn("%s (the last batch stays pending and is delivered again "
                "at the next start)", err);
        return;
    }
    if (queue_ack(err) < 0 || lp_redis_reply(S.r, &a, err) < 0) {
        lp_warn("%s (the last batch stays pending and is delivered again "
                "at the next start)", err);
        return;
    }
    take_ack_reply(a);
    S.nack = 0;
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];
    struct lp_reply *held = NULL;   /* the batch whose IDs S.ack borrows */

    parse_args(argc, argv);
    lp_log_init("logpipe-drain", opt.com.log_format, opt.com.verbosity);
    lp_sig_init(1);
    setup();
    connect_redis();

    for (;;) {
        struct lp_reply *rep = NULL;
        const struct lp_reply *entries;
        size_t n;
        int64_t t0;

        if (lp_stop) {
            final_ack();
            break;
        }
        if (lp_hup) {
            lp_hup = 0;
            /* reopen every file on its next write */
            for (size_t b = 0; b < LP_HASH; b++)
                while (S.bucket[b])
                    close_out(S.bucket[b]);
        }
        if (request(err) < 0 || receive(&rep, err) < 0) {
            if (lp_stop) {
                final_ack();    /* S.nack is 0 if its XACK was answered */
                break;
            }
            lp_warn("%s", err);
            S.nack = 0;
            lp_reply_free(held);
            held = NULL;
            connect_redis();
            continue;
        }
        S.nack = 0;
        lp_reply_free(held);
        held = NULL;
        S.ndlq = 0;
        S.scratch.len = 0;

        if (lp_reply_type(rep) == LP_REPLY_ERROR) {
            char t[300];
            lp_reply_text(rep, t, sizeof t);
            lp_reply_free(rep);
            if (strncmp(t, "NOGROUP", 7) == 0) {
                lp_warn("group %s is gone (Redis restarted without "
                        "persistence, or the key was deleted): creating it "
                        "again at the start of the stream", opt.com.group);
                poll(NULL, 0, 500);     /* NOGROUP comes back at once */
                connect_redis();
                continue;
            }
            lp_error("XREADGROUP: %s", t);
            if (strncmp(t, "WRONGTYPE", 9) == 0 ||
                strncmp(t, "NOPERM", 6) == 0)
                exit(LP_EX_CONFIG);
            poll(NULL, 0, 1000);
            continue;
        }
        if (lp_reply_entries(rep, 0, &entries, err) < 0) {
            lp_error("%s", err);
            exit(LP_EX_SOFTWARE);
        }
        if (entries == NULL) {
            lp_reply_free(rep);
            if (S.pending) {
                S.pending = 0;          /* our backlog is done: new ones */
                continue;
            }
            if (opt.once)
                break;
            continue;
        }
        t0 = lp_mono_us();
        S.batchno++;
        n = lp_reply_len(entries);
        for (size_t i = 0; i < n; i++) {
            struct lp_entry e;
            if (lp_entry_get(entries, i, &e, err) < 0) {
                lp_error("%s", err);
                exit(LP_EX_SOFTWARE);
            }
            one_entry(&e);
            if (S.pending && i == n - 1)
                snprintf(S.after, sizeof S.after, "%.*s", (int)e.idlen, e.id);
        }
        if (finish_batch(err) < 0) {
            /* the DLQ moves failed midway: what was not moved stays
             * pending; the files are durable, so acknowledge nothing and
             * let redelivery sort it out */
            lp_warn("%s", err);
            lp_reply_free(rep);
            S.nack = 0;
            connect_redis();
            continue;
        }
        if (lp_log_verbosity() >= 2) {
            struct lp_entry a, b;
            lp_entry_get(entries, 0, &a, err);
            lp_entry_get(entries, n - 1, &b, err);
            lp_debug("batch %.*s..%.*s: %zu entries, %zu to the DLQ, in "
                     "%.1fms", (int)a.idlen, a.id, (int)b.idlen, b.id, n,
                     S.ndlq, (double)(lp_mono_us() - t0) / 1000.0);
        }
        held = rep;             /* acknowledged with the next request */
    }
    lp_reply_free(held);
    lp_info("%" PRIu64 " entries read, %" PRIu64 " archived, %" PRIu64
            " to the DLQ, %" PRIu64 " filtered out, %" PRIu64 " deleted",
            S.n_read, S.n_written, S.n_dlq, S.n_filtered, S.n_deleted);
    teardown();
    return LP_EX_OK;
}
