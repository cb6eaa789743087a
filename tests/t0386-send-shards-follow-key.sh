#!/bin/sh
# t0386-send-shards-follow-key.sh -- logpipe-send --follow --shard-key
# .service --shards 3 (issue 17): the lines of one file go to the shards
# of their services, each (file, shard) its own field (the file's producer
# in that shard's producers hash: position and offset). Every line once
# over the shards, each service on one shard and in order within a file;
# every file on several shards with a field on each; a restart after
# SIGKILL passes over, shard by shard, what each shard holds; rename
# rotation while stopped, copytruncate while running; a deleted file's
# fields forgotten on every shard (with --wal: t0378).
. "$(dirname "$0")/lib.sh"

SHARDS=3 FOLLOW_OPTS="--shard-key .service"
. "$TOP/tests/follow-lib.sh"

start_redis

# lines FILE FIRST LAST [SVC]: appends {"seq":I,"service":"sK"} for I in
# FIRST..LAST to FILE, K = I mod 5 (or the service SVC for every line)
lines() {
    awk -v a="$2" -v b="$3" -v svc="${4:-}" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"seq\":%d,\"service\":\"%s\",\"msg\":\"line %d\"}\n", i,
            svc != "" ? svc : "s" (i % 5), i }' >>"$1"
}

# got STREAM: "SHARD SEQ SERVICE" for every event, shard after shard,
# each in its shard order
got() {
    for sh in $(names "$1"); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\),\"service\":\"\([a-z0-9]*\)\".*/$sh \1 \2/p"
    done
}

# by_key STREAM: each service on one shard, in order within a file (seq /
# 1000); and says on how many shards each file is
by_key() {
    got "$1" | awk '{ k = $3; f = int($2 / 1000)
        if ((k in at) && at[k] != $1) { print "service " k " on " at[k] " and " $1; bad = 1 }
        if (((k, f) in last) && $2 < last[k, f]) { print "out of order: " $2 " after " last[k, f]; bad = 1 }
        at[k] = $1; last[k, f] = $2; on[f, $1] = 1; files[f] = 1 }
        END { for (f in files) { n = 0; for (s in at) if ((f, at[s]) in on) n++ }
            exit bad }'
}

# shards_of STREAM FILE: on how many shards the lines of file FILE (seq /
# 1000) are
shards_of() {
    got "$1" | awk -v f="$2" 'int($2 / 1000) == f { on[$1] = 1 }
        END { for (s in on) n++; print n + 0 }'
}

# once STREAM WANT: every seq of file WANT once over the shards
once() {
    got "$1" | cut -d" " -f2 | sort -n >got.seq
    sort -n "$2" >want.seq
    test_cmp want.seq got.seq
}

mkdir logs

test_expect_success 'four files: every line once, each service on one shard, each file on every shard with a field on each' '
    for f in 1 2 3 4; do lines logs/f$f.log $((f * 1000)) $((f * 1000 + 99)); done
    follow -s ks -F "logs/*.log" --producer kw
    wait_for 10 "test \$(total ks) -eq 400"
    fstop
    test $FST -eq 0
    for f in 1 2 3 4; do seq $((f * 1000)) $((f * 1000 + 99)); done >want
    once ks want
    by_key ks
    for f in 1 2 3 4; do test "$(shards_of ks $f)" -eq 3; done
    fields ks >fields.out
    test "$(wc -l <fields.out)" -eq 12
    # on each shard, each file at its size, its position the count of its
    # lines there
    for f in 1 2 3 4; do
        for sh in $(names ks); do
            n=$(got ks | awk -v s="$sh" -v f=$f "\$1 == s && int(\$2 / 1000) == f" | wc -l)
            grep -q "^$sh kw:[0-9a-f-]*	$n [0-9]* $(wc -c <logs/f$f.log)\$" fields.out ||
                { echo "file $f: no field of $n at its size in $sh"; cat fields.out; exit 1; }
        done
    done
'

