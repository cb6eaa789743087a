/* logpipe-rotate.c -- compress closed days, apply retention */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_exit.h"
#include "lp_fs.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_opt.h"
#include "lp_parse.h"
#include "lp_rotate.h"
#include "lp_sig.h"
#include "lp_time.h"
#include "tool_opt.h"

#include "tool_msg.h"

/*
 * The tool over the rotate engine (lib/lp_rotate.c, which says what is
 * done to the tree and how it stays safe while drains write): options,
 * one NDJSON line per action on stdout, the exit status, --metrics.
 */

struct rotate_opt {
    struct lp_common com;
    const char *layout;
    int64_t grace, retain;
    uint64_t level, max_size, jobs;
    int dry_run;
};

#define OPT struct rotate_opt
static const struct lp_optdef longopts[] = {
    LP_LONG_DIR,
    { "layout", 0, LP_STR(OPT, layout), "TEMPLATE",
      "the drains' layout, to read days from names\n"
      "({service}/%Y-%m-%d.jsonl)" },
    { "grace", 0, LP_DURATION(OPT, grace), "DUR",
      "leave files written this recently (15m)" },
    { "level", 0, LP_UINT(OPT, level), "N", "gzip level, 1 to 9 (6)",
      .min = 1, .max = 9 },
    { "retain", 0, LP_DURATION(OPT, retain), "DUR",
      "delete days that ended longer ago than DUR" },
    { "max-size", 0, LP_SIZE(OPT, max_size), "SIZE",
      "delete the oldest days while the tree is larger" },
    { "jobs", 'j', LP_UINT(OPT, jobs), "N", "compress N files at once (1)",
      .min = 1, .max = 64 },
    { "dry-run", 'n', LP_FLAG(OPT, dry_run), NULL,
      "print the actions, do nothing" },
    LP_LONG_METRICS,
    LP_LONG_LOG,
    { NULL }
};
#undef OPT

static const struct tool_cmd cli = {
    .name = "logpipe-rotate",
    .synopsis =
"usage: logpipe-rotate [options]\n"
"Compress the closed days of an archive tree into .jsonl.gz, delete old\n"
"days; one NDJSON line per action on stdout.\n"
"\n",
    .epilog =
"Exit: 0 ok, 64 usage, 66 no such --dir, 70 internal error, 74 I/O error\n"
"(disk full), 75 another rotate runs on the tree, 78 bad --layout.\n"
"See logpipe-rotate(1).\n",
    .opts = longopts,
};

/* The tool's run: its options, the engine, what --metrics needs. */
struct tool {
    struct rotate_opt opt;
    struct lp_rotate *rot;      /* NULL until it has the tree */
    int64_t start;              /* the run's "now", for its seconds */
    pid_t pid;                  /* the tool's, not a worker's */
};

/* --metrics, whatever the status (also 66, 75, 78): a monitor sees the
 * failed runs too. A file that cannot be written is said once and changes
 * nothing else. Not from a worker: its counts go up to the tool. */
static void write_metrics(const struct tool *t)
{
    static const struct lp_rotate_counts none;
    const struct lp_rotate_counts *c = t->rot ? lp_rotate_counts(t->rot)
                                              : &none;
    char err[LP_ERRLEN];
    struct lp_metrics *m;

    if (t->opt.com.metrics == NULL || getpid() != t->pid)
        return;
    m = lp_metrics_new(&lp_log_notify);
    for (int i = 0; i < LP_ROT_NACTIONS; i++) {
        char l[48];
        snprintf(l, sizeof l, "action=\"%s\"", lp_rotate_action_names[i]);
        lp_metric_set(lp_counter(m, "logpipe_rotate_actions_total", l,
                                 "Actions taken on the tree."),
                      (double)c->act[i]);
    }
    lp_metric_set(lp_counter(m, "logpipe_rotate_bytes_in_total", "",
                             "Bytes compressed."), (double)c->bytes_in);
    lp_metric_set(lp_counter(m, "logpipe_rotate_bytes_out_total", "",
                             "Bytes of gzip written."),
                  (double)c->bytes_out);
    lp_metric_set(lp_counter(m, "logpipe_rotate_errors_total", "",
                             "Files that could not be handled."),
                  (double)c->errors);
    lp_metric_set(lp_gauge(m, "logpipe_rotate_seconds", "",
                           "How long the run took."),
                  (double)(lp_now_ms() - t->start) / 1000.0);
    if (lp_metrics_write(m, t->opt.com.metrics, err) < 0)
        lp_warn("%s", err);
    lp_metrics_free(m);
}

