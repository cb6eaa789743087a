#!/bin/sh
# t0027-replay.sh -- lp_replay unit tests
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-replay"
