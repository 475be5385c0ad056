#!/bin/sh
# run-short.sh - build the fuzz harnesses with clang + libFuzzer + ASan +
# UBSan in their own build directory (default build-fuzz, or $FUZZ_BUILD)
# and run meson's suite 'fuzz' there: every harness, a fixed number of
# coverage-guided inputs (tests/meson.build: fuzz_runs). Prints meson's
# summary ("Ok:", "Fail:" ...). Exit 77 when clang cannot link libFuzzer.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${FUZZ_BUILD:-$ROOT/build-fuzz}
if ! command -v clang >/dev/null 2>&1; then
    echo "run-short.sh: no clang, skipped" >&2
    exit 77
fi
if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" "$ROOT" -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$B" tests/fuzz_model tests/fuzz_keys tests/fuzz_results \
    tests/fuzz_rowcheck tests/fuzz_framing tests/fuzz_jtext >/dev/null
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    meson test -C "$B" --no-rebuild --suite fuzz --print-errorlogs \
    --num-processes 2
