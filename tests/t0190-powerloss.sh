#!/bin/sh
# t0190-powerloss.sh -- simulated power loss: the shim (tests/powerloss.so)
# and its cut checked on scripted writers, then logpipe-drain SIGKILLed
# under it and the tree cut back to what was durable: every acknowledged
# event must be there exactly once. The model is stated at the head of
# tests/powerloss.c. s0190 runs the drain case at many more kill points.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/powerloss-lib.sh"
start_redis

SHIM=$PL_SHIM
CUT=$PL_CUT
W=$TOP/tests/powerloss-writer
# the shim names files by their real paths
D=$(pwd -P)

# pl LOG CMD...: CMD under the shim, logging to LOG
pl() {
    _log=$1; shift
    LD_PRELOAD=$SHIM LOGPIPE_POWERLOSS_LOG=$_log "$@"
}

# plw LOG OP...: the scripted writer under the shim; it must end killed
# by its own `kill` (137 from the shell)
plw() {
    _log=$1; shift
    expect_exit 137 env LD_PRELOAD="$SHIM" LOGPIPE_POWERLOSS_LOG="$_log" \
        "$W" "$@" kill
}

test_expect_success 'written, fdatasynced, written more: cut back to the synced length' '
    plw log1 open $D/f1 wc write "one\n" fdatasync write "two\n" dirsync $D &&
    printf "one\ntwo\n" >want && test_cmp want f1 &&
    "$CUT" log1 >out &&
    echo "truncate $D/f1 8 4" >want && test_cmp want out &&
    printf "one\n" >want && test_cmp want f1
'

test_expect_success 'a created file whose directory was never synced is gone' '
    plw log2 open $D/f2 wc write "data\n" fsync &&
    test -s f2 &&
    "$CUT" log2 >out &&
    echo "remove $D/f2" >want && test_cmp want out &&
    ! test -e f2
'

test_expect_success 'a created file, its directory synced, its data not: there, empty' '
    plw log3 open $D/f3 wc dirsync $D write "data\n" &&
    "$CUT" log3 >out &&
    test -f f3 && ! test -s f3
'

test_expect_success 'a file that was there, appended, never synced: its old length' '
    printf "old\n" >f4 &&
    plw log4 open $D/f4 wa write "new\n" writev "a" "b\n" &&
    "$CUT" log4 &&
    printf "old\n" >want && test_cmp want f4
'

test_expect_success 'O_APPEND through two descriptors: the synced prefix stays' '
    plw log5 open $D/f5 wca dirsync $D write "a\n" fdatasync write "b\n" \
        close open $D/f5 wa write "c\n" fsync write "d\n" &&
    "$CUT" log5 &&
    printf "a\nb\nc\n" >want && test_cmp want f5
'

test_expect_success 'four threads append and fdatasync each line: all kept, the unsynced tail cut' '
    plw log6 threads 4 100 $D/f6 dirsync $D open $D/f6 wa write "tail\n" &&
    test "$(wc -l <f6)" -eq 401 &&
    "$CUT" log6 &&
    test "$(wc -l <f6)" -eq 400 &&
    ! grep -q tail f6 &&
    for t in 0 1 2 3; do
        test "$(grep -c "^t$t " f6)" -eq 100 || exit 1
    done
'

test_expect_success 'ftruncate and pwrite inside the synced part lower it; a synced truncate holds' '
    printf "abcdef\n" >f7 &&
    plw log7 open $D/f7 r ftruncate 3 pwrite 3 "XYZ\n" &&
    "$CUT" log7 && printf "abc" >want && test_cmp want f7 &&
    printf "0123456789\n" >f8 &&
    plw log8 open $D/f8 r pwrite 4 "xx" &&
    "$CUT" log8 && printf "0123" >want && test_cmp want f8 &&
    printf "abcdef\n" >f9 &&
    plw log9 open $D/f9 r ftruncate 2 fdatasync pwrite 2 "zz" &&
    "$CUT" log9 && printf "ab" >want && test_cmp want f9
'

test_expect_success 'rename of a synced temp file over another, directory synced: the new one' '
    printf "old\n" >dst1 &&
    plw log10 open $D/tmp1 wc write "new\n" fsync close \
        rename $D/tmp1 $D/dst1 dirsync $D open $D/dst1 wa write "more\n" &&
    "$CUT" log10 &&
    printf "new\n" >want && test_cmp want dst1 && ! test -e tmp1
