#!/bin/sh
# t0500-dlq.sh -- logpipe-dlq: dead letters from send and drain, listed,
# counted, retried, purged, exported into send again
. "$(dirname "$0")/lib.sh"
start_redis

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

test_expect_success 'dead letters from send (rejects) and from drain (poison)' '
    {
        echo "{\"timestamp\":\"$now\",\"service\":\"ok\",\"n\":1}"
        echo "not json at all"
        echo "{\"timestamp\":\"$now\",\"service\":\"../etc\",\"trace_id\":\"t-42\"}"
        echo "{\"timestamp\":\"$now\",\"service\":\"ok\",\"n\":2}"
    } >in &&
    expect_exit 65 logpipe-send --rejects-to-dlq <in 2>/dev/null &&
    rcli XADD logs:stream "*" data "{\"n\":" >/dev/null &&
    logpipe-drain --once -d arch 2>/dev/null &&
    test_xlen -eq 3 logs:dlq
'

test_expect_success 'list: one JSON object per entry, the event as JSON' '
    logpipe-dlq list >l &&
    test "$(wc -l <l)" -eq 3 &&
    jq -e -s "length == 3 and (map(.id) | all(test(\"^[0-9]+-[0-9]+\$\")))" l >/dev/null &&
    jq -e -s "map(select(.error == \"unsafe-path\"))[0].event.trace_id == \"t-42\"" l >/dev/null &&
    jq -e -s "map(select(.stage == \"send\"))[0].data == \"not json at all\"" l >/dev/null &&
    jq -e -s "map(select(.stage == \"drain\"))[0] | .deliveries == 1 and (.failed_at | test(\"Z\$\"))" l >/dev/null
'

test_expect_success 'list --where follows one event; --limit' '
    logpipe-dlq list --where ".event.trace_id == \"t-42\"" >w &&
    test "$(wc -l <w)" -eq 1 &&
    test "$(logpipe-dlq list --limit 2 | wc -l)" -eq 2
'

test_expect_success 'show IDs, and a missing ID: exit 65' '
    id=$(jq -r -s ".[0].id" l) &&
    logpipe-dlq show "$id" >s &&
    test "$(jq -r .id s)" = "$id" &&
    expect_exit 65 logpipe-dlq show 1-1 2>err &&
    grep_q "entry 1-1 is not in logs:dlq" err &&
    expect_exit 65 logpipe-dlq show nonsense 2>err
'

test_expect_success 'stats: counts per error and stage, oldest and newest' '
    logpipe-dlq stats >st &&
    jq -e ".total == 3 and .by_error[\"invalid-json\"] == 2 and .by_error[\"unsafe-path\"] == 1 and .by_stage.send == 1 and .by_stage.drain == 2" st >/dev/null &&
    jq -e ".oldest.id < .newest.id or .oldest.id == .newest.id" st >/dev/null
'

test_expect_success 'retry: back to the source stream, gone from the DLQ; twice is safe' '
    id=$(jq -r -s "map(select(.error == \"unsafe-path\"))[0].id" l) &&
    logpipe-dlq retry "$id" >r &&
    jq -e ".action == \"retried\" and .stream == \"logs:stream\"" r >/dev/null &&
    newid=$(jq -r .new_id r) &&
    rcli --raw XRANGE logs:stream "$newid" "$newid" | grep -q "t-42" &&
    test_xlen -eq 2 logs:dlq &&
    logpipe-dlq retry "$id" >r2 &&
    test ! -s r2 &&
    test_xlen -eq 2 logs:dlq
'

test_expect_success 'retry --all --where, and --dry-run changes nothing' '
    logpipe-dlq retry --all --where ".stage == \"drain\"" --dry-run >d &&
    jq -e "select(.dry_run == true)" d >/dev/null &&
    test_xlen -eq 2 logs:dlq &&
    logpipe-dlq retry --all --where ".stage == \"drain\"" >r &&
    test "$(wc -l <r)" -eq 1 &&
    test_xlen -eq 1 logs:dlq
