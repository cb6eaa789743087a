/* lp_resp.c -- the one RESP encoder: commands as a Redis client sends them */
#include "lp_resp.h"

int lp_resp_head(struct lp_buf *b, int argc)
{
    if (lp_buf_addc(b, '*') < 0 || lp_buf_addu(b, (unsigned)argc) < 0 ||
        lp_buf_add(b, "\r\n", 2) < 0)
        return -1;
    return 0;
}

int lp_resp_bulk(struct lp_buf *b, const void *p, size_t n)
{
    char *o = lp_resp_bulk_space(b, n);

    if (o == NULL)
        return -1;
    if (n)
        memcpy(o, p, n);        /* p may be NULL when n is 0 */
    return 0;
}

int lp_resp_command(struct lp_buf *b, int argc, const char **argv,
                    const size_t *lens)
{
    if (lp_resp_head(b, argc) < 0)
        return -1;
    for (int i = 0; i < argc; i++)
        if (lp_resp_bulk(b, argv[i], lens[i]) < 0)
            return -1;
    return 0;
}
