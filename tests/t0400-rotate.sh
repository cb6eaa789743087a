#!/bin/sh
# t0400-rotate.sh -- logpipe-rotate: compress closed days, late events,
# retention, crashes, concurrency with drains
. "$(dirname "$0")/lib.sh"

set_days

# content DIR: every line of the tree, .jsonl and .jsonl.gz, sorted
content() {
    { find "$1" -name '*.jsonl' -exec cat {} +
      find "$1" -name '*.jsonl.gz' -exec zcat {} +; } | LC_ALL=C sort
}

test_expect_success 'closed days are compressed; today and recent files stay' '
    day_file t api "$d1" 500 &&
    day_file t db "$d2" 300 &&
    day_file t api "$today" 50 &&
    day_file t web "$d1" 10 && touch t/web/$d1.jsonl &&
    content t >before &&
    logpipe-rotate -d t >out &&
    test -f t/api/$d1.jsonl.gz && test ! -e t/api/$d1.jsonl &&
    test -f t/db/$d2.jsonl.gz && test ! -e t/db/$d2.jsonl &&
    test -f t/api/$today.jsonl &&
    test -f t/web/$d1.jsonl &&
    content t >after &&
    test_cmp before after &&
    jq -e "select(.action == \"compress\") | .bytes_in > 0 and .bytes_out > 0 and .ms >= 0" out >/dev/null &&
    test "$(jq -r .action out | sort | tr "\n" " ")" = "compress compress "
'

test_expect_success 'files are verified gzip, 0640, and the source is gone' '
    gzip -t t/api/$d1.jsonl.gz &&
    test "$(stat -c %a t/api/$d1.jsonl.gz)" = 640 &&
    test -z "$(find t -name ".*.tmp")"
'

test_expect_success 'a late event becomes a second member, replayed' '
    day_file t api "$d1" 1 &&
    logpipe-rotate -d t --grace 0 >out &&
    grep_q "\"action\":\"append\"" out &&
    test "$(zcat t/api/$d1.jsonl.gz | wc -l)" -eq 501 &&
    test "$(logpipe-replay t/api/$d1.jsonl.gz | wc -l)" -eq 501
'

test_expect_success 'killed after rename, before unlink: the next run only unlinks' '
    day_file k api "$d2" 200 &&
    cp k/api/$d2.jsonl saved &&
    LOGPIPE_TEST_CRASH=after-rename expect_exit 137 logpipe-rotate -d k &&
    test -f k/api/$d2.jsonl && test -f k/api/$d2.jsonl.gz &&
    logpipe-rotate -d k >out &&
    grep_q "\"action\":\"unlink\".*already compressed" out &&
    test ! -e k/api/$d2.jsonl &&
    zcat k/api/$d2.jsonl.gz >got &&
    test_cmp saved got
'

test_expect_success 'killed after rename, then a late event appended: only the rest is added' '
    rm -rf k2 && day_file k2 api "$d2" 200 &&
    LOGPIPE_TEST_CRASH=after-rename expect_exit 137 logpipe-rotate -d k2 &&
    day_file k2 api "$d2" 1 &&
    logpipe-rotate -d k2 --grace 0 >out 2>err &&
    grep_q "are in $d2.jsonl.gz already" err &&
    grep_q "\"action\":\"append\".*\"bytes_in\":[0-9]" out &&
    test ! -e k2/api/$d2.jsonl &&
    test "$(zcat k2/api/$d2.jsonl.gz | wc -l)" -eq 201 &&
    test "$(zcat k2/api/$d2.jsonl.gz | sort | uniq -d | wc -l)" -eq 1
'

for point in after-temp after-rename after-unlink; do
    test_expect_success "rotate killed $point, run again: a consistent tree" '
        rm -rf c && day_file c api "$d2" 300 && day_file c db "$d3" 100 &&
        content c >before &&
        LOGPIPE_TEST_CRASH='$point' logpipe-rotate -d c >/dev/null 2>&1 || :
        logpipe-rotate -d c >out &&
        content c >after &&
        test_cmp before after &&
        test -z "$(find c -name ".*.tmp")" &&
        test -z "$(find c -name "*.jsonl")"
    '
done

test_expect_success 'retention deletes whole days older than --retain, at day boundaries' '
    rm -rf r &&
    day_file r api "$d1" 5 && day_file r api "$d2" 5 && day_file r db "$d3" 5 &&
    day_file r api "$today" 5 &&
    logpipe-rotate -d r --retain 1d --grace 0 >out &&
    test -e r/api/$d1.jsonl.gz &&
    test ! -e r/api/$d2.jsonl.gz && test ! -e r/api/$d2.jsonl &&
    test ! -e r/db && test -e r/api/$today.jsonl &&
    grep_q "\"action\":\"delete\",\"path\":\"api/$d2.jsonl\".*\"reason\":\"retain\"" out &&
    grep_q "\"action\":\"rmdir\",\"path\":\"db\"" out
