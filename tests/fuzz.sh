#!/bin/sh
# fuzz.sh -- build and run the libFuzzer harnesses of tests/fuzz/
#
#   sh tests/fuzz.sh [NAME...]           fuzz each harness FUZZ_SECONDS (60)
#   sh tests/fuzz.sh --seeds [NAME...]   run each harness once over its seeds
#                                        (regression, a few seconds)
#   sh tests/fuzz.sh --crashes [NAME...] run the reproducers of findings
#                                        not fixed yet, kept in
#                                        tests/fuzz/crashes-found/NAME-*
#                                        (they fail until fixed; once fixed,
#                                        they move to seeds/NAME/)
#   sh tests/fuzz.sh --ci [NAME...]      the seeds, then a fixed-seed run of
#                                        a fixed number of inputs from an empty
#                                        corpus (what CI runs): the same
#                                        commit gives the same result
#   sh tests/fuzz.sh --build [NAME...]   build only
#
# NAME is json, layout, wal, reply, gz, httpbody, otlp, httpd or cluster
# (default: all).
# Environment: FUZZ_SECONDS, FUZZ_JOBS (harnesses run at once, default 1),
# FUZZ_SEED (--ci's libFuzzer -seed, default 1), FUZZ_RUNS_SCALE (--ci's
# inputs per harness are multiplied by it, default 1), FUZZ_CC
# (default clang; it needs libFuzzer: libclang-rt-14-dev). Binaries,
# working corpora, logs and crash artifacts go to tests/fuzz/build/ only:
# lib/ and cmd/ are not touched. `make fuzz` runs this. Exit status: 0
# when every harness ran clean, 1 when one found something (crash, leak,
# timeout, out of memory), 2 on a build error.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 2
FZ=tests/fuzz
B=$FZ/build
# not $CC: that is often gcc, which has no libFuzzer
CC=${FUZZ_CC:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
ALL="json layout wal reply gz httpbody otlp httpd cluster"

# name: lib sources, -max_len, extra read-only corpus dirs
srcs() {
    case $1 in
    json) echo lib/lp_json.c ;;
    layout) echo lib/lp_layout.c lib/lp_json.c lib/lp_time.c ;;
    wal) echo lib/lp_wal.c lib/lp_fs.c lib/lp_notice.c lib/lp_time.c \
             lib/lp_parse.c lib/lp_crc.c ;;
    reply) echo lib/lp_redis.c lib/lp_url.c lib/lp_parse.c lib/lp_time.c \
               lib/lp_dlq.c lib/lp_stream.c lib/lp_buf.c lib/lp_json.c \
               lib/lp_resp.c ;;
    gz) echo lib/lp_gz.c lib/lp_fs.c lib/lp_parse.c lib/lp_time.c ;;
    httpbody) echo lib/lp_httpbody.c lib/lp_event.c lib/lp_json.c \
                  lib/lp_line.c lib/lp_buf.c lib/lp_time.c lib/lp_parse.c ;;
    otlp) echo lib/lp_otlp.c lib/lp_event.c lib/lp_json.c lib/lp_buf.c \
              lib/lp_time.c lib/lp_parse.c ;;
    httpd) echo lib/lp_httpd.c lib/lp_httpbody.c lib/lp_otlp.c \
               lib/lp_httpans.c lib/lp_tokens.c lib/lp_event.c lib/lp_json.c \
               lib/lp_line.c lib/lp_buf.c lib/lp_time.c lib/lp_parse.c \
               lib/lp_notice.c ;;
    cluster) echo lib/lp_cluster.c lib/lp_redis.c lib/lp_url.c lib/lp_parse.c \
                 lib/lp_time.c lib/lp_buf.c lib/lp_resp.c ;;
    esac
}
maxlen() {
    case $1 in
    json) echo 4096 ;; layout) echo 1024 ;; wal) echo 8192 ;;
    reply) echo 8192 ;; gz) echo 16384 ;; httpbody) echo 8192 ;;
    otlp) echo 8192 ;; httpd) echo 8192 ;; cluster) echo 8192 ;;
    esac
}
# lp_json allocates nothing, and jq 1.6 leaks on syntax errors: a leak
# check after every such input (a full LSan scan) would cost 90% of the time
flags() {
    case $1 in
    json) echo -detect_leaks=0 ;;
    esac
}
# link options: fuzz-gz shortens lp_gz.c's read(2)s (see the harness)
ldflags() {
    case $1 in
    gz) echo -Wl,--wrap=read ;;
    httpd) $PKG_CONFIG --libs libmicrohttpd libsystemd 2>/dev/null ||
           echo -lmicrohttpd -lsystemd ;;
    esac
}
# inputs of one --ci run: about 30 s each on this 2-core machine
ci_runs() {
    case $1 in
    json) echo 600000 ;; layout) echo 1000000 ;; wal) echo 50000 ;;
    reply) echo 1500000 ;; gz) echo 5000 ;; httpbody) echo 100000 ;;
    otlp) echo 1000000 ;; httpd) echo 20000 ;; cluster) echo 150000 ;;
    esac
}
extra_dirs() {
    case $1 in
    json|httpbody|otlp) [ -d tests/jsontestsuite/test_parsing ] &&
          echo tests/jsontestsuite/test_parsing ;;
    esac
}

