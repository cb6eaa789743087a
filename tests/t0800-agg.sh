#!/bin/sh
# t0800-agg.sh -- logpipe-agg, NDJSON output: counts, sums, maxima, keys,
# bucket boundaries, the watermark and late events, --threshold, bad lines,
# hostile input, a reader that goes away
. "$(dirname "$0")/lib.sh"

check_prom() {
    awk -f "$TOP/tests/promcheck.awk" "$1"
}

# value FILE SERIES: the value of one series of a metrics file
value() {
    awk -v s="$2" '$1 == s { print $2 }' "$1"
}

test_expect_success 'known input: counts, sums, maxima, several --by, missing members, numbers as keys' '
    cat >in <<-\EOF &&
	{"timestamp":"2026-11-22T10:00:01Z","service":"api","level":"info","bytes":10,"ms":3.5}
	{"timestamp":"2026-11-22T10:00:02.5Z","service":"api","level":"info","bytes":32,"ms":1}
	{"timestamp":"2026-11-22T10:00:03+00:00","service":"api","level":"error","bytes":"n/a"}
	{"timestamp":1795341604,"service":"db","bytes":-4,"ms":null}
	{"timestamp":"2026-11-22T10:00:05Z","service":"db","level":null,"bytes":1e2}
	{"timestamp":"2026-11-22T10:00:06Z","service":500,"level":true,"bytes":1}
	{"timestamp":"2026-11-22T10:00:07Z","service":"500","level":true,"bytes":2}
	{"timestamp":"2026-11-22T10:00:08Z","service":"caf\u00e9 \"q\"","level":"info"}
	{"timestamp":"2026-11-22T10:00:09Z","level":"info","bytes":0.25}
	{"timestamp":"2026-11-22T10:01:00Z","service":"api","level":"info","bytes":7}
	EOF
    logpipe-agg --by service,level --sum bytes --max bytes --max ms <in >out 2>err &&
    cat >expect <<-\EOF &&
	{"bucket":"2026-11-22T10:00:00Z","service":null,"level":"info","count":1,"sum_bytes":0.25,"max_bytes":0.25,"max_ms":null}
	{"bucket":"2026-11-22T10:00:00Z","service":"500","level":"true","count":2,"sum_bytes":3,"max_bytes":2,"max_ms":null}
	{"bucket":"2026-11-22T10:00:00Z","service":"api","level":"error","count":1,"sum_bytes":0,"max_bytes":null,"max_ms":null}
	{"bucket":"2026-11-22T10:00:00Z","service":"api","level":"info","count":2,"sum_bytes":42,"max_bytes":32,"max_ms":3.5}
	{"bucket":"2026-11-22T10:00:00Z","service":"caf\u00e9 \"q\"","level":"info","count":1,"sum_bytes":0,"max_bytes":null,"max_ms":null}
	{"bucket":"2026-11-22T10:00:00Z","service":"db","level":null,"count":2,"sum_bytes":96,"max_bytes":100,"max_ms":null}
	{"bucket":"2026-11-22T10:01:00Z","service":"api","level":"info","count":1,"sum_bytes":7,"max_bytes":7,"max_ms":null}
	EOF
    jq -c . expect >expect.c &&
    test_cmp expect.c out &&
    test ! -s err
'

test_expect_success 'no --by: one count per bucket; --bucket 1h, 1d' '
    logpipe-agg <in >out &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":9}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"count\":1}" >expect &&
    test_cmp expect out &&
    logpipe-agg --bucket 1h <in >out &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":10}" >expect &&
    test_cmp expect out &&
    logpipe-agg --bucket 1d <in >out &&
    echo "{\"bucket\":\"2026-11-22T00:00:00Z\",\"count\":10}" >expect &&
    test_cmp expect out
'

# 20000 events over 40 minutes, in order, 4 services, 3 levels, a numeric
# member that is sometimes missing or a string
awk -v n=20000 -v t0=1795341600 'BEGIN {
    split("api db web mail", s, " "); split("info warn error", l, " ")
    for (i = 0; i < n; i++) {
        t = t0 + i * 0.12
        b = (i % 11 == 0) ? "\"x\"" : (i % 13 == 0) ? "null" : (i * 7919) % 1000
        printf "{\"timestamp\":%.3f,\"service\":\"%s\",\"level\":\"%s\",\"bytes\":%s}\n",
            t, s[i % 4 + 1], l[int(i / 3) % 3 + 1], b
    }
}' >gen

