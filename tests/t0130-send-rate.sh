#!/bin/sh
# t0130-send-rate.sh -- --rate: token buckets per key, block, reject, dlq,
# shared by several senders through Redis
. "$(dirname "$0")/lib.sh"
start_redis

# events N [KEYS]: N events without a time, app cycling through KEYS apps
events() {
    awk -v n="$1" -v k="${2:-3}" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"app\":\"a%d\",\"seq\":%d}\n", i % k, i }'
}

# rate STREAM: events per second between its first and last entry IDs,
# the burst (first B entries) left out
rate_of() {
    rcli --raw XRANGE "$1" - + | grep -E '^[0-9]+-[0-9]+$' |
        awk -v b="${2:-1}" -F- '
        NR == b { t0 = $1 } { t1 = $1; n = NR }
        END { if (t1 > t0) printf "%.1f\n", (n - b) * 1000 / (t1 - t0) }'
}

# within R LIMIT: R is within 5% of LIMIT
within() {
    awk -v r="$1" -v l="$2" 'BEGIN { d = r / l - 1; if (d < 0) d = -d;
        printf "# %s/s against %s/s: %.1f%%\n", r, l, d * 100; exit !(d <= 0.05) }'
}

test_expect_success 'one sender: --rate holds within 5% over 10 s (block)' '
    events 5050 | logpipe-send -s one --rate 500/s --burst 50 --max-age 0 &&
    test_xlen -eq 5050 one &&
    r=$(rate_of one 50) && within "$r" 500
'

test_expect_success 'three senders share one --shared-rate within 5% over 10 s' '
    for i in 1 2 3; do
        events 2020 | logpipe-send -s three --rate 600/s --burst 60 \
            --shared-rate 2>err$i &
    done
    wait &&
    test_xlen -eq 6060 three &&
    r=$(rate_of three 60) && within "$r" 600 &&
    test "$(rcli --raw TTL three:rate:)" -gt 0 &&
    test "$(rcli --raw PTTL three:rate:)" -le 2000 &&
    ! grep -q . err1 err2 err3
'

test_expect_success '--on-limit reject: lines over the limit named (10), counted; 65' '
    events 30 | expect_exit 65 logpipe-send -s rej --rate 1/h --burst 10 \
        --on-limit reject --rejects rej.ndjson 2>err &&
    test_xlen -eq 10 rej &&
    test "$(grep -c "line [0-9]*: over --rate\$" err)" -eq 10 &&
    grep_q "^logpipe-send: line 11: over --rate\$" err &&
    grep_q "^logpipe-send: line 20: over --rate\$" err &&
    grep_q "^logpipe-send: 10 more events over --rate\$" err &&
    grep_q "20 events over --rate rejected" err &&
    test "$(wc -l <rej.ndjson)" -eq 20 &&
    sed -n 1p rej.ndjson | grep -q "\"seq\":11}"
'

test_expect_success '--on-limit dlq: into the DLQ with error rate-limited' '
    events 30 | expect_exit 65 logpipe-send -s dl --rate 1/h --burst 10 \
        --on-limit dlq 2>err &&
    test_xlen -eq 10 dl &&
    test_xlen -eq 20 logs:dlq &&
    rcli --raw XRANGE logs:dlq - + COUNT 1 >e &&
    grep -qx rate-limited e && grep -qx dl e &&
    grep_q "20 events over --rate went to the DLQ" err
'

test_expect_success '--rate-key .app: one bucket per app' '
    events 60 3 | expect_exit 65 logpipe-send -s perkey --rate 1/h \
        --burst 5 --rate-key .app --on-limit reject 2>err &&
    test_xlen -eq 15 perkey &&
    grep_q "over --rate for key \"a0\"" err &&
    for k in a0 a1 a2; do
        test "$(rcli --raw XRANGE perkey - + | grep -c "\"app\":\"$k\"")" -eq 5 || exit 1
    done
'