'

test_expect_success '--max-size deletes the oldest days first, never today' '
    rm -rf m &&
    day_file m api "$d9" 2000 && day_file m db "$d9" 2000 &&
    day_file m api "$d3" 2000 && day_file m api "$d1" 2000 &&
    day_file m api "$today" 2000 &&
    logpipe-rotate -d m --grace 0 >/dev/null &&
    size=$(du -b --apparent-size -c $(find m -name "*.jsonl*") | tail -1 | cut -f1) &&
    logpipe-rotate -d m --max-size $((size - 1)) >out &&
    test ! -e m/db && test ! -e m/api/$d9.jsonl.gz &&
    test -e m/api/$d3.jsonl.gz && test -e m/api/$today.jsonl &&
    logpipe-rotate -d m --max-size 1 >out 2>err &&
    test -e m/api/$today.jsonl && test ! -e m/api/$d1.jsonl.gz &&
    grep_q "today is never deleted" err
'

test_expect_success '--dry-run prints the actions and changes nothing' '
    rm -rf n && day_file n api "$d2" 10 &&
    find n | sort >before &&
    logpipe-rotate -d n --dry-run --retain 1d >out &&
    grep_q "\"dry_run\":true" out &&
    find n | grep -v rotate.lock | sort >after &&
    grep -v rotate.lock before >before2 &&
    test_cmp before2 after
'

test_expect_success 'a second rotate on the same tree: exit 75, nothing done' '
    rm -rf l && day_file l api "$d2" 10 &&
    logpipe-rotate -d l --dry-run >/dev/null || exit 1
    # the lock held until we say so, whatever the load
    flock l/.logpipe-rotate.lock sh -c \
        ": >held; while test ! -e release; do sleep 0.05; done" &
    holder=$!
    rc=0
    { wait_for 60 "test -e held" &&
      expect_exit 75 logpipe-rotate -d l 2>err; } || rc=1
    : >release && wait $holder &&
    test $rc -eq 0 &&
    grep_q "another logpipe-rotate" err &&
    test -e l/api/$d2.jsonl
'

test_expect_success '--jobs 2 gives the same tree' '
    rm -rf j1 j2 &&
    for s in a b c d e f; do day_file j1 $s "$d2" 3000; day_file j2 $s "$d2" 3000; done &&
    logpipe-rotate -d j1 >/dev/null &&
    logpipe-rotate -d j2 --jobs 2 >out &&
    test "$(grep -c compress out)" -eq 6 &&
    content j1 >a && content j2 >b && test_cmp a b
'

test_expect_success 'usage and configuration errors' '
    expect_exit 64 logpipe-rotate --level 10 2>err &&
    expect_exit 64 logpipe-rotate --jobs 0 2>err &&
    expect_exit 66 logpipe-rotate -d nonexistent 2>err &&
    expect_exit 78 logpipe-rotate -d t --layout "x.jsonl" 2>err
'

start_redis
test_expect_success 'rotate while a drain writes late events under load: none lost or doubled' '
    rcli DEL logs:stream >/dev/null
    awk -v a="$d1" -v b="$d2" "BEGIN { for (i = 1; i <= 60000; i++)
        printf \"{\\\"timestamp\\\":\\\"%sT%02d:00:00Z\\\",\\\"service\\\":\\\"s%d\\\",\\\"seq\\\":%d}\\n\",
            (i % 2 ? a : b), i % 24, i % 4, i }" >late
    logpipe-drain -d live -n 200 --block 50 2>derr &
    drain=$!
    trap "kill $drain 2>/dev/null || :" EXIT
    split -l 2000 late part.
    n=0
    for p in part.*; do
        logpipe-send --max-age 4d <$p
        n=$((n + 2000))
        if [ $n -eq 30000 ]; then
            # once: the drain idle with all sent so far written and
            # synced (its journal cut: rotate leaves a file the journal
            # still covers), so this rotate compresses every file, and the
            # second half comes late for compressed days (the appends
            # checked below)
            wait_for 300 "test \"\$(logpipe-replay live | wc -l)\" -ge $n"
            wait_for 300 "test -z \"\$(find live/.logpipe-journal -name \"seg-*\")\""
            logpipe-rotate -d live --grace 0 >>rot.out 2>>rot.err
            test -z "$(find live -name "*.jsonl")"
        else
            logpipe-rotate -d live --grace 0 >>rot.out 2>>rot.err || :
        fi
    done
    wait_for 300 "test \"\$(logpipe-replay live | wc -l)\" -ge 60000"
    kill -TERM $drain && { wait $drain || { cat derr; false; }; } &&
    logpipe-rotate -d live --grace 0 >>rot.out &&
    logpipe-replay live | seqs - >got &&
    seq 1 60000 >want &&
    test_cmp want got &&
    test "$(grep -c "\"action\":\"append\"" rot.out)" -gt 0 &&
    test -z "$(find live -name "*.jsonl")"
'

test_done
