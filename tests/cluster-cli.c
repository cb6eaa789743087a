/* cluster-cli.c -- commands through lp_cluster, as redis-cli -c runs them:
 * the tests' (t0342-t0349) way to drive lp_cluster against real servers */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_redis.h"
#include "lp_url.h"

/*
 * cluster-cli [-r URL] [-a PASSWORD] [-t MS] [-k N] [-s] [--tls-ca FILE]
 *             [--tls-cert FILE --tls-key FILE] [--tls-insecure]
 *             [CMD ARG...]
 *
 * With a command: runs it through lp_cluster_cmdv, its key argv[N] (-k,
 * default 1; -1: no key). Without: runs stdin's lines, split on blanks,
 * one command a line over the same struct lp_cluster (its map kept from
 * line to line), where
 *   @N CMD ARG...     the key is argv[N] (default 1; @-1: none)
 *   !SHELL COMMAND    runs it (system), between two commands
 *   .slot KEY...      prints lp_key_slot of each key
 *   .masters          prints each master's host:port (lp_cluster_master)
 *   .mode             prints standalone or cluster
 *   {                 starts a batch: the lines up to "}" are written to
 *   ...               the node of the first one's key in one write, every
 *   }                 reply checked (lp_cluster_check) and the whole batch
 *                     written again where lp_cluster_resend says
 *   # ...             a comment
 * Replies are printed as redis-cli --raw prints them (nil: an empty line,
 * an error: "(error) TEXT"), one element a line. -s prints the counts of
 * lp_cluster_stats on stderr at the end: "moved=M ask=A waits=W
 * reloads=R". Exit 0; 69 when Redis cannot be reached or a command gets
 * no reply (the message on stderr), 78 for refused credentials or TLS or
 * a database in a cluster, 64 for a bad use.
 */

#define MAXARGS 64
#define MAXBATCH 64

static struct lp_cluster *cl;
static int key_default = 1;

static void print_reply(const struct lp_reply *rep)
{
    size_t n;
    const char *s;

    switch (lp_reply_type(rep)) {
    case LP_REPLY_ARRAY:
        for (size_t i = 0; i < lp_reply_len(rep); i++)
            print_reply(lp_reply_at(rep, i));
        break;
    case LP_REPLY_INTEGER:
        printf("%lld\n", lp_reply_int(rep));
        break;
    case LP_REPLY_NIL:
        printf("\n");
        break;
    case LP_REPLY_ERROR:
        s = lp_reply_str(rep, &n);
        printf("(error) %.*s\n", (int)n, s);
        break;
    default:
        s = lp_reply_str(rep, &n);
        fwrite(s, 1, n, stdout);
        printf("\n");
    }
}

__attribute__((noreturn))
static void die(int code, const char *what, const char *err)
{
    fflush(stdout);
    fprintf(stderr, "cluster-cli: %s%s%s\n", what, *what ? ": " : "", err);
    lp_cluster_free(cl);
    exit(code);
}

static void run(int key, int argc, char **argv)
{
    size_t lens[MAXARGS];
    char err[LP_ERRLEN];
    struct lp_reply *rep;

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rep = lp_cluster_cmdv(cl, key, argc, (const char **)argv, lens, err);
    if (rep == NULL)
        die(69, argv[0], err);
    print_reply(rep);
    lp_reply_free(rep);
}

struct cmd {
    int argc, key;
    char *argv[MAXARGS];
    size_t lens[MAXARGS];
};

/* A batch for the slot of the first key in it, written to one node in
 * one write, every reply checked: the pipelined use of lp_cluster (see
 * lp_cluster.h). A batch that starts with MULTI is a transaction, sent
 * again whole after a redirect (one ASKING before it after ASK); other
 * batches send again only their redirected commands (ASKING before each). */
