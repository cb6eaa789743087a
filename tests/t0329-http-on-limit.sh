#!/bin/sh
# t0329-http-on-limit.sh -- logpipe-http --on-limit: block (the default: a
# request over --rate refused whole, 429), reject (each event takes its
# own token; those over the limit are rejected in the 200 answer, the rest
# stored), dlq (those moved to the dead letter stream as rate-limited);
# per client, per --rate-key, and on /v1/logs (OTLP's partial success)
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
ND='Content-Type: application/x-ndjson'
JS='Content-Type: application/json'
printf '%s\n' 'alice:0123456789abcdef0123' 'bob:fedcba9876543210fedc' >tokens
chmod 600 tokens
A='Authorization: Bearer 0123456789abcdef0123'
B='Authorization: Bearer fedcba9876543210fedc'

events() {
    i=0
    while [ $i -lt "$1" ]; do
        printf '{"n":%d,"app":"%s"}\n' $i "${2:-x}"
        i=$((i + 1))
    done
}
events 8 >e8
events 2 >e2

start_http blk --rate 5/h --burst 5
BLK=$ADDR
start_http rej --tokens tokens --rate 5/h --burst 5 --on-limit reject
REJ=$ADDR
start_http dlq --rate 3/h --burst 3 --rate-key .app --on-limit dlq -s dstream --dlq ddlq
DLQ=$ADDR

test_expect_success 'block (the default): a request over the limit is 429, nothing of it stored' '
    rcli DEL logs:stream >/dev/null &&
    req -H "$ND" --data-binary @e2 "http://$BLK/v1/events" && code_is 200 &&
    req -H "$ND" --data-binary @e2 "http://$BLK/v1/events" && code_is 200 &&
    req -H "$ND" --data-binary @e2 "http://$BLK/v1/events" &&
    code_is 429 && test -n "$(hdr Retry-After)" &&
    test "$(rcli XLEN logs:stream)" = 4 &&
    rcli DEL logs:stream >/dev/null
'

test_expect_success 'reject: the events within the limit stored, the rest rejected in the answer' '
    req -H "$A" -H "$ND" --data-binary @e8 "http://$REJ/v1/events" &&
    code_is 200 &&
    grep_q "\"accepted\":5,\"rejected\":3" body &&
    test "$(grep -o "over --rate for key" body | wc -l)" = 3 &&
    grep_q "\"line\":6," body && grep_q "\"line\":8," body &&
    ! grep_q "\"line\":5," body &&
    stream_data >got &&
    head -n 5 e8 >want && test_cmp want got
'

test_expect_success 'reject: per client, the next request of the same client all rejected, of another stored' '
    req -H "$A" -H "$ND" --data-binary @e2 "http://$REJ/v1/events" &&
    code_is 200 && grep_q "\"accepted\":0,\"rejected\":2" body &&
    grep_q "over --rate for key \\\\\"alice\\\\\"" body &&
    req -H "$B" -H "$ND" --data-binary @e2 "http://$REJ/v1/events" &&
    code_is 200 && grep_q "\"accepted\":2,\"rejected\":0" body &&
    test "$(rcli XLEN logs:stream)" = 7
'

test_expect_success 'reject on /v1/logs: the records over the limit in the partial success' '
    printf "%s" "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"a\"}},{\"body\":{\"stringValue\":\"b\"}},{\"body\":{\"stringValue\":\"c\"}},{\"body\":{\"stringValue\":\"d\"}}]}]}]}" >otlp4 &&
    req -H "$B" -H "$JS" --data-binary @otlp4 "http://$REJ/v1/logs" &&
    code_is 200 &&
    grep_q "\"rejectedLogRecords\":\"1\"" body &&
    grep_q "over --rate" body &&
    test "$(rcli XLEN logs:stream)" = 10
'

test_expect_success 'dlq: per --rate-key key, the events over it in the dead letter stream' '
    { events 5 web; events 2 api; } >mixed &&
    req -H "$ND" --data-binary @mixed "http://$DLQ/v1/events" &&
    code_is 200 &&
    grep_q "\"accepted\":5,\"rejected\":2" body &&
    grep_q "over --rate for key \\\\\"web\\\\\"" body &&
    test "$(rcli XLEN dstream)" = 5 &&
    test "$(rcli XLEN ddlq)" = 2 &&
    rcli --raw XRANGE ddlq - + >dl &&
    test "$(grep -c "^rate-limited$" dl)" = 2 &&
    grep_q "^{\"n\":3,\"app\":\"web\"}$" dl &&
    grep_q "^{\"n\":4,\"app\":\"web\"}$" dl
'

test_expect_success 'dlq: a key answered again is not moved again' '
    req -H "$ND" -H "Idempotency-Key: d-1" --data-binary @e2 "http://$DLQ/v1/events" &&
    code_is 200 && cp body d1 &&
    req -H "$ND" -H "Idempotency-Key: d-1" --data-binary @e2 "http://$DLQ/v1/events" &&
    code_is 200 && test_cmp d1 body &&
    test "$(rcli XLEN ddlq)" = 2 &&
    test "$(rcli XLEN dstream)" = 7
'

test_expect_success '--on-limit without --rate, or a bad word: 64' '
    expect_exit 64 logpipe-http --on-limit reject &&
    expect_exit 64 logpipe-http --rate 5/s --on-limit wait
'

test_done
