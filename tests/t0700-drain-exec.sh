#!/bin/sh
# t0700-drain-exec.sh -- logpipe-drain --exec and --sql: batches to a
# command, acknowledged when it exits 0; SQL rows exactly once in sqlite3
. "$(dirname "$0")/lib.sh"
start_redis exec --appendonly yes --appendfsync always

# one && chain: called left of &&, where set -e is off
fresh() {
    rcli DEL logs:stream logs:dlq >/dev/null &&
    rm -rf out* err* db* flag* calls*
}

test_expect_success 'every batch reaches the command; acknowledged after it' '
    fresh &&
    gen_events 2500 >in &&
    logpipe-send <in &&
    logpipe-drain --once -n 1000 --exec "cat >>out; echo x >>calls" 2>err &&
    test "$(pending)" -eq 0 &&
    test "$(wc -l <calls)" -eq 3 &&
    seqs out >got && seq 1 2500 >want && test_cmp want got &&
    ! grep -v "^{\"_id\":\"[0-9]*-[0-9]*\",\"timestamp\"" out
'

test_expect_success 'the command writes to our stdout, like --stdout would' '
    fresh &&
    gen_events 20 >in &&
    logpipe-send <in &&
    rcli XGROUP CREATE logs:stream b 0 >/dev/null &&
    logpipe-drain --once -g a --exec cat >out1 &&
    logpipe-drain --once -g b --stdout >out2 &&
    test_cmp out2 out1 &&
    test "$(wc -l <out1)" -eq 20
'

test_expect_success 'a failing command: retried with backoff, nothing lost' '
    fresh &&
    gen_events 300 >in &&
    logpipe-send <in &&
    cat >cmd.sh <<-\EOF &&
	n=$(cat flag 2>/dev/null || echo 0)
	echo $((n + 1)) >flag
	cat >batch
	[ "$n" -ge 2 ] || exit 3
	cat batch >>out
	EOF
    logpipe-drain --once --exec "sh cmd.sh" 2>err &&
    test "$(cat flag)" -eq 3 &&
    grep_q "exit status 3: 300 entries stay pending; trying again in 1s" err &&
    grep_q "trying again in 2s" err &&
    test "$(pending)" -eq 0 &&
    seqs out >got && seq 1 300 >want && test_cmp want got &&
    test "$(rcli XLEN logs:dlq)" -eq 0
'

# a command that fails on everything is failing, not the entries: see
# t0230 for the one entry it refuses
test_expect_success 'failing every time: nothing to the DLQ, --once exits 75' '
    fresh &&
    gen_events 1 >in &&
    logpipe-send <in &&
    expect_exit 75 logpipe-drain --once --max-deliveries 2 \
        --exec "cat >/dev/null; exit 1" --metrics m.prom 2>err &&
    grep_q "exit status 1 on entry .* alone, and no other entry came" err &&
    test "$(pending)" -eq 1 &&
    test "$(rcli XLEN logs:dlq)" -eq 0 &&
    grep_q "^logpipe_drain_exec_failures_total 2$" m.prom
'

test_expect_success '--exec-timeout kills the command and its children' '
    fresh &&
    gen_events 10 >in &&
    logpipe-send <in &&
    cat >cmd.sh <<-\EOF &&
	if [ -f flag ]; then cat >>out; exit 0; fi
	: >flag
	sleep 31.7 &
	echo $! >flag
	wait
	EOF
    logpipe-drain --once --exec "sh cmd.sh" --exec-timeout 1s 2>err &&
    grep_q "timed out after 1s" err &&
    : the sleep, killed by a signal the kernel delivers when it can, is &&
    : gone or a zombie within 10 s, long before its 31.7 s are up &&
    sp=$(cat flag) &&
    wait_for 10 "case \"\$(ps -o stat= -p $sp)\" in \"\"|Z*) true ;; *) false ;; esac" &&
    test "$(pending)" -eq 0 &&
    seqs out >got && seq 1 10 >want && test_cmp want got
'

test_expect_success 'a command sh cannot run: exit 78, the batch stays pending' '
    fresh &&
    gen_events 5 >in &&
    logpipe-send <in &&
    expect_exit 78 logpipe-drain --once --exec "no-such-command-xyz" 2>err &&
    grep_q "cannot be run" err &&
    test "$(pending)" -eq 5 &&
    test "$(rcli XLEN logs:dlq)" -eq 0
'

test_expect_success 'exit 0 without reading stdin: acknowledged, with a warning' '
    fresh &&
    gen_events 3000 >in &&
    logpipe-send <in &&
    logpipe-drain --once --exec true 2>err &&
    grep_q "without reading all of its input" err &&
    test "$(pending)" -eq 0
