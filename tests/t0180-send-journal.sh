#!/bin/sh
# t0180-send-journal.sh -- logpipe-send --journal --journal-dir over
# journal files made by systemd-journal-remote: SIGKILLed and restarted at
# fixed points (a seed), Redis SIGKILLed once meanwhile (appendfsync
# always), files added while send is down and while it runs: each entry
# exactly once in the stream (issue 15 item 3). Then a clean end and a
# restart that reads nothing twice, --journal-match and the producer
# names, an oversized entry, the first run at the journal's end.
. "$(dirname "$0")/lib.sh"

. "$TOP/tests/follow-lib.sh"
need_remote

SEED=${JOURNAL_SEED:-2718}
N1=8000 N2=6000 N3=6000
N=$((N1 + N2 + N3))

# jseqs [STREAM]: the SEQ of every event in the stream, in stream order
jseqs() {
    rcli --raw XRANGE "${1:-logs:stream}" - + |
        sed -n 's/.*"seq":"\([0-9]*\)".*/\1/p'
}

start_redis aof --appendonly yes --appendfsync always
mkdir j

test_expect_success 'journal files made by systemd-journal-remote' '
    journal j/a.journal 1 $N1
    test -s j/a.journal
'

test_expect_success "SIGKILLed 8 times (seed $SEED), Redis SIGKILLed once: each entry exactly once" '
    say "lifetimes (ms): $(lives 8 40 300)"
    k=0
    for ms in $(lives 8 40 300); do
        k=$((k + 1))
        logpipe-send --journal --journal-dir j --from-start --batch 100 \
            --rate 10000/s --burst 100 \
            2>>send.err &
        pid=$!
        sleep "$(awk -v m="$ms" "BEGIN { print m / 1000 }")"
        if [ $k = 3 ]; then
            # Redis dies under a running send and comes back
            stop_redis KILL
            sleep 0.2
            restart_redis
        fi
        kill -KILL $pid
        wait $pid || :
        # files appear while send is down
        if [ $k = 4 ]; then journal j/b.journal $((N1 + 1)) $N2; fi
        echo "after kill $k: $(rcli XLEN logs:stream) events" >>kills
    done
    logpipe-send --journal --journal-dir j --from-start --batch 100 \
            --rate 10000/s --burst 100 \
        2>>send.err &
    pid=$!
    # and while it runs
    sleep 0.3
    journal j/c.journal $((N1 + N2 + 1)) $N3
    wait_for 60 test_xlen -ge $N
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    jseqs >got
    cat kills
    tally $N got
    # in the journal order: each file in its order
    awk "\$1 <= $N1" got >o1
    sort -n o1 >o1s
    test_cmp o1s o1
    test "$(rcli HLEN logs:stream:producers)" = 1
'

test_expect_success 'a restart after a clean end reads nothing twice' '
    logpipe-send -v --journal --journal-dir j --from-start 2>again.err &
    pid=$!
    sleep 1
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "0 entries, 0 events sent" again.err
    test_xlen = $N
'

test_expect_success 'a reply lost after Redis ran the batch: found stored, not sent twice' '
    LOGPIPE_TEST_LOSE_REPLY=3 logpipe-send -v --journal --journal-dir j \
        --from-start --stream l --batch 500 2>l.err &
    pid=$!
    wait_for 30 test_xlen -ge $N l
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "500 events were found stored after a lost reply" l.err
    jseqs l >lgot
    tally $N lgot
'

test_expect_success 'a batch refused while the next is on its way: both again, in order' '
    # two batches: the first refused (EXECABORT); the gate keeps the
    # second out; both go again, and the cursor ends after the second
    LOGPIPE_TEST_REFUSE_BATCH=1 logpipe-send --journal --journal-dir j \
        --from-start --stream x --batch $((N / 2)) 2>x.err &
    pid=$!
    wait_for 30 test_xlen -ge $N x
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "unknown command" x.err
    logpipe-send --journal --journal-dir j --stream x 2>x2.err &
    pid=$!
    sleep 0.5
    kill -TERM $pid
    expect_exit 0 wait $pid
    jseqs x >xgot
    tally $N xgot
'

test_expect_success 'Redis away at the start: the cursor is waited for, then all sent' '
    stop_redis
    logpipe-send --journal --journal-dir j --from-start --stream r 2>r.err &
    pid=$!
    sleep 0.5
    restart_redis
    wait_for 30 test_xlen -ge $N r
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "Connection refused; retrying for up to 30s" r.err
    jseqs r >rgot
    tally $N rgot
'

