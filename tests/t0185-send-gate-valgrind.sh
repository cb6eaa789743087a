#!/bin/sh
# t0185-send-gate-valgrind.sh -- review of issue 15's gate (commit
# 1631928): the paths of the gated batches under valgrind's leak check: a
# plain run, a run whose first batch is refused (the two behind it find
# their gates shut) and the second's reply lost, with --wal, and a
# --flush-wal of a WAL written while Redis was away. Each batch's head
# (MULTI and the gate's EVAL, made by make_gate) was never freed (2 KB a
# batch slot, "definitely lost" in every run); main fixed that meanwhile
# (0857c4a), and this stays as the check that keeps it so.
#
# Expected: no leak, and every event once.
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null 2>&1 || [ -n "${LP_VALGRIND:-}" ] ||
   [ "$SAN" = 1 ]; then
    test_skip 'gated batches under valgrind: no leak' 'no valgrind, or an ASan build'
    test_done
fi

start_redis

VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

seq 1 30 | sed 's/.*/{"seq":&}/' >in30

# vg_send STREAM [OPTIONS]: send in30 under valgrind; 0, or says what
# valgrind found
vg_send() {
    _s=$1
    shift
    st=0
    $VG logpipe-send -s "$_s" --batch 10 --max-age 0 "$@" in30 \
        2>"$_s.err" || st=$?
    grep "==[0-9]*==" "$_s.err" | head -n 20 | sed -e "s/^/# /"
    test $st -eq 0
}

test_expect_success 'a plain run: no leak' '
    vg_send p
    rcli --raw XRANGE p - + | seqs - >got
    tally 30 got
'

test_expect_success 'a refused batch, two gates shut, a reply lost, --wal: no leak' '
    LOGPIPE_TEST_REFUSE_BATCH=1 LOGPIPE_TEST_LOSE_REPLY=2 vg_send r --wal wr
    rcli --raw XRANGE r - + | seqs - >got
    tally 30 got
'

test_expect_success '--flush-wal of a WAL written while Redis was away: no leak' '
    logpipe-send -r "$(dead_redis)" -s f --producer PF --wal wf --max-age 0 \
        in30 2>f0.err
    st=0
    $VG logpipe-send -s f --wal wf --flush-wal 2>f.err || st=$?
    grep "==[0-9]*==" f.err | head -n 20 | sed -e "s/^/# /"
    test $st -eq 0
    rcli --raw XRANGE f - + | seqs - >got
    tally 30 got
'

test_done
