#!/bin/sh
exec "$(dirname "$0")/unit-parse" "$(dirname "$0")/jsontestsuite"
