#!/bin/sh
# t0018-gz.sh -- lp_gzr unit tests: damaged gzip files
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-gz"
