/* logpipe-replay.c -- archives (and the stream) back to NDJSON */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
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
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_readahead.h"
#include "lp_redis.h"
#include "lp_sig.h"
#include "lp_stream.h"
#include "lp_time.h"
#include "lp_tree.h"
#include "lp_wal.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * Sources: plain NDJSON (.jsonl, stdin), gzip files (every member, past
 * damage), WAL segments, or the stream itself (--from-redis, XRANGE pages).
 * Each line is checked (strict JSON, one pass), its time taken from the
 * time member or its _id, filtered (--since/--until, --where, --dedup) and
 * printed as it is, or without its _id (--strip-id).
 *
 * Directories are walked in day order (the day read from file names), and
 * whole files are skipped by their day when --since/--until allow. --sort
 * merges the files of a day by event time (each file's own order kept).
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
    uint64_t bad;               /* damaged lines */
    int listed;                 /* found in a directory walk */
    int gz_listed;              /* ... and its .gz too */
    struct lp_buf cur;          /* --sort: the line waiting its turn */
    int64_t cur_t;
    int has;
    int done;
};

struct replay_opt {
    struct lp_common com;
    const char *layout;
    const char *time_field;
    const char *where;
    const char *field;
    int64_t since, until;
    const struct lp_optdef *has_since, *has_until;
    int64_t now;                /* of --since and --until: one for both */
    int strip_id, dedup, sort, from_redis;
    uint64_t max_line;
    char **paths;
    int npaths;
};

static struct replay_opt opt = {
    .layout = "{service}/%Y-%m-%d.jsonl",
    .time_field = "timestamp",
    .field = "data",
    .max_line = 16 << 20,
};

static int when_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err);

