#!/bin/sh
# s0190-powerloss.sh -- `make stress` only: logpipe-drain through many
# simulated power cuts over 2000 services (tests/powerloss.so; the rounds
# are those of t0190, see tests/powerloss-lib.sh). The kill points and
# batch sizes are drawn from a seed printed first; a failure replays with
#   LP_PL_SEED=S make stress          (all rounds of that seed), or
#   LP_PL_POINTS="op:311:100 acked:700:20" sh tests/s0190-powerloss.sh
# LP_PL_ROUNDS (20), LP_PL_EVENTS (4000), LP_PL_SERVICES (2000) size it.
# Every other round runs with an epoch after each batch and held lines
# written in turn past 4 kB held (the drain's test hooks), so that lines
# held over an epoch are cut too.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/powerloss-lib.sh"
start_redis

ROUNDS=${LP_PL_ROUNDS:-20}
EVENTS=${LP_PL_EVENTS:-4000}
SERVICES=${LP_PL_SERVICES:-2000}
# below 2^31: mawk's srand() takes every larger seed as 2^31 - 1, so
# that half the seeds drawn from 4 bytes gave the same points
SEED=${LP_PL_SEED:-$(od -An -N4 -tu4 /dev/urandom | awk '{ print $1 % 2147483648 }')}

if ! pl_drain_ok; then
    test_skip 'drain under the power-loss shim, many kill points' "$PL_WHY"
    test_done
fi

# MODE:POINT:COUNT per round: half after POINT acked entries, half before
# the drain's POINT-th change (drawn past the end of some runs: those end
# with --once and are cut all the same)
if [ -n "${LP_PL_POINTS:-}" ]; then
    POINTS=$LP_PL_POINTS
    say "points from LP_PL_POINTS: $POINTS"
else
    POINTS=$(awk -v seed="$SEED" -v r="$ROUNDS" -v n="$EVENTS" -v s="$SERVICES" '
        BEGIN {
            srand(seed)
            split("20 100 500", b, " ")
            for (i = 1; i <= r; i++) {
                mode = rand() < 0.5 ? "acked" : "op"
                count = b[1 + int(rand() * 3)]
                # op: within the changes a run makes, about two a batch
                # and four a file (a draw past them never cuts the run)
                if (mode == "acked")
                    at = 1 + int(rand() * (n - 1))
                else
                    at = 1 + int(rand() * (2 * int(n / count) + 4 * s + 8))
                printf "%s:%d:%d\n", mode, at, count
            }
        }')
    say "seed $SEED: $ROUNDS rounds, $EVENTS events over $SERVICES services;" \
        "replay with LP_PL_SEED=$SEED"
fi
pl_events "$EVENTS" "$SERVICES"

i=0
for p in $POINTS; do
    i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then
        export LOGPIPE_TEST_EPOCH_MS=0 LOGPIPE_TEST_HOLD_LOW=4000
        p_how=" (epochs each batch)"
    else
        unset LOGPIPE_TEST_EPOCH_MS LOGPIPE_TEST_HOLD_LOW
        p_how=""
    fi
    mode=${p%%:*}
    rest=${p#*:}
    at=${rest%%:*}
    count=${rest#*:}
    test_expect_success "power cut at $p$p_how (seed $SEED): acked events there once, then all once" "
        PL_ALLOW_DONE=1 pl_round $mode $at $count >>pl.summary
    "
    say "$(tail -n 1 pl.summary 2>/dev/null)"
done

test_done
