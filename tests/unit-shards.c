/* unit-shards.c -- lp_shards without a server: the shards' names (each
 * in its range of slots, all different, for every count), and the
 * names refused */
#include <stdio.h>
#include <string.h>

#include "lp_cluster.h"
#include "lp_parse.h"
#include "lp_shards.h"
#include "tap.h"

int main(void)
{
    static unsigned char seen[LP_CLUSTER_SLOTS];
    char name[256], err[LP_ERRLEN];
    unsigned n, i, bad_range = 0, bad_dup = 0, bad_form = 0;

    static const unsigned big[] = { 100, 255, 256, 1000, LP_SHARDS_MAX };
    unsigned b = 0;

    /* every count up to 64, then some (each name searches its range:
     * all counts to 1024 take seconds, and minutes under valgrind) */
    for (n = 2; n <= LP_SHARDS_MAX; n = n < 64 ? n + 1 : big[b++]) {
        memset(seen, 0, sizeof seen);
        for (i = 0; i < n; i++) {
            int len = lp_shard_name("logs:stream", i, n, name, sizeof name,
                                    err);
            unsigned slot, lo = i * LP_CLUSTER_SLOTS / n,
                           hi = (i + 1) * LP_CLUSTER_SLOTS / n;

            if (len < 0 || strncmp(name, "logs:stream:{", 13) != 0 ||
                name[len - 1] != '}') {
                bad_form++;
                continue;
            }
            slot = lp_key_slot(name, (size_t)len);
            if (slot < lo || slot >= hi)
                bad_range++;
            if (seen[slot]++)
                bad_dup++;
        }
        if (n == LP_SHARDS_MAX)
            break;
    }
    is_int(bad_form, 0, "every shard of 2..64, 100, 255, 256, 1000, 1024 is logs:stream:{TAG}");
    is_int(bad_range, 0, "each shard's slot is in its range");
    is_int(bad_dup, 0, "no two shards of one count share a slot");

    is_int(lp_shard_name("logs:stream", 0, 1, name, sizeof name, err), 11,
           "one shard is the stream itself");
    is_str(name, "logs:stream", "its name");
    lp_shard_name("a", 0, 2, name, sizeof name, err);
    is_int(lp_key_slot(name, strlen(name)) < 8192, 1, "shard 0 of 2: low half");
    lp_shard_name("a", 1, 2, name, sizeof name, err);
    is_int(lp_key_slot(name, strlen(name)) >= 8192, 1,
           "shard 1 of 2: high half");
    ok(lp_shard_name("s", 2, 2, name, sizeof name, err) < 0 &&
       strstr(err, "no such shard"), "shard 2 of 2 refused: %s", err);
    ok(lp_shard_name("s", 0, 0, name, sizeof name, err) < 0, "0 shards");
    ok(lp_shard_name("a-long-stream-name", 1, 4, name, 16, err) < 0 &&
       strstr(err, "too long"), "a name past cap: %s", err);

    ok(lp_shards_check("logs", 6, err) == 0, "logs in 6 shards");
    ok(lp_shards_check("logs:{app}", 6, err) < 0 && strstr(err, "'{'"),
       "a tagged name refused: %s", err);
    ok(lp_shards_check("logs}", 2, err) < 0, "a stray brace refused");
    ok(lp_shards_check("logs:{app}", 1, err) == 0,
       "a tagged name in 1 shard (not sharded)");
    ok(lp_shards_check("logs", 0, err) < 0 && strstr(err, "from 1 to 1024"),
       "0 shards refused: %s", err);
    ok(lp_shards_check("logs", 1025, err) < 0, "1025 shards refused");

    is_int(lp_shards_key(0, "logs", name, sizeof name, err), 11,
           "standalone count key");
    is_str(name, "logs:shards", "its name");
    lp_shards_key(1, "logs", name, sizeof name, err);
    is_str(name, "{logs}:shards", "in a cluster: the stream's slot");

    /* the IDs the tools show: a stream's, a shard's */
    {
        uint64_t ms = 0, seq = 0;
        int sh = 7;
        is_int(lp_shard_id_parse("1700000000000-5", 15, &sh, &ms, &seq), 0,
               "a stream ID");
        ok(sh == -1 && ms == 1700000000000ULL && seq == 5, "its parts");
        is_int(lp_shard_id_parse("3-1700000000000-5", 17, &sh, &ms, &seq),
               1, "a shard's ID");
        ok(sh == 3 && ms == 1700000000000ULL && seq == 5, "its parts");
        is_int(lp_shard_id_parse("1023-1-0", 8, &sh, &ms, &seq), 1,
               "the last shard");
        is_int(lp_shard_id_parse("1024-1-0", 8, &sh, &ms, &seq), -1,
               "no shard 1024");
        is_int(lp_shard_id_parse("03-1-0", 6, &sh, &ms, &seq), -1,
               "a leading zero");
        is_int(lp_shard_id_parse("-1-0", 4, &sh, &ms, &seq), -1,
               "no shard number");
        is_int(lp_shard_id_parse("1-2-3-4", 7, &sh, &ms, &seq), -1,
               "four parts");
        is_int(lp_shard_id_parse("1-x-3", 5, &sh, &ms, &seq), -1,
               "not digits");
        is_int(lp_shard_id_parse("17", 2, &sh, &ms, &seq), 0,
               "<ms> alone, as a stream ID may be written");
        is_int(lp_shard_id_parse("2-1-", 4, &sh, &ms, &seq), -1,
               "an empty seq");
    }
    return tap_done();
}
