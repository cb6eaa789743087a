#!/bin/sh
# t0325-http-valgrind.sh -- logpipe-http under valgrind against a real
# Redis, through a mix of what clients do: NDJSON, gzip, bad gzip, OTLP,
# 401 and 415, Idempotency-Keys (new, retried, another body, retried
# while the first is in flight, pruned), 429 from --rate, 503 from
# --max-backlog and from Redis gone (then back), a client gone mid-body,
# a slowloris, and SIGTERM with a request in hand: exit 0, no invalid
# access, no leak
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

if ! command -v valgrind >/dev/null 2>&1; then
    test_skip 'logpipe-http under valgrind' 'no valgrind'
    test_done
fi
if [ "$SAN" = 1 ]; then
    test_skip 'logpipe-http under valgrind' 'an AddressSanitizer build'
    test_done
fi

VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

start_redis
printf '%s\n' 'alice:0123456789abcdef0123' 'bob:fedcba9876543210fedc' >tokens
chmod 600 tokens
rcli XGROUP CREATE logs:stream logpipe '$' MKSTREAM >/dev/null

# logpipe-http under valgrind; its status (99 on an error) in vg.rc
rm -f vg.addr
( trap - EXIT INT TERM PIPE
  LOGPIPE_TEST_ADDR_FILE="$TMP/vg.addr" $VG --log-file=http.vg \
      "$TOP/cmd/logpipe-http" --listen 127.0.0.1:0 --tokens tokens \
      --client-field client --rate 60/m --burst 40 --max-backlog 60 \
      --idempotency-ttl 1s --read-timeout 2s 2>vg.err &
  echo $! >vg.pid
  echo $! >>"$TMP/.pids"
  wait $!
  echo $? >vg.rc ) &
wait_for 60 "test -s vg.addr || test -s vg.rc" || :
A=$(head -n 1 vg.addr 2>/dev/null)
P=$(cat vg.pid)
TOK='Authorization: Bearer 0123456789abcdef0123'
ND='Content-Type: application/x-ndjson'
JS='Content-Type: application/json'
BOB='Authorization: Bearer fedcba9876543210fedc'

test_expect_success 'bodies, encodings, OTLP, refusals, under valgrind' '
    test -n "$A" &&
    printf "{\"a\":1}\nnot json\n[{\"b\":2},3]\n" >in.ndjson &&
    req -H "$TOK" -H "$ND" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 200 && grep_q "\"accepted\":2,\"rejected\":2" body &&
    gzip -c in.ndjson >in.gz &&
    req -H "$TOK" -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.gz "http://$A/v1/events" &&
    code_is 200 &&
    req -H "$TOK" -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 400 &&
    req -H "$ND" --data-binary @in.ndjson "http://$A/v1/events" && code_is 401 &&
    req -H "$TOK" -H "Content-Type: text/plain" --data-binary x "http://$A/v1/events" &&
    code_is 415 &&
    echo "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"s\"}}]},\"scopeLogs\":[{\"logRecords\":[{\"severityText\":\"INFO\",\"body\":{\"stringValue\":\"x\"}}]}]}]}" >otlp.json &&
    req -H "$TOK" -H "$JS" --data-binary @otlp.json "http://$A/v1/logs" &&
    code_is 200 &&
    req -H "$TOK" -H "$JS" --data-binary "{\"resourceLogs\":1}" "http://$A/v1/logs" &&
    code_is 400 &&
    req "http://$A/metrics" && code_is 200 &&
    req "http://$A/healthz" && code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 5
'

test_expect_success 'Idempotency-Keys under valgrind: retry, another body, in flight, pruned' '
    req -H "$TOK" -H "$ND" -H "Idempotency-Key: v-1" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 200 && cp body first &&
    req -H "$TOK" -H "$ND" -H "Idempotency-Key: v-1" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 200 && test_cmp first body &&
    req -H "$TOK" -H "$ND" -H "Idempotency-Key: v-1" --data-binary "{}" "http://$A/v1/events" &&
    code_is 422 &&
    test "$(rcli XLEN logs:stream)" = 7 || exit 1
    rcli CLIENT PAUSE 60000 WRITE >/dev/null
    { curl -sS -o f1.body -w "%{http_code}\n" -H "$TOK" -H "$ND" -H "Idempotency-Key: fly" --data-binary @in.ndjson "http://$A/v1/events" >f1.code; } &
    wait_for 30 "curl -s http://$A/metrics | grep -q \"^logpipe_http_requests_in_flight 1\""
    { curl -sS -o f2.body -w "%{http_code}\n" -H "$TOK" -H "$ND" -H "Idempotency-Key: fly" --data-binary @in.ndjson "http://$A/v1/events" >f2.code; } &
    wait_for 30 "curl -s http://$A/metrics | grep -q \"^logpipe_http_requests_in_flight 2\""
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 30 "test -s f1.code && test -s f2.code" &&
    test "$(cat f1.code)" = 200 && test "$(cat f2.code)" = 200 &&
    test_cmp f1.body f2.body &&
    test "$(rcli XLEN logs:stream)" = 9 &&
    wait_for 30 "test -z \"\$(redis-cli -p $REDIS_PORT HGET logs:stream:producers http:alice:v-1)\""
