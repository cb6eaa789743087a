#!/bin/sh
# s0171-follow-soak.sh -- `make stress` only (issue 15): t0171's story
# (a writer of 60,000 lines renamed every 12,000, send --follow SIGKILLed 15
# times; again with Redis SIGKILLed twice; again through --wal) over
# LP_FOLLOW_ROUNDS (5) rounds, each with kill points from a seed of its own,
# the seeds drawn from one printed first: replay a run with
# LP_FOLLOW_SEED=S, or one round with FOLLOW_SEED=N tests/t0171-send-follow-kill.sh.
ROUNDS=${LP_FOLLOW_ROUNDS:-5}
SEED=${LP_FOLLOW_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "1..$ROUNDS"
echo "# seed $SEED: $ROUNDS rounds; replay with LP_FOLLOW_SEED=$SEED"
i=0
for s in $(awk -v s="$SEED" -v n="$ROUNDS" 'BEGIN { srand(s)
        for (i = 0; i < n; i++) printf "%d\n", int(rand() * 1000000) }'); do
    i=$((i + 1))
    out=$(FOLLOW_SEED=$s "$(dirname "$0")/t0171-send-follow-kill.sh" 2>&1)
    if [ $? -eq 0 ] && ! printf '%s\n' "$out" | grep -q "^not ok"; then
        echo "ok $i - round with FOLLOW_SEED=$s"
    else
        echo "not ok $i - round with FOLLOW_SEED=$s"
        printf '%s\n' "$out" | sed 's/^/#   /'
    fi
done
