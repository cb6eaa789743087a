# cluster-lib.sh -- a local Redis Cluster for the tests (t0342-t0349).
# Sourced after lib.sh; call start_cluster outside test bodies.
#
#   start_cluster 3 0        # 3 masters, no replicas
#   start_cluster 3 1        # 3 masters, one replica each
#
# Every node is a redis-server --cluster-enabled yes in $TMP/cluster/nodeI
# with its own nodes.conf, on a free port checked to be ours (as
# start_redis does), recorded in $TMP/.pids so that lib.sh's cleanup
# stops it by pid whatever happens. Its cluster bus is its port + 10000:
# the ports are drawn from 20000-22699, so that the bus ports stay below
# the kernel's ephemeral range (32768 and up) as random_port's do.
#
# With CLUSTER_TLS set to a directory holding ca.pem, server.pem and
# server.key (a certificate for IP 127.0.0.1), the nodes speak TLS only,
# their cluster bus and replication too (--tls-cluster, --tls-replication),
# and rcc (redis-cli with --tls --cacert) is how this file talks to them.
#
# Sets CLUSTER_PORTS (every node, in start order), CLUSTER_DIR, and
# CLUSTER_URL (redis://127.0.0.1:<first port>). cluster_masters prints the
# master ports as the cluster sees them now, cluster_owner a slot's,
# cluster_tag_on a hash tag on a given master, cluster_move_script a
# script that moves a slot by hand; ccli PORT ARGS... is
# redis-cli on a node; cluster_wait_ok waits until every node says
# cluster_state:ok and knows every node (start_cluster also waits for
# every replica's link to its master); stop_cluster stops all nodes.
#
# For sharded streams on it (t0354, t0385, t0391-t0394): cluster_sharded
# (the cluster and its names), cluster_shard_pick (a shard, its slot,
# where it is and where to move it), cluster_move_begin/_key/_keys/_end
# and cluster_move_slot (a slot moved by hand, in steps or whole),
# cluster_key_owner, cluster_shard_seqs, cluster_shards_in_order.

# cluster_port: a port whose bus port (+10000) is below 32768
cluster_port() {
    echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 2700 + 20000 ))
}

# rcc ARGS...: redis-cli, over TLS when CLUSTER_TLS says so
rcc() {
    if [ -n "${CLUSTER_TLS:-}" ]; then
        redis-cli --tls --cacert "$CLUSTER_TLS/ca.pem" "$@"
    else
        redis-cli "$@"
    fi
}

# cluster_node DIR: starts one node in DIR on a free port; prints the port
cluster_node() {
    _d=$1
    mkdir -p "$_d"
    _tries=0
    while :; do
        _tries=$((_tries + 1))
        if [ $_tries -gt 30 ]; then
            echo "Bail out! cannot start a cluster node" >&2
            return 1
        fi
        _p=$(cluster_port)
        rm -f "$_d/nodes.conf"
        : >"$_d/redis.log"
        if [ -n "${CLUSTER_TLS:-}" ]; then
            set -- --port 0 --tls-port "$_p" --tls-cluster yes \
                --tls-replication yes --tls-auth-clients no \
                --tls-cert-file "$CLUSTER_TLS/server.pem" \
                --tls-key-file "$CLUSTER_TLS/server.key" \
                --tls-ca-cert-file "$CLUSTER_TLS/ca.pem"
        else
            set -- --port "$_p"
        fi
        redis-server "$@" --bind 127.0.0.1 --dir "$_d" \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 2000 --save '' --appendonly no \
            --repl-diskless-sync-delay 0 \
            --logfile "$_d/redis.log" --daemonize no >/dev/null 2>&1 &
        _pid=$!
        echo "$_pid" >>"$TMP/.pids"
        _i=0
        while [ $_i -lt 100 ]; do
            kill -0 "$_pid" 2>/dev/null || break
            # ours, not another test's server on a port we also tried
            if grep -q "Ready to accept connections" "$_d/redis.log" &&
               rcc -p "$_p" ping 2>&1 | grep -q PONG &&
               [ "$(rcc -p "$_p" info server | tr -d '\r' |
                    sed -n 's/^process_id://p')" = "$_pid" ]; then
                echo "$_pid" >"$_d/pid"
                echo "$_p"
                return 0
            fi
            sleep 0.05
            _i=$((_i + 1))
        done
        kill -9 "$_pid" 2>/dev/null
        wait "$_pid" 2>/dev/null
    done
}

