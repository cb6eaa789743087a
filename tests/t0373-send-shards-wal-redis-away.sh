#!/bin/sh
# t0373-send-shards-wal-redis-away.sh -- review of issue 17 step 2 (rsh):
# logpipe-send --wal keeps what Redis cannot take, and a run that starts
# while Redis is away keeps its events in the WAL until Redis answers
# (logpipe-send(1)). A sharded run once retried the count (S:shards) for
# --timeout, then gave up (75) with nothing in the WAL. Now, with --wal,
# it keeps each event in the WAL as an XADD to its shard (the count the
# one given), and records or checks the count at its first connection:
# another count there ends it (78), the WAL kept and said so; a resumed
# run (--producer, --position) that began with Redis away passes each
# shard over what it holds when the WAL is sent.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis aof --appendonly yes --appendfsync always
PORT=$REDIS_PORT
stop_redis

gen_events 100 >in

# all_seqs STREAM N: every seq in the shards of STREAM, one a line
all_seqs() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

test_expect_success 'unsharded, Redis away at start: the events are kept in the WAL (0)' '
    logpipe-send --max-age 0 -s u --wal wu -t 1s <in 2>erru &&
    test -n "$(ls wu)"
'

test_expect_success 'sharded, Redis away at start: the events are kept in the WAL, not dropped' '
    set +e
    logpipe-send --max-age 0 -s s --shards 3 --wal ws -t 1s <in 2>errs
    st=$?
    set -e
    test $st -eq 0 ||
        { cat errs; echo "exit $st, WAL: $(ls ws 2>/dev/null | wc -l) files"; exit 1; }
'

test_expect_success 'once Redis is back, --flush-wal puts every event in its shard once' '
    restart_redis &&
    logpipe-send --max-age 0 -s s --shards 3 --wal ws --flush-wal &&
    all_seqs s 3 >got &&
    tally 100 got
'

test_expect_success 'a WAL written for 3 shards, 4 recorded and not drained: refused (78) at start, the WAL kept and said so' '
    stop_redis &&
    logpipe-send --max-age 0 -s m --shards 3 --wal wm -t 1s <in 2>errm0 &&
    test "$(cat wm/wal-*.log | grep -ac "^XADD")" -eq 100 &&
    restart_redis &&
    rcli SET m:shards 4 >/dev/null &&
    # a shard of the 4 (none of the 3) holds an entry no group has read
    old=$("$SHARD_NAMES" m 4 | grep -v -x -F "$("$SHARD_NAMES" m 3)" | head -n 1) &&
    test -n "$old" &&
    rcli XADD "$old" "*" data "{}" >/dev/null &&
    expect_exit 78 logpipe-send --max-age 0 -s m --shards 3 --wal wm \
        --flush-wal 2>errm &&
    grep_q "stream m has 4 shards, not 3, and they are not drained" errm &&
    grep_q "the events stay in the WAL wm" errm &&
    test "$(cat wm/wal-*.log | grep -ac "^XADD")" -eq 100 &&
    test "$(rcli EXISTS m:{0})" = 0 &&
    rcli DEL m:shards "$old" >/dev/null &&
    logpipe-send --max-age 0 -s m --shards 3 --wal wm --flush-wal &&
    test "$(rcli GET m:shards)" = 3 &&
    all_seqs m 3 >got &&
    tally 100 got
'

test_expect_success 'Redis comes back with another count, not drained, while the run reads: 78 at the first connection, every event read kept' '
    rcli SET n:shards 4 >/dev/null &&
    # a shard of the 4 (none of the 3) holds an entry no group has read:
    # the count may not change
    old=$("$SHARD_NAMES" n 4 | grep -v -x -F "$("$SHARD_NAMES" n 3)" | head -n 1) &&
    test -n "$old" &&
    rcli XADD "$old" "*" data "{}" >/dev/null &&
    rcli SAVE >/dev/null &&
    stop_redis &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --max-age 0 -s n --shards 3 --wal wn <fifo 2>errn &
    spid=$!
    exec 3>fifo
    cat in >&3
    # all read, and in the WAL (its batches go there after --linger)
    wait_for 30 "test \$(cat wn/wal-*.log | grep -ac ^XADD) -eq 100" ||
        { kill $spid; cat errn; exit 1; }
    # (the dump holds n:shards 4; not holding the pipe open)
    restart_redis 3>&-
    # (it ends by saying so; if it does not, it is stopped, not waited for)
    wait_for 60 grep -q "\"the events stay in the WAL wn\"" errn ||
        { kill $spid; cat errn; exit 1; }
    expect_exit 78 wait $spid || { cat errn; exit 1; }
    exec 3>&-
    grep_q "keeping events in the WAL wn until Redis answers" errn &&
    grep_q "stream n has 4 shards, not 3, and they are not drained" errn &&
    grep_q "the events stay in the WAL wn" errn &&
    test "$(cat wn/wal-*.log | grep -ac "^XADD")" -eq 100 &&
    rcli DEL n:shards "$old" >/dev/null &&
    rcli SAVE >/dev/null &&
    logpipe-send --max-age 0 -s n --shards 3 --wal wn --flush-wal &&
    all_seqs n 3 >got &&
    tally 100 got
'

test_expect_success 'a resume (--producer, --position 1) begun with Redis away: each shard passes over what it holds' '
    head -n 40 in | logpipe-send --max-age 0 -s p --shards 3 \
        --producer P -b 5 &&
    stop_redis &&
    logpipe-send --max-age 0 -s p --shards 3 --producer P --position 1 \
        --wal wp -b 7 <in 2>errp &&
    test "$(cat wp/wal-*.log | grep -ac "^XADD")" -eq 100 &&
    restart_redis &&
    logpipe-send --max-age 0 -s p --shards 3 --producer P --wal wp \
        --flush-wal &&
    all_seqs p 3 >got &&
    tally 100 got
'

test_expect_success 'a --producer run begun with Redis away numbers above what the shards hold' '
    gen_events 200 >in2 &&
    head -n 100 in2 | logpipe-send --max-age 0 -s q --shards 3 \
        --producer Q --wal wq &&
    stop_redis &&
    tail -n 100 in2 | logpipe-send --max-age 0 -s q --shards 3 \
        --producer Q --wal wq 2>errq &&
    restart_redis &&
    logpipe-send --max-age 0 -s q --shards 3 --producer Q --wal wq \
        --flush-wal &&
    all_seqs q 3 >got &&
    tally 200 got
'

test_expect_success 'a resume begun with Redis away, Redis back mid-input: the input read after passes over what each shard holds' '
    head -n 80 in | logpipe-send --max-age 0 -s r --shards 3 --producer R &&
    stop_redis &&
    head -n 20 in >in.a &&
    tail -n 80 in >in.b &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send -v --max-age 0 -s r --shards 3 --producer R --position 1 \
        --wal wr <fifo 2>errr &
    spid=$!
    exec 3>fifo
    cat in.a >&3
    wait_for 30 "test \$(cat wr/wal-*.log | grep -ac ^XADD) -eq 20" ||
        { kill $spid; cat errr; exit 1; }
    restart_redis 3>&-
    # the WAL sent, the shards read again: straight to Redis from here
    wait_for 30 "grep -q \"the WAL wr is empty again\" errr" ||
        { kill $spid; cat errr; exit 1; }
    cat in.b >&3
    exec 3>&-
    wait $spid || { cat errr; exit 1; }
    all_seqs r 3 >got &&
    tally 100 got
'

test_done
