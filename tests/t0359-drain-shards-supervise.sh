#!/bin/sh
# t0359-drain-shards-supervise.sh -- the process of a sharded drain and its
# children: SIGTERM and SIGHUP passed on, one failure stops the others,
# the parent SIGKILLed stops them all (PR_SET_PDEATHSIG),
# Redis not there at start, an unsharded stream drained as always
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"
start_redis

"$TOP/tests/shard-names" logs:stream 3 >names

# fill FIRST LAST: events FIRST..LAST, event s on shard (s-1) % 3
fill() {
    shards_spread "$1" "$2" 2 >cmds &&
    rcli <cmds >fill.out &&
    ! grep -q ERR fill.out &&
    rcli SET logs:stream:shards 3 >/dev/null
}

# xlen_all: the entries left in the 3 shards
xlen_all() {
    n=0
    for s in $(cat names); do
        n=$((n + $(rcli XLEN "$s")))
    done
    echo $n
}

# kids PID: the children of PID
kids() {
    ps -o pid= --ppid "$1"
}

test_expect_success 'SIGTERM: every shard drain finishes, exit 0, no journal left' '
    fill 1 300 || exit 1
    logpipe-drain -d out --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \$(xlen_all) -eq 0" &&
    test "$(kids $pid | wc -l)" -eq 3 || { echo kids; cat err; exit 1; }
    kill -TERM $pid &&
    wait $pid || { cat err; exit 1; }
    test -z "$(find out/.logpipe-journal -type f 2>/dev/null)" &&
    tree_lines out | seqs >got &&
    seq 1 300 >want &&
    test_cmp want got
'

test_expect_success 'SIGHUP is passed on: the children go on, then SIGINT ends all' '
    logpipe-drain -d out --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \$(kids $pid | wc -l) -eq 3" &&
    k1=$(kids $pid | sort) &&
    kill -HUP $pid &&
    fill 301 330 &&
    wait_for 20 "test \$(xlen_all) -eq 0" &&
    k2=$(kids $pid | sort) &&
    test "$k1" = "$k2" &&
    kill -INT $pid &&
    wait $pid &&
    tree_lines out | seqs >got &&
    seq 1 330 >want &&
    test_cmp want got
'

test_expect_success 'a shard drain that dies stops the others: exit 70, all again next run' '
    fill 331 360 &&
    rcli XADD "$(sed -n 2p names)" "*" data "{\"seq\":361,\"POISON\":1}" >/dev/null &&
    expect_exit 70 env LOGPIPE_TEST_CRASH=on-data:POISON logpipe-drain \
        -d out --block 100 2>err &&
    grep_q "shard 1 (logs:stream:{.*}, pid [0-9]*): killed by signal 9" err &&
    logpipe-drain --once -d out 2>err &&
    tree_lines out | seqs >got &&
    seq 1 361 >want &&
    test_cmp want got
'

test_expect_success 'the parent SIGKILLed: its shard drains stop, none left; all once next run' '
    fill 362 400 || exit 1
    logpipe-drain -d out --block 100 2>err &
    pid=$! &&
    wait_for 20 "test \$(kids $pid | wc -l) -eq 3" &&
    k=$(kids $pid) &&
    wait_for 20 "test \$(xlen_all) -eq 0" &&
    kill -KILL $pid &&
    { wait $pid || :; } &&
    for c in $k; do
        wait_for 20 "! kill -0 $c 2>/dev/null" || exit 1
    done &&
    fill 401 420 &&
    logpipe-drain --once -d out 2>err &&
    tree_lines out | seqs >got &&
    seq 1 420 >want &&
    test_cmp want got
'

test_expect_success 'Redis not there at start: retried for --timeout, then 69' '
    expect_exit 69 logpipe-drain -r "$(dead_redis)" -d out --once -t 300ms 2>err &&
    grep_q "retrying for up to 300ms" err &&
    grep_q "giving up" err
'

test_expect_success 'a bad --where or --layout with Redis not there: 78 at once' '
    expect_exit 78 logpipe-drain -r "$(dead_redis)" -d out --once -t 60s \
        --where "bad((" 2>err &&
    grep_q "does not compile" err &&
    ! grep -q retrying err &&
    expect_exit 78 logpipe-drain -r "$(dead_redis)" -d out --once -t 60s \
        --layout "{nope" 2>err &&
    grep_q "layout" err
'

test_expect_success 'an unsharded stream: one process, _id <ms>-<seq>' '
    printf "{\"service\":\"u\",\"seq\":1}\n" | logpipe-send -s plain &&
    logpipe-drain --once -s plain -d u -v 2>err &&
    ! grep -q "shard" err &&
    grep -q "^{\"_id\":\"[0-9]*-[0-9]*\",\"service\":\"u\",\"seq\":1}$" u/u/*.jsonl
'

test_done
