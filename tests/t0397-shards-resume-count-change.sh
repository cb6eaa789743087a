#!/bin/sh
# t0397-shards-resume-count-change.sh -- review rsh2 (issue 17): a resume
# (--producer P --position 1) with another --shards (2 to 3, all drained)
# finds no field of P on the shards of 3 that are not the shards of 2 and
# stores again what they would have held: events archived twice.
# Contradicts logpipe(7) "Sharded streams": "each shard's field of the
# producer holds its last position stored ... exactly once holds per
# shard, across lost replies and restarts" -- the change drops it, silently.
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

test_done
