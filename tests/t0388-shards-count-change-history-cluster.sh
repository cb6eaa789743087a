#!/bin/sh
# t0388-shards-count-change-history-cluster.sh -- issue 17: a change of
# the count's history (S:shards:was, <shard>:producers:was: t0396, t0397)
# in a 3-master Redis Cluster, where the count's key is in the stream's
# slot and each shard's hashes in its own: after 6 -> 4 (all drained), a
# --producer P --position 1 resume and a --follow run go on, nothing
# archived twice, nothing lost.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_cluster 3 0
set -- $(cluster_masters)
M1=$1
URL="redis://127.0.0.1:$M1"

gen_events 100 >in

owner_of() {
    cluster_owner "$(ccli "$M1" cluster keyslot "$1")"
}

# stored S N: the entries over the N shards of S
stored() {
    n=0
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        n=$((n + $(ccli "$(owner_of "$sh")" xlen "$sh")))
    done
    echo $n
}

# archived DIR: the seqs archived under DIR, one a line
archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

test_expect_success 'P stores 1-60 over 6 shards; drained' '
    head -n 60 in | logpipe-send -r "$URL" -s cs --max-age 0 --shards 6 \
        --producer P -b 5 &&
    logpipe-drain -r "$URL" -s cs --once -d outs
'

test_expect_success 'P resumes from position 1 with --shards 4: the count changes, the history is kept in the slots of the stream and of the shards' '
    logpipe-send -r "$URL" -s cs --max-age 0 --shards 4 --producer P \
        --position 1 -b 5 <in 2>errs &&
    grep_q "changed from 6 to 4" errs &&
    test "$(ccli "$(owner_of "{cs}:shards:was")" get "{cs}:shards:was")" = 6 &&
    "$SHARD_NAMES" cs 6 | sort >six &&
    "$SHARD_NAMES" cs 4 | sort >four &&
    comm -12 six four >both &&
    say "shards of both counts: $(tr "\n" " " <both)" &&
    while read -r sh; do
        test "$(ccli "$(owner_of "$sh")" hexists "$sh:producers:was" P)" = 1 || exit 1
    done <both &&
    logpipe-drain -r "$URL" -s cs --once -d outs
'

test_expect_success 'each of the 100 events archived once' '
    archived outs >got &&
    tally 100 got
'

mkdir logs
for f in 1 2 3 4 5 6 7 8; do
    for i in $(seq 1 10); do
        printf "{\"seq\":%d}\n" $((f * 100 + i))
    done >logs/f$f.log
done

test_expect_success '--follow --shards 6: every line stored, stopped, drained' '
    logpipe-send -r "$URL" --shards 6 --linger 5 -s cf -F "logs/*.log" \
        --producer fw 2>f1.err &
    spid=$!
    wait_for 30 "test \$(stored cf 6) -eq 80" || { kill $spid; cat f1.err; exit 1; }
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -r "$URL" -s cf --once -d outf
'

test_expect_success '--follow --shards 4 (the count changes), five lines appended to each file: each line archived once' '
    logpipe-send -r "$URL" --shards 4 --linger 5 -s cf -F "logs/*.log" \
        --producer fw 2>f2.err &
    spid=$!
    wait_for 30 "grep -q \"changed from 6 to 4\" f2.err" || { kill $spid; cat f2.err; exit 1; }
    for f in 1 2 3 4 5 6 7 8; do
        for i in 11 12 13 14 15; do
            printf "{\"seq\":%d}\n" $((f * 100 + i))
        done >>logs/f$f.log
    done
    wait_for 30 "test \$(stored cf 4) -ge 40" || { kill $spid; cat f2.err; exit 1; }
    sleep 0.5
    kill -TERM $spid
    wait $spid || { cat f2.err; exit 1; }
    logpipe-drain -r "$URL" -s cf --once -d outf &&
    archived outf >got &&
    for f in 1 2 3 4 5 6 7 8; do seq $((f * 100 + 1)) $((f * 100 + 15)); done |
        sort -n >want &&
    test_cmp want got
'

test_done