ccli() {
    _p=$1
    shift
    rcc -p "$_p" "$@"
}

# cluster_ok PORT: the node says the cluster is ok, knows all nodes and
# sees every slot served
cluster_ok() {
    _info=$(rcc -p "$1" cluster info 2>/dev/null | tr -d '\r')
    echo "$_info" | grep -q '^cluster_state:ok$' &&
    echo "$_info" | grep -q '^cluster_slots_ok:16384$' &&
    echo "$_info" | grep -q "^cluster_known_nodes:$CLUSTER_N\$"
}

# cluster_wait_ok: every node says ok (polled, at most 60 s)
cluster_wait_ok() {
    for _p in $CLUSTER_PORTS; do
        wait_for 60 cluster_ok "$_p" || return 1
    done
}

# replica_up PORT: the node is no replica, or one whose link to its
# master is up
replica_up() {
    _r=$(rcc -p "$1" info replication 2>/dev/null | tr -d '\r')
    echo "$_r" | grep -q '^role:master$' ||
    echo "$_r" | grep -q '^master_link_status:up$'
}

# masters_seen PORT MASTERS: the node sees MASTERS masters (not failed):
# every replica is known as one (gossip: a node that took CLUSTER
# REPLICATE is a master without slots to the others for a moment)
masters_seen() {
    test "$(rcc -p "$1" cluster nodes 2>/dev/null |
        awk '$3 ~ /master/ && $3 !~ /fail/' | wc -l)" -eq "$2"
}

# cluster_masters: the master ports, as the first live node sees them
cluster_masters() {
    for _p in $CLUSTER_PORTS; do
        if rcc -p "$_p" ping >/dev/null 2>&1; then
            rcc -p "$_p" cluster nodes |
                awk '$3 ~ /master/ && $3 !~ /fail/ {
                    split($2, a, "@"); n = split(a[1], b, ":"); print b[n] }' |
                sort -n
            return 0
        fi
    done
    return 1
}

# cluster_node_id PORT: the node's own ID
cluster_node_id() {
    rcc -p "$1" cluster myid
}

# cluster_owner SLOT [PORT]: the port of the master serving SLOT, as the
# node on PORT (default: the first node) sees it now; masters marked
# failed left out
cluster_owner() {
    rcc -p "${2:-${CLUSTER_PORTS%% *}}" cluster nodes |
        awk -v s="$1" '$3 ~ /master/ && $3 !~ /fail/ {
            for (i = 9; i <= NF; i++) {
                if ($i ~ /^\[/)
                    continue        # a slot migrating or importing
                n = split($i, r, "-")
                if (s >= r[1] + 0 && s <= r[n] + 0) {
                    split($2, h, "@"); m = split(h[1], hp, ":")
                    print hp[m]
                    exit
                }
            }
        }'
}

# cluster_roles KEY: call it outside test bodies, after start_cluster.
# Sets M1 M2 M3 (the masters), SLOT (KEY's), OWNER (its master) and A, B
# (the two masters that do not own it: the tests talk through them)
cluster_roles() {
    _ck=$1
    set -- $(cluster_masters)
    M1=$1 M2=$2 M3=$3
    SLOT=$(ccli "$M1" cluster keyslot "$_ck")
    OWNER=$(cluster_owner "$SLOT")
    A="" B=""
    for _p in $M1 $M2 $M3; do
        [ "$_p" = "$OWNER" ] && continue
        if [ -z "$A" ]; then A=$_p; else B=$_p; fi
    done
}

# cluster_tag_on PORT: a hash tag (t1, t2, ...) whose slot the master on
# PORT serves
cluster_tag_on() {
    _i=0
    while [ $_i -lt 1000 ]; do
        _i=$((_i + 1))
        _s=$(rcc -p "$1" cluster keyslot "{t$_i}")
        if [ "$(cluster_owner "$_s" "$1")" = "$1" ]; then
            echo "t$_i"
            return 0
        fi
    done
    return 1
}

