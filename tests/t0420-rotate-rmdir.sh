#!/bin/sh
# t0420-rotate-rmdir.sh -- rotate removes empty directories while drains
# make their day files in them: the drain walks its path again and loses
# nothing (PITFALLS "Files" 7)
. "$(dirname "$0")/lib.sh"

start_redis

# stopped PID: the process is in state T (stopped)
stopped() {
    test "$(sed -e 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d" " -f1)" = T
}

# wait_stopped PID: until PID stops itself; fails at once when it exits
wait_stopped() {
    wait_for 60 "stopped $1 || ! kill -0 $1" && stopped "$1"
}

# A drain that stops itself right after it opened a directory of its
# path (LOGPIPE_TEST_CRASH=stop:opened-dir), before it makes what comes
# next in it; rotate then prunes that directory, empty; the drain goes on.
test_expect_success 'rotate removes the directory a drain just opened, before its day file: the drain makes it again' '
    rcli DEL logs:stream >/dev/null &&
    echo "{\"service\":\"svc\",\"seq\":1}" | logpipe-send &&
    mkdir out || exit 1
    LOGPIPE_TEST_CRASH=stop:opened-dir logpipe-drain --once -d out 2>derr &
    drain=$!
    wait_stopped $drain &&
    test -d out/svc && test -z "$(ls -A out/svc)" &&
    logpipe-rotate -d out >rot &&
    grep_q "\"action\":\"rmdir\",\"path\":\"svc\"" rot &&
    test ! -e out/svc &&
    kill -CONT $drain &&
    { wait $drain || { cat derr; false; }; } &&
    test "$(seqs out/svc/*.jsonl)" = 1 &&
    test "$(rcli XPENDING logs:stream logpipe | head -n 1)" = 0 &&
    test_xlen -eq 0 logs:dlq
'

test_expect_success 'the same one level up: a directory removed before the drain makes the next one in it' '
    rcli DEL logs:stream >/dev/null &&
    rm -rf out && mkdir out &&
    echo "{\"service\":\"svc\",\"host\":\"h1\",\"seq\":2}" | logpipe-send || exit 1
    LOGPIPE_TEST_CRASH=stop:opened-dir logpipe-drain --once -d out \
        --layout "{service}/{host}/%Y-%m-%d.jsonl" 2>derr &
    drain=$!
    wait_stopped $drain &&
    test -d out/svc && test ! -e out/svc/h1 &&
    logpipe-rotate -d out --layout "{service}/{host}/%Y-%m-%d.jsonl" >rot &&
    grep_q "\"action\":\"rmdir\",\"path\":\"svc\"" rot &&
    kill -CONT $drain &&
    { wait $drain || { cat derr; false; }; } &&
    test "$(seqs out/svc/h1/*.jsonl)" = 2 &&
    test "$(rcli XPENDING logs:stream logpipe | head -n 1)" = 0
'

# The scenario of the report: many new services, rotate in a loop. Before
# the fix every run of this test lost drains (exit 73 ENOENT) at 50
# services already; the outcome no longer depends on who wins.
test_expect_success 'drains making 600 new service directories while rotate loops: every run archives everything' '
    for r in 1 2 3; do
        rcli DEL logs:stream >/dev/null &&
        rm -rf many && mkdir many &&
        awk -v r=$r "BEGIN { for (i = 1; i <= 600; i++)
            printf \"{\\\"service\\\":\\\"s%d\\\",\\\"seq\\\":%d}\\n\", i, i }" |
            logpipe-send &&
        : >looping &&
        { while test -e looping; do
              logpipe-rotate -d many --grace 0 >>rot.$r 2>&1 || :
          done & } &&
        loop=$! &&
        rc=0 &&
        logpipe-drain --once -d many -n 100 2>derr.$r || rc=$?
        rm -f looping && wait $loop &&
        { test $rc -eq 0 || { cat derr.$r; false; }; } &&
        seqs $(find many -name "*.jsonl") >got &&
        seq 1 600 >want &&
        test_cmp want got || exit 1
    done
'

test_done
