#!/bin/sh
# t0016-rate.sh -- lp_rate unit tests
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-rate"