# cluster_move_script SLOT FROM TO: prints a shell script that moves SLOT
# and its keys from the master on port FROM to the one on TO by hand, as
# the cluster spec describes a migration (importing, migrating, MIGRATE
# of each key, the new owner told to both); for a cluster-cli "!" line
cluster_move_script() {
    _cli="redis-cli"
    [ -z "${CLUSTER_TLS:-}" ] ||
        _cli="redis-cli --tls --cacert $CLUSTER_TLS/ca.pem"
    _fid=$(cluster_node_id "$2")
    _tid=$(cluster_node_id "$3")
    cat <<EOF
$_cli -p $3 cluster setslot $1 importing $_fid >/dev/null
$_cli -p $2 cluster setslot $1 migrating $_tid >/dev/null
for k in \$($_cli -p $2 cluster getkeysinslot $1 1000); do
    $_cli -p $2 migrate 127.0.0.1 $3 "\$k" 0 5000 >/dev/null
done
$_cli -p $3 cluster setslot $1 node $_tid >/dev/null
$_cli -p $2 cluster setslot $1 node $_tid >/dev/null
EOF
}

# A slot moved by hand while a tool runs, in steps the tests interleave
# with it (the cluster spec's migration, as cluster_move_script):
# cluster_move_begin SLOT FROM TO: importing on TO, migrating on FROM;
# cluster_move_key FROM TO KEY: one key (one not there: nothing to move);
# cluster_move_keys SLOT FROM TO: every key of the slot;
# cluster_move_end SLOT FROM TO: TO the owner, told to both;
# cluster_move_slot SLOT FROM TO: all of it, every key in the slot.
cluster_move_begin() {
    ccli "$3" cluster setslot "$1" importing "$(cluster_node_id "$2")" >/dev/null &&
    ccli "$2" cluster setslot "$1" migrating "$(cluster_node_id "$3")" >/dev/null
}
cluster_move_key() {
    case $(ccli "$1" migrate 127.0.0.1 "$2" "$3" 0 5000) in
    OK|NOKEY) return 0 ;;
    *) return 1 ;;
    esac
}
cluster_move_end() {
    ccli "$3" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null &&
    ccli "$2" cluster setslot "$1" node "$(cluster_node_id "$3")" >/dev/null
}
cluster_move_keys() {
    for _k in $(ccli "$2" cluster getkeysinslot "$1" 1000); do
        cluster_move_key "$2" "$3" "$_k" || return 1
    done
}
cluster_move_slot() {
    cluster_move_begin "$1" "$2" "$3" &&
    cluster_move_keys "$1" "$2" "$3" &&
    cluster_move_end "$1" "$2" "$3"
}

# cluster_sharded STREAM: outside test bodies: a 3-master cluster for a
# sharded STREAM (t0354, t0385, t0391-t0394): M1 M2 M3, URL (through M2),
# SHARD_NAMES, S=STREAM
cluster_sharded() {
    XDG_RUNTIME_DIR=$TMP
    export XDG_RUNTIME_DIR
    SHARD_NAMES="$TOP/tests/shard-names"
    start_cluster 3 0
    S=$1
    set -- $(cluster_masters)
    M1=$1 M2=$2 M3=$3
    URL="redis://127.0.0.1:$M2"
}

# cluster_key_owner KEY: the port of the master of KEY's slot now
cluster_key_owner() {
    cluster_owner "$(ccli "$M1" cluster keyslot "$1")"
}

# cluster_events N FIRST [SERVICE]: N events, seq FIRST.., timestamped
# CLUSTER_NOW (this file's load), of SERVICE (default ask)
CLUSTER_NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cluster_events() {
    awk -v n="$1" -v f="$2" -v now="$CLUSTER_NOW" -v svc="${3:-ask}" 'BEGIN {
        for (i = f; i < f + n; i++)
            printf "{\"timestamp\":\"%s\",\"service\":\"%s\",\"seq\":%d}\n", now, svc, i }'
}

# cluster_blocked_on PORT: a client blocked in XREADGROUP on that node
cluster_blocked_on() {
    rcc -p "$1" client list | grep "cmd=xreadgroup" | grep -q "flags=b"
}

# cluster_asked PORT CMD...: CMD on the node on PORT after ASKING (a slot
# it is importing: its keys there already), the answer's last line
cluster_asked() {
    _ap=$1
    shift
    printf 'ASKING\n%s\n' "$*" | rcc -p "$_ap" | tail -n 1
}

