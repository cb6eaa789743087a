#!/bin/sh
# t0327-http-readme.sh -- the README's "Events over HTTP" commands, taken
# from the README itself and run as written (only the paths, the port and
# the token are this test's): the answer is the one the README shows, and
# its retry stores nothing twice
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis
printf 'app:0123456789abcdef0123\n' >tokens
chmod 600 tokens
TOKEN=0123456789abcdef0123
export TOKEN
# 1000 lines, the 17th not JSON
awk 'BEGIN { for (i = 1; i <= 1000; i++)
    if (i == 17) print "{not json"; else printf "{\"n\":%d}\n", i }' >app.ndjson

# the section's shell lines, without comments, continuations joined
awk '/^### Events over HTTP/ { on = 1; next } on && /^[^ ]/ && !/^$/ { exit }
     on && /^    [^#]/ { sub(/^    /, ""); print }' "$TOP/README.md" |
    sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' >cmds

test_expect_success 'the README section has its two commands' '
    test "$(wc -l <cmds)" = 2 &&
    grep_q "^logpipe-http " cmds && grep_q "^gzip -c app.ndjson | curl " cmds
'

test_expect_success 'run as written: the answer the README shows, stored once on a retry' '
    sed -n 1p cmds | sed -e "s|/etc/logpipe/http.tokens|$TMP/tokens|" \
        -e "s|/var/lib/logpipe/http-wal|$TMP/wal|" -e "s| &\$||" \
        -e "s|^logpipe-http |start_http readme |" >start.sh &&
    . ./start.sh &&
    sed -n 2p cmds | sed -e "s|127.0.0.1:8088|$ADDR|" >post.sh &&
    sh ./post.sh >answer1 &&
    sh ./post.sh >answer2 &&
    grep_q "^{\"accepted\":999,\"rejected\":1,\"errors\":\[{\"line\":17,\"error\":\"invalid JSON: " answer1 &&
    test_cmp answer1 answer2 &&
    test "$(rcli XLEN logs:stream)" = 999 &&
    stream_data | head -n 1 >first &&
    echo "{\"n\":1,\"client\":\"app\"}" >want && test_cmp want first
'

test_done
