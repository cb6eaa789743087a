#!/bin/sh
# t0550-dlq-output.sh -- logpipe-dlq's exact bytes: stdout, stderr and
# status of each command over entries of fixed IDs, from send, from drain
# and hostile; a reader gone (141) and a full stdout (74)
. "$(dirname "$0")/lib.sh"
start_redis

fill() {
    rcli DEL logs:dlq logs:stream >/dev/null &&
    rcli XADD logs:dlq 1000-1 data "{\"a\":1} " error invalid-json \
        detail "bad x" stage drain source_stream logs:stream \
        source_id 5-0 deliveries 3 consumer host1 \
        failed_at 1700000000000 >/dev/null &&
    rcli XADD logs:dlq 1000-2 data "not json" error too-old detail old \
        stage send source_stream logs:stream source_id "" deliveries 0 \
        consumer h failed_at 1700000000001 >/dev/null &&
    printf "a\nb" |
        rcli -x XADD logs:dlq 1000-3 error invalid-json stage send data \
        >/dev/null &&
    rcli XADD logs:dlq 1000-4 error x stage drain >/dev/null &&
    rcli XADD logs:dlq 1000-5 data "{\"cut\":" error too-long stage drain \
        truncated 99999 >/dev/null
}

test_expect_success 'list: every field, in order, event or data' '
    fill &&
    logpipe-dlq list >out 2>err &&
    cat >want <<-\EOT &&
	{"id":"1000-1","event":{"a":1},"error":"invalid-json","detail":"bad x","stage":"drain","source_stream":"logs:stream","source_id":"5-0","deliveries":3,"consumer":"host1","failed_at":"2023-11-14T22:13:20.000Z"}
	{"id":"1000-2","data":"not json","error":"too-old","detail":"old","stage":"send","source_stream":"logs:stream","source_id":"","deliveries":0,"consumer":"h","failed_at":"2023-11-14T22:13:20.001Z"}
	{"id":"1000-3","error":"invalid-json","stage":"send","data":"a\nb"}
	{"id":"1000-4","error":"x","stage":"drain"}
	{"id":"1000-5","data":"{\"cut\":","error":"too-long","stage":"drain","truncated":"99999"}
	EOT
	test_cmp want out &&
	test_cmp /dev/null err
'

test_expect_success 'export: the bare data; entries it cannot export named' '
    logpipe-dlq export >out 2>err &&
    printf "%s\n" "{\"a\":1} " "not json" "{\"cut\":" >want &&
    test_cmp want out &&
    cat >want <<-\EOT &&
	logpipe-dlq: entry 1000-3: its data holds a newline: not exported
	logpipe-dlq: entry 1000-4: no data field: not exported
	logpipe-dlq: 2 entries not exported
	EOT
	test_cmp want err
'

test_expect_success 'stats: the one object' '
    logpipe-dlq stats >out 2>err &&
    cat >want <<-\EOT &&
	{"key":"logs:dlq","total":5,"by_error":{"invalid-json":2,"too-old":1,"x":1,"too-long":1},"by_stage":{"drain":3,"send":2},"oldest":{"id":"1000-1","time":"1970-01-01T00:00:01.000Z"},"newest":{"id":"1000-5","time":"1970-01-01T00:00:01.000Z"}}
	EOT
	test_cmp want out && test_cmp /dev/null err &&
	rcli DEL empty >/dev/null &&
	logpipe-dlq --dlq empty stats >out &&
	echo "{\"key\":\"empty\",\"total\":0,\"by_error\":{},\"by_stage\":{}}" >want &&
	test_cmp want out
'

test_expect_success 'show: in the order named; unknown and bad IDs 65' '
    expect_exit 65 logpipe-dlq show 1000-2 1000-9 nonsense 1000-1 >out 2>err &&
    test "$(cut -c1-15 out)" = "$(printf "%s\n" "{\"id\":\"1000-2\"," "{\"id\":\"1000-1\",")" &&
    cat >want <<-\EOT &&
	logpipe-dlq: entry 1000-9 is not in logs:dlq
	logpipe-dlq: '"'"'nonsense'"'"' is not a stream entry ID (like 1700000000000-0)
	logpipe-dlq: 2 unknown IDs
	EOT
	test_cmp want err
'

