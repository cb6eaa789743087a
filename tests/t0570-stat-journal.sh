#!/bin/sh
# t0570-stat-journal.sh -- logpipe-stat --dir shows the drain journals
# below the tree (issue 14): a journal a killed drain left, counted with
# its bytes and age in NDJSON and --prom, gone after the drain's next
# --once; --check --max-journal-age; a journal directory that cannot be
# read
. "$(dirname "$0")/lib.sh"
start_redis

# segs: the segment files below out/.logpipe-journal, one per line
segs() {
    find out/.logpipe-journal -name 'seg-*.jnl' -type f 2>/dev/null
}

# day_files: how many day files the drains wrote (one per service and
# day: the events of a run near midnight fall on two days)
day_files() {
    find out -name '*.jsonl' -type f | wc -l
}

# seg_bytes: the sum of their sizes
seg_bytes() {
    segs | xargs -r stat -c %s | awk '{ n += $1 } END { print n + 0 }'
}

test_expect_success 'an archive without a journal: 0 journals, no age' '
    gen_events 300 >in &&
    logpipe-send <in &&
    logpipe-drain --once -d out 2>err &&
    test ! -e out/.logpipe-journal &&
    logpipe-stat -d out >s &&
    jq -e --argjson n "$(day_files)" ".archive.files == \$n and
        .archive.journals == 0 and
        .archive.journal_bytes == 0 and
        .archive.oldest_journal_age_seconds == null" s >/dev/null &&
    logpipe-stat -d out --prom >p &&
    awk -f "$TOP/tests/promcheck.awk" p &&
    grep -qx "logpipe_archive_journals{dir=\"out\"} 0" p &&
    grep -qx "logpipe_archive_journal_bytes{dir=\"out\"} 0" p &&
    grep -qx "logpipe_archive_oldest_journal_age_seconds{dir=\"out\"} 0" p &&
    logpipe-stat -d out --check --max-journal-age 0 >/dev/null
'

test_expect_success 'a drain killed after its journal commit leaves a segment' '
    gen_events 500 "a b c d e" >in2 &&
    logpipe-send <in2 &&
    LOGPIPE_TEST_CRASH=after-write expect_exit 137 logpipe-drain --once \
        -d out 2>err &&
    test "$(segs | wc -l)" -ge 1 &&
    test "$(seg_bytes)" -gt 8
'

test_expect_success 'stat counts it: 1 journal, its bytes, an age' '
    bytes=$(seg_bytes) &&
    say "segments: $(segs | tr "\n" " ")$bytes bytes" &&
    logpipe-stat -d out >s &&
    jq -e --argjson b "$bytes" ".archive.journals == 1 and
        .archive.journal_bytes == \$b and
        .archive.oldest_journal_age_seconds >= 0" s >/dev/null &&
    : the journal is not a day file: the files and bytes are theirs &&
    jq -e --argjson n "$(day_files)" ".archive.files == \$n" s >/dev/null &&
    logpipe-stat -d out --prom >p &&
    awk -f "$TOP/tests/promcheck.awk" p &&
    grep -qx "logpipe_archive_journals{dir=\"out\"} 1" p &&
    grep -qx "logpipe_archive_journal_bytes{dir=\"out\"} $bytes" p &&
    grep -q "^logpipe_archive_oldest_journal_age_seconds{dir=\"out\"} [0-9.]*$" p
'

test_expect_success 'its age grows: --check --max-journal-age crosses' '
    sleep 1.2 &&
    logpipe-stat -d out >s &&
    jq -e ".archive.oldest_journal_age_seconds >= 1" s >/dev/null &&
    expect_exit 1 logpipe-stat -d out --check --max-journal-age 1s \
        >/dev/null 2>err &&
    grep -qx "logpipe-stat: --dir out: oldest journal segment is [0-9]*\.[0-9]s old, over --max-journal-age 1s (1 journal, $(seg_bytes) bytes)" err &&
    logpipe-stat -d out --check --max-journal-age 1h >/dev/null 2>err &&
    test_cmp /dev/null err
'

test_expect_success 'the next --once applies it: 0 journals, no bytes, no age' '
    logpipe-drain --once -d out 2>err &&
    test ! -e out/.logpipe-journal &&
    logpipe-stat -d out >s &&
    jq -e ".archive.journals == 0 and .archive.journal_bytes == 0 and
        .archive.oldest_journal_age_seconds == null" s >/dev/null &&
    : every event once, none lost &&
    cat in in2 | LC_ALL=C sort >want &&
    archive_events out >got &&
    test_cmp want got &&
    logpipe-stat -d out --prom >p &&
    grep -qx "logpipe_archive_journals{dir=\"out\"} 0" p &&
    grep -qx "logpipe_archive_journal_bytes{dir=\"out\"} 0" p &&
    grep -qx "logpipe_archive_oldest_journal_age_seconds{dir=\"out\"} 0" p &&
    logpipe-stat -d out --check --max-journal-age 0 >/dev/null
'

test_expect_success 'journals that cannot be read: null, warned, --check crosses' '
    : a file where the journals directory should be, which root too &&
    : fails to read as one &&
    printf x >out/.logpipe-journal &&
    logpipe-stat -d out >s 2>err &&
    echo "logpipe-stat: --dir out: .logpipe-journal: Not a directory" >want &&
    test_cmp want err &&
    jq -e --argjson n "$(day_files)" ".archive.files == \$n and
        .archive.journals == null and
        .archive.journal_bytes == null and
        .archive.oldest_journal_age_seconds == null" s >/dev/null &&
    logpipe-stat -d out --prom >p 2>/dev/null &&
    grep -qx "logpipe_archive_files{dir=\"out\"} $(day_files)" p &&
    ! grep -q "journal" p &&
    expect_exit 1 logpipe-stat -d out --check --max-journal-age 1h \
        >/dev/null 2>err &&
    printf "%s\n" "logpipe-stat: --dir out: .logpipe-journal: Not a directory" \
        "logpipe-stat: --dir out: journals not read, --max-journal-age not met" >want &&
    test_cmp want err &&
    rm out/.logpipe-journal &&
    expect_exit 1 logpipe-stat -d nodir --check --max-journal-age 1h \
        >/dev/null 2>err &&
    printf "%s\n" "logpipe-stat: --dir nodir: No such file or directory" \
        "logpipe-stat: --dir nodir: journals not read, --max-journal-age not met" >want &&
    test_cmp want err
'

test_expect_success '--max-journal-age: a duration, and only with --dir' '
    expect_exit 64 logpipe-stat --max-journal-age 1h 2>err &&
    echo "logpipe-stat: --max-journal-age needs --dir" >want &&
    test_cmp want err &&
    expect_exit 64 logpipe-stat -d out --max-journal-age 1z 2>err &&
    grep_q "max-journal-age.*not a duration" err &&
    LOGPIPE_DIR=out expect_exit 64 logpipe-stat --check --max-journal-age 1h 2>err &&
    test_cmp want err
'

test_done
