/* tool_opt.c -- the tools' command line: one table of typed options */
#include <math.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_cluster.h"
#include "lp_exit.h"
#include "lp_log.h"
#include "lp_parse.h"
#include "lp_rate.h"
#include "lp_shards.h"
#include "tool_opt.h"

#define HELP_COL 27             /* where the help of an option starts */

static const struct tool_note *note_of(const struct tool_cmd *cmd,
                                       const struct lp_optdef *o)
{
    for (const struct tool_note *n = cmd->notes; n && n->name; n++)
        if (strcmp(n->name, o->name) == 0)
            return n;
    return NULL;
}

static void *base_of(const struct lp_optdef *o, void *opt,
                     struct lp_common *com)
{
    return o->flags & LP_OF_COMMON ? (void *)com : opt;
}

void tool_opt_usage(const struct tool_cmd *cmd)
{
    fputs(cmd->synopsis, stdout);
    for (const struct lp_optdef *o = cmd->opts; o->name; o++) {
        const struct tool_note *n = note_of(cmd, o);
        const char *help = n && n->help ? n->help : o->help;
        int w;

        if (o->letter)
            w = printf("  -%c, --%s", o->letter, o->name);
        else
            w = printf("      --%s", o->name);
        if (o->meta)
            w += printf(" %s", o->meta);
        printf("%*s", w < HELP_COL ? HELP_COL - w : 2, "");
        for (const char *p = help; *p; ) {
            size_t len = strcspn(p, "\n");
            printf("%.*s\n", (int)len, p);
            p += len;
            if (*p == '\n' && *++p)
                printf("%*s", HELP_COL, "");
        }
    }
    fputs("\n", stdout);
    fputs(cmd->epilog, stdout);
}

__attribute__((noreturn))
static void hint(const struct tool_cmd *cmd)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", cmd->name);
    exit(LP_EX_USAGE);
}

void tool_opt_error(const struct tool_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(LP_EX_USAGE);
}

void tool_opt_error_hint(const struct tool_cmd *cmd, const char *msg)
{
    fprintf(stderr, "%s: %s\n", cmd->name, msg);
    hint(cmd);
}

int tool_opt_parse(const struct tool_cmd *cmd, int argc, char **argv,
                   void *opt, struct lp_common *com)
{
    struct option lo[TOOL_MAXOPT + 1];
    char so[3 * TOOL_MAXOPT + 2], err[LP_ERRLEN];
    const struct lp_optdef *o;
    int n = 0, k = 0, c;

    lp_common_init(com);
    /* operands in order come as code 1 */
    if (cmd->operand)
        so[k++] = '-';
    for (o = cmd->opts; o->name; o++, n++) {
        const struct tool_note *note = note_of(cmd, o);
        int has_arg = o->kind == LP_ARG_FLAG || o->kind == LP_ARG_COUNT ||
                      o->kind == LP_ARG_HELP || o->kind == LP_ARG_VERSION ?
                      no_argument : required_argument;
        if (n == TOOL_MAXOPT) {
            fprintf(stderr, "%s: more than %d options\n", cmd->name,
                    TOOL_MAXOPT);
            exit(LP_EX_SOFTWARE);
        }
        /* a short option returns its letter, a long-only one its row */
        lo[n] = (struct option){ o->name, has_arg, NULL,
                                 o->letter ? o->letter : 0x100 + n };
        if (o->letter) {
            so[k++] = (char)o->letter;
            if (has_arg == required_argument)
                so[k++] = ':';
        }
        if (!(note && (note->flags & TOOL_NOENV)))
            lp_opt_env(o, base_of(o, opt, com));
    }
    memset(&lo[n], 0, sizeof lo[n]);
    so[k] = '\0';

    optind = 0;                 /* glibc: start afresh */
    while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        if (c == 1) {
            cmd->operand(opt, optarg, argc);
            continue;
        }
        if (c >= 0x100 && c < 0x100 + n) {
            o = &cmd->opts[c - 0x100];
        } else {
            for (o = cmd->opts; o->name && o->letter != c; o++)
                ;
            if (o->name == NULL || c == '?' || c == ':')
                hint(cmd);      /* getopt said what */
        }
        switch (o->kind) {
        case LP_ARG_HELP:
            tool_opt_usage(cmd);
            exit(LP_EX_OK);
        case LP_ARG_VERSION:
            printf("%s %s\n", cmd->name, LP_VERSION);
            exit(LP_EX_OK);
        default:
            if (lp_opt_set(o, base_of(o, opt, com), optarg, err) < 0)
                tool_opt_error(cmd, "%s", err);
        }
    }
    if (cmd->operand) {
        /* after "--": every word is one */
        for (; optind < argc; optind++)
            cmd->operand(opt, argv[optind], argc);
        return argc;
    }
    if (!cmd->operands && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'%s\n", cmd->name,
                argv[optind], cmd->stray ? cmd->stray : "");
        hint(cmd);
    }
    return optind;
}

