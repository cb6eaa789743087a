#!/bin/sh
# t0387-send-shards-follow-key-kill.sh -- t0382 with --shard-key .service
# (issue 17): a writer appends 30,000 lines to app.log, nine of ten of
# service "hot", the others of 7 services (the shards of those lag behind
# the hot one's, and a restart reads lines the hot shard passes over), and
# renames it away every 5,000 lines; logpipe-send --shards 3 --shard-key
# .service --follow "app.log*" is SIGKILLed and restarted 12 times
# meanwhile (lifetimes from a seed): the shards hold each line exactly
# once, each service on one shard, in order within each file, the lines
# of every file on several shards. The same with Redis SIGKILLed twice
# during it (appendfsync always). What varies with the speed of the
# machine is where the kills land, never what is checked.
. "$(dirname "$0")/lib.sh"

SEED=${FOLLOW_SEED:-3871}
N=${FOLLOW_LINES:-30000}
ROT=5000
SHARDS=3
# nine lines of ten of service hot, the others of 7 services
LINE='"{\"seq\":%d,\"service\":\"%s\",\"msg\":\"line %d\"}\n", j,
                j % 10 ? "hot" : "s" (j % 7), j'
. "$TOP/tests/follow-lib.sh"

# check STREAM: each seq 1..N once over the shards; each service on one
# shard, in order within each file; every file on more than one shard
check() {
    for sh in $("$TOP/tests/shard-names" "$1" 3); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\),\"service\":\"\([a-z0-9]*\)\".*/$sh \1 \2/p"
    done >got.sh
    cut -d" " -f2 got.sh >got
    tally "$N" got || return 1
    say "services by shard: $(awk '{ print $3 ":" $1 }' got.sh | sort -u | tr "\n" " ")"
    awk -v rot=$ROT '{ f = int(($2 - 1) / rot); k = $3
        if ((k in at) && at[k] != $1) { print "service " k " on " at[k] " and " $1; bad = 1 }
        if (((k, f) in last) && $2 < last[k, f]) { print "out of order in file " f ": " $2 " after " last[k, f]; bad = 1 }
        at[k] = $1; last[k, f] = $2; if (!((f, $1) in on)) { on[f, $1] = 1; n[f]++ } }
        END { for (f in n) if (n[f] < 2) { print "file " f " on one shard"; bad = 1 }
            exit bad }' got.sh
}

start_redis aof --appendonly yes --appendfsync always

test_expect_success "30,000 lines of 8 services, renamed every 5,000; send --shards 3 --shard-key .service SIGKILLed 12 times (seed $SEED): each line once, each service on one shard, in order" '
    say "lifetimes (ms): $(lives 12)"
    kill_round a 12 --shards 3 --shard-key .service
'

test_expect_success "the same with Redis SIGKILLed twice under send" '
    KILL_REDIS_AT="4 9" kill_round b 12 --shards 3 --shard-key .service
'

test_done
