#!/bin/sh
# bench-scale-count.sh -- drain's cost at 1, 2,000 and 20,000 services
# counted, not only timed (a shared machine): syscalls per event
# (strace -c -f), user+sys seconds (/usr/bin/time), wall time, the median
# of REPS runs; the "files there" case of bench.sh's scale rows.
#   DRAINS="OLD NEW" (drain binaries, side by side in one run)
#   KS="1 2000 20000" SCALE_N=200000 REPS=3 STRACE=1 CALLGRIND=0
#   KEEP=DIR: the strace and callgrind outputs copied there
set -eu
. "$(dirname "$0")/lib.sh"

DRAINS=${DRAINS:-$TOP/cmd/logpipe-drain}
KS=${KS:-1 2000 20000}
SCALE_N=${SCALE_N:-200000}
REPS=${REPS:-3}
STRACE=${STRACE:-1}
CALLGRIND=${CALLGRIND:-0}
start_redis scale
LOGPIPE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export LOGPIPE_REDIS_URL

scale_corpus() {
    awk -v n="$SCALE_N" -v k="$1" -v t0="$(date +%s)" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"timestamp\":%d,\"service\":\"svc-%05d\",\"level\":\"info\",\"user\":{\"id\":%d},\"http\":{\"path\":\"/v1/items/%d\",\"status\":200},\"msg\":\"request served in %d ms\"}\n",
                t0 - 60, i % k, i % 1000, i, i % 500
    }'
}
now() { date +%s.%N; }
load() { rcli DEL "s$1" >/dev/null; logpipe-send -s "s$1" <ev$1; }
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for k in $KS; do
    scale_corpus "$k" >ev$k
done
n=0
for dr in $DRAINS; do
    n=$((n + 1))
    for k in $KS; do
        # the fresh tree first: the rows below are "files there"
        load "$k"
        "$dr" -s "s$k" --once -d "t$n-$k"
        if [ "$STRACE" = 1 ]; then
            load "$k"
            strace -c -f -o "st$n-$k" "$dr" -s "s$k" --once -d "t$n-$k"
            awk -v n="$SCALE_N" -v dr="$n" -v k="$k" '
                $NF ~ /^(openat|openat2|pread64|write|writev|flock|newfstatat|fstat|statx|close|fdatasync|syncfs|read|lseek|ftruncate|fcntl|mkdir|unlink|unlinkat|futex|epoll_wait|poll|sendto|recvfrom)$/ && $4 ~ /^[0-9]+$/ {
                    printf "# drain%d k=%-5s %-10s %8.3f /event\n", dr, k, $NF, $4 / n }
                $NF == "total" { printf "# drain%d k=%-5s %-10s %8.3f /event\n", dr, k, "TOTAL", $4 / n }' "st$n-$k"
            [ -z "${KEEP:-}" ] || cp "st$n-$k" "$KEEP/"
        fi
        if [ "$CALLGRIND" = 1 ]; then
            load "$k"
            valgrind --tool=callgrind --callgrind-out-file="cg$n-$k" \
                "$dr" -s "s$k" --once -d "t$n-$k" 2>"cgerr$n-$k"
            ir=$(awk '/^summary:/ { print $2 }' "cg$n-$k")
            echo "# drain$n k=$k instructions/event $((ir / SCALE_N))"
            [ -z "${KEEP:-}" ] || cp "cg$n-$k" "$KEEP/"
        fi
    done
done
# timing, interleaved: drain1 k, drain2 k, ... per repetition
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    n=0
    for dr in $DRAINS; do
        n=$((n + 1))
        for k in $KS; do
            load "$k"
            s=$(now)
            /usr/bin/time -f '%U %S %M' -o "tm" "$dr" -s "s$k" --once -d "t$n-$k"
            e=$(now)
            read -r u sy rss <tm
            awk -v s="$s" -v e="$e" -v u="$u" -v sy="$sy" -v N="$SCALE_N" \
                'BEGIN { printf "%.4f %.0f %.2f %.2f\n", e - s, N / (e - s), u + sy, 0 }' >>"w$n-$k"
            echo "$rss" >>"rss$n-$k"
        done
    done
done
n=0
[ "$REPS" -gt 0 ] || DRAINS=
for dr in $DRAINS; do
    n=$((n + 1))
    for k in $KS; do
        ws=$(awk '{ print $1 }' "w$n-$k" | med)
        cpu=$(awk '{ print $3 }' "w$n-$k" | med)
        one=$(awk '{ print $1 }' "w$n-$(echo $KS | cut -d' ' -f1)" | med)
        awk -v n="$n" -v k="$k" -v w="$ws" -v c="$cpu" -v o="$one" -v N="$SCALE_N" \
            -v rss="$(med <"rss$n-$k")" -v all="$(awk '{ printf "%s ", $1 }' "w$n-$k")" \
            'BEGIN { printf "# drain%d k=%-5s wall %.3fs (%s) %.0f ev/s ratio %.2f cpu %.2fs rss %d KB\n", n, k, w, all, N / w, o / w, c, rss }'
    done
done
for k in $KS; do
    test "$(find "t1-$k" -name '*.jsonl' -exec cat {} + | wc -l)" -ge "$SCALE_N"
done
echo "1..0 # measured"
