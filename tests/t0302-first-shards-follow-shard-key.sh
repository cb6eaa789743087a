#!/bin/sh
# t0302-first-shards-follow-shard-key.sh -- rw2 review of 44680a1: a
# --follow sender without --shards refused at the first --shards (78,
# "restart with --shards 2") is restarted so, with --shard-key .service
# (events of a service in order on one shard): it should go on from its
# file's position on the stream's own key, every line once. It exits 78
# instead, saying the count changed "from 1 to 2" and to "go on with
# --shards 1", which is the default, unsharded, refused (78) as well: the
# file is sent by no run, though the count before is one key, the stream's own, which the
# file's field there tells exactly.
. "$(dirname "$0")/lib.sh"

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
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq "$1"
}

test_expect_success 'a follow sender unsharded; drained; the first --shards 2' '
    wait_for 30 archived 10 &&
    rcli DEL u >/dev/null &&
    logpipe-send --max-age 0 -s u --shards 2 --shard-key .service <b &&
    test "$(rcli GET u:shards:was)" = 1 &&
    wait_for 30 archived 20
'

test_expect_success 'the follow sender is refused at its next lines, 78' '
    cat c >>f.log &&
    wait_for 30 test -s send.rc &&
    test "$(cat send.rc)" = 78 &&
    grep_q "restart with --shards 2" send.err
'

test_expect_success 'restarted with --shards 2 --shard-key .service: goes on, every line once' '
    logpipe-send --max-age 0 -s u --shards 2 --shard-key .service --follow f.log 2>send2.err &
    spid2=$!
    wait_for 30 archived 30 || sed "s/^/# /" send2.err
    kill $spid2 2>/dev/null || :
    wait $spid2 || :
    exactly 30 out
'

test_expect_success 'no message names a count of 1 to go on with' '
    ! grep "shards 1[^0-9]" send2.err
'

test_expect_success 'what it says to do, --shards 1 (the default: unsharded), is refused too' '
    expect_exit 78 logpipe-send --max-age 0 -s u --shards 1 --follow f.log 2>send3.err &&
    grep_q "spread over 2 shards" send3.err
'

kill $dpid "$(cat send.pid)" 2>/dev/null
wait $dpid
test_done
