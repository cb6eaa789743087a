#!/bin/sh
# t0376-stat-shards-group-missing.sh -- review of issue 17 step 2 (rsh):
# a stream of 4 shards split over two drains by --shard-range (0-1 and
# 2-3), the second never started (its host down). logpipe-stat's totals
# then hold group logpipe with lag 0, summed over the two shards that have
# the group, while the other two hold 50 entries the group never read;
# --check --max-lag 10 passes. stat(1): "each group by name with its
# pending and lag summed (lag null when one shard's is)" and "a --max-lag
# with a shard's lag unknown counts that shard's entries": a shard where
# the group does not exist has its lag unknown, not 0. The alert meant to
# catch an undrained stream misses half of it.
. "$(dirname "$0")/lib.sh"

XDG_RUNTIME_DIR=$TMP
export XDG_RUNTIME_DIR

start_redis
gen_events 100 >in

test_expect_success 'setup: 4 shards of 25, a drain of shards 0-1 only' '
    logpipe-send --max-age 0 --shards 4 -b 25 <in &&
    logpipe-drain --once -d out --shard-range 0-1 2>derr &&
    logpipe-stat >st.json &&
    test "$(jq "[.shards[] | select(.groups == [])] | length" st.json)" = 2 &&
    test "$(jq ".length" st.json)" = 50
'

test_expect_success 'the totals do not say the group is caught up (lag 0)' '
    test "$(jq -r ".groups[] | select(.name == \"logpipe\") | .lag" st.json)" != 0
'

test_expect_success 'stat --check --max-lag 10 fails (50 entries the group never read)' '
    expect_exit 1 logpipe-stat --check --max-lag 10 >/dev/null 2>cerr
'

test_done