'

test_expect_success 'export: bare events, fixed and sent again' '
    rcli DEL logs:dlq >/dev/null &&
    printf "{\"a\":1,\"timestamp\":1}\n{\"b\":2,\"timestamp\":2}\n" >old &&
    expect_exit 65 logpipe-send --rejects-to-dlq <old 2>/dev/null &&
    logpipe-dlq export >ex &&
    test_cmp old ex &&
    rcli DEL logs:stream >/dev/null &&
    logpipe-send --max-age 0 <ex &&
    test_xlen -eq 2
'

test_expect_success 'purge: by ID, --older-than, --all; atomic per entry' '
    rcli DEL logs:dlq >/dev/null &&
    for i in 1 2 3 4 5; do rcli XADD logs:dlq "*" data "{}" error x stage drain >/dev/null; done &&
    first=$(rcli --raw XRANGE logs:dlq - + COUNT 1 | head -1) &&
    logpipe-dlq purge "$first" >p &&
    jq -e ".action == \"purged\"" p >/dev/null &&
    test_xlen -eq 4 logs:dlq &&
    logpipe-dlq purge --older-than 1h >p &&
    test_xlen -eq 4 logs:dlq &&
    sleep 1.1 &&
    logpipe-dlq purge --older-than 1s >p &&
    test "$(wc -l <p)" -eq 4 &&
    test_xlen -eq 0 logs:dlq &&
    rcli XADD logs:dlq "*" data "{}" >/dev/null &&
    logpipe-dlq purge --all >p &&
    test_xlen -eq 0 logs:dlq
'

test_expect_success 'a DLQ of 5000 entries is paged: list, stats, purge' '
    awk "BEGIN { for (i = 0; i < 5000; i++) printf \"XADD logs:dlq * data %c{\\\"i\\\":%d}%c error invalid-json stage drain\\n\", 39, i, 39 }" |
        rcli >/dev/null &&
    test "$(logpipe-dlq list | wc -l)" -eq 5000 &&
    test "$(logpipe-dlq stats | jq .total)" -eq 5000 &&
    logpipe-dlq purge --all --where ".event.i % 2 == 0" | wc -l | grep -qx 2500 &&
    test_xlen -eq 2500 logs:dlq
'

test_expect_success 'a run acts on the entries there when it started' '
    rcli DEL logs:dlq >/dev/null &&
    for i in 1 2 3; do
        rcli XADD logs:dlq "*" data "{\"i\":$i}" source_stream logs:dlq >/dev/null
    done &&
    # each retry adds the entry back to the DLQ itself, as a drain that
    # fails it again would: one pass, not an endless loop
    timeout 20 logpipe-dlq retry --all >r &&
    test "$(wc -l <r)" -eq 3 &&
    test_xlen -eq 3 logs:dlq &&
    timeout 20 logpipe-dlq retry --all --where ".event.i == 2" >r &&
    test "$(wc -l <r)" -eq 1
'

test_expect_success 'stats: past 255 kinds of error, the rest is "(other)"' '
    rcli DEL logs:dlq >/dev/null &&
    awk "BEGIN { for (i = 0; i < 300; i++) printf \"XADD logs:dlq * data x error e%d stage drain\\n\", i }" |
        rcli >/dev/null &&
    logpipe-dlq stats >st &&
    jq -e ".total == 300 and (.by_error | length) == 256 and .by_error[\"(other)\"] == 45 and .by_error[\"e254\"] == 1" st >/dev/null
'

