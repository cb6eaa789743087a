#!/bin/sh
# t0352-send-shards.sh -- logpipe-send --shards N on a standalone server
# (issue 17 step 2): the events spread over the N shard streams
# (tests/shard-names), positions round-robin one by one, or one
# shard per --shard-key value in order; the count recorded in S:shards and
# held to; names with braces refused.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis

gen_events 10000 >in

# per_shard STREAM N: the length of each shard, one a line, in order
per_shard() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli XLEN "$sh"
    done
}

# all_seqs STREAM N: every seq in the shards of STREAM, one a line
all_seqs() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

test_expect_success '--shards 4: events round-robin one by one, each once, the count recorded' '
    logpipe-send --max-age 0 --shards 4 <in &&
    test "$(rcli GET logs:stream:shards)" = 4 &&
    test "$(rcli EXISTS logs:stream)" = 0 &&
    per_shard logs:stream 4 >lens &&
    printf "%s\n" 2500 2500 2500 2500 >want &&
    test_cmp want lens &&
    all_seqs logs:stream 4 >got &&
    tally 10000 got &&
    # shard 1 holds every fourth event from the second, in order
    rcli --raw XRANGE "$("$SHARD_NAMES" logs:stream 4 | sed -n 2p)" - + |
        sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >s1 &&
    seq 2 4 10000 >want1 &&
    test_cmp want1 s1
'

test_expect_success 'the shard of an event does not depend on --batch' '
    logpipe-send --max-age 0 --shards 3 -s b7 -b 7 <in &&
    logpipe-send --max-age 0 --shards 3 -s b500 -b 500 <in &&
    for i in 1 2 3; do
        a=$("$SHARD_NAMES" b7 3 | sed -n ${i}p) &&
        b=$("$SHARD_NAMES" b500 3 | sed -n ${i}p) &&
        rcli --raw XRANGE "$a" - + | grep seq >a.$i &&
        rcli --raw XRANGE "$b" - + | grep seq >b.$i &&
        test_cmp a.$i b.$i || return 1
    done
'

test_expect_success 'a run with another count is refused (78), the same count goes on' '
    expect_exit 78 logpipe-send --max-age 0 --shards 3 <in 2>err &&
    grep_q "logs:stream" err &&
    head -n 10 in | logpipe-send --max-age 0 --shards 4 &&
    all_seqs logs:stream 4 >got2 &&
    test "$(wc -l <got2)" -eq 10010
'

test_expect_success 'a send without --shards to a sharded stream is refused (78), nothing sent' '
    expect_exit 78 logpipe-send --max-age 0 <in 2>err &&
    grep_q "spread over 4 shards" err &&
    grep_q "give --shards 4" err &&
    test "$(rcli EXISTS logs:stream)" = 0
'

test_expect_success '--shards on a stream that holds entries of its own is refused (78) until it is deleted' '
    head -n 5 in | logpipe-send --max-age 0 -s own &&
    expect_exit 78 logpipe-send --max-age 0 -s own --shards 2 <in 2>err &&
    grep_q "holds 5 entries of its own" err &&
    test "$(rcli EXISTS own:shards)" = 0 &&
    rcli DEL own >/dev/null &&
    head -n 5 in | logpipe-send --max-age 0 -s own --shards 2 &&
    test "$(rcli GET own:shards)" = 2
'

test_expect_success 'names with braces are refused (78), --shard-key needs --shards' '
    expect_exit 78 logpipe-send --max-age 0 --shards 2 -s "a{b}" <in 2>err &&
    expect_exit 78 logpipe-send --max-age 0 --shards 2 -s other \
        --dlq "d{x}" <in 2>err &&
    grep_q "dlq" err &&
    expect_exit 64 logpipe-send --max-age 0 --shard-key .service <in 2>err &&
    grep_q "shard-key needs --shards" err &&
    test "$(rcli EXISTS other:shards)" = 0
'

