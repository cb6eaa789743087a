#!/bin/sh
# t0332-http-parked.sh -- faults review r16 found (issue 16), fixed
# since (the tests of them failed before): acf803d's
# parking, a request that finds every batch of the ring in flight waits
# whole for a slot. Redis is held by CLIENT PAUSE WRITE so that the ring
# fills, then SIGKILLed, or unpaused, or logpipe-http gets SIGTERM twice.
# Tests 1-5 pass (no WAL: 503 and nothing stored; WAL: 200 and stored
# once, also with keys, whose retries are 200; FIFO; a parked key's retry
# waits for it).
# The fault: a second SIGTERM with requests parked does not "exit now"
# (logpipe-http(1) SIGNALS): lp_send.c finish() runs unpark(s, 1), which
# pumps for a slot of the ring, waiting on the paused Redis, then waits
# for the batches in flight; it exits 20 s later here (the Redis timeout
# of the default --timeout, 10 s, twice) with every request 503.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'

# fill NAME ADDR N [KEYPREFIX]: N requests {"p":I} in the background, one
# after the other in hand (the in-flight gauge says so), codes to NAME.codes
fill() {
    : >"$1.codes"
    _i=1
    while [ $_i -le "$3" ]; do
        printf "{\"p\":%d}\n" $_i >"$1.b$_i"
        if [ -n "${4:-}" ]; then
            set -- "$1" "$2" "$3" "$4" -H "Idempotency-Key: $4-$_i"
        else
            set -- "$1" "$2" "$3" "" -H "X-No: key"
        fi
        { curl -sS -m 60 -o /dev/null -w "%{http_code}\n" -H "$ND" "$5" "$6" --data-binary @"$1.b$_i" "http://$2/v1/events" >>"$1.codes"; } &
        wait_for 10 "curl -s http://$2/metrics | grep -q \"^logpipe_http_requests_in_flight $_i\"" || return 1
        set -- "$1" "$2" "$3" "$4"
        _i=$((_i + 1))
    done
}

test_expect_success 'no WAL: requests parked, Redis SIGKILLed: each 503, nothing stored' '
    start_http nw &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null &&
    fill nw "$ADDR" 7 &&
    test "$(curl -s http://$ADDR/metrics | sed -n "s/^logpipe_http_batches_in_flight //p")" = 3 &&
    stop_redis KILL &&
    wait_for 30 "test \$(wc -l <nw.codes) = 7" &&
    test "$(sort -u nw.codes)" = 503 &&
    restart_redis &&
    test "$(rcli XLEN logs:stream)" = 0 &&
    stop_http nw
'

test_expect_success 'WAL: requests parked, Redis SIGKILLed: each 200, stored once' '
    start_http wl --wal wal &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null &&
    fill wl "$ADDR" 7 &&
    stop_redis KILL &&
    wait_for 30 "test \$(wc -l <wl.codes) = 7" &&
    test "$(sort -u wl.codes)" = 200 &&
    restart_redis &&
    wait_for 30 "test \$(rcli XLEN logs:stream) -ge 7" &&
    sleep 1 &&
    stream_data | sort >got &&
    cat wl.b1 wl.b2 wl.b3 wl.b4 wl.b5 wl.b6 wl.b7 | sort >want &&
    test_cmp want got &&
    stop_http wl
'

test_expect_success 'WAL, keyed: parked, Redis SIGKILLed: each 200, stored once, retries the same' '
    start_http wk --wal walk &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null &&
    fill wk "$ADDR" 6 wk &&
    stop_redis KILL &&
    wait_for 30 "test \$(wc -l <wk.codes) = 6" &&
    test "$(sort -u wk.codes)" = 200 &&
    restart_redis &&
    wait_for 30 "test \$(rcli XLEN logs:stream) -ge 6" &&
    sleep 1 &&
    stop_http wk KILL &&
    start_http wk2 --wal walk &&
    for i in 1 2 3 4 5 6; do
        req -H "$ND" -H "Idempotency-Key: wk-$i" --data-binary @wk.b$i "http://$ADDR/v1/events" &&
        code_is 200 || return 1
    done &&
    stream_data | sort >got &&
    cat wk.b1 wk.b2 wk.b3 wk.b4 wk.b5 wk.b6 | sort >want &&
    test_cmp want got &&
    stop_http wk2
'

test_expect_success 'parked requests are stored in the order they came (FIFO)' '
    start_http ff &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null &&
    fill ff "$ADDR" 8 &&
    rcli CLIENT UNPAUSE >/dev/null &&
    wait_for 30 "test \$(wc -l <ff.codes) = 8" &&
    test "$(sort -u ff.codes)" = 200 &&
    stream_data >got &&
    cat ff.b1 ff.b2 ff.b3 ff.b4 ff.b5 ff.b6 ff.b7 ff.b8 >want &&
    test_cmp want got &&
    stop_http ff
'

test_expect_success 'keyed: parked, a retry of the same key waits for it: one copy' '
    start_http kk &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 20000 WRITE >/dev/null &&
    fill kk "$ADDR" 5 kk || return 1
    { curl -sS -m 60 -o kk.retry.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: kk-5" --data-binary @kk.b5 "http://$ADDR/v1/events" >kk.retry; } &
    wait_for 10 "curl -s http://$ADDR/metrics | grep -q \"^logpipe_http_requests_in_flight 6\"" &&
    rcli CLIENT UNPAUSE >/dev/null &&
    wait_for 30 "test \$(wc -l <kk.codes) = 5 && test -s kk.retry" &&
    test "$(sort -u kk.codes kk.retry)" = 200 &&
    test "$(rcli XLEN logs:stream)" = 5 &&
    stop_http kk
'

test_expect_success 'a second SIGTERM with requests parked: exits before Redis answers, 503' '
    start_http st &&
    rcli DEL logs:stream >/dev/null &&
    rcli CLIENT PAUSE 30000 WRITE >/dev/null &&
    fill st "$ADDR" 7 &&
    kill -TERM "$(cat st.pid)" &&
    sleep 0.3 &&
    t0=$(date +%s) &&
    kill -TERM "$(cat st.pid)" &&
    wait_for 60 test -s st.rc &&
    wait_for 5 "test \$(wc -l <st.codes) = 7" &&
    echo "# exited after $(($(date +%s) - t0)) s; answers: $(sort st.codes | uniq -c | tr -s " \n" " ")" >&2 &&
    test $(($(date +%s) - t0)) -lt 10 &&
    test "$(cat st.rc)" = 0 &&
    wait_for 5 "test \$(wc -l <st.codes) = 7" &&
    test "$(sort -u st.codes)" = 503
'
rcli CLIENT UNPAUSE >/dev/null 2>&1 || :

test_done