#define OPT struct replay_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_DIR,
    { "layout", 0, LP_STR(OPT, layout), "TEMPLATE",
      "the drains' layout, to read days from names" },
    { "since", 0, LP_CALL(OPT, since, when_opt), "WHEN",
      "events at or after WHEN (2026-11-21,\n"
      "RFC 3339, epoch seconds, or 2h ago as 2h)",
      LP_GIVEN(OPT, has_since) },
    { "until", 0, LP_CALL(OPT, until, when_opt), "WHEN",
      "events before WHEN", LP_GIVEN(OPT, has_until) },
    { "time-field", 0, LP_STR(OPT, time_field), "NAME",
      "member holding the event time (timestamp)" },
    { "where", 0, LP_STR(OPT, where), "JQ",
      "only events for which JQ is true" },
    { "strip-id", 0, LP_FLAG(OPT, strip_id), NULL,
      "print events without their _id" },
    { "dedup", 0, LP_FLAG(OPT, dedup), NULL, "drop an _id seen before" },
    { "sort", 0, LP_FLAG(OPT, sort), NULL,
      "merge the files of each day by event time" },
    { "from-redis", 0, LP_FLAG(OPT, from_redis), NULL,
      "read the stream (XRANGE), not files" },
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_DLQ, LP_LONG_PASSWORD_FILE,
    { "field", 0, LP_STR(OPT, field), "NAME",
      "--from-redis: entry field holding the event",
      .flags = LP_OF_NONEMPTY },
    { "max-line", 0, LP_SIZE(OPT, max_line), "SIZE",
      "longest line accepted (16M)", .min = 2, .max = 1 << 30 },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_note notes[] = {
    { "dir", "archive root when no PATH is given (./logs)", 0 },
    { "redis", "Redis URL, for --from-redis", 0 },
    { "dlq", "WAL records for this key are not events", 0 },
    { "verbose", "more messages: every damaged line", 0 },
    { "quiet", "only errors; of damaged lines only their count", 0 },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cli = {
    .name = "logpipe-replay",
    .synopsis =
"usage: logpipe-replay [options] [PATH...]\n"
"Print the events of archives (.jsonl, .jsonl.gz, WAL segments, '-' for\n"
"stdin; directories walked in day order, default --dir) or of the stream\n"
"(--from-redis) as NDJSON.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 65 damaged input (the rest was printed) or --where\n"
"failed on some events, 66 a PATH cannot be opened, 69 Redis unreachable,\n"
"74 I/O error, 78 bad --where (or one that failed on every event).\n"
"See logpipe-replay(1).\n",
    .opts = longopts,
    .notes = notes,
    .operands = 1,
};

static struct {
    struct lp_layout *layout;
    struct lp_jq *where;
    struct lp_jkeys keys;
    int time_idx, id_idx;
    struct lp_jlimits lim;
    struct lp_buf out;
    struct lp_redis *r;
    struct src *v;
    size_t n, cap;
    int exit_code;
    /* --dedup: two generations of ID sets; a set is retired when full */
    uint64_t *gen[2];
    size_t gen_n[2];
    uint64_t n_lines, n_out, n_bad, n_bad_files;
    /* per-line messages: a few said, the rest counted (lp_log.h) */
    struct lp_budget say_bad, say_gz;
    struct lp_readahead *ra;
} S;

#define DEDUP_SLOTS (1u << 20)          /* per generation */
#define DEDUP_FILL (DEDUP_SLOTS / 2)

/* Counts a damage in s; returns 1 when budget b lets it be named. */
static int damage(struct src *s, struct lp_budget *b)
{
    S.n_bad++;
    s->bad++;
    if (S.exit_code == 0)
        S.exit_code = LP_EX_DATAERR;
    return lp_budget_take(b);
}

/* Counts a damaged line of s; returns 1 when it is to be named. */
static int damaged_in(struct src *s)
{
    return damage(s, &S.say_bad);
}

static void write_out(const char *p, size_t n)
{
    if (lp_fs_write_all(STDOUT_FILENO, p, n) < 0) {
        if (errno == EPIPE) {
            /* the reader has what it wanted (| head): leave quietly */
            tool_sigpipe_exit();
        }
        lp_error("stdout: %s", strerror(errno));
        exit(LP_EX_IOERR);
    }
}

static void flush_out(void)
{
    if (S.out.len == 0)
        return;
    write_out(S.out.p, S.out.len);
    S.out.len = 0;
}

/* Lines that are already in order with their newlines: a long run is
 * written from where it is, a short one joins the output buffer. */
static void out_span(const char *p, size_t n)
{
    if (n >= 64 * 1024) {
        flush_out();
        write_out(p, n);
        return;
    }
    lp_buf_add(&S.out, p, n);
    if (S.out.len >= 256 * 1024)
        flush_out();
}

/* ---- --dedup ------------------------------------------------------------ */

static uint64_t id_key(uint64_t ms, uint64_t seq)
{
    uint64_t k = ms * 0x9e3779b97f4a7c15ULL ^ (seq + 0x632be59bd9b4e019ULL);

    k ^= k >> 31;
    return k ? k : 1;           /* 0 marks an empty slot */
}

static int in_gen(int g, uint64_t k)
{
    uint64_t *t = S.gen[g];

    if (t == NULL)
        return 0;
    for (size_t i = k & (DEDUP_SLOTS - 1); t[i]; i = (i + 1) &
                                                  (DEDUP_SLOTS - 1))
        if (t[i] == k)
            return 1;
    return 0;
}

/* Has this ID been seen among the last ~half a million to a million? */
static int seen(uint64_t ms, uint64_t seq)
{
    uint64_t k = id_key(ms, seq);
    size_t i;

    if (in_gen(0, k) || in_gen(1, k))
        return 1;
    if (S.gen[0] == NULL || S.gen_n[0] >= DEDUP_FILL) {
        free(S.gen[1]);
        S.gen[1] = S.gen[0];
        S.gen_n[1] = S.gen_n[0];
        if ((S.gen[0] = calloc(DEDUP_SLOTS, sizeof *S.gen[0])) == NULL) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
        S.gen_n[0] = 0;
    }
    for (i = k & (DEDUP_SLOTS - 1); S.gen[0][i]; i = (i + 1) &
                                                   (DEDUP_SLOTS - 1))
        ;
    S.gen[0][i] = k;
    S.gen_n[0]++;
    return 0;
}

/* ---- one line ----------------------------------------------------------- */

enum { L_EMPTY, L_BAD, L_OUT, L_IN };

/*
 * The part of a line's fate that needs nothing but the line: trims *s, *n;
 * L_EMPTY (blank), L_BAD (not a JSON object: je says why), L_OUT (outside
 * --since/--until) or L_IN, with *t its time (INT64_MAX when it has none)
 * and, with --dedup, *has_id and the stream ID. Touches no shared state,
 * so a second thread can judge lines (see "checking on a second core").
 */
static int judge(const struct src *src, const char **s, size_t *n,
                 struct lp_jevent *ev, struct lp_jerr *je, int64_t *t,
                 int *has_id, uint64_t *ms, uint64_t *seq)
{
    char err[LP_ERRLEN];
    int has_t = 0;

    *has_id = 0;
    lp_json_trim(s, n);
    if (*n == 0)
        return L_EMPTY;
    if (lp_json_event(*s, *n, &S.keys, &S.lim, ev, je) < 0)
        return L_BAD;
    if (S.time_idx >= 0)
        has_t = lp_event_time(*s, &ev->val[S.time_idx], t, err) > 0;
    /* the ID: the time when the event has none, and --dedup's key */
    if (!has_t || opt.dedup) {
        const struct lp_jval *v = &ev->val[S.id_idx];
        if (v->type == LP_JSTRING && !v->esc &&
            lp_stream_id_parse(*s + v->off + 1, v->len - 2, ms, seq) == 0)
            *has_id = 1;
    }
    if (!has_t && *has_id) {
        *t = (int64_t)*ms;
        has_t = 1;
    }
    /* from the stream, XRANGE already chose by arrival (the entry IDs) */
    if ((opt.has_since || opt.has_until) && src->kind != K_REDIS) {
        if (!has_t || (opt.has_since && *t < opt.since) ||
            (opt.has_until && *t >= opt.until))
            return L_OUT;
    }
    if (!has_t)
        *t = INT64_MAX;
    return L_IN;
}

static void report_bad(struct src *src, uint64_t lineno,
                       const struct lp_jerr *je)
{
    if (damaged_in(src))
        lp_error("%s: line %" PRIu64 ": %s%s", src->name, lineno,
                 je->not_object ? "" : "invalid JSON: ", je->msg);
}

/*
 * Checks and filters one line of src; when it passes, appends it (with a
 * newline) to dst and sets *t to its time. Returns 1 when it passed.
 */
static int take_line(struct src *src, uint64_t lineno, const char *s,
                     size_t n, struct lp_buf *dst, int64_t *t)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN];
    uint64_t ms = 0, seq = 0;
    int has_id, r;

    r = judge(src, &s, &n, &ev, &je, t, &has_id, &ms, &seq);
    if (r == L_EMPTY)
        return 0;
    S.n_lines++;
    if (r == L_BAD) {
        report_bad(src, lineno, &je);
        return 0;
    }
    if (r == L_OUT)
        return 0;
    if (S.where) {
        int m = lp_jq_match(S.where, s, n, err);
        if (m < 0) {
            /* a failed run (lp_jq_outcome at the end): not printed */
            if (lp_jq_name_it(S.where) && lp_log_verbosity() >= 0)
                lp_error("%s: line %" PRIu64 ": --where: %s", src->name,
                         lineno, err);
            return 0;
        }
        if (m == 0)
            return 0;
    }
    if (opt.dedup && has_id && seen(ms, seq))
        return 0;
    if (opt.strip_id && ev.nids) {
        size_t len = lp_json_cut_len(&ev, n);
        if (lp_buf_reserve(dst, len + 1) < 0) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
        lp_json_cut_copy(&ev, s, n, dst->p + dst->len);
        dst->len += len;
    } else {
        lp_buf_add(dst, s, n);
    }
    lp_buf_addc(dst, '\n');
    S.n_out++;
    return 1;
}