test_expect_success 'the same numbers as jq computes from the input' '
    logpipe-agg --by service,level --sum bytes --max bytes <gen >out &&
    jq -s -c "
        map(. + {bucket: (.timestamp / 60 | floor * 60 | todate)})
        | group_by([.bucket, .service, .level])[]
        | (map(.bytes | numbers)) as \$b
        | {bucket: .[0].bucket, service: .[0].service, level: .[0].level,
           count: length, sum_bytes: (\$b | add // 0),
           max_bytes: (\$b | max)}" gen >expect &&
    test "$(wc -l <expect)" -ge 400 &&
    test_cmp expect out
'

test_expect_success 'bucket boundaries: .999 before the end, the end itself after' '
    printf "%s\n" "{\"timestamp\":\"2026-11-22T10:00:00Z\"}" \
        "{\"timestamp\":\"2026-11-22T10:00:59.999Z\"}" \
        "{\"timestamp\":\"2026-11-22T10:01:00Z\"}" \
        "{\"timestamp\":1795341719.999}" \
        "{\"timestamp\":1795341720}" \
        "{\"timestamp\":\"2026-11-22T11:02:00+01:00\"}" >b &&
    logpipe-agg <b >out &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":2}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"count\":2}" \
        "{\"bucket\":\"2026-11-22T10:02:00Z\",\"count\":2}" >expect &&
    test_cmp expect out &&
    echo "{\"timestamp\":-0.5}" | logpipe-agg --bucket 1s >out &&
    echo "{\"bucket\":\"1969-12-31T23:59:59Z\",\"count\":1}" >expect &&
    test_cmp expect out
'

test_expect_success 'the time of an archive line without a time member: its _id' '
    printf "%s\n" "{\"_id\":\"1795341600000-0\",\"service\":\"a\"}" \
        "{\"_id\":\"1795341659999-3\",\"service\":\"a\",\"timestamp\":null}" \
        "{\"_id\":\"1700000000000-0\",\"timestamp\":\"2026-11-22T10:01:00Z\",\"service\":\"a\"}" >ids &&
    logpipe-agg --by service <ids >out &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"service\":\"a\",\"count\":2}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"service\":\"a\",\"count\":1}" >expect &&
    test_cmp expect out &&
    logpipe-agg --time-field "" --lateness 3000d <ids >out &&
    printf "%s\n" "{\"bucket\":\"2023-11-14T22:13:00Z\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":2}" >expect &&
    test_cmp expect out
'

test_expect_success 'a line may hold an array of events' '
    echo "[{\"timestamp\":1,\"k\":\"a\"},{\"timestamp\":2,\"k\":\"b\"}]" |
        logpipe-agg --by k >out &&
    test "$(jq -r .k out | tr "\n" " ")" = "a b "
'

test_expect_success 'the watermark emits a bucket before the end of input' '
    # (an & ends the whole list before it: the job stands alone)
    mkfifo fifo
    { logpipe-agg --by k --metrics wm.prom --metrics-interval 100ms <fifo \
        >live 2>live.err; echo $? >live.rc; } &
    exec 3>fifo &&
    echo "{\"timestamp\":\"2026-11-22T10:00:10Z\",\"k\":\"a\"}" >&3 &&
    echo "{\"timestamp\":\"2026-11-22T10:00:20Z\",\"k\":\"a\"}" >&3 &&
    # both read (the metrics say so while it waits), nothing printed: a
    # sleep of 0.3 s could end before agg had read them on a loaded machine
    wait_for 20 "test \"\$(value wm.prom \"logpipe_agg_events_total{result=\\\"ok\\\"}\")\" = 2" &&
    test ! -s live &&
    echo "{\"timestamp\":\"2026-11-22T10:01:00Z\",\"k\":\"b\"}" >&3 &&
    wait_for 10 test -s live &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":2}" >expect &&
    test_cmp expect live &&
    test ! -f live.rc &&
    exec 3>&- &&
    wait_for 10 test -f live.rc &&
    test "$(cat live.rc)" = 0 &&
    echo "{\"bucket\":\"2026-11-22T10:01:00Z\",\"k\":\"b\",\"count\":1}" >>expect &&
    test_cmp expect live
