#!/bin/sh
# t0354-cluster-send-shards.sh -- logpipe-send --shards 6 on a 3-master
# Redis Cluster (issue 17 step 2): sent through any node, the shards land
# on every master (their names spread over the slot space), each event
# once; the count in {S}:shards; each shard's producer field in its own
# slot; one shard's slot moved by hand while send runs (ASK or TRYAGAIN,
# then MOVED): that shard's connection goes to its new master, nothing
# lost, nothing twice, each shard in input order.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:sharded

gen_events 30000 >in

test_expect_success 'send --shards 6 through each node: shards on every master, each event once' '
    for p in $M1 $M2 $M3; do
        logpipe-send -v -r "redis://127.0.0.1:$p" -s "$S" --max-age 0 \
            --shards 6 --producer "via$p" in 2>"err.$p" || return 1
        # one connection a master, shared by its two shards
        grep_q "shards 6: 3 connections" "err.$p" || return 1
    done &&
    test "$(ccli "$(cluster_key_owner "{$S}:shards")" get "{$S}:shards")" = 6 &&
    for sh in $("$SHARD_NAMES" "$S" 6); do
        cluster_key_owner "$sh" || return 1
    done | sort -u >owners &&
    test "$(wc -l <owners)" -eq 3 &&
    cluster_shard_seqs "$S" 6 >got &&
    test "$(wc -l <got)" -eq 90000 &&
    sort -n got | uniq -c | awk "\$1 != 3" >odd &&
    test ! -s odd &&
    # each shard holds the field of each producer in its own slot
    sh0=$("$SHARD_NAMES" "$S" 6 | sed -n 1p) &&
    test "$(ccli "$(cluster_key_owner "$sh0")" hlen "$sh0:producers")" = 3
'

test_expect_success 'a second count is refused (78) through any node, with --wal too, the WAL kept' '
    expect_exit 78 logpipe-send -r "redis://127.0.0.1:$M2" -s "$S" \
        --max-age 0 --shards 4 in 2>err &&
    grep_q "$S" err &&
    expect_exit 78 logpipe-send -r "redis://127.0.0.1:$M2" -s "$S" \
        --max-age 0 --shards 4 --wal w in 2>err &&
    grep_q "has 6 shards" err
'

# the migration in steps, by hand, as cluster_move_script does it
move_begin() {  # SLOT FROM TO
    ccli "$3" cluster setslot "$1" importing "$(cluster_node_id "$2")" >/dev/null &&
    ccli "$2" cluster setslot "$1" migrating "$(cluster_node_id "$3")" >/dev/null
}
move_key() {    # FROM TO KEY
    test "$(ccli "$1" migrate 127.0.0.1 "$2" "$3" 0 5000)" = OK
}
move_end() {    # SLOT FROM TO
    ccli "$3" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null &&
    ccli "$2" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null
}

test_expect_success 'one shard moves to another master while send runs: nothing lost, nothing twice' '
    T=mv:stream &&
    SH=$("$SHARD_NAMES" "$T" 6 | sed -n 1p) &&
    SL=$(ccli "$M1" cluster keyslot "$SH") &&
    FROM=$(cluster_owner "$SL") &&
    TO=$M1 && { [ "$FROM" != "$M1" ] || TO=$M2; } &&
    head -n 15000 in >ina &&
    tail -n 15000 in >inb &&
    mkfifo fifo || exit 1
    logpipe-send -v -r "redis://127.0.0.1:$M3" -s "$T" --max-age 0 \
        --shards 6 --batch 100 --producer mover <fifo 2>send.err &
    SENDPID=$!
    exec 3>fifo &&
    cat ina >&3 &&
    wait_for 60 "test \$(redis-cli -p $FROM xlen $SH) -ge 2500" &&
    move_begin "$SL" "$FROM" "$TO" &&
    move_key "$FROM" "$TO" "$SH" &&
    { head -n 100 inb >&3 || { cat send.err >&2; false; }; } &&
    wait_for 60 "grep -q retrying send.err" &&
    move_key "$FROM" "$TO" "$SH:producers" &&
    move_key "$FROM" "$TO" "$SH:shards" &&
    move_end "$SL" "$FROM" "$TO" &&
    tail -n 14900 inb >&3 &&
    exec 3>&- &&
    wait $SENDPID &&
    cat send.err >&2 &&
    test "$(cluster_owner "$SL")" = "$TO" &&
    # the shard that moved left the connection it shared for one of its own
    grep -v "batch first" send.err >said &&
    grep_q "shard $SH is on 127.0.0.1:$TO now: a connection of its own" said &&
    cluster_shard_seqs "$T" 6 >got &&
    tally 30000 got &&
    cluster_shards_in_order "$T" 6
'

test_done
