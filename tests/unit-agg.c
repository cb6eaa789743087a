/* unit-agg.c -- the agg engine: groups, buckets, lateness, output, failures */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_agg.h"
#include "lp_parse.h"
#include "tap.h"

/* What the engine said: the messages of each kind, the last one. */
struct said {
    int n[3], taken[3];
    int budget;                 /* messages let through per kind; -1: all */
    char last[3][512];
};

static int take(void *ctx, int kind)
{
    struct said *s = ctx;

    s->taken[kind]++;
    return s->budget < 0 || s->taken[kind] <= s->budget;
}

static void say(void *ctx, int kind, const char *msg)
{
    struct said *s = ctx;

    s->n[kind]++;
    snprintf(s->last[kind], sizeof s->last[kind], "%s", msg);
}

/* A conf of the tool's defaults; s (if any) empty, every message said. */
static void conf_init(struct lp_agg_conf *c, int fd, struct said *s)
{
    if (s) {
        memset(s, 0, sizeof *s);
        s->budget = -1;
    }
    memset(c, 0, sizeof *c);
    c->bucket = 60000;
    c->time_field = "timestamp";
    c->max_groups = 100000;
    c->fd = fd;
    c->fd_name = "out";
}

static void list(struct lp_list *l, const char *a, const char *b)
{
    l->n = 0;
    if (a)
        l->item[l->n++] = (char *)a;
    if (b)
        l->item[l->n++] = (char *)b;
}

/* Feeds the lines (NULL-terminated) through a new engine into a temporary
 * file and returns what it printed (malloc'd, caller frees), or NULL when
 * a call failed; *st the counts at the end. */
static char *agg(struct lp_agg_conf *c, struct said *s, const char **lines,
                 struct lp_agg_stats *st)
{
    const struct lp_agg_notify n = { take, say, s };
    struct lp_agg *a;
    char err[LP_ERRLEN], *out = NULL;
    FILE *f = tmpfile();
    long len;
    int rc;

    if (f == NULL)
        return NULL;
    c->fd = fileno(f);
    rc = lp_agg_new(&a, c, &n, err);
    if (rc == LP_AGG_OK)
        rc = lp_agg_start(a, err);
    for (int i = 0; rc == LP_AGG_OK && lines[i]; i++)
        rc = lp_agg_line(a, lines[i], strlen(lines[i]), (uint64_t)i + 1,
                         err);
    if (rc == LP_AGG_OK)
        rc = lp_agg_finish(a, err);
    if (a)
        *st = *lp_agg_stats(a);
    lp_agg_free(a);
    if (rc != LP_AGG_OK) {
        printf("# failed: %s\n", err);
        goto out;
    }
    len = lseek(c->fd, 0, SEEK_END);
    if (len < 0 || (out = calloc(1, (size_t)len + 1)) == NULL)
        goto out;
    if (pread(c->fd, out, (size_t)len, 0) != len) {
        free(out);
        out = NULL;
    }
out:
    fclose(f);
    return out;
}

