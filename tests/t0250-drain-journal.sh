#!/bin/sh
# t0250-drain-journal.sh -- logpipe-drain's journal (issue 14) end to end:
# what a killed run leaves is applied by the next start exactly once, also
# when the day files lost the lines; a forged journal cannot write outside
# --dir; rotate leaves a day the journal covers; SIGHUP cuts it; 2000
# services killed at fixed points and through one simulated power cut lose
# nothing and double nothing. No sleeps as synchronisation: every wait is
# on state (a stopped process, a journal gone, a count in Redis).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/powerloss-lib.sh"
start_redis


# fresh N SERVICES [T0]: an empty archive, a stream of N new events
fresh() {
    rcli DEL logs:stream logs:dlq >/dev/null
    rm -rf out
    gen_events "$1" "$2" ${3:+"$3"} >in
    logpipe-send --max-age 0 <in
}

# the segments of the journals under out, one a line
segs() {
    find out/.logpipe-journal -name 'seg-*.jnl' -type f 2>/dev/null || :
}

# the _ids the journals under out hold (whole archive lines), one a line
journal_ids() {
    find out/.logpipe-journal -name 'seg-*.jnl' -type f -exec cat {} + \
        2>/dev/null | grep -a -o '{"_id":"[0-9]*-[0-9]*"' || :
}

no_journal() {
    ! test -e out/.logpipe-journal
}

SVC5="a b c d e"

# The batch is full: the read of the next one went ahead before it was
# written (lp_drain.c, read_ahead), so those 500 are pending too when Redis
# took that read before the kill; either way the next run reads all 1,000.
test_expect_success 'killed right after its journal commit: the next --once applies it, every event once' '
    fresh 1500 "$SVC5" &&
    LOGPIPE_TEST_CRASH=after-write expect_exit 137 logpipe-drain --once \
        -d out -c j -n 500 2>err &&
    test "$(segs | wc -l)" -eq 1 &&
    test "$(journal_ids | wc -l)" -eq 500 &&
    p=$(pending) && { test "$p" -eq 500 || test "$p" -eq 1000; } &&
    in_files=$(cat $(find out -name "*.jsonl") /dev/null | wc -l) &&
    logpipe-drain --once -v -d out -c j -n 500 2>err &&
    grep_q "^logpipe-drain: journal \.logpipe-journal/[0-9a-f]\{16\}: 500 lines a run left unsynced applied, $in_files of them in their files already$" err &&
    grep_q "^logpipe-drain: 1500 entries read, 1000 archived, 500 already archived," err &&
    no_journal &&
    test "$(pending)" -eq 0 &&
    exactly 1500 out
'

# Killed once the XACK of its first batch is answered: those 300 are
# acknowledged and only the journal is sure to hold them (the epoch that
# would cut it ends at the top of the next loop, never reached). The
# batch is all the stream holds, less than -n: not full, so its lines are
# written through to the day files (not held). The day files are then
# cut back as a power loss may leave them: a is empty, b ends in the
# middle of a line, the others keep every line.
test_expect_success 'acknowledged lines lost from the day files: the journal restores them, once' '
    fresh 1000 "$SVC5" &&
    rcli DEL logs:stream >/dev/null &&
    head -n 300 in | logpipe-send --max-age 0 &&
    LOGPIPE_TEST_CRASH=after-ack expect_exit 137 logpipe-drain --once \
        -d out -c j -n 1000 2>err &&
    test "$(pending)" -eq 0 &&
    test "$(journal_ids | wc -l)" -eq 300 &&
    test "$(cat out/*/*.jsonl | wc -l)" -eq 300 &&
    tail -n +301 in | logpipe-send --max-age 0 &&
    a=$(echo out/a/*.jsonl) && : >$a &&
    b=$(echo out/b/*.jsonl) &&
    truncate -s $(( $(head -n 9 $b | wc -c) + 20 )) $b &&
    kept=$(cat out/*/*.jsonl | wc -l) &&
    test "$(cat out/b/*.jsonl | wc -l)" -eq 9 &&
    test "$kept" -lt 240 &&
    logpipe-drain --once -v -d out -c j -n 1000 2>err &&
    grep_q "^logpipe-drain: journal \.logpipe-journal/[0-9a-f]\{16\}: 300 lines a run left unsynced applied, $kept of them in their files already$" err &&
    no_journal &&
    test "$(pending)" -eq 0 &&
    exactly 1000 out
