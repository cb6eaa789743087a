/* lp_url.h -- Redis URLs: redis://[user[:password]@]host[:port][/db],
 * rediss://... (the same over TLS) and unix:///path[?db=N] */
#ifndef LP_URL_H
#define LP_URL_H

#include <limits.h>

struct lp_url {
    int is_unix;
    int tls;                    /* rediss:// */
    char host[256];             /* without brackets for IPv6 */
    int port;
    char path[PATH_MAX];        /* unix socket */
    int db;
    char user[256];             /* "" = the default user */
    char password[512];         /* "" = none given in the URL */
};

/* Parses url into u (percent-escapes in user and password decoded).
 * Returns 0, or -1 with err (LP_ERRLEN) filled; the message never
 * contains the password. */
int lp_url_parse(const char *url, struct lp_url *u, char *err);

/* Writes "host:port" or "unix:/path" (never the password) to buf. */
void lp_url_describe(const struct lp_url *u, char *buf, size_t cap);

#endif
