#!/bin/sh
# t0397-shards-resume-count-change.sh -- review rsh2 (issue 17): a resume
# (--producer P --position 1) with another --shards (2 to 3, all drained)
# finds no field of P on the shards of 3 that are not the shards of 2 and
# stores again what they would have held: events archived twice.
# Was a contradiction of logpipe(7) "Sharded streams": "each shard's field
# of the producer holds its last position stored ... exactly once holds
# per shard, across lost replies and restarts". Fixed: the change keeps
# the count before (pp:shards:was) and sets aside the fields of 2 on a
# shard of both counts; the run of 3 passes over a command at or below
# its old shard's field too.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 60 >in

test_expect_success 'producer P stores events 1-40 over 2 shards; drained' '
    head -n 40 in | logpipe-send --max-age 0 -s pp --shards 2 --producer P -b 5 &&
    logpipe-drain -s pp --once -d out
'

test_expect_success 'P resumes from position 1 with --shards 3: the count changes' '
    logpipe-send --max-age 0 -s pp --shards 3 --producer P --position 1 -b 5 <in 2>err &&
    grep_q "changed from 2 to 3" err &&
    logpipe-drain -s pp --once -d out
'

test_expect_success 'each of the 60 events archived once' '
    find out -name "*.jsonl" -type f -exec cat {} + | seqs >got &&
    tally 60 got
'

test_expect_success 'the count before is kept, and the fields of 2 set aside on a shard of both' '
    test "$(rcli GET pp:shards:was)" = 2 &&
    "$TOP/tests/shard-names" pp 2 | sort >two &&
    "$TOP/tests/shard-names" pp 3 | sort >three &&
    comm -12 two three >both &&
    test -s both &&
    while read -r sh; do
        rcli --raw HGET "$sh:producers:was" P | grep -q "^40 " || exit 1
    done <both
'

test_done
