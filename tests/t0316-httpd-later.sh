#!/bin/sh
# t0316-httpd-later.sh -- lp_httpd's answers given later (the connection
# suspended, then resumed from the loop) and SIGTERM's quiesce: no new
# connection, every request in hand answered, then exit 0
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

cli() { perl "$TOP/tests/httpd-cli.pl" "$@"; }
ND='Content-Type: application/x-ndjson'

start_httpd delay --delay-ms 300
D=$ADDR

# the server answers once its ms clock is 300 past the submit: up to a ms
# less in real time, so curl's total (from before the submit) is checked
# against 0.29 s, a bound that load can only move away from
test_expect_success 'answers after a delay: five at once, none before it' '
    for i in 1 2 3 4 5; do
        curl -sS -o "d$i.body" -w "%{http_code} %{time_total}\n" -H "$ND" \
            --data-binary "{\"i\":$i}" "http://$D/v1/events" >"d$i.out" 2>&1 &
    done &&
    wait_for 20 "test \$(grep -c submit delay.items) = 5" &&
    alive &&
    wait_for 20 "test \$(cat d?.out | wc -l) = 5" &&
    for i in 1 2 3 4 5; do
        read -r st t <"d$i.out" &&
        test "$st" = 200 &&
        awk -v t="$t" "BEGIN { exit !(t >= 0.29) }" &&
        grep_q "\"accepted\":1," "d$i.body" || exit 1
    done
'

start_httpd hold --hold
H=$ADDR
HP=$HTTPD_PID

test_expect_success 'a held request: others served meanwhile, answered on the owner'"'"'s word' '
    { curl -sS -o h1.body -D h1.hdrs -w "%{http_code}\n" -H "$ND" --data-binary "{}" \
        "http://$H/v1/events" >h1.code 2>&1 & } &&
    wait_for 20 "grep -q submit hold.items" &&
    req "http://$H/metrics" && code_is 200 &&
    grep_q "^logpipe_http_requests_in_flight 1$" body &&
    test ! -s h1.code &&
    kill -USR1 $HP &&
    wait_for 20 test -s h1.code &&
    test "$(cat h1.code)" = 200 &&
    ! grep -qi "^Connection: close" h1.hdrs
'

test_expect_success 'SIGTERM with a request in hand: no new connection, it is answered, exit 0' '
    : >hold.items &&
    { curl -sS -o h2.body -D h2.hdrs -w "%{http_code}\n" -H "$ND" --data-binary "{\"x\":1}" \
        "http://$H/v1/events" >h2.code 2>&1 & } &&
    wait_for 20 "grep -q submit hold.items" &&
    kill -TERM $HP &&
    wait_for 20 "grep -q quiesce hold.items" &&
    { curl -sS -m 10 "http://$H/healthz" >out 2>err; echo $? >rc; } &&
    test "$(cat rc)" = 7 &&
    kill -0 $HP &&
    test ! -s h2.code &&
    kill -USR1 $HP &&
    wait_for 20 test -s h2.code &&
    test "$(cat h2.code)" = 200 &&
    grep -qi "^Connection: close" h2.hdrs &&
    wait_for 20 test -s hold.rc &&
    echo 0 >want && test_cmp want hold.rc
'

start_httpd split
S=$ADDR
SP=$HTTPD_PID

test_expect_success 'SIGTERM mid-body: the request is read to its end and answered' '
    { cli split "$S" go >split.out 2>split.err & } &&
    wait_for 20 test -e go.half &&
    test ! -s split.out &&
    kill -TERM $SP &&
    wait_for 20 "grep -q quiesce split.items" &&
    touch go &&
    wait_for 20 test -s split.out &&
    echo "200 close" >want && test_cmp want split.out &&
    test "$(grep -c "^ok " split.items)" = 2 &&
    wait_for 20 test -s split.rc &&
    echo 0 >want && test_cmp want split.rc
'

start_httpd idle
I=$ADDR
IP=$HTTPD_PID

test_expect_success 'SIGTERM with idle keep-alive connections only: closed, exit at once' '
    mkfifo hold &&
    { cli idle "$I" 3 ready <hold >/dev/null 2>idle.err & } &&
    exec 9>hold &&
    wait_for 20 test -s ready &&
    kill -TERM $IP &&
    wait_for 20 test -s idle.rc &&
    echo 0 >want && test_cmp want idle.rc &&
    exec 9>&-
'

test_done
