#!/bin/sh
# t0038-tokens.sh -- lp_tokens unit tests: --tokens FILE, bearer checks
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-tokens"
