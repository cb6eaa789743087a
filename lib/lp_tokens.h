/* lp_tokens.h -- logpipe-http's bearer tokens (--tokens FILE) */
#ifndef LP_TOKENS_H
#define LP_TOKENS_H

#include <stddef.h>

#include "lp_notice.h"

/*
 * --tokens FILE: one client a line, "name:token". The name says who sent
 * an event (the rate-limit key, --client-field's value, perhaps a {field}
 * of drain's --layout), so it is a safe name as SPEC 2 says one:
 * [A-Za-z0-9_][A-Za-z0-9._-]{0,63}. The token is what the client sends
 * as "Authorization: Bearer TOKEN": RFC 6750's b64token characters
 * (A-Z a-z 0-9 - . _ ~ + /, then '=' padding), 1 to LP_TOKEN_MAX bytes.
 * Blank lines and lines starting with '#' are passed over; a CR before
 * the LF is dropped. A bad line, a name or a token given twice, or a file
 * with no token at all is an error naming the line (the token itself is
 * never written in a message). A file that group or others may read, and
 * a token shorter than 16 bytes, are said through the notify (warnings:
 * the file is loaded).
 *
 * A token presented is compared with every token of the file, each over
 * LP_TOKEN_MAX bytes whatever its length, and no branch depends on their
 * bytes: the time taken says nothing of how much of a token matched, nor
 * which one did.
 *
 * SIGHUP: lp_tokens_reload reads the file again and swaps the new table
 * in whole, under a lock that lp_tokens_auth takes to read (many threads
 * of libmicrohttpd's pool may ask at once); when the new file is bad, the
 * tokens loaded before stay in force and reload says why.
 */
#define LP_TOKEN_MAX 256        /* bytes of a token */
#define LP_TOKEN_NAME_MAX 64    /* bytes of a name */
#define LP_TOKENS_MAX 10000     /* tokens in a file */

struct lp_tokens;

/* Loads path (copied). NULL with err ("FILE: line 3: no ':' between name
 * and token", "FILE: Permission denied") on failure; nt (copied; NULL:
 * silent) hears the warnings. */
struct lp_tokens *lp_tokens_new(const char *path, const struct lp_notify *nt,
                                char *err);

/* Reads the file again. Returns 0 with the new tokens in force, or -1
 * with err and the old ones kept. */
int lp_tokens_reload(struct lp_tokens *t, char *err);

/* Tokens in force. */
size_t lp_tokens_count(struct lp_tokens *t);

/*
 * Checks an Authorization header's value (NULL: none): "Bearer TOKEN"
 * (the scheme in any case, spaces around the token passed over). Returns
 * 1 with the client's name copied into name[0..cap) (cap >=
 * LP_TOKEN_NAME_MAX + 1), or 0 when there is no such token (or no
 * header, or another scheme).
 */
int lp_tokens_auth(struct lp_tokens *t, const char *authorization,
                   char *name, size_t cap);

/* Frees t; accepts NULL. */
void lp_tokens_free(struct lp_tokens *t);

#endif
