#!/bin/sh
# t0390-shards-count-change-cluster.sh -- t0377 on a 3-master Redis
# Cluster (issue 17 step 2): a sender of 6 shards still running when a
# sender of 4 changes the count (every shard drained) is refused at its
# next batch (78, "restart with --shards 4"), its batch not stored; each
# shard's marker {T}:shards is in the shard's slot, on its master; a
# change is refused while a shard is not drained, the markers put back.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_cluster 3 0
S=app:moving
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
URL1="redis://127.0.0.1:$M1"
URL2="redis://127.0.0.1:$M2"

gen_events 160 >in
sed -n 1,30p in >a
sed -n 31,60p in >a2
sed -n 61,140p in >b
sed -n 141,160p in >c

owner_of() {
    cluster_owner "$(ccli "$M1" cluster keyslot "$1")"
}

# stored N: the entries over the shards of S for count N
stored() {
    n=0
    for sh in $("$SHARD_NAMES" "$S" "$1"); do
        n=$((n + $(ccli "$(owner_of "$sh")" xlen "$sh")))
    done
    echo $n
}

# marker SHARD: what its marker holds, asked of its master
marker() {
    ccli "$(owner_of "$1")" get "$1:shards"
}

mkfifo ff

test_expect_success 'a sender of 6 shards runs; 4 refused while not drained, then the count changes' '
    ( rc=0
      logpipe-send -r "$URL1" -s "$S" --max-age 0 --shards 6 -b 5 -l 1ms --ids <ff >old.ids 2>old.err || rc=$?
      echo $rc >old.rc ) &
    exec 7>ff
    cat a >&7
    ok=1
    sh0=$("$SHARD_NAMES" "$S" 6 | sed -n 1p)
    {
        wait_for 30 "test \$(stored 6) = 30" &&
        expect_exit 78 logpipe-send -r "$URL2" -s "$S" --max-age 0 --shards 4 <b 2>new1.err &&
        grep_q "not drained" new1.err &&
        test "$(marker "$sh0")" = 6
    } || ok=0
    cat a2 >&7
    {
        wait_for 30 "test \$(stored 6) = 60" &&
        logpipe-drain -r "$URL2" -s "$S" --once -d out 2>d1.err &&
        logpipe-send -r "$URL2" -s "$S" --max-age 0 --shards 4 -b 5 <b 2>new.err &&
        grep_q "changed from 6 to 4" new.err &&
        for sh in $("$SHARD_NAMES" "$S" 4); do
            test "$(marker "$sh")" = 4 || exit 1
        done
    } || ok=0
    cat c >&7
    exec 7>&-
    wait
    test $ok = 1 || { cat new1.err new.err old.err d1.err; false; }
'

test_expect_success 'the old sender exits 78, its batch not stored; all it stored is archived once' '
    test "$(cat old.rc)" = 78 &&
    grep_q "count of shards changed to 4" old.err &&
    grep_q "restart with --shards 4" old.err &&
    grep_q "this run stored 60 events" old.err &&
    test "$(wc -l <old.ids)" = 60 &&
    logpipe-drain -r "$URL1" -s "$S" --once -d out 2>d2.err &&
    find out -name "*.jsonl" -type f -exec cat {} + >all &&
    seqs all >got &&
    tally 140 got &&
    sed -n "s/^{\"_id\":\"\\([0-9]*-[0-9]*-[0-9]*\\)\",.*}\$/\\1/p" all |
        sort >ids.all &&
    sort old.ids >ids.old &&
    test "$(comm -23 ids.old ids.all | wc -l)" = 0 &&
    test "$(stored 6)" -le 140
'

test_done
