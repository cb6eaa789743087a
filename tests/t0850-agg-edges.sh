#!/bin/sh
# t0850-agg-edges.sh -- logpipe-agg: the exact words on stderr (per-line
# messages and their budgets, the said-once warnings, the summary), the
# exit statuses of a stdout or stdin that fails, and SQL statements split
# at 500 rows: what the engine in lib/lp_agg.c hands back to the tool
. "$(dirname "$0")/lib.sh"

# value FILE SERIES: the value of one series of a metrics file
value() {
    awk -v s="$2" '$1 == s { print $2 }' "$1"
}

{
    for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "bad $i"; done
    echo '{"timestamp":"2026-11-22T10:00:10Z","k":"a"}'
    echo '{"timestamp":"2026-11-22T10:02:10Z","k":"a"}'
    for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
        echo '{"timestamp":"2026-11-22T10:00:20Z","k":"a"}'
    done
    echo '[{"timestamp":"2026-11-22T10:00:20Z","k":"a"},{"timestamp":"2026-11-22T10:03:00Z","k":"a"}]'
} >mixed

test_expect_success 'bad and late events: ten of each said, the rest counted, the summary, status 65' '
    expect_exit 65 logpipe-agg --by k <mixed >out 2>err &&
    printf "%s\n" "{\"bucket\":\"2026-11-22T10:00:00Z\",\"k\":\"a\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:02:00Z\",\"k\":\"a\",\"count\":1}" \
        "{\"bucket\":\"2026-11-22T10:03:00Z\",\"k\":\"a\",\"count\":1}" >expect &&
    test_cmp expect out &&
    {
        for i in 1 2 3 4 5 6 7 8 9 10; do
            echo "logpipe-agg: line $i: invalid JSON: unexpected '"'"'b'"'"' at byte 1"
        done
        for i in 15 16 17 18 19 20 21 22 23 24; do
            echo "logpipe-agg: line $i: event time 2026-11-22T10:00:20.000Z is late: its bucket was emitted; dropped"
        done
        echo "logpipe-agg: 2 more bad events"
        echo "logpipe-agg: 3 more late events"
        echo "logpipe-agg: 13 late events dropped, not counted: their buckets were printed already (see --lateness; for a finite input, such as logpipe-replay'"'"'s, give --lateness end)"
        echo "logpipe-agg: 12 bad events in 27 lines"
    } >expect.err &&
    test_cmp expect.err err
'

test_expect_success '-v: every message, an element named, the done line' '
    expect_exit 65 logpipe-agg -v --by k <mixed >out 2>err &&
    test "$(grep -c "invalid JSON" err)" -eq 12 &&
    test "$(grep -c "is late" err)" -eq 13 &&
    grep_q "^logpipe-agg: line 27: element 1: event time 2026-11-22T10:00:20.000Z is late: its bucket was emitted; dropped$" err &&
    tail -n 1 err >last &&
    echo "logpipe-agg: done events=3 bad=12 late=13 folded=0 groups=3 buckets=3" >expect &&
    test_cmp expect last
'

test_expect_success '-q: only the summary' '
    expect_exit 65 logpipe-agg -q --by k <mixed >out 2>err &&
    test "$(wc -l <err)" -eq 2 &&
    grep_q "^logpipe-agg: 12 bad events in 27 lines$" err
'

test_expect_success '--log-format json: a bad line as a JSON object' '
    expect_exit 65 logpipe-agg --log-format json --by k <mixed >out 2>err &&
    head -n 1 err | jq -r "[.prog, .level, .msg] | join(\"|\")" >got &&
    echo "logpipe-agg|error|line 1: invalid JSON: unexpected '"'"'b'"'"' at byte 1" >expect &&
    test_cmp expect got
'

test_expect_success 'said once: a --by value cut, groups folded, buckets printed early' '
    awk "BEGIN { printf \"{\\\"timestamp\\\":1795341600,\\\"k\\\":\\\"\"; for (i = 0; i < 1100; i++) printf \"x\"; print \"\\\"}\";
                 print \"{\\\"timestamp\\\":1795341600,\\\"k\\\":\\\"b\\\"}\";
                 print \"{\\\"timestamp\\\":1795341601,\\\"k\\\":\\\"c\\\"}\";
                 print \"{\\\"timestamp\\\":1795341602,\\\"k\\\":\\\"d\\\"}\" }" >cut &&
    logpipe-agg --by k --max-groups 2 <cut >out 2>err &&
    printf "%s\n" "logpipe-agg: line 1: a --by value longer than 1024 bytes is cut to that (said once)" \
        "logpipe-agg: line 3: more than --max-groups 2 groups open: new groups are counted as \"(other)\" (bucket 2026-11-22T10:00:00.000Z; said once)" >expect.err &&
    test_cmp expect.err err &&
    test "$(jq -r ".k | length" out | tr "\n" " ")" = "7 1 1024 " &&
    printf "%s\n" "{\"timestamp\":1795341600,\"k\":\"a\"}" "{\"timestamp\":1795341660,\"k\":\"b\"}" \
        "{\"timestamp\":1795341720,\"k\":\"c\"}" "{\"timestamp\":1795341600,\"k\":\"d\"}" >early &&
    expect_exit 65 logpipe-agg --by k --max-groups 2 --lateness end <early >out 2>err &&
    printf "%s\n" "logpipe-agg: line 3: more than --max-groups 2 groups open: the buckets before 2026-11-22T10:01:00.000Z are printed before the end of the input, and their events from here on are late (said once; give input in time order, such as logpipe-replay --sort'"'"'s, or a larger --max-groups)" \
        "logpipe-agg: line 4: event time 2026-11-22T10:00:00.000Z is late: its bucket was emitted; dropped" \
        "logpipe-agg: 1 late event dropped, not counted: their buckets were printed before the end of the input, to stay within --max-groups" >expect.err &&
    test_cmp expect.err err &&
    test "$(wc -l <out)" -eq 3
