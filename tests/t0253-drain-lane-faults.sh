#!/bin/sh
# t0253-drain-lane-faults.sh -- the journal's commit synced in the lane
# while the next read goes out (a728e51): failures met on that path
. "$(dirname "$0")/lib.sh"
start_redis drain

# deliveries: how many pending entries have each delivery count, as
# "COUNT x DELIVERIES" lines (XPENDING --raw: ID, consumer, idle, count)
deliveries() {
    rcli --raw XPENDING logs:stream logpipe - + 1000000 |
        awk 'NR % 4 == 0 { c[$1]++ } END { for (k in c) print c[k] " x " k }'
}

fresh() {
    rcli DEL logs:stream >/dev/null
    rm -rf out
    gen_events "$1" "$2" "$t0" >in
    logpipe-send <in
}

# one UTC day for every event: the day file's name is known beforehand
t0=$(($(date +%s) - 120))
day=$(date -u -d "@$t0" +%F)

if command -v strace >/dev/null; then
    # strace counts a syscall per thread: the lane is one thread, one
    # fdatasync per commit, so its 20th commit fails; the pool's threads
    # sync a file once an epoch, far fewer times in this run
    test_expect_success 'the lane fails on the 20th commit: 19 batches acknowledged, the rest given back, then exactly once' '
        fresh 5000 "a b c" &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -e trace=fdatasync \
            -e inject=fdatasync:error=EIO:when=20 \
            logpipe-drain --once -d out -n 100 2>err &&
        grep_q ".logpipe-journal/[0-9a-f]*: fsync: Input/output error" err &&
        test "$(pending)" -eq 200 &&
        deliveries >got &&
        echo "200 x 0" >want &&
        test_cmp want got &&
        logpipe-drain --once -d out -n 100 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 5000 out
    '

    # The epoch sync of a day file fails. Every batch is full (60,000
    # entries over two files, -n 10: several seconds under strace, the
    # first epoch is due after one), so each commit syncs in the lane
    # and the epochs run in request(), after the late XACK, with the next
    # read already sent: the run ends (74), and that read's entries get
    # their deliveries back, as logpipe-drain(1), Redelivery, says ("the
    # disk's failure, not the entry's"). They kept them before this test
    # (found by the review of a728e51).
    test_expect_success 'a day file fails its epoch sync while a read is out: the read gets its deliveries back' '
        fresh 60000 "a b" &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -P "$PWD/out/a/$day.jsonl" \
            -e trace=fdatasync -e inject=fdatasync:error=EIO \
            logpipe-drain --once -d out -n 10 2>err &&
        grep_q "a/$day.jsonl: fsync: Input/output error" err &&
        test "$(pending)" -gt 0 &&
        deliveries >got &&
        echo "$(pending) x 0" >want &&
        test_cmp want got &&
        logpipe-drain --once -d out 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 60000 out
    '

    # One file: each batch is committed by that file's own sync, in the
    # lane; it fails: 74, nothing of that batch acknowledged, deliveries
    # given back, and the next run has every event once
    test_expect_success 'one file: its own sync fails in the lane: 74, deliveries given back, then exactly once' '
        fresh 3000 "a" &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -P "$PWD/out/a/$day.jsonl" \
            -e trace=fdatasync -e inject=fdatasync:error=EIO:when=3 \
            logpipe-drain --once -d out -n 100 2>err &&
        grep_q "a/$day.jsonl: fsync: Input/output error" err &&
        test "$(pending)" -gt 0 &&
        deliveries >got &&
        echo "$(pending) x 0" >want &&
        test_cmp want got &&
        logpipe-drain --once -d out -n 100 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 3000 out
    '
else
    test_skip 'the lane fails on the 20th commit' 'strace is not installed'
    test_skip 'a day file fails its epoch sync while a read is out' \
        'strace is not installed'
    test_skip 'one file: its own sync fails in the lane' \
        'strace is not installed'
fi

test_done
