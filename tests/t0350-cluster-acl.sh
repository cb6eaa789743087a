#!/bin/sh
# t0350-cluster-acl.sh -- examples/users.acl on a Redis Cluster (issue 17:
# "the ACL example covers the cluster commands the tools need"): its users,
# set on every node of a 3-master cluster, run send through a node that
# does not own the stream, drain --once and stat through others, with the
# default stream: INFO (is it a cluster?), CLUSTER SLOTS (where is the
# stream's slot?) and the derived keys ({logs:stream}:producers, the
# default DLQ {logs:stream}:dlq) are theirs; every event once.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

start_cluster 3 0
cluster_roles logs:stream

# each user line of the example, its password made known, on each node
# (the default user stays: the cluster's own tooling uses it)
sed -n -e "s/>CHANGE-ME-\([a-z]*\)/>pw-\1/" -e 's/^user \(logpipe-[a-z]*\) /\1 /p' \
    "$TOP/examples/users.acl" >users
for p in $M1 $M2 $M3; do
    while read -r name rules; do
        # shellcheck disable=SC2086
        ccli "$p" ACL SETUSER "$name" reset $rules >/dev/null ||
            { echo "Bail out! ACL SETUSER $name failed on $p"; exit 1; }
    done <users
done

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
awk -v now="$NOW" 'BEGIN { for (i = 1; i <= 2000; i++)
    printf "{\"timestamp\":\"%s\",\"service\":\"acl\",\"seq\":%d}\n", now, i }' >in

test_expect_success 'send as logpipe-send through a node that does not own the stream' '
    LOGPIPE_REDIS_PASSWORD=pw-send \
        logpipe-send -r "redis://logpipe-send@127.0.0.1:$A/0" <in &&
    test "$(ccli "$OWNER" XLEN logs:stream)" = 2000
'

test_expect_success 'drain --once as logpipe-drain through another: every event once' '
    LOGPIPE_REDIS_PASSWORD=pw-drain \
        logpipe-drain -r "redis://logpipe-drain@127.0.0.1:$B/0" -d arch --once &&
    exactly 2000 arch
'

test_expect_success 'stat as logpipe-stat, dlq as logpipe-dlq, through any node' '
    LOGPIPE_REDIS_PASSWORD=pw-stat \
        logpipe-stat -r "redis://logpipe-stat@127.0.0.1:$A/0" >st &&
    grep_q "\"name\":\"logpipe\",\"consumers\":1,\"pending\":0,\"lag\":0" st &&
    grep_q "\"dlq\":{\"key\":\"{logs:stream}:dlq\"" st &&
    LOGPIPE_REDIS_PASSWORD=pw-dlq \
        logpipe-dlq -r "redis://logpipe-dlq@127.0.0.1:$B/0" list >dl &&
    test ! -s dl
'

# The slot in the middle of a migration (importing on A, migrating on the
# owner), its keys moved to A already: dlq reads and purges following ASK
# (each command again on A after ASKING), which its user must be allowed
# (NOPERM for ASKING before examples/users.acl had +asking)
awk 'BEGIN { for (i = 1; i <= 300; i++) printf "not json %d\n", i }' >bad

test_expect_success 'mid-migration (ASK): dlq list and purge as logpipe-dlq' '
    LOGPIPE_REDIS_PASSWORD=pw-send expect_exit 65 logpipe-send -q \
        -r "redis://logpipe-send@127.0.0.1:$A/0" --rejects-to-dlq <bad &&
    test "$(ccli "$OWNER" XLEN "{logs:stream}:dlq")" = 300 &&
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    test "$(cluster_asked "$A" XLEN "{logs:stream}:dlq")" = 300 &&
    LOGPIPE_REDIS_PASSWORD=pw-dlq \
        logpipe-dlq -r "redis://logpipe-dlq@127.0.0.1:$B/0" list >dl &&
    test "$(wc -l <dl)" -eq 300 &&
    LOGPIPE_REDIS_PASSWORD=pw-dlq \
        logpipe-dlq -r "redis://logpipe-dlq@127.0.0.1:$B/0" purge --all &&
    test "$(cluster_asked "$A" XLEN "{logs:stream}:dlq")" = 0 &&
    cluster_move_end "$SLOT" "$OWNER" "$A"
'

test_done
