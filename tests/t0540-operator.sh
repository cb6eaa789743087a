#!/bin/sh
# t0540-operator.sh -- what an operator meets first (issue 12 item 9): the
# default archive directory, logpipe-stat while Redis is away, the resume
# message of send when its WAL cannot be written
. "$(dirname "$0")/lib.sh"
start_redis
# the message of a refused TCP connection names host:port
reserve_dead_port

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

# a WAL and an archive to measure
gen_events 20 | logpipe-send -r $(dead_redis) --wal wal \
    2>/dev/null
mkdir -p arch/api
gen_events 3 >arch/api/2026-01-01.jsonl
wal_bytes=$(cat wal/wal-*.log | wc -c)

test_expect_success 'stat, Redis away: the WAL and archive sizes, Redis unknown, 69' '
    expect_exit 69 logpipe-stat -r redis://127.0.0.1:$DEAD_PORT \
        --wal wal -d arch >out 2>err &&
    grep_q "^logpipe-stat: cannot connect to 127.0.0.1:$DEAD_PORT: Connection refused$" err &&
    jq -c "{length, groups, dlq, redis_error: (.redis_error | test(\"^cannot connect\")), wal, archive}" out >got &&
    echo "{\"length\":null,\"groups\":null,\"dlq\":{\"key\":\"logs:dlq\",\"length\":null},\"redis_error\":true,\"wal\":{\"dir\":\"wal\",\"bytes\":$wal_bytes,\"segments\":1},\"archive\":{\"dir\":\"arch\",\"bytes\":$(wc -c <arch/api/2026-01-01.jsonl),\"files\":1,\"journals\":0,\"journal_bytes\":0,\"oldest_journal_age_seconds\":null}}" >want &&
    test_cmp want got
'

test_expect_success 'stat --prom, Redis away: logpipe_redis_up 0, the WAL size, 69' '
    expect_exit 69 logpipe-stat -r $(dead_redis) \
        --wal wal --prom --metrics m.prom >p 2>/dev/null &&
    awk -f "$TOP/tests/promcheck.awk" p &&
    test_cmp p m.prom &&
    grep_q "^logpipe_redis_up 0$" p &&
    grep_q "^logpipe_wal_bytes{dir=\"wal\"} $wal_bytes$" p &&
    ! grep -q "^logpipe_stream_length\|^logpipe_dlq_length" p
'

test_expect_success 'stat --check, Redis away: nothing checked, said so, 69' '
    expect_exit 69 logpipe-stat -r $(dead_redis) \
        --check --max-lag 10 >/dev/null 2>err &&
    grep_q "^logpipe-stat: --check: nothing checked: Redis did not answer$" err
'

test_expect_success 'stat, Redis up: logpipe_redis_up 1' '
    logpipe-stat --prom >p &&
    grep_q "^logpipe_redis_up 1$" p &&
    grep_q "^logpipe_stream_length{stream=\"logs:stream\"} $(rcli XLEN logs:stream)$" p
'

test_expect_success 'send: a WAL that cannot be written: 74, the offset in Redis or the WAL, resumed exactly' '
    rcli DEL logs:stream >/dev/null &&
    gen_events 3000 >in &&
    # writes past 100 KiB or so fail with EFBIG: the WAL cannot keep more
    (trap "" XFSZ; ulimit -f 200 &&
     expect_exit 74 logpipe-send -r $(dead_redis) \
         --wal w2 <in 2>err) &&
    grep_q "^logpipe-send: --wal w2/wal-[0-9a-f]*-[0-9]*.log: write: File too large$" err &&
    grep_q "^logpipe-send: [0-9]* bytes of the input are in Redis or in the WAL w2; resume with: tail -c +[0-9]* | logpipe-send -r $(dead_redis) --wal w2 (fed the same input)$" err &&
    off=$(sed -n "s/.* \([0-9]*\) bytes of the input are in Redis or in the WAL.*/\1/p" err) &&
    test "$off" -gt 0 && test "$off" -lt "$(wc -c <in)" &&
    # the offset ends a line
    test "$(head -c "$off" in | tail -c 1 | od -An -c | tr -d " ")" = "\\n" &&
    logpipe-send --wal w2 --flush-wal 2>/dev/null &&
    tail -c +$((off + 1)) in | logpipe-send &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    seq 1 3000 >want &&
    test_cmp want got
'

test_done
