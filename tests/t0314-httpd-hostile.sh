#!/bin/sh
# t0314-httpd-hostile.sh -- lp_httpd against many and hostile clients:
# keep-alive reuse, the connection limit, idle and read timeouts
# (slowloris, a chunked body without end, a silent connection), 10,000
# headers; the server serves others all along
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

cli() { perl "$TOP/tests/httpd-cli.pl" "$@"; }

start_httpd main --read-timeout-ms 1000 --idle 2 --max-body 1048576
M=$ADDR
start_httpd few --max-connections 5
F=$ADDR

test_expect_success 'keep-alive: ten requests on one connection' '
    set -- -H "Content-Type: application/x-ndjson" --data-binary "{\"i\":1}" \
        "http://$M/v1/events" &&
    for i in 2 3 4 5 6 7 8 9 10; do
        set -- "$@" --next -H "Content-Type: application/x-ndjson" \
            --data-binary "{\"i\":$i}" "http://$M/v1/events"
    done &&
    curl -sS -v "$@" >out 2>err &&
    test "$(grep -c "\"accepted\":1," out)" = 10 &&
    test "$(grep -c "Re-using existing connection" err)" = 9
'

test_expect_success 'many connections at once: 200 requests, 20 at a time' '
    : >main.items &&
    seq 1 200 | xargs -P 20 -I{} curl -sS -H "Content-Type: application/x-ndjson" \
        --data-binary "{\"n\":{}}" "http://$M/v1/events" >out &&
    test "$(grep -c "\"accepted\":1," out)" = 200 &&
    test "$(grep -c "^ok " main.items)" = 200
'

test_expect_success 'over --max-connections: closed at once, served again after' '
    mkfifo hold &&
    { cli idle "$F" 5 ready <hold >/dev/null 2>idle.err & } &&
    exec 9>hold &&
    wait_for 20 test -s ready &&
    test "$(cat ready)" = 5 &&
    { curl -sS -m 10 "http://$F/healthz" >out 2>err; echo $? >rc; } &&
    test "$(cat rc)" != 0 && test ! -s out &&
    exec 9>&- &&
    wait_for 20 "curl -sS -m 5 http://$F/healthz" &&
    curl -sS "http://$F/metrics" >m &&
    grep_q "^logpipe_http_connections_refused_total [1-9]" m
'

test_expect_success 'slowloris: a request trickled byte by byte is cut, others served' '
    cli slow "$M" 30 >out &&
    grep_q "^closed after" out &&
    alive &&
    curl -sS "http://$M/metrics" >m &&
    grep_q "^logpipe_http_read_timeouts_total [1-9]" m
'

test_expect_success 'a chunked body without end is cut, nothing submitted' '
    : >main.items &&
    cli chunked "$M" 30 >out &&
    grep_q "^closed after" out &&
    test "$(tail -n 1 main.items)" = abort &&
    ! grep -q submit main.items &&
    alive
'

test_expect_success 'a silent connection is closed by the idle timeout' '
    cli silent "$M" 30 >out &&
    echo "closed after 0 bytes" >want && test_cmp want out
'

test_expect_success '10,000 headers: refused, the server goes on' '
    cli headers "$M" 10000 >out &&
    grep -E -q "^(431|413|400|closed)$" out &&
    alive &&
    cli headers "$M" 20 >out &&
    echo 200 >want && test_cmp want out
'

test_done
