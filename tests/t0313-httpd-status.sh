#!/bin/sh
# t0313-httpd-status.sh -- lp_httpd with curl: every status the library
# answers itself, the events handed over byte for byte, the answers' bodies
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

printf '%s\n' 'alice:0123456789abcdef0123' 'bob:fedcba9876543210fedc' >tokens
chmod 600 tokens
start_httpd plain --max-body 65536
P=$ADDR
start_httpd lib --max-body 65536 --library-answer
L=$ADDR
start_httpd tok --tokens tokens --client-field client
T=$ADDR
start_httpd refuse --begin-status 503 --retry-ms 2000
R=$ADDR
start_httpd limited --status 429 --retry-ms 500
Q=$ADDR

ND='Content-Type: application/x-ndjson'
JS='Content-Type: application/json'

printf '{"a":1}\n  {"_id":"1-1","b":"caf\303\251"}  \nnot json\n[{"c":1},2]\n\n{"d":[1,2]}\n' \
    >in.ndjson

test_expect_success 'NDJSON: 200, each event handed over as it is to be stored' '
    req -H "$ND" --data-binary @in.ndjson "http://$P/v1/events" &&
    code_is 200 &&
    printf "%s\n" "{\"accepted\":4,\"rejected\":2,\"bytes\":38,\"client\":null,\"idem\":null}" >want &&
    test_cmp want body &&
    cat >want <<-\EOF &&
	ok {"a":1}
	ok {"b":"caf\303\251"}
	bad line 3: invalid JSON: unexpected '"'"'o'"'"' at byte 2
	ok {"c":1}
	bad line 4: element 2: not a JSON object
	ok {"d":[1,2]}
	submit
	EOF
    printf "$(cat want)\n" >want2 &&
    test_cmp want2 plain.items
'

test_expect_success 'the library answer: lines, then indexes of an array' '
    req -H "$ND" --data-binary @in.ndjson "http://$L/v1/events" &&
    code_is 200 &&
    grep_q "^{\"accepted\":4,\"rejected\":2,\"errors\":\[{\"line\":3,\"error\":\"invalid JSON: unexpected '"'"'o'"'"' at byte 2\"},{\"line\":4,\"error\":\"element 2: not a JSON object\"}\]}$" body &&
    test "$(hdr Content-Type)" = application/json &&
    req -H "$JS" --data-binary "[{\"x\":1},\"s\",{\"y\":2}]" "http://$L/v1/events" &&
    code_is 200 &&
    echo "{\"accepted\":2,\"rejected\":1,\"errors\":[{\"index\":1,\"error\":\"not a JSON object\"}]}" >want &&
    { cat body; echo; } >got && test_cmp want got
'

test_expect_success 'gzip and deflate bodies' '
    : >plain.items &&
    gzip -c in.ndjson >in.gz &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.gz "http://$P/v1/events" &&
    code_is 200 && grep_q "\"accepted\":4,\"rejected\":2," body &&
    perl -MIO::Compress::Deflate=deflate -e "deflate \\*STDIN => \\*STDOUT or die" <in.ndjson >in.zz &&
    req -H "$ND" -H "Content-Encoding: deflate" --data-binary @in.zz "http://$P/v1/events" &&
    code_is 200 && grep_q "\"accepted\":4,\"rejected\":2," body &&
    test "$(grep -c "^ok " plain.items)" = 8
'

test_expect_success '400: a body that is not gzip, after it was read; nothing submitted' '
    : >plain.items &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.ndjson "http://$P/v1/events" &&
    code_is 400 &&
    grep_q "^{\"error\":\"bad gzip body" body &&
    echo abort >want && test_cmp want plain.items
'

test_expect_success '400: a JSON array that does not end' '
    req -H "$JS" --data-binary "[{\"a\":1},{\"b\":" "http://$L/v1/events" &&
    code_is 400
'

test_expect_success '401 without a valid token, WWW-Authenticate: Bearer; nothing read' '
    : >tok.items &&
    req -H "$ND" --data-binary @in.ndjson "http://$T/v1/events" &&
    code_is 401 && test "$(hdr WWW-Authenticate)" = Bearer &&
    req -H "$ND" -H "Authorization: Bearer nope-nope-nope-nope" --data-binary @in.ndjson "http://$T/v1/events" &&
    code_is 401 &&
    req -H "$ND" -H "Authorization: Basic YWxpY2U6eA==" --data-binary @in.ndjson "http://$T/v1/events" &&
    code_is 401 &&
    test ! -s tok.items
'

test_expect_success 'a valid token: its name is the client, added to each event' '
    req -H "$ND" -H "Authorization: Bearer fedcba9876543210fedc" --data-binary "{\"a\":1}" "http://$T/v1/events" &&
    code_is 200 && grep_q "\"client\":\"bob\"" body &&
    printf "%s\n" "ok {\"a\":1,\"client\":\"bob\"}" submit >want &&
    test_cmp want tok.items
'

