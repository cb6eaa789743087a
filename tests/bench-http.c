/* bench-http.c -- an HTTP/1.1 load client for make bench (logpipe-http)
 *
 *   bench-http -c CONNS -n REQUESTS -b BODYFILE [-l LINES] [-t TYPE]
 *              [-H 'Name: v']... URL
 *       opens CONNS keep-alive connections to URL (http://HOST:PORT/PATH)
 *       and POSTs BODYFILE (Content-Type TYPE, application/x-ndjson by
 *       default; Content-Length), or with -l its pieces of LINES lines in
 *       turn, until REQUESTS answers came back, one
 *       request at a time on each connection, all of them polled at once.
 *       A request's latency runs from its first byte written to its
 *       answer's last byte read (the monotonic clock). An answer with
 *       "Connection: close", or a connection that failed, is followed by
 *       a new connection. Prints one line:
 *         requests=N ok=N non200=N errors=N seconds=S req_per_s=R
 *         p50_ms=.. p99_ms=.. max_ms=.. start=T end=T
 *       seconds from the first byte written to the last answer read;
 *       start and end are those two moments on the wall clock (seconds
 *       since the epoch). A failed connect, write or read is an error,
 *       and counts as one of the REQUESTS; 30 s without any progress
 *       fails all that are left. Exit 1 if ok < REQUESTS.
 *
 *   bench-http -c CONNS --idle SECONDS URL
 *       opens CONNS connections, sends one GET of URL's path on each (a
 *       server that has served a request on a connection keeps its state:
 *       libmicrohttpd its memory pool), prints
 *         ready connections=N ok=N non200=N errors=N
 *       once every one is answered, keeps them open and silent SECONDS,
 *       then prints "closed still_open=N" (those the server had not
 *       closed meanwhile) and closes them. Exit 1 if ok < CONNS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#define MAXHDR 16
#define MAXANSWER (64 << 20)
#define STALL_MS 30000          /* no progress this long: the rest fail */

enum { C_CONNECTING, C_IDLE, C_BUSY, C_DONE };

struct conn {
    int fd, state;
    size_t wpos;                /* bytes of the request written */
    char *rb;                   /* what was read of the answer */
    size_t rlen, rcap;
    double t0;                  /* the request's first byte written */
    int started;                /* a byte of it was written */
    unsigned gen;               /* connections opened in this slot */
    const char *req;            /* the request in hand */
    size_t reqlen;
    unsigned served;            /* answers on this connection (idle mode) */
};

static struct addrinfo *addr;
static char *reqs;              /* the requests, headers and body, in a row */
static size_t *reqoff;          /* where request i starts; reqoff[nreq]: end */
static size_t nreq;
static double *lat;             /* ms, one per answer */
static uint64_t nlat, ok, non200, errors, done, issued, total;
static double t_first = -1, t_last, w_first;
static int idle_mode;

static double mono(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double wall(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-http -c CONNS -n REQUESTS -b BODYFILE "
            "[-l LINES] [-t TYPE] [-H 'Name: v']... URL\n"
            "       bench-http -c CONNS --idle SECONDS URL\n");
    exit(2);
}

static void die(const char *what)
{
    fprintf(stderr, "bench-http: %s: %s\n", what, strerror(errno));
    exit(2);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        die(path);
    do {
        if (n == cap && (p = realloc(p, cap = cap ? 2 * cap : 65536)) == NULL)
            die("realloc");
        r = fread(p + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    if (ferror(f))
        die(path);
    fclose(f);
    *len = n;
    return p;
}

/* ---- connections ------------------------------------------------------ */

static void conn_open(struct conn *c)
{
    int one = 1;

    c->fd = socket(addr->ai_family, addr->ai_socktype | SOCK_NONBLOCK |
                   SOCK_CLOEXEC, addr->ai_protocol);
    if (c->fd < 0)
        die("socket");
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rlen = 0;
    c->gen++;
    c->state = C_CONNECTING;
    if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) == 0)
        c->state = C_IDLE;
    else if (errno != EINPROGRESS) {
        fprintf(stderr, "bench-http: connect: %s\n", strerror(errno));
        close(c->fd);
        c->fd = -1;
        c->state = C_DONE;      /* conn_failed decides */
    }
}

/* The connection failed: its request (or the one it would have sent)
 * counts as an error; a new connection takes its place while requests
 * remain. */
