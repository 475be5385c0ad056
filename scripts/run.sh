#!/bin/sh
# Installs what is missing, builds patriot-api and runs it on 127.0.0.1:8081
# with the example keys (keys.example.json), its data under ./run/.
# Usage: scripts/run.sh [patriot-api flags...]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
sh scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
mkdir -p run
[ -f run/keys.json ] || install -m 0600 keys.example.json run/keys.json
cd run
echo "patriot-api on http://127.0.0.1:8081 - try:" >&2
echo "  curl -H 'Authorization: Bearer secure-api-key' -H 'X-Client-Id: 9998' http://127.0.0.1:8081/clients" >&2
exec ../build/patriot-api --key-file keys.json --xml-dir out/clients \
    --data-file data.db --log-file api_requests.log "$@"