test_expect_success 'a permission refused inside the retry script: 78, at once' '
    rcli DEL logs:dlq logs:stream >/dev/null &&
    for i in 1 2 3 4 5; do rcli XADD logs:dlq "*" data "{}" >/dev/null; done &&
    rcli ACL SETUSER noadd on ">pw" "~*" "+@all" "-xadd" >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw expect_exit 78 logpipe-dlq \
        -r redis://noadd@127.0.0.1:$REDIS_PORT/0 retry --all >r 2>err &&
    grep_q "stopped: Redis refuses the retry" err &&
    test "$(grep -c "^logpipe-dlq: entry" err)" -le 5 &&
    test_xlen -eq 5 logs:dlq &&
    rcli ACL SETUSER nodel on ">pw" "~*" "+@all" "-xdel" >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw expect_exit 78 logpipe-dlq \
        -r redis://nodel@127.0.0.1:$REDIS_PORT/0 purge --all >r 2>err &&
    test_xlen -eq 5 logs:dlq &&
    test_xlen -eq 0 logs:stream
'

test_expect_success 'fields named id, event, data: shown as field:NAME; first data wins' '
    rcli DEL logs:dlq >/dev/null &&
    b=$(rcli XADD logs:dlq "*" data "{\"important\":\"B\"}" error x) &&
    a=$(rcli XADD logs:dlq "*" data "{\"msg\":\"A\"}" error y id "$b" event ev data "{\"second\":1}") &&
    logpipe-dlq list --where ".error == \"y\"" >l &&
    jq -e --arg a "$a" --arg b "$b" ".id == \$a and .[\"field:id\"] == \$b and .[\"field:event\"] == \"ev\" and .[\"field:data\"] == \"{\\\"second\\\":1}\" and .event.msg == \"A\"" l >/dev/null &&
    logpipe-dlq export --where ".error == \"y\"" >x &&
    grep -qx "{\"msg\":\"A\"}" x &&
    logpipe-dlq retry "$a" >r &&
    rcli --raw XRANGE logs:stream - + | tail -n 1 | grep -qx "{\"msg\":\"A\"}"
'

test_expect_success 'hostile numbers and times stay strings; stats keeps NUL bytes apart' '
    rcli DEL logs:dlq >/dev/null &&
    rcli XADD logs:dlq "*" data "{}" deliveries 007 failed_at 999999999999999 >/dev/null &&
    logpipe-dlq list >l &&
    grep_q "\"deliveries\":\"007\"" l &&
    grep_q "\"failed_at\":\"999999999999999\"" l &&
    rcli DEL logs:dlq >/dev/null &&
    for i in 1 2; do printf "x\000y" | rcli -x XADD logs:dlq "*" data x stage s error >/dev/null; done &&
    printf "x" | rcli -x XADD logs:dlq "*" data x stage s error >/dev/null &&
    logpipe-dlq stats >st &&
    jq -e ".by_error[\"x\\u0000y\"] == 2 and .by_error.x == 1" st >/dev/null
'

test_expect_success 'an entry at the largest ID ends the walk cleanly' '
    rcli DEL logs:dlq >/dev/null &&
    rcli XADD logs:dlq 1-1 data "{}" >/dev/null &&
    rcli XADD logs:dlq 18446744073709551615-18446744073709551615 data "{}" >/dev/null &&
    logpipe-dlq list >l && test "$(wc -l <l)" -eq 2 &&
    logpipe-dlq show 18446744073709551615-18446744073709551615 >l &&
    test "$(wc -l <l)" -eq 1 &&
    logpipe-dlq purge --all >/dev/null && test_xlen -eq 0 logs:dlq &&
    rcli DEL logs:dlq >/dev/null
'

test_expect_success '--limit bounds retry and purge too' '
    for i in 1 2 3 4 5 6; do rcli XADD logs:dlq "*" data "{\"i\":$i}" >/dev/null; done &&
    logpipe-dlq retry --all --limit 3 >r &&
    test "$(wc -l <r)" -eq 3 && test_xlen -eq 3 logs:dlq &&
    logpipe-dlq purge --all --limit 2 >r &&
    test "$(wc -l <r)" -eq 2 && test_xlen -eq 1 logs:dlq &&
    logpipe-dlq purge --all >/dev/null
