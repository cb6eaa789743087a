#!/bin/sh
# t0324-http-idempotency.sh -- Idempotency-Key: a retry gets the first
# answer and stores nothing again: in one process, across a SIGKILL of
# logpipe-http, after a lost reply, with the first still in flight, and
# through the WAL; another body under the key is 422; keys are per client;
# --idempotency-ttl forgets them
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
ND='Content-Type: application/x-ndjson'
printf '{"a":1}\n{"a":2}\nbad\n' >b1
printf '{"b":1}\n' >b2
start_http k
K=$ADDR

test_expect_success 'a retry: the same answer, stored once' '
    req -H "$ND" -H "Idempotency-Key: k-1" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 && cp body first &&
    grep_q "\"accepted\":2,\"rejected\":1" first &&
    req -H "$ND" -H "Idempotency-Key: k-1" --data-binary @b1 "http://$K/v1/events" &&
    code_is 200 && test_cmp first body &&
    test "$(rcli XLEN logs:stream)" = 2 &&
    test -n "$(rcli HGET logs:stream:producers http:-:k-1)"
'

test_expect_success 'the key with another body: 422, nothing stored' '
    req -H "$ND" -H "Idempotency-Key: k-1" --data-binary @b2 "http://$K/v1/events" &&
    code_is 422 && grep_q "another body" body &&
    test "$(rcli XLEN logs:stream)" = 2
'

test_expect_success 'keys with any visible character; a bad key is 400' '
    req -H "$ND" -H "Idempotency-Key: a+b%=~\"x\"" --data-binary @b2 "http://$K/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Idempotency-Key: a+b%=~\"x\"" --data-binary @b2 "http://$K/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 3 &&
    req -H "$ND" -H "Idempotency-Key: $(head -c 200 /dev/zero | tr "\\0" x)" --data-binary @b2 "http://$K/v1/events" &&
    code_is 400 &&
    test "$(rcli XLEN logs:stream)" = 3
'

test_expect_success 'across a SIGKILL of logpipe-http: the retry finds the key in Redis' '
    stop_http k KILL &&
    start_http k2 &&
    req -H "$ND" -H "Idempotency-Key: k-1" --data-binary @b1 "http://$ADDR/v1/events" &&
    code_is 200 && test_cmp first body &&
    test "$(rcli XLEN logs:stream)" = 3 &&
    req "http://$ADDR/metrics" &&
    grep_q "^logpipe_http_requests_replayed_total 1$" body
'

printf '%s\n' 'alice:0123456789abcdef0123' 'bob:fedcba9876543210fedc' >tokens
chmod 600 tokens
K2=$(head -n 1 k2.addr 2>/dev/null || :)
start_http t --tokens tokens
T=$ADDR

test_expect_success 'keys are per client' '
    rcli DEL logs:stream >/dev/null &&
    req -H "$ND" -H "Authorization: Bearer 0123456789abcdef0123" -H "Idempotency-Key: same" --data-binary @b2 "http://$T/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Authorization: Bearer fedcba9876543210fedc" -H "Idempotency-Key: same" --data-binary @b2 "http://$T/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Authorization: Bearer fedcba9876543210fedc" -H "Idempotency-Key: same" --data-binary @b2 "http://$T/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 2 &&
    test -n "$(rcli HGET logs:stream:producers http:alice:same)" &&
    test -n "$(rcli HGET logs:stream:producers http:bob:same)"
'

test_expect_success 'a lost reply: 503 that says it may be stored; the retry stores nothing' '
    rcli DEL logs:stream >/dev/null &&
    LOGPIPE_TEST_LOSE_REPLY=1 start_http lost &&
    req -H "$ND" -H "Idempotency-Key: lost-1" --data-binary @b1 "http://$ADDR/v1/events" &&
    code_is 503 && grep_q "may have been stored" body &&
    test "$(rcli XLEN logs:stream)" = 2 &&
    wait_for 30 "curl -s -o /dev/null -w %{http_code} http://$ADDR/healthz | grep -q 200" &&
    req -H "$ND" -H "Idempotency-Key: lost-1" --data-binary @b1 "http://$ADDR/v1/events" &&
    code_is 200 && grep_q "\"accepted\":2,\"rejected\":1" body &&
    test "$(rcli XLEN logs:stream)" = 2
'

test_expect_success 'a retry while the first is in flight gets its answer' '
    rcli DEL logs:stream >/dev/null
    rcli CLIENT PAUSE 60000 WRITE >/dev/null
    { curl -sS -o f1.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: fly" --data-binary @b1 "http://$K2/v1/events" >f1.code; } &
    wait_for 20 "curl -s http://$K2/metrics | grep -q \"^logpipe_http_requests_in_flight 1\""
    { curl -sS -o f2.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: fly" --data-binary @b1 "http://$K2/v1/events" >f2.code; } &
    wait_for 20 "curl -s http://$K2/metrics | grep -q \"^logpipe_http_requests_in_flight 2\"" &&
    rcli CLIENT UNPAUSE >/dev/null &&
    wait_for 30 "test -s f1.code && test -s f2.code" &&
    test "$(cat f1.code)" = 200 && test "$(cat f2.code)" = 200 &&
    test_cmp f1.body f2.body &&
    test "$(rcli XLEN logs:stream)" = 2
'

# (this Redis keeps nothing across a restart: what w-1 stored is gone)
test_expect_success '--wal, Redis down: a key answered here gets its answer, a new key 503, no key the WAL' '
    start_http w --wal "$TMP/wal" &&
    W=$ADDR &&
    rcli DEL logs:stream >/dev/null &&
    req -H "$ND" -H "Idempotency-Key: w-1" --data-binary @b1 "http://$W/v1/events" &&
    code_is 200 && cp body wfirst &&
    stop_redis KILL &&
    req -H "$ND" -H "Idempotency-Key: w-1" --data-binary @b1 "http://$W/v1/events" &&
    code_is 200 && test_cmp wfirst body &&
    req -H "$ND" -H "Idempotency-Key: w-2" --data-binary @b1 "http://$W/v1/events" &&
    code_is 503 && grep_q "cannot be looked up" body &&
    req -H "$ND" --data-binary @b2 "http://$W/v1/events" &&
    code_is 200 &&
    restart_redis &&
    wait_for 30 "test \$(redis-cli -p $REDIS_PORT XLEN logs:stream) -ge 1" &&
    req -H "$ND" -H "Idempotency-Key: w-2" --data-binary @b1 "http://$W/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "Idempotency-Key: w-2" --data-binary @b1 "http://$W/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 3
'

test_expect_success '--idempotency-ttl: a key is forgotten after it' '
    start_http ttl --idempotency-ttl 1s &&
    rcli DEL logs:stream >/dev/null &&
    req -H "$ND" -H "Idempotency-Key: t-1" --data-binary @b2 "http://$ADDR/v1/events" &&
    code_is 200 &&
    test -n "$(rcli HGET logs:stream:producers http:-:t-1)" &&
    wait_for 30 "test -z \"\$(redis-cli -p $REDIS_PORT HGET logs:stream:producers http:-:t-1)\""
'

test_done
