/* lp_replay.c -- the replay engine: archives and the stream back to NDJSON */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_archive.h"
#include "lp_buf.h"
#include "lp_event.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_gz.h"
#include "lp_jq.h"
#include "lp_json.h"
#include "lp_layout.h"
#include "lp_line.h"
#include "lp_readahead.h"
#include "lp_replay.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_shards.h"
#include "lp_time.h"
#include "lp_tree.h"
#include "lp_wal.h"

/*
 * Sources: plain NDJSON (.jsonl, stdin), gzip files (every member, past
 * damage), WAL segments, or the stream itself (XRANGE pages). Each line is
 * checked (strict JSON, one pass), its time taken from the time member or
 * its _id, filtered (--since/--until, --where, --dedup) and printed as it
 * is, or without its _id (--strip-id).
 *
 * Directories are walked in day order (the day read from file names), and
 * whole files are skipped by their day when --since/--until allow. --sort
 * merges the files of a day by event time (each file's own order kept).
 *
 * A failure that ends the run (out_fd cannot be written, Redis, out of
 * memory) is noted in rp->fatal where it happens; from then on nothing is
 * read, judged, said or written, and the loops end at their next turn.
 */

enum { K_PLAIN, K_GZ, K_WAL, K_REDIS };

struct src {
    int kind;
    char *name;                 /* for messages */
    int has_day;                /* 0: its name has no day */
    int64_t day;
    int fd;
    int open;
    struct lp_lines lines;
    struct lp_gzr *gz;
    int gz_end;
    char *map;                  /* WAL: the whole segment */
    size_t maplen, pos;
    uint64_t recno;
    struct lp_buf page;         /* K_REDIS: lines of an XRANGE page */
    size_t page_pos;
    char next_id[64];
    int redis_done;
    struct lp_redis *r;         /* K_REDIS: its connection, borrowed */
    const char *key;            /* ... its stream, borrowed */
    char pfx[16];               /* ... its entries' _id: "<i>-" a shard's */
    int shard;                  /* ... shard i's, -1: the stream's */
    uint64_t bad;               /* damaged lines */
    int listed;                 /* found in a directory walk */
    int gz_listed;              /* ... and its .gz too */
    struct lp_buf cur;          /* --sort: the line waiting its turn */
    int64_t cur_t;
    int has;
    int done;
};

#define OUT_FLUSH (256 * 1024)  /* the output buffer is written at this */
#define OUT_DIRECT (64 * 1024)  /* a run of lines this long: from where
                                 * it is */
#define SORT_READ (64 * 1024)   /* --sort: one read of each merged file */
#define REDIS_PAGE 1000         /* entries of one XRANGE */

#define DEDUP_SLOTS (1u << 20)          /* per generation */
#define DEDUP_FILL (DEDUP_SLOTS / 2)

struct par;

struct lp_replay {
    /* read by the second thread while it judges lines: never written
     * during a run */
    struct lp_replay_conf c;
    struct lp_jkeys keys;
    int time_idx, id_idx;
    struct lp_jlimits lim;
    size_t dlq_len;
    char apart[64];             /* the writes below on other cache lines */

    /* the main thread's */
    struct lp_layout *layout;
    struct lp_jq *where;
    struct lp_buf out;
    struct src *v;
    size_t n, cap;
    struct lp_replay_result res;
    int fatal;                  /* the status a failure ended the run
                                 * with; 0: none */
    char err[LP_ERRLEN];        /* ... and why */
    int ran;
    /* --dedup: two generations of ID sets; a set is retired when full */
    uint64_t *gen[2];
    size_t gen_n[2];
    struct lp_readahead *ra;
    struct par *par;            /* the second thread; NULL: not yet */
};

/* 1 when a message of level is to be made: there is a notify, and for one
 * about a line (conf.take's levels) the caller's take allows it (and
 * counts it). Asked once per message, before anything of it is made. */
static int may_say(const struct lp_replay *rp, int level)
{
    if (rp->c.notify.fn == NULL)
        return 0;
    if (rp->c.take == NULL || (level != LP_REPLAY_SAY_DAMAGED &&
                               level != LP_REPLAY_SAY_GZ &&
                               level != LP_REPLAY_SAY_WHERE))
        return 1;
    return rp->c.take(rp->c.notify.ctx, level);
}

static void vsay_now(struct lp_replay *rp, int level, const char *fmt,
                     va_list ap) __attribute__((format(printf, 3, 0)));

/* Makes the message and says it: may_say allowed it. */
static void vsay_now(struct lp_replay *rp, int level, const char *fmt,
                     va_list ap)
{
    char msg[LP_NOTICELEN];

    vsnprintf(msg, sizeof msg, fmt, ap);
    rp->c.notify.fn(rp->c.notify.ctx, level, msg);
}

__attribute__((format(printf, 3, 4)))
static void say_now(struct lp_replay *rp, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay_now(rp, level, fmt, ap);
    va_end(ap);
}

/* Says a message through the notify, when may_say allows it. */
__attribute__((format(printf, 3, 4)))
static void say(struct lp_replay *rp, int level, const char *fmt, ...)
{
    va_list ap;

    if (!may_say(rp, level))
        return;
    va_start(ap, fmt);
    vsay_now(rp, level, fmt, ap);
    va_end(ap);
}

/* Ends the run with status, err as fmt says; the first failure stays. */
__attribute__((format(printf, 3, 4)))
static void fail(struct lp_replay *rp, int status, const char *fmt, ...)
{
    va_list ap;

    if (rp->fatal)
        return;
    rp->fatal = status;
    va_start(ap, fmt);
    vsnprintf(rp->err, sizeof rp->err, fmt, ap);
    va_end(ap);
}

static void out_of_memory(struct lp_replay *rp)
{
    fail(rp, LP_EX_SOFTWARE, "out of memory");
}

/* Counts a damage in s. */
static void damage(struct lp_replay *rp, struct src *s)
{
    rp->res.damaged++;
    s->bad++;
    if (rp->res.status == 0)
        rp->res.status = LP_EX_DATAERR;
}

