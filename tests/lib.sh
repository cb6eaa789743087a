# lib.sh -- TAP helpers for the integration tests, git style
#
#   . "$(dirname "$0")/lib.sh"
#   start_redis
#   test_expect_success 'title' '
#       commands that must all succeed
#   '
#   test_done
#
# Every test gets a private temp dir ($TMP, also the working directory) and,
# when it asks, a private redis-server on a free port, stopped by pid at
# exit. Nothing is shared between test files, so prove may run them in
# parallel.
#
# A Redis that is not there is never a random TCP port: another test's
# redis-server may be listening on it. It is $(dead_redis), a unix socket
# in $TMP that does not exist; where the test needs TCP (a message naming
# host:port, a URL with a password), it is port $DEAD_PORT after
# reserve_dead_port, a port this test holds bound without listening on it.
# random_port is only for a server the test starts itself, and checks.
#
# What several test files need is here once, each with its use in the
# comment above it: servers (start_redis, start_postgres), events
# (gen_events), archive trees (set_days, day_file), a stdout whose reader
# has gone (gone), checks (test_cmp, expect_exit, grep_q, wait_for).

TOP=$(cd "$(dirname "$0")/.." && pwd)
PATH="$TOP/cmd:$PATH"
export PATH TOP
unset LOGPIPE_REDIS_URL LOGPIPE_STREAM LOGPIPE_GROUP LOGPIPE_DLQ LOGPIPE_DIR \
      LOGPIPE_REDIS_PASSWORD REDISCLI_AUTH
# the tests' own PostgreSQL (start_postgres), never the user's
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE \
      PGSERVICEFILE PGOPTIONS PGSSLMODE

TMP=$(mktemp -d "${TMPDIR:-/tmp}/logpipe-test.XXXXXX") || exit 1
cd "$TMP" || exit 1
test_count=0
test_failed=0
REDIS_PIDS=""

# every server started is recorded in $TMP/.pids (also from subshells), so
# that cleanup stops it whatever happened
cleanup() {
    set +e
    # PostgreSQL: SIGINT is its fast shutdown (TERM waits for clients)
    for p in $(cat "$TMP/.pgpids" 2>/dev/null); do
        kill -INT "$p" 2>/dev/null
    done
    REDIS_PIDS="$REDIS_PIDS $(cat "$TMP/.pids" 2>/dev/null)"
    for p in $REDIS_PIDS; do
        kill -CONT "$p" 2>/dev/null
        kill "$p" 2>/dev/null
    done
    for p in $REDIS_PIDS; do
        # wait for the pid without relying on it being our child
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -9 "$p" 2>/dev/null
    done
    cd /
    if [ -n "${LP_KEEP_TMP:-}" ]; then
        echo "# kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 141' PIPE
trap 'exit 130' INT TERM

say() { printf '# %s\n' "$*"; }

# test_expect_success TITLE BODY: BODY runs in a subshell with set -e, so
# a failing command fails the test: one meant to fail must say so,
# `cmd || :` or expect_exit N cmd. set -e ignores what POSIX says it
# ignores: every command of an && list but its last, and `! cmd`. So a
# body is either one && chain to its end, or each list that ends before
# the body does ends `|| exit 1` (a && b || exit 1), or checks stand on
# lines of their own; `! cmd` only inside a chain or last; no `a && b &`
# (all of it runs in the background). tests/chainlint.pl checks every
# body for these (t0001, part of make check). Its output is
# shown as TAP comments when it fails. LP_TRACE=1 runs bodies under
# set -x too, to see which command failed (the trace also goes where a
# body sends stderr, so a test that compares its stderr fails in such a
# run: read it, do not trust it).
test_expect_success() {
    test_count=$((test_count + 1))
    # dash runs the EXIT trap in a subshell that set -e ends: clear it,
    # or one failing test would stop the servers of all the others
    # set -e is ignored in a subshell that is the condition of an if (or
    # any command of && || lists but the last): run it as a plain command
    case $- in *e*) _e=1; set +e ;; *) _e= ;; esac
    ( trap - EXIT PIPE INT TERM; set -e; [ -z "${LP_TRACE:-}" ] || set -x
      eval "$2" ) >"$TMP/.out" 2>&1
    _rc=$?
    [ -z "$_e" ] || set -e
    if [ "$_rc" -eq 0 ]
    then
        echo "ok $test_count - $1"
    else
        test_failed=$((test_failed + 1))
        echo "not ok $test_count - $1"
        # what it said, on stderr: prove shows a test's stderr, never the
        # comments on its stdout (so CI's log names the cause)
        { sed -e 's/^/#   /' "$TMP/.out" | tail -n 60
          echo "# ^ $(basename "$0"), case $test_count: $1"; } >&2
    fi
}

