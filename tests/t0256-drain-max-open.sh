#!/bin/sh
# t0256-drain-max-open.sh -- more day files than --max-open (issue 14):
# a file's entry outlives its descriptor (lp_archive.h), so a file is
# opened once a write round, not once an event; a file rotated away or
# replaced while its entry has no descriptor is found at its next write,
# and its lines go to the new file, each once; a power cut over many files
# and few descriptors loses no acknowledged event and doubles none
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/powerloss-lib.sh"
start_redis drain

value() {
    awk -v s="$2" '$1 == s { print $2 }' "$1"
}

fresh() {
    rcli DEL logs:stream >/dev/null
    rm -rf out
    gen_events "$1" "$2" >in
    logpipe-send <in
}

segs() {
    find out/.logpipe-journal -name "seg-*.jnl" 2>/dev/null
}

# day_fds PID: how many day files PID holds open
day_fds() {
    ls -l /proc/$1/fd 2>/dev/null | grep -c "\.jsonl$" || :
}

SVC100=$(seq -f 's%03g' 1 100 | tr '\n' ' ')

# 5000 events over 100 files in turn, 64 descriptors, 50 entries a batch
# (below --max-files, which is --max-open: no batch is split). A file is
# opened when first seen, and again when its lines are written: by an
# epoch (one a second), by the end of --once; 150 opens when measured.
# Before, the table of files was --max-open long: each file was closed
# by the 64 others that came after it, and opened again for every event
# (5000 opens).
test_expect_success '100 files, --max-open 64: a file opened once a write round, not once an event' '
    fresh 5000 "$SVC100" &&
    logpipe-drain --once -d out -n 50 --max-open 64 --metrics m.prom &&
    test "$(pending)" -eq 0 &&
    exactly 5000 out &&
    ! test -e out/.logpipe-journal &&
    opens=$(value m.prom logpipe_drain_file_opens_total) &&
    say "files opened: $opens, for 5000 events over 100 files" &&
    test "$opens" -ge 100 &&
    test "$opens" -le 2500
'

SVC20=$(seq -f 'r%02g' 1 20 | tr '\n' ' ')

# what the drain said (derr), shown when a check of it fails
show_derr() {
    echo "the drain said:" >&2
    sed -e 's/^/    /' derr | tail -n 30 >&2
    return 1
}

# reopened N: the drain said N times that a file was rotated
reopened() {
    test "$(grep -c "was rotated: reopening" derr)" -eq "$1" || show_derr
}

# stop_drain PID: SIGTERM ends the drain, status 0
stop_drain() {
    kill -TERM "$1" || return 1
    wait "$1" || { echo "drain exited $?" >&2; show_derr; }
}

# few_fds PID: it holds at most --max-open (4) day files open
few_fds() {
    test "$(day_fds "$1")" -le 4 || { ls -l "/proc/$1/fd" >&2; return 1; }
}

# the lines of a closed day, 20 files, one line each, then 20 more: the
# drain holds 4 descriptors, so most entries have none when the files
# change under them. Yesterday at noon is more than send's --max-age (24h)
# from noon on: sent with --max-age 0 (the test failed after 12:00 UTC)
start_day() {
    rcli DEL logs:stream >/dev/null
    rm -rf out
    set_days
    gen_events 40 "$SVC20" "$(date -u -d "$d1 12:00" +%s)" >in
    head -n 20 in | logpipe-send --max-age 0
}

# rotate compresses the day (its lines synced and the journal cut first:
# rotate leaves a day alone while a journal holds lines of it), then 20
# more lines of that day come: each goes to a new file by that name
test_expect_success 'rotated away while its entry has no descriptor: the next line goes to a new file, every event once' '
    start_day || exit 1
    logpipe-drain -v -d out -n 100 --max-open 4 --block 100 2>derr &
    d=$!
    echo $d >>"$TMP/.pids"
    wait_for 30 "test \"\$(cat out/*/*.jsonl | wc -l)\" -eq 20" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    wait_for 30 "test -z \"\$(segs)\"" &&
    few_fds $d &&
    logpipe-rotate --grace 0 -d out >act 2>rerr &&
    test "$(find out -name "*.jsonl.gz" | wc -l)" -eq 20 &&
    test "$(find out -name "*.jsonl" | wc -l)" -eq 0 &&
    tail -n 20 in | logpipe-send --max-age 0 &&
    wait_for 30 "test \"\$(find out -name \"*.jsonl\" | wc -l)\" -eq 20" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    stop_drain $d &&
    reopened 20 &&
    { find out -name "*.jsonl.gz" -exec zcat {} + &&
      find out -name "*.jsonl" -exec cat {} +; } >all &&
    seqs all >got &&
    tally 40 got &&
    test "$(wc -l <"out/r07/$d1.jsonl")" -eq 1
'

# a file replaced by another at its path (another inode): the path opens,
# but not as the file the entry knew; the next line goes to the new one
test_expect_success 'replaced while its entry has no descriptor: the next line goes to the new file, every event once' '
    start_day || exit 1
    logpipe-drain -v -d out -n 100 --max-open 4 --block 100 2>derr &
    d=$!
    echo $d >>"$TMP/.pids"
    wait_for 30 "test \"\$(cat out/*/*.jsonl | wc -l)\" -eq 20" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    wait_for 30 "test -z \"\$(segs)\"" &&
    for f in out/*/*.jsonl; do
        cp "$f" "$f.new" && mv "$f.new" "$f" || exit 1
    done &&
    tail -n 20 in | logpipe-send --max-age 0 &&
    wait_for 30 "test \"\$(cat out/*/*.jsonl | wc -l)\" -eq 40" &&
    wait_for 30 "test \"\$(pending)\" -eq 0" &&
    stop_drain $d &&
    reopened 20 &&
    exactly 40 out &&
    test "$(wc -l <"out/r07/$d1.jsonl")" -eq 2
'

# power cuts over 300 files with 16 descriptors, 16 entries a batch (so
# that batches are full and their lines held): files written and closed
# before their epoch are synced by its syncfs (fs_covers in lp_archive.c),
# or keep their descriptors until it; either way the journal is cut only
# behind what is durable. A whole run makes about 1500 changes; 100000 is
# a cut right after it
if pl_drain_ok; then
    pl_events 3000 300
    PL_DRAIN_ARGS="--max-open 16"
    test_expect_success "300 files, --max-open 16: killed once 2000 entries are acked, power cut: acked events there once" "
        pl_round acked 2000 16 >>pl.summary
    "
    say "$(tail -n 1 pl.summary)"
    for n in 200 800 1400 100000; do
        test_expect_success "300 files, --max-open 16: killed before change $n, power cut: acked events there once" "
            PL_ALLOW_DONE=1 pl_round op $n 16 >>pl.summary
        "
        say "$(tail -n 1 pl.summary)"
    done
    PL_DRAIN_ARGS=
else
    test_skip 'drain over 300 files, --max-open 16, under the power-loss shim' \
        "$PL_WHY"
fi

test_done
