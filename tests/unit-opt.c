/* unit-opt.c -- the typed option table: every kind, bounds, messages, the
 * environment against the flags, --help from the rows, operands */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "tap.h"
#include "../cmd/tool_opt.h"

struct t_opt {
    struct lp_common com;       /* not used by the rows: tool_opt's com */
    int flag, count, quiet;
    const char *str, *nonempty, *env_str;
    int64_t dur, dur_ms, positive, hundred;
    uint64_t size, size_1g, num, big;
    int mode;
    struct lp_list list;
    const char *called;
    const struct lp_optdef *given;      /* num, mode, call */
    char *words[8];
    int nwords;
};

static int call_check(const struct lp_optdef *o, void *base, char *arg,
                      char *err)
{
    struct t_opt *t = base;

    (void)o;
    if (strcmp(arg, "bad") == 0) {
        snprintf(err, LP_ERRLEN, "'%s' will not do", arg);
        return -1;
    }
    t->called = arg;
    return 0;
}

#define T struct t_opt
static const struct lp_optdef rows[] = {
    LP_LONG_REDIS, LP_LONG_STREAM, LP_LONG_DIR, LP_LONG_GROUP,
    { "flag", 'f', LP_FLAG(T, flag), NULL, "a flag" },
    { "count", 'c', LP_COUNT(T, count), NULL, "one more each time" },
    { "str", 0, LP_STR(T, str), "S", "any string" },
    { "nonempty", 'e', LP_STR(T, nonempty), "S", "never empty",
      .flags = LP_OF_NONEMPTY },
    { "env-str", 0, LP_STR(T, env_str), "S", "T_OPT_ENV_STR by default",
      .env = "T_OPT_ENV_STR" },
    { "dur", 0, LP_DURATION(T, dur), "DUR", "bare: seconds" },
    { "dur-ms", 0, LP_DURATION(T, dur_ms), "DUR", "bare: ms, 1ms to 1h",
      .unit = "ms", .min = 1, .max = 3600000 },
    { "positive", 0, LP_DURATION(T, positive), "DUR", "more than 0",
      .min = 1 },
    { "hundred", 0, LP_DURATION(T, hundred), "DUR", "100ms or more",
      .min = 100 },
    { "size", 0, LP_SIZE(T, size), "SIZE", "any size" },
    { "size-1g", 0, LP_SIZE(T, size_1g), "SIZE", "2 to 1G", .min = 2,
      .max = 1 << 30 },
    { "num", 'n', LP_UINT(T, num), "N", "1 to 9", .min = 1, .max = 9,
      LP_GIVEN(T, given) },
    { "big", 0, LP_UINT(T, big), "N", "0 or more" },
    { "mode", 0, LP_ENUM(T, mode), "WHAT", "block, reject or dlq",
      .words = "block|reject|dlq", LP_GIVEN(T, given) },
    { "list", 'l', LP_LIST(T, list), "A,B", "at most 3\nwords",
      .max = 3 },
    { "call", 0, LP_CALL(T, called, call_check), "X", "anything but bad",
      LP_GIVEN(T, given) },
    { "a-long-option-name", 0, LP_FLAG(T, quiet), NULL, "its help" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef T

static const struct tool_note notes[] = {
    { "dir", "the archive, said otherwise\n(two lines)", 0 },
    { "group", NULL, TOOL_NOENV },
    { NULL, NULL, 0 }
};

static const struct tool_cmd cmd = {
    .name = "t-opt",
    .synopsis = "usage: t-opt [options]\nA test.\n\n",
    .epilog = "Exit: 0 ok, 64 usage.\n",
    .opts = rows,
    .notes = notes,
    .stray = " (none wanted)",
};

static const struct tool_cmd cmd_after = {
    .name = "t-opt", .synopsis = "", .epilog = "", .opts = rows,
    .operands = 1,
};

static void take(void *opt, char *word, int argc)
{
    struct t_opt *t = opt;

    (void)argc;
    if (t->nwords < 8)
        t->words[t->nwords++] = word;
}

static const struct tool_cmd cmd_inorder = {
    .name = "t-opt", .synopsis = "", .epilog = "", .opts = rows,
    .operand = take,
};

static const struct lp_optdef *row(const char *name)
{
    for (const struct lp_optdef *o = rows; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    printf("# no row %s\n", name);
    exit(1);
}

static struct t_opt t;
static struct lp_common com;

/* lp_opt_set of row NAME with a copy of ARG: its result; err filled */
static char err[LP_ERRLEN];
static char argbuf[256];

static int set(const char *name, const char *arg)
{
    const struct lp_optdef *o = row(name);

    err[0] = '\0';
    snprintf(argbuf, sizeof argbuf, "%s", arg ? arg : "");
    return lp_opt_set(o, o->flags & LP_OF_COMMON ? (void *)&com : (void *)&t,
                      arg ? argbuf : NULL, err);
}

static void refused(const char *name, const char *arg, const char *want)
{
    is_int(set(name, arg), -1, "--%s '%s' refused", name, arg);
    is_str(err, want, "--%s '%s': the message", name, arg);
}

static void kinds(void)
{
    memset(&t, 0, sizeof t);
    lp_common_init(&com);

    is_int(set("flag", NULL), 0, "flag");
    is_int(t.flag, 1, "flag: set");
    set("count", NULL);
    set("count", NULL);
    is_int(t.count, 2, "count: twice, 2");
    set("verbose", NULL);
    is_int(com.verbosity, 1, "-v: 1");
    set("quiet", NULL);
    is_int(com.verbosity, -1, "-q: -1 (a flag with its value)");
    set("verbose", NULL);
    is_int(com.verbosity, 1, "-v after -q: 1, not 0");

    is_int(set("str", ""), 0, "string: empty taken");
    is_int(set("str", "abc"), 0, "string");
    is_str(t.str, "abc", "string: stored");
    ok(t.str == argbuf, "string: borrowed, not copied");
    refused("nonempty", "", "-e/--nonempty: must not be empty");

    is_int(set("dur", "90"), 0, "duration");
    is_int(t.dur, 90000, "duration: a bare number in seconds");
    is_int(set("dur", "1.5m"), 0, "duration with a unit");
    is_int(t.dur, 90000, "duration: 1.5m");
    refused("dur", "soon",
            "--dur: 'soon' is not a duration (like 500ms, 30s, 5m, 24h, 7d)");
    is_int(set("dur-ms", "250"), 0, "duration, bare in ms");
    is_int(t.dur_ms, 250, "duration: 250 ms");
    is_int(set("dur-ms", "1h"), 0, "duration: the upper bound is in");
    is_int(set("dur-ms", "1ms"), 0, "duration: the lower bound is in");
    refused("dur-ms", "0", "--dur-ms: '0' is out of range (1ms..1h)");
    refused("dur-ms", "61m", "--dur-ms: '61m' is out of range (1ms..1h)");
    is_int(t.dur_ms, 1, "duration: a refused value leaves the field");
    refused("positive", "0", "--positive: must be more than 0");
    is_int(set("positive", "1ms"), 0, "duration: 1ms is more than 0");
    refused("hundred", "99ms", "--hundred: at least 100ms");

    is_int(set("size", "64K"), 0, "size");
    is_int(t.size, 65536, "size: 64K");
    is_int(set("size", "0"), 0, "size: unbounded takes 0");
    refused("size", "1Q", "--size: '1Q' is not a size (like 512, 64K, 10M, "
            "1G)");
    refused("size-1g", "1", "--size-1g: '1' is out of range (2..1G)");
    refused("size-1g", "2G", "--size-1g: '2G' is out of range (2..1G)");
    is_int(set("size-1g", "1G"), 0, "size: the upper bound is in");
    is_int(t.size_1g, 1 << 30, "size: 1G");

    is_int(set("num", "9"), 0, "unsigned");
    is_int(t.num, 9, "unsigned: 9");
    ok(t.given == row("num"), "unsigned: given points at its row");
    refused("num", "0", "-n/--num: '0' is out of range (1..9)");
    refused("num", "10", "-n/--num: '10' is out of range (1..9)");
    refused("num", "-1", "-n/--num: '-1' is not a number");
    refused("num", "1.5", "-n/--num: '1.5' is not a number");
    refused("big", "9223372036854775808",
            "--big: '9223372036854775808' is out of range "
            "(0..9223372036854775807)");
    is_int(set("big", "0"), 0, "unsigned: no bound given, 0 is in");

    is_int(set("mode", "dlq"), 0, "enum");
    is_int(t.mode, 2, "enum: the index of its word");
    ok(t.given == row("mode"), "enum: given moves to the last one set");
    is_int(set("mode", "block"), 0, "enum: the first word");
    is_int(t.mode, 0, "enum: 0");
    refused("mode", "blo", "--mode: 'blo' is not block, reject or dlq");
    refused("log-format", "xml", "--log-format: 'xml' is not text or json");
    is_int(set("log-format", "json"), 0, "enum: --log-format json");
    is_int(com.log_format, LP_LOG_JSON, "enum: the words are in LP_LOG_*");

    is_int(set("list", "a,b"), 0, "list");
    is_int(t.list.n, 2, "list: 2 items");
    is_str(t.list.item[1], "b", "list: the second");
    is_int(set("list", "c"), 0, "list: a second one");
    is_int(t.list.n, 1, "list: replaces the first");
    refused("list", "a,,b", "-l/--list: empty item in list");
    refused("list", "a,b,c,d", "-l/--list: more than 3 items in list");

    is_int(set("call", "fine"), 0, "callback");
    is_str(t.called, "fine", "callback: did its work");
    ok(t.given == row("call"), "callback: given");
    refused("call", "bad", "--call: 'bad' will not do");

    /* the common options say their errors as they always have */
    refused("stream", "", "--stream must not be empty");
    refused("redis", "", "--redis must not be empty");
    refused("metrics-interval", "99ms", "--metrics-interval: at least 100ms");
    refused("metrics-interval", "x",
            "'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)");
    is_int(set("redis", "redis://u:secret@h:1/0"), 0, "-r with a password");
    is_str(argbuf, "redis://u:xxxxxx@h:1/0", "-r: the password blanked");
    is_str(com.redis_url, "redis://u:secret@h:1/0", "-r: a copy kept");
    is_int(com.password_on_argv, 1, "-r: said to have been on argv");
    {
        struct lp_redis *r;
        int shown = 0;

        r = lp_common_redis(&com, &shown, err);
        ok(r != NULL && shown == 1, "the URL's password is used: shown, "
           "for the caller to warn");
        lp_redis_free(r);
        shown = 0;
        com.password_file = "/nonexistent/pw";
        r = lp_common_redis(&com, &shown, err);
        ok(r == NULL && shown == 0, "--password-file first: not shown");
        is_str(err, "--password-file /nonexistent/pw: No such file or "
               "directory", "--password-file: the error");
        com.password_file = NULL;
    }
    free(com.url_copy);
    lp_common_init(&com);
    is_int(set("redis", "unix:///run/a:b@c.sock"), 0, "-r unix:// with @");
    {
        int shown = 0;
        struct lp_redis *r = lp_common_redis(&com, &shown, err);

        ok(r != NULL && shown == 0, "unix:// has no password: not shown");
        lp_redis_free(r);
    }
    free(com.url_copy);
}

/* ---- the engine, in a child: what it prints, how it exits -------------- */

static char out[8192], errout[8192];

static void drain_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

/* Parses the words (NULL-ended) by c in a child. Returns its exit
 * status, or 100 + what tool_opt_parse returned; out and errout what it
 * printed. */
static int run(const struct tool_cmd *c, ...)
{
    char *argv[32];
    int argc = 0, po[2], pe[2], st;
    va_list ap;
    pid_t pid;

    argv[argc++] = (char *)"t-opt";
    va_start(ap, c);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    if (pipe(po) < 0 || pipe(pe) < 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        struct t_opt o;
        struct lp_common cm;
        int r;

        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        memset(&o, 0, sizeof o);
        r = tool_opt_parse(c, argc, argv, &o, &cm);
        fflush(stdout);
        _exit(100 + r);
    }
    close(po[1]);
    close(pe[1]);
    drain_fd(po[0], out, sizeof out);
    drain_fd(pe[0], errout, sizeof errout);
    close(po[0]);
    close(pe[0]);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char usage_want[] =
"usage: t-opt [options]\n"
"A test.\n"
"\n"
"  -r, --redis URL          Redis URL (redis://127.0.0.1:6379/0)\n"
"  -s, --stream KEY         stream key (logs:stream)\n"
"  -d, --dir DIR            the archive, said otherwise\n"
"                           (two lines)\n"
"  -g, --group NAME         consumer group (logpipe)\n"
"  -f, --flag               a flag\n"
"  -c, --count              one more each time\n"
"      --str S              any string\n"
"  -e, --nonempty S         never empty\n"
"      --env-str S          T_OPT_ENV_STR by default\n"
"      --dur DUR            bare: seconds\n"
"      --dur-ms DUR         bare: ms, 1ms to 1h\n"
"      --positive DUR       more than 0\n"
"      --hundred DUR        100ms or more\n"
"      --size SIZE          any size\n"
"      --size-1g SIZE       2 to 1G\n"
"  -n, --num N              1 to 9\n"
"      --big N              0 or more\n"
"      --mode WHAT          block, reject or dlq\n"
"  -l, --list A,B           at most 3\n"
"                           words\n"
"      --call X             anything but bad\n"
"      --a-long-option-name its help\n"
"      --metrics FILE       write Prometheus metrics to FILE at exit\n"
"      --metrics-interval DUR  (accepted for uniformity)\n"
"  -v, --verbose            more messages\n"
"  -q, --quiet              only errors\n"
"      --log-format FMT     text or json (text)\n"
"  -h, --help               this help\n"
"  -V, --version            version\n"
"\n"
"Exit: 0 ok, 64 usage.\n";

static void engine(void)
{
    is_int(run(&cmd, "--help", NULL), 0, "--help exits 0");
    is_str(out, usage_want, "--help: generated from the rows and notes");
    is_str(errout, "", "--help: nothing on stderr");
    is_int(run(&cmd, "-f", "-h", "--bogus", NULL), 0,
           "-h wins over what comes after it");
    is_int(run(&cmd, "-n", "0", "-h", NULL), 64,
           "-h does not win over a bad option before it");
    is_str(errout, "t-opt: -n/--num: '0' is out of range (1..9)\n",
           "a bad value: PROG: -x/--name: why");
    is_str(out, "", "a bad value: nothing on stdout");
    is_int(run(&cmd, "-V", NULL), 0, "-V exits 0");
    is_str(out, "t-opt " LP_VERSION "\n", "-V: name and version");
    is_int(run(&cmd, "--num=5", "--lo", "json", NULL), 100 + 4,
           "abbreviations and --name=value; returns where operands begin");

    is_int(run(&cmd, "--bogus", NULL), 64, "an unknown option: 64");
    is_str(errout, "t-opt: unrecognized option '--bogus'\n"
           "Try 't-opt --help' for more information.\n",
           "an unknown option: getopt's words, then the hint");
    is_int(run(&cmd, "-x", NULL), 64, "an unknown letter: 64");
    is_int(run(&cmd, "--num", NULL), 64, "a missing argument: 64");
    is_str(errout, "t-opt: option '--num' requires an argument\n"
           "Try 't-opt --help' for more information.\n",
           "a missing argument: getopt's words, then the hint");
    is_int(run(&cmd, "--flag=1", NULL), 64, "an argument to a flag: 64");
    is_int(run(&cmd, "--d", "1", NULL), 64, "an ambiguous prefix: 64");
    ok(strstr(errout, "is ambiguous") != NULL, "ambiguous: said so");
    is_int(run(&cmd, "-f", "word", NULL), 64, "an operand, none wanted: 64");
    is_str(errout, "t-opt: unexpected argument 'word' (none wanted)\n"
           "Try 't-opt --help' for more information.\n",
           "an operand, none wanted: the tool's note and the hint");
    is_int(run(&cmd, "-s", "", NULL), 64, "a common option's bad value");
    is_str(errout, "t-opt: --stream must not be empty\n",
           "a common option's bad value: said as it always was");

    is_int(run(&cmd_after, "a", "-f", "b", NULL), 100 + 2,
           "operands after the options: getopt moves them last");
    is_int(run(&cmd_after, "-f", "--", "-n", NULL), 100 + 3,
           "operands after --, even like options");
}

/* In this process: the environment against the flags. */
static int parse(const struct tool_cmd *c, ...)
{
    static char words[32][64];
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *w;

    argv[argc++] = (char *)"t-opt";
    va_start(ap, c);
    while (argc < 31 && (w = va_arg(ap, const char *)) != NULL) {
        snprintf(words[argc], sizeof words[argc], "%s", w);
        argv[argc] = words[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    memset(&t, 0, sizeof t);
    t.dur = 7000;               /* a tool's default, in its struct */
    return tool_opt_parse(c, argc, argv, &t, &com);
}

static void environment(void)
{
    unsetenv("LOGPIPE_DIR");
    unsetenv("LOGPIPE_GROUP");
    unsetenv("LOGPIPE_STREAM");
    unsetenv("T_OPT_ENV_STR");
    parse(&cmd, NULL);
    is_str(com.dir, "./logs", "no variable, no flag: the default");
    ok(com.dir_set == NULL, "the default: not given");
    is_int(t.dur, 7000, "a tool's default stays when not given");
    is_int(com.metrics_interval, 15000, "the common defaults are set");

    setenv("LOGPIPE_DIR", "envdir", 1);
    setenv("T_OPT_ENV_STR", "envstr", 1);
    parse(&cmd, NULL);
    is_str(com.dir, "envdir", "the variable beats the default");
    ok(com.dir_set == row("dir"), "the variable: given");
    is_str(t.env_str, "envstr", "a tool's own variable");
    parse(&cmd, "-d", "flagdir", "--env-str", "flagstr", NULL);
    is_str(com.dir, "flagdir", "a flag beats the variable");
    is_str(t.env_str, "flagstr", "a flag beats a tool's variable");
    setenv("LOGPIPE_DIR", "", 1);
    parse(&cmd, NULL);
    is_str(com.dir, "./logs", "an empty variable is no variable");
    ok(com.dir_set == NULL, "an empty variable: not given");

    setenv("LOGPIPE_GROUP", "envgroup", 1);
    parse(&cmd, NULL);
    is_str(com.group, "logpipe", "TOOL_NOENV: the variable is not read");
    ok(com.group_set == NULL, "TOOL_NOENV: not given");
    parse(&cmd, "-g", "flaggroup", NULL);
    is_str(com.group, "flaggroup", "TOOL_NOENV: the flag is");
    ok(com.group_set == row("group"), "TOOL_NOENV: the flag: given");
    unsetenv("LOGPIPE_GROUP");
    unsetenv("LOGPIPE_DIR");
    unsetenv("T_OPT_ENV_STR");

    /* the engine can run again (getopt starts afresh) */
    parse(&cmd, "-ff", "-cc", "--mode", "reject", "--list=x,y", "-vv",
          NULL);
    ok(t.flag == 1 && t.count == 2 && t.mode == 1 && t.list.n == 2 &&
       com.verbosity == 2, "letters bundled, a second run parses afresh");
    parse(&cmd, "--call", "x", "--num", "3", NULL);
    ok(t.given == row("num"), "given: the last of the rows sharing it");

    is_int(parse(&cmd_inorder, "list", "-f", "1-1", "--", "-n", "--", NULL),
           7, "operands in order: all taken");
    ok(t.nwords == 4 && strcmp(t.words[0], "list") == 0 &&
       strcmp(t.words[1], "1-1") == 0 && strcmp(t.words[2], "-n") == 0 &&
       strcmp(t.words[3], "--") == 0 && t.flag == 1,
       "operands in order, between options, and all after --");
    parse(&cmd_inorder, "-s", "--", "w", NULL);
    ok(t.nwords == 1 && strcmp(com.stream, "--") == 0,
       "-s --: a value, not the end of the options");

    /* the end of a run: the -r URL's copy goes with it */
    parse(&cmd, "-r", "redis://u:pw@h:1/0", NULL);
    ok(com.url_copy != NULL && strcmp(com.redis_url, com.url_copy) == 0,
       "-r with a password: the parse keeps a copy");
    is_int(tool_opt_end(&com, 75), 75, "tool_opt_end: returns the status");
    ok(com.url_copy == NULL && com.redis_url == NULL,
       "tool_opt_end: the copy freed, nothing left pointing at it");
    is_int(tool_opt_end(&com, 0), 0, "tool_opt_end: twice is harmless");
}

int main(void)
{
    kinds();
    engine();
    environment();
    return tap_done();
}
