#!/bin/sh
# t0410-replay.sh -- logpipe-replay: archives back to NDJSON, filters,
# damage, WAL, the stream
. "$(dirname "$0")/lib.sh"
start_redis

now=$(date +%s)
t0=$((now - 3 * 86400))
# the day two days before now, from the same reading of the clock
d2=$(date -u -d "@$((now - 2 * 86400))" +%F)

# 3 days of events, 4 services, every 30 seconds, with a seq
awk -v n=8000 -v t0="$t0" 'BEGIN {
    split("api db web mail", s, " ")
    for (i = 1; i <= n; i++)
        printf "{\"timestamp\":\"%s\",\"service\":\"%s\",\"level\":\"%s\",\"seq\":%d,\"msg\":\"caf\303\251 %d\"}\n",
            strftime("%Y-%m-%dT%H:%M:%SZ", t0 + i * 30, 1), s[i % 4 + 1],
            (i % 10 == 0) ? "error" : "info", i, i
}' >in
LC_ALL=C sort in >in.sorted

# 30,000 lines over two files, more than three batches of the second
# thread each: good events in and out of the window, blank lines, lines
# padded with blanks, broken JSON, non-objects, lines over --max-line;
# mixed OFF NAME writes NAME.jsonl, NAME.want (what replay --since t0
# gives) and NAME.bad (the numbers of the damaged lines)
mixed() {
    awk -v n=30000 -v t0="$t0" -v off="$1" -v name="$2" 'BEGIN {
        want = name ".want"; bad = name ".bad"; f = name ".jsonl"
        for (i = 1; i <= n; i++) {
            k = (i * 7 + off) % 97
            in_ = sprintf("{\"seq\":%d,\"timestamp\":%d}", i, t0 + 86400)
            if (k == 1) print "" >f
            else if (k == 2) { printf "  %s\t\n", in_ >f; print in_ >want }
            else if (k == 7) { printf "  %s\n", in_ >f; print in_ >want }
            else if (k == 8) { printf "%s \n", in_ >f; print in_ >want }
            else if (k == 3) { printf "{\"seq\":%d,\"timestamp\":%d\n", i, t0 >f; print i >bad }
            else if (k == 4) { printf "[%d]\n", i >f; print i >bad }
            else if (k == 5) {
                printf "{\"seq\":%d,\"pad\":\"", i >f
                for (j = 0; j < 300; j++) printf "x" >f
                print "\"}" >f; print i >bad
            }
            else if (k == 6) printf "{\"seq\":%d,\"timestamp\":%d}\n", i, t0 - 86400 >f
            else {
                line = sprintf("{\"seq\":%d,\"timestamp\":%d,\"msg\":\"caf\303\251\"}", i, t0 + 86400)
                print line >f; print line >want
            }
        }
    }'
}
mkdir -p mixed
mixed 0 mixed/a
mixed 5 mixed/b

test_expect_success 'send -> drain -> rotate -> replay --strip-id gives back the input' '
    logpipe-send --max-age 4d <in &&
    logpipe-drain --once -d arch &&
    logpipe-rotate -d arch --grace 0 >/dev/null &&
    test -n "$(find arch -name "*.jsonl.gz")" &&
    logpipe-replay --strip-id arch | LC_ALL=C sort >got &&
    test_cmp in.sorted got
'

test_expect_success 'lines keep their _id first, byte for byte otherwise' '
    logpipe-replay arch | head -n 1 | grep -q "^{\"_id\":\"[0-9]*-[0-9]*\",\"timestamp\":" &&
    logpipe-replay -d arch | wc -l | grep -qx 8000
'

test_expect_success 'days come out in order' '
    logpipe-replay arch | sed -n "s/.*\"timestamp\":\"\([0-9-]*\)T.*/\1/p" >days &&
    sort -c days
'

test_expect_success '--since and --until, in every form' '
    a=$((t0 + 1000 * 30)) && b=$((t0 + 2000 * 30)) &&
    logpipe-replay arch --since $a --until $b | seqs - >got &&
    seq 1000 1999 >want &&
    test_cmp want got &&
    ra=$(date -u -d @$a +%Y-%m-%dT%H:%M:%SZ) && rb=$(date -u -d @$b +%Y-%m-%dT%H:%M:%SZ) &&
    logpipe-replay arch --since "$ra" --until "$rb" | seqs - >got2 &&
    test_cmp want got2 &&
    expect_exit 64 logpipe-replay arch --since "$d2" --until "$d2" 2>err &&
    grep_q "^logpipe-replay: --until is not after --since$" err &&
    logpipe-replay arch --since "$d2" | seqs - | head -n 1 >first &&
    first=$(cat first) &&
    test "$(date -u -d @$((t0 + first * 30)) +%F)" = "$d2" &&
    test "$(date -u -d @$((t0 + (first - 1) * 30)) +%F)" != "$d2" &&
    logpipe-replay arch --since 1h | seqs - >recent &&
    test "$(wc -l <recent)" -le 121