test_expect_success '--rate-key JQ: any program; errors share the keyless bucket' '
    { events 9 3; echo "{\"app\":7}"; echo "{\"app\":8}"; } |
        expect_exit 65 logpipe-send -s jqkey --rate 1/h --burst 2 \
        --rate-key ".app | ascii_upcase" --on-limit reject 2>err &&
    test_xlen -eq 8 jqkey &&
    grep_q "over --rate for key \"A1\"" err &&
    test "$(grep -c "rate-key: jq: .* (such events share the limit of events without a key)" err)" -eq 2 &&
    grep_q "rate-key failed at run time on 2 of 11 events: they shared the limit of events without a key" err
'

test_expect_success '--max-keys: new keys past it share one bucket' '
    events 200 100 | expect_exit 65 logpipe-send -s many --rate 1/h \
        --burst 1 --rate-key .app --max-keys 10 --on-limit reject 2>err &&
    test_xlen -eq 11 many &&
    grep_q "max-keys 10: more new rate keys this minute share" err &&
    grep_q "over --rate for key \"(other)\"" err
'

test_expect_success 'SIGTERM while blocked: what was read is still sent' '
    # from a file, read whole by one read(2): from a pipe, the writer might
    # not have written every line before the signal
    events 300 >in300 &&
    logpipe-send -s stop --rate 20/s --burst 1 <in300 2>err &
    pid=$!
    wait_for 60 test_xlen -ge 5 stop &&
    kill -TERM $pid &&
    wait $pid &&
    test_xlen -eq 300 stop &&
    grep_q "sent past --rate when stopped" err
'

test_expect_success '--shared-rate without Redis permission: limits alone' '
    rcli ACL SETUSER noeval on ">pw" "~*" "+@all" "-eval" >/dev/null &&
    events 20 | LOGPIPE_REDIS_PASSWORD=pw expect_exit 65 logpipe-send \
        -r redis://noeval@127.0.0.1:$REDIS_PORT/0 -s alone --rate 1/h \
        --burst 4 --shared-rate --on-limit reject 2>err &&
    test_xlen -eq 4 alone &&
    grep_q "shared-rate: .*NOPERM.*limiting in this sender alone" err
'

test_expect_success 'metrics: limited events, time waited, keys' '
    events 40 | logpipe-send -s met --rate 100/s --burst 5 --rate-key .app \
        --metrics m.prom &&
    awk -f "$TOP/tests/promcheck.awk" m.prom &&
    grep_q "^logpipe_send_rate_keys 3$" m.prom &&
    awk "\$1 == \"logpipe_send_rate_wait_seconds_total\" && \$2 > 0 { f = 1 } END { exit !f }" m.prom &&
    events 10 | expect_exit 65 logpipe-send -s met2 --rate 1/h --burst 4 \
        --on-limit reject --metrics m2.prom 2>/dev/null &&
    grep_q "^logpipe_send_events_total{result=\"limited\"} 6$" m2.prom &&
    grep_q "^logpipe_send_events_total{result=\"rejected\"} 0$" m2.prom
'

test_expect_success 'usage: 64 for bad values and options without --rate; 78 bad jq' '
    expect_exit 64 logpipe-send --burst 5 </dev/null 2>err &&
    grep_q "burst needs --rate" err &&
    expect_exit 64 logpipe-send --shared-rate </dev/null 2>err &&
    expect_exit 64 logpipe-send --rate 5/d </dev/null 2>err &&
    grep_q "not a rate like" err &&
    expect_exit 64 logpipe-send --rate 0 </dev/null 2>err &&
    expect_exit 64 logpipe-send --rate 5/s --on-limit drop </dev/null 2>err &&
    grep_q "not block, reject or dlq" err &&
    expect_exit 64 logpipe-send --rate 5/s --max-keys 0 </dev/null 2>err &&
    expect_exit 78 logpipe-send --rate 5/s --rate-key ".[" </dev/null 2>err
'

test_done
