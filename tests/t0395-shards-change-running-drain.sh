#!/bin/sh
# t0395-shards-change-running-drain.sh -- review rsh2 (issue 17): a drain
# running through a change of the count of shards (2 to 3) went on
# reading the shards of 2 only; the shards of 3 that are none of those
# filled and were never read, and nothing said so. A sharded drain (not
# --once) now asks the count every 5 s and, changed, stops its shards'
# drains and starts those of the new count, saying so.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 70 >in
sed -n 1,10p in >a
sed -n 11,70p in >b

archived() {
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq "$1"
}

test_expect_success 'a stream of 2 shards, a drain running on it' '
    logpipe-send --max-age 0 -s d --shards 2 <a &&
    test "$(rcli GET d:shards)" = 2
'

logpipe-drain -s d -d out --block 100ms 2>drain.err &
dpid=$!

test_expect_success 'the running drain archives the 2 shards' '
    wait_for 30 archived 10
'

test_expect_success 'a send of 3 shards changes the count (every shard drained)' '
    logpipe-send --max-age 0 -s d --shards 3 <b 2>send.err &&
    test "$(rcli GET d:shards)" = 3 &&
    grep_q "changed from 2 to 3" send.err
'

test_expect_success 'the running drain archives what the 3 shards hold, and says why' '
    wait_for 60 archived 70 &&
    grep_q "its count of shards changed from 2 to 3" drain.err &&
    exactly 70 out
'

kill $dpid 2>/dev/null
wait $dpid 2>/dev/null

test_done