test_expect_success 'a shard behind on a file: the restart reads from its offset, the others pass over what they hold' '
    off=$(wc -c <logs/f1.log)
    # lines of one service: they go to one shard
    lines logs/f1.log 1100 1119 s1
    follow -s ks -F "logs/*.log" --producer kw
    wait_for 10 "test \$(total ks) -eq 420"
    sleep 0.3
    fstop
    test $FST -eq 0
    # another shard with its field as if its last batch of the file was
    # lost (it took none of those lines: a state a SIGKILL can leave)
    a=$(got ks | awk "\$2 == 1100 { print \$1 }")
    b=$(names ks | grep -v -x -F "$a" | head -n 1)
    f=$(fields ks | awk -v s="$b" -v z="$(wc -c <logs/f1.log)" "\$1 == s && \$5 == z { print \$2 }")
    test -n "$f"
    v=$(rcli --raw HGET "$b:producers" "$f")
    rcli HSET "$b:producers" "$f" "$(echo "$v" | awk -v o="$off" "{ print \$1, \$2, o }")" >/dev/null
    lines logs/f1.log 1120 1149
    follow -s ks -F "logs/*.log" --producer kw -vv
    wait_for 10 "test \$(total ks) -eq 450"
    sleep 0.3
    fstop
    test $FST -eq 0
    grep -q "$f goes on at byte $off (3 of 3 shards with a field)" send.err
    for f in 1 2 3 4; do seq $((f * 1000)) $((f * 1000 + 99))
        case $f in 1) seq 1100 1149 ;; esac
    done >want
    once ks want
    by_key ks
'

test_expect_success 'SIGKILL under load and restart: each line once' '
    lines logs/f3.log 3100 3599
    lines logs/f4.log 4100 4599
    follow -s ks -F "logs/*.log" --producer kw --batch 20
    wait_for 10 "test \$(total ks) -ge 550"
    fstop KILL
    follow -s ks -F "logs/*.log" --producer kw
    wait_for 10 "test \$(total ks) -ge 1450"
    sleep 0.3
    fstop
    test $FST -eq 0
    for f in 1 2 3 4; do seq $((f * 1000)) $((f * 1000 + 99))
        case $f in 1) seq 1100 1149 ;; 3|4) seq $((f * 1000 + 100)) $((f * 1000 + 599)) ;; esac
    done >want
    once ks want
    by_key ks
'

test_expect_success 'rename rotation while stopped, copytruncate while running: no line twice, none lost' '
    lines logs/f2.log 2100 2119
    mv logs/f2.log logs/f2.log.1
    lines logs/f2.log.1 2120 2129
    lines logs/f5.log 5000 5039
    follow -s ks -F "logs/*.log*" --producer kw
    wait_for 10 "test \$(total ks) -eq 1520"
    : >logs/f4.log
    lines logs/f4.log 4700 4719
    wait_for 10 "test \$(total ks) -eq 1540"
    sleep 0.3
    fstop
    test $FST -eq 0
    for f in 1 2 3 4 5; do
        case $f in 5) seq 5000 5039; continue ;; esac
        seq $((f * 1000)) $((f * 1000 + 99))
        case $f in 1) seq 1100 1149 ;; 3) seq 3100 3599 ;;
        2) seq 2100 2129 ;; 4) seq 4100 4599; seq 4700 4719 ;; esac
    done >want
    once ks want
    by_key ks
'

test_expect_success 'a file deleted: its fields forgotten on every shard' '
    mkdir fg
    lines fg/a.log 1 5
    lines fg/b.log 6 9
    LOGPIPE_TEST_FOLLOW_FORGET=300 \
    follow -s fg -F "fg/*.log" --producer fgp -v
    wait_for 10 "test \$(total fg) -eq 9"
    test "$(fields fg | wc -l)" -eq 6
    rm fg/a.log
    wait_for 15 "test \$(fields fg | wc -l) -eq 3"
    fstop
    grep -q "forgot the positions of 1 file" send.err
    test "$(fields fg | grep -c "	[0-9]* [0-9]* $(wc -c <fg/b.log)\$")" -eq 3
'

test_done
