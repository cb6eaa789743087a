#!/bin/sh
# t0820-analytics.sh -- examples/analytics.sql: its tables and every query,
# in sqlite3 and in PostgreSQL, over events loaded raw and through
# logpipe-agg --sql
. "$(dirname "$0")/lib.sh"

SQL=$TOP/examples/analytics.sql
PSQL="psql -X -q -v ON_ERROR_STOP=1"

# section NAME: the part of the file for one database
section() {
    case $1 in
    SQLite) sed -n '/^-- ==== SQLite/,/^-- ==== PostgreSQL/p' "$SQL" ;;
    PostgreSQL) sed -n '/^-- ==== PostgreSQL/,$p' "$SQL" ;;
    esac
}

# split NAME: the section's tables into NAME.schema, each query into
# NAME.q1, NAME.q2, ... (from a "-- query:" line to the next); prints the
# number of queries
split_section() {
    section "$1" | awk -v p="$1" '
        /^-- query:/ { n++ }
        { print > (n ? p ".q" n : p ".schema") }
        END { print n + 0 }'
}

# 600 events in the last 30 minutes, 4 services, 3 apps, every 5th an
# error, some without a level; 100 events two days ago
now=$(date +%s)
awk -v now="$now" 'BEGIN {
    split("api db web mail", s, " "); split("shop auth search", a, " ")
    for (i = 0; i < 700; i++) {
        t = (i < 100) ? now - 2 * 86400 + i * 7 : now - 1800 + (i - 100) * 2.5
        ms = int(t * 1000) + i % 1000
        lvl = (i % 5 == 0) ? "\"level\":\"error\"," : (i % 9 == 0) ? "" : "\"level\":\"info\","
        printf "{\"_id\":\"%.0f-%d\",\"timestamp\":\"%s.%03dZ\",\"service\":\"%s\",%s\"app\":\"%s\",\"message\":\"it'\''s %d\"}\n",
            ms, i % 3, strftime("%Y-%m-%dT%H:%M:%S", int(ms / 1000), 1), ms % 1000,
            s[i % 4 + 1], lvl, a[i % 3 + 1], i
    }
}' >events

# what logpipe-drain --sql would insert: one row per event
jq -r '"INSERT INTO events VALUES (" +
    ([._id, .timestamp, .service, .level, .app, .message,
      (del(._id) | tojson)]
     | map(if . == null then "NULL" else "'\''" + gsub("'\''"; "'\'''\''") + "'\''" end)
     | join(", ")) + ");"' events >raw.sql
logpipe-agg --by service,level --sql events_per_minute <events >agg.sql 2>agg.err

# expectations, from the events with jq
hour_ago=$((now - 3600))
jq -s -r --argjson since "$hour_ago" '
    map(select(.level == "error" and
               (.timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdate) >= $since))
    | group_by(.service) | map([.[0].service, length])
    | sort_by(-.[1], .[0]) | .[0] | map(tostring) | join("|")' events >top.expect
today=$(date -u -d @"$now" +%F)
jq -s -r --arg d "$today" '
    map(select(.app == "shop" and (.timestamp | startswith($d)))) | length' \
    events >shop.expect

test_expect_success 'the file has both sections and four queries in each' '
    test "$(split_section SQLite)" -eq 4 &&
    test "$(split_section PostgreSQL)" -eq 4 &&
    grep_q "^CREATE TABLE IF NOT EXISTS events " SQLite.schema &&
    grep_q "^CREATE TABLE IF NOT EXISTS events_per_minute " PostgreSQL.schema &&
    test ! -s agg.err &&
    test "$(wc -l <raw.sql)" -eq 700
'

# load_and_query NAME RUN: loads the tables of section NAME (twice: they
# are IF NOT EXISTS), the raw rows and logpipe-agg's SQL with RUN (a
# command reading SQL on stdin), runs each query into NAME.out1..4 and
# checks the results
load_and_query() {
    name=$1 run=$2
    $run <$name.schema && $run <$name.schema 2>/dev/null &&
    $run <raw.sql && $run <agg.sql 2>/dev/null || return 1
    for i in 1 2 3 4; do
        $run <$name.q$i >$name.out$i || return 1
        test -s $name.out$i || { echo "query $i: no rows" >&2; return 1; }
    done
    # the error rates from the raw events and from the counts agree
    test_cmp $name.out1 $name.out2 &&
    test "$(awk -F"|" "{ n += \$4 } END { print n }" $name.out1)" -eq 700 &&
    head -n 1 $name.out3 >top &&
    test_cmp top.expect top &&
    # (just after midnight today has no event yet: no row for it)
    if [ "$(cat shop.expect)" = 0 ]; then
        ! grep -q "^$today|shop|" $name.out4
    else
        grep_q "^$today|shop|$(cat shop.expect)\$" $name.out4
    fi
}

test_expect_success 'sqlite3: the tables, the rows, every query' '
    load_and_query SQLite "sqlite3 -bail db"
'

test_expect_success 'sqlite3: events_per_minute is the table logpipe-agg makes' '
    sqlite3 -bail fresh <agg.sql &&
    sqlite3 fresh "PRAGMA table_info(events_per_minute)" >made &&
    sqlite3 db "PRAGMA table_info(events_per_minute)" >file &&
    test_cmp made file
'

if r=$(have_postgres); then
    start_postgres
    test_expect_success 'PostgreSQL: the tables, the rows, every query' '
        load_and_query PostgreSQL "$PSQL -At -f -" &&
        cut -d"|" -f1-4 SQLite.out1 >s && cut -d"|" -f1-4 PostgreSQL.out1 >p &&
        test_cmp s p
    '

    test_expect_success 'PostgreSQL: events_per_minute is the table logpipe-agg makes' '
        cols="SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = '\''events_per_minute'\'' ORDER BY ordinal_position" &&
        $PSQL -At -c "$cols" >file &&
        $PSQL -c "CREATE DATABASE fresh" &&
        PGDATABASE=fresh $PSQL -f agg.sql &&
        PGDATABASE=fresh $PSQL -At -c "$cols" >made &&
        test_cmp made file &&
        test "$(wc -l <made)" -eq 4
    '
else
    test_skip 'PostgreSQL: the tables, the rows, every query' "$r"
    test_skip 'PostgreSQL: events_per_minute is the table logpipe-agg makes' "$r"
fi

test_done
