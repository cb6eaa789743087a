#!/bin/sh
# t0372-drain-shards-sigpipe-msg.sh -- review of issue 17 step 2 (rsh): a
# sharded logpipe-drain --stdout | head ends as killed by SIGPIPE (141),
# as logpipe-drain(1) says; but the shard process that met the closed pipe
# is reported as "shard 0 (...) ended with status 0: stopping the drains of
# the other shards", a status it did not end with (it was killed by
# SIGPIPE, which the parent counts as 0): the operator reads that a shard
# ended well and yet everything was stopped.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis

gen_events 8000 >in

test_expect_success 'setup: 4 shards of 2000 events' '
    logpipe-send --max-age 0 --shards 4 <in
'

test_expect_success 'drain --stdout | head -n 1: the drain ends as killed by SIGPIPE (141)' '
    { logpipe-drain --once --stdout -d out 2>err; echo $? >st; } | head -n 1 >first &&
    test "$(cat st)" = 141 &&
    test "$(wc -l <first)" = 1
'

test_expect_success 'no shard is said to have ended with status 0 when it was cut by SIGPIPE' '
    ! grep "ended with status 0" err
'

test_done
