#!/bin/sh
# demo.sh -- the example pipeline against a private redis-server.
#
# Starts redis-server on a free port in a temp dir, sends a few events
# (two of them broken) with logpipe-send, archives them with
# logpipe-drain --once, shows the archive and the dead letters, and stops
# the server by its pid. Run it with `make demo`.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
PATH="$top/cmd:$PATH"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/logpipe-demo.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# | head closes our stdout: the EXIT trap must still stop the server
trap 'exit 141' PIPE
trap 'exit 130' INT TERM

# a free port: redis-server exits at once when the port is taken
for try in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000 + 20000 ))
    redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' \
        --appendonly yes --appendfsync always --logfile "$tmp/redis.log" \
        >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null &&
          ! redis-cli -p "$port" ping >/dev/null 2>&1; do
        sleep 0.1; i=$((i + 1))
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
done
[ -n "$pid" ] || { echo "demo: cannot start redis-server" >&2; exit 1; }
export LOGPIPE_REDIS_URL="redis://127.0.0.1:$port/0"

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
yesterday=$(date -u -d '-20 hours' +%Y-%m-%dT%H:%M:%SZ)
cat >"$tmp/events.ndjson" <<EOF2
{"timestamp":"$yesterday","service":"api","level":"info","msg":"GET /v1/items 200","ms":12}
{"timestamp":"$yesterday","service":"auth","level":"warn","msg":"token about to expire","user":"alice"}
{"timestamp":"$now","service":"api","level":"error","msg":"upstream timeout","trace_id":"4bf92f3577b34da6"}
[{"timestamp":"$now","service":"billing","level":"info","msg":"invoice sent","amount":12.50},{"timestamp":"$now","service":"billing","level":"info","msg":"café reçu"}]
{"timestamp":"$now","service":"api","level":"info","msg":"oops" 
{"timestamp":"$now","service":"../../etc","level":"info","msg":"a path that must not be"}
{"timestamp":"$now","level":"debug","msg":"no service member"}
EOF2

if [ -t 1 ]; then
    say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
    say() { printf '\n$ %s\n' "$*"; }
fi

say "logpipe-send --rejects rejects.ndjson < events.ndjson"
(cd "$tmp" && logpipe-send --rejects rejects.ndjson <events.ndjson)
echo "(exit status $?: 65 means some lines were rejected, the rest was sent;"
echo " the array line holds two events, so 7 lines make 7 events)"

say "redis-cli XLEN logs:stream"
redis-cli -p "$port" XLEN logs:stream

say "logpipe-drain --once --dir logs"
(cd "$tmp" && logpipe-drain --once --dir logs)
echo "(exit status $?)"

say "find logs -type f"
(cd "$tmp" && find logs -type f | sort)

# the day files (the others are the drain's: its lock and consumer files)
for f in $(cd "$tmp" && find logs -type f -name "*.jsonl" | sort); do
    say "cat $f"
    cat "$tmp/$f"
done

say "redis-cli XRANGE logs:dlq - +   (the entry with an unsafe path)"
redis-cli -p "$port" --raw XRANGE logs:dlq - + |
    awk 'NR == 1 { print "entry " $0; next }
         NR % 2 == 0 { f = $0; next }
         { printf "  %-14s %s\n", f, $0 }'

say "cat rejects.ndjson"
cat "$tmp/rejects.ndjson"