'

test_expect_success 'a late event: dropped, warned with its line, counted; status 65' '
    printf "%s\n" "{\"timestamp\":\"2026-11-22T10:00:10Z\"}" \
        "{\"timestamp\":\"2026-11-22T10:01:05Z\"}" \
        "{\"timestamp\":\"2026-11-22T10:00:50Z\"}" \
        "{\"timestamp\":\"2026-11-22T10:01:06Z\"}" >late &&
    expect_exit 65 logpipe-agg -v --metrics late.prom <late >out 2>err &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"count\":2}" >expect &&
    test_cmp expect out &&
    grep_q "^logpipe-agg: line 3: event time 2026-11-22T10:00:50.000Z is late" err &&
    grep_q "^logpipe-agg: done events=3 bad=0 late=1 folded=0 groups=2 buckets=2$" err &&
    check_prom late.prom &&
    test "$(value late.prom "logpipe_agg_events_total{result=\"late\"}")" = 1 &&
    test "$(value late.prom "logpipe_agg_events_total{result=\"ok\"}")" = 3 &&
    test "$(value late.prom logpipe_agg_groups_emitted_total)" = 2 &&
    grep_q "^logpipe-agg: 1 late event dropped, not counted: their buckets were printed already (see --lateness; for a finite input, such as logpipe-replay.s, give --lateness end)$" err &&
    expect_exit 65 logpipe-agg -q <late >out 2>err &&
    echo "logpipe-agg: 1 late event dropped, not counted: their buckets were printed already (see --lateness; for a finite input, such as logpipe-replay'"'"'s, give --lateness end)" >expect.err &&
    test_cmp expect.err err
'

test_expect_success '--lateness keeps a bucket open for events that come late' '
    logpipe-agg --lateness 10s <late >out &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":2}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"count\":2}" >expect &&
    test_cmp expect out &&
    expect_exit 65 logpipe-agg --lateness 4s <late >out 2>err &&
    grep_q "line 3: .* is late" err
'

# the input of several files, one after the other, as logpipe-replay
# prints a directory: each service's 40 minutes, then the next's
for s in api db web mail; do grep "\"service\":\"$s\"" gen; done >byfile

test_expect_success '--lateness end: input file by file gives the counts of the input in order' '
    logpipe-agg --by service,level --sum bytes --max bytes <gen >ordered &&
    ! cmp -s gen byfile &&
    expect_exit 65 logpipe-agg --by service,level <byfile >out 2>err &&
    grep_q "late events dropped, not counted" err &&
    logpipe-agg --lateness end --by service,level --sum bytes --max bytes <byfile >out 2>err &&
    test ! -s err &&
    test_cmp ordered out &&
    logpipe-agg --lateness end --sql t --by service <byfile >end.sql &&
    logpipe-agg --sql t --by service <gen >ordered.sql &&
    test_cmp ordered.sql end.sql &&
    LC_ALL=C sort -R byfile | logpipe-agg --lateness end --by service,level --sum bytes --max bytes >out &&
    test_cmp ordered out
'

test_expect_success '--lateness end: no bucket before the end of input, then all, in order' '
    rm -f fifo && mkfifo fifo && : >end.live || exit 1
    { logpipe-agg --lateness end --by k --metrics end.live.prom \
        --metrics-interval 100ms <fifo >>end.live 2>end.err; echo $? >end.rc; } &
    exec 3>fifo &&
    for m in 0 1 2 3; do
        echo "{\"timestamp\":\"2026-11-22T10:0$m:10Z\",\"k\":\"a\"}" >&3 || exit 1
    done &&
    echo "{\"timestamp\":\"2026-11-22T10:00:30Z\",\"k\":\"b\"}" >&3 &&
    # all 5 read (the metrics say so while it waits), none printed
    wait_for 20 "test \"\$(value end.live.prom \"logpipe_agg_events_total{result=\\\"ok\\\"}\")\" = 5" &&
    test ! -s end.live &&
    test ! -f end.rc &&
    exec 3>&- &&
    wait_for 10 test -f end.rc &&
    test "$(cat end.rc)" = 0 &&
    mv end.live live &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"b\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"k\":\"a\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:02:00Z\",\"k\":\"a\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:03:00Z\",\"k\":\"a\",\"count\":1}" >expect &&
    test_cmp expect live
