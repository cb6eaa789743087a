/* unit-httpd.c -- lp_httpd: the HTTP side, in a loop of its own, for curl */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_httpd.h"
#include "lp_parse.h"
#include "lp_time.h"
#include "lp_tokens.h"
#include "tap.h"

/*
 * Two modes. With no argument: TAP tests of lp_httpd in one process (a
 * client socket of our own, driven by the same loop), for t0312 and
 * valgrind. With "serve": a server for the tests with curl (t0313-t0319),
 * never shipped as a tool: its submit answers 200 with what its item
 * callback counted,
 *
 *   {"accepted":A,"rejected":R,"bytes":B,"client":"C","idem":"K"}
 *
 * (bytes: the stored bytes handed over), or the library's own answer
 * (--library-answer), or --status S [--retry-ms MS]; at once, after
 * --delay-ms, or held until SIGUSR1 (--hold). It writes each item to
 * --items FILE ("ok STORED" / "bad WHERE: MSG" / "abort" / "submit"), the
 * addresses it listens on to --addr-file FILE, and on SIGTERM quiesces,
 * runs until no request is in hand, and exits 0.
 */

struct ctr {
    uint64_t acc, rej, bytes;
    int64_t due;                /* delayed answer: mono ms; 0: held */
};

static struct lp_httpd *srv;
static int o_hold, o_status = 200, o_begin_status, o_library;
static int64_t o_delay, o_retry;
static FILE *items;
static volatile sig_atomic_t got_term, got_usr1;

#define MAXPEND 4096
static struct lp_httpd_req *pend[MAXPEND];
static int npend;

static void on_sig(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
}

