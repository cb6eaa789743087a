#!/bin/sh
# t0371-shards-resume-batch.sh -- review of issue 17 step 2 (rsh):
# logpipe-send(1) "Sharded streams" says "Which shard a command goes to
# depends on the command alone (its position, or the value of
# --shard-key), so that a run fed the same input sends each one where the
# first run did", and that a --producer resume with --position 1 passes
# each shard over what it holds. The shard of a position was once chosen
# by blocks of --batch positions, so a resume with another --batch (an
# operator tuning it on restart) sent commands to shards whose field was
# below them: stored twice. Now position p goes to shard (p - 1) mod N,
# whatever the batches.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis

gen_events 100 >in

# all_seqs STREAM N: every seq in the shards of STREAM, one a line
all_seqs() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

test_expect_success 'a resume with the same --batch stores nothing twice' '
    logpipe-send --max-age 0 -s same --shards 4 -b 7 --producer A <in &&
    logpipe-send --max-age 0 -s same --shards 4 -b 7 --producer A \
        --position 1 <in &&
    all_seqs same 4 >got &&
    tally 100 got
'

test_expect_success 'a resume with another --batch stores nothing twice, or is refused' '
    logpipe-send --max-age 0 -s other --shards 4 -b 7 --producer A <in || exit 1
    set +e
    logpipe-send --max-age 0 -s other --shards 4 -b 13 --producer A \
        --position 1 <in 2>err
    st=$?
    set -e
    all_seqs other 4 >got &&
    { test $st -ne 0 || tally 100 got; }
'

test_expect_success 'giving up in a later run of a producer: the hint names the run first position, and it sends the rest once' '
    gen_events 4000 >in4 &&
    head -n 2000 in4 | logpipe-send --max-age 0 -s later --shards 4 \
        --producer L -b 50 &&
    tail -n 2000 in4 >in4b &&
    expect_exit 75 env LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send --max-age 0 \
        -s later --shards 4 --producer L -b 50 --timeout 0 <in4b 2>err &&
    grep_q "with --producer L --position 2001 " err &&
    logpipe-send --max-age 0 -s later --shards 4 --producer L -b 50 \
        --position 2001 <in4b &&
    all_seqs later 4 >got &&
    tally 4000 got
'

test_done
