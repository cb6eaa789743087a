#!/bin/sh
# t0230-drain-ours.sh -- logpipe-drain: a failure of our own environment
# (full disk, failed fsync, failing stdout, an --exec that cannot run or
# fails) never counts against an entry; --max-deliveries is for entries
# that break the drain, and only a failure about the entry itself sends
# it to the DLQ (issue 12, item 1)
. "$(dirname "$0")/lib.sh"
start_redis ours --appendonly yes --appendfsync always


# one && chain: called left of &&, where set -e is off
fresh() {
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rm -rf out out.* err* calls flag &&
    gen_events "$1" "${2:-a b c d e f g h}" >in &&
    logpipe-send <in
}

mkdir -p small
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=1m tmpfs small 2>/dev/null
then
    test_expect_success 'a full disk, 12 runs: nothing to the DLQ, every event once after room is made' '
        fresh 20000 &&
        i=0 || exit 1
        while [ $i -lt 12 ]; do
            i=$((i + 1))
            expect_exit 74 logpipe-drain --once -c c1 -d small/out 2>err &&
            grep_q "No space left on device" err &&
            test "$(rcli XLEN logs:dlq)" -eq 0 &&
            test "$(pending)" -gt 0 ||
                { say "run $i: $(rcli XLEN logs:dlq) in the DLQ"; exit 1; }
        done &&
        test "$(max_count)" -eq 0 &&
        mount -o remount,size=32m small &&
        logpipe-drain --once -c c1 -d small/out 2>err &&
        test "$(pending)" -eq 0 &&
        test "$(rcli XLEN logs:dlq)" -eq 0 &&
        exactly 20000 small/out
    '
    umount small
else
    test_skip 'a full disk, 12 runs' 'needs root to mount a 1 MiB tmpfs'
fi

if command -v strace >/dev/null; then
    # the first batch fails at its journal commit, and is given back
    test_expect_success 'fsync failing with EIO, 7 runs: nothing to the DLQ' '
        fresh 5000 &&
        i=0 || exit 1
        while [ $i -lt 7 ]; do
            i=$((i + 1))
            ASAN_OPTIONS=detect_leaks=0 \
            expect_exit 74 strace -f -o /dev/null -e trace=fdatasync \
                -e inject=fdatasync:error=EIO \
                logpipe-drain --once -c c1 -d out 2>err &&
            grep_q "fsync: Input/output error" err &&
            test "$(rcli XLEN logs:dlq)" -eq 0 &&
            test "$(pending)" -ge 1000 &&
            test "$(max_count)" -eq 0 || { say "run $i"; exit 1; }
        done &&
        logpipe-drain --once -c c1 -d out 2>err &&
        test "$(pending)" -eq 0 &&
        test "$(rcli XLEN logs:dlq)" -eq 0 &&
        exactly 5000 out
    '
else
    test_skip 'fsync failing with EIO, 7 runs' 'strace is not installed'
fi

test_expect_success 'a standard output that fails, 7 runs: nothing to the DLQ' '
    fresh 300 &&
    i=0 || exit 1
    while [ $i -lt 7 ]; do
        i=$((i + 1))
        expect_exit 74 logpipe-drain --once --stdout -n 100 >/dev/full 2>err &&
        grep_q "stdout: No space left on device" err &&
        test "$(max_count)" -eq 0 || { say "run $i"; exit 1; }
    done &&
    test "$(pending)" -eq 100 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    logpipe-drain --once --stdout >out 2>err &&
    seqs out >got && seq 1 300 >want && test_cmp want got
'

test_expect_success 'an --exec command that cannot run, 7 runs: nothing to the DLQ' '
    fresh 50 &&
    i=0 || exit 1
    while [ $i -lt 7 ]; do
        i=$((i + 1))
        expect_exit 78 logpipe-drain --once --exec "no-such-command-xyz" 2>err &&
        grep_q "cannot be run" err &&
        test "$(max_count)" -eq 0 || { say "run $i"; exit 1; }
    done &&
    test "$(pending)" -eq 50 &&
    test "$(rcli XLEN logs:dlq)" -eq 0
'

test_expect_success 'an --exec command failing on everything: --once exits 75, nothing to the DLQ' '
    fresh 30 &&
    i=0 || exit 1
    while [ $i -lt 3 ]; do
        i=$((i + 1))
        expect_exit 75 logpipe-drain --once --max-deliveries 2 \
            --exec "cat >/dev/null; echo x >>calls; exit 1" 2>err &&
        grep_q "the command is failing, not the entries" err &&
        grep_q "the command fails whatever the entry (exit status 1)" err &&
        test "$(max_count)" -eq 0 || { say "run $i"; cat err; exit 1; }
    done &&
    test "$(wc -l <calls)" -eq 9 &&
    test "$(pending)" -eq 30 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    logpipe-drain --once --exec "cat >>out" 2>err &&
    seqs out >got && seq 1 30 >want && test_cmp want got
'

# the command refuses one event (seq 7) and takes every other
cat >refuse7.sh <<\EOF
cat >batch
if grep -q '"seq":7,' batch; then exit 3; fi
cat batch >>out
EOF

test_expect_success 'an --exec command refusing one entry: that one to the DLQ, why, the rest once' '
    fresh 20 &&
    logpipe-drain --once -n 10 --max-deliveries 2 --exec "sh refuse7.sh" \
        2>err &&
    test "$(pending)" -eq 0 &&
    seqs out >got && seq 1 20 | grep -vx 7 >want && test_cmp want got &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    rcli --raw XRANGE logs:dlq - + >dlq &&
    grep -A1 "^error$" dlq | tail -n 1 | grep -qx exec-failed &&
    grep_q "^the command failed on this entry alone (exit status 3), then took the next entry$" dlq &&
    grep_q "\"seq\":7," dlq
'

test_expect_success 'the refused entry last: it waits, pending, for an entry to judge it' '
    fresh 7 &&
    expect_exit 75 logpipe-drain --once --max-deliveries 2 \
        --exec "sh refuse7.sh" 2>err &&
    grep_q "no other entry came to tell whether the entry or the command fails" err &&
    test "$(pending)" -eq 1 &&
    test "$(max_count)" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    echo "{\"service\":\"a\",\"seq\":8}" | logpipe-send &&
    logpipe-drain --once --max-deliveries 2 --exec "sh refuse7.sh" 2>err &&
    test "$(pending)" -eq 0 &&
    seqs out >got && printf "%s\n" 1 2 3 4 5 6 8 >want && test_cmp want got &&
    test "$(rcli XLEN logs:dlq)" -eq 1
'

# the example ACL user of the drain may give deliveries back
sed -e "s/>CHANGE-ME-\([a-z]*\)/>pw-\1/" "$TOP/examples/users.acl" >users.acl
start_redis acl --aclfile "$TMP/users.acl"
test_expect_success 'the example ACL user logpipe-drain gives deliveries back' '
    gen_events 20 >in &&
    redis-cli -p $REDIS_PORT --user admin --pass pw-admin --no-auth-warning \
        XGROUP CREATE logs:stream logpipe 0 MKSTREAM >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw-send logpipe-send \
        -r redis://logpipe-send@127.0.0.1:$REDIS_PORT/0 <in &&
    LOGPIPE_REDIS_PASSWORD=pw-drain expect_exit 74 logpipe-drain --once -v \
        --stdout -r redis://logpipe-drain@127.0.0.1:$REDIS_PORT/0 \
        >/dev/full 2>err &&
    grep_q "20 deliveries given back" err &&
    ! grep -q "giving back" err
'

test_done
