#!/bin/sh
# t0175-send-follow-array-batch.sh -- logpipe-send --follow (review of
# issue 15 item 2): a line's events never split across batches, so
# dispatch waits for the line's end (s->mid_line) while add_command goes
# on filling the input batch past --batch; but the batch's command table
# (ev) holds --batch entries (lp_pipeline_init): an array line that
# crosses the batch's end writes past it. With the default --batch 1000,
# 999 lines and then one array of two elements are enough.
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# arr FIRST LAST: one array line of {"seq":FIRST} .. {"seq":LAST}
arr() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "["
        for (i = a; i <= b; i++) {
            if (i > a) printf ","
            printf "{\"seq\":%d,\"pad\":\"%s\"}", i, "xxxxxxxxxxxxxxxx"
        }
        printf "]\n" }'
}

# run_follow STREAM DIR N [PREFIX...]: send --follow of DIR/*.log under
# PREFIX (valgrind, or nothing) until STREAM holds N entries (at most 60 s:
# a slow machine, valgrind), then SIGTERM; its status in $FST
run_follow() {
    _s=$1 _dir=$2 _n=$3
    shift 3
    "$@" logpipe-send -s "$_s" -F "$_dir/*.log" --batch 3 --linger 5 \
        2>"$_s.err" &
    _spid=$!
    wait_for 60 "test \$(rcli XLEN $_s) -ge $_n" || :
    kill -TERM $_spid 2>/dev/null || :
    FST=0
    wait $_spid || FST=$?
    sed -e 's/^/# /' "$_s.err" | head -n 20
}

test_expect_success 'an array line of 2,000 events past --batch 3: all of them, once, no crash' '
    mkdir a
    printf "{\"seq\":1}\n{\"seq\":2}\n" >a/x.log
    arr 3 2002 >>a/x.log
    run_follow a a 2002
    test $FST -eq 0
    rcli --raw XRANGE a - + | seqs /dev/stdin >got
    tally 2002 got
'

# (under SAN=1 the first test is AddressSanitizer's: valgrind cannot run
# an ASan build)
if command -v valgrind >/dev/null 2>&1 && [ -z "${LP_VALGRIND:-}" ] &&
   [ "$SAN" = 0 ]; then
    test_expect_success 'the same under valgrind: no write past the batch'"'"'s command table' '
        mkdir v
        printf "{\"seq\":1}\n{\"seq\":2}\n" >v/x.log
        arr 3 6 >>v/x.log
        run_follow v v 6 valgrind -q --error-exitcode=99
        test $FST -eq 0
        n=$(grep -c "Invalid write" v.err || :)
        test "$n" -eq 0
        rcli --raw XRANGE v - + | seqs /dev/stdin >got
        tally 6 got
    '
else
    test_skip 'the same under valgrind: no write past the batch'"'"'s command table' 'no valgrind, or an ASan build'
fi

test_done
