#!/bin/sh
# Validate GET /openapi.json of the real binary with a real OpenAPI 3.1
# linter: Redocly CLI (pinned), installed by this script from npm into a
# project-local folder (build-tools/npm, never global). Exit 77 (skipped)
# only when npm is missing or cannot install from the registry (a machine
# that cannot reach it, or does not trust its certificate): the document
# is linted wherever the linter can be had, and any finding fails.
# Usage: lint.sh PATRIOT_API_BIN SOURCE_ROOT
set -eu
BIN=$1
ROOT=$2
REDOCLY_VERSION=1.34.20
command -v npm >/dev/null 2>&1 || { echo "npm is missing: skipped" >&2; exit 77; }
PREFIX=$ROOT/build-tools/npm
mkdir -p "$PREFIX"
# build and build-asan run this at once: one installs, the other waits.
exec 9>"$PREFIX/.lock"
flock 9
if [ "$(cat "$PREFIX/.redocly-version" 2>/dev/null)" != "$REDOCLY_VERSION" ] ||
   [ ! -x "$PREFIX/node_modules/.bin/redocly" ]; then
    if ! npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION" >&2; then
        echo "npm could not install @redocly/cli@$REDOCLY_VERSION (see above):" \
             "lint skipped" >&2
        exit 77
    fi
    echo "$REDOCLY_VERSION" >"$PREFIX/.redocly-version"
fi
flock -u 9

T=$(mktemp -d /tmp/patriot-lint.XXXXXX)
trap 'kill "$(cat "$T/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$T"' EXIT
cp "$ROOT/keys.example.json" "$T/keys.json"
chmod 600 "$T/keys.json"
"$BIN" --port 0 --quiet --key-file "$T/keys.json" --xml-dir "$T/out" \
    --data-file "$T/data.db" --log-file '' >"$T/port" 2>"$T/err" &
echo $! >"$T/pid"
i=0
while [ ! -s "$T/port" ]; do
    i=$((i + 1))
    [ $i -lt 200 ] || { cat "$T/err" >&2; echo "server did not start" >&2; exit 1; }
    sleep 0.1
done
PORT=$(head -n1 "$T/port")
curl -sf -o "$T/openapi.json" "http://127.0.0.1:$PORT/openapi.json"
grep -q '"openapi": "3.1.0"' "$T/openapi.json"
cd "$T"
"$PREFIX/node_modules/.bin/redocly" lint --config "$ROOT/tests/openapi/redocly.yaml" \
    --format stylish "$T/openapi.json" 2>&1 | tee "$T/lint.out"
status=$(grep -c -E 'error|warning' "$T/lint.out" || true)
# Stylish output names every problem; "valid" alone means none.
if ! grep -q 'Your API description is valid' "$T/lint.out" ||
   grep -q -E '^[[:space:]]*[0-9]+:[0-9]+ +(error|warning)' "$T/lint.out"; then
    echo "openapi.json has lint problems ($status lines)" >&2
    exit 1
fi
echo "openapi.json: Redocly $REDOCLY_VERSION lint (recommended-strict) clean"
