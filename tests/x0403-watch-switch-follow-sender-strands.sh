#!/bin/sh
# x0403-watch-switch-follow-sender-strands.sh -- review rw1: an unsharded
# logpipe-send --follow started before the first send --shards goes on
# adding to the bare key after the count is recorded (it asks for a
# count at its start only); the running drain, now switched to the
# shards, no longer reads the bare key: those events stay there, never
# drained, and neither tool says a word. Before the switch existed the
# drain read the bare key (and lost the shards); now the other half is
# lost. Every event should be archived once (or the sender stop, 78, and
# say why, as a new send without --shards does).
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 30 >in
sed -n 1,10p in >a
sed -n 11,20p in >b
sed -n 21,30p in >c
cp a f.log

logpipe-send --max-age 0 -s u --follow f.log 2>send.err &
spid=$!
logpipe-drain -s u -d out --block 100ms 2>drain.err &
dpid=$!

archived() {
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq "$1"
}

test_expect_success 'a follow sender and a drain on an unsharded stream' '
    wait_for 30 archived 10
'

test_expect_success 'the bare key emptied, the first send --shards 2' '
    rcli DEL u >/dev/null &&
    logpipe-send --max-age 0 -s u --shards 2 <b &&
    wait_for 30 archived 20 &&
    wait_for 30 grep -q "spread over 2 shards" drain.err
'

test_expect_success 'lines the follow sender reads now: archived, or it stops saying why' '
    cat c >>f.log &&
    wait_for 30 "archived 30 || ! kill -0 $spid" &&
    if kill -0 $spid 2>/dev/null; then exactly 30 out; else test_xlen = 0 u; fi
'

kill $spid $dpid 2>/dev/null
wait $dpid
wait $spid

test_done