test_expect_success '--where failing at run time on some entries: 65, named' '
    expect_exit 65 logpipe-dlq list --where ".data | test(\"o\")" >out 2>err &&
    test "$(cut -c1-15 out)" = "{\"id\":\"1000-2\"," &&
    cat >want <<-\EOT &&
	logpipe-dlq: entry 1000-1: --where: jq: null (null) cannot be matched, as it is not a string
	logpipe-dlq: entry 1000-4: --where: jq: null (null) cannot be matched, as it is not a string
	logpipe-dlq: --where failed at run time on 2 of 5 events: they were not selected
	EOT
	test_cmp want err &&
	expect_exit 65 logpipe-dlq -q list --where ".data | test(\"o\")" >out 2>err &&
	tail -n 1 want >want1 &&
	test_cmp want1 err
'

test_expect_success 'retry: dry run, then each entry said, with its status' '
    logpipe-dlq retry --all --dry-run >out 2>err &&
    for i in 1 2 3 4 5; do
        echo "{\"id\":\"1000-$i\",\"action\":\"retry\",\"dry_run\":true}"
    done >want &&
    test_cmp want out && test_cmp /dev/null err &&
    expect_exit 65 logpipe-dlq -v retry --all >out 2>err &&
    sed "s/\"new_id\":\"[0-9]*-[0-9]*\"/\"new_id\":N/" out >got &&
    for i in 1 2 3; do
        echo "{\"id\":\"1000-$i\",\"action\":\"retried\",\"stream\":\"logs:stream\",\"new_id\":N}"
    done >want &&
    test_cmp want got &&
    cat >want <<-\EOT &&
	logpipe-dlq: entry 1000-4: to logs:stream: ERR no data field
	logpipe-dlq: entry 1000-5: to logs:stream: ERR its data was cut from 99999 bytes (truncated): not the whole event
	logpipe-dlq: 2 entries not retried
	logpipe-dlq: 3 entries retried, 0 gone already
	EOT
	test_cmp want err &&
	rcli --raw XRANGE logs:stream - + | grep -v "^[0-9]*-[0-9]*$" >got &&
	printf "%s\n" data "{\"a\":1} " data "not json" data a b >want &&
	test_cmp want got &&
	logpipe-dlq -v retry 1000-1 1000-2 >out 2>err &&
	test_cmp /dev/null out &&
	cat >want <<-\EOT &&
	logpipe-dlq: entry 1000-1 is not in logs:dlq (done already)
	logpipe-dlq: entry 1000-2 is not in logs:dlq (done already)
	logpipe-dlq: 0 entries retried, 2 gone already
	EOT
	test_cmp want err
'

test_expect_success 'purge: dry run, --older-than, by ID' '
    logpipe-dlq -v purge --older-than 1d --dry-run >out 2>err &&
    printf "%s\n" "{\"id\":\"1000-4\",\"action\":\"purge\",\"dry_run\":true}" \
        "{\"id\":\"1000-5\",\"action\":\"purge\",\"dry_run\":true}" >want &&
    test_cmp want out &&
    echo "logpipe-dlq: 2 entries purged (dry run), 0 gone already" >want &&
    test_cmp want err &&
    logpipe-dlq -v purge 1000-4 1000-4 --metrics p.prom >out 2>err &&
    echo "{\"id\":\"1000-4\",\"action\":\"purged\"}" >want &&
    test_cmp want out &&
    printf "%s\n" "logpipe-dlq: entry 1000-4 is not in logs:dlq (done already)" \
        "logpipe-dlq: 1 entries purged, 1 gone already" >want &&
    test_cmp want err &&
    grep -qx "logpipe_dlq_entries_total{command=\"purge\"} 1" p.prom &&
    grep -qx "logpipe_dlq_missing_total{command=\"purge\"} 1" p.prom &&
    test_xlen -eq 1 logs:dlq
'

test_expect_success 'a full stdout: 74, said; a reader gone: 141, quietly' '
    fill &&
    expect_exit 74 logpipe-dlq list >/dev/full 2>err &&
    echo "logpipe-dlq: stdout: No space left on device" >want &&
    test_cmp want err &&
    gone logpipe-dlq --metrics m.prom list &&
    test "$(cat rc)" -eq 141 &&
    test_cmp /dev/null err &&
    grep -qx "logpipe_dlq_missing_total{command=\"list\"} 0" m.prom
'

test_expect_success 'Redis not there: 69; the metrics written all the same' '
    expect_exit 69 logpipe-dlq -r $(dead_redis) --metrics n.prom \
        list >out 2>err &&
    test_cmp /dev/null out &&
    test "$(wc -l <err)" -eq 1 &&
    grep -qx "logpipe_dlq_entries_total{command=\"list\"} 0" n.prom
'

test_done
