#!/bin/sh
# t0630-diag-budget.sh -- per-line diagnostics are capped in every tool:
# the first 10 of a kind named, then "N more ...", the exact count at the
# end; -q keeps only what ends the run; --rejects and the DLQ keep all
. "$(dirname "$0")/lib.sh"
start_redis

# 5000 bad lines between two good events
awk 'BEGIN { print "{\"a\":1}"; for (i = 1; i <= 5000; i++) print "bad " i;
             print "{\"a\":2}" }' >in
sed -n '2,5001p' in >bad

# named FILE PATTERN: how many lines of FILE match PATTERN
named() {
    grep -c -e "$2" "$1" || true
}

# rcli_pipe: redis commands on stdin, one a line, for many entries at once
rcli_pipe() {
    rcli >/dev/null
}

test_expect_success 'send: 5000 bad lines, 10 named, the rest counted, all in --rejects' '
    expect_exit 65 logpipe-send -s s1 --rejects rej <in 2>err &&
    test_cmp bad rej &&
    test_xlen -eq 2 s1 &&
    seq 2 11 | sed "s/.*/logpipe-send: line &: invalid JSON: unexpected .b. at byte 1/" >want.re &&
    head -n 10 err >got &&
    paste -d "\n" want.re got | while read -r re && read -r l; do
        echo "$l" | grep -q -e "^$re\$" || { echo "not $re: $l"; exit 1; }
    done &&
    tail -n +11 err >got.end &&
    printf "%s\n" "logpipe-send: 4990 more invalid events" \
        "logpipe-send: 5000 invalid events in 5002 lines" >want.end &&
    test_cmp want.end got.end
'

test_expect_success 'send -q: only the count that ends the run' '
    : >rej &&
    expect_exit 65 logpipe-send -q -s s1 --rejects rej <in 2>err &&
    echo "logpipe-send: 5000 invalid events in 5002 lines" >want &&
    test_cmp want err &&
    test_cmp bad rej
'

test_expect_success 'send -v: every bad line named' '
    expect_exit 65 logpipe-send -v -s s1 <in 2>err &&
    test "$(named err "^logpipe-send: line [0-9]*: invalid JSON")" -eq 5000 &&
    ! grep -q "more invalid events" err
'

test_expect_success 'send --log-format json: one object per line, the same lines' '
    expect_exit 65 logpipe-send --log-format json -s s1 <in 2>err &&
    test "$(wc -l <err)" -eq 12 &&
    jq -e "type == \"object\" and (.prog == \"logpipe-send\") and (.level == \"error\")" <err >/dev/null &&
    test "$(jq -s length <err)" -eq 12 &&
    jq -r .msg <err | tail -n 2 >got &&
    printf "%s\n" "4990 more invalid events" "5000 invalid events in 5002 lines" >want &&
    test_cmp want got
'

test_expect_success 'send that never sees the end of its input (tail -F): the count at SIGTERM' '
    rm -f fifo && mkfifo fifo &&
    : >rej &&
    { logpipe-send -s s2 --rejects rej <fifo 2>err & echo $! >pid; } &&
    exec 9>fifo &&
    cat in >&9 &&
    wait_for 60 "test \$(wc -l <rej) -eq 5000" &&
    kill -TERM "$(cat pid)" &&
    rc=0 && { wait "$(cat pid)" || rc=$?; } &&
    exec 9>&- &&
    test $rc -eq 65 &&
    test "$(named err "^logpipe-send: line [0-9]*: invalid JSON")" -eq 10 &&
    grep_q "^logpipe-send: interrupted: " err &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-send: 4990 more invalid events" \
        "logpipe-send: 5000 invalid events in 5002 lines" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 13
'

test_expect_success 'send --on-limit reject: 10 named, the rest counted; -q: the count' '
    awk "BEGIN { for (i = 1; i <= 5000; i++) print \"{\\\"i\\\":\" i \"}\" }" >ev &&
    expect_exit 65 logpipe-send -s s3 --rate 1/h --burst 1 --on-limit reject \
        --rejects rrej <ev 2>err &&
    test "$(wc -l <rrej)" -eq 4999 &&
    test "$(named err "^logpipe-send: line [0-9]*: over --rate\$")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-send: 4989 more events over --rate" \
        "logpipe-send: 4999 events over --rate rejected" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12 &&
    expect_exit 65 logpipe-send -q -s s3 --rate 1/h --burst 1 --on-limit reject <ev 2>err &&
    echo "logpipe-send: 4999 events over --rate rejected" >want &&
    test_cmp want err
