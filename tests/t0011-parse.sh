#!/bin/sh
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-parse" "$(dirname "$0")/jsontestsuite"
