#!/bin/sh
# t0255-drain-syncfs.sh -- an epoch of many files is made durable by one
# syncfs(2) of the archive's file system instead of a sync per file
# (lp_archive.h, LP_SYNCFS_FILES): taken when there are that many, not
# with a few; its failure ends the run (74) with nothing lost; and a power
# cut at any point of such a run loses no acknowledged event
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/powerloss-lib.sh"
start_redis drain

fresh() {
    rcli DEL logs:stream >/dev/null
    rm -rf out
    gen_events "$1" "$2" >in
    logpipe-send <in
}

# syncfs(2) needs Linux 5.8 to report errors; drain keeps a sync per file
# before that (lp_sync_fs_reports)
kernel_ok() {
    uname -r | awk -F. '{ exit !($1 > 5 || ($1 == 5 && $2 >= 8)) }'
}

many=$(seq -f 's%03g' 1 200 | tr '\n' ' ')

if command -v strace >/dev/null && kernel_ok; then
    # strace -c: the calls of every thread, counted (LeakSanitizer cannot
    # run under ptrace: off there, as in t0253)
    test_expect_success '200 files: their epochs are syncfs, not 200 fdatasyncs each' '
        fresh 3000 "$many" &&
        ASAN_OPTIONS=detect_leaks=0 strace -f -c -o calls \
            -e trace=fdatasync,fsync,syncfs \
            logpipe-drain --once -d out -n 100 &&
        test "$(pending)" -eq 0 &&
        exactly 3000 out &&
        awk "\$NF == \"syncfs\" { s = \$(NF - 1) }
             \$NF == \"fdatasync\" { f = \$(NF - 1) }
             END { exit !(s >= 1 && f < 200) }" calls
    '

    test_expect_success '20 files: a sync per file, no syncfs' '
        fresh 3000 "$(seq -f "s%03g" 1 20 | tr "\n" " ")" &&
        ASAN_OPTIONS=detect_leaks=0 strace -f -c -o calls \
            -e trace=fdatasync,fsync,syncfs \
            logpipe-drain --once -d out -n 100 &&
        exactly 3000 out &&
        ! grep -q syncfs calls
    '

    # the last epoch of --once is a syncfs: its failure is the disk's, 74;
    # what was acknowledged is in the journal, which the next run applies
    test_expect_success 'syncfs fails: 74 with the file system named, then every event once' '
        fresh 3000 "$many" &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -e trace=syncfs \
            -e inject=syncfs:error=EIO \
            logpipe-drain --once -d out -n 100 2>err &&
        grep_q "the archive.s file system (syncfs): fsync: Input/output error" err &&
        test -d out/.logpipe-journal &&
        logpipe-drain --once -d out -n 100 2>err &&
        test "$(pending)" -eq 0 &&
        ! test -e out/.logpipe-journal &&
        exactly 3000 out
    '

    # a seccomp filter that refuses syncfs is not a failed write: each
    # file is synced instead
    test_expect_success 'syncfs refused (ENOSYS): a sync per file instead, every event once' '
        fresh 3000 "$many" &&
        ASAN_OPTIONS=detect_leaks=0 strace -f -c -o calls \
            -e trace=fdatasync,fsync,syncfs \
            -e inject=syncfs:error=ENOSYS \
            logpipe-drain --once -d out -n 100 2>err &&
        test "$(pending)" -eq 0 &&
        ! test -e out/.logpipe-journal &&
        exactly 3000 out &&
        awk "\$NF == \"fdatasync\" { f = \$(NF - 1) } END { exit !(f >= 200) }" calls
    '

    # a file system mounted below --dir: a syncfs of --dir's would not
    # sync its files, so each file is synced (a private mount namespace,
    # where unshare and mount are allowed)
    if unshare -m --propagation private sh -c \
        "mkdir -p mnt && mount -t tmpfs none mnt && umount mnt" 2>/dev/null
    then
        test_expect_success 'a file system mounted below --dir: no syncfs, every event once' '
            fresh 3000 "$many" &&
            mkdir -p out/s001 &&
            unshare -m --propagation private sh -c \
                "mount -t tmpfs none out/s001 &&
                 ASAN_OPTIONS=detect_leaks=0 strace -f -c -o calls \
                     -e trace=fdatasync,fsync,syncfs \
                     logpipe-drain --once -d out -n 100 &&
                 find out -name \"*.jsonl\" -exec cat {} + >all.lines" &&
            test "$(pending)" -eq 0 &&
            seqs all.lines >got &&
            tally 3000 got &&
            ! grep -q syncfs calls
        '
    else
        test_skip 'a file system mounted below --dir' 'no mount namespace here'
    fi
else
    test_skip '200 files: their epochs are syncfs' 'no strace, or Linux before 5.8'
    test_skip 'syncfs refused (ENOSYS)' 'no strace, or Linux before 5.8'
    test_skip 'a file system mounted below --dir' 'no strace, or Linux before 5.8'
    test_skip '20 files: a sync per file' 'no strace, or Linux before 5.8'
    test_skip 'syncfs fails: 74' 'no strace, or Linux before 5.8'
fi

# power cuts over 200 files: the shim counts syncfs as making every file
# of the file system durable up to its size when the call began, and the
# names made before it (tests/powerloss.c)
if kernel_ok && pl_drain_ok; then
    pl_events 3000 200
    test_expect_success "200 files: drain killed once 2100 entries are acked, power cut: acked events there once" "
        pl_round acked 2100 >>pl.summary
    "
    say "$(tail -n 1 pl.summary)"
    # --once, 20 a batch: about 910 changes, then the last epoch's syncfs
    # (914 when measured: 914 cuts just before it, 915 just after, 917
    # within the journal's cut); a point past the end is a cut right after
    # the run, whose log shows the syncfs (an A record)
    for n in 120 600 914 915 917; do
        test_expect_success "200 files: drain killed before its change $n, power cut: acked events there once" "
            PL_ALLOW_DONE=1 pl_round op $n >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    test_expect_success "200 files: a power cut right after --once: every event there, synced by syncfs" "
        PL_ALLOW_DONE=1 pl_round op 100000 >>pl.summary &&
        grep -q '^A ' pl.log
    "
    say "$(tail -n 1 pl.summary)"
else
    test_skip 'drain over 200 files under the power-loss shim' \
        "${PL_WHY:-Linux before 5.8}"
fi

test_done
