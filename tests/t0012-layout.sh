#!/bin/sh
exec "$(dirname "$0")/unit-layout" "$(dirname "$0")/jsontestsuite"
