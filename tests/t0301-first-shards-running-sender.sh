#!/bin/sh
# t0301-first-shards-running-sender.sh -- review rw1's x0403 (issue 17):
# a logpipe-send without --shards still running when the first
# send --shards recorded the count went on adding to the stream's own
# key, which the drains, following the count, no longer read: those
# events stayed there, never drained, and no tool said a word. The gate
# of every unsharded batch now looks at the count key (in the stream's
# slot, in the batch's transaction): recorded, the batch is refused and
# the run ends 78, saying to restart with --shards N; that restart reads
# the positions the run left on the stream's own key (the count before
# the first --shards is 1: the stream itself), so nothing is stored
# twice.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 30 >in
sed -n 1,10p in >a
sed -n 11,20p in >b
sed -n 21,30p in >c
cp a f.log

(
    logpipe-send --max-age 0 -s u --follow f.log 2>send.err &
    echo $! >send.pid
    wait $!
    echo $? >send.rc
) &
logpipe-drain -s u -d out --block 100ms 2>drain.err &
dpid=$!

archived() {
    test "$(find "${2:-out}" -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq "$1"
}

test_expect_success 'a follow sender and a drain on an unsharded stream' '
    wait_for 30 archived 10
'

test_expect_success 'the stream drained and deleted, the first send --shards 2' '
    rcli DEL u >/dev/null &&
    logpipe-send --max-age 0 -s u --shards 2 <b &&
    test "$(rcli GET u:shards)" = 2 &&
    test "$(rcli GET u:shards:was)" = 1 &&
    wait_for 30 archived 20 &&
    wait_for 30 grep -q "spread over 2 shards" drain.err &&
    ! grep "trimming u failed" drain.err
'

test_expect_success 'lines the follow sender reads now: refused, it ends 78 saying why' '
    cat c >>f.log &&
    wait_for 30 test -s send.rc &&
    test "$(cat send.rc)" = 78 &&
    grep_q "stream u is spread over 2 shards now" send.err &&
    grep_q "a batch of 10 events was not stored; restart with --shards 2" send.err &&
    grep_q "sent by the next run of the same command with --shards 2" send.err &&
    test "$(rcli XLEN u)" = 0 &&
    for sh in $("$TOP/tests/shard-names" u 2); do
        rcli XRANGE "$sh" - + >>in.shards
    done &&
    ! grep -q -E "seq.:(2[1-9]|30)," in.shards &&
    archived 20
'

test_expect_success 'restarted with --shards 2, it goes on from its positions on the stream key' '
    logpipe-send --max-age 0 -s u --shards 2 --follow f.log 2>send2.err &
    spid2=$!
    wait_for 30 archived 30 || { kill $spid2; exit 1; }
    kill $spid2
    wait $spid2 || :
    exactly 30 out &&
    test "$(rcli XLEN u)" = 0
'

kill $dpid "$(cat send.pid)" 2>/dev/null
wait $dpid

# stdin: a producer's run refused midway; its resume with --shards 2
# --position 1 on the whole input passes over what the stream's own key
# holds of it
gen_events 20 "x y" >in2
sed -n 1,10p in2 >a2
sed -n 11,20p in2 >b2
mkfifo feed
(logpipe-send --max-age 0 -s v --producer p1 --batch 5 <feed 2>send3.err; echo $? >send3.rc) &
exec 3>feed

test_expect_success 'a stdin producer stores its first lines unsharded' '
    cat a2 >&3 &&
    wait_for 30 test_xlen = 10 v &&
    logpipe-drain -s v -d out2 --once 2>/dev/null &&
    archived 10 out2 &&
    rcli DEL v >/dev/null &&
    printf "{\"service\":\"z\",\"seq\":99}\n" | logpipe-send -s v --shards 2 --max-age 0 &&
    rcli HGET v:producers p1 | grep -q "^10 "
'

test_expect_success 'its next batch is refused, 78, the resume says --shards' '
    cat b2 >&3 && exec 3>&- &&
    wait_for 30 test -s send3.rc &&
    test "$(cat send3.rc)" = 78 &&
    grep_q "restart with --shards 2" send3.err &&
    grep_q "logpipe-send .*shards=2" send3.err &&
    test "$(rcli XLEN v)" = 0 &&
    test "$(shards_total v 2)" = 1
'

test_expect_success 'the resume on the whole input stores the rest, the first 10 not again' '
    logpipe-send --max-age 0 -s v --shards 2 --producer p1 --position 1 <in2 2>send4.err &&
    test "$(shards_total v 2)" = 11 &&
    logpipe-drain -s v -d out2 --once 2>/dev/null &&
    grep -v "\"seq\":99" $(find out2 -name "*.jsonl") >/dev/null &&
    find out2 -name "*.jsonl" -type f -exec cat {} + | grep -v "\"seq\":99" >lines2 &&
    mkdir -p o2 && cp lines2 o2/x.jsonl && exactly 20 o2
'

# logpipe-http has no --shards: serving when the first --shards comes,
# its next batch is refused (503) and it ends 78, as it would at a start
start_http h -s hs

test_expect_success 'logpipe-http stores to an unsharded stream' '
    req -H "Content-Type: application/json" -d "{\"seq\":1}" "http://$ADDR/v1/events" &&
    code_is 200 &&
    test_xlen = 1 hs
'

test_expect_success 'after the first send --shards 2: 503, not stored, exit 78' '
    rcli DEL hs >/dev/null &&
    printf "{\"seq\":2}\n" | logpipe-send -s hs --shards 2 --max-age 0 &&
    req -H "Content-Type: application/json" -d "{\"seq\":3}" "http://$ADDR/v1/events" &&
    code_is 503 &&
    grep_q "spread over 2 shards now" body &&
    wait_for 30 test -s h.rc &&
    test "$(cat h.rc)" = 78 &&
    grep_q "give another --stream" h.err &&
    test "$(rcli XLEN hs)" = 0
'

test_expect_success 'started again, logpipe-http exits 78 at once, saying why' '
    start_http h2 -s hs &&
    wait_for 30 test -s h2.rc &&
    test "$(cat h2.rc)" = 78 &&
    grep_q "logpipe-http stores to a stream that is not" h2.err
'

test_done
