#!/bin/sh
# t0520-metrics.sh -- --metrics in every tool, -v batch traces, trace_id
. "$(dirname "$0")/lib.sh"
start_redis

check() {
    awk -f "$TOP/tests/promcheck.awk" "$1"
}

# value FILE SERIES: the value of one series
value() {
    awk -v s="$2" '$1 == s { print $2 }' "$1"
}

test_expect_success 'send: a valid metrics file whose counters match' '
    gen_events 2500 >in && echo broken >>in &&
    expect_exit 65 logpipe-send --metrics send.prom -b 1000 <in 2>/dev/null &&
    check send.prom &&
    test "$(value send.prom logpipe_send_lines_total)" = 2501 &&
    test "$(value send.prom "logpipe_send_events_total{result=\"sent\"}")" = 2500 &&
    test "$(value send.prom "logpipe_send_events_total{result=\"rejected\"}")" = 1 &&
    test "$(value send.prom logpipe_send_batches_total)" = 3 &&
    test "$(value send.prom logpipe_send_batch_seconds_count)" = 3 &&
    grep_q "^# TYPE logpipe_send_batch_seconds histogram$" send.prom
'

test_expect_success 'drain: entries by result, latencies, lag' '
    rcli XADD logs:stream "*" data "{\"service\":\"../x\"}" >/dev/null &&
    logpipe-drain --once -d arch --metrics drain.prom 2>/dev/null &&
    check drain.prom &&
    test "$(value drain.prom "logpipe_drain_entries_total{result=\"archived\"}")" = 2500 &&
    test "$(value drain.prom "logpipe_drain_entries_total{result=\"dlq\"}")" = 1 &&
    test "$(value drain.prom logpipe_drain_fsync_seconds_count)" -ge 3 &&
    test -n "$(value drain.prom logpipe_drain_lag_seconds)" &&
    test "$(value drain.prom logpipe_drain_trimmed_total)" -ge 2500
'

test_expect_success 'a running drain rewrites its metrics every --metrics-interval' '
    logpipe-drain -d arch --metrics live.prom --metrics-interval 200ms --block 100 &
    pid=$!
    wait_for 10 test -s live.prom &&
    gen_events 10 | logpipe-send &&
    wait_for 10 "grep -q \"result=\\\"archived\\\"} 10\$\" live.prom" &&
    kill -TERM $pid && wait $pid &&
    check live.prom &&
    test -z "$(ls live.prom.tmp.* 2>/dev/null)"
'

test_expect_success 'rotate, replay, dlq, stat write metrics too' '
    d=$(date -u -d "-2 days" +%F) && mkdir -p tree/api &&
    gen_events 100 >tree/api/$d.jsonl && touch -d "1 hour ago" tree/api/$d.jsonl &&
    logpipe-rotate -d tree --metrics rot.prom >/dev/null && check rot.prom &&
    test "$(value rot.prom "logpipe_rotate_actions_total{action=\"compress\"}")" = 1 &&
    logpipe-replay tree --metrics rep.prom >/dev/null && check rep.prom &&
    test "$(value rep.prom "logpipe_replay_lines_total{result=\"printed\"}")" = 100 &&
    logpipe-dlq list --metrics dlq.prom >/dev/null && check dlq.prom &&
    logpipe-stat --metrics stat.prom >/dev/null && check stat.prom &&
    grep_q "^logpipe_dlq_length" stat.prom
'

test_expect_success 'metrics at every exit: send 75, drain 69; 0644 under any umask' '
    gen_events 10 >in &&
    (umask 077; expect_exit 75 logpipe-send -r $(dead_redis) \
        -t 1s --metrics s75.prom <in 2>/dev/null) &&
    check s75.prom &&
    test "$(stat -c %a s75.prom)" = 644 &&
    test "$(value s75.prom logpipe_send_redis_errors_total)" -ge 1 &&
    expect_exit 69 logpipe-drain -r $(dead_redis) -t 1s \
        -d d69 --once --metrics d69.prom 2>/dev/null &&
    check d69.prom &&
    test "$(value d69.prom logpipe_drain_redis_errors_total)" -ge 1
