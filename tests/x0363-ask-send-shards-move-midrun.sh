#!/bin/sh
# x0363-ask-send-shards-move-midrun.sh -- adversarial (rask): one send
# --shards 6 run (stdin a FIFO fed in three parts) on a 3-master cluster
# (two shards a master: several shards on one lane) while shard 0's slot
# is held half moved, then the move ended, under it. Part 2 comes while
# the slot is held: the five other shards must get theirs (shard 0
# waits: TRYAGAIN on the importing node). Part 3 after the move ended:
# the run ends, every event once, each shard in input order.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:askmid

gen_events 1800 >all
sed -n 1,600p all >in1
sed -n 601,1200p all >in2
sed -n 1201,1800p all >in3

others_total() {
    _t=0
    for _sh in $("$SHARD_NAMES" "$S" 6 | tail -n +2); do
        _t=$((_t + $(ccli "$(cluster_key_owner "$_sh")" xlen "$_sh")))
    done
    echo "$_t"
}
# writer: the three parts into the FIFO, each after its go file
writer() {
    cat in1
    while [ ! -f go2 ]; do sleep 0.1; done
    cat in2
    while [ ! -f go3 ]; do sleep 0.1; done
    cat in3
}

mkfifo fifo

test_expect_success 'part 1: 600 events over 6 shards, one run' '
    logpipe-send -v -r "$URL" -s "$S" --max-age 0 --shards 6 -b 10 \
        --linger 50ms -t 150s <fifo 2>send.err &
    echo $! >send.pid
    writer >fifo &
    wait_for 60 "test \$(cluster_shards_total $S 6) = 600"
'

test_expect_success 'shard 0 held half moved; part 2: the five other shards get theirs' '
    cluster_shard_pick 6 0 &&
    echo "$SH $SL $FROM $TO" >pick &&
    test "$(ccli "$FROM" xlen "$SH")" = 100 &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_keys "$SL" "$FROM" "$TO" &&
    touch go2 &&
    wait_for 30 "test \$(others_total) = 1000" ||
    { echo "others: $(others_total)"; grep -v "batch first" send.err; exit 1; }
'

test_expect_success 'the move ended; part 3: the run ends, every event once, in order' '
    set -- $(cat pick) &&
    cluster_move_end "$2" "$3" "$4" &&
    touch go3 &&
    wait_for 90 "! kill -0 $(cat send.pid)" &&
    cat send.err &&
    test "$(cluster_shards_total "$S" 6)" = 1800 &&
    cluster_shard_seqs "$S" 6 | sort -n >got &&
    seq 1 1800 >want &&
    test_cmp want got &&
    cluster_shards_in_order "$S" 6
'

test_done
