#!/bin/sh
# t0025-dlq.sh -- lp_dlq unit tests: the dead letter record, encoded as
# send and drain write it, decoded, and moved, retried and purged in a
# Redis of its own
. "$(dirname "$0")/lib.sh"
start_redis
# not exec: lib.sh's exit trap stops the server
${LP_VALGRIND:-} "$TOP/tests/unit-dlq"