# test_skip TITLE REASON
test_skip() {
    test_count=$((test_count + 1))
    echo "ok $test_count - $1 # SKIP $2"
}

test_done() {
    echo "1..$test_count"
    [ "$test_failed" -eq 0 ]
    exit $?
}

# test_cmp EXPECTED ACTUAL: files must be equal (diff shown otherwise)
test_cmp() {
    diff -u "$1" "$2"
}

# expect_exit CODE COMMAND...: runs COMMAND, its status must be CODE
expect_exit() {
    want=$1; shift
    set +e
    "$@"
    got=$?
    set -e
    if [ "$got" -ne "$want" ]; then
        echo "exit status $got, expected $want: $*" >&2
        return 1
    fi
}

# grep_q PATTERN FILE: like grep -q, but shows FILE when it fails
grep_q() {
    if ! grep -q -e "$1" "$2"; then
        echo "'$1' not found in $2:" >&2
        sed -e 's/^/    /' "$2" | head -n 30 >&2
        echo >&2    # a file without a last LF: the TAP line stays its own
        return 1
    fi
}

# random_port: a port to start a server of our own on, which may be taken
# (start the server, then check it is ours: start_redis). Never a Redis
# that is not there: that is dead_redis or reserve_dead_port. Below the
# kernel's ephemeral range (32768 and up), which client sockets take by
# the thousand during a run
random_port() {
    echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 + 20000 ))
}

# dead_redis: prints the URL of a Redis that is not there and cannot come:
# a unix socket in this test's own $TMP that nothing creates. Connecting
# fails at once with "No such file or directory".
dead_redis() {
    echo "unix://$TMP/no-redis.sock"
}

# reserve_dead_port: for a test that needs a TCP Redis that is not there.
# Call it outside test bodies. Holds a port on 127.0.0.1 bound without
# listening (no SO_REUSEADDR), until the test file ends: connecting to it
# is refused, and no other server can bind it meanwhile (a random port
# could be another test's live server). Sets DEAD_PORT. The port is the
# kernel's pick, from the ephemeral range, where random_port never looks.
reserve_dead_port() {
    rm -f "$TMP/.deadport"
    perl -MSocket -e '
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
        bind($s, pack_sockaddr_in(0, inet_aton("127.0.0.1")))
            or die "bind: $!\n";
        my ($port) = unpack_sockaddr_in(getsockname($s));
        open(my $f, ">", "$ARGV[0].tmp") or die "$ARGV[0].tmp: $!\n";
        print $f "$port\n"; close $f;
        rename("$ARGV[0].tmp", $ARGV[0]) or die "rename: $!\n";
        close STDIN; close STDOUT;
        # until cleanup kills it, or the test file is gone
        my $pp = getppid();
        sleep 1 while getppid() == $pp;
    ' "$TMP/.deadport" &
    echo $! >>"$TMP/.pids"
    if ! wait_for 30 test -s "$TMP/.deadport"; then
        echo "Bail out! cannot reserve a port"
        exit 1
    fi
    DEAD_PORT=$(cat "$TMP/.deadport")
}

