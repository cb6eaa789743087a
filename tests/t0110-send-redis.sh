#!/bin/sh
# t0110-send-redis.sh -- logpipe-send when Redis is slow, away or dies
. "$(dirname "$0")/lib.sh"

start_redis
test_expect_success 'a trickle leaves within the linger time' '
    mkfifo fifo
    logpipe-send --linger 20ms <fifo 2>err &
    pid=$!
    exec 3>fifo &&
    echo "{\"n\":1}" >&3 &&
    wait_for 10 test_xlen -eq 1 &&
    echo "{\"n\":2}" >&3 &&
    wait_for 10 test_xlen -eq 2 &&
    exec 3>&- &&
    wait $pid
'

test_expect_success 'Redis not running at start: exit 75 after --timeout, 0 bytes sent' '
    url=$(dead_redis) &&
    gen_events 10 >in &&
    expect_exit 75 logpipe-send -r $url --timeout 1s <in 2>err &&
    grep_q "giving up (--timeout" err &&
    grep_q "sent 0 bytes of the input; resume with: tail -c +1 | logpipe-send -r $url --timeout 1s (fed the same input)" err
'

# the late Redis listens on a unix socket of its own, not a random port:
# another test's server could hold the port before it starts, and take
# the events
test_expect_success 'Redis starting late within --timeout: everything is sent' '
    mkdir -p late
    sock=$TMP/late/redis.sock
    gen_events 100 >in
    logpipe-send -r unix://$sock --timeout 20s <in 2>err &
    pid=$!
    # Redis starts once the sender has found it away, not after a sleep
    # that a slow start of the sender could outlast
    wait_for 20 grep -q "retrying for up to 20s" err
    redis-server --port 0 --unixsocket "$sock" --dir "$TMP/late" --save "" \
        --logfile "$TMP/late/log" --daemonize yes --pidfile "$TMP/late/pid"
    wait_for 5 test -s late/pid
    cat late/pid >>"$TMP/.pids"
    wait $pid &&
    test "$(redis-cli -s "$sock" XLEN logs:stream)" -eq 100 &&
    grep_q "answers again" err
'

start_redis aof --appendonly yes --appendfsync always
test_expect_success 'Redis killed mid-send: exit 75, the resume hint sends the rest once' '
    gen_events 200000 >in
    # the second half of the input is written only after the kill, so the
    # sender cannot have sent everything before it, however fast it is
    head -n 100000 in >in.1 && tail -n +100001 in >in.2 &&
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --timeout 2s <fifo 2>err &
    pid=$!
    exec 3>fifo &&
    cat in.1 >&3 &&
    wait_for 60 test_xlen -gt 20000 &&
    kill -9 $(redis_pid) &&
    { cat in.2 >&3 2>/dev/null || :; } &&
    exec 3>&- &&
    expect_exit 75 wait $pid &&
    grep_q "resume with: tail -c +" err &&
    hint=$(sed -n "s/.*resume with: \(.*\) (fed the same input)$/\1/p" err) &&
    restart_redis &&
    before=$(rcli XLEN logs:stream) &&
    say "with $before events in the stream: $hint" &&
    # the events of a batch whose reply the kill cut off may be in Redis:
    # the hint names the producer and position, the resumed run passes
    # over what is stored
    sh -c "$hint" <in 2>err2 &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 200000 >want &&
    test_cmp want got
'

start_redis paused
test_expect_success 'Redis paused longer than --timeout: exit 75' '
    gen_events 50 >in &&
    kill -STOP $(redis_pid) &&
    expect_exit 75 logpipe-send --timeout 1s <in 2>err &&
    kill -CONT $(redis_pid) &&
    grep_q "giving up (--timeout" err &&
    grep_q "timed out after 1000ms" err &&
    ! grep -q "after 10000ms" err &&
    grep_q "resume with: tail -c +1 " err
'

start_redis auth --requirepass s3cret
test_expect_success 'a wrong password is a configuration error (78), not retried' '
    echo "{\"a\":1}" >in &&
    LOGPIPE_REDIS_PASSWORD=wrong expect_exit 78 logpipe-send <in 2>err &&
    grep_q "WRONGPASS\|invalid password" err &&
    ! grep -q wrong err &&
    expect_exit 78 logpipe-send <in 2>err &&
    grep_q "NOAUTH" err &&
    LOGPIPE_REDIS_PASSWORD=s3cret logpipe-send <in &&
    printf "s3cret\n" >pw &&
    logpipe-send --password-file pw <in &&
    REDISCLI_AUTH=s3cret logpipe-send <in &&
    test "$(rcli -a s3cret --no-auth-warning XLEN logs:stream)" -eq 3
'

start_redis wrongtype
test_expect_success 'a key of the wrong type: exit 78 with the resume point' '
    rcli SET logs:stream x >/dev/null &&
    echo "{\"a\":1}" >in &&
    expect_exit 78 logpipe-send <in 2>err &&
    grep_q "WRONGTYPE" err &&
    grep_q "sent 0 bytes" err
'

start_redis oom --maxmemory 2mb --maxmemory-policy noeviction
test_expect_success 'OOM replies are retried until Redis has room again' '
    gen_events 40000 >in
    logpipe-send --timeout 30s <in 2>err &
    pid=$!
    wait_for 30 grep -q "retrying" err
    rcli CONFIG SET maxmemory 0 >/dev/null
    wait $pid &&
    grep_q "OOM" err &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 40000 >want &&
    test_cmp want got
'

test_done
