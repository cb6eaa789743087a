#!/bin/sh
# t0303-first-shards-second-change.sh -- rw2 review of 44680a1: the first
# --shards records 1 (the stream's own key) as the count before when
# senders without --shards left positions there (S:shards:was = 1). A
# second change 2 -> 3 forgets it (send(1) CAVEATS: one step of history),
# and the doc says the run that makes a second change says so ("the
# count before M, N, is forgotten now") and records N in S:shards:gone,
# so that a --position resume of a producer with no field on a shard of
# M is told ("changed twice"). After the first --shards neither happens:
# the change 2 -> 3 says only "changed from 2 to 3", S:shards:gone stays
# unset, and a resume under 3 of a producer that stored only unsharded
# stores its events again in silence.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 30 >in

archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

test_expect_success 'P stores 1-20 unsharded, drained; Q makes the first --shards 2 (was 1), drained' '
    head -n 20 in | logpipe-send --max-age 0 -s c --producer P -b 5 &&
    logpipe-drain -s c --once -d outc &&
    logpipe-send --max-age 0 -s c --shards 2 --producer Q </dev/null 2>errq2 &&
    test "$(rcli GET c:shards)" = 2 &&
    test "$(rcli GET c:shards:was)" = 1
'

test_expect_success 'Q changes the count 2 -> 3: says that the count before 2, 1, is forgotten, records it gone' '
    logpipe-send --max-age 0 -s c --shards 3 --producer Q </dev/null 2>errq3 &&
    sed "s/^/# /" errq3 &&
    grep_q "changed from 2 to 3" errq3 &&
    test "$(rcli GET c:shards:was)" = 2 &&
    grep_q "the count before 2, 1, is forgotten now" errq3 &&
    test "$(rcli GET c:shards:gone)" = 1
'

test_expect_success 'a resume of P under 3 from position 1: said, or each of 30 once' '
    head -n 30 in | logpipe-send --max-age 0 -s c --shards 3 --producer P \
        --position 1 -b 5 2>errp3 ;
    sed "s/^/# /" errp3 &&
    logpipe-drain -s c --once -d outc &&
    archived outc >got &&
    { grep -q "changed twice" errp3 || tally 30 got; }
'
test_done
