#!/bin/sh
# t0307-first-shards-wal-batches.sh -- review rw3's x0410: send --shards N
# flushing a WAL a run without --shards left (the stream's own key) sent
# each record in a transaction of its own: rec_shard deals consecutive
# positions to consecutive shards, and a re-send batch ended at every
# change of shard (100,000 records: 100,000 batches, 22.4 s, against
# 0.61 s for a log a --shards 3 run wrote). The re-send now queues the
# records of other shards and reads on (lp_spool.c, dq): batches of
# --batch records a shard. Counted by the -vv "re-sending" lines, not
# timed. Also: batches of 50,000 (8 MiB each: the queue past its bound
# of 8 MiB, the segment read on only once it drains), every event once.
. "$(dirname "$0")/lib.sh"

start_redis
reserve_dead_port
DEAD=redis://127.0.0.1:$DEAD_PORT

gen_events 3000 >in

test_expect_success 'P writes 3000 events to the WAL, Redis away; the first --shards 3' '
    logpipe-send --max-age 0 -r "$DEAD" -s w --producer P --wal wal \
        --timeout 1s <in 2>away.err &&
    printf "{\"seq\":999999}\n" | logpipe-send --max-age 0 -s w --shards 3 --producer Q
'

test_expect_success 'flushed with --shards 3: all sent, in batches of more than one' '
    logpipe-send --max-age 0 -s w --shards 3 --wal wal --flush-wal -vv 2>f.err &&
    test "$(shards_total w 3)" = 3001 &&
    n=$(grep -c "re-sending" f.err) &&
    echo "$n batches for 3000 records" >&2 &&
    test "$n" -le 30
'

test_expect_success 'batches of 50,000 (the queue at its bound): every event once' '
    gen_events 120000 >in2 &&
    logpipe-send --max-age 0 -r "$DEAD" -s v --producer P --wal wal2 \
        --timeout 1s <in2 2>away2.err &&
    printf "{\"seq\":999999}\n" | logpipe-send --max-age 0 -s v --shards 3 --producer Q &&
    logpipe-send --max-age 0 -s v --shards 3 --batch 50000 --wal wal2 --flush-wal &&
    test "$(find wal2 -name "wal-*.log" | wc -l)" -eq 0 &&
    logpipe-drain -s v -d out --once &&
    find out -name "*.jsonl" -type f -exec cat {} + | grep -v "\"seq\":999999}" >lines &&
    mkdir -p o && cp lines o/x.jsonl &&
    exactly 120000 o
'

test_done
