#!/bin/sh
# x0362-ask-send-shards-one-conn.sh -- adversarial (rask): send --shards 6
# on a 3-master cluster (two shards a master: several shards on one
# connection) while shard 0's slot is held half moved, every key of it on
# the importing node. Its transactions are answered ASK, followed in
# place, TRYAGAIN there (send-hold is never on the importing node), so
# shard 0 waits; the other five shards, two of them on shard 0's own
# connection, must not wait with it. Once the move ends, every event
# once, each shard in input order.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:askshards

gen_events 1200 >all
head -n 600 all >in1
tail -n 600 all >in2

# others_total: the entries over shards 1..5
others_total() {
    _t=0
    for _sh in $("$SHARD_NAMES" "$S" 6 | tail -n +2); do
        _t=$((_t + $(ccli "$(cluster_key_owner "$_sh")" xlen "$_sh")))
    done
    echo "$_t"
}

test_expect_success 'setup: 600 events over 6 shards; shard 0 held half moved' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 10 <in1 2>send1.err &&
    cluster_shard_pick 6 0 &&
    echo "$SH $SL $FROM $TO" >pick &&
    test "$(ccli "$FROM" xlen "$SH")" = 100 &&
    test "$(others_total)" = 500 &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_keys "$SL" "$FROM" "$TO" &&
    test "$(ccli "$FROM" cluster countkeysinslot "$SL")" = 0
'

test_expect_success 'send begun while held: the five other shards get their events' '
    logpipe-send -v -r "$URL" -s "$S" --max-age 0 --shards 6 -b 10 -t 120s <in2 2>send2.err &
    echo $! >send2.pid &&
    wait_for 20 "test \$(others_total) = 1000" ||
    { echo "others: $(others_total)"; tail -n 20 send2.err; exit 1; }
'

test_expect_success 'the move ended: send ends, every event once, in order' '
    set -- $(cat pick) &&
    cluster_move_end "$2" "$3" "$4" &&
    wait_for 150 "! kill -0 $(cat send2.pid)" &&
    cat send2.err &&
    test "$(cluster_shards_total "$S" 6)" = 1200 &&
    cluster_shard_seqs "$S" 6 | sort -n >got &&
    seq 1 1200 >want &&
    test_cmp want got &&
    cluster_shards_in_order "$S" 6
'

test_done
