#!/bin/sh
# t0368-cluster-ask-held.sh -- the stream's slot held half moved (issue
# 17, item 1: "follow ASK (ASKING + retry, no map change)"): importing on
# A, migrating on its owner, every key of it moved to A, the move not
# ended. The map still names the owner, which answers ASK for every key:
# send (2000 events, through a third node), drain --once, stat and replay
# --from-redis follow each ASK (the command again on A after ASKING, its
# transaction whole) and succeed, exactly: every event once, stat's
# figures those of the stream on A. Then the move is ended (MOVED, the map
# reloaded) and they still work.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
cluster_roles logs:stream

# the seqs of the replayed lines in FILE, sorted
seqs_of() {
    sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" "$1" | sort -n
}

test_expect_success 'before the move: 1000 events sent' '
    cluster_events 1000 1 >in0 &&
    logpipe-send -r "redis://127.0.0.1:$B" --producer p0 in0 &&
    test "$(ccli "$OWNER" XLEN logs:stream)" = 1000
'

test_expect_success 'the slot held half moved: every key on A, owner still the owner' '
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0 &&
    test "$(cluster_asked "$A" XLEN logs:stream)" = 1000 &&
    test "$(cluster_owner "$SLOT")" = "$OWNER"
'

test_expect_success 'stat follows ASK: the figures of the stream on A' '
    logpipe-stat -r "redis://127.0.0.1:$B" --producers >st1 &&
    ! grep -q "redis_error" st1 &&
    grep_q "\"stream\":\"logs:stream\",\"length\":1000," st1 &&
    grep_q "\"producers\":{\"key\":\"{logs:stream}:producers\",\"count\":1" st1
'

test_expect_success 'replay --from-redis follows ASK: every event once' '
    logpipe-replay -r "redis://127.0.0.1:$B" --from-redis >rep1 &&
    seqs_of rep1 >got1 &&
    seq 1 1000 >want1 &&
    test_cmp want1 got1
'

test_expect_success 'drain --once follows ASK: every event once, acknowledged' '
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch1 --once --timeout 20 &&
    exactly 1000 arch1 &&
    logpipe-stat -r "redis://127.0.0.1:$B" >st2 &&
    grep_q "\"name\":\"logpipe\",\"consumers\":1,\"pending\":0,\"lag\":0," st2 &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0
'

# send's every batch is a transaction whose gate (an EVAL) names the
# producers hash and {S}:send-hold, a key there only while a batch is
# held aside: on A, after ASKING, a command over several keys some of
# which are not there is answered TRYAGAIN (Redis makes no key anew in a
# slot being imported), so send waits, as it does for TRYAGAIN, until the
# move ends; then every event once
test_expect_success 'send while held: ASK followed, TRYAGAIN waited out, then every event once' '
    cluster_events 2000 1001 >in1 || exit 1
    logpipe-send -r "redis://127.0.0.1:$B" --timeout 120 in1 2>send.err &
    SENDPID=$!
    wait_for 60 "grep -q TRYAGAIN send.err" &&
    ! grep "ASK" send.err &&
    test "$(cluster_asked "$A" EXISTS "{logs:stream}:send-hold")" = 0 &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0 &&
    cluster_move_end "$SLOT" "$OWNER" "$A" &&
    wait $SENDPID &&
    test "$(ccli "$A" XLEN logs:stream)" = 2000 &&
    test "$(ccli "$A" EXISTS "{logs:stream}:send-hold")" = 0 &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0
'

test_expect_success 'the move ended: send, stat, replay and drain still work' '
    cluster_move_end "$SLOT" "$OWNER" "$A" &&
    cluster_events 500 3001 >in2 &&
    logpipe-send -r "redis://127.0.0.1:$B" in2 &&
    logpipe-stat -r "redis://127.0.0.1:$B" >st3 &&
    grep_q "\"length\":2500," st3 &&
    logpipe-replay -r "redis://127.0.0.1:$B" --from-redis >rep2 &&
    seqs_of rep2 >got3 &&
    seq 1001 3500 >want3 &&
    test_cmp want3 got3 &&
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch2 --once &&
    find arch2 -name "*.jsonl" -exec cat {} + >out2 &&
    seqs_of out2 >got4 &&
    seq 1001 3500 >want4 &&
    test_cmp want4 got4 &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0
'

test_done
