#!/bin/sh
# t0023-send.sh -- lp_send (the send engine), lp_resp, bound metrics: unit
# tests, over a Redis of their own
. "$(dirname "$0")/lib.sh"

start_redis
${LP_VALGRIND:-} "$TOP/tests/unit-send"
