#!/bin/sh
# t0312-httpd-unit.sh -- lp_httpd unit tests: routes, suspend/resume, quiesce
exec ${LP_VALGRIND:-} "$(dirname "$0")/unit-httpd"
