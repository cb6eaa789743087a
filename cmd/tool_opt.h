/* tool_opt.h -- the tools' command line: one table of typed options */
#ifndef TOOL_OPT_H
#define TOOL_OPT_H

#include <stdint.h>

#include "lp_opt.h"

/*
 * A tool describes its command line once (struct tool_cmd: its rows of
 * struct lp_optdef, see lp_opt.h, and the text around them) and
 * tool_opt_parse does the rest: defaults, then the environment, then the
 * flags in order; --help generated from the rows, --version; a bad value
 * refused with "PROG: -x/--name: why" and status 64, an unknown option
 * with getopt's words and a hint. This is the one place that prints and
 * exits for the command line.
 */

#define TOOL_MAXOPT 64          /* rows of one table at most */

/* A common option (LP_LONG_*) as one tool means it. */
#define TOOL_NOENV 1u           /* from the command line only */
struct tool_note {
    const char *name;           /* the row's; NULL ends the list */
    const char *help;           /* this tool's help; NULL: the row's */
    unsigned flags;             /* TOOL_* */
};

/* --metrics as the long-running tools (send, drain) mean it */
#define TOOL_NOTE_METRICS_LIVE \
    { "metrics", "write Prometheus metrics to FILE (at exit, and", 0 }, \
    { "metrics-interval", "every DUR while running: 15s)", 0 }

struct tool_cmd {
    const char *name;           /* "logpipe-rotate": messages, --version */
    const char *synopsis;       /* --help above the options, "\n\n" last */
    const char *epilog;         /* --help below them */
    const struct lp_optdef *opts;       /* ended by a NULL name */
    const struct tool_note *notes;      /* NULL: none */
    /* operands: none (refused, stray said after the word), all after
     * the options (operands: tool_opt_parse returns the first), or each
     * given to operand() in order, between the options */
    int operands;
    const char *stray;          /* " (events are read from stdin)" */
    void (*operand)(void *opt, char *word, int argc);
};

/*
 * Parses argv by cmd into opt (the tool's struct, defaults in place) and
 * com: the common defaults, the environment, then the flags. Prints and
 * exits 0 for --help and --version, 64 for a bad command line. Returns
 * the index of the first operand (argc when there is none left).
 */
int tool_opt_parse(const struct tool_cmd *cmd, int argc, char **argv,
                   void *opt, struct lp_common *com);

/*
 * The end of a run: frees what tool_opt_parse keeps for com (the -r URL's
 * copy, lp_common_url) and returns status, so that every way out of a
 * tool's main is `return tool_opt_end(&opt.com, status);`. Once com's
 * strings are no longer used. The ways out that do not return (an
 * exit() of tool_opt_error, tool_sigpipe_exit) leave the copy to the
 * process's end: main's frame still holds it then.
 */
int tool_opt_end(struct lp_common *com, int status);

/* Prints cmd's --help on stdout. */
void tool_opt_usage(const struct tool_cmd *cmd);

/* Exits 64 after "PROG: MESSAGE" on stderr: options that do not go
 * together. */
__attribute__((noreturn, format(printf, 2, 3)))
void tool_opt_error(const struct tool_cmd *cmd, const char *fmt, ...);

/* The same for msg, then the line that points at --help: a command line
 * that is not even the shape of one. */
__attribute__((noreturn))
void tool_opt_error_hint(const struct tool_cmd *cmd, const char *msg);

/* --rate N/s|N/m|N/h of send and logpipe-http (LP_CALL: a double of
 * tokens a ms, at most a million a ms) */
int tool_rate_opt(const struct lp_optdef *o, void *base, char *arg,
                  char *err);

/* --burst's default for a --rate of per_ms: a second's worth, at least 1 */
uint64_t tool_burst_default(double per_ms);

/* lp_common_redis, and the warning when the password is the one -r
 * showed to ps. On a Redis Cluster (tool_cluster), the connection is
 * routed: each connect goes to the master of c->stream's slot, and a
 * MOVED closes it; an ASK is followed in place (lp_redis_set_route).
 * Returns NULL with err. */
struct lp_redis *tool_redis(const struct lp_common *c, char *err);
/* In a Redis Cluster: the master of key's slot, as tool_cluster_where
 * writes it, into out[0..cap); fresh: the slot map read again first. 0,
 * or -1 (not a cluster, or not known). */
int tool_key_node(const char *key, int fresh, char *out, size_t cap);

/* tool_redis, routed in a cluster to the master of key's slot instead
 * of the stream's (key borrowed: it must outlive the connection; NULL:
 * the stream's). A shard's connection (send --shards, stat, dlq,
 * replay). */
struct lp_redis *tool_redis_key(const struct lp_common *c, const char *key,
                                char *err);

/* The -r URL's cluster, when tool_cluster found one (borrowed, the
 * process's: its node connections, for an engine that follows redirects
 * itself, as logpipe-dlq's retry and purge); NULL otherwise. */
struct lp_cluster *tool_cluster_get(void);

/* Did tool_cluster reach Redis (1 too when it was not asked)? Not
 * reached: a tool's other questions before its engine's connect would
 * only wait out the same timeout again. */
int tool_cluster_reached(void);

/* Where key's slot is served: "host:port" of its master in node (cap
 * bytes), "" when -r is not a cluster. 0, or LP_REDIS_ETEMP with err. */
int tool_cluster_where(const char *key, char *node, size_t cap, char *err);

/*
 * Is -r a Redis Cluster? Asked once a process (lp_cluster_open), before
 * the engine names its keys: on one, sets c->cluster, and the default
 * --dlq becomes the stream's (lp_key_aux: "{<stream>}:dlq"); a --dlq
 * given that does not share the stream's slot, or a stream whose keys
 * cannot, is refused (unless the stream is sharded: each shard's DLQ is
 * named from --dlq into the shard's slot, tool_shards.h). Redis not
 * reached: taken as standalone, and a cluster found at the first
 * connect is refused then. timeout: the tool's --timeout (ms); each of
 * its connections waits at most that long (at least 1 s, at most 10 s)
 * for an answer, so a Redis that hangs costs about --timeout, not 10 s
 * an attempt. Returns 0, or LP_EX_CONFIG with err.
 */
int tool_cluster(struct lp_common *c, int64_t timeout, char *err);

/*
 * Forgets what tool_cluster asked (its connections closed): the next
 * tool_cluster asks again, for the stream then named. For a process
 * about to fork workers that each route to a stream of their own
 * (logpipe-drain's shards): a connection is never shared by two
 * processes. Connections tool_redis made before must be freed first.
 */
void tool_cluster_forget(void);

#endif
