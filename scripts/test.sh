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

echo "tests: $total_ok passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$total_ok" -gt 0 ]