# cluster_shards_total STREAM N: the entries over the N shards of STREAM,
# each asked of its master; cluster_dlqs_total STREAM N: the dead letters
# in their DLQs (logs:dlq:{i})
cluster_shards_total() {
    _t=0
    for _sh in $("$TOP/tests/shard-names" "$1" "$2"); do
        _t=$((_t + $(ccli "$(cluster_key_owner "$_sh")" xlen "$_sh")))
    done
    echo "$_t"
}
cluster_dlqs_total() {
    _t=0
    for _sh in $("$TOP/tests/shard-names" "$1" "$2"); do
        _d=logs:dlq:${_sh#"$1":}
        _t=$((_t + $(ccli "$(cluster_key_owner "$_d")" xlen "$_d")))
    done
    echo "$_t"
}

# cluster_shard_seqs STREAM N: every seq in the N shards of STREAM, one a
# line, each asked of its master
cluster_shard_seqs() {
    for _sh in $("$SHARD_NAMES" "$1" "$2"); do
        ccli "$(cluster_key_owner "$_sh")" --raw xrange "$_sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p"
    done
}

# cluster_shards_in_order STREAM N: each shard holds its seqs in input
# order
cluster_shards_in_order() {
    for _sh in $("$SHARD_NAMES" "$1" "$2"); do
        ccli "$(cluster_key_owner "$_sh")" --raw xrange "$_sh" - + |
            sed -n "s/.*\"seq\":\([0-9]*\).*/\1/p" >o || return 1
        sort -n o | cmp -s - o || return 1
    done
}

# cluster_shard_pick N I: shard I of S in N shards: SH its name, SL its
# slot, FROM its master now, TO another master to move it to
cluster_shard_pick() {
    SH=$("$SHARD_NAMES" "$S" "$1" | sed -n "$(($2 + 1))p") &&
    SL=$(ccli "$M1" cluster keyslot "$SH") &&
    FROM=$(cluster_owner "$SL") &&
    TO=$M1 && { [ "$FROM" != "$M1" ] || TO=$M2; }
}

# start_cluster MASTERS REPLICAS
start_cluster() {
    CLUSTER_N=$(( $1 * (1 + $2) ))
    CLUSTER_DIR=$TMP/cluster
    CLUSTER_PORTS=""
    _addrs=""
    _k=0
    while [ $_k -lt "$CLUSTER_N" ]; do
        _k=$((_k + 1))
        _p=$(cluster_node "$CLUSTER_DIR/node$_k") || {
            echo "Bail out! cannot start cluster node $_k"; exit 1; }
        CLUSTER_PORTS="$CLUSTER_PORTS $_p"
        _addrs="$_addrs 127.0.0.1:$_p"
    done
    CLUSTER_PORTS=${CLUSTER_PORTS# }
    # shellcheck disable=SC2086
    if ! rcc --cluster create $_addrs --cluster-replicas "$2" \
            --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1; then
        sed -e 's/^/# /' "$CLUSTER_DIR/create.log" | tail -n 20
        echo "Bail out! redis-cli --cluster create failed"
        exit 1
    fi
    if ! cluster_wait_ok; then
        for _p in $CLUSTER_PORTS; do
            echo "# $_p: $(rcc -p "$_p" cluster info | tr -d '\r' |
                           head -n 3 | tr '\n' ' ')"
        done
        echo "Bail out! the cluster is not ok"
        exit 1
    fi
    for _p in $CLUSTER_PORTS; do
        if ! wait_for 60 replica_up "$_p"; then
            echo "Bail out! the replica on $_p has no link to its master"
            exit 1
        fi
    done
    for _p in $CLUSTER_PORTS; do
        if ! wait_for 60 masters_seen "$_p" "$1"; then
            echo "Bail out! the node on $_p does not see $1 masters"
            exit 1
        fi
    done
    CLUSTER_URL="redis://127.0.0.1:${CLUSTER_PORTS%% *}"
    export CLUSTER_PORTS CLUSTER_URL CLUSTER_N
}

# stop_cluster: stops every node by its pid and waits for it
stop_cluster() {
    for _d in "$CLUSTER_DIR"/node*; do
        _pid=$(cat "$_d/pid" 2>/dev/null) || continue
        kill "$_pid" 2>/dev/null
    done
    for _d in "$CLUSTER_DIR"/node*; do
        _pid=$(cat "$_d/pid" 2>/dev/null) || continue
        while kill -0 "$_pid" 2>/dev/null; do sleep 0.05; done
    done
}
