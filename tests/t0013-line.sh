#!/bin/sh
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-line" "$(dirname "$0")/jsontestsuite"