'

test_expect_success 'rotate and replay: an unwritable --metrics is a warning, not a failure' '
    mkdir -p t2 &&
    logpipe-rotate -d t2 --metrics /nonexistent/r.prom >/dev/null 2>err &&
    grep_q "nonexistent" err &&
    logpipe-replay t2 --metrics /nonexistent/r.prom >/dev/null 2>err &&
    expect_exit 66 logpipe-rotate -d nosuchdir --metrics r66.prom 2>/dev/null &&
    check r66.prom
'

test_expect_success 'long runs: an unwritable --metrics is warned of once, the events still go' '
    { for i in 1 2 3 4 5 6; do echo "{\"n\":$i}"; sleep 0.1; done; } |
        logpipe-send -s w1 --linger 10ms --metrics /nonexistent/s.prom \
            --metrics-interval 100ms 2>err &&
    test "$(grep -c "/nonexistent/" err)" -eq 1 &&
    test_xlen -eq 6 w1 &&
    { for i in 1 2 3 4 5 6; do echo "{\"n\":$i,\"timestamp\":$(date +%s)}"; sleep 0.1; done; } |
        logpipe-agg --bucket 1m --metrics /nonexistent/a.prom \
            --metrics-interval 100ms >out 2>err &&
    test "$(grep -c "/nonexistent/" err)" -eq 1
'

test_expect_success 'a reader that goes away (| head) does not cost the metrics' '
    rcli DEL logs:dlq >/dev/null &&
    seq 3000 | sed "s/.*/XADD logs:dlq * data x&/" | rcli >/dev/null &&
    test_xlen -eq 3000 logs:dlq &&
    { logpipe-dlq list --metrics hd.prom; echo "rc=$?" >rc; } | head -n 1 >/dev/null &&
    grep -qx "rc=141" rc && check hd.prom &&
    mkdir -p big/x &&
    gen_events 3000 | awk "{ sub(/^[{]/, \"{\\\"_id\\\":\\\"\" NR \"-0\\\",\"); print }" >big/x/2026-01-01.jsonl &&
    { logpipe-replay big --metrics hr.prom; echo "rc=$?" >rc; } | head -n 1 >/dev/null &&
    grep -qx "rc=141" rc && check hr.prom &&
    rcli DEL logs:dlq >/dev/null
'

test_expect_success 'an idle drain: metrics on time whatever --block; lag 0 caught up' '
    rm -f idle.prom
    logpipe-drain -d arch --metrics idle.prom --metrics-interval 200ms --block 1h &
    pid=$!
    wait_for 10 test -s idle.prom &&
    t1=$(stat -c %y idle.prom) &&
    : written again while the drain waits in its 1 h block: within 30 s, &&
    : not within a second that a loaded machine may not give it &&
    wait_for 30 "test \"\$(stat -c %y idle.prom)\" != \"$t1\"" &&
    kill -TERM $pid && wait $pid &&
    test "$(value idle.prom logpipe_drain_lag_seconds)" = 0
'

test_expect_success 'entries that only went to the DLQ are trimmed too' '
    for i in 1 2 3; do rcli XADD dlqonly "*" data "not json" >/dev/null; done &&
    logpipe-drain -s dlqonly --once -d arch 2>/dev/null &&
    test_xlen -eq 0 dlqonly
'

