#!/bin/sh
# no-secrets.sh API_BIN COMBINE_BIN - no key, key hash or password in any
# log line. Starts patriot-api (one plain key, one key_sha256 key) and
# drives every kind of request with curl: good keys, wrong keys, a key in
# the wrong header, in the URL, in the body, a key with a control character,
# bad bodies; then patriot-combine --once with SMB on against a closed port
# and a password file. Every log (request log, stderr of both, combine log,
# import errors log) is then searched for every secret, its SHA-256 hex, and
# the base64 of the bearer header. Exit 0 clean, 1 a secret leaked.
set -u
API=$1
COMBINE=$2
KEY_A=nosecret-plain-key-6a1f0c
KEY_H=nosecret-hashed-key-d3b9e2
WRONG=nosecret-wrong-key-77c1aa
PASS=nosecret-smb-password-5e0d
H_A=$(printf %s "$KEY_A" | sha256sum | cut -d' ' -f1)
H_H=$(printf %s "$KEY_H" | sha256sum | cut -d' ' -f1)
H_W=$(printf %s "$WRONG" | sha256sum | cut -d' ' -f1)
D=$(mktemp -d "${TMPDIR:-/tmp}/patriot-nosecret.XXXXXX")
trap 'kill "$pid" 2>/dev/null; rm -rf "$D"' EXIT
cat >"$D/keys.json" <<JSON
[{"key_name": "Plain", "key": "$KEY_A", "port": "BASE11",
  "installer_name": "I", "installer_email": "i@x"},
 {"key_name": "Hashed", "key_sha256": "$H_H", "port": "BASE22",
  "installer_name": "J", "installer_email": "j@x"}]
JSON
chmod 600 "$D/keys.json"
"$API" --key-file "$D/keys.json" --xml-dir "$D/out" --data-file "$D/data.db" \
    --log-file "$D/api_requests.log" --port 0 >"$D/port" 2>"$D/api-stderr.log" &
pid=$!
i=0
while [ ! -s "$D/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
P=$(head -1 "$D/port")
[ -n "$P" ] || { echo "patriot-api did not start"; cat "$D/api-stderr.log"; exit 1; }
U="http://127.0.0.1:$P"
c() { curl -s -o /dev/null -w '%{http_code}\n' "$@" >>"$D/codes"; }
for k in "$KEY_A" "$KEY_H" "$WRONG" "$H_A" "$H_H"; do
    c -X PUT "$U/clients" -H "Authorization: Bearer $k" \
        -d '{"client_id": 9998, "info": {"Name": "x"}}'
    c "$U/clients" -H "Authorization: Bearer $k" -H 'X-Client-Id: 9998'
    c "$U/clients?key=$k" -H "Authorization: Bearer $k" -H "X-Client-Id: $k"
    c -X PUT "$U/clients" -H "Authorization: Bearer $k" \
        -d "{\"client_id\": \"$k\", \"info\": {\"Name\": 5, \"$k\": 1}}"
    c -X PUT "$U/clients" -H "Authorization: Basic $k" -d '{}'
    c -X PUT "$U/clients" -H "Authorization: $k" -d '{}'
    c -X PUT "$U/clients" -H "Authorization: Bearer $k" \
        -H "Authorization: Bearer $k" -d '{}'
    c -X PATCH "$U/clients" -H "Authorization: Bearer $k" -d "$k"
    c -X DELETE "$U/clients/zones" -H "Authorization: Bearer  $k " \
        -d '{"client_id": 1, "zone_id": 1}'
    c "$U/clients/import?state=$k" -H "Authorization: Bearer $k"
done
kill -HUP "$pid"
sleep 0.3
kill "$pid"
wait "$pid" 2>/dev/null
printf %s "$PASS" >"$D/smb.pass"
chmod 600 "$D/smb.pass"
cat >"$D/combine.conf" <<CONF
DATA_FILE=$D/data.db
XML_DIR=$D/out
READY_DIR=$D/ready
COMBINE_LOG_FILE=$D/combine.log
ERROR_LOG_FILE=$D/import_errors.log
CLIENT_STATE_FILE=$D/client_state.json
SMB_ENABLED=true
SMB_SERVER_IP=127.0.0.1
SMB_PORT=9
SMB_SHARE_NAME=patriot
SMB_USERNAME=nosecret-user
SMB_PASSWORD_FILE=$D/smb.pass
SMB_TIMEOUT_MS=2000
CONF
HOME=$D "$COMBINE" --config "$D/combine.conf" --once >"$D/combine-stderr.log" 2>&1
HOME=$D "$COMBINE" --config "$D/combine.conf" status >>"$D/combine-stderr.log" 2>&1
B64_A=$(printf %s "$KEY_A" | base64)
lines=$(cat "$D"/*.log 2>/dev/null | wc -l)
bad=0
for s in "$KEY_A" "$KEY_H" "$WRONG" "$PASS" "$H_A" "$H_H" "$H_W" "$B64_A"; do
    if grep -r -F -q -- "$s" "$D"/*.log; then
        echo "LEAK: a secret appears in the logs:"
        grep -r -F -n -- "$s" "$D"/*.log | head -5
        bad=1
    fi
done
n=$(wc -l <"$D/codes")
if [ "$lines" -lt "$n" ]; then
    echo "too few log lines ($lines for $n requests): is the log on?"
    bad=1
fi
echo "no-secrets: $n requests, $lines log lines searched for 8 secrets: $([ $bad = 0 ] && echo clean || echo LEAKED)"
exit $bad
