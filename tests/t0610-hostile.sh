#!/bin/sh
# t0610-hostile.sh -- hostile input through the whole pipeline: huge lines,
# deep nesting, bad UTF-8, U+2028, path tricks, far dates, a flood of days
# and of rate keys. Each is named and set aside; memory and open files stay
# bounded; nothing is written outside --dir.
. "$(dirname "$0")/lib.sh"
start_redis

# stream_data KEY: the data fields of a stream, one per line
stream_data() {
    rcli --raw XRANGE "$1" - + | awk 'f { print; f = 0; next } $0 == "data" { f = 1 }'
}

mkdir -p jail/out
cd jail || exit 1

test_expect_success 'a 10 MB line: rejected by default, the rest sent, memory bounded' '
    { echo "{\"service\":\"a\",\"n\":1}"
      awk "BEGIN { printf \"{\\\"service\\\":\\\"a\\\",\\\"x\\\":\\\"\"; for (i = 0; i < 1048576; i++) printf \"0123456789\"; print \"\\\"}\" }"
      echo "{\"service\":\"a\",\"n\":3}"; } >big.ndjson &&
    test "$(wc -c <big.ndjson)" -gt 10000000 &&
    rss_under 32000 65 logpipe-send -s s1 --max-age 0 <big.ndjson 2>err &&
    grep_q "^logpipe-send: line 2: longer than --max-line (1048576 bytes)" err &&
    test_xlen -eq 2 s1
'

test_expect_success 'a 10 MB event, allowed: sent, archived, replayed byte for byte' '
    sed -n 2p big.ndjson >one &&
    rss_under 120000 0 logpipe-send -s s2 --max-age 0 --max-line 16M <one &&
    rss_under 120000 0 logpipe-drain -s s2 --once -d out --max-line 16M 2>err &&
    rss_under 120000 0 logpipe-replay --strip-id out >back &&
    cmp one back
'

test_expect_success 'nesting 100,000 deep: rejected everywhere, nothing crashes' '
    awk "BEGIN { for (i = 0; i < 100000; i++) printf \"[\"; for (i = 0; i < 100000; i++) printf \"]\"; print \"\" }" >deep &&
    awk "BEGIN { for (i = 0; i < 100000; i++) printf \"{\\\"a\\\":\"; printf 1; for (i = 0; i < 100000; i++) printf \"}\"; print \"\" }" >>deep &&
    expect_exit 65 logpipe-send -s s3 <deep 2>err &&
    grep_q "^logpipe-send: line 1: invalid JSON: nesting deeper than 64" err &&
    grep_q "^logpipe-send: line 2: invalid JSON: nesting deeper than 64" err &&
    rcli -x XADD s3 "*" data <deep >/dev/null &&
    rcli DEL logs:dlq >/dev/null &&
    logpipe-drain -s s3 --once -d out 2>err &&
    grep_q "invalid-json: nesting deeper than 64" err &&
    test_xlen -eq 1 logs:dlq &&
    logpipe-dlq list | jq -e "(.data | length) > 200000" >/dev/null &&
    mkdir -p deepdir/x && { echo "{\"_id\":\"1-0\",\"a\":1}"; sed -n 2p deep; } >deepdir/x/2026-01-01.jsonl &&
    expect_exit 65 logpipe-replay --where ".a == 1" deepdir >got 2>err &&
    test "$(wc -l <got)" -eq 1 && grep_q "line 2" err
'

test_expect_success 'invalid UTF-8 in data, in a key, in a field name: named, set aside' '
    printf "{\"service\":\"a\",\"v\":\"\\377\"}\n{\"\\300\\200\":1}\n{\"service\":\"a\"}\n" |
        expect_exit 65 logpipe-send -s s4 --max-age 0 2>err &&
    grep_q "^logpipe-send: line 1: invalid JSON: invalid UTF-8" err &&
    grep_q "^logpipe-send: line 2: invalid JSON: invalid UTF-8" err &&
    test_xlen -eq 1 s4 &&
    printf "XADD s4 * \"\\xff\\xfe\" v\n" | rcli >/dev/null &&
    rcli DEL logs:dlq >/dev/null &&
    logpipe-drain -s s4 --once -d out 2>err &&
    grep_q "invalid-utf8" err &&
    test_xlen -eq 1 logs:dlq
'

test_expect_success 'U+2028 and U+2029, raw and escaped: valid, kept byte for byte' '
    printf "{\"service\":\"u\",\"raw\":\"a\342\200\250b\342\200\251c\",\"esc\":\"\\\\u2028\"}\n" >u &&
    logpipe-send -s s5 --max-age 0 <u &&
    stream_data s5 >got && test_cmp u got &&
    logpipe-drain -s s5 --once -d out &&
    logpipe-replay --strip-id out/u >back && test_cmp u back
'