'

test_expect_success 'rename of a created file without a directory sync: the name is not durable' '
    printf "old\n" >dst2 &&
    plw log11 open $D/tmp2 wc write "new\n" fsync close \
        rename $D/tmp2 $D/dst2 &&
    "$CUT" log11 >out &&
    echo "remove $D/dst2" >want && test_cmp want out &&
    ! test -e dst2 && ! test -e tmp2
'

test_expect_success 'a temp file made durable by name first keeps it across a rename' '
    printf "old\n" >dst3 &&
    plw log12 open $D/tmp3 wc dirsync $D write "new\n" fsync close \
        rename $D/tmp3 $D/dst3 &&
    "$CUT" log12 &&
    printf "new\n" >want && test_cmp want dst3
'

test_expect_success 'a new directory never synced in its parent goes with what it holds' '
    plw log13 mkdir $D/nd1 open $D/nd1/f wc write "x\n" fsync dirsync $D/nd1 &&
    "$CUT" log13 >out &&
    echo "removedir $D/nd1" >want && test_cmp want out &&
    ! test -e nd1 &&
    plw log14 mkdir $D/nd2 dirsync $D open $D/nd2/f wc write "x\n" fsync \
        dirsync $D/nd2 &&
    "$CUT" log14 >out &&
    ! test -s out && printf "x\n" >want && test_cmp want nd2/f
'

test_expect_success 'syncfs makes data and names durable; sync_file_range is not durable' '
    plw log15 open $D/f15 wc write "a\n" syncfs write "b\n" \
        sync_file_range &&
    "$CUT" log15 &&
    printf "a\n" >want && test_cmp want f15
'

test_expect_success 'O_TRUNC of an old file: empty until synced, then what was synced' '
    printf "old\n" >f21 && printf "old\n" >f22 &&
    plw log22 open $D/f21 wt write "new\n" open $D/f22 wt write "new\n" \
        fdatasync write "more\n" &&
    "$CUT" log22 &&
    test -f f21 && ! test -s f21 &&
    printf "new\n" >want && test_cmp want f22
'

test_expect_success 'sync(2) makes data and names durable' '
    plw log23 mkdir $D/nd3 open $D/nd3/f wc write "a\n" sync write "b\n" &&
    "$CUT" log23 &&
    printf "a\n" >want && test_cmp want nd3/f
'

test_expect_success 'a directory renamed: the files below are cut at their new paths' '
    mkdir -p old/sub &&
    plw log24 open $D/old/sub/f wc dirsync $D/old/sub write "a\n" fsync \
        write "b\n" close rename $D/old $D/new &&
    "$CUT" log24 >out 2>err &&
    echo "truncate $D/new/sub/f 4 2" >want && test_cmp want out &&
    ! test -s err && printf "a\n" >want && test_cmp want new/sub/f
'

test_expect_success 'two processes on one log: what the first never synced stays volatile' '
    plw log25 open $D/f25 wc dirsync $D write "a\n" &&
    plw log25 open $D/f25 wa write "b\n" &&
    "$CUT" log25 && test -f f25 && ! test -s f25 &&
    plw log26 open $D/f26 wc dirsync $D write "a\n" &&
    plw log26 open $D/f26 wa write "b\n" fdatasync write "c\n" &&
    "$CUT" log26 && printf "a\nb\n" >want && test_cmp want f26
'

test_expect_success 'an unlinked file is left alone' '
    plw log16 open $D/f16 wc write "x\n" unlink $D/f16 &&
    "$CUT" log16 >out 2>err &&
    ! test -s out && ! test -s err
'

test_expect_success 'LOGPIPE_POWERLOSS_KILL=N: killed just before the Nth change' '
    printf "x" >f17 &&
    expect_exit 137 env LD_PRELOAD="$SHIM" LOGPIPE_POWERLOSS_LOG=log17 \
        LOGPIPE_POWERLOSS_KILL=3 "$W" open $D/f17 wa write a fdatasync \
        write b fdatasync &&
    printf "xa" >want && test_cmp want f17 &&
    "$CUT" log17 && test_cmp want f17
'

test_expect_success 'LOGPIPE_POWERLOSS_UNDER: only files below it are followed' '
    mkdir -p sub &&
    expect_exit 137 env LD_PRELOAD="$SHIM" LOGPIPE_POWERLOSS_LOG=log18 \
        LOGPIPE_POWERLOSS_UNDER=$D/sub "$W" open $D/f18 wc write x \
        open $D/sub/f wc write y kill &&
    ! grep -q "f18" log18 && grep -q "$D/sub/f" log18
