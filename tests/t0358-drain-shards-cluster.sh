#!/bin/sh
# t0358-drain-shards-cluster.sh -- logpipe-drain over a stream of 6 shards
# on a 3-master Redis Cluster: the shards on every master, the drain
# --once through a node that does not own the stream's count: every event
# once, each shard's group and DLQ in the shard's slot, --shard-range
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
S=app:events
cluster_roles "{$S}:shards"

"$TOP/tests/shard-names" "$S" 6 >names
"$TOP/tests/shard-names" logs:dlq 6 >dlqs

# fill FIRST LAST: events FIRST..LAST, event s on shard (s-1) % 6, each
# through the node that owns that shard (redis-cli -c follows MOVED)
fill() {
    shards_spread "$1" "$2" 4 >cmds &&
    rcc -c -p "$A" <cmds >fill.out &&
    ! grep -q ERR fill.out &&
    test "$(rcc -c -p "$A" SET "{$S}:shards" 6)" = OK
}

test_expect_success 'the 6 shards are on the 3 masters, 2 each' '
    for s in $(cat names); do
        cluster_owner "$(ccli "$M1" cluster keyslot "$s")" || exit 1
    done >owners &&
    test "$(sort -u owners | wc -l)" -eq 3 &&
    test "$(sort owners | uniq -c | awk "{ print \$1 }" | sort -u)" = 2
'

test_expect_success 'drain --once through a node that does not own the count: every event once' '
    fill 1 3000 &&
    logpipe-drain -r "redis://127.0.0.1:$B" -s "$S" --once -d out 2>err &&
    tree_lines out >all &&
    ! grep -v -E "^\{\"_id\":\"[0-5]-[0-9]+-[0-9]+\",.*\}$" all &&
    seqs all >got &&
    seq 1 3000 >want &&
    test_cmp want got &&
    awk "{ split(\$0, a, \"\\\"\"); split(a[4], id, \"-\");
           match(\$0, /\"seq\":[0-9]+/); s = substr(\$0, RSTART + 6, RLENGTH - 6)
           if (id[1] != (s - 1) % 6) exit 1 }" all &&
    for s in $(cat names); do
        test "$(rcc -c -p "$B" XPENDING "$s" logpipe | head -n 1)" -eq 0 || exit 1
        rcc -c -p "$B" --raw XINFO GROUPS "$s" | grep -qx logpipe || exit 1
    done &&
    test -z "$(find out/.logpipe-journal -type f 2>/dev/null)"
'

test_expect_success 'a poison entry on shard 4 goes to its DLQ, in its slot' '
    fill 3001 3060 &&
    rcc -c -p "$A" XADD "$(sed -n 5p names)" "*" data "{\"seq\":3061,\"POISON\":1}" >/dev/null &&
    crashes=0 || exit 1
    while LOGPIPE_TEST_CRASH=on-data:POISON logpipe-drain -r "redis://127.0.0.1:$A" \
            -s "$S" --once -d out --max-deliveries 2 -c c1 2>>err; [ $? -eq 70 ]; do
        crashes=$((crashes + 1))
        [ $crashes -lt 10 ] || break
    done
    test "$crashes" -eq 2 &&
    d=$(sed -n 5p dlqs) &&
    test "$(rcc -c -p "$A" XLEN "$d")" -eq 1 &&
    test "$(ccli "$M1" cluster keyslot "$d")" = "$(ccli "$M1" cluster keyslot "$(sed -n 5p names)")" &&
    tree_lines out | seqs >got &&
    seq 1 3060 >want &&
    test_cmp want got
'

test_expect_success '--shard-range 4-5 through the third node; a --dlq with a tag: 78' '
    fill 3062 3121 &&
    logpipe-drain -r "redis://127.0.0.1:$OWNER" -s "$S" --once -d r \
        --shard-range 4-5 &&
    test "$(tree_lines r | wc -l)" -eq 20 &&
    expect_exit 78 logpipe-drain -r "redis://127.0.0.1:$A" -s "$S" --once \
        -d r --dlq "d:{x}" 2>err &&
    grep_q "without .{. or .}." err &&
    logpipe-drain -r "redis://127.0.0.1:$A" -s "$S" --once -d out &&
    tree_lines out r | seqs >got &&
    { seq 1 3060; seq 3062 3121; } >want &&
    test_cmp want got
'

stop_cluster
test_done
