# powerloss-lib.sh -- logpipe-drain through a simulated power loss, for
# t0190 (a few kill points) and s0190 (many). Sourced after lib.sh and
# start_redis:
#
#   . "$TOP/tests/powerloss-lib.sh"
#   pl_drain_ok || test_skip ... "$PL_WHY"
#   pl_events 4000 20                    # the events, once
#   pl_round acked 700                   # kill once 700 entries are acked
#   pl_round op 311 100                  # kill before the 311th change;
#                                        # drain reads 100 at a time (20)
#   PL_DRAIN_ARGS="--max-open 16"        # more options for every drain
#
# A round: a fresh stream and a fresh archive; drain runs under
# tests/powerloss.so until it is SIGKILLed, at a point that takes no timing
# luck. "acked K": the stream gets the first K events only, Redis is polled
# until drain has acknowledged all K (it then waits for more), the other
# events are sent, and drain is killed as soon as that send returns, in the
# middle of archiving them: at least K acknowledged. "op N": all events are
# there and drain --once is killed just before its Nth file change or sync
# (LOGPIPE_POWERLOSS_KILL, counted by the shim); with PL_ALLOW_DONE=1 a
# drain that ends before its Nth change is cut all the same (a power cut
# right after --once exits). The entries acknowledged at
# the kill are read from Redis; powerloss-cut makes the archive what a power
# cut would have left; every acknowledged event must be in it exactly once,
# on whole lines. Then drain runs again without the shim (--once) and every
# event must be there exactly once.

PL_SHIM=$TOP/tests/powerloss.so
PL_CUT=$TOP/tests/powerloss-cut
if [ ! -x "$PL_CUT" ] || [ ! -f "$PL_SHIM" ] ||
   [ ! -x "$TOP/tests/powerloss-writer" ]; then
    make -s -C "$TOP" tests/powerloss.so tests/powerloss-cut \
        tests/powerloss-writer >/dev/null 2>&1 ||
        { echo "Bail out! cannot build the power-loss shim"; exit 1; }
fi
PL_DIR=$(pwd -P)
PL_PRELOAD=$PL_SHIM
PL_WHY=

# pl_drain_ok: can drain run under the shim here? Under SAN=1 the ASan
# runtime must come first in the preload list; if even that fails, says
# why in PL_WHY and fails.
pl_drain_ok() {
    if [ "$SAN" = 1 ]; then
        _asan=$(ldd "$TOP/cmd/logpipe-drain" | awk '/libasan/ { print $3 }')
        PL_PRELOAD="$_asan $PL_SHIM"
    fi
    rm -f "$PL_DIR/probe.log"
    if ! env LD_PRELOAD="$PL_PRELOAD" LOGPIPE_POWERLOSS_LOG="$PL_DIR/probe.log" \
        "$TOP/tests/powerloss-writer" open "$PL_DIR/probe" wc fsync \
        >/dev/null 2>&1 ||
       ! env LD_PRELOAD="$PL_PRELOAD" logpipe-drain --help >/dev/null 2>&1 ||
       ! grep -q "^F " "$PL_DIR/probe.log"; then
        PL_WHY="drain will not run under LD_PRELOAD=$PL_PRELOAD"
        [ "$SAN" = 1 ] && PL_WHY="$PL_WHY (AddressSanitizer build)"
        return 1
    fi
    return 0
}

# pl_events N SERVICES: the events every round sends, in $PL_DIR/pl.in
pl_events() {
    PL_N=$1
    gen_events "$1" "$(seq -f 's%04g' 1 "$2" | tr '\n' ' ')" >"$PL_DIR/pl.in"
}

# the group's entries-read minus its pending count: acknowledged entries
pl_acked() {
    rcli XINFO GROUPS logs:stream | awk '
        $0 == "pending" { getline; p = $0 }
        $0 == "entries-read" { getline; e = $0 }
        END { print e - p }'
}

# every _id in the archive under $1, one a line, sorted (C order)
pl_ids() {
    find "$1" -name '*.jsonl' -type f -exec cat {} + |
        sed -n 's/^{"_id":"\([0-9]*-[0-9]*\)".*/\1/p' | LC_ALL=C sort
}

