#!/bin/sh
# t0178-send-follow-rejected-alone.sh -- logpipe-send --follow (issue 15):
# a line that makes no command (rejected, or empty) moves its file's
# offset even when nothing else of the file is in the batch: the batch
# commits the cursor alone, so the next run does not read it again (it
# was rejected again, exit 65 again, a copy in --rejects); the same for
# an entry of the journal in t0180.
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

test_expect_success 'a line rejected on its own is not read again by the next run' '
    mkdir r
    printf "{\"seq\":1}\n" >r/a.log
    logpipe-send -s r -F "r/*.log" --linger 5 --rejects rej 2>r.err &
    spid=$!
    wait_for 30 "[ \$(rcli XLEN r) -ge 1 ]"
    printf "not json\n\n" >>r/a.log
    wait_for 30 "[ -s rej ]"
    wait_for 30 "rcli --raw HGETALL r:producers | grep -q \" 20\$\""
    kill -TERM $spid
    st=0
    wait $spid || st=$?
    test $st -eq 65
    logpipe-send -s r -F "r/*.log" --linger 5 --rejects rej2 2>>r.err &
    spid=$!
    printf "{\"seq\":2}\n" >>r/a.log
    wait_for 30 "[ \$(rcli XLEN r) -ge 2 ]"
    kill -TERM $spid
    st=0
    wait $spid || st=$?
    sed -e "s/^/# /" r.err
    [ "$(rcli XLEN r)" -eq 2 ]
    test ! -s rej2
    test $st -eq 0
'

test_done
