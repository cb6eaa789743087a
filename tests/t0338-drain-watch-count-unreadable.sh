#!/bin/sh
# t0338-drain-watch-count-unreadable.sh -- review rw1 (x0402, fixed): a running drain of an
# unsharded stream whose count key holds garbage (or whose user Redis
# refuses GET on it: the same path) says nothing, for ever: its watch
# drops the error (watch_tick: disconnect, return) and asks again every
# 5 s, and the drain stays on the bare key. A drain started then says
# "not a count of shards" and stops. The running one should say it too
# (once), as the sharded drain's count_now path should.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 10 >c

test_expect_success 'an unsharded stream, a drain on it' '
    logpipe-send --max-age 0 -s u <c
'
logpipe-drain -s u -d out --block 100ms 2>drain.err &
dpid=$!

test_expect_success 'a count key of garbage: a drain started now says so' '
    wait_for 30 "test \$(find out -name \"*.jsonl\" -type f -exec cat {} + | wc -l) -eq 10" &&
    rcli SET u:shards garbage >/dev/null &&
    expect_exit 78 logpipe-drain -s u -d out2 --once 2>fresh.err &&
    grep_q "not a count of shards" fresh.err
'

test_expect_success 'the running drain says so too within two watches' '
    wait_for 15 grep -q "not a count of shards.*goes on reading the unsharded key u" drain.err
'

kill $dpid 2>/dev/null
wait $dpid

# the same for a running drain of a sharded stream (its supervisor asks)
test_expect_success 'a sharded stream, a drain on it' '
    logpipe-send --max-age 0 -s d --shards 2 <c
'
logpipe-drain -s d -d out3 --block 100ms 2>drain3.err &
dpid=$!

test_expect_success 'its count key garbled: the running drain says so, its shards drained on' '
    wait_for 30 "test \$(find out3 -name \"*.jsonl\" -type f -exec cat {} + | wc -l) -eq 10" &&
    rcli SET d:shards garbage >/dev/null &&
    wait_for 15 grep -q "not a count of shards.*the drains of the shards of now go on" drain3.err &&
    kill -0 $dpid
'

kill $dpid 2>/dev/null
wait $dpid

test_done
