#!/bin/sh
# x0325-http-review.sh -- faults of logpipe-http the adversarial review
# found (issue 16) that are still open: each a test that fails now. Named
# x*, so that make check (tests/t[0-9]*.sh) does not run it; by hand:
# prove -v tests/x0325-http-review.sh. The event loop waits on Redis
# (a key's HGET, a full ring of batches, --max-backlog's lag) while Redis
# is slow. Fixed ones
# moved to t0326.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
printf '{"a":1}\n' >b1
printf '{"b":2}\n{"b":3}\n' >b2

# every request answered 200 has its events in the stream: FILE holds
# lines "CODE BODYFILE EVENTSFILE"
stored_if_200() {
    stream_data >got
    while read -r c bf ef; do
        [ "$c" = 200 ] || continue
        while read -r ev; do
            grep -qxF "$ev" got || {
                echo "answered 200 ($(cat "$bf")), not stored: $ev" >&2
                return 1
            }
        done <"$ef"
    done <"$1"
}

start_http p1
A1=$ADDR
start_http p2
A2=$ADDR

healthy() {
    _end=$(($(date +%s) + 3))
    while [ "$(date +%s)" -lt "$_end" ]; do
        curl -sS -m 1 -o /dev/null "http://$1/healthz" || return 1
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
    { curl -sS -o /dev/null -w "%{http_code}\n" -H "$ND" --data-binary @b1 "http://$M/v1/events" >>mb.codes; } &
    healthy "$M" || { rcli CLIENT UNPAUSE >/dev/null; false; }
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 30 "test \$(wc -l <mb.codes) = 2"
'

test_done
