/* unit-jsource.c -- lp_jsource over journal files made for the test by
 * systemd-journal-remote from export-format text: each field kind's
 * member, binary values, repeated fields, the size bound, matches, a
 * restart after a cursor, entries added after the open; and every event
 * passes send's checks (lp_json_event with send's limits, lp_event_time) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jv.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_jsource.h"
#include "lp_json.h"
#include "lp_parse.h"
#include "tap.h"

#define REMOTE "/lib/systemd/systemd-journal-remote"
#define BOOT "0123456789abcdef0123456789abcdef"
#define T0 1796515200000000ULL  /* 2026-12-06T00:00:00Z in us */

static char root[] = "/tmp/unit-jsource.XXXXXX";
static int nevents, nbad;

/* ---- export format ------------------------------------------------------ */

static void ent_start(struct lp_buf *b, uint64_t rt)
{
    char s[160];

    snprintf(s, sizeof s, "__REALTIME_TIMESTAMP=%llu\n"
             "__MONOTONIC_TIMESTAMP=%llu\n_BOOT_ID=" BOOT "\n",
             (unsigned long long)rt, (unsigned long long)(rt - T0 + 1000));
    lp_buf_adds(b, s);
}

static void text(struct lp_buf *b, const char *name, const char *v)
{
    lp_buf_adds(b, name);
    lp_buf_addc(b, '=');
    lp_buf_adds(b, v);
    lp_buf_addc(b, '\n');
}

/* a field in the binary form: name, newline, u64le length, data, newline */
static void binary(struct lp_buf *b, const char *name, const char *v,
                   size_t n)
{
    unsigned char le[8];

    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)n >> (8 * i));
    lp_buf_adds(b, name);
    lp_buf_addc(b, '\n');
    lp_buf_add(b, le, 8);
    lp_buf_add(b, v, n);
    lp_buf_addc(b, '\n');
}

static void ent_end(struct lp_buf *b)
{
    lp_buf_addc(b, '\n');
}

/* Writes the export text b to the journal file root/name (made, or
 * appended to when there). Returns 0 when systemd-journal-remote did. */
