#!/bin/sh
# t0341-send-replicas.sh -- --replicas N: a batch counts as stored only once
# WAIT says N replicas have it. With a replica: every event is on it when
# send returns, so a master SIGKILLed then loses nothing once the replica
# is promoted; with the replica stopped: nothing is reported stored (75,
# the resume hint from the start; or the WAL), and once it is back the
# events are there once; logpipe-http answers 503 rather than 200
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis replica
R=$REDIS_PORT
RPID=$REDIS_PID
# (a replica's full sync at once, not after the 5 s diskless sync
# delay, redis 7's default, waiting for more replicas)
start_redis master --appendonly no --repl-diskless-sync-delay 0
M=$REDIS_PORT
redis-cli -p "$R" REPLICAOF 127.0.0.1 "$M" >/dev/null
wait_for 30 "redis-cli -p $M INFO replication | grep -q 'slave0:.*state=online'" ||
    { echo "Bail out! the replica did not come online"; exit 1; }
rr() { redis-cli -p "$R" "$@"; }

gen_events 3000 >in.ndjson

test_expect_success '--replicas 1: every event is on the replica when send returns' '
    logpipe-send --replicas 1 --batch 500 <in.ndjson &&
    test "$(rr XLEN logs:stream)" = 3000
'

test_expect_success 'the master SIGKILLed after send returned: the promoted replica has it all' '
    gen_events 2000 >more.ndjson &&
    logpipe-send --replicas 1 <more.ndjson &&
    stop_redis KILL &&
    rr REPLICAOF NO ONE >/dev/null &&
    test "$(rr XLEN logs:stream)" = 5000 &&
    logpipe-drain -r "redis://127.0.0.1:$R" -d out --once &&
    test "$(cat out/*/*.jsonl | wc -l)" = 5000
'

start_redis master2 --repl-diskless-sync-delay 0
redis-cli -p "$R" REPLICAOF 127.0.0.1 "$REDIS_PORT" >/dev/null
online() { rcli INFO replication | grep -q "slave0:.*state=online"; }
wait_for 30 online || { echo "Bail out! the replica did not follow"; exit 1; }

test_expect_success 'the replica stopped: no batch is counted stored; 75 and the hint from the start' '
    kill -STOP "$RPID" &&
    gen_events 10 >ten &&
    expect_exit 75 logpipe-send --replicas 1 --replica-timeout 200 --timeout 1s <ten 2>err &&
    grep_q "of --replicas 1 replicas had the batch" err &&
    grep_q "sent 0 bytes" err &&
    kill -CONT "$RPID"
'

test_expect_success 'it is back: the same events sent again are stored once' '
    wait_for 30 online &&
    n=$(rcli XLEN logs:stream) &&
    logpipe-send --replicas 1 --producer p1 <ten &&
    test "$(rcli XLEN logs:stream)" -ge 10 &&
    test "$(rr XLEN logs:stream)" = "$(rcli XLEN logs:stream)"
'

test_expect_success 'logpipe-http --replicas 1, the replica stopped: 503, never 200' '
    start_http h --replicas 1 --replica-timeout 200 &&
    kill -STOP "$RPID" &&
    req -H "Content-Type: application/x-ndjson" --data-binary @ten "http://$ADDR/v1/events" &&
    kill -CONT "$RPID" &&
    code_is 503 && grep_q "replicas" body &&
    wait_for 30 online &&
    wait_for 30 "curl -s -o /dev/null -w %{http_code} http://$ADDR/healthz | grep -q 200" &&
    req -H "Content-Type: application/x-ndjson" --data-binary @ten "http://$ADDR/v1/events" &&
    code_is 200
'

test_done
