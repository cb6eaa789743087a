#!/bin/sh
# t0355-send-shards-wal.sh -- logpipe-send --shards N --wal on a
# standalone server (issue 17 step 2): Redis SIGKILLed and restarted
# mid-send, the batches in flight and those read meanwhile go to the WAL
# and are sent again, each WAL batch to its own shard, gated by that
# shard's field: each event once over all shards, each shard in input
# order; a WAL left by a run that gave up is sent by --flush-wal; a
# record not for a shard of the stream is refused, not sent elsewhere.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis aof --appendonly yes --appendfsync always

gen_events 40000 >in
split -l 5000 -a 1 in chunk.

# all_seqs STREAM N: every seq in the shards of STREAM, one a line
all_seqs() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

# in_order STREAM N: each shard holds its seqs in input order
in_order() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >o || return 1
        sort -n o | cmp -s - o || return 1
    done
}

test_expect_success 'Redis killed twice mid-send: the WAL sends each batch to its shard, each event once' '
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --max-age 0 --shards 4 -s w1 --producer wp --batch 300 \
        --wal w --timeout 60s <fifo 2>send.err &
    spid=$!
    exec 3>fifo
    # fail STEP: says which step failed, and what send said
    fail() { echo "failed: $1" >&2; cat send.err >&2; exit 1; }
    cat chunk.a chunk.b >&3 || fail "input a b"
    wait_for 30 "test \$(rcli XLEN \$(\"$SHARD_NAMES\" w1 4 | sed -n 1p)) -gt 0" ||
        fail "shard 0"
    stop_redis KILL
    cat chunk.c chunk.d >&3 || fail "input c d"
    # (not holding the pipe open: send would wait for its end forever)
    restart_redis 3>&-
    cat chunk.e >&3 || fail "input e"
    sleep 0.2
    stop_redis KILL
    cat chunk.f chunk.g >&3 || fail "input f g"
    restart_redis 3>&-
    cat chunk.h >&3 || fail "input h"
    exec 3>&-
    wait $spid || fail "send: exit $?"
    grep_q "keeping events in the WAL w" send.err || fail "no WAL"
    # Redis may still have been loading its AOF when the input ended: the
    # WAL then keeps the rest, for --flush-wal
    logpipe-send --shards 4 -s w1 --producer wp --wal w --flush-wal \
        --timeout 60s 2>>send.err || fail "flush: exit $?"
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0 || fail "WAL left"
    all_seqs w1 4 >got &&
    tally 40000 got || fail "tally"
    in_order w1 4 || fail "order"
'

test_expect_success 'Redis away at start, no --wal: a sharded run cannot read its shards, gives up (75)' '
    stop_redis KILL &&
    expect_exit 75 logpipe-send --max-age 0 --shards 4 -s w2 \
        --producer wp2 --timeout 1s <in 2>err &&
    grep_q "giving up (--timeout 1s)" err &&
    restart_redis
'

test_expect_success 'a run that ends with Redis away leaves the WAL; --flush-wal sends it to the shards, once' '
    rm -rf w2 && rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --max-age 0 --shards 4 -s w2 --producer wp2 --batch 300 \
        --wal w2 --timeout 60s <fifo 2>send2.err &
    spid=$!
    exec 3>fifo
    cat chunk.a >&3
    wait_for 30 "test \$(rcli XLEN \$(\"$SHARD_NAMES\" w2 4 | sed -n 1p)) -gt 0"
    stop_redis KILL
    cat chunk.b chunk.c chunk.d chunk.e chunk.f chunk.g chunk.h >&3
    exec 3>&-
    wait $spid || { cat send2.err; exit 1; }
    grep_q "the next logpipe-send --wal w2 sends them" send2.err &&
    test "$(find w2 -name "wal-*.log" | wc -l)" -ge 1 &&
    restart_redis &&
    logpipe-send -v --shards 4 -s w2 --producer wp2 --wal w2 --flush-wal \
        2>flush.err &&
    test "$(find w2 -name "wal-*.log" | wc -l)" -eq 0 &&
    all_seqs w2 4 >got &&
    tally 40000 got &&
    in_order w2 4
'

test_expect_success 'a WAL record for a key that is not a shard of the stream: refused (74), the WAL kept' '
    echo "{\"a\":1}" | logpipe-send --max-age 0 -r "$(dead_redis)" -s plain \
        --wal w3 --timeout 1s 2>p.err &&
    test "$(find w3 -name "wal-*.log" | wc -l)" -eq 1 &&
    expect_exit 74 logpipe-send --shards 2 -s plain2 --wal w3 --flush-wal \
        2>err3 &&
    grep_q "not for a shard of --stream plain2" err3 &&
    test "$(find w3 -name "wal-*.log" | wc -l)" -eq 1
'

test_done
