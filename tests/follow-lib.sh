# follow-lib.sh -- what the tests of send --follow share (t0171, t0381,
# t0382, t0386, t0387): a writer that appends and renames, send SIGKILLed
# and restarted over it, and the follow setups of the sharded tests.
#
#   . "$TOP/tests/follow-lib.sh"
#   N=30000 ROT=5000 SEED=3821     # lines, lines a file, the kills' seed
#   LINE='"{\"seq\":%d}\n", j'      # optional: awk printf arguments, line j
#   check() { ... }                 # the test's: STREAM holds what it should
#   kill_round a 12 --shards 3      # NAME KILLS SEND-OPTION...
#
# SHARDS: the --shards the test sends with (stored counts over them).
#
# The sharded follow tests (t0381, t0386), with SHARDS=3 FOLLOW_OPTS=...:
#   follow -s fs -F "logs/*.log" --producer fw   # send in the background
#   fstop [SIG]                                   # its exit status in FST
#   names fs, total fs, fields fs                 # its shards, what they hold
#
# The journal tests (t0180, t0384): need_remote (the test skipped without
# systemd-journal-remote), journal FILE FIRST COUNT (a journal file).

LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL
LINE=${LINE:-'"{\"seq\":%d,\"msg\":\"line %d of the writer\"}\n", j, j'}

# writer DIR: N lines in chunks of 200, one chunk every 20 ms, app.log
# renamed to app.log.K after every ROT lines
writer() {
    i=1 k=0
    while [ $i -le $N ]; do
        awk -v a=$i -v b=$((i + 199)) "BEGIN { for (j = a; j <= b; j++)
            printf $LINE }" >>"$1/app.log"
        i=$((i + 200))
        if [ $(((i - 1) % ROT)) -eq 0 ]; then
            k=$((k + 1))
            mv "$1/app.log" "$1/app.log.$k"
        fi
        sleep 0.02
    done
    : >"$1/.done"
}

# lives K [MIN SPAN]: from the seed, K lifetimes of send (ms) before its
# SIGKILL, MIN (60) to MIN + SPAN (500)
lives() {
    awk -v seed="$SEED" -v n="$1" -v min="${2:-60}" -v span="${3:-500}" '
    BEGIN { srand(seed)
        for (i = 0; i < n; i++) printf "%s%d", i ? " " : "", min + int(rand() * span)
        printf "\n" }'
}

# names STREAM: the SHARDS shards of STREAM, one a line
names() {
    "$TOP/tests/shard-names" "$1" "$SHARDS"
}

# total STREAM: the events in all the shards of STREAM
total() {
    t=0
    for sh in $(names "$1"); do
        t=$((t + $(rcli XLEN "$sh")))
    done
    echo "$t"
}

# stored STREAM: the events in it, or in its SHARDS shards
stored() {
    if [ -z "${SHARDS:-}" ]; then
        rcli XLEN "$1"
    else
        total "$1"
    fi
}

# fields STREAM: "SHARD FIELD VALUE" for every field of every shard's
# producers hash
fields() {
    for sh in $(names "$1"); do
        rcli --raw HGETALL "$sh:producers" | sed "/^\$/d" | paste - - |
            sed "s/^/$sh /"
    done
}

# follow ARGS...: logpipe-send --shards SHARDS FOLLOW_OPTS --follow in the
# background, its pid in SPID
follow() {
    logpipe-send --shards "$SHARDS" ${FOLLOW_OPTS:-} --linger 5 "$@" \
        2>>send.err &
    SPID=$!
}

# fstop [SIG]: SIGTERM (or SIG), and the exit status in $FST
fstop() {
    kill "-${1:-TERM}" "$SPID"
    FST=0
    wait "$SPID" || FST=$?
}

# kill_round NAME K OPTION...: the writer into NAME/, send --follow (with
# the OPTIONs) SIGKILLed K times, then a send to the end; then the test's
# check NAME:stream. KILL_REDIS_AT: kills (numbers) at which Redis is
# SIGKILLed under send, down REDIS_DOWN seconds (0.2)
kill_round() {
    name=$1 kills=$2; shift 2
    mkdir "$name"
    writer "$name" &
    wpid=$!
    k=0
    for ms in $(lives "$kills"); do
        k=$((k + 1))
        logpipe-send -s "$name:stream" -F "$name/app.log*" --producer "$name" \
            --linger 5 --batch 300 "$@" 2>>"$name.err" &
        pid=$!
        sleep "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')"
        case " ${KILL_REDIS_AT:-} " in
        *" $k "*)
            stop_redis KILL
            sleep "${REDIS_DOWN:-0.2}"
            restart_redis ;;
        esac
        kill -KILL $pid
        wait $pid 2>/dev/null || :
    done
    wait $wpid
    test -f "$name/.done"
    logpipe-send -s "$name:stream" -F "$name/app.log*" --producer "$name" \
        --linger 5 --batch 300 "$@" 2>>"$name.err" &
    pid=$!
    wait_for 60 "[ \$(stored $name:stream) -ge $N ]" || :
    sleep 0.3       # anything more would be a copy
    kill -TERM $pid
    wait $pid || { echo "send: exit $?" >&2; return 1; }
    check "$name:stream"
}

# need_remote: systemd-journal-remote, which makes the journal files, or
# the whole test skipped
REMOTE=/lib/systemd/systemd-journal-remote
need_remote() {
    if ! [ -x "$REMOTE" ]; then
        echo "1..0 # SKIP no $REMOTE (package systemd-journal-remote)"
        exit 0
    fi
}

# entries FIRST COUNT: export-format text of entries SEQ=FIRST.., one
# microsecond of realtime apart, SYSLOG_IDENTIFIER app for every third
# (SEQ divisible by 3), web for the others
entries() {
    awk -v a="$1" -v n="$2" -v t0="$(date +%s)" 'BEGIN {
        for (i = a; i < a + n; i++)
            printf "__REALTIME_TIMESTAMP=%.0f\n__MONOTONIC_TIMESTAMP=%.0f\n" \
                "_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=h\n" \
                "SYSLOG_IDENTIFIER=%s\nPRIORITY=6\nMESSAGE=entry %d\n" \
                "SEQ=%d\n\n", t0 * 1e6 + i, 1000 + i,
                (i % 3 == 0) ? "app" : "web", i, i
    }'
}

# journal FILE FIRST COUNT: those entries into journal file FILE
journal() {
    entries "$2" "$3" >"$1.export" &&
    "$REMOTE" --output="$PWD/$1" - <"$1.export" 2>/dev/null &&
    rm -f "$1.export"
}
