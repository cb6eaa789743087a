#!/bin/sh
# t0921-units.sh -- the example units are hardened (issue 12 item 10):
# systemd-analyze security scores each 2.0 or better, and the work each
# one does -- its own ExecStart=, paths moved under a test directory --
# stays inside its sandbox: the system calls of its SystemCallFilter=,
# the socket families of RestrictAddressFamilies=, writes in the
# directories it may write, no writable and executable memory, /proc
# limited to processes where ProcSubset=pid. No running systemd is
# needed: the sandbox's rules are checked on an strace of the real work.
. "$(dirname "$0")/lib.sh"

UNITS=$(ls "$TOP"/examples/*.service)
U=$TMP/u                        # stands for / in the units' paths

if ! command -v systemd-analyze >/dev/null 2>&1; then
    test_skip 'every example unit scores 2.0 or better' \
        'systemd-analyze is not installed (package systemd)'
    test_done
fi

test_expect_success 'systemd-analyze security: every example unit 2.0 or better' '
    bad=0
    for u in $UNITS; do
        # --threshold: the status says over 2.0 (20 of 100) as well
        rc=0
        systemd-analyze security --offline=true --threshold=20 \
            --no-pager "$u" >sec 2>&1 || rc=$?
        score=$(sed -n "s/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\) .*/\1/p" sec)
        say "$(basename "$u"): $score"
        if [ -z "$score" ]; then
            cat sec
            bad=1
        elif [ $rc -ne 0 ] || ! awk -v s="$score" "BEGIN { exit !(s <= 2.0) }"
        then
            echo "$(basename "$u"): exposure $score, over 2.0"
            bad=1
        fi
    done
    test $bad -eq 0
'

if ! command -v strace >/dev/null 2>&1; then
    test_skip 'the units'"'"' work fits their sandboxes' \
        'strace is not installed (package strace)'
    test_done
fi
if [ "$SAN" = 1 ]; then
    test_skip 'the units'"'"' work fits their sandboxes' \
        'a sanitizer build: its runtime makes system calls of its own'
    test_done
fi

# ---- the sandbox of a unit, from its file ----

# expand GROUP|CALL...: the system calls, systemd's @groups expanded
expand() {
    for g in "$@"; do
        case $g in
        @*) systemd-analyze syscall-filter "$g" | sed -n '2,$p' |
                sed -e 's/^ *//' -e '/^#/d' -e '/^$/d' >"$TMP/.grp.$$"
            # shellcheck disable=SC2046
            expand $(cat "$TMP/.grp.$$") ;;
        *) echo "$g" ;;
        esac
    done
}

# allowed UNIT: the system calls its SystemCallFilter= lines let through,
# in order: a list adds, a ~list takes away
allowed() {
    : >"$TMP/allow"
    sed -n 's/^SystemCallFilter=//p' "$1" >"$TMP/filters"
    while read -r f; do
        case $f in
        "~"*) expand ${f#\~} | sort -u >"$TMP/deny"
              sort -u "$TMP/allow" | comm -23 - "$TMP/deny" >"$TMP/allow2"
              mv "$TMP/allow2" "$TMP/allow" ;;
        *) expand $f >>"$TMP/allow" ;;
        esac
    done <"$TMP/filters"
    sort -u "$TMP/allow"
}

# mapped PATH...: a unit's path moved under $U
mapped() {
    for p in "$@"; do
        echo "$U$p"
    done
}

# writable UNIT: the directories it may write, under $U, one a line
writable() {
    for p in $(sed -n 's/^ReadWritePaths=//p' "$1"); do
        mapped "${p#-}"
    done
    for d in $(sed -n 's/^StateDirectory=//p' "$1"); do
        mapped "/var/lib/$d"
    done
    for d in $(sed -n 's/^LogsDirectory=//p' "$1"); do
        mapped "/var/log/$d"
    done
    echo /dev/null
}