test_expect_success 'path tricks in layout fields: DLQ, nothing outside --dir' '
    before=$(cd .. && find . -path ./jail -prune -o -print | sort | md5sum) &&
    rcli DEL logs:dlq >/dev/null &&
    for v in ".." "../../x" "/etc" "/" "a/../../b" "..." "%2e%2e" "\\\\.." \
             "a\\u0000b" "$(printf "%0100d" 0)" "."; do
        printf "{\"app\":\"%s\",\"service\":\"s\"}\n" "$v"
    done >paths &&
    logpipe-send -s s6 --max-age 0 <paths 2>/dev/null &&
    logpipe-drain -v -s s6 --once -d out --layout "{app}/{service}/%F.jsonl" 2>err &&
    test "$(rcli XLEN logs:dlq)" -ge 9 &&
    test "$(rcli XLEN logs:dlq)" -eq "$(grep -c "unsafe-path" err)" &&
    after=$(cd .. && find . -path ./jail -prune -o -print | sort | md5sum) &&
    test "$before" = "$after" &&
    test -z "$(find out -name "*.jsonl" -path "*..*")"
'

test_expect_success 'far dates: year 9999 and 0000 filed, beyond them rejected' '
    printf "%s\n" "{\"service\":\"y\",\"timestamp\":\"9999-12-31T23:59:59Z\"}" \
        "{\"service\":\"y\",\"timestamp\":\"0000-01-01T00:00:00Z\"}" \
        "{\"service\":\"y\",\"timestamp\":253402300800}" \
        "{\"service\":\"y\",\"timestamp\":-1e15}" \
        "{\"service\":\"y\",\"timestamp\":1e308}" \
        "{\"service\":\"y\",\"timestamp\":\"9999-99-99T00:00:00Z\"}" >far &&
    expect_exit 65 logpipe-send -s s7 <far 2>err &&
    grep_q "line 1: event time 9999-12-31T23:59:59.000Z is more than --max-skew" err &&
    expect_exit 65 logpipe-send -s s7 --max-age 0 --max-skew 0 <far 2>err &&
    test "$(grep -c "outside years 0000..9999" err)" -eq 3 &&
    grep_q "line 6: time member is not epoch seconds or an RFC 3339" err &&
    logpipe-drain -s s7 --once -d out &&
    test -f out/y/9999-12-31.jsonl && test -f out/y/0000-01-01.jsonl
'

test_expect_success 'stream IDs past year 9999 (set by hand): DLQ, not a wrong day' '
    rcli DEL logs:dlq >/dev/null &&
    rcli XADD s8 253402300800000-0 data "{\"service\":\"z\"}" >/dev/null &&
    rcli XADD s8 9223372036854775808-0 data "{\"service\":\"z\"}" >/dev/null &&
    rcli XADD s8 18446744073709551615-0 data "{\"service\":\"z\"}" >/dev/null &&
    logpipe-drain -s s8 --once -d out 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 3 &&
    test "$(grep -c "unsafe-path.*event time is outside years 0000..9999" err)" -eq 3 &&
    test ! -e out/z &&
    test "$(rcli XPENDING s8 logpipe | head -n 1)" -eq 0
'

days=10000
[ -n "${LP_STRESS:-}" ] && days=100000
test_expect_success "$days distinct days: open files and memory bounded" '
    awk -v n=$days "BEGIN { for (d = 0; d < n; d++)
        printf \"{\\\"service\\\":\\\"d\\\",\\\"timestamp\\\":%.0f}\\n\", -2000000000 + d * 86400 }" >days &&
    logpipe-send -s s8 --max-age 0 --max-skew 0 <days &&
    test_xlen -eq $days s8 &&
    ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=openat,close -o st \
        /usr/bin/time -f %M -o rss.out logpipe-drain -s s8 --once -d days.d \
        --max-open 64 2>/dev/null &&
    say "peak RSS $(cat rss.out) KB" &&
    { [ "$SAN" = 1 ] || [ "$(cat rss.out)" -lt 32000 ]; } &&
    test "$(ls days.d/d | wc -l)" -eq $days &&
    awk "
        /openat\\(.*\\.jsonl\\\".*= [0-9]+\$/ { fd[\$NF] = 1; n++; if (n > max) max = n }
        match(\$0, /close\\([0-9]+\\)/) {
            f = substr(\$0, RSTART + 6, RLENGTH - 7)
            if (f in fd) { delete fd[f]; n-- }
        }
        END { print \"# at most \" max \" day files open\"; exit !(max <= 128) }" st
'

test_expect_success 'a million distinct rate keys: bounded memory, all sent' '
    awk "BEGIN { for (i = 0; i < 1000000; i++) printf \"{\\\"k\\\":\\\"%d\\\"}\\n\", i }" >keys &&
    rss_under 64000 0 logpipe-send -s s9 --rate 1000000/s --burst 1000000 \
        --rate-key .k --metrics k.prom <keys 2>err &&
    test_xlen -eq 1000000 s9 &&
    grep_q "max-keys 10000: more new rate keys this minute share" err &&
    awk "\$1 == \"logpipe_send_rate_keys\" { exit !(\$2 <= 40000) }" k.prom &&
    awk "\$1 == \"logpipe_send_rate_overflow_total\" { exit !(\$2 >= 990000) }" k.prom &&
    rcli DEL s9 >/dev/null
'

test_done
