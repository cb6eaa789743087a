#!/bin/sh
# t0383-cluster-send-shards-follow.sh -- logpipe-send --shards 6 with
# --follow and with --max-backlog through a 3-master Redis Cluster (issue
# 17): followed files, a SIGKILL, a rotation while stopped and a restart
# through another node: each line once, each file on one shard, in order;
# --max-backlog asks every master's shards (a connection a master) and
# holds the sender until a drain through a third node reads.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL
SHARD_NAMES="$TOP/tests/shard-names"

start_cluster 3 0
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3

# owner_of KEY: the port of the master of KEY's slot now
owner_of() {
    cluster_owner "$(ccli "$M1" cluster keyslot "$1")"
}

# total STREAM: the events in its 6 shards, each asked of its master
total() {
    t=0
    for sh in $("$SHARD_NAMES" "$1" 6); do
        t=$((t + $(ccli "$(owner_of "$sh")" xlen "$sh")))
    done
    echo "$t"
}

# lines FILE FIRST LAST: appends {"seq":FIRST} .. {"seq":LAST} to FILE
lines() {
    awk -v a="$2" -v b="$3" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"seq\":%d,\"msg\":\"line %d\"}\n", i, i }' >>"$1"
}

test_expect_success '--follow --shards 6 through the cluster: a SIGKILL, a rotation, a restart through another node; each line once, each file on one shard, in order' '
    mkdir logs
    for f in 1 2 3 4 5 6 7 8; do lines logs/f$f.log $((f * 10000)) $((f * 10000 + 1999)); done
    logpipe-send -r "redis://127.0.0.1:$M1" -s cf --shards 6 \
        -F "logs/*.log*" --producer cf --linger 5 --batch 300 2>s1.err &
    pid=$!
    wait_for 30 "test \$(total cf) -ge 4000" || { cat s1.err; exit 1; }
    kill -KILL $pid
    wait $pid || :
    say "stored before the kill: $(total cf)"
    lines logs/f3.log 32000 32099
    mv logs/f3.log logs/f3.log.1
    lines logs/f3.log.1 32100 32149
    lines logs/f3.log 39000 39049
    logpipe-send -v -r "redis://127.0.0.1:$M2" -s cf --shards 6 \
        -F "logs/*.log*" --producer cf --linger 5 --batch 300 2>s2.err &
    pid=$!
    wait_for 30 "test \$(total cf) -ge 16200" || { cat s2.err; exit 1; }
    sleep 0.3
    kill -TERM $pid
    wait $pid
    grep_q "shards 6: 3 connections" s2.err
    test "$(total cf)" -eq 16200
    for sh in $("$SHARD_NAMES" cf 6); do
        ccli "$(owner_of "$sh")" --raw xrange "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/$sh \1/p"
    done >got.sh
    cut -d" " -f2 got.sh | sort -n | uniq -d >dups
    test ! -s dups
    say "files by shard: $(awk "{ print int(\$2 / 1000) \":\" \$1 }" got.sh | sort -u | tr "\n" " ")"
    awk "{ f = int(\$2 / 1000)
        if ((f in at) && at[f] != \$1) { print \"file \" f \" on \" at[f] \" and \" \$1; bad = 1 }
        if ((f in last) && \$2 < last[f]) { print \"out of order: \" \$2 \" after \" last[f]; bad = 1 }
        at[f] = \$1; last[f] = \$2 } END { exit bad }" got.sh
'

test_expect_success '--max-backlog --shards 6 through the cluster: the lags of every master summed; held until a drain reads, nothing lost' '
    gen_events 46 >all || exit 1
    head -n 40 all | logpipe-send -r "redis://127.0.0.1:$M1" -s cb \
        --shards 6 -b 1 || exit 1
    for sh in $("$SHARD_NAMES" cb 6); do
        ccli "$(owner_of "$sh")" xgroup create "$sh" g 0 >/dev/null || exit 1
    done
    mkfifo fifo || exit 1
    logpipe-send -v -r "redis://127.0.0.1:$M2" -s cb --shards 6 -g g \
        --max-backlog 10 -b 1 --linger 1ms <fifo 2>err &
    pid=$!
    exec 3>fifo
    tail -n 6 all >&3
    wait_for 20 "grep -q \"backlog 4[0-9] over --max-backlog 10: waiting\" err" &&
    logpipe-drain -r "redis://127.0.0.1:$M3" -s cb -g g --once --stdout \
        >drained1 2>d1.err &&
    wait_for 20 "grep -q \"backlog under --max-backlog again\" err" &&
    exec 3>&- &&
    wait $pid &&
    logpipe-drain -r "redis://127.0.0.1:$M3" -s cb -g g --once --stdout \
        >drained2 2>d2.err &&
    seqs drained1 drained2 >got &&
    tally 46 got
'

stop_cluster
test_done
