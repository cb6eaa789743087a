#!/bin/sh
# t0560-stat-bytes.sh -- logpipe-stat's output byte for byte (NDJSON and
# --prom, names that need escaping, ages of IDs ahead of the clock), and
# the paths its other tests do not take: a --wal or --dir that cannot be
# read, --metrics that cannot be written, stdout full, each --check message
. "$(dirname "$0")/lib.sh"
start_redis

# IDs ahead of the clock: their pending age is 0, so the output is fixed
A=9000000000000

# mask: the time of the measure, which is the only thing that moves
mask() {
    sed -e 's/"time":"[^"]*"/"time":"T"/' \
        -e 's/^logpipe_stat_time_seconds .*/logpipe_stat_time_seconds T/' "$@"
}

test_expect_success 'a stream in a known state, names to escape' '
    rcli XADD s1 $A-1 a 1 >/dev/null && rcli XADD s1 $A-2 a 2 >/dev/null &&
    rcli XADD s1 $((A + 1))-0 a 3 >/dev/null &&
    rcli XGROUP CREATE s1 g1 0 >/dev/null &&
    rcli XREADGROUP GROUP g1 c1 COUNT 2 STREAMS s1 ">" >/dev/null &&
    rcli XGROUP CREATE s1 "$(printf "q\"b\\\\n\nx\377")" "$" >/dev/null &&
    rcli XADD s1:dlq "*" data x >/dev/null &&
    mkdir -p arch/api && printf "{}\n" >arch/api/2026-01-01.jsonl &&
    mkdir -p wal && printf "0123456789" >wal/wal-00000001.log
'

# the output expected: @FFFD@ stands for U+FFFD's UTF-8 bytes
fffd=$(printf '\357\277\275')
cat <<'EOF' | sed "s/@FFFD@/$fffd/g" >want.json
{"time":"T","stream":"s1","length":3,"first_id":"9000000000000-1","last_id":"9000000000001-0","groups":[{"name":"g1","consumers":1,"pending":2,"lag":1,"last_delivered_id":"9000000000000-2","oldest_pending_id":"9000000000000-1","oldest_pending_age_seconds":0.000},{"name":"q\"b\\n\nx@FFFD@","consumers":0,"pending":0,"lag":0,"last_delivered_id":"9000000000001-0","oldest_pending_id":null,"oldest_pending_age_seconds":null}],"dlq":{"key":"s1:dlq","length":1},"producers":{"key":"s1:producers","count":0},"wal":{"dir":"wal","bytes":10,"segments":1},"archive":{"dir":"arch","bytes":3,"files":1,"journals":0,"journal_bytes":0,"oldest_journal_age_seconds":null}}
EOF
cat <<'EOF' | sed "s/@FFFD@/$fffd/g" >want.prom
# HELP logpipe_stream_length Entries in the stream.
# TYPE logpipe_stream_length gauge
logpipe_stream_length{stream="s1"} 3
# HELP logpipe_group_consumers Consumers of the group.
# TYPE logpipe_group_consumers gauge
logpipe_group_consumers{stream="s1",group="g1"} 1
logpipe_group_consumers{stream="s1",group="q\"b\\n\nx@FFFD@"} 0
# HELP logpipe_group_pending Entries delivered, not acknowledged.
# TYPE logpipe_group_pending gauge
logpipe_group_pending{stream="s1",group="g1"} 2
logpipe_group_pending{stream="s1",group="q\"b\\n\nx@FFFD@"} 0
# HELP logpipe_group_lag Entries not yet delivered to the group.
# TYPE logpipe_group_lag gauge
logpipe_group_lag{stream="s1",group="g1"} 1
logpipe_group_lag{stream="s1",group="q\"b\\n\nx@FFFD@"} 0
# HELP logpipe_group_oldest_pending_age_seconds Age of the oldest pending entry.
# TYPE logpipe_group_oldest_pending_age_seconds gauge
logpipe_group_oldest_pending_age_seconds{stream="s1",group="g1"} 0
logpipe_group_oldest_pending_age_seconds{stream="s1",group="q\"b\\n\nx@FFFD@"} 0
# HELP logpipe_dlq_length Entries in the dead letter stream.
# TYPE logpipe_dlq_length gauge
logpipe_dlq_length{key="s1:dlq"} 1
# HELP logpipe_producers Producers of logpipe-send with a position.
# TYPE logpipe_producers gauge
logpipe_producers{stream="s1"} 0
# HELP logpipe_wal_bytes Bytes of logpipe-send WAL segments.
# TYPE logpipe_wal_bytes gauge
logpipe_wal_bytes{dir="wal"} 10
# HELP logpipe_wal_segments Segment files of the logpipe-send WAL.
# TYPE logpipe_wal_segments gauge
logpipe_wal_segments{dir="wal"} 1
# HELP logpipe_archive_bytes Bytes of the archive tree's day files.
# TYPE logpipe_archive_bytes gauge
logpipe_archive_bytes{dir="arch"} 3
# HELP logpipe_archive_files Day files of the archive tree.
# TYPE logpipe_archive_files gauge
logpipe_archive_files{dir="arch"} 1
# HELP logpipe_archive_journals Drain journals with segments in the archive tree.
# TYPE logpipe_archive_journals gauge
logpipe_archive_journals{dir="arch"} 0
# HELP logpipe_archive_journal_bytes Bytes of the drain journals' segments.
# TYPE logpipe_archive_journal_bytes gauge
logpipe_archive_journal_bytes{dir="arch"} 0
# HELP logpipe_archive_oldest_journal_age_seconds Age of the oldest journal segment.
# TYPE logpipe_archive_oldest_journal_age_seconds gauge
logpipe_archive_oldest_journal_age_seconds{dir="arch"} 0
# HELP logpipe_redis_up 1 when Redis answered every command, 0 when not: its figures are then missing.
# TYPE logpipe_redis_up gauge
logpipe_redis_up 1
# HELP logpipe_stat_time_seconds When this was measured (Unix time).
# TYPE logpipe_stat_time_seconds gauge
logpipe_stat_time_seconds T
EOF

