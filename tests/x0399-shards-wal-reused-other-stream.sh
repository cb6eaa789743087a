#!/bin/sh
# x0399-shards-wal-reused-other-stream.sh -- FAULT (rs3 review, issue 17):
# a WAL of a --shards 3 run on stream a, flushed by a run of another
# stream (-s b, no --shards), is sent to the shards of a but gated on
# b:stream:producers: exit 0, the fields of a are left behind, so a
# record found again (a reply lost, a kill before the .ack) is stored
# twice by the right flush. Contradicts send(1) Write-ahead log: "a batch
# whose reply was lost is found stored by its positions on the next
# connection, also by the next run: --flush-wal killed at any point sends
# nothing twice" (and --shards 2 on the same WAL is refused, 74: "flush
# it with the options of the run that wrote it"). What holds: the same
# two flushes with --shards 3 -s a both times store each event once.
#
# FAULT (cases 4-5): a run begun with Redis away after a change of the
# count (3 -> 4, made by another producer), resuming P at --position 1
# with --wal, round-robin: the WAL flushed as send(1) shows it
# ("logpipe-send --wal DIR --flush-wal", no --producer) sends 1-10 again,
# stored on the shards of 3, in silence; the old fields are read only for
# the flushing run's own producer. Contradicts send(1) CAVEATS: "a run
# that sends a log such a run wrote (--flush-wal)" reads the fields of
# the count before, "(round-robin records, by position, are exact)".
# What holds: the same flush with --producer P stores each event once.
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

test_expect_success 'the WAL of a (--shards 3) flushed by a run of another stream: refused, or gated on the fields of a' '
    mkdir copy &&
    cp w/wal-*.log copy/ || exit 1
    rc=0
    logpipe-send -s b:stream --wal w --flush-wal -t 2s 2>e2 || rc=$?
    say "flush -s b: exit $rc, $(held a:stream | wc -l) in a, b:stream:producers: $(rcli --raw HGETALL b:stream:producers | tr "\n" " ")"
    if [ "$rc" -eq 0 ]; then
        # sent: the fields of a hold the positions, b holds nothing
        test "$(rcli EXISTS b:stream:producers)" -eq 0 || {
            echo "the positions of a went to b:stream:producers" >&2; exit 1; }
    fi
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

test_expect_success 'the same flushed as send(1) shows it, without --producer: each of 50 once, or what may be twice said' '
    resumed d &&
    logpipe-send --shards 4 -s d --wal d.wal --flush-wal -t 5s 2>d.flush &&
    logpipe-drain -s d --once -d d.out &&
    archived d.out >got &&
    say "twice: $(uniq -d got | tr "\n" " ") (flush said: $(cat d.flush))" &&
    tally 50 got
'

test_done
