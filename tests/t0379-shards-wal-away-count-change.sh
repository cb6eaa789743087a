#!/bin/sh
# t0379-shards-wal-away-count-change.sh -- issue 17: a --wal --shards run
# started while Redis is away, after a change of the count (2 to 3, all
# drained), did not read the fields of the count before (S:shards:was)
# when it connected: a resume (--producer P --position 1) stored again
# what the shards of 2 held. Now the first connection (and --flush-wal,
# and a run whose WAL a run begun with Redis away wrote) reads them as a
# run started with Redis up does: a record of the run's producer at or
# below its shard of 2's field (by position) is passed over. With
# --shard-key the key's shard of 2 is not kept in the WAL: exact below
# the lowest of the old fields and above the highest, between them sent
# and said. --follow waits for Redis at its start and reads them there.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis aof --appendonly yes --appendfsync always
gen_events 100 >in

# archived: the seqs of every event archived under out, one a line
archived() {
    find out -name "*.jsonl" -type f -exec cat {} + | seqs
}

test_expect_success 'P stores 1-40 over 2 shards, drained; Redis away, P resumes from position 1 with --shards 3 --wal: 60 in the WAL' '
    head -n 40 in | logpipe-send --max-age 0 -s a --shards 2 --producer P -b 5 &&
    logpipe-drain -s a --once -d out &&
    stop_redis &&
    head -n 60 in | logpipe-send --max-age 0 -s a --shards 3 --producer P \
        --position 1 --wal wa -b 7 -t 1s 2>erra &&
    test "$(cat wa/wal-*.log | grep -ac "^XADD")" -eq 60
'

test_expect_success 'Redis back, --flush-wal changes the count and passes over what the shards of 2 hold: each of 60 archived once' '
    restart_redis &&
    logpipe-send --max-age 0 -s a --shards 3 --producer P --wal wa \
        --flush-wal 2>errf &&
    grep_q "changed from 2 to 3" errf &&
    logpipe-drain -s a --once -d out &&
    archived >got &&
    tally 60 got
'

test_expect_success 'a resume begun with Redis away, Redis back mid-input (its first connection changes the count): each of 100 archived once' '
    rm -rf out &&
    head -n 80 in | logpipe-send --max-age 0 -s b --shards 2 --producer R -b 5 &&
    logpipe-drain -s b --once -d out &&
    stop_redis &&
    head -n 20 in >in.a &&
    tail -n 80 in >in.b &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send -v --max-age 0 -s b --shards 3 --producer R --position 1 \
        --wal wb -t 10s <fifo 2>errb &
    spid=$!
    exec 3>fifo
    cat in.a >&3
    wait_for 30 "test \$(cat wb/wal-*.log | grep -ac ^XADD) -eq 20" ||
        { kill $spid; cat errb; exit 1; }
    restart_redis 3>&-
    wait_for 30 "grep -q \"the WAL wb is empty again\" errb" ||
        { kill $spid; cat errb; exit 1; }
    cat in.b >&3
    exec 3>&-
    wait $spid || { cat errb; exit 1; }
    grep_q "changed from 2 to 3" errb &&
    grep_q "the fields of producer R on the 2 shards of the count before are read" errb &&
    logpipe-drain -s b --once -d out &&
    archived >got &&
    tally 100 got
'

test_expect_success '--shard-key, begun with Redis away: what is at or below the lowest old field passed over, what may be stored twice said' '
    rm -rf out &&
    head -n 40 in | logpipe-send --max-age 0 -s c --shards 2 --producer K \
        --shard-key .seq -b 5 &&
    logpipe-drain -s c --once -d out &&
    lo=$(for sh in $("$SHARD_NAMES" c 2); do rcli --raw HGET "$sh:producers" K; done |
        cut -d" " -f1 | sort -n | head -n 1) &&
    say "lowest field of K on the shards of 2: $lo" &&
    stop_redis &&
    head -n 60 in | logpipe-send --max-age 0 -s c --shards 3 --producer K \
        --position 1 --shard-key .seq --wal wc -b 7 -t 1s 2>errc &&
    restart_redis &&
    logpipe-send --max-age 0 -s c --shards 3 --producer K --shard-key .seq \
        --wal wc --flush-wal 2>errcf &&
    logpipe-drain -s c --once -d out &&
    archived >got &&
    dups=$(sort -n got | uniq -d | tr "\n" " ") &&
    say "archived twice: ${dups:-none}" &&
    test "$(sort -n -u got | wc -l)" -eq 60 &&
    for d in $dups; do
        test "$d" -gt "$lo" && test "$d" -le 40 || exit 1
    done &&
    if [ -n "$dups" ]; then grep_q "maybe twice" errcf; fi
'

test_expect_success '--follow --wal --shards 3 started while Redis is away (2 before, drained): waits, then goes on from the fields of 2' '
    rm -rf out &&
    mkdir logs &&
    for f in 1 2 3 4 5 6; do
        for i in $(seq 1 10); do
            printf "{\"seq\":%d}\n" $((f * 100 + i))
        done >logs/f$f.log
    done || exit 1
    logpipe-send --shards 2 --linger 5 -s d -F "logs/*.log" --producer fw \
        --wal wd 2>d1.err &
    spid=$!
    wait_for 30 "test \$(shards_total d 2) -eq 60" || { kill $spid; cat d1.err; exit 1; }
    kill -TERM $spid
    wait $spid &&
    logpipe-drain -s d --once -d out &&
    stop_redis || exit 1
    logpipe-send --shards 3 --linger 5 -s d -F "logs/*.log" --producer fw \
        --wal wd -t 30s 2>d2.err &
    spid=$!
    sleep 0.5
    restart_redis
    for f in 1 2 3 4 5 6; do
        printf "{\"seq\":%d}\n" $((f * 100 + 11)) >>logs/f$f.log
    done
    wait_for 30 "test \$(shards_total d 3) -ge 6" ||
        { kill $spid; cat d2.err; exit 1; }
    sleep 0.3
    kill -TERM $spid
    wait $spid || { cat d2.err; exit 1; }
    grep_q "changed from 2 to 3" d2.err &&
    logpipe-drain -s d --once -d out &&
    archived >got &&
    for f in 1 2 3 4 5 6; do seq $((f * 100 + 1)) $((f * 100 + 11)); done | sort -n >want &&
    test_cmp want got
'

test_done
