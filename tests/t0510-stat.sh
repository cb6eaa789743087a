#!/bin/sh
# t0510-stat.sh -- logpipe-stat against a live pipeline with known numbers
. "$(dirname "$0")/lib.sh"
start_redis

test_expect_success 'a pipeline in a known state' '
    gen_events 1000 >in &&
    logpipe-send <in &&
    rcli XGROUP CREATE logs:stream logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe c1 COUNT 300 STREAMS logs:stream ">" >/dev/null &&
    rcli XGROUP CREATE logs:stream other 0 >/dev/null &&
    for i in 1 2 3; do rcli XADD logs:dlq "*" data x >/dev/null; done &&
    mkdir -p arch/api && gen_events 10 >arch/api/2026-11-20.jsonl &&
    gzip -k arch/api/2026-11-20.jsonl && mv arch/api/2026-11-20.jsonl.gz arch/api/2026-11-19.jsonl.gz &&
    gen_events 5 | logpipe-send -r $(dead_redis) --wal w 2>/dev/null
'

test_expect_success 'NDJSON: length, groups, pending, lag, oldest age, DLQ, sizes' '
    logpipe-stat --dir arch --wal w >s &&
    jq -e ".length == 1000 and .dlq.length == 3 and .dlq.key == \"logs:dlq\"" s >/dev/null &&
    jq -e ".groups | length == 2" s >/dev/null &&
    jq -e ".groups[] | select(.name == \"logpipe\") | .consumers == 1 and .pending == 300 and .lag == 700 and .oldest_pending_age_seconds >= 0" s >/dev/null &&
    jq -e ".groups[] | select(.name == \"other\") | .pending == 0 and .lag == 1000 and .oldest_pending_age_seconds == null" s >/dev/null &&
    jq -e ".archive.files == 2 and .archive.bytes > 0 and .wal.segments == 1 and .wal.bytes > 0" s >/dev/null
'

test_expect_success '--prom is Prometheus text with the same numbers' '
    logpipe-stat --prom --dir arch >p &&
    awk -f "$TOP/tests/promcheck.awk" p &&
    grep_q "^logpipe_stream_length{stream=\"logs:stream\"} 1000$" p &&
    grep_q "^logpipe_group_pending{stream=\"logs:stream\",group=\"logpipe\"} 300$" p &&
    grep_q "^logpipe_group_lag{stream=\"logs:stream\",group=\"other\"} 1000$" p &&
    grep_q "^logpipe_dlq_length{key=\"logs:dlq\"} 3$" p
'

test_expect_success '--check: exit 1 when a threshold is crossed, naming it' '
    logpipe-stat --check --max-dlq 3 --max-lag 1000 >/dev/null &&
    expect_exit 1 logpipe-stat --check --max-dlq 2 >/dev/null 2>err &&
    grep_q "logs:dlq holds 3 entries, over --max-dlq 2" err &&
    expect_exit 1 logpipe-stat --check --max-lag 999 >/dev/null 2>err &&
    grep_q "group other: lag 1000 is over --max-lag 999" err &&
    logpipe-stat --check -g logpipe --max-lag 999 >/dev/null &&
    expect_exit 1 logpipe-stat --check --max-pending 299 >/dev/null 2>err &&
    sleep 1.1 &&
    expect_exit 1 logpipe-stat --check --max-pending-age 1s >/dev/null 2>err &&
    grep_q "oldest pending entry .* over --max-pending-age 1s" err
'

test_expect_success 'a stream that does not exist: zero, no groups' '
    logpipe-stat -s nothing-here >s &&
    jq -e ".length == 0 and (.groups | length) == 0" s >/dev/null
'

test_expect_success '--check -g GROUP that does not exist: exit 1' '
    expect_exit 1 logpipe-stat --check -g nosuch --max-lag 10 >/dev/null 2>err &&
    grep_q "group nosuch: no such group on logs:stream" err
'

test_expect_success 'LOGPIPE_DIR and LOGPIPE_GROUP do not turn on --dir and -g' '
    LOGPIPE_DIR=arch LOGPIPE_GROUP=nosuch logpipe-stat --check --max-dlq 3 >s &&
    jq -e "has(\"archive\") | not" s >/dev/null
'

