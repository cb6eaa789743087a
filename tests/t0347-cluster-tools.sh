#!/bin/sh
# t0347-cluster-tools.sh -- the tools on a 3-master Redis Cluster, one
# stream (issue 17, step 1): send through one node and drain through
# another, every event exactly once; the stream's keys named into its
# slot ({S}:producers, the default DLQ {S}:dlq); a --dlq in another slot
# refused (78); send and drain while the stream's slot moves to another
# master, by hand (ASK, TRYAGAIN, MOVED): nothing lost, nothing twice.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
S=app:events
# two nodes that do not own the stream: send asks one, drain the other
cluster_roles "$S"

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
events() {
    awk -v n="$1" -v t="$2" -v now="$NOW" "BEGIN { for (i = 1; i <= n; i++)
        printf \"{\\\"timestamp\\\":\\\"%s\\\",\\\"service\\\":\\\"%s\\\",\\\"n\\\":%d}\\n\", now, t, i }"
}

# the events drained, as the input wrote them: n of each, sorted
drained() {
    sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" "$1" | sort -n
}
# every line of the archive tree DIR (--stdout would write an entry
# delivered again twice: the tree is what is exactly once)
archived() {
    find "$1" -name "*.jsonl" -exec cat {} +
}

test_expect_success 'send through a node that does not own the stream' '
    events 3000 one >in1 &&
    logpipe-send -r "redis://127.0.0.1:$A" -s "$S" --batch 100 --producer p1 in1 &&
    test "$(ccli "$OWNER" xlen "$S")" = 3000 &&
    test "$(ccli "$OWNER" hlen "{$S}:producers")" = 1 &&
    test "$(ccli "$OWNER" -c exists "$S:producers")" = 0
'

test_expect_success 'drain --once through another node: each event once' '
    logpipe-drain -r "redis://127.0.0.1:$B" -s "$S" -d arch1 --once &&
    archived arch1 >out1 &&
    drained out1 >got1 &&
    seq 1 3000 >want1 &&
    test_cmp want1 got1
'

test_expect_success 'a --dlq in another slot is refused (78), the derived one is taken' '
    { logpipe-drain -r "redis://127.0.0.1:$A" -s "$S" --dlq other:dlq \
        -d arch0 --once >/dev/null 2>err; test $? = 78; } &&
    grep "hash tag" err &&
    printf "not json\n" >bad &&
    { logpipe-send -r "redis://127.0.0.1:$A" -s "$S" --rejects-to-dlq bad \
        2>/dev/null || :; } &&
    test "$(ccli "$OWNER" xlen "{$S}:dlq")" = 1
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

test_expect_success 'send while the stream slot moves: TRYAGAIN or ASK, then MOVED' '
    events 20000 two >in2 &&
    head -n 10000 in2 >in2a &&
    tail -n 10000 in2 >in2b &&
    X0=$(ccli "$OWNER" xlen "$S") &&
    mkfifo fifo2 || exit 1
    logpipe-send -r "redis://127.0.0.1:$B" -s "$S" --batch 50 --producer p2 <fifo2 2>send.err &
    SENDPID=$!
    exec 3>fifo2 &&
    cat in2a >&3 &&
    wait_for 60 "test \$(redis-cli -p $OWNER xlen $S) -ge \$((X0 + 10000))" &&
    move_begin "$SLOT" "$OWNER" "$A" &&
    move_key "$OWNER" "$A" "$S" &&
    head -n 100 in2b >&3 &&
    wait_for 60 "grep -q retrying send.err" &&
    move_key "$OWNER" "$A" "{$S}:producers" &&
    move_key "$OWNER" "$A" "{$S}:dlq" &&
    move_end "$SLOT" "$OWNER" "$A" &&
    tail -n 9900 in2b >&3 &&
    exec 3>&- &&
    wait $SENDPID &&
    cat send.err >&2 &&
    test "$(cluster_owner "$SLOT")" = "$A" &&
    logpipe-drain -r "redis://127.0.0.1:$M1" -s "$S" -d arch2 --once &&
    archived arch2 >out2 &&
    grep "\"two\"" out2 >two &&
    drained two >got2 &&
    seq 1 20000 >want2 &&
    test_cmp want2 got2
'

test_expect_success 'drain while the stream slot moves back: nothing lost, nothing twice' '
    events 4000 three >in3 &&
    head -n 2000 in3 >in3a &&
    tail -n 2000 in3 >in3b &&
    logpipe-send -r "redis://127.0.0.1:$A" -s "$S" --producer p3 in3a || exit 1
    logpipe-drain -r "redis://127.0.0.1:$B" -s "$S" -d arch3 --block 200ms 2>drain.err &
    DRAINPID=$!
    wait_for 60 "test \$(archived arch3 | grep -c three) -ge 2000" &&
    cluster_move_script "$SLOT" "$A" "$OWNER" >move.sh &&
    sh move.sh &&
    test "$(cluster_owner "$SLOT")" = "$OWNER" &&
    logpipe-send -r "redis://127.0.0.1:$A" -s "$S" --producer p3 in3b &&
    wait_for 60 "test \$(archived arch3 | grep -c three) -ge 4000" &&
    kill $DRAINPID &&
    wait $DRAINPID &&
    archived arch3 >out3 &&
    grep "\"three\"" out3 >three &&
    drained three >got3 &&
    seq 1 4000 >want3 &&
    test_cmp want3 got3
'

test_expect_success 'stat through any node: the stream, its group, the DLQ, the producers' '
    for p in $M1 $M2 $M3; do
        logpipe-stat -r "redis://127.0.0.1:$p" -s "$S" --producers >stat.$p || return 1
    done &&
    for p in $M1 $M2 $M3; do
        sed "s/\"time\":\"[^\"]*\"//; s/\"age_seconds\":[0-9.]*//g" stat.$p >cut.$p || return 1
    done &&
    test_cmp cut.$M1 cut.$M2 &&
    test_cmp cut.$M1 cut.$M3 &&
    grep "\"key\":\"{$S}:dlq\",\"length\":1}" stat.$M1 &&
    grep "\"key\":\"{$S}:producers\"" stat.$M1 &&
    grep "\"p3\"" stat.$M1
'

test_expect_success 'dlq list, retry through any node' '
    logpipe-dlq -r "redis://127.0.0.1:$M2" -s "$S" list >list &&
    test "$(wc -l <list)" = 1 &&
    grep "not json" list &&
    id=$(sed -n "s/.*\"id\":\"\([0-9-]*\)\".*/\1/p" list) &&
    test -n "$id" &&
    logpipe-dlq -r "redis://127.0.0.1:$M3" -s "$S" retry "$id" &&
    test "$(ccli "$OWNER" xlen "{$S}:dlq")" = 0
'

test_expect_success 'replay --from-redis through any node (the entry retried from the DLQ too)' '
    events 500 four >in4 &&
    logpipe-send -r "redis://127.0.0.1:$B" -s "$S" in4 &&
    { logpipe-replay -r "redis://127.0.0.1:$A" -s "$S" --from-redis >replayed 2>replay.err; test $? = 65; } &&
    grep "1 damaged line" replay.err &&
    grep "\"four\"" replayed >four &&
    drained four >got4 &&
    seq 1 500 >want4 &&
    test_cmp want4 got4
'

test_done
