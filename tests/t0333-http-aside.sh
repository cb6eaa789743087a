#!/bin/sh
# t0333-http-aside.sh -- faults review r16 found (issue 16), fixed
# since (the tests of them failed before): acf803d's questions'
# connection (lp_aside). Passing: an Idempotency-Key's lookup after Redis
# was restarted or its connection killed, a lookup timing out while its
# key's retry waits, and the engine stopping (SIGTERM twice) with lookups
# in flight, under valgrind. Failing: that connection, gone while Redis
# is slow, is connected again on the loop's thread, blocking: the door
# stops (/healthz unanswered for the 8 s of a CLIENT PAUSE here).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
body_has() {
    grep_q "$1" body || { echo >&2; return 1; }
}
printf '{"a":1}\n' >b1
printf '{"a":2}\n' >b2
start_http ak
K=$ADDR

# (without a WAL the door answers 503 until it connected again, as
# documented: /healthz says when)
test_expect_success 'a key after Redis restarted (idle meanwhile): 200, stored' '
    req -H "$ND" -H "Idempotency-Key: r-0" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 &&
    stop_redis &&
    restart_redis &&
    wait_for 20 "test \"\$(curl -s -o /dev/null -w %{http_code} http://$K/healthz)\" = 200" &&
    req -H "$ND" -H "Idempotency-Key: r-1" --data-binary @b2 "http://$K/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 2
'

test_expect_success 'a plain request after Redis restarted (idle meanwhile): 200' '
    stop_redis &&
    restart_redis &&
    wait_for 20 "test \"\$(curl -s -o /dev/null -w %{http_code} http://$K/healthz)\" = 200" &&
    req -H "$ND" --data-binary @b2 "http://$K/v1/events" &&
    code_is 200
'

test_expect_success 'a key after its connection was killed (CLIENT KILL): 200' '
    req -H "$ND" -H "Idempotency-Key: r-2" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 &&
    id=$(rcli CLIENT LIST | sed -n "s/^id=\([0-9]*\) .*cmd=hget.*/\1/p" | head -n 1) &&
    test -n "$id" &&
    rcli CLIENT KILL ID "$id" >/dev/null &&
    req -H "$ND" -H "Idempotency-Key: r-3" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Idempotency-Key: r-3" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200
'

test_expect_success 'a lookup timing out while its retry waits: both 503, then stored once' '
    start_http to &&
    T=$ADDR &&
    c0=$(rcli XLEN logs:stream) &&
    rcli CLIENT PAUSE 13000 ALL >/dev/null || return 1
    { curl -sS -o t1.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: to-1" --data-binary @b1 "http://$T/v1/events" >t1.code; } &
    wait_for 5 "curl -s http://$T/metrics | grep -q \"^logpipe_http_requests_in_flight 1\"" || return 1
    { curl -sS -o t2.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: to-1" --data-binary @b1 "http://$T/v1/events" >t2.code; } &
    wait_for 20 "test -s t1.code && test -s t2.code" &&
    echo "# codes $(cat t1.code t2.code | tr "\n" " ")" >&2 &&
    test "$(cat t1.code t2.code | sort -u)" = 503 &&
    wait_for 10 "rcli PING | grep -q PONG" &&
    sleep 3 &&
    req -H "$ND" -H "Idempotency-Key: to-1" --data-binary @b1 "http://$T/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Idempotency-Key: to-1" --data-binary @b1 "http://$T/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = $((c0 + 1)) &&
    stop_http to && test "$(cat to.rc)" = 0
'

# /healthz for 3 s, each answered within 4 s
healthy() {
    _end=$(($(date +%s) + 3))
    while [ "$(date +%s)" -lt "$_end" ]; do
        curl -sS -m 4 -o /dev/null "http://$1/healthz" || return 1
    done
}

# FAILS: the loop connects the questions' connection again, blocking, once
# a second while it is down and the engine's is up (lp_send_serve, and
# keyed() too): a Redis slow to answer (here CLIENT PAUSE ALL, as a
# failover or a long command would) stops the door for the Redis timeout
# (10 s with the default --timeout), again each second while it lasts.
test_expect_success 'its connection killed while Redis is paused: other clients still served' '
    req -H "$ND" -H "Idempotency-Key: hz-1" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 &&
    id=$(rcli CLIENT LIST | sed -n "s/^id=\([0-9]*\) .*cmd=hget.*/\1/p" | head -n 1) &&
    test -n "$id" &&
    sleep 1.2 &&
    printf "MULTI\nCLIENT KILL ID %s\nCLIENT PAUSE 8000 ALL\nEXEC\n" "$id" | rcli >/dev/null &&
    healthy "$K" || { rcli CLIENT UNPAUSE >/dev/null; false; }
    rcli CLIENT UNPAUSE >/dev/null
'

VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
if command -v valgrind >/dev/null 2>&1 && [ "${SAN:-}" != 1 ]; then
rm -f vg.addr
( trap - EXIT INT TERM PIPE
  LOGPIPE_TEST_ADDR_FILE="$TMP/vg.addr" $VG --log-file=http.vg \
      "$TOP/cmd/logpipe-http" --listen 127.0.0.1:0 --max-backlog 100 \
      2>vg.err &
  echo $! >vg.pid
  echo $! >>"$TMP/.pids"
  wait $!
  echo $? >vg.rc ) &
wait_for 60 "test -s vg.addr || test -s vg.rc" || :
V=$(head -n 1 vg.addr 2>/dev/null)

test_expect_success 'stopping (SIGTERM twice) with lookups in flight, under valgrind: 503, exit 0, clean' '
    test -n "$V" &&
    req -H "$ND" --data-binary @b1 "http://$V/v1/events" && code_is 200 &&
    rcli CLIENT PAUSE 8000 ALL >/dev/null || return 1
    { curl -sS -o v1.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: vg-1" --data-binary @b1 "http://$V/v1/events" >v1.code; } &
    { curl -sS -o v2.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: vg-1" --data-binary @b1 "http://$V/v1/events" >v2.code; } &
    { curl -sS -o v3.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: vg-2" --data-binary @b2 "http://$V/v1/events" >v3.code; } &
    wait_for 20 "curl -s http://$V/metrics | grep -q \"^logpipe_http_requests_in_flight 3\"" &&
    kill -TERM "$(cat vg.pid)" &&
    sleep 0.5 &&
    kill -TERM "$(cat vg.pid)" &&
    wait_for 60 test -s vg.rc &&
    rcli CLIENT UNPAUSE >/dev/null &&
    cat http.vg >&2 &&
    test "$(cat vg.rc)" = 0 &&
    wait_for 10 "test -s v1.code && test -s v2.code && test -s v3.code" &&
    cat vg.err >&2 &&
    echo "# codes $(cat v1.code v2.code v3.code | tr "\n" " ")" >&2 &&
    test "$(cat v1.code v2.code v3.code | sort -u)" = 503
'
fi
rcli CLIENT UNPAUSE >/dev/null 2>&1 || :

test_done
