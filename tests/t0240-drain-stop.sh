#!/bin/sh
# t0240-drain-stop.sh -- logpipe-drain stopped while its read blocks: what
# it sends on the way out reads its own replies
. "$(dirname "$0")/lib.sh"
start_redis

# The drain stops itself right after it sent the XACK of its first batch
# and the next read (BLOCK 5s) behind it; SIGTERM then lands before it
# reads that read's reply. Its last trim must not take the read's reply
# (nil, 5 s later) for its own.
test_expect_success 'a stop during a blocking read: the last trim gets its own reply' '
    gen_events 5 a >in &&
    logpipe-send <in || exit 1
    LOGPIPE_TEST_CRASH=stop:after-request-ack logpipe-drain -v -d out \
        -n 10 --block 5s 2>err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 stopped $a &&
    kill -TERM $a &&
    kill -CONT $a &&
    { wait $a || { echo "the drain exited $?:"; cat err; false; }; } &&
    ! grep "trimming" err &&
    grep_q "^logpipe-drain: 5 entries read, 5 archived, .* 5 trimmed$" err &&
    test "$(rcli XLEN logs:stream)" -eq 0 &&
    test "$(rcli XPENDING logs:stream logpipe | head -n 1)" -eq 0 &&
    test "$(cat out/a/*.jsonl | wc -l)" -eq 5
'

test_done
