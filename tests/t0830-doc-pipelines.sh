#!/bin/sh
# t0830-doc-pipelines.sh -- every pipeline of the README, the man pages and
# examples/ that runs logpipe-replay or logpipe-agg, taken from the
# documents themselves and run as written, against an archive of five
# services over many days whose counts are known: each result is checked
# exactly against what the events say. Only the names of a deployment are
# changed: /var/log/logpipe (the archive), /var/lib/logpipe/stats.db and
# /var/lib/logpipe/wal, the alert URL; "jq ..." (a placeholder) is jq -c .
# The last test checks that no such pipeline of the documents is left out.
. "$(dirname "$0")/lib.sh"
start_redis

tab=$(printf '\t')
now=$(date +%s)
nowms=$((now * 1000))
# the edges of --since 1d and --since 2h: no event within 2 h and 30 min of
# them, so that the seconds between this and the run change nothing
cut1d=$((nowms - 86400000))
cut2h=$((nowms - 7200000))
nov01=$(($(date -u -d 2026-11-01 +%s) * 1000))
nov21=$(($(date -u -d 2026-11-21 +%s) * 1000))
nov22=$((nov21 + 86400000))
nov08=$((nov01 + 7 * 86400000))

# The archive's events, in the order they are sent: the first week of
# November and 2026-11-21/22 in time order, two days ago, then the last 23
# hours with up to 3 s of disorder (as producers on several hosts give).
# meta has for each (line number = idx): idx ms day service level bytes
# trace (- for none).
awk -v now="$nowms" -v cut1d="$cut1d" -v cut2h="$cut2h" -v nov01="$nov01" \
    -v nov21="$nov21" '
function abs(x) { return x < 0 ? -x : x }
function emit(t, g, k,    s, l, r, b, tr, ts, sec, ms) {
    if (abs(t - cut1d) < 7200000 || abs(t - cut2h) < 1800000)
        return
    n++
    s = S[int(rand() * 5) + 1]
    r = rand()
    l = r < 0.12 ? "error" : r < 0.3 ? "warn" : "info"
    b = int(rand() * 5000)
    tr = "-"
    if ((g == "A" && k == 5000) || (g == "B" && k == 1000) ||
        (g == "D" && k == 700))
        tr = "4bf92f35"
    if ((g == "A" && k == 9000) || (g == "C" && k == 300))
        tr = "abc"
    sec = int(t / 1000)
    ms = t - sec * 1000
    if (n % 3 == 0)
        ts = sprintf("%d.%03d", sec, ms)
    else
        ts = sprintf("\"%s.%03dZ\"", strftime("%Y-%m-%dT%H:%M:%S", sec, 1), ms)
    printf "{\"timestamp\":%s,\"service\":\"%s\",\"level\":\"%s\",\"bytes\":%d,\"msg\":\"event %d\"%s}\n",
        ts, s, l, b, n, tr == "-" ? "" : ",\"trace_id\":\"" tr "\"" >"events"
    # %.0f: print would write ms as 1.79349e+12
    printf "%d\t%.0f\t%s\t%s\t%s\t%d\t%s\n", n, t,
        strftime("%Y-%m-%d", sec, 1), s, l, b, tr >"meta"
}
BEGIN {
    srand(830)
    split("api auth db mail web", S, " ")
    for (k = 0; k < 1400; k++) emit(nov01 + k * 432000 + k % 7, "C", k)
    for (k = 0; k < 100; k++) emit(nov01 + 7 * 86400000 + k * 864000, "C8", k)
    for (k = 0; k < 3000; k++) emit(nov21 + k * 28800 + k % 7, "B", k)
    for (k = 0; k < 300; k++) emit(nov21 + 86400000 + k * 288000, "B2", k)
    for (k = 0; k < 1500; k++) emit(now - 3 * 86400000 + k * 57600, "D", k)
    for (k = 0; k < 12000; k++)
        emit(now - 23 * 3600000 + int(k * 6840) + int(rand() * 3000), "A", k)
}'

# pick [since=MS] [until=MS] [level=L] [service=S] [trace=T]: the meta rows
# that match, in send order
pick() {
    awk -F "$tab" '
        (since == "" || $2 >= since + 0) && (until == "" || $2 < until + 0) &&
        (level == "" || $5 == level) && (service == "" || $4 == service) &&
        (trace == "" || $7 == trace)' "$@" meta
}

