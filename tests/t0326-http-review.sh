#!/bin/sh
# t0326-http-review.sh -- faults of logpipe-http the adversarial review
# found (issue 16), fixed: a key two processes store with two bodies at
# once (the gate's LPKEY), a key Redis cannot be asked about (503, also
# with --wal), the pruning that took send's producers and fell behind, the
# keys' memory, a key past --idempotency-ttl, --rate over dead letters,
# /healthz with Redis dead and no request, --shared-rate --rate-key's
# keys all or none. The faults still open are in
# tests/x0325-http-review.sh, which make check does not run.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/httpd-lib.sh"

start_redis redis --appendonly yes --appendfsync always
ND='Content-Type: application/x-ndjson'
printf '{"a":1}\n' >b1
printf '{"b":2}\n{"b":3}\n' >b2

# every request answered 200 has its events in the stream: FILE holds
# lines "CODE BODYFILE EVENTSFILE"
stored_if_200() {
    stream_data >got
    while read -r c bf ef; do
        [ "$c" = 200 ] || continue
        while read -r ev; do
            grep -qxF "$ev" got || {
                echo "answered 200 ($(cat "$bf")), not stored: $ev" >&2
                return 1
            }
        done <"$ef"
    done <"$1"
}

start_http p1
A1=$ADDR
start_http p2
A2=$ADDR

