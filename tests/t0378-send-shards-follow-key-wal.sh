#!/bin/sh
# t0378-send-shards-follow-key-wal.sh -- issue 17: --follow --shard-key
# --shards with --wal (refused, 78, before s18s). A writer appends 12,000
# lines to app.log (nine of ten of service "hot", the others of 7
# services), renamed away every 3,000; logpipe-send --shards 3
# --shard-key .service --follow "app.log*" --wal is SIGKILLed and
# restarted 10 times meanwhile (lifetimes from a seed); Redis is stopped
# under it four times for half a second (the lines go to the WAL), and
# twice send is SIGKILLed while Redis is away (the next run starts with a
# WAL of another run's records, re-sent on their shards, and reads the
# files again from the lowest of the fields and the records of each
# file's shards). The shards hold each line exactly once, each service on
# one shard, in order within a file. What varies with the speed of the
# machine is where the kills land, never what is checked.
. "$(dirname "$0")/lib.sh"

SEED=${FOLLOW_SEED:-3781}
N=${FOLLOW_LINES:-12000}
ROT=3000
LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# writer DIR: N lines in chunks of 200, one chunk every 100 ms, app.log
# renamed to app.log.K after every ROT lines
writer() {
    i=1 k=0
    while [ $i -le $N ]; do
        awk -v a=$i -v b=$((i + 199)) 'BEGIN { for (j = a; j <= b; j++)
            printf "{\"seq\":%d,\"service\":\"%s\",\"msg\":\"line %d\"}\n", j,
                j % 10 ? "hot" : "s" (j % 7), j }' \
            >>"$1/app.log"
        i=$((i + 200))
        if [ $(((i - 1) % ROT)) -eq 0 ]; then
            k=$((k + 1))
            mv "$1/app.log" "$1/app.log.$k"
        fi
        sleep 0.1
    done
    : >"$1/.done"
}

# lives: from the seed, 10 lifetimes of send (ms) before its SIGKILL
lives() {
    awk -v seed="$SEED" 'BEGIN { srand(seed)
        for (i = 0; i < 10; i++) printf "%s%d", i ? " " : "", 150 + int(rand() * 500)
        printf "\n" }'
}

# total STREAM: the events in its 3 shards
total() {
    t=0
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        t=$((t + $(rcli XLEN "$sh")))
    done
    echo "$t"
}

# check STREAM: each seq 1..N once over the shards; each service on one
# shard, in order within each file
check() {
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\),\"service\":\"\([a-z0-9]*\)\".*/$sh \1 \2/p"
    done >got.sh
    cut -d" " -f2 got.sh >got
    tally "$N" got || return 1
    awk -v rot=$ROT '{ f = int(($2 - 1) / rot); k = $3
        if ((k in at) && at[k] != $1) { print "service " k " on " at[k] " and " $1; bad = 1 }
        if (((k, f) in last) && $2 < last[k, f]) { print "out of order in file " f ": " $2 " after " last[k, f]; bad = 1 }
        at[k] = $1; last[k, f] = $2 }
        END { exit bad }' got.sh
}

# walrecs DIR: the XADD records in the WAL DIR (0: none)
walrecs() {
    cat "$1"/wal-*.log 2>/dev/null | grep -ac "^XADD" || :
}

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
# (send is started as logpipe-send itself, not a function: its pid is
# the one killed)

