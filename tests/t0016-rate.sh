#!/bin/sh
# t0016-rate.sh -- lp_rate unit tests
exec "$(dirname "$0")/unit-rate"
