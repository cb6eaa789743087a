#!/bin/sh
# t0183-send-field-pruned-lost-reply.sh -- review of issue 15's gate
# (commit 1631928): a stdin sender's batch is stored and its reply lost;
# while the sender cannot reach Redis, another sender starts with a short
# --producer-ttl and removes the first one's field (its last batch is older
# than that). The first sender reconnects: lp_pipeline_resolve reads no
# field (0), so the batch is not "stored", and it goes again; its gate
# finds no field and opens (make_gate's may_be_gone: "removed by another
# sender's --producer-ttl"). The batch is stored twice.
#
# The sender is cut off by closing Redis's TCP port (CONFIG SET port 0; the
# test talks to Redis through its unix socket) right before the batch
# whose reply is lost, and reconnects when the port is opened again: no
# timing is involved.
#
# Expected: each event once (a field that vanished while replies were
# lost cannot tell what was stored: send must not guess "not stored"; it
# may give up saying so).
. "$(dirname "$0")/lib.sh"

start_redis redis --unixsocket "$TMP/redis.sock"
SOCK=$TMP/redis.sock
TCP_URL=$LOGPIPE_REDIS_URL

sc() {
    redis-cli -s "$SOCK" "$@"
}

ev() {
    seq "$1" "$2" | sed 's/.*/{"seq":&}/'
}

test_expect_success 'a field pruned while a lost reply is outstanding: each event once' '
    mkfifo in
    LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send -r "$TCP_URL" --batch 10 \
        --max-age 0 --timeout 15s <in 2>s1.err &
    s1=$!
    exec 3>in
    ev 1 10 >&3
    wait_for 30 "[ \$(sc XLEN logs:stream) -eq 10 ]"
    # cut the sender off: its connection stays, a new one is refused
    sc CONFIG SET port 0 >/dev/null
    ev 11 20 >&3
    # the second batch is stored; its reply is lost (the hook drops the
    # connection), and the sender cannot connect again
    wait_for 30 "[ \$(sc XLEN logs:stream) -eq 20 ]"
    wait_for 30 "grep -q \"connection dropped\" s1.err"
    # another sender, --producer-ttl 1s: once the first one s field is
    # older than that, its first connection removes it
    wait_for 30 "ev 1001 1001 | logpipe-send -r unix://$SOCK --max-age 0 \
        --producer-ttl 1s 2>>s2.err && [ \$(sc HLEN logs:stream:producers) -eq 0 ]"
    sc CONFIG SET port "$REDIS_PORT" >/dev/null
    exec 3>&-
    # a sender that cannot tell gives up (75) saying so: that is fine too
    st=0
    wait $s1 || st=$?
    say "send: exit $st"
    sed -e "s/^/# /" s1.err
    sc --raw XRANGE logs:stream - + | seqs - | awk "\$1 <= 20" >got
    tally 20 got
'

test_done
