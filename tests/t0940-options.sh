#!/bin/sh
# t0940-options.sh -- every tool's command line, as the user meets it: a
# bad value or a bad mix of options is refused with exactly this message
# and status 64, an unknown option with getopt's words and the one-line
# hint, --help and --version win over what comes after them; flags beat
# the environment, which beats the defaults
. "$(dirname "$0")/lib.sh"

# The cases: "@ STATUS COMMAND", then what COMMAND prints on stderr, to
# the next "@" (nothing: it prints nothing there). Run with no
# LOGPIPE_* variable and no input; none gets as far as Redis.
cat >cases <<'CASES'
@ 64 logpipe-rotate --level 0
logpipe-rotate: --level: '0' is out of range (1..9)
@ 64 logpipe-rotate -j 65
logpipe-rotate: -j/--jobs: '65' is out of range (1..64)
@ 64 logpipe-rotate --jobs=x
logpipe-rotate: -j/--jobs: 'x' is not a number
@ 64 logpipe-rotate --grace soon
logpipe-rotate: --grace: 'soon' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-rotate --retain 1y
logpipe-rotate: --retain: '1y' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-rotate --max-size 1Q
logpipe-rotate: --max-size: '1Q' is not a size (like 512, 64K, 10M, 1G)
@ 64 logpipe-rotate --metrics-interval 50ms
logpipe-rotate: --metrics-interval: at least 100ms
@ 64 logpipe-rotate --metrics-interval x
logpipe-rotate: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-rotate --log-format xml
logpipe-rotate: --log-format: 'xml' is not text or json
@ 64 logpipe-rotate -d ''
logpipe-rotate: --dir must not be empty
@ 64 logpipe-rotate --metrics ''
logpipe-rotate: --metrics must not be empty
@ 64 logpipe-rotate --bogus
logpipe-rotate: unrecognized option '--bogus'
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate -x
logpipe-rotate: invalid option -- 'x'
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate -d
logpipe-rotate: option requires an argument -- 'd'
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate --grace
logpipe-rotate: option '--grace' requires an argument
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate foo
logpipe-rotate: unexpected argument 'foo'
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate --redis x
logpipe-rotate: unrecognized option '--redis'
Try 'logpipe-rotate --help' for more information.
@ 64 logpipe-rotate -n --level 10 --help
logpipe-rotate: --level: '10' is out of range (1..9)
@ 64 logpipe-stat --max-lag -1
logpipe-stat: --max-lag: '-1' is not a number
@ 64 logpipe-stat --max-pending x
logpipe-stat: --max-pending: 'x' is not a number
@ 64 logpipe-stat --max-pending-age 1z
logpipe-stat: --max-pending-age: '1z' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-stat --max-dlq 1.5
logpipe-stat: --max-dlq: '1.5' is not a number
@ 64 logpipe-stat -d out --max-journal-age 1z
logpipe-stat: --max-journal-age: '1z' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-stat --check --max-journal-age 1m
logpipe-stat: --max-journal-age needs --dir
@ 64 logpipe-stat --check
logpipe-stat: --check needs a threshold (--max-lag, --max-pending, --max-pending-age, --max-dlq, --max-journal-age)
@ 64 logpipe-stat -t x
logpipe-stat: -t/--timeout: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-stat -g ''
logpipe-stat: --group must not be empty
@ 64 logpipe-stat -r ''
logpipe-stat: --redis must not be empty
@ 64 logpipe-stat -s ''
logpipe-stat: --stream must not be empty
@ 64 logpipe-stat --dlq ''
logpipe-stat: --dlq must not be empty
@ 64 logpipe-stat --password-file ''
logpipe-stat: --password-file must not be empty
@ 64 logpipe-stat foo
logpipe-stat: unexpected argument 'foo'
Try 'logpipe-stat --help' for more information.
@ 64 logpipe-stat --layout x
logpipe-stat: unrecognized option '--layout'
Try 'logpipe-stat --help' for more information.
@ 64 logpipe-dlq
logpipe-dlq: a command is needed (list, show, stats, retry, purge, export)
Try 'logpipe-dlq --help' for more information.
@ 64 logpipe-dlq --limit 0
logpipe-dlq: --limit: '0' is out of range (1..9223372036854775807)
@ 64 logpipe-dlq --older-than x list
logpipe-dlq: --older-than: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-dlq -t 0x list
logpipe-dlq: -t/--timeout: '0x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-dlq show
logpipe-dlq: show needs IDs
@ 64 logpipe-dlq retry
logpipe-dlq: retry needs IDs, or --all (one of them)
@ 64 logpipe-dlq retry 1-1 --all
logpipe-dlq: retry needs IDs, or --all (one of them)
@ 64 logpipe-dlq purge --all --older-than 1d
logpipe-dlq: purge needs IDs, or --all, or --older-than (one of them)
@ 64 logpipe-dlq list 1-1
logpipe-dlq: list takes no IDs
@ 64 logpipe-dlq list --older-than 1d
logpipe-dlq: --older-than is for purge
@ 64 logpipe-dlq bogus
logpipe-dlq: unknown command 'bogus' (list, show, stats, retry, purge, export)
@ 64 logpipe-dlq list stats
logpipe-dlq: list takes no IDs
@ 64 logpipe-dlq -- --all
logpipe-dlq: unknown command '--all' (list, show, stats, retry, purge, export)
@ 64 logpipe-dlq list -- show
logpipe-dlq: list takes no IDs
@ 64 logpipe-dlq -s -- list --limit 0
logpipe-dlq: --limit: '0' is out of range (1..9223372036854775807)
@ 64 logpipe-dlq list --limit=0
logpipe-dlq: --limit: '0' is out of range (1..9223372036854775807)
@ 64 logpipe-dlq -q list -v --bogus
logpipe-dlq: unrecognized option '--bogus'
Try 'logpipe-dlq --help' for more information.
@ 64 logpipe-agg --bucket 1500ms
logpipe-agg: --bucket: '1500ms' is not a whole number of seconds (1s or more)
@ 64 logpipe-agg --bucket 0
logpipe-agg: --bucket: '0' is not a whole number of seconds (1s or more)
@ 64 logpipe-agg --bucket x
logpipe-agg: --bucket: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-agg --lateness x
logpipe-agg: --lateness: 'x' is not a duration (like 30s, 5m) nor end
@ 64 logpipe-agg --lateness -1
logpipe-agg: --lateness: '-1' is not a duration (like 30s, 5m) nor end
@ 64 logpipe-agg --by 1a
logpipe-agg: --by: '1a' is not a name of letters, digits and _ (not starting with a digit, at most 59)
@ 64 logpipe-agg --by a,a
logpipe-agg: --by: 'a' is given twice
@ 64 logpipe-agg --by a --by a
logpipe-agg: --by: 'a' is given twice
@ 64 logpipe-agg --by a,,b
logpipe-agg: --by: empty item in list
@ 64 logpipe-agg --by a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q
logpipe-agg: --by: at most 16 members
@ 64 logpipe-agg --sum x --sum y --sum z --sum a --sum b --sum c --sum d --sum e --sum f
logpipe-agg: --sum: at most 8 members
@ 0 logpipe-agg --sum count
@ 64 logpipe-agg --by count
logpipe-agg: the output would have two members (columns) named 'count'
@ 64 logpipe-agg --by bucket
logpipe-agg: the output would have two members (columns) named 'bucket'
@ 64 logpipe-agg --sum a --by sum_a
logpipe-agg: the output would have two members (columns) named 'sum_a'
@ 64 logpipe-agg --sql 1x
logpipe-agg: --sql: '1x' is not a table name of letters, digits and _ (not starting with a digit, at most 63)
@ 64 logpipe-agg --sql ''
logpipe-agg: --sql: '' is not a table name of letters, digits and _ (not starting with a digit, at most 63)
@ 64 logpipe-agg --threshold 0
logpipe-agg: --threshold: '0' is out of range (1..9223372036854775807)
@ 64 logpipe-agg --max-groups 0
logpipe-agg: --max-groups: '0' is out of range (1..100000000)
@ 64 logpipe-agg --max-groups 100000001
logpipe-agg: --max-groups: '100000001' is out of range (1..100000000)
@ 64 logpipe-agg --max-line 1
logpipe-agg: --max-line: '1' is out of range (2..1G)
@ 64 logpipe-agg --max-line 2G
logpipe-agg: --max-line: '2G' is out of range (2..1G)
@ 64 logpipe-agg --time-field
logpipe-agg: option '--time-field' requires an argument
Try 'logpipe-agg --help' for more information.
@ 64 logpipe-agg foo
logpipe-agg: unexpected argument 'foo' (events are read from stdin)
Try 'logpipe-agg --help' for more information.
@ 64 logpipe-agg -r x
logpipe-agg: invalid option -- 'r'
Try 'logpipe-agg --help' for more information.
@ 64 logpipe-replay --since x
logpipe-replay: --since: 'x' is not a time (like 2026-11-21, 2026-11-21T10:00:00Z, 1763683200, or 2h ago as 2h)
@ 64 logpipe-replay --until 1z
logpipe-replay: --until: '1z' is not a time (like 2026-11-21, 2026-11-21T10:00:00Z, 1763683200, or 2h ago as 2h)
@ 64 logpipe-replay --since 2h --until 2h
logpipe-replay: --until is not after --since
@ 64 logpipe-replay --since 2026-01-02 --until 2026-01-01
logpipe-replay: --until is not after --since
@ 64 logpipe-replay --from-redis a
logpipe-replay: --from-redis reads the stream, not PATHs
@ 64 logpipe-replay --field ''
logpipe-replay: --field: must not be empty
@ 64 logpipe-replay --max-line 1
logpipe-replay: --max-line: '1' is out of range (2..1G)
@ 64 logpipe-replay --max-line 2G
logpipe-replay: --max-line: '2G' is out of range (2..1G)
@ 64 logpipe-replay --layout
logpipe-replay: option '--layout' requires an argument
Try 'logpipe-replay --help' for more information.
@ 64 logpipe-replay --strip-id=1
logpipe-replay: option '--strip-id' doesn't allow an argument
Try 'logpipe-replay --help' for more information.
@ 64 logpipe-send -b 0
logpipe-send: -b/--batch: '0' is out of range (1..1000000)
@ 64 logpipe-send --batch 1000001
logpipe-send: -b/--batch: '1000001' is out of range (1..1000000)
@ 64 logpipe-send -l x
logpipe-send: -l/--linger: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-send --linger 5x
logpipe-send: -l/--linger: '5x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-send -t x
logpipe-send: -t/--timeout: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-send --max-age x
logpipe-send: --max-age: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-send --max-skew x
logpipe-send: --max-skew: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-send --max-line 0
logpipe-send: --max-line: '0' is out of range (2..1G)
@ 64 logpipe-send --max-depth 0
logpipe-send: --max-depth: '0' is out of range (1..10000)
@ 64 logpipe-send --max-depth 10001
logpipe-send: --max-depth: '10001' is out of range (1..10000)
@ 64 logpipe-send --max-members 0
logpipe-send: --max-members: '0' is out of range (1..4294967295)
@ 64 logpipe-send --max-members 4294967296
logpipe-send: --max-members: '4294967296' is out of range (1..4294967295)
@ 64 logpipe-send --require a,,b
logpipe-send: --require: empty item in list
@ 64 logpipe-send --require a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,aa,ab,ac,ad,ae,af,ag
logpipe-send: --require: more than 32 items in list
@ 64 logpipe-send --wal ''
logpipe-send: --wal: must not be empty
@ 64 logpipe-send --wal-max x
logpipe-send: --wal-max: 'x' is not a size (like 512, 64K, 10M, 1G)
@ 64 logpipe-send --flush-wal
logpipe-send: --flush-wal needs --wal DIR and no FILE
@ 64 logpipe-send --flush-wal --wal d f
logpipe-send: --flush-wal needs --wal DIR and no FILE
@ 64 logpipe-send --wal-max 1M
logpipe-send: --wal-max needs --wal DIR
@ 64 logpipe-send --max-backlog 0
logpipe-send: --max-backlog: '0' is out of range (1..9223372036854775807)
@ 64 logpipe-send --rate x
logpipe-send: --rate: 'x' is not a rate like 100/s, 20/m, 5/h
@ 64 logpipe-send --rate 2000000000/s
logpipe-send: --rate: '2000000000/s' is more than 1000000000/s
@ 64 logpipe-send --burst 0
logpipe-send: --burst: '0' is out of range (1..1000000000)
@ 64 logpipe-send --burst 5
logpipe-send: --burst needs --rate
@ 64 logpipe-send --rate-key .a
logpipe-send: --rate-key needs --rate
@ 64 logpipe-send --on-limit x
logpipe-send: --on-limit: 'x' is not block, reject or dlq
@ 64 logpipe-send --on-limit dlq
logpipe-send: --on-limit needs --rate
@ 64 logpipe-send --shared-rate
logpipe-send: --shared-rate needs --rate
@ 64 logpipe-send --max-keys 0
logpipe-send: --max-keys: '0' is out of range (1..1000000)
@ 64 logpipe-send --max-keys 5
logpipe-send: --max-keys needs --rate
@ 64 logpipe-send --burst 5 --shared-rate --max-keys 5
logpipe-send: --max-keys needs --rate
@ 64 logpipe-send --max-keys 5 --burst 5
logpipe-send: --burst needs --rate
@ 64 logpipe-send -g ''
logpipe-send: --group must not be empty
@ 64 logpipe-send --journal-match foo
logpipe-send: --journal-match: 'foo' is not FIELD=VALUE (FIELD: A-Z 0-9 _)
@ 64 logpipe-send --journal-match _unit=x
logpipe-send: --journal-match: '_unit=x' is not FIELD=VALUE (FIELD: A-Z 0-9 _)
@ 64 logpipe-send --journal-match A=1
logpipe-send: --journal-match needs --journal
@ 64 logpipe-send --journal-dir ''
logpipe-send: --journal-dir: must not be empty
@ 64 logpipe-send --journal-dir d
logpipe-send: --journal-dir needs --journal
@ 64 logpipe-send --from-start
logpipe-send: --from-start needs --journal
@ 64 logpipe-send --journal f
logpipe-send: --journal reads no FILE
@ 64 logpipe-send --journal --wal w
logpipe-send: --wal does not go with --journal (the journal keeps its entries until Redis has them)
@ 64 logpipe-send --journal --position 3 --producer p
logpipe-send: --position does not go with --journal (the journal keeps its entries until Redis has them)
@ 64 logpipe-send --ids=1
logpipe-send: option '--ids' doesn't allow an argument
Try 'logpipe-send --help' for more information.
@ 64 logpipe-drain --block 0
logpipe-drain: --block: '0' is out of range (1ms..1h)
@ 64 logpipe-drain --block 2h
logpipe-drain: --block: '2h' is out of range (1ms..1h)
@ 64 logpipe-drain --block x
logpipe-drain: --block: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-drain --exec-timeout 0
logpipe-drain: --exec-timeout: must be more than 0
@ 64 logpipe-drain --claim-idle 0
logpipe-drain: --claim-idle: must be more than 0
@ 64 logpipe-drain --sql 'a b'
logpipe-drain: --sql: 'a b' is not a plain table name ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)
@ 64 logpipe-drain --sql t
logpipe-drain: --sql needs --exec or --stdout
@ 64 logpipe-drain --exec x --stdout
logpipe-drain: --exec and --stdout exclude each other
@ 64 logpipe-drain --max-open 10 --max-files 11
logpipe-drain: --max-files 11 is more than --max-open 10
@ 64 logpipe-drain --max-files 5000
logpipe-drain: --max-files 5000 is more than --max-open 4096
@ 64 logpipe-drain -c ''
logpipe-drain: -c/--consumer: must not be empty
@ 64 logpipe-drain --field ''
logpipe-drain: --field: must not be empty
@ 64 logpipe-drain --exec ''
logpipe-drain: --exec: must not be empty
@ 64 logpipe-drain -n 0
logpipe-drain: -n/--count: '0' is out of range (1..100000)
@ 64 logpipe-drain --max-deliveries 0
logpipe-drain: --max-deliveries: '0' is out of range (1..1000000)
@ 64 logpipe-drain --keep x
logpipe-drain: --keep: 'x' is not a duration (like 500ms, 30s, 5m, 24h, 7d)
@ 64 logpipe-drain --max-dlq-size 0
logpipe-drain: --max-dlq-size: '0' is out of range (1..1G)
@ 64 logpipe-drain --max-dlq-size 2G
logpipe-drain: --max-dlq-size: '2G' is out of range (1..1G)
@ 64 logpipe-drain --shard-range 3-1
logpipe-drain: --shard-range '3-1': A-B or A, shards 0 <= A <= B < 1024
@ 64 logpipe-drain --shard-range 1024
logpipe-drain: --shard-range '1024': A-B or A, shards 0 <= A <= B < 1024
@ 64 logpipe-drain --shard-range ''
logpipe-drain: --shard-range: must not be empty
@ 64 logpipe-drain foo
logpipe-drain: unexpected argument 'foo'
Try 'logpipe-drain --help' for more information.
@ 0 logpipe-rotate -n --help
@ 64 logpipe-rotate --lev 0
logpipe-rotate: --level: '0' is out of range (1..9)
@ 64 logpipe-rotate --lev=0
logpipe-rotate: --level: '0' is out of range (1..9)
@ 0 logpipe-agg --lat=end --help
@ 0 logpipe-send -V --bogus
@ 64 logpipe-send --bogus -V
logpipe-send: unrecognized option '--bogus'
Try 'logpipe-send --help' for more information.
@ 0 logpipe-dlq --version list
@ 64 logpipe-dlq bogus --help
logpipe-dlq: unknown command 'bogus' (list, show, stats, retry, purge, export)
@ 0 logpipe-dlq list -h
@ 0 logpipe-replay --since 1h -h
@ 0 logpipe-stat -vqv --log-format=json -V
@ 0 logpipe-drain -V
CASES

