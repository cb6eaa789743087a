#!/bin/sh
# t0317-httpd-idle-rss.sh -- 1,000 idle keep-alive connections (each has
# served a request: libmicrohttpd then holds its whole pool) cost lp_httpd
# little: the server's RSS stays under 40 MB (issue 16's target is 64 MB
# for the whole of logpipe-http), and it serves others meanwhile
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

ulimit -n 4096 2>/dev/null || :
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2100 ]; then
    test_skip '1,000 idle connections' "ulimit -n is $(ulimit -n)"
    test_done
fi

start_httpd --max-connections 1100 --idle 600

rss_kb() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\) kB$/\1/p' "/proc/$HTTPD_PID/status"; }

test_expect_success '1,000 idle keep-alive connections: RSS under 40 MB' '
    mkfifo hold &&
    { perl "$TOP/tests/httpd-cli.pl" idle "$ADDR" 1000 ready post <hold >/dev/null 2>idle.err & } &&
    exec 9>hold &&
    wait_for 60 test -s ready &&
    test "$(cat ready)" = 1000 &&
    req "http://$ADDR/metrics" && code_is 200 &&
    grep_q "^logpipe_http_connections 1001$" body &&
    req -H "Content-Type: application/x-ndjson" --data-binary "{}" "http://$ADDR/v1/events" &&
    code_is 200 &&
    kb=$(rss_kb) &&
    say "RSS with 1,000 idle connections: $kb KB" &&
    if [ "$SAN" = 0 ] && [ "$kb" -gt 40960 ]; then
        echo "RSS $kb KB, over 40960 KB" >&2; exit 1
    fi &&
    exec 9>&- &&
    wait_for 30 "curl -sS http://$ADDR/metrics | grep -q \"^logpipe_http_connections 1$\""
'

test_done
