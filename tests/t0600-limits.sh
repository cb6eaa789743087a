#!/bin/sh
# t0600-limits.sh -- every input limit: crossed, named, and nothing else
# lost
. "$(dirname "$0")/lib.sh"
start_redis

# members N: one event with N members
members() {
    awk -v n="$1" 'BEGIN { printf "{\"service\":\"api\""
        for (i = 1; i < n; i++) printf ",\"m%d\":%d", i, i; print "}" }'
}

test_expect_success 'send --max-members: an object or array with more is rejected' '
    { members 10000; members 10001; echo "{\"a\":[$(seq -s, 1 10001)]}"; } |
        expect_exit 65 logpipe-send -s mem --max-age 0 2>err &&
    test_xlen -eq 1 mem &&
    grep_q "^logpipe-send: line 2: invalid JSON: more than 10000 members" err &&
    grep_q "^logpipe-send: line 3: invalid JSON: more than 10000 members" err &&
    members 20 | expect_exit 65 logpipe-send -s mem --max-members 19 2>err &&
    members 19 | logpipe-send -s mem --max-members 19 &&
    test_xlen -eq 2 mem
'

test_expect_success 'send: limits on every input, each with its flag' '
    expect_exit 64 logpipe-send --max-members 0 </dev/null 2>err &&
    expect_exit 64 logpipe-send --max-depth 0 </dev/null 2>err &&
    expect_exit 64 logpipe-send --max-line 1 </dev/null 2>err &&
    logpipe-send --help >h &&
    for o in max-line max-depth max-members max-age max-skew rate max-keys; do
        grep -q -e "--$o " h || { echo "no --$o in --help"; exit 1; }
    done
'

test_expect_success 'drain --max-line: a longer entry goes to the DLQ, cut to --max-dlq-size' '
    rcli DEL logs:dlq >/dev/null &&
    big=$(awk "BEGIN { printf \"{\\\"service\\\":\\\"api\\\",\\\"x\\\":\\\"\"; for (i = 0; i < 3000; i++) printf \"0123456789\"; print \"\\\"}\" }") &&
    rcli XADD ml "*" data "$big" >/dev/null &&
    rcli XADD ml "*" data "{\"service\":\"api\",\"ok\":1}" >/dev/null &&
    logpipe-drain -s ml --once -d arch --max-line 10K --max-dlq-size 1K 2>err &&
    test "$(cat arch/api/*.jsonl | wc -l)" -eq 1 &&
    grep_q "too-long: 30024 bytes, longer than --max-line (10240)" err &&
    rcli --raw XRANGE logs:dlq - + >d &&
    grep -qx truncated d && grep -qx 30024 d &&
    test "$(sed -n "/^data\$/{n;p}" d | wc -c)" -eq 1025 &&
    id=$(sed -n 1p d) &&
    expect_exit 65 logpipe-dlq retry "$id" 2>err &&
    grep_q "cut from 30024 bytes (truncated): not the whole event" err &&
    test_xlen -eq 1 logs:dlq &&
    logpipe-dlq list | jq -e ".truncated == \"30024\" and (.data | length) == 1024" >/dev/null
'

test_expect_success 'drain --max-dlq-size defaults to --max-line: whole events stay whole' '
    rcli DEL logs:dlq >/dev/null &&
    rcli XADD md "*" data "{\"service\":\"../x\",\"pad\":\"$(printf "%0500d" 0)\"}" >/dev/null &&
    logpipe-drain -s md --once -d arch 2>/dev/null &&
    rcli --raw XRANGE logs:dlq - + >d &&
    grep -qx unsafe-path d && ! grep -qx truncated d
'

test_expect_success 'drain --max-members: more goes to the DLQ as invalid-json' '
    rcli DEL logs:dlq >/dev/null &&
    rcli XADD mm "*" data "$(members 30)" >/dev/null &&
    rcli XADD mm "*" data "$(members 3)" >/dev/null &&
    logpipe-drain -s mm --once -d arch2 --max-members 10 2>err &&
    test "$(cat arch2/api/*.jsonl | wc -l)" -eq 1 &&
    grep_q "invalid-json: more than 10 members" err &&
    test_xlen -eq 1 logs:dlq
'

test_expect_success 'drain --max-files: a batch of 300 days is written in parts' '
    awk "BEGIN { for (d = 0; d < 300; d++)
        printf \"{\\\"service\\\":\\\"api\\\",\\\"timestamp\\\":%d,\\\"d\\\":%d}\\n\", 946684800 + d * 86400, d }" >days &&
    logpipe-send -s days --max-age 0 --max-skew 0 <days &&
    logpipe-drain -s days --once -d arch3 --max-files 64 --max-open 100 -v 2>err &&
    test "$(ls arch3/api | wc -l)" -eq 300 &&
    test "$(cat arch3/api/*.jsonl | wc -l)" -eq 300 &&
    test "$(grep -c "^logpipe-drain: batch " err)" -eq 5 &&
    grep_q "count=64 dlq=0" err &&
    grep_q "count=44 dlq=0" err &&
    test "$(rcli XPENDING days logpipe | head -1)" -eq 0 &&
    expect_exit 64 logpipe-drain --max-files 300 --max-open 100 --once 2>err &&
    grep_q "max-files 300 is more than --max-open 100" err
'

# and as many again closed but kept open until their background sync
test_expect_success 'drain --max-open: at most twice that many day files open' '
    logpipe-send -s days2 --max-age 0 --max-skew 0 <days &&
    ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=openat,close -o st \
        logpipe-drain -s days2 --once \
        -d arch4 --max-files 8 --max-open 8 2>/dev/null &&
    test "$(cat arch4/api/*.jsonl | wc -l)" -eq 300 &&
    awk "
        /openat\\(.*\\.jsonl\\\".*= [0-9]+\$/ { fd[\$NF] = 1; n++; if (n > max) max = n; opens++ }
        match(\$0, /close\\([0-9]+\\)/) {
            f = substr(\$0, RSTART + 6, RLENGTH - 7)
            if (f in fd) { delete fd[f]; n-- }
        }
        END { print \"# at most \" max \" open of \" opens; exit !(max <= 16 && opens >= 300) }" st
'

test_expect_success 'replay --max-line: longer lines are damage, named' '
    mkdir -p rl/api &&
    { echo "{\"_id\":\"1-0\",\"a\":1}"; printf "{\"_id\":\"2-0\",\"x\":\"%05000d\"}\n" 0; echo "{\"_id\":\"3-0\",\"a\":3}"; } >rl/api/2026-01-01.jsonl &&
    expect_exit 65 logpipe-replay --max-line 1K rl >out 2>err &&
    test "$(wc -l <out)" -eq 2 &&
    grep_q "line 2" err
'

test_done