int tool_opt_end(struct lp_common *com, int status)
{
    if (com->redis_url == com->url_copy)
        com->redis_url = NULL;
    free(com->url_copy);
    com->url_copy = NULL;
    return status;
}

/* The -r URL as a cluster, the process's (one URL a process, asked once
 * by tool_cluster; every connection tool_redis makes routes through it):
 * mode LP_CLUSTER_*, 0 when Redis was not reached at start; key: the
 * stream whose slot the connections go to; routes: connects so far;
 * warned, insecure: the warnings of tool_redis_key said once a process,
 * however many connections it makes (one a shard's node). */
static struct {
    struct lp_cluster *c;
    int asked, mode, warned, insecure;
    unsigned long routes;
    const char *key;
} clu;

/* Is c->stream sharded (lp_shards_read)? Its shards' DLQs are named
 * from --dlq (DLQBASE:{T}, the slot of each shard), which then need not
 * share the stream's slot. Not known (not reached): 0. */
static int sharded(const struct lp_common *c)
{
    struct lp_redis *r;
    char e[LP_ERRLEN];
    unsigned n = 0;

    if (strpbrk(c->stream, "{}") ||
        lp_cluster_node(clu.c, c->stream, strlen(c->stream), &r, e) != 0 ||
        lp_shards_read(r, 1, c->stream, &n, e) != 0)
        return 0;
    return n > 1;
}

int tool_cluster(struct lp_common *c, int64_t timeout, char *err)
{
    static char dlq[1024];
    int rc;

    if (clu.asked)
        goto keys;
    clu.asked = 1;
    clu.key = c->stream;
    if ((clu.c = lp_common_cluster(c, err)) == NULL)
        return LP_EX_CONFIG;
    lp_cluster_set_timeout(clu.c, timeout < 1000 ? 1000 :
                                  timeout > 10000 ? 10000 : timeout);
    rc = lp_cluster_open(clu.c, err);
    if (rc == 0)
        clu.mode = lp_cluster_mode(clu.c);
    if (clu.mode != LP_CLUSTER_CLUSTER) {
        /* standalone: nothing changes (its connection goes); not
         * reached, or refused: the engine's connect says why, as
         * always, and finds out then */
        if (clu.mode == LP_CLUSTER_STANDALONE) {
            lp_cluster_free(clu.c);
            clu.c = NULL;
        }
        err[0] = '\0';
        return 0;
    }
keys:
    if (clu.mode != LP_CLUSTER_CLUSTER)
        return 0;
    c->cluster = 1;
    if (lp_key_aux(1, c->stream, ":dlq", dlq, sizeof dlq, err) < 0)
        return LP_EX_CONFIG;
    if (c->dlq_set == NULL) {
        c->dlq = dlq;
    } else if (lp_key_slot(c->dlq, strlen(c->dlq)) !=
               lp_key_slot(c->stream, strlen(c->stream)) &&
               !sharded(c)) {
        snprintf(err, LP_ERRLEN, "--dlq %.200s: in a Redis Cluster the "
                 "dead letter stream must share the slot of --stream "
                 "%.200s (they change together in one transaction): give "
                 "both one hash tag (--stream 'logs:{app}' --dlq "
                 "'dlq:{app}'), or leave --dlq out for %.200s", c->dlq,
                 c->stream, dlq);
        return LP_EX_CONFIG;
    }
    return 0;
}

void tool_cluster_forget(void)
{
    lp_cluster_free(clu.c);
    memset(&clu, 0, sizeof clu);
}

