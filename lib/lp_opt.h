/* lp_opt.h -- options and environment common to every tool (SPEC 1) */
#ifndef LP_OPT_H
#define LP_OPT_H

#include <stddef.h>
#include <stdint.h>

#include "lp_redis.h"

#ifndef LP_VERSION
#define LP_VERSION "0.1.0"
#endif

/*
 * An option is a row of a table, in curl's manner: its names, the kind of
 * its value and the field that value fills, its bounds, the environment
 * variable that gives a default, and its line of --help. A row reads
 *
 *     { "level", 0, LP_UINT(struct rotate_opt, level), "N",
 *       "gzip level, 1 to 9 (6)", .min = 1, .max = 9 },
 *
 * name, short letter, kind and field (the macro checks the field's type),
 * the argument's name and the help, then what the kind wants, by name.
 * cmd/tool_opt.c walks a table with getopt_long, prints and exits; this
 * file converts and stores one value (lp_opt_set), and does neither.
 * A flag beats the environment (lp_opt_env), which beats the default:
 * the value the field held before.
 */
enum lp_optkind {
    LP_ARG_FLAG,        /* int = val (1 when val is 0) */
    LP_ARG_COUNT,       /* int + 1, from 0 when below it (-v after -q) */
    LP_ARG_STR,         /* const char *, borrowed from argv */
    LP_ARG_DURATION,    /* int64_t ms; a bare number is in unit ("s") */
    LP_ARG_SIZE,        /* uint64_t bytes: 512, 64K, 1G */
    LP_ARG_UINT,        /* uint64_t */
    LP_ARG_ENUM,        /* int: the index of the value among words */
    LP_ARG_LIST,        /* struct lp_list: "a,b,c"; a second one replaces */
    LP_ARG_CALL,        /* call() converts and stores */
    LP_ARG_HELP,        /* -h: the caller prints the usage */
    LP_ARG_VERSION      /* -V: the caller prints the version */
};

/* flags of a row */
#define LP_OF_NONEMPTY 1u       /* a string: "" is refused */
#define LP_OF_COMMON 2u         /* fills struct lp_common (LP_LONG_*) */

/* A list of words, for LP_ARG_LIST; they borrow from argv. */
#define LP_LIST_MAX 32
struct lp_list {
    int n;
    char *item[LP_LIST_MAX];
};

struct lp_optdef {
    const char *name;           /* long name, no "--"; NULL ends a table */
    int letter;                 /* short option, 0 for none */
    enum lp_optkind kind;
    size_t off;                 /* of the field it fills */
    const char *meta;           /* the argument in usage ("N"); NULL: none */
    const char *help;           /* usage text; '\n' starts a new line */
    /* bounds, inclusive: LP_ARG_UINT [min, max] (max 0: UINT64_MAX / 2);
     * LP_ARG_DURATION and LP_ARG_SIZE [min, max] (max 0: none);
     * LP_ARG_LIST at most max items (up to LP_LIST_MAX) */
    int64_t min, max;
    const char *unit;           /* LP_ARG_DURATION: "s" (NULL) or "ms" */
    const char *words;          /* LP_ARG_ENUM: "block|reject|dlq" */
    int val;                    /* LP_ARG_FLAG */
    /* LP_ARG_CALL: base is the struct off is in; 0, or -1 with err
     * (what is wrong with arg: lp_opt_set names the option) */
    int (*call)(const struct lp_optdef *o, void *base, char *arg,
                char *err);
    size_t given;               /* LP_GIVEN: pointed at this row when set */
    const char *env;            /* variable that gives a string field */
    unsigned flags;             /* LP_OF_* */
};

/* offsetof(T, f), refused at compile time unless f is a type */
#define LP_FIELD(T, f, type) \
    (offsetof(T, f) + 0 * sizeof(_Generic(((T *)0)->f, type: 1)))

/* The kind of a row and the field it fills; each ends on .off, so that
 * meta and help follow in their places. */
#define LP_FLAG(T, f) .kind = LP_ARG_FLAG, .off = LP_FIELD(T, f, int)
#define LP_COUNT(T, f) .kind = LP_ARG_COUNT, .off = LP_FIELD(T, f, int)
#define LP_STR(T, f) \
    .kind = LP_ARG_STR, .off = LP_FIELD(T, f, const char *)
#define LP_DURATION(T, f) \
    .kind = LP_ARG_DURATION, .off = LP_FIELD(T, f, int64_t)
