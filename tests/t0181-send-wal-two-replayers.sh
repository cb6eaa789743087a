#!/bin/sh
# t0181-send-wal-two-replayers.sh -- review of issue 15's gate (commit
# 1631928): two senders re-sending one WAL directory (lp_wal.h: each takes
# the segments it can lock; a segment held by another is passed over).
# Producer P's records are in two segments, A (positions from run 1) and
# B (later positions, run 2). Sender F1 holds A while Redis refuses it
# (OOM) and backs off; meanwhile F2 takes B, and B's batch goes "from the
# position Redis holds" (lp_spool_replay: from = committed), which is P's
# field before A: the gate opens, and the field jumps past A's positions,
# none of them stored. When F1 tries A again, every record of A is "at or
# below the committed position": counted as stored after a lost reply,
# acknowledged, deleted. A's events are lost.
#
# send(1) promises this setting: "several senders may share one
# directory", and its example runs --flush-wal from cron, "safe while
# another sender uses the directory".
#
# Expected: every event once (F2's gate must not commit B while A's
# positions, below B's, are not stored).
. "$(dirname "$0")/lib.sh"

start_redis redis --maxmemory-policy noeviction

ev() {
    seq "$1" "$2" | sed 's/.*/{"seq":&}/'
}

test_expect_success 'producer P: two runs while Redis is down, two WAL segments' '
    ev 1 10 | logpipe-send -r "$(dead_redis)" --wal w --producer P \
        --max-age 0 2>run1.err
    # the second segment sorts after the first (named by microseconds)
    ev 11 20 | logpipe-send -r "$(dead_redis)" --wal w --producer P \
        --max-age 0 2>run2.err
    ls w/wal-*.log >segs
    test "$(wc -l <segs)" -eq 2
    a=$(head -n 1 segs)
    grep -a -q "#[0-9]* P$" "$a"
'

test_expect_success 'F1 holds segment A while Redis answers OOM; F2 sends B; then F1 goes on: each event once' '
    a=$(head -n 1 segs)
    rcli CONFIG SET maxmemory 1 >/dev/null
    logpipe-send --wal w --flush-wal --timeout 300s 2>f1.err &
    f1=$!
    # F1 took A (its lock) and was refused
    wait_for 60 "grep -q OOM f1.err"
    wait_for 60 "! flock -n $a true"
    kill -STOP $f1
    rcli CONFIG SET maxmemory 0 >/dev/null
    # F2 must not send B before A: it waits for A, and gives up at its
    # --timeout with B still in the WAL
    st=0
    logpipe-send -v --wal w --flush-wal --timeout 2s 2>f2.err || st=$?
    test "$(rcli XLEN logs:stream)" -eq 0 || {
        kill -CONT $f1; kill $f1; exit 1; }
    kill -CONT $f1
    wait $f1
    sed -e "s/^/# f2: /" f2.err; say "F2 exit $st"
    test $st -eq 75
    grep -q "an older segment is another sender.s: waiting for it" f2.err
    sed -e "s/^/# f1: /" f1.err
    sed -e "s/^/# f2: /" f2.err
    rcli --raw XRANGE logs:stream - + | seqs - >got
    tally 20 got
'

test_done