'

# jrec PATH LINES: one journal record, framed as lp_wal_encode does
# (u32le length, u32le CRC-32 of the 4 length bytes then the payload),
# payload u16le path length, path, lines
jrec() {
    perl -MCompress::Zlib -e '
        ($p, $l) = @ARGV;
        $pl = pack("v", length $p) . $p . $l;
        $len = pack("V", length $pl);
        print $len, pack("V", crc32($pl, crc32($len))), $pl' "$1" "$2"
}

L1='{"_id":"1700000000000-0","seq":1}
'
L2='{"_id":"1700000000000-1","seq":2}
{"_id":"1700000000000-2","seq":3}
'

# forge <RECORDS: an empty archive whose consumer j has a journal (its
# name in h) of one segment: the header, then RECORDS. Not in a pipeline:
# h must reach the body.
forge() {
    rcli DEL logs:stream >/dev/null
    rm -rf out
    logpipe-drain --once -d out -c j 2>err
    h=$(ls -a out | sed -n "s/^\.logpipe-drain-\([0-9a-f]*\)\.lock$/\1/p")
    test -n "$h"
    mkdir -p out/.logpipe-journal/$h
    { printf "LPJNL01\n"; cat; } >out/.logpipe-journal/$h/seg-0000000000000001.jnl
}

if perl -MCompress::Zlib -e 1 2>/dev/null; then
    test_expect_success 'a forged record naming ../x.jsonl: refused, exit 73, nothing outside --dir' '
        jrec "../x.jsonl" "$L1" >rec && forge <rec &&
        expect_exit 73 logpipe-drain --once -d out -c j 2>err &&
        grep_q "^logpipe-drain: --dir out: applying the journal \.logpipe-journal/$h: \.\./x\.jsonl: unsafe path$" err &&
        ! test -e x.jsonl &&
        ! test -e "$TMP/x.jsonl" &&
        test "$(segs | wc -l)" -eq 1
    '

    test_expect_success 'forged records through symlinks in the tree: refused, exit 73, nothing outside --dir' '
        mkdir -p outside &&
        : >target &&
        jrec "evil/2026-01-01.jsonl" "$L1" >rec && forge <rec &&
        ln -s ../outside out/evil &&
        expect_exit 73 logpipe-drain --once -d out -c j 2>err &&
        grep_q "evil: not a directory (symlinks are refused)$" err &&
        test -z "$(ls -A outside)" &&
        jrec "a/2026-01-01.jsonl" "$L1" >rec && forge <rec &&
        mkdir out/a && ln -s ../../target out/a/2026-01-01.jsonl &&
        expect_exit 73 logpipe-drain --once -d out -c j 2>err &&
        grep_q "a/2026-01-01\.jsonl: is a symlink (refused)$" err &&
        ! test -s target
    '

    test_expect_success 'a torn last record is left out with a warning; the records before it are applied' '
        { jrec "a/2026-01-01.jsonl" "$L1" && jrec "b/2026-01-01.jsonl" "$L2" &&
          jrec "c/2026-01-01.jsonl" "$L2" | head -c 30; } >rec && forge <rec &&
        logpipe-drain --once -v -d out -c j 2>err &&
        grep_q "^logpipe-drain: \.logpipe-journal/$h/seg-0000000000000001\.jnl: torn or damaged after byte 166 of 196: the rest was never acknowledged, left out$" err &&
        grep_q "^logpipe-drain: journal \.logpipe-journal/$h: 3 lines a run left unsynced applied, 0 of them in their files already$" err &&
        printf "%s" "$L1" >want && test_cmp want out/a/2026-01-01.jsonl &&
        printf "%s" "$L2" >want && test_cmp want out/b/2026-01-01.jsonl &&
        ! test -e out/c &&
        no_journal
    '

    test_expect_success 'a forged record of lines already in the file: applied once, counted as there' '
        jrec "a/2026-01-01.jsonl" "$L2" >rec && forge <rec &&
        mkdir out/a && printf "%s" "$L2" >out/a/2026-01-01.jsonl &&
        logpipe-drain --once -v -d out -c j 2>err &&
        grep_q ": 2 lines a run left unsynced applied, 2 of them in their files already$" err &&
        printf "%s" "$L2" >want && test_cmp want out/a/2026-01-01.jsonl &&
        no_journal
    '
