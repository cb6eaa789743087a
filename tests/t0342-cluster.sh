#!/bin/sh
# t0342-cluster.sh -- lp_cluster against a real 3-master Redis Cluster
# (tests/cluster-cli runs commands through it): key slots as CLUSTER
# KEYSLOT says, one seed node reaching every master, MOVED after a
# reshard and after a slot moved by hand, ASK during a migration made by
# hand (single commands and a MULTI batch), TRYAGAIN waited out, and a
# standalone server through the same code, a database other than 0
# refused in a cluster. LP_VALGRIND runs the cli under it (make valgrind).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

CLI="${LP_VALGRIND:-} $TOP/tests/cluster-cli"
start_cluster 3 0
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
SEED=$M1
URL="redis://127.0.0.1:$SEED"

owner() { cluster_owner "$1" "${2:-$M1}"; }

test_expect_success 'the slots of 3000 keys are those CLUSTER KEYSLOT gives' '
    awk "BEGIN {
        for (i = 1; i <= 600; i++) {
            print \"k\" i; print \"{t\" i \"}x\"; print \"a{}{b\" i \"}\"
            print \"x{\" i \"}{y}\"; print \"{{\" i \"}}\" }
    }" >keys &&
    sed "s/^/CLUSTER KEYSLOT /" keys | ccli "$SEED" >want &&
    sed "s/^/.slot /" keys | $CLI -r "$URL" >got &&
    test "$(wc -l <got)" = 3000 &&
    test_cmp want got
'

test_expect_success 'one seed reaches every master: SET, GET, XADD' '
    awk "BEGIN { for (i = 1; i <= 300; i++) print \"SET k\" i \" v\" i }" >set.cmds &&
    awk "BEGIN { for (i = 1; i <= 300; i++) print \"GET k\" i }" >get.cmds &&
    awk "BEGIN { for (i = 1; i <= 30; i++) print \"XADD s{\" i \"} 1-1 n \" i }" >xadd.cmds &&
    cat set.cmds get.cmds xadd.cmds | $CLI -r "$URL" -s >out 2>stats &&
    awk "BEGIN { for (i = 1; i <= 300; i++) print \"OK\"
                 for (i = 1; i <= 300; i++) print \"v\" i
                 for (i = 1; i <= 30; i++) print \"1-1\" }" >want &&
    test_cmp want out &&
    grep_q "^moved=0 ask=0 waits=0 reloads=1\$" stats &&
    total=0 &&
    for p in $M1 $M2 $M3
    do
        n=$(ccli "$p" dbsize) &&
        say "master $p holds $n keys" &&
        test "$n" -gt 20 &&
        total=$((total + n)) || exit 1
    done &&
    test "$total" = 330 &&
    echo .masters | $CLI -r "$URL" | sort >masters &&
    printf "127.0.0.1:%s\n" $M1 $M2 $M3 | sort >want &&
    test_cmp want masters
'

test_expect_success 'a batch (MULTI, XADD, EXEC) to the node of its slot' '
    cat >batch.cmds <<-EOF &&
	{
	MULTI
	XADD b{7} 1-1 n 1
	XADD b{7} 2-1 n 2
	EXEC
	}
	XLEN b{7}
	EOF
    $CLI -r "$URL" -s <batch.cmds >out 2>stats &&
    printf "OK\nQUEUED\nQUEUED\n1-1\n2-1\n2\n" >want &&
    test_cmp want out &&
    grep_q "^moved=0 ask=0" stats
'