static void conn_failed(struct conn *c, const char *what, int err)
{
    static uint64_t said;

    if (said++ < 10)
        fprintf(stderr, "bench-http: %s: %s\n", what,
                err ? strerror(err) : "closed by the server");
    errors++;
    if (c->state == C_BUSY)
        done++;
    else if (c->state != C_IDLE && issued < total) {
        issued++;               /* the request it would have sent */
        done++;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
    c->served++;
    if (issued < total && !idle_mode) {
        conn_open(c);
        if (c->fd < 0)
            conn_failed(c, "connect", errno);
    }
}

static int lower_prefix(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    return (size_t)(end - p) >= n && strncasecmp(p, name, n) == 0;
}

/* An answer in b[0..n): 0 not whole yet, -1 malformed, else the bytes it
 * takes; *status, *close set. With eof, an answer delimited by the end
 * of the connection is whole. */
static long answer(const char *b, size_t n, int eof, int *status, int *close)
{
    const char *he = memmem(b, n, "\r\n\r\n", 4), *p, *e;
    long cl = -1;
    int chunked = 0, v10;
    size_t off;

    if (he == NULL)
        return n > (1 << 20) ? -1 : 0;
    he += 4;
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ')
        return -1;
    v10 = b[7] == '0';
    *status = atoi(b + 9);
    *close = v10;
    for (p = (const char *)memchr(b, '\n', (size_t)(he - b)) + 1; p < he - 2;
         p = e + 1) {
        e = memchr(p, '\n', (size_t)(he - p));
        if (lower_prefix(p, e, "content-length:"))
            cl = strtol(p + 15, NULL, 10);
        else if (lower_prefix(p, e, "transfer-encoding:") &&
                 memmem(p, (size_t)(e - p), "chunked", 7))
            chunked = 1;
        else if (lower_prefix(p, e, "connection:")) {
            if (memmem(p, (size_t)(e - p), "close", 5) ||
                memmem(p, (size_t)(e - p), "Close", 5))
                *close = 1;
            else if (v10 && (memmem(p, (size_t)(e - p), "eep-", 4)))
                *close = 0;
        }
    }
    off = (size_t)(he - b);
    if (*status / 100 == 1 || *status == 204 || *status == 304)
        return (long)off;
    if (chunked) {
        for (;;) {
            const char *nl = memmem(b + off, n - off, "\r\n", 2);
            unsigned long sz;

            if (nl == NULL)
                return 0;
            sz = strtoul(b + off, NULL, 16);
            off = (size_t)(nl - b) + 2;
            if (sz == 0) {
                /* trailers, then an empty line */
                for (;;) {
                    nl = memmem(b + off, n - off, "\r\n", 2);
                    if (nl == NULL)
                        return 0;
                    if (nl == b + off)
                        return (long)(off + 2);
                    off = (size_t)(nl - b) + 2;
                }
            }
            if (n - off < sz + 2)
                return 0;
            off += sz + 2;
        }
    }
    if (cl >= 0)
        return n - off >= (size_t)cl ? (long)(off + (size_t)cl) : 0;
    *close = 1;                 /* delimited by the end */
    return eof ? (long)n : 0;
}

static void start(struct conn *c)
{
    size_t r = (size_t)(issued % nreq);

    c->req = reqs + reqoff[r];
    c->reqlen = reqoff[r + 1] - reqoff[r];
    issued++;
    c->state = C_BUSY;
    c->wpos = 0;
    c->started = 0;
    c->t0 = mono();             /* until its first byte is written */
    c->rlen = 0;
}

static void finish(struct conn *c, int status, int close_it)
{
    double t = mono();

    lat[nlat++] = (t - c->t0) * 1000;
    t_last = t;
    done++;
    c->served++;
    if (status == 200)
        ok++;
    else
        non200++;
    if (close_it || c->wpos < c->reqlen) {
        close(c->fd);
        c->fd = -1;
        c->state = C_DONE;
        if (issued < total && !idle_mode) {
            conn_open(c);
            if (c->fd < 0)
                conn_failed(c, "connect", errno);
        }
    } else
        c->state = C_IDLE;
}

static void do_write(struct conn *c)
{
    while (c->wpos < c->reqlen) {
        ssize_t w = send(c->fd, c->req + c->wpos, c->reqlen - c->wpos,
                         MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            conn_failed(c, "write", errno);
            return;
        }
        if (!c->started) {
            c->started = 1;
            c->t0 = mono();
            if (t_first < 0) {
                t_first = c->t0;
                w_first = wall();
            }
        }
        c->wpos += (size_t)w;
    }
}

static void do_read(struct conn *c)
{
    for (;;) {
        ssize_t r;
        long used;
        int status = 0, close_it = 0, eof = 0;

        if (c->rcap - c->rlen < 65536) {
            if (c->rcap > MAXANSWER) {
                errno = EMSGSIZE;
                conn_failed(c, "read", errno);
                return;
            }
            c->rcap = c->rcap ? 2 * c->rcap : 131072;
            if ((c->rb = realloc(c->rb, c->rcap)) == NULL)
                die("realloc");
        }
        r = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            conn_failed(c, "read", errno);
            return;
        }
        if (r == 0)
            eof = 1;
        c->rlen += (size_t)r;
        if (c->state != C_BUSY) {
            /* nothing asked: the server closed an idle connection, or
             * said something unasked */
            if (eof) {
                close(c->fd);
                c->fd = -1;
                c->state = C_DONE;
                if (issued < total && !idle_mode) {
                    conn_open(c);
                    if (c->fd < 0)
                        conn_failed(c, "connect", errno);
                }
            } else
                conn_failed(c, "read (an answer to no request)", 0);
            return;
        }
        while ((used = answer(c->rb, c->rlen, eof, &status, &close_it)) > 0 &&
               status / 100 == 1) {
            memmove(c->rb, c->rb + used, c->rlen - (size_t)used);
            c->rlen -= (size_t)used;
        }
        if (used < 0) {
            errno = EPROTO;
            conn_failed(c, "read (a malformed answer)", errno);
            return;
        }
        if (used > 0) {
            if ((size_t)used != c->rlen)
                close_it = 1;   /* more than asked for */
            c->rlen = 0;
            finish(c, status, close_it || eof);
            return;
        }
        if (eof) {
            conn_failed(c, "read", 0);
            return;
        }
    }
}

