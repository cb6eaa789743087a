#!/bin/sh
# t0369-cluster-ask-split.sh -- the stream's slot half moved with its keys
# split (issue 17, item 1): the stream moved to A, its producers hash still
# on the owner. send --producer writes each batch as one transaction over
# both (the gate's EVAL on the hash, the XADDs on the stream): the owner
# turns the transaction away with ASK, send sends it whole to A after
# ASKING, where a transaction over keys some of which are not there is
# answered TRYAGAIN: send waits, nothing is made on A (the producers hash
# then moves there without BUSYKEY), and when the test ends the move send
# completes, every event once, the producers hash in one place holding
# the producer's last position.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
cluster_roles logs:stream

P="{logs:stream}:producers"

test_expect_success 'before the move: 1000 events as producer p1' '
    cluster_events 1000 1 split >in0 &&
    logpipe-send -r "redis://127.0.0.1:$B" --producer p1 in0 &&
    test "$(ccli "$OWNER" XLEN logs:stream)" = 1000 &&
    test "$(ccli "$OWNER" HGET "$P" p1 | cut -d" " -f1)" = 1000
'

test_expect_success 'the keys split: the stream on A, the producers hash on the owner' '
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_key "$OWNER" "$A" logs:stream &&
    test "$(ccli "$OWNER" EXISTS "$P")" = 1 &&
    test "$(cluster_asked "$A" XLEN logs:stream)" = 1000 &&
    test "$(cluster_asked "$A" EXISTS "$P")" = 0
'

# Redis keeps ASKING through MULTI until EXEC (7.0.15): a transaction
# after ASKING is served by the importing node
test_expect_success 'ASKING holds through MULTI ... EXEC on the importing node' '
    printf "ASKING\nMULTI\nXLEN logs:stream\nEXEC\n" |
        redis-cli -p "$A" >tx &&
    test "$(tail -n 1 tx)" = 1000
'

test_expect_success 'send --producer p1 waits (TRYAGAIN) until the move ends, then every event once' '
    cluster_events 2000 1001 split >in1 || exit 1
    logpipe-send -r "redis://127.0.0.1:$B" --producer p1 --timeout 120 in1 2>send.err &
    SENDPID=$!
    wait_for 60 "grep -q TRYAGAIN send.err" &&
    ! grep "ASK" send.err &&
    test "$(cluster_asked "$A" XLEN logs:stream)" = 1000 &&
    test "$(cluster_asked "$A" EXISTS "$P")" = 0 &&
    test "$(cluster_asked "$A" EXISTS "{logs:stream}:send-hold")" = 0 &&
    test "$(ccli "$OWNER" HGET "$P" p1 | cut -d" " -f1)" = 1000 &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    cluster_move_end "$SLOT" "$OWNER" "$A" &&
    wait $SENDPID &&
    test "$(ccli "$A" XLEN logs:stream)" = 3000 &&
    test "$(ccli "$A" HGET "$P" p1 | cut -d" " -f1)" = 3000 &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0 &&
    test "$(ccli "$A" cluster countkeysinslot "$SLOT")" = 2 &&
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch --once &&
    exactly 3000 arch
'

test_done
