#!/bin/sh
# t0540-operator.sh -- what an operator meets first (issue 12 item 9): the
# default archive directory, logpipe-stat while Redis is away, the resume
# message of send when its WAL cannot be written
. "$(dirname "$0")/lib.sh"
start_redis

test_expect_success 'drain: the default ./logs is not made; exit 73 says what to do' '
    mkdir empty &&
    echo "{\"service\":\"api\"}" | logpipe-send &&
    (cd empty && expect_exit 73 logpipe-drain --once 2>../err) &&
    grep_q "^logpipe-drain: --dir ./logs (the default) does not exist: create it, or name the archive with -d DIR or LOGPIPE_DIR$" err &&
    test -z "$(ls empty)" &&
    test "$(rcli XLEN logs:stream)" -eq 1
'

test_expect_success 'drain: ./logs that exists is the default archive' '
    mkdir -p here/logs &&
    (cd here && logpipe-drain --once) &&
    test "$(cat here/logs/api/*.jsonl | wc -l)" -eq 1
'

test_expect_success 'drain: a --dir or LOGPIPE_DIR given is made, with its parents' '
    echo "{\"service\":\"db\"}" | logpipe-send -s s2 &&
    logpipe-drain --once -s s2 -d made/by/d &&
    test "$(cat made/by/d/db/*.jsonl | wc -l)" -eq 1 &&
    echo "{\"service\":\"db\"}" | logpipe-send -s s3 &&
    LOGPIPE_DIR=made/by/env logpipe-drain --once -s s3 &&
    test "$(cat made/by/env/db/*.jsonl | wc -l)" -eq 1
'

test_done
