#!/bin/sh
# t0184-send-gate-dlq-is-stream.sh -- review of issue 15's gate (commit
# 1631928): --dlq naming the stream itself (nothing refuses it). A batch
# with a dead letter whose gate is shut (behind a refused batch) moves the
# stream aside (GATE's aside: RENAME stream -> stream:send-hold), then
# looks at the DLQ key, the same key, now gone: "none", so it SETs the
# DLQ's hold key -- the same stream:send-hold -- to '' over the stream it
# just moved there. UNDO then finds a string there and DELs both keys:
# the whole stream is gone, every entry stored before the run and the
# consumer groups with their pending entries.
#
# Expected: send refuses --dlq equal to --stream (64), or the stream keeps
# what it held and its group.
. "$(dirname "$0")/lib.sh"

start_redis

test_expect_success 'a shut gate with --dlq equal to --stream: the stream and its group survive' '
    for i in 1 2 3 4 5; do
        rcli XADD logs:x "*" data "{\"old\":$i}" >/dev/null
    done
    rcli XGROUP CREATE logs:x g 0 >/dev/null
    rcli XREADGROUP GROUP g c1 COUNT 2 STREAMS logs:x ">" >/dev/null
    { seq 1 10; echo "not json"; seq 12 30; } |
        sed "s/^[0-9]*\$/{\"seq\":&}/" >in30
    # three batches back to back, the first refused: the second (with the
    # dead letter of line 11) finds its gate shut
    st=0
    LOGPIPE_TEST_REFUSE_BATCH=1 logpipe-send -s logs:x --dlq logs:x \
        --rejects-to-dlq --batch 10 --max-age 0 --timeout 30s in30 \
        2>err || st=$?
    sed -e "s/^/# /" err
    test $st -eq 64
    grep_q "^logpipe-send: --dlq logs:x and --stream logs:x: the same key" err
    expect_exit 64 logpipe-send -s a:send-hold --dlq a </dev/null 2>err2
    expect_exit 64 logpipe-send -s a --dlq a:send-hold </dev/null 2>err2
    rcli --raw XRANGE logs:x - + | grep -c "\"old\":" >nold || :
    say "entries stored before the run still there: $(cat nold) of 5"
    test "$(cat nold)" -eq 5
    rcli --raw XINFO GROUPS logs:x >groups
    grep -q "^g\$" groups
    test "$(rcli XPENDING logs:x g | head -n 1)" -eq 2
'

test_done
