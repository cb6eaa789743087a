#!/bin/sh
# t0356-drain-shards.sh -- logpipe-drain over a sharded stream: a child per
# shard, every event once in the tree with _id <shard>-<ms>-<seq>,
# --shard-range, a drain killed mid-run, the --dir lock of one group
. "$(dirname "$0")/lib.sh"
start_redis

"$TOP/tests/shard-names" logs:stream 4 >names

# fill FIRST LAST: events FIRST..LAST (FIRST - 1 a multiple of 4), event s
# on shard (s-1) % 4 with the entry ID <FIRST + (s-FIRST)/4>-1: the same
# IDs on every shard, and each service on several shards (so the same day
# files take lines of all)
fill() {
    awk -v first="$1" -v last="$2" -v t0="$(($(date +%s) - 60))" '
    BEGIN {
        while ((getline l < "names") > 0) name[k++] = l
        split("api db web", svc, " ")
        for (s = first; s <= last; s++) {
            i = (s - 1) % k
            printf "XADD %s %d-%d data '\''{\"timestamp\":\"%s\",\"service\":\"%s\",\"seq\":%d}'\''\n",
                name[i], first + int((s - first) / k), 1, strftime("%Y-%m-%dT%H:%M:%SZ", t0 + s % 50, 1),
                svc[s % 3 + 1], s
        }
    }' >cmds &&
    rcli <cmds >fill.out &&
    ! grep -q ERR fill.out &&
    rcli SET logs:stream:shards 4 >/dev/null
}

# lines DIR: every archive line under DIR
lines() {
    find "$1" -name "*.jsonl" -type f -exec cat {} +
}

# shard_ok FILE: every line a whole archive line whose _id names the shard
# its seq was put on
shard_ok() {
    awk '
    !/^\{"_id":"[0-9]+-[0-9]+-[0-9]+",.*\}$/ { print "not an archive line: " $0; bad = 1; next }
    {
        split($0, a, "\""); split(a[4], id, "-")
        match($0, /"seq":[0-9]+/); s = substr($0, RSTART + 6, RLENGTH - 6)
        if (id[1] != (s - 1) % 4) { print "shard " id[1] " for seq " s; bad = 1 }
    }
    END { exit bad }' "$1"
}

# pending_all: the pending entries of group logpipe over the 4 shards
pending_all() {
    n=0
    for s in $(cat names); do
        n=$((n + $(rcli XPENDING "$s" logpipe | head -n 1)))
    done
    echo $n
}

test_expect_success 'drain --once: every event once, _id <i>-<ms>-<seq>, a group on each shard' '
    fill 1 400 || exit 1
    logpipe-drain --once -d out 2>err &&
    lines out >all &&
    shard_ok all &&
    seqs all >got &&
    tally 400 got &&
    test "$(grep -c "^{\"_id\":\"2-" all)" -eq 100 &&
    grep -q "^{\"_id\":\"0-1-1\"," all &&
    grep -q "^{\"_id\":\"3-1-1\"," all &&
    for f in $(find out -name "*.jsonl"); do
        test "$(cut -c9 "$f" | sort -u | wc -l)" -eq 4 || exit 1
    done &&
    for s in $(cat names); do
        rcli --raw XINFO GROUPS "$s" | grep -qx logpipe || exit 1
    done &&
    test "$(pending_all)" -eq 0 &&
    test -z "$(find out/.logpipe-journal -type f 2>/dev/null)" &&
    test "$(ls out/.logpipe-group-*.lock | wc -l)" -eq 1 &&
    test "$(ls out/.logpipe-drain-*.lock | wc -l)" -eq 4
'

test_expect_success '-v names the shard of each message' '
    fill 401 404 || exit 1
    logpipe-drain --once -d out -v 2>err &&
    grep_q "^logpipe-drain: stream logs:stream has 4 shards: draining 0 to 3" err &&
    for i in 0 1 2 3; do
        grep_q "^logpipe-drain: shard $i: 1 entries read, 1 archived" err || exit 1
    done &&
    logpipe-drain --once -d out -v --log-format json 2>jerr &&
    grep_q "\"prog\":\"logpipe-drain\",\"shard\":3," jerr
'

test_expect_success '--shard-range 1-2 drains those shards only; 3 then 0 the rest' '
    fill 1001 1200 || exit 1
    logpipe-drain --once -d r --shard-range 1-2 2>err &&
    lines r >rl &&
    shard_ok rl &&
    test "$(wc -l <rl)" -eq 100 &&
    test -z "$(cut -c9 rl | sort -u | grep -v "[12]")" &&
    test "$(rcli XLEN "$(sed -n 1p names)")" -eq 50 &&
    test "$(rcli XLEN "$(sed -n 4p names)")" -eq 50 &&
    logpipe-drain --once -d r --shard-range 3 &&
    logpipe-drain --once -d r --shard-range 0-0 &&
    lines r | seqs >got &&
    seq 1001 1200 >want &&
    test_cmp want got