'

test_expect_success 'SIGTERM while the command runs: the batch is finished' '
    fresh &&
    gen_events 50 >in &&
    logpipe-send <in &&
    rm -f started gate && mkfifo gate || exit 1
    # the command says it started, then waits at the gate until the
    # drain has had its SIGTERM
    logpipe-drain --exec ": >started; cat gate >/dev/null; cat >>out" 2>err &
    pid=$!
    wait_for 60 "test -e started" &&
    kill -TERM $pid &&
    timeout 60 sh -c "echo >gate" &&
    wait $pid &&
    test "$(pending)" -eq 0 &&
    seqs out >got && seq 1 50 >want && test_cmp want got
'

test_expect_success 'option errors' '
    expect_exit 64 logpipe-drain --exec cat --stdout 2>err &&
    grep_q "exclude each other" err &&
    expect_exit 64 logpipe-drain --sql events 2>err &&
    grep_q "needs --exec or --stdout" err &&
    expect_exit 64 logpipe-drain --stdout --sql "x; drop" 2>err &&
    grep_q "not a plain table name" err &&
    expect_exit 64 logpipe-drain --exec "" 2>err &&
    expect_exit 64 logpipe-drain --exec cat --exec-timeout 0 2>err
'

if ! command -v sqlite3 >/dev/null 2>&1; then
    test_skip 'sqlite3 tests' 'sqlite3 is not installed (make deps)'
    test_done
fi

cat >q1.sql <<\EOF
SELECT service, level, json_extract(event, '$.seq') FROM events ORDER BY rowid;
EOF
cat >q2.sql <<\EOF
SELECT count(*) FROM events WHERE ts NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
    OR app IS NOT NULL OR message IS NOT NULL OR event LIKE '%"_id"%';
EOF

test_expect_success '--sql into sqlite3: every event once, columns filled' '
    fresh &&
    gen_events 2000 >in &&
    logpipe-send <in &&
    logpipe-drain --once -n 300 --sql events \
        --exec "sqlite3 -bail db.sqlite" 2>err &&
    test "$(pending)" -eq 0 &&
    sqlite3 db.sqlite "SELECT count(*), count(DISTINCT id) FROM events" >got &&
    echo "2000|2000" >want && test_cmp want got &&
    sqlite3 -separator " " db.sqlite <q1.sql >got &&
    jq -r "\"\(.service) \(.level) \(.seq)\"" in >want &&
    test_cmp want got &&
    sqlite3 db.sqlite <q2.sql >got &&
    echo 0 >want && test_cmp want got
'

test_expect_success '--sql: a redelivered batch adds no row' '
    fresh &&
    gen_events 1000 >in &&
    logpipe-send <in &&
    : killed three times after the batch is written, before its XACK: &&
    : the same 400 entries are written each time &&
    for kill in 1 2 3; do
        LOGPIPE_TEST_CRASH=after-write expect_exit 137 logpipe-drain \
            --once -n 400 --sql events --exec "sqlite3 -bail db.sqlite" \
            2>>err || exit 1
    done &&
    test "$(pending)" -eq 400 &&
    sqlite3 db.sqlite "SELECT count(*), count(DISTINCT id) FROM events" >got &&
    echo "400|400" >want && test_cmp want got &&
    logpipe-drain --once -n 400 --sql events \
        --exec "sqlite3 -bail db.sqlite" 2>>err &&
    test "$(pending)" -eq 0 &&
    sqlite3 db.sqlite "SELECT count(*), count(DISTINCT id) FROM events" >got &&
    echo "1000|1000" >want && test_cmp want got
'

test_expect_success '--sql: a batch taken over while stalled is not sent again' '
    fresh &&
    gen_events 2000 >in &&
    logpipe-send <in || exit 1
    LOGPIPE_TEST_CRASH=stop:after-read logpipe-drain -c slow -n 500 \
        --block 50 --claim-idle 1s --sql events \
        --exec "tee -a sql.out | sqlite3 -bail db.sqlite" 2>slow.err &
    slow=$!
    wait_for 10 "test \"\$(cut -d\" \" -f3 /proc/$slow/stat)\" = T" &&
    sleep 1.2 &&
    logpipe-drain --once -c quick -n 500 --claim-idle 1s --sql events \
        --exec "tee -a sql.out | sqlite3 -bail db.sqlite" 2>quick.err &&
    kill -CONT $slow &&
    sleep 0.5 &&
    kill -TERM $slow &&
    wait $slow &&
    grep_q "taken over by another consumer" slow.err &&
    test "$(pending)" -eq 0 &&
    test "$(grep -c "^INSERT INTO events " sql.out)" -eq 2000 &&
    test "$(sqlite3 db.sqlite "SELECT count(*) FROM events")" -eq 2000
