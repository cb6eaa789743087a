#!/bin/sh
# t0200-drain.sh -- logpipe-drain: files, layout, DLQ, sinks, options
. "$(dirname "$0")/lib.sh"
start_redis

today=$(date -u +%Y-%m-%d)

# outside: every path in the test dir but the jail and the harness's own
# files (an escape from jail/out by "../" would land here)
outside() {
    find "$TMP" \( -path "$TMP/jail" -o -path "$TMP/redis" -o -path "$TMP/.out" \
        -o -path "$TMP/before" -o -path "$TMP/after" -o -path "$TMP/err" \) \
        -prune -o -print | sort
}

# dlq_errors: the error field of every DLQ entry
dlq_errors() {
    rcli --raw XRANGE logs:dlq - + | awk 'f { print; f = 0 } $0 == "error" { f = 1 }'
}

test_expect_success 'events land in {service}/<day>.jsonl with _id first' '
    cat >in <<-\EOF &&
	{"timestamp":"2026-11-20T23:59:59.999Z","service":"api","msg":"a"}
	{"timestamp":"2026-11-21T00:00:00Z","service":"api","msg":"b"}
	{"timestamp":1763683200,"service":"db","n":1.50}
	{"service":"web","msg":"no time"}
	{"timestamp":"2026-11-21T10:00:00+05:00","msg":"no service"}
	{}
	EOF
    logpipe-send --max-age 0 <in &&
    rcli --raw XRANGE logs:stream - + | grep -E "^[0-9]+-[0-9]+$" >ids &&
    logpipe-drain --once -d out 2>err &&
    test ! -s err &&
    printf "{\"_id\":\"%s\",\"timestamp\":\"2026-11-20T23:59:59.999Z\",\"service\":\"api\",\"msg\":\"a\"}\n" $(sed -n 1p ids) >want.api1 &&
    printf "{\"_id\":\"%s\",\"timestamp\":\"2026-11-21T00:00:00Z\",\"service\":\"api\",\"msg\":\"b\"}\n" $(sed -n 2p ids) >want.api2 &&
    test_cmp want.api1 out/api/2026-11-20.jsonl &&
    test_cmp want.api2 out/api/2026-11-21.jsonl &&
    printf "{\"_id\":\"%s\",\"timestamp\":1763683200,\"service\":\"db\",\"n\":1.50}\n" $(sed -n 3p ids) >want.db &&
    test_cmp want.db out/db/2025-11-21.jsonl &&
    grep_q "\"msg\":\"no time\"" out/web/$today.jsonl &&
    grep_q "\"msg\":\"no service\"" out/_none/2026-11-21.jsonl &&
    printf "{\"_id\":\"%s\"}\n" $(sed -n 6p ids) >want.empty &&
    test_cmp want.empty out/_none/$today.jsonl
'

test_expect_success 'the group is created at the start of the stream' '
    rcli --raw XINFO GROUPS logs:stream >groups &&
    grep_q "^logpipe$" groups &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0
'

test_expect_success 'a second run archives only what is new' '
    echo "{\"service\":\"api\",\"msg\":\"c\"}" | logpipe-send &&
    logpipe-drain --once -d out &&
    test "$(cat out/api/$today.jsonl | wc -l)" -eq 1 &&
    test "$(find out -name "*.jsonl" -exec cat {} + | wc -l)" -eq 7
'

test_expect_success 'files are 0640, directories 0750, under the umask' '
    test "$(stat -c %a out/api)" = 750 &&
    test "$(stat -c %a out/api/$today.jsonl)" = 640 &&
    echo "{\"service\":\"umask\"}" | logpipe-send &&
    (umask 077 && logpipe-drain --once -d out) &&
    test "$(stat -c %a out/umask)" = 700 &&
    test "$(stat -c %a out/umask/$today.jsonl)" = 600
'