# round NAME: the writer, 10 kills, Redis away (stopped) at kills AWAY
# (send goes on) and AWAYKILL (send SIGKILLed while Redis is away), then
# a send to the end
round() {
    name=$1
    mkdir "$name"
    writer "$name" &
    wpid=$!
    k=0 spilled=0
    for ms in $(lives); do
        k=$((k + 1))
        logpipe-send --shards 3 --shard-key .service -s "$name:stream" \
            -F "$name/app.log*" --producer "$name" --linger 5 --batch 300 \
            --wal "$name.wal" -t 10s 2>>"$name.err" &
        pid=$!
        sleep "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')"
        case " $AWAY $AWAYKILL " in
        *" $k "*)
            stop_redis
            sleep 0.5
            w=$(walrecs "$name.wal")
            say "kill $k: Redis away 0.5 s, $w records in the WAL"
            [ "$w" -eq 0 ] || spilled=$((spilled + 1))
            case " $AWAYKILL " in
            *" $k "*)
                kill -KILL $pid
                wait $pid 2>/dev/null || :
                restart_redis
                continue ;;
            esac
            restart_redis ;;
        esac
        kill -KILL $pid
        wait $pid 2>/dev/null || :
    done
    wait $wpid
    test -f "$name/.done"
    logpipe-send --shards 3 --shard-key .service -s "$name:stream" \
        -F "$name/app.log*" --producer "$name" --linger 5 --batch 300 \
        --wal "$name.wal" -t 10s 2>>"$name.err" &
    pid=$!
    wait_for 60 "[ \$(total $name:stream) -ge $N ] && [ \$(walrecs $name.wal) -eq 0 ]" || :
    sleep 0.3       # anything more would be a copy
    kill -TERM $pid
    wait $pid || { echo "send: exit $?" >&2; return 1; }
    say "$spilled of 4 outages left records in the WAL"
    [ "$spilled" -ge 1 ] || { echo "the WAL was never used" >&2; return 1; }
    check "$name:stream"
}

start_redis aof --appendonly yes --appendfsync always

test_expect_success "--follow --shard-key --wal --shards: not refused" '
    mkdir z && echo "{\"service\":\"x\"}" >z/app.log || exit 1
    logpipe-send --shards 3 --shard-key .service -s z:stream -F "z/app.log*" \
        --wal z.wal --producer z 2>z.err &
    zpid=$!
    wait_for 10 "[ \$(total z:stream) -ge 1 ]"
    kill -TERM $zpid
    wait $zpid
'

test_expect_success "12,000 lines, send --wal SIGKILLed 10 times (seed $SEED), Redis away 4 times, twice with send killed then: each line once, each service on one shard, in order" '
    say "lifetimes (ms): $(lives)"
    AWAY="2 6" AWAYKILL="3 7" round a
'

# lines A B [SERVICE]: lines A..B, of SERVICE, else of 8 services by seq
lines() {
    awk -v a="$1" -v b="$2" -v s="${3:-}" 'BEGIN { for (j = a; j <= b; j++)
        printf "{\"seq\":%d,\"service\":\"%s\"}\n", j, s != "" ? s : "s" (j % 8) }'
}

# at_end STREAM FILE: the fields of FILE on the 3 shards of STREAM, at its
# size (the field of a file is "<pos> <ms> <offset>")
at_end() {
    sz=$(wc -c <"$2")
    n=0
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        n=$((n + $(rcli --raw HGETALL "$sh:producers" | grep -c " $sz\$")))
    done
    say "$2: $n of 3 fields at its size $sz"
    test "$n" -eq 3
}

test_expect_success "lines of one service appended while Redis is away: once the WAL is sent, every shard commits the file at its end (a stop then leaves nothing to read again)" '
    mkdir r &&
    lines 1 300 >r/app.log &&
    test "$(wc -l <r/app.log)" -eq 300 || exit 1
    logpipe-send --shards 3 --shard-key .service -s r:stream -F "r/app.log*" \
        --producer r --linger 5 --wal r.wal -t 10s 2>r.err &
    spid=$!
    wait_for 30 "[ \$(total r:stream) -ge 300 ]" || { kill $spid; cat r.err; exit 1; }
    wait_for 30 "at_end r:stream r/app.log" || { kill $spid; cat r.err; exit 1; }
    stop_redis
    lines 301 500 hot >>r/app.log
    wait_for 30 "[ \$(walrecs r.wal) -eq 200 ]" || { kill $spid; cat r.err; exit 1; }
    restart_redis
    wait_for 30 "[ \$(total r:stream) -ge 500 ]" || { kill $spid; cat r.err; exit 1; }
    wait_for 30 "at_end r:stream r/app.log" || { kill $spid; cat r.err; exit 1; }
    kill -TERM $spid
    wait $spid || { cat r.err; exit 1; }
    for sh in $("$TOP/tests/shard-names" r:stream 3); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done >got &&
    tally 500 got
'

test_done