/* One action line, written with one write(2) so that lines of parallel
 * workers never mix. A reader gone (| head): the tool ends as a filter
 * does, here or in a worker (which the engine sees as killed by SIGPIPE). */
static void on_action(void *ctx, const struct lp_rotate_action *a)
{
    const struct tool *t = ctx;
    struct lp_buf b = { 0 };

    lp_buf_adds(&b, "{\"action\":\"");
    lp_buf_adds(&b, lp_rotate_action_names[a->what]);
    lp_buf_adds(&b, "\",\"path\":");
    lp_buf_add_jstr(&b, a->path, strlen(a->path));
    if (a->bytes_in >= 0) {
        lp_buf_adds(&b, ",\"bytes_in\":");
        lp_buf_addu(&b, (unsigned long long)a->bytes_in);
    }
    if (a->bytes_out >= 0) {
        lp_buf_adds(&b, ",\"bytes_out\":");
        lp_buf_addu(&b, (unsigned long long)a->bytes_out);
    }
    if (a->ms >= 0) {
        lp_buf_adds(&b, ",\"ms\":");
        lp_buf_addu(&b, (unsigned long long)a->ms);
    }
    if (a->reason) {
        lp_buf_adds(&b, ",\"reason\":\"");
        lp_buf_adds(&b, a->reason);
        lp_buf_addc(&b, '"');
    }
    if (t->opt.dry_run)
        lp_buf_adds(&b, ",\"dry_run\":true");
    lp_buf_adds(&b, "}\n");
    if (b.p && lp_fs_write_all(STDOUT_FILENO, b.p, b.len) < 0 &&
        errno == EPIPE) {
        write_metrics(t);
        tool_sigpipe_exit();
    }
    lp_buf_free(&b);
}

/* Test-only (LOGPIPE_TEST_CRASH): SIGKILL ourselves at a step. */
static void crash_point(const char *where)
{
    const char *c = getenv("LOGPIPE_TEST_CRASH");

    if (c && strcmp(c, where) == 0)
        kill(getpid(), SIGKILL);
}

/* The exit status of an engine's result. */
static int exit_status(int res)
{
    switch (res) {
    case LP_ROTATE_OK:          return LP_EX_OK;
    case LP_ROTATE_ELAYOUT:     return LP_EX_CONFIG;
    case LP_ROTATE_ENODIR:      return LP_EX_NOINPUT;
    case LP_ROTATE_EBUSY:       return LP_EX_TEMPFAIL;
    case LP_ROTATE_EIO:         return LP_EX_IOERR;
    default:                    return LP_EX_SOFTWARE;
    }
}

int main(int argc, char **argv)
{
    struct tool t = { .opt = {
        .layout = "{service}/%Y-%m-%d.jsonl",
        .grace = 15 * 60 * 1000,
        .level = 6,
        .jobs = 1,
    } };
    struct rotate_opt *o = &t.opt;
    char err[LP_ERRLEN] = "";
    int res;

    tool_opt_parse(&cli, argc, argv, o, &o->com);
    lp_log_init("logpipe-rotate", o->com.log_format, o->com.verbosity);
    lp_sig_init(0);
    t.start = lp_now_ms();
    t.pid = getpid();
    res = lp_rotate_new(&(struct lp_rotate_conf){
        .dir = o->com.dir, .layout = o->layout, .grace = o->grace,
        .retain = o->retain, .max_size = o->max_size, .level = o->level,
        .jobs = o->jobs, .dry_run = o->dry_run,
        .on_action = on_action, .ctx = &t, .notify = lp_log_notify,
        .test_hook = getenv("LOGPIPE_TEST_CRASH") ? crash_point : NULL,
    }, &t.rot, err);
    if (res == LP_ROTATE_OK) {
        t.start = lp_rotate_now(t.rot);
        res = lp_rotate_run(t.rot, err);
    }
    if (res == LP_ROTATE_EPIPE) {
        /* a worker's reader left (| head): leave as it expects */
        write_metrics(&t);
        tool_sigpipe_exit();
    }
    if (res != LP_ROTATE_OK && err[0])
        lp_error("%s", err);
    write_metrics(&t);
    lp_rotate_free(t.rot);
    return tool_opt_end(&o->com, exit_status(res));
}
