#!/bin/sh
# t0318-httpd-valgrind.sh -- lp_httpd under valgrind: the unit tests, and
# the test server through every path curl and the hostile clients take
# (answers at once and later, each error, a client gone, a cut
# connection, SIGTERM with a request in hand): no invalid access, no leak
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

if ! command -v valgrind >/dev/null 2>&1; then
    test_skip 'lp_httpd under valgrind' 'no valgrind'
    test_done
fi
if [ "$SAN" = 1 ]; then
    test_skip 'lp_httpd under valgrind' 'an AddressSanitizer build'
    test_done
fi

VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

test_expect_success 'the unit tests under valgrind' '
    $VG --log-file=unit.vg "$TOP/tests/unit-httpd" >unit.out 2>&1 &&
    test ! -s unit.vg &&
    ! grep -q "^not ok" unit.out &&
    grep_q "^1\.\.[0-9]" unit.out
'

printf '%s\n' 'alice:0123456789abcdef0123' >tokens
chmod 600 tokens

# the server under valgrind; its status (99 on an error) in vg.rc
rm -f vg.addr
( trap - EXIT INT TERM PIPE
  $VG --log-file=serve.vg "$TOP/tests/unit-httpd" serve --listen 127.0.0.1:0 \
      --addr-file vg.addr --items vg.items --tokens tokens --delay-ms 100 \
      --read-timeout-ms 2000 --max-body 65536 --library-answer 2>vg.err &
  echo $! >vg.pid
  echo $! >>"$TMP/.pids"
  wait $!
  echo $? >vg.rc ) &
wait_for 60 "test -s vg.addr || test -s vg.rc" || :
A=$(cat vg.addr 2>/dev/null)
P=$(cat vg.pid)
TOK='Authorization: Bearer 0123456789abcdef0123'
ND='Content-Type: application/x-ndjson'

test_expect_success 'every path, with the server under valgrind' '
    test -n "$A" &&
    printf "{\"a\":1}\nnot json\n[{\"b\":2},3]\n" >in.ndjson &&
    req -H "$TOK" -H "$ND" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 200 &&
    gzip -c in.ndjson >in.gz &&
    req -H "$TOK" -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.gz "http://$A/v1/events" &&
    code_is 200 &&
    req -H "$TOK" -H "$ND" -H "Content-Encoding: gzip" --data-binary @in.ndjson "http://$A/v1/events" &&
    code_is 400 &&
    req -H "$ND" --data-binary @in.ndjson "http://$A/v1/events" && code_is 401 &&
    req "http://$A/nope" && code_is 404 &&
    req "http://$A/v1/logs" && code_is 405 &&
    req -H "$TOK" -H "Content-Type: text/plain" --data-binary x "http://$A/v1/events" &&
    code_is 415 &&
    head -c 70000 /dev/zero | tr "\0" " " >big &&
    req -H "$TOK" -H "$ND" --data-binary @big "http://$A/v1/events" && code_is 413 &&
    req -H "$TOK" -H "$ND" -H "Transfer-Encoding: chunked" --data-binary @big "http://$A/v1/events" &&
    code_is 413 &&
    head -c 5000000 /dev/zero | gzip -c >bomb.gz &&
    req -H "$TOK" -H "$ND" -H "Content-Encoding: gzip" --data-binary @bomb.gz "http://$A/v1/events" &&
    code_is 413 &&
    echo "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"x\"}}]}]}]}" >otlp.json &&
    req -H "$TOK" -H "Content-Type: application/json" --data-binary @otlp.json "http://$A/v1/logs" &&
    code_is 200 &&
    req -H "$TOK" -H "Content-Type: application/json" --data-binary "{\"resourceLogs\":1}" "http://$A/v1/logs" &&
    code_is 400 &&
    req "http://$A/metrics" && code_is 200 &&
    req -I "http://$A/healthz" && code_is 200
'

test_expect_success 'a client gone mid-body, a slowloris cut, under valgrind' '
    perl -MIO::Socket::INET -e "
        my \$s = IO::Socket::INET->new(PeerAddr => \"$A\") or die;
        print \$s \"POST /v1/events HTTP/1.1\r\nHost: x\r\n$TOK\r\n\" .
            \"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\";
        sleep 1;" &&
    perl "$TOP/tests/httpd-cli.pl" slow "$A" 60 >out &&
    grep_q "^closed after" out
'

test_expect_success 'SIGTERM with a request in hand; valgrind finds nothing' '
    { curl -sS -o late.body -w "%{http_code}\n" -H "$TOK" -H "$ND" --data-binary "{}" \
        "http://$A/v1/events" >late.code 2>&1 & } &&
    wait_for 30 "test \$(grep -c submit vg.items) -ge 4" &&
    kill -TERM "$P" &&
    wait_for 60 test -s vg.rc &&
    test "$(cat late.code)" = 200 &&
    echo 0 >want && test_cmp want vg.rc &&
    test -e serve.vg && test ! -s serve.vg
'

test_done