test_expect_success 'a reshard between two commands: MOVED followed' '
    src=$(owner 0) &&
    dst=$M3 &&
    if [ "$src" = "$M3" ]; then dst=$M2; fi &&
    from=$(cluster_node_id "$src") &&
    to=$(cluster_node_id "$dst") &&
    {
        cat set.cmds
        echo "!redis-cli --cluster reshard 127.0.0.1:$M1 --cluster-from $from --cluster-to $to --cluster-slots 1000 --cluster-yes >reshard.log 2>&1"
        cat get.cmds
    } | $CLI -r "$URL" -s >out 2>stats &&
    awk "BEGIN { for (i = 1; i <= 300; i++) print \"OK\"
                 for (i = 1; i <= 300; i++) print \"v\" i }" >want &&
    test_cmp want out &&
    cat stats &&
    grep_q "^moved=[1-9]" stats &&
    test "$(owner 0)" = "$dst" &&
    test "$(owner 999)" = "$dst" &&
    test "$(owner 1000)" = "$src"
'

# migrate_keys SLOT FROM TO N: MIGRATEs up to N keys of SLOT
migrate_keys() {
    for _k in $(ccli "$2" cluster getkeysinslot "$1" "$4")
    do
        ccli "$2" migrate 127.0.0.1 "$3" "$_k" 0 5000 >/dev/null || return 1
    done
}

test_expect_success 'a slot moved by hand between two commands: MOVED followed' '
    slot=$(echo ".slot {mv}" | $CLI -r "$URL") &&
    src=$(owner "$slot") &&
    dst=$M3 &&
    if [ "$src" = "$M3" ]; then dst=$M2; fi &&
    cluster_move_script "$slot" "$src" "$dst" >move.sh &&
    printf "SET {mv}a 1\nSET {mv}b 2\n!sh move.sh\nGET {mv}a\nGET {mv}b\nINCR {mv}c\n" |
        $CLI -r "$URL" -s >out 2>stats &&
    printf "OK\nOK\n1\n2\n1\n" >want &&
    test_cmp want out &&
    grep_q "^moved=1 ask=0 waits=0 reloads=2\$" stats &&
    test "$(owner "$slot" "$dst")" = "$dst" &&
    test "$(ccli "$dst" get {mv}c)" = 1
'

test_expect_success 'ASK during a migration by hand: commands and a MULTI batch' '
    slot=$(echo ".slot {ask}" | $CLI -r "$URL") &&
    src=$(owner "$slot") &&
    dst=$M3 &&
    if [ "$src" = "$M3" ]; then dst=$M2; fi &&
    awk "BEGIN { for (i = 1; i <= 10; i++) print \"SET {ask}\" i \" v\" i }" |
        $CLI -r "$URL" >/dev/null &&
    ccli "$dst" cluster setslot "$slot" importing "$(cluster_node_id "$src")" &&
    ccli "$src" cluster setslot "$slot" migrating "$(cluster_node_id "$dst")" &&
    for i in 1 2 3 4 5
    do
        ccli "$src" migrate 127.0.0.1 "$dst" "{ask}$i" 0 5000 >/dev/null || exit 1
    done &&
    test "$(ccli "$src" cluster countkeysinslot "$slot")" = 5 &&
    cat >ask.cmds <<-EOF &&
	GET {ask}1
	GET {ask}2
	GET {ask}6
	SET {ask}new fresh
	GET {ask}new
	{
	MULTI
	SET {ask}3 changed
	APPEND {ask}3 !
	EXEC
	}
	{
	GET {ask}4
	GET {ask}7
	}
	EOF
    $CLI -r "$URL" -s <ask.cmds >out 2>stats &&
    printf "v1\nv2\nv6\nOK\nfresh\nOK\nQUEUED\nQUEUED\nOK\n8\nv4\nv7\n" >want &&
    test_cmp want out &&
    cat stats &&
    grep_q "^moved=0 ask=6 waits=0 reloads=1\$" stats &&
    printf "ASKING\nGET {ask}3\nASKING\nGET {ask}new\n" | ccli "$dst" >direct &&
    printf "OK\nchanged!\nOK\nfresh\n" >want &&
    test_cmp want direct &&
    ccli "$src" cluster getkeysinslot "$slot" 100 | sort >at-src &&
    printf "{ask}10\n{ask}6\n{ask}7\n{ask}8\n{ask}9\n" >want &&
    test_cmp want at-src
'

