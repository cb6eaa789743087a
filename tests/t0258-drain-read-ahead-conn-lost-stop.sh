#!/bin/sh
# t0258-drain-read-ahead-conn-lost-stop.sh -- was a fault (review rd1): a stop after the connection was lost with the read ahead out
# keeps the read-ahead entries at delivery count 1: give_back_sent takes their IDs, lp_group_give_back writes on the dead socket, no reconnect.
# Fixed: lp_group_give_back connects again once when the connection was lost before it came.
# Breaks logpipe-drain(1) DELIVERY: a stop gives the deliveries of the entries read ahead back unworked (they count toward --max-deliveries).
#
# Redis is up all along (only the connection was killed: a proxy, a
# failover, CLIENT KILL); final_ack then connects again for the XACK of the
# batch in hand, but the give-back went before it and failed. With
# --max-deliveries 1 the next start sends 500 entries no drain ever worked
# on to the DLQ instead of the archive. The same happens after a Redis
# restart with an AOF (stop_redis, restart_redis, then SIGTERM).
. "$(dirname "$0")/lib.sh"
start_redis readahead

pending_is() {
    test "$(pending)" = "$1"
}

test_expect_success 'connection killed with the read ahead out, then SIGTERM: its deliveries given back' '
    gen_events 5000 "a b c d e f g h" >in &&
    logpipe-send <in || exit 1
    LOGPIPE_TEST_CRASH=stop:after-write logpipe-drain -n 500 -d out \
        2>err &
    pid=$! &&
    wait_for 20 stopped $pid &&
    wait_for 20 pending_is 1000 &&
    rcli CLIENT KILL TYPE normal >/dev/null &&
    kill -TERM $pid && kill -CONT $pid &&
    wait $pid &&
    test "$(pending)" -eq 500 &&
    test "$(max_count)" -eq 0
'

test_expect_success 'and so --max-deliveries 1 archives them rather than moving them to the DLQ' '
    logpipe-drain --once -n 500 --max-deliveries 1 -d out 2>err2 &&
    test "$(pending)" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    exactly 5000 out
'

test_done