static void write_out(struct lp_replay *rp, const char *p, size_t n)
{
    if (rp->fatal)
        return;
    if (lp_fs_write_all(rp->c.out_fd, p, n) < 0) {
        if (errno == EPIPE) {
            /* the reader has what it wanted (| head): leave quietly */
            rp->res.epipe = 1;
            fail(rp, LP_EX_IOERR, "%s", "");
            return;
        }
        fail(rp, LP_EX_IOERR, "%s: %s", rp->c.out_name, strerror(errno));
    }
}

static void flush_out(struct lp_replay *rp)
{
    if (rp->out.len == 0)
        return;
    write_out(rp, rp->out.p, rp->out.len);
    rp->out.len = 0;
}

/* Lines that are already in order with their newlines: a long run is
 * written from where it is, a short one joins the output buffer. */
static void out_span(struct lp_replay *rp, const char *p, size_t n)
{
    if (n >= OUT_DIRECT) {
        flush_out(rp);
        write_out(rp, p, n);
        return;
    }
    lp_buf_add(&rp->out, p, n);
    if (rp->out.len >= OUT_FLUSH)
        flush_out(rp);
}

/* ---- --dedup ------------------------------------------------------------ */

static uint64_t id_key(uint64_t ms, uint64_t seq, int shard)
{
    uint64_t k = ms * 0x9e3779b97f4a7c15ULL ^ (seq + 0x632be59bd9b4e019ULL);

    /* a shard's "<i>-<ms>-<seq>": another ID than "<ms>-<seq>" */
    if (shard >= 0)
        k ^= ((uint64_t)shard + 1) * 0xc2b2ae3d27d4eb4fULL;

    k ^= k >> 31;
    return k ? k : 1;           /* 0 marks an empty slot */
}

static int in_gen(const struct lp_replay *rp, int g, uint64_t k)
{
    const uint64_t *t = rp->gen[g];

    if (t == NULL)
        return 0;
    for (size_t i = k & (DEDUP_SLOTS - 1); t[i]; i = (i + 1) &
                                                  (DEDUP_SLOTS - 1))
        if (t[i] == k)
            return 1;
    return 0;
}

/* Has this ID been seen among the last ~half a million to a million?
 * Out of memory: 1, with the run ended. */
static int seen(struct lp_replay *rp, uint64_t ms, uint64_t seq, int shard)
{
    uint64_t k = id_key(ms, seq, shard);
    size_t i;

    if (in_gen(rp, 0, k) || in_gen(rp, 1, k))
        return 1;
    if (rp->gen[0] == NULL || rp->gen_n[0] >= DEDUP_FILL) {
        free(rp->gen[1]);
        rp->gen[1] = rp->gen[0];
        rp->gen_n[1] = rp->gen_n[0];
        if ((rp->gen[0] = calloc(DEDUP_SLOTS, sizeof *rp->gen[0])) == NULL) {
            out_of_memory(rp);
            return 1;
        }
        rp->gen_n[0] = 0;
    }
    for (i = k & (DEDUP_SLOTS - 1); rp->gen[0][i]; i = (i + 1) &
                                                     (DEDUP_SLOTS - 1))
        ;
    rp->gen[0][i] = k;
    rp->gen_n[0]++;
    return 0;
}

/* ---- one line ----------------------------------------------------------- */

enum { L_EMPTY, L_BAD, L_OUT, L_IN };

/*
 * The part of a line's fate that needs nothing but the line: trims *s, *n;
 * L_EMPTY (blank), L_BAD (not a JSON object: je says why), L_OUT (outside
 * --since/--until) or L_IN, with *t its time (INT64_MAX when it has none)
 * and, with --dedup, *has_id and the stream ID ("<ms>-<seq>", *shard -1,
 * or a sharded stream's "<i>-<ms>-<seq>", *shard i). Writes nothing in rp, so
 * a second thread can judge lines (see "checking on a second core").
 */
static int judge(const struct lp_replay *rp, const struct src *src,
                 const char **s, size_t *n, struct lp_jevent *ev,
                 struct lp_jerr *je, int64_t *t, int *has_id, uint64_t *ms,
                 uint64_t *seq, int *shard)
{
    char err[LP_ERRLEN];
    int has_t = 0;

    *has_id = 0;
    lp_json_trim(s, n);
    if (*n == 0)
        return L_EMPTY;
    if (lp_json_event(*s, *n, &rp->keys, &rp->lim, ev, je) < 0)
        return L_BAD;
    if (rp->time_idx >= 0)
        has_t = lp_event_time(*s, &ev->val[rp->time_idx], t, err) > 0;
    /* the ID: the time when the event has none, and --dedup's key */
    if (!has_t || rp->c.dedup) {
        const struct lp_jval *v = &ev->val[rp->id_idx];
        if (v->type == LP_JSTRING && !v->esc &&
            lp_shard_id_parse(*s + v->off + 1, v->len - 2, shard, ms,
                              seq) >= 0)
            *has_id = 1;
    }
    if (!has_t && *has_id) {
        *t = (int64_t)*ms;
        has_t = 1;
    }
    /* from the stream, XRANGE already chose by arrival (the entry IDs) */
    if ((rp->c.has_since || rp->c.has_until) && src->kind != K_REDIS) {
        if (!has_t || (rp->c.has_since && *t < rp->c.since) ||
            (rp->c.has_until && *t >= rp->c.until))
            return L_OUT;
    }
    if (!has_t)
        *t = INT64_MAX;
    return L_IN;
}

/* A line judged bad: counted, and said when the budget allows. je: why,
 * or NULL when the second thread judged s[0..n) and kept no message: it
 * is judged again then, only when the message is to be said. */
static void report_bad(struct lp_replay *rp, struct src *src,
                       uint64_t lineno, const struct lp_jerr *je,
                       const char *s, size_t n)
{
    struct lp_jevent ev;
    struct lp_jerr again;

    damage(rp, src);
    if (!may_say(rp, LP_REPLAY_SAY_DAMAGED))
        return;
    if (je == NULL) {
        lp_json_event(s, n, &rp->keys, &rp->lim, &ev, &again);
        je = &again;
    }
    say_now(rp, LP_REPLAY_SAY_DAMAGED, "%s: line %" PRIu64 ": %s%s",
            src->name, lineno, je->not_object ? "" : "invalid JSON: ",
            je->msg);
}

