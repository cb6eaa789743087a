#!/bin/sh
# t0422-rotate-edges.sh -- rough edges of rotate and of the messages about
# the tree: empty day files, a full disk named where it is, a path
# component said once
. "$(dirname "$0")/lib.sh"

set_days

# old FILE...: last modified an hour ago
old() {
    touch -d '1 hour ago' "$@"
}

test_expect_success 'an empty .jsonl of a closed day is deleted, not compressed' '
    mkdir -p e/api e/db e/web &&
    : >e/api/$d2.jsonl && : >e/db/$d1.jsonl && : >e/web/$today.jsonl &&
    echo "{\"_id\":\"1-1\"}" | gzip >e/db/$d1.jsonl.gz &&
    cp e/db/$d1.jsonl.gz saved.gz &&
    old e/api/$d2.jsonl e/db/$d1.jsonl e/web/$today.jsonl &&
    logpipe-rotate -d e >out &&
    jq -c "select(.action != \"rmdir\")" out | sort >got &&
    {
        echo "{\"action\":\"delete\",\"path\":\"api/$d2.jsonl\",\"bytes_in\":0,\"reason\":\"empty\"}"
        echo "{\"action\":\"delete\",\"path\":\"db/$d1.jsonl\",\"bytes_in\":0,\"reason\":\"empty\"}"
    } | sort >want &&
    test_cmp want got &&
    grep_q "{\"action\":\"rmdir\",\"path\":\"api\"}" out &&
    test ! -e e/api &&
    test ! -e e/db/$d1.jsonl && cmp saved.gz e/db/$d1.jsonl.gz &&
    test -f e/web/$today.jsonl &&
    test -z "$(find e -name ".*.tmp")"
'

test_expect_success 'an empty .jsonl within --grace stays; --dry-run only says it' '
    mkdir -p g/api &&
    : >g/api/$d2.jsonl && : >g/api/$d3.jsonl && old g/api/$d3.jsonl &&
    logpipe-rotate -d g >out &&
    test -f g/api/$d2.jsonl && test ! -e g/api/$d3.jsonl &&
    old g/api/$d2.jsonl &&
    logpipe-rotate -d g --dry-run >out &&
    test "$(cat out)" = "{\"action\":\"delete\",\"path\":\"api/$d2.jsonl\",\"bytes_in\":0,\"reason\":\"empty\",\"dry_run\":true}" &&
    test -f g/api/$d2.jsonl
'

# random_lines N: about N bytes of archive lines that gzip cannot shrink
# much
random_lines() {
    head -c "$1" /dev/urandom | base64 -w 60 |
        awk "{ printf \"{\\\"_id\\\":\\\"1-%d\\\",\\\"r\\\":\\\"%s\\\"}\\n\", NR, \$0 }"
}

# fill DIR: the file system of DIR full but for 8 KiB
fill() {
    dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null || :
    truncate -s -8K "$1/filler"
}

mkdir -p small
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=400k tmpfs small 2>/dev/null
then
    test_expect_success 'disk full while compressing: the message names the temporary .gz, the .jsonl stays' '
        rm -rf small/t small/filler && mkdir -p small/t/api &&
        random_lines 45000 >small/t/api/$d2.jsonl &&
        cp small/t/api/$d2.jsonl saved && old small/t/api/$d2.jsonl &&
        fill small &&
        expect_exit 74 logpipe-rotate -d small/t >out 2>err &&
        grep_q "^logpipe-rotate: api/\.$d2\.jsonl\.gz\.[0-9]*\.tmp: write: No space left on device$" err &&
        ! grep "api/$d2\.jsonl:" err &&
        cmp saved small/t/api/$d2.jsonl &&
        test ! -e small/t/api/$d2.jsonl.gz &&
        test -z "$(find small -name ".*.tmp")"
    '

    test_expect_success 'disk full while copying the members of a late day: the temporary .gz named, not the .gz' '
        rm -rf small/t small/filler && mkdir -p small/t/api &&
        random_lines 45000 | gzip -1 >small/t/api/$d3.jsonl.gz &&
        cp small/t/api/$d3.jsonl.gz saved.gz &&
        random_lines 100 >small/t/api/$d3.jsonl && old small/t/api/$d3.jsonl &&
        fill small &&
        expect_exit 74 logpipe-rotate -d small/t >out 2>err &&
        grep_q "^logpipe-rotate: api/\.$d3\.jsonl\.gz\.[0-9]*\.tmp: write: No space left on device$" err &&
        ! grep "api/$d3\.jsonl\.gz:" err &&
        cmp saved.gz small/t/api/$d3.jsonl.gz &&
        test -f small/t/api/$d3.jsonl &&
        test -z "$(find small -name ".*.tmp")"
    '
    umount small
else
    test_skip 'disk full while compressing' 'needs root to mount a tmpfs'
    test_skip 'disk full while copying the members' 'needs root to mount a tmpfs'
fi

start_redis

# denied CMD...: runs CMD where the tree's permissions apply: as nobody
# when we are root (root passes every permission check)
denied() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else
        "$@"
    fi
}
[ "$(id -u)" -eq 0 ] && chmod 711 "$TMP"

test_expect_success 'a directory the drain cannot open is named once, as the path that failed' '
    rcli DEL logs:stream >/dev/null &&
    echo "{\"timestamp\":\"${d1}T12:00:00Z\",\"service\":\"api\"}" |
        logpipe-send --max-age 0 &&
    # p writable for the drain: it keeps its lock files there
    mkdir -p p/api && chmod 777 p && chmod 700 p/api &&
    if [ "$(id -u)" -ne 0 ]; then chmod 000 p/api; fi &&
    expect_exit 73 denied logpipe-drain --once -d p 2>err &&
    echo "logpipe-drain: cannot open p/api: Permission denied" >want &&
    test_cmp want err
'

test_expect_success 'a day file the drain cannot create is named once' '
    chmod 755 p/api &&
    if [ "$(id -u)" -ne 0 ]; then chmod 555 p/api; fi &&
    expect_exit 73 denied logpipe-drain --once -d p 2>err &&
    echo "logpipe-drain: cannot open p/api/$d1.jsonl: Permission denied" >want &&
    test_cmp want err
'

test_done
