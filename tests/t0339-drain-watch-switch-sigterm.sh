#!/bin/sh
# t0339-drain-watch-switch-sigterm.sh -- review rw1 (x0401, fixed): a SIGTERM that comes
# while main() switches an unsharded drain to the drains of its shards
# (after the look at lp_stop == WATCH_STOP, inside watch_end, before
# lp_stop = 0) is forgotten: the shards drains start and the drain runs
# on, though it was told to stop. gdb holds the drain at that point
# (lp_redis_free called from main, that is watch_end) and sends the
# signal there; without gdb the window is a few microseconds wide, but
# it is there on every switch.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

command -v gdb >/dev/null 2>&1 || { test_skip 'no gdb'; test_done; }

start_redis
gen_events 20 >in
sed -n 1,10p in >c
sed -n 11,20p in >e

test_expect_success 'an unsharded stream' '
    logpipe-send --max-age 0 -s u <c
'

logpipe-drain -s u -d out --block 100ms 2>drain.err &
dpid=$!

cat >gdb.cmd <<GDB
handle SIGTERM nostop noprint pass
break lp_redis_free if \$_any_caller_is("watch_end", 1)
continue
call (int)raise(15)
detach
GDB

test_expect_success 'the drain archives the bare key' '
    wait_for 30 "test \$(find out -name \"*.jsonl\" -type f -exec cat {} + | wc -l) -eq 10"
'

gdb -q -batch -p $dpid -x gdb.cmd >gdb.out 2>&1 &
gpid=$!

test_expect_success 'the first send --shards 2, SIGTERM at the switch' '
    wait_for 30 grep -q "Breakpoint 1 at" gdb.out &&
    rcli DEL u >/dev/null &&
    logpipe-send --max-age 0 -s u --shards 2 <e &&
    wait_for 60 "! kill -0 $gpid" &&
    grep_q "spread over 2 shards" drain.err
'

test_expect_success 'the drain stops as told (status 0, no children left)' '
    wait_for 30 "! kill -0 $dpid"
'
if kill -0 $dpid 2>/dev/null; then
    cat gdb.out >&2
    say "still running: pid $dpid, children $(cat /proc/$dpid/task/*/children)"
    cat drain.err >&2
    pkill -TERM -P $dpid
    kill $dpid
fi
wait $dpid

test_done
