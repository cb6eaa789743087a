#!/bin/sh
# t0374-http-sharded-stream.sh -- review of issue 17 step 2 (rsh):
# logpipe-http has no --shards; on a stream that logpipe-send --shards 4
# made, it answered 200 and stored the events in the key S, which a
# sharded drain, stat and replay never read: accepted, never archived.
# It now refuses to serve such a stream: at its connection it reads the
# count and exits 78, saying it, before it takes any request.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 10 >in
logpipe-send --max-age 0 --shards 4 <in >/dev/null 2>&1
start_http h || :

test_expect_success 'setup: the stream has 4 shards' '
    test "$(rcli GET logs:stream:shards)" = 4
'

test_expect_success 'logpipe-http on a sharded stream exits 78, saying the count; nothing stored in S' '
    wait_for 20 test -s h.rc &&
    test "$(cat h.rc)" = 78 &&
    grep_q "spread over 4 shards" h.err &&
    test "$(rcli EXISTS logs:stream)" = 0
'

test_done