test_expect_success 'unsafe layout values go to the DLQ as unsafe-path, nothing outside --dir' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    mkdir -p jail &&
    for s in "../escape" "/etc" "a/b" ".hidden" "-dash" "" "x y" \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; do
        rcli XADD logs:stream "*" data "{\"service\":\"$s\"}" >/dev/null
    done &&
    rcli XADD logs:stream "*" data "{\"service\":true}" >/dev/null &&
    rcli XADD logs:stream "*" data "{\"service\":1.5}" >/dev/null &&
    rcli XADD logs:stream "*" data "{\"service\":-3}" >/dev/null &&
    rcli XADD logs:stream "*" data "{\"service\":42}" >/dev/null &&
    rcli XADD logs:stream "*" data "{\"service\":null}" >/dev/null &&
    rcli XADD logs:stream "*" data "{\"service\":\"\\u002e\\u002e\"}" >/dev/null &&
    outside >before &&
    logpipe-drain --once -d jail/out 2>err &&
    outside >after &&
    test_cmp before after &&
    test "$(rcli XLEN logs:dlq)" -eq 12 &&
    test "$(dlq_errors | sort -u)" = unsafe-path &&
    grep_q "not a safe name" err &&
    find jail -type f ! -path "jail/out/.logpipe-*.lock" | sort >files &&
    printf "jail/out/42/%s.jsonl\njail/out/_none/%s.jsonl\n" $today $today >want &&
    test_cmp want files &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0
'

test_expect_success 'bad JSON goes to the DLQ with its reason, all fields set' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rcli XADD logs:stream "*" data "{\"a\":" >/dev/null &&
    rcli XADD logs:stream "*" data "[1]" >/dev/null &&
    id=$(rcli XADD logs:stream "*" data "{\"a\":NaN}") &&
    logpipe-drain --once -d out -c me 2>err &&
    grep_q "entry $id to the DLQ: invalid-json: unexpected .N. at byte 6" err &&
    dlq_errors >errs &&
    printf "invalid-json\nnot-object\ninvalid-json\n" >want &&
    test_cmp want errs &&
    rcli --raw XRANGE logs:dlq - + | tail -n 18 >last &&
    printf "data\n{\"a\":NaN}\nerror\ninvalid-json\ndetail\nunexpected '\''N'\'' at byte 6\nstage\ndrain\nsource_stream\nlogs:stream\nsource_id\n%s\ndeliveries\n1\nconsumer\nme\nfailed_at\n" "$id" >want &&
    head -n 17 last >last19 &&
    test_cmp want last19 &&
    tail -n 1 last | grep -qE "^[0-9]{13}$" &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0
'

test_expect_success 'a DLQ that cannot take entries: exit 78, the entry stays pending' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rcli SET notastream x >/dev/null &&
    id=$(rcli XADD logs:stream "*" data "{bad") &&
    expect_exit 78 logpipe-drain --once -d out --dlq notastream 2>err &&
    grep_q "moving $id to the DLQ notastream failed: WRONGTYPE" err &&
    ! grep -q "script" err &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 1 &&
    logpipe-drain --once -d out 2>err &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 1
'

test_expect_success 'an entry without the data field becomes the object of its pairs' '
    rcli DEL logs:stream >/dev/null &&
    id=$(rcli XADD logs:stream "*" service pairs msg "say \"hi\"" n 5) &&
    logpipe-drain --once -d out &&
    printf "{\"_id\":\"%s\",\"service\":\"pairs\",\"msg\":\"say \\\\\"hi\\\\\"\",\"n\":\"5\"}\n" "$id" >want &&
    test_cmp want out/pairs/$today.jsonl
'

test_expect_success '--field takes the event from another field' '
    rcli DEL logs:stream >/dev/null &&
    rcli XADD logs:stream "*" payload "{\"service\":\"viafield\"}" >/dev/null &&
    logpipe-drain --once -d out --field payload &&
    grep_q "\"service\":\"viafield\"" out/viafield/$today.jsonl
'

test_expect_success '--layout with other fields and conversions' '
    rcli DEL logs:stream >/dev/null &&
    echo "{\"timestamp\":\"2026-03-04T05:06:07Z\",\"app\":\"shop\",\"level\":\"warn\"}" |
        logpipe-send --max-age 0 &&
    logpipe-drain --once -d lay --layout "{app}/%Y/{level}-%F-%H.jsonl" &&
    test -s lay/shop/2026/warn-2026-03-04-05.jsonl
