#!/bin/sh
# t0220-drain-faults.sh -- logpipe-drain under crashes, stalls, full disks,
# failing fsync: nothing lost, nothing twice (SPEC 4)
. "$(dirname "$0")/lib.sh"
start_redis drain --appendonly yes --appendfsync always

KILLS=30
[ -n "${LP_STRESS:-}" ] && KILLS=300


# idle_over MS CONSUMER: CONSUMER holds pending entries, each delivered
# more than MS ms ago by Redis's clock (the one XAUTOCLAIM --claim-idle
# goes by); XPENDING --raw gives ID, consumer, idle ms, deliveries
idle_over() {
    rcli --raw XPENDING logs:stream logpipe - + 1000000 "$2" |
        awk -v ms="$1" 'NR % 4 == 3 { n++; if ($1 + 0 <= ms) bad = 1 }
            END { exit !(n > 0 && !bad) }'
}

fresh() {
    rcli DEL logs:stream logs:dlq >/dev/null
    rm -rf out
    gen_events "$1" "a b c d e f g h" >in
    logpipe-send <in
}

for point in after-write after-fsync after-ack; do
    test_expect_success "drain killed $point, then restarted: 0 lost, 0 duplicates" '
        fresh 5000 &&
        LOGPIPE_TEST_CRASH='$point' expect_exit 137 logpipe-drain --once \
            -d out -n 700 2>err &&
        {
            # written: to the day files, or held and in the journal
            test "$(seqs $(find out -name "*.jsonl") | wc -l)" -gt 0 ||
            test -n "$(find out/.logpipe-journal -name "seg-*" -size +8c)"
        } &&
        logpipe-drain --once -d out -n 700 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 5000 out
    '
done

# a kill every few milliseconds looks to the drain like a poison entry
# crashing it (--max-deliveries): here only loss and duplicates matter
test_expect_success "drain SIGKILLed at random $KILLS times: 0 lost, 0 duplicates" '
    fresh 100000 &&
    k=0 || exit 1
    while [ $k -lt '$KILLS' ]; do
        logpipe-drain -d out -n 300 --block 50 --max-deliveries 1000 2>>err &
        pid=$!
        sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))
        kill -9 $pid
        wait $pid 2>/dev/null || :
        k=$((k + 1))
    done
    logpipe-drain --once -d out --max-deliveries 1000 2>>err &&
    test "$(pending)" -eq 0 &&
    test_xlen -eq 0 logs:dlq &&
    exactly 100000 out &&
    ! grep -a -v "^{\"_id\":\"[0-9]*-[0-9]*\",.*}$" $(find out -name "*.jsonl")
'

# a drain that stops itself at an exact point, holding a batch, until the
# other has claimed it and archived everything
for point in after-request after-read after-write after-fsync; do
    test_expect_success "a drain stalled $point longer than --claim-idle: 0 lost, 0 duplicates" '
        fresh 20000
        LOGPIPE_TEST_CRASH=stop:'$point' logpipe-drain -d out -c slow -n 500 \
            --block 50 --claim-idle 1s 2>slow.err &
        slow=$!
        wait_for 10 "test \"\$(cut -d\" \" -f3 /proc/$slow/stat)\" = T" &&
        # what slow holds idle past --claim-idle by Redis: stopped right
        # after its request (after-request), slow may be seen stopped before
        # Redis has delivered the entries, and a sleep of 1.2 s could end
        # less than 1 s after that on a loaded machine
        wait_for 30 idle_over 1100 slow &&
        logpipe-drain --once -d out -c quick -n 500 --claim-idle 1s 2>quick.err &&
        kill -CONT $slow &&
        sleep 0.5 &&
        kill -TERM $slow &&
        wait $slow &&
        test "$(pending)" -eq 0 &&
        exactly 20000 out
    '
done

test_expect_success 'two drains, one SIGSTOPped at a random moment: 0 lost, 0 duplicates' '
    fresh 30000
    logpipe-drain -d out -c slow -n 500 --block 50 --claim-idle 1s 2>slow.err &
    slow=$!
    sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))
    kill -STOP $slow
    sleep 1.5
    # slow may be stopped holding the lock of a day file that quick needs:
    # quick runs beside it, and slow goes on a moment after quick started,
    # whatever quick did meanwhile (else quick could wait for it forever)
    logpipe-drain --once -d out -c quick -n 500 --claim-idle 1s 2>quick.err &
    quick=$!
    sleep 0.5
    kill -CONT $slow &&
    wait $quick &&
    kill -TERM $slow &&
    wait $slow &&
    logpipe-drain --once -d out -c slow 2>>slow.err &&
    test "$(pending)" -eq 0 &&
    exactly 30000 out
'

test_expect_success 'XAUTOCLAIM: idle entries of a dead consumer are taken over' '
    fresh 100 &&
    rcli XGROUP CREATE logs:stream logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe dead COUNT 60 STREAMS logs:stream ">" >/dev/null &&
    sleep 1.2 &&
    logpipe-drain --once -d out -c alive --claim-idle 1s -v 2>err &&
    grep_q "60 claimed" err &&
    test "$(pending)" -eq 0 &&
    exactly 100 out
