#!/bin/sh
# t0163-send-producer.sh -- logpipe-send --producer: a named producer
# goes on from its committed position, one process at a time; the default
# producer is one of its own per run (issue 15 item 1)
. "$(dirname "$0")/lib.sh"

# the lock files of --producer go here, not in the user's
XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis

gen_events 10 >in

# field NAME: the position of producer NAME in logs:stream:producers
field() {
    rcli --raw HGET logs:stream:producers "$1" | cut -d" " -f1
}

test_expect_success 'stdin: a producer of its own per run, numbered from 1' '
    # with a WAL the field stays (records of it may be sent later)
    logpipe-send --max-age 0 --wal w1 <in &&
    logpipe-send --max-age 0 --wal w2 <in &&
    rcli --raw HGETALL logs:stream:producers >all &&
    test "$(wc -l <all)" -eq 4 &&
    test "$(sed -n 2p all | cut -d" " -f1)" -eq 10 &&
    test "$(sed -n 4p all | cut -d" " -f1)" -eq 10 &&
    # the value: position, then the time it was stored (unix ms)
    now=$(date +%s) &&
    ms=$(sed -n 2p all | cut -d" " -f2) &&
    test $((ms / 1000)) -ge $((now - 60)) &&
    test $((ms / 1000)) -le $((now + 1))
'

test_expect_success 'stdin without a WAL, all answered: its field goes at the end' '
    rcli DEL logs:stream:producers >/dev/null &&
    logpipe-send --max-age 0 <in &&
    test "$(rcli XLEN logs:stream)" -eq 30 &&
    test "$(rcli HLEN logs:stream:producers)" -eq 0
'

test_expect_success '--producer NAME goes on from its committed position' '
    rcli DEL logs:stream logs:stream:producers >/dev/null &&
    logpipe-send --max-age 0 --producer app1 <in &&
    test "$(field app1)" -eq 10 &&
    head -n 3 in | logpipe-send --max-age 0 --producer app1 &&
    test "$(field app1)" -eq 13 &&
    # rejected lines into the DLQ have positions too
    printf "%s\n" "{\"a\":1}" broken | expect_exit 65 logpipe-send \
        --max-age 0 --producer app1 --rejects-to-dlq 2>/dev/null &&
    test "$(field app1)" -eq 15 &&
    test "$(rcli XLEN logs:stream)" -eq 14
'

test_expect_success 'a second send as the same producer is refused (75), another name is not' '
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --max-age 0 --producer app2 <fifo 2>first.err &
    pid=$!
    exec 3>fifo
    wait_for 10 "ls $TMP/logpipe-send-*.lock"
    echo "{\"n\":1}" >&3
    wait_for 10 "test \"\$(field app2)\" = 1" || { cat first.err; exit 1; }
    expect_exit 75 logpipe-send --max-age 0 --producer app2 <in 2>err &&
    grep_q "another logpipe-send sends as this producer" err &&
    grep_q "pid $pid on" err &&
    logpipe-send --max-age 0 --producer app3 <in &&
    exec 3>&- &&
    wait $pid &&
    logpipe-send --max-age 0 --producer app2 <in &&
    test "$(field app2)" -eq 11
'

test_expect_success '--producer and --position are checked' '
    expect_exit 64 logpipe-send --position 5 <in 2>err &&
    grep_q "position needs --producer" err &&
    expect_exit 64 logpipe-send --producer "a b" <in 2>err &&
    grep_q "producer" err &&
    expect_exit 64 logpipe-send --producer "" <in 2>/dev/null
'

test_expect_success '--position: what the producer stored from there on is passed over' '
    rcli DEL logs:stream logs:stream:producers >/dev/null &&
    head -n 4 in | logpipe-send --max-age 0 --producer p4 &&
    logpipe-send -v --max-age 0 --producer p4 --position 1 <in 2>err &&
    grep_q "4 events were found stored" err &&
    test "$(field p4)" -eq 10 &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 10 >want &&
    test_cmp want got
'

test_done
