#!/bin/sh
# t0362-shards-replay.sh -- logpipe-replay --from-redis over a sharded
# stream (issue 17, item 2), standalone: every shard read, one after the
# other, each entry once with _id <i>-<ms>-<seq> (i its shard, <ms>-<seq>
# its ID there); --sort merges them by event time; --dedup and the _id's
# time read that form in files too; an unsharded stream as before.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"

start_redis
CLI=rcli
S=logs:stream

test_expect_success 'setup: 4 shards of 50, 100, 150, 200 entries' '
    shards_fill "$S" 4 50 &&
    rcli set "$S:shards" 4
'

test_expect_success 'every entry once, _id <i>-<ms>-<seq>, shard by shard' '
    logpipe-replay --from-redis >all &&
    test "$(wc -l <all)" = 500 &&
    seqs all >got &&
    tally 500 got &&
    sed -n "s/^{\"_id\":\"\([0-9]*\)-[0-9]*-[0-9]*\",\"seq\":[0-9]*,\"shard\":\([0-9]*\),.*/\1 \2/p" all >pairs &&
    test "$(wc -l <pairs)" = 500 &&
    awk "\$1 != \$2 { bad++ } END { exit bad }" pairs &&
    test "$(cut -d" " -f1 pairs | uniq | tr "\n" " ")" = "0 1 2 3 "
'

test_expect_success 'the _id is the entry ID in its shard' '
    for i in 0 3; do
        rcli xrange "$(shard_name "$S" 4 $i)" - + count 1 >first &&
        test "$(grep -m1 "\"shard\":$i," all | cut -d\" -f4)" = "$i-$(head -n 1 first)" ||
        exit 1
    done
'

test_expect_success '--sort: merged by event time' '
    logpipe-replay --from-redis --sort >sorted &&
    test "$(wc -l <sorted)" = 500 &&
    seqs sorted >sseq &&
    sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" sorted >order &&
    test "$(sort -n order | uniq | wc -l)" = 500 &&
    jq -r .timestamp sorted >ts &&
    LC_ALL=C sort -c ts &&
    jq -r .timestamp all >ts0 &&
    ! LC_ALL=C sort -c ts0 2>/dev/null
'

test_expect_success '--dedup keeps one of each sharded _id, and tells shards apart' '
    cat all all >twice &&
    logpipe-replay --dedup twice >once &&
    test_cmp all once &&
    printf "{\"_id\":\"0-5-0\"}\n{\"_id\":\"1-5-0\"}\n{\"_id\":\"5-0\"}\n{\"_id\":\"1-5-0\"}\n" >ids &&
    logpipe-replay --dedup ids >kept &&
    test "$(tr -d "\n" <kept)" = "{\"_id\":\"0-5-0\"}{\"_id\":\"1-5-0\"}{\"_id\":\"5-0\"}"
'

test_expect_success 'the time of an event without one: its sharded _id' '
    printf "{\"_id\":\"2-1767225600000-0\"}\n{\"_id\":\"1-1767312000000-0\"}\n" >t &&
    logpipe-replay --since 2026-01-01T12:00:00Z t >late &&
    test "$(cat late)" = "{\"_id\":\"1-1767312000000-0\"}"
'

test_expect_success 'an unsharded stream: _id <ms>-<seq> as before' '
    rcli xadd plain "*" data "{\"a\":1}" >id &&
    logpipe-replay --from-redis -s plain >pl &&
    test "$(cat pl)" = "{\"_id\":\"$(cat id)\",\"a\":1}"
'

test_done
