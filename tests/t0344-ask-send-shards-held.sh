#!/bin/sh
# t0344-ask-send-shards-held.sh -- send --shards 6 on a 3-master cluster
# (two shards a master: the shards of a master share one connection)
# while shard 0's slot is held half moved, every key of it on the
# importing node (found by review rask: x0362, x0363).
#
# Send reads its input in order into bounded memory, so while one shard
# cannot store (its batches name S:{T}:send-hold, a key there only while
# a batch is held aside: the importing node answers TRYAGAIN) the run
# waits, saying so, for --timeout. What must hold: it waits rather than
# failing or storing anything twice, and once the move ends it goes on
# and ends, every event once, each shard in input order. Before the fix,
# a run begun while the slot was held never went on: shard 0 had moved,
# the shard sharing its connection (routed by shard 0 name) met MOVED to
# its own master again and again at the start, until --timeout.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:askstart

gen_events 1800 >all
sed -n 1,600p all >in1
sed -n 601,1200p all >in2
sed -n 1201,1800p all >in3

# held S: shard 0 of S held half moved (pick: its name, slot, from, to)
held() {
    S=$1 &&
    cluster_shard_pick 6 0 &&
    echo "$SH $SL $FROM $TO" >"pick.$1" &&
    test "$(ccli "$FROM" xlen "$SH")" = 100 &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_keys "$SL" "$FROM" "$TO" &&
    test "$(ccli "$FROM" cluster countkeysinslot "$SL")" = 0
}
# ended S: the move of held S ended
ended() {
    set -- $(cat "pick.$1") &&
    cluster_move_end "$2" "$3" "$4"
}
# exact S N: the N first events in the shards of S, once, in order
exact() {
    test "$(cluster_shards_total "$1" 6)" = "$2" &&
    cluster_shard_seqs "$1" 6 | sort -n >got &&
    seq 1 "$2" >want &&
    test_cmp want got &&
    cluster_shards_in_order "$1" 6
}

test_expect_success 'begun while held: 600 events over 6 shards; shard 0 held half moved' '
    logpipe-send -r "$URL" -s app:askstart --max-age 0 --shards 6 -b 10 <in1 2>send1.err &&
    held app:askstart
'

test_expect_success 'begun while held: send waits, saying why' '
    (logpipe-send -v -r "$URL" -s app:askstart --max-age 0 --shards 6 -b 10 -t 120s <in2 2>send2.err; echo $? >send2.rc) &
    wait_for 20 "grep -q \"TRYAGAIN.*retrying for up to 2m\" send2.err" &&
    ! test -e send2.rc
'

test_expect_success 'begun while held: the move ended, send ends, every event once, in order' '
    ended app:askstart &&
    wait_for 60 test -e send2.rc &&
    cat send2.err &&
    test "$(cat send2.rc)" = 0 &&
    set -- $(cat pick.app:askstart) &&
    grep "shard $1 is on 127.0.0.1:$4 now: a connection of its own" send2.err &&
    exact app:askstart 1200
'

# the second: one run, stdin a FIFO fed in three parts, the slot held
# half moved under it while it runs
writer() {
    cat in1
    while [ ! -f go2 ]; do sleep 0.1; done
    cat in2
    while [ ! -f go3 ]; do sleep 0.1; done
    cat in3
}
mkfifo fifo

test_expect_success 'held mid-run: part 1, 600 events over 6 shards' '
    (logpipe-send -v -r "$URL" -s app:askmid --max-age 0 --shards 6 -b 10 --linger 50ms -t 120s <fifo 2>send.err; echo $? >send.rc) &
    writer >fifo &
    wait_for 60 "test \$(cluster_shards_total app:askmid 6) = 600"
'

test_expect_success 'held mid-run: shard 0 held half moved, part 2: send waits, saying why' '
    held app:askmid &&
    touch go2 &&
    wait_for 20 "grep -q \"TRYAGAIN.*retrying for up to 2m\" send.err" &&
    ! test -e send.rc
'

test_expect_success 'held mid-run: the move ended, part 3: the run ends, every event once, in order' '
    ended app:askmid &&
    touch go3 &&
    wait_for 60 test -e send.rc &&
    cat send.err &&
    test "$(cat send.rc)" = 0 &&
    grep "answers again" send.err &&
    exact app:askmid 1800
'

test_done