'

test_expect_success '--lateness end within --max-groups: the oldest buckets go first; in order, nothing lost' '
    logpipe-agg --by service,level --bucket 10s <gen >ordered &&
    test "$(wc -l <ordered)" -gt 2000 &&
    logpipe-agg --lateness end --max-groups 100 --by service,level --bucket 10s <gen >out 2>err &&
    test_cmp ordered out &&
    test "$(grep -c "more than --max-groups 100 groups open: the buckets before" err)" -eq 1
'

test_expect_success '--lateness end past --max-groups, out of order: late events counted, exit 65, memory bounded' '
    expect_exit 65 logpipe-agg -v --lateness end --max-groups 100 --by service,level --bucket 10s --metrics end.prom <byfile >out 2>err &&
    grep_q "more than --max-groups 100 groups open" err &&
    late=$(value end.prom "logpipe_agg_events_total{result=\"late\"}") &&
    ok=$(value end.prom "logpipe_agg_events_total{result=\"ok\"}") &&
    test "$late" -gt 10000 &&
    test $((late + ok)) -eq 20000 &&
    test "$(jq -s "map(.count) | add" out)" -eq "$ok" &&
    grep_q "^logpipe-agg: $late late events dropped, not counted: their buckets were printed before the end of the input, to stay within --max-groups$" err &&
    grep_q "^logpipe-agg: done events=$ok bad=0 late=$late " err &&
    test "$(jq -r .bucket out | uniq | LC_ALL=C sort -c && echo sorted)" = sorted
'

test_expect_success '--lateness: a value neither a duration nor end exits 64' '
    expect_exit 64 logpipe-agg --lateness forever </dev/null 2>err &&
    grep_q "forever" err &&
    grep_q "nor end" err
'

test_expect_success 'shuffled input within --lateness: the same output as in order' '
    logpipe-agg --by service,level --sum bytes <gen >ordered &&
    awk "BEGIN { srand(7) } { print int(NR / 50) * 50 + int(rand() * 40), \$0 }" gen |
        sort -n -s -k1,1 | cut -d" " -f2- >shuffled &&
    ! cmp -s gen shuffled &&
    logpipe-agg --by service,level --sum bytes --lateness 20s <shuffled >out 2>err &&
    test ! -s err &&
    test_cmp ordered out
'

test_expect_success '--threshold: only groups at or above N, each once, flushed at once' '
    awk "BEGIN { for (m = 0; m < 3; m++) for (i = 0; i < 10; i++)
        printf \"{\\\"timestamp\\\":%d,\\\"s\\\":\\\"%s\\\"}\\n\", 1795341600 + m * 60 + i, (i < 3 + m * 3) ? \"hot\" : \"cold\" }" >th &&
    logpipe-agg --by s --threshold 6 <th >out &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"s\":\"cold\",\"count\":7}" \
        "{\"bucket\":\"2026-11-22T10:01:00Z\",\"s\":\"hot\",\"count\":6}" \
        "{\"bucket\":\"2026-11-22T10:02:00Z\",\"s\":\"hot\",\"count\":9}" >expect &&
    test_cmp expect out &&
    logpipe-agg --by s --threshold 100 <th >out && test ! -s out &&
    rm -f fifo && mkfifo fifo || exit 1
    { logpipe-agg --by s --threshold 6 <fifo | while read -r l; do echo "$l" >>alerts; done; } &
    exec 3>fifo &&
    head -n 20 th >&3 &&
    wait_for 10 test -s alerts &&
    test "$(wc -l <alerts)" -eq 1 &&
    tail -n 10 th >&3 && exec 3>&- &&
    wait_for 10 "test \$(wc -l <alerts) -eq 3" &&
    test_cmp expect alerts
'