'

# bad_entries STREAM N: N entries whose data is not JSON
bad_entries() {
    awk -v s="$1" -v n="$2" 'BEGIN { for (i = 1; i <= n; i++)
        print "XADD " s " * data notjson" i }' | rcli_pipe
}

test_expect_success 'drain --once: 5000 entries to the DLQ, 10 named, counted' '
    bad_entries d1 5000 &&
    logpipe-drain -s d1 --dlq dlq1 -c c1 --once -d arch 2>err &&
    test_xlen -eq 5000 dlq1 &&
    test "$(named err "^logpipe-drain: entry [0-9-]* to the DLQ: invalid-json: ")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-drain: 4990 more entries to the DLQ" \
        "logpipe-drain: 5000 entries moved to the DLQ" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12
'

test_expect_success 'drain -q: nothing at all (the run succeeded; the DLQ has them)' '
    bad_entries d2 5000 &&
    logpipe-drain -q -s d2 --dlq dlq2 -c c1 --once -d arch 2>err &&
    test_xlen -eq 5000 dlq2 &&
    test ! -s err
'

test_expect_success 'drain running on: what it held back is said at SIGTERM' '
    bad_entries d3 5000 &&
    { logpipe-drain -s d3 --dlq dlq3 -c c1 -d arch 2>err & echo $! >pid; } &&
    wait_for 60 "test \$(rcli XLEN dlq3) -eq 5000" &&
    kill -TERM "$(cat pid)" &&
    wait "$(cat pid)" &&
    test "$(named err "^logpipe-drain: entry [0-9-]* to the DLQ: ")" -eq 10 &&
    grep_q "^logpipe-drain: 4990 more entries to the DLQ\$" err &&
    grep_q "^logpipe-drain: 5000 entries moved to the DLQ\$" err
'

test_expect_success 'drain: 5000 pending entries deleted from the stream, 10 named' '
    awk "BEGIN { for (i = 1; i <= 5000; i++) print \"XADD d4 * data x\" }" |
        rcli_pipe &&
    test_xlen -eq 5000 d4 &&
    rcli XGROUP CREATE d4 logpipe 0 >/dev/null &&
    rcli XREADGROUP GROUP logpipe c1 COUNT 5000 STREAMS d4 ">" >/dev/null &&
    rcli --raw XRANGE d4 - + | grep -E "^[0-9]+-[0-9]+\$" |
        sed "s/^/XDEL d4 /" | rcli_pipe &&
    test_xlen -eq 0 d4 &&
    logpipe-drain -s d4 --dlq dlq4 -c c1 --once -d arch 2>err &&
    test "$(rcli XPENDING d4 logpipe | head -n 1)" -eq 0 &&
    test "$(named err "^logpipe-drain: entry [0-9-]* was deleted from the stream")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-drain: 4990 more entries deleted before they were archived" \
        "logpipe-drain: 5000 entries were deleted from the stream before they were archived" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12
'

test_expect_success 'agg: 5000 bad lines, 10 named, the count; -q: the count' '
    expect_exit 65 logpipe-agg --time-field "" <in >out 2>err &&
    test "$(named err "^logpipe-agg: line [0-9]*: ")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-agg: 4992 more bad events" \
        "logpipe-agg: 5002 bad events in 5002 lines" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12 &&
    expect_exit 65 logpipe-agg -q --time-field "" <in >out 2>err &&
    echo "logpipe-agg: 5002 bad events in 5002 lines" >want &&
    test_cmp want err
'

