#!/bin/sh
# t0323-http-stop-tls.sh -- logpipe-http's SIGTERM answers the request in
# hand after storing it (and takes no new connection meanwhile), then exits
# 0; a second SIGTERM ends it at once; a gzip bomb ends as 413 and the
# server goes on; HTTPS with --tls-cert/--tls-key (a CA made here); systemd
# socket activation (systemd-socket-activate)
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
ND='Content-Type: application/x-ndjson'
start_http s -v --max-body 1M
S=$ADDR

test_expect_success 'SIGTERM with a request in hand: it is stored and answered, then exit 0' '
    mkfifo body.fifo
    { curl -sS -o slow.body -w "%{http_code}\n" -X POST -H "$ND" -T body.fifo \
          "http://$S/v1/events" >slow.code 2>slow.err; echo done >slow.done; } &
    exec 3>body.fifo

    printf "{\"half\":1}\n" >&3 &&
    wait_for 20 "curl -s http://$S/metrics | grep -q \"^logpipe_http_requests_in_flight 1\"" &&
    kill -TERM $(cat s.pid) &&
    wait_for 20 grep -q "SIGTERM: answering the 1 requests in hand" s.err &&
    ! curl -sS -m 5 "http://$S/healthz" 2>/dev/null &&
    printf "{\"half\":2}\n" >&3 &&
    exec 3>&- &&
    wait_for 30 test -s slow.done &&
    test "$(cat slow.code)" = 200 &&
    grep_q "\"accepted\":2" slow.body &&
    wait_for 30 test -s s.rc &&
    test "$(cat s.rc)" = 0 &&
    test "$(rcli XLEN logs:stream)" = 2
'

test_expect_success 'a second SIGTERM ends it at once' '
    start_http t -v
    rm -f body.fifo
    mkfifo body.fifo
    curl -sS -o /dev/null -X POST -H "$ND" -T body.fifo \
          "http://$ADDR/v1/events" 2>/dev/null &
    cpid=$!
    exec 3>body.fifo

    printf "{\"x\":1}\n" >&3 &&
    wait_for 20 "curl -s http://$ADDR/metrics | grep -q \"^logpipe_http_requests_in_flight 1\"" &&
    kill -TERM $(cat t.pid) &&
    wait_for 20 grep -q "answering the 1 requests" t.err &&
    kill -TERM $(cat t.pid) &&
    wait_for 30 test -s t.rc &&
    test "$(cat t.rc)" = 0 &&
    grep_q "SIGTERM again" t.err &&
    exec 3>&- &&
    kill $cpid 2>/dev/null || :
'

start_http g --max-body 1M
G=$ADDR

test_expect_success 'a gzip bomb: 413 after --max-body decoded; others still served' '
    head -c 50000000 /dev/zero | gzip -c >bomb.gz &&
    test "$(wc -c <bomb.gz)" -lt 1048576 &&
    req -H "$ND" -H "Content-Encoding: gzip" --data-binary @bomb.gz "http://$G/v1/events" &&
    code_is 413 &&
    echo "{\"after\":1}" >e1 &&
    req -H "$ND" --data-binary @e1 "http://$G/v1/events" && code_is 200
'

test_expect_success 'HTTPS: --tls-cert and --tls-key; plain HTTP is not served there' '
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
        -days 2 -subj "/CN=logpipe test CA" 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr \
        -subj "/CN=localhost" 2>/dev/null &&
    printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" >ext &&
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out srv.pem -days 2 -extfile ext 2>/dev/null &&
    start_http tls --tls-cert srv.pem --tls-key srv.key -v &&
    grep_q "(HTTPS)" tls.err &&
    rcli DEL logs:stream >/dev/null &&
    req --cacert ca.pem -H "$ND" --data-binary @e1 "https://$ADDR/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 1 &&
    ! curl -sS -m 5 -o /dev/null "https://$ADDR/healthz" 2>err &&
    ! curl -sS -m 5 -o /dev/null -H "$ND" --data-binary @e1 "http://$ADDR/v1/events" 2>/dev/null &&
    test "$(rcli XLEN logs:stream)" = 1 &&
    stop_http tls && test "$(cat tls.rc)" = 0
'

test_expect_success 'a --tls-key that is not the certificate'"'"'s: 69, said' '
    expect_exit 69 logpipe-http --listen 127.0.0.1:0 --tls-cert srv.pem --tls-key ca.key 2>err &&
    grep_q "TLS" err &&
    expect_exit 66 logpipe-http --listen 127.0.0.1:0 --tls-cert nonexistent.pem --tls-key srv.key 2>err &&
    grep_q "nonexistent.pem" err
'

if command -v systemd-socket-activate >/dev/null 2>&1; then
test_expect_success 'systemd socket activation: the socket passed is served' '
    port=$(random_port) &&
    { systemd-socket-activate -l "127.0.0.1:$port" logpipe-http \
          -r "$LOGPIPE_REDIS_URL" 2>sa.err & echo $! >sa.pid; } &&
    echo "$(cat sa.pid)" >>"$TMP/.pids" &&
    wait_for 20 grep -q "Listening on" sa.err &&
    rcli DEL logs:stream >/dev/null &&
    req -H "$ND" --data-binary @e1 "http://127.0.0.1:$port/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 1
'
else
test_skip 'systemd socket activation' 'no systemd-socket-activate'
fi

test_done
