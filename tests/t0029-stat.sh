#!/bin/sh
# t0029-stat.sh -- lp_stat unit tests (they start their own redis-server)
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-stat"