'

test_expect_success '--where filters with jq' '
    logpipe-replay arch --where ".level == \"error\" and .service == \"api\"" >err.out &&
    test "$(wc -l <err.out)" -eq 400 &&
    ! grep -v "\"level\":\"error\"" err.out
'

test_expect_success '--dedup drops repeated _id' '
    logpipe-replay arch >all &&
    cat all all | logpipe-replay --dedup - >dd &&
    test_cmp all dd
'

test_expect_success '--sort merges the files of a day by event time' '
    logpipe-replay --sort --strip-id arch >sorted &&
    sed -n "s/.*\"timestamp\":\"\([^\"]*\)\".*/\1/p" sorted >ts &&
    sort -c ts &&
    LC_ALL=C sort sorted >s2 && test_cmp in.sorted s2
'

test_expect_success 'a truncated .gz: the readable part, the file and line named, exit 65' '
    f=$(find arch -name "*.jsonl.gz" | head -n 1) &&
    zcat "$f" >whole &&
    cp "$f" trunc.jsonl.gz &&
    truncate -s $(( $(stat -c %s "$f") * 2 / 3 )) trunc.jsonl.gz &&
    expect_exit 65 logpipe-replay trunc.jsonl.gz >part 2>err &&
    grep_q "^logpipe-replay: trunc.jsonl.gz: line [0-9]*: damaged gzip" err &&
    test "$(wc -l <part)" -gt 0 &&
    head -n "$(wc -l <part)" whole >prefix &&
    test_cmp prefix part
'

test_expect_success 'a .gz member cut short before others: every member after it read, exit 65' '
    head -n 200 in | gzip -1 >c1 &&
    sed -n "201,210p" in | gzip >c2 &&
    sed -n "211,230p" in | gzip >c3 &&
    head -c $(( $(stat -c %s c1) / 2 )) c1 >cut.jsonl.gz &&
    cat c2 c3 >>cut.jsonl.gz &&
    expect_exit 65 logpipe-replay cut.jsonl.gz >out 2>err &&
    grep_q "cut.jsonl.gz: .*member 1 is .*resuming at the next member" err &&
    tail -n 30 out >last &&
    sed -n "201,230p" in >want30 &&
    test_cmp want30 last
'

test_expect_success 'a bit-flipped .gz: later members still read, damage named' '
    f=$(find arch -name "*.jsonl.gz" | head -n 1) &&
    zcat "$f" >m1 &&
    head -n 20 in | gzip >m2 &&
    cat "$f" m2 >two.jsonl.gz &&
    printf "\377\377\377\377" | dd of=two.jsonl.gz bs=1 seek=300 conv=notrunc 2>/dev/null &&
    expect_exit 65 logpipe-replay two.jsonl.gz >out 2>err &&
    grep_q "two.jsonl.gz: .*member 1 is damaged.*resuming at the next member" err &&
    tail -n 20 out >last &&
    head -n 20 in >want20 &&
    test_cmp want20 last &&
    test "$(wc -l <err)" -le 13
'

test_expect_success 'a bad line in a .jsonl is named; the rest is printed' '
    printf "{\"_id\":\"1-1\",\"a\":1}\nnot json\n{\"_id\":\"1-2\",\"a\":2}\n" >bad.jsonl &&
    expect_exit 65 logpipe-replay bad.jsonl >out 2>err &&
    grep_q "^logpipe-replay: bad.jsonl: line 2: invalid JSON" err &&
    test "$(wc -l <out)" -eq 2
'

test_expect_success 'a compressed day and its late events: the .gz first' '
    mkdir -p late/api &&
    printf "{\"_id\":\"1-1\",\"n\":1}\n" | gzip >late/api/$d2.jsonl.gz &&
    printf "{\"_id\":\"1-2\",\"n\":2}\n" >late/api/$d2.jsonl &&
    logpipe-replay late | sed -n "s/.*\"n\":\([0-9]\).*/\1/p" | tr -d "\n" >order &&
    test "$(cat order)" = 12
'

test_expect_success '--from-redis names an entry that is not an object' '
    rcli DEL other >/dev/null &&
    rcli XADD other "*" data "[1,2]" >/dev/null &&
    rcli XADD other "*" data "{\"_id\":\"mine\",\"ok\":1}" >/dev/null &&
    expect_exit 65 logpipe-replay --from-redis -s other >out 2>err &&
    grep_q "entry [0-9]*-0: not a JSON object" err &&
    grep -q "^{\"_id\":\"[0-9]*-0\",\"ok\":1}$" out
