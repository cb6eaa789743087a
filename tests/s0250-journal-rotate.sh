#!/bin/sh
# s0250-journal-rotate.sh -- `make stress` only (issue 14): logpipe-rotate
# --grace 0 running in a loop beside a drain over 2000 services, whose
# journal covers the day files it is compressing; in every other round the
# drain is SIGKILLed once mid-way and started again, so that its journal
# is applied while rotate runs. Every event must end in the tree exactly
# once (.jsonl and .jsonl.gz together). After every other chunk of events
# sent, the next waits until rotate has compressed every day file: the
# drain then writes to files rotated away under it. The kill points are drawn from a
# seed printed first; replay with LP_JR_SEED=S. LP_JR_ROUNDS (4),
# LP_JR_EVENTS (20000), LP_JR_SERVICES (2000) size it. Rounds 3 and 4 (of
# each 4) run the drain with an epoch after every batch and held lines
# written in turn past 4 kB held (its test hooks): lines held over an
# epoch, their journal segments kept, while rotate compresses.
. "$(dirname "$0")/lib.sh"
start_redis

ROUNDS=${LP_JR_ROUNDS:-4}
EVENTS=${LP_JR_EVENTS:-20000}
SERVICES=${LP_JR_SERVICES:-2000}
# below 2^31: mawk's srand() takes every larger seed as 2^31 - 1, so
# that half the seeds drawn from 4 bytes gave the same points
SEED=${LP_JR_SEED:-$(od -An -N4 -tu4 /dev/urandom | awk '{ print $1 % 2147483648 }')}
CHUNK=2000
say "seed $SEED: $ROUNDS rounds, $EVENTS events over $SERVICES services;" \
    "replay with LP_JR_SEED=$SEED"

# two closed days, so that rotate compresses what the drain writes
D2=$(date -u -d '-2 day' +%F)
D3=$(date -u -d '-3 day' +%F)

# events FROM TO: seqs FROM..TO, services and the two days cycling
events() {
    awk -v a="$1" -v b="$2" -v ns="$SERVICES" -v d2="$D2" -v d3="$D3" 'BEGIN {
        for (i = a; i <= b; i++)
            printf "{\"timestamp\":\"%sT12:%02d:%02dZ\",\"service\":\"s%04d\",\"seq\":%d}\n",
                (i % 3 ? d2 : d3), i % 60, (i / 60) % 60, i % ns + 1, i
    }'
}

acked() {
    rcli XINFO GROUPS logs:stream | awk '
        $0 == "pending" { getline; p = $0 }
        $0 == "entries-read" { getline; e = $0 }
        END { print e - p }'
}

pending() {
    rcli XPENDING logs:stream logpipe | head -n 1
}

# the rounds' kill points: acked entries at which the drain is killed,
# 0 for a round without a kill
POINTS=$(awk -v seed="$SEED" -v r="$ROUNDS" -v n="$EVENTS" 'BEGIN {
    srand(seed)
    for (i = 1; i <= r; i++)
        print (i % 2 ? 0 : 1 + int(rand() * (n - 2 * 2000)))
}')

round=0
for kill_at in $POINTS; do
    round=$((round + 1))
    if [ $(((round - 1) / 2 % 2)) -eq 1 ]; then
        export LOGPIPE_TEST_EPOCH_MS=0 LOGPIPE_TEST_HOLD_LOW=4000
    else
        unset LOGPIPE_TEST_EPOCH_MS LOGPIPE_TEST_HOLD_LOW
    fi
    test_expect_success "round $round: rotate --grace 0 in a loop beside a $SERVICES-service drain (kill at $kill_at acked): every event once" '
        rcli DEL logs:stream >/dev/null &&
        rm -rf out stop rot.out rot.err drain.err &&
        mkdir out &&
        rcli XGROUP CREATE logs:stream logpipe 0 MKSTREAM >/dev/null || exit 1
        logpipe-drain -v -d out -n 500 --block 100 2>>drain.err &
        d=$!
        echo $d >>"$TMP/.pids"
        ( while [ ! -e stop ]; do
              logpipe-rotate -v --grace 0 -d out >>rot.out 2>>rot.err
              rc=$?
              [ $rc -eq 0 ] || [ $rc -eq 75 ] || echo "rotate exit $rc" >>rot.err
          done ) &
        r=$!
        echo $r >>"$TMP/.pids"
        killed=0
        s=1
        while [ $s -le '$EVENTS' ]; do
            e=$((s + '$CHUNK' - 1))
            events $s $e | logpipe-send --max-age 0 || exit 1
            if [ '$kill_at' -gt 0 ] && [ $killed = 0 ] &&
               [ $e -ge $(( '$kill_at' + '$CHUNK' )) ]; then
                wait_for 120 "test \$(acked) -ge '$kill_at'" || exit 1
                kill -9 $d
                wait $d 2>/dev/null || :
                killed=$(acked)
                logpipe-drain -v -d out -n 500 --block 100 2>>drain.err &
                d=$!
                echo $d >>"$TMP/.pids"
            fi
            # every other chunk: on only once rotate has compressed
            # every day file, so that the drain writes the next chunk to
            # files rotated away under it
            if [ $(( e / '$CHUNK' % 2 )) = 1 ]; then
                wait_for 300 "test \$(acked) -ge $e" &&
                wait_for 300 "test -z \"\$(find out -name \"*.jsonl\")\"" ||
                    exit 1
            fi
            s=$((e + 1))
        done
        wait_for 300 "test \$(acked) -eq '$EVENTS'" &&
        wait_for 300 "test \"\$(pending)\" -eq 0" &&
        touch stop &&
        wait $r &&
        kill -TERM $d &&
        wait $d &&
        ! test -e out/.logpipe-journal &&
        ! grep "rotate exit" rot.err &&
        logpipe-rotate --grace 0 -d out >>rot.out &&
        test -z "$(find out -name "*.jsonl")" &&
        find out -name "*.jsonl.gz" -exec gzip -dc {} + | seqs >got &&
        seq 1 '$EVENTS' >want &&
        if ! cmp -s want got; then
            LC_ALL=C sort -u got >got.u && LC_ALL=C sort want >want.s &&
            LC_ALL=C comm -23 want.s got.u >lost &&
            echo "$(wc -l <got) lines, lost: $(wc -l <lost)," \
                "twice: $(uniq -d got | wc -l); the first lost:" >&2
            sort -n lost | head -5 >&2
            exit 1
        fi &&
        echo "killed at $killed acked;" \
            "$(grep -c "\"action\":\"compress\"" rot.out) compressed," \
            "$(grep -c "\"action\":\"append\"" rot.out) appended," \
            "$(grep -c "left for the next run" rot.err) left for the next run," \
            "$(grep -c "journal .*applied" drain.err) journal applied" >>summary
    '
    say "$(tail -n 1 summary 2>/dev/null)"
done

test_done
