#!/bin/sh
# t0360-shards-stat.sh -- logpipe-stat over a sharded stream (issue 17,
# item 2), standalone: the shards found from -r alone (logs:stream:shards),
# one object a shard in "shards" (its name, length, groups, DLQ,
# producers) and the totals above them; --prom: a series a shard;
# --check on the totals; an unsharded stream as before; a count that is
# not one, and a --dlq with braces, refused (78).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"

start_redis
CLI=rcli
S=logs:stream

test_expect_success 'setup: 4 shards of 10, 20, 30, 40 entries, a group on each' '
    shards_fill "$S" 4 10 &&
    for i in 0 1 2 3; do
        rcli xgroup create "$(shard_name "$S" 4 $i)" g 0 >/dev/null || exit 1
    done &&
    rcli set "$S:shards" 4 &&
    S1=$(shard_name "$S" 4 1) &&
    rcli xreadgroup group g c1 count 3 streams "$S1" ">" >/dev/null &&
    D2=$(dlq_name logs:dlq 4 2) &&
    rcli xadd "$D2" "*" data "{}" error e1 >/dev/null &&
    rcli xadd "$D2" "*" data "{}" error e2 >/dev/null &&
    rcli hset "$(shard_name "$S" 4 0):producers" p1 10 >/dev/null &&
    rcli hset "$(shard_name "$S" 4 3):producers" p1 40 p2 3 >/dev/null
'

test_expect_success 'a row a shard: its name, and its length is its XLEN' '
    logpipe-stat >st.json &&
    test "$(jq ".shards | length" st.json)" = 4 &&
    for i in 0 1 2 3; do
        n=$(shard_name "$S" 4 $i) &&
        test "$(jq -r ".shards[$i].stream" st.json)" = "$n" &&
        test "$(jq ".shards[$i].index" st.json)" = $i &&
        test "$(jq ".shards[$i].length" st.json)" = "$(rcli xlen "$n")" &&
        test "$(jq ".shards[$i].length" st.json)" = $((10 * (i + 1))) &&
        test "$(jq -r ".shards[$i].dlq.key" st.json)" = \
             "$(dlq_name logs:dlq 4 $i)" &&
        test "$(jq -r ".shards[$i].producers.key" st.json)" = "$n:producers" ||
        exit 1
    done &&
    test "$(jq ".shards[1].groups[0].pending" st.json)" = 3 &&
    test "$(jq ".shards[1].groups[0].lag" st.json)" = 17 &&
    test "$(jq ".shards[2].dlq.length" st.json)" = 2 &&
    test "$(jq ".shards[3].producers.count" st.json)" = 2 &&
    test "$(jq "has(\"node\")" st.json)" = false
'

test_expect_success 'the totals: length, groups, DLQ, producers by name' '
    test "$(jq -r .stream st.json)" = "$S" &&
    test "$(jq .length st.json)" = 100 &&
    test "$(jq "has(\"first_id\")" st.json)" = false &&
    test "$(jq ".groups | length" st.json)" = 1 &&
    test "$(jq ".groups[0].pending" st.json)" = 3 &&
    test "$(jq ".groups[0].lag" st.json)" = 97 &&
    test "$(jq ".groups[0].consumers" st.json)" = 1 &&
    test "$(jq ".groups[0].last_delivered_id" st.json)" = null &&
    jq -r ".groups[0].oldest_pending_id" st.json >oldest &&
    grep -q "^1-[0-9]*-[0-9]*\$" oldest &&
    test "$(jq -r .dlq.key st.json)" = logs:dlq &&
    test "$(jq .dlq.length st.json)" = 2 &&
    test "$(jq .producers.count st.json)" = 2 &&
    test "$(jq ".producers | has(\"key\")" st.json)" = false
'

test_expect_success '--producers: each shard lists its own' '
    logpipe-stat --producers >stp.json &&
    test "$(jq -c "[.shards[3].producers.list[].name]" stp.json)" = "[\"p1\",\"p2\"]" &&
    test "$(jq ".shards[0].producers.list[0].position" stp.json)" = 10 &&
    test "$(jq ".shards[1].producers.list | length" stp.json)" = 0
'

test_expect_success '--prom: one series a shard, labelled shard' '
    logpipe-stat --prom >st.prom &&
    for i in 0 1 2 3; do
        grep_q "^logpipe_stream_length{stream=\"$S\",shard=\"$i\"} $((10 * (i + 1)))\$" st.prom ||
        exit 1
    done &&
    grep_q "^logpipe_group_pending{stream=\"$S\",shard=\"1\",group=\"g\"} 3\$" st.prom &&
    grep_q "^logpipe_dlq_length{key=\"$(dlq_name logs:dlq 4 2)\"} 2\$" st.prom &&
    test "$(grep -c "^logpipe_stream_length" st.prom)" = 4
'

test_expect_success '--check on the totals' '
    expect_exit 1 logpipe-stat --check --max-pending 2 >/dev/null 2>err &&
    grep_q "group g: 3 pending, over --max-pending 2" err &&
    expect_exit 1 logpipe-stat --check --max-dlq 1 >/dev/null 2>err &&
    grep_q "logs:dlq:{N} holds 2 entries, over --max-dlq 1" err &&
    expect_exit 1 logpipe-stat --check --max-lag 96 >/dev/null 2>err &&
    grep_q "lag 97 is over --max-lag 96" err &&
    logpipe-stat --check --max-lag 97 --max-pending 3 --max-dlq 2 >/dev/null
'

test_expect_success '--max-lag when a shard has no lag (an XDEL): counted' '
    S2=$(shard_name "$S" 4 2) &&
    rcli xreadgroup group g c1 count 1 streams "$S2" ">" >/dev/null &&
    id=$(rcli xrange "$S2" - + count 5 | sed -n 13p) &&
    rcli xdel "$S2" "$id" >/dev/null &&
    logpipe-stat >st2.json &&
    test "$(jq ".shards[2].groups[0].lag" st2.json)" = null &&
    test "$(jq ".groups[0].lag" st2.json)" = null &&
    expect_exit 1 logpipe-stat --check --max-lag 94 >/dev/null 2>err &&
    grep_q "more than 94 entries not yet delivered over its shards" err &&
    logpipe-stat --check --max-lag 95 --max-pending 4 >/dev/null
'

test_expect_success 'an unsharded stream: no shards member, as before' '
    rcli xadd plain "*" data "{}" >/dev/null &&
    logpipe-stat -s plain >pl.json &&
    test "$(jq "has(\"shards\")" pl.json)" = false &&
    test "$(jq .length pl.json)" = 1 &&
    test "$(jq -r .producers.key pl.json)" = plain:producers
'

test_expect_success 'a count that is not one, a --dlq with braces: 78' '
    rcli set bad:shards many >/dev/null &&
    expect_exit 78 logpipe-stat -s bad >/dev/null 2>err &&
    grep_q "bad:shards: not a count of shards" err &&
    expect_exit 78 logpipe-stat --dlq "d:{x}" >/dev/null 2>err &&
    grep_q "a name without" err
'

test_expect_success 'a user refused GET of the count: 78, said how to mend it' '
    rcli acl setuser noget on ">pw" "~*" "+@all" "-get" >/dev/null &&
    echo pw >pwfile &&
    expect_exit 78 logpipe-stat -r "redis://noget@127.0.0.1:$REDIS_PORT" \
        --password-file pwfile >/dev/null 2>err &&
    grep_q "NOPERM.*the user needs +get on it" err
'

test_done
