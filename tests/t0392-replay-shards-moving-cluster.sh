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

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_cluster 3 0
S=app:replaymove
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
URL="redis://127.0.0.1:$M2"

# move_slot SLOT FROM TO: the slot and every key in it, as a resharding
move_slot() {
    ccli "$3" cluster setslot "$1" importing "$(cluster_node_id "$2")" >/dev/null &&
    ccli "$2" cluster setslot "$1" migrating "$(cluster_node_id "$3")" >/dev/null &&
    for k in $(ccli "$2" cluster getkeysinslot "$1" 1000); do
        test "$(ccli "$2" migrate 127.0.0.1 "$3" "$k" 0 5000)" = OK || return 1
    done &&
    ccli "$3" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null &&
    ccli "$2" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null
}

gen_events 30000 >in

test_expect_success 'replay --from-redis while the last shard moves: every event once' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 500 <in 2>send.err &&
    SH=$("$SHARD_NAMES" "$S" 6 | sed -n 6p) &&
    SL=$(ccli "$M1" cluster keyslot "$SH") &&
    FROM=$(cluster_owner "$SL") &&
    TO=$M1 && { [ "$FROM" != "$M1" ] || TO=$M2; } &&
    test "$(ccli "$FROM" xlen "$SH")" = 5000 &&
    mkfifo out || exit 1
    logpipe-replay -v --from-redis -r "$URL" -s "$S" >out 2>replay.err &
    RPID=$!
    exec 3<out
    read -r first <&3 &&
    move_slot "$SL" "$FROM" "$TO" &&
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
