#!/bin/sh
# t0259-drain-read-ahead-failure-conn-lost.sh -- was a fault (review rd1): a failure of ours (fsync EIO) after the connection was lost with the read ahead out:
# give_back_all gives the read-ahead batch back first, over the dead socket, without connecting again; only the batch in hand after it gets its count back.
# Fixed: lp_group_give_back connects again once when the connection was lost before it came.
# Breaks logpipe-drain(1) Redelivery: a failure of ours never counts toward --max-deliveries (Redis is up: "after one attempt to connect again").
#
# Same root as x0258 (lp_group_give_back connects again only when it
# already knows the connection is gone, so its first write finds it dead),
# but it is the read ahead that pays: the batch in hand, given back second,
# finds the connection marked gone and connects. Without the CLIENT KILL
# (second case, which passes) all 1,000 come back at count 0.
. "$(dirname "$0")/lib.sh"
start_redis readahead

pending_is() {
    test "$(pending)" = "$1"
}

# the drain: the child of strace (pid $1) that runs logpipe-drain (strace
# forks short-lived children of its own first), written to the file dpid
child_of() {
    for _c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        if [ "$(cat /proc/"$_c"/comm 2>/dev/null)" = logpipe-drain ]; then
            echo "$_c" >dpid
            return 0
        fi
    done
    return 1
}

# run_eio KILL: a drain whose journal commits fail (EIO), stopped after
# its first write with the read ahead answered; KILL=yes kills its Redis
# connection then; it goes on and ends 74
run_eio() {
    rcli DEL logs:stream >/dev/null &&
    rm -rf out dpid stop.mark &&
    logpipe-send <in || return 1
    ASAN_OPTIONS=detect_leaks=0 LOGPIPE_TEST_CRASH=stop:after-write \
        LOGPIPE_TEST_STOP_MARK=stop.mark \
        strace -f -o /dev/null -e trace=fdatasync \
        -e inject=fdatasync:error=EIO \
        logpipe-drain -n 500 -d out 2>err &
    spid=$!
    # (the state alone says "t" at each traced fdatasync too: the mark
    # first, made just before the stop; a SIGCONT that came while strace
    # still held the SIGSTOP would leave it stopped for ever, so it is
    # sent until the drain runs)
    wait_for 20 child_of $spid &&
    dpid=$(cat dpid) &&
    wait_for 20 test -e stop.mark &&
    wait_for 20 stopped $dpid &&
    wait_for 20 pending_is 1000 || return 1
    if [ "$1" = yes ]; then
        rcli CLIENT KILL TYPE normal >/dev/null || return 1
    fi
    wait_for 20 "kill -CONT $dpid; ! stopped $dpid" || return 1
    expect_exit 74 wait $spid
}

if command -v strace >/dev/null; then
    test_expect_success 'fsync EIO after the connection was killed, read ahead out: no delivery counts' '
        gen_events 5000 "a b c d e f g h" >in &&
        run_eio yes &&
        grep_q "fsync: Input/output error" err &&
        test "$(pending)" -eq 1000 &&
        test "$(max_count)" -eq 0
    '

    test_expect_success '(control: the same failure with the connection alive gives all 1000 back)' '
        run_eio no &&
        grep_q "fsync: Input/output error" err &&
        test "$(pending)" -eq 1000 &&
        test "$(max_count)" -eq 0
    '
else
    test_skip 'fsync EIO after the connection was killed' 'strace is not installed'
fi

test_done
