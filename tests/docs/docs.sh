#!/bin/sh
# GET /docs of the real binary in headless Chromium (Debian's package):
# the page loads with no console message (errors, refused requests: the
# page's Content-Security-Policy refuses anything not from its origin) and
# shows every operation of GET /openapi.json. Keeps a screenshot beside
# the build (docs-page.png). Exit 77 (skipped) when chromium is missing.
# Usage: docs.sh PATRIOT_API_BIN SOURCE_ROOT OUTPUT_DIR
set -eu
BIN=$1
ROOT=$2
OUT=$3
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is missing: skipped" >&2; exit 77; }

T=$(mktemp -d /tmp/patriot-docs.XXXXXX)
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
URL="http://127.0.0.1:$(head -n1 "$T/port")"
curl -sf -o "$T/openapi.json" "$URL/openapi.json"

chrome() {
    # No network but this origin: every other host fails to resolve.
    "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --disable-default-apps \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
        --user-data-dir="$T/profile" --enable-logging=stderr --v=0 \
        --virtual-time-budget=5000 "$@"
}
chrome --dump-dom "$URL/docs" >"$T/dom.html" 2>"$T/chrome.err" || {
    cat "$T/chrome.err" >&2; echo "chromium failed" >&2; exit 1; }

fail=0
# Console messages (script errors, refused requests) are logged as CONSOLE.
if grep -E 'CONSOLE|Uncaught|Refused to' "$T/chrome.err" >&2; then
    echo "FAIL: console messages while loading /docs" >&2
    fail=1
fi
ops=$(sed -n 's/^ *"operationId": "\([^"]*\)".*/\1/p' "$T/openapi.json")
n=$(printf '%s\n' "$ops" | grep -c .)
[ "$n" -ge 20 ] || { echo "FAIL: only $n operations in openapi.json" >&2; fail=1; }
grep -q "data-ready=\"$n\"" "$T/dom.html" || {
    echo "FAIL: the page did not render $n operations" \
         "($(grep -o 'data-ready="[^"]*"' "$T/dom.html" || echo none))" >&2
    fail=1; }
for op in $ops; do
    grep -q "id=\"op-$op\"" "$T/dom.html" ||
        { echo "FAIL: operation $op is not on the page" >&2; fail=1; }
done
# Each has its try-it button.
b=$(grep -o '<button type="button">Send ' "$T/dom.html" | wc -l)
[ "$b" -eq "$n" ] || { echo "FAIL: $b try-it buttons for $n operations" >&2; fail=1; }
[ $fail -eq 0 ] || exit 1

rm -rf "$T/profile"
chrome --screenshot="$OUT/docs-page.png" --window-size=1280,1400 \
    --hide-scrollbars "$URL/docs" >/dev/null 2>"$T/shot.err" ||
    { cat "$T/shot.err" >&2; exit 1; }
size=$(wc -c <"$OUT/docs-page.png")
[ "$size" -gt 20000 ] || { echo "FAIL: screenshot of $size bytes" >&2; exit 1; }
echo "/docs: $n operations rendered, no console message; $OUT/docs-page.png"
