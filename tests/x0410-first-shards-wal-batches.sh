#!/bin/sh
# x0410: send --shards N flushing a WAL a run without --shards left (the
# stream's own key) sends each record in a batch of its own: rec_shard
# deals consecutive positions to consecutive shards, and a replay batch
# ends at every change of shard (lp_spool_replay: shard != b->shard), so
# a log of E such records goes as E MULTI/EXEC batches, not about
# E / --batch per shard. Measured (100000 events, one redis-server, 2
# shared cores): 100000 batches, 22.4 s; the same events in a log a
# --shards 3 run wrote: 102 batches, 0.61 s; unsharded flush 100
# batches, 0.55 s. Counted here by the -vv "re-sending" lines, not timed.
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

test_done
