/* unit-tokens.c -- lp_tokens: --tokens FILE, bearer checks, reload */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp_notice.h"
#include "lp_parse.h"
#include "lp_tokens.h"
#include "tap.h"

static char dir[] = "/tmp/unit-tokens.XXXXXX";
static char path[64];
static char said[LP_ERRLEN * 2];

static void heard(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    snprintf(said + strlen(said), sizeof said - strlen(said), "%s|", msg);
}

static const struct lp_notify nt = { heard, NULL };

static void put(const char *s, int mode)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(s, f) < 0 || fclose(f) != 0 ||
        chmod(path, (mode_t)mode) < 0)
        abort();
}

/* loads s; returns the error ("" when it loaded) */
static const char *try(const char *s)
{
    static char err[LP_ERRLEN];
    struct lp_tokens *t;

    put(s, 0600);
    err[0] = '\0';
    said[0] = '\0';
    t = lp_tokens_new(path, &nt, err);
    lp_tokens_free(t);
    /* the path is the test's: show what follows it */
    return strncmp(err, path, strlen(path)) == 0 ? err + strlen(path) : err;
}

static void errors(void)
{
    is_str(try("alice:0123456789abcdef0123\n"), "", "a good line");
    is_str(try("\n# comment\n  \r\n"), ": no tokens in it (lines name:token)",
           "no tokens: an error");
    is_str(try("alice:0123456789abcdef0123\nbob\n"),
           ": line 2: no ':' between name and token", "no colon");
    is_str(try(":0123456789abcdef0123\n"), ": line 1: empty name",
           "empty name");
    is_str(try("alice:\r\n"), ": line 1: empty token", "empty token");
    is_str(try("al ice:0123456789abcdef0123\n"),
           ": line 1: name \"al ice\" is not [A-Za-z0-9_][A-Za-z0-9._-]{0,63}",
           "a name that is not a safe name");
    is_str(try(".x:0123456789abcdef0123\n"),
           ": line 1: name \".x\" is not [A-Za-z0-9_][A-Za-z0-9._-]{0,63}",
           "a name starting with a dot");
    is_str(try("alice:0123456789abcdef 0123\n"),
           ": line 1: the token has a character other than A-Z a-z 0-9 - . _ "
           "~ + / (and '=' at its end)", "a space in a token");
    is_str(try("alice:abc=def0123456789abcdef\n"),
           ": line 1: the token has a character other than A-Z a-z 0-9 - . _ "
           "~ + / (and '=' at its end)", "'=' inside a token");
    is_str(try("alice:0123456789abcdef0123==\n"), "", "'=' at its end");
    is_str(try("a:0123456789abcdef0001\nb:0123456789abcdef0002\n"
               "a:0123456789abcdef0003\n"),
           ": line 3: name \"a\" is given on line 1 already", "a name twice");
    is_str(try("a:0123456789abcdef0001\nb:0123456789abcdef0002\n"
               "c:0123456789abcdef0001\nb:0123456789abcdef0004\n"),
           ": line 3: the token of \"c\" is line 1's too: one token a client",
           "a token twice: the first such line, and the token not shown");
    ok(strstr(try("a:0123456789abcdef0001\nb:0123456789abcdef0002\n"
                  "c:0123456789abcdef0001\n"), "0001") == NULL,
       "no message shows a token");
    is_str(try("a:short\n"), "", "a short token loads");
    ok(strstr(said, "line 1: a token shorter than 16 bytes (1 such lines)")
       != NULL, "and is warned of: %s", said);
    put("a:0123456789abcdef0123\n", 0644);
    said[0] = '\0';
    char err[LP_ERRLEN];
    struct lp_tokens *t = lp_tokens_new(path, &nt, err);
    ok(t != NULL && strstr(said, ": readable by others (mode 0644): its "
                           "tokens are secrets; chmod 600 it") != NULL,
       "mode 0644 loads with a warning: %s", said);
    lp_tokens_free(t);
    put("a:0123456789abcdef0123\n", 0640);
    said[0] = '\0';
    t = lp_tokens_new(path, &nt, err);
    ok(t != NULL && strstr(said, "readable by its group (mode 0640)") != NULL,
       "mode 0640 too: %s", said);
    lp_tokens_free(t);
    snprintf(err, sizeof err, "%s/none", dir);
    ok(lp_tokens_new(err, &nt, err) == NULL &&
       strstr(err, "/none: No such file or directory") != NULL,
       "a missing file: %s", err);
}

static void auth(void)
{
    char err[LP_ERRLEN], name[LP_TOKEN_NAME_MAX + 1];
    struct lp_tokens *t;

    put("# clients\nalice:AAAAbbbbCCCCdddd1111\nbob:AAAAbbbbCCCCdddd11112\n"
        "carol:AAAAbbbbCCCCdddd111\n", 0600);
    t = lp_tokens_new(path, NULL, err);
    ok(t != NULL && lp_tokens_count(t) == 3, "three tokens");
    name[0] = '\0';
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd1111", name,
                          sizeof name), 1, "alice's token");
    is_str(name, "alice", "is alice");
    is_int(lp_tokens_auth(t, "bearer   AAAAbbbbCCCCdddd11112  ", name,
                          sizeof name), 1, "bob's, any case, spaces around");
    is_str(name, "bob", "is bob");
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd111", name,
                          sizeof name), 1, "carol's: a prefix of alice's");
    is_str(name, "carol", "is carol");
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd11", name, sizeof name),
           0, "a prefix of them all: no one");
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd111122", name,
                          sizeof name), 0, "longer than bob's: no one");
    is_int(lp_tokens_auth(t, "Basic AAAAbbbbCCCCdddd1111", name, sizeof name),
           0, "another scheme: no one");
    is_int(lp_tokens_auth(t, "BearerAAAAbbbbCCCCdddd1111", name, sizeof name),
           0, "no space after Bearer: no one");
    is_int(lp_tokens_auth(t, NULL, name, sizeof name), 0, "no header");
    is_int(lp_tokens_auth(t, "Bearer ", name, sizeof name), 0, "no token");
    /* reload: a bad file keeps the tokens in force */
    put("alice:AAAAbbbbCCCCdddd1111\nalice:x\n", 0600);
    ok(lp_tokens_reload(t, err) < 0 &&
       strstr(err, "line 2: name \"alice\" is given on line 1 already"),
       "a bad file on reload: refused (%s)", err);
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd11112", name,
                          sizeof name), 1, "bob's token still works");
    put("dave:EEEEffffGGGGhhhh2222\n", 0600);
    is_int(lp_tokens_reload(t, err), 0, "a good file on reload");
    is_int(lp_tokens_auth(t, "Bearer AAAAbbbbCCCCdddd11112", name,
                          sizeof name), 0, "bob's token is gone");
    is_int(lp_tokens_auth(t, "Bearer EEEEffffGGGGhhhh2222", name,
                          sizeof name), 1, "dave's works");
    is_str(name, "dave", "is dave");
    lp_tokens_free(t);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/tokens", dir);
    errors();
    auth();
    unlink(path);
    rmdir(dir);
    return tap_done();
}
