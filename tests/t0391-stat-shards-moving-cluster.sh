#!/bin/sh
# t0391-stat-shards-moving-cluster.sh -- logpipe-stat of a sharded stream
# on a 3-master Redis Cluster while a shard's slot moves (issue 17): with
# the slot half moved (the shard's stream on the new master, the slot
# still migrating) its owner answers ASK, which the shard's connection
# follows in place (the command again on the new master after ASKING,
# item 1): stat ends with the right figures (exit 0) without asking the
# shard again, not with a Redis failure (69); once the move ended, stat
# finds the shard where the map says.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:statmove

gen_events 600 >in

test_expect_success 'stat while a shard slot is half moved: ASK followed in place, figures exact' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 10 <in 2>send.err &&
    cluster_shard_pick 6 0 &&
    test "$(ccli "$FROM" xlen "$SH")" = 100 &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_key "$FROM" "$TO" "$SH" &&
    logpipe-stat -v -t 60s -r "$URL" -s "$S" >stat.out 2>stat.err &&
    ! grep -q "asked again" stat.err &&
    test "$(jq -r .length stat.out)" = 600 &&
    test "$(jq -r ".shards[0].length" stat.out)" = 100 &&
    test "$(jq -r ".shards[0].node" stat.out)" = "127.0.0.1:$FROM" &&
    test "$(jq -r "[.shards[].length] | add" stat.out)" = 600 &&
    cluster_move_key "$FROM" "$TO" "$SH:producers" &&
    cluster_move_key "$FROM" "$TO" "$SH:shards" &&
    cluster_move_end "$SL" "$FROM" "$TO"
'

# (FROM, picked again: the shard's master now, where it moved)
test_expect_success 'stat again: the map as it is now, nothing asked again' '
    logpipe-stat -v -r "$URL" -s "$S" >stat2.out 2>stat2.err &&
    ! grep -q "asked again" stat2.err &&
    test "$(jq -r .length stat2.out)" = 600 &&
    cluster_shard_pick 6 0 &&
    test "$(jq -r ".shards[0].node" stat2.out)" = "127.0.0.1:$FROM"
'

test_done