# the _ids in the drain journals under $1 (their records hold whole
# archive lines), sorted (C order)
pl_journal_ids() {
    find "$1/.logpipe-journal" -name 'seg-*.jnl' -type f -exec cat {} + \
        2>/dev/null | grep -a -o '{"_id":"[0-9]*-[0-9]*"' |
        sed 's/^{"_id":"\(.*\)"$/\1/' | LC_ALL=C sort || :
}

# pl_acked_ids FILE: the entries acknowledged now, sorted (C order): those
# delivered (up to the group's last-delivered-id) and not pending, out of
# all the round sent (pl.sent: drain trims what it acknowledged)
pl_acked_ids() {
    _last=$(rcli XINFO GROUPS logs:stream |
        awk '$0 == "last-delivered-id" { getline; print; exit }')
    rcli XPENDING logs:stream logpipe - + 1000000 |
        grep -E '^[0-9]+-[0-9]+$' | LC_ALL=C sort >"$PL_DIR/pl.pending"
    awk -v last="$_last" '
            BEGIN { split(last, l, "-") }
            { split($0, x, "-")
              if (x[1] + 0 < l[1] + 0 ||
                  (x[1] + 0 == l[1] + 0 && x[2] + 0 <= l[2] + 0)) print }' \
        "$PL_DIR/pl.sent" | LC_ALL=C sort | LC_ALL=C comm -23 - "$PL_DIR/pl.pending" >"$1"
}