# start_redis [NAME [redis-server options...]]: call it outside test bodies
# (they run in a subshell). Starts redis-server on a
# free port in $TMP/NAME (default "redis") and sets REDIS_PORT, REDIS_PID,
# REDIS_DIR and LOGPIPE_REDIS_URL. A port already taken makes redis-server
# exit at once: we try another.
start_redis() {
    name=${1:-redis}
    [ $# -gt 0 ] && shift
    dir="$TMP/$name"
    mkdir -p "$dir"
    tries=0
    while :; do
        tries=$((tries + 1))
        if [ $tries -gt 20 ]; then
            echo "Bail out! cannot start redis-server"
            exit 1
        fi
        port=$(random_port)
        : >"$dir/redis.log"
        redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
            --save '' --appendonly no --logfile "$dir/redis.log" \
            --daemonize no "$@" >/dev/null 2>&1 &
        pid=$!
        echo "$pid" >>"$TMP/.pids"
        i=0
        while [ $i -lt 100 ]; do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            # ours, not another test's server on a port we also tried
            if grep -q "Ready to accept connections" "$dir/redis.log" &&
               redis-cli -p "$port" ping 2>&1 | grep -qE "PONG|NOAUTH"; then
                echo "$pid" >"$dir/pid"
                REDIS_PORT=$port
                REDIS_PID=$pid
                REDIS_DIR=$dir
                REDIS_ARGS="$*"
                LOGPIPE_REDIS_URL="redis://127.0.0.1:$port/0"
                export LOGPIPE_REDIS_URL REDIS_PORT
                return 0
            fi
            sleep 0.05
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

# redis_pid: the pid of the last started redis-server, also after a
# restart_redis in a test body (a subshell)
redis_pid() {
    cat "$REDIS_DIR/pid"
}

# stop_redis [SIGNAL]: stops the last started redis-server and waits
stop_redis() {
    _p=$(redis_pid)
    kill -CONT "$_p" 2>/dev/null
    kill "-${1:-TERM}" "$_p" 2>/dev/null
    # in a test body (a subshell) the server is not our child: wait says
    # 127; when it is, a signal's status is >= 128; the loop below waits
    wait "$_p" 2>/dev/null || :
    while kill -0 "$_p" 2>/dev/null; do sleep 0.05; done
}

# restart_redis: starts redis-server again on the same port and directory
# (so an AOF written before is loaded), after redis-check-aof --fix as
# logpipe(7) asks of operators: Redis 7.0 cuts an AOF that a crash tore
# in the middle of a transaction at its last whole command, inside the
# transaction, and the load after the next restart runs that
# transaction's commands with the next one's (valkey pull request 4342):
# a batch stored twice. redis-check-aof cuts it before its MULTI.
restart_redis() {
    for _m in "$REDIS_DIR"/appendonlydir/*.manifest; do
        [ -f "$_m" ] || continue
        redis-check-aof "$_m" >/dev/null 2>&1 ||
            echo y | redis-check-aof --fix "$_m" >>"$REDIS_DIR/check-aof.log" 2>&1 ||
            { echo "redis-check-aof --fix $_m failed" >&2; return 1; }
    done
    i=0
    while :; do
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
            --dir "$REDIS_DIR" --save '' --appendonly no \
            --logfile "$REDIS_DIR/redis.log" --daemonize no \
            $REDIS_ARGS >/dev/null 2>&1 &
        REDIS_PID=$!
        echo "$REDIS_PID" >>"$TMP/.pids"
        echo "$REDIS_PID" >"$REDIS_DIR/pid"
        j=0
        while [ $j -lt 200 ]; do
            if redis-cli -p "$REDIS_PORT" ping 2>&1 | grep -qE "PONG|NOAUTH"
            then
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
            j=$((j + 1))
        done
        i=$((i + 1))
        # the port may still be in TIME_WAIT use: try again
        [ $i -lt 20 ] || { echo "cannot restart redis" >&2; return 1; }
        sleep 0.2
    done
}

rcli() {
    redis-cli -p "$REDIS_PORT" "$@"
}

# gen_events N [SERVICES] [T0]: N events, one per line, with a seq member
# 1..N, services cycling through SERVICES (default "api db web"), and
# timestamps starting at T0 (epoch seconds, default now - 60) one second
# apart modulo 50 seconds, as RFC 3339.
gen_events() {
    awk -v n="$1" -v svcs="${2:-api db web}" -v t0="${3:-$(($(date +%s) - 60))}" '
    BEGIN {
        ns = split(svcs, s, " ")
        for (i = 1; i <= n; i++) {
            t = t0 + (i % 50)
            printf "{\"timestamp\":\"%s\",\"service\":\"%s\",\"level\":\"%s\",\"seq\":%d,\"msg\":\"event %d caf\303\251 \\\"q\\\"\"}\n",
                strftime("%Y-%m-%dT%H:%M:%SZ", t, 1), s[(i - 1) % ns + 1],
                (i % 7 == 0) ? "error" : "info", i, i
        }
    }'
}

# archive_events DIR: every archive line under DIR without its _id,
# sorted (what went in, as a multiset)
archive_events() {
    find "$1" -name '*.jsonl' -type f -exec cat {} + |
        sed -e 's/^{"_id":"[0-9]*-[0-9]*",/{/' -e 's/^{"_id":"[0-9]*-[0-9]*"}/{}/' |
        LC_ALL=C sort
}

# seqs FILE...: the seq numbers in archive or NDJSON lines, sorted
seqs() {
    cat "$@" | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' | sort -n
}

# tally N FILE: FILE holds seqs, one a line: each of 1..N exactly once and
# nothing else; says how many were lost and doubled
tally() {
    lost=$(awk -v n="$1" '{ seen[$1] = 1 }
        END { for (i = 1; i <= n; i++) if (!(i in seen)) m++; print m + 0 }' "$2")
    dups=$(awk '{ if (c[$1]++) d++ } END { print d + 0 }' "$2")
    say "lost: $lost, duplicates: $dups"
    [ "$lost" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$(wc -l <"$2")" -eq "$1" ] || {
        echo "lost $lost, duplicates $dups, $(wc -l <"$2") in all" >&2
        return 1
    }
}

# exactly N DIR...: every seq 1..N once in the day files under the DIRs,
# on whole archive lines
exactly() {
    _n=$1; shift
    find "$@" -name '*.jsonl' -type f -exec cat {} + >exactly.lines
    seqs exactly.lines >got
    tally "$_n" got || return 1
    # (_id <ms>-<seq>, or <shard>-<ms>-<seq> for a sharded stream)
    if grep -a -v -q -E '^\{"_id":"([0-9]+-)?[0-9]+-[0-9]+",.*\}$' exactly.lines; then
        echo "a line that is not a whole archive line" >&2
        return 1
    fi
}

# pending: how many entries group logpipe of logs:stream holds pending
pending() {
    rcli XPENDING logs:stream logpipe | head -n 1
}

# max_count: the highest delivery count among them (0 when none)
max_count() {
    rcli XPENDING logs:stream logpipe - + 100000 |
        awk 'NR % 4 == 0 { if ($1 > m) m = $1 } END { print m + 0 }'
}

# stopped PID: the process is stopped (SIGSTOP; t: stopped by a tracer)
stopped() {
    _s=$(cut -d" " -f3 "/proc/$1/stat") &&
    { test "$_s" = T || test "$_s" = t; }
}

# shards_total STREAM N: the entries over the N shards of STREAM (one
# server: rcli)
shards_total() {
    _t=0
    for _sh in $("$TOP/tests/shard-names" "$1" "$2"); do
        _t=$((_t + $(rcli XLEN "$_sh")))
    done
    echo "$_t"
}

# wait_for SECONDS COMMAND...: polls COMMAND (eval'd each time, so use
# helpers like test_xlen rather than $(...)) until it succeeds: every
# 50 ms for the first 2 s (most waits are short), then every 100 ms (a
# costly COMMAND polled long); gives up after SECONDS of sleeps between
# polls (ticks of 50 ms), so never sooner than SECONDS
wait_for() {
    limit=$(( $1 * 20 )); shift
    i=0
    while ! eval "$*" >/dev/null 2>&1; do
        [ $i -lt $limit ] || {
            echo "timed out waiting for: $*" >&2
            # (LP_WAIT_LOG: every time-out, also those a test lets pass)
            [ -z "${LP_WAIT_LOG:-}" ] ||
                echo "${0##*/}: $*" >>"$LP_WAIT_LOG"
            return 1
        }
        if [ $i -lt 40 ]; then
            sleep 0.05; i=$((i + 1))
        else
            sleep 0.1; i=$((i + 2))
        fi
    done
}