# lines_of: the events of the meta rows on stdin, in their order
lines_of() {
    awk -F "$tab" 'NR == FNR { want[++n] = $1; next }
        { line[FNR] = $0 }
        END { for (i = 1; i <= n; i++) print line[want[i]] }' - events
}

# in_files: the meta rows on stdin in the order replay prints a directory
# without --sort: day by day, in a day service by service, in a file as sent
in_files() {
    sort -t "$tab" -k3,3 -k4,4 -k1,1n
}

# merged: the meta rows on stdin as replay --sort prints them: each day's
# files merged by event time, a file's own order kept, ties to the first
# file (the services in name order)
merged() {
    in_files | awk -F "$tab" '
        function flush(   i, best, b) {
            for (;;) {
                best = ""
                for (i = 1; i <= ns; i++) {
                    b = svc[i]
                    if (head[b] <= cnt[b] && (best == "" ||
                        t[b, head[b]] < t[best, head[best]]))
                        best = b
                }
                if (best == "") break
                print row[best, head[best]++]
            }
            for (i = 1; i <= ns; i++) { delete cnt[svc[i]]; delete head[svc[i]] }
            ns = 0
        }
        $3 != day { flush(); day = $3 }
        !($4 in cnt) { svc[++ns] = $4; cnt[$4] = 0; head[$4] = 1 }
        { cnt[$4]++; t[$4, cnt[$4]] = $2 + 0; row[$4, cnt[$4]] = $0 }
        END { flush() }'
}

# counted SECONDS COLUMNS [sums]: from the meta rows on stdin, the rows of
# logpipe-agg --bucket SECONDS --by COLUMNS (4 service, 5 level; "-" none)
# as sqlite3 prints them, "bucket|service|level|count[|sum|max]", sorted
counted() {
    awk -F "$tab" -v sec="$1" -v cols="$2" -v sums="${3:-}" '
        {
            b = int($2 / (sec * 1000)) * sec
            k = strftime("%Y-%m-%dT%H:%M:%SZ", b, 1)
            if (cols != "-") {
                nc = split(cols, c, ",")
                for (i = 1; i <= nc; i++) k = k "|" $(c[i])
            }
            n[k]++; s[k] += $6
            if (!(k in m) || $6 > m[k]) m[k] = $6
        }
        END { for (k in n) print k "|" n[k] (sums ? "|" s[k] "|" m[k] : "") }' |
        LC_ALL=C sort
}

strip_id() {
    sed -e 's/^{"_id":"[0-9]*-[0-9]*",/{/'
}

