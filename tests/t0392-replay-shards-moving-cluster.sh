#!/bin/sh
# t0392-replay-shards-moving-cluster.sh -- logpipe-replay --from-redis of
# a sharded stream on a 3-master Redis Cluster while a shard's slot moves
# (issue 17): the page that gets MOVED is read again over a connection
# routed where the map says now, and every event comes out once. replay
# reads the shards one after the other and blocks on a pipe nobody reads
# yet: after its first line, the last shard's slot moves whole, before
# replay can have read that shard; then the rest is read. No timing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:replaymove

gen_events 30000 >in

test_expect_success 'replay --from-redis while the last shard moves: every event once' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 500 <in 2>send.err &&
    cluster_shard_pick 6 5 &&
    test "$(ccli "$FROM" xlen "$SH")" = 5000 &&
    mkfifo out || exit 1
    logpipe-replay -v --from-redis -r "$URL" -s "$S" >out 2>replay.err &
    RPID=$!
    exec 3<out
    read -r first <&3 &&
    cluster_move_slot "$SL" "$FROM" "$TO" &&
    test "$(cluster_owner "$SL")" = "$TO" &&
    { echo "$first"; cat <&3; } >all &&
    exec 3<&- &&
    { wait $RPID || { cat replay.err; false; }; } &&
    cat replay.err &&
    grep_q "read again on 127.0.0.1:$TO" replay.err &&
    seqs all >got &&
    tally 30000 got &&
    test "$(grep -c "^{\"_id\":\"5-" all)" = 5000
'

test_done