static void report_long(struct lp_replay *rp, struct src *s,
                        uint64_t lineno)
{
    damage(rp, s);
    say(rp, LP_REPLAY_SAY_DAMAGED, "%s: line %" PRIu64 ": longer than "
        "--max-line (%" PRIu64 " bytes)", s->name, lineno, rp->c.max_line);
}

/*
 * Checks and filters one line of src; when it passes, appends it (with a
 * newline) to dst and sets *t to its time. Returns 1 when it passed.
 */
static int take_line(struct lp_replay *rp, struct src *src, uint64_t lineno,
                     const char *s, size_t n, struct lp_buf *dst, int64_t *t)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN];
    uint64_t ms = 0, seq = 0;
    int has_id, r, shard = -1;

    r = judge(rp, src, &s, &n, &ev, &je, t, &has_id, &ms, &seq, &shard);
    if (r == L_EMPTY)
        return 0;
    rp->res.lines++;
    if (r == L_BAD) {
        report_bad(rp, src, lineno, &je, NULL, 0);
        return 0;
    }
    if (r == L_OUT)
        return 0;
    if (rp->where) {
        int m = lp_jq_match(rp->where, s, n, err);
        if (m < 0) {
            /* a failed run (lp_jq_status at the end): not printed */
            if (lp_jq_name_it(rp->where))
                say(rp, LP_REPLAY_SAY_WHERE, "%s: line %" PRIu64
                    ": --where: %s", src->name, lineno, err);
            return 0;
        }
        if (m == 0)
            return 0;
    }
    if (rp->c.dedup && has_id && seen(rp, ms, seq, shard))
        return 0;
    if (rp->c.strip_id && ev.nids) {
        size_t len = lp_json_cut_len(&ev, n);
        if (lp_buf_reserve(dst, len + 1) < 0) {
            out_of_memory(rp);
            return 0;
        }
        lp_json_cut_copy(&ev, s, n, dst->p + dst->len);
        dst->len += len;
    } else {
        lp_buf_add(dst, s, n);
    }
    lp_buf_addc(dst, '\n');
    rp->res.printed++;
    return 1;
}

/* ---- sources ------------------------------------------------------------ */

static int add_src(struct lp_replay *rp, int kind, const char *name,
                   int has_day, int64_t day)
{
    struct src *s;

    if (rp->n == rp->cap) {
        size_t cap = rp->cap ? rp->cap * 2 : 16;
        struct src *p = realloc(rp->v, cap * sizeof *p);
        if (p == NULL)
            return -1;
        rp->v = p;
        rp->cap = cap;
    }
    s = &rp->v[rp->n];
    memset(s, 0, sizeof *s);
    if ((s->name = strdup(name)) == NULL)
        return -1;
    rp->n++;
    rp->res.inputs = rp->n;
    s->kind = kind;
    s->has_day = has_day;
    s->day = day;
    s->fd = -1;
    return 0;
}

/* Starts the read-ahead over the plain files, in the order they are read
 * (advice only: nothing happens when it cannot). */
static void ra_start(struct lp_replay *rp)
{
    const char **names;
    size_t n = 0;

    if ((names = calloc(rp->n ? rp->n : 1, sizeof *names)) == NULL)
        return;
    for (size_t i = 0; i < rp->n; i++)
        if (rp->v[i].kind == K_PLAIN && strcmp(rp->v[i].name, "-") != 0)
            names[n++] = rp->v[i].name;
    rp->ra = lp_readahead_start(names, n);
    free(names);
}

/* n more bytes read from a plain file */
static void ra_read(struct lp_replay *rp, const struct src *s, long n)
{
    if (s->fd != STDIN_FILENO)
        lp_readahead_read(rp->ra, n);
}

/* Opens src for reading. Returns 0, or -1 after saying why (exit 66), or
 * with the run ended (out of memory). */
static int src_open(struct lp_replay *rp, struct src *s)
{
    struct stat st;

    s->open = 1;
    if (s->kind == K_REDIS)
        return 0;
    if (strcmp(s->name, "-") == 0) {
        s->fd = STDIN_FILENO;
    } else if ((s->fd = open(s->name, O_RDONLY | O_CLOEXEC)) < 0) {
        size_t n = strlen(s->name);
        if (errno == ENOENT && s->listed && n > 6 &&
            strcmp(s->name + n - 6, ".jsonl") == 0) {
            /* compressed by a rotate since we listed the tree: its events
             * are in the .gz now (read already when it was listed) */
            char gz[8200];
            snprintf(gz, sizeof gz, "%s.gz", s->name);
            if (!s->gz_listed &&
                (s->fd = open(gz, O_RDONLY | O_CLOEXEC)) >= 0) {
                s->kind = K_GZ;
            } else {
                say(rp, LP_REPLAY_SAY_WARN, "%s was rotated away while "
                    "reading the tree: its events may be missing; run "
                    "again", s->name);
                s->done = 1;
                return -1;
            }
        } else {
            say(rp, LP_REPLAY_SAY_ERROR, "%s: %s", s->name, strerror(errno));
            rp->res.status = LP_EX_NOINPUT;
            s->done = 1;
            return -1;
        }
    }
    if (s->kind == K_WAL) {
        if (fstat(s->fd, &st) < 0 || st.st_size == 0 ||
            (s->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
                           s->fd, 0)) == MAP_FAILED) {
            s->map = NULL;
            if (st.st_size) {
                say(rp, LP_REPLAY_SAY_ERROR, "%s: %s", s->name,
                    strerror(errno));
                rp->res.status = LP_EX_IOERR;
            }
            s->done = 1;
            return 0;
        }
        s->maplen = (size_t)st.st_size;
        return 0;
    }
    if (lp_lines_init(&s->lines, s->fd, rp->c.max_line) < 0) {
        out_of_memory(rp);
        s->done = 1;
        return -1;
    }
    if (rp->c.sort)
        lp_lines_read_size(&s->lines, SORT_READ);
    if (s->kind == K_PLAIN && s->fd != STDIN_FILENO)
        posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (s->kind == K_GZ && (s->gz = lp_gzr_new(s->fd)) == NULL) {
        out_of_memory(rp);
        s->done = 1;
        return -1;
    }
    return 0;
}

/* After the last line of s is out: was it damaged? Not at src_close:
 * the lines of s may still be on their way (run_par). */
