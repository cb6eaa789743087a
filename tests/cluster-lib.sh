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
# Sets CLUSTER_PORTS (every node, in start order), CLUSTER_DIR, and
# CLUSTER_URL (redis://127.0.0.1:<first port>). cluster_masters prints the
# master ports as the cluster sees them now; ccli PORT ARGS... is
# redis-cli on a node; cluster_wait_ok waits until every node says
# cluster_state:ok and knows every node (start_cluster also waits for
# every replica's link to its master); stop_cluster stops all nodes.

# cluster_port: a port whose bus port (+10000) is below 32768
cluster_port() {
    echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 2700 + 20000 ))
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
        redis-server --port "$_p" --bind 127.0.0.1 --dir "$_d" \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 2000 --save '' --appendonly no \
            --logfile "$_d/redis.log" --daemonize no >/dev/null 2>&1 &
        _pid=$!
        echo "$_pid" >>"$TMP/.pids"
        _i=0
        while [ $_i -lt 100 ]; do
            kill -0 "$_pid" 2>/dev/null || break
            # ours, not another test's server on a port we also tried
            if grep -q "Ready to accept connections" "$_d/redis.log" &&
               redis-cli -p "$_p" ping 2>&1 | grep -q PONG &&
               [ "$(redis-cli -p "$_p" info server | tr -d '\r' |
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
    redis-cli -p "$_p" "$@"
}

# cluster_ok PORT: the node says the cluster is ok, knows all nodes and
# sees every slot served
cluster_ok() {
    _info=$(redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r')
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
    _r=$(redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r')
    echo "$_r" | grep -q '^role:master$' ||
    echo "$_r" | grep -q '^master_link_status:up$'
}

# cluster_masters: the master ports, as the first live node sees them
cluster_masters() {
    for _p in $CLUSTER_PORTS; do
        if redis-cli -p "$_p" ping >/dev/null 2>&1; then
            redis-cli -p "$_p" cluster nodes |
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
    redis-cli -p "$1" cluster myid
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
    if ! redis-cli --cluster create $_addrs --cluster-replicas "$2" \
            --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1; then
        sed -e 's/^/# /' "$CLUSTER_DIR/create.log" | tail -n 20
        echo "Bail out! redis-cli --cluster create failed"
        exit 1
    fi
    if ! cluster_wait_ok; then
        for _p in $CLUSTER_PORTS; do
            echo "# $_p: $(redis-cli -p "$_p" cluster info | tr -d '\r' |
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