'

test_expect_success 'a --shard-range past the shards, or of an unsharded stream: 78' '
    expect_exit 78 logpipe-drain --once -d r --shard-range 2-4 2>err &&
    grep_q "stream logs:stream has 4 shards (0-3)" err &&
    rcli XADD plain "*" data "{}" >/dev/null &&
    expect_exit 78 logpipe-drain --once -s plain -d p --shard-range 0 2>err &&
    grep_q "stream plain is not sharded" err &&
    expect_exit 64 logpipe-drain --once -d r --shard-range 3-1 &&
    expect_exit 64 logpipe-drain --once -d r --shard-range 1- &&
    expect_exit 64 logpipe-drain --once -d r --shard-range 1024
'

test_expect_success 'a count that is not one, a --dlq with braces, a stream with braces: 78' '
    rcli SET bad:shards x >/dev/null &&
    expect_exit 78 logpipe-drain --once -s bad -d b 2>err &&
    grep_q "not a count of shards" err &&
    expect_exit 78 logpipe-drain --once -d b --dlq "dlq:{x}" 2>err &&
    grep_q "without .{. or .}." err &&
    rcli SET "br{a}:shards" 2 >/dev/null &&
    expect_exit 78 logpipe-drain --once -s "br{a}" -d b 2>err &&
    grep_q "has no .{. or .}." err
'

test_expect_success 'killed after its lines were durable, before the XACK: run again, all once' '
    fill 2001 2400 &&
    expect_exit 70 env LOGPIPE_TEST_CRASH=after-fsync logpipe-drain --once \
        -d k -n 7 2>err &&
    grep_q "killed by signal 9" err &&
    test "$(pending_all)" -gt 0 &&
    logpipe-drain --once -d k 2>err &&
    lines k >kl &&
    shard_ok kl &&
    seqs kl >got &&
    seq 2001 2400 >want &&
    test_cmp want got &&
    test "$(pending_all)" -eq 0
'

test_expect_success 'killed after the write, before its fsync: run again, all once' '
    fill 3001 3400 &&
    expect_exit 70 env LOGPIPE_TEST_CRASH=after-write logpipe-drain --once \
        -d w -n 7 2>err &&
    logpipe-drain --once -d w 2>err &&
    lines w >wl &&
    shard_ok wl &&
    seqs wl >got &&
    seq 3001 3400 >want &&
    test_cmp want got
'

test_expect_success 'SIGKILL to the drain and its children mid-run: nothing lost, nothing twice' '
    fill 4001 12000 || exit 1
    logpipe-drain -d x -n 10 --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \"\$(lines x | wc -l)\" -gt 300" &&
    kids=$(ps -o pid= --ppid $pid) &&
    kill -9 $pid $kids &&
    wait $pid || :
    say "$(lines x | wc -l) lines in the tree when killed" &&
    logpipe-drain --once -d x 2>err || { cat err; exit 1; }
    lines x >xl &&
    shard_ok xl &&
    seqs xl >got &&
    seq 4001 12000 >want &&
    test_cmp want got
'

test_expect_success 'a drain of another group in the same --dir: 78; SIGTERM ends a drain, 0' '
    fill 9001 9040 || exit 1
    logpipe-drain -d g --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \"\$(lines g | wc -l)\" -eq 40" &&
    expect_exit 78 logpipe-drain --once -d g -g other 2>err2 &&
    grep_q "a drain of group logpipe on stream logs:stream writes into it" err2 &&
    expect_exit 78 logpipe-drain --once -d g -s plain 2>err2 &&
    grep_q "a drain of group logpipe on stream logs:stream writes into it" err2 &&
    kill -TERM $pid &&
    wait $pid &&
    test "$(lines g | wc -l)" -eq 40 &&
    test -z "$(find g/.logpipe-journal -type f 2>/dev/null)"
'

test_expect_success 'a second drain under the same consumer name: 75' '
    fill 9101 9104 || exit 1
    logpipe-drain -d t -c same --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \"\$(lines t | wc -l)\" -eq 4" &&
    expect_exit 75 logpipe-drain --once -d t -c same --shard-range 2 2>err2 &&
    grep_q "shard 2: consumer same of group logpipe on logs:stream:{" err2 &&
    kill -TERM $pid &&
    wait $pid
'

test_done
