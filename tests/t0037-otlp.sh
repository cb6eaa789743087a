#!/bin/sh
# t0037-otlp.sh -- lp_otlp unit tests: OTLP/HTTP JSON log records into events
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-otlp"