test_expect_success '404 for another path, 405 with Allow for another method' '
    req "http://$P/v2/events" && code_is 404 &&
    req "http://$P/v1/events" && code_is 405 && test "$(hdr Allow)" = POST &&
    req -X PUT --data-binary x "http://$P/v1/logs" && code_is 405 &&
    req -X DELETE "http://$P/metrics" && code_is 405 &&
    test "$(hdr Allow)" = "GET, HEAD"
'

test_expect_success '413 from Content-Length, before the body is read' '
    : >plain.items &&
    head -c 70000 /dev/zero | tr "\0" " " >big &&
    req -H "$ND" --data-binary @big "http://$P/v1/events" &&
    code_is 413 && grep_q "over --max-body (65536 bytes)" body &&
    test ! -s plain.items
'

test_expect_success '413 while reading a chunked body over --max-body' '
    : >plain.items &&
    awk "BEGIN { for (i = 0; i < 8000; i++) printf \"{\\\"seq\\\":%d}\\n\", i }" >many &&
    test "$(wc -c <many)" -gt 65536 &&
    req -H "$ND" -H "Transfer-Encoding: chunked" --data-binary @many "http://$P/v1/events" &&
    code_is 413 &&
    test "$(tail -n 1 plain.items)" = abort
'

test_expect_success '413 for a gzip bomb: bounded after decoding' '
    : >plain.items &&
    head -c 20000000 /dev/zero | gzip -c >bomb.gz &&
    test "$(wc -c <bomb.gz)" -lt 65536 &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @bomb.gz "http://$P/v1/events" &&
    code_is 413 && grep_q "once decoded" body &&
    test "$(tail -n 1 plain.items)" = abort &&
    alive
'

test_expect_success '415 for another type or encoding; /v1/logs takes JSON only' '
    req -H "Content-Type: text/plain" --data-binary x "http://$P/v1/events" &&
    code_is 415 && grep_q "unsupported Content-Type" body &&
    req -H "$ND" -H "Content-Encoding: br" --data-binary x "http://$P/v1/events" &&
    code_is 415 &&
    req -H "$ND" --data-binary x "http://$P/v1/logs" && code_is 415 &&
    grep_q "\"code\":3" body
'

cat >otlp.json <<'EOF'
{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","severityText":"INFO","body":{"stringValue":"hi"}},{"timeUnixNano":"x"}]}]}]}
EOF

test_expect_success 'POST /v1/logs: OTLP records handed over, partial success' '
    : >lib.items &&
    req -H "$JS" --data-binary @otlp.json "http://$L/v1/logs" &&
    code_is 200 &&
    grep_q "^{\"partialSuccess\":{\"rejectedLogRecords\":\"1\"" body &&
    grep_q "^ok {\"timestamp\":\"2023-11-14T22:13:20.000000000Z\",\"level\":\"INFO\",\"message\":\"hi\",\"service\":\"api\"}$" lib.items &&
    grep_q "^bad resourceLogs\[0\].scopeLogs\[0\].logRecords\[1\]: " lib.items &&
    req -H "$JS" --data-binary "{\"resourceLogs\":7}" "http://$L/v1/logs" &&
    code_is 400 && grep_q "^{\"code\":3," body
'

test_expect_success 'Idempotency-Key handed to submit; a bad one is 400' '
    req -H "$ND" -H "Idempotency-Key: order-42" --data-binary "{}" "http://$P/v1/events" &&
    code_is 200 && grep_q "\"idem\":\"order-42\"" body &&
    k=$(head -c 129 /dev/zero | tr "\0" k) &&
    req -H "$ND" -H "Idempotency-Key: $k" --data-binary "{}" "http://$P/v1/events" &&
    code_is 400 && grep_q Idempotency-Key body
'

test_expect_success 'begin refuses: 503 with Retry-After, the body not read' '
    req -H "$ND" --data-binary @in.ndjson "http://$R/v1/events" &&
    code_is 503 && test "$(hdr Retry-After)" = 2 &&
    grep_q "refused at begin" body && test ! -s refuse.items
'

test_expect_success 'the owner answers 429 with Retry-After (ms rounded up to seconds)' '
    req -H "$ND" --data-binary "{}" "http://$Q/v1/events" &&
    code_is 429 && test "$(hdr Retry-After)" = 1 &&
    echo "{\"error\":\"test status\"}" >want && { cat body; echo; } >got &&
    test_cmp want got &&
    req -H "$ND" --data-binary "{}" "http://$Q/v1/logs" && code_is 415 &&
    req -H "$JS" --data-binary "{\"resourceLogs\":[]}" "http://$Q/v1/logs" &&
    code_is 429 && grep_q "^{\"code\":8," body
'

test_expect_success 'GET /metrics: the owner'"'"'s series and the library'"'"'s' '
    req "http://$P/metrics" && code_is 200 &&
    grep_q "^logpipe_http_test 1$" body &&
    grep_q "^logpipe_http_requests_total{code=\"413\"} 3$" body &&
    grep_q "^logpipe_http_request_duration_seconds_count [1-9]" body &&
    awk -f "$TOP/tests/promcheck.awk" body
'

test_done
