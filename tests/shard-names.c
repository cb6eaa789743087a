/* shard-names.c -- prints the names of the N shards of STREAM, one a
 * line (lp_shard_name), for tests that make or check sharded streams
 * with redis-cli: shard-names STREAM N */
#include <stdio.h>
#include <stdlib.h>

#include "lp_parse.h"
#include "lp_shards.h"

int main(int argc, char **argv)
{
    char name[2048], err[LP_ERRLEN];
    unsigned long n;
    unsigned i;

    if (argc != 3 || (n = strtoul(argv[2], NULL, 10)) < 1 ||
        n > LP_SHARDS_MAX) {
        fprintf(stderr, "usage: shard-names STREAM N (1..%d)\n",
                LP_SHARDS_MAX);
        return 64;
    }
    for (i = 0; i < n; i++) {
        if (lp_shard_name(argv[1], i, (unsigned)n, name, sizeof name,
                          err) < 0) {
            fprintf(stderr, "shard-names: %s\n", err);
            return 65;
        }
        puts(name);
    }
    return 0;
}