# test_xlen OP N [KEY]: the length of stream KEY (logs:stream) compares
test_xlen() {
    test "$(rcli XLEN "${3:-logs:stream}")" "$1" "$2"
}

# set_days: sets today, d1, d2, d3 and d9 to the UTC dates (YYYY-MM-DD) of
# today and of 1, 2, 3 and 9 days ago, the days of archive trees
# (day_file); call it outside test bodies
set_days() {
    today=$(date -u +%F)
    d1=$(date -u -d '-1 day' +%F)
    d2=$(date -u -d '-2 days' +%F)
    d3=$(date -u -d '-3 days' +%F)
    d9=$(date -u -d '-9 days' +%F)
}

# day_file DIR SERVICE DAY N: appends N archive lines of SERVICE on DAY to
# DIR/SERVICE/DAY.jsonl, as a drain writes them (_id 1700000000000-1 to
# -N, seq 1 to N, at noon), and makes the file an hour old (past rotate's
# --grace)
day_file() {
    mkdir -p "$1/$2"
    awk -v n="$4" -v s="$2" -v d="$3" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"_id\":\"1700000000000-%d\",\"timestamp\":\"%sT12:00:00Z\",\"service\":\"%s\",\"seq\":%d}\n", i, d, s, i
    }' >>"$1/$2/$3.jsonl"
    touch -d '1 hour ago' "$1/$2/$3.jsonl"
}

