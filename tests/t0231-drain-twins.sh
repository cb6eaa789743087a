#!/bin/sh
# t0231-drain-twins.sh -- logpipe-drain: one live drain per consumer name
# (a lock in --dir and a heartbeat in Redis), a dead self restarted at
# once, one group per --dir unless --shared-dir (issue 12, item 3)
. "$(dirname "$0")/lib.sh"
start_redis twins --appendonly yes --appendfsync always

KEY=logs:stream:drain:logpipe:same

# exactly N PATH...: every seq 1..N once in the archive lines (*.jsonl,
# *.out) under PATH...
exactly() {
    n=$1; shift
    find "$@" \( -name "*.jsonl" -o -name "*.out" \) -type f -exec cat {} + |
        sed -n 's/.*"seq":\([0-9]*\).*/\1/p' | sort -n >got
    tally "$n" got
}

# whole FILE...: the seq numbers of the whole lines of FILE... (a drain
# killed while it wrote to its stdout leaves part of a line), no repeats
whole() {
    cat "$@" | grep "}$" | sed -n "s/.*\"seq\":\([0-9]*\),.*/\1/p" | sort -nu
}

# archived: the number of archive lines under out
archived() {
    find out -name "*.jsonl" -type f -exec cat {} + 2>/dev/null | wc -l
}

# consumed N: the group has read N entries and acknowledged all it read
consumed() {
    test "$(rcli XINFO GROUPS logs:stream |
        awk 'p == "entries-read" { print } { p = $0 }')" -eq "$1" &&
    test "$(pending)" -eq 0
}

fresh() {
    rcli DEL logs:stream logs:dlq $KEY >/dev/null
    rm -rf out out2 *.out *.err
    gen_events "$1" "a b c" >in
    logpipe-send <in
}

# Background drains are recorded in $TMP/.pids: whatever fails, the
# harness stops them at the end. A background start never ends an &&
# list, which would run the whole list in the background; and set -e does
# not hold in a test body (it runs as the condition of an if), so what
# stands outside an && list ends with || exit 1.

# beating PID: the heartbeat holds PID
beating() {
    test "$(rcli GET $KEY | cut -d" " -f1)" = "$1"
}

test_expect_success 'a live twin is refused with exit 75, naming it; nothing twice' '
    fresh 3000 || exit 1
    LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -c same -d out -n 500 \
        --block 50 2>a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 stopped $a &&
    expect_exit 75 logpipe-drain --once -c same -d out 2>b.err &&
    grep_q "^logpipe-drain: consumer same of group logpipe on logs:stream is in use by pid $a on host $(hostname), running since .*: give each drain its own --consumer$" b.err &&
    kill -CONT $a &&
    wait_for 20 "test \"\$(pending)\" -eq 0" &&
    kill -TERM $a &&
    { wait $a || { echo "the drain exited $?:"; cat a.err; false; }; } &&
    test "$(rcli EXISTS $KEY)" -eq 0 &&
    exactly 3000 out
'

test_expect_success 'a live twin with another sink is refused by the heartbeat' '
    fresh 1000 || exit 1
    LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -c same -d out -n 500 \
        --block 50 2>a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 stopped $a &&
    expect_exit 75 logpipe-drain --once -c same --stdout >b.out 2>b.err &&
    grep_q "in use by pid $a on host $(hostname), running since .* (heartbeat $KEY): give each drain its own --consumer$" b.err &&
    expect_exit 75 logpipe-drain --once -c same -d out2 2>b.err &&
    grep_q "in use by pid $a " b.err &&
    test ! -s b.out &&
    kill -CONT $a &&
    kill -TERM $a &&
    wait $a
'

test_expect_success 'a drain SIGKILLed and restarted at once is accepted (files, then stdout)' '
    fresh 2000 || exit 1
    logpipe-drain -c same -d out -n 100 --block 50 2>a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 beating $a &&
    kill -9 $a || exit 1
    wait $a || :
    logpipe-drain --once -c same -d out 2>b.err &&
    test "$(pending)" -eq 0 &&
    exactly 2000 out || exit 1
    fresh 2000 || exit 1
    logpipe-drain -c same --stdout -n 100 --block 50 >a.out 2>a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 beating $a &&
    kill -9 $a || exit 1
    wait $a || :
    logpipe-drain --once -c same --stdout >b.out 2>b.err &&
    test "$(pending)" -eq 0 &&
    whole a.out b.out >got && seq 1 2000 >want && test_cmp want got
'

test_expect_success 'a drain that exits frees its name: after 74 and 75, the heartbeat is gone' '
    fresh 100 &&
    expect_exit 74 logpipe-drain --once -c same --stdout >/dev/full 2>b.err &&
    test "$(rcli EXISTS $KEY)" -eq 0 &&
    expect_exit 75 logpipe-drain --once -c same --max-deliveries 1 \
        --exec "cat >/dev/null; exit 1" 2>b.err &&
    test "$(rcli EXISTS $KEY)" -eq 0
'

