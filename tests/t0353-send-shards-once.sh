#!/bin/sh
# t0353-send-shards-once.sh -- logpipe-send --shards: exactly once per
# shard (issue 17 step 2). A --producer run SIGKILLed mid-input and run
# again on the same input with --position 1 stores each event once over
# all shards; a lost reply (LOGPIPE_TEST_LOSE_REPLY) is found stored by
# its shard's field; a batch refused while later ones of other shards are
# stored (LOGPIPE_TEST_REFUSE_BATCH) goes again, nothing twice; giving up
# names the command that sends the rest.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR
SHARD_NAMES="$TOP/tests/shard-names"

start_redis

gen_events 20000 >in

# all_seqs STREAM N: every seq in the shards of STREAM, one a line
all_seqs() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + | sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

# in_order STREAM N: each shard holds its seqs in input order
in_order() {
    for sh in $("$SHARD_NAMES" "$1" "$2"); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >o || return 1
        sort -n o | cmp -s - o || return 1
    done
}

test_expect_success '--producer run SIGKILLed mid-input, run again on the same input: each event once' '
    rm -f fifo && mkfifo fifo || exit 1
    logpipe-send --max-age 0 --shards 4 -s k --producer kp --batch 500 \
        <fifo 2>first.err &
    spid=$!
    exec 3>fifo
    head -n 12000 in >&3
    wait_for 20 "test \$(shards_total k 4) -ge 6000" || { cat first.err; exit 1; }
    kill -9 $spid
    wait $spid || :
    exec 3>&-
    say "stored before the kill: $(shards_total k 4)" &&
    logpipe-send -v --max-age 0 --shards 4 -s k --producer kp --batch 500 \
        --position 1 <in 2>second.err &&
    grep_q "found stored" second.err &&
    all_seqs k 4 >got &&
    tally 20000 got &&
    in_order k 4
'

test_expect_success 'a lost reply: the batch is found stored by its shard, not sent again' '
    LOGPIPE_TEST_LOSE_REPLY=3 logpipe-send -v --max-age 0 --shards 4 \
        -s lr <in 2>err &&
    grep_q "connection dropped (LOGPIPE_TEST_LOSE_REPLY)" err &&
    grep_q "events were found stored after a lost reply (not sent again)" err &&
    all_seqs lr 4 >got &&
    tally 20000 got &&
    in_order lr 4
'

test_expect_success '--shard-key: a lost reply, nothing twice, order per key kept' '
    LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send -v --max-age 0 --shards 3 \
        --shard-key .service --batch 300 -s lk <in 2>err &&
    grep_q "found stored after a lost reply" err &&
    all_seqs lk 3 >got &&
    tally 20000 got &&
    in_order lk 3
'

test_expect_success 'a batch refused (EXECABORT) while later ones of other shards are stored: it goes again, nothing twice' '
    LOGPIPE_TEST_REFUSE_BATCH=2 logpipe-send --max-age 0 --shards 4 \
        -s rf <in 2>err &&
    all_seqs rf 4 >got &&
    tally 20000 got &&
    in_order rf 4
'

test_expect_success 'giving up after a lost reply: the command it names sends the rest, nothing twice' '
    expect_exit 75 env LOGPIPE_TEST_LOSE_REPLY=2 logpipe-send --max-age 0 \
        --shards 4 -s gu --timeout 0 <in 2>err &&
    grep_q "on the same input, from its start" err &&
    p=$(sed -n "s/.* with --producer \([^ ]*\) --position 1 .*/\1/p" err) &&
    test -n "$p" &&
    logpipe-send -v --max-age 0 --shards 4 -s gu --producer "$p" \
        --position 1 <in 2>err2 &&
    all_seqs gu 4 >got &&
    tally 20000 got &&
    in_order gu 4
'

# under valgrind (not in an ASan build): a lost reply and a refused
# batch with --shard-key, then a resume with --position: no error, no leak
if command -v valgrind >/dev/null 2>&1 && [ -z "${LP_VALGRIND:-}" ] &&
   [ "${SAN:-}" != 1 ]; then
    VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
    test_expect_success 'under valgrind: a lost reply, a refused batch, a resume: no error, no leak, each event once' '
        head -n 3000 in >in3k &&
        LOGPIPE_TEST_LOSE_REPLY=2 LOGPIPE_TEST_REFUSE_BATCH=3 $VG \
            logpipe-send --max-age 0 --shards 3 --shard-key .service \
            --batch 200 -s vg --producer vgp in3k 2>vg1.err &&
        $VG logpipe-send --max-age 0 --shards 3 --shard-key .service \
            --batch 200 -s vg --producer vgp --position 1 in3k 2>vg2.err &&
        ! grep "==[0-9]*==" vg1.err vg2.err &&
        all_seqs vg 3 >got &&
        tally 3000 got
    '
else
    test_skip 'under valgrind: no error, no leak' 'no valgrind, or an ASan build'
fi

test_done
