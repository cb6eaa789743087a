#!/bin/sh
# t0150-send-ends.sh -- how logpipe-send ends when something fails deep in
# its loop: the status, the messages, and the metrics written last
. "$(dirname "$0")/lib.sh"

start_redis
test_expect_success '--ids to a full stdout: 74, the events read are sent' '
    gen_events 10 >in &&
    expect_exit 74 logpipe-send --ids <in >/dev/full 2>err &&
    grep_q "^logpipe-send: stdout: No space left on device$" err &&
    grep_q "^logpipe-send: interrupted: 10 events sent, input read up to byte" err &&
    test_xlen -eq 10
'

test_expect_success '--rejects that cannot be written: 74, metrics still written' '
    rcli DEL logs:stream >/dev/null &&
    { gen_events 3; echo "not json"; gen_events 3; } >in &&
    expect_exit 74 logpipe-send --rejects /dev/full --metrics m.prom \
        <in 2>err &&
    grep_q "^logpipe-send: --rejects /dev/full: No space left on device$" err &&
    test "$(grep -c "^logpipe-send: " err)" -eq 2 &&
    grep_q "^logpipe_send_lines_total 4$" m.prom &&
    grep_q "^logpipe_send_events_total{result=\"rejected\"} 1$" m.prom
'

test_expect_success 'a failed start still writes the metrics (73)' '
    echo "{\"a\":1}" >in &&
    expect_exit 73 logpipe-send --rejects no/such/dir/r --metrics m2.prom \
        <in 2>err &&
    grep_q "^logpipe-send: --rejects no/such/dir/r: No such file or directory$" err &&
    grep_q "^logpipe_send_lines_total 0$" m2.prom
'

test_expect_success 'giving up (75) writes the metrics last, with the counts' '
    gen_events 10 >in &&
    expect_exit 75 logpipe-send -r $(dead_redis) --timeout 300ms \
        --metrics m3.prom <in 2>err &&
    grep_q "^logpipe_send_lines_total 10$" m3.prom &&
    grep_q "^logpipe_send_events_total{result=\"sent\"} 0$" m3.prom &&
    grep_q "^logpipe_send_redis_errors_total 1$" m3.prom &&
    ! grep -q "events sent" err
'

test_expect_success 'a stop while Redis fails: 75 with the resume point' '
    url=$(dead_redis)
    gen_events 10 >in
    logpipe-send -r $url --timeout 60s <in 2>err &
    pid=$!
    wait_for 10 "grep -q \"retrying for up to 1m\" err"
    kill -TERM $pid
    expect_exit 75 wait $pid &&
    grep_q "^logpipe-send: interrupted while Redis fails: " err &&
    grep_q "sent 0 bytes of the input; resume with: tail -c +1 | logpipe-send -r $url --timeout 60s (fed the same input)" err
'

test_expect_success '--max-backlog waits while the group lags, then goes on' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 20 | logpipe-send &&
    rcli XGROUP CREATE logs:stream g 0 >/dev/null &&
    mkfifo fifo || exit 1
    logpipe-send -v -g g --max-backlog 10 -b 1 --linger 1ms <fifo 2>err &
    pid=$!
    exec 3>fifo
    for i in 1 2 3 4 5 6; do echo "{\"n\":$i}" >&3; sleep 0.05; done
    wait_for 10 "grep -q \"backlog 2[0-9] over --max-backlog 10: waiting\" err" &&
    n=$(rcli XLEN logs:stream) &&
    sleep 0.3 &&
    test "$(rcli XLEN logs:stream)" -eq "$n" &&
    rcli XGROUP SETID logs:stream g "\$" >/dev/null &&
    wait_for 10 "grep -q \"backlog under --max-backlog again\" err" &&
    exec 3>&- &&
    wait $pid &&
    test_xlen -eq 26
'

test_expect_success '--max-backlog without the group watches the length' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 5 | logpipe-send &&
    gen_events 8 >in &&
    logpipe-send -v -g nosuch --max-backlog 100 -b 1 <in 2>err &&
    ! grep -q "over --max-backlog" err &&
    test_xlen -eq 13
'

start_redis wrongtype
test_expect_success 'the WAL refused for good (WRONGTYPE): 78, the events stay' '
    gen_events 5 >in &&
    logpipe-send -r $(dead_redis) --wal w --timeout 300ms \
        <in 2>err &&
    grep_q "the WAL w holds [0-9]* bytes of events not in Redis yet" err &&
    rcli SET logs:stream x >/dev/null &&
    expect_exit 78 logpipe-send --wal w --flush-wal --metrics m4.prom \
        2>err &&
    grep_q "^logpipe-send: WRONGTYPE logs:stream is a string, not a stream$" err &&
    grep_q "^logpipe-send: the events stay in the WAL w$" err &&
    grep_q "^logpipe_send_redis_errors_total 2$" m4.prom &&
    rcli DEL logs:stream >/dev/null &&
    logpipe-send --wal w --flush-wal 2>err &&
    test_xlen -eq 5
'

test_done
