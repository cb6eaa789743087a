#!/bin/sh
# t0021-redis.sh -- lp_redis unit tests
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-redis"