# gone TOOL ARGS...: runs the tool with a stdout whose reader has closed
# its end already (| head that is done); its exit status goes to the file
# rc, its stderr to err. The reader stays (its end closed) until the tool
# is done (rc written), not a fixed second.
gone() {
    rm -f closed rc
    { wait_for 10 test -e closed; "$@" 2>err; echo $? >rc; } |
        { exec <&-; touch closed; wait_for 60 test -e rc; }
}

# Memory figures mean nothing under AddressSanitizer (its shadow memory)
SAN=0
ldd "$TOP/cmd/logpipe-send" 2>/dev/null | grep -q libasan && SAN=1

# rss_under KB STATUS CMD...: runs CMD, which must exit with STATUS and
# whose peak RSS must stay under KB (not checked under SAN=1)
rss_under() {
    limit=$1 want=$2; shift 2
    # CMD's status is checked below, also when set -e is on
    rc=0
    /usr/bin/time -f %M -o rss.out "$@" || rc=$?
    kb=$(tail -n 1 rss.out)
    echo "# peak RSS of $1: $kb KB" >&2
    if [ "$SAN" = 0 ] && [ "$kb" -gt "$limit" ]; then
        echo "$1: peak RSS $kb KB, over $limit KB" >&2
        return 1
    fi
    if [ "$rc" -ne "$want" ]; then
        echo "$1: exit status $rc, expected $want" >&2
        return 1
    fi
}