else
    test_skip 'forged journal records' 'no perl Compress::Zlib'
fi

# Days before today, so that rotate may compress them
OLD=$(( ($(date +%s) / 86400 - 2) * 86400 + 43200 ))

# A drain that stopped itself right after its first batch's journal
# commit (the files unlocked, the batch not yet acknowledged): its journal
# covers the day files, which rotate --grace 0 must leave; once the drain
# runs on and cuts its journal, the next rotate compresses them.
test_expect_success 'rotate --grace 0 beside a drain: a day the journal covers is left, compressed once cut' '
    fresh 600 "$SVC5" $OLD || exit 1
    LOGPIPE_TEST_CRASH=stop:after-fsync logpipe-drain -d out -c j -n 1000 \
        --block 100 2>derr &
    d=$!
    echo $d >>"$TMP/.pids"
    wait_for 30 stopped $d &&
    test "$(journal_ids | wc -l)" -eq 600 &&
    logpipe-rotate -v --grace 0 -d out >act 2>rerr &&
    test "$(grep -c ": left for the next run: lines of it are still only in the drain journal \.logpipe-journal/[0-9a-f]\{16\}/seg-[0-9a-f]\{16\}\.jnl$" rerr)" -eq 5 &&
    ! test -s act &&
    test "$(find out -name "*.jsonl" | wc -l)" -eq 5 &&
    kill -CONT $d &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    wait_for 30 "test -z \"\$(segs)\"" &&
    logpipe-rotate -v --grace 0 -d out >act 2>rerr &&
    ! grep -q "left for the next run" rerr &&
    test "$(find out -name "*.jsonl.gz" | wc -l)" -eq 5 &&
    test "$(find out -name "*.jsonl" | wc -l)" -eq 0 &&
    test "$(grep -c "\"action\":\"compress\"" act)" -eq 5 &&
    kill -TERM $d &&
    wait $d &&
    for f in out/*/*.gz; do gzip -dc $f; done | seqs >got &&
    seq 1 600 >want && test_cmp want got &&
    no_journal
'

# day_fds PID: how many day files PID holds open
day_fds() {
    ls -l /proc/$1/fd 2>/dev/null | grep -c "\.jsonl$" || :
}

# SIGHUP while the journal holds a batch: the files synced and closed
# (an epoch alone would sync them, cut the journal, and keep them open),
# the journal cut, and the drain goes on archiving what comes next
test_expect_success 'SIGHUP to a running drain: journal cut, files synced, the drain keeps working' '
    fresh 400 "$SVC5" || exit 1
    LOGPIPE_TEST_CRASH=stop:after-fsync logpipe-drain -v -d out -c j -n 1000 \
        --block 100 2>derr &
    d=$!
    echo $d >>"$TMP/.pids"
    wait_for 30 stopped $d &&
    test "$(segs | wc -l)" -eq 1 &&
    test "$(day_fds $d)" -eq 5 &&
    kill -HUP $d &&
    kill -CONT $d &&
    wait_for 30 "test -z \"\$(segs)\"" &&
    wait_for 30 "test \"\$(day_fds $d)\" -eq 0" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    gen_events 800 "$SVC5" | sed -n "401,800p" | logpipe-send &&
    wait_for 30 "test \"\$(cat out/*/*.jsonl | wc -l)\" -eq 800" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    kill -0 $d &&
    kill -TERM $d &&
    wait $d &&
    exactly 800 out &&
    no_journal
'

# 2000 services: a batch of 500 touches ~500 files, a run all 2000
SVC2000=$(seq -f "s%04g" 1 2000 | tr "\n" " ")

