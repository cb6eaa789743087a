#!/bin/sh
# t0810-agg-sql.sh -- logpipe-agg --sql into a real sqlite3 and a real
# PostgreSQL: applied twice, the same rows; hostile values round-trip
. "$(dirname "$0")/lib.sh"

PSQL="psql -X -q -v ON_ERROR_STOP=1"

# events over 3 minutes, 3 services, 2 levels, integer bytes (so sums are
# exact in both databases); a user member, a SQL keyword in PostgreSQL
awk -v n=3000 -v t0=1795341600 'BEGIN {
    split("api db web", s, " ")
    for (i = 0; i < n; i++)
        printf "{\"timestamp\":%.2f,\"service\":\"%s\",\"level\":\"%s\",\"user\":\"u%d\",\"bytes\":%d}\n",
            t0 + i * 0.06, s[i % 3 + 1], (i % 5 == 0) ? "error" : "info",
            i % 2, (i * 7919) % 1000
}' >in

# rows FILE: an NDJSON output as "bucket|service|level|user|count|sum|max"
rows() {
    jq -r '[.bucket, (.service // ""), (.level // ""), (.user // ""), .count,
            .sum_bytes, .max_bytes] | map(tostring) | join("|")' "$1" |
        LC_ALL=C sort
}

# The hostile values of --by: quotes, backslashes, an injection, NUL,
# non-ASCII, newlines, the shells' own commands at the start of a line,
# CR LF (the sqlite3 shell drops a CR at the end of a line), control
# characters, U+2028, a long one. One JSON string per line.
cat >values <<\EOF
"it's"
"''"
"back\\slash \\' \\\\"
"'); DROP TABLE x; --"
"\"; DROP TABLE x; --"
"nul\u0000byte"
"\u0000"
"café ☃ 𝄞 日本"
"line\nbreak"
"\n.quit\n.shell echo pwned\n"
"\n\\q\n\\! echo pwned\n"
"cr\r\nlf"
"\r\n\r\n"
"x\r"
"tab\tbell\u0007esc\u001b[2J"
"\u2028\u2029"
"$1 :foo :'foo' $$ $body$"
"E'\\x41'"
"%s%n"
""
" "
"ufffd \ufffd"
EOF
awk 'BEGIN { for (i = 0; i < 1000; i++) printf "x"; print "" }' |
    sed -e 's/^/"/' -e 's/$/"/' >>values

# one event per value, all in one bucket
i=0
while read -r v; do
    i=$((i + 1))
    printf '{"timestamp":%d,"k":%s,"n":%d}\n' $((1795341600 + i)) "$v" "$i"
done <values >hostile
# what the table must hold: the decoded string, NUL as U+FFFD, as hex
jq -r '.k | split("\u0000") | join("\ufffd") | @json' hostile |
while read -r v; do
    printf '%s' "$v" | jq -j . | od -An -v -tx1 | tr -d ' \n'
    echo
done | LC_ALL=C sort >hostile.hex

test_expect_success 'sqlite3: the SQL applies, twice gives the same rows' '
    logpipe-agg --by service,level,user --sum bytes --max bytes \
        --sql agg <in >agg.sql &&
    logpipe-agg --by service,level,user --sum bytes --max bytes <in >agg.ndjson &&
    test "$(wc -l <agg.ndjson)" -eq 36 &&
    sqlite3 -bail db <agg.sql &&
    q="SELECT bucket, service, level, user, count, CAST(sum_bytes AS INTEGER), CAST(max_bytes AS INTEGER) FROM agg ORDER BY 1, 2, 3, 4" &&
    sqlite3 db "$q" | LC_ALL=C sort >once &&
    sqlite3 -bail db <agg.sql &&
    sqlite3 db "$q" | LC_ALL=C sort >twice &&
    test_cmp once twice &&
    rows agg.ndjson >expect &&
    test_cmp expect once
'

test_expect_success 'sqlite3: the table has the shape the man page gives' '
    sqlite3 db "PRAGMA table_info(agg)" >shape &&
    cat >expect <<-\EOF &&
	0|bucket|TEXT|1||1
	1|service|TEXT|1|'\'''\''|2
	2|level|TEXT|1|'\'''\''|3
	3|user|TEXT|1|'\'''\''|4
	4|count|BIGINT|1||0
	5|sum_bytes|DOUBLE PRECISION|0||0
	6|max_bytes|DOUBLE PRECISION|0||0
	EOF
    test_cmp expect shape
'