static void src_summary(struct lp_replay *rp, struct src *s)
{
    if (s->bad)
        rp->res.damaged_files++;
    s->bad = 0;
}

static void src_close(struct src *s)
{
    if (s->gz)
        lp_gzr_free(s->gz);
    s->gz = NULL;
    if (s->map)
        munmap(s->map, s->maplen);
    s->map = NULL;
    if (s->kind == K_PLAIN || s->kind == K_GZ)
        lp_lines_free(&s->lines);
    if (s->fd > STDIN_FILENO)
        close(s->fd);
    s->fd = -1;
    lp_buf_free(&s->cur);
    lp_buf_free(&s->page);
    s->done = 1;
}

/* Fills the line buffer of a gzip source (with the run ended when out of
 * memory). */
static void gz_fill(struct lp_replay *rp, struct src *s)
{
    char msg[300], *p;
    size_t cap, got;
    int rc;

    if (s->gz_end)
        return;
    if (lp_lines_space(&s->lines, &p, &cap) < 0) {
        out_of_memory(rp);
        return;
    }
    rc = lp_gzr_read(s->gz, p, cap, &got, msg, sizeof msg);
    if (rc == LP_GZ_DATA) {
        lp_lines_commit(&s->lines, got);
        return;
    }
    if (rc == LP_GZ_DAMAGE) {
        /* the bytes before it may end in half a line: name that line */
        size_t cut = lp_lines_drop_partial(&s->lines);
        damage(rp, s);
        if (cut)
            say(rp, LP_REPLAY_SAY_GZ, "%s: line %" PRIu64 ": damaged gzip "
                "(%zu bytes dropped): %s", s->name, s->lines.lineno, cut,
                msg);
        else
            say(rp, LP_REPLAY_SAY_GZ, "%s: after line %" PRIu64 ": damaged "
                "gzip: %s", s->name, s->lines.lineno, msg);
        return;
    }
    if (rc == LP_GZ_ERR) {
        say(rp, LP_REPLAY_SAY_ERROR, "%s: read: %s", s->name,
            strerror(errno));
        rp->res.status = LP_EX_IOERR;
    }
    s->gz_end = 1;
    lp_lines_eof(&s->lines);
}

/* One XRANGE page of the stream into s->page, as archive lines. Returns
 * 0, or -1 at the end of the stream or with the run ended. */
static int redis_page(struct lp_replay *rp, struct src *s)
{
    char err[LP_ERRLEN], since[24], until[24], pid[LP_STREAM_IDLEN + 16];
    const char *from = NULL, *to = NULL;
    struct lp_stream_err re;
    struct lp_page pg;
    struct lp_buf obj = { 0 };
    struct lp_backoff bo = { 0 };
    int64_t moved_at = 0;
    int rc = -1;

    if (s->redis_done)
        return -1;
    if (s->next_id[0] != '\0') {
        from = s->next_id;      /* past it */
    } else if (rp->c.has_since) {
        snprintf(since, sizeof since, "%lld", (long long)rp->c.since);
        from = since;
    }
    if (rp->c.has_until) {
        snprintf(until, sizeof until, "%lld", (long long)(rp->c.until - 1));
        to = until;
    }
    if (rp->c.reroute && !lp_redis_connected(s->r) &&
        lp_redis_connect(s->r, err) < 0) {
        /* closed by a redirect on another shard's page: its route
         * goes where the map says now */
        flush_out(rp);
        fail(rp, LP_EX_UNAVAILABLE, "%s", err);
        return -1;
    }
    while (lp_stream_range(s->r, s->key, from, s->next_id[0] != '\0', to,
                           REDIS_PAGE, &pg, &re) < 0) {
        if (rp->c.reroute && lp_stream_redirected(&re)) {
            /* the slot moved: read the page again where it went */
            if (moved_at == 0)
                moved_at = lp_mono_ms();
            if (lp_mono_ms() - moved_at < rp->c.reroute_timeout &&
                rp->c.reroute(rp->c.reroute_ctx, s->shard, &s->r,
                              err) == 0) {
                say(rp, LP_REPLAY_SAY_INFO, "%s %s: %s: read again on %s",
                    re.cmd, s->key, re.msg, lp_redis_name(s->r));
                poll(NULL, 0, (int)lp_backoff_next(&bo));
                continue;
            }
        }
        if (re.code == LP_STREAM_EIO) {
            flush_out(rp);      /* what was chosen so far is printed */
            fail(rp, LP_EX_UNAVAILABLE, "%s: %s", re.cmd, re.msg);
            return -1;
        }
        flush_out(rp);          /* an earlier shard's, as above */
        fail(rp, LP_EX_CONFIG, "%s %s: %s", re.cmd, s->key, re.msg);
        return -1;
    }
    s->page.len = 0;
    s->page_pos = 0;
    if (pg.n == 0) {
        s->redis_done = 1;
        goto out;
    }
    for (size_t i = 0; i < pg.n; i++) {
        struct lp_entry e;
        struct lp_jevent ev;
        struct lp_jerr je;
        const char *d;
        size_t n;
        if (lp_entry_get(pg.entries, i, &e, err) < 0 || e.fields == NULL)
            continue;
        snprintf(s->next_id, sizeof s->next_id, "%.*s", (int)e.idlen, e.id);
        d = lp_entry_field(&e, rp->c.field, strlen(rp->c.field), &n);
        if (d == NULL) {
            /* another producer's entry: the object of its pairs */
            const char *f, *v;
            size_t fl, vl;
            long bad = 0;
            obj.len = 0;
            lp_buf_addc(&obj, '{');
            for (size_t k = 0; k < e.nfields; k++) {
                lp_entry_pair(&e, k, &f, &fl, &v, &vl);
                if (k)
                    lp_buf_addc(&obj, ',');
                bad += lp_buf_add_jstr(&obj, f, fl);
                lp_buf_addc(&obj, ':');
                bad += lp_buf_add_jstr(&obj, v, vl);
            }
            lp_buf_addc(&obj, '}');
            if (bad) {
                damage(rp, s);
                say(rp, LP_REPLAY_SAY_DAMAGED, "%s: entry %.*s: a field or "
                    "value is not valid UTF-8", s->name, (int)e.idlen, e.id);
                continue;
            }
            d = obj.p;
            n = obj.len;
        }
        lp_json_trim(&d, &n);
        /* the line drain would have written: its _id first, no other */
        if (lp_json_event(d, n, NULL, &rp->lim, &ev, &je) < 0) {
            damage(rp, s);
            say(rp, LP_REPLAY_SAY_DAMAGED, "%s: entry %.*s: %s%s", s->name,
                (int)e.idlen, e.id, je.not_object ? "" : "invalid JSON: ",
                je.msg);
            continue;
        }
        if (s->pfx[0]) {
            /* a shard's entry: "<i>-<ms>-<seq>", as the archive's */
            snprintf(pid, sizeof pid, "%s%.*s", s->pfx, (int)e.idlen, e.id);
            e.id = pid;
            e.idlen = strlen(pid);
        }
        if (lp_archive_format(&s->page, e.id, e.idlen, d, n, &ev) < 0) {
            out_of_memory(rp);
            goto out;
        }
    }
    rc = 0;
out:
    lp_buf_free(&obj);
    lp_page_free(&pg);
    return rc;
}

