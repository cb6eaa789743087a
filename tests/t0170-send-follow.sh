#!/bin/sh
# t0170-send-follow.sh -- logpipe-send --follow (issue 15 item 2): files
# followed by name and glob, each file a producer whose position is its
# offset, committed with its events. Appends, rename rotation while send
# runs and while it is stopped, a file that appears later, a restart that
# reads nothing twice, --from-end, a line without its newline
# (--partial-timeout), copytruncate, rejected lines named by file and
# offset, the producer lock, --producer-ttl beside followed files,
# positions of deleted files forgotten, and the option errors.
. "$(dirname "$0")/lib.sh"

start_redis

# the walks every 100 ms, so that a test waits less; inotify stays on
LOGPIPE_TEST_FOLLOW_POLL=100
export LOGPIPE_TEST_FOLLOW_POLL

# lines FILE FIRST LAST: appends {"seq":FIRST} .. {"seq":LAST} to FILE
lines() {
    awk -v a="$2" -v b="$3" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"seq\":%d,\"msg\":\"line %d\"}\n", i, i }' >>"$1"
}

# sseqs [STREAM]: the seq of every event, in stream order
sseqs() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        sed -n 's/.*"seq":\([0-9]*\).*/\1/p'
}

# xlen_is N: the stream holds N events
xlen_is() {
    [ "$(rcli XLEN logs:stream)" -eq "$1" ]
}

# follow ARGS...: logpipe-send --follow in the background ($SPID)
follow() {
    logpipe-send "$@" 2>>send.err &
    SPID=$!
}

# fstop: SIGTERM, and its exit status in $FST
fstop() {
    kill -TERM "$SPID"
    FST=0
    wait "$SPID" || FST=$?
}

mkdir logs

test_expect_success 'a file there at start is read from its start, appends follow' '
    lines logs/app.log 1 100
    follow -F "logs/*.log" --producer fw --linger 5
    wait_for 10 xlen_is 100
    lines logs/app.log 101 150
    wait_for 10 xlen_is 150
    fstop
    test $FST -eq 0
    sseqs >got
    seq 1 150 >want
    test_cmp want got
'

test_expect_success 'the file position is committed in its producer field' '
    rcli --raw HGETALL logs:stream:producers >fields
    say "$(cat fields | tr "\n" " ")"
    grep -q "^fw:[0-9a-f]*-[0-9a-f]*-[0-9a-f]*-[0-9a-f]*-0$" fields
    size=$(wc -c <logs/app.log)
    grep -q "^150 [0-9]* $size\$" fields
'

test_expect_success 'a restart reads nothing twice and goes on' '
    lines logs/app.log 151 160
    follow -F "logs/*.log" --producer fw --linger 5
    wait_for 10 xlen_is 160
    fstop
    test $FST -eq 0
    sseqs >got
    seq 1 160 >want
    test_cmp want got
'

test_expect_success 'rename rotation while send runs: the old file read to its end, the new one from its start' '
    follow -F "logs/app.log*" --producer fw --linger 5
    lines logs/app.log 161 200
    wait_for 10 xlen_is 200
    mv logs/app.log logs/app.log.1
    lines logs/app.log.1 201 210
    lines logs/app.log 211 260
    wait_for 10 xlen_is 260
    fstop
    sseqs >got
    seq 1 260 >want
    LC_ALL=C sort -n got | test_cmp want -
'

test_expect_success 'rename rotation while send is stopped: no line twice, none lost' '
    lines logs/app.log 261 270
    mv logs/app.log logs/app.log.2
    lines logs/app.log.2 271 280
    lines logs/app.log 281 300
    follow -F "logs/app.log*" --producer fw --linger 5
    wait_for 10 xlen_is 300
    fstop
    sseqs >got
    seq 1 300 >want
    LC_ALL=C sort -n got | test_cmp want -
'

test_expect_success 'a file that appears later is picked up' '
    xlen0=$(rcli XLEN logs:stream)
    follow -F "logs/app.log*" -F "logs/new-*.log" --producer fw --linger 5 -v
    sleep 0.3
    lines logs/new-1.log 1001 1010
    wait_for 10 "[ \$(rcli XLEN logs:stream) -ge $((xlen0 + 10)) ]"
    fstop
    grep -q "new-1.log: new file, followed" send.err
    sseqs | grep -c "^10[01][0-9]$" >n
    echo 10 | test_cmp - n
'

test_expect_success '--from-end: what a file held at start is passed over' '
    mkdir fe
    lines fe/a.log 1 50
    rcli DEL fe:stream >/dev/null
    follow -s fe:stream -F "fe/*.log" --from-end --linger 5
    sleep 0.5
    lines fe/a.log 51 60
    wait_for 10 "[ \$(rcli XLEN fe:stream) -eq 10 ]"
    fstop
    sseqs fe:stream >got
    seq 51 60 >want
    test_cmp want got
'

