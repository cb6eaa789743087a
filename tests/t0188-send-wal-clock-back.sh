#!/bin/sh
# t0188-send-wal-clock-back.sh -- review of issue 15's gate (commit
# 1631928): --producer P --wal numbers a run that starts while Redis is away
# from the clock (lp_send_open: next_pos = now in ms * 1000, "above any
# earlier run's"). That holds only while the clock never goes back: a host
# that boots with its clock a day ahead (an RTC off, NTP not synced yet)
# and Redis not up yet stores positions of that day; once the clock is
# right, the next run that starts while Redis is away numbers below them,
# and when Redis takes that WAL every record is "at or below the committed
# position": counted as stored after a lost reply, acknowledged, deleted.
# Its events are lost.
#
# The clock is moved for one process by an LD_PRELOAD shim the test builds
# (clock_gettime(CLOCK_REALTIME) plus LP_SHIFT_S seconds).
#
# Expected: every event once.
. "$(dirname "$0")/lib.sh"

CC=${CC:-cc}
if [ "$SAN" = 1 ] || ! command -v "$CC" >/dev/null 2>&1; then
    test_skip 'a clock that went back' 'no C compiler, or an ASan build (LD_PRELOAD)'
    test_done
fi

cat >shift.c <<'CEOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    const char *s = getenv("LP_SHIFT_S");
    int rc;

    if (real == NULL)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT,
                                                            "clock_gettime");
    rc = real(id, ts);
    if (rc == 0 && id == CLOCK_REALTIME && s)
        ts->tv_sec += strtol(s, NULL, 10);
    return rc;
}
CEOF
if ! "$CC" -shared -fPIC -o shift.so shift.c -ldl 2>cc.err; then
    test_skip 'a clock that went back' "cannot build the shim: $(head -n 1 cc.err)"
    test_done
fi

start_redis

ev() {
    seq "$1" "$2" | sed 's/.*/{"seq":&}/'
}

test_expect_success 'a day ahead, then right: each event once' '
    # boot 1: the clock a day ahead, Redis not up yet
    ev 1 10 | LD_PRELOAD=$TMP/shift.so LP_SHIFT_S=86400 \
        logpipe-send -r "$(dead_redis)" --producer P --wal w --max-age 0 \
        2>b1.err
    logpipe-send --wal w --flush-wal 2>f1.err
    test "$(rcli XLEN logs:stream)" -eq 10
    # boot 2: the clock right, Redis not up yet
    ev 11 20 | logpipe-send -r "$(dead_redis)" --producer P --wal w \
        --max-age 0 2>b2.err
    logpipe-send --wal w --flush-wal -v 2>f2.err
    sed -e "s/^/# /" f2.err
    rcli --raw XRANGE logs:stream - + | seqs - >got
    say "left in the WAL: $(find w -name "wal-*.log" | wc -l) segments"
    tally 20 got
'

test_done
