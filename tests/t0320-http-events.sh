#!/bin/sh
# t0320-http-events.sh -- logpipe-http with curl against a real Redis: the
# stream holds exactly the accepted events, byte for byte as send stores
# them; NDJSON, arrays, one object, gzip, deflate, OTLP; the statuses that
# store nothing; /healthz, /metrics; SIGTERM ends it with 0
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
start_http h --max-body 65536 --dlq logs:dlq
H=$ADDR

ND='Content-Type: application/x-ndjson'
JS='Content-Type: application/json'

printf '{"a":1}\n  {"_id":"1-1","b":"caf\303\251"}  \nnot json\n[{"c":1},2]\n\n{"d":[1,2]}\n' \
    >in.ndjson

test_expect_success 'NDJSON: 200 once stored; the stream holds what send stores' '
    req -H "$ND" --data-binary @in.ndjson "http://$H/v1/events" &&
    code_is 200 &&
    grep_q "^{\"accepted\":4,\"rejected\":2,\"errors\":\[{\"line\":3,\"error\":\"invalid JSON: unexpected '"'"'o'"'"' at byte 2\"},{\"line\":4,\"error\":\"element 2: not a JSON object\"}\]}$" body &&
    stream_data >got &&
    expect_exit 65 logpipe-send -s sent <in.ndjson 2>/dev/null &&
    stream_data sent >want &&
    test_cmp want got &&
    test "$(wc -l <got)" = 4
'

test_expect_success 'a JSON array: errors by index; one object' '
    rcli DEL logs:stream >/dev/null &&
    req -H "$JS" --data-binary "[{\"x\":1},\"s\",{\"y\":2}]" "http://$H/v1/events" &&
    code_is 200 &&
    echo "{\"accepted\":2,\"rejected\":1,\"errors\":[{\"index\":1,\"error\":\"not a JSON object\"}]}" >want &&
    { cat body; echo; } >got && test_cmp want got &&
    req -H "$JS" --data-binary "{\"z\":3}" "http://$H/v1/events" &&
    code_is 200 &&
    printf "%s\n" "{\"x\":1}" "{\"y\":2}" "{\"z\":3}" >want &&
    stream_data >got && test_cmp want got
'

test_expect_success 'gzip and deflate bodies store the same events' '
    rcli DEL logs:stream >/dev/null &&
    gzip -c in.ndjson >in.gz &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.gz "http://$H/v1/events" &&
    code_is 200 && grep_q "\"accepted\":4,\"rejected\":2," body &&
    perl -MIO::Compress::Deflate=deflate -e "deflate \\*STDIN => \\*STDOUT or die" <in.ndjson >in.zz &&
    req -H "$ND" -H "Content-Encoding: deflate" --data-binary @in.zz "http://$H/v1/events" &&
    code_is 200 &&
    { stream_data sent; stream_data sent; } >want &&
    stream_data >got && test_cmp want got
'

test_expect_success 'refused requests store nothing: 400 415 413 404 405' '
    rcli DEL logs:stream >/dev/null &&
    printf "not gzip at all" >bad.gz &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @bad.gz "http://$H/v1/events" &&
    code_is 400 && grep_q "gzip" body &&
    head -c 1000 in.gz >cut.gz &&
    req -H "$JS" --data-binary "[{\"a\":1},{\"b\":" "http://$H/v1/events" &&
    code_is 400 &&
    req -H "Content-Type: text/plain" --data-binary @in.ndjson "http://$H/v1/events" &&
    code_is 415 &&
    req -H "$ND" -H "Content-Encoding: br" --data-binary @in.ndjson "http://$H/v1/events" &&
    code_is 415 &&
    awk "BEGIN { for (i = 0; i < 5000; i++) print \"{\\\"i\\\":\" i \",\\\"pad\\\":\\\"xxxxxxxxxxxxxxxx\\\"}\" }" >big.ndjson &&
    req -H "$ND" --data-binary @big.ndjson "http://$H/v1/events" &&
    code_is 413 &&
    gzip -c big.ndjson >big.gz && test "$(wc -c <big.gz)" -lt 65536 &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @big.gz "http://$H/v1/events" &&
    code_is 413 && grep_q "decoded" body &&
    req "http://$H/v1/nothing" && code_is 404 &&
    req -X PUT -H "$ND" --data-binary @in.ndjson "http://$H/v1/events" &&
    code_is 405 &&
    test "$(rcli EXISTS logs:stream)" = 0
'

NOW=$(date +%s)
cat >otlp.json <<EOF
{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
 "scopeLogs":[{"logRecords":[
  {"timeUnixNano":"${NOW}123456789","severityText":"ERROR","body":{"stringValue":"card declined"},
   "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
   "attributes":[{"key":"user","value":{"intValue":"42"}}]},
  {"timeUnixNano":"nope","body":{"stringValue":"bad"}}]}]}]}
EOF

test_expect_success 'OTLP/HTTP JSON: one event a record, partial success' '
    rcli DEL logs:stream >/dev/null &&
    req -H "$JS" --data-binary @otlp.json "http://$H/v1/logs" &&
    code_is 200 &&
    grep_q "\"partialSuccess\":{\"rejectedLogRecords\":\"1\"" body &&
    stream_data >got &&
    test "$(wc -l <got)" = 1 &&
    grep_q "\"level\":\"ERROR\"" got &&
    grep_q "\"message\":\"card declined\"" got &&
    grep_q "\"service\":\"checkout\"" got &&
    grep_q "\"trace_id\":\"5b8efff798038103d269b633813fc60c\"" got &&
    grep_q "\"user\":42" got
'

test_expect_success '--rejects-to-dlq: the rejected lines are dead letters' '
    stop_http h && test "$(cat h.rc)" = 0 &&
    start_http d --rejects-to-dlq -v &&
    rcli DEL logs:stream logs:dlq >/dev/null &&
    req -H "$ND" --data-binary @in.ndjson "http://$ADDR/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 4 &&
    test "$(rcli XLEN logs:dlq)" = 2 &&
    rcli --raw XRANGE logs:dlq - + >dlq &&
    grep_q "^not json$" dlq && grep_q "^invalid-json$" dlq &&
    grep_q "^http$" dlq
'

test_expect_success '/healthz and /metrics' '
    ADDR=$(head -n 1 d.addr) &&
    req "http://$ADDR/healthz" && code_is 200 &&
    req "http://$ADDR/metrics" && code_is 200 &&
    awk -f "$TOP/tests/promcheck.awk" body &&
    grep_q "^logpipe_http_redis_up 1$" body &&
    grep_q "^logpipe_http_events_stored_total 4$" body
'

test_expect_success 'SIGTERM: exit 0, said; the port is closed' '
    ADDR=$(head -n 1 d.addr) &&
    stop_http d && test "$(cat d.rc)" = 0 &&
    grep_q "SIGTERM" d.err &&
    ! curl -sS -m 5 "http://$ADDR/healthz" 2>/dev/null
'

test_done
