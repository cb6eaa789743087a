#!/bin/sh
# t0174-send-follow-ttl-other.sh -- logpipe-send --follow (review of issue
# 15 item 2) and --producer-ttl: a followed file that has not grown for
# longer than the TTL (a rotated app.log.1 kept a week, with the default
# 7d) keeps its position only from its own run's pruning: any other
# logpipe-send on the same stream (stdin, or --follow of other patterns)
# prunes its field at start as an old producer, and the next run of the
# follower reads the whole file again: every line a copy.
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# lines FILE FIRST LAST
lines() {
    awk -v a="$2" -v b="$3" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"seq\":%d}\n", i }' >>"$1"
}

# follow_once [N]: one run of the follower to the end of what is there:
# until logs:stream holds N entries (at most 60 s), else for 0.8 s
follow_once() {
    logpipe-send -F "logs/app.log*" --producer fw --linger 5 2>>send.err &
    _spid=$!
    if [ -n "${1-}" ]; then
        wait_for 60 "test \$(rcli XLEN logs:stream) -ge $1" || :
    else
        sleep 0.8
    fi
    kill -TERM $_spid
    wait $_spid
}

mkdir logs

test_expect_success 'a quiet file'"'"'s position survives another sender'"'"'s --producer-ttl' '
    lines logs/app.log.1 1 20
    follow_once 20
    [ "$(rcli XLEN logs:stream)" -eq 20 ]
    rcli --raw HKEYS logs:stream:producers >before
    say "fields: $(tr "\n" " " <before)"
    # the file stays quiet longer than the TTL; another sender runs
    sleep 1.5
    echo "{\"seq\":1000}" | logpipe-send --producer-ttl 1s 2>other.err
    rcli --raw HKEYS logs:stream:producers >after
    say "fields after the other sender: $(tr "\n" " " <after)"
    follow_once
    rcli --raw XRANGE logs:stream - + |
        sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" | grep -v "^1000$" | sort -n >got
    tally 20 got
'

test_expect_success 'the same with another --follow of other patterns as the pruner' '
    mkdir other
    lines other/x.log 2000 2000
    lines logs/app.log.2 101 120
    follow_once 41
    sleep 1.5
    logpipe-send -F "other/*.log" --producer other --producer-ttl 1s \
        --linger 5 2>other.err &
    opid=$!
    sleep 0.8
    kill -TERM $opid
    wait $opid
    follow_once
    rcli --raw XRANGE logs:stream - + |
        sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" |
        awk "\$1 >= 101 && \$1 <= 120" | sort -n >got
    awk "BEGIN { for (i = 101; i <= 120; i++) print i }" >want
    test_cmp want got
'

test_done
