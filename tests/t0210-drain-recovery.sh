#!/bin/sh
# t0210-drain-recovery.sh -- logpipe-drain across crashes, signals, restarts
. "$(dirname "$0")/lib.sh"
start_redis drain --appendonly yes --appendfsync always

# blocked: waits until a client (the one drain running) is blocked in
# XREADGROUP: its group is made and it waits for entries, however long
# its start took
blocked() {
    wait_for 60 "rcli CLIENT LIST | grep -q \"flags=b .*cmd=xreadgroup\""
}

test_expect_success 'own pending entries are read first after a restart' '
    gen_events 50 >in &&
    logpipe-send <in &&
    rcli XGROUP CREATE logs:stream logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe c1 COUNT 30 STREAMS logs:stream ">" >/dev/null &&
    test "$(pending)" -eq 30 &&
    logpipe-drain --once -c c1 -d out &&
    test "$(pending)" -eq 0 &&
    seqs out/*/*.jsonl >got &&
    seq 1 50 >want &&
    test_cmp want got
'

test_expect_success 'entries deleted while pending are acknowledged and counted' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 5 >in &&
    logpipe-send <in &&
    rcli XGROUP CREATE logs:stream logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe c2 COUNT 5 STREAMS logs:stream ">" >/dev/null &&
    rcli --raw XRANGE logs:stream - + COUNT 2 | grep -E "^[0-9]+-[0-9]+$" >del &&
    rcli XDEL logs:stream $(cat del) >/dev/null &&
    rm -rf out &&
    logpipe-drain --once -c c2 -d out 2>err &&
    grep_q "deleted from the stream" err &&
    test "$(pending)" -eq 0 &&
    test "$(cat out/*/*.jsonl | wc -l)" -eq 3
'

test_expect_success 'drain SIGKILLed mid-run, then restarted: nothing lost' '
    rcli DEL logs:stream >/dev/null &&
    rm -rf out &&
    gen_events 60000 "a b c d e f g h" >in &&
    logpipe-send <in &&
    kills=0 || exit 1
    while [ $kills -lt 5 ]; do
        logpipe-drain -d out -c k -n 500 --block 100 2>>err &
        pid=$!
        sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) % 3 + 1 ))
        kill -9 $pid
        wait $pid 2>/dev/null || :
        kills=$((kills + 1))
    done
    logpipe-drain --once -d out -c k 2>>err &&
    test "$(pending)" -eq 0 &&
    seqs out/*/*.jsonl >got &&
    sort -un got >uniq &&
    seq 1 60000 >want &&
    test_cmp want uniq &&
    say "duplicates after 5 kills: $(( $(wc -l <got) - 60000 ))" &&
    ! grep -a -v "^{\"_id\":\"[0-9]*-[0-9]*\",.*}$" out/*/*.jsonl
'

test_expect_success 'SIGTERM: the batch in hand is finished, exit 0, no duplicates' '
    rcli DEL logs:stream >/dev/null
    rm -rf out
    gen_events 40000 >in
    logpipe-send <in
    logpipe-drain -d out -n 200 2>err &
    pid=$!
    wait_for 20 "test -n \"\$(find out -name \"*.jsonl\" -size +1k)\"" &&
    kill -TERM $pid &&
    wait $pid &&
    logpipe-drain --once -d out &&
    seqs out/*/*.jsonl >got &&
    seq 1 40000 >want &&
    test_cmp want got &&
    test "$(pending)" -eq 0
'

test_expect_success 'a running drain archives new events within its block time' '
    rcli DEL logs:stream >/dev/null
    rm -rf out
    logpipe-drain -d out --block 200 2>err &
    pid=$!
    gen_events 10 >in &&
    logpipe-send <in &&
    wait_for 10 "test \"\$(cat out/*/*.jsonl 2>/dev/null | wc -l)\" -eq 10" &&
    kill -TERM $pid &&
    wait $pid
'

test_expect_success 'SIGTERM while blocked in XREADGROUP ends at once' '
    logpipe-drain -d out --block 60000 2>err &
    pid=$!
    blocked &&
    kill -TERM $pid &&
    wait_for 30 "! kill -0 $pid" &&
    wait $pid
'

test_expect_success 'Redis restarted under a running drain: it reconnects' '
    rcli DEL logs:stream >/dev/null
    rm -rf out
    gen_events 100 >in
    logpipe-send <in
    logpipe-drain -d out --block 200 --timeout 30s 2>err &
    pid=$!
    wait_for 10 "test \"\$(cat out/*/*.jsonl 2>/dev/null | wc -l)\" -eq 100" &&
    stop_redis KILL &&
    sleep 0.5 &&
    restart_redis &&
    gen_events 200 >in2 &&
    sed -n "101,200p" in2 | logpipe-send &&
    wait_for 20 "test \"\$(cat out/*/*.jsonl 2>/dev/null | wc -l)\" -eq 200" &&
    kill -TERM $pid &&
    wait $pid &&
    seqs out/*/*.jsonl >got &&
    seq 1 200 >want &&
    test_cmp want got
'

test_expect_success 'NOGROUP (stream deleted under the drain): group recreated at 0' '
    rm -rf out
    logpipe-drain -d out --block 200 2>err &
    pid=$!
    blocked &&
    rcli DEL logs:stream >/dev/null &&
    gen_events 20 >in &&
    logpipe-send <in &&
    wait_for 20 "test \"\$(cat out/*/*.jsonl 2>/dev/null | wc -l)\" -eq 20" &&
    kill -TERM $pid &&
    wait $pid &&
    grep_q "group logpipe is gone" err
'

test_done
