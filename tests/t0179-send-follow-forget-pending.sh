#!/bin/sh
# t0179-send-follow-forget-pending.sh -- logpipe-send --follow (review of
# issue 15 item 2): forget_files HDELs the fields of files gone for good
# when nothing is in flight (s->count == 0), but not when the input batch
# still holds lines of such a file (waiting for --linger; a file deleted
# while open is gone after rotate_wait_ms, 5 s): the batch goes after the
# HDEL, its HSET makes the field again, and the identity, handed out once
# by lp_follow, is never forgotten: the field stays for good
# (--producer-ttl spares the run's own files). Minor: with the default
# forget time (24 h) only a --linger longer than it gets there; here
# LOGPIPE_TEST_FOLLOW_FORGET=200 and --linger 8s.
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

test_expect_success 'a file deleted while its last lines wait in the input batch: its field forgotten all the same' '
    mkdir f
    LOGPIPE_TEST_FOLLOW_FORGET=200 \
    logpipe-send -v -s f -F "f/*.log" --linger 8000 2>f.err &
    spid=$!
    sleep 0.5
    printf "{\"seq\":1}\n{\"seq\":2}\n" >f/a.log
    sleep 0.4
    rm f/a.log
    wait_for 15 "[ \$(rcli XLEN f) -eq 2 ]"
    sleep 1
    n=$(rcli HLEN f:producers)
    kill -TERM $spid
    wait $spid || :
    sed -e "s/^/# /" f.err
    [ "$n" -eq 0 ] || { echo "$n field(s) left: $(rcli --raw HKEYS f:producers)" >&2; exit 1; }
'

test_done
