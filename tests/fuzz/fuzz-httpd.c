/* fuzz-httpd.c -- libFuzzer harness: lib/lp_httpd, what a client sends */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lp_buf.h"
#include "lp_event.h"
#include "lp_httpd.h"
#include "lp_json.h"
#include "lp_parse.h"

/*
 * The input is the bytes a client sends on one connection (requests, one
 * after another, as they come), handed to one server made once through
 * lp_httpd_add_connection (a socketpair), the client's side shut for
 * writing after them. Submitted requests are answered at once, or held
 * and answered at the next turn of the loop (the first byte of the body
 * says which), so suspend and resume are taken too. Checks, each
 * abort()ing so that libFuzzer keeps the input:
 *
 *  1. What the server writes back is HTTP/1.x answers, each starting
 *     "HTTP/1.1 NNN " or "HTTP/1.0 NNN ".
 *  2. Every event handed to item is a valid JSON object; a rejection has
 *     a code and a message; begin, then submit or abort, once a request.
 *     (item refuses the events of a length divisible by 7, as a rate
 *     limit would: they are answered as rejections.)
 *  3. Once the client is gone, nothing stays in hand and no connection
 *     stays open: the next input finds the server as new.
 */

static struct lp_httpd *h;
static struct lp_event_rules rules;
static struct lp_httpd_req *held[64];
static int nheld, open_reqs;

static int f_begin(void *ctx, struct lp_httpd_req *q, int64_t *retry,
                   char *msg)
{
    (void)ctx; (void)q; (void)retry; (void)msg;
    open_reqs++;
    return 0;
}

static const char *f_item(void *ctx, struct lp_httpd_req *q,
                          const struct lp_httpd_item *it)
{
    struct lp_jerr je;

    (void)ctx; (void)q;
    if (it->ev) {
        if (lp_json_valid(it->stored, it->stored_len, NULL, &je) < 0 ||
            it->stored_len == 0 || it->stored[0] != '{')
            abort();
        /* every seventh length refused, as --on-limit reject does: the
         * answer then counts it rejected */
        return it->stored_len % 7 == 0 ? "over --rate" : NULL;
    }
    if (it->code == NULL || it->msg == NULL)
        abort();
    return NULL;
}

static void f_submit(void *ctx, struct lp_httpd_req *q)
{
    uint64_t sent, decoded;

    (void)ctx;
    open_reqs--;
    lp_httpd_req_sizes(q, &sent, &decoded);
    if ((sent & 1) && nheld < 64)
        held[nheld++] = q;
    else
        lp_httpd_answer(q, 200, 0, NULL, 0);
}

static void f_abort(void *ctx, struct lp_httpd_req *q)
{
    (void)ctx; (void)q;
    open_reqs--;
}

static void pump(int ms)
{
    struct pollfd p = { .fd = lp_httpd_fd(h), .events = POLLIN };
    int64_t due = lp_httpd_due_ms(h);

    if (due < 0 || due > ms)
        due = ms;
    if (due > 0)
        poll(&p, 1, (int)due);
    lp_httpd_run(h);
}

static void answer_held(void)
{
    for (int i = 0; i < nheld; i++)
        lp_httpd_answer(held[i], 503, 1000, NULL, 0);
    nheld = 0;
}

static void start(void)
{
    static char *listen[] = { "127.0.0.1:0" };
    struct lp_httpd_conf c = {
        .listen = listen, .nlisten = 1, .rules = &rules,
        .max_body = 4096, .max_line = 1024, .client_field = "client",
        .read_timeout_ms = 50, .free_max = 2, .header_max = 4096,
        .cb = { f_begin, f_item, f_submit, f_abort, NULL, NULL },
    };
    char err[LP_ERRLEN];

    if (lp_event_rules_init(&rules, "timestamp", NULL, 0, 8, 16, 0, 0,
                            err) < 0)
        abort();
    h = lp_httpd_new(&c, err);
    if (h == NULL) {
        fprintf(stderr, "fuzz-httpd: %s\n", err);
        abort();
    }
}

static int at_answer(const char *s, size_t i, size_t n)
{
    return n - i >= 13 && (memcmp(s + i, "HTTP/1.1 ", 9) == 0 ||
                           memcmp(s + i, "HTTP/1.0 ", 9) == 0) &&
           s[i + 9] >= '1' && s[i + 9] <= '5' && s[i + 12] == ' ';
}

/* The answers read back: each a status line, headers, and Content-Length
 * bytes of body (none after HEAD: then the next answer, or the end, comes
 * right after the headers); the last may be cut by the close. */
static void check_answers(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        const char *p, *cl;
        size_t hend, j;

        if (!at_answer(s, i, n))
            abort();
        p = memmem(s + i, n - i, "\r\n\r\n", 4);
        if (p == NULL)
            return;
        hend = (size_t)(p - s) + 4;
        cl = memmem(s + i, hend - i, "\r\nContent-Length: ", 18);
        j = cl ? hend + (size_t)strtoul(cl + 18, NULL, 10) : hend;
        if (j == n || (j < n && at_answer(s, j, n)))
            i = j;
        else if (hend == n || at_answer(s, hend, n))
            i = hend;           /* HEAD */
        else if (j > n)
            return;             /* cut */
        else
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lp_buf back;
    char err[LP_ERRLEN], buf[16384];
    int sv[2], done = 0;
    size_t off = 0;

    if (h == NULL)
        start();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (lp_httpd_add_connection(h, sv[1], err) < 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    back.len = 0;
    for (int turn = 0; turn < 400 && !done; turn++) {
        ssize_t r;

        if (off < size) {
            ssize_t w = write(sv[0], data + off, size - off);

            if (w > 0)
                off += (size_t)w;
            if (off == size)
                shutdown(sv[0], SHUT_WR);
        } else if (size == 0 && turn == 0) {
            shutdown(sv[0], SHUT_WR);
        }
        pump(turn < 50 ? 0 : 1);
        answer_held();
        while ((r = read(sv[0], buf, sizeof buf)) > 0)
            if (lp_buf_add(&back, buf, (size_t)r) < 0)
                abort();
        if (r == 0 || (r < 0 && errno != EAGAIN))
            done = 1;
    }
    close(sv[0]);
    for (int turn = 0; turn < 400; turn++) {
        struct lp_httpd_stats st;

        answer_held();
        pump(turn < 50 ? 0 : 1);
        lp_httpd_stats(h, &st);
        if (st.connections == 0 && lp_httpd_busy(h) == 0)
            break;
    }
    {
        struct lp_httpd_stats st;

        lp_httpd_stats(h, &st);
        if (st.connections != 0 || lp_httpd_busy(h) != 0 || open_reqs != 0)
            abort();
    }
    check_answers(back.p, back.len);
    return 0;
}
