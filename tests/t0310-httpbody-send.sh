#!/bin/sh
# t0310-httpbody-send.sh -- lp_httpbody judges and stores a body's events as
# logpipe-send does its lines: the same bytes in the stream, the same words
# for the rejected ones (lp_event, the one place of send's checks)
. "$(dirname "$0")/lib.sh"
start_redis

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
old=$(date -u -d '-3 days' +%Y-%m-%dT%H:%M:%SZ)
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
# the last second of yesterday, UTC, in epoch seconds: .9995 of it is cut
# to its millisecond, never rounded into today; within --max-age 24h at
# any time of today (a fixed date here went past it at midnight)
edge=$(( $(date -u -d 'today 00:00' +%s) - 1 ))
decode() { "$TOP/tests/unit-httpbody" --decode "$@"; }

stream_data() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        awk 'f { print; f = 0; next } $0 == "data" { f = 1 }'
}

# every kind of line SPEC 2 names, and what send makes of _id and arrays
printf '\357\273\277{"timestamp":"%s","service":"ok1"}\r\n' "$now" >in.ndjson
cat >>in.ndjson <<EOF
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
  {"_id":"1-1","timestamp":"$now","service":"ok2","_id":7}  
[{"service":"e1"},{"_id":1,"service":"e2"},3,{"service":"e4","x":01}]
{"timestamp":$edge.9995,"n":1.5e300,"s":"\\u00e9\\ud83d\\ude00"}
EOF
# nested 70 deep (past --max-depth 64), brackets balanced
printf '{"deep":%s%s}\n' "$(printf '%.0s[' $(seq 70))" \
    "$(printf '%.0s]' $(seq 70))" >>in.ndjson
printf '{"a":"\377"}\n{"a":"\300\200"}\n{"a":"\355\240\200"}\n' >>in.ndjson
printf '{"timestamp":"%s","service":"ok3"}' "$now" >>in.ndjson

test_expect_success 'an NDJSON body: the bytes send stores, send'"'"'s words' '
    expect_exit 65 logpipe-send -v <in.ndjson 2>send.err &&
    stream_data >send.out &&
    test "$(wc -l <send.out)" -eq 4 &&
    sed -n "s/^logpipe-send: \\(line [0-9]*: .*\\)/\\1/p" send.err |
        sort >send.msgs &&
    test "$(wc -l <send.msgs)" -eq 19 &&
    decode ndjson <in.ndjson >http.out 2>http.err &&
    sort http.err >http.msgs &&
    test_cmp send.out http.out &&
    test_cmp send.msgs http.msgs
'

test_expect_success 'the same body gzip and deflate: the same' '
    gzip -c <in.ndjson >in.gz &&
    decode ndjson gzip <in.gz >gz.out 2>gz.err &&
    test_cmp http.out gz.out &&
    test_cmp http.err gz.err &&
    perl -MCompress::Zlib -0777 -ne "print compress(\$_)" <in.ndjson >in.zz &&
    decode ndjson deflate <in.zz >zz.out 2>zz.err &&
    test_cmp http.out zz.out &&
    test_cmp http.err zz.err
'

test_expect_success 'a JSON array of the lines'"'"' objects: each element as send judges that line' '
    rcli DEL logs:stream >/dev/null &&
    grep -a "^{" in.ndjson | grep -av -e "^{\"a\":1\$" -e trailing >objs.ndjson &&
    expect_exit 65 logpipe-send -v <objs.ndjson 2>send.err &&
    stream_data >send.out &&
    sed -n "s/^logpipe-send: line \\([0-9]*\\): \\(.*\\)/\\1 \\2/p" send.err |
        awk "{ \$1 = \$1 - 1; print }" >send.msgs &&
    { printf "[" && paste -sd, objs.ndjson && printf "]"; } >objs.json &&
    decode json <objs.json >http.out 2>http.err &&
    sed "s/^index \\([0-9]*\\): /\\1 /" http.err >http.msgs &&
    test_cmp send.out http.out &&
    test_cmp send.msgs http.msgs
'

test_done