/* lp_redis_set_route's: r goes to the master of the stream's slot (ctx:
 * of that key's, tool_redis_key) */
static int route(void *ctx, struct lp_redis *r, char *err)
{
    char host[256];
    const char *key = ctx ? ctx : clu.key;
    int port, rc;

    if (clu.mode == 0 && clu.c) {
        /* not reached at start: what is it? */
        if ((rc = lp_cluster_open(clu.c, err)) != 0)
            return rc;
        clu.mode = lp_cluster_mode(clu.c);
        if (clu.mode == LP_CLUSTER_CLUSTER) {
            snprintf(err, LP_ERRLEN, "%s is a Redis Cluster, which could "
                     "not be reached when this run started: its keys were "
                     "named for a standalone server; start it again",
                     lp_redis_name(r));
            clu.mode = 0;
            return LP_REDIS_EAUTH;
        }
        lp_cluster_free(clu.c);
        clu.c = NULL;
    }
    if (clu.mode != LP_CLUSTER_CLUSTER)
        return 0;
    if (clu.routes++ > 0)
        lp_cluster_stale(clu.c);    /* a reconnect: where is it now? */
    rc = lp_cluster_slot_addr(clu.c, lp_key_slot(key, strlen(key)),
                              host, sizeof host, &port, err);
    if (rc != 0)
        return rc;
    if (lp_redis_retarget(r, host, port) < 0) {
        snprintf(err, LP_ERRLEN, "%.200s: a host name too long", host);
        return LP_REDIS_ETEMP;
    }
    return 0;
}


struct lp_cluster *tool_cluster_get(void)
{
    return clu.mode == LP_CLUSTER_CLUSTER ? clu.c : NULL;
}

int tool_cluster_reached(void)
{
    return !clu.asked || clu.mode != 0;
}

int tool_cluster_where(const char *key, char *node, size_t cap, char *err)
{
    char host[256];
    int port, rc;

    node[0] = '\0';
    if (clu.mode != LP_CLUSTER_CLUSTER)
        return 0;
    rc = lp_cluster_slot_addr(clu.c, lp_key_slot(key, strlen(key)), host,
                              sizeof host, &port, err);
    if (rc != 0)
        return rc;
    snprintf(node, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);
    return 0;
}

struct lp_redis *tool_redis_key(const struct lp_common *c, const char *key,
                                char *err)
{
    int shown = 0;
    struct lp_redis *r = lp_common_redis(c, &shown, err);

    /* the route's ctx: the key whose slot it goes to (NULL: clu.key) */
    if (r && clu.asked && clu.mode != LP_CLUSTER_STANDALONE && clu.c)
        lp_redis_set_route(r, route, (void *)key);

    if (shown && !clu.warned++)
        lp_warn("the password in the --redis URL was visible to other "
                "users (ps); use --password-file or LOGPIPE_REDIS_PASSWORD");
    if (r && c->tls_insecure && !clu.insecure++)
        lp_warn("--tls-insecure: Redis's certificate is not checked: anyone "
                "between here and Redis can read and change what is sent");
    return r;
}

struct lp_redis *tool_redis(const struct lp_common *c, char *err)
{
    return tool_redis_key(c, NULL, err);
}

int tool_key_node(const char *key, int fresh, char *out, size_t cap)
{
    char err[LP_ERRLEN];

    if (clu.mode != LP_CLUSTER_CLUSTER || clu.c == NULL)
        return -1;
    if (fresh)
        lp_cluster_stale(clu.c);
    return tool_cluster_where(key, out, cap, err) == 0 && out[0] ? 0 : -1;
}

int tool_rate_opt(const struct lp_optdef *o, void *base, char *arg,
                  char *err)
{
    double *rate = (double *)((char *)base + o->off);

    if (lp_rate_parse(arg, rate, err) < 0)
        return -1;
    if (*rate > 1e6) {
        snprintf(err, LP_ERRLEN, "'%s' is more than 1000000000/s", arg);
        return -1;
    }
    return 0;
}

uint64_t tool_burst_default(double per_ms)
{
    double b = ceil(per_ms * 1000.0);

    return b < 1 ? 1 : (uint64_t)b;
}
