#!/bin/sh
LP_NO_RSS=${LP_VALGRIND:+1} exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-follow"
