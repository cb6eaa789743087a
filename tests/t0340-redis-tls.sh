#!/bin/sh
# t0340-redis-tls.sh -- rediss:// against a TLS-only redis-server with a CA
# made here: send, drain, stat and logpipe-http round trip exactly; a wrong
# CA or name is refused with a message that says so (78); --tls-insecure
# warns; a server asking for client certificates gets ours; TLS against a
# plain server, and plain against a TLS one, fail with a clear message
. "$(dirname "$0")/lib.sh"

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=logpipe test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem \
    -days 2 -subj "/CN=another CA" 2>/dev/null
cert() {        # cert NAME SUBJECT-ALT-NAMES: NAME.pem/.key signed by ca
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/CN=$1" 2>/dev/null &&
    printf "subjectAltName=%s\n" "$2" >"$1.ext" &&
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
        -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
}
cert server "DNS:localhost,IP:127.0.0.1"
cert client "DNS:client"
chmod 600 ./*.key

# tls_redis NAME [options]: a redis-server listening on TLS only
tls_redis() {
    _n=$1
    shift
    mkdir -p "$_n"
    tries=0
    while :; do
        tries=$((tries + 1))
        [ $tries -le 20 ] || { echo "Bail out! no TLS redis-server"; exit 1; }
        _p=$(random_port)
        : >"$_n/redis.log"
        redis-server --port 0 --tls-port "$_p" --bind 127.0.0.1 \
            --tls-cert-file "$TMP/server.pem" --tls-key-file "$TMP/server.key" \
            --tls-ca-cert-file "$TMP/ca.pem" --dir "$TMP/$_n" --save "" \
            --appendonly no --logfile "$TMP/$_n/redis.log" "$@" &
        echo $! >>"$TMP/.pids"
        if wait_for 10 "grep -q 'Ready to accept' $_n/redis.log" &&
           redis-cli --tls --cacert ca.pem --cert client.pem --key client.key \
               -p "$_p" ping 2>/dev/null | grep -q PONG; then
            break
        fi
    done
    TLS_PORT=$_p
}

tls_redis tls --tls-auth-clients no
P=$TLS_PORT
tls_redis mtls --tls-auth-clients yes
M=$TLS_PORT
start_redis plain
rc() { redis-cli --tls --cacert ca.pem -p "$P" "$@"; }
unset LOGPIPE_REDIS_URL
export LOGPIPE_TLS_CA="$TMP/ca.pem"

gen_events 500 >in.ndjson

test_expect_success 'send, stat and drain over rediss://: exact round trip' '
    logpipe-send -r "rediss://localhost:$P" <in.ndjson &&
    test "$(rc XLEN logs:stream)" = 500 &&
    logpipe-stat -r "rediss://127.0.0.1:$P" >stat.json &&
    grep_q "\"length\":500" stat.json &&
    logpipe-drain -r "rediss://localhost:$P" -d out --once &&
    test "$(rc XLEN logs:stream)" = 0 &&
    archive_events out >got &&
    LC_ALL=C sort in.ndjson >want &&
    test_cmp want got
'

test_expect_success 'the system store does not know our CA: 78, said' '
    expect_exit 78 env -u LOGPIPE_TLS_CA logpipe-send -r "rediss://localhost:$P" <in.ndjson 2>err &&
    grep_q "certificate is refused" err
'

test_expect_success 'a wrong CA, a wrong name: 78, said' '
    expect_exit 78 logpipe-send -r "rediss://localhost:$P" --tls-ca other.pem <in.ndjson 2>err &&
    grep_q "certificate is refused" err &&
    expect_exit 78 logpipe-send -r "rediss://127.0.0.1:$P" --tls-server-name redis.example <in.ndjson 2>err &&
    grep_q "redis.example" err &&
    test "$(rc XLEN logs:stream)" = 0
'

test_expect_success '--tls-insecure: no check, a warning' '
    gen_events 3 >three &&
    logpipe-send -r "rediss://localhost:$P" --tls-ca other.pem --tls-insecure <three 2>err &&
    grep_q "tls-insecure" err &&
    test "$(rc XLEN logs:stream)" = 3
'

test_expect_success 'a server that asks for a client certificate: ours with --tls-cert' '
    ! logpipe-send -r "rediss://localhost:$M" --timeout 1s <three 2>err &&
    logpipe-send -r "rediss://localhost:$M" --tls-cert client.pem --tls-key client.key <three &&
    test "$(redis-cli --tls --cacert ca.pem --cert client.pem --key client.key -p "$M" XLEN logs:stream)" = 3
'

test_expect_success 'bad TLS files, and --tls-* without rediss://: 78, said' '
    expect_exit 78 logpipe-send -r "rediss://localhost:$P" --tls-ca nonexistent.pem <three 2>err &&
    grep_q "nonexistent.pem" err &&
    expect_exit 78 logpipe-send -r "rediss://localhost:$P" --tls-cert client.pem --tls-key other.key <three 2>err &&
    grep_q "tls-key" err &&
    expect_exit 78 logpipe-send -r "redis://127.0.0.1:$REDIS_PORT" --tls-ca ca.pem <three 2>err &&
    grep_q "rediss://" err
'

test_expect_success 'LOGPIPE_TLS_* in the environment, a plain URL: they do not apply, it works' '
    rcli DEL envplain >/dev/null &&
    LOGPIPE_TLS_SERVER_NAME=redis.example LOGPIPE_TLS_CERT="$TMP/client.pem" \
        LOGPIPE_TLS_KEY="$TMP/client.key" \
        logpipe-send -r "redis://127.0.0.1:$REDIS_PORT" -s envplain <three &&
    test "$(rcli XLEN envplain)" = 3 &&
    logpipe-stat -r "redis://127.0.0.1:$REDIS_PORT" -s envplain >st &&
    rcli DEL envplain >/dev/null
'

test_expect_success 'TLS to a plain server, plain to a TLS one: clear failures' '
    ! logpipe-send -r "rediss://127.0.0.1:$REDIS_PORT" --timeout 1s <three 2>err &&
    grep_q "speaking TLS" err &&
    ! logpipe-send -r "redis://127.0.0.1:$P" --timeout 1s <three 2>err &&
    test "$(rcli XLEN logs:stream)" = 0
'

test_expect_success 'logpipe-http into rediss://, with a client certificate' '
    ( LOGPIPE_TEST_ADDR_FILE="$TMP/h.addr" logpipe-http --listen 127.0.0.1:0 \
          -r "rediss://localhost:$M" --redis-tls-cert client.pem \
          --redis-tls-key client.key 2>h.err & echo $! >h.pid; wait ) &
    wait_for 20 test -s h.addr &&
    echo "$(cat h.pid)" >>"$TMP/.pids" &&
    curl -sS -H "Content-Type: application/x-ndjson" --data-binary @three \
        "http://$(cat h.addr)/v1/events" >body &&
    grep_q "\"accepted\":3" body &&
    test "$(redis-cli --tls --cacert ca.pem --cert client.pem --key client.key -p "$M" XLEN logs:stream)" = 6
'

if [ "$SAN" = 1 ]; then
test_skip 'valgrind over TLS' 'an AddressSanitizer build'
elif command -v valgrind >/dev/null 2>&1; then
test_expect_success 'valgrind: send and stat over TLS, a refused certificate; no error, no leak' '
    vg="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99" &&
    $vg logpipe-send -r "rediss://localhost:$P" <three 2>vg1 &&
    $vg logpipe-stat -r "rediss://localhost:$P" >/dev/null 2>vg2 &&
    expect_exit 78 $vg logpipe-send -r "rediss://localhost:$P" --tls-ca other.pem <three 2>vg3 &&
    ! grep -q "==[0-9]*==" vg1 vg2 vg3
'
else
test_skip 'valgrind over TLS' 'no valgrind'
fi

test_done