/*
 * One read(2) more into the lines of the plain file s (ahead: the read-ahead
 * is told). Returns 1, or 0 when the reading of s ends here: stopped by a
 * signal, or a read error said (exit 74); s is closed then.
 */
static int fill_plain(struct lp_replay *rp, struct src *s)
{
    long got = lp_lines_fill(&s->lines);

    ra_read(rp, s, got);
    if (got < 0 && errno == EINTR && lp_stop) {
        src_close(s);
        return 0;
    }
    if (got < 0 && errno != EINTR && errno != EAGAIN) {
        say(rp, LP_REPLAY_SAY_ERROR, "%s: read: %s", s->name,
            strerror(errno));
        rp->res.status = LP_EX_IOERR;
        src_close(s);
        return 0;
    }
    return 1;
}

/*
 * The next line of s: 1 with it, 2 for a line over --max-line (*line NULL,
 * *lineno its number: report_long when its turn comes), 0 at the end (or
 * when the run has ended).
 */
static int src_next(struct lp_replay *rp, struct src *s, const char **line,
                    size_t *len, uint64_t *lineno)
{
    struct lp_line ln;
    int rc;

    if (rp->fatal || (!s->open && src_open(rp, s) < 0))
        return 0;
    if (s->done)
        return 0;
    for (;;) {
        if (s->kind == K_WAL) {
            const char *rec, *key, *ev;
            size_t rl, kl, el;
            size_t before = s->pos;
            rc = lp_wal_decode(s->map, s->maplen, &s->pos, &rec, &rl);
            if (rc < 0) {
                damage(rp, s);
                say(rp, LP_REPLAY_SAY_DAMAGED, "%s: record %" PRIu64
                    " at byte %zu: damaged or cut short", s->name,
                    s->recno + 1, before);
            }
            if (rc <= 0) {
                src_close(s);
                return 0;
            }
            s->recno++;
            if (!lp_wal_event(rec, rl, &key, &kl, &ev, &el) ||
                (kl == rp->dlq_len && memcmp(key, rp->c.dlq, kl) == 0))
                continue;       /* a dead letter, not an event */
            *line = ev;
            *len = el;
            *lineno = s->recno;
            return 1;
        }
        if (s->kind == K_REDIS) {
            while (s->page_pos >= s->page.len) {
                if (lp_stop || redis_page(rp, s) < 0) {
                    src_close(s);
                    return 0;
                }
            }
            char *start = s->page.p + s->page_pos;
            char *nl = memchr(start, '\n', s->page.len - s->page_pos);
            *line = start;
            *len = (size_t)(nl - start);
            s->page_pos += *len + 1;
            *lineno = ++s->recno;
            return 1;
        }
        rc = lp_lines_next(&s->lines, &ln);
        if (rc == LP_LINE_OK) {
            *line = ln.p;
            *len = ln.len;
            *lineno = ln.lineno;
            return 1;
        }
        if (rc == LP_LINE_LONG) {
            if (!ln.first)
                continue;
            *line = NULL;       /* the caller reports it: report_long */
            *len = 0;
            *lineno = ln.lineno;
            return 2;
        }
        if (rc == LP_LINE_EOF) {
            src_close(s);
            return 0;
        }
        /* more input */
        if (s->kind == K_GZ) {
            gz_fill(rp, s);
            if (rp->fatal)
                return 0;
            continue;
        }
        if (!fill_plain(rp, s))
            return 0;
    }
}

/* ---- output orders ------------------------------------------------------ */

static void run_plain(struct lp_replay *rp, struct src *s)
{
    const char *line;
    size_t len;
    uint64_t lineno;
    int64_t t;
    int rc;

    while (!lp_stop && (rc = src_next(rp, s, &line, &len, &lineno)) != 0) {
        if (rc == 2)
            report_long(rp, s, lineno);
        else
            take_line(rp, s, lineno, line, len, &rp->out, &t);
        if (rp->out.len >= OUT_FLUSH)
            flush_out(rp);
    }
    if (!s->done)
        src_close(s);
    src_summary(rp, s);
}

/* ---- checking on a second core ----------------------------------------- */

/*
 * Without --where, --dedup, --strip-id and --sort a line's fate is judge()'s
 * alone, and judging (JSON validation: two thirds of a replay's time) is
 * shared with a second thread. While the worker judges batch k, the main
 * thread reads batch k+1, then judges what is left of batch k with it (the
 * two take PAR_CHUNK lines at a time), hands over batch k+1, and writes
 * out batch k. A batch is the lines of one read, left where they were
 * read (lp_lines_swap). Output and messages keep the input's order: the
 * main thread writes both, from the fate noted for each line; the message
 * of a bad line is found again then (bad lines are rare).
 */
#define PAR_LINES 8192          /* a batch: one read's lines, at most */
#define PAR_CHUNK 128           /* lines taken at a time */

enum { L_LONG = L_IN + 1 };     /* over --max-line: not in the buffer */

struct pline {
    size_t off, len;            /* in the batch's buf; judge() trims */
    uint64_t lineno;
    int fate;
};

struct pbatch {
    char *buf;                  /* the line reader's, see lp_lines_swap */
    size_t cap, used;
    struct pline line[PAR_LINES];
    size_t n;
    atomic_size_t next;         /* the first line nobody took yet */
    struct src *src;
};

