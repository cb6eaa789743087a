#!/bin/sh
# t0385-cluster-send-shards-wal.sh -- logpipe-send --shards 6 --wal on a
# 3-master Redis Cluster (issue 17 step 2, item 3): one connection (lane)
# a master; a master stopped (SIGSTOP) while send runs: every lane's
# batches in flight go to the WAL, in order, and so does what is read
# meanwhile; the WAL is sent again a shard's batch at a time, each on its
# shard's lane, gated by that shard's field, once the master is back
# (SIGCONT): each event once, each shard in input order. Then the same
# with send SIGKILLed while the WAL holds events: the WAL and a resume of
# the input (--producer, --position 1) store each event once.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded ""
# the pid of the node on M2 (the URL is the first node: another stops)
for d in "$CLUSTER_DIR"/node*; do
    pid=$(cat "$d/pid")
    if [ "$(ccli "$M2" info server | tr -d '\r' |
            sed -n 's/^process_id://p')" = "$pid" ]; then
        M2PID=$pid
    fi
done
test -n "${M2PID:-}" || { echo "Bail out! no pid for $M2"; exit 1; }
URL="redis://127.0.0.1:$M1"

gen_events 30000 >in
split -l 5000 -a 1 in chunk.

# on_m2 STREAM: the name of a shard of STREAM (of 6) on M2
on_m2() {
    for sh in $("$SHARD_NAMES" "$1" 6); do
        [ "$(cluster_key_owner "$sh")" = "$M2" ] && { echo "$sh"; return 0; }
    done
    return 1
}

test_expect_success 'a master stopped while send --wal --shards 6 runs, then started again: each event once, in order' '
    S=wal:a &&
    SH2=$(on_m2 "$S") &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send -v -r "$URL" -s "$S" --max-age 0 --shards 6 \
        --producer wa --batch 200 --wal w -t 3s <fifo 2>send.err &
    spid=$!
    exec 3>fifo
    # fail STEP: says which step failed, and what send said
    fail() { echo "failed: $1" >&2; kill -CONT "$M2PID"; grep -v "batch first" send.err >&2; exit 1; }
    cat chunk.a >&3 || fail "input a"
    wait_for 60 "test \$(ccli $M2 xlen $SH2) -gt 0" || fail "shard on M2"
    kill -STOP "$M2PID"
    cat chunk.b chunk.c >&3 || fail "input b c"
    wait_for 60 "grep -q \"keeping events in the WAL w\" send.err" ||
        fail "no WAL"
    cat chunk.d >&3 || fail "input d"
    kill -CONT "$M2PID"
    cluster_wait_ok || fail "cluster not ok"
    cat chunk.e chunk.f >&3 || fail "input e f"
    exec 3>&-
    wait $spid || fail "send: exit $?"
    # the cluster may have been slow to take it all: the WAL keeps the
    # rest, for --flush-wal
    logpipe-send -r "$URL" -s "$S" --shards 6 --producer wa --wal w \
        --flush-wal -t 60s 2>>send.err || fail "flush: exit $?"
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0 || fail "WAL left"
    grep_q "connections" send.err &&
    cluster_shard_seqs "$S" 6 >got &&
    tally 30000 got || fail "tally"
    cluster_shards_in_order "$S" 6 || fail "order"
'

test_expect_success 'the same, send SIGKILLed with events in the WAL: the WAL and a resume store each event once' '
    S=wal:b &&
    SH2=$(on_m2 "$S") &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send -v -r "$URL" -s "$S" --max-age 0 --shards 6 \
        --producer wb --batch 200 --wal wb -t 3s <fifo 2>sendb.err &
    spid=$!
    exec 3>fifo
    fail() { echo "failed: $1" >&2; kill -CONT "$M2PID"; grep -v "batch first" sendb.err >&2; exit 1; }
    cat chunk.a >&3 || fail "input a"
    wait_for 60 "test \$(ccli $M2 xlen $SH2) -gt 0" || fail "shard on M2"
    kill -STOP "$M2PID"
    cat chunk.b >&3 || fail "input b"
    wait_for 60 "grep -q \"keeping events in the WAL wb\" sendb.err" ||
        fail "no WAL"
    kill -KILL "$spid"
    wait $spid || :
    exec 3>&-
    test "$(find wb -name "wal-*.log" | wc -l)" -ge 1 || fail "no WAL file"
    kill -CONT "$M2PID"
    cluster_wait_ok || fail "cluster not ok"
    # the WAL first, then the input from its start: each shard passes over
    # what it holds
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 --producer wb \
        --batch 200 --wal wb --position 1 -t 60s <in 2>>sendb.err ||
        fail "resume: exit $?"
    test "$(find wb -name "wal-*.log" | wc -l)" -eq 0 || fail "WAL left"
    cluster_shard_seqs "$S" 6 >got &&
    tally 30000 got || fail "tally"
    cluster_shards_in_order "$S" 6 || fail "order"
'

test_done
