#!/bin/sh
# t0366-shards-wal-docs-and-messages.sh -- what sharded sends with --wal
# say (rs3 review, issue 17; was x0395), each case its own:
# 1. the docs do not refuse --follow --shard-key --shards with --wal (78),
#    which s18s made work (t0378): send(1) --shards and --shard-key,
#    logpipe(7).
# 2. a WAL of --shards 3 after the count changed to 4: --flush-wal
#    --shards 3 exits 78 naming the way that works, --shards 4 --flush-wal
#    (it said "a run with --shards 3 sends them (--flush-wal) once Redis
#    records that count", a count Redis will not record again without a
#    drain and a second change, which forgets history); that flush sends
#    each record once (exit 0, the WAL empty, each of 50 drained once).
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

# flat PAGE: the roff source of PAGE on one line
flat() {
    tr "\n" " " <"$TOP/man/$1"
}

test_expect_success 'send(1), logpipe(7): --follow --shard-key --shards with --wal is not said to be refused' '
    flat logpipe-send.1 >send.flat &&
    flat logpipe.7 >seven.flat || exit 1
    bad=0
    for s in "field of its own (not with .Fl -wal yet: 78)" \
             "field of its own; not with .Fl -wal yet (78" ; do
        if grep -qF "$s" send.flat; then
            echo "logpipe-send.1 says: $s" >&2
            bad=1
        fi
    done
    if grep -qF ".Fl -shard-key does not go with .Fl -shards yet (exit 78)" seven.flat; then
        echo "logpipe.7 says: --follow --shard-key does not go with --shards yet (exit 78)" >&2
        bad=1
    fi
    test "$bad" -eq 0
'

start_redis aof --appendonly yes --appendfsync always

# seqs1 A B: events A..B of 5 services
seqs1() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (j = a; j <= b; j++)
        printf "{\"seq\":%d,\"service\":\"s%d\"}\n", j, j % 5 }'
}

test_expect_success 'setup: 1-10 stored over 3 shards, 11-40 in the WAL (Redis away), drained, the count changed to 4 by another producer' '
    seqs1 1 10 | logpipe-send --shards 3 --shard-key .service -s a \
        --producer p --wal w &&
    stop_redis &&
    seqs1 11 40 | logpipe-send --shards 3 --shard-key .service -s a \
        --producer p --wal w -t 1s 2>e1 &&
    test "$(cat w/wal-*.log | grep -ac "^XADD")" -eq 30 &&
    restart_redis &&
    logpipe-drain -s a --once -d outa &&
    seqs1 41 50 | logpipe-send --shards 4 --shard-key .service -s a \
        --producer q 2>e2 &&
    grep_q "changed from 3 to 4" e2
'

test_expect_success 'the refusal of --flush-wal --shards 3 names --shards 4 (78), nothing sent' '
    expect_exit 78 logpipe-send --shards 3 --shard-key .service -s a \
        --wal w --flush-wal -t 2s 2>e3 &&
    grep_q "which is a shard of the 4 Redis records: logpipe-send --shards 4 --wal w --flush-wal" e3 &&
    ! grep -q "once Redis records that count" e3 &&
    test "$(cat w/wal-*.log | grep -ac "^XADD")" -eq 30
'

# archived DIR: the seqs archived under DIR, one a line
archived() {
    find "$1" -name "*.jsonl" -type f -exec cat {} + | seqs
}

test_expect_success 'the way it names: --flush-wal --shards 4 sends each record once, also when found again' '
    mkdir copy &&
    cp w/wal-*.log copy/ &&
    logpipe-send --shards 4 --shard-key .service -s a --wal w \
        --flush-wal -t 5s 2>e4 &&
    test "$(cat w/wal-*.log 2>/dev/null | grep -ac "^XADD")" -eq 0 &&
    cp copy/wal-*.log w/ &&
    logpipe-send --shards 4 --shard-key .service -s a --wal w \
        --flush-wal -t 5s 2>e5 &&
    test "$(cat w/wal-*.log 2>/dev/null | grep -ac "^XADD")" -eq 0 &&
    logpipe-drain -s a --once -d outa &&
    archived outa >got &&
    tally 50 got
'

test_done