test_expect_success 'sqlite3: a later run over more of a bucket replaces its rows' '
    head -n 1000 in | logpipe-agg --by service --sql part | sqlite3 -bail db2 &&
    sqlite3 db2 "SELECT SUM(count) FROM part" >n && test "$(cat n)" = 1000 &&
    logpipe-agg --by service --sql part <in | sqlite3 -bail db2 &&
    sqlite3 db2 "SELECT SUM(count) FROM part" >n && test "$(cat n)" = 3000
'

test_expect_success 'sqlite3: hostile values round-trip exactly, nothing else runs' '
    sqlite3 db3 "CREATE TABLE x (a INTEGER); INSERT INTO x VALUES (42)" &&
    logpipe-agg --by k --max n --sql h <hostile >h.sql &&
    sqlite3 -bail db3 <h.sql >h.out 2>&1 &&
    test ! -s h.out &&
    test "$(sqlite3 db3 "SELECT a FROM x")" = 42 &&
    test "$(sqlite3 db3 "SELECT COUNT(*), SUM(count) FROM h")" = "23|23" &&
    sqlite3 db3 "SELECT hex(k) FROM h" | tr "A-F" "a-f" | LC_ALL=C sort >got.hex &&
    test_cmp hostile.hex got.hex &&
    test ! -e pwned
'

test_expect_success 'NDJSON: hostile values come out as the same JSON strings' '
    logpipe-agg --by k <hostile >h.ndjson &&
    jq -c .k hostile | LC_ALL=C sort >expect &&
    jq -c .k h.ndjson | LC_ALL=C sort >got &&
    test_cmp expect got
'

test_expect_success 'SQL mode: a missing member and "" are one row; NUL and U+FFFD too' '
    printf "%s\n" "{\"timestamp\":1,\"k\":\"\"}" "{\"timestamp\":2}" \
        "{\"timestamp\":3,\"k\":null}" "{\"timestamp\":4,\"k\":\"a\\u0000\"}" \
        "{\"timestamp\":5,\"k\":\"a\\ufffd\"}" >merge &&
    logpipe-agg --by k --sql m <merge | sqlite3 -bail db4 &&
    sqlite3 db4 "SELECT hex(k), count FROM m ORDER BY 1" >got &&
    printf "|3\n61EFBFBD|2\n" >expect &&
    test_cmp expect got
'

if r=$(have_postgres); then
    start_postgres
    test_expect_success 'PostgreSQL: the SQL applies unchanged, twice the same rows' '
        $PSQL -f agg.sql 2>err && $PSQL -f agg.sql 2>>err &&
        ! grep -v "already exists, skipping" err &&
        $PSQL -At -F "|" -c "SELECT bucket, service, level, \"user\", count, sum_bytes::bigint, max_bytes::bigint FROM agg" |
            LC_ALL=C sort >pg.rows &&
        test_cmp once pg.rows &&
        $PSQL -At -c "SELECT pg_typeof(count), pg_typeof(sum_bytes) FROM agg LIMIT 1" >types &&
        test "$(cat types)" = "bigint|double precision"
    '

    test_expect_success 'PostgreSQL: hostile values round-trip exactly' '
        $PSQL -c "CREATE TABLE x (a integer); INSERT INTO x VALUES (42)" &&
        $PSQL -f h.sql >h.out 2>&1 &&
        test ! -s h.out &&
        test "$($PSQL -At -c "SELECT a FROM x")" = 42 &&
        test "$($PSQL -At -c "SELECT COUNT(*), SUM(count) FROM h")" = "23|23" &&
        $PSQL -At -c "SELECT encode(convert_to(k, '\''UTF8'\''), '\''hex'\'') FROM h" |
            LC_ALL=C sort >pg.hex &&
        test_cmp hostile.hex pg.hex &&
        $PSQL -f h.sql >/dev/null 2>&1 &&
        test "$($PSQL -At -c "SELECT COUNT(*), SUM(count) FROM h")" = "23|23" &&
        test ! -e pwned
    '

    test_expect_success 'PostgreSQL: a missing member and "" are one row' '
        logpipe-agg --by k --sql m <merge | $PSQL -f - &&
        test "$($PSQL -At -c "SELECT COUNT(*) FROM m WHERE k = '\'''\''")" = 1 &&
        test "$($PSQL -At -c "SELECT count FROM m WHERE k = '\'''\''")" = 3
    '
else
    test_skip 'PostgreSQL: the SQL applies unchanged, twice the same rows' "$r"
    test_skip 'PostgreSQL: hostile values round-trip exactly' "$r"
    test_skip 'PostgreSQL: a missing member and "" are one row' "$r"
fi

test_done
