#!/bin/sh
# t0363-shards-cluster.sh -- stat, dlq and replay --from-redis over a
# stream of 6 shards on a 3-master Redis Cluster (issue 17, item 2),
# each through a node that does not own the stream: stat shows each
# shard on the master of its slot, the 6 on 3 different nodes; dlq lists
# every shard's DLQ and retries an entry back into its shard (one
# script: the DLQ shares its shard's slot); a --dlq outside the stream's
# slot is the base of the shards' DLQs (no 78); replay --from-redis
# exact, _id <i>-<ms>-<seq>.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"
. "$TOP/tests/shards-lib.sh"

start_cluster 3 0
S=app:events
cluster_roles "$S"
CLI="ccli $M1 -c"
URL="redis://127.0.0.1:$A"

test_expect_success 'setup: 6 shards of 20 to 120 entries, a group on each' '
    shards_fill "$S" 6 20 &&
    for i in 0 1 2 3 4 5; do
        $CLI xgroup create "$(shard_name "$S" 6 $i)" g 0 >/dev/null || exit 1
    done &&
    test "$($CLI set "{$S}:shards" 6)" = OK &&
    $CLI xadd "$(dlq_name logs:dlq 6 1)" "*" data "{\"dead\":1}" \
        source_stream "$(shard_name "$S" 6 1)" >/dev/null &&
    $CLI xadd "$(dlq_name logs:dlq 6 4)" "*" data "{\"dead\":4}" \
        source_stream "$(shard_name "$S" 6 4)" >/dev/null
'

test_expect_success 'stat: each shard on the master of its slot, 3 nodes' '
    logpipe-stat -r "$URL" -s "$S" >st.json &&
    test "$(jq ".shards | length" st.json)" = 6 &&
    for i in 0 1 2 3 4 5; do
        n=$(shard_name "$S" 6 $i) &&
        slot=$(ccli "$M1" cluster keyslot "$n") &&
        test "$(jq -r ".shards[$i].node" st.json)" = "127.0.0.1:$(cluster_owner "$slot")" &&
        test "$(jq ".shards[$i].length" st.json)" = "$($CLI xlen "$n")" &&
        test "$(jq ".shards[$i].length" st.json)" = $((20 * (i + 1))) ||
        exit 1
    done &&
    test "$(jq -r ".shards[].node" st.json | sort -u | wc -l)" = 3 &&
    test "$(jq .length st.json)" = 420 &&
    test "$(jq .dlq.length st.json)" = 2 &&
    test "$(jq ".groups[0].lag" st.json)" = 420
'

test_expect_success 'stat through each master says the same' '
    for p in $M1 $M2 $M3; do
        logpipe-stat -r "redis://127.0.0.1:$p" -s "$S" |
            jq -c "[.length, [.shards[] | .node, .length]]" >"v$p" || exit 1
    done &&
    test_cmp "v$M1" "v$M2" &&
    test_cmp "v$M1" "v$M3"
'

test_expect_success 'dlq: every shard DLQ; retry back into its shard' '
    logpipe-dlq -r "redis://127.0.0.1:$B" -s "$S" list >list &&
    test "$(jq -r .id list | cut -d- -f1 | tr "\n" " ")" = "1 4 " &&
    ID4=$(jq -r "select(.event.dead == 4) | .id" list) &&
    S4=$(shard_name "$S" 6 4) &&
    logpipe-dlq -r "redis://127.0.0.1:$B" -s "$S" retry "$ID4" >ret &&
    test "$(jq -r .stream ret)" = "$S4" &&
    test "$($CLI xlen "$S4")" = 101 &&
    test "$($CLI xlen "$(dlq_name logs:dlq 6 4)")" = 0 &&
    $CLI xrevrange "$S4" + - count 1 >last &&
    grep_q "{\"dead\":4}" last
'

test_expect_success 'a --dlq in another slot: the base of the shards DLQs' '
    $CLI xadd "$(dlq_name other:dlq 6 5)" "*" data "{\"dead\":5}" >/dev/null &&
    logpipe-dlq -r "$URL" -s "$S" --dlq other:dlq list >ol &&
    test "$(jq -r .id ol | cut -d- -f1)" = 5 &&
    logpipe-stat -r "$URL" -s "$S" --dlq other:dlq >os.json &&
    test "$(jq -r .shards[5].dlq.key os.json)" = "$(dlq_name other:dlq 6 5)" &&
    test "$(jq .dlq.length os.json)" = 1
'

test_expect_success 'replay --from-redis through a node: exact, sharded _ids' '
    logpipe-replay -r "$URL" -s "$S" --from-redis >all &&
    test "$(wc -l <all)" = 421 &&
    grep -v "\"dead\":4" all >events &&
    seqs events >got &&
    tally 420 got &&
    sed -n "s/^{\"_id\":\"\([0-9]*\)-[0-9]*-[0-9]*\",\"seq\":[0-9]*,\"shard\":\([0-9]*\),.*/\1 \2/p" all >pairs &&
    test "$(wc -l <pairs)" = 420 &&
    awk "\$1 != \$2 { bad++ } END { exit bad }" pairs &&
    grep_q "^{\"_id\":\"4-[0-9]*-[0-9]*\",\"dead\":4}\$" all
'

test_done