struct par {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pbatch *job;         /* the worker's, until it sets it NULL */
    struct pbatch *b[2];
    int quit;                   /* lp_replay_free: the worker ends */
    int up;                     /* 1: the worker runs; -1: it cannot */
    pthread_t t;
    const struct lp_replay *rp;
};

/* Judges chunks of b until none is left to take. */
static void judge_batch(const struct lp_replay *rp, struct pbatch *b)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    uint64_t ms, seq;
    int64_t t;
    int has_id, shard;
    size_t i, end;

    while ((i = atomic_fetch_add(&b->next, PAR_CHUNK)) < b->n) {
        end = i + PAR_CHUNK < b->n ? i + PAR_CHUNK : b->n;
        for (; i < end; i++) {
            struct pline *l = &b->line[i];
            const char *s = b->buf + l->off;
            size_t n = l->len;
            if (l->fate == L_LONG)
                continue;
            l->fate = judge(rp, b->src, &s, &n, &ev, &je, &t, &has_id, &ms,
                            &seq, &shard);
            l->off = (size_t)(s - b->buf);
            l->len = n;
        }
    }
}

static void *par_worker(void *arg)
{
    struct par *P = arg;

    pthread_mutex_lock(&P->mu);
    for (;;) {
        while (P->job == NULL && !P->quit)
            pthread_cond_wait(&P->cv, &P->mu);
        if (P->job == NULL)
            break;
        struct pbatch *b = P->job;
        pthread_mutex_unlock(&P->mu);
        judge_batch(P->rp, b);
        pthread_mutex_lock(&P->mu);
        P->job = NULL;
        pthread_cond_broadcast(&P->cv);
    }
    pthread_mutex_unlock(&P->mu);
    return NULL;
}

static void par_free(struct par *P)
{
    if (P == NULL)
        return;
    if (P->up > 0) {
        pthread_mutex_lock(&P->mu);
        P->quit = 1;
        pthread_cond_broadcast(&P->cv);
        pthread_mutex_unlock(&P->mu);
        pthread_join(P->t, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (P->b[i])
            free(P->b[i]->buf);
        free(P->b[i]);
    }
    pthread_cond_destroy(&P->cv);
    pthread_mutex_destroy(&P->mu);
    free(P);
}

/* Starts the worker, once; 0, or -1 when it cannot run (then one thread
 * does it all, as with --where). Signals stay with the main thread. */
static int par_up(struct lp_replay *rp)
{
    struct par *P = rp->par;
    sigset_t all, old;
    int rc;

    if (P)
        return P->up > 0 ? 0 : -1;
    if ((P = rp->par = calloc(1, sizeof *P)) == NULL)
        return -1;
    pthread_mutex_init(&P->mu, NULL);
    pthread_cond_init(&P->cv, NULL);
    P->rp = rp;
    P->up = -1;
    if ((P->b[0] = calloc(1, sizeof *P->b[0])) == NULL ||
        (P->b[1] = calloc(1, sizeof *P->b[1])) == NULL)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&P->t, NULL, par_worker, P);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        say(rp, LP_REPLAY_SAY_DEBUG, "no second thread (%s): judging lines "
            "on one", strerror(rc));
        return -1;
    }
    P->up = 1;
    return 0;
}

static void par_give(struct par *P, struct pbatch *b)
{
    atomic_store(&b->next, 0);
    pthread_mutex_lock(&P->mu);
    P->job = b;
    pthread_cond_broadcast(&P->cv);
    pthread_mutex_unlock(&P->mu);
}

static void par_wait(struct par *P)
{
    pthread_mutex_lock(&P->mu);
    while (P->job != NULL)
        pthread_cond_wait(&P->cv, &P->mu);
    pthread_mutex_unlock(&P->mu);
}

/* The lines read so far become b's, where they are: no copy. */
static void par_keep(struct lp_replay *rp, struct src *s, struct pbatch *b)
{
    if (lp_lines_swap(&s->lines, &b->buf, &b->cap, &b->used) < 0) {
        out_of_memory(rp);
        b->n = 0;
    }
}

/* The next lines of the plain file s into b: those of one read, as a rule
 * (none at the end of s). src_next's reading, without its copying. */
static void par_fill(struct lp_replay *rp, struct src *s, struct pbatch *b)
{
    struct lp_line ln;
    int rc;

    b->n = 0;
    b->used = 0;
    b->src = s;
    if (s->done)
        return;
    while (!lp_stop && b->n < PAR_LINES) {
        rc = lp_lines_next(&s->lines, &ln);
        if (rc == LP_LINE_OK || (rc == LP_LINE_LONG && ln.first)) {
            struct pline *l = &b->line[b->n++];
            l->lineno = ln.lineno;
            l->off = (size_t)(ln.p - s->lines.buf);
            l->len = ln.len;
            l->fate = rc == LP_LINE_OK ? L_EMPTY : L_LONG;
            continue;
        }
        if (rc == LP_LINE_LONG)
            continue;
        if (rc == LP_LINE_EOF) {
            par_keep(rp, s, b);
            src_close(s);
            return;
        }
        if (b->n > 0)
            break;              /* a read's lines: a batch */
        if (!fill_plain(rp, s))
            return;             /* with no line in b */
    }
    par_keep(rp, s, b);
}

/*
 * Writes out b as take_line would have, line by line. The buffer holds the
 * lines as they were read, so a run of lines that pass whole is one span
 * of it: a batch where every line passes goes out without a copy.
 */
static void par_emit(struct lp_replay *rp, struct pbatch *b)
{
    const char *span = NULL;
    size_t span_n = 0;

    for (size_t i = 0; i < b->n && !rp->fatal; i++) {
        const struct pline *l = &b->line[i];
        const char *s = b->buf + l->off;
        switch (l->fate) {
        case L_LONG:
            report_long(rp, b->src, l->lineno);
            break;
        case L_EMPTY:
            break;
        case L_BAD:
            rp->res.lines++;
            report_bad(rp, b->src, l->lineno, NULL, s, l->len);
            break;
        case L_OUT:
            rp->res.lines++;
            break;
        default:
            rp->res.lines++;
            rp->res.printed++;
            if (l->off + l->len < b->used && s[l->len] == '\n') {
                /* not trimmed at its end, and its LF follows */
                if (span != NULL && span + span_n == s) {
                    span_n += l->len + 1;
                    break;
                }
                if (span != NULL)
                    out_span(rp, span, span_n);
                span = s;
                span_n = l->len + 1;
                break;
            }
            if (span != NULL)
                out_span(rp, span, span_n);
            span = NULL;
            out_span(rp, s, l->len);    /* trimmed: its own newline */
            out_span(rp, "\n", 1);
        }
    }
    if (span != NULL)
        out_span(rp, span, span_n);
}