int main(void)
{
    struct lp_agg_conf c;
    struct lp_agg_stats st;
    struct said s;
    struct lp_agg *a;
    char err[LP_ERRLEN], *out;
    int rc;

    signal(SIGPIPE, SIG_IGN);

    /* the names of the output */
    conf_init(&c, -1, NULL);
    list(&c.by, "service", "level");
    list(&c.sum, "bytes", NULL);
    list(&c.max, "bytes", NULL);
    ok(lp_agg_conf_check(&c, err) == 0, "distinct columns pass");
    list(&c.by, "sum_bytes", NULL);
    ok(lp_agg_conf_check(&c, err) < 0, "a --by named like a sum is refused");
    is_str(err, "the output would have two members (columns) named "
           "'sum_bytes'", "the column named in err");
    list(&c.by, "count", NULL);
    ok(lp_agg_conf_check(&c, err) < 0, "a --by named count is refused");

    /* too many members for one scan */
    conf_init(&c, -1, NULL);
    {
        static const char *names[] = { "a", "b", "c", "d", "e", "f", "g",
            "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
            "t", "u", "v", "w", "x", "y", "z", "A", "B", "C", "D", "E",
            "F" };
        for (int i = 0; i < 16; i++)
            c.by.item[c.by.n++] = (char *)names[i];
        for (int i = 0; i < 8; i++)
            c.sum.item[c.sum.n++] = (char *)names[16 + i];
        for (int i = 0; i < 8; i++)
            c.max.item[c.max.n++] = (char *)names[24 + i];
    }
    rc = lp_agg_new(&a, &c, NULL, err);
    is_int(rc, LP_AGG_MEMBERS, "32 members and _id: too many");
    ok(a == NULL, "no engine made");
    is_str(err, "too many members asked for (--by, --sum, --max: 30 "
           "distinct at most)", "said in err");

    /* counts, sums, maxima; groups sorted, null first; one line per group */
    {
        const char *in[] = {
            "{\"timestamp\":1795341600,\"k\":\"b\",\"n\":2}",
            "{\"timestamp\":1795341601,\"k\":\"a\",\"n\":1.5}",
            "{\"timestamp\":1795341602,\"n\":7}",
            "{\"timestamp\":1795341603,\"k\":\"b\",\"n\":\"x\"}",
            "",
            "[{\"timestamp\":1795341660,\"k\":\"a\"},{\"timestamp\":"
            "\"2026-11-22T10:01:30Z\",\"k\":\"a\",\"n\":-1}]",
            NULL };
        conf_init(&c, -1, &s);
        list(&c.by, "k", NULL);
        list(&c.sum, "n", NULL);
        list(&c.max, "n", NULL);
        out = agg(&c, &s, in, &st);
        is_str(out,
               "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":null,\"count\":1,"
               "\"sum_n\":7,\"max_n\":7}\n"
               "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":1,"
               "\"sum_n\":1.5,\"max_n\":1.5}\n"
               "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"b\",\"count\":2,"
               "\"sum_n\":2,\"max_n\":2}\n"
               "{\"bucket\":\"2026-11-22T10:01:00Z\",\"k\":\"a\",\"count\":2,"
               "\"sum_n\":-1,\"max_n\":-1}\n",
               "NDJSON: counts, sums, maxima, null first, in bucket order");
        free(out);
        is_int(st.ok, 6, "6 events counted");
        is_int(st.bad + st.late, 0, "none bad or late");
        is_int(st.emitted, 4, "4 groups printed");
        is_int(st.buckets, 2, "in 2 buckets");
        is_int(st.open, 0, "none open at the end");
    }

    /* bad lines and late events: counted; said as the budget allows */
    {
        const char *in[] = {
            "not json",
            "{\"timestamp\":\"2026-11-22T10:00:10Z\"}",
            "{\"timestamp\":\"2026-11-22T10:01:05Z\"}",
            "{\"timestamp\":\"2026-11-22T10:00:50Z\"}",
            "[{\"timestamp\":\"2026-11-22T10:00:51Z\"},7]",
            "{\"k\":1}",
            NULL };
        conf_init(&c, -1, &s);
        s.budget = 1;
        out = agg(&c, &s, in, &st);
        is_str(out, "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":1}\n"
               "{\"bucket\":\"2026-11-22T10:01:00Z\",\"count\":1}\n",
               "late events not counted");
        free(out);
        is_int(st.bad, 3, "3 bad: not JSON, not an object, no time");
        is_int(st.late, 2, "2 late");
        is_int(s.taken[LP_AGG_SAY_BAD], 3, "the budget asked for each bad");
        is_int(s.n[LP_AGG_SAY_BAD], 1, "one said");
        is_str(s.last[LP_AGG_SAY_BAD], "line 1: invalid JSON: unexpected "
               "'o' at byte 2", "the bad line's words");
        is_int(s.n[LP_AGG_SAY_LATE], 1, "one late said");
        is_str(s.last[LP_AGG_SAY_LATE], "line 4: event time "
               "2026-11-22T10:00:50.000Z is late: its bucket was emitted; "
               "dropped", "the late event's words");
    }

    /* --lateness end past --max-groups: the oldest bucket goes early */
    {
        const char *in[] = {
            "{\"timestamp\":1795341600,\"k\":\"a\"}",
            "{\"timestamp\":1795341660,\"k\":\"b\"}",
            "{\"timestamp\":1795341720,\"k\":\"c\"}",
            "{\"timestamp\":1795341600,\"k\":\"d\"}",
            NULL };
        conf_init(&c, -1, &s);
        list(&c.by, "k", NULL);
        c.at_end = 1;
        c.max_groups = 2;
        out = agg(&c, &s, in, &st);
        ok(out && strncmp(out, "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":"
           "\"a\",\"count\":1}\n", 51) == 0, "the oldest bucket first");
        free(out);
        is_int(st.late, 1, "its later event is late");
        is_int(s.n[LP_AGG_SAY_ONCE], 1, "said once");
        ok(strstr(s.last[LP_AGG_SAY_ONCE], "the buckets before "
                  "2026-11-22T10:01:00.000Z are printed before the end") !=
           NULL, "naming the bucket");
    }

    /* SQL: a missing member is the group of "", NUL as U+FFFD */
    {
        const char *in[] = {
            "{\"timestamp\":1795341600,\"k\":\"\"}",
            "{\"timestamp\":1795341600}",
            "{\"timestamp\":1795341600,\"k\":\"\\u0000\"}",
            "{\"timestamp\":1795341600,\"k\":\"\\ufffd\"}",
            NULL };
        conf_init(&c, -1, &s);
        list(&c.by, "k", NULL);
        c.sql = "t";
        c.threshold = 2;
        out = agg(&c, &s, in, &st);
        ok(out && strstr(out, "('2026-11-22T10:00:00Z', '', 2)") &&
           strstr(out, "('2026-11-22T10:00:00Z', '\xef\xbf\xbd', 2)"),
           "two groups of two rows each");
        ok(out && strncmp(out, "CREATE TABLE IF NOT EXISTS \"t\"", 30) == 0,
           "the table first");
        free(out);
        is_int(st.emitted, 2, "2 groups printed");
    }

    /* the output fails */
    {
        int p[2];
        const char *line = "{\"timestamp\":1795341600}";
        conf_init(&c, -1, NULL);
        if (pipe(p) < 0)
            return 1;
        close(p[0]);
        c.fd = p[1];
        ok(lp_agg_new(&a, &c, NULL, err) == LP_AGG_OK, "made");
        rc = lp_agg_line(a, line, strlen(line), 1, err);
        is_int(rc, LP_AGG_OK, "a line is buffered");
        rc = lp_agg_finish(a, err);
        is_int(rc, LP_AGG_EPIPE, "no reader: LP_AGG_EPIPE");
        lp_agg_free(a);
        close(p[1]);

        c.fd = open("/dev/full", O_WRONLY);
        c.sql = "t";
        ok(c.fd >= 0 && lp_agg_new(&a, &c, NULL, err) == LP_AGG_OK, "made");
        rc = lp_agg_start(a, err);
        is_int(rc, LP_AGG_WRITE, "a full disk: LP_AGG_WRITE");
        is_str(err, "out: No space left on device", "named in err");
        lp_agg_free(a);
        close(c.fd);
    }

    /* a line the caller could not read */
    conf_init(&c, -1, &s);
    {
        const struct lp_agg_notify n = { NULL, say, &s };
        ok(lp_agg_new(&a, &c, &n, err) == LP_AGG_OK, "made");
        lp_agg_bad_line(a, 9, "longer than --max-line (2 bytes)");
        is_int(lp_agg_stats(a)->bad, 1, "counted bad");
        is_str(s.last[LP_AGG_SAY_BAD], "line 9: longer than --max-line "
               "(2 bytes)", "said with its number");
        lp_agg_free(a);
    }
    lp_agg_free(NULL);
    return tap_done();
}
