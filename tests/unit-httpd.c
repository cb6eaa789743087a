/* unit-httpd.c -- lp_httpd: the HTTP side, in a loop of its own, for curl */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

static const char *on_item(void *ctx, struct lp_httpd_req *q,
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
    return NULL;
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

/* ---- the TAP tests, in one process ---- */

static int t_hold;              /* submit keeps the request in t_q */
static struct lp_httpd_req *t_q;
static int t_begins, t_submits, t_aborts, t_items;

static int t_begin(void *ctx, struct lp_httpd_req *q, int64_t *retry,
                   char *msg)
{
    (void)ctx; (void)q; (void)retry; (void)msg;
    t_begins++;
    return 0;
}

static const char *t_item(void *ctx, struct lp_httpd_req *q,
                          const struct lp_httpd_item *it)
{
    (void)ctx; (void)q;
    t_items++;
    /* the caller refusing an event (as --on-limit reject does) */
    if (it->ev && it->txt && memmem(it->txt, it->n, "refuse-me", 9))
        return "over --rate";
    return NULL;
}

static void t_submit(void *ctx, struct lp_httpd_req *q)
{
    (void)ctx;
    t_submits++;
    if (t_hold)
        t_q = q;
    else
        lp_httpd_answer(q, 200, 0, NULL, 0);
}

static void t_abort(void *ctx, struct lp_httpd_req *q)
{
    (void)ctx; (void)q;
    t_aborts++;
}

/* runs h for at most ms (or until its descriptor has nothing more) */
static void pump(struct lp_httpd *h, int ms)
{
    struct pollfd p = { .fd = lp_httpd_fd(h), .events = POLLIN };
    int64_t due = lp_httpd_due_ms(h);

    if (due < 0 || due > ms)
        due = ms;
    poll(&p, 1, (int)due);
    lp_httpd_run(h);
}

static int cli(struct lp_httpd *h)
{
    char a[128];
    struct sockaddr_in sin = { .sin_family = AF_INET };
    char *colon;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    static uint16_t port;       /* the last known: quiesced, none */

    if (lp_httpd_addr(h, 0, a, sizeof a) == 0) {
        colon = strrchr(a, ':');
        port = (uint16_t)atoi(colon + 1);
    }
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void put(struct lp_httpd *h, int fd, const char *s)
{
    size_t n = strlen(s), off = 0;

    while (off < n) {
        ssize_t w = write(fd, s + off, n - off);

        if (w > 0)
            off += (size_t)w;
        else
            pump(h, 10);
    }
    pump(h, 0);
}

static char resp[65536];
static int head_only;           /* the answer to HEAD: no body comes */

/* reads one answer from fd (running h meanwhile, up to 5 s): returns its
 * status, resp holding it whole; 0 at EOF with nothing, -1 at timeout */
static int get(struct lp_httpd *h, int fd)
{
    size_t n = 0;
    int64_t end = lp_mono_ms() + 5000;

    resp[0] = '\0';
    while (lp_mono_ms() < end) {
        ssize_t r = read(fd, resp + n, sizeof resp - 1 - n);
        char *hend, *cl;

        if (r == 0)
            return n ? atoi(resp + 9) : 0;
        if (r > 0) {
            n += (size_t)r;
            resp[n] = '\0';
            hend = strstr(resp, "\r\n\r\n");
            cl = strcasestr(resp, "\r\nContent-Length: ");
            if (hend && (head_only || (cl && cl < hend &&
                n >= (size_t)(hend + 4 - resp) + (size_t)atol(cl + 18))))
                return atoi(resp + 9);
            continue;
        }
        if (h) {
            pump(h, 10);
        } else {
            struct pollfd p = { .fd = fd, .events = POLLIN };

            poll(&p, 1, 10);
        }
    }
    return -1;
}

static const char *body_of(void)
{
    char *b = strstr(resp, "\r\n\r\n");

    return b ? b + 4 : "";
}

static int tests(void)
{
    char *listen[] = { "127.0.0.1:0" };
    char tokpath[] = "/tmp/unit-httpd-tokens.XXXXXX";
    struct lp_event_rules rules;
    struct lp_httpd_conf c = {
        .listen = listen, .nlisten = 1, .rules = &rules,
        .max_body = 4096, .read_timeout_ms = 400, .free_max = 2,
        .cb = { t_begin, t_item, t_submit, t_abort, NULL, NULL },
    };
    struct lp_httpd *h, *ht;
    struct lp_httpd_stats st;
    struct lp_tokens *tok;
    char err[LP_ERRLEN];
    int fd, fd2, tfd, sv[2];
    uint64_t cut;

    signal(SIGPIPE, SIG_IGN);
    lp_event_rules_init(&rules, "", NULL, 0, 0, 0, 0, 0, err);
    h = lp_httpd_new(&c, err);
    ok(h != NULL, "a server on 127.0.0.1:0 (%s)", h ? "" : err);
    if (h == NULL)
        return tap_done();

    fd = cli(h);
    put(h, fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd), 200, "GET /healthz");
    is_str(body_of(), "ok\n", "its body without a callback");
    put(h, fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd), 200, "GET /metrics on the same connection");
    ok(strstr(body_of(), "logpipe_http_requests_total{code=\"200\"} 1\n")
       != NULL, "the library's series without a callback");
    put(h, fd, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    head_only = 1;
    ok(get(h, fd) == 200 && *body_of() == '\0', "HEAD /healthz: 200, no "
       "body");
    head_only = 0;
    lp_httpd_stats(h, &st);
    is_int(st.accepted_conns, 1, "one connection for all three");

    put(h, fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd), 404, "404 for another path");
    is_str(body_of(), "{\"error\":\"not found\"}", "its body");
    put(h, fd, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd), 405, "405 for GET /v1/events");
    ok(strstr(resp, "\r\nAllow: POST\r\n") != NULL, "with Allow: POST");
    put(h, fd, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    is_int(get(h, fd), 405, "405 for POST /healthz");
    ok(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL, "with Allow: GET, HEAD");

    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-ndjson\r\nContent-Length: 25\r\n\r\n"
        "{\"a\":1}\n{\"b\":2}\nnot json\n");
    is_int(get(h, fd), 200, "POST /v1/events: 200");
    is_str(body_of(), "{\"accepted\":2,\"rejected\":1,\"errors\":[{\"line\":3,"
           "\"error\":\"invalid JSON: unexpected 'o' at byte 2\"}]}",
           "the library's answer of what item was handed");
    ok(t_begins == 1 && t_items == 3 && t_submits == 1 && t_aborts == 0,
       "begin, three items, submit (%d %d %d %d)", t_begins, t_items,
       t_submits, t_aborts);
    for (int i = 0; i < 50 && lp_httpd_busy(h); i++)
        pump(h, 10);
    is_int(lp_httpd_busy(h), 0, "nothing in hand after the answer");

    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-ndjson\r\nContent-Length: 34\r\n\r\n"
        "{\"a\":1}\n{\"b\":\"refuse-me\"}\n{\"c\":3}\n");
    is_int(get(h, fd), 200, "an event the caller refuses: 200");
    is_str(body_of(), "{\"accepted\":2,\"rejected\":1,\"errors\":[{\"line\":2,"
           "\"error\":\"over --rate\"}]}", "counted rejected, its message "
           "the caller's");
    put(h, fd, "POST /v1/logs HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 91\r\n\r\n"
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
        "{\"stringValue\":\"refuse-me\"}},{}]}]}]}");
    is_int(get(h, fd), 200, "OTLP: a record the caller refuses: 200");
    ok(strstr(body_of(), "\"rejectedLogRecords\":\"1\"") &&
       strstr(body_of(), "over --rate"), "partial success names it: %s",
       body_of());
    for (int i = 0; i < 50 && lp_httpd_busy(h); i++)
        pump(h, 10);

    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        "Content-Length: 10\r\n\r\nnot gzip!!");
    is_int(get(h, fd), 400, "bad gzip: 400 once the body has ended");
    ok(strstr(body_of(), "bad gzip") != NULL, "saying why: %s", body_of());
    is_int(t_aborts, 1, "abort, not submit");
    put(h, fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd), 200, "the connection goes on after it");

    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b");
    is_int(get(h, fd), 415, "415 for text/csv");
    is_int(get(h, fd), 0, "and the connection closed (its body not read)");
    close(fd);

    fd = cli(h);
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n");
    is_int(get(h, fd), 413, "413 from Content-Length over max_body");
    close(fd);
    fd = cli(h);
    put(h, fd, "POST /v1/logs HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-protobuf\r\nContent-Length: 1\r\n\r\nx");
    is_int(get(h, fd), 415, "415 for OTLP protobuf");
    ok(strstr(body_of(), "\"code\":3") != NULL, "in OTLP's Status: %s",
       body_of());
    close(fd);
    fd = cli(h);
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1000\r\n");
    for (int i = 0; i < 4; i++) {
        char chunk[1100];

        memset(chunk, ' ', 1024);
        chunk[1024] = '\0';
        put(h, fd, chunk);
    }
    put(h, fd, "\r\n2\r\n{}\r\n0\r\n\r\n");
    is_int(get(h, fd), 413, "413 while reading a chunked body over it");
    is_int(t_aborts, 2, "and abort");
    close(fd);

    /* an answer given later: the connection waits, others are served */
    t_hold = 1;
    fd = cli(h);
    fd2 = cli(h);
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: k-1\r\n"
        "Content-Length: 2\r\n\r\n{}");
    for (int i = 0; i < 20 && t_q == NULL; i++)
        pump(h, 10);
    ok(t_q != NULL, "submitted, held");
    is_str(t_q ? lp_httpd_req_idem(t_q) : NULL, "k-1", "its Idempotency-Key");
    ok(t_q && lp_httpd_req_client(t_q) == NULL, "no client without tokens");
    is_int(lp_httpd_busy(h), 1, "one request in hand");
    put(h, fd2, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    is_int(get(h, fd2), 200, "another connection served meanwhile");
    for (int i = 0; i < 60; i++)    /* past read_timeout: it is not cut */
        pump(h, 10);
    ok(read(fd, resp, 1) < 0 && errno == EAGAIN,
       "no answer yet, past the read timeout");
    lp_httpd_answer(t_q, 429, 1500, NULL, 0);
    t_q = NULL;
    ok(lp_httpd_due_ms(h) == 0, "an answer makes the run due at once");
    is_int(get(h, fd), 429, "the answer given later arrives");
    ok(strstr(resp, "\r\nRetry-After: 2\r\n") != NULL,
       "Retry-After in whole seconds, rounded up");
    is_str(body_of(), "{\"error\":\"too many requests\"}", "its body");
    close(fd2);

    /* pipelined: the second request, sent with the first, waits for the
     * first's answer given later, then is read and answered in turn */
    fd2 = cli(h);
    put(h, fd2, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n"
        "{\"n\":1}\n"
        "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n"
        "{\"n\":2}\n");
    for (int i = 0; i < 20 && t_q == NULL; i++)
        pump(h, 10);
    ok(t_q != NULL && lp_httpd_busy(h) == 1, "pipelined: the first held, "
       "the second not yet read");
    lp_httpd_answer(t_q, 200, 0, "{\"first\":1}", 11);
    t_q = NULL;
    is_int(get(h, fd2), 200, "the first answered");
    is_str(body_of(), "{\"first\":1}", "with the body given");
    for (int i = 0; i < 50 && t_q == NULL; i++)
        pump(h, 10);
    ok(t_q != NULL, "then the second submitted");
    if (t_q) {
        lp_httpd_answer(t_q, 200, 0, "{\"second\":1}", 12);
        t_q = NULL;
    }
    is_int(get(h, fd2), 200, "and answered");
    is_str(body_of(), "{\"second\":1}", "in order");
    close(fd2);

    /* a client that goes away mid-body */
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    close(fd);
    for (int i = 0; i < 50 && t_aborts < 3; i++)
        pump(h, 10);
    is_int(t_aborts, 3, "a client gone mid-body: abort");
    is_int(lp_httpd_busy(h), 0, "nothing in hand");

    /* slowloris: a request line, then nothing whole */
    lp_httpd_stats(h, &st);
    cut = st.timed_out;
    fd = cli(h);
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n");
    ok(get(h, fd) == 0, "a request not read whole within read_timeout is "
       "cut");
    lp_httpd_stats(h, &st);
    is_int(st.timed_out, cut + 1, "counted");
    close(fd);

    /* a connection handed over (a fuzzer's socketpair) */
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    ok(lp_httpd_add_connection(h, sv[1], err) == 0, "add_connection");
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    put(h, sv[0], "GET /healthz HTTP/1.0\r\n\r\n");
    is_int(get(h, sv[0]), 200, "served");
    close(sv[0]);

    /* SIGTERM: quiesce with a request in hand */
    fd = cli(h);
    fd2 = cli(h);           /* idle: closed by quiesce */
    put(h, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    for (int i = 0; i < 20 && t_q == NULL; i++)
        pump(h, 10);
    ok(t_q != NULL, "a request in hand");
    lp_httpd_quiesce(h);
    ok(cli(h) < 0, "quiesced: a new connection is refused");
    pump(h, 10);
    is_int(get(h, fd2), 0, "an idle connection is closed");
    is_int(lp_httpd_busy(h), 1, "the request is still in hand");
    lp_httpd_answer(t_q, 200, 0, NULL, 0);
    t_q = NULL;
    is_int(get(h, fd), 200, "and answered");
    ok(strstr(resp, "\r\nConnection: close\r\n") != NULL,
       "with Connection: close");
    for (int i = 0; i < 50 && lp_httpd_busy(h); i++)
        pump(h, 10);
    is_int(lp_httpd_busy(h), 0, "nothing in hand: the owner may free");
    close(fd);
    close(fd2);
    lp_httpd_free(h);

    /* tokens; and freed with a request held (no panic, no leak) */
    tfd = mkstemp(tokpath);
    if (tfd < 0 || write(tfd, "alice:0123456789abcdef0123\n", 27) != 27)
        return tap_done();
    close(tfd);
    tok = lp_tokens_new(tokpath, NULL, err);
    unlink(tokpath);
    ok(tok != NULL, "tokens loaded");
    c.tokens = tok;
    c.client_field = "client";
    ht = lp_httpd_new(&c, err);
    fd = cli(ht);
    put(ht, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    is_int(get(ht, fd), 401, "401 without a token");
    ok(strstr(resp, "\r\nWWW-Authenticate: Bearer\r\n") != NULL,
       "with WWW-Authenticate");
    close(fd);
    fd = cli(ht);
    put(ht, fd, "POST /v1/events HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer 0123456789abcdef0123\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    for (int i = 0; i < 20 && t_q == NULL; i++)
        pump(ht, 10);
    is_str(t_q ? lp_httpd_req_client(t_q) : NULL, "alice",
           "the token's name is the client");
    lp_httpd_free(ht);      /* with t_q held: closed unanswered */
    t_q = NULL;
    is_int(get(NULL, fd), 0, "freed with a request "
           "held: its connection closed");
    close(fd);
    lp_tokens_free(tok);
    return tap_done();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    return tests();
}