/* run_plain with the lines judged on two threads */
static void run_par(struct lp_replay *rp, struct src *s)
{
    struct par *P = rp->par;
    struct pbatch *cur = P->b[0], *judged = NULL;

    if (!s->open)
        src_open(rp, s);
    if (s->kind != K_PLAIN) {   /* compressed since it was listed */
        run_plain(rp, s);
        return;
    }

    for (;;) {
        par_fill(rp, s, cur);   /* while the worker judges the last */
        if (rp->fatal) {
            if (judged)
                par_wait(P);
            break;
        }
        if (judged) {
            judge_batch(rp, judged);    /* what the worker has not taken */
            par_wait(P);
        }
        if (cur->n > 0)
            par_give(P, cur);
        if (judged)
            par_emit(rp, judged);
        if (rp->fatal) {
            par_wait(P);
            break;
        }
        if (cur->n == 0)
            break;
        judged = cur;
        cur = cur == P->b[0] ? P->b[1] : P->b[0];
        if (s->done || lp_stop) {
            judge_batch(rp, judged);
            par_wait(P);
            par_emit(rp, judged);
            break;
        }
    }
    if (!s->done)
        src_close(s);
    src_summary(rp, s);
}

/* Loads the next passing line of s into s->cur; 0 when none is left. */
static int prime(struct lp_replay *rp, struct src *s)
{
    const char *line;
    size_t len;
    uint64_t lineno;
    int rc;

    s->cur.len = 0;
    s->has = 0;
    while ((rc = src_next(rp, s, &line, &len, &lineno)) != 0) {
        if (rc == 2)
            report_long(rp, s, lineno);
        else if (take_line(rp, s, lineno, line, len, &s->cur, &s->cur_t))
            return s->has = 1;
    }
    return 0;
}

/* The k-way merge of v[from..to) by event time (ties: file order). */
static void run_merge(struct lp_replay *rp, size_t from, size_t to)
{
    size_t k = to - from, *heap = malloc(k * sizeof *heap), hn = 0;
    const struct src *v = rp->v;

#define LESS(a, b) (v[a].cur_t < v[b].cur_t || \
                    (v[a].cur_t == v[b].cur_t && (a) < (b)))
    if (heap == NULL) {
        out_of_memory(rp);
        return;
    }
    for (size_t i = from; i < to; i++) {
        if (!prime(rp, &rp->v[i]))
            continue;
        /* sift up */
        size_t c = hn++;
        heap[c] = i;
        while (c > 0 && LESS(heap[c], heap[(c - 1) / 2])) {
            size_t t = heap[c];
            heap[c] = heap[(c - 1) / 2];
            heap[(c - 1) / 2] = t;
            c = (c - 1) / 2;
        }
    }
    while (hn > 0 && !lp_stop && !rp->fatal) {
        struct src *s = &rp->v[heap[0]];
        lp_buf_add(&rp->out, s->cur.p, s->cur.len);
        if (rp->out.len >= OUT_FLUSH)
            flush_out(rp);
        if (!prime(rp, s))
            heap[0] = heap[--hn];
        /* sift down */
        size_t c = 0;
        for (;;) {
            size_t l = 2 * c + 1, r = l + 1, m = c;
            if (l < hn && LESS(heap[l], heap[m]))
                m = l;
            if (r < hn && LESS(heap[r], heap[m]))
                m = r;
            if (m == c)
                break;
            size_t t = heap[c];
            heap[c] = heap[m];
            heap[m] = t;
            c = m;
        }
    }
#undef LESS
    free(heap);
}

/* ---- inputs ------------------------------------------------------------- */

/* Should a file of day be read at all? */
static int day_wanted(const struct lp_replay *rp, int has_day, int64_t day)
{
    if (!has_day)
        return 1;
    if (rp->c.has_since && (day + 1) * 86400000LL <= rp->c.since)
        return 0;
    if (rp->c.has_until && day * 86400000LL >= rp->c.until)
        return 0;
    return 1;
}

static int kind_of_file(const char *name)
{
    const char *base = strrchr(name, '/');
    size_t n = strlen(name);

    base = base ? base + 1 : name;
    if (n > 3 && strcmp(name + n - 3, ".gz") == 0)
        return K_GZ;
    if (strncmp(base, "wal-", 4) == 0 && n > 4 &&
        strcmp(name + n - 4, ".log") == 0)
        return K_WAL;
    return K_PLAIN;
}

static int no_memory(struct lp_replay *rp, char *err)
{
    rp->res.status = LP_EX_SOFTWARE;
    snprintf(err, LP_ERRLEN, "out of memory");
    return -1;
}

