#!/bin/sh
# t0395-shards-change-running-drain.sh -- review rsh2 (issue 17): a drain
# running through a change of the count of shards (2 to 3) went on
# reading the shards of 2 only; the shards of 3 that are none of those
# filled and were never read, and nothing said so. A sharded drain (not
# --once) now asks the count every 5 s and, changed, stops its shards'
# drains and starts those of the new count, saying so. So does a drain
# of an unsharded stream that the first send --shards spreads over
# shards (review nu1: it went on reading the bare key, which nothing
# fills any more, and the shards were never read).
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

gen_events 40 >in2
sed -n 1,10p in2 >c
sed -n 11,40p in2 >e

test_expect_success 'an unsharded stream, a drain running on it' '
    logpipe-send --max-age 0 -s u <c &&
    test -z "$(rcli GET u:shards)"
'

logpipe-drain -s u -d out2 --block 100ms 2>drain2.err &
dpid=$!

test_expect_success 'the running drain archives it' '
    wait_for 30 "test \$(find out2 -name \"*.jsonl\" -type f -exec cat {} + | wc -l) -eq 10"
'

test_expect_success 'the first send --shards 3 (the bare key emptied): the running drain drains the shards, saying so' '
    rcli DEL u >/dev/null &&
    logpipe-send --max-age 0 -s u --shards 3 <e &&
    test "$(rcli GET u:shards)" = 3 &&
    wait_for 60 "test \$(find out2 -name \"*.jsonl\" -type f -exec cat {} + | wc -l) -eq 40" &&
    grep_q "stream u is spread over 3 shards now" drain2.err &&
    exactly 40 out2 &&
    kill -0 $dpid
'

# (before the fork of the shards' drains, the engine of the unsharded
# key ran here, with its sync threads: a child that believed them there
# waited for ever at its first sync, and SIGTERM stopped nothing)
# (a drain that does not stop is killed after 60 s, its children with it,
# and the case fails: the file must not hang)
kill $dpid 2>/dev/null
if ! wait_for 60 "! grep -q \"^State:.*[RSD]\" /proc/$dpid/status"; then
    pkill -KILL -P $dpid
    kill -KILL $dpid
fi
wait $dpid
echo $? >drain2.rc

test_expect_success 'and stops on SIGTERM as a sharded drain does' '
    test "$(cat drain2.rc)" = 0
'

test_done
