#!/bin/sh
# t0349-cluster-reshard-failover.sh -- send and drain running on a Redis
# Cluster of 3 masters with 2 replicas each while the stream's slot moves
# (redis-cli --cluster reshard) and then while its master is SIGKILLed and
# a replica takes over (send with --replicas 1; the second replica follows
# the promoted one, so that WAIT 1 can still be met): every event
# archived exactly once.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 2
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
URL1="redis://127.0.0.1:$M1"

# the stream: a name whose slot is the first its master serves, so that
# redis-cli --cluster reshard --cluster-slots 5 moves it (it takes the
# lowest slots of the source)
FIRST=$(ccli "$M2" cluster nodes | awk '$2 ~ /:'"$M2"'@/ { split($9, r, "-"); print r[1] }')
S=$(awk "BEGIN { for (i = 1; i <= 200000; i++) print \".slot s\" i }" |
    "$TOP/tests/cluster-cli" -r "$URL1" |
    awk -v f="$FIRST" '$1 == f { print "s" NR; exit }')
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
events() {
    awk -v f="$1" -v n="$2" -v now="$NOW" "BEGIN { for (i = f; i < f + n; i++)
        printf \"{\\\"timestamp\\\":\\\"%s\\\",\\\"n\\\":%d}\\n\", now, i }"
}
# every line of the archive tree DIR (--stdout writes an entry delivered
# again twice: the tree is what is exactly once)
archived() {
    find "$1" -name "*.jsonl" -exec cat {} +
}
count() {
    archived "$1" | grep -c "\"n\":"
}

test_expect_success 'the stream is on M2, in its first slot' '
    test -n "$S" &&
    test "$(ccli "$M1" cluster keyslot "$S")" = "$FIRST" &&
    test "$(cluster_owner "$FIRST")" = "$M2"
'

test_expect_success 'send and drain while redis-cli --cluster reshard moves the slot' '
    events 1 30000 >in &&
    mkfifo fifo || exit 1
    logpipe-send -r "redis://127.0.0.1:$M3" -s "$S" --batch 20 --producer r1 <fifo 2>send.err &
    SENDPID=$!
    logpipe-drain -r "redis://127.0.0.1:$M1" -s "$S" -d arch --block 200ms -n 50 2>drain.err &
    DRAINPID=$!
    exec 3>fifo &&
    sed -n 1,10000p in >&3 &&
    wait_for 60 "test \$(count arch) -ge 10000" &&
    sed -n 10001,12000p in >&3 &&
    redis-cli --cluster reshard "127.0.0.1:$M1" \
        --cluster-from "$(cluster_node_id "$M2")" \
        --cluster-to "$(cluster_node_id "$M3")" \
        --cluster-slots 5 --cluster-yes >reshard.log 2>&1 &&
    test "$(cluster_owner "$FIRST")" = "$M3" &&
    sed -n 12001,20000p in >&3 &&
    exec 3>&- &&
    wait $SENDPID &&
    wait_for 60 "test \$(count arch) -ge 20000" &&
    kill $DRAINPID &&
    wait $DRAINPID &&
    cat send.err drain.err >&2 &&
    archived arch | sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got &&
    seq 1 20000 >want &&
    test_cmp want got
'

test_expect_success 'send --replicas 1 and drain while the master is SIGKILLed' '
    OWNER=$(cluster_owner "$FIRST") &&
    rm -f fifo &&
    mkfifo fifo || exit 1
    logpipe-send -r "redis://127.0.0.1:$M1" -s "$S" --batch 20 --replicas 1 --producer r2 <fifo 2>send2.err &
    SENDPID=$!
    logpipe-drain -r "redis://127.0.0.1:$M1" -s "$S" -d arch2 --block 200ms -n 50 2>drain2.err &
    DRAINPID=$!
    exec 3>fifo &&
    { sed -n 20001,25000p in >&3 || { cat send2.err drain2.err >&2; false; }; } &&
    wait_for 60 "test \$(count arch2) -ge 5000" &&
    sed -n 25001,26000p in >&3 &&
    vpid=$(ccli "$OWNER" info server | tr -d "\r" | sed -n "s/^process_id://p") &&
    test -n "$vpid" &&
    kill -9 "$vpid" &&
    { sed -n 26001,30000p in >&3 || { sleep 1; cat send2.err drain2.err >&2; false; }; } &&
    exec 3>&- &&
    { wait $SENDPID || { echo "send: $?" >&2; cat send2.err >&2; false; }; } &&
    { wait_for 90 "test \$(count arch2) -ge 10000" || { count arch2 >&2; cat drain2.err >&2; false; }; } &&
    kill $DRAINPID &&
    wait $DRAINPID &&
    cat send2.err drain2.err >&2 &&
    NEW=$(cluster_owner "$FIRST" "$M1") &&
    test -n "$NEW" && test "$NEW" != "$OWNER" &&
    archived arch2 | sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got2 &&
    seq 20001 30000 >want2 &&
    test_cmp want2 got2
'

test_done