/* ---- sources ------------------------------------------------------------ */

static void add_src(int kind, const char *name, int has_day, int64_t day)
{
    struct src *s;

    if (S.n == S.cap) {
        size_t cap = S.cap ? S.cap * 2 : 16;
        struct src *p = realloc(S.v, cap * sizeof *p);
        if (p == NULL) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
        S.v = p;
        S.cap = cap;
    }
    s = &S.v[S.n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->name = strdup(name);
    s->has_day = has_day;
    s->day = day;
    s->fd = -1;
}

/* Starts the read-ahead (lp_readahead.h) over the plain files, in the
 * order they are read (advice only: nothing happens when it cannot). */
static void ra_start(void)
{
    const char **names;
    size_t n = 0;

    if ((names = calloc(S.n ? S.n : 1, sizeof *names)) == NULL)
        return;
    for (size_t i = 0; i < S.n; i++)
        if (S.v[i].kind == K_PLAIN && strcmp(S.v[i].name, "-") != 0)
            names[n++] = S.v[i].name;
    S.ra = lp_readahead_start(names, n);
    free(names);
}

/* n more bytes read from a plain file */
static void ra_read(const struct src *s, long n)
{
    if (s->fd != STDIN_FILENO)
        lp_readahead_read(S.ra, n);
}

/* Opens src for reading. Returns 0, or -1 after saying why (exit 66). */
static int src_open(struct src *s)
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
            if (!s->gz_listed && (s->fd = open(gz, O_RDONLY | O_CLOEXEC)) >= 0) {
                s->kind = K_GZ;
            } else {
                lp_warn("%s was rotated away while reading the tree: its "
                        "events may be missing; run again", s->name);
                s->done = 1;
                return -1;
            }
        } else {
            lp_error("%s: %s", s->name, strerror(errno));
            S.exit_code = LP_EX_NOINPUT;
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
                lp_error("%s: %s", s->name, strerror(errno));
                S.exit_code = LP_EX_IOERR;
            }
            s->done = 1;
            return 0;
        }
        s->maplen = (size_t)st.st_size;
        return 0;
    }
    if (lp_lines_init(&s->lines, s->fd, opt.max_line) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    if (opt.sort)
        lp_lines_read_size(&s->lines, 64 * 1024);
    if (s->kind == K_PLAIN && s->fd != STDIN_FILENO)
        posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (s->kind == K_GZ && (s->gz = lp_gzr_new(s->fd)) == NULL) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    return 0;
}

