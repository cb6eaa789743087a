#!/bin/sh
# t0530-examples.sh -- the example units verify; the ACL users suffice
. "$(dirname "$0")/lib.sh"

if command -v systemd-analyze >/dev/null 2>&1; then
    test_expect_success 'systemd-analyze verify passes on every example unit' '
        mkdir -p units man/man1 man/man7 &&
        for m in "$TOP"/man/*.1; do ln -s "$m" man/man1/; done &&
        ln -s "$TOP/man/logpipe.7" man/man7/ &&
        for u in "$TOP"/examples/*.service "$TOP"/examples/*.timer \
                 "$TOP"/examples/*.socket; do
            sed -e "s|/usr/local/bin/|$TOP/cmd/|g" \
                -e "s|exec logpipe-send|exec $TOP/cmd/logpipe-send|" "$u" \
                >"units/$(basename "$u")"
        done || exit 1
        # it fails on what a test machine lacks (other units, users): the
        # lines about those are taken out below, the rest must be empty
        MANPATH="$TMP/man" systemd-analyze verify units/*.service units/*.timer \
            units/*.socket 2>err || :
        sed -e "/Failed to open/d" -e "/Unit .* not found/d" err >err2 &&
        if [ -s err2 ]; then cat err2; false; fi
    '
else
    test_skip 'systemd-analyze verify' 'systemd-analyze is not installed'
fi

# the units' systemd-analyze security scores (2.0 or better), and their
# work under strace inside their sandboxes: t0921-units.sh

# the example ACL file as is, with passwords made for the test; Redis
# refuses to start on any error in it
sed -e "s/>CHANGE-ME-\([a-z]*\)/>pw-\1/" "$TOP/examples/users.acl" >users.acl
start_redis acl --aclfile "$TMP/users.acl"
url() {
    echo "redis://logpipe-$1@127.0.0.1:$REDIS_PORT/0"
}
admin() {
    redis-cli -p "$REDIS_PORT" --user admin --pass pw-admin --no-auth-warning "$@"
}

test_expect_success 'the ACL file loaded: no password-less default user' '
    redis-cli -p $REDIS_PORT XLEN logs:stream >out 2>&1;
    grep_q "NOAUTH" out
'

test_expect_success 'each tool works as its least-privilege user' '
    gen_events 50 >in &&
    echo broken >>in &&
    LOGPIPE_REDIS_PASSWORD=pw-send expect_exit 65 logpipe-send -r $(url send) \
        --rejects-to-dlq --max-backlog 1000000 --rate 1000/s --shared-rate \
        --rate-key .service <in 2>err &&
    ! grep -q "limiting in this sender alone" err &&
    test "$(admin --scan --pattern "logs:stream:rate:*" | wc -l)" -ge 1 &&
    LOGPIPE_REDIS_PASSWORD=pw-drain logpipe-drain -r $(url drain) --once \
        -d arch --keep 1h 2>err &&
    test "$(cat arch/*/*.jsonl | wc -l)" -eq 50 &&
    LOGPIPE_REDIS_PASSWORD=pw-stat logpipe-stat -r $(url stat) --check \
        --max-lag 0 --max-dlq 1 >s &&
    jq -e ".dlq.length == 1 and .groups[0].pending == 0" s >/dev/null &&
    LOGPIPE_REDIS_PASSWORD=pw-replay logpipe-replay -r $(url replay) \
        --from-redis | wc -l | grep -qx 50 &&
    LOGPIPE_REDIS_PASSWORD=pw-dlq logpipe-dlq -r $(url dlq) list | wc -l | grep -qx 1 &&
    LOGPIPE_REDIS_PASSWORD=pw-dlq logpipe-dlq -r $(url dlq) purge --all >/dev/null &&
    test "$(admin XLEN logs:dlq)" -eq 0
'

# logpipe-http.service logs in as logpipe-send: it stores through send's
# engine, with send's commands
test_expect_success 'logpipe-http works as the send user, as its unit logs in' '
    xlen0=$(admin XLEN logs:stream)
    dlq0=$(admin XLEN logs:dlq)
    LOGPIPE_REDIS_PASSWORD=pw-send LOGPIPE_TEST_ADDR_FILE="$TMP/http.addr" \
        logpipe-http -r "$(url send)" --listen 127.0.0.1:0 --rejects-to-dlq \
        --rate 1000/s 2>http.err &
    hpid=$!
    echo $hpid >>"$TMP/.pids"
    wait_for 20 test -s http.addr
    gen_events 20 >ev
    echo broken >>ev
    curl -sS -o body -w "%{http_code}\n" -H "Content-Type: application/x-ndjson" \
        --data-binary @ev "http://$(head -n 1 http.addr)/v1/events" >code
    cat body
    test "$(cat code)" = 200
    jq -e ".accepted == 20 and .rejected == 1" body >/dev/null
    test "$(admin XLEN logs:stream)" -eq $((xlen0 + 20))
    test "$(admin XLEN logs:dlq)" -eq $((dlq0 + 1))
    kill -TERM $hpid
    wait $hpid
    LOGPIPE_REDIS_PASSWORD=pw-dlq logpipe-dlq -r $(url dlq) purge --all >/dev/null
    ! grep -q "NOPERM" http.err
'

test_expect_success 'the users are least privilege: a drain cannot run as send' '
    LOGPIPE_REDIS_PASSWORD=pw-send expect_exit 78 logpipe-drain -r $(url send) \
        --once -d arch2 2>err &&
    grep_q "NOPERM" err &&
    echo broken | LOGPIPE_REDIS_PASSWORD=pw-send expect_exit 65 \
        logpipe-send -r $(url send) --rejects-to-dlq 2>err &&
    LOGPIPE_REDIS_PASSWORD=pw-stat expect_exit 78 logpipe-dlq -r $(url stat) \
        purge --all 2>err &&
    grep_q "NOPERM" err &&
    LOGPIPE_REDIS_PASSWORD=pw-replay expect_exit 78 logpipe-dlq -r $(url replay) \
        retry --all 2>err &&
    grep_q "NOPERM" err &&
    test "$(admin XLEN logs:dlq)" -eq 1
'

test_done
