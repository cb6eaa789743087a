#!/bin/sh
# t0393-dlq-shards-moving-cluster.sh -- logpipe-dlq list and export of a
# sharded stream on a 3-master Redis Cluster while a shard's slot moves
# (issue 17): the page that gets MOVED is read again over a connection
# routed where the map says now; every dead letter comes out once. dlq
# merges the shards' pages and blocks on a pipe nobody reads yet: after
# its first line, one shard's slot moves whole, then the rest is read. No
# timing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_cluster 3 0
S=app:dlqmove
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

# a shard slot (of shard $1), its master and another
pick() {
    SH=$("$SHARD_NAMES" "$S" 6 | sed -n "$(($1 + 1))p") &&
    SL=$(ccli "$M1" cluster keyslot "$SH") &&
    FROM=$(cluster_owner "$SL") &&
    TO=$M1 && { [ "$FROM" != "$M1" ] || TO=$M2; }
}

# long enough that a few pages fill the pipe
awk 'BEGIN { p = sprintf("%200s", ""); gsub(/ /, "x", p)
             for (i = 1; i <= 18000; i++) printf "not json %d %s\n", i, p }' >bad

test_expect_success '18000 dead letters over the 6 shards DLQs' '
    expect_exit 65 logpipe-send -q -r "$URL" -s "$S" --shards 6 -b 500 \
        --rejects-to-dlq <bad 2>send.err &&
    n=0 &&
    for sh in $("$SHARD_NAMES" "$S" 6); do
        d=logs:dlq:${sh#"$S":}
        n=$((n + $(ccli "$(cluster_owner "$(ccli "$M1" cluster keyslot "$d")")" xlen "$d")))
    done &&
    test $n = 18000
'

# run_moving SHARD CMD...: CMD into a pipe; after its first line, the
# shard slot moves; the whole output into got
run_moving() {
    pick "$1" || return 1
    shift
    rm -f out
    mkfifo out || return 1
    "$@" >out 2>cmd.err &
    CPID=$!
    exec 3<out
    read -r first <&3 &&
    move_slot "$SL" "$FROM" "$TO" &&
    { echo "$first"; cat <&3; } >got &&
    exec 3<&- &&
    { wait $CPID || { cat cmd.err; false; }; } &&
    cat cmd.err &&
    grep_q "read again on 127.0.0.1:$TO" cmd.err
}

test_expect_success 'dlq list while shard 5 moves: every dead letter once' '
    run_moving 5 logpipe-dlq -v -r "$URL" -s "$S" list &&
    test "$(wc -l <got)" = 18000 &&
    test "$(jq -r .id got | sort -u | wc -l)" = 18000 &&
    test "$(jq -r .id got | grep -c "^5-")" = 3000
'

test_expect_success 'dlq export while shard 2 moves: every dead letter once' '
    run_moving 2 logpipe-dlq -v -r "$URL" -s "$S" export &&
    test "$(wc -l <got)" = 18000 &&
    sed -n "s/^not json \\([0-9]*\\) x*$/\\1/p" got | sort -n >seqs &&
    tally 18000 seqs
'

test_done
