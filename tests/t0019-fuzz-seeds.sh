#!/bin/sh
# t0019-fuzz-seeds.sh -- every libFuzzer harness of tests/fuzz/ once over
# its seeds: the inputs of past findings and the hand-written cases, as a
# regression (make fuzz does the fuzzing). Skipped without clang's libFuzzer.
. "$(dirname "$0")/lib.sh"

CC=${FUZZ_CC:-clang}
names="json layout wal reply gz httpbody otlp httpd cluster"
probe() {
    printf '%s\n' '#include <stddef.h>' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' >probe.c &&
    "$CC" -fsanitize=fuzzer,address,undefined -o probe probe.c 2>/dev/null
}

if [ -n "${LP_VALGRIND:-}" ]; then
    for n in $names; do
        test_skip "fuzz-$n over its seeds" 'sanitizer builds do not run under valgrind'
    done
elif ! command -v "$CC" >/dev/null 2>&1 || ! probe; then
    for n in $names; do
        test_skip "fuzz-$n over its seeds" "$CC with libFuzzer is not installed (make fuzz installs clang libclang-rt-14-dev)"
    done
else
    test_expect_success 'the harnesses build' '
        sh "$TOP/tests/fuzz.sh" --build
    '
    for n in $names; do
        test_expect_success "fuzz-$n over its seeds" "
            sh \"\$TOP/tests/fuzz.sh\" --seeds $n >out &&
            cat out &&
            grep -q '^fuzz-$n: ok: [1-9][0-9]* seed inputs\$' out
        "
    done
fi
test_done
