#!/bin/sh
# t0337-ask-target-killed.sh -- review rask (was x0361; held): the importing node of
# a slot held half moved SIGKILLed while drain's XREADGROUP BLOCK waits
# there (the ASK's side connection): drain must not hang on it (BLOCK 60s,
# socket timeout 70s); it gives up after --timeout 5s saying why, and
# stat through the owner ends too (the cluster says CLUSTERDOWN by then).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
cluster_roles logs:stream


test_expect_success 'setup: 1000 events, the slot held half moved' '
    cluster_events 1000 1 >in0 &&
    logpipe-send -r "redis://127.0.0.1:$B" in0 &&
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    test "$(cluster_asked "$A" XLEN logs:stream)" = 1000
'

test_expect_success 'drain blocks on the importing node' '
    logpipe-drain -r "redis://127.0.0.1:$B" -d arch1 --block 60s -t 5s \
        2>drain1.err &
    echo $! >drain1.pid &&
    wait_for 60 "cluster_blocked_on $A" &&
    exactly 1000 arch1
'

test_expect_success 'the importing node SIGKILLed: drain gives up after --timeout, saying why' '
    apid=$(ccli "$A" info server | tr -d "\r" | sed -n "s/^process_id://p") &&
    test -n "$apid" &&
    kill -9 "$apid" &&
    wait_for 40 "! kill -0 $(cat drain1.pid)" &&
    cat drain1.err &&
    grep_q "$A" drain1.err
'

test_expect_success 'stat through the owner ends, a Redis failure (69), saying why' '
    expect_exit 69 timeout 60 logpipe-stat -r "redis://127.0.0.1:$B" -t 5s >st 2>st.err &&
    grep_q "CLUSTERDOWN\\|$A" st.err
'

test_done
