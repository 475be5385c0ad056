#!/bin/sh
# bench/fuzz.sh [SECONDS] - the long fuzzing campaign: every harness of
# tests/fuzz/ under libFuzzer + ASan + UBSan (clang, build dir build-fuzz or
# $FUZZ_BUILD, as tests/fuzz/run-short.sh makes it) for SECONDS each
# (default 300). The corpus grows in $FUZZ_BUILD/fuzz-corpus/<harness>
# (seeded from tests/fuzz/corpus, kept between campaigns); crashes are kept
# as $FUZZ_BUILD/fuzz-crash-<harness>-*. Prints per harness the executions,
# exec/s, final coverage (libFuzzer's cov: and ft:) and the verdict, then
# the total. Exit 1 if any harness crashed, leaked or hit UB. PARALLEL=1
# runs the harnesses at the same time; HARNESSES="framing ..." runs only
# those named.
set -eu
SECS=${1:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${FUZZ_BUILD:-$ROOT/build-fuzz}
if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" "$ROOT" -Db_sanitize=address,undefined \
        -Db_lundef=false -Dwerror=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$B" tests/fuzz_model tests/fuzz_keys tests/fuzz_results \
    tests/fuzz_rowcheck tests/fuzz_framing tests/fuzz_jtext >/dev/null
total=0
bad=0
printf '%-10s %12s %8s %6s %7s  %s\n' harness execs exec/s cov ft verdict
run_one() {     # $1 = harness; writes $B/fuzz-$1.log and $B/fuzz-$1.rc
    corp="$B/fuzz-corpus/$1"
    mkdir -p "$corp"
    set +e
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$B/tests/fuzz_$1" -max_total_time="$SECS" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$B/fuzz-crash-$1-" "$corp" \
        "$ROOT/tests/fuzz/corpus/$1" >"$B/fuzz-$1.log" 2>&1
    echo $? >"$B/fuzz-$1.rc"
    set -e
}
# PARALLEL=1: every harness at once (they share the cores), else in turn.
for h in ${HARNESSES:-model keys results rowcheck framing jtext}; do
    if [ "${PARALLEL:-0}" = 1 ]; then
        run_one "$h" &
    else
        run_one "$h"
    fi
done
wait
for h in ${HARNESSES:-model keys results rowcheck framing jtext}; do
    log="$B/fuzz-$h.log"
    rc=$(cat "$B/fuzz-$h.rc")
    execs=$(awk -F': *' '/^stat::number_of_executed_units/ {print $NF}' "$log")
    rate=$(awk -F': *' '/^stat::average_exec_per_sec/ {print $NF}' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    verdict=ok
    if [ "$rc" -ne 0 ]; then
        verdict="FAILED (rc $rc, see $log)"
        bad=1
    fi
    total=$((total + ${execs:-0}))
    printf '%-10s %12s %8s %6s %7s  %s\n' "$h" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$verdict"
done
echo "total executions: $total"
exit $bad