static int journal(const char *name, const struct lp_buf *b)
{
    char in[600], out[600], arg[700];
    int fd, st;
    pid_t pid;

    snprintf(in, sizeof in, "%s/%s.export", root, name);
    snprintf(out, sizeof out, "%s/%.*s", root, (int)strcspn(name, "/"), name);
    mkdir(out, 0755);
    snprintf(out, sizeof out, "%s/%s", root, name);
    snprintf(arg, sizeof arg, "--output=%s", out);
    fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, b->p, b->len) != (ssize_t)b->len)
        return -1;
    close(fd);
    pid = fork();
    if (pid == 0) {
        int i = open(in, O_RDONLY), n = open("/dev/null", O_WRONLY);
        dup2(i, 0);
        dup2(n, 2);
        execl(REMOTE, REMOTE, arg, "-", (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    unlink(in);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- what send checks --------------------------------------------------- */

/* Does the event pass send's checks with its defaults (the JSON with
 * --max-depth 64 --max-members 10000, the time member)? Counted. */
static int send_accepts(const char *s, size_t n, uint64_t rt)
{
    struct lp_jkeys k = { 0 };
    struct lp_jlimits lim = { LP_JSON_DEPTH, 10000 };
    struct lp_jevent ev;
    struct lp_jerr je;
    char err[LP_ERRLEN];
    int64_t ms;
    int ti = lp_jkeys_add(&k, "timestamp");

    nevents++;
    if (lp_json_event(s, n, &k, &lim, &ev, &je) < 0) {
        printf("# not accepted: %s: %.*s\n", je.msg, (int)n, s);
        nbad++;
        return 0;
    }
    if (lp_event_time(s, &ev.val[ti], &ms, err) != 1 ||
        ms != (int64_t)(rt / 1000)) {
        printf("# bad time: %.*s\n", (int)n, s);
        nbad++;
        return 0;
    }
    if (ev.nids != 0) {
        printf("# an _id member send would cut: %.*s\n", (int)n, s);
        nbad++;
        return 0;
    }
    return 1;
}

static struct lp_jsource *open_dir(const char *sub, const char *cursor,
                                   int from_end, const char *const *match,
                                   int nmatch, size_t max, char *err)
{
    char dir[600];
    struct lp_jsource_conf c = {
        .dir = dir, .cursor = cursor, .from_end = from_end,
        .match = match, .nmatch = nmatch, .max_event = max,
    };
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    return lp_jsource_new(&c, err);
}

/* Reads what is there now: each event checked, its "message" appended to
 * got (space-separated), the last cursor kept in cur (malloc'd). */
static int read_all(struct lp_jsource *j, struct lp_buf *got, char **cur)
{
    struct lp_jentry e;
    char err[LP_ERRLEN];
    int n = 0, rc;

    while ((rc = lp_jsource_next(j, &e, err)) == 1) {
        const char *m;
        n++;
        if (e.event == NULL)
            continue;
        send_accepts(e.event, e.len, e.realtime_us);
        if ((m = strstr(e.event, "\"message\":\"")) != NULL) {
            m += 11;
            lp_buf_add(got, m, strcspn(m, "\""));
            lp_buf_addc(got, ' ');
        }
        if (cur) {
            free(*cur);
            *cur = strdup(e.cursor);
        }
    }
    if (rc < 0)
        printf("# next: %s\n", err);
    return rc < 0 ? -1 : n;
}

static const char *str(struct lp_buf *b)
{
    lp_buf_addc(b, 0);
    b->len--;
    return b->p;
}

/* ---- the mapping, through a journal file --------------------------------- */

static void test_mapping(void)
{
    struct lp_buf b = { 0 };
    struct lp_jsource *j;
    struct lp_jentry e;
    char err[LP_ERRLEN];
    static const char ctl[] = "a\tb\nc\x1b" "d\"q\\";
    static const char latin[] = "caf\xe9";
    static const char nul[] = "a\0b";

    ent_start(&b, T0 + 123456);
    text(&b, "_HOSTNAME", "h1");
    text(&b, "_SYSTEMD_UNIT", "web.service");
    text(&b, "SYSLOG_IDENTIFIER", "web");
    text(&b, "PRIORITY", "3");
    text(&b, "_PID", "42");
    text(&b, "PID", "7");
    text(&b, "MESSAGE", "hello \"world\" \\ back");
    text(&b, "TAG", "t1");
    text(&b, "TAG", "t2");
    text(&b, "LEVEL", "custom");
    text(&b, "_ID", "x");
    text(&b, "MESSAGE", "second");
    binary(&b, "CTL", ctl, sizeof ctl - 1);
    binary(&b, "LATIN", latin, sizeof latin - 1);
    binary(&b, "NUL", nul, sizeof nul - 1);
    text(&b, "UTF", "h\xc3\xa9llo \xe2\x9c\x93");
    ent_end(&b);
    /* no unit: the identifier is the service; a PRIORITY out of range */
    ent_start(&b, T0 + 2000000);
    text(&b, "SYSLOG_IDENTIFIER", "cron");
    text(&b, "PRIORITY", "9");
    text(&b, "MESSAGE", "two");
    ent_end(&b);
    /* nothing but the time: no level, service, host, message */
    ent_start(&b, T0 + 3000001);
    text(&b, "X", "1");
    ent_end(&b);
    if (journal("map/x.journal", &b) < 0) {
        ok(0, "systemd-journal-remote made map.journal");
        goto out;
    }
    j = open_dir("map", NULL, 0, NULL, 0, 0, err);
    ok(j != NULL, "opened the directory (%s)", j ? "" : err);
    if (j == NULL)
        goto out;
    is_int(lp_jsource_next(j, &e, err), 1, "entry 1");
    is_str(e.event,
           "{\"timestamp\":\"2026-12-06T00:00:00.123456Z\","
           "\"level\":\"err\",\"service\":\"web.service\",\"host\":\"h1\","
           "\"message\":\"hello \\\"world\\\" \\\\ back\","
           "\"_boot_id\":\"" BOOT "\","
           "\"syslog_identifier\":\"web\",\"_pid\":\"42\",\"pid\":\"7\","
           "\"tag\":[\"t1\",\"t2\"],\"LEVEL\":\"custom\",\"_ID\":\"x\","
           "\"MESSAGE\":\"second\","
           "\"ctl\":\"a\\tb\\nc\\u001bd\\\"q\\\\\","
           "\"latin\":{\"base64\":\"Y2Fm6Q==\"},"
           "\"nul\":{\"base64\":\"YQBi\"},"
           "\"utf\":\"h\xc3\xa9llo \xe2\x9c\x93\"}",
           "entry 1: every field kind as its member");
    is_int(e.kind, LP_JENTRY_WHOLE, "entry 1: whole");
    ok(e.cursor && strncmp(e.cursor, "s=", 2) == 0, "entry 1: a cursor");
    ok(send_accepts(e.event, e.len, e.realtime_us), "entry 1: send accepts it");
    is_int(lp_jsource_next(j, &e, err), 1, "entry 2");
    is_str(e.event,
           "{\"timestamp\":\"2026-12-06T00:00:02.000000Z\","
           "\"service\":\"cron\",\"message\":\"two\","
           "\"_boot_id\":\"" BOOT "\",\"priority\":\"9\"}",
           "entry 2: SYSLOG_IDENTIFIER as service, PRIORITY 9 no level");
    ok(send_accepts(e.event, e.len, e.realtime_us), "entry 2: send accepts it");
    is_int(lp_jsource_next(j, &e, err), 1, "entry 3");
    is_str(e.event,
           "{\"timestamp\":\"2026-12-06T00:00:03.000001Z\","
           "\"_boot_id\":\"" BOOT "\",\"x\":\"1\"}",
           "entry 3: only what it has");
    is_int(lp_jsource_next(j, &e, err), 0, "then no more");
    lp_jsource_free(j);
out:
    lp_buf_free(&b);
}

/* ---- lp_jsource_format: the rules in isolation -------------------------- */

static int fmt(struct lp_buf *out, size_t max, int *dropped, int n, ...)
{
    struct lp_jfield f[16];
    va_list ap;

    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        f[i].p = va_arg(ap, const char *);
        f[i].len = strlen(f[i].p);
    }
    va_end(ap);
    return lp_jsource_format(out, T0, f, (size_t)n, max, dropped);
}

static void test_format(void)
{
    struct lp_buf out = { 0 };
    char big[3000], msg[400];
    int d, k;

    k = fmt(&out, 0, &d, 6, "PRIORITY=7", "PRIORITY=0", "_HOSTNAME=a",
            "_HOSTNAME=b", "TIMESTAMP=t", "HOST=c");
    is_int(k, LP_JENTRY_WHOLE, "format: whole");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"level\":\"debug\",\"host\":\"a\",\"PRIORITY\":\"0\","
           "\"_HOSTNAME\":\"b\",\"TIMESTAMP\":\"t\",\"HOST\":\"c\"}",
           "format: a second value of a mapped field and reserved names "
           "keep their journal names");
    k = fmt(&out, 0, &d, 3, "PRIORITY=x", "SYSLOG_IDENTIFIER=s",
            "NOEQUALS");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"service\":\"s\",\"priority\":\"x\"}",
           "format: PRIORITY x is a field; a field without '=' is passed "
           "over");
    k = fmt(&out, 0, &d, 2, "BAD=\xed\xa0\x80", "OVERLONG=\xc0\xaf");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"bad\":{\"base64\":\"7aCA\"},\"overlong\":{\"base64\":\"wK8=\"}}",
           "format: a surrogate and an overlong form are bytes, not text");
    ok(send_accepts(out.p, out.len, T0), "format: send accepts it");

    /* the size bound */
    memset(big, 'B', sizeof big);
    memcpy(big, "CORE=", 5);
    big[sizeof big - 1] = 0;
    snprintf(msg, sizeof msg, "MESSAGE=%s", "0123456789\xc3\xa9"
             "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
             "0123456789abcdefghijklmnopqrstuvwxyz");
    k = fmt(&out, 0, &d, 3, "_SYSTEMD_UNIT=u", big, "AFTER=1");
    size_t whole = out.len;
    ok(k == LP_JENTRY_WHOLE && whole > 2990, "format: no limit, all there");
    k = fmt(&out, 1000, &d, 3, "_SYSTEMD_UNIT=u", big, "AFTER=1");
    is_int(k, LP_JENTRY_CUT, "format: over max_event: cut");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"service\":\"u\",\"after\":\"1\",\"truncated\":1}",
           "format: the big field dropped, what comes after kept");
    is_int(d, 1, "format: one value dropped");
    ok(send_accepts(out.p, out.len, T0), "format: send accepts the cut event");
    /* the message cut at a character boundary, for every max */
    int all_fit = 1, all_ok = 1, skipped = 0, prefix = 1;
    size_t longest = 0;
    for (size_t max = 40; max < 200; max++) {
        k = fmt(&out, max, &d, 3, "_SYSTEMD_UNIT=u", msg, big);
        if (k == LP_JENTRY_SKIPPED) {
            skipped++;
            continue;
        }
        if (out.len > max)
            all_fit = 0;
        if (!send_accepts(out.p, out.len, T0))
            all_ok = 0;
        const char *m = strstr(str(&out), "\"message\":\"");
        size_t ml = m ? strcspn(m + 11, "\"") : 0;
        if (m && memcmp(m + 11, msg + 8, ml) != 0)
            prefix = 0;
        if (m && ml > longest)
            longest = ml;
    }
    ok(all_fit, "format: every cut event within max_event");
    ok(all_ok, "format: every cut event accepted by send");
    ok(prefix, "format: every cut message a prefix of the message");
    ok(longest > 50, "format: cut messages up to %zu bytes", longest);
    is_int(skipped, 67 - 40, "format: under 67 bytes, skipped");
    k = fmt(&out, 100, &d, 2, msg, "_HOSTNAME=h");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"host\":\"h\",\"message\":\"0123456789\xc3\xa9" "abcdefg\","
           "\"truncated\":1}", "format: a cut message, what comes before it "
           "kept");
    is_int(out.len, 100, "format: the cut message fills max_event");
    k = fmt(&out, 92, &d, 2, msg, "_HOSTNAME=h");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"host\":\"h\",\"message\":\"0123456789\",\"truncated\":1}",
           "format: never half a character (\\u00e9 is 2 bytes)");
    k = fmt(&out, 93, &d, 2, msg, "_HOSTNAME=h");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"host\":\"h\",\"message\":\"0123456789\xc3\xa9\","
           "\"truncated\":1}", "format: the whole character when it fits");
    k = fmt(&out, 100, &d, 1, "MESSAGE=0123456789\xc3\xa9");
    is_int(k, LP_JENTRY_WHOLE, "format: a message that fits is whole");
    k = fmt(&out, 80, &d, 1, "MESSAGE=\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7"
            "\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec");
    is_str(str(&out), "{\"timestamp\":\"2026-12-06T00:00:00.000000Z\","
           "\"truncated\":1}", "format: binary message too big: dropped");
    lp_buf_free(&out);
}