# pg_bindir: the directory of PostgreSQL's server programs (initdb,
# pg_ctl), from pg_config or the newest /usr/lib/postgresql/*/bin
pg_bindir() {
    _d=$(pg_config --bindir 2>/dev/null)
    if [ -n "$_d" ] && [ -x "$_d/pg_ctl" ] && [ -x "$_d/initdb" ]; then
        echo "$_d"
        return 0
    fi
    for _d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$_d/pg_ctl" ] && [ -x "$_d/initdb" ]; then
            echo "$_d"
            return 0
        fi
    done
    return 1
}

# have_postgres: can start_postgres work here? If not, says why on stdout
# (for a test_skip) and fails.
have_postgres() {
    if ! pg_bindir >/dev/null; then
        echo "no PostgreSQL server binaries (apt-get install postgresql)"
        return 1
    fi
    if ! command -v psql >/dev/null 2>&1; then
        echo "no psql (apt-get install postgresql-client)"
        return 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            echo "running as root and there is no postgres user to run it as"
            return 1
        fi
        if ! command -v runuser >/dev/null 2>&1 &&
            ! command -v setpriv >/dev/null 2>&1; then
            echo "running as root and neither runuser nor setpriv is there"
            return 1
        fi
    fi
    return 0
}

# as_pg COMMAND...: runs COMMAND as the user the server runs as (postgres
# when we are root: PostgreSQL refuses to run as root; ourselves otherwise)
as_pg() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    fi
}

# start_postgres [NAME]: call it outside test bodies. Makes a cluster in
# $TMP/NAME (default "pg"; initdb, trust authentication, UTF-8, C locale),
# starts it listening on 127.0.0.1 and on a socket in that directory, on a
# free port, with fsync off, and exports PGHOST (the socket directory),
# PGPORT, PGUSER, PGDATABASE, so that plain `psql` reaches it; also
# PG_DIR, PG_PID and PG_URL (TCP). It is stopped by pid at exit, whatever
# happens; stop_postgres stops it earlier. Check have_postgres first.
start_postgres() {
    PG_BIN=$(pg_bindir) || { echo "Bail out! no PostgreSQL"; exit 1; }
    PG_DIR="$TMP/${1:-pg}"
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        # the server's user must reach its directory: x, not r, on $TMP
        chmod 711 "$TMP"
        chown postgres "$PG_DIR"
    fi
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust \
        -E UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        sed -e 's/^/# /' "$PG_DIR/initdb.log" | tail -n 20
        echo "Bail out! initdb failed"
        exit 1
    fi
    tries=0
    while :; do
        tries=$((tries + 1))
        if [ $tries -gt 20 ]; then
            sed -e 's/^/# /' "$PG_DIR/pg.log" | tail -n 20
            echo "Bail out! cannot start PostgreSQL"
            exit 1
        fi
        port=$(random_port)
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" \
            -w -t 60 -o "-c listen_addresses=127.0.0.1 -c port=$port \
                -c unix_socket_directories=$PG_DIR -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off \
                -c max_connections=20 -c shared_buffers=16MB" \
            start >/dev/null 2>&1; then
            PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
            echo "$PG_PID" >>"$TMP/.pgpids"
            echo "$PG_PID" >>"$TMP/.pids"
            break
        fi
        # a port taken: the server exits at once; pg_ctl says so
        _p=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
        [ -n "$_p" ] && kill -INT "$_p" 2>/dev/null
        sleep 0.2
    done
    PGHOST=$PG_DIR
    PGPORT=$port
    PGUSER=postgres
    PGDATABASE=postgres
    PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    # what psql reads and sends: no ~/.psqlrc, UTF-8 whatever the locale
    PSQLRC=/dev/null
    PGCLIENTENCODING=UTF8
    export PGHOST PGPORT PGUSER PGDATABASE PG_URL PSQLRC PGCLIENTENCODING
}

# stop_postgres: stops the server start_postgres started, and waits
stop_postgres() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
    while kill -0 "$PG_PID" 2>/dev/null; do sleep 0.05; done
}