test_expect_success 'bad lines: named with their number and reason, skipped, exit 65' '
    {
        echo "{\"timestamp\":1795341600,\"k\":\"a\"}"
        echo "not json"
        echo "[1,2]"
        echo "\"str\""
        echo "{\"k\":\"a\"}"
        echo "{\"timestamp\":\"yesterday\",\"k\":\"a\"}"
        echo "{\"timestamp\":1e300,\"k\":\"a\"}"
        echo ""
        echo "{\"timestamp\":1795341601,\"k\":\"a\",}"
        echo "[{\"timestamp\":1795341602,\"k\":\"b\"},7]"
        echo "{\"timestamp\":1795341603,\"k\":\"a\"}"
    } >bad &&
    expect_exit 65 logpipe-agg --by k --metrics bad.prom <bad >out 2>err &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":2}" \
        "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"b\",\"count\":1}" >expect &&
    test_cmp expect out &&
    grep_q "^logpipe-agg: line 2: invalid JSON: " err &&
    grep_q "^logpipe-agg: line 3: element 1: not a JSON object$" err &&
    grep_q "^logpipe-agg: line 4: not a JSON object$" err &&
    grep_q "^logpipe-agg: line 5: no time member \"timestamp\"" err &&
    grep_q "^logpipe-agg: line 6: time member is not epoch seconds or an RFC 3339 date-time" err &&
    grep_q "^logpipe-agg: line 7: time member 1e300 is outside years 0000..9999" err &&
    grep_q "^logpipe-agg: line 9: invalid JSON: " err &&
    grep_q "^logpipe-agg: line 10: element 2: not a JSON object$" err &&
    grep_q "^logpipe-agg: 9 bad events in 11 lines$" err &&
    test "$(wc -l <err)" -eq 10 &&
    test "$(value bad.prom "logpipe_agg_events_total{result=\"bad\"}")" = 9 &&
    test "$(value bad.prom "logpipe_agg_events_total{result=\"ok\"}")" = 3
'

test_expect_success 'hostile: a 10 MB line is bad, the rest counted, memory bounded' '
    { echo "{\"timestamp\":1795341600,\"k\":\"a\"}"
      awk "BEGIN { printf \"{\\\"timestamp\\\":1795341600,\\\"k\\\":\\\"\"; for (i = 0; i < 1048576; i++) printf \"0123456789\"; print \"\\\"}\" }"
      echo "{\"timestamp\":1795341601,\"k\":\"a\"}"; } >big &&
    test "$(wc -c <big)" -gt 10000000 &&
    rss_under 30000 65 logpipe-agg --by k <big >out 2>err &&
    grep_q "^logpipe-agg: line 2: longer than --max-line (1048576 bytes)$" err &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":2}" >expect &&
    test_cmp expect out &&
    logpipe-agg --by k --max-line 16M <big >out &&
    test "$(wc -l <out)" -eq 2 &&
    test "$(jq -r ".k | length" out | sort -n | tail -n 1)" -eq 1024
'

test_expect_success 'hostile: deep nesting and invalid UTF-8 are bad lines' '
    { awk "BEGIN { printf \"{\\\"timestamp\\\":1795341600,\\\"k\\\":\"; for (i = 0; i < 100000; i++) printf \"[\"; for (i = 0; i < 100000; i++) printf \"]\"; print \"}\" }"
      printf "{\"timestamp\":1795341600,\"k\":\"\\377\\376\"}\n"
      printf "{\"timestamp\":1795341600,\"k\":\"\\355\\240\\200\"}\n"
      printf "{\"timestamp\":1795341600,\"k\":\"\\\\ud800\"}\n"
      echo "{\"timestamp\":1795341601,\"k\":[[1]]}"; } >hostile &&
    expect_exit 65 logpipe-agg --by k <hostile >out 2>err &&
    test "$(grep -c "^logpipe-agg: line [1-4]: invalid JSON" err)" -eq 4 &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"[[1]]\",\"count\":1}" >expect &&
    test_cmp expect out
'

