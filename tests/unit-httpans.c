/* unit-httpans.c -- lp_httpans: logpipe-http's answer to POST /v1/events */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp_buf.h"
#include "lp_httpans.h"
#include "lp_json.h"
#include "tap.h"

static struct lp_buf out;

static const char *finish(const struct lp_httpans *a)
{
    struct lp_jerr je;

    out.len = 0;
    if (lp_httpans_finish(a, &out) < 0)
        return "(out of memory)";
    if (lp_json_valid(out.p, out.len, NULL, &je) < 0)
        printf("# not valid JSON: %s\n", je.msg);
    lp_buf_addc(&out, '\0');
    return out.p;
}

int main(void)
{
    struct lp_httpans a = { { 0 }, 0, 0, 0, 0, 0 };
    struct lp_jerr je;
    char msg[1200];

    lp_httpans_init(&a, 3, 0);
    is_str(finish(&a), "{\"accepted\":0,\"rejected\":0,\"errors\":[]}",
           "nothing");
    lp_httpans_accept(&a, 5);
    lp_httpans_reject(&a, 0, 2, "invalid JSON: unexpected 'N' at byte 20");
    lp_httpans_reject(&a, 1, 0, "element \"x\"\n\t\x01 \xff\xc3 \xc3\xa9");
    is_str(finish(&a), "{\"accepted\":5,\"rejected\":2,\"errors\":["
           "{\"line\":2,\"error\":\"invalid JSON: unexpected 'N' at byte "
           "20\"},{\"index\":0,\"error\":\"element \\\"x\\\"\\n\\t\\u0001 "
           "\xef\xbf\xbd\xef\xbf\xbd \xc3\xa9\"}]}",
           "lines and indexes; quotes, controls escaped, bytes not UTF-8 "
           "as U+FFFD, UTF-8 kept");
    lp_httpans_reject(&a, 0, 7, "third");
    lp_httpans_reject(&a, 0, 8, "fourth");
    lp_httpans_reject(&a, 0, 9, "fifth");
    ok(strstr(finish(&a), "{\"line\":7,\"error\":\"third\"}],"
              "\"errors_omitted\":2}") != NULL &&
       strstr(out.p, "\"rejected\":5,") != NULL,
       "capped at 3: the rest counted, errors_omitted says how many");
    lp_httpans_reset(&a);
    is_str(finish(&a), "{\"accepted\":0,\"rejected\":0,\"errors\":[]}",
           "reset");

    lp_httpans_init(&a, 1000, 100);
    for (int i = 1; i <= 10; i++)
        lp_httpans_reject(&a, 0, (unsigned)i, "0123456789012345678901234567");
    finish(&a);
    ok(strstr(out.p, "\"line\":3,") && !strstr(out.p, "\"line\":4,") &&
       strstr(out.p, "\"errors_omitted\":7}"),
       "capped by bytes: %s", out.p);

    /* lp_httpans_finish_cap: whole entries up to cap bytes; a message
     * holding ,{" (escaped in the answer) is not taken for a boundary */
    lp_httpans_init(&a, 1000, 0);
    for (int i = 1; i <= 10; i++)
        lp_httpans_reject(&a, 0, (unsigned)i, "x,{\"line\":0} y");
    out.len = 0;
    lp_httpans_finish_cap(&a, &out, 100);
    lp_buf_addc(&out, '\0');
    ok(strstr(out.p, "\"line\":2,") && !strstr(out.p, "\"line\":3,") &&
       strstr(out.p, "\"errors_omitted\":8}") &&
       lp_json_valid(out.p, strlen(out.p), NULL, &je) == 0,
       "cut to 100 bytes of errors: two entries, 8 omitted: %s", out.p);
    out.len = 0;
    lp_httpans_finish_cap(&a, &out, 10);
    lp_buf_addc(&out, '\0');
    is_str(out.p, "{\"accepted\":0,\"rejected\":10,\"errors\":[],"
           "\"errors_omitted\":10}", "a cap below one entry: none listed");
    out.len = 0;
    lp_httpans_finish_cap(&a, &out, 100000);
    lp_buf_addc(&out, '\0');
    ok(strstr(out.p, "\"line\":10,") && !strstr(out.p, "omitted"),
       "a cap above them all: all listed");

    /* a message cut to 512 bytes, not inside a character */
    lp_httpans_init(&a, 10, 0);
    memset(msg, 'a', 511);
    memcpy(msg + 511, "\xc3\xa9tail", 7);
    lp_httpans_reject(&a, 0, 1, msg);
    finish(&a);
    ok(strstr(out.p, "aaa\"}]}") != NULL && strstr(out.p, "\xef\xbf\xbd") ==
       NULL && lp_json_valid(out.p, strlen(out.p), NULL, &je) == 0,
       "a long message cut before the character that straddles 512 bytes");

    out.len = 0;
    lp_httpans_error(&out, "body over --max-body (10 bytes) \"x\"");
    lp_buf_addc(&out, '\0');
    is_str(out.p, "{\"error\":\"body over --max-body (10 bytes) \\\"x\\\"\"}",
           "an error body");
    lp_httpans_free(&a);
    lp_buf_free(&out);
    return tap_done();
}