/* After the last line of s is out: was it damaged? Not at src_close:
 * the lines of s may still be on their way (run_par). */
static void src_summary(struct src *s)
{
    if (s->bad)
        S.n_bad_files++;
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

/* Fills the line buffer of a gzip source. Returns 0, or -1 at the end. */
static int gz_fill(struct src *s)
{
    char msg[300], *p;
    size_t cap, got;
    int rc;

    if (s->gz_end)
        return -1;
    if (lp_lines_space(&s->lines, &p, &cap) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    rc = lp_gzr_read(s->gz, p, cap, &got, msg, sizeof msg);
    if (rc == LP_GZ_DATA) {
        lp_lines_commit(&s->lines, got);
        return 0;
    }
    if (rc == LP_GZ_DAMAGE) {
        /* the bytes before it may end in half a line: name that line */
        size_t cut = lp_lines_drop_partial(&s->lines);
        /* a budget of its own: damaged lines cannot hide where */
        if (damage(s, &S.say_gz)) {
            if (cut)
                lp_error("%s: line %" PRIu64 ": damaged gzip (%zu bytes "
                         "dropped): %s", s->name, s->lines.lineno, cut, msg);
            else
                lp_error("%s: after line %" PRIu64 ": damaged gzip: %s",
                         s->name, s->lines.lineno, msg);
        }
        return 0;
    }
    if (rc == LP_GZ_ERR) {
        lp_error("%s: read: %s", s->name, strerror(errno));
        S.exit_code = LP_EX_IOERR;
    }
    s->gz_end = 1;
    lp_lines_eof(&s->lines);
    return 0;
}

/* One XRANGE page of the stream into s->page, as archive lines. */
static int redis_page(struct src *s)
{
    char err[LP_ERRLEN], since[24], until[24];
    const char *from = NULL, *to = NULL;
    struct lp_stream_err re;
    struct lp_page pg;
    struct lp_buf obj = { 0 };

    if (s->redis_done)
        return -1;
    if (s->next_id[0] != '\0') {
        from = s->next_id;      /* past it */
    } else if (opt.has_since) {
        snprintf(since, sizeof since, "%lld", (long long)opt.since);
        from = since;
    }
    if (opt.has_until) {
        snprintf(until, sizeof until, "%lld", (long long)(opt.until - 1));
        to = until;
    }
    if (lp_stream_range(S.r, opt.com.stream, from, s->next_id[0] != '\0', to,
                        1000, &pg, &re) < 0) {
        if (re.code == LP_STREAM_EIO) {
            flush_out();        /* what was chosen so far is printed */
            lp_error("%s: %s", re.cmd, re.msg);
            exit(LP_EX_UNAVAILABLE);
        }
        lp_error("%s %s: %s", re.cmd, opt.com.stream, re.msg);
        exit(LP_EX_CONFIG);
    }
    s->page.len = 0;
    s->page_pos = 0;
    if (pg.n == 0) {
        lp_page_free(&pg);
        s->redis_done = 1;
        return -1;
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
        d = lp_entry_field(&e, opt.field, strlen(opt.field), &n);
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
                if (damaged_in(s))
                    lp_error("%s: entry %.*s: a field or value is not valid "
                             "UTF-8", s->name, (int)e.idlen, e.id);
                continue;
            }
            d = obj.p;
            n = obj.len;
        }
        lp_json_trim(&d, &n);
        /* the line drain would have written: its _id first, no other */
        if (lp_json_event(d, n, NULL, &S.lim, &ev, &je) < 0) {
            if (damaged_in(s))
                lp_error("%s: entry %.*s: %s%s", s->name, (int)e.idlen,
                         e.id, je.not_object ? "" : "invalid JSON: ",
                         je.msg);
            continue;
        }
        if (lp_archive_format(&s->page, e.id, e.idlen, d, n, &ev) < 0) {
            lp_error("out of memory");
            exit(LP_EX_SOFTWARE);
        }
    }
    lp_buf_free(&obj);
    lp_page_free(&pg);
    return 0;
}

