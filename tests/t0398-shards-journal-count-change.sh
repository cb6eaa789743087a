#!/bin/sh
# x0398-shards-journal-count-change.sh -- review rsh2 (issue 17): --journal
# --shards 2 stopped, drained, restarted with --shards 3: the run changes
# the count (says so), then refuses (78) "no field on 2 of the 3 shards
# ... (a field removed by hand?)": wrong cause, and the stream is left at
# 3, where every --journal run of 3 is refused the same way.
# Contradicts send(1)/logpipe(7) "Sharded streams": a count changes when a
# run with another finds every shard drained -- here it changes and the
# run cannot go on; and the message blames a hand edit nobody made.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

REMOTE=/lib/systemd/systemd-journal-remote
if ! [ -x "$REMOTE" ]; then
    echo "1..0 # SKIP no $REMOTE (package systemd-journal-remote)"
    exit 0
fi

start_redis
mkdir j
awk -v t0="$(date +%s)" 'BEGIN { for (i = 1; i <= 300; i++)
    printf "__REALTIME_TIMESTAMP=%.0f\n__MONOTONIC_TIMESTAMP=%.0f\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=h\nSYSLOG_IDENTIFIER=web\nPRIORITY=6\nMESSAGE=entry %d\nSEQ=%d\n\n",
        t0 * 1e6 + i, 1000 + i, i, i }' >a.export
"$REMOTE" --output="$PWD/j/a.journal" - <a.export 2>/dev/null

# total STREAM N: the entries over the N shards of STREAM
total() {
    t=0
    for sh in $("$TOP/tests/shard-names" "$1" "$2"); do
        t=$((t + $(rcli XLEN "$sh")))
    done
    echo "$t"
}

test_expect_success 'journal --shards 2: 300 entries, stopped, drained' '
    logpipe-send --shards 2 -s jr --journal --journal-dir j --from-start \
        --batch 50 2>s1.err &
    spid=$!
    wait_for 30 "test \$(total jr 2) -eq 300" || { kill $spid; exit 1; }
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s jr --once -d out
'

test_expect_success 'restart with --shards 3: goes on (nothing twice), or is refused before the count changes' '
    logpipe-send --shards 3 -s jr --journal --journal-dir j --from-start \
        --batch 50 2>s2.err &
    spid=$!
    wait_for 10 "! kill -0 $spid" || :
    kill -TERM $spid 2>/dev/null
    st=0
    wait $spid || st=$?
    cat s2.err >&2
    if test $st -eq 0; then
        logpipe-drain -s jr --once -d out &&
        test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq 300
    else
        # refused: the count is left as it was, and the cause is not a hand edit
        test "$(rcli GET jr:shards)" = 2 &&
        ! grep -q "removed by hand" s2.err
    fi
'

test_done