static void batch(struct cmd *b, int n)
{
    struct lp_reply *done[MAXBATCH] = { NULL }, *rep;
    int todo[MAXBATCH], tx = n > 0 && strcasecmp(b[0].argv[0], "MULTI") == 0;
    struct lp_cluster_try t;
    struct lp_redis *r = NULL;
    unsigned slot = LP_CLUSTER_SLOTS;
    char err[LP_ERRLEN];
    int asking = 0, rc, left = n;
    int64_t ms;

    if (n == 0)
        return;
    for (int i = 0; i < n; i++)
        todo[i] = 1;
    for (int i = 0; i < n && slot == LP_CLUSTER_SLOTS; i++)
        if (b[i].key >= 0 && b[i].key < b[i].argc)  /* not MULTI's */
            slot = lp_key_slot(b[i].argv[b[i].key], b[i].lens[b[i].key]);
    lp_cluster_try_start(cl, &t, slot);
    rc = lp_cluster_slot_node(cl, slot, &r, err);
    for (;;) {
        int redirected = 0;
        if (rc == LP_REDIS_EAUTH)
            die(78, "", err);
        if (rc != 0) {
            lp_cluster_unreachable(cl, &t, err);
            goto resend;
        }
        for (int i = 0; i < n; i++) {
            if (!todo[i])
                continue;
            if (asking && (!tx || i == 0) && lp_cluster_asking(r) < 0)
                die(69, "", "out of memory");
            if (lp_redis_append(r, b[i].argc, (const char **)b[i].argv,
                                b[i].lens) < 0)
                die(69, "", "out of memory");
        }
        if (lp_redis_flush(r, err) < 0) {
            /* not written whole: nothing of it ran (a test cluster does
             * not cut a write short) */
            lp_cluster_unreachable(cl, &t, err);
            goto resend;
        }
        for (int i = 0; i < n; i++) {
            if (!todo[i])
                continue;
            for (int k = asking && (!tx || i == 0); k >= 0; k--) {
                if (lp_redis_reply(r, &rep, err) < 0)
                    die(69, "batch", err);  /* which ran: not known */
                if (lp_cluster_check(cl, &t, r, rep) != LP_REDIR_NONE) {
                    redirected = 1;
                    lp_reply_free(rep);
                } else if (k > 0) {
                    lp_reply_free(rep);     /* ASKING's +OK */
                } else {
                    done[i] = rep;
                    todo[i] = 0;
                    left--;
                }
            }
        }
        if (tx && redirected) {
            /* EXECABORT: nothing of it ran, all of it again */
            for (int i = 0; i < n; i++) {
                lp_reply_free(done[i]);
                done[i] = NULL;
                todo[i] = 1;
            }
            left = n;
        }
        if (left == 0)
            break;
resend:
        rc = lp_cluster_resend(cl, &t, &r, &asking, &ms, err);
        if (rc < 0)
            die(69, "batch", err);
        if (rc == LP_CLUSTER_WAIT) {
            poll(NULL, 0, (int)ms);
            rc = lp_cluster_slot_node(cl, slot, &r, err);
        } else {
            rc = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        print_reply(done[i]);
        lp_reply_free(done[i]);
    }
}

/* A whole decimal number from the command line or a script, else 64 */
static long num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        die(64, s, "not a number in range");
    return v;
}

/* Splits line into c (in place); 0 when blank */
static int split(char *line, struct cmd *c)
{
    char *save = NULL, *w;

    c->argc = 0;
    c->key = key_default;
    for (w = strtok_r(line, " \t\r\n", &save); w;
         w = strtok_r(NULL, " \t\r\n", &save)) {
        if (c->argc == 0 && w[0] == '@' && c->key == key_default) {
            c->key = (int)num(w + 1, -1, MAXARGS - 1);
            continue;
        }
        if (c->argc == MAXARGS)
            die(64, "", "too many words on a line");
        c->lens[c->argc] = strlen(w);
        c->argv[c->argc++] = w;
    }
    return c->argc;
}

