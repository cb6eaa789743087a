#!/bin/sh
# t0319-httpd-connection.sh -- lp_httpd's connection handling with curl:
# HTTP/1.0 and a client's "Connection: close" end the connection after the
# answer, keep-alive keeps it after an error read whole, an early answer
# (401, 413, 415) closes it, Expect: 100-continue gets its 100 only when
# the body is wanted, big bodies arrive whole
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

printf '%s\n' 'alice:0123456789abcdef0123' >tokens
chmod 600 tokens
start_httpd --max-body 20000000
A=$ADDR
start_httpd tok --tokens tokens
T=$ADDR
ND='Content-Type: application/x-ndjson'

# two requests on one curl run: did the second reuse the connection?
reused() { grep -q "Re-using existing connection" "$1"; }

test_expect_success 'HTTP/1.0: the connection ends after the answer' '
    curl -sS -v -0 -H "$ND" --data-binary "{}" "http://$A/v1/events" \
        --next -0 "http://$A/healthz" >out 2>err &&
    grep_q "\"accepted\":1," out &&
    ! reused err
'

test_expect_success 'a client'"'"'s Connection: close is honoured' '
    curl -sS -v -H "Connection: close" -H "$ND" --data-binary "{}" "http://$A/v1/events" \
        --next "http://$A/healthz" >out 2>err &&
    grep_q "\"accepted\":1," out &&
    ! reused err
'

test_expect_success 'a 400 read whole keeps the connection; an early 415 closes it' '
    curl -sS -v -H "$ND" -H "Content-Encoding: gzip" --data-binary "not gzip" "http://$A/v1/events" \
        --next "http://$A/healthz" >out 2>err &&
    grep_q "bad gzip" out && reused err &&
    curl -sS -v -H "Content-Type: text/plain" --data-binary "x" "http://$A/v1/events" \
        --next "http://$A/healthz" >out 2>err &&
    grep_q "unsupported Content-Type" out && ! reused err
'

test_expect_success 'Expect: 100-continue: 100 for a body wanted, none for a 401' '
    head -c 2000000 /dev/zero | tr "\0" "\n" >blank &&
    printf "{\"a\":1}\n" >>blank &&
    curl -sS -v -H "Expect: 100-continue" -H "$ND" --data-binary @blank "http://$A/v1/events" >out 2>err &&
    grep_q "< HTTP/1.1 100 Continue" err && grep_q "\"accepted\":1," out &&
    curl -sS -v -H "Expect: 100-continue" -H "$ND" --data-binary @blank "http://$T/v1/events" >out 2>err &&
    ! grep -q "100 Continue" err && grep_q "< HTTP/1.1 401" err
'

test_expect_success 'a 12 MB body of 100,000 events arrives whole, gzip too' '
    awk "BEGIN { for (i = 1; i <= 100000; i++) printf \"{\\\"seq\\\":%d,\\\"pad\\\":\\\"%0100d\\\"}\\n\", i, 0 }" >big &&
    test "$(wc -c <big)" -gt 12000000 &&
    req -H "$ND" --data-binary @big "http://$A/v1/events" && code_is 200 &&
    grep_q "^{\"accepted\":100000,\"rejected\":0,\"bytes\":$(($(wc -c <big) - 100000))," body &&
    gzip -c big >big.gz &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @big.gz "http://$A/v1/events" &&
    code_is 200 && grep_q "^{\"accepted\":100000," body
'

test_done