# pl_round acked K | pl_round op N: one round, as said at the top. Prints
# a summary line; fails (with what is wrong on stderr) when an event is
# lost or doubled. Runs in a test body.
pl_round() {
    _mode=$1 _at=$2 _count=${3:-20}
    _out=$PL_DIR/out _log=$PL_DIR/pl.log
    rcli DEL logs:stream >/dev/null
    rm -rf "$_out" "$_log"
    # the shim makes its log at its first record: a drain killed before
    # its first change (op 1) leaves none, which is an empty log to the cut
    : >"$_log"
    # made here, outside the shim: drain's own mkdir -p of --dir does not
    # sync the parent, which the model would count as losing the whole tree
    mkdir "$_out"
    rcli XGROUP CREATE logs:stream logpipe 0 MKSTREAM >/dev/null
    case $_mode in
    acked)
        if [ "$_at" -ge "$PL_N" ]; then
            echo "kill point $_at: not below $PL_N events" >&2
            return 1
        fi
        head -n "$_at" "$PL_DIR/pl.in" | logpipe-send
        # --keep: acknowledged entries stay, so that they can be listed
        env LD_PRELOAD="$PL_PRELOAD" LOGPIPE_POWERLOSS_LOG="$_log" \
            LOGPIPE_POWERLOSS_UNDER="$_out" \
            logpipe-drain -d "$_out" -c pl -n "$_count" --block 100 --keep 1d \
            ${PL_DRAIN_ARGS:-} 2>>"$PL_DIR/pl.err" &
        _pid=$!
        while [ "$(pl_acked)" -lt "$_at" ]; do
            if ! kill -0 $_pid 2>/dev/null; then
                echo "drain ended before acknowledging $_at entries" >&2
                return 1
            fi
        done
        tail -n "+$((_at + 1))" "$PL_DIR/pl.in" | logpipe-send
        kill -9 $_pid
        wait $_pid 2>/dev/null || :
        rcli XRANGE logs:stream - + | grep -E '^[0-9]+-[0-9]+$' \
            >"$PL_DIR/pl.sent"
        ;;
    op)
        logpipe-send <"$PL_DIR/pl.in"
        rcli XRANGE logs:stream - + | grep -E '^[0-9]+-[0-9]+$' \
            >"$PL_DIR/pl.sent"
        set +e
        env LD_PRELOAD="$PL_PRELOAD" LOGPIPE_POWERLOSS_LOG="$_log" \
            LOGPIPE_POWERLOSS_UNDER="$_out" LOGPIPE_POWERLOSS_KILL="$_at" \
            logpipe-drain --once -d "$_out" -c pl -n "$_count" \
            ${PL_DRAIN_ARGS:-} 2>>"$PL_DIR/pl.err"
        _rc=$?
        set -e
        if [ $_rc -eq 0 ] && [ "${PL_ALLOW_DONE:-0}" = 1 ]; then
            _mode="op (never reached: drain ended)"
        elif [ $_rc -ne 137 ]; then
            echo "drain exited $_rc before its change $_at" >&2
            return 1
        fi
        ;;
    esac
    if [ "$(wc -l <"$PL_DIR/pl.sent")" -ne "$PL_N" ]; then
        echo "the stream held $(wc -l <"$PL_DIR/pl.sent") entries" >&2
        return 1
    fi
    _acked_n=$(pl_acked)
    pl_acked_ids "$PL_DIR/pl.acked"
    if [ "$(wc -l <"$PL_DIR/pl.acked")" -ne "$_acked_n" ]; then
        echo "$(wc -l <"$PL_DIR/pl.acked") acknowledged ids listed," \
            "$_acked_n counted" >&2
        return 1
    fi
    "$PL_CUT" "$_log" >"$PL_DIR/pl.cut"
    # every acknowledged event survived the power cut, once, on a whole
    # line: in its day file, or in the drain's journal, which the next
    # start applies
    pl_ids "$_out" >"$PL_DIR/pl.ids"
    if [ -n "$(uniq -d "$PL_DIR/pl.ids")" ]; then
        echo "after the cut, ids twice:" >&2
        uniq -d "$PL_DIR/pl.ids" | head >&2
        return 1
    fi
    pl_journal_ids "$_out" >"$PL_DIR/pl.jids"
    LC_ALL=C sort -u "$PL_DIR/pl.ids" "$PL_DIR/pl.jids" >"$PL_DIR/pl.durable"
    _lost=$(LC_ALL=C comm -23 "$PL_DIR/pl.acked" "$PL_DIR/pl.durable" | wc -l)
    if [ "$_lost" -ne 0 ]; then
        echo "$_lost acknowledged events lost by the power cut, the first:" >&2
        LC_ALL=C comm -23 "$PL_DIR/pl.acked" "$PL_DIR/pl.durable" | head -5 >&2
        sed -e 's/^/cut: /' "$PL_DIR/pl.cut" | head -20 >&2
        return 1
    fi
    if find "$_out" -name '*.jsonl' -type f -exec cat {} + |
       grep -a -v -q '^{"_id":"[0-9]*-[0-9]*",.*}$'; then
        echo "after the cut, a line that is not a whole archive line" >&2
        return 1
    fi
    # a restart without the shim finishes the job, adding no copy
    logpipe-drain --once -d "$_out" -c pl ${PL_DRAIN_ARGS:-} \
        2>>"$PL_DIR/pl.err"
    pl_ids "$_out" >"$PL_DIR/pl.ids2"
    if [ -n "$(uniq -d "$PL_DIR/pl.ids2")" ]; then
        echo "after the restart, ids twice:" >&2
        uniq -d "$PL_DIR/pl.ids2" | head >&2
        return 1
    fi
    if [ "$(wc -l <"$PL_DIR/pl.ids2")" -ne "$PL_N" ]; then
        echo "after the restart $(wc -l <"$PL_DIR/pl.ids2") events," \
            "not $PL_N" >&2
        return 1
    fi
    seqs "$_out"/*/*.jsonl >"$PL_DIR/pl.seqs"
    seq 1 "$PL_N" >"$PL_DIR/pl.want"
    cmp -s "$PL_DIR/pl.want" "$PL_DIR/pl.seqs" || {
        echo "after the restart, the seqs differ from 1..$PL_N" >&2
        return 1
    }
    echo "$_mode $_at -n $_count: $_acked_n acked at the kill, cut:" \
        "$(grep -c '^truncate' "$PL_DIR/pl.cut") truncated," \
        "$(grep -c '^remove' "$PL_DIR/pl.cut") removed"
}