#define LP_SIZE(T, f) .kind = LP_ARG_SIZE, .off = LP_FIELD(T, f, uint64_t)
#define LP_UINT(T, f) .kind = LP_ARG_UINT, .off = LP_FIELD(T, f, uint64_t)
#define LP_ENUM(T, f) .kind = LP_ARG_ENUM, .off = LP_FIELD(T, f, int)
#define LP_LIST(T, f) \
    .kind = LP_ARG_LIST, .off = LP_FIELD(T, f, struct lp_list)
/* fn gets f's struct as base; f is the field it mainly fills */
#define LP_CALL(T, f, fn) \
    .call = (fn), .kind = LP_ARG_CALL, .off = offsetof(T, f)
#define LP_NOARG(k) .kind = (k), .off = 0
/* a field of T that points at the row when the option is given */
#define LP_GIVEN(T, f) \
    .given = LP_FIELD(T, f, const struct lp_optdef *) + 1

struct lp_common {
    const char *redis_url;      /* LOGPIPE_REDIS_URL */
    const char *stream;         /* LOGPIPE_STREAM */
    const char *group;          /* LOGPIPE_GROUP */
    const char *dlq;            /* LOGPIPE_DLQ */
    const char *dir;            /* LOGPIPE_DIR */
    const char *password_file;
    /* rediss:// (lp_redis_tls): --tls-ca, --tls-cert, --tls-key,
     * --tls-server-name, --tls-insecure */
    const char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    int tls_insecure;
    const char *metrics;        /* --metrics FILE */
    int64_t metrics_interval;   /* ms, for long runs */
    const struct lp_optdef *dir_set;    /* --dir or LOGPIPE_DIR given */
    const struct lp_optdef *group_set;  /* --group or LOGPIPE_GROUP given */
    int verbosity;              /* -q: -1, -v: +1 each */
    int log_format;             /* LP_LOG_TEXT / LP_LOG_JSON */
    int password_on_argv;       /* -r URL held a password (now blanked) */
    int cluster;                /* -r names a Redis Cluster (tool_cluster):
                                 * the stream's keys are named for one
                                 * (lp_key_aux) */
    const struct lp_optdef *dlq_set;    /* --dlq or LOGPIPE_DLQ given */
    char *url_copy;             /* that URL, whole: malloc'd, and the
                                 * caller's to free (a tool's end) */
};

/* -r URL: keeps a password in it from ps (LP_LONG_REDIS's callback) */
int lp_common_url(const struct lp_optdef *o, void *base, char *arg,
                  char *err);

/* The rows of the common options: take those that apply. Their help is
 * what most tools mean by them; a tool that means more says so (struct
 * tool_note in cmd/tool_opt.h). */
