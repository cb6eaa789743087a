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

cluster_sharded app:dlqmove

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
    cluster_shard_pick 6 "$1" || return 1
    shift
    rm -f out
    mkfifo out || return 1
    "$@" >out 2>cmd.err &
    CPID=$!
    exec 3<out
    read -r first <&3 &&
    cluster_move_slot "$SL" "$FROM" "$TO" &&
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
