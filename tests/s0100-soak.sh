#!/bin/sh
# s0100-soak.sh -- `make stress` only: minutes of load with everything
# failing at once. Senders write through a WAL, two drains are SIGKILLed
# and SIGSTOPped at random, rotate compresses (with late events) every few
# seconds, and Redis itself is killed and restarted. At the end every event
# must be in the archive once (send finds what Redis stored by the
# positions of its producers: it doubles nothing).
. "$(dirname "$0")/lib.sh"

SECONDS_LOAD=${LP_SOAK_SECONDS:-120}
start_redis soak --appendonly yes --appendfsync always

d1=$(date -u -d '-1 day' +%F)
today=$(date -u +%F)

# producer: batches of 2000 events with unique seqs, some for yesterday
produce() {
    seq0=0
    while [ ! -e stop ]; do
        awk -v s="$seq0" -v a="$d1" -v b="$today" 'BEGIN {
            for (i = 1; i <= 2000; i++)
                printf "{\"timestamp\":\"%sT%02d:%02d:00Z\",\"service\":\"s%d\",\"seq\":%d}\n",
                    (i % 5 ? b : a), 0, i % 60, i % 6, s + i
        }' >batch.$seq0
        logpipe-send --wal wal --max-age 3d --max-skew 1d <batch.$seq0 \
            2>>send.err || echo "send exit $?" >>send.err
        rm -f batch.$seq0
        seq0=$((seq0 + 2000))
    done
    echo "$seq0" >produced
}

drain() {
    while [ ! -e stop ]; do
        logpipe-drain -d arch -c "$1" -n 300 --block 100 --claim-idle 2s \
            --max-deliveries 1000 --timeout 60s 2>>"drain.$1.err" &
        echo $! >"drain.$1.pid"
        wait $! 2>/dev/null
    done
}

test_expect_success "soak: $SECONDS_LOAD s of load and faults, nothing lost" '
    produce &
    prod=$!
    drain one &
    d_one=$!
    drain two &
    d_two=$!
    end=$(( $(date +%s) + '$SECONDS_LOAD' ))
    n=0
    while [ "$(date +%s)" -lt "$end" ]; do
        sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) % 9 + 1 ))
        n=$((n + 1))
        case $((n % 11)) in
        # a drain between two runs of its loop is not there: || :
        0|3|6) kill -9 "$(cat drain.one.pid)" 2>/dev/null || : ;;
        1|7) kill -9 "$(cat drain.two.pid)" 2>/dev/null || : ;;
        4)  p=$(cat drain.two.pid); kill -STOP "$p" 2>/dev/null || :
            sleep 3; kill -CONT "$p" 2>/dev/null || : ;;
        9)  logpipe-rotate -d arch --grace 0 >>rot.out 2>>rot.err || : ;;
        esac
        if [ $((n % 40)) -eq 20 ]; then
            stop_redis KILL; sleep 1; restart_redis
        fi
    done
    touch stop
    wait $prod
    kill -TERM "$(cat drain.one.pid)" "$(cat drain.two.pid)" 2>/dev/null || :
    wait $d_one $d_two 2>/dev/null || :
    logpipe-send --wal wal --flush-wal 2>>send.err &&
    logpipe-drain --once -d arch -c one --claim-idle 1s --max-deliveries 1000 2>>drain.one.err &&
    logpipe-drain --once -d arch -c two --claim-idle 1s --max-deliveries 1000 2>>drain.two.err &&
    logpipe-rotate -d arch --grace 0 >>rot.out &&
    produced=$(cat produced) &&
    say "produced $produced events, $n faults" &&
    logpipe-replay arch | seqs - >got &&
    lost=$(awk -v n="$produced" "{ s[\$1] = 1 } END { for (i = 1; i <= n; i++) if (!(i in s)) m++; print m + 0 }" got) &&
    dups=$(awk "{ if (c[\$1]++) d++ } END { print d + 0 }" got) &&
    say "lost $lost, duplicates $dups" &&
    test "$lost" -eq 0 &&
    test "$dups" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 0
'

test_done
