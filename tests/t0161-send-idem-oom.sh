#!/bin/sh
# t0161-send-idem-oom.sh -- logpipe-send while Redis answers OOM (a small
# maxmemory, noeviction) and a drain frees memory: batches refused while
# queued (EXECABORT) go again, none of them twice, whether send retries
# them itself or through its WAL (issue 15 item 1)
. "$(dirname "$0")/lib.sh"

start_redis oom --maxmemory 3mb --maxmemory-policy noeviction

# drained: the group has read everything and has nothing pending
drained() {
    rcli --raw XINFO GROUPS logs:stream >groups &&
    awk 'p == "pending" && $0 != "0" { bad = 1 }
         p == "lag" && $0 != "0" { bad = 1 }
         { p = $0 } END { exit bad }' groups
}

# oom_round N ARCHIVE [SEND OPTIONS]: N events through a full Redis
oom_round() {
    _n=$1 _arch=$2
    shift 2
    rcli FLUSHALL >/dev/null &&
    # the group first: XGROUP CREATE is refused too once Redis is full
    rcli XGROUP CREATE logs:stream logpipe 0 MKSTREAM >/dev/null &&
    gen_events "$_n" >in || return 1
    logpipe-send --max-age 0 --timeout 120s "$@" <in 2>send.err &
    _spid=$!
    # Redis is full before the drain starts: 40,000 events do not fit
    wait_for 60 grep -q "OOM" send.err || return 1
    logpipe-drain -d "$_arch" -c c1 --block 50 2>drain.err &
    _dpid=$!
    wait $_spid || { echo "send: exit $?" >&2; cat send.err >&2; return 1; }
    # what the WAL still holds when the input ended
    case " $* " in
    *" --wal "*)
        logpipe-send --max-age 0 "$@" --flush-wal --timeout 120s \
            2>>send.err || return 1 ;;
    esac
    wait_for 120 drained || return 1
    kill $_dpid && wait $_dpid || return 1
    exactly "$_n" "$_arch"
}

test_expect_success 'OOM mid-send, send retrying: nothing twice, nothing lost' '
    oom_round 40000 arch1 &&
    grep_q "OOM" send.err &&
    grep_q "answers again" send.err
'

test_expect_success 'OOM mid-send, through the WAL: nothing twice, nothing lost' '
    oom_round 40000 arch2 --wal w &&
    grep_q "keeping events in the WAL w" send.err &&
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0
'

test_done
