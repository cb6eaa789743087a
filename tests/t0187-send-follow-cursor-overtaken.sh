#!/bin/sh
# t0187-send-follow-cursor-overtaken.sh -- review of issue 15's gate
# (commit 1631928): a batch that holds one file's cursor only (its lines
# made no command) beside another file's commands can be overtaken by the
# first file's next batch, and then its gate never opens again.
#
#   B1 = { f.log: cursor only (its rejected line), from = to = 0;
#          g.log: 3 events }                       refused (EXECABORT)
#   B2 = { f.log: 3 events, from 0 }               gate open: stored
#
# B2 does not wait for B1 (B1 has no command of f.log), so f.log's field
# goes to 3. B1 is sent again: its gate wants f.log's field at 0, finds 3
# (LPGATE "holds position 3 ..., the batch goes on from 0"), and so on
# until --timeout: send gives up (75) and g.log's events are not stored by
# this run. (Not lost: the next run reads g.log again from its field; with
# --wal the spill drops the cursor-only part.) A cursor-only producer
# whose field is already at or past its base has nothing left to do.
#
# Redis is stopped (SIGSTOP) while the two batches are written, so that
# both are in its socket before it answers the first: the test waits for
# the bytes in Redis's receive queue (ss), not for time.
#
# Expected: send goes on (the six events stored, exit 0 at SIGTERM).
. "$(dirname "$0")/lib.sh"

if ! command -v ss >/dev/null 2>&1; then
    test_skip 'a cursor-only part overtaken' 'no ss (iproute2)'
    test_done
fi

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# rq: the bytes waiting in Redis's receive queues
rq() {
    ss -tnH "( sport = :$REDIS_PORT )" | awk '{ s += $2 } END { print s + 0 }'
}

test_expect_success 'a cursor-only part overtaken by its file'"'"'s next batch: send goes on' '
    mkdir d
    printf "not json\n" >d/f.log
    : >d/g.log
    LOGPIPE_TEST_REFUSE_BATCH=1 logpipe-send -s lv -F "d/*.log" --batch 3 \
        --linger 60s --timeout 10s 2>lv.err &
    spid=$!
    # f.log read: its cursor waits in the input batch (linger 60s)
    wait_for 30 "grep -q \"invalid JSON\" lv.err"
    rp=$(redis_pid)
    kill -STOP $rp
    printf "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n" >>d/g.log
    # B1 written (the 3rd event fills it)
    wait_for 30 "[ \$(rq) -gt 0 ]" || { kill -CONT $rp; exit 1; }
    q1=$(rq)
    printf "{\"seq\":4}\n{\"seq\":5}\n{\"seq\":6}\n" >>d/f.log
    wait_for 30 "[ \$(rq) -gt $q1 ]" || { kill -CONT $rp; exit 1; }
    kill -CONT $rp
    wait_for 30 "[ \$(rcli XLEN lv) -ge 6 ] || ! kill -0 $spid"
    kill -TERM $spid 2>/dev/null || :
    st=0
    wait $spid || st=$?
    sed -e "s/^/# /" lv.err
    rcli --raw XRANGE lv - + | seqs - >got
    tally 6 got
    test $st -eq 65
'

test_done
