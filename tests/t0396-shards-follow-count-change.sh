#!/bin/sh
# t0396-shards-follow-count-change.sh -- review rsh2 (issue 17): --follow
# --shards 2 stopped, the stream drained, restarted with --shards 3 (the
# count changes): a file whose shard of 3 is not its shard of 2 has no
# offset there and is read again from its start: its lines archived twice.
# Was a contradiction of logpipe(7) "Sharded streams" (--follow): "exactly
# once holds per file across restarts, rotation and truncation as for one
# stream". Fixed: a run of 3 reads the fields of the shards of 2 too
# (S:shards:was), a file on from the highest cursor; then lines appended
# after the change go on from the field of its shard of 3.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis

# at_size: the shards of 3 hold 12 fields at the size of a file
at_size() {
    sz=$(wc -c <logs/f10.log)
    n=0
    for sh in $("$SHARD_NAMES" fo 3); do
        n=$((n + $(rcli --raw HGETALL "$sh:producers" | grep -c " $sz\$")))
    done
    test "$n" -ge 12
}

mkdir logs
for f in $(seq 10 21); do
    for i in $(seq 1 20); do
        printf "{\"timestamp\":\"2026-01-01T00:00:%02dZ\",\"seq\":%d}\n" \
            "$i" $((f * 100 + i))
    done >logs/f$f.log
done

test_expect_success 'follow --shards 2: every line once, then stopped and drained' '
    logpipe-send --shards 2 --linger 5 -s fo -F "logs/*.log" --producer fw 2>s1.err &
    spid=$!
    wait_for 30 "test \$(shards_total fo 2) -eq 240" || { kill $spid; exit 1; }
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s fo --once -d out
'

test_expect_success 'follow --shards 3 (the count changes, all drained), nothing new in the files' '
    logpipe-send -vv --shards 3 --linger 5 -s fo -F "logs/*.log" --producer fw 2>s2.err &
    spid=$!
    # nothing new: it sends nothing, so no field of 3 moves; what it says
    # of each file is where it goes on (-vv): at its end, for all 12 (all
    # files have one size)
    sz=$(wc -c <logs/f10.log)
    wait_for 30 "test \$(grep -c \"goes on at byte\" s2.err) -ge 12" || {
        kill $spid; cat s2.err >&2; exit 1; }
    kill -TERM $spid
    wait $spid || :
    test "$(grep -c "goes on at byte $sz\$" s2.err)" -eq 12 || {
        grep "goes on at byte" s2.err >&2; exit 1; }
    grep_q "changed from 2 to 3" s2.err &&
    logpipe-drain -s fo --once -d out
'

test_expect_success 'every line archived once across the change' '
    find out -name "*.jsonl" -type f -exec cat {} + | seqs >got &&
    for f in $(seq 10 21); do seq $((f * 100 + 1)) $((f * 100 + 20)); done | sort -n >want &&
    test_cmp want got
'

test_expect_success 'five lines appended to each file' '
    for f in $(seq 10 21); do
        for i in $(seq 21 25); do
            printf "{\"timestamp\":\"2026-01-01T00:00:%02dZ\",\"seq\":%d}\n" \
                "$i" $((f * 100 + i))
        done >>logs/f$f.log
    done
'

test_expect_success 'follow --shards 3 again: only the lines appended' '
    logpipe-send --shards 3 --linger 5 -s fo -F "logs/*.log" --producer fw 2>s3.err &
    spid=$!
    wait_for 30 at_size || :
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s fo --once -d out &&
    find out -name "*.jsonl" -type f -exec cat {} + | seqs >got &&
    for f in $(seq 10 21); do seq $((f * 100 + 1)) $((f * 100 + 25)); done | sort -n >want &&
    test_cmp want got
'

test_expect_success 'follow --shard-key after the change, fields of 2 there: refused (78)' '
    expect_exit 78 logpipe-send --shards 3 -s fo -F "logs/*.log" \
        --producer fw --shard-key .seq 2>s4.err &&
    grep_q "changed from 2 to 3, and file" s4.err
'

test_done
