#!/bin/sh
# t0384-send-shards-journal.sh -- logpipe-send --journal with --shards 3
# (issue 17) over journal files made by systemd-journal-remote: each
# entry takes a position, each shard's field the cursor and position of
# its last entry stored; a restart goes on after the lowest and each shard
# passes over what it holds. SIGKILLed at fixed points (a seed), Redis
# SIGKILLed once, files added while send is down and while it runs: each
# entry once over the shards. The same by --shard-key; a clean restart, a
# lost reply, a first run at the journal's end (its start marked on every
# shard), a field removed by hand (78).
. "$(dirname "$0")/lib.sh"

SHARDS=3
. "$TOP/tests/follow-lib.sh"
need_remote

SEED=${JOURNAL_SEED:-3841}
N1=6000 N2=4000 N3=4000
N=$((N1 + N2 + N3))

# jseqs STREAM: the SEQ of every event in its shards
jseqs() {
    for sh in $(names "$1"); do
        rcli --raw XRANGE "$sh" - + |
            sed -n 's/.*"seq":"\([0-9]*\)".*/\1/p'
    done
}

# kills STREAM ARGS...: 8 SIGKILLs (Redis SIGKILLed under the third),
# j/b.journal added after the fourth, j/c.journal while the last run
# goes; then each entry once over the shards
kills() {
    st=$1; shift
    k=0
    for ms in $(lives 8 40 300); do
        k=$((k + 1))
        logpipe-send --shards 3 -s "$st" --journal --journal-dir j \
            --from-start --batch 100 --rate 10000/s --burst 100 "$@" \
            2>>"$st.err" &
        pid=$!
        sleep "$(awk -v m="$ms" "BEGIN { print m / 1000 }")"
        if [ $k = 3 ]; then
            stop_redis KILL
            sleep 0.2
            restart_redis
        fi
        kill -KILL $pid
        wait $pid || :
        if [ $k = 4 ] && ! [ -f j/b.journal ]; then
            journal j/b.journal $((N1 + 1)) $N2
        fi
        echo "after kill $k: $(total "$st") events" >>"$st.kills"
    done
    logpipe-send --shards 3 -s "$st" --journal --journal-dir j \
        --from-start --batch 100 --rate 10000/s --burst 100 "$@" \
        2>>"$st.err" &
    pid=$!
    sleep 0.3
    if ! [ -f j/c.journal ]; then
        journal j/c.journal $((N1 + N2 + 1)) $N3
    fi
    wait_for 60 "test \$(total $st) -ge $N"
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    say "$(tr "\n" " " <"$st.kills")"
    jseqs "$st" >"$st.got"
    tally $N "$st.got"
    for sh in $(names "$st"); do
        test "$(rcli HLEN "$sh:producers")" = 1 || return 1
    done
}

start_redis aof --appendonly yes --appendfsync always
mkdir j

test_expect_success 'journal files made by systemd-journal-remote' '
    journal j/a.journal 1 $N1
    test -s j/a.journal
'

test_expect_success "--shards 3, SIGKILLed 8 times (seed $SEED), Redis SIGKILLed once, files added: each entry once over the shards" '
    say "lifetimes (ms): $(lives 8 40 300)"
    kills k
'

test_expect_success 'a restart after a clean end sends nothing again' '
    logpipe-send -v --shards 3 -s k --journal --journal-dir j \
        --from-start 2>again.err &
    pid=$!
    sleep 1
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "producer [^ ]* goes on from position" again.err
    test "$(total k)" = $N
'

test_expect_success '--shard-key .service, SIGKILLed 8 times: each entry once, each service on one shard, in journal order' '
    kills sk --shard-key .service
    for sh in $(names sk); do
        rcli --raw XRANGE "$sh" - + |
            sed -n "s/.*\"service\":\"\([a-z]*\)\".*\"seq\":\"\([0-9]*\)\".*/\1 \2/p" >o
        cut -d" " -f1 o | sort -u >svc
        say "$sh: $(tr "\n" " " <svc)"
        cut -d" " -f2 o | awk "\$1 <= $N1" >o1
        sort -n o1 | test_cmp - o1 || return 1
    done
    for s in app web; do
        n=0
        for sh in $(names sk); do
            if rcli --raw XRANGE "$sh" - + | grep -q "\"service\":\"$s\""; then
                n=$((n + 1))
            fi
        done
        test "$n" -eq 1 || return 1
    done
'

test_expect_success 'a reply lost after Redis ran the batch: found stored, not sent twice' '
    LOGPIPE_TEST_LOSE_REPLY=3 logpipe-send -v --shards 3 -s l --journal \
        --journal-dir j --from-start --batch 500 2>l.err &
    pid=$!
    wait_for 30 "test \$(total l) -ge $N"
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    grep_q "[0-9]* events were found stored after a lost reply" l.err
    jseqs l >lgot
    tally $N lgot
'

test_expect_success 'a first run at the journal end: its start marked on every shard; later files once, across a SIGKILL' '
    mkdir je
    journal je/a.journal 1 1000
    logpipe-send -v --shards 3 -s e --journal --journal-dir je 2>e.err &
    pid=$!
    wait_for 10 "grep -q \"its start marked on every shard\" e.err"
    for sh in $(names e); do
        rcli --raw HGET "$sh:producers" "$(rcli --raw HKEYS "$sh:producers")" |
            grep -q "^0 [0-9]* s=.*;i=3e8;" || return 1
    done
    journal je/b.journal 1001 500
    wait_for 20 "test \$(total e) -ge 500"
    kill -KILL $pid
    wait $pid || :
    journal je/c.journal 1501 500
    logpipe-send -v --shards 3 -s e --journal --journal-dir je 2>e2.err &
    pid=$!
    wait_for 20 "test \$(total e) -ge 1000"
    sleep 0.3
    kill -TERM $pid
    expect_exit 0 wait $pid
    jseqs e | sort -n >egot
    seq 1001 2000 | test_cmp - egot
'

test_expect_success 'a shard field removed by hand: 78, nothing sent' '
    sh=$(names k | sed -n 2p)
    rcli DEL "$sh:producers" >/dev/null
    expect_exit 78 logpipe-send --shards 3 -s k --journal --journal-dir j \
        --from-start 2>rm.err
    grep_q "has no field on 1 of the 3 shards" rm.err
    test "$(total k)" = $N
'

test_done
