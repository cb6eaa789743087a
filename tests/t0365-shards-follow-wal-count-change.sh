#!/bin/sh
# t0365-shards-follow-wal-count-change.sh -- issue 17 (s19): WAL records
# with a cursor flushed after a change of the count 3 -> 4 without
# --producer. Only --follow writes such records: --journal refuses --wal
# (case 1). A --follow --shards 3 --wal run keeps lines in the WAL while
# Redis is away; the WAL is flushed (--shards 3), the count changed to 4
# by another producer, and the segment found again (as after a kill of
# the flush before it acknowledged it): the flush with --shards 4 as
# send(1) shows it must pass over what the fields of each file on the
# shards of 3 hold. Was: the 60 lines of the WAL stored twice, silently.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis aof --appendonly yes --appendfsync always

# walrecs DIR: the XADD records in the WAL DIR
walrecs() {
    cat "$1"/wal-*.log 2>/dev/null | grep -ac "^XADD" || :
}

# archived DIR: the seqs archived under DIR, sorted
archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

# lines DIR FROM TO: lines FROM..TO of files DIR/f1.log .. f6.log
lines() {
    for f in 1 2 3 4 5 6; do
        for i in $(seq "$2" "$3"); do
            printf "{\"seq\":%d}\n" $((f * 100 + i))
        done >>"$1/f$f.log"
    done
}

test_expect_success '--journal does not go with --wal: no WAL of journal entries' '
    expect_exit 64 logpipe-send --shards 3 -s j --journal --wal jw 2>j.err &&
    grep_q "does not go with --journal" j.err
'

# written ST: --follow --shards 3 --wal ST.w stores lines 1-10 of 6
# files on the 3 shards of ST; Redis away, lines 11-20 go to the WAL;
# Redis back, the WAL copied to ST.copy and flushed (--shards 3): 120
# stored, drained to ST.out; producer Q changes the count to 4 (seqs
# 901-910) and the WAL is copied back: its 60 records stored already
written() {
    mkdir "$1.logs" "$1.copy" &&
    lines "$1.logs" 1 10 || return 1
    logpipe-send --shards 3 --linger 5 -s "$1" -F "$1.logs/*.log" \
        --producer fw --wal "$1.w" 2>"$1.err" &
    spid=$!
    wait_for 30 "test \$(shards_total $1 3) -eq 60" ||
        { cat "$1.err"; kill $spid; return 1; }
    stop_redis
    lines "$1.logs" 11 20
    wait_for 30 "test \$(walrecs $1.w) -eq 60" ||
        { cat "$1.err"; kill $spid; return 1; }
    kill -TERM $spid
    wait $spid || :
    restart_redis
    cp "$1.w"/wal-*.log "$1.copy"/ &&
    logpipe-send --shards 3 -s "$1" --wal "$1.w" --flush-wal -t 5s \
        2>"$1.flush1" || { cat "$1.flush1"; return 1; }
    test "$(shards_total "$1" 3)" -eq 120 &&
    logpipe-drain -s "$1" --once -d "$1.out" &&
    seq 901 910 | sed "s/.*/{\"seq\":&}/" |
        logpipe-send --shards 4 -s "$1" --producer Q 2>"$1.chg" &&
    grep_q "changed from 3 to 4" "$1.chg" &&
    cp "$1.copy"/wal-*.log "$1.w"/ &&
    test "$(walrecs "$1.w")" -eq 60
}

# want: the seqs of written, sorted
want() {
    { for f in 1 2 3 4 5 6; do seq $((f * 100 + 1)) $((f * 100 + 20)); done
      seq 901 910; } | sort -n
}

test_expect_success 'setup: 120 lines of --follow --shards 3 (60 through the WAL), the count changed to 4, the WAL found again' '
    written a
'

test_expect_success 'the WAL found again flushed with --shards 4 as send(1) shows it (no --producer): nothing twice' '
    logpipe-send --shards 4 -s a --wal a.w --flush-wal -t 5s 2>a.flush2 || {
        cat a.flush2; exit 1; }
    logpipe-drain -s a --once -d a.out &&
    archived a.out >got &&
    say "twice: $(uniq -d got | wc -l) (flush said: $(cat a.flush2))" &&
    want | test_cmp - got
'

test_expect_success 'a --follow run of 4 after the change (each file numbered from 0 on its shard of 4, below the fields of 3 where the name is the same) keeps lines in the WAL; flushed without --producer: each line once, none passed over' '
    lines a.logs 21 21
    before=$(shards_total a 4)
    logpipe-send --shards 4 --linger 5 -s a -F "a.logs/*.log" \
        --producer fw --wal a.w2 2>a.err2 &
    spid=$!
    wait_for 30 "test \$(shards_total a 4) -eq \$((before + 6))" ||
        { cat a.err2; kill $spid; exit 1; }
    stop_redis
    lines a.logs 22 30
    wait_for 30 "test \$(walrecs a.w2) -eq 54" ||
        { cat a.err2; kill $spid; exit 1; }
    kill -TERM $spid
    wait $spid || :
    restart_redis
    logpipe-send --shards 4 -s a --wal a.w2 --flush-wal -t 5s 2>a.flush3 || {
        cat a.flush3; exit 1; }
    test "$(walrecs a.w2)" -eq 0 &&
    logpipe-drain -s a --once -d a.out &&
    archived a.out >got &&
    { for f in 1 2 3 4 5 6; do seq $((f * 100 + 1)) $((f * 100 + 30)); done
      seq 901 910; } | sort -n >want30 &&
    test_cmp want30 got
'

test_expect_success 'the same WAL found again sent by the --follow run of 4 itself (at its start): nothing twice' '
    written b || exit 1
    logpipe-send --shards 4 --linger 5 -s b -F "b.logs/*.log" \
        --producer fw --wal b.w 2>b.err2 &
    spid=$!
    wait_for 30 "test \$(walrecs b.w) -eq 0" ||
        { cat b.err2; kill $spid; exit 1; }
    kill -TERM $spid
    wait $spid || { cat b.err2; exit 1; }
    logpipe-drain -s b --once -d b.out &&
    archived b.out >got &&
    say "twice: $(uniq -d got | wc -l)" &&
    want | test_cmp - got
'

test_done
