#!/bin/sh
# t0120-send-wal.sh -- logpipe-send --wal: nothing lost while Redis is away
. "$(dirname "$0")/lib.sh"
start_redis wal --appendonly yes --appendfsync always

segments() {
    find "$1" -name 'wal-*.log' | wc -l
}

# stream_seqs: the seq numbers in the stream, in stream order
stream_seqs() {
    rcli --raw XRANGE logs:stream - + | seqs_in_order
}
seqs_in_order() {
    sed -n 's/.*"seq":\([0-9]*\).*/\1/p'
}

test_expect_success 'Redis down at start: events go to the WAL, exit 0' '
    gen_events 300 >in &&
    logpipe-send -r $(dead_redis) --wal w1 <in 2>err &&
    grep_q "keeping events in the WAL w1" err &&
    grep_q "the WAL w1 holds" err &&
    test "$(segments w1)" -ge 1
'

test_expect_success '--flush-wal sends them, in order, and empties the WAL' '
    logpipe-send --wal w1 --flush-wal 2>err &&
    stream_seqs >got &&
    seq 1 300 >want &&
    test_cmp want got &&
    test "$(segments w1)" -eq 0 &&
    test -z "$(ls w1)"
'

test_expect_success 'a later run sends the WAL first: order is kept' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 200 >in &&
    head -n 100 in | logpipe-send -r $(dead_redis) \
        --wal w2 2>/dev/null &&
    tail -n 100 in | logpipe-send --wal w2 &&
    stream_seqs >got &&
    seq 1 200 >want &&
    test_cmp want got &&
    test "$(segments w2)" -eq 0
'

test_expect_success 'Redis killed mid-send, restarted, WAL flushed: each event once' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 200000 >in || exit 1
    # the second half of the input is written only after the kill, so the
    # sender cannot have sent everything before it, however fast it is
    head -n 100000 in >in.1 && tail -n +100001 in >in.2 &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --wal w3 --timeout 20s <fifo 2>err &
    pid=$!
    exec 3>fifo &&
    cat in.1 >&3 &&
    wait_for 60 test_xlen -gt 20000 &&
    stop_redis KILL &&
    cat in.2 >&3 &&
    exec 3>&- &&
    sleep 1 &&
    restart_redis &&
    wait $pid &&
    grep_q "keeping events in the WAL w3" err &&
    logpipe-send --wal w3 --flush-wal 2>>err &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 200000 >want &&
    test_cmp want got &&
    test "$(segments w3)" -eq 0
'

test_expect_success 'Redis paused: the WAL takes over after the socket timeout' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 50 >in &&
    kill -STOP $(redis_pid) &&
    logpipe-send --wal w4 --timeout 1s <in 2>err &&
    kill -CONT $(redis_pid) &&
    grep_q "timed out" err &&
    test "$(segments w4)" -ge 1 &&
    logpipe-send --wal w4 --flush-wal &&
    stream_seqs >got &&
    seq 1 50 >want &&
    test_cmp want got
'

test_expect_success '--flush-wal with Redis away: exit 75 after --timeout' '
    gen_events 10 | logpipe-send -r $(dead_redis) \
        --wal w5 2>/dev/null &&
    expect_exit 75 logpipe-send -r $(dead_redis) \
        --wal w5 --flush-wal --timeout 1s 2>err &&
    grep_q "still holds" err &&
    test "$(segments w5)" -ge 1
'

test_expect_success '--wal-max: exit 75 with the resume point, WAL within bounds' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 2000 >in &&
    expect_exit 75 logpipe-send -r $(dead_redis) \
        --wal w6 --wal-max 40K -b 100 <in 2>err &&
    grep_q "wal-max reached" err &&
    test "$(du -sk w6 | cut -f1)" -le 48 &&
    from=$(sed -n "s/.*resume with: tail -c +\([0-9]*\).*/\1/p" err) &&
    logpipe-send --wal w6 --flush-wal &&
    tail -c +$from in | logpipe-send &&
    stream_seqs >got &&
    seq 1 2000 >want &&
    test_cmp want got
'

test_expect_success 'two senders on one WAL directory: nothing lost or doubled' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 4000 >in &&
    head -n 2000 in >a && tail -n 2000 in >b &&
    # both alive at once (a slow machine could otherwise finish the first
    # before the second starts, which then takes over its segment): each
    # reads a fifo, and the opens for writing return only when both
    # senders have opened theirs; neither ends before both are closed
    rm -f f1 f2 || exit 1
    mkfifo f1 f2
    logpipe-send -r $(dead_redis) --wal w7 -b 50 <f1 2>/dev/null &
    p1=$!
    logpipe-send -r $(dead_redis) --wal w7 -b 50 <f2 2>/dev/null &
    p2=$!
    exec 3>f1 4>f2 &&
    cat a >&3 && cat b >&4 &&
    exec 3>&- 4>&- &&
    wait $p1 && wait $p2 &&
    test "$(segments w7)" -ge 2 &&
    logpipe-send --wal w7 --flush-wal &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 4000 >want &&
    test_cmp want got
'

test_expect_success 'a torn tail in the WAL is cut; complete records are sent' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 20 | logpipe-send -r $(dead_redis) \
        --wal w8 2>/dev/null &&
    seg=$(find w8 -name "wal-*.log") &&
    size=$(stat -c %s "$seg") &&
    truncate -s $((size - 7)) "$seg" &&
    logpipe-send --wal w8 --flush-wal 2>err &&
    grep_q "cutting a torn tail" err &&
    stream_seqs >got &&
    seq 1 19 >want &&
    test_cmp want got
'

test_expect_success 'rejects sent to the DLQ survive an outage through the WAL' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    printf "{\"a\":1}\nbroken\n" >in &&
    expect_exit 65 logpipe-send -r $(dead_redis) \
        --wal w9 --rejects-to-dlq <in 2>/dev/null &&
    logpipe-send --wal w9 --flush-wal &&
    test_xlen -eq 1 &&
    test_xlen -eq 1 logs:dlq
'

test_expect_success 'a WAL directory that cannot be made: exit 73' '
    echo x >notadir &&
    expect_exit 73 logpipe-send --wal notadir/sub </dev/null 2>err &&
    grep_q "notadir" err
'

test_expect_success 'usage: --flush-wal needs --wal, --wal-max needs --wal' '
    expect_exit 64 logpipe-send --flush-wal 2>err &&
    expect_exit 64 logpipe-send --wal-max 1M </dev/null 2>err
'

test_done
