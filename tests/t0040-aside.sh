#!/bin/sh
# t0040-aside.sh -- lp_aside (questions a loop never waits for): unit
# tests over a Redis of their own
. "$(dirname "$0")/lib.sh"

start_redis
${LP_VALGRIND:-} "$TOP/tests/unit-aside"