# unit_cmd UNIT INSTANCE: its ExecStart=, as systemd unquotes it, with its
# paths moved under $U, our tools, and the journal of $U/journal
unit_cmd() {
    sed -n 's/^ExecStart=//p' "$1" | sed \
        -e 's/\\\\/\\/g' \
        -e "s|/usr/local/bin/|$TOP/cmd/|g" \
        -e "s|exec logpipe-send |exec $TOP/cmd/logpipe-send |" \
        -e "s|\\\${CREDENTIALS_DIRECTORY}|$U/cred|g" \
        -e "s|\\\$CREDENTIALS_DIRECTORY|$U/cred|g" \
        -e "s|\\([ =]\\)/var/|\\1$U/var/|g" \
        -e "s|%i|$2|g" \
        -e "s|journalctl |journalctl --directory=$U/journal |" \
        -e "s|--journal |--journal --journal-dir=$U/journal |"
}

# environment UNIT URL: its Environment= lines, paths moved, Redis at URL
environment() {
    sed -n 's/^Environment=//p' "$1" | sed \
        -e "s|^LOGPIPE_REDIS_URL=.*|LOGPIPE_REDIS_URL=$2|" \
        -e "s|=/var/|=$U/var/|"
}

# traced UNIT LOG URL [INSTANCE]: runs the unit's command under strace,
# one trace file per process (LOG.p.PID: whole lines, none cut by another
# process's), joined into LOG when it ends; $TRACE_ARGS, if set, go after
# the unit's own (logpipe-http: a port of its own, no socket activation)
traced() {
    environment "$1" "$3" >"$TMP/env"
    cmd="$(unit_cmd "$1" "${4:-api}") ${TRACE_ARGS:-}"
    # shellcheck disable=SC2046
    rm -f "$2" "$2".p.*
    rc=0
    eval "env $(sed "s/.*/'&'/" "$TMP/env" | tr '\n' ' ') \
        strace -ff -qq -y -s 300 -o \"\$2.p\" $cmd" || rc=$?
    for f in "$2".p.*; do
        sed "s/^/${f##*.} /" "$f"
    done >"$2"
    [ $rc -eq 0 ] || echo "$(basename "$1"): status $rc" >&2
    return $rc
}

