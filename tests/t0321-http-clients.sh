#!/bin/sh
# t0321-http-clients.sh -- logpipe-http's clients: --tokens (401, the name
# as --client-field and rate key, SIGHUP reloads, a bad file keeps the old
# tokens), --rate per client and per --rate-key, whole requests or none
# (429 with Retry-After, none past --burst), --shared-rate; the exit
# statuses of a bad start
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
ND='Content-Type: application/x-ndjson'
printf '%s\n' 'alice:0123456789abcdef0123' 'bob:fedcba9876543210fedc' >tokens
chmod 600 tokens
A='Authorization: Bearer 0123456789abcdef0123'
B='Authorization: Bearer fedcba9876543210fedc'
start_http t --tokens tokens --client-field client --rate 5/h --burst 5 -v
T=$ADDR

events() {
    i=0
    while [ $i -lt "$1" ]; do
        printf '{"n":%d,"app":"%s","client":"forged"}\n' $i "${2:-x}"
        i=$((i + 1))
    done
}

test_expect_success 'no token, a wrong one: 401, nothing stored' '
    events 1 >e1 &&
    req -H "$ND" --data-binary @e1 "http://$T/v1/events" &&
    code_is 401 &&
    test -n "$(hdr WWW-Authenticate)" &&
    req -H "$ND" -H "Authorization: Bearer nope-nope-nope-nope" --data-binary @e1 "http://$T/v1/events" &&
    code_is 401 &&
    test "$(rcli EXISTS logs:stream)" = 0
'

test_expect_success 'a token: stored with the client name added last' '
    req -H "$ND" -H "$A" --data-binary @e1 "http://$T/v1/events" &&
    code_is 200 &&
    stream_data >got &&
    echo "{\"n\":0,\"app\":\"x\",\"client\":\"forged\",\"client\":\"alice\"}" >want &&
    test_cmp want got
'

test_expect_success '--rate per client: whole requests or none, 429 with Retry-After' '
    events 4 >e4 &&
    req -H "$ND" -H "$A" --data-binary @e4 "http://$T/v1/events" &&
    code_is 200 &&
    req -H "$ND" -H "$A" --data-binary @e1 "http://$T/v1/events" &&
    code_is 429 &&
    test "$(hdr Retry-After)" -ge 1 &&
    req -H "$ND" -H "$B" --data-binary @e4 "http://$T/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 9
'

test_expect_success 'more events than --burst: 429 without Retry-After' '
    events 6 >e6 &&
    req -H "$ND" -H "$B" --data-binary @e6 "http://$T/v1/events" &&
    code_is 429 &&
    test -z "$(hdr Retry-After)" &&
    grep_q "burst" body &&
    test "$(rcli XLEN logs:stream)" = 9
'

test_expect_success 'SIGHUP reads --tokens again; a bad file keeps the old ones' '
    printf "%s\n" "carol:00000000000000000000cccc" >tokens &&
    kill -HUP $(cat t.pid) &&
    wait_for 20 grep -q "SIGHUP: 1 tokens" t.err &&
    req -H "$ND" -H "$A" --data-binary @e1 "http://$T/v1/events" &&
    code_is 401 &&
    req -H "$ND" -H "Authorization: Bearer 00000000000000000000cccc" --data-binary @e1 "http://$T/v1/events" &&
    code_is 200 &&
    echo "carol has no colon" >tokens &&
    kill -HUP $(cat t.pid) &&
    wait_for 20 grep -q "tokens loaded before stay" t.err &&
    req -H "$ND" -H "Authorization: Bearer 00000000000000000000cccc" --data-binary @e1 "http://$T/v1/events" &&
    code_is 200
'

start_http k --rate 3/h --burst 3 --rate-key .app
K=$ADDR

test_expect_success '--rate-key: each key of a request must have its tokens' '
    rcli DEL logs:stream >/dev/null &&
    { events 2 a; events 2 b; } >ab &&
    req -H "$ND" --data-binary @ab "http://$K/v1/events" &&
    code_is 200 &&
    { events 1 a; events 2 b; } >ab2 &&
    req -H "$ND" --data-binary @ab2 "http://$K/v1/events" &&
    code_is 429 &&
    events 1 a >a1 &&
    req -H "$ND" --data-binary @a1 "http://$K/v1/events" &&
    code_is 200 &&
    events 3 c >c3 &&
    req -H "$ND" --data-binary @c3 "http://$K/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 8
'

start_http s1 --rate 4/h --burst 4 --shared-rate
S1=$ADDR
start_http s2 --rate 4/h --burst 4 --shared-rate
S2=$ADDR

test_expect_success '--shared-rate: two instances share one limit' '
    rcli DEL logs:stream >/dev/null &&
    events 3 >e3 &&
    req -H "$ND" --data-binary @e3 "http://$S1/v1/events" && code_is 200 &&
    req -H "$ND" --data-binary @e3 "http://$S2/v1/events" && code_is 429 &&
    test "$(hdr Retry-After)" -ge 1 &&
    req -H "$ND" --data-binary @e1 "http://$S2/v1/events" && code_is 200 &&
    req -H "$ND" --data-binary @e1 "http://$S1/v1/events" && code_is 429 &&
    test "$(rcli XLEN logs:stream)" = 4
'

test_expect_success 'exit statuses: 64 usage, 66 no --tokens file, 78 a bad one, 69 a port taken' '
    expect_exit 64 logpipe-http --bogus 2>err &&
    expect_exit 64 logpipe-http --client-field c 2>err &&
    grep_q "needs --tokens" err &&
    expect_exit 64 logpipe-http --tls-cert x 2>err &&
    expect_exit 64 logpipe-http stray 2>err &&
    expect_exit 66 logpipe-http --tokens nonexistent 2>err &&
    echo "bad line" >badtokens && chmod 600 badtokens &&
    expect_exit 78 logpipe-http --tokens badtokens 2>err &&
    grep_q "line 1" err &&
    expect_exit 69 logpipe-http --listen "$T" 2>err &&
    grep_q "$T" err
'

test_done
