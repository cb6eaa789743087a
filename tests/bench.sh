#!/bin/sh
# bench.sh -- `make bench`: throughput figures, each next to its ceiling,
# measured in the same run on a private redis-server (appendonly no).
# QUICK=1 makes it short. Timing lives here, never in the tests.
set -eu
. "$(dirname "$0")/lib.sh"
N=${N:-$([ -n "${QUICK:-}" ] && echo 100000 || echo 500000)}

start_redis bench
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
secs() {
    s=$(date +%s.%N); "$@"; e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'
}

echo "# logpipe benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, N=$N"
"$TOP/tests/bench-json" | sed 's/^/# /'

awk -v n="$N" -v t0="$(date +%s)" 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "{\"timestamp\":%d,\"service\":\"svc-%02d\",\"app\":\"app%d\",\"level\":\"info\",\"user_id\":%d,\"msg\":\"request completed in %d ms \303\251t\303\251\",\"meta\":{\"path\":\"/v1/items/%d\",\"status\":200}}\n",
            t0 - 60, i % 20, i % 5, i % 1000, i % 500, i
}' >events
# the same XADD commands in RESP, for redis-cli --pipe
LC_ALL=C awk '{ printf "*5\r\n$4\r\nXADD\r\n$11\r\nlogs:stream\r\n$1\r\n*\r\n$4\r\ndata\r\n$%d\r\n%s\r\n", length($0), $0 }' \
    events >events.resp

t_pipe=$(secs sh -c "redis-cli -p $REDIS_PORT --pipe <events.resp >/dev/null")
rcli DEL logs:stream >/dev/null
t_send=$(secs sh -c "logpipe-send <events")
test_xlen -eq "$N" || { echo "send lost events" >&2; exit 1; }
t_drain=$(secs sh -c "logpipe-drain --once -d arch")

p=$(rate "$N" "$t_pipe"); s=$(rate "$N" "$t_send"); d=$(rate "$N" "$t_drain")
printf '%-34s %10s %10s %7s\n' figure events/s ceiling ratio
printf '%-34s %10s %10s %7.2f\n' "send (vs redis-cli --pipe)" "$s" "$p" \
    "$(awk -v a="$s" -v b="$p" 'BEGIN { print a / b }')"
printf '%-34s %10s %10s %7s\n' "drain into files, fsync per batch" "$d" - -