# Fault 1: two processes, one key, two bodies at once. Each looks the key
# up (none yet), each submits its body as producer http:-:K from 0 to 1;
# the gate stores the first and says STORED for the second, which the
# engine takes as "stored" (lp_pipeline.c gate_open -> batch_stored), and
# the door answers 200 with the second body's own counts: events that are
# in no stream. The retry of the second then gets 422.
test_expect_success 'one key, two bodies, two processes at once: no 200 for what is not stored' '
    rcli CLIENT PAUSE 60000 WRITE >/dev/null
    { curl -sS -o r1.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: both" --data-binary @b1 "http://$A1/v1/events" >r1.code; } &
    wait_for 20 "curl -s http://$A1/metrics | grep -q \"^logpipe_http_requests_in_flight 1\""
    { curl -sS -o r2.body -w "%{http_code}\n" -H "$ND" -H "Idempotency-Key: both" --data-binary @b2 "http://$A2/v1/events" >r2.code; } &
    wait_for 20 "curl -s http://$A2/metrics | grep -q \"^logpipe_http_requests_in_flight 1\"" &&
    rcli CLIENT UNPAUSE >/dev/null &&
    wait_for 30 "test -s r1.code && test -s r2.code" &&
    echo "$(cat r1.code) r1.body b1" >answers &&
    echo "$(cat r2.code) r2.body b2" >>answers &&
    cat answers &&
    stored_if_200 answers
'

# Fault 2: the same through the WAL. Redis down, a key is taken
# unchecked (keyed: "a copy already stored is passed over when the WAL is
# sent"); when the key was stored before (by another process, or by this
# one before its table forgot it) with another body, the replay's
# gate says STORED and the new events are dropped, after a 200.
test_expect_success '--wal, Redis down, a key used before for another body: no 200 for what is then dropped' '
    req -H "$ND" -H "Idempotency-Key: wk" --data-binary @b1 "http://$A1/v1/events" &&
    code_is 200 &&
    echo "200 body b1" >answers &&
    start_http w --wal "$TMP/wal" &&
    W=$ADDR &&
    stop_redis KILL &&
    req -H "$ND" -H "Idempotency-Key: wk" --data-binary @b2 "http://$W/v1/events" &&
    cp body w2.body &&
    echo "$(cat code) w2.body b2" >>answers &&
    restart_redis &&
    wait_for 30 "curl -s http://$W/metrics | grep -q \"^logpipe_http_wal_bytes 0$\"" &&
    cat answers &&
    stored_if_200 answers
'

# Fault 3: the pruning of --idempotency-ttl (idem_prune: HSCAN MATCH
# "http*:*") deletes every field of <stream>:producers whose name starts
# with "http" and holds a ':' -- send's own producers too (a host named
# http-gw1 following files: "http-gw1:follow:..."; --producer
# http-ingest:app): after --idempotency-ttl (24h) rather than
# --producer-ttl (7d, never for followed files), and send then stores its
# input again.
test_expect_success 'the keys pruning leaves send producers alone' '
    printf "{\"x\":1}\n{\"x\":2}\n" >in &&
    rcli DEL logs:stream logs:stream:producers >/dev/null &&
    logpipe-send --producer http-gw:app <in &&
    test "$(rcli XLEN logs:stream)" = 2 &&
    old=$(( $(date +%s) * 1000 - 3600000 )) &&
    rcli HSET logs:stream:producers http:-:stale "1 $old 0123456789abcdef.e30" >/dev/null &&
    start_http pr --idempotency-ttl 1s &&
    wait_for 30 "test -z \"\$(redis-cli -p $REDIS_PORT HGET logs:stream:producers http:-:stale)\"" &&
    wait_for 3 "test -z \"\$(redis-cli -p $REDIS_PORT HGET logs:stream:producers http-gw:app)\"" || :
    test -n "$(rcli HGET logs:stream:producers http-gw:app)" ||
    { echo "send'"'"'s field http-gw:app pruned" >&2; false; }
'

# Fault 4: the pruning deletes at most 200 fields a second (argv[202] in
# idem_prune: the rest of the HSCAN page is passed over until the next
# whole pass), so more than 200 keyed requests a second grow
# <stream>:producers without bound, whatever --idempotency-ttl says. 4000
# stale fields: a prune that deletes what each page holds (COUNT 1000)
# ends them in about 4 s, this one in 10 s or more.
test_expect_success 'the keys pruning keeps up with more than 200 keys a second' '
    stop_http pr &&
    rcli DEL logs:stream:producers >/dev/null &&
    old=$(( $(date +%s) * 1000 - 3600000 )) &&
    seq 1 4000 | awk -v o="$old" "{ print \"HSET logs:stream:producers http:-:k\" \$1 \" \\\"1 \" o \" 0123456789abcdef.e30\\\"\" }" |
        rcli >/dev/null &&
    test "$(rcli HLEN logs:stream:producers)" = 4000 &&
    start_http pr2 --idempotency-ttl 1s &&
    wait_for 8 "test \$(redis-cli -p $REDIS_PORT HLEN logs:stream:producers) = 0" ||
    { rcli HLEN logs:stream:producers; stop_http pr2; false; }
    stop_http pr2
'

# healthy ADDR: GET /healthz over and over for 2 s, each answered within
# 1 s (a probe over a span: the fault it looks for may take a moment to
# start; a door that is right passes whatever the timing)
healthy() {
    _end=$(($(date +%s) + 3))
    while [ "$(date +%s)" -lt "$_end" ]; do
        curl -sS -m 1 -o /dev/null "http://$1/healthz" || return 1
    done
}

# Fault 8: the memory of Idempotency-Keys grows with the load, not with
# the connections: the table of answered keys (IDEM_DONE_MAX, 10,000)
# keeps each key's whole 200 answer, errors list included (up to 16 KiB,
# lp_httpd max_error_bytes), and so does each key's field in Redis for
# --idempotency-ttl (24h; the answer base64 in the cursor). One client on
# one connection, 10,000 keys, each a body of one event and 150 lines
# refused (an answer of 8.6 KB): RSS 7 MB -> 100+ MB here, and 12 KB of
# Redis a key (20,000 keys: 250 MB).
cat >keys.pl <<'PL'
# keys.pl ADDR N BODYFILE: N POSTs over one keep-alive connection, each
# with a key of its own; prints the count of each status
use strict; use warnings; use IO::Socket::INET;
my ($addr, $n, $file) = @ARGV;
open my $f, "<", $file or die; my $body = do { local $/; <$f> };
my $s = IO::Socket::INET->new(PeerAddr => $addr) or die "connect: $!";
$s->autoflush(1);
my (%codes, $buf); $buf = "";
for my $i (1 .. $n) {
    print $s "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: " .
        "application/x-ndjson\r\nIdempotency-Key: many-$i\r\n" .
        "Content-Length: " . length($body) . "\r\n\r\n$body";
    for (;;) {
        if ($buf =~ /^HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n\r\n/s) {
            my ($code, $h, $hl) = ($1, $2, $+[0]);
            my ($len) = $h =~ /Content-Length: (\d+)/i;
            if (length($buf) >= $hl + $len) {
                substr($buf, 0, $hl + $len) = ""; $codes{$code}++; last;
            }
        }
        sysread($s, my $d, 65536) or die "closed after $i";
        $buf .= $d;
    }
}
print join(" ", map { "$_:$codes{$_}" } sort keys %codes), "\n";
PL

test_expect_success 'many Idempotency-Keys with long answers: memory stays bounded' '
    start_http many &&
    { echo "{\"ok\":1}"; for i in $(seq 1 150); do echo "{\"a\":1,\"timestamp\":\"1999-01-01T00:00:00Z\"}"; done; } >refused &&
    perl keys.pl "$ADDR" 10000 refused >many.out &&
    cat many.out && grep_q "^200:10000$" many.out &&
    kb=$(awk "/^VmHWM/ { print \$2 }" /proc/$HTTP_PID/status) &&
    echo "peak RSS $kb KB; a key in Redis: $(rcli HGET logs:stream:producers http:-:many-1 | wc -c) bytes" &&
    { [ "$SAN" = 1 ] || test "$kb" -lt 49152; }
'

# Fault 10: the process's table of answered keys (idem_done) keeps a key
# past --idempotency-ttl (until 10,000 newer ones push it out): once the
# key's field is pruned from Redis, the key is new for every other
# instance, and for this one after a restart, but this one still answers
# the first answer again (or 422 for the new body). The table should
# forget an entry at the TTL, as the field is.
test_expect_success 'a key past --idempotency-ttl is new again in the process too' '
    rcli DEL logs:stream logs:stream:producers >/dev/null &&
    start_http ttl --idempotency-ttl 1s &&
    req -H "$ND" -H "Idempotency-Key: old" --data-binary @b1 "http://$ADDR/v1/events" &&
    code_is 200 &&
    wait_for 30 "test -z \"\$(redis-cli -p $REDIS_PORT HGET logs:stream:producers http:-:old)\"" &&
    req -H "$ND" -H "Idempotency-Key: old" --data-binary @b2 "http://$ADDR/v1/events" &&
    code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 3
'

# Fault 11: --rate counts a request's events only (lp_send.c req_rate:
# q->nev, and req_tally for --rate-key), not the DLQ records that
# --rejects-to-dlq adds for its refused lines (lp_send_req_dlq): a client
# held to 3 events an hour writes as many refused lines into the DLQ, and
# so into Redis's memory, as it likes. Count every record a request
# writes against the client's limit (or refuse the DLQ records past it).
test_expect_success '--rate bounds what --rejects-to-dlq writes too' '
    start_http rd --rate 3/h --burst 3 --rejects-to-dlq &&
    for i in $(seq 1 100); do echo "not json $i"; done >bad &&
    for i in 1 2 3 4 5; do
        curl -sS -o /dev/null -H "$ND" --data-binary @bad "http://$ADDR/v1/events" || exit 1
    done &&
    n=$(rcli XLEN logs:dlq) &&
    echo "DLQ entries: $n" &&
    test "$n" -le 3
'

# Fault 9: --shared-rate with --rate-key: a request's keys are asked of
# Redis one by one (lp_send.c req_rate: shared_ask per key, each taking
# its n tokens), so when a later key refuses, the earlier ones' tokens are
# gone for a request that stores nothing: a client retrying a mixed
# request drains the other apps' limits (the local buckets do it right:
# lp_bucket_need_n over all, then take). And when Redis fails after some
# keys took, the local buckets are charged again.
test_expect_success '--shared-rate --rate-key: a refused request takes no key'"'"'s tokens' '
    start_http sk --rate 3/h --burst 3 --rate-key .app --shared-rate &&
    rcli DEL logs:stream >/dev/null &&
    printf "{\"app\":\"b\"}\n%.0s" 1 2 3 >b3 &&
    req -H "$ND" --data-binary @b3 "http://$ADDR/v1/events" && code_is 200 &&
    printf "{\"app\":\"a\"}\n{\"app\":\"a\"}\n{\"app\":\"b\"}\n" >a2b1 &&
    req -H "$ND" --data-binary @a2b1 "http://$ADDR/v1/events" && code_is 429 &&
    printf "{\"app\":\"a\"}\n%.0s" 1 2 3 >a3 &&
    req -H "$ND" --data-binary @a3 "http://$ADDR/v1/events" && code_is 200 &&
    test "$(rcli XLEN logs:stream)" = 6
'

# Fault 12: /healthz says 200 "ok" while Redis is dead, for as long as no
# request comes: on_health trusts lp_send_state's connected (the engine's
# socket believed open), which only a failed batch corrects; nothing
# watches the idle connection. A load balancer keeps sending, and the
# first request then gets 503 "the reply was lost".
test_expect_success '/healthz 503 soon after Redis dies, without a request' '
    start_http hz &&
    req -H "$ND" --data-binary @b1 "http://$ADDR/v1/events" && code_is 200 &&
    req "http://$ADDR/healthz" && code_is 200 &&
    stop_redis KILL &&
    wait_for 10 "curl -s -o /dev/null -w %{http_code} http://$ADDR/healthz | grep -q 503"
'

test_done
