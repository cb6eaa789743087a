#!/bin/sh
# t0300-roundtrip.sh -- send -> drain: every event once, byte for byte, in
# the file its service and day say
. "$(dirname "$0")/lib.sh"
start_redis

# three days ending now, five services, nested members, non-ASCII text
t0=$(( $(date +%s) - 2 * 86400 ))
awk -v n=30000 -v t0="$t0" '
BEGIN {
    split("api auth billing search mail", s, " ")
    for (i = 1; i <= n; i++) {
        t = t0 + int(i * 2 * 86400 / n)
        printf "{\"timestamp\":\"%s.%03dZ\",\"service\":\"%s\",\"seq\":%d," \
               "\"user\":{\"id\":%d,\"tags\":[\"a\",\"b\"]},\"msg\":\"h\303\251llo \342\202\254 %d\\t\\u2028\",\"n\":1.50e3}\n",
            strftime("%Y-%m-%dT%H:%M:%S", t, 1), i % 1000, s[i % 5 + 1], i,
            i % 1000, i
    }
}' >in

test_expect_success 'send then drain: every event exactly once, byte for byte' '
    logpipe-send --max-age 3d --ids <in >sent.ids &&
    logpipe-drain --once -d arch &&
    archive_events arch >got &&
    LC_ALL=C sort in >want &&
    test_cmp want got
'

test_expect_success 'each event is in the file of its service and day' '
    find arch -name "*.jsonl" | while read -r f; do
        svc=$(basename "$(dirname "$f")")
        day=$(basename "$f" .jsonl)
        if grep -v "\"timestamp\":\"$day" "$f" | grep -q .; then
            echo "wrong day in $f"; exit 1
        fi
        if grep -v "\"service\":\"$svc\"" "$f" | grep -q .; then
            echo "wrong service in $f"; exit 1
        fi
    done &&
    # one file per service and day of the input (15, or 11 to 14 just
    # after midnight, when today has had a few events yet)
    sed "s/^{\"timestamp\":\"\([0-9-]*\)T.*\"service\":\"\([a-z]*\)\".*/\2 \1/" in |
        sort -u | wc -l >pairs &&
    test "$(find arch -name "*.jsonl" | wc -l)" -eq "$(cat pairs)" &&
    test "$(cat pairs)" -ge 10
'

test_expect_success 'the _id of each line is its stream entry ID' '
    sort sent.ids >ids &&
    find arch -name "*.jsonl" -exec cat {} + |
        sed -n "s/^{\"_id\":\"\([0-9]*-[0-9]*\)\",.*/\1/p" | sort >lineids &&
    test_cmp ids lineids
'

test_expect_success 'nothing is left pending, and acknowledged entries are trimmed' '
    test "$(rcli XPENDING logs:stream logpipe | head -1)" -eq 0 &&
    rcli --raw XINFO GROUPS logs:stream >info &&
    grep_q "^$(tail -n 1 sent.ids)$" info &&
    test_xlen -eq 0
'

test_expect_success 'two drains in one group share the work, each event once' '
    rcli DEL logs:stream >/dev/null &&
    logpipe-send --max-age 3d <in || exit 1
    logpipe-drain --once -d two -c one -n 100 &
    p1=$!
    logpipe-drain --once -d two -c two -n 100 &
    p2=$!
    wait $p1 && wait $p2 &&
    archive_events two >got &&
    test_cmp want got
'

test_done
