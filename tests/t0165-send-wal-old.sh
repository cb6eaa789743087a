#!/bin/sh
# t0165-send-wal-old.sh -- a WAL of logpipe-send before producers (header
# LPWAL01, records without a producer line) is still read: its events are
# sent as before, with a notice; records of this version (LPWAL03) carry
# their producer and position (issue 15 item 1)
. "$(dirname "$0")/lib.sh"

if ! perl -MCompress::Zlib -e 1 2>/dev/null; then
    test_skip 'old WAL segments' 'no perl Compress::Zlib'
    test_done
fi

# oldseg SEQ...: a segment of the old format on stdout, one XADD of
# {"seq":N} to logs:stream a record, framed as lp_wal_encode does
oldseg() {
    perl -MCompress::Zlib -e '
        print "LPWAL01\n";
        for $n (@ARGV) {
            $ev = "{\"seq\":$n}";
            $r = "*5\r\n\$4\r\nXADD\r\n\$11\r\nlogs:stream\r\n\$1\r\n*\r\n" .
                 "\$4\r\ndata\r\n\$" . length($ev) . "\r\n$ev\r\n";
            $len = pack("V", length $r);
            print $len, pack("V", crc32($r, crc32($len))), $r;
        }' "$@"
}

start_redis

test_expect_success 'an old WAL segment: its events sent as before, said once' '
    mkdir w &&
    oldseg 1 2 3 >w/wal-0000000000000001-1.log &&
    logpipe-send --wal w --flush-wal 2>err &&
    grep_q "is of an older logpipe-send (no producer positions): its events are sent as before" err &&
    test "$(grep -c "older logpipe-send" err)" -eq 1 &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    printf "1\n2\n3\n" >want &&
    test_cmp want got &&
    test "$(find w -name "wal-*.log" | wc -l)" -eq 0
'

test_expect_success 'an old segment first, then new input behind it: in order, once' '
    rcli DEL logs:stream >/dev/null &&
    oldseg 1 2 >w/wal-0000000000000001-1.log &&
    printf "{\"seq\":3}\n{\"seq\":4}\n" | logpipe-send --wal w --max-age 0 2>err &&
    grep_q "older logpipe-send" err &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    printf "1\n2\n3\n4\n" >want &&
    test_cmp want got
'

test_expect_success 'a segment of this version: LPWAL03, each record with its producer and position' '
    rcli DEL logs:stream >/dev/null &&
    printf "{\"seq\":1}\n{\"seq\":2}\n" | logpipe-send -r "$(dead_redis)" \
        --wal w2 --producer app9 --max-age 0 2>/dev/null &&
    seg=$(find w2 -name "wal-*.log") &&
    test "$(head -c 8 "$seg")" = LPWAL03 &&
    grep -a -c "#[0-9]* app9$" "$seg" >n &&
    test "$(cat n)" -eq 2 &&
    logpipe-replay "$seg" | seqs - >got &&
    printf "1\n2\n" >want &&
    test_cmp want got &&
    XDG_RUNTIME_DIR=$TMP logpipe-send --wal w2 --flush-wal 2>err &&
    ! grep -q "older logpipe-send" err &&
    rcli --raw XRANGE logs:stream - + | seqs - >got &&
    test_cmp want got &&
    test "$(rcli HGET logs:stream:producers app9 | cut -d" " -f1)" -ge 2
'

test_done