test_expect_success '2000 services, SIGKILLed at each crash point in turn, then --once: 0 lost, 0 duplicated' '
    fresh 4000 "$SVC2000" &&
    for p in after-write after-ack after-fsync after-request after-read; do
        LOGPIPE_TEST_CRASH=$p expect_exit 137 logpipe-drain --once \
            -d out -c k -n 500 2>>err || exit 1
    done &&
    logpipe-drain --once -v -d out -c k -n 500 2>err &&
    no_journal &&
    test "$(pending)" -eq 0 &&
    test "$(find out -name "*.jsonl" | wc -l)" -eq 2000 &&
    exactly 4000 out
'

if pl_drain_ok; then
    # the shim's kill points without the cut: a SIGKILL just before the
    # drain's Nth file change or sync, wherever that falls (a day file's
    # create, the journal's write or fdatasync, an epoch's sync, a cut)
    test_expect_success '2000 services, SIGKILLed before its change N (power-loss shim), then --once: 0 lost, 0 duplicated' '
        fresh 6000 "$SVC2000" &&
        for n in 37 1500 2222 4100; do
            rm -f kill.log &&
            expect_exit 137 env LD_PRELOAD="$PL_PRELOAD" \
                LOGPIPE_POWERLOSS_LOG=$PL_DIR/kill.log \
                LOGPIPE_POWERLOSS_UNDER=$PL_DIR/out LOGPIPE_POWERLOSS_KILL=$n \
                logpipe-drain --once -d out -c k -n 500 \
                2>>err || exit 1
        done &&
        logpipe-drain --once -d out -c k -n 500 2>err &&
        no_journal &&
        test "$(pending)" -eq 0 &&
        exactly 6000 out
    '

    # a power cut, then another while the next start applies the journal
    # (before its Nth change: writing the lines back, syncing them, or
    # cutting), then a start without the shim: every event once
    test_expect_success "2000 services, a power cut during the journal's replay: acked events there once, then all once" '
        fresh 4000 "$SVC2000" &&
        rcli XRANGE logs:stream - + | grep -E "^[0-9]+-[0-9]+\$" >pl.sent &&
        expect_exit 137 env LD_PRELOAD="$PL_PRELOAD" \
            LOGPIPE_POWERLOSS_LOG=$PL_DIR/r1.log \
            LOGPIPE_POWERLOSS_UNDER=$PL_DIR/out LOGPIPE_POWERLOSS_KILL=3300 \
            logpipe-drain --once -d out -c pl -n 500 2>>err &&
        "$PL_CUT" r1.log >r1.cut &&
        pl_acked_ids acked1 &&
        journal_ids >jids1 &&
        test -s jids1 &&
        rc=0 &&
        { env LD_PRELOAD="$PL_PRELOAD" LOGPIPE_POWERLOSS_LOG=$PL_DIR/r2.log \
            LOGPIPE_POWERLOSS_UNDER=$PL_DIR/out LOGPIPE_POWERLOSS_KILL=300 \
            logpipe-drain --once -d out -c pl -n 500 2>>err || rc=$?; } &&
        test $rc -eq 137 &&
        "$PL_CUT" r2.log >r2.cut &&
        say "journal lines after the first cut: $(wc -l <jids1)," \
            "after the second: $(journal_ids | wc -l)" &&
        test "$(journal_ids | wc -l)" -gt 0 &&
        pl_acked_ids acked2 &&
        test -z "$(LC_ALL=C comm -23 acked1 acked2)" &&
        pl_ids out >ids &&
        test -z "$(uniq -d ids)" &&
        { pl_journal_ids out; cat ids; } | LC_ALL=C sort -u >durable &&
        LC_ALL=C comm -23 acked2 durable >lost &&
        { ! test -s lost || { echo "$(wc -l <lost) acked events lost"; exit 1; }; } &&
        logpipe-drain --once -d out -c pl -n 500 2>>err &&
        no_journal &&
        exactly 4000 out
    '

    pl_events 4000 2000
    for pt in "op 3300 500" "acked 1700 250"; do
        test_expect_success "2000 services, power cut ($pt): acked events there once, then all once" "
            pl_round $pt >>pl.summary
        "
        say "$(tail -n 1 pl.summary 2>/dev/null)"
    done
else
    test_skip '2000 services under the power-loss shim' "$PL_WHY"
fi

test_done
