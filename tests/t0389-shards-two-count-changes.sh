#!/bin/sh
# t0389-shards-two-count-changes.sh -- issue 17: two changes of the count
# in a row (2 -> 3 -> 4). send(1) CAVEATS: one step of history is kept
# (S:shards:was holds the count just before); a second change forgets
# the one before it, and what a run of 2 stored that no run of 3 went
# past is stored again by a resume under 4. That holds, and is said: the
# run that makes the second change says which count is forgotten and what
# may be stored again (before s18s it said nothing, and the resume stored
# 40 of 60 events twice in silence). Once a run of 3 went past the fields
# of 2 on every shard, a resume under 4 is exact. A resume under 4 whose
# producer has no field on a shard of 3 is told so too (S:shards:gone),
# when another run made the second change.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 100 >in

# archived DIR: the seqs archived under DIR, one a line
archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

test_expect_success 'caught up: P stores 1-40 over 2 shards, then 41-70 over 3 (the count changes), drained' '
    head -n 40 in | logpipe-send --max-age 0 -s a --shards 2 --producer P -b 5 &&
    logpipe-drain -s a --once -d outa &&
    sed -n 41,70p in | logpipe-send --max-age 0 -s a --shards 3 --producer P \
        -b 5 2>erra3 &&
    grep_q "changed from 2 to 3 (every shard was drained): a sender of 2 shards still running is refused at its next batch\$" erra3 &&
    logpipe-drain -s a --once -d outa
'

test_expect_success 'a second change (3 -> 4) by a resume from position 1: said, 3 kept as the count before, each of 100 archived once' '
    logpipe-send --max-age 0 -s a --shards 4 --producer P --position 1 \
        -b 5 <in 2>erra4 &&
    grep_q "changed from 3 to 4" erra4 &&
    grep_q "the count before 3, 2, is forgotten now" erra4 &&
    ! grep -q "changed twice" erra4 &&
    test "$(rcli GET a:shards:was)" = 3 &&
    test "$(rcli GET a:shards:gone)" = 2 &&
    logpipe-drain -s a --once -d outa &&
    archived outa >got &&
    tally 100 got
'

test_expect_success 'not caught up: P stores 1-40 over 2 shards; a run of 3 stores nothing (the count changes); drained' '
    head -n 40 in | logpipe-send --max-age 0 -s b --shards 2 --producer P -b 5 &&
    logpipe-drain -s b --once -d outb &&
    logpipe-send --max-age 0 -s b --shards 3 --producer P </dev/null 2>errb3 &&
    grep_q "changed from 2 to 3" errb3 &&
    logpipe-drain -s b --once -d outb
'

test_expect_success 'a resume under 4 then stores again what only the run of 2 stored: exactly that, and said by the run that forgets 2' '
    head -n 60 in | logpipe-send --max-age 0 -s b --shards 4 --producer P \
        --position 1 -b 5 2>errb4 &&
    grep_q "the count before 3, 2, is forgotten now" errb4 &&
    grep_q "is stored again by a resume (--position), --follow or --journal" errb4 &&
    logpipe-drain -s b --once -d outb &&
    archived outb >got &&
    sort -n -u got >once &&
    seq 1 60 >want &&
    test_cmp want once &&
    sort -n got | uniq -d >twice &&
    seq 1 40 >want2 &&
    test_cmp want2 twice
'

test_expect_success 'the second change made by another run: a resume under 4 of a producer with no field on a shard of 3 is told' '
    rm -rf outc &&
    head -n 40 in | logpipe-send --max-age 0 -s c --shards 2 --producer P -b 5 &&
    logpipe-drain -s c --once -d outc &&
    logpipe-send --max-age 0 -s c --shards 3 --producer Q </dev/null 2>errc3 &&
    logpipe-send --max-age 0 -s c --shards 4 --producer Q </dev/null 2>errc4 &&
    grep_q "the count before 3, 2, is forgotten now" errc4 &&
    head -n 60 in | logpipe-send --max-age 0 -s c --shards 4 --producer P \
        --position 1 -b 5 2>errc &&
    grep_q "the count of shards of c changed twice (2, 3, now 4: one step of history is kept, 2 is forgotten), and producer P has no field on 3 of the 3 shards of 3" errc &&
    logpipe-drain -s c --once -d outc &&
    archived outc >got &&
    sort -n got | uniq -d >twice &&
    seq 1 40 >want2 &&
    test_cmp want2 twice
'

test_done
