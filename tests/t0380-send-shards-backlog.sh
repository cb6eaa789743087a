#!/bin/sh
# t0380-send-shards-backlog.sh -- logpipe-send --shards with --max-backlog
# (issue 17): the backlog is what the drains have not read, summed over the
# shards (each shard's lag of the group, or its length where the group is
# not); over the limit the sender waits until a drain reads, then goes on,
# nothing lost. Each shard holds less than the limit: only the sum is over.
. "$(dirname "$0")/lib.sh"

start_redis

"$TOP/tests/shard-names" bl 3 >names

# total [STREAM]: the events in the 3 shards of STREAM (bl)
total() {
    t=0
    for sh in $("$TOP/tests/shard-names" "${1:-bl}" 3); do
        t=$((t + $(rcli XLEN "$sh")))
    done
    echo "$t"
}

test_expect_success '--max-backlog with --shards: held over the sum of the shards lags, goes on once a drain reads, nothing lost' '
    gen_events 26 >all || exit 1
    head -n 20 all | logpipe-send --shards 3 -s bl -b 1 || exit 1
    for sh in $(cat names); do
        test "$(rcli XLEN "$sh")" -lt 10 &&
        rcli XGROUP CREATE "$sh" g 0 >/dev/null || exit 1
    done
    mkfifo fifo || exit 1
    logpipe-send -v --shards 3 -s bl -g g --max-backlog 10 -b 1 \
        --linger 1ms <fifo 2>err &
    pid=$!
    exec 3>fifo
    tail -n 6 all >&3
    wait_for 10 "grep -q \"backlog 2[0-9] over --max-backlog 10: waiting\" err" &&
    n=$(total) &&
    test "$n" -lt 26 &&
    sleep 0.3 &&
    test "$(total)" -eq "$n" &&
    logpipe-drain -s bl -g g --once --stdout >drained1 2>d1.err &&
    wait_for 10 "grep -q \"backlog under --max-backlog again\" err" &&
    exec 3>&- &&
    wait $pid &&
    logpipe-drain -s bl -g g --once --stdout >drained2 2>d2.err &&
    seqs drained1 drained2 >got &&
    tally 26 got
'

test_expect_success '--max-backlog with --shards: a shard without the group counts its length' '
    "$TOP/tests/shard-names" bm 3 >mnames &&
    gen_events 13 >in &&
    head -n 9 in | logpipe-send --shards 3 -s bm -b 1 &&
    s0=$(sed -n 1p mnames) &&
    rcli XGROUP CREATE "$s0" g 0 >/dev/null &&
    rcli XREADGROUP GROUP g c COUNT 10 STREAMS "$s0" ">" >/dev/null &&
    mkfifo fifo2 || exit 1
    logpipe-send -v --shards 3 -s bm -g g --max-backlog 5 -b 1 \
        --linger 1ms <fifo2 2>err2 &
    pid=$!
    exec 3>fifo2
    tail -n 4 in >&3
    wait_for 10 "grep -q \"backlog 9 over --max-backlog 5: waiting\" err2" ||
        exit 1
    for sh in $(sed 1d mnames); do
        rcli XGROUP CREATE "$sh" g "\$" >/dev/null || exit 1
    done
    wait_for 10 "grep -q \"backlog under --max-backlog again\" err2" &&
    exec 3>&- &&
    wait $pid &&
    test "$(total bm)" -eq 13
'

test_done
