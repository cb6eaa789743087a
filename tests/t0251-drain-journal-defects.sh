#!/bin/sh
# t0251-drain-journal-defects.sh -- three defects of the drain journal's
# replay (issue 14), found by t0250's work, each failed on ca04de5: a
# journal over more files than the drain may open, a record naming a lock
# file, a segment of another format.
. "$(dirname "$0")/lib.sh"
start_redis

if ! perl -MCompress::Zlib -e 1 2>/dev/null; then
    test_skip 'forged journals' 'no perl Compress::Zlib'
    test_done
fi

# jsegment PATH LINES [PATH LINES...]: a journal segment on stdout: the
# header, then one record per pair, framed as lp_wal_encode does
jsegment() {
    perl -MCompress::Zlib -e '
        print "LPJNL01\n";
        while (($p, $l) = splice(@ARGV, 0, 2)) {
            $pl = pack("v", length $p) . $p . $l;
            $len = pack("V", length $pl);
            print $len, pack("V", crc32($pl, crc32($len))), $pl;
        }' "$@"
}

# forge: an empty archive whose consumer j has a journal directory; its
# name in h, the segment to write in seg
forge() {
    rm -rf out
    logpipe-drain --once -d out -c j 2>err
    h=$(ls -a out | sed -n "s/^\.logpipe-drain-\([0-9a-f]*\)\.lock$/\1/p")
    test -n "$h"
    mkdir -p out/.logpipe-journal/$h
    seg=out/.logpipe-journal/$h/seg-0000000000000001.jnl
}

# A drain run with many descriptors (LimitNOFILE=65536, 20,000 services)
# crashes with its journal covering thousands of day files; it is started
# again, or run --once for a consumer that will not run again (as drain(1)
# says), from a shell whose hard limit is lower. replay_record (lib/
# lp_drain.c) opens every file the journal names through lp_archive_get
# and keeps them all open until replay_flush (every 32 MiB of lines): all
# are touched, so evict_one finds nothing to close, and the open fails
# with EMFILE at every start (exit 73): the drain cannot start until the
# limit is raised.
test_expect_success 'a journal over more day files than the drain may open is applied' '
    forge &&
    args=$(seq -f "s%04g/2026-01-01.jsonl" 1 1500 |
        awk "{ printf \"%s {\\\"_id\\\":\\\"1700000000000-%d\\\"}\\n\", \$1, NR }") &&
    perl -MCompress::Zlib -e "
        print qq(LPJNL01\n);
        while (<STDIN>) {
            (\$p, \$l) = split / /, \$_, 2;
            \$pl = pack(q(v), length \$p) . \$p . \$l;
            \$len = pack(q(V), length \$pl);
            print \$len, pack(q(V), crc32(\$pl, crc32(\$len))), \$pl;
        }" <<EOT >$seg &&
$args
EOT
    { ( ulimit -n 512 && logpipe-drain --once -v -d out -c j ) 2>err ||
      { echo "drain exited $?:"; cat err; exit 1; }; } &&
    grep_q ": 1500 lines a run left unsynced applied, 0 of them in their files already$" err &&
    test "$(cat out/s*/2026-01-01.jsonl | wc -l)" -eq 1500 &&
    ! test -e out/.logpipe-journal
'

# The journal's replay takes any path lp_fs_open takes; a layout never
# makes a component starting with ".", but a record may name the drain's
# own lock file (or its group's): lp_archive_lock then waits for the lock
# the drain itself holds, for ever. Expected: refused as not a path a
# layout makes (exit 73, as ../x.jsonl is), the lock files unchanged.
for which in drain group; do
    test_expect_success "a forged record naming the $which lock file: refused, not a hang" '
        forge &&
        lock=$(ls -a out | grep "^\.logpipe-'$which'-[0-9a-f]*\.lock$") &&
        cp out/$lock lock.before &&
        jsegment "$lock" "{\"_id\":\"1700000000000-0\"}
" >$seg &&
        { timeout 20 logpipe-drain --once -d out -c j 2>err; rc=$?; } &&
        { [ $rc -eq 73 ] ||
          { echo "drain exited $rc (124: still running after 20 s):"; cat err; exit 1; }; } &&
        grep_q "a record names what is no day file" err &&
        ! grep -q 1700000000000-0 out/$lock
    '
done

# A segment whose header is neither "LPJNL01\n" nor "LPJNL02\n" (a later format, written by a
# newer drain that was then downgraded; or damage) was said to be "passed
# over" and then deleted with the others by the cut after the replay:
# what it held, lines possibly acknowledged, gone. Now the drain refuses
# to start (73), naming it, and its bytes stay.
test_expect_success 'a segment of another format is not deleted: the drain refuses to start' '
    forge &&
    printf "LPJNL99\nlines of a later format\n" >$seg &&
    cp $seg seg.before &&
    expect_exit 73 logpipe-drain --once -v -d out -c j 2>err &&
    grep_q "not a journal segment this logpipe reads (no LPJNL01 or LPJNL02 header): move it out of the way to start" err &&
    { test -f $seg || { echo "$seg was deleted:"; cat err; exit 1; }; } &&
    test_cmp seg.before $seg
'

test_done