/* ---- random entries, read back by an independent parser (jq's) --------- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static void rnd_value(struct lp_buf *b, int prio)
{
    static const char *const bits[] = {
        "a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\r", "\b", "\f",
        "\x01", "\x1b", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x9c\x93",
        "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "\xef\xbb\xbf", "{", "}", "=",
    };
    int n = (int)rnd(24);

    if (prio && rnd(4)) {
        lp_buf_addc(b, (char)('0' + rnd(10)));
        return;
    }
    for (int i = 0; i < n; i++) {
        uint32_t k = rnd(40);
        if (k < sizeof bits / sizeof *bits)
            lp_buf_adds(b, bits[k]);
        else if (k < 36)
            lp_buf_addc(b, (char)('a' + rnd(26)));
        else if (k < 39)
            lp_buf_addc(b, (char)(0x80 + rnd(128)));   /* stray bytes */
        else
            lp_buf_addc(b, 0);
    }
}

/* the journal field a member of the event came from */
static void field_name(const char *key, const struct lp_jfield *f, size_t n,
                       char *out, size_t cap)
{
    if (strcmp(key, "level") == 0)
        snprintf(out, cap, "PRIORITY");
    else if (strcmp(key, "host") == 0)
        snprintf(out, cap, "_HOSTNAME");
    else if (strcmp(key, "message") == 0)
        snprintf(out, cap, "MESSAGE");
    else if (strcmp(key, "service") == 0) {
        snprintf(out, cap, "SYSLOG_IDENTIFIER");
        for (size_t i = 0; i < n; i++)
            if (strncmp(f[i].p, "_SYSTEMD_UNIT=", 14) == 0)
                snprintf(out, cap, "_SYSTEMD_UNIT");
    } else {
        size_t i;
        for (i = 0; key[i] && i + 1 < cap; i++)
            out[i] = (char)(key[i] >= 'a' && key[i] <= 'z' ?
                            key[i] - 'a' + 'A' : key[i]);
        out[i] = 0;
    }
}

