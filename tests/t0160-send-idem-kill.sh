#!/bin/sh
# t0160-send-idem-kill.sh -- logpipe-send --wal: Redis SIGKILLed and
# restarted 3 times mid-send of 100,000 events, then --flush-wal SIGKILLed
# 10 times: the stream holds each event exactly once (issue 15 item 1).
# The kill points come from a seed: fixed ones here (IDEM_SEEDS), random
# ones over many rounds in s0160 (make stress).
. "$(dirname "$0")/lib.sh"

IDEM_SEEDS=${IDEM_SEEDS:-"1507 4242"}
N=${IDEM_N:-100000}

start_redis aof --appendonly yes --appendfsync always

gen_events "$N" >in
split -l $((N / 20)) -a 2 in chunk.
ls chunk.* >chunks

# points SEED: from the seed, the chunks after which Redis is killed (3 of
# 2..17, in order; Redis stays away after the third until the input
# ends), a pause before each kill (ms), and 10 lifetimes of --flush-wal
# (ms) before its SIGKILL
points() {
    awk -v seed="$1" 'BEGIN {
        srand(seed)
        while (n < 3) {
            k = 2 + int(rand() * 16)
            if (!(k in seen)) { seen[k] = 1; n++ }
        }
        m = 0
        for (k = 2; k <= 17; k++) if (k in seen) printf "%s%d", m++ ? " " : "kills=", k
        printf "\npauses="
        for (i = 0; i < 3; i++) printf "%s%d", i ? " " : "", int(rand() * 40)
        printf "\nlives="
        for (i = 0; i < 10; i++) printf "%s%d", i ? " " : "", 20 + int(rand() * 150)
        printf "\n"
    }'
}

# round SEED: one run of the whole story; says what it found
round() {
    seed=$1
    points "$seed" >points
    kills=$(sed -n "s/^kills=//p" points)
    pauses=$(sed -n "s/^pauses=//p" points)
    lives=$(sed -n "s/^lives=//p" points)
    say "seed $seed: Redis killed after chunks $kills (pauses $pauses ms), --flush-wal killed after $lives ms"
    rcli FLUSHALL >/dev/null
    rm -rf w fifo && mkfifo fifo || return 1
    logpipe-send --wal w --max-age 0 <fifo 2>send.err &
    spid=$!
    exec 3>fifo
    # (restart_redis and stop_redis use i, j and _p of their own)
    ci=0 nk=0 down=0
    for c in $(cat chunks); do
        ci=$((ci + 1))
        cat "$c" >&3
        if [ "$down" = 1 ] && [ "$nk" -lt 3 ]; then
            restart_redis
            down=0
        fi
        for k in $kills; do
            [ "$k" = "$ci" ] || continue
            nk=$((nk + 1))
            p=$(echo "$pauses" | cut -d" " -f"$nk")
            sleep "$(awk -v p="$p" 'BEGIN { printf "%.3f", p / 1000 }')"
            stop_redis KILL
            down=1
        done
    done
    exec 3>&-
    wait $spid || { echo "send: exit $?" >&2; cat send.err >&2; return 1; }
    grep -q "keeping events in the WAL w" send.err || {
        echo "the WAL was never used" >&2; return 1; }
    [ "$down" = 0 ] || restart_redis
    for life in $lives; do
        logpipe-send --wal w --flush-wal --timeout 60s 2>>flush.err &
        fpid=$!
        sleep "$(awk -v p="$life" 'BEGIN { printf "%.3f", p / 1000 }')"
        kill -9 $fpid 2>/dev/null || :
        wait $fpid 2>/dev/null || :
    done
    logpipe-send --wal w --flush-wal --timeout 60s 2>>flush.err || {
        echo "the last --flush-wal failed" >&2; cat flush.err >&2; return 1; }
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0 || {
        echo "the WAL is not empty" >&2; return 1; }
    rcli --raw XRANGE logs:stream - + | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >got
    tally "$N" got || return 1
    # in stream order too: the input's order survived the failovers
    sort -n got | cmp -s - got || say "seed $seed: not in input order"
    # every XADD had a field of its producer
    test "$(rcli HLEN logs:stream:producers)" -ge 1
}

for seed in $IDEM_SEEDS; do
    test_expect_success "seed $seed: Redis killed 3 times mid-send, --flush-wal killed 10 times: each event once" "
        round $seed
    "
done

test_done
