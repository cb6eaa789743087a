#!/bin/sh
# t0399-shards-wal-reused-other-stream.sh -- a sharded WAL flushed with
# other options (rs3 review, issue 17; was x0399):
# 1. a WAL of a --shards 3 run on stream a, flushed by a run of another
#    stream (-s b, no --shards), is refused (74, "flush it with the
#    options of the run that wrote it"), as --shards 2 on it is: sent,
#    it went to the shards of a gated on b:stream:producers, and a record
#    found again (a reply lost, a kill before the .ack) was stored twice
#    by the right flush. send(1): "--flush-wal killed at any point sends
#    nothing twice".
# 2. after a change of the count (3 -> 4, by another producer), a resume
#    of P at --position 1 begun with Redis away (--wal, round-robin): the
#    WAL flushed as send(1) shows it (no --producer) passes over what the
#    fields of P (the producer each record names) on the shards of the
#    count before hold, as the flush with --producer P does; it read the
#    old fields of the flushing run's own producer only, and stored 1-10
#    again in silence.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis aof --appendonly yes --appendfsync always

# seqs1 A B: events A..B of 5 services
seqs1() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (j = a; j <= b; j++)
        printf "{\"seq\":%d,\"service\":\"s%d\"}\n", j, j % 5 }'
}

# held STREAM: the seqs in the 3 shards of STREAM, one a line, sorted
held() {
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done | sort -n
}

test_expect_success 'setup: 1-10 stored over 3 shards of a, 11-40 in the WAL (Redis away)' '
    seqs1 1 10 | logpipe-send --shards 3 -s a:stream --producer p --wal w &&
    stop_redis &&
    seqs1 11 40 | logpipe-send --shards 3 -s a:stream --producer p --wal w \
        -t 1s 2>e1 &&
    test "$(cat w/wal-*.log | grep -ac "^XADD")" -eq 30 &&
    restart_redis &&
    test "$(held a:stream | wc -l)" -eq 10
'

test_expect_success 'the WAL of a (--shards 3) flushed by a run of another stream: refused (74), nothing sent' '
    mkdir copy &&
    cp w/wal-*.log copy/ &&
    expect_exit 74 logpipe-send -s b:stream --wal w --flush-wal -t 2s 2>e2 &&
    grep_q "not --stream b:stream nor its DLQ (flush it with the options of the run that wrote it)" e2 &&
    test "$(held a:stream | wc -l)" -eq 10 &&
    test "$(rcli EXISTS b:stream)" -eq 0 &&
    test "$(rcli EXISTS b:stream:producers)" -eq 0 &&
    test "$(cat w/wal-*.log | grep -ac "^XADD")" -eq 30
'

test_expect_success 'the same WAL flushed by an unsharded run of stream a: refused (78: a is sharded), nothing sent' '
    expect_exit 78 logpipe-send -s a:stream --wal w --flush-wal -t 2s 2>e2b &&
    grep_q "give --shards 3" e2b &&
    test "$(held a:stream | wc -l)" -eq 10 &&
    test "$(rcli EXISTS a:stream)" -eq 0
'

test_expect_success 'the records found again (as after a kill before the .ack) and flushed with the options that wrote them: nothing twice' '
    cp copy/wal-*.log w/ &&
    logpipe-send --shards 3 -s a:stream --wal w --flush-wal -t 5s 2>e3 || {
        cat e3; exit 1; }
    held a:stream >got &&
    tally 40 got
'

# archived DIR: the seqs archived under DIR, one a line
archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

# resumed NAME: P stores 1-10 on NAME over 3 shards (round-robin),
# drained; Q changes the count to 4 (41-50); with Redis away P resumes
# its input from position 1 with --shards 4 --wal NAME.wal (1-40 in it)
resumed() {
    seqs1 1 10 | logpipe-send --shards 3 -s "$1" --producer P &&
    logpipe-drain -s "$1" --once -d "$1.out" &&
    seqs1 41 50 | logpipe-send --shards 4 -s "$1" --producer Q 2>"$1.chg" &&
    grep_q "changed from 3 to 4" "$1.chg" &&
    stop_redis &&
    seqs1 1 40 | logpipe-send --shards 4 -s "$1" --producer P --position 1 \
        --wal "$1.wal" -t 1s 2>"$1.err" &&
    test "$(cat "$1.wal"/wal-*.log | grep -ac "^XADD")" -eq 40 &&
    restart_redis
}

test_expect_success 'after a change 3 -> 4, a resume of P from position 1 begun with Redis away, flushed with --producer P: each of 50 once (holds)' '
    resumed c &&
    logpipe-send --shards 4 -s c --wal c.wal --flush-wal --producer P \
        -t 5s 2>c.flush &&
    logpipe-drain -s c --once -d c.out &&
    archived c.out >got &&
    tally 50 got
'

test_expect_success 'the same flushed as send(1) shows it, without --producer: each of 50 once' '
    resumed d &&
    logpipe-send --shards 4 -s d --wal d.wal --flush-wal -t 5s 2>d.flush &&
    test "$(cat d.wal/wal-*.log 2>/dev/null | grep -ac "^XADD")" -eq 0 &&
    logpipe-drain -s d --once -d d.out &&
    archived d.out >got &&
    say "twice: $(uniq -d got | tr "\n" " ") (flush said: $(cat d.flush))" &&
    tally 50 got
'

test_expect_success 'the same with --shard-key written and flushed: each of 50 once, or what may be twice said' '
    seqs1 1 10 | logpipe-send --shards 3 --shard-key .service -s k --producer P &&
    logpipe-drain -s k --once -d k.out &&
    seqs1 41 50 | logpipe-send --shards 4 --shard-key .service -s k --producer Q 2>k.chg &&
    grep_q "changed from 3 to 4" k.chg &&
    stop_redis &&
    seqs1 1 40 | logpipe-send --shards 4 --shard-key .service -s k --producer P \
        --position 1 --wal k.wal -t 1s 2>k.err &&
    restart_redis &&
    logpipe-send --shards 4 --shard-key .service -s k --wal k.wal --flush-wal \
        -t 5s 2>k.flush &&
    logpipe-drain -s k --once -d k.out &&
    archived k.out >got &&
    if [ -n "$(uniq -d got)" ]; then
        grep_q "may be stored on a shard of the count before" k.flush
    else
        tally 50 got
    fi
'

test_done