int lp_replay_add_path(struct lp_replay *rp, const char *path, char *err)
{
    struct stat st;
    struct lp_tfile *v;
    size_t n;
    int dfd, rc = 0;

    if (strcmp(path, "-") == 0)
        return add_src(rp, K_PLAIN, "-", 0, 0) < 0 ? no_memory(rp, err) : 0;
    if (stat(path, &st) < 0) {
        say(rp, LP_REPLAY_SAY_ERROR, "%s: %s", path, strerror(errno));
        rp->res.status = LP_EX_NOINPUT;
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        int64_t day = 0;
        int has_day = lp_tree_name_day(path, &day);
        if (day_wanted(rp, has_day, day) &&
            add_src(rp, kind_of_file(path), path, has_day, day) < 0)
            return no_memory(rp, err);
        return 0;
    }
    if ((dfd = lp_fs_root(path, 0, err)) < 0 ||
        lp_tree_walk(dfd, rp->layout, &v, &n, err) < 0) {
        say(rp, LP_REPLAY_SAY_ERROR, "%s: %s", path, err);
        rp->res.status = LP_EX_NOINPUT;
        if (dfd >= 0)
            close(dfd);
        err[0] = '\0';
        return 0;
    }
    close(dfd);
    if (n > 1)
        qsort(v, n, sizeof *v, lp_tfile_cmp);
    /* archives in day order, then WAL segments (newest events) by name */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < n; i++) {
            char full[8192];
            int kind = v[i].kind == LP_T_JSONL ? K_PLAIN :
                       v[i].kind == LP_T_GZ ? K_GZ :
                       v[i].kind == LP_T_WAL ? K_WAL : -1;
            if (kind < 0 || (pass == 0) == (kind == K_WAL) ||
                !day_wanted(rp, v[i].has_day, v[i].day))
                continue;
            snprintf(full, sizeof full, "%s/%s", path, v[i].rel);
            if (add_src(rp, kind, full, v[i].has_day, v[i].day) < 0) {
                rc = no_memory(rp, err);
                break;
            }
            struct src *s = &rp->v[rp->n - 1];
            s->listed = 1;
            if (kind == K_PLAIN) {
                /* was its .gz listed too? (then it comes just before) */
                size_t rl = strlen(v[i].rel);
                s->gz_listed = i > 0 && v[i - 1].kind == LP_T_GZ &&
                    strlen(v[i - 1].rel) == rl + 3 &&
                    strncmp(v[i - 1].rel, v[i].rel, rl) == 0;
            }
        }
    }
    lp_tree_free(v, n);
    return rc;
}

int lp_replay_add_stream(struct lp_replay *rp, struct lp_redis *r,
                         const char *key, char *err)
{
    return lp_replay_add_shard(rp, r, key, -1, err);
}

int lp_replay_add_shard(struct lp_replay *rp, struct lp_redis *r,
                        const char *key, int i, char *err)
{
    struct src *s;

    if (add_src(rp, K_REDIS, key, 0, 0) < 0)
        return no_memory(rp, err);
    s = &rp->v[rp->n - 1];
    s->r = r;
    s->key = key;
    s->shard = i;
    if (i >= 0)
        snprintf(s->pfx, sizeof s->pfx, "%d-", i);
    return 0;
}

/* ---- the engine --------------------------------------------------------- */

int lp_replay_new(const struct lp_replay_conf *c, struct lp_replay **rpp,
                  char *err)
{
    struct lp_replay *rp;
    char e[LP_ERRLEN];

    *rpp = NULL;
    if ((rp = calloc(1, sizeof *rp)) == NULL) {
        snprintf(err, LP_ERRLEN, "out of memory");
        return LP_EX_SOFTWARE;
    }
    rp->c = *c;
    if (lp_layout_new(c->layout, &rp->layout, e) < 0) {
        snprintf(err, LP_ERRLEN, "--layout: %s", e);
        goto config;
    }
    if (c->where && lp_jq_new(c->where, &rp->where, e) < 0) {
        snprintf(err, LP_ERRLEN, "--where: %s", e);
        goto config;
    }
    rp->time_idx = c->time_field[0] ? lp_jkeys_add(&rp->keys, c->time_field)
                                    : -1;
    rp->id_idx = lp_jkeys_add(&rp->keys, "_id");
    rp->lim.depth = 10000;      /* reading back: take what was archived */
    /* NULL: no key is SIZE_MAX long, no record is left out */
    rp->dlq_len = c->dlq ? strlen(c->dlq) : SIZE_MAX;
    *rpp = rp;
    return 0;
config:
    lp_replay_free(rp);
    return LP_EX_CONFIG;
}

int lp_replay_run(struct lp_replay *rp, char *err)
{
    if (rp->ran++) {
        snprintf(err, LP_ERRLEN, "lp_replay_run: run already");
        rp->res.status = LP_EX_SOFTWARE;
        return -1;
    }
    if (!rp->c.sort) {
        int par = !rp->where && !rp->c.dedup && !rp->c.strip_id;
        ra_start(rp);
        for (size_t i = 0; i < rp->n && !lp_stop && !rp->fatal; i++) {
            if (par && rp->v[i].kind == K_PLAIN && par_up(rp) == 0)
                run_par(rp, &rp->v[i]);
            else
                run_plain(rp, &rp->v[i]);
        }
    } else {
        /* merge the files of each day (unknown days: together, last) */
        size_t i = 0;
        while (i < rp->n && !lp_stop && !rp->fatal) {
            size_t j = i + 1;
            while (j < rp->n && rp->v[j].has_day == rp->v[i].has_day &&
                   (!rp->v[i].has_day || rp->v[j].day == rp->v[i].day))
                j++;
            run_merge(rp, i, j);
            for (size_t k = i; k < j; k++) {
                if (!rp->v[k].done)
                    src_close(&rp->v[k]);
                src_summary(rp, &rp->v[k]);
            }
            i = j;
        }
    }
    flush_out(rp);
    if (rp->fatal) {
        rp->res.status = rp->fatal;
        snprintf(err, LP_ERRLEN, "%s", rp->err);
        return -1;
    }
    return 0;
}

int lp_replay_where_outcome(struct lp_replay *rp, int verbosity, char *msg)
{
    int st = lp_jq_status(rp->where, verbosity, msg);

    if (st == 0)
        return 0;
    if (rp->res.status == LP_EX_OK || rp->res.status == LP_EX_DATAERR)
        rp->res.status = st == LP_EX_CONFIG ? st : LP_EX_DATAERR;
    return st;
}

const struct lp_replay_result *lp_replay_result(const struct lp_replay *rp)
{
    return &rp->res;
}

void lp_replay_free(struct lp_replay *rp)
{
    if (rp == NULL)
        return;
    /* the threads first: they look at the names and the batches */
    par_free(rp->par);
    lp_readahead_free(rp->ra);
    for (size_t i = 0; i < rp->n; i++) {
        if (!rp->v[i].done && rp->v[i].open)
            src_close(&rp->v[i]);
        lp_buf_free(&rp->v[i].cur);
        lp_buf_free(&rp->v[i].page);
        free(rp->v[i].name);
    }
    free(rp->v);
    free(rp->gen[0]);
    free(rp->gen[1]);
    lp_buf_free(&rp->out);
    lp_jq_free(rp->where);
    lp_layout_free(rp->layout);
    free(rp);
}