mode=fuzz
case ${1:-} in
--seeds) mode=seeds; shift ;;
--crashes) mode=crashes; shift ;;
--ci) mode=ci; shift ;;
--build) mode=build; shift ;;
-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
-*) echo "fuzz.sh: unknown option '$1'" >&2; exit 64 ;;
esac
names=${*:-$ALL}
for n in $names; do
    case " $ALL " in
    *" $n "*) ;;
    *) echo "fuzz.sh: no harness '$n' (one of: $ALL)" >&2; exit 64 ;;
    esac
done

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz.sh: $CC not found (make fuzz installs it: clang" \
         "libclang-rt-14-dev)" >&2
    exit 2
fi

PKG_CONFIG=${PKG_CONFIG:-pkg-config}
ZCFLAGS=$($PKG_CONFIG --cflags hiredis zlib openssl 2>/dev/null)
LIBS="$($PKG_CONFIG --libs hiredis zlib openssl 2>/dev/null ||
        echo -lhiredis -lz -lssl -lcrypto) -ljq -lm"
CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE
    -DLP_VERSION=\"fuzz\" -Wall -Wextra -Wno-unused-parameter
    -Werror=incompatible-pointer-types -Werror=implicit-function-declaration
    -Ilib"

# Builds $B/fuzz-NAME when a source, a header, this script or the flags
# changed. The temporary name is per process: two runs may build at once.
build() {
    n=$1
    bin=$B/fuzz-$n
    mkdir -p "$B" || return 2
    stamp="$CC $CFLAGS $LIBS"
    if [ -x "$bin" ] && [ -f "$bin.flags" ] &&
       [ "$(cat "$bin.flags")" = "$stamp" ] &&
       [ -z "$(find "$FZ/fuzz-$n.c" "$FZ"/*.h $(srcs "$n") lib/*.h "$0" \
               -newer "$bin" 2>/dev/null)" ]; then
        return 0
    fi
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS $ZCFLAGS -o "$bin.tmp$$" "$FZ/fuzz-$n.c" $(srcs "$n") \
            $(ldflags "$n") $LIBS >"$B/build-$n.log$$" 2>&1; then
        cat "$B/build-$n.log$$" >&2
        echo "fuzz-$n: build failed" >&2
        rm -f "$bin.tmp$$" "$B/build-$n.log$$"
        return 2
    fi
    mv "$B/build-$n.log$$" "$B/build-$n.log"
    mv "$bin.tmp$$" "$bin" && echo "$stamp" >"$bin.flags"
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
COMMON="-rss_limit_mb=2048 -timeout=10 -print_final_stats=1"

# One line from a libFuzzer log: execs, exec/s, coverage.
summary() {
    log=$1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1)
    echo "${execs:-?} execs, ${rate:-?}/s, ${cov:-cov: ?}, ${corp:-corp: ?}"
}

# Which kind of finding a log ends with, and the reproducer it wrote.
verdict() {
    log=$1
    art=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    kind=crash
    grep -q 'ERROR: libFuzzer: timeout' "$log" && kind=timeout
    grep -q 'ERROR: LeakSanitizer' "$log" && kind=leak
    grep -q 'libFuzzer: out-of-memory' "$log" && kind=oom
    grep -q 'FINDING:' "$log" && kind="finding: $(sed -n \
        's/.*FINDING: //p' "$log" | head -1)"
    echo "$kind${art:+ -- reproducer: $art}"
}

run_fuzz() {
    n=$1
    bin=$B/fuzz-$n
    corpus=$B/corpus/$n
    art=$B/artifacts/$n/
    log=$B/fuzz-$n.log
    dict=""
    mkdir -p "$corpus" "$art" "$FZ/seeds/$n"
    [ -f "$FZ/fuzz-$n.dict" ] && dict="-dict=$FZ/fuzz-$n.dict"
    # shellcheck disable=SC2046,SC2086
    "$bin" $COMMON $(flags "$n") $dict -max_len="$(maxlen "$n")" \
        -max_total_time="$FUZZ_SECONDS" -artifact_prefix="$art" \
        "$corpus" "$FZ/seeds/$n" $(extra_dirs "$n") >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "fuzz-$n: ok: $(summary "$log")"
    else
        echo "fuzz-$n: FAILED (exit $rc): $(verdict "$log")"
        echo "fuzz-$n:   $(summary "$log"); log: $log"
        echo "fuzz-$n:   replay: $bin <reproducer>"
    fi
    return $rc
}

