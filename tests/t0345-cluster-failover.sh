#!/bin/sh
# t0345-cluster-failover.sh -- lp_cluster on a 3+3 cluster: Redis 7's
# unknown-endpoint mode (CLUSTER SLOTS without hosts, "MOVED slot :port")
# routed to the host asked; a master SIGKILLed: a command for its slots
# waits out the node that is not there and CLUSTERDOWN, loads the map
# again and finds the promoted replica, with the data written before
# (WAIT 1 in the same batch); the masters listed after it.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

CLI="${LP_VALGRIND:-} $TOP/tests/cluster-cli"
start_cluster 3 1
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
URL="redis://127.0.0.1:$M1"

# the seed is named localhost: the masters are found as localhost:PORT only
# when the map without hosts is read as "the host asked"
test_expect_success 'unknown-endpoint: no hosts in the map, MOVED without one' '
    for p in $CLUSTER_PORTS
    do
        ccli "$p" config set cluster-preferred-endpoint-type unknown-endpoint >/dev/null || exit 1
    done
    tag=$(cluster_tag_on "$M2")
    slot=$(ccli "$M1" cluster keyslot "{$tag}")
    ccli "$M1" set "{$tag}k" x >moved || :
    grep_q "^MOVED $slot :$M2\$" moved
    cluster_move_script "$slot" "$M2" "$M3" >move.sh
    awk "BEGIN { for (i = 1; i <= 100; i++) print \"SET u\" i \" \" i }" >cmds
    printf "SET {%s}k 1\n!sh move.sh\nINCR {%s}k\n.masters\n" "$tag" "$tag" >>cmds
    awk "BEGIN { for (i = 1; i <= 100; i++) print \"GET u\" i }" >>cmds
    $CLI -r "redis://localhost:$M1" -s <cmds >out 2>stats
    {
        awk "BEGIN { for (i = 1; i <= 100; i++) print \"OK\" }"
        printf "OK\n2\n"
        printf "localhost:%s\n" $M1 $M2 $M3 | sort
        awk "BEGIN { for (i = 1; i <= 100; i++) print i }"
    } >want
    { head -n 102 out; sed -n "103,105p" out | sort; tail -n +106 out; } >got
    test_cmp want got
    grep_q "^moved=1 ask=0 waits=0 reloads=2\$" stats
    test "$(ccli "$M3" get "{$tag}k")" = 2
    for p in $CLUSTER_PORTS
    do
        ccli "$p" config set cluster-preferred-endpoint-type ip >/dev/null || exit 1
    done
'

test_expect_success 'a master SIGKILLed: its slots found on the promoted replica' '
    victim=$M2
    tag=$(cluster_tag_on "$victim")
    printf "{\nSET {%s}k before\n@-1 WAIT 1 10000\n}\n" "$tag" |
        $CLI -r "$URL" >out
    printf "OK\n1\n" >want
    test_cmp want out
    vpid=$(ccli "$victim" info server | tr -d "\r" | sed -n "s/^process_id://p")
    test -n "$vpid"
    kill -9 "$vpid"
    $CLI -r "$URL" -s -t 60000 GET "{$tag}k" >out 2>stats
    echo before >want
    test_cmp want out
    cat stats
    grep_q "^moved=[0-9]* ask=0 waits=[1-9][0-9]* reloads=[0-9]*\$" stats
    printf ".masters\nSET {%s}k after\nGET {%s}k\n" "$tag" "$tag" |
        $CLI -r "$URL" >out
    new=$(cluster_owner "$(ccli "$M1" cluster keyslot "{$tag}")" "$M1")
    test -n "$new"
    test "$new" != "$victim"
    printf "127.0.0.1:%s\n" $M1 $new $M3 | sort >want
    { head -n 3 out | sort; tail -n +4 out; } >got
    printf "OK\nafter\n" >>want
    test_cmp want got
'

test_done