'

test_expect_success '--sql: hostile strings round-trip into sqlite3 exactly' '
    fresh &&
    now=$(date +%s) &&
    cat >hostile <<-EOF &&
	{"timestamp":$now,"service":"a'"'"'b","level":"x\\\\y","app":"'"'"'); DROP TABLE events; --","message":"line1\\nline2\\r\\ttab \\"q\\" caf\\u00e9 \\ud83d\\ude00 end"}
	{"timestamp":$now,"service":"nul\\u0000byte","level":"\\u2028sep","app":"\\\\'"'"'","message":"'"'"''"'"''"'"'"}
	{"timestamp":$now,"service":123,"level":true,"app":{"k":["v"]},"message":null}
	EOF
    logpipe-send <hostile &&
    logpipe-drain --once --sql events --exec "sqlite3 -bail db.sqlite" &&
    test "$(sqlite3 db.sqlite "SELECT count(*) FROM events")" -eq 3 &&
    sqlite3 -json db.sqlite "SELECT service, level, app, message FROM events ORDER BY rowid" |
        jq -c ".[] | [.service, .level, .app, .message]" >got &&
    jq -c "[.service, .level, .app, .message] | map(
            if type == \"string\" then gsub(\"\\u0000\"; \"\\ufffd\")
            elif . == null then null else tojson end)" hostile >want &&
    test_cmp want got &&
    sqlite3 db.sqlite "SELECT event FROM events ORDER BY rowid" | jq -c . >got &&
    sed "s/\\\\u0000/\\\\ufffd/g" hostile | jq -c . >want &&
    ! grep -q "u0000" got &&
    test_cmp want got
'

if ! r=$(have_postgres); then
    test_skip 'PostgreSQL tests' "$r"
    test_done
fi
start_postgres
PSQL="psql -q -X -v ON_ERROR_STOP=1"
# the table as examples/analytics.sql makes it for PostgreSQL: drain's
# text literals go into TIMESTAMPTZ and JSONB
$PSQL -c "CREATE TABLE events (id TEXT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL,
    service TEXT, level TEXT, app TEXT, message TEXT, event JSONB NOT NULL)" ||
    echo "Bail out! cannot create the table"

test_expect_success 'PostgreSQL: every event once, hostile ones too' '
    fresh &&
    gen_events 3000 >in &&
    cat in hostile | logpipe-send &&
    logpipe-drain --once -n 500 --sql events --exec "$PSQL" 2>err &&
    test "$(pending)" -eq 0 &&
    test "$($PSQL -At -c "SELECT count(*), count(DISTINCT id) FROM events")" = "3003|3003" &&
    $PSQL -At -c "SELECT event->>'"'"'seq'"'"' FROM events WHERE event ? '"'"'seq'"'"' ORDER BY (event->>'"'"'seq'"'"')::int" >got &&
    seq 1 3000 >want && test_cmp want got &&
    $PSQL -At -c "SELECT json_agg(json_build_array(service, level, app, message) ORDER BY ts, id) FROM events WHERE NOT event ? '"'"'seq'"'"'" |
        jq -c ".[]" >got &&
    jq -c "[.service, .level, .app, .message] | map(
            if type == \"string\" then gsub(\"\u0000\"; \"\ufffd\")
            elif . == null then null else tojson end)" hostile >want &&
    test_cmp want got
'

test_expect_success 'PostgreSQL: psql killed mid-batch loses nothing, adds nothing twice' '
    fresh &&
    $PSQL -c "TRUNCATE events" &&
    gen_events 20000 >in &&
    logpipe-send <in &&
    cat >cmd.sh <<-\EOF &&
	if [ -f flag ]; then exec $PSQL; fi
	: >flag
	# the first delivery: psql gets the batch without its COMMIT, and
	# the input stays open, so it is killed inside the transaction
	# however fast it is
	rm -f q && mkfifo q
	{ grep -vx "COMMIT;"; exec sleep 60; } >q &
	w=$!
	$PSQL <q &
	p=$!
	sleep 0.3
	kill -9 $p
	wait $p
	rc=$?
	kill $w
	wait $w
	exit $rc
	EOF
    PSQL="$PSQL" logpipe-drain --once -n 20000 --sql events \
        --exec "PSQL=\"$PSQL\" sh cmd.sh" 2>err &&
    grep_q "exit status 137: 20000 entries stay pending" err &&
    test "$(pending)" -eq 0 &&
    test "$($PSQL -At -c "SELECT count(*), count(DISTINCT id) FROM events")" = "20000|20000"
'

test_done
