#!/bin/sh
# t0377-shards-count-change-running-sender.sh -- review of issue 17 step 2
# (rsh): a sender started with the old count of shards, still running
# (one that reads a pipe, say), when a sender with another count changes
# it. Each shard has a marker in its own slot that says which count owns
# it; the gate of every batch checks it. The count changes only when
# every shard is drained, and the markers are taken first: the old
# sender is then refused at its next batch (78, "restart with --shards
# M", the batch said not stored), never storing where no drain, stat or
# replay of the stream looks.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 160 >in
sed -n 1,20p in >a
sed -n 21,40p in >a2
sed -n 41,140p in >b
sed -n 141,160p in >c

# stored: the entries over every key logs:stream:{T}
stored() {
    n=0
    for k in $(rcli --scan --pattern "logs:stream:{*}" | grep -v "}:"); do
        n=$((n + $(rcli XLEN "$k")))
    done
    echo $n
}

mkfifo ff

test_expect_success 'a sender of 4 shards runs; 3 refused while not drained, then the count changes' '
    ( rc=0
      logpipe-send --max-age 0 --shards 4 -b 5 -l 1ms --ids <ff >old.ids 2>old.err || rc=$?
      echo $rc >old.rc ) &
    exec 7>ff
    cat a >&7
    ok=1
    {
        wait_for 20 "test \$(stored) = 20" &&
        expect_exit 78 logpipe-send --max-age 0 --shards 3 <b 2>new1.err &&
        grep_q "not drained" new1.err &&
        test "$(rcli GET logs:stream:shards)" = 4 &&
        test "$(rcli GET "logs:stream:{2}:shards")" = 4
    } || ok=0
    # the old sender goes on: the markers it found taken were put back
    cat a2 >&7
    {
        wait_for 20 "test \$(stored) = 40" &&
        logpipe-drain --once -d out 2>d1.err &&
        logpipe-send --max-age 0 --shards 3 -b 5 <b 2>new.err &&
        grep_q "changed from 4 to 3" new.err &&
        test "$(rcli GET logs:stream:shards)" = 3 &&
        test "$(rcli GET "logs:stream:{0}:shards")" = 3 &&
        test "$(rcli GET "logs:stream:{2}:shards")" = to:3
    } || ok=0
    cat c >&7
    exec 7>&-
    wait
    test $ok = 1 || { cat new1.err new.err old.err; false; }
'

test_expect_success 'the old sender exits 78: restart with --shards 3, its batch not stored' '
    test "$(cat old.rc)" = 78 &&
    grep_q "count of shards changed to 3" old.err &&
    grep_q "restart with --shards 3" old.err &&
    grep_q "was not stored" old.err &&
    grep_q "this run stored 40 events" old.err &&
    test "$(wc -l <old.ids)" = 40
'

test_expect_success 'every event a sender said stored is archived, once; nothing else is anywhere' '
    logpipe-drain --once -d out 2>d2.err &&
    find out -name "*.jsonl" -type f -exec cat {} + >all &&
    seqs all >got &&
    tally 140 got &&
    sed -n "s/^{\"_id\":\"\\([0-9]*-[0-9]*-[0-9]*\\)\",.*}\$/\\1/p" all |
        sort >ids.all &&
    test "$(wc -l <ids.all)" = 140 &&
    sort old.ids >ids.old &&
    test "$(comm -23 ids.old ids.all | wc -l)" = 0 &&
    test "$(stored)" -le 140 &&
    test "$(rcli XLEN "logs:stream:{2}")" = 0
'

test_expect_success 'the count changes back only when drained: refused while not' '
    logpipe-send --max-age 0 --shards 3 <c 2>new2.err &&
    expect_exit 78 logpipe-send --max-age 0 --shards 4 <c 2>late.err &&
    grep_q "has 3 shards, not 4, and they are not drained" late.err &&
    test "$(rcli GET "logs:stream:{2}:shards")" = to:3 &&
    logpipe-drain --once -d out2 2>d3.err &&
    logpipe-send --max-age 0 --shards 4 <c 2>late2.err &&
    grep_q "changed from 3 to 4 (every shard was drained)" late2.err &&
    test "$(rcli GET "logs:stream:{2}:shards")" = 4 &&
    test "$(rcli GET "logs:stream:{3}:shards")" = 4
'

test_done