test_expect_success '-v: one line per batch, with stream IDs, count and time' '
    # from a file and with a long --linger: two batches, however slowly
    # a loaded machine hands send its input (through a pipe, a pause of
    # 20 ms sent the first part alone: three batch lines)
    gen_events 1500 >ev1500 &&
    logpipe-send -v -b 1000 --linger 1h <ev1500 2>err &&
    grep -E -c "^logpipe-send: batch first=[0-9]+-[0-9]+ last=[0-9]+-[0-9]+ count=[0-9]+ dlq=0 ms=[0-9.]+$" err | grep -qx 2 &&
    logpipe-drain --once -d arch -v 2>err &&
    grep_q "^logpipe-drain: batch first=[0-9]*-[0-9]* last=[0-9]*-[0-9]* count=1000 dlq=0 ms=" err &&
    grep_q "^logpipe-drain: batch first=[0-9]*-[0-9]* last=[0-9]*-[0-9]* count=500 dlq=0 ms=" err
'

test_expect_success '-v: a batch of rejected lines only: dlq counted, no IDs' '
    printf "bad1\nbad2\n{\"a\":1}\n" |
        expect_exit 65 logpipe-send -v --rejects-to-dlq -s vdlq 2>err &&
    grep_q "^logpipe-send: batch first=[0-9]*-[0-9]* last=[0-9]*-[0-9]* count=1 dlq=2 ms=" err &&
    printf "bad1\n" | expect_exit 65 logpipe-send -v --rejects-to-dlq -s vdlq 2>err &&
    grep_q "^logpipe-send: batch count=0 dlq=1 ms=" err
'

test_expect_success '--log-format json: batch lines are JSON with typed fields' '
    gen_events 10 | logpipe-send -v --log-format json 2>err &&
    grep "\"msg\":\"batch\"" err >b &&
    jq -e "(.count | type) == \"number\" and (.first | test(\"^[0-9]+-[0-9]+\$\")) and .prog == \"logpipe-send\"" b >/dev/null
'

test_expect_success 'a trace_id passes untouched and is followed through the stages' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ) &&
    printf "{\"timestamp\":\"%s\",\"service\":\"api\",\"trace_id\":\"4bf92f35\"}\n{\"timestamp\":\"%s\",\"service\":\"../bad\",\"trace_id\":\"4bf92f35\"}\n" "$now" "$now" >t &&
    logpipe-send <t &&
    logpipe-drain --once -d tr 2>/dev/null &&
    logpipe-replay tr --where ".trace_id == \"4bf92f35\"" --strip-id >found &&
    head -n 1 t >want && test_cmp want found &&
    logpipe-dlq list --where ".event.trace_id == \"4bf92f35\"" >dl &&
    jq -e ".error == \"unsafe-path\"" dl >/dev/null
'

# a server of its own: the restart loses what it held
start_redis outage
test_expect_success 'send through an outage: errors, reconnects, WAL counted' '
    rm -f wal.prom && mkfifo fifo || exit 1
    logpipe-send --wal wal --metrics wal.prom --metrics-interval 100ms \
        -l 10ms -s logs:outage <fifo 2>err &
    pid=$!
    exec 3>fifo
    gen_events 100 >&3 &&
    wait_for 20 test_xlen -eq 100 logs:outage &&
    stop_redis &&
    gen_events 50 >&3 &&
    wait_for 20 "grep -q \"result=\\\"wal\\\"} 50\$\" wal.prom" &&
    test "$(value wal.prom logpipe_send_wal_bytes)" -gt 0 &&
    restart_redis 3>&- &&
    wait_for 20 test_xlen -eq 50 logs:outage &&
    exec 3>&- &&
    wait $pid &&
    check wal.prom &&
    test "$(value wal.prom "logpipe_send_events_total{result=\"sent\"}")" = 150 &&
    test "$(value wal.prom "logpipe_send_events_total{result=\"wal\"}")" = 50 &&
    test "$(value wal.prom logpipe_send_wal_replayed_total)" = 50 &&
    test "$(value wal.prom logpipe_send_wal_bytes)" = 0 &&
    test "$(value wal.prom logpipe_send_redis_errors_total)" -ge 1 &&
    test "$(value wal.prom logpipe_send_reconnects_total)" -ge 1
'

test_done
