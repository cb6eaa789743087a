#!/bin/sh
# t0331-http-backlog-stale.sh -- faults review r16 found (issue 16), fixed
# since (the tests of them failed before): logpipe-http
# --max-backlog judged by the last answer (acf803d) is judged by an
# answer of any age. lp_pipeline_backlogged asks the lag only from a
# submit, and answers that submit with what the previous question said;
# with no request for a while, the first request after the drains caught
# up is judged by the lag of the last request before, maybe minutes ago:
# 503 while the lag is 0. Likewise the first request after a start is
# taken while the lag is over (no answer yet counts as not over).
# The man page: "While the lag of the group is over N, a request is 503
# ... The lag is asked at most every 100 ms".
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
ND='Content-Type: application/x-ndjson'
body_has() {
    grep_q "$1" body || { echo >&2; return 1; }
}
i=0
while [ $i -lt 10 ]; do
    rcli XADD logs:stream '*' data "{\"old\":$i}" >/dev/null
    i=$((i + 1))
done
rcli XGROUP CREATE logs:stream grp 0 >/dev/null
printf '{"a":1}\n' >b1
start_http mb --max-backlog 5 -g grp
M=$ADDR

test_expect_success 'the first request while the lag is over: 503' '
    req -H "$ND" --data-binary @b1 "http://$M/v1/events" &&
    code_is 503
'

test_expect_success 'a request once the lag is over: 503' '
    sleep 0.3 &&
    req -H "$ND" --data-binary @b1 "http://$M/v1/events" &&
    code_is 503 &&
    test "$(hdr Retry-After)" = 1
'

test_expect_success 'the lag back under for a second: the next request 200' '
    rcli XREADGROUP GROUP grp c1 COUNT 1000 STREAMS logs:stream ">" >/dev/null &&
    test "$(rcli XINFO GROUPS logs:stream | sed -n "/^lag$/{n;p;}")" = 0 &&
    sleep 1 &&
    req -H "$ND" --data-binary @b1 "http://$M/v1/events" &&
    code_is 200
'

test_done
