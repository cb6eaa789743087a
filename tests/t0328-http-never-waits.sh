#!/bin/sh
# t0328-http-never-waits.sh -- logpipe-http's loop never waits on Redis
# for a request (issue 16, the review's faults 5 to 7): a key's lookup
# goes on the engine's questions' connection (lp_aside), a request that
# finds every batch of the ring in flight is parked whole for a slot,
# --max-backlog's lag is asked aside and judged by its last answer. Redis
# is made slow by CLIENT PAUSE; /healthz must answer meanwhile. Also: a
# keyed answer lists errors up to 1 KiB (its field stays small), and the
# requests parked at a SIGTERM are stored and answered.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
printf '{"a":1}\n' >b1

healthy() {
    _end=$(($(date +%s) + 3))
    while [ "$(date +%s)" -lt "$_end" ]; do
        curl -sS -m 4 -o /dev/null "http://$1/healthz" || return 1
    done
}

# Fault 5: keyed() looks a key up with a blocking HGET on the loop's own
# thread (idem_field: lp_redis_connect's PING and the HGET, 2 s timeout
# each; the pruning's HSCAN in tick likewise): while Redis is slow
# (CLIENT PAUSE, a long command, a failover) every client of the door
# waits, /healthz included: one keyed request stopped it for 6 to 7 s
# here under CLIENT PAUSE ALL.
test_expect_success 'a key looked up while Redis is paused: other clients still served' '
    start_http blk
    B=$ADDR
    rcli CLIENT PAUSE 8000 ALL >/dev/null
    { curl -sS -o k.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: blk" --data-binary @b1 "http://$B/v1/events" >k.code; } &
    healthy "$B" || { rcli CLIENT UNPAUSE >/dev/null; false; }
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 30 test -s k.code
'

# Fault 6: with LP_INFLIGHT (3) batches in flight, a submit waits for a
# reply inside dispatch (lp_send.c dispatch: while count >= LP_INFLIGHT,
# lp_pipeline_pump waiting), on the loop's thread: a keyed request is a
# batch of its own, so three of them in flight while Redis is slow (and
# any three batches of plain requests) stop the door: no /healthz, no
# 503 for --max-backlog, no new connection, no SIGTERM, until Redis
# answers or --timeout passes.
test_expect_success 'batches in flight while Redis is paused: other clients still served' '
    start_http ring
    R=$ADDR
    rcli CLIENT PAUSE 8000 WRITE >/dev/null
    for i in 1 2 3; do
        { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: ring-$i" --data-binary @b1 "http://$R/v1/events" >>ring.codes; } &
        wait_for 5 "curl -s http://$R/metrics | grep -q \"^logpipe_http_requests_in_flight $i\""
    done
    # the ring is full: the next submit waits in dispatch
    { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: ring-4" --data-binary @b1 "http://$R/v1/events" >>ring.codes; } &
    healthy "$R" || { rcli CLIENT UNPAUSE >/dev/null; false; }
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 30 "test \$(wc -l <ring.codes) = 4"
'

# Fault 7: --max-backlog asks the group's lag on a submit (at most every
# 100 ms: lp_pipeline.c lp_pipeline_backlogged), and first waits for every
# batch in flight to be answered (while count > 0: lp_pipeline_pump,
# waiting), then runs XINFO on the engine's connection, both on the
# loop's thread: one batch in flight while Redis is slow stops the door
# at the next request, the opposite of "503 without blocking".
test_expect_success '--max-backlog while Redis is paused: other clients still served' '
    start_http mb --max-backlog 1000000
    M=$ADDR
    rcli CLIENT PAUSE 8000 WRITE >/dev/null
    { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" --data-binary @b1 "http://$M/v1/events" >>mb.codes; } &
    wait_for 5 "curl -s http://$M/metrics | grep -q \"^logpipe_http_batches_in_flight 1\""
    # past the 100 ms the last answer of the lag is used for
    sleep 0.3
    { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" --data-binary @b1 "http://$M/v1/events" >>mb.codes; } &
    healthy "$M" || { rcli CLIENT UNPAUSE >/dev/null; false; }
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 30 "test \$(wc -l <mb.codes) = 2"
'


# lines "{"n":I}" and I bad ones: 200 with the bad ones rejected
bad_body() {
    i=0
    while [ $i -lt "$1" ]; do
        printf '{"n":%d}\nthis line number %d is not JSON at all, and says so at length to make its error long\n' $i $i
        i=$((i + 1))
    done
}
bad_body 60 >bad60
start_http cap
C=$ADDR

test_expect_success 'a keyed answer lists errors up to 1 KiB, the rest omitted; a retry from Redis gets it again' '
    req -H "$ND" -H "Idempotency-Key: cap-1" --data-binary @bad60 "http://$C/v1/events" &&
    code_is 200 && cp body cap.first &&
    grep_q "\"accepted\":60,\"rejected\":60" cap.first &&
    grep_q "\"errors_omitted\":" cap.first &&
    test "$(wc -c <cap.first)" -lt 1300 &&
    omitted=$(sed -n "s/.*\"errors_omitted\":\([0-9]*\).*/\1/p" cap.first) &&
    listed=$(grep -o "\"line\":" cap.first | wc -l) &&
    test $((omitted + listed)) = 60 &&
    test "$(rcli HSTRLEN logs:stream:producers http:-:cap-1)" -lt 2000 &&
    stop_http cap KILL &&
    start_http cap &&
    req -H "$ND" -H "Idempotency-Key: cap-1" --data-binary @bad60 "http://$ADDR/v1/events" &&
    code_is 200 && test_cmp cap.first body &&
    req -H "$ND" --data-binary @bad60 "http://$ADDR/v1/events" &&
    code_is 200 && grep_q "\"errors\":\[{" body &&
    test "$(grep -o "\"line\":" body | wc -l)" -gt "$listed"
'

test_expect_success 'requests parked for the ring at a SIGTERM: each stored once and answered 200' '
    start_http park &&
    P=$ADDR &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 8000 WRITE >/dev/null &&
    : >park.codes &&
    for i in 1 2 3 4 5 6; do
        printf "{\"park\":%d}\n" $i >park$i
        { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: park-$i" --data-binary @park$i "http://$P/v1/events" >>park.codes; } &
        wait_for 5 "curl -s http://$P/metrics | grep -q \"^logpipe_http_requests_in_flight $i\"" || return 1
    done &&
    kill -TERM "$(cat park.pid)" &&
    rcli CLIENT UNPAUSE >/dev/null &&
    wait_for 30 "test \$(wc -l <park.codes) = 6" &&
    wait_for 30 test -s park.rc &&
    test "$(cat park.rc)" = 0 &&
    test "$(sort -u park.codes)" = 200 &&
    test "$(rcli XLEN logs:stream)" = 6
'
rcli CLIENT UNPAUSE >/dev/null 2>&1 || :

test_done
