#!/bin/sh
# t0304-first-shards-http-resume-hint.sh -- rw2 review of 44680a1:
# logpipe-http serving when the first send --shards records the count
# answers 503 and ends 78 saying "give another --stream" (right), then
# with --wal prints a stdin resume hint, "0 bytes of the input are in
# Redis or in the WAL w; resume with: tail -c +1 | logpipe-send
# --shards=2 (fed the same input)": an HTTP server has no input to feed,
# the command lacks -s, and the 503 already told each client to retry.
# (lp_spool_give_up: the "--shards N" hint added for senders.)
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis

for wal in "" "--wal w"; do
    n=h$(echo "$wal" | tr -dc a-z)
    # shellcheck disable=SC2086
    start_http $n -s "s$n" $wal

    test_expect_success "logpipe-http $wal: stores; after the first send --shards 2: 503, 78, no stdin resume hint" '
        req -H "Content-Type: application/json" -d "{\"seq\":1}" "http://$ADDR/v1/events" &&
        code_is 200 &&
        rcli DEL "s$n" >/dev/null &&
        printf "{\"seq\":2}\n" | logpipe-send -s "s$n" --shards 2 --max-age 0 &&
        req -H "Content-Type: application/json" -d "{\"seq\":3}" "http://$ADDR/v1/events" &&
        code_is 503 &&
        wait_for 30 test -s $n.rc &&
        test "$(cat $n.rc)" = 78 &&
        grep_q "give another --stream" $n.err &&
        test "$(rcli XLEN "s$n")" = 0 &&
        if grep -E "resume with|fed the same input|tail -c" $n.err; then false; fi
    '
done
test_done
