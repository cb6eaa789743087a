#!/bin/sh
# t0171-send-follow-kill.sh -- issue 15's test of --follow: a writer
# appends 60,000 lines to app.log and renames it away every 12,000 lines
# (app.log.1, .2, ...); logpipe-send --follow "app.log*" is SIGKILLed and
# restarted 15 times meanwhile (lifetimes from a seed): the stream holds
# each line exactly once, in order per file. The same with Redis SIGKILLed
# twice during it (appendfsync always), and with --wal while Redis is
# down for a while. What varies with the machine's speed is where the
# kills land, never what is checked.
. "$(dirname "$0")/lib.sh"

SEED=${FOLLOW_SEED:-1515}
N=${FOLLOW_LINES:-60000}
ROT=12000
. "$TOP/tests/follow-lib.sh"

# check STREAM: each seq 1..N once; in each file's range, in order
check() {
    rcli --raw XRANGE "$1" - + | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >got
    tally "$N" got || return 1
    awk -v rot=$ROT '{ f = int(($1 - 1) / rot)
        if ((f in last) && $1 < last[f]) { print "out of order in file " f ": " $1 " after " last[f]; bad = 1 }
        last[f] = $1 } END { exit bad }' got
}

start_redis aof --appendonly yes --appendfsync always

test_expect_success "60,000 lines, renamed every 12,000; send SIGKILLed 15 times (seed $SEED): each line once, in order per file" '
    say "lifetimes (ms): $(lives 15)"
    kill_round a 15
'

test_expect_success "the same with Redis SIGKILLed twice under send" '
    KILL_REDIS_AT="5 11" kill_round b 15
'

test_expect_success "the same with --wal and Redis down for a while" '
    KILL_REDIS_AT="4 9" REDIS_DOWN=0.8 kill_round c 15 --wal "$TMP/c.wal"
    grep -q "keeping events in the WAL" c.err
'

test_done