# A fuzzing run that gives the same result every time: a fixed -seed, a
# fixed number of inputs (-runs, not -max_total_time), an empty working
# corpus, no reload of it, and no address-space randomisation (libFuzzer
# keys its table of compared values by the code address of the compare, so
# with ASLR which values it keeps, and so what it finds, varies).
run_ci() {
    n=$1
    bin=$B/fuzz-$n
    corpus=$B/ci-corpus/$n
    art=$B/artifacts/ci-$n-
    log=$B/ci-$n.log
    dict=""
    rm -rf "$corpus" && mkdir -p "$corpus" || return 2
    [ -f "$FZ/fuzz-$n.dict" ] && dict="-dict=$FZ/fuzz-$n.dict"
    runs=$(( $(ci_runs "$n") * ${FUZZ_RUNS_SCALE:-1} ))
    # shellcheck disable=SC2046,SC2086
    $NOASLR "$bin" -rss_limit_mb=2048 -timeout=120 -print_final_stats=1 \
        -reload=0 -seed="${FUZZ_SEED:-1}" -runs="$runs" $(flags "$n") \
        $dict -max_len="$(maxlen "$n")" -artifact_prefix="$art" \
        "$corpus" "$FZ/seeds/$n" $(extra_dirs "$n") >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "fuzz-$n: ok: seed ${FUZZ_SEED:-1}: $(summary "$log")"
    else
        echo "fuzz-$n: FAILED (exit $rc): seed ${FUZZ_SEED:-1}: $(verdict "$log")"
        echo "fuzz-$n:   $(summary "$log"); log: $log"
        echo "fuzz-$n:   replay: $bin <reproducer>"
    fi
    return $rc
}

run_seeds() {
    n=$1
    bin=$B/fuzz-$n
    log=$B/seeds-$n.log
    dirs="$FZ/seeds/$n $(extra_dirs "$n")"
    if [ "$mode" = crashes ]; then
        dirs=""
        for f in "$FZ"/crashes-found/"$n"-*; do
            [ -f "$f" ] && dirs="$dirs $f"
        done
        if [ -z "$dirs" ]; then
            echo "fuzz-$n: no reproducers"
            return 0
        fi
        # one process per file: each is expected to fail on its own
        rc=0
        for f in $dirs; do
            if "$bin" -rss_limit_mb=2048 -timeout=10 "$f" >"$log" 2>&1; then
                echo "fuzz-$n: passes: $f"
            else
                echo "fuzz-$n: FAILS: $f: $(verdict "$log")"
                rc=1
            fi
        done
        return $rc
    fi
    # -runs=0: execute the given corpus once, mutate nothing, write nothing
    # shellcheck disable=SC2086
    "$bin" -rss_limit_mb=2048 -timeout=10 -runs=0 $(flags "$n") \
        -artifact_prefix="$B/artifacts/seeds-$n-" $dirs >"$log" 2>&1
    rc=$?
    files=$(sed -n 's/^INFO: *\([0-9]*\) files found in .*/\1/p' "$log" |
            awk '{ s += $1 } END { print s + 0 }')
    if [ $rc -eq 0 ]; then
        echo "fuzz-$n: ok: $files seed inputs"
    else
        echo "fuzz-$n: FAILED (exit $rc): $(verdict "$log"); log: $log"
    fi
    return $rc
}

# build in parallel, two at a time (the machine has 2 cores)
status=0
pids=""
for n in $names; do
    build "$n" &
    pids="$pids $!"
    if [ "$(echo $pids | wc -w)" -ge 2 ]; then
        for p in $pids; do wait "$p" || status=2; done
        pids=""
    fi
done
for p in $pids; do wait "$p" || status=2; done
[ $status -ne 0 ] && exit 2
[ "$mode" = build ] && exit 0
mkdir -p "$B/artifacts"

NOASLR=""
if [ "$mode" = ci ]; then
    if setarch -R true 2>/dev/null; then
        NOASLR="setarch -R"
    else
        echo "fuzz.sh: setarch -R refused: address-space randomisation" \
             "stays on, and --ci results may vary from run to run" >&2
    fi
fi

run_one() {
    case $mode in
    fuzz) run_fuzz "$1" ;;
    ci) run_seeds "$1" && run_ci "$1" ;;
    *) run_seeds "$1" ;;
    esac
}

if [ "$mode" = fuzz ] && [ "$FUZZ_JOBS" -gt 1 ]; then
    # at most FUZZ_JOBS harnesses at once; results printed as each ends
    pids=""
    for n in $names; do
        (run_one "$n" >"$B/result-$n"; echo $? >>"$B/result-$n") &
        pids="$pids $!"
        while [ "$(jobs -p | wc -l)" -ge "$FUZZ_JOBS" ]; do sleep 1; done
    done
    wait
    for n in $names; do
        sed '$d' "$B/result-$n"
        [ "$(tail -1 "$B/result-$n")" = 0 ] || status=1
    done
else
    for n in $names; do
        run_one "$n" || status=1
    done
fi
exit $status
