#!/bin/sh
# t0336-ask-drain-blocking.sh -- review rask (was x0360; held): drain (not --once,
# blocking reads, read ahead, XACK after the read) over a slot held half
# moved: its reads and XACKs answered ASK by the owner and followed in
# place on the importing node. Entries added on the importing node while
# drain blocks there reach it; a SIGTERM while its XREADGROUP BLOCK waits
# on the importing node ends it at once, nothing lost, nothing pending.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
cluster_roles logs:stream


test_expect_success 'setup: 3000 events, the slot held half moved' '
    cluster_events 3000 1 >in0 &&
    logpipe-send -r "redis://127.0.0.1:$B" --producer p0 in0 &&
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    test "$(cluster_asked "$A" XLEN logs:stream)" = 3000
'

test_expect_success 'drain follows ASK with reads ahead; blocks on the importing node' '
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch1 -n 100 --block 60s \
        -v 2>drain1.err &
    echo $! >drain1.pid &&
    wait_for 60 "test \$(find arch1 -name \"*.jsonl\" -exec cat {} + | wc -l) -ge 3000" &&
    wait_for 30 "cluster_blocked_on $A" &&
    exactly 3000 arch1 &&
    ! grep "ASK" drain1.err
'

test_expect_success 'an entry added on the importing node reaches the blocked drain' '
    printf "ASKING\nXADD logs:stream * data \047{\"timestamp\":\"%s\",\"service\":\"ask\",\"seq\":3001}\047\n" "$CLUSTER_NOW" |
        redis-cli -p "$A" >xadd.out &&
    ! grep -i "err\|invalid" xadd.out &&
    wait_for 30 "find arch1 -name \"*.jsonl\" -exec cat {} + | grep -q seq.:3001" &&
    wait_for 30 "cluster_blocked_on $A"
'

test_expect_success 'SIGTERM while the blocking read waits on the importing node: ends well before BLOCK' '
    kill -TERM $(cat drain1.pid) &&
    wait_for 15 "! kill -0 $(cat drain1.pid)" &&
    grep_q "3001 entries read, 3001 archived" drain1.err &&
    printf "ASKING\nXPENDING logs:stream logpipe\n" | redis-cli -p "$A" >pend &&
    sed -n 2p pend >pend1 &&
    test "$(cat pend1)" = 0
'

test_expect_success 'the last drain ended: nothing left, every event once' '
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch2 --once &&
    exactly 3001 arch1 arch2
'

test_done