test_expect_success 'a last line without its newline goes after --partial-timeout' '
    mkdir pt
    printf "{\"seq\":1}\n{\"seq\":2}" >pt/a.log
    follow -s pt:stream -F "pt/a.log" --partial-timeout 300ms --linger 5
    wait_for 10 "[ \$(rcli XLEN pt:stream) -eq 2 ]"
    printf "\n{\"seq\":3}\n" >>pt/a.log
    wait_for 10 "[ \$(rcli XLEN pt:stream) -eq 3 ]"
    fstop
    sseqs pt:stream >got
    printf "1\n2\n3\n" >want
    test_cmp want got
'

test_expect_success 'copytruncate: said, and the file read again from its start' '
    mkdir ct
    : >send.err
    lines ct/a.log 1 40
    follow -s ct:stream -F "ct/a.log" --linger 5
    wait_for 10 "[ \$(rcli XLEN ct:stream) -eq 40 ]"
    cp ct/a.log ct/a.log.1
    : >ct/a.log
    lines ct/a.log 41 45
    wait_for 10 "[ \$(rcli XLEN ct:stream) -eq 45 ]"
    fstop
    grep -q "ct/a.log: truncated to [0-9]* bytes (was read to [0-9]*): read again from its start\|ct/a.log: not the file it was" send.err
    sseqs ct:stream >got
    seq 1 45 >want
    test_cmp want got
'

test_expect_success 'rejected lines: named by file and offset, the position moves past them, 65 at the end' '
    mkdir rj
    : >send.err
    printf "{\"seq\":1}\nnot json\n{\"seq\":2}\n" >rj/a.log
    follow -s rj:stream -F "rj/*.log" --linger 5
    wait_for 10 "[ \$(rcli XLEN rj:stream) -eq 2 ]"
    fstop
    test $FST -eq 65
    grep -q "rj/a.log: the line at byte 10: invalid JSON" send.err
    follow -s rj:stream -F "rj/*.log" --linger 5
    sleep 0.5
    fstop
    test $FST -eq 0
    [ "$(rcli XLEN rj:stream)" -eq 2 ]
    # the default producer: the host and a hash of the patterns
    rcli --raw HKEYS rj:stream:producers >names
    grep -q "^[A-Za-z0-9.-]*:follow:[0-9a-f]\{8\}:[0-9a-f-]*$" names
'

test_expect_success 'two sends following the same patterns: the second exits 75' '
    follow -F "logs/app.log*" -F "logs/new-*.log" --producer fw
    first=$SPID
    sleep 0.3
    expect_exit 75 logpipe-send -F "logs/app.log*" --producer fw 2>twin.err
    grep -q "another logpipe-send sends as this producer" twin.err
    SPID=$first
    fstop
'

test_expect_success '--producer-ttl removes old producers, never our files'"'"' fields' '
    rcli HSET logs:stream:producers someone-old "5 1000" >/dev/null
    n0=$(rcli XLEN logs:stream)
    follow -F "logs/app.log*" -F "logs/new-*.log" --producer fw \
        --producer-ttl 1s --linger 5
    sleep 0.5
    fstop
    test "$(rcli HEXISTS logs:stream:producers someone-old)" = 0
    [ "$(rcli XLEN logs:stream)" -eq "$n0" ]
    rcli --raw HKEYS logs:stream:producers | grep -c "^fw:" >n
    [ "$(cat n)" -ge 3 ]
'

test_expect_success 'the position of a file deleted is forgotten after a while (HDEL)' '
    mkdir fg
    lines fg/a.log 1 5
    LOGPIPE_TEST_FOLLOW_FORGET=300 \
    follow -s fg:stream -F "fg/*.log" --producer fgp --linger 5 -v
    wait_for 10 "[ \$(rcli XLEN fg:stream) -eq 5 ]"
    [ "$(rcli HLEN fg:stream:producers)" -eq 1 ]
    rm fg/a.log
    wait_for 15 "[ \$(rcli HLEN fg:stream:producers) -eq 0 ]"
    fstop
    grep -q "forgot the positions of 1 file" send.err
'

test_expect_success 'an array line waiting for --rate tokens: its events go in one batch, once' '
    mkdir ar
    printf "[{\"seq\":1},{\"seq\":2},{\"seq\":3}]\n{\"seq\":4}\n" >ar/a.log
    follow -s ar:stream -F "ar/*.log" --rate 4/s --burst 1 --linger 5
    wait_for 15 "[ \$(rcli XLEN ar:stream) -eq 4 ]"
    fstop
    test $FST -eq 0
    sseqs ar:stream >got
    printf "1\n2\n3\n4\n" >want
    test_cmp want got
    follow -s ar:stream -F "ar/*.log" --rate 4/s --burst 1 --linger 5
    sleep 0.5
    fstop
    [ "$(rcli XLEN ar:stream)" -eq 4 ]
'

test_expect_success 'option errors: 64' '
    expect_exit 64 logpipe-send -F "x*" file.ndjson
    expect_exit 64 logpipe-send --from-end
    expect_exit 64 logpipe-send --partial-timeout 1s
    expect_exit 64 logpipe-send -F "x*" --journal
    expect_exit 64 logpipe-send -F "x*" --producer p --position 5
    expect_exit 64 logpipe-send -F ""
'

test_done