test_expect_success 'NDJSON, byte for byte' '
    logpipe-stat -s s1 --dlq s1:dlq -d arch --wal wal >out &&
    mask out >got &&
    test_cmp want.json got &&
    grep -q "\"time\":\"[0-9-]*T[0-9:.]*Z\"" out
'

test_expect_success '--prom, byte for byte; --metrics the same' '
    logpipe-stat -s s1 --dlq s1:dlq -d arch --wal wal --prom \
        --metrics m.prom >out &&
    test_cmp out m.prom &&
    mask out >got &&
    test_cmp want.prom got &&
    grep -q "^logpipe_stat_time_seconds [0-9]*\.[0-9]*$" out
'

test_expect_success 'a --wal and a --dir that cannot be read: warned, left out, 0' '
    logpipe-stat -s s1 --wal nowal -d noarch >out 2>err &&
    printf "%s\n" "logpipe-stat: --wal nowal: No such file or directory" \
        "logpipe-stat: --dir noarch: No such file or directory" >want &&
    test_cmp want err &&
    jq -e "has(\"wal\") or has(\"archive\") | not" out >/dev/null &&
    logpipe-stat -q -s s1 --wal nowal >/dev/null 2>err &&
    test_cmp /dev/null err
'

test_expect_success '--metrics that cannot be written: 73, said, stdout still written' '
    expect_exit 73 logpipe-stat -s s1 --metrics /nonexistent/m.prom >out 2>err &&
    grep -qx "logpipe-stat: --metrics /nonexistent/m.prom.tmp.[0-9]*: No such file or directory" err &&
    test "$(jq .length out)" = 3
'

test_expect_success 'stdout full: 74, said' '
    expect_exit 74 logpipe-stat -s s1 >/dev/full 2>err &&
    echo "logpipe-stat: stdout: No space left on device" >want &&
    test_cmp want err
'

test_expect_success '--check: each message, byte for byte' '
    expect_exit 1 logpipe-stat -s s1 --dlq s1:dlq --check --max-lag 0 \
        --max-pending 1 --max-dlq 0 >/dev/null 2>err &&
    printf "%s\n" "logpipe-stat: group g1: lag 1 is over --max-lag 0" \
        "logpipe-stat: group g1: 2 pending, over --max-pending 1" \
        "logpipe-stat: s1:dlq holds 1 entry, over --max-dlq 0" >want &&
    test_cmp want err &&
    rcli XADD old 1-1 a 1 >/dev/null && rcli XADD old 1-2 a 1 >/dev/null &&
    rcli XGROUP CREATE old g 0 >/dev/null &&
    rcli XREADGROUP GROUP g c COUNT 1 STREAMS old ">" >/dev/null &&
    expect_exit 1 logpipe-stat -s old --check --max-pending-age 90s \
        >/dev/null 2>err &&
    grep -qx "logpipe-stat: group g: oldest pending entry 1-1 is [0-9]*\.[0-9]s old, over --max-pending-age 90s" err &&
    rcli XDEL old 1-2 >/dev/null && rcli XADD old 1-3 a 1 >/dev/null &&
    logpipe-stat -s old >out &&
    test "$(jq .groups[0].lag out)" = null &&
    expect_exit 1 logpipe-stat -s old --check --max-lag 0 >/dev/null 2>err &&
    echo "logpipe-stat: group g: more than 0 entries after its last delivered one 1-1, over --max-lag (Redis gives no lag)" >want &&
    test_cmp want err &&
    logpipe-stat -s old --check --max-lag 1 >/dev/null
'

test_expect_success '--check -g on a group that does not exist: said alone' '
    expect_exit 1 logpipe-stat -s s1 --check -g nosuch --max-pending 0 \
        >/dev/null 2>err &&
    echo "logpipe-stat: group nosuch: no such group on s1" >want &&
    test_cmp want err
'

test_done
