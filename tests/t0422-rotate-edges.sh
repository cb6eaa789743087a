#!/bin/sh
# t0422-rotate-edges.sh -- rough edges of rotate and of the messages about
# the tree: empty day files, a path component said once
. "$(dirname "$0")/lib.sh"

today=$(date -u +%F)
d1=$(date -u -d '-1 day' +%F)
d2=$(date -u -d '-2 days' +%F)
d3=$(date -u -d '-3 days' +%F)

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
    mkdir -p p/api && chmod 755 p && chmod 700 p/api &&
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
