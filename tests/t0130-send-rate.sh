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

# redis_ms: Redis's clock in ms, the clock of entry IDs and of the
# --shared-rate bucket
redis_ms() {
    rcli --raw TIME | awk 'NR == 1 { s = $1 } NR == 2 { printf "%d%03d\n", s, int($1 / 1000) }'
}

# never_over STREAM RATE BURST T0: no entry of STREAM came before a token
# bucket of RATE/s and BURST, full at T0 (ms, Redis's clock, taken before
# the senders started), could have given it: the k-th entry, whose ID is
# the time Redis added it, after its token was taken, has k <= BURST +
# RATE * (its ms - T0) / 1000, + 2 for the rounding of times to the ms
# (up to 2 ms of a sender's own clock against Redis's, one token at
# 500/s) and of the bucket's count. An upper bound that holds however
# slow the machine is; how close to RATE a run comes depends on the
# machine and is measured by make bench, not here.
never_over() {
    rcli --raw XRANGE "$1" - + | grep -E '^[0-9]+-[0-9]+$' |
        awk -v r="$2" -v b="$3" -v t0="$4" -F- '
        { k = NR; ms = $1 - t0
          if (k * 1000 > b * 1000 + r * ms + 2000) {
              printf "entry %d at %d ms: more than %d + %d/s x %d ms\n", k, ms, b, r, ms
              bad = 1; exit } }
        END { if (!bad) printf "# %d entries in %d ms, never over %d/s + %d\n", k, ms, r, b
              exit bad }'
}

# per_sender STREAM N SENDERS: each of the SENDERS (events tagged "s":I)
# got its N events into STREAM, seq 1 to N, each once
per_sender() {
    rcli --raw XRANGE "$1" - + | grep "^{" >all.$1 &&
    seq 1 "$2" >want.$1 &&
    for i in $(seq 1 "$3"); do
        grep "\"s\":$i," all.$1 | seqs - >got.$1.$i &&
        test_cmp want.$1 got.$1.$i || return 1
    done &&
    test "$(wc -l <all.$1)" -eq $(($2 * $3))
}

test_expect_success 'one sender: --rate never admits more than rate x time + burst (block)' '
    t0=$(redis_ms) &&
    events 2050 | logpipe-send -s one --rate 500/s --burst 50 --max-age 0 &&
    test_xlen -eq 2050 one &&
    never_over one 500 50 "$t0"
'

test_expect_success 'three senders share one --shared-rate: never over it, nothing lost' '
    t0=$(redis_ms) &&
    pids= &&
    for i in 1 2 3; do
        events 800 | sed "s/^{/{\"s\":$i,/" |
            logpipe-send -s three --rate 600/s --burst 60 --shared-rate \
            2>err$i &
        pids="$pids $!"
    done &&
    for p in $pids; do wait $p || exit 1; done &&
    test_xlen -eq 2400 three &&
    per_sender three 800 3 &&
    never_over three 600 60 "$t0" &&
    : the bucket expires a full refill and a second after its last use: &&
    : gone already, or due within 100 + 1000 ms, never without expiry &&
    p=$(rcli --raw PTTL three:rate:) &&
    { test "$p" -eq -2 || { test "$p" -gt 0 && test "$p" -le 1100; }; } &&
    ! grep -q . err1 err2 err3
'

test_expect_success 'three senders, one after another, share one bucket: burst 10 in all' '
    : at 1/h no token comes back during the test: with a bucket per &&
    : sender each would send 10 &&
    t0=$(redis_ms) &&
    for i in 1 2 3; do
        events 10 | sed "s/^{/{\"s\":$i,/" |
            logpipe-send -s seq3 --rate 1/h --burst 10 --shared-rate \
                --on-limit reject 2>err$i && rc=0 || rc=$?
        echo "$rc" >>rcs
    done &&
    printf "0\n65\n65\n" >want && test_cmp want rcs &&
    test_xlen -eq 10 seq3 &&
    test "$(rcli --raw XRANGE seq3 - + | grep -c "\"s\":1,")" -eq 10 &&
    grep_q "10 events over --rate rejected" err2 &&
    grep_q "10 events over --rate rejected" err3 &&
    : its expiry: a full refill and a second, 10 h + 1 s, from its last &&
    : use, which came after t0: at most t2 - t0 ms of it gone by t2 &&
    p=$(rcli --raw PTTL seq3:rate:) && t2=$(redis_ms) &&
    test "$p" -le 36001000 && test "$p" -ge $((36001000 - (t2 - t0)))
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
    # not have written every line before the signal. At 1/h the sender
    # blocks after its burst of 5 for 12 minutes a token: the signal comes
    # while it waits, however slow the machine
    events 300 >in300
    logpipe-send -s stop --rate 1/h --burst 5 <in300 2>err &
    pid=$!
    wait_for 60 test_xlen -ge 5 stop &&
    test_xlen -eq 5 stop &&
    kill -TERM $pid &&
    wait $pid &&
    test_xlen -eq 300 stop &&
    grep_q "^logpipe-send: 295 events were sent past --rate when stopped" err
'

test_expect_success '--shared-rate without Redis permission: limits alone' '
    # every key send writes but the buckets (alone:rate:*)
    rcli ACL SETUSER norate on ">pw" resetkeys "~alone" "~alone:producers" \
        "~alone:send-hold" "~alone:dlq" "~alone:dlq:send-hold" "+@all" \
        >/dev/null &&
    events 20 | LOGPIPE_REDIS_PASSWORD=pw expect_exit 65 logpipe-send \
        -r redis://norate@127.0.0.1:$REDIS_PORT/0 -s alone --rate 1/h \
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