/* ---- the run ---------------------------------------------------------- */

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    size_t i;

    if (nlat == 0)
        return 0;
    i = (size_t)ceil(p * (double)nlat);
    return lat[i ? i - 1 : 0];
}

static void run(struct conn *cs, int nc)
{
    struct pollfd *pf = calloc((size_t)nc, sizeof *pf);
    int rc;

    if (pf == NULL)
        die("calloc");
    while (done < total) {
        for (int i = 0; i < nc; i++) {
            struct conn *c = &cs[i];

            if (c->state == C_IDLE && issued < total &&
                (!idle_mode || c->served == 0)) {
                start(c);
                do_write(c);
            }
            pf[i].fd = c->fd;
            pf[i].events = c->state == C_CONNECTING ? POLLOUT
                         : c->state == C_BUSY && c->wpos < c->reqlen
                                                  ? POLLIN | POLLOUT : POLLIN;
            pf[i].revents = 0;
        }
        if (done >= total)
            break;
        if ((rc = poll(pf, (nfds_t)nc, STALL_MS)) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (rc == 0) {
            /* nothing moved on any connection: what is left fails */
            fprintf(stderr, "bench-http: no answer, no connection in %d s: "
                    "%" PRIu64 " requests left fail\n", STALL_MS / 1000,
                    total - done);
            errors += total - done;
            done = total;
            break;
        }
        for (int i = 0; i < nc; i++) {
            struct conn *c = &cs[i];
            short ev = pf[i].revents;
            unsigned gen = c->gen;

            if (ev == 0 || c->fd != pf[i].fd)
                continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t l = sizeof err;

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                    err = errno;
                if (err)
                    conn_failed(c, "connect", err);
                else
                    c->state = C_IDLE;
                continue;
            }
            if ((ev & POLLOUT) && c->state == C_BUSY)
                do_write(c);
            /* unless the write failed and a new connection took the
             * slot (maybe with the same descriptor) */
            if ((ev & (POLLIN | POLLHUP | POLLERR)) && c->gen == gen &&
                c->fd >= 0)
                do_read(c);
        }
    }
    free(pf);
}

static void parse_url(const char *url, char **host, char **port, char **path)
{
    const char *h, *e, *s;

    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "bench-http: %s: not http://HOST:PORT/PATH\n", url);
        exit(2);
    }
    h = url + 7;
    s = strchr(h, '/');
    if (s == NULL)
        s = h + strlen(h);
    if (*h == '[') {            /* [::1]:PORT */
        e = memchr(h, ']', (size_t)(s - h));
        if (e == NULL || e[1] != ':')
            goto bad;
        *host = strndup(h + 1, (size_t)(e - h - 1));
        e++;
    } else {
        e = memchr(h, ':', (size_t)(s - h));
        if (e == NULL)
            goto bad;
        *host = strndup(h, (size_t)(e - h));
    }
    *port = strndup(e + 1, (size_t)(s - e - 1));
    *path = strdup(*s ? s : "/");
    return;
