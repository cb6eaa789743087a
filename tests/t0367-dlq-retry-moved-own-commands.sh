#!/bin/sh
# t0367-dlq-retry-moved-own-commands.sh -- logpipe-dlq retry and purge of
# a sharded stream on a 3-master Redis Cluster whose own page of
# commands meets MOVED (issue 17, s19): the first page of shard 0 is
# read, then dlq waits (LOGPIPE_TEST_DLQ_PAUSE) while the slot of shard
# 0 moves whole to another master; its commands go where the map it
# loaded says, are turned away (MOVED: they did not run), and are sent
# again on the new master. Each dead letter retried (purged) exactly
# once, the DLQs empty. No timing: dlq waits for the file to go.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

cluster_sharded app:dlqmoved

awk 'BEGIN { for (i = 1; i <= 6000; i++) printf "not json %d\n", i }' >bad
gen_events 600 >good

dead_letters() {
    expect_exit 65 logpipe-send -q -r "$URL" -s "$S" --shards 6 -b 500 \
        --rejects-to-dlq <bad 2>send.err &&
    test "$(cluster_dlqs_total "$S" 6)" = 6000
}

# paused CMD...: CMD with its first page of shard 0 read and its commands
# held while the slot of shard 0 moves whole; its output in got
paused() {
    cluster_shard_pick 6 0 || return 1
    rm -f pause
    LOGPIPE_TEST_DLQ_PAUSE=$PWD/pause "$@" >got 2>cmd.err &
    cpid=$!
    wait_for 60 "test -e pause" || { kill $cpid; cat cmd.err; return 1; }
    cluster_move_slot "$SL" "$FROM" "$TO" || { kill $cpid; return 1; }
    rm pause
    wait $cpid || { cat cmd.err; return 1; }
    cat cmd.err
    test "$(cluster_key_owner "$SH")" = "$TO"
}

# once ACTION: every line of got an action on one of 6000 entries, each
# once
once() {
    test "$(wc -l <got)" = 6000 &&
    test "$(jq -r "select(.action == \"$1\") | .id" got | sort -u | wc -l)" = 6000
}

test_expect_success '600 events, 6000 dead letters over the 6 shards' '
    logpipe-send -r "$URL" -s "$S" --max-age 0 --shards 6 -b 100 <good \
        2>send.err &&
    dead_letters &&
    test "$(cluster_shards_total "$S" 6)" = 600
'

test_expect_success 'retry, its first page of commands turned away (MOVED): each dead letter back once' '
    paused logpipe-dlq -v -r "$URL" -s "$S" retry --all &&
    grep_q "EVAL logs:dlq:[^ ]*: 127.0.0.1:$FROM: MOVED $SL 127.0.0.1:$TO: 10 entries sent again on 127.0.0.1:$TO$" cmd.err &&
    grep_q "6000 entries retried, 0 gone already" cmd.err &&
    once retried &&
    test "$(jq -r .id got | grep -c "^0-")" = 1000 &&
    test "$(cluster_dlqs_total "$S" 6)" = 0 &&
    test "$(cluster_shards_total "$S" 6)" = 6600
'

test_expect_success 'purge, its first page of commands turned away (MOVED): each purged once' '
    dead_letters &&
    paused logpipe-dlq -v -r "$URL" -s "$S" purge --all &&
    grep_q "XDEL logs:dlq:[^ ]*: 127.0.0.1:$FROM: MOVED $SL 127.0.0.1:$TO: 10 entries sent again on 127.0.0.1:$TO$" cmd.err &&
    grep_q "6000 entries purged, 0 gone already" cmd.err &&
    once purged &&
    test "$(cluster_dlqs_total "$S" 6)" = 0 &&
    test "$(cluster_shards_total "$S" 6)" = 6600
'

test_done
