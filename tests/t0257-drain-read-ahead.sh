#!/bin/sh
# t0257-drain-read-ahead.sh -- logpipe-drain into day files reads the next
# batch before it writes the one in hand (lp_drain.c, read_ahead): every
# path that needs the connection while that read is out (DLQ moves, the
# XACK of a part with --max-files, a stop, a failure of ours) takes or
# gives back its reply; nothing is lost, nothing is stored twice, and no
# delivery counts against an entry it was not worked on for.
. "$(dirname "$0")/lib.sh"
start_redis readahead


# fresh N: an empty archive, a stream of N events over 8 services
fresh() {
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rm -rf out &&
    gen_events "$1" "a b c d e f g h" >in &&
    logpipe-send <in
}

test_expect_success 'dead letters in full batches: moved while the next read is out, the rest once' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rm -rf out &&
    gen_events 3000 "a b c d e f g h" >in &&
    k=0 || exit 1
    while [ $k -lt 3000 ]; do
        sed -n "$((k + 1)),$((k + 250))p" in | logpipe-send &&
        rcli XADD logs:stream "*" data "{\"service\":true}" >/dev/null &&
        k=$((k + 250)) || exit 1
    done
    logpipe-drain --once -n 100 -d out 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 12 &&
    test "$(pending)" -eq 0 &&
    exactly 3000 out
'

test_expect_success '--max-files splits full batches: each part acknowledged behind the read ahead' '
    fresh 4000 &&
    logpipe-drain --once -n 200 --max-files 3 -d out 2>err &&
    test "$(pending)" -eq 0 &&
    exactly 4000 out
'

test_expect_success 'a stop with the read ahead out: its deliveries given back, then every event once' '
    fresh 5000 || exit 1
    LOGPIPE_TEST_CRASH=stop:after-write logpipe-drain -n 500 -d out \
        2>err &
    pid=$! &&
    wait_for 20 stopped $pid &&
    kill -TERM $pid && kill -CONT $pid &&
    wait $pid &&
    test "$(pending)" -gt 0 &&
    test "$(max_count)" -eq 0 &&
    logpipe-drain --once -n 500 -d out 2>err2 &&
    test "$(pending)" -eq 0 &&
    exactly 5000 out
'

test_expect_success 'a SIGKILL with the read ahead out: both batches pending, read again once' '
    fresh 3000 &&
    LOGPIPE_TEST_CRASH=after-write expect_exit 137 logpipe-drain --once \
        -n 500 -d out 2>err &&
    p=$(pending) && { test "$p" -eq 500 || test "$p" -eq 1000; } &&
    logpipe-drain --once -n 500 -d out 2>err2 &&
    test "$(pending)" -eq 0 &&
    exactly 3000 out
'

if command -v strace >/dev/null; then
    # the first journal commit fails: the batch in hand and the one read
    # ahead are both given back
    test_expect_success 'a failure of ours with the read ahead out (fsync EIO): both given back' '
        fresh 3000 &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -e trace=fdatasync \
            -e inject=fdatasync:error=EIO \
            logpipe-drain --once -n 500 -d out 2>err &&
        grep_q "fsync: Input/output error" err &&
        test "$(pending)" -ge 500 &&
        test "$(max_count)" -eq 0 &&
        logpipe-drain --once -n 500 -d out 2>err2 &&
        test "$(pending)" -eq 0 &&
        exactly 3000 out
    '
else
    test_skip 'a failure of ours with the read ahead out' 'strace is not installed'
fi

test_done
