#!/bin/sh
# t0398-shards-journal-count-change.sh -- review rsh2 (issue 17): --journal
# --shards 2 stopped, drained, restarted with --shards 3. Was: the run
# changed the count (said so), then refused (78) "no field on 2 of the 3
# shards ... (a field removed by hand?)", the stream left at 3 where every
# --journal run of 3 was refused the same way. Fixed: the run of 3 reads
# the fields of the shards of 2 too (S:shards:was), goes on after the
# lowest over both counts, passing over each entry at or below the field
# of its old shard or its new: nothing sent twice, nothing lost.
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

test_expect_success 'journal --shards 2: 300 entries, stopped, drained' '
    logpipe-send --shards 2 -s jr --journal --journal-dir j --from-start \
        --batch 50 2>s1.err &
    spid=$!
    wait_for 30 "test \$(shards_total jr 2) -eq 300" || { kill $spid; exit 1; }
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s jr --once -d out
'

# in3: the entries of the 3 shards (drained or not)
in3() {
    t=0
    for sh in $("$TOP/tests/shard-names" jr 3); do
        n=$(rcli XLEN "$sh")
        t=$((t + n))
    done
    echo "$t"
}

# (the run stops once it read an entry of the journal, the one at its
# cursor, or once it exits: refused, as the fault did; the metrics every
# 100 ms say when. A run going on from before its cursor sends what it
# read at the stop: more than 300 in the tree.)
test_expect_success 'restart with --shards 3: the count changes, nothing sent again' '
    logpipe-send --shards 3 -s jr --journal --journal-dir j --from-start \
        --batch 50 --metrics m2.prom --metrics-interval 100ms 2>s2.err &
    spid=$!
    wait_for 10 "grep -q \"^logpipe_send_lines_total [1-9]\" m2.prom || ! kill -0 $spid" || :
    kill -TERM $spid 2>/dev/null
    wait $spid &&
    cat s2.err >&2 &&
    grep_q "changed from 2 to 3" s2.err &&
    ! grep -q "removed by hand" s2.err &&
    test "$(rcli GET jr:shards)" = 3 &&
    test "$(rcli GET jr:shards:was)" = 2 &&
    logpipe-drain -s jr --once -d out &&
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq 300
'

awk -v t0="$(date +%s)" 'BEGIN { for (i = 301; i <= 350; i++)
    printf "__REALTIME_TIMESTAMP=%.0f\n__MONOTONIC_TIMESTAMP=%.0f\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=h\nSYSLOG_IDENTIFIER=web\nPRIORITY=6\nMESSAGE=entry %d\nSEQ=%d\n\n",
        t0 * 1e6 + 300 + i, 1000 + 300 + i, i, i }' >b.export

test_expect_success '50 entries more in the journal' '
    in3 >base &&
    "$REMOTE" --output="$PWD/j/b.journal" - <b.export 2>/dev/null
'

test_expect_success '--shards 3 again: only the 50 new sent' '
    base=$(cat base)
    logpipe-send --shards 3 -s jr --journal --journal-dir j --from-start \
        --batch 50 2>s3.err &
    spid=$!
    wait_for 30 "test \$(in3) -ge $((base + 50))" || :
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s jr --once -d out &&
    test "$(find out -name "*.jsonl" -type f -exec cat {} + | wc -l)" -eq 350
'

test_done