if unshare --kill-child -pf --mount-proc true 2>/dev/null; then
    # another PID namespace: its processes are out of our sight, as on
    # another host; only its heartbeat tells that it lives. Its TTL is
    # --claim-idle, 10s, refreshed every 3.3s: no stall of a loaded
    # machine lets it lapse while the twin is alive
    test_expect_success 'a twin out of sight is refused until its heartbeat expires' '
        fresh 500 || exit 1
        unshare --kill-child -pf --mount-proc logpipe-drain -c same \
            --stdout --block 50 --claim-idle 10s >a.out 2>a.err &
        a=$!
        echo $a >>"$TMP/.pids"
        wait_for 20 "test \"\$(rcli EXISTS $KEY)\" -eq 1" &&
        expect_exit 75 logpipe-drain --once -c same --stdout >b.out 2>b.err &&
        grep_q "in use by pid 1 on host $(hostname), running since .* (heartbeat $KEY, which expires in [0-9.]*s unless that drain refreshes it)" b.err &&
        kill -9 $a || exit 1
        wait $a || :
        wait_for 30 "test \"\$(rcli EXISTS $KEY)\" -eq 0" &&
        logpipe-drain --once -c same --stdout >b.out 2>b.err &&
        test "$(pending)" -eq 0 &&
        whole a.out b.out >got && seq 1 500 >want && test_cmp want got
    '
else
    test_skip 'a twin out of sight is refused until its heartbeat expires' \
        'unshare cannot make a PID namespace here (needs root)'
fi

# the stalled drain's heartbeat lasts 1s (--claim-idle 1s) and lapses
# while it is stopped; the other's lasts the default 60s, which no stall
# of a loaded machine lets lapse
test_expect_success 'a drain that stalled past its heartbeat, its name taken, stops without writing' '
    fresh 2000 || exit 1
    LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -c same -d out -n 500 \
        --block 50 --claim-idle 1s 2>stall-a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 stopped $a &&
    wait_for 20 "test \"\$(rcli EXISTS $KEY)\" -eq 0" || exit 1
    logpipe-drain -c same --stdout --block 50 >stall.out 2>stall-b.err &
    b=$!
    echo $b >>"$TMP/.pids"
    wait_for 20 beating $b &&
    wait_for 20 "test \"\$(pending)\" -eq 0" &&
    kill -CONT $a &&
    expect_exit 75 wait $a &&
    grep_q "in use by pid $b .*: give each drain its own --consumer" stall-a.err &&
    # b acknowledged the 500 it took over before it read the other 1,500:
    # stopped before it has read them all, it would not have written them
    wait_for 20 consumed 2000 &&
    kill -TERM $b &&
    wait $b &&
    test "$(archived)" -eq 0 &&
    exactly 2000 stall.out
'

test_expect_success 'a second group on the same --dir is refused with exit 78, unless --shared-dir' '
    fresh 1000 || exit 1
    LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -g g1 -d out -n 500 \
        --block 50 2>a.err &
    a=$!
    echo $a >>"$TMP/.pids"
    wait_for 20 stopped $a &&
    expect_exit 78 logpipe-drain --once -g g2 -d out 2>b.err &&
    grep_q "^logpipe-drain: --dir out: a drain of group g1 on stream logs:stream writes into it (lock file .logpipe-group-[0-9a-f]*.lock): each group gets every event, so the tree would hold them twice; give each group its own --dir, or --shared-dir if that is what you want$" b.err &&
    expect_exit 78 logpipe-drain --once -s other -g g1 -d out 2>b.err &&
    grep_q "a drain of group g1 on stream logs:stream writes into it" b.err &&
    test "$(archived)" -eq 0 &&
    logpipe-drain --once -g g2 -d out2 2>b.err &&
    exactly 1000 out2 &&
    logpipe-drain --once -g g3 -d out --shared-dir --layout "g3/%F.jsonl" \
        2>b.err &&
    test "$(seqs out/g3/*.jsonl | wc -l)" -eq 1000 &&
    kill -CONT $a &&
    kill -TERM $a &&
    wait $a &&
    logpipe-drain --once -g g1 -d out 2>b.err &&
    test "$(rcli XPENDING logs:stream g1 | head -n 1)" -eq 0 &&
    exactly 1000 out/a out/b out/c
'

# The issue: two drains under one consumer name on one --dir, killed and
# restarted again and again. Each round, one holds a batch of new entries
# (stopped right after its read) while the other starts: before, the
# second read that batch as its pending entries and archived it, and the
# first archived it again when it went on (its new entries are not looked
# for in the archive). Now the second is refused, and the first is killed
# once it archived something, at a point it reaches by itself.
test_expect_success 'the kill-and-restart scenario of the issue: every event exactly once' '
    rcli DEL logs:stream logs:dlq $KEY >/dev/null &&
    rm -rf out *.out *.err &&
    gen_events 10000 "a b c" >all &&
    r=0 || exit 1
    while [ $r -lt 5 ]; do
        r=$((r + 1))
        sed -n "$((r * 2000 - 1999)),$((r * 2000))p" all | logpipe-send ||
            exit 1
        LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -c same -d out \
            -n 300 --block 50 2>>a.err &
        a=$!
        echo $a >>"$TMP/.pids"
        wait_for 20 stopped $a &&
        expect_exit 75 logpipe-drain --once -c same -d out -n 300 2>>b.err &&
        kill -CONT $a &&
        wait_for 20 "test \$(archived) -ge $((r * 2000 - 1000))" &&
        kill -9 $a || exit 1
        wait $a || :
    done
    test "$(grep -c "give each drain its own --consumer" b.err)" -eq 5 &&
    logpipe-drain --once -c same -d out 2>c.err &&
    test "$(pending)" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    exactly 10000 out
'

test_done
