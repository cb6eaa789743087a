#!/bin/sh
# t0620-security.sh -- passwords stay out of argv, messages and metrics;
# files and directories are made 0640 and 0750 under the umask; symlinks
# are refused; event data never reaches a format string or the terminal
# as control characters
. "$(dirname "$0")/lib.sh"
start_redis
rcli ACL SETUSER app on ">s3cr3t-pw" "~*" "+@all" >/dev/null
# a Redis away with a password in its URL: TCP (a unix URL takes none)
reserve_dead_port

test_expect_success 'a password in the --redis URL is blanked in argv and warned of' '
    logpipe-drain -r "redis://app:s3cr3t-pw@127.0.0.1:$REDIS_PORT/0" \
        -d arch 2>err &
    pid=$!
    wait_for 10 grep -q "visible to other users" err &&
    tr "\\0" " " </proc/$pid/cmdline >cmdline &&
    kill -TERM $pid && wait $pid &&
    ! grep -q s3cr3t cmdline &&
    grep_q "redis://app:x*@127.0.0.1" cmdline &&
    ! grep -q s3cr3t err
'

test_expect_success 'no password in any message or metric, right or wrong' '
    gen_events 5 >in &&
    LOGPIPE_REDIS_PASSWORD=s3cr3t-pw logpipe-send -v --metrics m1.prom \
        -r "redis://app@127.0.0.1:$REDIS_PORT/0" <in 2>err1 &&
    LOGPIPE_REDIS_PASSWORD=wrong-s3cr3t expect_exit 78 logpipe-send \
        --log-format json --metrics m2.prom \
        -r "redis://app@127.0.0.1:$REDIS_PORT/0" <in 2>err2 &&
    grep_q "WRONGPASS\\|invalid username-password" err2 &&
    echo s3cr3t-pw >pwfile && chmod 600 pwfile &&
    logpipe-stat --password-file pwfile -r "redis://app@127.0.0.1:$REDIS_PORT/0" \
        --prom --metrics m3.prom >out3 2>err3 &&
    expect_exit 75 logpipe-send -r "redis://app:s3cr3t-pw@127.0.0.1:$DEAD_PORT/0" \
        -t 1s <in 2>err4 &&
    grep_q "resume with" err4 &&
    ! grep -l s3cr3t err1 err2 err3 err4 m1.prom m2.prom m3.prom out3
'

test_expect_success 'files 0640, directories 0750 (umask 022); the umask narrows them' '
    (umask 022 &&
     gen_events 20 | logpipe-send --max-age 1h &&
     logpipe-drain --once -d a022 &&
     echo bad | expect_exit 65 logpipe-send --rejects rej022 2>/dev/null &&
     gen_events 3 | logpipe-send -r $(dead_redis) --wal w022 2>/dev/null) &&
    test -z "$(find a022 w022 -type d ! -perm 0750)" &&
    test -z "$(find a022 w022 rej022 -type f ! -perm 0640)" &&
    test -n "$(find a022 -name "*.jsonl")" && test -n "$(find w022 -name "wal-*")" &&
    (umask 077 &&
     gen_events 20 | logpipe-send --max-age 1h &&
     logpipe-drain --once -d a077) &&
    test -z "$(find a077 -type d ! -perm 0700)" &&
    test -z "$(find a077 -type f ! -perm 0600)"
'

test_expect_success 'symlinks below --dir and in the WAL are refused, not followed' '
    rcli DEL logs:dlq >/dev/null &&
    mkdir -p outside sym/api/x sym/db/y && touch outside/day &&
    ln -s ../../outside sym/api/evil &&
    ln -s ../outside sym/web &&
    ln -s ../../../outside/day sym/db/y/2020-01-02.jsonl &&
    ts="\"timestamp\":\"2020-01-02T03:04:05Z\"" &&
    for e in "\"service\":\"web\",\"sub\":\"x\"" \
             "\"service\":\"api\",\"sub\":\"evil\"" \
             "\"service\":\"db\",\"sub\":\"y\"" \
             "\"service\":\"api\",\"sub\":\"x\""; do
        echo "{$ts,$e}"
    done | logpipe-send --max-age 0 -s symtest &&
    : a directory symlink at the top and one level down, a day file that &&
    : is a symlink: each entry to the DLQ as unsafe-path, the run goes on &&
    logpipe-drain --once -s symtest -d sym --layout "{service}/{sub}/%F.jsonl" 2>err &&
    grep_q "unsafe-path: web: not a directory (symlinks are refused)" err &&
    grep_q "unsafe-path: api/evil: not a directory (symlinks are refused)" err &&
    grep_q "unsafe-path: db/y/2020-01-02.jsonl: is a symlink (refused)" err &&
    grep_q "^logpipe-drain: 3 entries moved to the DLQ$" err &&
    test "$(rcli --raw XRANGE logs:dlq - + | grep -cx unsafe-path)" -eq 3 &&
    test "$(wc -l <sym/api/x/2020-01-02.jsonl)" -eq 1 &&
    test "$(ls outside)" = day && test ! -s outside/day &&
    : a WAL segment that is a symlink: the sender refuses to open it, 73 &&
    mkdir -p wsym && touch outside/target &&
    ln -s ../outside/target wsym/wal-00000000000000000001-1.log &&
    gen_events 2 | expect_exit 73 logpipe-send \
        -r $(dead_redis) --wal wsym 2>err &&
    grep_q "^logpipe-send: --wal wsym/wal-00000000000000000001-1.log: " err &&
    test -L wsym/wal-00000000000000000001-1.log &&
    test ! -s outside/target
'

test_expect_success 'control characters and % in event data: escaped, never a format' '
    rcli DEL logs:dlq >/dev/null &&
    printf "%s\n" "{\"service\":\"\\u001b[31mred%s%n%x\\nnew\"}" >ctl &&
    logpipe-send --max-age 0 <ctl &&
    logpipe-drain --once -d arch2 2>err &&
    grep_q "unsafe-path" err &&
    ! grep -q "$(printf "\\033")" err &&
    test "$(wc -l <err)" -eq "$(grep -c "^logpipe-drain: " err)" &&
    grep_q "%s%n%x" err &&
    printf "{\"a\":\"\\033[2J%%n%%s\"}\n" >ctl2 &&
    expect_exit 65 logpipe-send <ctl2 2>err &&
    ! grep -q "$(printf "\\033")" err
'

test_done
