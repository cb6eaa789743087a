#!/bin/sh
# t0024-drain.sh -- lp_group and lp_drain unit tests, against a Redis of
# their own
. "$(dirname "$0")/lib.sh"
start_redis
# the unit test prints its own TAP plan; lib.sh's cleanup stops Redis
${LP_VALGRIND:-} "$TOP/tests/unit-drain"
