#!/bin/sh
# t0394-dlq-retry-shards-moving-cluster.sh -- logpipe-dlq retry and purge
# of a sharded stream on a 3-master Redis Cluster while a shard's slot
# moves (issue 17): each command a redirect turned away (it did not run)
# is sent again where the slot went, after ASKING on an ASK, after a wait
# on a TRYAGAIN; each dead letter moves back (is purged) once, and the
# counts are exact. dlq runs shard by shard and blocks on a pipe nobody
# reads yet: after its first line, in the middle of shard 0, the slot of
# shard 0 is half moved; the steps that must come after dlq saw the
# half move wait for it to say so. No timing.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:dlqretry

# long enough that a few pages fill the pipe
awk 'BEGIN { p = sprintf("%100s", ""); gsub(/ /, "x", p)
             for (i = 1; i <= 18000; i++) printf "not json %d %s\n", i, p }' >bad
gen_events 600 >good

dead_letters() {
    expect_exit 65 logpipe-send -q -r "$URL" -s "$S" --shards 6 -b 500 \
        --rejects-to-dlq <bad 2>send.err &&
    test "$(cluster_dlqs_total "$S" 6)" = 18000
}

test_expect_success '600 events, 18000 dead letters over the 6 shards' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 100 <good \
        2>send.err &&
    dead_letters &&
    test "$(cluster_shards_total "$S" 6)" = 600
'

# start_dlq CMD...: CMD into a pipe; returns once its first line is read
start_dlq() {
    rm -f out
    mkfifo out || return 1
    "$@" >out 2>cmd.err &
    CPID=$!
    exec 3<out
    read -r first <&3
}

# end_dlq: the rest of the output, into got (the first line too); dlq
# ended with 0
end_dlq() {
    { echo "$first"; cat <&3; } >got &&
    exec 3<&- &&
    { wait $CPID || { cat cmd.err; false; }; } &&
    cat cmd.err
}

# half_moved CMD...: CMD while shard 0 is half moved (every key of its
# slot on TO, the slot still migrating: ASK), the move ended after it
half_moved() {
    cluster_shard_pick 6 0 &&
    start_dlq "$@" &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_keys "$SL" "$FROM" "$TO" &&
    end_dlq &&
    cluster_move_end "$SL" "$FROM" "$TO" &&
    grep_q "sent again on 127.0.0.1:$TO (ASKING)" cmd.err
}

# every line of got an action on one of 18000 entries, each once
once() {
    test "$(wc -l <got)" = 18000 &&
    test "$(jq -r "select(.action == \"$1\") | .id" got | sort -u | wc -l)" = 18000
}

test_expect_success 'retry while shard 0 is half moved (ASK): each dead letter back once' '
    half_moved logpipe-dlq -v -r "$URL" -s "$S" retry --all &&
    ! grep "read again" cmd.err &&
    grep_q "18000 entries retried, 0 gone already" cmd.err &&
    once retried &&
    test "$(jq -r .id got | grep -c "^0-")" = 3000 &&
    test "$(cluster_dlqs_total "$S" 6)" = 0 &&
    test "$(cluster_shards_total "$S" 6)" = 18600 &&
    test "$(ccli "$TO" xlen "$SH")" = 3100
'

test_expect_success 'retry while shard 0 moves, its stream first (TRYAGAIN): each back once' '
    dead_letters &&
    cluster_shard_pick 6 0 &&
    start_dlq logpipe-dlq -v -r "$URL" -s "$S" retry --all &&
    cluster_move_begin "$SL" "$FROM" "$TO" &&
    cluster_move_key "$FROM" "$TO" "$SH" || exit 1
    { echo "$first"; cat <&3; } >got &
    CATPID=$!
    wait_for 60 "grep -q \"sent again after\" cmd.err" &&
    cluster_move_keys "$SL" "$FROM" "$TO" &&
    cluster_move_end "$SL" "$FROM" "$TO" &&
    wait $CATPID &&
    exec 3<&- &&
    { wait $CPID || { cat cmd.err; false; }; } &&
    cat cmd.err &&
    grep_q "18000 entries retried, 0 gone already" cmd.err &&
    once retried &&
    test "$(cluster_dlqs_total "$S" 6)" = 0 &&
    test "$(cluster_shards_total "$S" 6)" = 36600 &&
    test "$(ccli "$TO" xlen "$SH")" = 6100
'

test_expect_success 'purge while shard 0 is half moved (ASK): purges what it says, once' '
    dead_letters &&
    half_moved logpipe-dlq -v -r "$URL" -s "$S" purge --all &&
    grep_q "18000 entries purged, 0 gone already" cmd.err &&
    once purged &&
    test "$(cluster_dlqs_total "$S" 6)" = 0 &&
    test "$(cluster_shards_total "$S" 6)" = 36600
'

test_expect_success 'purge while shard 0 moves whole (MOVED): purges what it says, once' '
    dead_letters &&
    cluster_shard_pick 6 0 &&
    start_dlq logpipe-dlq -v -r "$URL" -s "$S" purge --all &&
    cluster_move_slot "$SL" "$FROM" "$TO" &&
    end_dlq &&
    grep_q "18000 entries purged, 0 gone already" cmd.err &&
    once purged &&
    test "$(cluster_dlqs_total "$S" 6)" = 0
'

test_done