# blocks FILE: the code of a document as its reader sees it, one block
# after another, each ended by an empty line: the indented blocks of the
# README, the literal displays of a man page (its escapes undone), the
# "--   logpipe-..." commands of analytics.sql (and their indented lines)
blocks() {
    case $1 in
    *.md)
        awk '/^    / { print substr($0, 5); inb = 1; next }
             inb { print ""; inb = 0 }' "$1" ;;
    *.sql)
        awk '/^--   logpipe-/ { print substr($0, 6); inb = 1; next }
             inb && /^--       / { print substr($0, 6); next }
             inb { print ""; inb = 0 }' "$1" ;;
    *)
        awk '/^\.Bd -literal/ { inb = 1; next }
             /^\.Ed/ { if (inb) print ""; inb = 0; next }
             inb { l = $0; gsub(/\\e/, "\\", l); gsub(/\\&/, "", l)
                   gsub(/\\\(aq/, "\047", l); gsub(/\\\(dq/, "\"", l)
                   print l }' "$1" ;;
    esac
}

# doc_cmd FILE TEXT: the command of FILE's first code line holding TEXT,
# with the lines after it that are indented further (its continuation)
doc_cmd() {
    blocks "$1" | TEXT=$2 awk '
        !found && index($0, ENVIRON["TEXT"]) {
            found = 1; match($0, /^ */); ind = RLENGTH; print; next }
        found == 1 {
            if ($0 != "" && match($0, /^ */) && RLENGTH > ind) { print; next }
            found = 2 }'
}

# localize: a deployment's names to this test's
localize() {
    sed -e "s|/var/log/logpipe|$TMP/logs|g" \
        -e "s|/var/lib/logpipe/stats.db|$TMP/stats.db|g" \
        -e "s|/var/lib/logpipe/wal|$TMP/wal|g" \
        -e "s|https://alerts.example/hook|http://127.0.0.1:$(cat "$TMP/http.port" 2>/dev/null)/hook|g" \
        -e "s/| jq \.\.\. /| jq -c . /"
}

# run_doc FILE TEXT: runs that command as written, in $TMP (where ./logs,
# replay's default --dir, is the archive), and records it as tested
run_doc() {
    doc_cmd "$TOP/$1" "$2" >doc.cmd
    if ! test -s doc.cmd; then
        echo "no code line with '$2' in $1" >&2
        return 1
    fi
    cat doc.cmd >>"$TMP/covered"
    localize <doc.cmd >doc.sh
    sed -e "s|^|# $1: |" doc.sh >&2
    (cd "$TMP" && sh "$TMP/doc.sh")
}

test_expect_success 'the archive: sent, drained, rotated' '
    test "$(wc -l <events)" -gt 16000 &&
    logpipe-send --max-age 0 --max-skew 0 <events &&
    # two dead letters for the dlq examples: services that are no names
    printf "%s\n" "{\"service\":\"../x\",\"trace_id\":\"4bf92f35\"}" \
        "{\"service\":\"../y\",\"trace_id\":\"abc\"}" |
        logpipe-send --max-age 0 &&
    logpipe-drain --once -d logs 2>err &&
    test "$(rcli XLEN logs:dlq)" -eq 2 &&
    logpipe-rotate -d logs --grace 0 >rotated &&
    test -f logs/api/2026-11-21.jsonl.gz &&
    # the files of today stay plain (just after midnight: maybe none)
    today=$(date -u -d @"$now" +%F) &&
    if cut -f3 meta | grep -q "^$today\$"; then
        test "$(find logs -name "*.jsonl" | wc -l)" -ge 1
    fi &&
    test "$(logpipe-replay logs | wc -l)" -eq "$(wc -l <events)" &&
    test "$(ls logs | tr "\n" " ")" = "api auth db mail web "
'

test_expect_success 'README: replay --since 1d | agg --sql per_minute | sqlite3' '
    run_doc README.md "--since 1d --dir /var/log/logpipe |" &&
    sqlite3 stats.db "SELECT bucket, service, level, count FROM per_minute" |
        LC_ALL=C sort >got &&
    pick since=$cut1d | counted 60 4,5 >want &&
    test "$(wc -l <want)" -gt 5000 &&
    test_cmp want got
'

test_expect_success 'agg(1): errors per service and minute of the last day, into SQLite' '
    run_doc man/logpipe-agg.1 "--since 1d --where" &&
    sqlite3 stats.db "SELECT bucket, service, count FROM errors_per_minute" |
        LC_ALL=C sort >got &&
    pick since=$cut1d level=error | counted 60 4 >want &&
    test "$(wc -l <want)" -gt 500 &&
    test_cmp want got
'

test_expect_success 'agg(1): its query, the ten largest counts' '
    run_doc man/logpipe-agg.1 "sqlite3 /var/lib/logpipe/stats.db \\" >got &&
    test "$(wc -l <got)" -eq 10 &&
    pick since=$cut1d level=error | counted 60 4 >all &&
    cut -d"|" -f3 all | sort -rn | head -n 10 >want.counts &&
    cut -d"|" -f3 got >got.counts &&
    test_cmp want.counts got.counts &&
    LC_ALL=C sort got >got.s && LC_ALL=C sort all >all.s &&
    test "$(LC_ALL=C comm -23 got.s all.s | wc -l)" -eq 0
'

if have_postgres >pg.why; then
    start_postgres
    test_expect_success 'agg(1): requests per service, level and minute of 2026-11-21, into PostgreSQL' '
        run_doc man/logpipe-agg.1 "--since 2026-11-21 --until 2026-11-22" &&
        psql -X -At -F"|" -c "SELECT bucket, service, level, count, sum_bytes, max_bytes FROM requests_per_minute" |
            LC_ALL=C sort >got &&
        pick since=$nov21 until=$nov22 | counted 60 4,5 sums >want &&
        test "$(wc -l <want)" -gt 2000 &&
        test_cmp want got
    '
else
    test_skip 'agg(1): requests per service, level and minute of 2026-11-21, into PostgreSQL' "$(cat pg.why)"
    doc_cmd "$TOP/man/logpipe-agg.1" "--since 2026-11-21 --until 2026-11-22" >>covered
fi

test_expect_success 'agg(1): events per hour of the last day, on the terminal' '
    run_doc man/logpipe-agg.1 "--since 1d |" >got &&
    pick since=$cut1d | counted 3600 - | tr "|" "$tab" >want &&
    test "$(wc -l <want)" -ge 20 &&
    test_cmp want got
'

test_expect_success 'analytics.sql: events_per_minute from the whole archive' '
    run_doc examples/analytics.sql "logpipe-replay --sort /var/log/logpipe |" &&
    sqlite3 stats.db "SELECT bucket, service, level, count FROM events_per_minute" |
        LC_ALL=C sort >got &&
    pick | counted 60 4,5 >want &&
    test "$(wc -l <want)" -gt 10000 &&
    test_cmp want got
'

test_expect_success 'replay(1): the errors of api of the last two hours, as time and message' '
    run_doc man/logpipe-replay.1 "logpipe-replay --since 2h --where" >got &&
    pick since=$cut2h service=api level=error | in_files | lines_of |
        jq -r "[.timestamp, .msg] | @tsv" >want &&
    test "$(wc -l <want)" -gt 5 &&
    test_cmp want got
'

test_expect_success 'replay(1): the first week of November sent again into another stream' '
    run_doc man/logpipe-replay.1 "logpipe-replay --strip-id --since 2026-11-01" &&
    rcli --raw XRANGE restore:stream - + | grep "^{" | LC_ALL=C sort >got &&
    pick since=$nov01 until=$nov08 | lines_of | LC_ALL=C sort >want &&
    test "$(wc -l <want)" -eq 1400 &&
    test_cmp want got
'

test_expect_success 'replay(1): one day of every service, merged in time order' '
    run_doc man/logpipe-replay.1 "logpipe-replay --sort --dedup" &&
    strip_id <2026-11-21.ndjson >got &&
    pick since=$nov21 until=$nov22 | merged | lines_of >want &&
    test "$(wc -l <want)" -eq 3000 &&
    test_cmp want got &&
    test "$(grep -c "^{\"_id\":\"[0-9]*-[0-9]*\"," 2026-11-21.ndjson)" -eq 3000
'

test_expect_success 'replay(1): what a sender holds in its write-ahead log' '
    printf "%s\n" "{\"timestamp\":\"2026-12-01T00:00:00Z\",\"msg\":\"w1\",\"x\":1}" \
        "{\"timestamp\":1796000000.5,\"msg\":\"w2\"}" \
        "{\"msg\":\"w3\"}" >walev &&
    logpipe-send --max-age 0 -r $(dead_redis) --wal wal \
        <walev 2>/dev/null &&
    run_doc man/logpipe-replay.1 "logpipe-replay /var/lib/logpipe/wal" >got &&
    jq -c "{timestamp, msg}" walev >want &&
    test_cmp want got
'

test_expect_success 'replay(1): the levels of api on 2026-11-21, from its compressed file' '
    run_doc man/logpipe-replay.1 "logpipe-replay /var/log/logpipe/api/2026-11-21.jsonl.gz |" >got &&
    pick since=$nov21 until=$nov22 service=api | cut -f5 | sort | uniq -c >want &&
    test "$(wc -l <want)" -eq 3 &&
    test_cmp want got
'

test_expect_success 'replay(1): the first ten events of the archive, stopping there' '
    run_doc man/logpipe-replay.1 "logpipe-replay /var/log/logpipe | head" >out 2>err &&
    ! grep -v "^# " err &&
    strip_id <out >got &&
    pick | in_files | head -n 10 | lines_of >want &&
    test_cmp want got
'

test_expect_success 'rotate(1): a compressed day read back' '
    run_doc man/logpipe-rotate.1 "logpipe-replay /var/log/logpipe/api/2026-11-21.jsonl.gz | jq ." >out &&
    jq -c "del(._id)" out >got &&
    pick since=$nov21 until=$nov22 service=api | lines_of | jq -c . >want &&
    test "$(wc -l <want)" -gt 400 &&
    test_cmp want got
'

test_expect_success 'logpipe(7): the archive of the last two hours as NDJSON' '
    run_doc man/logpipe.7 "logpipe-replay /var/log/logpipe --since 2h" >out &&
    jq -c "del(._id)" out >got &&
    pick since=$cut2h | in_files | lines_of | jq -c . >want &&
    test "$(wc -l <want)" -gt 500 &&
    test_cmp want got
'

# following one request: 4bf92f35 in the archive and the DLQ; abc too
test_expect_success 'README, logpipe(7), dlq(1): a trace in the archive' '
    pick trace=4bf92f35 | in_files | lines_of >want &&
    test "$(wc -l <want)" -eq 3 &&
    run_doc README.md "logpipe-replay --dir /var/log/logpipe --where" >out &&
    strip_id <out >got && test_cmp want got &&
    run_doc man/logpipe.7 "logpipe-replay -d /var/log/logpipe --where" >out &&
    strip_id <out >got && test_cmp want got &&
    run_doc man/logpipe-dlq.1 "logpipe-replay -d /var/log/logpipe \\" >out &&
    strip_id <out >got && test_cmp want got
'

test_expect_success 'drain(1), send(1): trace abc in the archive (replay default --dir)' '
    pick trace=abc | in_files | lines_of >want &&
    test "$(wc -l <want)" -eq 2 &&
    run_doc man/logpipe-drain.1 "logpipe-replay --where" >out &&
    strip_id <out >got && test_cmp want got &&
    run_doc man/logpipe-send.1 "logpipe-replay --where" >out &&
    strip_id <out >got && test_cmp want got
'

test_expect_success 'dlq(1), logpipe(7), send(1): the trace in the dead letters' '
    run_doc man/logpipe-dlq.1 "objects | .trace_id" >out &&
    test "$(jq -s length out)" -eq 1 &&
    test "$(jq -r "[.error, .event.service, .event.trace_id] | @tsv" out)" = "unsafe-path$tab../x${tab}4bf92f35" &&
    run_doc man/logpipe.7 "objects | .trace_id" >out &&
    test "$(jq -r "[.error, .event.trace_id] | @tsv" out)" = "unsafe-path${tab}4bf92f35" &&
    run_doc man/logpipe-send.1 "logpipe-dlq list --where" >out &&
    test "$(jq -r "[.error, .event.trace_id] | @tsv" out)" = "unsafe-path${tab}abc"
'

# the stream itself: what came after the drain
awk -v now="$now" 'BEGIN { for (i = 1; i <= 20; i++)
    printf "{\"timestamp\":%d,\"service\":\"api\",\"level\":\"%s\",\"msg\":\"late %d\"%s}\n",
        now, (i % 4 == 0) ? "error" : "info", i, i == 7 ? ",\"trace_id\":\"4bf92f35\"" : "" }' >recent

