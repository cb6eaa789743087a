#!/bin/sh
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-json" "$(dirname "$0")/jsontestsuite"