'

test_expect_success 'no time member: the stream ID in _id, or a bad line' '
    printf "%s\n" "{\"_id\":\"x\"}" "{\"_id\":\"1795341600000-0\"}" >ids &&
    expect_exit 65 logpipe-agg --time-field "" <ids >out 2>err &&
    echo "{\"bucket\":\"2026-11-22T10:00:00Z\",\"count\":1}" >expect &&
    test_cmp expect out &&
    printf "%s\n" "logpipe-agg: line 1: no stream ID in _id to take the time from" \
        "logpipe-agg: 1 bad event in 2 lines" >expect.err &&
    test_cmp expect.err err
'

test_expect_success 'stdout fails: status 74, said once, metrics written' '
    echo "{\"timestamp\":1795341600,\"k\":\"a\"}" >one &&
    expect_exit 74 logpipe-agg --by k --metrics full.prom <one >/dev/full 2>err &&
    echo "logpipe-agg: stdout: No space left on device" >expect.err &&
    test_cmp expect.err err &&
    test "$(value full.prom "logpipe_agg_events_total{result=\"ok\"}")" = 1 &&
    expect_exit 74 logpipe-agg --sql t <one >/dev/full 2>err &&
    test_cmp expect.err err
'

test_expect_success 'stdin fails: status 74, said once, metrics written' '
    expect_exit 74 logpipe-agg --by k --metrics dir.prom <. >out 2>err &&
    echo "logpipe-agg: stdin: Is a directory" >expect.err &&
    test_cmp expect.err err &&
    test ! -s out &&
    test "$(value dir.prom "logpipe_agg_events_total{result=\"ok\"}")" = 0
'

test_expect_success 'too many members: status 64 with the reason' '
    expect_exit 64 logpipe-agg --by a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p \
        --sum s1,s2,s3,s4,s5,s6,s7,s8 --max m1,m2,m3,m4,m5,m6,m7,m8 </dev/null 2>err &&
    echo "logpipe-agg: too many members asked for (--by, --sum, --max: 30 distinct at most)" >expect.err &&
    test_cmp expect.err err
'

test_expect_success 'SQL: the exact statements; one INSERT per 500 rows, one transaction per bucket' '
    echo "{\"timestamp\":1795341600,\"k\":\"a\"}" >one &&
    logpipe-agg --sql t --by k --sum n --max n <one >out &&
    cat >expect <<\EOT &&
CREATE TABLE IF NOT EXISTS "t" ("bucket" TEXT NOT NULL, "k" TEXT NOT NULL DEFAULT '"''"', "count" BIGINT NOT NULL, "sum_n" DOUBLE PRECISION, "max_n" DOUBLE PRECISION, PRIMARY KEY ("bucket", "k"));
BEGIN;
INSERT INTO "t" ("bucket", "k", "count", "sum_n", "max_n") VALUES
('"'"'2026-11-22T10:00:00Z'"'"', '"'"'a'"'"', 1, 0, NULL)
ON CONFLICT ("bucket", "k") DO UPDATE SET "count" = excluded."count", "sum_n" = excluded."sum_n", "max_n" = excluded."max_n";
COMMIT;
EOT
    test_cmp expect out &&
    logpipe-agg --sql t </dev/null >out &&
    echo "CREATE TABLE IF NOT EXISTS \"t\" (\"bucket\" TEXT NOT NULL, \"count\" BIGINT NOT NULL, PRIMARY KEY (\"bucket\"));" >expect &&
    test_cmp expect out &&
    awk "BEGIN { for (i = 0; i < 1200; i++) printf \"{\\\"timestamp\\\":%d,\\\"k\\\":\\\"k%04d\\\",\\\"n\\\":%d}\\n\", 1795341600 + int(i / 1100) * 60, i, i }" >rows &&
    logpipe-agg --sql t --by k --sum n <rows >out &&
    test "$(grep -c "^INSERT INTO" out)" -eq 4 &&
    test "$(grep -c "^BEGIN;$" out)" -eq 2 &&
    test "$(grep -c "^COMMIT;$" out)" -eq 2 &&
    test "$(grep -c "^ON CONFLICT" out)" -eq 4 &&
    test "$(grep -c "^(" out)" -eq 1200 &&
    sed -n "504p;505p" out >got &&
    printf "%s\n" "ON CONFLICT (\"bucket\", \"k\") DO UPDATE SET \"count\" = excluded.\"count\", \"sum_n\" = excluded.\"sum_n\";" \
        "INSERT INTO \"t\" (\"bucket\", \"k\", \"count\", \"sum_n\") VALUES" >expect &&
    test_cmp expect got
'

test_done
