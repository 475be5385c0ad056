#!/bin/sh
# run-one.sh BIN SEED_DIR RUNS - run one fuzz harness for RUNS inputs.
# With libFuzzer, new inputs go to a temporary directory (never into the
# checked-in seeds) and a crash is kept as BIN-crash-<sha1> beside BIN; the
# replay driver (compilers without libFuzzer) keeps ./replay-crash.bin in
# the temporary directory, and prints its path.
set -u
bin=$1
seeds=$2
runs=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/patriot-fuzz.XXXXXX") || exit 1
cd "$work" || exit 1
"$bin" -runs="$runs" -seed=1 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$bin-" "$work" "$seeds"
rc=$?
if [ -f replay-crash.bin ]; then
    cp replay-crash.bin "$bin-replay-crash.bin"
    echo "crash input kept as $bin-replay-crash.bin" >&2
fi
cd / && rm -rf "$work"
exit $rc
