#!/bin/sh
# t0343-cluster-unit.sh -- lp_cluster unit tests (no server): slots, maps,
# redirects, waits
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-cluster"