static void report_long(struct src *s, uint64_t lineno)
{
    if (damaged_in(s))
        lp_error("%s: line %" PRIu64 ": longer than --max-line (%" PRIu64
                 " bytes)", s->name, lineno, opt.max_line);
}

/*
 * One read(2) more into the lines of the plain file s (ahead: the read-ahead
 * is told). Returns 1, or 0 when the reading of s ends here: stopped by a
 * signal, or a read error said (exit 74); s is closed then.
 */
static int fill_plain(struct src *s)
{
    long got = lp_lines_fill(&s->lines);

    ra_read(s, got);
    if (got < 0 && errno == EINTR && lp_stop) {
        src_close(s);
        return 0;
    }
    if (got < 0 && errno != EINTR && errno != EAGAIN) {
        lp_error("%s: read: %s", s->name, strerror(errno));
        S.exit_code = LP_EX_IOERR;
        src_close(s);
        return 0;
    }
    return 1;
}

/*
 * The next line of s: 1 with it, 2 for a line over --max-line (*line NULL,
 * *lineno its number: report_long when its turn comes), 0 at the end.
 */
static int src_next(struct src *s, const char **line, size_t *len,
                    uint64_t *lineno)
{
    struct lp_line ln;
    int rc;

    if (!s->open && src_open(s) < 0)
        return 0;
    if (s->done)
        return 0;
    for (;;) {
        if (s->kind == K_WAL) {
            const char *rec, *key, *ev;
            size_t rl, kl, el;
            size_t before = s->pos;
            rc = lp_wal_decode(s->map, s->maplen, &s->pos, &rec, &rl);
            if (rc < 0 && damaged_in(s)) {
                lp_error("%s: record %" PRIu64 " at byte %zu: damaged or "
                         "cut short", s->name, s->recno + 1, before);
            }
            if (rc <= 0) {
                src_close(s);
                return 0;
            }
            s->recno++;
            if (!lp_wal_event(rec, rl, &key, &kl, &ev, &el) ||
                (kl == strlen(opt.com.dlq) &&
                 memcmp(key, opt.com.dlq, kl) == 0))
                continue;       /* a dead letter, not an event */
            *line = ev;
            *len = el;
            *lineno = s->recno;
            return 1;
        }
        if (s->kind == K_REDIS) {
            while (s->page_pos >= s->page.len) {
                if (lp_stop || redis_page(s) < 0) {
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
            gz_fill(s);
            continue;
        }
        if (!fill_plain(s))
            return 0;
    }
}

/* ---- output orders ------------------------------------------------------ */

static void run_plain(struct src *s)
{
    const char *line;
    size_t len;
    uint64_t lineno;
    int64_t t;
    int rc;

    while (!lp_stop && (rc = src_next(s, &line, &len, &lineno)) != 0) {
        if (rc == 2)
            report_long(s, lineno);
        else
            take_line(s, lineno, line, len, &S.out, &t);
        if (S.out.len >= 256 * 1024)
            flush_out();
    }
    if (!s->done)
        src_close(s);
    src_summary(s);
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

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pbatch *job;         /* the worker's, until it sets it NULL */
    struct pbatch *b[2];
    int up;                     /* 1: the worker runs; -1: it cannot */
} P = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
        { NULL, NULL }, 0 };

/* Judges chunks of b until none is left to take. */
static void judge_batch(struct pbatch *b)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    uint64_t ms, seq;
    int64_t t;
    int has_id;
    size_t i, end;

    while ((i = atomic_fetch_add(&b->next, PAR_CHUNK)) < b->n) {
        end = i + PAR_CHUNK < b->n ? i + PAR_CHUNK : b->n;
        for (; i < end; i++) {
            struct pline *l = &b->line[i];
            const char *s = b->buf + l->off;
            size_t n = l->len;
            if (l->fate == L_LONG)
                continue;
            l->fate = judge(b->src, &s, &n, &ev, &je, &t, &has_id, &ms,
                            &seq);
            l->off = (size_t)(s - b->buf);
            l->len = n;
        }
    }
}

static void *par_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&P.mu);
    for (;;) {
        while (P.job == NULL)
            pthread_cond_wait(&P.cv, &P.mu);
        struct pbatch *b = P.job;
        pthread_mutex_unlock(&P.mu);
        judge_batch(b);
        pthread_mutex_lock(&P.mu);
        P.job = NULL;
        pthread_cond_broadcast(&P.cv);
    }
    return NULL;
}

/* Starts the worker, once; 0, or -1 when it cannot run (then one thread
 * does it all, as with --where). Signals stay with the main thread. */
