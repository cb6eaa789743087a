#!/bin/sh
exec "$(dirname "$0")/unit-line" "$(dirname "$0")/jsontestsuite"
