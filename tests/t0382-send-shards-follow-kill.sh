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
SHARDS=3
. "$TOP/tests/follow-lib.sh"

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

start_redis aof --appendonly yes --appendfsync always

test_expect_success "30,000 lines, renamed every 5,000; send --shards 3 SIGKILLed 12 times (seed $SEED): each line once, each file on one shard, in order" '
    say "lifetimes (ms): $(lives 12)"
    kill_round a 12 --shards 3
'

test_expect_success "the same with Redis SIGKILLed twice under send" '
    KILL_REDIS_AT="4 9" kill_round b 12 --shards 3
'

test_expect_success "the same with --wal and Redis down for a while" '
    KILL_REDIS_AT="3 8" REDIS_DOWN=0.8 kill_round c 12 --shards 3 --wal "$TMP/c.wal"
    grep -q "keeping events in the WAL" c.err
'

test_done
