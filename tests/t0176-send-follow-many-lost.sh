#!/bin/sh
# t0176-send-follow-many-lost.sh -- logpipe-send --follow (review of issue
# 15 item 2): 70 files (more than LP_BATCH_PRODS in a batch) written in
# turns, so that every batch holds lines of many files, interleaved; the
# connection dropped after batch N for several N (lost replies,
# resolve_files), with and without --wal, with --rejects-to-dlq and some
# rejected lines; then a restart: each line once in the stream, each
# rejected line once in the DLQ.
. "$(dirname "$0")/lib.sh"

start_redis

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# mkfiles DIR: 70 files f00..f69, 20 lines each (seq = file*100 + line),
# the 7th line of every 10th file not JSON
mkfiles() {
    mkdir "$1"
    awk -v d="$1" 'BEGIN { for (l = 1; l <= 20; l++) for (f = 0; f < 70; f++) {
        fn = sprintf("%s/f%02d.log", d, f)
        if (l == 7 && f % 10 == 0) print "not json " f >>fn
        else printf "{\"seq\":%d}\n", f * 100 + l >>fn
        close(fn) } }'
}

# want: the seqs
want() {
    awk 'BEGIN { for (f = 0; f < 70; f++) for (l = 1; l <= 20; l++)
        if (!(l == 7 && f % 10 == 0)) print f * 100 + l }' | sort -n
}

# growing DIR: the files' lines written one a file in turns, 20 turns
# 100 ms apart: each turn a line of every file
growing() {
    mkdir "$1"
    for f in $(seq 0 69); do : >"$1/f$(printf %02d $f).log"; done
    sleep 0.5
    for l in $(seq 1 20); do
        awk -v d="$1" -v l=$l 'BEGIN { for (f = 0; f < 70; f++) {
            fn = sprintf("%s/f%02d.log", d, f)
            if (l == 7 && f % 10 == 0) print "not json " f >>fn
            else printf "{\"seq\":%d}\n", f * 100 + l >>fn
            close(fn) } }'
        sleep 0.1
    done
}

# round NAME N [OPTIONS]: lose the reply of batch N, restart, check;
# GROW=1: the files grow while send runs
round() {
    _d=$1 _n=$2
    shift 2
    [ -n "${GROW:-}" ] || mkfiles "$_d"
    LOGPIPE_TEST_LOSE_REPLY=$_n logpipe-send -s "$_d" --dlq "$_d:dlq" \
        -F "$_d/*.log" --batch ${BATCH:-50} --rejects-to-dlq "$@" 2>"$_d.err" &
    _spid=$!
    [ -z "${GROW:-}" ] || growing "$_d"
    wait_for 60 grep -q "\"connection dropped\"" "$_d.err" || :
    grep_q "connection dropped" "$_d.err"
    kill -TERM $_spid
    wait $_spid || :
    logpipe-send -s "$_d" --dlq "$_d:dlq" -F "$_d/*.log" --batch 50 \
        --rejects-to-dlq "$@" 2>>"$_d.err" &
    _spid=$!
    want >want
    wait_for 60 "test \$(rcli XLEN $_d) -ge $(wc -l <want)" || :
    kill -TERM $_spid
    wait $_spid || :
    rcli --raw XRANGE "$_d" - + | seqs /dev/stdin >got
    test_cmp want got || return 1
    [ "$(rcli XLEN "$_d:dlq")" -eq 7 ] || {
        echo "DLQ: $(rcli XLEN "$_d:dlq") entries, want 7" >&2; return 1; }
}

for n in 1 3 8; do
    test_expect_success "70 files interleaved, the reply of batch $n lost: each line once" "
        round l$n $n
    "
    test_expect_success "the same through the WAL" "
        round w$n $n --wal \"\$TMP/w$n.wal\"
    "
done

for n in 2 5; do
    test_expect_success "70 files growing a line each in turns (over 64 files a batch), the reply of batch $n lost" "
        GROW=1 BATCH=1000 round g$n $n --linger 150
    "
    test_expect_success "the same through the WAL" "
        GROW=1 BATCH=1000 round gw$n $n --linger 150 --wal \"\$TMP/gw$n.wal\"
    "
done

test_done
