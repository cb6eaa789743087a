#!/bin/sh
# t0315-httpd-listen.sh -- where lp_httpd listens: --listen IPv4 and
# [IPv6]:port, several at once, bad addresses; sockets passed by systemd
# (LISTEN_FDS: a helper of ours, and systemd-socket-activate, TCP and unix)
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

have_v6=0
if perl -MSocket=:all -e 'socket(my $s, PF_INET6, SOCK_STREAM, 0) or exit 1;
    bind($s, pack_sockaddr_in6(0, inet_pton(AF_INET6, "::1"))) or exit 1'; then
    have_v6=1
fi

# passfd.pl PORTFILE CMD...: a listening socket on 127.0.0.1 (a port of
# the kernel's, written to PORTFILE) handed to CMD as fd 3, as systemd
# does; CMD is exec'd, so $! of "perl passfd.pl ... &" is CMD's pid (a
# shell function in the background would leave CMD behind its subshell)
cat >passfd.pl <<'EOF'
use Socket;
use POSIX qw(dup2);
my $f = shift;
$^F = 10;       # no close-on-exec for the descriptors made below
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
bind($s, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die "bind: $!\n";
listen($s, 16) or die "listen: $!\n";
my ($port) = unpack_sockaddr_in(getsockname($s));
open(my $o, ">", $f) or die "$f: $!\n"; print $o "$port\n"; close $o;
dup2(fileno($s), 3) == 3 or die "dup2: $!\n";
$ENV{LISTEN_FDS} = 1;
$ENV{LISTEN_PID} = $ENV{PASSFD_PID} // $$;
exec @ARGV or die "exec: $!\n";
EOF

if [ $have_v6 = 1 ]; then
    start_httpd two --listen 127.0.0.1:0 --listen '[::1]:0'
    V4=$(sed -n 1p two.addr)
    V6=$(sed -n 2p two.addr)
    test_expect_success 'two --listen, IPv4 and [IPv6]:port, one server' '
        case $V6 in "[::1]:"*) ;; *) echo "not v6: $V6" >&2; exit 1 ;; esac &&
        req "http://$V4/healthz" && code_is 200 &&
        req -g "http://$V6/healthz" && code_is 200 &&
        req -g -H "Content-Type: application/x-ndjson" --data-binary "{}" "http://$V6/v1/events" &&
        code_is 200 && grep_q "\"accepted\":1," body
    '
    start_httpd wild --listen '*:0'
    WP=${ADDR##*:}
    test_expect_success '*:PORT: every address, IPv4 and IPv6' '
        case $ADDR in "[::]:"*) ;; *) echo "not [::]: $ADDR" >&2; exit 1 ;; esac &&
        req "http://127.0.0.1:$WP/healthz" && code_is 200 &&
        req -g "http://[::1]:$WP/healthz" && code_is 200
    '
else
    test_skip 'two --listen, IPv4 and [IPv6]:port, one server' 'no IPv6 here'
fi

test_expect_success 'bad --listen: said, nothing served' '
    for l in 127.0.0.1 127.0.0.1:99999 "[::1:80" nosuch.invalid:80 127.0.0.1:x; do
        expect_exit 69 "$TOP/tests/unit-httpd" serve --listen "$l" 2>err &&
        grep -F -q "unit-httpd: --listen $l: " err || { cat err; exit 1; }
    done
'

test_expect_success 'an address in use is said' '
    reserve_dead_port &&
    expect_exit 69 "$TOP/tests/unit-httpd" serve --listen "127.0.0.1:$DEAD_PORT" 2>err &&
    grep_q "Address already in use" err
'

test_expect_success 'LISTEN_FDS: the socket passed as fd 3 is served' '
    { perl passfd.pl port "$TOP/tests/unit-httpd" serve --systemd \
        --addr-file pf.addr --items pf.items 2>pf.err & } &&
    echo $! >pf.pid && cat pf.pid >>"$TMP/.pids" &&
    wait_for 20 test -s pf.addr &&
    test "$(cat pf.addr)" = "127.0.0.1:$(cat port)" &&
    req -H "Content-Type: application/x-ndjson" --data-binary "{\"via\":3}" \
        "http://127.0.0.1:$(cat port)/v1/events" &&
    code_is 200 && grep_q "^ok {\"via\":3}$" pf.items &&
    kill -TERM "$(cat pf.pid)" && wait_for 20 "! kill -0 $(cat pf.pid)"
'

test_expect_success 'LISTEN_PID of another process: not ours, nothing to listen on' '
    PASSFD_PID=1 expect_exit 69 perl passfd.pl port2 "$TOP/tests/unit-httpd" serve --systemd 2>err &&
    grep_q "no socket to listen on" err
'

if command -v systemd-socket-activate >/dev/null 2>&1; then
    # a port of ours: systemd-socket-activate says it is listening
    sa_start() {
        tries=0
        while [ $tries -lt 20 ]; do
            tries=$((tries + 1))
            SA_PORT=$(random_port)
            systemd-socket-activate -l "127.0.0.1:$SA_PORT" \
                "$TOP/tests/unit-httpd" serve --systemd --addr-file sa.addr \
                --items sa.items 2>sa.err &
            SA_PID=$!
            echo $SA_PID >>"$TMP/.pids"
            wait_for 10 "grep -q Listening sa.err || ! kill -0 $SA_PID" || :
            if grep -q Listening sa.err && kill -0 $SA_PID 2>/dev/null; then
                return 0
            fi
            kill $SA_PID 2>/dev/null
            wait $SA_PID 2>/dev/null
        done
        echo "Bail out! cannot start systemd-socket-activate"
        exit 1
    }
    sa_start
    test_expect_success 'systemd-socket-activate: TCP, started by the first connection' '
        req -H "Content-Type: application/x-ndjson" --data-binary "{\"sa\":1}" \
            "http://127.0.0.1:$SA_PORT/v1/events" &&
        code_is 200 && grep_q "^ok {\"sa\":1}$" sa.items &&
        test "$(cat sa.addr)" = "127.0.0.1:$SA_PORT"
    '
    systemd-socket-activate -l "$TMP/http.sock" "$TOP/tests/unit-httpd" serve \
        --systemd --addr-file su.addr --items su.items 2>su.err &
    echo $! >>"$TMP/.pids"
    test_expect_success 'systemd-socket-activate: a unix socket' '
        wait_for 20 test -S "$TMP/http.sock" &&
        req --unix-socket "$TMP/http.sock" -H "Content-Type: application/x-ndjson" \
            --data-binary "{\"unix\":1}" "http://localhost/v1/events" &&
        code_is 200 && grep_q "^ok {\"unix\":1}$" su.items &&
        test "$(cat su.addr)" = "unix:$TMP/http.sock"
    '
else
    test_skip 'systemd-socket-activate' 'not installed (package systemd)'
fi

test_done
