#!/bin/sh
# t0305-first-shards-unsharded-wal.sh -- a write-ahead log a run without
# --shards left (Redis away) holds records for the stream's own key; once
# the first send --shards recorded a count, no run sent them: without
# --shards the run is refused (78), with it they were "not for a shard"
# (74), and the events stayed in the log for good. A run with --shards N
# now sends each such record to the shard of its position, as a run of N
# deals them, and passes over those the producer's field on the stream's
# own key holds (the count before the first --shards is 1: the stream).
# What it cannot place (a --follow record, or a run with --shard-key) is
# refused, the log kept.
. "$(dirname "$0")/lib.sh"

start_redis
reserve_dead_port
DEAD=redis://127.0.0.1:$DEAD_PORT

gen_events 40 >in
sed -n 1,10p in >a
sed -n 11,20p in >b
sed -n 21,30p in >c

test_expect_success 'P stores 1-10 unsharded, then 11-20 while Redis is away: in the WAL' '
    logpipe-send --max-age 0 -s w --producer P --wal wal <a &&
    logpipe-send --max-age 0 -r "$DEAD" -s w --producer P --wal wal \
        --timeout 1s <b 2>away.err &&
    test "$(find wal -name "wal-*.log" | wc -l)" -ge 1 &&
    cp -R wal wal2 &&
    test_xlen = 10 w
'

test_expect_success 'a copy of that WAL flushed unsharded: 11-20 stored on the stream key' '
    logpipe-send --max-age 0 -s w --wal wal2 --flush-wal &&
    test_xlen = 20 w &&
    logpipe-drain -s w -d out --once &&
    rcli DEL w >/dev/null
'

test_expect_success 'the first send --shards 2 records 1 as the count before' '
    printf "{\"seq\":99}\n" | logpipe-send --max-age 0 -s w --shards 2 --producer Q &&
    test "$(rcli GET w:shards)" = 2 &&
    test "$(rcli GET w:shards:was)" = 1 &&
    test "$(shards_total w 2)" = 1
'

test_expect_success 'without --shards the WAL is refused (78), kept' '
    expect_exit 78 logpipe-send --max-age 0 -s w --wal wal --flush-wal 2>f0.err &&
    grep_q "spread over 2 shards" f0.err &&
    test "$(find wal -name "wal-*.log" | wc -l)" -ge 1
'

test_expect_success 'with --shards 2 --shard-key: cannot place them, refused (74), kept' '
    expect_exit 74 logpipe-send --max-age 0 -s w --shards 2 --shard-key .service \
        --wal wal --flush-wal 2>f1.err &&
    grep_q "cannot tell the shard of (--shard-key" f1.err &&
    test "$(find wal -name "wal-*.log" | wc -l)" -ge 1 &&
    test "$(shards_total w 2)" = 1
'

test_expect_success 'with --shards 2: passed over, stored on the stream key already' '
    logpipe-send --max-age 0 -s w --shards 2 --wal wal --flush-wal 2>f2.err &&
    test "$(find wal -name "wal-*.log" | wc -l)" -eq 0 &&
    test "$(shards_total w 2)" = 1
'

test_expect_success 'records of P made after the count (Redis away): sent to the shards by position' '
    logpipe-send --max-age 0 -r "$DEAD" -s w --producer P \
        --wal wal --timeout 1s <c 2>away3.err &&
    logpipe-send --max-age 0 -s w --shards 2 --wal wal --flush-wal 2>f3.err &&
    test "$(find wal -name "wal-*.log" | wc -l)" -eq 0 &&
    test "$(shards_total w 2)" = 11 &&
    for sh in $("$TOP/tests/shard-names" w 2); do
        rcli XLEN "$sh" >>lens
    done &&
    test "$(sort -n lens | tr "\n" " ")" = "5 6 " &&
    test_xlen = 0 w
'

test_expect_success 'drained: 1-30 once each, and the one of Q' '
    logpipe-drain -s w -d out --once &&
    find out -name "*.jsonl" -type f -exec cat {} + | grep -v "\"seq\":99}" >lines &&
    mkdir -p o && cp lines o/x.jsonl &&
    exactly 30 o &&
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | grep -c "\"seq\":99}")" = 1
'

test_done
