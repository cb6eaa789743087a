#!/bin/sh
# t0308-example-redis-conf.sh -- examples/redis.conf is what logpipe(7)
# asks of Redis, and this Debian's redis-server takes it as it is: each
# setting (but those naming the host's paths and addresses) given to a
# server of the test's own, which must run with it; a crash torn in a
# transaction is then refused at the restart rather than half loaded
# (aof-load-truncated no), and redis-check-aof --fix makes it start.
. "$(dirname "$0")/lib.sh"

# the settings, as --name value arguments
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/examples/redis.conf" |
    grep -Ev '^(bind|protected-mode|unixsocket|unixsocketperm|aclfile) ' |
    sed 's/^/--/' >args

test_expect_success 'examples/redis.conf has the settings logpipe(7) asks for' '
    grep_q "^--appendonly yes$" args &&
    grep_q "^--appendfsync always$" args &&
    grep_q "^--aof-load-truncated no$" args &&
    grep_q "^--maxmemory-policy noeviction$" args
'

# shellcheck disable=SC2046
start_redis ex $(cat args)

test_expect_success 'a redis-server runs with them' '
    test "$(rcli CONFIG GET aof-load-truncated | tail -n 1)" = no &&
    test "$(rcli CONFIG GET appendfsync | tail -n 1)" = always &&
    test "$(rcli CONFIG GET maxmemory-policy | tail -n 1)" = noeviction &&
    printf "{\"seq\":1}\n{\"seq\":2}\n" | logpipe-send &&
    test "$(rcli XLEN logs:stream)" = 2
'

test_expect_success 'an AOF torn inside a transaction: refused, then mended by redis-check-aof --fix' '
    stop_redis KILL &&
    aof=$(ls "$REDIS_DIR"/appendonlydir/*.incr.aof) &&
    printf "*1\r\n\$5\r\nMULTI\r\n*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$1\r\nv\r\n*3\r\n\$3\r\nS" >>"$aof" &&
    : >"$REDIS_DIR/redis.log" &&
    # (in the foreground: one that started anyway is stopped by timeout)
    rc=0 &&
    timeout 10 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" \
        $(cat args) >/dev/null 2>&1 || rc=$?
    test "$rc" = 1 &&
    grep_q "redis-check-aof --fix" "$REDIS_DIR/redis.log" &&
    restart_redis &&
    test "$(rcli XLEN logs:stream)" = 2 &&
    test -z "$(rcli GET k)"
'

test_done
