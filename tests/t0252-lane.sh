#!/bin/sh
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-lane"