#define LP_COM(kind, f) kind(struct lp_common, f)
#define LP_LONG_REDIS \
    { "redis", 'r', LP_CALL(struct lp_common, redis_url, lp_common_url), \
      "URL", "Redis URL (redis://127.0.0.1:6379/0)", \
      .env = "LOGPIPE_REDIS_URL", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
#define LP_LONG_STREAM \
    { "stream", 's', LP_COM(LP_STR, stream), "KEY", \
      "stream key (logs:stream)", .env = "LOGPIPE_STREAM", \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
#define LP_LONG_GROUP \
    { "group", 'g', LP_COM(LP_STR, group), "NAME", \
      "consumer group (logpipe)", .env = "LOGPIPE_GROUP", \
      LP_GIVEN(struct lp_common, group_set), \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
#define LP_LONG_DLQ \
    { "dlq", 0, LP_COM(LP_STR, dlq), "KEY", \
      "dead letter stream (logs:dlq)", .env = "LOGPIPE_DLQ", \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY, \
      LP_GIVEN(struct lp_common, dlq_set) }
#define LP_LONG_DIR \
    { "dir", 'd', LP_COM(LP_STR, dir), "DIR", "archive root (./logs)", \
      .env = "LOGPIPE_DIR", LP_GIVEN(struct lp_common, dir_set), \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
#define LP_LONG_PASSWORD_FILE \
    { "password-file", 0, LP_COM(LP_STR, password_file), "FILE", \
      "read the Redis password from FILE", \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
/* TLS to Redis (rediss:// URLs): the CA, the name checked, no check */
#define LP_LONG_TLS_SERVER \
    { "tls-ca", 0, LP_COM(LP_STR, tls_ca), "FILE", \
      "rediss://: trust the CAs of FILE (the system's)", \
      .env = "LOGPIPE_TLS_CA", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }, \
    { "tls-server-name", 0, LP_COM(LP_STR, tls_server_name), "NAME", \
      "rediss://: the name Redis's certificate must have\n" \
      "(the URL's host)", .env = "LOGPIPE_TLS_SERVER_NAME", \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }, \
    { "tls-insecure", 0, LP_COM(LP_FLAG, tls_insecure), NULL, \
      "rediss://: do not check Redis's certificate (unsafe)", \
      .flags = LP_OF_COMMON }
/* a client certificate for Redis */
#define LP_LONG_TLS \
    LP_LONG_TLS_SERVER, \
    { "tls-cert", 0, LP_COM(LP_STR, tls_cert), "FILE", \
      "rediss://: present this client certificate (PEM)", \
      .env = "LOGPIPE_TLS_CERT", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }, \
    { "tls-key", 0, LP_COM(LP_STR, tls_key), "FILE", \
      "rediss://: the client certificate's key (PEM)", \
      .env = "LOGPIPE_TLS_KEY", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
/* the same, for a tool whose --tls-cert is its own server's (logpipe-http) */
#define LP_LONG_TLS_REDIS \
    LP_LONG_TLS_SERVER, \
    { "redis-tls-cert", 0, LP_COM(LP_STR, tls_cert), "FILE", \
      "rediss://: present this client certificate (PEM)", \
      .env = "LOGPIPE_TLS_CERT", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }, \
    { "redis-tls-key", 0, LP_COM(LP_STR, tls_key), "FILE", \
      "rediss://: the client certificate's key (PEM)", \
      .env = "LOGPIPE_TLS_KEY", .flags = LP_OF_COMMON | LP_OF_NONEMPTY }
#define LP_LONG_METRICS \
    { "metrics", 0, LP_COM(LP_STR, metrics), "FILE", \
      "write Prometheus metrics to FILE at exit", \
      .flags = LP_OF_COMMON | LP_OF_NONEMPTY }, \
    { "metrics-interval", 0, LP_COM(LP_DURATION, metrics_interval), "DUR", \
      "(accepted for uniformity)", .min = 100, .flags = LP_OF_COMMON }
#define LP_LONG_LOG \
    { "verbose", 'v', LP_COM(LP_COUNT, verbosity), NULL, "more messages", \
      .flags = LP_OF_COMMON }, \
    { "quiet", 'q', LP_COM(LP_FLAG, verbosity), NULL, "only errors", \
      .val = -1, .flags = LP_OF_COMMON }, \
    { "log-format", 0, LP_COM(LP_ENUM, log_format), "FMT", \
      "text or json (text)", .words = "text|json", \
      .flags = LP_OF_COMMON }, \
    { "help", 'h', LP_NOARG(LP_ARG_HELP), NULL, "this help" }, \
    { "version", 'V', LP_NOARG(LP_ARG_VERSION), NULL, "version" }

/* The defaults of the common options (no environment: lp_opt_env). */
void lp_common_init(struct lp_common *c);

/*
 * Converts arg for the row o and stores it in base, the struct o's field
 * is in (struct lp_common for LP_OF_COMMON); points o->given at o. arg
 * is borrowed (strings keep pointing into it) and may be written (-r
 * blanks a password). Returns 0, or -1 with err saying it all:
 * "-b/--batch: '0' is out of range (1..1000000)"; a common option says it
 * as the tools always have ("--stream must not be empty").
 */
int lp_opt_set(const struct lp_optdef *o, void *base, char *arg, char *err);

/* Gives o's string field the value of o->env when that is set and not
 * empty (not checked: an operator's setting), and points o->given at o.
 * Returns 1 when it did, else 0. */
int lp_opt_env(const struct lp_optdef *o, void *base);

/* "-b/--batch" or "--max-age" for the row o, in buf (cap >= 64). */
const char *lp_opt_name(const struct lp_optdef *o, char *buf, size_t cap);

/*
 * Makes a Redis handle from the URL and the password, which comes from
 * --password-file, else the URL, else LOGPIPE_REDIS_PASSWORD, else
 * REDISCLI_AUTH. Does not connect. Sets *shown when the password used is
 * the one a -r URL showed to ps (the caller warns), else leaves it.
 * Returns NULL with err.
 */
struct lp_redis *lp_common_redis(const struct lp_common *c, int *shown,
                                 char *err);
/* The same options as an lp_cluster (lp_cluster_new: not open yet), for
 * telling a cluster from a standalone server and routing in one. NULL
 * with err. */
struct lp_cluster;
struct lp_cluster *lp_common_cluster(const struct lp_common *c, char *err);


#endif