'

test_expect_success 'WAL segments are replayed, dead letters left out' '
    printf "{\"a\":1}\nbroken\n{\"a\":2}\n" |
        expect_exit 65 logpipe-send -r $(dead_redis) \
            --wal w --rejects-to-dlq 2>/dev/null &&
    logpipe-replay w >out &&
    printf "{\"a\":1}\n{\"a\":2}\n" >want &&
    test_cmp want out
'

test_expect_success '--from-redis reads the stream between two times' '
    rcli DEL logs:stream >/dev/null &&
    logpipe-send --max-age 4d <in &&
    logpipe-replay --from-redis --strip-id | LC_ALL=C sort >got &&
    test_cmp in.sorted got &&
    logpipe-replay --from-redis --since 1h | wc -l | grep -qx 8000 &&
    test "$(logpipe-replay --from-redis --until 2000-01-01 | wc -l)" -eq 0
'

test_expect_success 'stdin, and a closed pipe ends quietly' '
    head -n 3 in | logpipe-replay - >out &&
    head -n 3 in >want && test_cmp want out &&
    { logpipe-replay arch 2>err; echo $? >rc; } | head -n 1 >/dev/null &&
    test "$(cat rc)" -eq 141 && test ! -s err
'

test_expect_success 'lines judged on two threads: output and messages in order' '
    since=$(date -u -d @$t0 +%FT%TZ) &&
    expect_exit 65 logpipe-replay -v --max-line 200 --since "$since" mixed/a.jsonl mixed/b.jsonl >par.out 2>par.err &&
    cat mixed/a.want mixed/b.want >want &&
    test_cmp want par.out &&
    for f in a b; do
        sed -n "s|^logpipe-replay: mixed/$f.jsonl: line \([0-9]*\): .*|\1|p" par.err >got.$f &&
        test_cmp mixed/$f.bad got.$f || return 1
    done &&
    nbad=$(cat mixed/a.bad mixed/b.bad | wc -l) &&
    grep_q "^logpipe-replay: $nbad damaged lines in 2 files\$" par.err &&
    grep_q "line [0-9]*: longer than --max-line (200 bytes)" par.err &&
    grep_q "line [0-9]*: not a JSON object" par.err &&
    grep_q "line [0-9]*: invalid JSON: " par.err &&
    : without -v, the first 10 of the run, then how many more &&
    expect_exit 65 logpipe-replay --max-line 200 --since "$since" mixed/a.jsonl mixed/b.jsonl >out 2>err &&
    test_cmp want out &&
    head -n 10 mixed/a.bad | sed "s|^|mixed/a.jsonl: line |" >want.named &&
    head -n 10 err | sed "s|^logpipe-replay: \(mixed/a.jsonl: line [0-9]*\): .*|\1|" >got.named &&
    test_cmp want.named got.named &&
    printf "logpipe-replay: %d more damaged lines\nlogpipe-replay: %d damaged lines in 2 files\n" $((nbad - 10)) $nbad >want.end &&
    tail -n +11 err >got.end &&
    test_cmp want.end got.end
'

test_expect_success '... the same as on one thread (--where true)' '
    expect_exit 65 logpipe-replay -v --max-line 200 --since "$(date -u -d @$t0 +%FT%TZ)" --where true mixed/a.jsonl mixed/b.jsonl >one.out 2>one.err &&
    test_cmp par.out one.out &&
    test_cmp par.err one.err
'

test_expect_success 'a FIFO after a file: the read-ahead leaves it alone' '
    rm -f fifo && mkfifo fifo &&
    head -n 2 in >first.jsonl &&
    { sed -n 3p in >fifo & } &&
    timeout 10 logpipe-replay first.jsonl fifo >out &&
    head -n 3 in >want && test_cmp want out
'

test_expect_success '--from-redis: a key of the wrong type, 78 and named' '
    rcli SET strkey x >/dev/null &&
    expect_exit 78 logpipe-replay --from-redis -s strkey >out 2>err &&
    test "$(wc -l <err)" -eq 1 && test ! -s out &&
    grep_q "^logpipe-replay: XRANGE strkey: WRONGTYPE " err
'

test_expect_success 'usage and input errors' '
    expect_exit 66 logpipe-replay nosuch 2>err &&
    grep_q "nosuch: No such file" err &&
    expect_exit 64 logpipe-replay --since yesterday 2>err &&
    expect_exit 64 logpipe-replay --from-redis arch 2>err &&
    expect_exit 78 logpipe-replay --where ".a ==" arch 2>err
'

test_done