# check UNIT LOG: the traced work fits the unit's sandbox
check() {
    log=$2
    allowed "$1" >allowed.calls
    sed -n 's/^[0-9][0-9]* \{1,\}\([a-z0-9_]\{1,\}\)(.*/\1/p' "$log" |
        sort -u >used.calls
    comm -23 used.calls allowed.calls >denied.calls
    # no SystemCallFilter=: every call is allowed
    if grep -q "^SystemCallFilter=" "$1" && [ -s denied.calls ]; then
        echo "$(basename "$1"): calls outside SystemCallFilter=:"
        cat denied.calls
        return 1
    fi
    fams=$(sed -n 's/^RestrictAddressFamilies=//p' "$1")
    [ -n "$fams" ] || fams="AF_UNIX AF_INET AF_INET6 AF_NETLINK"
    sed -n 's/^[0-9][0-9]* \{1,\}socket(\(AF_[A-Z0-9]*\),.*/\1/p' "$log" |
        sort -u >used.fams
    for f in $(cat used.fams); do
        case " $fams " in
        *" $f "*) ;;
        *) echo "$(basename "$1"): socket($f) outside RestrictAddressFamilies=$fams"
           return 1 ;;
        esac
    done
    if grep -q "^MemoryDenyWriteExecute=yes" "$1" &&
       grep -E "^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC" "$log"
    then
        echo "$(basename "$1"): writable and executable memory"
        return 1
    fi
    if grep -q "^ProcSubset=pid" "$1"; then
        awk '/^[0-9]+ +open(at)?\(/ && match($0, /"\/proc\/[^"\/]*/) {
            c = substr($0, RSTART + 7, RLENGTH - 7)
            if (c !~ /^[0-9]+$/ && c != "self" && c != "thread-self")
                print
        }' "$log" >proc.beyond
        if [ -s proc.beyond ]; then
            echo "$(basename "$1"): /proc beyond processes, with ProcSubset=pid:"
            cat proc.beyond
            return 1
        fi
    fi
    # writes: files opened for writing (their path is what -y shows of
    # the descriptor returned) and directory entries made or removed
    writable "$1" >dirs
    awk -v cwd="$TMP" '
    /^[0-9]+ +(open|openat|creat)\(/ &&
        /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND|creat\(/ &&
        match($0, /\) += [0-9]+<[^>]*>$/) {
        s = substr($0, RSTART, RLENGTH); sub(/^[^<]*</, "", s); sub(/>$/, "", s)
        print s; next
    }
    /^[0-9]+ +(mkdir|unlink|rmdir|rename|link)\(/ && / = 0$/ {
        line = $0
        while (match(line, /"[^"]*"/)) {
            name = substr(line, RSTART + 1, RLENGTH - 2)
            print (name ~ /^\// ? name : cwd "/" name)
            line = substr(line, RSTART + RLENGTH)
        }
        next
    }
    /^[0-9]+ +(mkdirat|unlinkat|renameat|renameat2|linkat|symlinkat|fchmodat|utimensat)\(/ &&
        / = 0$/ {
        line = $0
        while (match(line, /(AT_FDCWD|[0-9]+)<[^>]*>, "[^"]*"/)) {
            s = substr(line, RSTART, RLENGTH)
            dir = s; sub(/>, ".*/, "", dir); sub(/^[^<]*</, "", dir)
            name = s; sub(/^[^"]*"/, "", name); sub(/"$/, "", name)
            print (name ~ /^\// ? name : dir "/" name)
            line = substr(line, RSTART + RLENGTH)
        }
    }' "$log" | sort -u >written
    bad=$(awk 'NR == FNR { ok[++n] = $0; next }
        { for (i = 1; i <= n; i++)
              if ($0 == ok[i] || index($0, ok[i] "/") == 1) next
          print }' dirs written)
    if [ -n "$bad" ]; then
        echo "$(basename "$1"): writes outside its writable directories:"
        echo "$bad"
        echo "(writable: $(tr '\n' ' ' <dirs))"
        return 1
    fi
    test -s written || { echo "$(basename "$1"): no write seen"; return 1; }
}

# pid_with FILE: the pid of a process of ours that has FILE open
pid_with() {
    for fd in /proc/[0-9]*/fd/*; do
        if [ "$(readlink "$fd" 2>/dev/null)" = "$1" ]; then
            p=${fd#/proc/}
            echo "${p%%/*}"
            return 0
        fi
    done
    return 1
}

# ---- Redis: the example ACL users over TCP, a password over a socket ----

start_redis sock --requirepass pw-sock --unixsocket "$TMP/redis.sock" \
    --unixsocketperm 700
sed -e "s/>CHANGE-ME-\([a-z]*\)/>pw-\1/" "$TOP/examples/users.acl" >users.acl
start_redis acl --aclfile "$TMP/users.acl"
SOCK="unix://$TMP/redis.sock"
tcp_url() {
    echo "redis://logpipe-$1@127.0.0.1:$REDIS_PORT/0"
}
admin() {
    redis-cli -p "$REDIS_PORT" --user admin --pass pw-admin --no-auth-warning "$@"
}
sock() {
    redis-cli -s "$TMP/redis.sock" -a pw-sock --no-auth-warning "$@"
}
mkdir -p "$U/cred" "$U/var/log/logpipe" "$U/var/lib/logpipe" \
    "$U/var/lib/prometheus/node-exporter" "$U/var/log/app" "$U/journal"

test_expect_success 'rotate: compresses and deletes, no network, in its sandbox' '
    unit=$TOP/examples/logpipe-rotate.service &&
    a=$U/var/log/logpipe/api &&
    mkdir -p $a &&
    y=$(date -u -d yesterday +%Y-%m-%d) && old=$(date -u -d "-40 days" +%Y-%m-%d) &&
    gen_events 100 >$a/$y.jsonl && gen_events 10 >$a/$old.jsonl &&
    touch -d "-2 hours" $a/$y.jsonl $a/$old.jsonl &&
    traced $unit rot.log "" >rot.out &&
    test -f $a/$y.jsonl.gz && test ! -e $a/$y.jsonl && test ! -e $a/$old.jsonl ||
        { cat rot.out; find $a; false; } &&
    check $unit rot.log &&
    ! grep -q "^[0-9]* *socket(" rot.log
'

test_expect_success 'stat: reads Redis over TCP and a unix socket, writes its metrics, in its sandbox' '
    unit=$TOP/examples/logpipe-stat.service &&
    prom=$U/var/lib/prometheus/node-exporter/logpipe.prom &&
    echo pw-stat >$U/cred/redis-password &&
    traced $unit stat1.log "$(tcp_url stat)" &&
    grep_q "^logpipe_redis_up 1$" $prom &&
    grep_q "^logpipe_archive_files{dir=\"$U/var/log/logpipe\"} 1$" $prom &&
    check $unit stat1.log &&
    grep_q "socket(AF_INET," stat1.log &&
    rm $prom &&
    echo pw-sock >$U/cred/redis-password &&
    traced $unit stat2.log "$SOCK" &&
    grep_q "^logpipe_redis_up 1$" $prom &&
    check $unit stat2.log &&
    grep_q "socket(AF_UNIX," stat2.log
'

test_expect_success 'drain: archives over TCP, writes its metrics, in its sandbox' '
    unit=$TOP/examples/logpipe-drain.service
    echo pw-drain >$U/cred/redis-password
    gen_events 50 | LOGPIPE_REDIS_PASSWORD=pw-send logpipe-send -r "$(tcp_url send)"
    arch=$U/var/log/logpipe
    rm -rf $arch/*
    traced $unit drain.log "$(tcp_url drain)" &
    pid=$!
    wait_for 30 pid_with $arch
    dpid=$(pid_with $arch)
    echo "$dpid" >>"$TMP/.pids"
    wait_for 30 "test \$(cat $arch/*/*.jsonl 2>/dev/null | wc -l) -eq 50" &&
    kill "$dpid" && wait $pid &&
    grep_q "^logpipe_drain_" $U/var/lib/prometheus/node-exporter/logpipe-drain.prom &&
    check $unit drain.log &&
    grep_q "socket(AF_INET," drain.log
'

# send_tail URL CLI: the tail unit follows a file (logpipe-send --follow)
# and sends 20 lines appended while it runs, and one that is not JSON to
# its rejects file; CLI reads the stream back; SIGTERM ends it (65: the
# line it rejected), and its position stays in Redis: a second start sends
# nothing again
send_tail() {
    unit=$TOP/examples/logpipe-send-tail@.service
    tf=$U/var/log/app/api.ndjson
    gen_events 20 >events
    # one line there at the start: send holds the file open to read on
    head -n 1 events >$tf
    $2 DEL logs:stream logs:stream:producers >/dev/null
    traced $unit tail.log "$1" api &
    pid=$!
    wait_for 30 pid_with $tf || return 1
    sendpid=$(pid_with $tf)
    # stopped at exit whatever happens: send and strace end then
    echo "$sendpid" >>"$TMP/.pids"
    tail -n +2 events >>$tf
    echo "not json" >>$tf
    wait_for 30 "test \$($2 XLEN logs:stream) -eq 20" || return 1
    kill "$sendpid" || return 1
    rc=0
    wait $pid || rc=$?
    test $rc -eq 65 || { echo "send: status $rc, not 65"; return 1; }
    test "$(cat $U/var/lib/logpipe/rejects-api.ndjson)" = "not json" &&
    check $unit tail.log || return 1
    $2 --raw HKEYS logs:stream:producers | grep -q ":follow:" || return 1
    # again: nothing twice
    gen_events 5 >>$tf
    traced $unit tail2.log "$1" api &
    pid=$!
    wait_for 30 pid_with $tf || return 1
    sendpid=$(pid_with $tf)
    echo "$sendpid" >>"$TMP/.pids"
    wait_for 30 "test \$($2 XLEN logs:stream) -eq 25" || return 1
    sleep 0.3
    kill "$sendpid" && wait $pid &&
    test "$($2 XLEN logs:stream)" -eq 25
}

test_expect_success 'send-tail@: a file into Redis over TCP, in its sandbox' '
    echo pw-send >$U/cred/redis-password &&
    send_tail "$(tcp_url send)" admin &&
    grep_q "socket(AF_INET," tail.log
'

test_expect_success 'send-tail@: the same over a unix socket' '
    rm -rf $U/var/lib/logpipe/* &&
    echo pw-sock >$U/cred/redis-password &&
    send_tail "$SOCK" sock &&
    grep_q "socket(AF_UNIX," tail.log
'

# The http unit is socket-activated: traced, it listens on a port of its
# own instead (bind and listen: calls a passed socket would not need, so
# the check is the stricter). A POST into Redis, one into the WAL while
# Redis is away (synced, answered 200, sent when it is back), and SIGTERM:
# exit 0.
test_expect_success 'http: requests into Redis over TCP, and into its WAL, in its sandbox' '
    unit=$TOP/examples/logpipe-http.service
    wal=$U/var/lib/logpipe/http-wal
    echo pw-send >$U/cred/redis-password
    admin DEL logs:stream >/dev/null
    # the port it took, written (test-only) where it may write
    addr=$U/var/lib/logpipe/http.addr
    rm -rf $U/var/lib/logpipe/*
    LOGPIPE_TEST_ADDR_FILE=$addr TRACE_ARGS="--listen 127.0.0.1:0" \
        traced $unit http.log "$(tcp_url send)" &
    pid=$!
    wait_for 30 test -s $addr
    wait_for 30 pid_with $wal
    hpid=$(pid_with $wal)
    echo "$hpid" >>"$TMP/.pids"
    url=http://$(head -n 1 $addr)/v1/events
    gen_events 20 >ev
    curl -sS -o body -w "%{http_code}\n" -H "Content-Type: application/x-ndjson" \
        --data-binary @ev "$url" >code
    test "$(cat code)" = 200 || { cat code body; false; }
    test "$(admin XLEN logs:stream)" -eq 20
    # Redis away (restarted empty: no persistence here): into the WAL
    stop_redis
    gen_events 7 >ev2
    curl -sS -o body -w "%{http_code}\n" -H "Content-Type: application/x-ndjson" \
        --data-binary @ev2 "$url" >code
    test "$(cat code)" = 200 || { cat code body; false; }
    restart_redis
    wait_for 30 "test \$(admin XLEN logs:stream) -eq 7"
    kill "$hpid"
    wait $pid
    check $unit http.log
    grep_q "socket(AF_INET," http.log
'

JR=/lib/systemd/systemd-journal-remote
if [ ! -x "$JR" ] && [ -x /usr/lib/systemd/systemd-journal-remote ]; then
    JR=/usr/lib/systemd/systemd-journal-remote
fi
if [ ! -x "$JR" ]; then
    test_skip 'send-journal: the journal into Redis, in its sandbox' \
        'systemd-journal-remote is not installed (package systemd-journal-remote): no journal file to read'
    test_done
fi

# journal N FILE FIRST: N entries of this boot in journal FILE (export
# format through systemd-journal-remote), their monotonic times from
# FIRST on (the journal orders a boot's entries by them)
journal() {
    boot=$(tr -d - </proc/sys/kernel/random/boot_id)
    now=$(date +%s%6N)
    i=0
    while [ $i -lt "$1" ]; do
        i=$((i + 1))
        printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\nMESSAGE=entry %s of %s\n_SYSTEMD_UNIT=app@%s.service\n_HOSTNAME=h\nPRIORITY=6\n\n' \
            $((now + i)) $(($3 + i)) "$boot" $i "$2" $i
    done | "$JR" --output="$U/journal/$2.journal" - 2>/dev/null
}

test_expect_success 'send-journal: the journal into Redis over TCP, in its sandbox' '
    unit=$TOP/examples/logpipe-send-journal.service
    echo pw-send >$U/cred/redis-password
    admin DEL logs:stream logs:stream:producers >/dev/null
    rm -rf $U/var/lib/logpipe/*
    journal 5 one 0
    # the first start: at the end of the journal
    traced $unit journal.log "$(tcp_url send)" &
    pid=$!
    wait_for 30 pid_with $U/journal/one.journal
    jpid=$(pid_with $U/journal/one.journal)
    echo "$jpid" >>"$TMP/.pids"
    journal 2 two 5
    wait_for 30 "test \$(admin XLEN logs:stream) -eq 2"
    kill "$jpid"
    wait $pid
    check $unit journal.log
    grep_q "socket(AF_INET," journal.log
    # logged while the unit is down: sent when it starts again, once
    journal 3 three 7
    traced $unit journal2.log "$(tcp_url send)" &
    pid=$!
    wait_for 30 "test \$(admin XLEN logs:stream) -eq 5"
    jpid=$(pid_with $U/journal/three.journal)
    sleep 0.3
    kill "$jpid"
    wait $pid
    admin --raw XRANGE logs:stream - + | sed -n "s/.*\"message\":\"\([^\"]*\)\".*/\1/p" >got
    printf "entry %s of two\n" 1 2 >want
    printf "entry %s of three\n" 1 2 3 >>want
    test_cmp want got
    admin --raw XRANGE logs:stream - + >stream
    grep_q "\"service\":\"app@2.service\"" stream
    check $unit journal2.log
'

test_done