bad:
    fprintf(stderr, "bench-http: %s: not http://HOST:PORT/PATH\n", url);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *bodyfile = NULL, *type = "application/x-ndjson";
    const char *hdr[MAXHDR];
    char *host, *port, *path, *body = NULL;
    size_t bodylen = 0, hn = 0, cap, lines = 0;
    double idle = -1;
    long conns = 1;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct conn *cs;
    int i, rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL)
            usage();
        if (strcmp(o, "-c") == 0)
            conns = atol(v);
        else if (strcmp(o, "-n") == 0)
            total = strtoull(v, NULL, 10);
        else if (strcmp(o, "-b") == 0)
            bodyfile = v;
        else if (strcmp(o, "-l") == 0)
            lines = strtoul(v, NULL, 10);
        else if (strcmp(o, "-t") == 0)
            type = v;
        else if (strcmp(o, "-H") == 0 && hn < MAXHDR)
            hdr[hn++] = v;
        else if (strcmp(o, "--idle") == 0)
            idle = atof(v);
        else
            usage();
        i++;
    }
    if (i != argc - 1 || conns < 1 || conns > 100000 ||
        (idle < 0 && (total < 1 || bodyfile == NULL)))
        usage();
    idle_mode = idle >= 0;
    if (idle_mode)
        total = (uint64_t)conns;
    parse_url(argv[i], &host, &port, &path);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = getaddrinfo(host, port, &hints, &addr)) != 0) {
        fprintf(stderr, "bench-http: %s:%s: %s\n", host, port,
                gai_strerror(rc));
        return 2;
    }
    if (bodyfile)
        body = slurp(bodyfile, &bodylen);

    /* the requests, once: the whole file, or its LINES-line pieces */
    {
        size_t pieces = 1, k, at = 0;

        if (lines > 0) {
            pieces = 0;
            for (k = 0, at = 0; k < bodylen; k++)
                if (body[k] == '\n' && ++at == lines) {
                    pieces++;
                    at = 0;
                }
            if (at > 0 || pieces == 0)
                pieces++;
        }
        cap = pieces * 512 + bodylen;
        for (k = 0; k < hn; k++)
            cap += pieces * (strlen(hdr[k]) + 2);
        if ((reqs = malloc(cap)) == NULL ||
            (reqoff = calloc(pieces + 1, sizeof *reqoff)) == NULL)
            die("malloc");
        for (size_t b0 = 0; nreq < pieces; nreq++) {
            size_t b1 = bodylen, o = reqoff[nreq];

            if (lines > 0)
                for (k = b0, at = 0; k < bodylen; k++)
                    if (body[k] == '\n' && ++at == lines) {
                        b1 = k + 1;
                        break;
                    }
            if (idle_mode)
                o += (size_t)snprintf(reqs + o, cap - o, "GET %s HTTP/1.1\r\n"
                                      "Host: %s:%s\r\n", path, host, port);
            else
                o += (size_t)snprintf(reqs + o, cap - o, "POST %s HTTP/1.1"
                                      "\r\nHost: %s:%s\r\nContent-Type: %s"
                                      "\r\nContent-Length: %zu\r\n", path,
                                      host, port, type, b1 - b0);
            for (k = 0; k < hn; k++)
                o += (size_t)snprintf(reqs + o, cap - o, "%s\r\n", hdr[k]);
            o += (size_t)snprintf(reqs + o, cap - o, "\r\n");
            if (b1 > b0)
                memcpy(reqs + o, body + b0, b1 - b0);
            reqoff[nreq + 1] = o + (b1 - b0);
            b0 = b1;
        }
        free(body);
    }

    if ((lat = calloc(total, sizeof *lat)) == NULL ||
        (cs = calloc((size_t)conns, sizeof *cs)) == NULL)
        die("calloc");
    for (long k = 0; k < conns; k++) {
        conn_open(&cs[k]);
        if (cs[k].fd < 0)
            conn_failed(&cs[k], "connect", errno);
    }
    run(cs, (int)conns);

    if (idle_mode) {
        struct timespec ts = { (time_t)idle,
                               (long)((idle - floor(idle)) * 1e9) };
        long open = 0;

        printf("ready connections=%ld ok=%" PRIu64 " non200=%" PRIu64
               " errors=%" PRIu64 "\n", conns, ok, non200, errors);
        fflush(stdout);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        for (long k = 0; k < conns; k++) {
            char b;

            if (cs[k].fd < 0)
                continue;
            /* still open: nothing to read, no end seen */
            if (recv(cs[k].fd, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN)
                open++;
            close(cs[k].fd);
        }
        printf("closed still_open=%ld\n", open);
        return ok < total;
    }
    for (long k = 0; k < conns; k++)
        if (cs[k].fd >= 0)
            close(cs[k].fd);
    qsort(lat, nlat, sizeof *lat, cmp);
    {
        double s = nlat && t_last > t_first ? t_last - t_first : 0;

        printf("requests=%" PRIu64 " ok=%" PRIu64 " non200=%" PRIu64
               " errors=%" PRIu64 " seconds=%.4f req_per_s=%.1f p50_ms=%.2f"
               " p99_ms=%.2f max_ms=%.2f start=%.6f end=%.6f\n", done, ok,
               non200, errors, s, s > 0 ? (double)nlat / s : 0, pct(0.50),
               pct(0.99), nlat ? lat[nlat - 1] : 0, w_first,
               w_first + s);
    }
    return ok < total;
}
