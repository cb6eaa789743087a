#!/bin/sh
# t0430-jq-runtime.sh -- a jq program that fails at run time fails the run,
# in every tool that runs one on events (replay --where, drain --where,
# dlq --where, send --rate-key): the first 10 errors said, the rest
# counted, a summary at the end, and 65 (some events) or 78 (every event)
. "$(dirname "$0")/lib.sh"
start_redis

# 5000 events whose user_id is a number: '.user_id + "x"' fails on each
awk 'BEGIN { for (i = 1; i <= 5000; i++)
    printf "{\"timestamp\":1796500000,\"service\":\"api\",\"user_id\":%d,\"seq\":%d}\n", i, i }' >nums
# 30 of them with a string user_id: the program works on those
awk 'BEGIN { for (i = 1; i <= 5000; i++)
    printf "{\"timestamp\":1796500000,\"service\":\"api\",\"user_id\":%s,\"seq\":%d}\n",
        (i % 200 == 0 || i <= 5) ? "\"u" i "\"" : i, i }' >mixed
WHERE='(.user_id + "x") | startswith("u")'

# named FILE PATTERN: how many lines of FILE match
named() {
    grep -c -e "$2" "$1" || :
}

test_expect_success 'replay: failing on every event exits 78, 10 errors said, then the count' '
    expect_exit 78 logpipe-replay --where "$WHERE" nums >out 2>err &&
    test ! -s out &&
    test "$(named err ": --where: jq: number (")" -eq 10 &&
    grep_q "^logpipe-replay: nums: line 1: --where: jq: number (1) and string (\"x\") cannot be added$" err &&
    grep_q "^logpipe-replay: nums: line 10: --where: jq: number (10) " err &&
    grep_q "^logpipe-replay: --where failed at run time on 5000 of 5000 events (the first 10 named above): they were not printed$" err &&
    test "$(wc -l <err)" -eq 11
'

test_expect_success 'replay: failing on some events exits 65 and prints the others' '
    expect_exit 65 logpipe-replay --where "$WHERE" mixed >out 2>err &&
    seqs out | tr "\n" " " >got &&
    printf "1 2 3 4 5 200 400 600 800 1000 1200 1400 1600 1800 2000 2200 2400 2600 2800 3000 3200 3400 3600 3800 4000 4200 4400 4600 4800 5000 " >want &&
    test_cmp want got &&
    test "$(named err ": --where: jq: number (")" -eq 10 &&
    grep_q "^logpipe-replay: --where failed at run time on 4970 of 5000 events (the first 10 named above): they were not printed$" err &&
    test "$(wc -l <err)" -eq 11
'

test_expect_success 'replay -q: none named, only the count that ends the run' '
    expect_exit 65 logpipe-replay -q --where "$WHERE" mixed >out 2>err &&
    echo "logpipe-replay: --where failed at run time on 4970 of 5000 events: they were not printed" >want &&
    test_cmp want err
'

test_expect_success 'replay: a few failures are all named, no "first 10"' '
    head -n 3 nums >three &&
    expect_exit 78 logpipe-replay --where "$WHERE" three 2>err &&
    test "$(wc -l <err)" -eq 4 &&
    grep_q "^logpipe-replay: --where failed at run time on 3 of 3 events: they were not printed$" err
'

test_expect_success 'replay: 78 beats 65 (damaged lines), 66 (a missing path) stays' '
    { cat three; echo "{broken"; } >damaged &&
    expect_exit 78 logpipe-replay --where "$WHERE" damaged 2>err &&
    grep_q "damaged: line 4: invalid JSON" err &&
    expect_exit 66 logpipe-replay --where "$WHERE" three no-such-file 2>err &&
    grep_q "failed at run time on 3 of 3 events" err
'

test_expect_success 'replay: a program that works (or is false) everywhere still exits 0' '
    logpipe-replay --where ".user_id == 3" nums >out 2>err &&
    test ! -s err &&
    test "$(seqs out)" = 3
'

test_expect_success 'replay: the same over the archive, with --strip-id and --sort' '
    logpipe-send --max-age 0 <mixed &&
    logpipe-drain --once -d arch -g g1 &&
    expect_exit 65 logpipe-replay --sort --strip-id --where "$WHERE" arch >out 2>err &&
    test "$(wc -l <out)" -eq 30 &&
    grep_q "failed at run time on 4970 of 5000 events" err
'

test_expect_success 'drain --where: every entry fails: all in the DLQ, exit 78, 10 said' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    logpipe-send --max-age 0 <nums &&
    expect_exit 78 logpipe-drain --once -d d1 --where "$WHERE" 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 5000 &&
    test "$(named err "to the DLQ: where-error: jq: number (")" -eq 10 &&
    grep_q "^logpipe-drain: --where failed at run time on 5000 of 5000 events (the first 10 named above): moved to the DLQ as where-error$" err &&
    test "$(rcli XPENDING logs:stream logpipe | head -n 1)" -eq 0 &&
    test ! -e d1/api
'

test_expect_success 'drain --where: some entries fail: the others archived, exit 65' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    logpipe-send --max-age 0 <mixed &&
    expect_exit 65 logpipe-drain --once -d d2 --where "$WHERE" 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 4970 &&
    test "$(seqs d2/api/*.jsonl | wc -l)" -eq 30 &&
    grep_q "failed at run time on 4970 of 5000 events (the first 10 named above)" err &&
    test "$(named err "to the DLQ: where-error")" -eq 10
'

test_expect_success 'dlq list --where: 78 when it fails on every entry, 65 on some' '
    expect_exit 78 logpipe-dlq list --where ".event | $WHERE" >out 2>err &&
    test ! -s out &&
    test "$(named err ": --where: jq: number (")" -eq 10 &&
    grep_q "^logpipe-dlq: --where failed at run time on 4970 of 4970 events (the first 10 named above): they were not selected$" err &&
    test "$(wc -l <err)" -eq 11 &&
    rcli XADD logs:dlq "*" data "{\"user_id\":\"u1\"}" error where-error stage drain source_stream logs:stream source_id 1-1 >/dev/null &&
    expect_exit 65 logpipe-dlq list --where ".event | $WHERE" >out 2>err &&
    test "$(wc -l <out)" -eq 1 &&
    grep_q "failed at run time on 4970 of 4971 events" err &&
    logpipe-dlq list --where ".event.user_id == 7" >out 2>err &&
    test ! -s err &&
    test "$(wc -l <out)" -eq 1
'

test_expect_success 'dlq retry --all --where: the entries it fails on stay, exit 65' '
    expect_exit 65 logpipe-dlq retry --all --where ".event | $WHERE" >out 2>err &&
    test "$(wc -l <out)" -eq 1 &&
    test "$(rcli XLEN logs:dlq)" -eq 4970 &&
    grep_q "failed at run time on 4970 of 4971 events" err
'

test_expect_success 'send --rate-key: every event sent, exit 78 when it fails on all, 10 said' '
    rcli DEL logs:stream >/dev/null &&
    expect_exit 78 logpipe-send --max-age 0 --rate 1000000/s --rate-key ".user_id + \"x\"" <nums 2>err &&
    test "$(rcli XLEN logs:stream)" -eq 5000 &&
    test "$(named err "^logpipe-send: --rate-key: jq: number (")" -eq 10 &&
    grep_q "^logpipe-send: --rate-key failed at run time on 5000 of 5000 events (the first 10 named above): they shared the limit of events without a key$" err &&
    test "$(wc -l <err)" -eq 11
'

test_expect_success 'send --rate-key: some fail: 65; a program that works: 0' '
    rcli DEL logs:stream >/dev/null &&
    expect_exit 65 logpipe-send --max-age 0 --rate 1000000/s --rate-key ".user_id + \"x\"" <mixed 2>err &&
    test "$(rcli XLEN logs:stream)" -eq 5000 &&
    grep_q "failed at run time on 4970 of 5000 events" err &&
    logpipe-send --max-age 0 --rate 1000000/s --rate-key ".user_id | tostring" <mixed 2>err &&
    test ! -s err
'

test_done
