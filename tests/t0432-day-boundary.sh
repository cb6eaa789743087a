#!/bin/sh
# t0432-day-boundary.sh -- event times at a day boundary: epoch-second
# numbers are cut to the millisecond (toward minus infinity) as RFC 3339
# fractions are, the same way in drain, agg and replay
. "$(dirname "$0")/lib.sh"
start_redis

# 2026-12-06T00:00:00Z is 1796515200; each event's "day" member is the
# day it belongs to, cut (never rounded) to the millisecond
cat >in <<\EOF
{"timestamp":1796515199.9995,"service":"svc","day":"2026-12-05","n":1}
{"timestamp":"2026-12-05T23:59:59.9995Z","service":"svc","day":"2026-12-05","n":2}
{"timestamp":1796515199.999999999,"service":"svc","day":"2026-12-05","n":3}
{"timestamp":1.7965151999995e9,"service":"svc","day":"2026-12-05","n":4}
{"timestamp":1796515199.999,"service":"svc","day":"2026-12-05","n":5}
{"timestamp":1796515200,"service":"svc","day":"2026-12-06","n":6}
{"timestamp":"2026-12-06T00:00:00.0001Z","service":"svc","day":"2026-12-06","n":7}
{"timestamp":1796515200.0001,"service":"svc","day":"2026-12-06","n":8}
{"timestamp":-0.0005,"service":"old","day":"1969-12-31","n":9}
{"timestamp":-0.0000000001,"service":"old","day":"1969-12-31","n":10}
{"timestamp":"1969-12-31T23:59:59.9995Z","service":"old","day":"1969-12-31","n":11}
{"timestamp":-0,"service":"old","day":"1970-01-01","n":12}
{"timestamp":0.0005,"service":"old","day":"1970-01-01","n":13}
EOF

# ns FILE: the n members of FILE's lines, in order, on one line
ns() {
    sed -n 's/.*"n":\([0-9]*\).*/\1/p' "$1" | tr '\n' ' '
}

test_expect_success 'drain files each event on its day' '
    logpipe-send --max-age 0 --max-skew 0 <in &&
    logpipe-drain --once -d out 2>err &&
    test ! -s err &&
    (cd out && find . -type f ! -name ".logpipe-*.lock" | LC_ALL=C sort) >files &&
    printf "%s\n" ./old/1969-12-31.jsonl ./old/1970-01-01.jsonl \
        ./svc/2026-12-05.jsonl ./svc/2026-12-06.jsonl >files.want &&
    test_cmp files.want files &&
    test "$(ns out/svc/2026-12-05.jsonl)" = "1 2 3 4 5 " &&
    test "$(ns out/svc/2026-12-06.jsonl)" = "6 7 8 " &&
    test "$(ns out/old/1969-12-31.jsonl)" = "9 10 11 " &&
    test "$(ns out/old/1970-01-01.jsonl)" = "12 13 "
'

test_expect_success 'every archived event is in the file of its own day' '
    for f in out/*/*.jsonl; do
        d=$(basename "$f" .jsonl)
        jq -r .day "$f" | sort -u >days &&
        echo "$d" >days.want &&
        test_cmp days.want days || exit 1
    done
'

test_expect_success 'agg buckets them as drain files them: days, minutes, milliseconds' '
    # in time order: the days before 1970 first
    { grep "\"service\":\"old\"" in; grep "\"service\":\"svc\"" in; } |
        logpipe-agg --bucket 1d --by day >agg.out 2>agg.err &&
    test ! -s agg.err &&
    cat >agg.want <<-\EOF &&
	{"bucket":"1969-12-31T00:00:00Z","day":"1969-12-31","count":3}
	{"bucket":"1970-01-01T00:00:00Z","day":"1970-01-01","count":2}
	{"bucket":"2026-12-05T00:00:00Z","day":"2026-12-05","count":5}
	{"bucket":"2026-12-06T00:00:00Z","day":"2026-12-06","count":3}
	EOF
    LC_ALL=C sort agg.out >agg.sorted &&
    test_cmp agg.want agg.sorted &&
    grep "\"service\":\"svc\"" in |
        logpipe-agg --bucket 1s >sec.out &&
    cat >sec.want <<-\EOF &&
	{"bucket":"2026-12-05T23:59:59Z","count":5}
	{"bucket":"2026-12-06T00:00:00Z","count":3}
	EOF
    test_cmp sec.want sec.out
'

test_expect_success 'replay --since and --until cut where drain and agg do' '
    logpipe-replay --until 2026-12-06 out/svc >r1 &&
    test "$(ns r1)" = "1 2 3 4 5 " &&
    logpipe-replay --since 2026-12-06 out/svc >r2 &&
    test "$(ns r2)" = "6 7 8 " &&
    logpipe-replay --until 1796515200 out/svc >r3 &&
    test_cmp r1 r3 &&
    logpipe-replay --since 1796515200 out/svc >r4 &&
    test_cmp r2 r4 &&
    logpipe-replay --since 1796515199.9995 out/svc >r5 &&
    test "$(ns r5)" = "1 2 3 4 5 6 7 8 " &&
    logpipe-replay --until 1796515199.9995 out/svc >r6 &&
    test ! -s r6 &&
    logpipe-replay --since 2026-12-05T23:59:59.9995Z out/svc >r7 &&
    test_cmp r5 r7 &&
    logpipe-replay --since 2026-12-06T00:00:00.0001Z out/svc >r8 &&
    test "$(ns r8)" = "6 7 8 " &&
    logpipe-replay --since 1796515200.0001 out/svc >r9 &&
    test_cmp r8 r9
'

test_expect_success 'replay of a file outside the archive: the same times, read from the events' '
    logpipe-replay --until 2026-12-06 - <in >r10 &&
    test "$(ns r10)" = "1 2 3 4 5 9 10 11 12 13 " &&
    logpipe-replay --since 1970-01-01 --until 1970-01-02 - <in >r11 &&
    test "$(ns r11)" = "12 13 "
'

test_done
