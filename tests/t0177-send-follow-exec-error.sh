#!/bin/sh
# t0177-send-follow-exec-error.sh -- logpipe-send --follow (issue 15): a
# batch is stored whole or not at all, also when a key it writes has the
# wrong type (the DLQ key, or the stream key, is not a stream): its gate
# sees it and the batch stores nothing and commits no offset; send gives
# up (78) saying why, and the next run, once the key is right, sends
# every line once. (Before the gate, the HSET in the transaction ran all
# the same: the offset went past lines whose commands had failed, and the
# next run started after them: the dead letter, or all 3 events, lost.)
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

test_expect_success 'a dead letter whose key is not a stream: nothing stored, 78; then each line once' '
    mkdir d
    printf "{\"seq\":1}\nnot json\n{\"seq\":2}\n" >d/a.log
    rcli SET d:dlq "not a stream" >/dev/null
    expect_exit 78 logpipe-send -s d -F "d/*.log" --dlq d:dlq \
        --rejects-to-dlq 2>d.err
    sed -e "s/^/# /" d.err
    grep_q "^logpipe-send: WRONGTYPE d:dlq is a string, not a stream$" d.err
    [ "$(rcli XLEN d)" -eq 0 ]
    [ "$(rcli HLEN d:producers)" -eq 0 ]
    rcli DEL d:dlq >/dev/null
    logpipe-send -s d -F "d/*.log" --dlq d:dlq --rejects-to-dlq 2>>d.err &
    spid=$!
    wait_for 30 "[ \$(rcli XLEN d) -ge 2 ]"
    printf "{\"seq\":3}\n" >>d/a.log
    wait_for 30 "[ \$(rcli XLEN d) -ge 3 ]"
    kill -TERM $spid
    st=0
    wait $spid || st=$?
    test $st -eq 65
    [ "$(rcli XLEN d)" -eq 3 ]
    [ "$(rcli XLEN d:dlq)" -eq 1 ]
'

test_expect_success 'events whose stream key is not a stream: nothing stored, 78; then each line once' '
    mkdir s
    printf "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n" >s/a.log
    rcli HSET s somefield 1 >/dev/null
    expect_exit 78 logpipe-send -s s -F "s/*.log" 2>s.err
    grep_q "^logpipe-send: WRONGTYPE s is a hash, not a stream$" s.err
    [ "$(rcli HLEN s:producers)" -eq 0 ]
    rcli DEL s >/dev/null
    logpipe-send -s s -F "s/*.log" 2>>s.err &
    spid=$!
    wait_for 30 "[ \$(rcli XLEN s) -ge 3 ]"
    printf "{\"seq\":4}\n" >>s/a.log
    wait_for 30 "[ \$(rcli XLEN s) -ge 4 ]"
    kill -TERM $spid
    wait $spid
    [ "$(rcli XLEN s)" -eq 4 ]
'

test_expect_success 'the producers key not a hash: nothing stored, 78' '
    mkdir p
    printf "{\"seq\":1}\n" >p/a.log
    rcli SET p:producers x >/dev/null
    expect_exit 78 logpipe-send -s p -F "p/*.log" 2>p.err
    grep_q "^logpipe-send: .*WRONGTYPE" p.err
    [ "$(rcli EXISTS p)" -eq 0 ]
'

test_done
