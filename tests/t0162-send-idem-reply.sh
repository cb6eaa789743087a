#!/bin/sh
# t0162-send-idem-reply.sh -- logpipe-send: a batch whose reply is lost
# (the connection dropped after Redis ran its EXEC) is found stored by the
# committed position of its producer, and is not sent again: by send
# itself, through its WAL, and by the run its resume hint starts (issue 15
# item 1). LOGPIPE_TEST_LOSE_REPLY=N drops the connection once the N-th
# batch is written and Redis has run it.
. "$(dirname "$0")/lib.sh"

start_redis

gen_events 5000 >in

# sent_once N: the stream holds seq 1..N once each, in order
sent_once() {
    rcli --raw XRANGE logs:stream - + | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >got &&
    seq 1 "$1" >want &&
    test_cmp want got
}

test_expect_success 'a lost reply: the batch is found stored, not sent again' '
    LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send -v --max-age 0 <in 2>err &&
    grep_q "connection dropped (LOGPIPE_TEST_LOSE_REPLY)" err &&
    grep_q "events were found stored after a lost reply (not sent again)" err &&
    sent_once 5000
'

test_expect_success '... the same through the WAL' '
    rcli DEL logs:stream >/dev/null &&
    LOGPIPE_TEST_LOSE_REPLY=3 logpipe-send -v --max-age 0 --wal w <in 2>err &&
    grep_q "keeping events in the WAL w" err &&
    grep_q "events were found stored after a lost reply (not sent again)" err &&
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0 &&
    sent_once 5000
'

test_expect_success '--ids: the IDs of the batches answered, none twice' '
    rcli DEL logs:stream >/dev/null &&
    LOGPIPE_TEST_LOSE_REPLY=1 logpipe-send --ids --batch 100 --max-age 0 \
        <in >ids 2>err &&
    sent_once 5000 &&
    sort ids | uniq -d >twice &&
    test ! -s twice &&
    rcli --raw XRANGE logs:stream - + | grep -E "^[0-9]+-[0-9]+$" >all &&
    sort all >all.s && sort ids >ids.s &&
    comm -23 ids.s all.s >stray &&
    test ! -s stray
'

test_expect_success 'giving up after a lost reply: the hint resumes with the producer and position, nothing twice' '
    rcli DEL logs:stream >/dev/null &&
    expect_exit 75 env LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send --max-age 0 \
        --timeout 0 <in 2>err &&
    grep_q "resume with: tail -c +" err &&
    hint=$(sed -n "s/.*resume with: \(.*\) (fed the same input)$/\1/p" err) &&
    say "$hint" &&
    case $hint in *" --producer "*" --position="*) ;; *) false ;; esac &&
    sh -c "$hint -v" <in 2>err2 &&
    grep_q "found stored after a lost reply" err2 &&
    sent_once 5000
'

# the connection cut from another one (CLIENT KILL) while batches are in
# flight, again and again: some replies are lost after Redis ran their
# EXEC, with and without the WAL
kill_clients() {
    while [ ! -e stop ]; do
        rcli CLIENT KILL TYPE normal SKIPME yes >/dev/null 2>&1 || :
        sleep 0.02
    done
}

test_expect_success 'CLIENT KILL again and again during a send: each event once' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 100000 >big || exit 1
    rm -f stop
    kill_clients &
    kpid=$!
    logpipe-send -v --max-age 0 --timeout 60s <big 2>err1
    rc=$?
    touch stop && wait $kpid &&
    test "$rc" -eq 0 &&
    rcli --raw XRANGE logs:stream - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >got &&
    tally 100000 got &&
    say "$(grep -c "answers again" err1) reconnects; $(grep "found stored" err1 || echo "no batch found stored")"
'

test_expect_success '... and through the WAL' '
    rcli DEL logs:stream >/dev/null || exit 1
    rm -f stop
    kill_clients &
    kpid=$!
    logpipe-send -v --max-age 0 --wal w2 <big 2>err2
    rc=$?
    touch stop && wait $kpid &&
    test "$rc" -eq 0 &&
    logpipe-send --wal w2 --flush-wal 2>>err2 &&
    rcli --raw XRANGE logs:stream - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >got &&
    tally 100000 got &&
    say "$(grep "found stored" err2 || echo "no batch found stored")"
'

test_done