'

test_expect_success '429 from --rate, 503 from --max-backlog, under valgrind' '
    seq 1 41 | sed "s/.*/{\"n\":&}/" >e41 &&
    req -H "$TOK" -H "$ND" --data-binary @e41 "http://$A/v1/events" &&
    code_is 429 &&
    seq 1 30 | sed "s/.*/{\"n\":&}/" >e30 &&
    req -H "$TOK" -H "$ND" --data-binary @e30 "http://$A/v1/events" &&
    first=$(cat code) &&
    req -H "$TOK" -H "$ND" --data-binary @e30 "http://$A/v1/events" &&
    code_is 429 && test -n "$(hdr Retry-After)" &&
    if [ "$first" = 200 ]; then n=39; else n=9; fi &&
    test "$(rcli XLEN logs:stream)" = "$n" &&
    for i in $(seq 1 60); do rcli XADD logs:stream "*" data "{}" >/dev/null; done &&
    wait_for 20 "curl -s -o /dev/null -w %{http_code} -H \"$TOK\" -H \"$ND\" --data-binary {} http://$A/v1/events | grep -q 503" &&
    req -H "$TOK" -H "$ND" --data-binary "{}" "http://$A/v1/events" &&
    code_is 503 && grep_q backlog body &&
    rcli XGROUP SETID logs:stream logpipe "\$" >/dev/null &&
    wait_for 20 "curl -s -o /dev/null -w %{http_code} -H \"$TOK\" -H \"$ND\" --data-binary {} http://$A/v1/events | grep -q 200"
'

test_expect_success 'Redis gone, then back, under valgrind' '
    stop_redis KILL &&
    req -H "$BOB" -H "$ND" --data-binary "{}" "http://$A/v1/events" &&
    code_is 503 &&
    req -H "$BOB" -H "$ND" -H "Idempotency-Key: gone" --data-binary "{}" "http://$A/v1/events" &&
    code_is 503 &&
    req "http://$A/healthz" && code_is 503 &&
    restart_redis &&
    wait_for 60 "curl -s -o /dev/null -w %{http_code} http://$A/healthz | grep -q 200"
'

test_expect_success 'a client gone mid-body, a slowloris cut, under valgrind' '
    perl -MIO::Socket::INET -e "
        my \$s = IO::Socket::INET->new(PeerAddr => \"$A\") or die;
        print \$s \"POST /v1/events HTTP/1.1\r\nHost: x\r\n$TOK\r\n\" .
            \"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\";
        sleep 1;" &&
    perl "$TOP/tests/httpd-cli.pl" slow "$A" 60 >out &&
    grep_q "^closed after" out &&
    perl "$TOP/tests/httpd-cli.pl" chunked "$A" 60 >out &&
    grep_q "^closed after" out
'

test_expect_success 'SIGTERM with a request in hand: stored, answered, exit 0, valgrind finds nothing' '
    n=$(rcli XLEN logs:stream)
    rcli CLIENT PAUSE 60000 WRITE >/dev/null
    { curl -sS -o late.body -w "%{http_code}\n" -H "$BOB" -H "$ND" --data-binary "{\"late\":1}" "http://$A/v1/events" >late.code 2>&1; } &
    wait_for 30 "curl -s http://$A/metrics | grep -q \"^logpipe_http_requests_in_flight 1\""
    kill -TERM "$P"
    rcli CLIENT UNPAUSE >/dev/null
    wait_for 120 test -s vg.rc &&
    wait_for 10 test -s late.code &&
    test "$(cat late.code)" = 200 &&
    test "$(rcli XLEN logs:stream)" = $((n + 1)) &&
    echo 0 >want && test_cmp want vg.rc &&
    test -e http.vg && test ! -s http.vg
'

test_done
