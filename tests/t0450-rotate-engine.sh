#!/bin/sh
# t0450-rotate-engine.sh -- what rotate says and counts on the paths its
# other tests do not take: a file a --jobs worker cannot handle, a reader
# gone under --jobs 2, the temp files of a killed rotate, the warnings
. "$(dirname "$0")/lib.sh"

set_days

# value FILE SAMPLE: the value of one sample of a metrics file
value() {
    awk -v s="$2" '$1 == s { print $2 }' "$1"
}

# bad DIR: a tree whose api day cannot be compressed (its .gz is a
# symbolic link, which rotate does not follow) and whose db day can
bad() {
    rm -rf "$1" && day_file "$1" api "$d2" 50 && day_file "$1" db "$d3" 50 &&
    ln -s /dev/null "$1/api/$d2.jsonl.gz"
}

# errors_total counts the file once with --jobs 2 too (it was counted by
# its worker and again by the tool for the worker's exit status)
for jobs in 1 2; do
    test_expect_success "--jobs $jobs: a file that cannot be handled is said, the rest done, 74, counted" '
        bad b$jobs &&
        expect_exit 74 logpipe-rotate -d b$jobs --jobs '$jobs' \
            --metrics b$jobs.prom >out 2>err &&
        echo "logpipe-rotate: api/$d2.jsonl.gz: Too many levels of symbolic links" >want &&
        test_cmp want err &&
        test "$(jq -r .action out)" = compress &&
        test "$(jq -r .path out)" = "db/$d3.jsonl" &&
        test -f b$jobs/db/$d3.jsonl.gz && test -f b$jobs/api/$d2.jsonl &&
        errors=$(value b$jobs.prom logpipe_rotate_errors_total) &&
        test "$errors" = 1 &&
        test "$(value b$jobs.prom "logpipe_rotate_actions_total{action=\"compress\"}")" = 1 &&
        test "$(value b$jobs.prom logpipe_rotate_bytes_in_total)" = "$(jq .bytes_in out)" &&
        test "$(value b$jobs.prom logpipe_rotate_bytes_out_total)" = "$(jq .bytes_out out)"
    '
done

test_expect_success 'the error is said with -q too, and as an error in JSON' '
    bad q && expect_exit 74 logpipe-rotate -q -d q --jobs 2 >/dev/null 2>err &&
    echo "logpipe-rotate: api/$d2.jsonl.gz: Too many levels of symbolic links" >want &&
    test_cmp want err &&
    bad j && expect_exit 74 logpipe-rotate --log-format json -d j >/dev/null 2>err &&
    test "$(jq -r .level err)" = error &&
    test "$(jq -r .msg err)" = "api/$d2.jsonl.gz: Too many levels of symbolic links"
'

test_expect_success '--jobs 2, reader gone: 141, quietly, metrics written' '
    for s in api db web log; do day_file p $s "$d2" 20; done &&
    gone logpipe-rotate -d p --jobs 2 --metrics p.prom &&
    test "$(cat rc)" -eq 141 &&
    test_cmp /dev/null err &&
    grep -q "^logpipe_rotate_seconds " p.prom &&
    test -z "$(find p -name ".*.tmp")"
'

test_expect_success 'a killed rotate'"'"'s temp file is cleaned up, a live one'"'"'s left' '
    day_file k api "$d2" 10 &&
    echo junk >k/api/.$d3.jsonl.gz.2147483646.tmp &&
    echo live >k/api/.$d1.jsonl.gz.$$.tmp &&
    logpipe-rotate -d k --metrics k.prom >out &&
    grep -x "{\"action\":\"cleanup\",\"path\":\"api/.$d3.jsonl.gz.2147483646.tmp\",\"bytes_in\":5}" out &&
    test ! -e k/api/.$d3.jsonl.gz.2147483646.tmp &&
    test -f k/api/.$d1.jsonl.gz.$$.tmp &&
    test "$(value k.prom "logpipe_rotate_actions_total{action=\"cleanup\"}")" = 1 &&
    echo junk >k/api/.$d3.jsonl.gz.2147483646.tmp &&
    logpipe-rotate -d k -n >out &&
    grep -x "{\"action\":\"cleanup\",\"path\":\"api/.$d3.jsonl.gz.2147483646.tmp\",\"bytes_in\":5,\"dry_run\":true}" out &&
    test -f k/api/.$d3.jsonl.gz.2147483646.tmp
'

test_expect_success '--max-size that only today exceeds: a warning, today kept' '
    day_file m api "$today" 10 && touch m/api/$today.jsonl &&
    size=$(stat -c %s m/api/$today.jsonl) &&
    logpipe-rotate -d m --max-size 1 >out 2>err &&
    echo "logpipe-rotate: the tree still holds $size bytes, more than --max-size: today is never deleted" >want &&
    test_cmp want err && test_cmp /dev/null out &&
    logpipe-rotate -q -d m --max-size 1 2>err && test_cmp /dev/null err
'

test_expect_success 'killed after rename, then a late event: the warning names the bytes in the .gz' '
    day_file r api "$d2" 30 && n=$(stat -c %s r/api/$d2.jsonl) &&
    LOGPIPE_TEST_CRASH=after-rename logpipe-rotate -d r >/dev/null 2>&1 || :
    test -f r/api/$d2.jsonl.gz && test -f r/api/$d2.jsonl &&
    day_file r api "$d2" 1 &&
    logpipe-rotate -d r >out 2>err &&
    echo "logpipe-rotate: api/$d2.jsonl: its first $n bytes are in $d2.jsonl.gz already (a rotate was killed): compressing the rest" >want &&
    test_cmp want err &&
    test "$(jq -r .action out)" = append &&
    test "$(zcat r/api/$d2.jsonl.gz | wc -l)" -eq 31
'

test_done
