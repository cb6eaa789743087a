#!/bin/sh
# t0364-cluster-shards.sh -- a sharded stream on a 3-master Redis Cluster
# (issue 17, item 2): send --shards 6 through one node, drain --once
# through another: every event exactly once, the shards on every master;
# then send and a drain run while redis-cli --cluster reshard moves
# thousands of slots, the drain SIGKILLed and started again several
# times: nothing lost, nothing twice in the tree.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
S=shard:events
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
events() {
    awk -v f="$1" -v n="$2" -v now="$NOW" "BEGIN { for (i = f; i < f + n; i++)
        printf \"{\\\"timestamp\\\":\\\"%s\\\",\\\"service\\\":\\\"svc%d\\\",\\\"n\\\":%d}\\n\", now, i % 7, i }"
}
archived() {
    find "$1" -name "*.jsonl" -exec cat {} +
}
count() {
    archived "$1" | grep -c "\"n\":"
}
# the master of KEY now
owner_of() {
    cluster_owner "$(ccli "$M1" cluster keyslot "$1")"
}

test_expect_success 'send --shards 6 through one node: the shards on every master' '
    events 1 12000 >in1 &&
    logpipe-send -r "redis://127.0.0.1:$M1" -s "$S" --shards 6 --batch 100 \
        --producer p1 in1 &&
    test "$(ccli "$(owner_of "{$S}:shards")" get "{$S}:shards")" = 6 &&
    "$TOP/tests/shard-names" "$S" 6 >names &&
    total=0 &&
    for k in $(cat names); do
        o=$(owner_of "$k") &&
        echo "$o" >>owners &&
        n=$(ccli "$o" xlen "$k") &&
        say "$k on $o: $n" &&
        test "$n" -gt 0 &&
        total=$((total + n)) || return 1
    done &&
    test "$total" = 12000 &&
    test "$(sort -u owners | wc -l)" = 3
'

test_expect_success 'drain --once through another node: each event once' '
    logpipe-drain -r "redis://127.0.0.1:$M2" -s "$S" -d arch1 --once &&
    archived arch1 | sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got1 &&
    seq 1 12000 >want1 &&
    test_cmp want1 got1 &&
    archived arch1 | sed -n "s/^{\"_id\":\"\([0-9]*\)-[0-9]*-[0-9]*\".*/\1/p" |
        sort -u >shards1 &&
    test "$(wc -l <shards1)" = 6 &&
    test ! -e arch1/.logpipe-journal
'

test_expect_success 'reshard thousands of slots under send and a drain SIGKILLed: exact' '
    events 12001 30000 >in2 &&
    mkfifo fifo || exit 1
    logpipe-send -r "redis://127.0.0.1:$M3" -s "$S" --shards 6 --batch 50 \
        --producer p2 <fifo 2>send.err &
    SENDPID=$!
    exec 3>fifo
    sed -n 1,10000p in2 >&3
    redis-cli --cluster reshard "127.0.0.1:$M1" \
        --cluster-from "$(cluster_node_id "$M1")" \
        --cluster-to "$(cluster_node_id "$M2")" \
        --cluster-slots 3000 --cluster-yes >reshard1.log 2>&1 &
    RPID=$!
    for round in 1 2 3; do
        logpipe-drain -r "redis://127.0.0.1:$M2" -s "$S" -d arch2 \
            --block 200ms -n 50 2>>drain.err &
        DPID=$!
        wait_for 60 "test \$(count arch2) -ge \$((round * 3000))" || {
            cat drain.err >&2; kill -9 $DPID; exit 1; }
        kill -9 $DPID
        wait $DPID || :
        sed -n "$((10000 + round * 5000 - 4999)),$((10000 + round * 5000))p" in2 >&3
    done
    wait $RPID &&
    redis-cli --cluster reshard "127.0.0.1:$M1" \
        --cluster-from "$(cluster_node_id "$M2")" \
        --cluster-to "$(cluster_node_id "$M3")" \
        --cluster-slots 2000 --cluster-yes >reshard2.log 2>&1 &&
    sed -n 25001,30000p in2 >&3 &&
    exec 3>&- &&
    wait $SENDPID &&
    logpipe-drain -r "redis://127.0.0.1:$M1" -s "$S" -d arch2 --once 2>>drain.err &&
    archived arch2 | sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got2 &&
    seq 12001 42000 >want2 &&
    test_cmp want2 got2 &&
    archived arch2 | sed -n "s/^{\"_id\":\"\([^\"]*\)\".*/\1/p" | sort | uniq -d >dupids &&
    test ! -s dupids
'

test_done