test_expect_success 'a lag Redis cannot give (null after an XDEL) is counted' '
    rcli XADD lagless "*" a 1 >/dev/null &&
    rcli XGROUP CREATE lagless g 0 >/dev/null &&
    rcli XREADGROUP GROUP g c STREAMS lagless ">" >/dev/null &&
    for i in 1 2 3 4 5; do rcli XADD lagless "*" a 1 >/dev/null; done &&
    id=$(rcli --raw XRANGE lagless - + | sed -n 4p) &&
    rcli XDEL lagless "$id" >/dev/null &&
    logpipe-stat -s lagless >s &&
    jq -e ".groups[0].lag == null" s >/dev/null &&
    logpipe-stat -s lagless --check --max-lag 4 >/dev/null &&
    expect_exit 1 logpipe-stat -s lagless --check --max-lag 3 >/dev/null 2>err &&
    grep_q "more than 3 entries after its last delivered one" err
'

test_expect_success 'the time of the measure keeps its fraction in --prom' '
    : between two readings of the clock to the ns around the run, give &&
    : or take the 1 ms it is printed to: a time cut to the second falls &&
    : before the first unless that came within 1 ms of a whole second or &&
    : the run straddles one. Not within 5 s of one reading after it, &&
    : which a stalled machine could miss &&
    before=$(date +%s.%N) &&
    logpipe-stat --prom >p &&
    after=$(date +%s.%N) &&
    t=$(awk "\$1 == \"logpipe_stat_time_seconds\" { print \$2 }" p) &&
    say "measured at $t, between $before and $after" &&
    awk -v t="$t" -v a="$before" -v b="$after" \
        "BEGIN { exit !(t >= a - 0.001 && t <= b + 0.001) }"
'

test_expect_success 'group names of any length; a pending ID ahead of the clock' '
    rcli XADD longg "*" a 1 >/dev/null &&
    long=$(printf "g%.0s" $(seq 300)) &&
    rcli XGROUP CREATE longg "$long" 0 >/dev/null &&
    rcli XGROUP CREATE longg "${long}2" 0 >/dev/null &&
    rcli XREADGROUP GROUP "$long" c COUNT 1 STREAMS longg ">" >/dev/null &&
    logpipe-stat -s longg --prom >p &&
    awk -f "$TOP/tests/promcheck.awk" p &&
    test "$(grep -c "^logpipe_group_pending{" p)" -eq 2 &&
    logpipe-stat -s longg -g "$long" --check --max-pending 1 >s &&
    jq -e --arg g "$long" ".groups[] | select(.name == \$g) | .pending == 1" s >/dev/null &&
    future=$(( $(date +%s) * 1000 + 60000 )) &&
    rcli XADD ahead "$future-0" a 1 >/dev/null &&
    rcli XGROUP CREATE ahead g 0 >/dev/null &&
    rcli XREADGROUP GROUP g c STREAMS ahead ">" >/dev/null &&
    logpipe-stat -s ahead >s &&
    jq -e ".groups[0].oldest_pending_age_seconds == 0" s >/dev/null
'

test_expect_success 'a key of the wrong type is named' '
    rcli SET strkey x >/dev/null &&
    expect_exit 78 logpipe-stat --dlq strkey 2>err &&
    grep_q "XLEN strkey: WRONGTYPE" err
'

test_expect_success 'a command refused: 78, named; the files still printed' '
    rcli ACL SETUSER noinfo on ">pw" "~*" "+@all" "-xinfo" >/dev/null &&
    rcli ACL SETUSER nopend on ">pw" "~*" "+@all" "-xpending" >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw expect_exit 78 logpipe-stat --wal w \
        -r redis://noinfo@127.0.0.1:$REDIS_PORT/0 >s 2>err &&
    grep -qx "logpipe-stat: XINFO GROUPS logs:stream: NOPERM .*xinfo|groups.*" err &&
    jq -e ".length == null and .groups == null and .wal.segments == 1" s >/dev/null &&
    jq -e ".redis_error | startswith(\"XINFO GROUPS logs:stream: NOPERM \")" s >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw expect_exit 78 logpipe-stat --prom \
        -r redis://nopend@127.0.0.1:$REDIS_PORT/0 >p 2>err &&
    grep -qx "logpipe-stat: XPENDING logs:stream: NOPERM .*xpending.*" err &&
    grep -qx "logpipe_redis_up 0" p
'

test_expect_success 'Redis unreachable: 69; usage: 64' '
    expect_exit 69 logpipe-stat -r $(dead_redis) 2>err &&
    expect_exit 64 logpipe-stat --check 2>err &&
    expect_exit 64 logpipe-stat --max-lag x 2>err
'

test_done
