#!/bin/sh
# t0100-send.sh -- logpipe-send: validation, rejects, arrays, _id, --ids
. "$(dirname "$0")/lib.sh"
start_redis

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
old=$(date -u -d '-3 days' +%Y-%m-%dT%H:%M:%SZ)
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)

# stream_data: the data fields of the stream, one per line, in order
stream_data() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        awk 'f { print; f = 0; next } $0 == "data" { f = 1 }'
}

test_expect_success 'valid events are sent byte for byte, in order' '
    gen_events 500 >in &&
    logpipe-send <in 2>err &&
    test ! -s err &&
    stream_data >got &&
    test_cmp in got
'

test_expect_success '--ids prints one stream ID per event' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 1200 >in &&
    logpipe-send --ids <in >ids &&
    test "$(wc -l <ids)" -eq 1200 &&
    rcli --raw XRANGE logs:stream - + | grep -E "^[0-9]+-[0-9]+$" >ids2 &&
    test_cmp ids ids2
'

# one line per kind of bad input in SPEC 2, each with what stderr must say
cat >bad.ndjson <<EOF
{"timestamp":"$now","service":"ok1"}
{"a":NaN}
{"a":01}
{"a":"\\x"}
{"a":"tab	here"}
not json
[1,2]
"just a string"
{"a":1
{"timestamp":"$old","service":"old"}
{"timestamp":"$future","service":"future"}
{"timestamp":"yesterday","service":"badtime"}
{"timestamp":true}
{"a":1} trailing
{"timestamp":"$now","service":"ok2"}
EOF
printf '{"a":"\377"}\n' >>bad.ndjson
printf '{"a":"\300\200"}\n' >>bad.ndjson
printf '{"a":"\355\240\200"}\n' >>bad.ndjson
printf '{"timestamp":"%s","service":"ok3"}\n' "$now" >>bad.ndjson

test_expect_success 'each bad line is named with its reason (-v: all), the rest is sent' '
    rcli DEL logs:stream >/dev/null &&
    expect_exit 65 logpipe-send -v --rejects rej <bad.ndjson 2>err &&
    grep_q "^logpipe-send: line 2: invalid JSON: unexpected .N. at byte 6" err &&
    grep_q "^logpipe-send: line 3: invalid JSON: leading zero in number at byte 7" err &&
    grep_q "^logpipe-send: line 4: invalid JSON: invalid escape" err &&
    grep_q "^logpipe-send: line 5: invalid JSON: control character in string" err &&
    grep_q "^logpipe-send: line 6: invalid JSON: unexpected .o. at byte 2" err &&
    grep_q "^logpipe-send: line 7: element 1: not a JSON object" err &&
    grep_q "^logpipe-send: line 8: not a JSON object" err &&
    grep_q "^logpipe-send: line 9: invalid JSON: unterminated object at byte 7" err &&
    grep_q "^logpipe-send: line 10: event time .* is older than --max-age 24h" err &&
    grep_q "^logpipe-send: line 11: event time .* is more than --max-skew 5m ahead" err &&
    grep_q "^logpipe-send: line 12: time member is not epoch seconds or an RFC 3339" err &&
    grep_q "^logpipe-send: line 13: time member" err &&
    grep_q "^logpipe-send: line 14: invalid JSON: unexpected .t. at byte 9" err &&
    grep_q "^logpipe-send: line 16: invalid JSON: invalid UTF-8 at byte 7" err &&
    grep_q "^logpipe-send: line 17: invalid JSON: invalid UTF-8 at byte 7" err &&
    grep_q "^logpipe-send: line 18: invalid JSON: invalid UTF-8 at byte 7" err &&
    grep_q "^logpipe-send: line 7: element 2: not a JSON object" err &&
    grep_q "^logpipe-send: 17 invalid events in 19 lines" err &&
    stream_data | sed -n "s/.*\"service\":\"\\(ok[0-9]\\)\".*/\\1/p" >got &&
    printf "ok1\nok2\nok3\n" >want &&
    test_cmp want got
'

test_expect_success '--rejects holds the rejected lines verbatim' '
    sed -n "2,14p;16,18p" bad.ndjson | grep -av "^\[1,2\]" >want &&
    printf "1\n2\n" >>want &&
    LC_ALL=C sort want >want.s && LC_ALL=C sort rej >rej.s &&
    test_cmp want.s rej.s
'

test_expect_success '--ids into a closed pipe: ends as SIGPIPE would, after sending' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 3000 >in &&
    { logpipe-send --ids -b 100 <in 2>err; echo $? >rc; } | head -n 1 >first &&
    test "$(cat rc)" -eq 141 &&
    test ! -s err &&
    test "$(wc -l <first)" -eq 1 &&
    test_xlen -ge 100
'

test_expect_success 'a directory as input: exit 66, named' '
    mkdir -p adir &&
    expect_exit 66 logpipe-send adir 2>err &&
    grep_q "adir: is a directory" err
'

test_expect_success 'millisecond timestamps are named as such' '
    printf "{\"timestamp\":1795328438751}\n" >ms &&
    expect_exit 65 logpipe-send <ms 2>err &&
    grep_q "outside years 0000..9999 (milliseconds? it must be epoch seconds)" err
'

test_expect_success 'files as arguments: messages name the file' '
    printf "{\"a\":1}\nbad\n" >f1 &&
    expect_exit 65 logpipe-send f1 2>err &&
    grep_q "^logpipe-send: f1: line 2: invalid JSON" err
'

test_expect_success 'a missing input file: exit 66, the others are sent' '
    rcli DEL logs:stream >/dev/null &&
    printf "{\"a\":1}\n" >f1 &&
    expect_exit 66 logpipe-send nosuch f1 2>err &&
    grep_q "nosuch: No such file" err &&
    test "$(rcli XLEN logs:stream)" -eq 1
'

test_expect_success 'arrays are expanded, non-objects in them rejected' '
    rcli DEL logs:stream >/dev/null &&
    printf "[{\"n\":1},{\"n\":2} , {\"n\":3}]\n[]\n[{\"n\":4},5]\n" >arr &&
    expect_exit 65 logpipe-send <arr 2>err &&
    grep_q "line 3: element 2: not a JSON object" err &&
    stream_data >got &&
    printf "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n" >want &&
    test_cmp want got
'

test_expect_success '_id members are dropped, nested ones kept' '
    rcli DEL logs:stream >/dev/null &&
    cat >ids.in <<-\EOF &&
	{"_id":"x","a":1}
	{"a":1,"_id":"x"}
	{"a":1,"_id":"x","b":{"_id":2}}
	{"_id":1}
	{"\u005fid":1,"a":2}
	EOF
    logpipe-send <ids.in &&
    stream_data >got &&
    cat >want <<-\EOF &&
	{"a":1}
	{"a":1}
	{"a":1,"b":{"_id":2}}
	{}
	{"a":2}
	EOF
    test_cmp want got
'

test_expect_success 'BOM, CRLF, blank lines and surrounding blanks' '
    rcli DEL logs:stream >/dev/null &&
    printf "\357\273\277{\"a\":1}\r\n\r\n   \n\t{\"a\":2}  \n{\"a\":3}" >crlf &&
    logpipe-send <crlf 2>err &&
    test ! -s err &&
    stream_data >got &&
    printf "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" >want &&
    test_cmp want got
'

test_expect_success 'epoch-second timestamps, --max-age 0 and --max-skew 0' '
    rcli DEL logs:stream >/dev/null &&
    t=$(date +%s) &&
    printf "{\"timestamp\":%s.25}\n{\"timestamp\":1000}\n{\"timestamp\":%s}\n" \
        "$t" "$((t + 86400))" >ep &&
    expect_exit 65 logpipe-send <ep 2>err &&
    test "$(rcli XLEN logs:stream)" -eq 1 &&
    logpipe-send --max-age 0 --max-skew 0 <ep &&
    test "$(rcli XLEN logs:stream)" -eq 4
'

test_expect_success '--time-field names another member; events without it pass' '
    rcli DEL logs:stream >/dev/null &&
    printf "{\"ts\":\"1999-01-01T00:00:00Z\"}\n{\"timestamp\":\"1999-01-01T00:00:00Z\"}\n" >tf &&
    expect_exit 65 logpipe-send --time-field ts <tf 2>err &&
    grep_q "line 1: event time" err &&
    test "$(rcli XLEN logs:stream)" -eq 1
'

test_expect_success '--require rejects events missing a member' '
    rcli DEL logs:stream >/dev/null &&
    printf "{\"a\":1,\"b\":null}\n{\"a\":1}\n{\"b\":1}\n" >rq &&
    expect_exit 65 logpipe-send --require a,b <rq 2>err &&
    grep_q "line 2: required member \"b\" is missing" err &&
    grep_q "line 3: required member \"a\" is missing" err &&
    test "$(rcli XLEN logs:stream)" -eq 1
'

test_expect_success '--max-line: an overlong line is rejected whole, verbatim' '
    rcli DEL logs:stream >/dev/null &&
    awk "BEGIN { printf \"{\\\"a\\\":\\\"\"; for (i = 0; i < 300000; i++) printf \"x\"; print \"\\\"}\" }" >long1 &&
    { echo "{\"n\":1}"; cat long1; echo "{\"n\":2}"; } >long.in &&
    expect_exit 65 logpipe-send --max-line 64K --rejects rej2 <long.in 2>err &&
    grep_q "line 2: longer than --max-line (65536 bytes)" err &&
    test_cmp long1 rej2 &&
    stream_data >got &&
    printf "{\"n\":1}\n{\"n\":2}\n" >want &&
    test_cmp want got
'

test_expect_success 'nesting deeper than --max-depth is rejected' '
    rcli DEL logs:stream >/dev/null &&
    awk "BEGIN { s = \"{\\\"a\\\":\"; for (i = 0; i < 70; i++) s = s \"[\"; for (i = 0; i < 70; i++) s = s \"]\"; print s \"}\" }" >deep &&
    expect_exit 65 logpipe-send <deep 2>err &&
    grep_q "line 1: invalid JSON: nesting deeper than 64" err &&
    logpipe-send --max-depth 100 <deep &&
    test "$(rcli XLEN logs:stream)" -eq 1
'

test_expect_success '--rejects-to-dlq copies rejects to the DLQ' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    printf "{\"a\":1}\nbroken\n" >d.in &&
    expect_exit 65 logpipe-send --rejects-to-dlq <d.in 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    rcli --raw XRANGE logs:dlq - + >dlq &&
    grep_q "^broken$" dlq &&
    grep_q "^invalid-json$" dlq &&
    grep_q "^send$" dlq
'

test_expect_success 'usage errors exit 64, a bad value is named' '
    expect_exit 64 logpipe-send --bogus 2>err &&
    grep_q "Try .logpipe-send --help." err &&
    expect_exit 64 logpipe-send --batch 0 2>err &&
    grep_q "^logpipe-send: -b/--batch: .0. is out of range" err &&
    expect_exit 64 logpipe-send --linger soon 2>err &&
    grep_q "is not a duration" err &&
    expect_exit 64 logpipe-send --log-format xml 2>err &&
    expect_exit 78 logpipe-send -r redis+tls://x </dev/null 2>err &&
    grep_q "rediss://" err
'

test_expect_success '--help and --version go to stdout, exit 0' '
    logpipe-send --help >out &&
    grep_q "^usage: logpipe-send" out &&
    logpipe-send --version >out &&
    grep_q "^logpipe-send [0-9]" out
'

test_expect_success 'environment: LOGPIPE_STREAM, and flags beat it' '
    rcli DEL s1 s2 >/dev/null &&
    echo "{\"a\":1}" | LOGPIPE_STREAM=s1 logpipe-send &&
    echo "{\"a\":1}" | LOGPIPE_STREAM=s1 logpipe-send -s s2 &&
    test "$(rcli XLEN s1)" -eq 1 &&
    test "$(rcli XLEN s2)" -eq 1
'

test_done