static int par_up(void)
{
    sigset_t all, old;
    pthread_t t;
    int rc;

    if (P.up)
        return P.up > 0 ? 0 : -1;
    P.up = -1;
    if ((P.b[0] = calloc(1, sizeof *P.b[0])) == NULL ||
        (P.b[1] = calloc(1, sizeof *P.b[1])) == NULL)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&t, NULL, par_worker, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        lp_debug("no second thread (%s): judging lines on one",
                 strerror(rc));
        return -1;
    }
    pthread_detach(t);
    P.up = 1;
    return 0;
}

static void par_give(struct pbatch *b)
{
    atomic_store(&b->next, 0);
    pthread_mutex_lock(&P.mu);
    P.job = b;
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
}

static void par_wait(void)
{
    pthread_mutex_lock(&P.mu);
    while (P.job != NULL)
        pthread_cond_wait(&P.cv, &P.mu);
    pthread_mutex_unlock(&P.mu);
}

/* The lines read so far become b's, where they are: no copy. */
static void par_keep(struct src *s, struct pbatch *b)
{
    if (lp_lines_swap(&s->lines, &b->buf, &b->cap, &b->used) < 0) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
}

/* The next lines of the plain file s into b: those of one read, as a rule
 * (none at the end of s). src_next's reading, without its copying. */
static void par_fill(struct src *s, struct pbatch *b)
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
            par_keep(s, b);
            src_close(s);
            return;
        }
        if (b->n > 0)
            break;              /* a read's lines: a batch */
        if (!fill_plain(s))
            return;             /* with no line in b */
    }
    par_keep(s, b);
}

/*
 * Writes out b as take_line would have, line by line. The buffer holds the
 * lines as they were read, so a run of lines that pass whole is one span
 * of it: a batch where every line passes goes out without a copy.
 */
static void par_emit(struct pbatch *b)
{
    struct lp_jevent ev;
    struct lp_jerr je;
    const char *span = NULL;
    size_t span_n = 0;

    for (size_t i = 0; i < b->n; i++) {
        const struct pline *l = &b->line[i];
        const char *s = b->buf + l->off;
        switch (l->fate) {
        case L_LONG:
            report_long(b->src, l->lineno);
            break;
        case L_EMPTY:
            break;
        case L_BAD:
            S.n_lines++;
            lp_json_event(s, l->len, &S.keys, &S.lim, &ev, &je);
            report_bad(b->src, l->lineno, &je);
            break;
        case L_OUT:
            S.n_lines++;
            break;
        default:
            S.n_lines++;
            S.n_out++;
            if (l->off + l->len < b->used && s[l->len] == '\n') {
                /* not trimmed at its end, and its LF follows */
                if (span != NULL && span + span_n == s) {
                    span_n += l->len + 1;
                    break;
                }
                if (span != NULL)
                    out_span(span, span_n);
                span = s;
                span_n = l->len + 1;
                break;
            }
            if (span != NULL)
                out_span(span, span_n);
            span = NULL;
            out_span(s, l->len);        /* trimmed: its own newline */
            out_span("\n", 1);
        }
    }
    if (span != NULL)
        out_span(span, span_n);
}

/* run_plain with the lines judged on two threads */
static void run_par(struct src *s)
{
    struct pbatch *cur = P.b[0], *judged = NULL;

    if (!s->open)
        src_open(s);
    if (s->kind != K_PLAIN) {   /* compressed since it was listed */
        run_plain(s);
        return;
    }

    for (;;) {
        par_fill(s, cur);       /* while the worker judges the last */
        if (judged) {
            judge_batch(judged);        /* what the worker has not taken */
            par_wait();
        }
        if (cur->n > 0)
            par_give(cur);
        if (judged)
            par_emit(judged);
        if (cur->n == 0)
            break;
        judged = cur;
        cur = cur == P.b[0] ? P.b[1] : P.b[0];
        if (s->done || lp_stop) {
            judge_batch(judged);
            par_wait();
            par_emit(judged);
            break;
        }
    }
    if (!s->done)
        src_close(s);
    src_summary(s);
}

/* Loads the next passing line of s into s->cur; 0 when none is left. */
static int prime(struct src *s)
{
    const char *line;
    size_t len;
    uint64_t lineno;
    int rc;

    s->cur.len = 0;
    s->has = 0;
    while ((rc = src_next(s, &line, &len, &lineno)) != 0) {
        if (rc == 2)
            report_long(s, lineno);
        else if (take_line(s, lineno, line, len, &s->cur, &s->cur_t))
            return s->has = 1;
    }
    return 0;
}

