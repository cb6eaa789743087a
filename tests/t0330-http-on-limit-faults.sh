#!/bin/sh
# t0330-http-on-limit-faults.sh -- faults review r16 found (issue 16), fixed
# since (the tests of them failed before): logpipe-http --on-limit
# reject, two faults found against 424e85e.
#
# 1. Tokens taken by a request that is then refused whole are not given
#    back: each event takes its token in on_item as the body is read
#    (lp_send_req_admit), so a body refused later (400: a JSON array cut
#    short; also 413 as read, a key 503, a Redis failure 503) stored
#    nothing yet spent the tokens, and the corrected retry, within the
#    limit, is answered 200 with every event rejected "over --rate":
#    the client is told its events are dropped though none was stored.
#    Test 3: the same after a 503 for Redis failing (SIGKILL while the
#    request is in flight, nothing stored): the retry is all rejected,
#    its events lost.
# 2. An element of an NDJSON line holding an array, refused over the
#    rate, is named "over --rate" only: every element of the line gets
#    the same line number and nothing says which (a rejected element of
#    such a line is "element N: ..." otherwise, as the man page says).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
# grep_q on the body (which ends without a LF: one added, so that the
# next TAP line stays its own when it fails)
body_has() {
    grep_q "$1" body || { echo >&2; return 1; }
}
JS='Content-Type: application/json'
# post_ok3 ADDR: ok3 to ADDR answered 200; until logpipe-http has
# connected again after a Redis restart it answers 503 (nothing stored,
# no token spent: what test 3 checks), so test 3 asks until then
post_ok3() {
    req -H "$ND" --data-binary @ok3 "http://$1/v1/events" && code_is 200
}

printf '{"b":1}\n{"b":2}\n{"b":3}\n' >ok3
start_http rej --rate 3/h --burst 3 --on-limit reject
R=$ADDR
start_http arr --rate 2/h --burst 2 --on-limit reject
AR=$ADDR

test_expect_success 'reject: a request refused 400 spends no token of the next one' '
    printf "[{\"a\":1},{\"a\":2},{\"a\":3}" >cut &&
    req -H "$JS" --data-binary @cut "http://$R/v1/events" &&
    code_is 400 &&
    test "$(rcli XLEN logs:stream)" = 0 &&
    req -H "$ND" --data-binary @ok3 "http://$R/v1/events" &&
    code_is 200 &&
    body_has "\"accepted\":3,\"rejected\":0" &&
    test "$(rcli XLEN logs:stream)" = 3
'

test_expect_success 'reject: an element of an array line over the rate is named' '
    printf "[{\"c\":1},{\"c\":2},{\"c\":3}]\n" >arr &&
    req -H "$ND" --data-binary @arr "http://$AR/v1/events" &&
    code_is 200 &&
    body_has "\"accepted\":2,\"rejected\":1" &&
    body_has "\"line\":1,\"error\":\"element 3: over --rate"
'

test_expect_success 'reject: a request 503 for a Redis failure spends no token of its retry' '
    start_http rf --rate 3/h --burst 3 --on-limit reject &&
    F=$ADDR &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null || return 1
    { curl -sS -o rf.body -w "%{http_code}\n" -H "$ND" --data-binary @ok3 "http://$F/v1/events" >rf.code; } &
    wait_for 10 "curl -s http://$F/metrics | grep -q \"^logpipe_http_batches_in_flight 1\"" &&
    stop_redis KILL &&
    wait_for 30 test -s rf.code &&
    test "$(cat rf.code)" = 503 &&
    restart_redis &&
    test "$(rcli XLEN logs:stream)" = 0 &&
    wait_for 30 "post_ok3 $F" &&
    body_has "\"accepted\":3,\"rejected\":0" &&
    test "$(rcli XLEN logs:stream)" = 3
'

test_done