'

test_expect_success 'XAUTOCLAIM: claimed entries deleted meanwhile are acknowledged' '
    fresh 10 &&
    rcli XGROUP CREATE logs:stream logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe dead COUNT 10 STREAMS logs:stream ">" >/dev/null &&
    rcli --raw XRANGE logs:stream - + COUNT 3 | grep -E "^[0-9]+-[0-9]+$" >del &&
    rcli XDEL logs:stream $(cat del) >/dev/null &&
    sleep 1.2 &&
    logpipe-drain --once -d out -c alive --claim-idle 1s -v 2>err &&
    grep_q "3 deleted" err &&
    test "$(pending)" -eq 0 &&
    test "$(seqs $(find out -name "*.jsonl") | wc -l)" -eq 7
'

test_expect_success 'a poison entry reaches the DLQ after exactly --max-deliveries' '
    fresh 20 &&
    echo "{\"service\":\"a\",\"seq\":21,\"POISON\":1}" | logpipe-send &&
    crashes=0 || exit 1
    while LOGPIPE_TEST_CRASH=on-data:POISON logpipe-drain --once -d out \
            --max-deliveries 3 2>>err; [ $? -eq 137 ]; do
        crashes=$((crashes + 1))
        [ $crashes -lt 10 ] || break
    done
    test "$crashes" -eq 3 &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    rcli --raw XRANGE logs:dlq - + >dlq &&
    grep_q "^max-deliveries$" dlq &&
    grep -A1 "^deliveries$" dlq | tail -n 1 | grep -qx 3 &&
    test "$(pending)" -eq 0 &&
    exactly 20 out
'

mkdir -p small
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=400k tmpfs small 2>/dev/null
then
    test_expect_success 'disk full mid-batch: exit 74, no partial line after recovery' '
        rcli DEL logs:stream >/dev/null &&
        gen_events 20000 "a b" >in &&
        logpipe-send <in &&
        expect_exit 74 logpipe-drain --once -d small/out 2>err &&
        grep_q "No space left" err &&
        test "$(pending)" -gt 0 &&
        mount -o remount,size=20m small &&
        logpipe-drain --once -d small/out 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 20000 small/out &&
        ! grep -a -v "^{\"_id\":\"[0-9]*-[0-9]*\",.*}$" $(find small/out -name "*.jsonl")
    '
    umount small
else
    test_skip 'disk full mid-batch' 'needs root to mount a tmpfs'
fi

if command -v strace >/dev/null; then
    test_expect_success 'fsync failing with EIO: exit 74, nothing acknowledged' '
        fresh 3000 &&
        ASAN_OPTIONS=detect_leaks=0 \
        expect_exit 74 strace -f -o /dev/null -e trace=fdatasync \
            -e inject=fdatasync:error=EIO \
            logpipe-drain --once -d out 2>err &&
        grep_q "fsync: Input/output error" err &&
        test "$(pending)" -gt 0 &&
        test "$(rcli --raw XINFO GROUPS logs:stream | grep -A1 "^pending$" | tail -1)" -gt 0 &&
        logpipe-drain --once -d out 2>err &&
        test "$(pending)" -eq 0 &&
        exactly 3000 out
    '
else
    test_skip 'fsync failing with EIO' 'strace is not installed'
fi

test_expect_success 'trimming never removes what another group has not read' '
    fresh 1000 &&
    rcli XGROUP CREATE logs:stream lagging 0 >/dev/null &&
    rcli XREADGROUP GROUP lagging x COUNT 100 STREAMS logs:stream ">" >/dev/null &&
    logpipe-drain --once -d out 2>err &&
    test_xlen -eq 1000 &&
    oldest=$(rcli XPENDING logs:stream lagging | sed -n 2p) &&
    rcli XACK logs:stream lagging $(rcli --raw XRANGE logs:stream - + COUNT 50 | grep -E "^[0-9]+-[0-9]+$") >/dev/null &&
    echo "{\"service\":\"a\",\"seq\":1001}" | logpipe-send &&
    logpipe-drain --once -d out 2>err &&
    test_xlen -eq 951 &&
    first=$(rcli --raw XRANGE logs:stream - + COUNT 1 | head -1) &&
    test "$first" = "$(rcli XPENDING logs:stream lagging | sed -n 2p)"
'

test_expect_success 'a group that read everything: the stream is trimmed to nothing' '
    fresh 500 &&
    logpipe-drain --once -d out &&
    test_xlen -eq 0 &&
    exactly 500 out
'

test_expect_success '--keep keeps acknowledged entries that long' '
    fresh 500 &&
    logpipe-drain --once -d out --keep 1h &&
    test_xlen -eq 500 &&
    exactly 500 out
'

test_done
