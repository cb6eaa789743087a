#!/bin/sh
# x0411: a WAL a run without --shards left with --dlq mydlq (dead letters
# in it), after the first --shards: send --shards 2 --flush-wal without
# --dlq exits 74 saying the record for mydlq is "not for a shard of
# --stream w nor its DLQ (flush it with the options of the run that wrote
# it)". Those options (no --shards) are refused, 78; what sends it is
# --shards 2 --dlq mydlq (checked below: it does). The message should
# name that way (--dlq), not the refused one.
. "$(dirname "$0")/lib.sh"

start_redis
reserve_dead_port
DEAD=redis://127.0.0.1:$DEAD_PORT

gen_events 20 >in
{ cat in; echo "not json"; } >b

test_expect_success 'P writes 20 events and a reject for mydlq, Redis away; the first --shards 2' '
    expect_exit 65 logpipe-send --max-age 0 -r "$DEAD" -s w --producer P --wal wal \
        --dlq mydlq --rejects-to-dlq --timeout 1s <b 2>away.err &&
    printf "{\"seq\":999}\n" | logpipe-send --max-age 0 -s w --shards 2 --producer Q
'

test_expect_success 'the run that wrote it, without --shards: refused (78)' '
    expect_exit 78 logpipe-send --max-age 0 -s w --dlq mydlq --wal wal --flush-wal 2>f0.err
'

test_expect_success '--shards 2 without --dlq: 74, and the message says to give --dlq' '
    expect_exit 74 logpipe-send --max-age 0 -s w --shards 2 --wal wal --flush-wal 2>f1.err &&
    cat f1.err >&2 &&
    grep_q "mydlq" f1.err &&
    grep -q -e "--dlq" f1.err
'

test_expect_success '--shards 2 --dlq mydlq sends it: 20 events, 1 dead letter' '
    logpipe-send --max-age 0 -s w --shards 2 --dlq mydlq --wal wal --flush-wal 2>f2.err &&
    test "$(shards_total w 2)" = 21 &&
    test "$(find wal -name "wal-*.log" | wc -l)" -eq 0
'

test_done
