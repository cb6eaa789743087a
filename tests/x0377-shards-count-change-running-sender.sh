#!/bin/sh
# t0377-shards-count-change-running-sender.sh -- review of issue 17 step 2
# (rsh): a send with another count is refused with the way to change it:
# "to change their number drain the stream, then delete S:shards". A
# sender started before, with the old count, still running (one that
# reads a pipe, say), is not told: it reads the count only at start and
# goes on writing to its old shards, one of which is not a shard of the
# new count. Its later events are stored (exit 0) where no drain, stat or
# replay of the stream looks: lost without a word.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 140 >in
head -n 20 in >a
sed -n 21,120p in >b
tail -n 20 in >c

# stored: the entries over every key logs:stream:{T}
stored() {
    n=0
    for k in $(rcli --scan --pattern "logs:stream:{*}" | grep -v "}:"); do
        n=$((n + $(rcli XLEN "$k")))
    done
    echo $n
}

mkfifo ff

test_expect_success 'the count changed as the refusal says, a sender of the old count running' '
    ( logpipe-send --max-age 0 --shards 4 -b 5 -l 1ms <ff 2>old.err; echo $? >old.rc ) &
    exec 7>ff
    cat a >&7
    ok=1
    {
        wait_for 20 "test \$(stored) = 20" &&
        logpipe-drain --once -d out 2>d1.err &&
        expect_exit 78 logpipe-send --max-age 0 --shards 3 <b 2>new.err &&
        grep_q "drain the stream, then delete logs:stream:shards" new.err &&
        rcli DEL logs:stream:shards >/dev/null &&
        logpipe-send --max-age 0 --shards 3 -b 5 <b
    } || ok=0
    cat c >&7
    exec 7>&-
    wait
    test $ok = 1
'

test_expect_success 'every event the senders stored is archived, or the old sender said it could not' '
    logpipe-drain --once -d out 2>d2.err &&
    n=$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l) &&
    echo "archived $n of 140, old sender exit $(cat old.rc)" &&
    { test "$n" = 140 || test "$(cat old.rc)" != 0; }
'

test_done