test_expect_success 'TRYAGAIN during that migration: waited out' '
    # after the wait: MOVED, or ASK when the source still says migrating
    slot=$(echo ".slot {ask}" | $CLI -r "$URL") &&
    src=$(owner "$slot") &&
    dst=$M3 &&
    if [ "$src" = "$M3" ]; then dst=$M2; fi || exit 1
    ( $CLI -r "$URL" -s -t 60000 MGET {ask}1 {ask}6 >mget.out 2>mget.err
      echo $? >mget.rc ) &
    wait_for 30 "ccli $src client list | grep -q cmd=mget" &&
    migrate_keys "$slot" "$src" "$dst" 100 &&
    ccli "$dst" cluster setslot "$slot" node "$(cluster_node_id "$dst")" &&
    ccli "$src" cluster setslot "$slot" node "$(cluster_node_id "$dst")" &&
    wait_for 60 test -s mget.rc &&
    test "$(cat mget.rc)" = 0 &&
    printf "v1\nv6\n" >want &&
    test_cmp want mget.out &&
    cat mget.err &&
    grep_q "^moved=[01] ask=[01] waits=[1-9][0-9]* reloads=[0-9]*\$" mget.err
'

test_expect_success 'TRYAGAIN past the timeout: given up, said' '
    slot=$(echo ".slot {ta}" | $CLI -r "$URL") &&
    src=$(owner "$slot") &&
    dst=$M3 &&
    if [ "$src" = "$M3" ]; then dst=$M2; fi &&
    printf "SET {ta}1 a\nSET {ta}2 b\n" | $CLI -r "$URL" >/dev/null &&
    ccli "$dst" cluster setslot "$slot" importing "$(cluster_node_id "$src")" &&
    ccli "$src" cluster setslot "$slot" migrating "$(cluster_node_id "$dst")" &&
    ccli "$src" migrate 127.0.0.1 "$dst" "{ta}1" 0 5000 &&
    expect_exit 69 $CLI -r "$URL" -t 500 MGET {ta}1 {ta}2 2>err &&
    grep_q "TRYAGAIN.*still after" err &&
    migrate_keys "$slot" "$src" "$dst" 100 &&
    ccli "$dst" cluster setslot "$slot" node "$(cluster_node_id "$dst")" &&
    ccli "$src" cluster setslot "$slot" node "$(cluster_node_id "$dst")"
'

test_expect_success 'the same through another seed, and a cluster asked for db 3' '
    $CLI -r "redis://127.0.0.1:$M3" MGET {ta}1 {ta}2 >out &&
    printf "a\nb\n" >want &&
    test_cmp want out &&
    expect_exit 78 $CLI -r "redis://127.0.0.1:$M2/3" GET k1 2>err &&
    grep_q "is a Redis Cluster, which has only database 0: the URL asks for database 3" err
'

start_redis

test_expect_success 'a standalone server: the same cli, everything to it' '
    printf ".mode\n.masters\nSET {a}x 1\nSET b 2\nMGET {a}x b\n" |
        $CLI -r "redis://127.0.0.1:$REDIS_PORT" -s >out 2>stats &&
    printf "standalone\n127.0.0.1:%s\nOK\nOK\n1\n2\n" "$REDIS_PORT" >want &&
    test_cmp want out &&
    grep_q "^moved=0 ask=0 waits=0 reloads=0\$" stats &&
    $CLI -r "redis://127.0.0.1:$REDIS_PORT/3" SET c 3 &&
    test "$(rcli -n 3 get c)" = 3 &&
    test "$(rcli -n 0 exists c)" = 0 &&
    printf "{\nMULTI\nINCR n\nINCR n\nEXEC\n}\n" |
        $CLI -r "redis://127.0.0.1:$REDIS_PORT" >out &&
    printf "OK\nQUEUED\nQUEUED\n1\n2\n" >want &&
    test_cmp want out &&
    expect_exit 69 $CLI -r "$(dead_redis)" PING 2>err &&
    grep_q "no-redis.sock" err
'

test_done