'

test_expect_success 'the cut: same log, same actions; a torn last record is ignored; X refuses' '
    plw log19 open $D/f19 wc dirsync $D write "a\n" fdatasync write "b\n" \
        open $D/f20 wc write "c\n" &&
    "$CUT" -n log19 >a1 && "$CUT" -n log19 >a2 && test_cmp a1 a2 &&
    test "$(wc -l <a1)" -eq 2 &&
    printf "L 1 2" >>log19 &&
    "$CUT" log19 >a3 && test_cmp a1 a3 &&
    printf "a\n" >want && test_cmp want f19 && ! test -e f20 &&
    echo "X the shim could not follow" >log20 &&
    expect_exit 1 "$CUT" log20 2>err && grep_q "could not follow" err &&
    echo "Q what" >log21 &&
    expect_exit 2 "$CUT" log21 2>err && grep_q "malformed" err
'

# drain --once exits only when all it acknowledged is synced: a power cut
# right after it exits loses nothing
# (one && chain: it runs left of &&, where set -e is off)
once_then_cut() {
    rcli DEL logs:stream >/dev/null &&
    gen_events 300 "a b c" | logpipe-send &&
    env LD_PRELOAD="$PL_PRELOAD" LOGPIPE_POWERLOSS_LOG=$D/$1.log \
        LOGPIPE_POWERLOSS_UNDER=$D/$1 logpipe-drain --once -d $D/$1 -c o &&
    "$CUT" $1.log >$1.cut &&
    ! test -e $1/.logpipe-journal &&
    seqs $1/*/*.jsonl >got &&
    seq 1 300 >want &&
    test_cmp want got
}

if pl_drain_ok; then
    test_expect_success 'drain --once, then a power cut: every event is there' '
        mkdir once1 && once_then_cut once1
    '
    test_expect_success 'drain --once making --dir itself, then a power cut' '
        once_then_cut once2
    '
    pl_events 3000 20
    # fixed kill points: after K acknowledged entries, or just before the
    # drain's Nth file change or sync (s0190 draws many more)
    for k in 150 1100; do
        test_expect_success "drain killed once $k entries are acked, power cut: acked events there once" "
            pl_round acked $k >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    # (a run makes about 2 changes a batch: its journal commit; the day
    # files are written and synced by epochs, at the end of --once at
    # the latest: so every point below is reached)
    for n in 90 171 233; do
        test_expect_success "drain killed before its change $n, power cut: acked events there once" "
            pl_round op $n >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    # an epoch after every batch, and held lines written in turn past 4 kB
    # held (test hooks): lines held over an epoch keep their journal
    # segments until an epoch after they were written
    export LOGPIPE_TEST_EPOCH_MS=0 LOGPIPE_TEST_HOLD_LOW=4000
    for k in 150 1100; do
        test_expect_success "epochs each batch: drain killed once $k entries are acked, power cut: acked events there once" "
            pl_round acked $k >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    for n in 90 171 233 400; do
        test_expect_success "epochs each batch: drain killed before its change $n, power cut: acked events there once" "
            pl_round op $n >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    # and with 2 descriptors kept (--max-open): held files closed and
    # opened again between their turns
    for k in 700; do
        test_expect_success "epochs each batch, --max-open 2: drain killed once $k entries are acked, power cut: acked events there once" "
            PL_DRAIN_ARGS=\"--max-open 2\" pl_round acked $k >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    for n in 300; do
        test_expect_success "epochs each batch, --max-open 2: drain killed before its change $n, power cut: acked events there once" "
            PL_DRAIN_ARGS=\"--max-open 2\" pl_round op $n >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    unset LOGPIPE_TEST_EPOCH_MS LOGPIPE_TEST_HOLD_LOW
    # one service: a batch writes one file, whose own sync is its commit
    # (no journal record)
    pl_events 3000 1
    for k in 150 1100; do
        test_expect_success "one file: drain killed once $k entries are acked, power cut: acked events there once" "
            pl_round acked $k >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    for n in 5 40; do
        test_expect_success "one file: drain killed before its change $n, power cut: acked events there once" "
            pl_round op $n >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
else
    test_skip 'drain under the power-loss shim' "$PL_WHY"
fi

test_done