test_expect_success 'the cursor is the producer field, after its position; stat shows it' '
    f=$(rcli HKEYS logs:stream:producers)
    case $f in *:journal:*) ;; *) echo "producer $f"; false ;; esac
    v=$(rcli HGET logs:stream:producers "$f")
    set -- $v
    test $# = 3
    case $3 in s=*";i="*) ;; *) echo "cursor $3"; false ;; esac
    logpipe-stat --producers >stat
    grep_q "{\"name\":\"$f\",\"position\":$1,\"age_seconds\":[0-9.]*,\"cursor\":\"$3\"}" stat
'

test_expect_success '--journal-match: only matching entries, a producer of its own' '
    logpipe-send --journal --journal-dir j --from-start --stream m \
        --journal-match SYSLOG_IDENTIFIER=app 2>m.err &
    pid=$!
    wait_for 30 test_xlen -ge $((N / 3)) m
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    jseqs m >mgot
    awk "BEGIN { for (i = 3; i <= $N; i += 3) print i }" >mwant
    test_cmp mwant mgot
    logpipe-send --journal --journal-dir j --from-start --stream m 2>m2.err &
    pid=$!
    wait_for 30 test_xlen -ge $((N + N / 3)) m
    kill -TERM $pid
    expect_exit 0 wait $pid
    test "$(rcli HLEN m:producers)" = 2
'

test_expect_success 'an oversized entry is cut to --max-line; too small for any: skipped, rejected' '
    mkdir big
    big=$(awk "BEGIN { while (n++ < 3000) printf \"x\" }")
    { entries 1 1
      printf "__REALTIME_TIMESTAMP=%s000000\n__MONOTONIC_TIMESTAMP=5000\n_BOOT_ID=0123456789abcdef0123456789abcdef\nMESSAGE=%s\nSEQ=2\n\n" \
          "$(date +%s)" "$big"
      entries 3 1; } >big.export
    "$REMOTE" --output="$PWD/big/x.journal" - <big.export 2>/dev/null
    logpipe-send --journal --journal-dir big --from-start --stream b \
        --max-line 1K 2>b.err &
    pid=$!
    wait_for 30 test_xlen = 3 b
    kill -TERM $pid
    expect_exit 0 wait $pid
    rcli --raw XRANGE b - + | grep "\"seq\":\"2\"" >two
    grep_q "\"truncated\":" two
    test "$(wc -c <two)" -le 1025
    logpipe-send --journal --journal-dir big --from-start --stream b2 \
        --max-line 60 2>b2.err &
    pid=$!
    sleep 1
    kill -TERM $pid
    expect_exit 65 wait $pid
    grep_q "journal: entry 2: longer than --max-line (60 bytes) even cut: skipped" b2.err
    grep_q "3 invalid events in 3 entries" b2.err
    test "$(rcli XLEN b2)" = 0
'

test_expect_success 'entries that made no command move the cursor: not read again' '
    # the run above rejected all three (their cursor committed alone); a
    # run with room for them reads only the entry written after it
    logpipe-send --journal --journal-dir big --from-start --stream b2 \
        2>b3.err &
    pid=$!
    journal big/z.journal 4 1
    wait_for 30 test_xlen -ge 1 b2
    kill -TERM $pid
    expect_exit 0 wait $pid
    test "$(jseqs b2)" = 4
'

test_expect_success 'no cursor yet: from the end of the journal, not its start' '
    logpipe-send --journal --journal-dir j --stream e 2>e.err &
    pid=$!
    sleep 0.5
    journal j/d.journal 100001 5
    wait_for 30 test_xlen = 5 e
    kill -TERM $pid
    expect_exit 0 wait $pid
    jseqs e >egot
    printf "%s\n" 100001 100002 100003 100004 100005 >ewant
    test_cmp ewant egot
'

test_expect_success 'options: --journal-dir needs --journal, no FILE, no --wal; a missing DIR: 66' '
    expect_exit 64 logpipe-send --journal-dir j 2>o1.err
    grep_q "logpipe-send: --journal-dir needs --journal" o1.err
    expect_exit 64 logpipe-send --journal x 2>o2.err
    grep_q "logpipe-send: --journal reads no FILE" o2.err
    expect_exit 64 logpipe-send --journal --wal w 2>o3.err
    grep_q "logpipe-send: --wal does not go with --journal" o3.err
    expect_exit 64 logpipe-send --journal --journal-match foo 2>o4.err
    grep_q "is not FIELD=VALUE" o4.err
    expect_exit 66 logpipe-send --journal --journal-dir nodir 2>o5.err
    grep_q "logpipe-send: --journal-dir nodir: No such file or directory" o5.err
'

test_done
