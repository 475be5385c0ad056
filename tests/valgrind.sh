#!/bin/sh
# tests/valgrind.sh - the unit, combine, fuzz-replay and black-box suites
# under Valgrind memcheck (a plain build in build-valgrind, no sanitizers).
# Any memcheck error or definite leak fails the test (--error-exitcode).
# Not part of scripts/test.sh (it takes several minutes); results in
# docs/RELIABILITY.md.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${VALGRIND_BUILD:-$ROOT/build-valgrind}
command -v valgrind >/dev/null || { echo "no valgrind" >&2; exit 77; }
[ -f "$B/build.ninja" ] || meson setup "$B" "$ROOT" >/dev/null
ninja -C "$B" >/dev/null
VG="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-origins=yes --quiet --suppressions=$ROOT/tests/valgrind.supp"
meson test -C "$B" --no-rebuild --print-errorlogs --num-processes 2 \
    --timeout-multiplier 10 --suite unit --suite combine --suite fuzz \
    --suite blackbox --wrap="$VG"
