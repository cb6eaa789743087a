/* lp_url.c -- Redis URLs */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_parse.h"
#include "lp_url.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) to out with %XX decoded; -1 when bad or too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            if (c == 0)
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_db(const char *s, size_t n, int *db, char *err)
{
    char tmp[16];
    uint64_t v;

    if (n == 0 || n >= sizeof tmp)
        goto bad;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (lp_parse_uint(tmp, 0, 65535, &v, err) < 0)
        goto bad;
    *db = (int)v;
    return 0;
bad:
    snprintf(err, LP_ERRLEN, "bad database number in Redis URL");
    return -1;
}

int lp_url_parse(const char *url, struct lp_url *u, char *err)
{
    const char *p, *at, *hostend, *slash;

    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *q;
        size_t n;
        p = url + 7;
        if (*p != '/') {
            snprintf(err, LP_ERRLEN,
                     "unix socket URL needs an absolute path: unix:///path");
            return -1;
        }
        q = strchr(p, '?');
        n = q ? (size_t)(q - p) : strlen(p);
        if (n >= sizeof u->path) {
            snprintf(err, LP_ERRLEN, "unix socket path too long");
            return -1;
        }
        memcpy(u->path, p, n);
        u->path[n] = '\0';
        u->is_unix = 1;
        if (q) {
            if (strncmp(q, "?db=", 4) != 0) {
                snprintf(err, LP_ERRLEN,
                         "unix socket URL takes only ?db=N");
                return -1;
            }
            return parse_db(q + 4, strlen(q + 4), &u->db, err);
        }
        return 0;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        u->tls = 1;
        p = url + 9;
    } else if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else {
        snprintf(err, LP_ERRLEN, "Redis URL must start with redis://, "
                 "rediss:// (TLS) or unix://");
        return -1;
    }
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    /* the last '@' before the path ends the user info */
    if (at) {
        const char *a2;
        while ((a2 = memchr(at + 1, '@', (slash ? (size_t)(slash - at - 1)
                                          : strlen(at + 1)))) != NULL)
            at = a2;
    }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (pct_decode(p, ulen, u->user, sizeof u->user) < 0) {
            snprintf(err, LP_ERRLEN, "bad user name in Redis URL");
            return -1;
        }
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1),
                                u->password, sizeof u->password) < 0) {
            snprintf(err, LP_ERRLEN, "bad password in Redis URL");
            return -1;
        }
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (rb == NULL || rb - p - 1 <= 0 ||
            (size_t)(rb - p - 1) >= sizeof u->host) {
            snprintf(err, LP_ERRLEN, "bad IPv6 address in Redis URL");
            return -1;
        }
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        p = rb + 1;
        if (p < hostend && *p != ':') {
            snprintf(err, LP_ERRLEN, "bad host in Redis URL");
            return -1;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(hostend - p));
        const char *he = colon ? colon : hostend;
        if ((size_t)(he - p) >= sizeof u->host) {
            snprintf(err, LP_ERRLEN, "host name too long in Redis URL");
            return -1;
        }
        memcpy(u->host, p, (size_t)(he - p));
        p = he;
    }
    if (u->host[0] == '\0')
        strcpy(u->host, "127.0.0.1");
    if (p < hostend && *p == ':') {
        char tmp[8];
        uint64_t v;
        size_t n = (size_t)(hostend - p - 1);
        if (n == 0 || n >= sizeof tmp)
            goto badport;
        memcpy(tmp, p + 1, n);
        tmp[n] = '\0';
        if (lp_parse_uint(tmp, 1, 65535, &v, err) < 0)
            goto badport;
        u->port = (int)v;
    }
    if (slash && slash[1] != '\0')
        return parse_db(slash + 1, strlen(slash + 1), &u->db, err);
    return 0;
badport:
    snprintf(err, LP_ERRLEN, "bad port in Redis URL");
    return -1;
}

void lp_url_describe(const struct lp_url *u, char *buf, size_t cap)
{
    if (u->is_unix)
        snprintf(buf, cap, "unix://%s", u->path);
    else if (strchr(u->host, ':'))
        snprintf(buf, cap, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, cap, "%s:%d", u->host, u->port);
}