static void script(void)
{
    char *lines[MAXBATCH];
    struct cmd b[MAXBATCH];
    char *line = NULL, err[LP_ERRLEN];
    size_t cap = 0;
    int inbatch = 0, nb = 0;

    while (getline(&line, &cap, stdin) > 0) {
        struct cmd c;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
            continue;
        if (line[0] == '!') {
            fflush(stdout);
            if (system(line + 1) != 0)
                die(64, line + 1, "failed");
            continue;
        }
        if (strcmp(line, "{") == 0) {
            inbatch = 1;
            nb = 0;
            continue;
        }
        if (strcmp(line, "}") == 0) {
            batch(b, nb);
            for (int i = 0; i < nb; i++)
                free(lines[i]);
            inbatch = 0;
            nb = 0;
            continue;
        }
        if (inbatch) {
            if (nb == MAXBATCH)
                die(64, "", "batch too long");
            if ((lines[nb] = strdup(line)) == NULL)
                die(69, "", "out of memory");
            if (split(lines[nb], &b[nb]))
                nb++;
            else
                free(lines[nb]);
            continue;
        }
        if (split(line, &c) == 0)
            continue;
        if (strcmp(c.argv[0], ".slot") == 0) {
            for (int i = 1; i < c.argc; i++)
                printf("%u\n", lp_key_slot(c.argv[i], c.lens[i]));
        } else if (strcmp(c.argv[0], ".mode") == 0) {
            printf("%s\n", lp_cluster_mode(cl) == LP_CLUSTER_CLUSTER
                   ? "cluster" : "standalone");
        } else if (strcmp(c.argv[0], ".masters") == 0) {
            for (size_t i = 0; i < lp_cluster_masters(cl); i++) {
                struct lp_redis *r;
                if (lp_cluster_master(cl, i, &r, err) != 0)
                    die(69, "", err);
                printf("%s\n", lp_redis_name(r));
            }
        } else {
            run(c.key, c.argc, c.argv);
        }
    }
    if (inbatch)
        die(64, "", "a batch without its }");
    free(line);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "tls-ca", required_argument, NULL, 1 },
        { "tls-cert", required_argument, NULL, 2 },
        { "tls-key", required_argument, NULL, 3 },
        { "tls-insecure", no_argument, NULL, 4 },
        { NULL, 0, NULL, 0 }
    };
    const char *url = getenv("LOGPIPE_REDIS_URL"), *password = NULL;
    struct lp_tls tls = { 0 };
    int has_tls = 0, stats = 0, o, rc;
    int64_t timeout = 10000;
    char err[LP_ERRLEN];
    struct lp_url u;

    while ((o = getopt_long(argc, argv, "+r:a:t:k:s", longopts, NULL)) != -1) {
        switch (o) {
        case 'r': url = optarg; break;
        case 'a': password = optarg; break;
        case 't': timeout = num(optarg, 0, 86400000); break;
        case 'k': key_default = (int)num(optarg, -1, MAXARGS - 1); break;
        case 's': stats = 1; break;
        case 1: tls.ca = optarg; has_tls = 1; break;
        case 2: tls.cert = optarg; has_tls = 1; break;
        case 3: tls.key = optarg; has_tls = 1; break;
        case 4: tls.insecure = 1; has_tls = 1; break;
        default:
            fprintf(stderr, "usage: cluster-cli [-r URL] [-a PASSWORD] "
                    "[-t MS] [-k N] [-s] [CMD ARG...]\n");
            return 64;
        }
    }
    if (lp_url_parse(url ? url : "redis://127.0.0.1:6379", &u, err) < 0)
        die(64, "", err);
    if ((cl = lp_cluster_new(&u, password, has_tls ? &tls : NULL)) == NULL)
        die(69, "", "out of memory");
    lp_cluster_set_timeout(cl, timeout);
    if ((rc = lp_cluster_open(cl, err)) != 0)
        die(rc == LP_REDIS_EAUTH ? 78 : 69, "", err);
    if (optind < argc) {
        if (argc - optind > MAXARGS)
            die(64, "", "too many arguments");
        run(key_default, argc - optind, argv + optind);
    } else {
        script();
    }
    if (stats) {
        struct lp_cluster_stats st;
        lp_cluster_stats(cl, &st);
        fflush(stdout);
        fprintf(stderr, "moved=%llu ask=%llu waits=%llu reloads=%llu\n",
                (unsigned long long)st.moved, (unsigned long long)st.ask,
                (unsigned long long)st.waits,
                (unsigned long long)st.reloads);
    }
    lp_cluster_free(cl);
    return 0;
}