test_expect_success 'hostile: more groups than --max-groups fold into "(other)", memory bounded' '
    awk "BEGIN { for (i = 0; i < 200000; i++)
        printf \"{\\\"timestamp\\\":%d,\\\"k\\\":\\\"key-%d\\\",\\\"n\\\":1}\\n\", 1795341600 + int(i / 100000) * 60, i }" >many &&
    rss_under 40000 0 logpipe-agg --by k,n --max-groups 1000 --metrics many.prom <many >out 2>err &&
    test "$(grep -c "more than --max-groups 1000 groups open" err)" -eq 1 &&
    test "$(wc -l <out)" -eq 2002 &&
    test "$(jq -s "map(.count) | add" out)" -eq 200000 &&
    jq -c "select(.k == \"(other)\")" out >other &&
    test "$(wc -l <other)" -eq 2 &&
    test "$(jq -r "[.k, .n, .count] | @tsv" other | sort -u)" = "$(printf "(other)\t(other)\t99000")" &&
    test "$(jq -r "select(.k != \"(other)\") | .n" out | sort -u)" = 1 &&
    test "$(value many.prom logpipe_agg_events_folded_total)" = 198000 &&
    rss_under 120000 0 logpipe-agg --by k <many >out2 &&
    test "$(wc -l <out2)" -eq 200000
'

test_expect_success 'a reader that goes away: quiet, as if by SIGPIPE' '
    { logpipe-agg --by service,level --bucket 1s <gen 2>err; echo $? >rc; } | head -n 1 >first &&
    test "$(wc -l <first)" -eq 1 &&
    test "$(cat rc)" = 141 &&
    test ! -s err
'

test_expect_success 'SIGTERM: the open buckets are emitted, status 0' '
    rm -f fifo live && mkfifo fifo || exit 1
    logpipe-agg --by k --metrics term.prom --metrics-interval 100ms <fifo >live &
    pid=$!
    exec 3>fifo &&
    echo "{\"timestamp\":\"2026-11-22T10:00:10Z\",\"k\":\"a\"}" >&3 &&
    wait_for 10 "grep -q \"result=\\\"ok\\\"} 1\$\" term.prom" &&
    kill -TERM $pid &&
    rc=0 && { wait $pid || rc=$?; } &&
    exec 3>&- &&
    test $rc = 0 &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":1}" >expect &&
    test_cmp expect live
'

test_expect_success 'usage errors exit 64' '
    expect_exit 64 logpipe-agg --bucket 0 </dev/null 2>err &&
    expect_exit 64 logpipe-agg --bucket 1500ms </dev/null 2>err &&
    grep_q "whole number of seconds" err &&
    expect_exit 64 logpipe-agg --by "a b" </dev/null 2>err &&
    expect_exit 64 logpipe-agg --by 1a </dev/null 2>err &&
    expect_exit 64 logpipe-agg --by a,,b </dev/null 2>err &&
    expect_exit 64 logpipe-agg --by a --by a </dev/null 2>err &&
    grep_q "given twice" err &&
    expect_exit 64 logpipe-agg --by count </dev/null 2>err &&
    expect_exit 64 logpipe-agg --by sum_x --sum x </dev/null 2>err &&
    grep_q "two members (columns) named .sum_x." err &&
    expect_exit 64 logpipe-agg --by a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q </dev/null 2>err &&
    expect_exit 64 logpipe-agg --sql "t; DROP TABLE x" </dev/null 2>err &&
    expect_exit 64 logpipe-agg --threshold 0 </dev/null 2>err &&
    expect_exit 64 logpipe-agg --max-groups 0 </dev/null 2>err &&
    expect_exit 64 logpipe-agg file </dev/null 2>err &&
    expect_exit 64 logpipe-agg --nope </dev/null 2>err &&
    logpipe-agg --help | grep_q "^usage: logpipe-agg" - &&
    logpipe-agg --version | grep -q "^logpipe-agg "
'

test_expect_success 'metrics: written while idle, every --metrics-interval' '
    rm -f fifo && mkfifo fifo || exit 1
    { logpipe-agg --metrics idle.prom --metrics-interval 200ms <fifo >/dev/null; echo $? >idle.rc; } &
    exec 3>fifo &&
    echo "{\"timestamp\":1795341600}" >&3 &&
    wait_for 10 "grep -q \"result=\\\"ok\\\"} 1\$\" idle.prom" &&
    check_prom idle.prom &&
    exec 3>&- &&
    wait_for 10 test -f idle.rc &&
    test "$(value idle.prom logpipe_agg_groups_emitted_total)" = 1
'

test_done