'

test_expect_success 'a bad --layout or --where is a configuration error (78)' '
    expect_exit 78 logpipe-drain --once -d out --layout "../{service}/%F.jsonl" 2>err &&
    grep_q "must be a relative path\|not allowed\|may not start" err &&
    expect_exit 78 logpipe-drain --once -d out --layout "{service}.jsonl" 2>err &&
    grep_q "must hold the day" err &&
    expect_exit 78 logpipe-drain --once -d out --layout "/abs/%F.jsonl" 2>err &&
    expect_exit 78 logpipe-drain --once -d out --where ".a ==" 2>err &&
    grep_q "does not compile" err
'

test_expect_success '--where keeps matching events, acknowledges the others' '
    rcli DEL logs:stream >/dev/null &&
    printf "{\"service\":\"w\",\"level\":\"error\"}\n{\"service\":\"w\",\"level\":\"info\"}\n" | logpipe-send &&
    logpipe-drain --once -d wh --where ".level == \"error\"" &&
    test "$(wc -l <wh/w/$today.jsonl)" -eq 1 &&
    grep_q error wh/w/$today.jsonl &&
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0
'

test_expect_success '--stdout writes archive lines to stdout' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 10 >in &&
    logpipe-send <in &&
    logpipe-drain --once --stdout >so &&
    test "$(wc -l <so)" -eq 10 &&
    sed "s/^{\"_id\":\"[0-9-]*\",/{/" so >so2 &&
    test_cmp in so2
'

test_expect_success '--stdout into a closed pipe ends quietly, nothing acknowledged' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 3000 >in &&
    logpipe-send <in &&
    logpipe-drain --once --stdout -n 1000 2>err | head -n 1 >/dev/null &&
    test ! -s err &&
    logpipe-drain --once --stdout >rest &&
    test "$(wc -l <rest)" -ge 2000
'

test_expect_success 'a symlink planted in the tree is refused' '
    rcli DEL logs:stream logs:dlq >/dev/null &&
    mkdir -p sl/out outside &&
    ln -s ../../outside sl/out/evil &&
    echo "{\"service\":\"evil\"}" | logpipe-send &&
    logpipe-drain --once -d sl/out 2>err &&
    test "$(find outside -type f | wc -l)" -eq 0 &&
    test "$(rcli XLEN logs:dlq)" -eq 1 &&
    grep_q "symlink" err
'

test_expect_success 'a partial last line left by a crash is cut before appending' '
    rcli DEL logs:stream >/dev/null &&
    mkdir -p pl/api &&
    printf "{\"_id\":\"1-1\",\"x\":1}\n{\"_id\":\"1-2\",\"x\":" >pl/api/$today.jsonl &&
    echo "{\"service\":\"api\",\"x\":3}" | logpipe-send &&
    logpipe-drain --once -d pl 2>err &&
    grep_q "partial last line" err &&
    test "$(wc -l <pl/api/$today.jsonl)" -eq 2 &&
    head -n 1 pl/api/$today.jsonl | grep -q "\"1-1\"" &&
    tail -n 1 pl/api/$today.jsonl | grep -q "\"x\":3}$"
'

test_expect_success 'Redis unreachable: exit 69 after --timeout' '
    expect_exit 69 logpipe-drain --once -r $(dead_redis) \
        --timeout 1s -d out 2>err &&
    grep_q "giving up" err
'

test_expect_success 'usage errors exit 64' '
    expect_exit 64 logpipe-drain --field "" 2>err &&
    expect_exit 64 logpipe-drain -b 1000 2>err &&
    expect_exit 64 logpipe-drain --block 0 2>err &&
    expect_exit 64 logpipe-drain --count x 2>err &&
    grep_q "^logpipe-drain: -n/--count:" err &&
    expect_exit 64 logpipe-drain extra 2>err &&
    expect_exit 64 logpipe-drain --nope 2>err
'

test_done
