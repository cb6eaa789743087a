#!/bin/sh
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-layout" "$(dirname "$0")/jsontestsuite"
