#!/bin/sh
exec "$(dirname "$0")/unit-json" "$(dirname "$0")/jsontestsuite"