test_expect_success '--shard-key .service: each service in one shard, in input order' '
    gen_events 9000 "api db web cache auth" >svc &&
    logpipe-send --max-age 0 --shards 3 --shard-key .service -s keyed <svc &&
    test "$(rcli GET keyed:shards)" = 3 &&
    all_seqs keyed 3 >got &&
    tally 9000 got &&
    for sh in $("$SHARD_NAMES" keyed 3); do
        rcli --raw XRANGE "$sh" - + >"x.$sh" || return 1
    done &&
    for svc in api db web cache auth; do
        grep -l "\"service\":\"$svc\"" x.* >holders &&
        test "$(wc -l <holders)" -eq 1 &&
        grep "\"service\":\"$svc\"" "$(cat holders)" |
            sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >order &&
        sort -n order | cmp -s - order &&
        test "$(wc -l <order)" -eq 1800 || return 1
    done &&
    # the same keys, the same shards: a second run lands where the first did
    per_shard keyed 3 >len1 &&
    logpipe-send --max-age 0 --shards 3 --shard-key .service -s keyed <svc &&
    per_shard keyed 3 >len2 &&
    awk "{ print 2 * \$1 }" len1 >want &&
    test_cmp want len2
'

test_expect_success 'rejected lines go to the DLQ of their shard (DLQBASE:{TAG})' '
    printf "%s\n" "{\"a\":1}" "not json" broken "{\"a\":2}" >mixed &&
    expect_exit 65 logpipe-send --max-age 0 --shards 2 -s rj --batch 2 \
        --rejects-to-dlq --dlq rjdlq <mixed 2>err &&
    "$SHARD_NAMES" rjdlq 2 >dnames &&
    test "$(rcli XLEN "$(sed -n 1p dnames)")" -eq 1 &&
    test "$(rcli XLEN "$(sed -n 2p dnames)")" -eq 1 &&
    test "$(rcli XLEN "$("$SHARD_NAMES" rj 2 | sed -n 1p)")" -eq 1 &&
    test "$(rcli XLEN "$("$SHARD_NAMES" rj 2 | sed -n 2p)")" -eq 1 &&
    rcli --raw XRANGE "$(sed -n 2p dnames)" - + >d2 &&
    grep_q "not json" d2 &&
    grep_q "rj:{" d2
'

test_expect_success '--producer: each shard holds the position of its last batch; a second run goes on after the highest' '
    logpipe-send --max-age 0 --shards 3 -s pr --producer app <in &&
    for sh in $("$SHARD_NAMES" pr 3); do
        rcli --raw HGET "$sh:producers" app | cut -d" " -f1 || return 1
    done >fields &&
    printf "%s\n" 10000 9998 9999 >want &&
    test_cmp want fields &&
    head -n 1500 in | logpipe-send --max-age 0 --shards 3 -s pr --producer app &&
    # positions 10001..11500, the last (11500) on shard 0
    for sh in $("$SHARD_NAMES" pr 3); do
        rcli --raw HGET "$sh:producers" app | cut -d" " -f1 || return 1
    done >fields2 &&
    printf "%s\n" 11500 11498 11499 >want2 &&
    test_cmp want2 fields2 &&
    all_seqs pr 3 >got &&
    test "$(wc -l <got)" -eq 11500
'

# a replica of the server: --replicas 1 waits for it (WAIT) on the one
# connection every shard's batches go on
M=$REDIS_PORT
start_redis replica
R=$REDIS_PORT
REDIS_PORT=$M
LOGPIPE_REDIS_URL="redis://127.0.0.1:$M/0"
export REDIS_PORT LOGPIPE_REDIS_URL
# (its full sync at once, not after redis 7's 5 s diskless sync delay)
redis-cli -p "$M" CONFIG SET repl-diskless-sync-delay 0 >/dev/null
redis-cli -p "$R" REPLICAOF 127.0.0.1 "$M" >/dev/null
wait_for 30 "redis-cli -p $M INFO replication | grep -q 'slave0:.*state=online'" ||
    { echo "Bail out! the replica did not come online"; exit 1; }

test_expect_success '--replicas 1: every shard is on the replica when send returns' '
    logpipe-send --max-age 0 --shards 3 -s rep --replicas 1 --batch 500 <in &&
    for sh in $("$SHARD_NAMES" rep 3); do
        redis-cli -p "$R" XLEN "$sh" || return 1
    done >rlens &&
    per_shard rep 3 >mlens &&
    test_cmp mlens rlens &&
    test "$(awk "{ t += \$1 } END { print t }" rlens)" -eq 10000
'

test_done
