#!/bin/sh
# t0382-send-shards-follow-kill.sh -- t0171 with --shards 3 (issue 17): a
# writer appends 30,000 lines to app.log and renames it away every 5,000
# lines (app.log.1, .2, ...); logpipe-send --shards 3 --follow "app.log*"
# is SIGKILLed and restarted 12 times meanwhile (lifetimes from a seed):
# the shards hold each line exactly once, each file's lines on one shard,
# in order. The same with Redis SIGKILLed twice during it (appendfsync
# always), and with --wal while Redis is down for a while. What varies
# with the machine's speed is where the kills land, never what is checked.
. "$(dirname "$0")/lib.sh"

SEED=${FOLLOW_SEED:-3821}
N=${FOLLOW_LINES:-30000}
ROT=5000
LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# writer DIR: N lines in chunks of 200, one chunk every 20 ms, app.log
# renamed to app.log.K after every ROT lines
writer() {
    i=1 k=0
    while [ $i -le $N ]; do
        awk -v a=$i -v b=$((i + 199)) 'BEGIN { for (j = a; j <= b; j++)
            printf "{\"seq\":%d,\"msg\":\"line %d of the writer\"}\n", j, j }' \
            >>"$1/app.log"
        i=$((i + 200))
        if [ $(((i - 1) % ROT)) -eq 0 ]; then
            k=$((k + 1))
            mv "$1/app.log" "$1/app.log.$k"
        fi
        sleep 0.02
    done
    : >"$1/.done"
}

# lives: from the seed, 12 lifetimes of send (ms) before its SIGKILL
lives() {
    awk -v seed="$SEED" 'BEGIN { srand(seed)
        for (i = 0; i < 12; i++) printf "%s%d", i ? " " : "", 60 + int(rand() * 500)
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

# check STREAM: each seq 1..N once over the shards; each file's range on
# one shard, in order
check() {
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/$sh \1/p"
    done >got.sh
    cut -d" " -f2 got.sh >got
    tally "$N" got || return 1
    say "files by shard: $(awk -v rot=$ROT '{ print int(($2 - 1) / rot) ":" $1 }' got.sh | sort -u | tr "\n" " ")"
    awk -v rot=$ROT '{ f = int(($2 - 1) / rot)
        if ((f in at) && at[f] != $1) { print "file " f " on " at[f] " and " $1; bad = 1 }
        if ((f in last) && $2 < last[f]) { print "out of order in file " f ": " $2 " after " last[f]; bad = 1 }
        at[f] = $1; last[f] = $2 } END { exit bad }' got.sh
}

# round NAME EXTRA...: the writer, 12 kills, then a send to the end;
# KILL_REDIS_AT: kills (numbers) at which Redis is SIGKILLed under send
round() {
    name=$1; shift
    mkdir "$name"
    writer "$name" &
    wpid=$!
    k=0
    for ms in $(lives); do
        k=$((k + 1))
        logpipe-send --shards 3 -s "$name:stream" -F "$name/app.log*" \
            --producer "$name" --linger 5 --batch 300 "$@" \
            2>>"$name.err" &
        pid=$!
        sleep "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')"
        case " ${KILL_REDIS_AT:-} " in
        *" $k "*)
            stop_redis KILL
            sleep "${REDIS_DOWN:-0.2}"
            restart_redis ;;
        esac
        kill -KILL $pid
        wait $pid 2>/dev/null || :
    done
    wait $wpid
    test -f "$name/.done"
    logpipe-send --shards 3 -s "$name:stream" -F "$name/app.log*" \
        --producer "$name" --linger 5 --batch 300 "$@" 2>>"$name.err" &
    pid=$!
    wait_for 60 "[ \$(total $name:stream) -ge $N ]" || :
    sleep 0.3       # anything more would be a copy
    kill -TERM $pid
    wait $pid || { echo "send: exit $?" >&2; return 1; }
    check "$name:stream"
}

start_redis aof --appendonly yes --appendfsync always

test_expect_success "30,000 lines, renamed every 5,000; send --shards 3 SIGKILLed 12 times (seed $SEED): each line once, each file on one shard, in order" '
    say "lifetimes (ms): $(lives)"
    round a
'

test_expect_success "the same with Redis SIGKILLed twice under send" '
    KILL_REDIS_AT="4 9" round b
'

test_expect_success "the same with --wal and Redis down for a while" '
    KILL_REDIS_AT="3 8" REDIS_DOWN=0.8 round c --wal "$TMP/c.wal"
    grep -q "keeping events in the WAL" c.err
'

test_done