static int b64_decode(const char *s, size_t n, struct lp_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789+/";
        const char *c = strchr(t, s[i]);
        if (c == NULL || s[i] == 0)
            return -1;
        acc = acc << 6 | (uint32_t)(c - t);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            lp_buf_addc(out, (char)(acc >> bits & 0xff));
        }
    }
    return 0;
}

/* one value of the event back to bytes, "NAME=value", into out */
static int value_back(jv v, const char *name, struct lp_buf *out)
{
    static const char *const lv[] = { "emerg", "alert", "crit", "err",
                                      "warning", "notice", "info", "debug" };
    int rc = 0;

    lp_buf_adds(out, name);
    lp_buf_addc(out, '=');
    if (jv_get_kind(v) == JV_KIND_STRING && strcmp(name, "PRIORITY") == 0) {
        int k;
        for (k = 0; k < 8 && strcmp(jv_string_value(v), lv[k]); k++)
            ;
        if (k < 8)
            lp_buf_addc(out, (char)('0' + k));
        else
            lp_buf_add(out, jv_string_value(v),
                       (size_t)jv_string_length_bytes(jv_copy(v)));
    } else if (jv_get_kind(v) == JV_KIND_STRING) {
        lp_buf_add(out, jv_string_value(v),
                   (size_t)jv_string_length_bytes(jv_copy(v)));
    } else if (jv_get_kind(v) == JV_KIND_OBJECT &&
               jv_object_length(jv_copy(v)) == 1) {
        jv s = jv_object_get(jv_copy(v), jv_string("base64"));
        if (jv_get_kind(s) == JV_KIND_STRING)
            rc = b64_decode(jv_string_value(s),
                            (size_t)jv_string_length_bytes(jv_copy(s)), out);
        else
            rc = -1;
        jv_free(s);
    } else {
        rc = -1;
    }
    jv_free(v);
    return rc;
}

