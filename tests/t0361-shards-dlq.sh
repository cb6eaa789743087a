#!/bin/sh
# t0361-shards-dlq.sh -- logpipe-dlq over a sharded stream (issue 17,
# item 2), standalone: every shard's DLQ (logs:dlq:{T}) listed merged by
# time (over pages too) with IDs <i>-<ms>-<seq>; show, retry and purge by those IDs; retry
# back into the shard the entry came from (also an entry that names the
# sharded stream itself); stats over all; --limit over all; IDs of no
# shard refused (65); --dlq as the base of the shards' DLQs.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/shards-lib.sh"

start_redis
CLI=rcli
S=logs:stream

# dead N SHARD [SOURCE]: a dead letter in shard SHARD's DLQ (of base
# ${BASE:-logs:dlq}), data {"dead":N}
dead() {
    rcli xadd "$(dlq_name "${BASE:-logs:dlq}" 4 "$2")" "*" data "{\"dead\":$1}" \
        error bad stage drain \
        source_stream "${3:-$(shard_name "$S" 4 "$2")}" >/dev/null
}

# many_dead: redis-cli lines writing 1000 dead letters {"k":K} to the
# DLQs of stream mm (3 shards, DLQ base mdlq), entry K with ID K+1000-0,
# each to the shard K*K%7%3 (runs of one shard, and every shard between)
many_dead() {
    "$TOP/tests/shard-names" mdlq 3 >mnames
    awk 'NR == FNR { d[NR - 1] = $0; next }
        END { for (k = 1; k <= 1000; k++)
            printf "XADD %s %d-0 data '"'"'{\"k\":%d}'"'"'\n", d[k * k % 7 % 3], k + 1000, k }' mnames /dev/null
}

test_expect_success 'setup: 4 shards, dead letters in 3 of them' '
    shards_fill "$S" 4 2 &&
    rcli set "$S:shards" 4 &&
    dead 1 0 && dead 2 2 && dead 3 2 && dead 4 3 &&
    dead 5 1 "$S"
'

test_expect_success 'list: every shard, merged by time, IDs <i>-<ms>-<seq>' '
    logpipe-dlq list >list &&
    test "$(wc -l <list)" = 5 &&
    jq -r ".id" list | cut -d- -f1 | tr "\n" " " >shards &&
    test "$(cat shards)" = "0 2 2 3 1 " &&
    jq -r ".id" list >ids &&
    ! grep -v "^[0-3]-[0-9]*-[0-9]*\$" ids &&
    test "$(jq -c "[.event.dead]" list | tr -d "\n")" = "[1][2][3][4][5]" &&
    logpipe-dlq export >exp &&
    test "$(cat exp | tr -d "\n")" = "{\"dead\":1}{\"dead\":2}{\"dead\":3}{\"dead\":4}{\"dead\":5}"
'

test_expect_success '--limit counts over all shards' '
    logpipe-dlq list --limit 2 >l2 &&
    test "$(jq -c "[.event.dead]" l2 | tr -d "\n")" = "[1][2]" &&
    logpipe-dlq list --limit 3 --where ".event.dead >= 3" >l3 &&
    test "$(jq -c "[.event.dead]" l3 | tr -d "\n")" = "[3][4][5]"
'

test_expect_success 'the merge over pages: 1000 dead letters of 3 shards in time order' '
    many_dead >cmds &&
    rcli <cmds >/dev/null &&
    rcli set mm:shards 3 >/dev/null &&
    logpipe-dlq -s mm --dlq mdlq list >ml &&
    jq .event.k ml >got &&
    seq 1 1000 >want &&
    test_cmp want got &&
    logpipe-dlq -s mm --dlq mdlq export >mx &&
    jq .k mx >gotx &&
    test_cmp want gotx &&
    logpipe-dlq -s mm --dlq mdlq list --limit 700 --where ".event.k % 2 == 0" >half &&
    test "$(wc -l <half)" = 500 &&
    test "$(tail -n 1 half | jq .event.k)" = 1000
'

test_expect_success 'stats: one line over all, the oldest and newest of all' '
    logpipe-dlq stats >stats &&
    test "$(jq -r .key stats)" = logs:dlq &&
    test "$(jq .total stats)" = 5 &&
    test "$(jq .by_error.bad stats)" = 5 &&
    test "$(jq -r .oldest.id stats)" = "$(sed -n 1p ids)" &&
    test "$(jq -r .newest.id stats)" = "$(sed -n 5p ids)"
'

test_expect_success 'show by sharded IDs, in the order given' '
    ID3=$(jq -r "select(.event.dead == 3) | .id" list) &&
    ID1=$(jq -r "select(.event.dead == 1) | .id" list) &&
    logpipe-dlq show "$ID3" "$ID1" >shown &&
    test "$(jq -c "[.id, .event.dead]" shown | tr -d "\n")" = "[\"$ID3\",3][\"$ID1\",1]"
'

test_expect_success 'IDs of no shard: 65, said' '
    ID1=$(jq -r "select(.event.dead == 1) | .id" list) &&
    plain=${ID1#0-} &&
    expect_exit 65 logpipe-dlq show "$plain" 4-1-1 "$ID1" >out 2>err &&
    test "$(wc -l <out)" = 1 &&
    grep_q "not an entry ID of a shard of $S (like 3-1700000000000-0" err &&
    grep_q "2 unknown IDs" err &&
    expect_exit 65 logpipe-dlq show 2-1-1 >/dev/null 2>err &&
    grep_q "entry 2-1-1 is not in $(dlq_name logs:dlq 4 2)" err
'

test_expect_success 'retry: back into its own shard, atomically out of its DLQ' '
    ID2=$(jq -r "select(.event.dead == 2) | .id" list) &&
    ID5=$(jq -r "select(.event.dead == 5) | .id" list) &&
    S1=$(shard_name "$S" 4 1) && S2=$(shard_name "$S" 4 2) &&
    test "$(rcli xlen "$S1")" = 4 && test "$(rcli xlen "$S2")" = 6 &&
    logpipe-dlq retry "$ID2" "$ID5" >ret &&
    test "$(jq -r .stream ret | tr "\n" " ")" = "$S2 $S1 " &&
    test "$(jq -r .id ret | tr "\n" " ")" = "$ID2 $ID5 " &&
    test "$(rcli xlen "$S1")" = 5 && test "$(rcli xlen "$S2")" = 7 &&
    rcli xrevrange "$S2" + - count 1 | grep_q "{\"dead\":2}" - &&
    rcli xrevrange "$S1" + - count 1 >last1 &&
    grep_q "{\"dead\":5}" last1 &&
    test "$(rcli xlen "$(dlq_name logs:dlq 4 2)")" = 1 &&
    test "$(rcli xlen "$(dlq_name logs:dlq 4 1)")" = 0 &&
    logpipe-dlq retry "$ID2" -v >again 2>err &&
    test ! -s again &&
    grep_q "entry $ID2 is not in .* (done already)" err
'

test_expect_success 'purge by sharded ID, and --all over every shard' '
    ID4=$(jq -r "select(.event.dead == 4) | .id" list) &&
    logpipe-dlq purge "$ID4" >pur &&
    test "$(jq -r .id pur)" = "$ID4" &&
    test "$(rcli xlen "$(dlq_name logs:dlq 4 3)")" = 0 &&
    logpipe-dlq purge --all --dry-run >dry &&
    test "$(wc -l <dry)" = 2 &&
    logpipe-dlq purge --all >all &&
    test "$(jq -r .id all | cut -d- -f1 | tr "\n" " ")" = "0 2 " &&
    test "$(logpipe-dlq list | wc -l)" = 0
'

test_expect_success '--dlq names the base of the shards DLQs' '
    BASE=my:dlq dead 7 3 &&
    logpipe-dlq --dlq my:dlq list >mine &&
    test "$(jq -r .id mine | cut -d- -f1)" = 3 &&
    test "$(logpipe-dlq list | wc -l)" = 0 &&
    logpipe-dlq --dlq my:dlq stats >ms &&
    test "$(jq -r .key ms)" = my:dlq &&
    expect_exit 78 logpipe-dlq --dlq "my:{dlq}" list 2>err &&
    grep_q "a name without" err
'

test_expect_success 'an unsharded stream: its DLQ and IDs as before' '
    rcli xadd logs:dlq "*" data "{\"dead\":9}" source_stream plain >/dev/null &&
    logpipe-dlq -s plain list >pl &&
    test "$(jq -c .event pl)" = "{\"dead\":9}" &&
    jq -r .id pl | grep_q "^[0-9]*-[0-9]*\$" - &&
    expect_exit 65 logpipe-dlq -s plain show 0-1-1 2>err &&
    grep_q "is not a stream entry ID" err
'

test_done
