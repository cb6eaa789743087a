#!/bin/sh
# t0173-send-follow-refused-lost.sh -- logpipe-send --follow (issue 15): a
# batch refused by Redis (EXECABORT) and the next batch of the same file,
# both replies lost. The gate of the second batch finds the first's
# position not committed and stores nothing, so after the reconnect both go
# again in order; a restart finds every line once. (Before the gate, the
# second batch was stored, its position covered the first's, and the
# first's 300 lines were taken for stored: lost.)
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# lost_round NAME [SEND OPTIONS]: 600 lines in two batches of 300; the
# first refused, both replies lost; send recovers by itself; a restart
# then sends only the line written after it: each line once
lost_round() {
    _d=$1
    shift
    mkdir "$_d"
    gen_events 601 >all
    head -n 600 all >"$_d/a.log"
    LOGPIPE_TEST_REFUSE_BATCH=1 LOGPIPE_TEST_LOSE_REPLY=2 \
    logpipe-send -s "$_d" -F "$_d/*.log" --batch 300 "$@" 2>"$_d.err" &
    _spid=$!
    wait_for 30 "grep -q 'connection dropped' $_d.err" &&
    wait_for 30 "[ \$(rcli XLEN $_d) -ge 600 ]" || return 1
    kill -TERM $_spid
    wait $_spid || { echo "send: exit $?" >&2; return 1; }
    logpipe-send -s "$_d" -F "$_d/*.log" --batch 300 "$@" 2>>"$_d.err" &
    _spid=$!
    tail -n 1 all >>"$_d/a.log"
    wait_for 30 "[ \$(rcli XLEN $_d) -ge 601 ]" || return 1
    kill -TERM $_spid
    wait $_spid || { echo "send: exit $?" >&2; return 1; }
    sed -e 's/^/# /' "$_d.err"
    rcli --raw XRANGE "$_d" - + | seqs /dev/stdin >got
    tally 601 got
}

test_expect_success 'a refused batch whose reply is lost with that of the next: each line once' '
    lost_round lr1
'

test_expect_success 'the same with a WAL' '
    lost_round lr2 --wal "$TMP/lrw"
'

test_done
