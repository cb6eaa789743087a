/* lp_opt.c -- options and environment common to every tool */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp_exit.h"
#include "lp_log.h"
#include "lp_opt.h"
#include "lp_parse.h"

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v && *v ? v : def;
}

void lp_common_init(struct lp_common *c)
{
    memset(c, 0, sizeof *c);
    c->redis_url = env_or("LOGPIPE_REDIS_URL", "redis://127.0.0.1:6379/0");
    c->stream = env_or("LOGPIPE_STREAM", "logs:stream");
    c->group = env_or("LOGPIPE_GROUP", "logpipe");
    c->dlq = env_or("LOGPIPE_DLQ", "logs:dlq");
    c->dir = env_or("LOGPIPE_DIR", "./logs");
    c->dir_set = getenv("LOGPIPE_DIR") && *getenv("LOGPIPE_DIR");
    c->group_set = getenv("LOGPIPE_GROUP") && *getenv("LOGPIPE_GROUP");
    c->metrics_interval = 15000;
    c->log_format = LP_LOG_TEXT;
}

static int nonempty(const char *what, const char *arg, char *err)
{
    if (*arg == '\0') {
        snprintf(err, LP_ERRLEN, "%s must not be empty", what);
        return -1;
    }
    return 1;
}

int lp_common_opt(struct lp_common *c, int opt, const char *arg, char *err)
{
    switch (opt) {
    case 'r': {
        /* a password in the URL: keep a copy, and blank it in argv, so
         * that ps shows it no longer than it takes to get here */
        const char *sch = strstr(arg, "://"), *at, *colon;
        c->redis_url = arg;
        if (sch && (at = strchr(sch + 3, '@')) != NULL &&
            (colon = memchr(sch + 3, ':', (size_t)(at - sch - 3))) != NULL &&
            at > colon + 1) {
            char *copy = strdup(arg);
            if (copy == NULL) {
                snprintf(err, LP_ERRLEN, "out of memory");
                return -1;
            }
            free(c->url_copy);
            c->url_copy = copy;
            c->redis_url = copy;
            /* optarg points into argv, which is ours to write */
            memset((char *)colon + 1, 'x', (size_t)(at - colon - 1));
            c->password_on_argv = 1;
        }
        return nonempty("--redis", arg, err);
    }
    case 's':
        c->stream = arg;
        return nonempty("--stream", arg, err);
    case 'g':
        c->group = arg;
        c->group_set = 1;
        return nonempty("--group", arg, err);
    case LP_OPT_DLQ:
        c->dlq = arg;
        return nonempty("--dlq", arg, err);
    case 'd':
        c->dir = arg;
        c->dir_set = 1;
        return nonempty("--dir", arg, err);
    case LP_OPT_METRICS:
        c->metrics = arg;
        return nonempty("--metrics", arg, err);
    case LP_OPT_METRICS_INTERVAL:
        if (lp_parse_duration(arg, "s", &c->metrics_interval, err) < 0)
            return -1;
        if (c->metrics_interval < 100) {
            snprintf(err, LP_ERRLEN, "--metrics-interval: at least 100ms");
            return -1;
        }
        return 1;
    case LP_OPT_PASSWORD_FILE:
        c->password_file = arg;
        return nonempty("--password-file", arg, err);
    case 'v':
        c->verbosity = c->verbosity < 0 ? 1 : c->verbosity + 1;
        return 1;
    case 'q':
        c->verbosity = -1;
        return 1;
    case LP_OPT_LOG_FORMAT:
        if ((c->log_format = lp_log_format(arg)) < 0) {
            snprintf(err, LP_ERRLEN, "--log-format: '%s' is not text or json",
                     arg);
            return -1;
        }
        return 1;
    }
    return 0;
}

static int read_password(const char *path, char *buf, size_t cap, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        snprintf(err, LP_ERRLEN, "--password-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) {
        snprintf(err, LP_ERRLEN, "--password-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';   /* the first line, no newline */
    if (buf[0] == '\0') {
        snprintf(err, LP_ERRLEN, "--password-file %s: empty", path);
        return -1;
    }
    return 0;
}

struct lp_redis *lp_common_redis(const struct lp_common *c, char *err)
{
    struct lp_url u;
    struct lp_redis *r;
    char pw[1024];
    const char *password;

    if (lp_url_parse(c->redis_url, &u, err) < 0)
        return NULL;
    if (c->password_file) {
        if (read_password(c->password_file, pw, sizeof pw, err) < 0)
            return NULL;
        password = pw;
    } else if (u.password[0]) {
        password = u.password;
        if (c->password_on_argv)
            lp_warn("the password in the --redis URL was visible to other "
                    "users (ps); use --password-file or "
                    "LOGPIPE_REDIS_PASSWORD");
    } else {
        password = getenv("LOGPIPE_REDIS_PASSWORD");
        if (password == NULL || *password == '\0')
            password = getenv("REDISCLI_AUTH");
    }
    r = lp_redis_new(&u, password);
    memset(pw, 0, sizeof pw);
    memset(&u, 0, sizeof u);
    if (r == NULL)
        snprintf(err, LP_ERRLEN, "out of memory");
    return r;
}

void lp_opt_fail(const char *prog, const struct option *tab, int c,
                 const char *err)
{
    if (tab != NULL)
        fprintf(stderr, "%s: %s: %s\n", prog, lp_optname(tab, c), err);
    else
        fprintf(stderr, "%s: %s\n", prog, err);
    exit(LP_EX_USAGE);
}

int lp_usage_hint(const char *prog)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    return LP_EX_USAGE;
}

const char *lp_optname(const struct option *tab, int c)
{
    static char buf[80];

    for (; tab->name; tab++) {
        if (tab->val != c)
            continue;
        if (c < 0x100)
            snprintf(buf, sizeof buf, "-%c/--%s", c, tab->name);
        else
            snprintf(buf, sizeof buf, "--%s", tab->name);
        return buf;
    }
    return "option";
}