mkdir c
awk '/^@ / { n++; f = sprintf("c/%03d", n); print substr($0, 3) >(f ".cmd")
             close(f ".cmd"); printf "" >(f ".want"); next }
     { print >>(f ".want") }' cases

# check_cases TOOL: every case of logpipe-TOOL
check_cases() {
    n=0
    bad=0
    for c in c/*.cmd; do
        read -r want cmd <"$c"
        case $cmd in "logpipe-$1 "* | "logpipe-$1") ;; *) continue ;; esac
        n=$((n + 1))
        rc=0
        eval "$cmd" >out 2>err </dev/null || rc=$?
        if ! diff -u "${c%.cmd}.want" err >diff || [ "$rc" -ne "$want" ]; then
            echo "$cmd: exit $rc (want $want)"
            cat diff
            bad=$((bad + 1))
        fi
    done
    test "$n" -gt 5 && test "$bad" -eq 0
}

for t in agg dlq drain replay rotate send stat; do
    test_expect_success "logpipe-$t: each refusal's message and status" "
        check_cases $t
    "
done

test_expect_success 'an ambiguous abbreviation is refused with the hint' '
    expect_exit 64 logpipe-send --max 1 2>err &&
    grep_q "^logpipe-send: option .--max. is ambiguous" err &&
    grep_q "^Try .logpipe-send --help. for more information\.$" err
'

test_expect_success '--help and -h: usage on stdout, nothing on stderr' '
    for t in agg dlq drain replay rotate send stat; do
        for h in --help -h; do
            logpipe-$t $h >out 2>err &&
            head -n 1 out | grep -q "^usage: logpipe-$t " &&
            grep -q "^See logpipe-$t(1)\.$" out &&
            test ! -s err || { echo "logpipe-$t $h"; exit 1; }
        done
    done
'

test_expect_success 'the environment: a flag beats it, it beats the default' '
    mkdir d &&
    expect_exit 66 env LOGPIPE_DIR=none logpipe-rotate 2>err &&
    echo "logpipe-rotate: --dir none: No such file or directory" >want &&
    test_cmp want err &&
    expect_exit 66 env LOGPIPE_DIR=none logpipe-rotate -d other 2>err &&
    echo "logpipe-rotate: --dir other: No such file or directory" >want &&
    test_cmp want err &&
    expect_exit 66 env LOGPIPE_DIR= logpipe-rotate 2>err &&
    echo "logpipe-rotate: --dir ./logs: No such file or directory" >want &&
    test_cmp want err &&
    LOGPIPE_STREAM=envs LOGPIPE_DLQ=envd \
        LOGPIPE_REDIS_URL=redis://127.0.0.1:1/0 \
        expect_exit 69 logpipe-stat >out 2>err &&
    jq -e ".stream == \"envs\" and .dlq.key == \"envd\"" out >/dev/null &&
    grep_q "cannot connect to 127.0.0.1:1:" err &&
    LOGPIPE_STREAM=envs LOGPIPE_DLQ=envd \
        LOGPIPE_REDIS_URL=redis://127.0.0.1:1/0 \
        expect_exit 69 logpipe-stat -s flag --dlq=flagd \
        -r redis://127.0.0.1:2/0 >out 2>err &&
    jq -e ".stream == \"flag\" and .dlq.key == \"flagd\"" out >/dev/null &&
    grep_q "cannot connect to 127.0.0.1:2:" err
'

test_expect_success 'logpipe-stat takes --dir and --group from flags only' '
    LOGPIPE_DIR=d LOGPIPE_GROUP=nosuch \
        expect_exit 69 logpipe-stat -r $(dead_redis) >out 2>/dev/null &&
    jq -e "has(\"archive\") | not" out >/dev/null &&
    LOGPIPE_DIR=nod expect_exit 69 logpipe-stat -r $(dead_redis) \
        -d d >out 2>/dev/null &&
    jq -e ".archive.dir == \"d\"" out >/dev/null
'

test_done
