#!/bin/sh
# s0160-send-idem-kill.sh -- `make stress` only (issue 15): t0160's story
# (Redis SIGKILLed 3 times mid-send of 100,000 events with --wal, then
# --flush-wal SIGKILLed 10 times; each event must be in the stream once)
# over LP_IDEM_ROUNDS (10) rounds, each with kill points drawn from a seed
# of its own, the seeds drawn from one printed first: replay a run with
# LP_IDEM_SEED=S, or one round with IDEM_SEEDS=N tests/t0160-send-idem-kill.sh.
ROUNDS=${LP_IDEM_ROUNDS:-10}
SEED=${LP_IDEM_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "# seed $SEED: $ROUNDS rounds; replay with LP_IDEM_SEED=$SEED"
IDEM_SEEDS=$(awk -v s="$SEED" -v n="$ROUNDS" 'BEGIN {
    srand(s)
    for (i = 0; i < n; i++) printf "%s%d", i ? " " : "", int(rand() * 1000000)
}')
export IDEM_SEEDS
exec "$(dirname "$0")/t0160-send-idem-kill.sh"