/* The k-way merge of v[from..to) by event time (ties: file order). */
static void run_merge(size_t from, size_t to)
{
    size_t k = to - from, *heap = malloc(k * sizeof *heap), hn = 0;

#define LESS(a, b) (S.v[a].cur_t < S.v[b].cur_t || \
                    (S.v[a].cur_t == S.v[b].cur_t && (a) < (b)))
    if (heap == NULL) {
        lp_error("out of memory");
        exit(LP_EX_SOFTWARE);
    }
    for (size_t i = from; i < to; i++) {
        if (!prime(&S.v[i]))
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
    while (hn > 0 && !lp_stop) {
        struct src *s = &S.v[heap[0]];
        lp_buf_add(&S.out, s->cur.p, s->cur.len);
        if (S.out.len >= 256 * 1024)
            flush_out();
        if (!prime(s))
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
static int day_wanted(int has_day, int64_t day)
{
    if (!has_day)
        return 1;
    if (opt.has_since && (day + 1) * 86400000LL <= opt.since)
        return 0;
    if (opt.has_until && day * 86400000LL >= opt.until)
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

/* Adds the inputs of one PATH: a file, '-', or a directory's files in
 * day order. */
static void add_path(const char *path)
{
    char err[LP_ERRLEN];
    struct stat st;

    if (strcmp(path, "-") == 0) {
        add_src(K_PLAIN, "-", 0, 0);
        return;
    }
    if (stat(path, &st) < 0) {
        lp_error("%s: %s", path, strerror(errno));
        S.exit_code = LP_EX_NOINPUT;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        int64_t day = 0;
        int has_day = lp_tree_name_day(path, &day);
        if (day_wanted(has_day, day))
            add_src(kind_of_file(path), path, has_day, day);
        return;
    }
    int dfd = lp_fs_root(path, 0, err);
    struct lp_tfile *v;
    size_t n;
    if (dfd < 0 || lp_tree_walk(dfd, S.layout, &v, &n, err) < 0) {
        lp_error("%s: %s", path, err);
        S.exit_code = LP_EX_NOINPUT;
        if (dfd >= 0)
            close(dfd);
        return;
    }
    close(dfd);
    if (n > 1)
        qsort(v, n, sizeof *v, lp_tfile_cmp);
    /* archives in day order, then WAL segments (newest events) by name */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            char full[8192];
            int kind = v[i].kind == LP_T_JSONL ? K_PLAIN :
                       v[i].kind == LP_T_GZ ? K_GZ :
                       v[i].kind == LP_T_WAL ? K_WAL : -1;
            if (kind < 0 || (pass == 0) == (kind == K_WAL) ||
                !day_wanted(v[i].has_day, v[i].day))
                continue;
            snprintf(full, sizeof full, "%s/%s", path, v[i].rel);
            add_src(kind, full, v[i].has_day, v[i].day);
            S.v[S.n - 1].listed = 1;
            if (kind == K_PLAIN) {
                /* was its .gz listed too? (then it comes just before) */
                size_t rl = strlen(v[i].rel);
                S.v[S.n - 1].gz_listed = i > 0 && v[i - 1].kind == LP_T_GZ &&
                    strlen(v[i - 1].rel) == rl + 3 &&
                    strncmp(v[i - 1].rel, v[i].rel, rl) == 0;
            }
        }
    }
    lp_tree_free(v, n);
}

/* ---- main --------------------------------------------------------------- */

static int when_opt(const struct lp_optdef *o, void *base, char *arg,
                    char *err)
{
    struct replay_opt *r = base;

    if (r->now == 0)
        r->now = lp_now_ms();
    return lp_parse_when(arg, r->now, (int64_t *)((char *)base + o->off),
                         err);
}

static void parse_args(int argc, char **argv)
{
    int i = tool_opt_parse(&cli, argc, argv, &opt, &opt.com);

    opt.paths = argv + i;
    opt.npaths = argc - i;
    if (opt.from_redis && opt.npaths)
        tool_opt_error(&cli, "--from-redis reads the stream, not PATHs");
    if (opt.has_since && opt.has_until && opt.until <= opt.since)
        tool_opt_error(&cli, "--until is not after --since");
}

/* --where failed at run time: the count, and 65, or 78 when it failed
 * on every event it ran on; a worse status (66, 69, 74) stays. */
static void where_outcome(void)
{
    char msg[LP_ERRLEN];
    int st = lp_jq_outcome(S.where, msg);

    if (st == 0)
        return;
    lp_error("--where %s: they were not printed", msg);
    if (S.exit_code == LP_EX_OK || S.exit_code == LP_EX_DATAERR)
        S.exit_code = st == LP_EX_CONFIG ? st : LP_EX_DATAERR;
}

/* --metrics, at exit whatever the status; a file that cannot be written
 * is said and changes nothing else. */
static void write_metrics(void)
{
    char err[LP_ERRLEN];
    struct lp_metrics *m;

    if (opt.com.metrics == NULL)
        return;
    m = lp_metrics_new(&lp_log_notify);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"printed\"",
                             "Lines read, by what became of them."),
                  (double)S.n_out);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"damaged\"", ""), (double)S.n_bad);
    lp_metric_set(lp_counter(m, "logpipe_replay_lines_total",
                             "result=\"filtered\"", ""),
                  (double)(S.n_lines > S.n_out + S.n_bad ?
                           S.n_lines - S.n_out - S.n_bad : 0));
    lp_metric_set(lp_counter(m, "logpipe_replay_files_total", "",
                             "Inputs read."), (double)S.n);
    if (lp_metrics_write(m, opt.com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

int main(int argc, char **argv)
{
    char err[LP_ERRLEN];

    parse_args(argc, argv);
    lp_log_init("logpipe-replay", opt.com.log_format, opt.com.verbosity);
    lp_budget_init(&S.say_bad, LP_LEVEL_ERROR, "damaged lines");
    lp_budget_init(&S.say_gz, LP_LEVEL_ERROR, "damaged gzip members");
    lp_sig_init(0);
    tool_at_exit(write_metrics);
    if (lp_layout_new(opt.layout, &S.layout, err) < 0) {
        lp_error("--layout: %s", err);
        return LP_EX_CONFIG;
    }
    if (opt.where && lp_jq_new(opt.where, &S.where, err) < 0) {
        lp_error("--where: %s", err);
        return LP_EX_CONFIG;
    }
    S.time_idx = opt.time_field[0] ? lp_jkeys_add(&S.keys, opt.time_field)
                                   : -1;
    S.id_idx = lp_jkeys_add(&S.keys, "_id");
    S.lim.depth = 10000;        /* reading back: take what was archived */

    if (opt.from_redis) {
        if ((S.r = tool_redis(&opt.com, err)) == NULL) {
            lp_error("%s", err);
            return LP_EX_CONFIG;
        }
        int rc = lp_redis_connect(S.r, err);
        if (rc < 0) {
            lp_error("%s", err);
            return rc == LP_REDIS_EAUTH ? LP_EX_CONFIG : LP_EX_UNAVAILABLE;
        }
        add_src(K_REDIS, opt.com.stream, 0, 0);
    } else if (opt.npaths == 0) {
        add_path(opt.com.dir);
    } else {
        for (int i = 0; i < opt.npaths; i++)
            add_path(opt.paths[i]);
    }

    if (!opt.sort) {
        int par = !S.where && !opt.dedup && !opt.strip_id;
        ra_start();
        for (size_t i = 0; i < S.n && !lp_stop; i++) {
            if (par && S.v[i].kind == K_PLAIN && par_up() == 0)
                run_par(&S.v[i]);
            else
                run_plain(&S.v[i]);
        }
    } else {
        /* merge the files of each day (unknown days: together, last) */
        size_t i = 0;
        while (i < S.n && !lp_stop) {
            size_t j = i + 1;
            while (j < S.n && S.v[j].has_day == S.v[i].has_day &&
                   (!S.v[i].has_day || S.v[j].day == S.v[i].day))
                j++;
            run_merge(i, j);
            for (size_t k = i; k < j; k++) {
                if (!S.v[k].done)
                    src_close(&S.v[k]);
                src_summary(&S.v[k]);
            }
            i = j;
        }
    }
    flush_out();
    lp_log_end();
    if (S.n_bad)
        lp_error("%" PRIu64 " damaged %s in %" PRIu64 " %s", S.n_bad,
                 S.n_bad == 1 ? "line" : "lines", S.n_bad_files,
                 S.n_bad_files == 1 ? "file" : "files");
    where_outcome();
    lp_info("%" PRIu64 " lines read, %" PRIu64 " printed, %" PRIu64
            " damaged", S.n_lines, S.n_out, S.n_bad);
    for (size_t i = 0; i < S.n; i++) {
        if (!S.v[i].done && S.v[i].open)
            src_close(&S.v[i]);
        free(S.v[i].name);
    }
    lp_readahead_free(S.ra);
    free(S.v);
    free(S.gen[0]);
    free(S.gen[1]);
    lp_buf_free(&S.out);
    lp_jq_free(S.where);
    lp_layout_free(S.layout);
    lp_redis_free(S.r);
    return S.exit_code;
}
