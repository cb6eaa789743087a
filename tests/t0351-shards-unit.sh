#!/bin/sh
# t0351-shards-unit.sh -- lp_shards unit tests (no server): the shards'
# names spread over the slots, the names refused
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-shards"
