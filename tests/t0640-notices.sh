#!/bin/sh
# t0640-notices.sh -- what the library mends or passes over on its own (a
# partial archive line, a rotated day file, a torn or foreign WAL segment,
# an unwritable --metrics) is said by the tool, word for word, at its level
. "$(dirname "$0")/lib.sh"
start_redis

today=$(date -u +%Y-%m-%d)

test_expect_success 'drain: a partial last line is cut, and said so' '
    mkdir -p pl/api &&
    printf "{\"_id\":\"1-1\",\"x\":1}\n{\"_id\":\"1-2\",\"x\":" >pl/api/$today.jsonl &&
    echo "{\"service\":\"api\",\"x\":3}" | logpipe-send &&
    logpipe-drain --once -d pl 2>err &&
    echo "logpipe-drain: api/$today.jsonl: cutting a partial last line (17 bytes) left by an interrupted write" >want &&
    test_cmp want err
'

test_expect_success 'drain: a whole last line without its newline gets it back, and said so' '
    mkdir -p nl/api &&
    printf "{\"_id\":\"1-1\",\"x\":1}\n{\"_id\":\"1-2\",\"x\":2}" >nl/api/$today.jsonl &&
    echo "{\"service\":\"api\",\"x\":3}" | logpipe-send &&
    logpipe-drain --once -d nl 2>err &&
    echo "logpipe-drain: api/$today.jsonl: the last line lacked its newline: adding it" >want &&
    test_cmp want err &&
    test "$(wc -l <nl/api/$today.jsonl)" -eq 3
'

test_expect_success 'drain --log-format json: the cut is a warning' '
    mkdir -p pj/api &&
    printf "{\"_id\":\"1-1\",\"x\":1}\n{\"_id\":\"1-2\"," >pj/api/$today.jsonl &&
    echo "{\"service\":\"api\",\"x\":3}" | logpipe-send &&
    logpipe-drain --once -d pj --log-format json 2>err &&
    test "$(wc -l <err)" -eq 1 &&
    jq -e --arg m "api/$today.jsonl: cutting a partial last line (13 bytes) left by an interrupted write" \
        "select(.prog == \"logpipe-drain\" and .level == \"warning\" and .msg == \$m)" err >/dev/null
'

# rotated DIR [-v]: a drain that runs while its day file is renamed away;
# its stderr in DIR.err
rotated() {
    logpipe-drain -d "$1" --block 50 -c "c$1" $2 2>"$1.err" &
    dpid=$!
    echo "{\"service\":\"api\",\"x\":1}" | logpipe-send &&
    wait_for 20 test -s "$1/api/$today.jsonl" &&
    mv "$1/api/$today.jsonl" "$1/api/$today.jsonl.old" &&
    echo "{\"service\":\"api\",\"x\":2}" | logpipe-send &&
    wait_for 20 test -s "$1/api/$today.jsonl" &&
    kill $dpid && wait $dpid
}

test_expect_success 'drain -v: a day file rotated away is reopened, and said so' '
    rcli DEL logs:stream >/dev/null &&
    rotated rv -v &&
    grep -x "logpipe-drain: api/$today.jsonl was rotated: reopening" rv.err &&
    grep -q "\"x\":1" rv/api/$today.jsonl.old &&
    grep -q "\"x\":2" rv/api/$today.jsonl
'

test_expect_success 'drain without -v: the reopening is not said' '
    rcli DEL logs:stream >/dev/null &&
    rotated rq &&
    ! grep "rotated" rq.err &&
    grep -q "\"x\":2" rq/api/$today.jsonl
'

test_expect_success 'send --wal: a torn tail is cut, and said so' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 20 | logpipe-send -r $(dead_redis) \
        --wal w1 2>/dev/null &&
    seg=$(cd w1 && ls wal-*.log) &&
    size=$(stat -c %s "w1/$seg") &&
    truncate -s $((size - 7)) "w1/$seg" &&
    logpipe-send --wal w1 --flush-wal 2>err &&
    grep -x "logpipe-send: --wal w1/$seg: cutting a torn tail of [0-9]* bytes (a record cut short or damaged)" err &&
    test_xlen -eq 19
'

test_expect_success 'send --wal: a file that is not a segment is left alone, and said so' '
    mkdir -p w2 &&
    echo "not a segment" >w2/wal-0-0.log &&
    echo "{\"a\":1}" | logpipe-send --wal w2 2>err &&
    echo "logpipe-send: --wal w2/wal-0-0.log: not a logpipe WAL segment: left alone" >want1 &&
    cat want1 want1 >want &&
    test_cmp want err &&
    test "$(cat w2/wal-0-0.log)" = "not a segment"
'

test_expect_success 'drain: an unwritable --metrics is warned of once, in these words' '
    echo "{\"service\":\"api\",\"x\":4}" | logpipe-send &&
    logpipe-drain --once -d mx --metrics /nonexistent/d.prom 2>err &&
    test "$(wc -l <err)" -eq 1 &&
    grep -x "logpipe-drain: --metrics /nonexistent/d.prom.tmp.[0-9]*: No such file or directory" err
'

test_done
