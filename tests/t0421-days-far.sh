#!/bin/sh
# t0421-days-far.sh -- days before 1970 and far in the future, as send and
# drain file them: rotate compresses, retains and limits the size by day,
# replay reads them in time order (1969-12-31 is day -1, not "no day")
. "$(dirname "$0")/lib.sh"

today=$(date -u +%F)
d1=$(date -u -d '-1 day' +%F)
days="0000-01-01 1969-12-31 1970-01-01 $d1 $today 9999-12-31"

start_redis

# the events of $days, seq 1 to 6 in time order, sent in another order
# and filed by a drain under t/api/DAY.jsonl
test_expect_success 'drain files the events of years 0000 to 9999 by their days' '
    i=0
    for d in $days; do
        i=$((i + 1))
        echo "{\"timestamp\":\"${d}T12:00:00Z\",\"service\":\"api\",\"seq\":$i}"
    done >events &&
    sort -r events | logpipe-send --max-age 0 --max-skew 0 &&
    logpipe-drain --once -d t &&
    for d in $days; do test -f t/api/$d.jsonl || exit 1; done &&
    test "$(find t -name "*.jsonl" | wc -l)" -eq 6
'

# the files of t, in the order replay reads them, without the .gz
order() {
    logpipe-replay "$@" t | seqs_in_order
}
seqs_in_order() {
    sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" | tr "\n" " "
}

test_expect_success 'replay reads them in time order: 0000-01-01 first, 9999-12-31 last' '
    test "$(order)" = "1 2 3 4 5 6 " &&
    test "$(order --sort)" = "1 2 3 4 5 6 "
'

test_expect_success 'a file without a day comes after them all, 1969-12-31 is not one' '
    echo "{\"_id\":\"0-1\",\"seq\":7}" >t/api/misc.jsonl &&
    test "$(order)" = "1 2 3 4 5 6 7 " &&
    test "$(order --sort)" = "1 2 3 4 5 6 7 " &&
    rm t/api/misc.jsonl
'

test_expect_success 'replay --since/--until skip and keep the files of those days' '
    test "$(order --until 1970-01-01)" = "1 2 " &&
    test "$(order --since 1969-12-31 --until 1970-01-02)" = "2 3 " &&
    test "$(order --since 9999-12-31)" = "6 "
'

test_expect_success 'rotate compresses every closed day, 0000-01-01 and 1969-12-31 too' '
    logpipe-rotate -d t --grace 0 >out &&
    jq -r "select(.action == \"compress\") | .path" out | sort >got &&
    printf "api/%s.jsonl\n" 0000-01-01 1969-12-31 1970-01-01 $d1 | sort >want &&
    test_cmp want got &&
    test "$(jq -c . out | wc -l)" -eq 4 &&
    test -f t/api/$today.jsonl && test -f t/api/9999-12-31.jsonl &&
    test "$(order)" = "1 2 3 4 5 6 "
'

test_expect_success 'rotate --retain deletes 0000-01-01 and 1969-12-31 with 1970-01-01' '
    rm -rf r && cp -r t r &&
    logpipe-rotate -d r --retain 2d >out &&
    jq -r "select(.action == \"delete\") | .path" out | sort >got &&
    printf "api/%s.jsonl.gz\n" 0000-01-01 1969-12-31 1970-01-01 | sort >want &&
    test_cmp want got &&
    test -f r/api/$d1.jsonl.gz && test -f r/api/$today.jsonl &&
    test -f r/api/9999-12-31.jsonl
'

# sizes after compression: deleting the two oldest days brings the tree
# to exactly --max-size
test_expect_success 'rotate --max-size deletes the oldest days, 0000-01-01 then 1969-12-31, not yesterday' '
    rm -rf m && cp -r t m &&
    total=$(cat $(find m -name "*.jsonl*") | wc -c) &&
    old=$(cat m/api/0000-01-01.jsonl.gz m/api/1969-12-31.jsonl.gz | wc -c) &&
    logpipe-rotate -d m --max-size $((total - old)) >out &&
    jq -r "select(.action == \"delete\") | .path" out >got &&
    printf "api/%s.jsonl.gz\n" 0000-01-01 1969-12-31 >want &&
    test_cmp want got &&
    test -f m/api/1970-01-01.jsonl.gz && test -f m/api/$d1.jsonl.gz
'

test_expect_success 'rotate --max-size 1: every day before today goes, today and 9999-12-31 stay' '
    rm -rf m && cp -r t m &&
    logpipe-rotate -d m --max-size 1 >out 2>err &&
    jq -r "select(.action == \"delete\") | .path" out >got &&
    printf "api/%s.jsonl.gz\n" 0000-01-01 1969-12-31 1970-01-01 $d1 >want &&
    test_cmp want got &&
    test "$(find m -name "*.jsonl*" | sort)" = "$(printf "m/api/%s.jsonl\n" $today 9999-12-31 | sort)" &&
    grep_q "today is never deleted" err
'

test_done
