#!/bin/sh
# t0182-send-gate-acl.sh -- review of issue 15's gate (commit 1631928):
# the gate fails open. Its script runs inside the batch's MULTI/EXEC
# before the XADDs; when a command in it fails (here: a Redis user with the
# rights of examples/users.acl before that commit, which lack TYPE, DEL,
# RENAME and SET), the EVAL answers an error, nothing is moved aside, and
# the XADDs after it run and store the events. send takes the gate's error
# for "nothing stored" (gate_open): it exits 78 saying 0 bytes were sent
# (resume from the start, with --wal too): every event twice. The same
# when only the shut path is denied (RENAME, SET): a batch behind a
# refused one is stored ahead of it, and again after it, exit 0.
#
# Expected: what send says was not stored is not in the stream, so the
# resume it prints (or the WAL) sends each event once.
. "$(dirname "$0")/lib.sh"

start_redis

# the logpipe-send user of examples/users.acl before commit 1631928
old_user() {
    rcli ACL SETUSER "$1" reset on ">pw-$1" "~logs:*" resetchannels -@all \
        +ping +select +xadd "+xinfo|groups" +xlen +eval +time +hmget +hset \
        +pexpire +multi +exec +hget +hscan +hdel >/dev/null
}

# the rights the gate needs (examples/users.acl now)
new_user() {
    rcli ACL SETUSER "$1" +type +rename +set +del >/dev/null
}

seq 1 10 | sed 's/.*/{"seq":&}/' >in.ndjson

test_expect_success 'without a WAL: 78, then the printed resume sends each event once' '
    old_user s1
    LOGPIPE_REDIS_PASSWORD=pw-s1
    export LOGPIPE_REDIS_PASSWORD
    url="redis://s1@127.0.0.1:$REDIS_PORT/0"
    expect_exit 78 logpipe-send -r "$url" --max-age 0 in.ndjson 2>s1.err
    sed -e "s/^/# /" s1.err
    off=$(sed -n "s/.*sent \([0-9]*\) bytes of in.ndjson.*/\1/p" s1.err)
    test -n "$off"
    say "stream after the run that exited 78: $(rcli XLEN logs:stream) events"
    new_user s1
    # the resume, as printed: tail -c +(off+1) in.ndjson | logpipe-send ...
    tail -c +$((off + 1)) in.ndjson |
        logpipe-send -r "$url" --max-age 0 2>>s1.err
    rcli --raw XRANGE logs:stream - + | seqs - >got
    tally 10 got
'

# the gate's open path needs TYPE and DEL only: a user given those but not
# RENAME and SET sends as long as no batch finds its gate shut
half_user() {
    old_user "$1"
    rcli ACL SETUSER "$1" +type +del >/dev/null
}

test_expect_success 'a gate shut behind a refused batch cannot move the stream aside: each event once all the same' '
    half_user s2
    LOGPIPE_REDIS_PASSWORD=pw-s2
    export LOGPIPE_REDIS_PASSWORD
    url="redis://s2@127.0.0.1:$REDIS_PORT/0"
    seq 1 30 | sed "s/.*/{\"seq\":&}/" >in30.ndjson
    # three batches written back to back; the first refused (EXECABORT):
    # the second and third find their gates shut (LPGATE), and RENAME is
    # denied inside the script
    # now: the probe on the first connection finds RENAME denied, and
    # send exits 78 before a batch is sent
    st=0
    LOGPIPE_TEST_REFUSE_BATCH=1 logpipe-send -r "$url" -s logs:h \
        --batch 10 --max-age 0 --timeout 30s in30.ndjson 2>s2.err || st=$?
    sed -e "s/^/# /" s2.err
    test $st -eq 78
    grep_q "the gate.s commands .* on logs:h.s keys: .*can.t run this command" s2.err
    test "$(rcli XLEN logs:h)" -eq 0
    unset LOGPIPE_REDIS_PASSWORD
    logpipe-send -s logs:h --max-age 0 in30.ndjson
    rcli --raw XRANGE logs:h - + | seqs - >got
    tally 30 got
'

test_done