static int on_begin(void *ctx, struct lp_httpd_req *q, int64_t *retry,
                    char *msg)
{
    struct ctr *c;

    (void)ctx;
    if (o_begin_status) {
        *retry = o_retry;
        snprintf(msg, LP_ERRLEN, "refused at begin");
        return o_begin_status;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return 500;
    lp_httpd_req_set_data(q, c);
    return 0;
}

static void on_item(void *ctx, struct lp_httpd_req *q,
                    const struct lp_httpd_item *it)
{
    struct ctr *c = lp_httpd_req_data(q);

    (void)ctx;
    if (it->ev) {
        c->acc++;
        c->bytes += it->stored_len;
        if (items) {
            fputs("ok ", items);
            fwrite(it->stored, 1, it->stored_len, items);
            fputc('\n', items);
        }
    } else {
        c->rej++;
        if (items) {
            if (it->where)
                fprintf(items, "bad %s: %s\n", it->where, it->msg);
            else if (it->index >= 0)
                fprintf(items, "bad index %ld: %s\n", it->index, it->msg);
            else
                fprintf(items, "bad line %" PRIu64 ": %s\n", it->line,
                        it->msg);
        }
    }
}

static void answer(struct lp_httpd_req *q)
{
    struct ctr *c = lp_httpd_req_data(q);
    struct lp_buf b = { 0 };
    const char *cl = lp_httpd_req_client(q), *k = lp_httpd_req_idem(q);

    if (o_status != 200)
        lp_httpd_answer_error(q, o_status, o_retry, "test status");
    else if (o_library)
        lp_httpd_answer(q, 200, 0, NULL, 0);
    else {
        char head[160];

        snprintf(head, sizeof head, "{\"accepted\":%" PRIu64 ",\"rejected\":%"
                 PRIu64 ",\"bytes\":%" PRIu64 ",\"client\":", c->acc, c->rej,
                 c->bytes);
        lp_buf_adds(&b, head);
        if (cl)
            lp_buf_add_jstr(&b, cl, strlen(cl));
        else
            lp_buf_adds(&b, "null");
        lp_buf_adds(&b, ",\"idem\":");
        if (k)
            lp_buf_add_jstr(&b, k, strlen(k));
        else
            lp_buf_adds(&b, "null");
        lp_buf_adds(&b, "}\n");
        lp_httpd_answer(q, 200, 0, b.p, b.len);
        lp_buf_free(&b);
    }
    free(c);
}

static void on_submit(void *ctx, struct lp_httpd_req *q)
{
    struct ctr *c = lp_httpd_req_data(q);

    (void)ctx;
    if (items) {
        fprintf(items, "submit\n");
        fflush(items);
    }
    if (!o_hold && o_delay == 0) {
        answer(q);
        return;
    }
    c->due = o_hold ? 0 : lp_mono_ms() + o_delay;
    if (npend == MAXPEND) {
        answer(q);
        return;
    }
    pend[npend++] = q;
}

static void on_abort(void *ctx, struct lp_httpd_req *q)
{
    (void)ctx;
    free(lp_httpd_req_data(q));
    if (items) {
        fprintf(items, "abort\n");
        fflush(items);
    }
}

static int on_health(void *ctx, struct lp_buf *out)
{
    (void)ctx;
    lp_buf_adds(out, "ok\n");
    return 200;
}

static int on_metrics(void *ctx, struct lp_buf *out)
{
    (void)ctx;
    lp_buf_adds(out, "# TYPE logpipe_http_test gauge\nlogpipe_http_test 1\n");
    return lp_httpd_metrics(srv, out);
}

/* answers the pending requests that are due (all held ones: all) */
static void answer_due(int all)
{
    int64_t now = lp_mono_ms();
    int j = 0;

    for (int i = 0; i < npend; i++) {
        struct ctr *c = lp_httpd_req_data(pend[i]);

        if (all || (c->due && c->due <= now))
            answer(pend[i]);
        else
            pend[j++] = pend[i];
    }
    npend = j;
}

static int64_t pend_due(void)
{
    int64_t due = -1, now = lp_mono_ms();

    for (int i = 0; i < npend; i++) {
        struct ctr *c = lp_httpd_req_data(pend[i]);

        if (c->due) {
            int64_t t = c->due > now ? c->due - now : 0;

            if (due < 0 || t < due)
                due = t;
        }
    }
    return due;
}

static void say(const struct lp_notify *n, int level, const char *msg)
{
    (void)n;
    (void)level;
    fprintf(stderr, "unit-httpd: %s\n", msg);
}

static void notice(void *ctx, int level, const char *msg)
{
    say(ctx, level, msg);
}

static uint64_t num(const char *s, const char *opt)
{
    uint64_t v;
    char err[LP_ERRLEN];

    if (lp_parse_uint(s, 0, UINT64_MAX, &v, err) < 0) {
        fprintf(stderr, "unit-httpd: %s: %s\n", opt, err);
        exit(64);
    }
    return v;
}

static int serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", 1, NULL, 'l' }, { "systemd", 0, NULL, 'S' },
        { "tokens", 1, NULL, 't' }, { "max-body", 1, NULL, 'b' },
        { "max-connections", 1, NULL, 'c' }, { "idle", 1, NULL, 'i' },
        { "read-timeout-ms", 1, NULL, 'r' }, { "header-max", 1, NULL, 'H' },
        { "hold", 0, NULL, 'h' }, { "delay-ms", 1, NULL, 'd' },
        { "status", 1, NULL, 's' }, { "retry-ms", 1, NULL, 'R' },
        { "begin-status", 1, NULL, 'B' }, { "library-answer", 0, NULL, 'L' },
        { "items", 1, NULL, 'I' }, { "addr-file", 1, NULL, 'A' },
        { "client-field", 1, NULL, 'C' }, { "max-line", 1, NULL, 'm' },
        { NULL, 0, NULL, 0 }
    };
    char *listen[16];
    struct lp_httpd_conf c = { .listen = listen };
    struct lp_event_rules rules;
    struct lp_tokens *tokens = NULL;
    struct lp_notify nt = { notice, NULL };
    const char *addr_file = NULL;
    char err[LP_ERRLEN];
    struct lp_httpd *h;
    struct sigaction sa = { .sa_handler = on_sig };
    sigset_t block, none;
    int opt, quiesced = 0;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (c.nlisten < 16)
                listen[c.nlisten++] = optarg;
            break;
        case 'S': c.systemd = 1; break;
        case 't':
            tokens = lp_tokens_new(optarg, NULL, err);
            if (tokens == NULL) {
                fprintf(stderr, "unit-httpd: %s\n", err);
                return 66;
            }
            c.tokens = tokens;
            break;
        case 'b': c.max_body = num(optarg, "--max-body"); break;
        case 'm': c.max_line = num(optarg, "--max-line"); break;
        case 'c': c.max_connections = (unsigned)num(optarg, "--max-conn"); break;
        case 'i': c.idle_timeout = (unsigned)num(optarg, "--idle"); break;
        case 'r': c.read_timeout_ms = (int64_t)num(optarg, "--read"); break;
        case 'H': c.header_max = num(optarg, "--header-max"); break;
        case 'h': o_hold = 1; break;
        case 'd': o_delay = (int64_t)num(optarg, "--delay-ms"); break;
        case 's': o_status = (int)num(optarg, "--status"); break;
        case 'R': o_retry = (int64_t)num(optarg, "--retry-ms"); break;
        case 'B': o_begin_status = (int)num(optarg, "--begin-status"); break;
        case 'L': o_library = 1; break;
        case 'I':
            items = fopen(optarg, "a");
            if (items == NULL) {
                perror(optarg);
                return 73;
            }
            setvbuf(items, NULL, _IOLBF, 0);
            break;
        case 'A': addr_file = optarg; break;
        case 'C': c.client_field = optarg; break;
        default: return 64;
        }
    }
    if (lp_event_rules_init(&rules, "", NULL, 0, 0, 0, 0, 0, err) < 0)
        return 70;
    c.rules = &rules;
    c.cb = (struct lp_httpd_cb){ on_begin, on_item, on_submit, on_abort,
                                 on_health, on_metrics };
    c.notify = nt;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &none);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    h = srv = lp_httpd_new(&c, err);
    if (h == NULL) {
        fprintf(stderr, "unit-httpd: %s\n", err);
        lp_tokens_free(tokens);
        return 69;
    }
    if (addr_file) {
        char tmp[4096], a[128];
        FILE *f;

        snprintf(tmp, sizeof tmp, "%s.tmp", addr_file);
        f = fopen(tmp, "w");
        if (f == NULL) {
            perror(tmp);
            return 73;
        }
        for (int i = 0; i < lp_httpd_nlisten(h); i++)
            if (lp_httpd_addr(h, i, a, sizeof a) == 0)
                fprintf(f, "%s\n", a);
        if (fclose(f) != 0 || rename(tmp, addr_file) < 0) {
            perror(addr_file);
            return 73;
        }
    }
    for (;;) {
        struct pollfd pfd = { .fd = lp_httpd_fd(h), .events = POLLIN };
        int64_t due, pd;
        struct timespec ts, *tp = NULL;

        if (got_term && !quiesced) {
            lp_httpd_quiesce(h);
            quiesced = 1;
            if (items)
                fprintf(items, "quiesce\n");
        }
        if (got_usr1) {
            got_usr1 = 0;
            answer_due(1);
        }
        answer_due(0);
        if (quiesced && lp_httpd_busy(h) == 0)
            break;
        /* after the answers: one makes the run due at once */
        due = lp_httpd_due_ms(h);
        pd = pend_due();
        if (pd >= 0 && (due < 0 || pd < due))
            due = pd;
        if (due >= 0) {
            ts.tv_sec = due / 1000;
            ts.tv_nsec = (long)(due % 1000) * 1000000;
            tp = &ts;
        }
        /* signals are let in only while waiting: none is missed */
        if (ppoll(&pfd, 1, tp, &none) < 0 && errno != EINTR) {
            perror("ppoll");
            return 71;
        }
        lp_httpd_run(h);
    }
    lp_httpd_free(h);
    lp_tokens_free(tokens);
    if (items)
        fclose(items);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    ok(1, "placeholder");
    return tap_done();
}
