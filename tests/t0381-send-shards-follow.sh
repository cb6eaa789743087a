#!/bin/sh
# t0381-send-shards-follow.sh -- logpipe-send --follow with --shards N
# (issue 17): every line of a file goes to its file's shard (a hash of the
# file's identity), whose producers hash holds the file's position alone.
# Several files spread over the shards, a restart reads nothing twice,
# rename rotation while send runs and while it is stopped, copytruncate,
# a rejected line to the file's shard's DLQ with the position past it,
# a deleted file's position forgotten in its shard (--shard-key: t0386,
# with --wal: t0378).
. "$(dirname "$0")/lib.sh"

SHARDS=3
. "$TOP/tests/follow-lib.sh"

start_redis

# lines FILE FIRST LAST: appends {"seq":FIRST} .. {"seq":LAST} to FILE
lines() {
    awk -v a="$2" -v b="$3" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"seq\":%d,\"msg\":\"line %d\"}\n", i, i }' >>"$1"
}

# sseqs STREAM: the seq of every event, shard after shard, each in its
# shard's order
sseqs() {
    for sh in $(names "$1"); do
        rcli --raw XRANGE "$sh" - + | sed -n 's/.*"seq":\([0-9]*\).*/\1/p'
    done
}

# by_file STREAM: every file range (seq / 1000) in one shard, in order
by_file() {
    for sh in $(names "$1"); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/$sh \1/p"
    done | awk '{ f = int($2 / 1000)
        if ((f in at) && at[f] != $1) { print "file " f " on " at[f] " and " $1; bad = 1 }
        if ((f in last) && $2 < last[f]) { print "out of order: " $2 " after " last[f]; bad = 1 }
        at[f] = $1; last[f] = $2 } END { exit bad }'
}

mkdir logs

test_expect_success 'six files: every line once, each file on one shard, its field in that shard alone' '
    for f in 1 2 3 4 5 6; do lines logs/f$f.log $((f * 1000)) $((f * 1000 + 99)); done
    follow -s fs -F "logs/*.log" --producer fw
    wait_for 10 "test \$(total fs) -eq 600"
    fstop
    test $FST -eq 0
    sseqs fs | sort -n >got
    for f in 1 2 3 4 5 6; do seq $((f * 1000)) $((f * 1000 + 99)); done >want
    test_cmp want got
    by_file fs
    fields fs >fields.out
    say "shards used: $(cut -d" " -f1 fields.out | sort -u | tr "\n" " ")"
    test "$(wc -l <fields.out)" -eq 6
    cut -f1 fields.out | cut -d" " -f2 | sort | uniq -d >twice
    test ! -s twice
    # each file its field where its lines are, at its size
    for f in 1 2 3 4 5 6; do
        sh=$(for s in $(names fs); do
            rcli --raw XRANGE "$s" - + COUNT 1000 |
                grep -q "\"seq\":$((f * 1000))," && echo "$s"; done || :)
        grep -q "^$sh fw:[0-9a-f-]*	100 [0-9]* $(wc -c <logs/f$f.log)\$" fields.out ||
            { echo "file $f: no field in $sh"; exit 1; }
    done
'

test_expect_success 'a restart reads nothing twice and goes on' '
    lines logs/f1.log 1100 1149
    lines logs/f4.log 4100 4149
    follow -s fs -F "logs/*.log" --producer fw
    wait_for 10 "test \$(total fs) -eq 700"
    fstop
    test $FST -eq 0
    sseqs fs | sort -n >got
    for f in 1 2 3 4 5 6; do seq $((f * 1000)) $((f * 1000 + 99))
        case $f in 1|4) seq $((f * 1000 + 100)) $((f * 1000 + 149)) ;; esac
    done | sort -n >want
    test_cmp want got
    by_file fs
'

test_expect_success 'rename rotation while send runs and while it is stopped: no line twice, none lost' '
    follow -s fs -F "logs/*.log*" --producer fw
    lines logs/f2.log 2100 2199
    wait_for 10 "test \$(total fs) -eq 800"
    mv logs/f2.log logs/f2.log.1
    lines logs/f2.log.1 2200 2209
    lines logs/f2.log 7000 7049
    wait_for 10 "test \$(total fs) -eq 860"
    fstop
    lines logs/f2.log 7050 7059
    mv logs/f2.log logs/f2.log.2
    lines logs/f2.log.2 7060 7069
    lines logs/f2.log 8000 8019
    follow -s fs -F "logs/*.log*" --producer fw
    wait_for 10 "test \$(total fs) -eq 900"
    sleep 0.3
    fstop
    test $FST -eq 0
    test "$(total fs)" -eq 900
    sseqs fs | sort -n | uniq -d >dups
    test ! -s dups
    by_file fs
'

test_expect_success 'copytruncate: said, and the file read again from its start (a new identity)' '
    mkdir ct
    : >send.err
    lines ct/a.log 1000 1039
    follow -s ct -F "ct/a.log"
    wait_for 10 "test \$(total ct) -eq 40"
    : >ct/a.log
    lines ct/a.log 2000 2004
    wait_for 10 "test \$(total ct) -eq 45"
    fstop
    grep -q "ct/a.log: truncated to [0-9]* bytes (was read to [0-9]*): read again from its start\|ct/a.log: not the file it was" send.err
    sseqs ct | sort -n >got
    { seq 1000 1039; seq 2000 2004; } >want
    test_cmp want got
    by_file ct
'

test_expect_success 'a rejected line: to the DLQ of its file'"'"'s shard, the position past it, 65' '
    mkdir rj
    : >send.err
    printf "{\"seq\":1}\nnot json\n{\"seq\":2}\n" >rj/a.log
    follow -s rj -F "rj/*.log" --dlq rjd --rejects-to-dlq
    wait_for 10 "test \$(total rj) -eq 2"
    fstop
    test $FST -eq 65
    sh=$(for s in $(names rj); do [ "$(rcli XLEN "$s")" -eq 2 ] && echo "$s"; done || :)
    d=rjd:${sh#rj:}
    test "$(rcli XLEN "$d")" -eq 1
    rcli --raw XRANGE "$d" - + | grep -q "^$sh\$"
    follow -s rj -F "rj/*.log" --dlq rjd --rejects-to-dlq
    sleep 0.5
    fstop
    test $FST -eq 0
    test "$(total rj)" -eq 2
    test "$(rcli XLEN "$d")" -eq 1
'

test_expect_success 'the position of a file deleted is forgotten in its shard (HDEL)' '
    mkdir fg
    lines fg/a.log 1 5
    lines fg/b.log 6 9
    LOGPIPE_TEST_FOLLOW_FORGET=300 \
    follow -s fg -F "fg/*.log" --producer fgp -v
    wait_for 10 "test \$(total fg) -eq 9"
    test "$(fields fg | wc -l)" -eq 2
    rm fg/a.log
    wait_for 15 "test \$(fields fg | wc -l) -eq 1"
    fstop
    grep -q "forgot the positions of 1 file" send.err
    fields fg | grep -q "	4 [0-9]* $(wc -c <fg/b.log)\$"
'

test_done
