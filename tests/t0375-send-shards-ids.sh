#!/bin/sh
# t0375-send-shards-ids.sh -- review of issue 17 step 2 (rsh): with
# --shards, logpipe-send --ids prints the bare stream ID of each event
# (ms-seq), which the shards repeat one another: two events print the
# same line, and nothing says which shard holds which. Everywhere else a
# sharded stream names an entry i-ms-seq (the drain's archive _id, replay
# --from-redis, dlq), and logpipe-send(1) --ids does not say otherwise.
# An operator who keeps the IDs to find the events again cannot.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 44 >in
# each shard first holds an entry of ID 9999999999999-0, so that the IDs
# Redis gives next are the same on every shard whatever the clock
head -n 4 in >seed
tail -n 40 in >in40

test_expect_success 'setup: the shards, each with an entry 9999999999999-0' '
    i=0
    for sh in $("$TOP/tests/shard-names" logs:stream 4); do
        i=$((i + 1))
        rcli XADD "$sh" 9999999999999-0 data "$(sed -n "${i}p" seed)" >/dev/null || exit 1
    done
    rcli SET logs:stream:shards 4 >/dev/null
'

test_expect_success 'send --shards 4 --ids: one line an event' '
    logpipe-send --max-age 0 --shards 4 -b 5 --ids <in40 >ids &&
    test "$(wc -l <ids)" = 40
'

test_expect_success 'each ID names one event: no two lines alike' '
    sort ids | uniq -d >dups &&
    test_cmp /dev/null dups
'

test_expect_success 'the IDs are the _id the drain archives the events under' '
    logpipe-drain --once -d out &&
    find out -name "*.jsonl" -type f -exec cat {} + |
        sed -n "s/^{\"_id\":\"\([^\"]*\)\".*/\1/p" |
        grep -v -e "-9999999999999-0\$" | sort >archived &&
    sort ids >printed &&
    test_cmp archived printed
'

test_done
