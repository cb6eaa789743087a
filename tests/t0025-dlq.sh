#!/bin/sh
# t0025-dlq.sh -- lp_dlq unit tests: the dead letter record
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-dlq"
