#!/bin/sh
# t0022-opt.sh -- the typed option table: unit tests
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-opt"
