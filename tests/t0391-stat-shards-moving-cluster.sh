#!/bin/sh
# t0391-stat-shards-moving-cluster.sh -- logpipe-stat of a sharded stream
# on a 3-master Redis Cluster while a shard's slot moves (issue 17): a
# MOVED or ASK on a shard's key gives that shard a connection of its own,
# routed where the map says now, and the shard is asked again; stat ends
# with the right figures (exit 0), not with a Redis failure (69). The
# slot is half moved (the stream on the new master, the slot still
# migrating: ASK) when stat starts; the move ends once stat said it asks
# again, so no timing decides the outcome.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:statmove

gen_events 600 >in

test_expect_success 'stat while a shard slot moves: asked again where it went, figures exact' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 10 <in 2>send.err &&
    cluster_shard_pick 6 0 &&
    test "$(ccli "$FROM" xlen "$SH")" = 100 &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_key "$FROM" "$TO" "$SH" || exit 1
    logpipe-stat -v -t 60s -r "$URL" -s "$S" >stat.out 2>stat.err &
    STATPID=$!
    wait_for 60 "grep -q \"asked again\" stat.err" &&
    cluster_move_key "$FROM" "$TO" "$SH:producers" &&
    cluster_move_key "$FROM" "$TO" "$SH:shards" &&
    cluster_move_end "$SL" "$FROM" "$TO" &&
    { wait $STATPID || { cat stat.err; false; }; } &&
    cat stat.err &&
    test "$(jq -r .length stat.out)" = 600 &&
    test "$(jq -r ".shards[0].length" stat.out)" = 100 &&
    test "$(jq -r ".shards[0].node" stat.out)" = "127.0.0.1:$TO" &&
    test "$(jq -r "[.shards[].length] | add" stat.out)" = 600
'

test_expect_success 'stat again: the map as it is now, nothing asked again' '
    logpipe-stat -v -r "$URL" -s "$S" >stat2.out 2>stat2.err &&
    ! grep -q "asked again" stat2.err &&
    test "$(jq -r .length stat2.out)" = 600
'

test_done
