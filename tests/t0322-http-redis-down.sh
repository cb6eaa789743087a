#!/bin/sh
# t0322-http-redis-down.sh -- logpipe-http when Redis fails: without a WAL,
# 503 with Retry-After at once (and /healthz 503), 200 again once Redis is
# back; with --wal, requests are synced into the WAL, answered 200, and
# reach the stream once Redis is back; Redis SIGKILLed under load with
# --wal: every event of a 200 answer is in the stream at the end, once;
# --max-backlog answers 503 while the group lags
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
start_http n
N=$ADDR
start_http w --wal "$TMP/wal"
W=$ADDR

test_expect_success 'Redis up: 200, /healthz 200' '
    echo "{\"a\":1}" >e1 &&
    req -H "$ND" --data-binary @e1 "http://$N/v1/events" && code_is 200 &&
    req "http://$N/healthz" && code_is 200
'

test_expect_success 'Redis down, no WAL: 503 with Retry-After; /healthz 503' '
    stop_redis KILL &&
    req -H "$ND" --data-binary @e1 "http://$N/v1/events" && code_is 503 &&
    test "$(hdr Retry-After)" -ge 1 &&
    req -H "$ND" --data-binary @e1 "http://$N/v1/events" && code_is 503 &&
    req "http://$N/healthz" && code_is 503
'

test_expect_success 'Redis down, --wal: 200, the events in the WAL; /healthz 200' '
    printf "{\"w\":%d}\n" 1 2 3 >w3 &&
    req -H "$ND" --data-binary @w3 "http://$W/v1/events" && code_is 200 &&
    grep_q "\"accepted\":3" body &&
    req "http://$W/healthz" && code_is 200 &&
    req "http://$W/metrics" && grep_q "^logpipe_http_wal_mode 1$" body
'

test_expect_success 'Redis back: the WAL reaches the stream; the door without a WAL answers 200 again' '
    restart_redis &&
    wait_for 30 "test \$(redis-cli -p $REDIS_PORT XLEN logs:stream) = 4" &&
    stream_data >got &&
    printf "%s\n" "{\"a\":1}" "{\"w\":1}" "{\"w\":2}" "{\"w\":3}" >want &&
    test_cmp want got &&
    wait_for 30 "curl -s -o /dev/null -w %{http_code} -H \"$ND\" --data-binary @e1 http://$N/v1/events | grep -q 200" &&
    test "$(rcli XLEN logs:stream)" = 5
'

# load: requests of 50 events each, numbered; the answer of each kept
load() {
    r=0
    while [ $r -lt "$1" ]; do
        awk -v r=$r "BEGIN { for (i = 0; i < 50; i++) printf \"{\\\"r\\\":%d,\\\"i\\\":%d}\\n\", r, i }" >"load.$r"
        curl -sS -m 30 -o /dev/null -w "%{http_code} $r\n" -H "$ND" \
            --data-binary @"load.$r" "http://$W/v1/events" >>answers 2>/dev/null ||
            echo "000 $r" >>answers
        r=$((r + 1))
    done
}

test_expect_success 'Redis SIGKILLed under load, --wal: every 200 answered is stored, once' '
    rcli DEL logs:stream >/dev/null
    : >answers
    load 200 &
    lp=$!

    wait_for 60 "test \$(wc -l <answers) -ge 40" &&
    stop_redis KILL &&
    wait_for 60 "test \$(wc -l <answers) -ge 80" &&
    restart_redis &&
    wait "$lp" &&
    test "$(grep -c "^200 " answers)" = 200 &&
    wait_for 60 "test \$(redis-cli -p $REDIS_PORT XLEN logs:stream) -ge 10000" &&
    stream_data >got &&
    test "$(sort got | uniq -d | wc -l)" = 0 &&
    test "$(wc -l <got)" = 10000
'

test_expect_success '--max-backlog: 503 while the group lags past N' '
    stop_http n &&
    rcli DEL logs:stream >/dev/null &&
    rcli XGROUP CREATE logs:stream logpipe \$ MKSTREAM >/dev/null &&
    start_http b --max-backlog 3 &&
    printf "{\"b\":%d}\n" 1 2 3 4 >b4 &&
    req -H "$ND" --data-binary @b4 "http://$ADDR/v1/events" && code_is 200 &&
    wait_for 20 "curl -s -o /dev/null -w %{http_code} -H \"$ND\" --data-binary @e1 http://$ADDR/v1/events | grep -q 503" &&
    req -H "$ND" --data-binary @e1 "http://$ADDR/v1/events" && code_is 503 &&
    test "$(hdr Retry-After)" = 1 &&
    grep_q "backlog" body &&
    n=$(rcli XLEN logs:stream) &&
    req -H "$ND" --data-binary @b4 "http://$ADDR/v1/events" && code_is 503 &&
    test "$(rcli XLEN logs:stream)" = "$n" &&
    rcli XREADGROUP GROUP logpipe c COUNT 100 STREAMS logs:stream ">" >/dev/null &&
    rcli XACK logs:stream logpipe $(rcli XRANGE logs:stream - + | awk "NR % 3 == 1") >/dev/null &&
    wait_for 20 "curl -s -o /dev/null -w %{http_code} -H \"$ND\" --data-binary @e1 http://$ADDR/v1/events | grep -q 200"
'

test_done
