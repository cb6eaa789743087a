#!/bin/sh
# t0373-send-shards-wal-redis-away.sh -- review of issue 17 step 2 (rsh):
# logpipe-send --wal keeps what Redis cannot take, and a run that starts
# while Redis is away keeps its events in the WAL until Redis answers
# (logpipe-send(1)); with --shards, send(1) says "what Redis cannot take
# goes to the log as always". But a sharded run started while Redis is
# away retries the count (S:shards) for --timeout, then gives up (75)
# with nothing in the WAL: the input it read is gone unless its writer
# can send it again.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis
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

test_done