test_expect_success 'agg: 5000 late events from a pipe, 10 named, the count' '
    awk "BEGIN { print \"{\\\"timestamp\\\":1795341600}\";
        for (i = 1; i <= 5000; i++) print \"{\\\"timestamp\\\":1795340000}\" }" >late &&
    rc=0 && { cat late | logpipe-agg >out 2>err || rc=$?; } &&
    test $rc -eq 65 &&
    test "$(named err "^logpipe-agg: line [0-9]*: event time .* is late")" -eq 10 &&
    grep_q "^logpipe-agg: 4990 more late events\$" err &&
    grep_q "^logpipe-agg: 5000 late events dropped, not counted: " err &&
    test "$(wc -l <err)" -eq 12 &&
    rc=0 && { cat late | logpipe-agg -q >out 2>err || rc=$?; } &&
    test $rc -eq 65 &&
    grep_q "^logpipe-agg: 5000 late events dropped, not counted: " err &&
    test "$(wc -l <err)" -eq 1
'

test_expect_success 'replay: 5000 damaged lines, 10 named, the count; -q: the count' '
    expect_exit 65 logpipe-replay in >out 2>err &&
    printf "%s\n" "{\"a\":1}" "{\"a\":2}" >want && test_cmp want out &&
    test "$(named err "^logpipe-replay: in: line [0-9]*: invalid JSON")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-replay: 4990 more damaged lines" \
        "logpipe-replay: 5000 damaged lines in 1 file" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12 &&
    expect_exit 65 logpipe-replay -q in >out 2>err &&
    echo "logpipe-replay: 5000 damaged lines in 1 file" >want &&
    test_cmp want err
'

test_expect_success 'replay: damaged gzip members have a budget of their own' '
    mkdir gz &&
    for i in $(seq 1 15); do echo "not gzip $i" >gz/f$i.jsonl.gz; done &&
    expect_exit 65 logpipe-replay gz >out 2>err &&
    test ! -s out &&
    test "$(named err "^logpipe-replay: gz/f[0-9]*.jsonl.gz: after line 0: damaged gzip: ")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-replay: 5 more damaged gzip members" \
        "logpipe-replay: 15 damaged lines in 15 files" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12
'

test_expect_success 'dlq export: 5000 entries without data, 10 named, the count' '
    awk "BEGIN { for (i = 1; i <= 5000; i++)
        print \"XADD dlq5 * error x stage drain\" }" | rcli_pipe &&
    logpipe-dlq --dlq dlq5 export >out 2>err &&
    test ! -s out &&
    test "$(named err "^logpipe-dlq: entry [0-9-]*: no data field: not exported")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-dlq: 4990 more entries not exported" \
        "logpipe-dlq: 5000 entries not exported" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12 &&
    logpipe-dlq -q --dlq dlq5 export >out 2>err &&
    test ! -s err
'

test_expect_success 'dlq retry: 5000 refused, 10 named, the count; -q: the count' '
    rcli SET notastream x >/dev/null &&
    awk "BEGIN { for (i = 1; i <= 5000; i++)
        print \"XADD dlq6 * data {} error x source_stream notastream\" }" | rcli_pipe &&
    expect_exit 78 logpipe-dlq --dlq dlq6 retry --all >out 2>err &&
    test "$(named err "^logpipe-dlq: entry [0-9-]*: to notastream: WRONGTYPE")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-dlq: 4990 more entries not retried" \
        "logpipe-dlq: 5000 entries not retried" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12 &&
    test_xlen -eq 5000 dlq6 &&
    expect_exit 78 logpipe-dlq -q --dlq dlq6 retry --all >out 2>err &&
    echo "logpipe-dlq: 5000 entries not retried" >want &&
    test_cmp want err
'

test_expect_success 'dlq show: 5000 unknown IDs, 10 named, the count' '
    ids=$(seq 1 5000 | sed "s/\$/-0/") &&
    expect_exit 65 logpipe-dlq --dlq dlq7 show $ids >out 2>err &&
    test "$(named err "^logpipe-dlq: entry [0-9]*-0 is not in dlq7\$")" -eq 10 &&
    tail -n 2 err >got &&
    printf "%s\n" "logpipe-dlq: 4990 more unknown IDs" \
        "logpipe-dlq: 5000 unknown IDs" >want &&
    test_cmp want got &&
    test "$(wc -l <err)" -eq 12
'

test_done
