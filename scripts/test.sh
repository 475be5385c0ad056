#!/bin/sh
# Installs what is missing, builds patriot-api twice (normal, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test in both.
# Usage: scripts/test.sh            (from anywhere)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
sh scripts/install-deps.sh

total_ok=0
total_fail=0
run_suite() {   # $1 = build dir, rest = meson setup options
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
    log="$dir/test-summary.txt"
    set +e
    meson test -C "$dir" --print-errorlogs --num-processes 2 >"$log" 2>&1
    rc=$?
    set -e
    sed -n '/^Ok:/,$p' "$log"
    grep -E '^ *[0-9]+/[0-9]+ ' "$log" || true
    ok=$(awk '/^Ok:/ {print $2}' "$log")
    fail=$(awk '/^Fail:/ {print $2}' "$log")
    timeout=$(awk '/^Timeout:/ {print $2}' "$log")
    total_ok=$((total_ok + ${ok:-0}))
    total_fail=$((total_fail + ${fail:-0} + ${timeout:-0}))
    if [ "$rc" -ne 0 ]; then
        cat "$log"
        echo "tests in $dir failed" >&2
    fi
    return 0
}

echo "== build and test (release build)"
run_suite build
echo "== build and test (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false

# ---- issue 7: coverage-guided fuzzing, clang + libFuzzer + ASan + UBSan
# (tests/fuzz/run-short.sh builds build-fuzz and runs meson's suite 'fuzz')
echo "== fuzz (clang, libFuzzer + ASan + UBSan)"
mkdir -p build-fuzz
set +e
sh tests/fuzz/run-short.sh >build-fuzz/fuzz-summary.txt 2>&1
frc=$?
set -e
if [ "$frc" -eq 77 ]; then
    echo "fuzz: skipped (no clang)"
else
    sed -n '/^Ok:/,$p' build-fuzz/fuzz-summary.txt
    grep -E '^ *[0-9]+/[0-9]+ ' build-fuzz/fuzz-summary.txt || true
    fok=$(awk '/^Ok:/ {print $2}' build-fuzz/fuzz-summary.txt)
    ffail=$(awk '/^Fail:/ {print $2}' build-fuzz/fuzz-summary.txt)
    ftimeout=$(awk '/^Timeout:/ {print $2}' build-fuzz/fuzz-summary.txt)
    total_ok=$((total_ok + ${fok:-0}))
    total_fail=$((total_fail + ${ffail:-0} + ${ftimeout:-0}))
    if [ "$frc" -ne 0 ]; then
        [ -n "$fok$ffail" ] || total_fail=$((total_fail + 1))
        cat build-fuzz/fuzz-summary.txt
        echo "fuzzing failed" >&2
    fi
fi

echo "tests: $total_ok passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_ok" -gt 0 ]