static int cmp_field(const void *a, const void *b)
{
    const struct lp_jfield *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/*
 * The event of f[0..n) read back by jq: the same fields, the same values,
 * each once (PRIORITY's level back to its digit)? Compared sorted, as
 * "NAME=value" byte strings.
 */
static int round_trip(const char *ev, size_t len, struct lp_jfield *f,
                      size_t n)
{
    struct lp_buf back = { 0 };
    struct lp_jfield got[64], want[64];
    size_t ng = 0, nw = 0, at[64], blen[64];
    int same = 0;
    jv o = jv_parse_sized(ev, (int)len);

    if (jv_get_kind(o) != JV_KIND_OBJECT)
        goto out;
    jv_object_foreach(o, k, v) {
        char name[80];
        if (strcmp(jv_string_value(k), "timestamp") == 0) {
            jv_free(k);
            jv_free(v);
            continue;
        }
        field_name(jv_string_value(k), f, n, name, sizeof name);
        jv_free(k);
        if (jv_get_kind(v) == JV_KIND_ARRAY) {
            jv_array_foreach(v, i, x) {
                if (ng == 64)
                    break;
                at[ng] = back.len;
                value_back(x, name, &back);
                blen[ng] = back.len - at[ng];
                ng++;
            }
            jv_free(v);
        } else if (ng < 64) {
            at[ng] = back.len;
            value_back(v, name, &back);
            blen[ng] = back.len - at[ng];
            ng++;
        } else {
            jv_free(v);
        }
    }
    for (size_t i = 0; i < ng; i++) {
        got[i].p = back.p + at[i];
        got[i].len = blen[i];
    }
    for (size_t i = 0; i < n; i++)
        if (f[i].len > 0 && f[i].p[0] != '=' && memchr(f[i].p, '=', f[i].len))
            want[nw++] = f[i];
    qsort(got, ng, sizeof *got, cmp_field);
    qsort(want, nw, sizeof *want, cmp_field);
    same = ng == nw;
    for (size_t i = 0; same && i < ng; i++)
        same = cmp_field(&got[i], &want[i]) == 0;
out:
    jv_free(o);
    lp_buf_free(&back);
    return same;
}

static void test_random(void)
{
    static const char *const names[] = {
        "MESSAGE", "PRIORITY", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER",
        "_HOSTNAME", "LEVEL", "TIMESTAMP", "_ID", "TRUNCATED", "HOST",
        "SERVICE", "A", "_B", "CODE_LINE", "__X", "ID", "_PID", "PID",
    };
    struct lp_buf in = { 0 }, out = { 0 };
    struct lp_jfield f[20];
    size_t off[20];
    int bad_json = 0, over = 0, lost = 0, nwhole = 0, ncut = 0, d;

    for (int round = 0; round < 20000; round++) {
        int n = (int)rnd(12) + 1;
        size_t max = rnd(3) ? 0 : 60 + rnd(300);
        in.len = 0;
        for (int i = 0; i < n; i++) {
            const char *nm = names[rnd(sizeof names / sizeof *names)];
            off[i] = in.len;
            lp_buf_adds(&in, nm);
            lp_buf_addc(&in, '=');
            rnd_value(&in, strcmp(nm, "PRIORITY") == 0);
            f[i].len = in.len - off[i];
        }
        for (int i = 0; i < n; i++)
            f[i].p = in.p + off[i];
        int k = lp_jsource_format(&out, T0 + rnd(1000000), f, (size_t)n,
                                  max, &d);
        if (k == LP_JENTRY_SKIPPED)
            continue;
        struct lp_jkeys keys = { 0 };
        struct lp_jlimits lim = { LP_JSON_DEPTH, 10000 };
        struct lp_jevent ev;
        struct lp_jerr je;
        if (lp_json_event(out.p, out.len, &keys, &lim, &ev, &je) < 0 ||
            ev.nids) {
            if (bad_json++ < 3)
                printf("# invalid: %s: %.*s\n", je.msg, (int)out.len, out.p);
            continue;
        }
        if (max && out.len > max)
            over++;
        if (k == LP_JENTRY_WHOLE) {
            nwhole++;
            if (!round_trip(out.p, out.len, f, (size_t)n) && lost++ < 3)
                printf("# not the same fields back: %.*s\n", (int)out.len,
                       out.p);
        } else {
            ncut++;
        }
    }
    printf("# %d whole, %d cut\n", nwhole, ncut);
    /* and the check can fail */
    f[0].p = "MESSAGE=a\0b";
    f[0].len = 11;
    f[1].p = "X=1";
    f[1].len = 3;
    lp_jsource_format(&out, T0, f, 2, 0, &d);
    ok(round_trip(out.p, out.len, f, 2), "random: the round trip of a NUL");
    f[0].len = 10;
    ok(!round_trip(out.p, out.len, f, 2), "random: a value changed is seen");
    f[0].len = 11;
    f[1].p = "X=2";
    ok(!round_trip(out.p, out.len, f, 2), "random: another changed is seen");
    ok(!round_trip(out.p, out.len, f, 1), "random: a field more is seen");
    is_int(bad_json, 0, "random: every event valid JSON, no _id member");
    is_int(over, 0, "random: every event within max_event");
    is_int(lost, 0, "random: every whole event gives its fields back, "
           "each once");
    ok(nwhole > 5000 && ncut > 1000, "random: both kinds seen");
    lp_buf_free(&in);
    lp_buf_free(&out);
}

/* ---- matches, cursors, entries added ------------------------------------ */

/* entries seq from..to-1, unit u<seq%3>, PRIORITY seq%8, MESSAGE m<seq> */
static int seq_journal(const char *name, int from, int to)
{
    struct lp_buf b = { 0 };
    char v[32];
    int rc;

    for (int i = from; i < to; i++) {
        ent_start(&b, T0 + 1000000ULL * (uint64_t)i);
        snprintf(v, sizeof v, "u%d.service", i % 3);
        text(&b, "_SYSTEMD_UNIT", v);
        snprintf(v, sizeof v, "%d", i % 8);
        text(&b, "PRIORITY", v);
        snprintf(v, sizeof v, "m%d", i);
        text(&b, "MESSAGE", v);
        ent_end(&b);
    }
    rc = journal(name, &b);
    lp_buf_free(&b);
    return rc;
}

static void want_seq(struct lp_buf *got, int from, int to, int step,
                     const char *what)
{
    struct lp_buf w = { 0 };
    char v[32];

    for (int i = from; i < to; i += step) {
        snprintf(v, sizeof v, "m%d ", i);
        lp_buf_adds(&w, v);
    }
    is_str(str(got), str(&w), "%s", what);
    lp_buf_free(&w);
}

static void test_match(void)
{
    static const char *const m1[] = { "_SYSTEMD_UNIT=u0.service",
                                      "_SYSTEMD_UNIT=u1.service",
                                      "PRIORITY=1" };
    static const char *const bad[] = { "NOVALUE" };
    struct lp_buf got = { 0 };
    struct lp_jsource *j;
    char err[LP_ERRLEN];

    if (seq_journal("seq/seq.journal", 0, 30) < 0) {
        ok(0, "systemd-journal-remote made seq.journal");
        return;
    }
    j = open_dir("seq", NULL, 0, m1, 2, 0, err);
    read_all(j, &got, NULL);
    lp_jsource_free(j);
    struct lp_buf w = { 0 };
    for (int i = 0; i < 30; i++)
        if (i % 3 != 2) {
            char v[16];
            snprintf(v, sizeof v, "m%d ", i);
            lp_buf_adds(&w, v);
        }
    is_str(str(&got), str(&w), "match: the same field ORed");
    lp_buf_free(&w);
    got.len = 0;
    j = open_dir("seq", NULL, 0, m1, 3, 0, err);
    read_all(j, &got, NULL);
    lp_jsource_free(j);
    /* u0|u1 and PRIORITY=1: i%8 == 1 and i%3 != 2: 1 9 25 */
    is_str(str(&got), "m1 m9 m25 ",
           "match: different fields ANDed");
    got.len = 0;
    j = open_dir("seq", NULL, 0, bad, 1, 0, err);
    ok(j == NULL, "match: NOVALUE refused");
    is_str(err, "--journal-match NOVALUE: not FIELD=VALUE",
           "match: the message");
    lp_buf_free(&got);
}

static void test_cursor(void)
{
    struct lp_buf got = { 0 };
    struct lp_jsource *j;
    struct lp_jentry e;
    char err[LP_ERRLEN], *cur = NULL;
    int n, total = 0, rounds = 0;

    /* a restart after every few entries: each entry exactly once */
    for (;;) {
        j = open_dir("seq", cur, 0, NULL, 0, 0, err);
        if (j == NULL)
            break;
        for (n = 0; n < 7 && lp_jsource_next(j, &e, err) == 1; n++) {
            const char *m = strstr(e.event, "\"message\":\"");
            lp_buf_add(&got, m + 11, strcspn(m + 11, "\""));
            lp_buf_addc(&got, ' ');
            free(cur);
            cur = strdup(e.cursor);
        }
        lp_jsource_free(j);
        total += n;
        rounds++;
        if (n == 0 || rounds > 20)
            break;
    }
    want_seq(&got, 0, 30, 1, "cursor: restarted every 7 entries, each once");
    is_int(rounds, 6, "cursor: 5 rounds and one that found nothing");
    /* with a match: the cursors are of matching entries only */
    static const char *const u1[] = { "_SYSTEMD_UNIT=u1.service" };
    got.len = 0;
    free(cur);
    cur = NULL;
    for (rounds = 0; rounds < 20; rounds++) {
        j = open_dir("seq", cur, 0, u1, 1, 0, err);
        for (n = 0; n < 2 && j && lp_jsource_next(j, &e, err) == 1; n++) {
            const char *m = strstr(e.event, "\"message\":\"");
            lp_buf_add(&got, m + 11, strcspn(m + 11, "\""));
            lp_buf_addc(&got, ' ');
            free(cur);
            cur = strdup(e.cursor);
        }
        lp_jsource_free(j);
        if (n == 0)
            break;
    }
    want_seq(&got, 1, 30, 3, "cursor: with a match, restarted every 2 "
             "entries, each matching one once");
    j = open_dir("seq", "s=nonsense", 0, NULL, 0, 0, err);
    ok(j == NULL, "cursor: a cursor that is not one is refused");
    ok(j != NULL || strncmp(err, "journal cursor: ", 16) == 0,
       "cursor: said (%s)", err);
    lp_jsource_free(j);
    free(cur);
    lp_buf_free(&got);
}

static void test_follow(void)
{
    struct lp_buf got = { 0 };
    struct lp_jsource *j, *tail;
    char err[LP_ERRLEN], *cur = NULL;
    int rc, n;

    j = open_dir("seq", NULL, 0, NULL, 0, 0, err);
    tail = open_dir("seq", NULL, 1, NULL, 0, 0, err);
    ok(j && tail, "follow: opened from the start and from the end");
    if (!j || !tail)
        goto out;
    n = read_all(j, &got, &cur);
    is_int(n, 30, "follow: the 30 entries there");
    is_int(read_all(tail, &got, NULL), 0, "follow: from the end: none yet");
    got.len = 0;
    is_int(lp_jsource_wait(j, 0, err), 0, "follow: nothing changed yet");
    /* a second file, then entries appended to it */
    if (seq_journal("seq/more.journal", 30, 40) < 0 ||
        seq_journal("seq/more.journal", 40, 45) < 0) {
        ok(0, "systemd-journal-remote made more.journal");
        goto out;
    }
    /* the poll loop a caller runs */
    struct pollfd p = { lp_jsource_fd(j), lp_jsource_events(j), 0 };
    ok(p.fd >= 0 && p.events != 0, "follow: a descriptor to poll");
    rc = poll(&p, 1, 5000);
    ok(rc == 1, "follow: poll says the journal changed");
    rc = lp_jsource_process(j, err);
    is_int(rc, 1, "follow: process: entries may have been added");
    n = read_all(j, &got, &cur);
    want_seq(&got, 30, 45, 1, "follow: the 15 added, each once");
    got.len = 0;
    rc = lp_jsource_wait(tail, 5000, err);
    is_int(rc, 1, "follow: wait: from the end sees the change");
    read_all(tail, &got, NULL);
    want_seq(&got, 30, 45, 1, "follow: from the end: only the added ones");
    got.len = 0;
    /* restart after the last cursor: nothing, then a new entry */
    lp_jsource_free(j);
    j = open_dir("seq", cur, 0, NULL, 0, 0, err);
    is_int(read_all(j, &got, NULL), 0, "follow: after the last cursor: none");
    seq_journal("seq/more.journal", 45, 46);
    for (int i = 0; i < 50 && got.len == 0; i++)
        if ((rc = lp_jsource_wait(j, 100, err)) >= 0)
            read_all(j, &got, NULL);
    want_seq(&got, 45, 46, 1, "follow: then the one appended");
out:
    lp_jsource_free(j);
    lp_jsource_free(tail);
    free(cur);
    lp_buf_free(&got);
}

/* A message and a core dump far over max_event, stored compressed:
 * libsystemd is asked for max_event + 128 bytes of each, the core is
 * dropped, the message cut, and the event fits. */
static void test_big(void)
{
    struct lp_buf b = { 0 }, m = { 0 };
    struct lp_jsource *j;
    struct lp_jentry e;
    char err[LP_ERRLEN];
    size_t i;

    ent_start(&b, T0 + 5000000);
    text(&b, "_SYSTEMD_UNIT", "big.service");
    lp_buf_adds(&m, "MESSAGE=");
    for (i = 0; i < 40000; i++)
        lp_buf_adds(&m, "caf\xc3\xa9 ");
    lp_buf_addc(&m, 0);
    text(&b, "MESSAGE", m.p + 8);
    m.len = 0;
    for (i = 0; i < 300000; i++)
        lp_buf_addc(&m, (char)(i * 7 + (i >> 8)));
    binary(&b, "COREDUMP", m.p, m.len);
    text(&b, "AFTER", "kept");
    ent_end(&b);
    if (journal("big/x.journal", &b) < 0) {
        ok(0, "systemd-journal-remote made big/x.journal");
        goto out;
    }
    for (size_t max = 1000; max <= 1003; max++) {
        j = open_dir("big", NULL, 0, NULL, 0, max, err);
        if (j == NULL || lp_jsource_next(j, &e, err) != 1) {
            ok(0, "big: read the entry (%s)", err);
            lp_jsource_free(j);
            goto out;
        }
        ok(e.kind == LP_JENTRY_CUT && e.len <= max && e.len >= max - 4 &&
           e.dropped == 2, "big: max %zu: cut to %zu bytes, 2 values "
           "dropped or cut", max, e.len);
        ok(strstr(e.event, "\"message\":\"caf\xc3\xa9 caf") &&
           strstr(e.event, "\"after\":\"kept\",\"truncated\":2}"),
           "big: max %zu: message cut, after kept", max);
        ok(send_accepts(e.event, e.len, e.realtime_us),
           "big: max %zu: send accepts it", max);
        lp_jsource_free(j);
    }
    j = open_dir("big", NULL, 0, NULL, 0, 60, err);
    ok(j && lp_jsource_next(j, &e, err) == 1 &&
       e.kind == LP_JENTRY_SKIPPED && e.event == NULL && e.cursor,
       "big: max 60: skipped, with its cursor");
    lp_jsource_free(j);
    j = open_dir("big", NULL, 0, NULL, 0, 0, err);
    ok(j && lp_jsource_next(j, &e, err) == 1 &&
       e.kind == LP_JENTRY_WHOLE && e.len > 640000 &&
       send_accepts(e.event, e.len, e.realtime_us),
       "big: no limit: the whole entry, %zu bytes", j ? e.len : 0);
    lp_jsource_free(j);
out:
    lp_buf_free(&m);
    lp_buf_free(&b);
}

/* A directory with no journal file yet, read from the start and from the
 * end: the first file made later is seen by both, whole. */
static void test_empty(void)
{
    struct lp_buf got = { 0 };
    struct lp_jsource *j[2];
    char err[LP_ERRLEN], dir[600];

    snprintf(dir, sizeof dir, "%s/empty", root);
    mkdir(dir, 0755);
    for (int k = 0; k < 2; k++) {
        j[k] = open_dir("empty", NULL, k, NULL, 0, 0, err);
        ok(j[k] && read_all(j[k], &got, NULL) == 0,
           "empty: from the %s: opened, nothing", k ? "end" : "start");
    }
    if (!j[0] || !j[1] || seq_journal("empty/x.journal", 0, 5) < 0) {
        ok(0, "empty: a journal file made");
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        got.len = 0;
        for (int i = 0; i < 50 && got.len == 0; i++)
            if (lp_jsource_wait(j[k], 100, err) >= 0)
                read_all(j[k], &got, NULL);
        want_seq(&got, 0, 5, 1, k ? "empty: from the end: the new file" :
                 "empty: from the start: the new file");
    }
out:
    lp_jsource_free(j[0]);
    lp_jsource_free(j[1]);
    lp_buf_free(&got);
}

static void test_open_errors(void)
{
    struct lp_jsource_conf c = { .dir = "/nonexistent/unit-jsource" };
    struct lp_jsource *j;
    char err[LP_ERRLEN];

    j = lp_jsource_new(&c, err);
    ok(j == NULL, "a missing --journal-dir is refused");
    is_str(j ? "" : err, "--journal-dir /nonexistent/unit-jsource: "
           "No such file or directory", "and said");
    lp_jsource_free(j);
}

int main(void)
{
    char cmd[700];

    if (access(REMOTE, X_OK) < 0) {
        printf("1..0 # SKIP no %s (package systemd-journal-remote)\n", REMOTE);
        return 0;
    }
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_format();
    test_random();
    test_mapping();
    test_match();
    test_cursor();
    test_follow();
    test_big();
    test_empty();
    test_open_errors();
    printf("# %d events checked as send checks them\n", nevents);
    is_int(nbad, 0, "every event passed send's checks");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", root);
    return tap_done();
}
