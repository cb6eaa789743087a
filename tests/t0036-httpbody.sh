#!/bin/sh
# t0036-httpbody.sh -- lp_httpbody unit tests: HTTP bodies into events
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-httpbody"
