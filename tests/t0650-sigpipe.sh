#!/bin/sh
# t0650-sigpipe.sh -- a tool whose reader went away (| head) ends as a
# filter killed by SIGPIPE does: status 141, nothing said, and its
# --metrics written all the same
. "$(dirname "$0")/lib.sh"
start_redis

test_expect_success 'rotate: 141, quietly, metrics written' '
    mkdir -p t/api &&
    for d in 2025-01-01 2025-01-02 2025-01-03; do
        echo "{\"_id\":\"1-1\",\"timestamp\":\"${d}T12:00:00Z\"}" >t/api/$d.jsonl
    done &&
    touch -d "1 hour ago" t/api/*.jsonl &&
    gone logpipe-rotate -d t --metrics r.prom &&
    test "$(cat rc)" -eq 141 &&
    test_cmp /dev/null err &&
    grep -q "^logpipe_rotate_" r.prom
'

test_expect_success 'stat: 141, quietly, metrics written' '
    gone logpipe-stat --metrics s.prom &&
    test "$(cat rc)" -eq 141 &&
    test_cmp /dev/null err &&
    grep -q "^logpipe_stat_" s.prom
'

test_expect_success 'drain --stdout: 141, quietly, metrics written' '
    gen_events 10 | logpipe-send &&
    gone logpipe-drain --once --stdout --metrics d.prom &&
    test "$(cat rc)" -eq 141 &&
    test_cmp /dev/null err &&
    grep -q "^logpipe_drain_" d.prom
'

test_done
