#!/bin/sh
# t0140-send-wal-partial.sh -- logpipe-send --wal: an event Redis answered
# with an ID is never sent again, whatever failed around it (issue 12
# item 11: OOM in the middle of a re-sent batch, replies in flight at exit)
. "$(dirname "$0")/lib.sh"

segments() {
    find "$1" -name 'wal-*.log' | wc -l
}

# stream_seqs [KEY]: the seq numbers in the stream, in stream order
stream_seqs() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        sed -n 's/.*"seq":\([0-9]*\).*/\1/p'
}

# drained: the group has read everything and has nothing pending
drained() {
    rcli --raw XINFO GROUPS logs:stream >groups &&
    awk 'p == "pending" && $0 != "0" { bad = 1 }
         p == "lag" && $0 != "0" { bad = 1 }
         { p = $0 } END { exit bad }' groups
}

# exhaust KEY: a stream whose last ID is the largest there is, so that
# every XADD KEY * fails (an error reply that only this key's commands get)
exhaust() {
    rcli DEL "$1" >/dev/null &&
    rcli XADD "$1" 18446744073709551615-18446744073709551615 x y >/dev/null
}

start_redis oom --maxmemory 3mb --maxmemory-policy noeviction

test_expect_success 'OOM while a drain frees memory: every event once, WAL flushed' '
    gen_events 40000 >in
    # the group first: XGROUP CREATE is refused too once Redis is full
    rcli XGROUP CREATE logs:stream logpipe 0 MKSTREAM >/dev/null
    logpipe-send --wal w1 --max-age 0 <in 2>err &
    spid=$!
    # Redis is full (40,000 events do not fit in 3 MB): the WAL takes over
    wait_for 120 grep -q "keeping events in the WAL w1" err
    # a drain frees memory (XTRIM of what it archived) while send re-sends
    logpipe-drain -d arch -c c1 --block 50 2>drain.err &
    dpid=$!
    wait $spid &&
    grep_q "OOM" err &&
    logpipe-send --wal w1 --flush-wal --timeout 120s 2>>err &&
    test "$(segments w1)" -eq 0 &&
    wait_for 120 drained &&
    kill $dpid && wait $dpid &&
    seqs arch/*/*.jsonl >got &&
    seq 1 40000 >want &&
    test_cmp want got &&
    ! grep "twice" err
'

start_redis partial

# The commands of a re-sent batch after one that fails are still run by
# Redis: here the dead letter of line 2 fails (its stream has no IDs
# left) while the events around it get theirs.
printf '%s\n' '{"seq":1}' 'broken' '{"seq":2}' '{"seq":3}' >in4

test_expect_success 'an error reply in a re-sent batch: the events after it are not sent again' '
    expect_exit 65 logpipe-send -r $(dead_redis) \
        --wal w2 --rejects-to-dlq <in4 2>/dev/null
    exhaust logs:dlq
    logpipe-send --wal w2 --flush-wal --timeout 120s 2>err &
    pid=$!
    wait_for 60 grep -q "the WAL w2 is sent again when Redis answers" err
    # however often the dead letter is tried meanwhile, the events stay
    # at one copy each
    wait_for 60 test_xlen -ge 3
    rcli DEL logs:dlq >/dev/null &&
    wait $pid &&
    stream_seqs >got &&
    printf "1\n2\n3\n" >want &&
    test_cmp want got &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    test "$(segments w2)" -eq 0 &&
    ! grep "twice" err
'

test_expect_success '... nor by a later run: the WAL keeps that they are in Redis' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    expect_exit 65 logpipe-send -r $(dead_redis) \
        --wal w3 --rejects-to-dlq <in4 2>/dev/null &&
    exhaust logs:dlq &&
    expect_exit 75 logpipe-send --wal w3 --flush-wal --timeout 0 2>err &&
    grep_q "exhausted" err &&
    stream_seqs >got &&
    printf "1\n2\n3\n" >want &&
    test_cmp want got &&
    # the dead letter that failed went to the end of the WAL again, with
    # a new position (its batch stored the old one); the segments are
    # still whole to replay: all their events, no damage
    grep_q "the commands that failed go to the end of the WAL w3" err &&
    find w3 -name "wal-*.log" | sort >segs &&
    test "$(wc -l <segs)" -eq 2 &&
    for seg in $(cat segs); do
        test "$(head -c 8 "$seg")" = LPWAL03 || exit 1
    done &&
    logpipe-replay $(cat segs) | seqs - >replayed &&
    test_cmp want replayed &&
    rcli DEL logs:dlq >/dev/null &&
    logpipe-send --wal w3 --flush-wal 2>err &&
    stream_seqs >got &&
    test_cmp want got &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    test "$(segments w3)" -eq 0
'

# The end of the input while a batch of the WAL is in flight and the last
# attempt had failed: send waits for its replies before it exits, or the
# next run sends again what Redis stored.
test_expect_success 'input ends with WAL records in flight: their replies are waited for' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 3000 >in || exit 1
    mkfifo fifo
    logpipe-send -v --wal w5 <fifo 2>err &
    pid=$!
    exec 3>fifo
    stop_redis
    cat in >&3
    # all of the input in the WAL, and every attempt to re-send it fails
    # now (Redis is away) ...
    wait_for 60 "test \$(logpipe-replay w5 | wc -l) -eq 3000"
    wait_for 60 grep -q "the WAL w5 is sent again when Redis answers" err
    kill -STOP $pid
    restart_redis 3>&- &&
    exec 3>&- || exit 1
    # ... and the next one is due when send runs again: the back-off is
    # at most 2 s, so 2.5 s of the clock pass it however loaded we are
    sleep 2.5
    kill -CONT $pid
    wait $pid &&
    logpipe-send --wal w5 --flush-wal 2>>err &&
    stream_seqs >got &&
    seq 1 3000 >want &&
    test_cmp want got &&
    test "$(segments w5)" -eq 0
'

test_done