test_expect_success 'README, logpipe(7), replay(1): the stream itself' '
    rcli DEL logs:stream >/dev/null &&
    logpipe-send <recent &&
    run_doc README.md "logpipe-replay --from-redis --where" >out &&
    grep "\"msg\":\"late 7\"" recent >want &&
    strip_id <out >got && test_cmp want got &&
    run_doc man/logpipe.7 "logpipe-replay --from-redis --where" >out &&
    strip_id <out >got && test_cmp want got &&
    run_doc man/logpipe-replay.1 "logpipe-replay --from-redis --since 10m" >out &&
    grep "\"level\":\"error\"" recent >want &&
    test "$(wc -l <want)" -eq 5 &&
    strip_id <out >got && test_cmp want got
'

# agg(1)'s alert: an HTTP server of our own takes the place of the hook
if command -v python3 >/dev/null 2>&1; then
    cat >hook.py <<-\EOF
	import http.server, os, sys
	class H(http.server.BaseHTTPRequestHandler):
	    def do_POST(self):
	        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
	        with open(sys.argv[1], "ab") as f:
	            f.write(("%s %s " % (self.path, self.headers.get("Content-Type"))).encode() + body + b"\n")
	        self.send_response(200)
	        self.end_headers()
	    def log_message(self, *a):
	        pass
	s = http.server.HTTPServer(("127.0.0.1", 0), H)
	with open(sys.argv[2] + ".tmp", "w") as f:
	    f.write(str(s.server_address[1]))
	os.rename(sys.argv[2] + ".tmp", sys.argv[2])
	s.serve_forever()
	EOF
    python3 hook.py "$TMP/hook.log" "$TMP/http.port" &
    echo $! >>"$TMP/.pids"
    NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
    export NO_PROXY no_proxy

    test_expect_success 'agg(1): an alert for each service with 100 errors in a minute, as it happens' '
        wait_for 30 test -s http.port &&
        rcli DEL logs:stream >/dev/null &&
        awk "BEGIN {
            t = 1795341600
            for (i = 0; i < 120; i++) printf \"{\\\"timestamp\\\":%.2f,\\\"service\\\":\\\"api\\\",\\\"level\\\":\\\"error\\\"}\\n\", t + i / 3
            for (i = 0; i < 60; i++) printf \"{\\\"timestamp\\\":%d,\\\"service\\\":\\\"db\\\",\\\"level\\\":\\\"error\\\"}\\n\", t + i
            for (i = 0; i < 150; i++) printf \"{\\\"timestamp\\\":%.2f,\\\"service\\\":\\\"web\\\",\\\"level\\\":\\\"info\\\"}\\n\", t + i / 3
            for (i = 0; i < 21; i++) printf \"{\\\"timestamp\\\":%d,\\\"service\\\":\\\"api\\\",\\\"level\\\":\\\"error\\\"}\\n\", t + 60 + i
            for (i = 0; i < 100; i++) printf \"{\\\"timestamp\\\":%.2f,\\\"service\\\":\\\"db\\\",\\\"level\\\":\\\"error\\\"}\\n\", t + 90 + i / 4
        }" >alerts.in &&
        logpipe-send --max-age 0 <alerts.in &&
        doc_cmd "$TOP/man/logpipe-agg.1" "logpipe-drain --stdout -g alerts" >doc.cmd &&
        cat doc.cmd >>"$TMP/covered" &&
        localize <doc.cmd >alert.sh &&
        grep_q "http://127.0.0.1:[0-9]*/hook" alert.sh &&
        { sh alert.sh 2>alert.err & echo $! >alert.pid; } &&
        pid=$(cat alert.pid) &&
        echo $pid >>"$TMP/.pids" &&
        wait_for 60 "ps -o comm= --ppid $pid | grep -qx logpipe-drain" &&
        drain=$(ps -o pid= -o comm= --ppid $pid | awk "\$2 == \"logpipe-drain\" { print \$1 }") &&
        echo $drain >>"$TMP/.pids" &&
        # the minute 10:00 closes by the events 10 s past it: api alerts
        wait_for 60 test -s hook.log &&
        echo "/hook application/json {\"bucket\":\"2026-11-22T10:00:00Z\",\"service\":\"api\",\"count\":120}" >want &&
        test_cmp want hook.log &&
        # every entry read and acknowledged: stop the drain; agg prints
        # what is open, the loop posts it, and the pipeline ends
        wait_for 60 "test \"\$(rcli XPENDING logs:stream alerts | head -n 1)\" = 0 && test \"\$(rcli XINFO GROUPS logs:stream | awk '\''p == \"lag\" { print; exit } { p = \$0 }'\'')\" = 0" &&
        kill -TERM $drain &&
        wait_for 60 "test \$(wc -l <hook.log) -eq 2" &&
        wait $pid &&
        echo "/hook application/json {\"bucket\":\"2026-11-22T10:01:00Z\",\"service\":\"db\",\"count\":100}" >>want &&
        test_cmp want hook.log
    '
else
    test_skip 'agg(1): an alert for each service with 100 errors in a minute, as it happens' "no python3 for the hook"
    doc_cmd "$TOP/man/logpipe-agg.1" "logpipe-drain --stdout -g alerts" >>covered
fi

test_expect_success 'every pipeline of the documents with replay or agg was run above' '
    for f in "$TOP"/README.md "$TOP"/man/*.1 "$TOP"/man/logpipe.7 \
        "$TOP"/examples/*; do
        case $f in
        # its users, named after the tools: t0530 runs each
        */examples/users.acl) continue ;;
        esac
        blocks "$f" | grep -E "logpipe-(replay|agg)( |$)" || :
    done | LC_ALL=C sort -u >doc.lines &&
    test "$(wc -l <doc.lines)" -ge 20 &&
    LC_ALL=C sort -u covered >covered.s &&
    LC_ALL=C comm -23 doc.lines covered.s >missing &&
    test_cmp /dev/null missing
'

test_done
