#!/bin/sh
# t0357-drain-shards-sinks.sh -- a sharded stream's drain: a poison entry
# into its shard's DLQ, --stdout's whole lines from every shard, --metrics
# merged into one file, --exec per shard
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"
start_redis

"$TOP/tests/shard-names" logs:stream 4 >names
"$TOP/tests/shard-names" logs:dlq 4 >dlqs

# fill FIRST LAST [PAD]: events FIRST..LAST, event s on shard (s-1) % 4,
# PAD bytes of padding in each
fill() {
    shards_spread "$1" "$2" 3 "${3:-0}" >cmds &&
    rcli <cmds >fill.out &&
    ! grep -q ERR fill.out &&
    rcli SET logs:stream:shards 4 >/dev/null
}

test_expect_success 'a poison entry on shard 2 goes to shard 2 DLQ after --max-deliveries' '
    fill 1 40 &&
    rcli XADD "$(sed -n 3p names)" "*" data "{\"service\":\"s0\",\"seq\":41,\"POISON\":1}" >/dev/null &&
    crashes=0 || exit 1
    while LOGPIPE_TEST_CRASH=on-data:POISON logpipe-drain --once -d out \
            --max-deliveries 3 2>>err; [ $? -eq 70 ]; do
        crashes=$((crashes + 1))
        [ $crashes -lt 10 ] || break
    done
    test "$crashes" -eq 3 &&
    grep_q "shard 2 (logs:stream:{.*}, pid [0-9]*): killed by signal 9" err &&
    test "$(rcli XLEN "$(sed -n 3p dlqs)")" -eq 1 &&
    for i in 1 2 4; do
        test "$(rcli EXISTS "$(sed -n ${i}p dlqs)")" -eq 0 || exit 1
    done &&
    test "$(rcli EXISTS logs:dlq)" -eq 0 &&
    rcli --raw XRANGE "$(sed -n 3p dlqs)" - + >dlq &&
    grep_q "^max-deliveries$" dlq &&
    grep -A1 "^source_stream$" dlq | tail -n 1 >src &&
    sed -n 3p names >want &&
    test_cmp want src &&
    tree_lines out | seqs >got &&
    seq 1 40 >want &&
    test_cmp want got
'

test_expect_success '--stdout: whole lines from every shard, every event once' '
    rcli DEL $(cat names) >/dev/null &&
    fill 1 8000 3000 &&
    logpipe-drain --once --stdout -n 500 | cat >so 2>err &&
    test "$(wc -l <so)" -eq 8000 &&
    ! grep -a -v -E "^\{\"_id\":\"[0-3]-[0-9]+-[0-9]+\",\"service\":\"s[0-2]\",\"seq\":[0-9]+,\"pad\":\"x+\"\}$" so &&
    awk -F "\"pad\":\"" "length(\$2) != 3002 { exit 1 }" so &&
    seqs so >got &&
    seq 1 8000 >want &&
    test_cmp want got
'

test_expect_success '--stdout --sql: one transaction at a time, ids <i>-<ms>-<seq>' '
    fill 8001 8100 &&
    logpipe-drain --once --stdout --sql t -n 7 >sql &&
    test "$(grep -c "^BEGIN;$" sql)" -eq "$(grep -c "^COMMIT;$" sql)" &&
    awk "/^BEGIN;/ { if (open) exit 1; open = 1 } /^COMMIT;/ { open = 0 }" sql &&
    test "$(grep -c "^INSERT INTO t .* VALUES (.[0-3]-[0-9]*-[0-9]*.," sql)" -eq 100
'

test_expect_success '--metrics: one file, each series with its shard, the parts gone' '
    fill 9001 9040 &&
    logpipe-drain --once -d m --metrics m.prom &&
    awk -f "$TOP/tests/promcheck.awk" m.prom &&
    for i in 0 1 2 3; do
        grep_q "^logpipe_drain_entries_total{shard=\"$i\",result=\"archived\"} 10$" m.prom || exit 1
    done &&
    test "$(grep -c "^# TYPE logpipe_drain_entries_total counter$" m.prom)" -eq 1 &&
    test -z "$(ls m.prom.* 2>/dev/null)"
'

test_expect_success '--exec: a command a shard, each batch acknowledged when it exits 0' '
    fill 9101 9140 &&
    logpipe-drain --once --exec "cat >>ex.\$\$" &&
    cat ex.* | seqs >got &&
    seq 9101 9140 >want &&
    test_cmp want got &&
    test "$(ls ex.* | wc -l)" -ge 4
'

test_done
