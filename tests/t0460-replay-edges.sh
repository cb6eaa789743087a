#!/bin/sh
# t0460-replay-edges.sh -- logpipe-replay: the ways a run ends early, and
# the inputs t0410 leaves out (a WAL cut short, entries of other producers)
. "$(dirname "$0")/lib.sh"
start_redis

printf '{"a":1}\n{"a":2}\n{"a":3}\n' >f.jsonl
# 3 pages of XRANGE, each more than a pipe holds
awk 'BEGIN { for (k = 0; k < 3000; k++)
    printf "{\"n\":%d,\"pad\":\"%0500d\"}\n", k, 0 }' >big.jsonl

test_expect_success 'stdout cannot be written: 74, said once, after the damage' '
    printf "{\"a\":1}\nbroken\n" >bad.jsonl &&
    expect_exit 74 logpipe-replay f.jsonl bad.jsonl >/dev/full 2>err &&
    printf "%s\n" "logpipe-replay: bad.jsonl: line 2: invalid JSON: unexpected '"'"'b'"'"' at byte 1" \
        "logpipe-replay: stdout: No space left on device" >want &&
    test_cmp want err
'

test_expect_success 'a PATH missing among others: the others printed, 66' '
    expect_exit 66 logpipe-replay nosuch f.jsonl >out 2>err &&
    test_cmp f.jsonl out &&
    echo "logpipe-replay: nosuch: No such file or directory" >want &&
    test_cmp want err &&
    : 66 outranks damage, whatever comes first &&
    expect_exit 66 logpipe-replay bad.jsonl nosuch >out 2>err
'

test_expect_success 'a read error: 74, named, what came before printed' '
    expect_exit 74 logpipe-replay f.jsonl /proc/self/mem >out 2>err &&
    test_cmp f.jsonl out &&
    echo "logpipe-replay: /proc/self/mem: read: Input/output error" >want &&
    test_cmp want err
'

test_expect_success 'a bad --layout: 78, and --metrics still written' '
    expect_exit 78 logpipe-replay --layout "{x}/y" --metrics m.prom f.jsonl >out 2>err &&
    test ! -s out &&
    grep_q "^logpipe-replay: --layout: " err &&
    grep -q "^logpipe_replay_files_total 0$" m.prom
'

test_expect_success 'a WAL segment cut short: what is whole, the record named, 65' '
    printf "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" |
        logpipe-send -r $(dead_redis) --wal w 2>/dev/null &&
    seg=$(ls w/wal-*.log) &&
    full=$(stat -c %s "$seg") &&
    # three records of one size (their producer line names this run)
    # after the 8-byte header: the third starts two thirds in
    at=$((8 + 2 * (full - 8) / 3)) &&
    truncate -s $((full - 3)) "$seg" &&
    expect_exit 65 logpipe-replay --metrics w.prom w >out 2>err &&
    printf "{\"a\":1}\n{\"a\":2}\n" >want && test_cmp want out &&
    printf "%s\n" "logpipe-replay: $seg: record 3 at byte $at: damaged or cut short" \
        "logpipe-replay: 1 damaged line in 1 file" >want &&
    test_cmp want err &&
    grep -q "^logpipe_replay_lines_total{result=\"damaged\"} 1$" w.prom &&
    grep -q "^logpipe_replay_files_total 1$" w.prom
'

test_expect_success '--from-redis: Redis not there, 69 and metrics' '
    expect_exit 69 logpipe-replay --from-redis -r $(dead_redis) \
        --metrics r.prom >out 2>err &&
    test ! -s out && test "$(wc -l <err)" -eq 1 &&
    grep -q "^logpipe_replay_files_total 0$" r.prom
'

test_expect_success '--from-redis: entries of other producers, as objects of their pairs' '
    rcli XADD other "*" k v n 1 >/dev/null &&
    printf "\377" | rcli -x XADD other "*" x >/dev/null &&
    rcli XADD other "*" data "{\"ok\":1}" >/dev/null &&
    expect_exit 65 logpipe-replay --from-redis -s other --strip-id >out 2>err &&
    printf "%s\n" "{\"k\":\"v\",\"n\":\"1\"}" "{\"ok\":1}" >want &&
    test_cmp want out &&
    grep_q "^logpipe-replay: other: entry [0-9]*-0: a field or value is not valid UTF-8$" err &&
    grep_q "^logpipe-replay: 1 damaged line in 1 file$" err
'

test_expect_success '--sort with --dedup and --strip-id, damage in the merge' '
    mkdir -p s/api s/db &&
    printf "%s\n" "{\"_id\":\"2-0\",\"timestamp\":2}" "broken" \
        "{\"_id\":\"4-0\",\"timestamp\":4}" >s/api/2026-01-01.jsonl &&
    printf "%s\n" "{\"_id\":\"1-0\",\"timestamp\":1}" \
        "{\"_id\":\"2-0\",\"timestamp\":2}" "{\"_id\":\"3-0\",\"timestamp\":3}" \
        >s/db/2026-01-01.jsonl &&
    expect_exit 65 logpipe-replay --sort --dedup --strip-id s >out 2>err &&
    printf "%s\n" "{\"timestamp\":1}" "{\"timestamp\":2}" "{\"timestamp\":3}" \
        "{\"timestamp\":4}" >want &&
    test_cmp want out &&
    grep_q "^logpipe-replay: s/api/2026-01-01.jsonl: line 2: invalid JSON" err
'

test_expect_success '--from-redis: Redis gone between pages: the pages read printed, 69' '
    logpipe-send -s big <big.jsonl &&
    rm -f dead || exit 1
    { { logpipe-replay --from-redis -s big 2>err || echo $? >rc; } |
      { while [ ! -e dead ]; do sleep 0.05; done; wc -l >n; }; } &
    : the first page read, its lines wait for the reader &&
    { wait_for 20 "rcli CLIENT LIST | grep -q cmd=xrange" && ready=0 ||
      ready=1; } &&
    stop_redis && touch dead && wait &&
    test $ready -eq 0 &&
    test "$(cat rc)" -eq 69 && test "$(cat n)" -eq 1000 &&
    test "$(wc -l <err)" -eq 1 &&
    grep_q "^logpipe-replay: XRANGE: 127.0.0.1:$REDIS_PORT: connection closed by server$" err
'

test_done
