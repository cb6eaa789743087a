/* unit-redis.c -- lp_redis: what an error reply means (retry or stop) */
#include <stdio.h>
#include <string.h>

#include "lp_redis.h"
#include "tap.h"

/* The class of the reply in RESP bytes s; -9 when s does not parse. */
static int class_of(const char *s)
{
    struct lp_reply *rep;
    int c;

    if (lp_reply_parse(s, strlen(s), &rep) != 1)
        return -9;
    c = lp_reply_error_class(rep);
    lp_reply_free(rep);
    return c;
}

int main(void)
{
    /* refusals: of the command itself, or of a key */
    is_int(class_of("-NOPERM this user has no permissions to run the "
                    "'xadd' command\r\n"), LP_RERR_COMMAND,
           "NOPERM to run a command: the command's");
    is_int(class_of("-NOPERM this user has no permissions to access one of "
                    "the keys used as arguments\r\n"), LP_RERR_KEY,
           "NOPERM on a key: the key's");
    is_int(class_of("-WRONGTYPE Operation against a key holding the wrong "
                    "kind of value\r\n"), LP_RERR_KEY, "WRONGTYPE: the key's");
    /* the same inside a script, as Redis 7.0 and 6 word them */
    is_int(class_of("-ERR The user executing the script can't run this "
                    "command or subcommand script: 5a3f, on "
                    "@user_script:12.\r\n"), LP_RERR_COMMAND,
           "a script's refused command (7.0)");
    is_int(class_of("-ERR The user executing the script can't access at "
                    "least one of the keys mentioned in the command script: "
                    "5a3f, on @user_script:12.\r\n"), LP_RERR_KEY,
           "a script's refused key (7.0)");
    is_int(class_of("-ERR Error running script (call to f_5a3f): "
                    "@user_script:14: WRONGTYPE Operation against a key "
                    "holding the wrong kind of value\r\n"), LP_RERR_KEY,
           "a script's WRONGTYPE (6)");
    is_int(class_of("-WRONGTYPE Operation against a key holding the wrong "
                    "kind of value script: 5a3f, on @user_script:14.\r\n"),
           LP_RERR_KEY, "a script's WRONGTYPE (7.0)");
    /* credentials */
    is_int(class_of("-NOAUTH Authentication required.\r\n"), LP_RERR_AUTH,
           "NOAUTH");
    is_int(class_of("-WRONGPASS invalid username-password pair or user is "
                    "disabled.\r\n"), LP_RERR_AUTH, "WRONGPASS");
    /* this request */
    is_int(class_of("-ERR no such key\r\n"), LP_RERR_REQUEST,
           "ERR no such key: the request's");
    is_int(class_of("-ERR no data field\r\n"), LP_RERR_REQUEST,
           "a script's own ERR");
    is_int(class_of("-ERR\r\n"), LP_RERR_REQUEST, "a bare ERR");
    /* what may pass by itself */
    is_int(class_of("-LOADING Redis is loading the dataset in memory\r\n"),
           LP_RERR_TEMP, "LOADING");
    is_int(class_of("-BUSY Redis is busy running a script.\r\n"),
           LP_RERR_TEMP, "BUSY");
    is_int(class_of("-OOM command not allowed when used memory > "
                    "'maxmemory'.\r\n"), LP_RERR_TEMP, "OOM");
    is_int(class_of("-READONLY You can't write against a read only "
                    "replica.\r\n"), LP_RERR_TEMP, "READONLY");
    is_int(class_of("-ERRATIC not ERR\r\n"), LP_RERR_TEMP,
           "a code that only starts with ERR is not ERR");
    is_int(class_of("-NEWCODE something Redis says one day\r\n"),
           LP_RERR_TEMP, "an unknown code: may pass");
    /* no error */
    is_int(class_of("+OK\r\n"), 0, "a status is no error");
    is_int(class_of(":1\r\n"), 0, "an integer is no error");
    is_int(class_of("$6\r\nNOPERM\r\n"), 0, "a string saying NOPERM is none");
    is_int(class_of("*0\r\n"), 0, "an array is no error");

    return tap_done();
}
