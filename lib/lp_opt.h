/* lp_opt.h -- options and environment common to every tool (SPEC 1) */
#ifndef LP_OPT_H
#define LP_OPT_H

#include <getopt.h>
#include <stdint.h>

#include "lp_redis.h"

#ifndef LP_VERSION
#define LP_VERSION "0.1.0"
#endif

/* Long-only options get codes above any character. */
enum {
    LP_OPT_DLQ = 0x100,
    LP_OPT_LOG_FORMAT,
    LP_OPT_PASSWORD_FILE,
    LP_OPT_METRICS,
    LP_OPT_METRICS_INTERVAL,
    LP_OPT_TOOL = 0x200         /* first code free for a tool's own options */
};

/* Rows for a tool's struct option table; take those that apply. */
#define LP_LONG_REDIS { "redis", required_argument, NULL, 'r' }
#define LP_LONG_STREAM { "stream", required_argument, NULL, 's' }
#define LP_LONG_GROUP { "group", required_argument, NULL, 'g' }
#define LP_LONG_DLQ { "dlq", required_argument, NULL, LP_OPT_DLQ }
#define LP_LONG_DIR { "dir", required_argument, NULL, 'd' }
#define LP_LONG_PASSWORD_FILE \
    { "password-file", required_argument, NULL, LP_OPT_PASSWORD_FILE }
#define LP_LONG_METRICS \
    { "metrics", required_argument, NULL, LP_OPT_METRICS }, \
    { "metrics-interval", required_argument, NULL, LP_OPT_METRICS_INTERVAL }
#define LP_LONG_LOG \
    { "verbose", no_argument, NULL, 'v' }, \
    { "quiet", no_argument, NULL, 'q' }, \
    { "log-format", required_argument, NULL, LP_OPT_LOG_FORMAT }, \
    { "help", no_argument, NULL, 'h' }, \
    { "version", no_argument, NULL, 'V' }

struct lp_common {
    const char *redis_url;      /* LOGPIPE_REDIS_URL */
    const char *stream;         /* LOGPIPE_STREAM */
    const char *group;          /* LOGPIPE_GROUP */
    const char *dlq;            /* LOGPIPE_DLQ */
    const char *dir;            /* LOGPIPE_DIR */
    const char *password_file;
    const char *metrics;        /* --metrics FILE */
    int64_t metrics_interval;   /* ms, for long runs */
    int dir_set;                /* --dir or LOGPIPE_DIR given */
    int group_set;              /* --group or LOGPIPE_GROUP given */
    int verbosity;              /* -q: -1, -v: +1 each */
    int log_format;             /* LP_LOG_TEXT / LP_LOG_JSON */
    int password_on_argv;       /* -r URL held a password (now blanked) */
    char *url_copy;             /* that URL, whole */
};

/* Defaults, then the environment (flags are applied after, and win). */
void lp_common_init(struct lp_common *c);

/*
 * Applies a common option. Returns 1 when opt was one (handled), 0 when it
 * is not common, -1 with err on a bad value. -h and -V are not handled
 * here: each tool prints its own usage.
 */
int lp_common_opt(struct lp_common *c, int opt, const char *arg, char *err);

/*
 * Makes a Redis handle from the URL and the password, which comes from
 * --password-file, else the URL, else LOGPIPE_REDIS_PASSWORD, else
 * REDISCLI_AUTH. Does not connect. Returns NULL with err.
 */
struct lp_redis *lp_common_redis(const struct lp_common *c, char *err);

/* "-b/--batch" or "--max-age" for option code c of table tab. */
const char *lp_optname(const struct option *tab, int c);

/* Exits 64 after "PROG: -x/--name: err" on stderr for the option c of
 * tab, or "PROG: err" when tab is NULL (options that do not go together):
 * the one way every tool refuses its command line. */
__attribute__((noreturn))
void lp_opt_fail(const char *prog, const struct option *tab, int c,
                 const char *err);

/* Prints "usage hint" line for an unknown option and returns 64. */
int lp_usage_hint(const char *prog);

#endif