'

test_expect_success 'one entry with a bad source_stream does not stop the others' '
    rcli SET notastream x >/dev/null &&
    rcli XADD logs:dlq "*" data "{\"n\":1}" source_stream notastream >/dev/null &&
    for i in 2 3 4; do rcli XADD logs:dlq "*" data "{\"n\":$i}" source_stream back >/dev/null; done &&
    expect_exit 78 logpipe-dlq retry --all >r 2>err &&
    grep_q "to notastream: WRONGTYPE" err &&
    test "$(wc -l <r)" -eq 3 && test_xlen -eq 3 back && test_xlen -eq 1 logs:dlq &&
    logpipe-dlq purge --all >/dev/null
'

test_expect_success '-- ends the options: IDs after it' '
    id=$(rcli XADD logs:dlq "*" data "{}") &&
    logpipe-dlq show -- "$id" >l && test "$(wc -l <l)" -eq 1 &&
    logpipe-dlq -- show "$id" >l && test "$(wc -l <l)" -eq 1 &&
    expect_exit 64 logpipe-dlq stats -- x 2>err &&
    logpipe-dlq purge -- "$id" >/dev/null && test_xlen -eq 0 logs:dlq
'

test_expect_success 'a DLQ key of the wrong type: 78, the command and key named' '
    rcli SET strkey x >/dev/null &&
    expect_exit 78 logpipe-dlq --dlq strkey list >out 2>err &&
    test "$(wc -l <err)" -eq 1 && test ! -s out &&
    grep_q "^logpipe-dlq: XREVRANGE strkey: WRONGTYPE " err &&
    expect_exit 78 logpipe-dlq --dlq strkey show 1-1 >out 2>err &&
    test "$(wc -l <err)" -eq 1 && test ! -s out &&
    grep_q "^logpipe-dlq: XRANGE strkey: WRONGTYPE " err
'

test_expect_success 'retry: an entry without data is named, 65; the others go on' '
    rcli DEL logs:dlq logs:stream >/dev/null &&
    bad=$(rcli XADD logs:dlq "*" error x) &&
    rcli XADD logs:dlq "*" data "{\"ok\":1}" >/dev/null &&
    expect_exit 65 logpipe-dlq retry --all >r 2>err &&
    grep -qx "logpipe-dlq: entry $bad: to logs:stream: ERR no data field" err &&
    test "$(wc -l <r)" -eq 1 && test_xlen -eq 1 logs:stream &&
    test_xlen -eq 1 logs:dlq &&
    logpipe-dlq purge --all >/dev/null && rcli DEL logs:stream >/dev/null
'

test_expect_success 'Redis stops answering a purge or a retry: 69, said' '
    rcli XADD logs:dlq "*" data "{}" >/dev/null &&
    for c in purge retry; do
        rcli CLIENT PAUSE 10000 WRITE >/dev/null &&
        { logpipe-dlq -t 500ms $c --all >r 2>err; echo $? >rc; } &&
        rcli CLIENT UNPAUSE >/dev/null &&
        test "$(cat rc)" -eq 69 &&
        grep -qx "logpipe-dlq: 127.0.0.1:$REDIS_PORT: timed out after 500ms" err &&
        test ! -s r || return 1
    done &&
    logpipe-dlq purge --all >/dev/null && test_xlen -eq 0 logs:dlq
'

test_expect_success 'usage errors exit 64' '
    expect_exit 64 logpipe-dlq 2>err &&
    expect_exit 64 logpipe-dlq frobnicate 2>err &&
    expect_exit 64 logpipe-dlq retry 2>err &&
    expect_exit 64 logpipe-dlq retry --all 1-1 2>err &&
    expect_exit 64 logpipe-dlq show 2>err &&
    expect_exit 64 logpipe-dlq list 1-1 2>err &&
    expect_exit 78 logpipe-dlq list --where ".[" 2>err
'

test_done
