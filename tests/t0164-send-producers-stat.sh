#!/bin/sh
# t0164-send-producers-stat.sh -- the producers of logpipe-send in
# logpipe-stat (a count; --producers: each name, position and age), and
# --producer-ttl, which removes the producers silent for that long when a
# send starts (issue 15 item 1)
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis

gen_events 7 >in

test_expect_success 'stat counts the producers; --producers shows each' '
    logpipe-send --max-age 0 --producer web-1 <in &&
    # a run of its own producer, all answered, no WAL: its field goes
    logpipe-send --max-age 0 <in &&
    test "$(rcli --raw HKEYS logs:stream:producers)" = web-1 &&
    rcli HSET logs:stream:producers other "3 $(date +%s)000" >/dev/null &&
    logpipe-stat >st.json &&
    grep_q "\"producers\":{\"key\":\"logs:stream:producers\",\"count\":2}" st.json &&
    ! grep -q "\"list\"" st.json &&
    logpipe-stat --producers >st.json &&
    grep_q "{\"name\":\"web-1\",\"position\":7,\"age_seconds\":[0-9.]*}" st.json &&
    test "$(grep -o "\"name\":" st.json | wc -l)" -eq 2 &&
    # a cursor, as a --journal input leaves one, is shown too
    rcli HSET logs:stream:producers jr "5 $(date +%s)000 s=abc;i=1" >/dev/null &&
    logpipe-stat --producers >st.json &&
    grep_q "{\"name\":\"jr\",\"position\":5,\"age_seconds\":[0-9.]*,\"cursor\":\"s=abc;i=1\"}" st.json
'

test_expect_success 'stat --prom: the count, and with --producers each position and age' '
    logpipe-stat --prom >st.prom &&
    grep_q "^logpipe_producers{stream=\"logs:stream\"} 3$" st.prom &&
    ! grep -q logpipe_producer_position st.prom &&
    logpipe-stat --prom --producers >st.prom &&
    grep_q "^logpipe_producer_position{stream=\"logs:stream\",producer=\"web-1\"} 7$" st.prom &&
    grep_q "^logpipe_producer_age_seconds{stream=\"logs:stream\",producer=\"web-1\"} [0-9.]*$" st.prom
'

test_expect_success '--producer-ttl: producers silent that long are removed at the start' '
    old=$(( $(date +%s) - 3 * 86400 ))000 &&
    rcli HSET logs:stream:producers old1 "9 $old" old2 "4 $old" >/dev/null &&
    logpipe-send -v --max-age 0 --producer web-1 --producer-ttl 2d <in 2>err &&
    grep_q "removed 2 producers older than --producer-ttl from logs:stream:producers" err &&
    test "$(rcli HEXISTS logs:stream:producers old1)" -eq 0 &&
    test "$(rcli HEXISTS logs:stream:producers old2)" -eq 0 &&
    test "$(rcli HEXISTS logs:stream:producers jr)" -eq 1 &&
    rcli HSET logs:stream:producers old3 "1 $old" >/dev/null &&
    # the default is 7 days: a 3-day-old one stays; 0 keeps every one
    logpipe-send --max-age 0 <in &&
    test "$(rcli HEXISTS logs:stream:producers old3)" -eq 1 &&
    logpipe-send --max-age 0 --producer-ttl 0 <in &&
    test "$(rcli HEXISTS logs:stream:producers old3)" -eq 1 &&
    logpipe-send --max-age 0 --producer-ttl 1d <in &&
    test "$(rcli HEXISTS logs:stream:producers old3)" -eq 0
'

test_expect_success '--producer-ttl works in bounded steps over many producers' '
    old=$(( $(date +%s) - 30 * 86400 ))000 &&
    awk -v old="$old" "BEGIN { for (i = 1; i <= 5000; i++) printf \"HSET logs:stream:producers gone%d \\\"1 %s\\\"\\n\", i, old }" |
        rcli >/dev/null &&
    test "$(rcli HLEN logs:stream:producers)" -gt 5000 &&
    logpipe-send --max-age 0 <in &&
    n1=$(rcli HLEN logs:stream:producers) &&
    say "after one start: $n1 fields" &&
    test "$n1" -lt 5000 &&
    for k in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
        logpipe-send --max-age 0 <in || exit 1
    done &&
    test "$(rcli --raw HKEYS logs:stream:producers | grep -c "^gone")" -eq 0
'

test_done
