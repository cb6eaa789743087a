#!/bin/sh
# t0039-httpans.sh -- lp_httpans unit tests: logpipe-http's answer
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-httpans"
