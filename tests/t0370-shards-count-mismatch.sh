#!/bin/sh
# t0370-shards-count-mismatch.sh -- review of issue 17 step 2 (rsh): a send
# that does not give the recorded count of shards. logpipe(7) "Sharded
# streams": "The count is recorded in S:shards; a send with another count
# exits 78." A send without --shards (the count 1, per --help), or with
# --shards 1, to a stream of 4 shards is another count: it must be
# refused, not put events in the key S, which drain, stat, replay and dlq
# of a sharded stream never read (the events are stranded, unseen).
# Likewise a send --shards N to a stream whose key S still holds entries
# no drain has read strands them: it must at least say so.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis

gen_events 100 >in

test_expect_success 'setup: a stream of 4 shards' '
    logpipe-send --max-age 0 --shards 4 <in &&
    test "$(rcli GET logs:stream:shards)" = 4
'

test_expect_success 'send without --shards to a sharded stream is refused (78)' '
    expect_exit 78 logpipe-send --max-age 0 <in 2>err &&
    grep_q "shards" err &&
    test "$(rcli EXISTS logs:stream)" = 0
'

test_expect_success 'send --shards 1 to a stream of 4 shards is refused (78)' '
    expect_exit 78 logpipe-send --max-age 0 --shards 1 <in 2>err &&
    grep_q "shards" err &&
    test "$(rcli EXISTS logs:stream)" = 0
'

test_expect_success 'whatever a send stored, a drain of the stream archives it all' '
    logpipe-drain --once -d out 2>derr &&
    n=$(rcli XLEN logs:stream) &&
    got=$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l) &&
    test "$got" -eq $((100 + n))
'

test_expect_success 'send --shards 2 over an unsharded stream with undrained entries says so' '
    logpipe-send --max-age 0 -s mig <in || exit 1
    set +e
    logpipe-send --max-age 0 -s mig --shards 2 <in 2>err
    st=$?
    set -e
    test "$(rcli XLEN mig)" = 100 &&
    # either refused, or a warning naming the entries left in mig
    { test $st -ne 0 || grep_q "mig" err; }
'

test_done
