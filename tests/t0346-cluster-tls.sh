#!/bin/sh
# t0346-cluster-tls.sh -- lp_cluster over TLS: a 3-master cluster whose
# nodes speak TLS only (clients, cluster bus, replication) with a CA made
# here; a rediss:// seed reaches every master with the seed's TLS
# settings, follows MOVED over TLS; a wrong CA is refused (78, said); a
# plain redis:// URL gets nowhere (69); the tools over it: send through
# one node, drain --once through another, stat and replay --from-redis,
# every event once; and with the stream's slot held half moved, its keys
# on the node importing it: stat, replay and drain follow ASK there over
# a TLS connection of their own (ASKING), every event once.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/cluster-lib.sh"

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=logpipe test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem \
    -days 2 -subj "/CN=another CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
    -subj "/CN=server" 2>/dev/null
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out server.pem -days 2 -extfile server.ext 2>/dev/null
chmod 600 ./*.key

CLUSTER_TLS=$TMP
CLI="${LP_VALGRIND:-} $TOP/tests/cluster-cli"
start_cluster 3 0
set -- $(cluster_masters)
M1=$1 M2=$2 M3=$3
URL="rediss://127.0.0.1:$M1"

test_expect_success 'rediss:// through one seed: every master, MOVED followed' '
    tag=$(cluster_tag_on "$M2")
    slot=$(ccli "$M1" cluster keyslot "{$tag}")
    cluster_move_script "$slot" "$M2" "$M3" >move.sh
    awk "BEGIN { for (i = 1; i <= 200; i++) print \"SET k\" i \" v\" i }" >cmds
    printf "SET {%s}a 1\n!sh move.sh\nINCR {%s}a\n" "$tag" "$tag" >>cmds
    awk "BEGIN { for (i = 1; i <= 200; i++) print \"GET k\" i }" >>cmds
    $CLI -r "$URL" --tls-ca ca.pem -s <cmds >out 2>stats
    {
        awk "BEGIN { for (i = 1; i <= 200; i++) print \"OK\" }"
        printf "OK\n2\n"
        awk "BEGIN { for (i = 1; i <= 200; i++) print \"v\" i }"
    } >want
    test_cmp want out
    grep_q "^moved=1 ask=0 waits=0 reloads=2\$" stats
    test "$(ccli "$M3" get "{$tag}a")" = 2
    for p in $M1 $M2 $M3
    do
        test "$(ccli "$p" dbsize)" -gt 20 || exit 1
    done
    echo .masters | $CLI -r "$URL" --tls-ca ca.pem | sort >masters
    printf "127.0.0.1:%s\n" $M1 $M2 $M3 | sort >want
    test_cmp want masters
'

# read_back STREAM N DIR: through node B over TLS, stat says N entries,
# replay --from-redis gives N lines, drain --once archives events 1..N
# into DIR, once each
read_back() {
    logpipe-stat -r "rediss://127.0.0.1:$B" --tls-ca ca.pem -s "$1" \
        >stat.json &&
    grep "\"length\":$2" stat.json &&
    logpipe-replay --from-redis -r "rediss://127.0.0.1:$B" --tls-ca ca.pem \
        -s "$1" >replayed &&
    test "$(wc -l <replayed)" = "$2" &&
    logpipe-drain -r "rediss://127.0.0.1:$B" --tls-ca ca.pem -s "$1" \
        -d "$3" --once &&
    find "$3" -name "*.jsonl" -exec cat {} + |
        sed -n "s/.*\"n\":\([0-9]*\).*/\1/p" | sort -n >got &&
    seq 1 "$2" >want &&
    test_cmp want got
}

S=tls:events
cluster_roles "$S"
test_expect_success 'the tools over TLS: send, drain --once, stat, replay' '
    seq 1 2000 | sed "s/.*/{\"service\":\"s\",\"n\":&}/" >in &&
    logpipe-send -r "rediss://127.0.0.1:$A" --tls-ca ca.pem -s "$S" \
        --batch 100 --producer tp in &&
    test "$(ccli "$OWNER" xlen "$S")" = 2000 &&
    test "$(ccli "$OWNER" hlen "{$S}:producers")" = 1 &&
    read_back "$S" 2000 arch
'

test_expect_success 'a wrong CA: refused, said (78); plain redis://: 69' '
    expect_exit 78 $CLI -r "$URL" --tls-ca other.pem GET k1 2>err
    grep_q "certificate is refused" err
    expect_exit 69 $CLI -r "redis://127.0.0.1:$M1" -t 1000 GET k1 2>err
    cat err
'

S2=tls:ask
cluster_roles "$S2"
test_expect_success 'ASK over TLS: the slot held half moved, stat, replay and drain read on the importing node' '
    seq 1 500 | sed "s/.*/{\"service\":\"s\",\"n\":&}/" >in2 &&
    logpipe-send -r "rediss://127.0.0.1:$A" --tls-ca ca.pem -s "$S2" \
        --batch 100 in2 &&
    cluster_move_begin "$SLOT" "$OWNER" "$A" &&
    cluster_move_keys "$SLOT" "$OWNER" "$A" &&
    test "$(ccli "$OWNER" cluster countkeysinslot "$SLOT")" = 0 &&
    test "$(cluster_asked "$A" XLEN "$S2")" = 500 &&
    read_back "$S2" 500 arch2 &&
    cluster_move_end "$SLOT" "$OWNER" "$A"
'

test_done
