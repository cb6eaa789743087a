#!/bin/sh
# t0348-cluster-http.sh -- logpipe-http on a 3-master Redis Cluster, one
# stream (issue 17, step 1): started with the URL of a node that does not
# own the stream, it stores there; an Idempotency-Key retry finds its
# key ({S}:producers, asked on its aside connection) and stores nothing
# again; when the stream's slot moves to another master, a client that
# retries with its key gets 200 and every event is stored once.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
S=web:events
cluster_roles "$S"
ND='Content-Type: application/x-ndjson'
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
body() {
    awk -v f="$1" -v n="$2" -v now="$NOW" "BEGIN { for (i = f; i < f + n; i++)
        printf \"{\\\"timestamp\\\":\\\"%s\\\",\\\"n\\\":%d}\\n\", now, i }"
}
body 1 100 >b1
body 101 100 >b2
start_http c -r "redis://127.0.0.1:$A" -s "$S"
H=$ADDR

# post KEY FILE: until 200 (a client that retries with its key), at most 60
post() {
    _i=0
    while [ $_i -lt 60 ]; do
        _i=$((_i + 1))
        req -H "$ND" -H "Idempotency-Key: $1" --data-binary "@$2" "http://$H/v1/events" &&
        [ "$(cat code)" = 200 ] && return 0
        sleep 0.5
    done
    code_is 200
}

test_expect_success 'a request through a node that does not own the stream' '
    post k1 b1 &&
    grep_q "\"accepted\":100,\"rejected\":0" body &&
    test "$(ccli "$OWNER" xlen "$S")" = 100 &&
    test -n "$(ccli "$OWNER" hget "{$S}:producers" http:-:k1)"
'

test_expect_success 'its retry: the same answer, nothing stored again' '
    cp body first &&
    post k1 b1 &&
    test_cmp first body &&
    test "$(ccli "$OWNER" xlen "$S")" = 100
'

test_expect_success 'the slot moves: a client retrying with its key stores once' '
    cluster_move_script "$SLOT" "$OWNER" "$A" >move.sh &&
    sh move.sh &&
    test "$(cluster_owner "$SLOT")" = "$A" &&
    post k2 b2 &&
    grep_q "\"accepted\":100" body &&
    post k2 b2 &&
    test "$(ccli "$A" xlen "$S")" = 200 &&
    ccli "$A" --raw xrange "$S" - + | sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got &&
    seq 1 200 >want &&
    test_cmp want got
'

test_expect_success 'SIGTERM ends it cleanly' '
    stop_http c &&
    test "$(cat c.rc)" = 0
'

test_done
