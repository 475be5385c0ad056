#!/bin/sh
# The patriot-api benchmark (issue 3): 10,000 clients of 8 zones and 4 users
# under one key; GET /clients, PUT /clients/zones and PATCH /clients with wrk
# at 32 connections; each figure beside its ceiling measured in the same run:
# bench/ceiling.c (a minimal libmicrohttpd server, same body size) for reads,
# raw 512-byte pwrite+fdatasync per second on the same disk for writes.
# Peak resident memory of the server (VmHWM) and CPU per request.
# Usage: bench/run.sh [SECONDS per run, default 10] [CLIENTS, default 10000]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
N=${2:-10000}
cd "$ROOT"
sh scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
B=$ROOT/build
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/patriot-bench.XXXXXX")
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$W"' EXIT
cp keys.example.json "$W/keys.json"
chmod 600 "$W/keys.json"
export BENCH_CLIENTS=$N
# wrk at 32 connections under one key is far over the default rate limits.
export RATE_LIMIT_KEY=0 RATE_LIMIT_IP=0 AUTH_FAIL_LIMIT=0

echo "seeding $N clients..." >&2
t0=$(date +%s.%N)
"$B/bench/seed" "$W/keys.json" Alarm24 "$W/data.db" "$N" 2>/dev/null
t1=$(date +%s.%N)

start_api() {
    "$B/patriot-api" --port 0 --quiet --key-file "$W/keys.json" \
        --xml-dir "$W/out" --data-file "$W/data.db" \
        --log-file "$W/api.log" >"$W/port" 2>"$W/api.err" &
    echo $! >"$W/api.pid"
    while [ ! -s "$W/port" ]; do sleep 0.1; done
    PORT=$(cat "$W/port")
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk_run NAME SCRIPT PID: prints "req/s p99 cpu_us_per_req"
wrk_run() {
    c0=$(cpu_ticks "$3")
    wrk -t1 -c32 -d"${SECS}s" --latency -s "bench/$2" \
        "http://127.0.0.1:$PORT" >"$W/$1.wrk"
    c1=$(cpu_ticks "$3")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$W/$1.wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$W/$1.wrk")
    reqs=$(awk '/requests in/ {print $1}' "$W/$1.wrk")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$W/$1.wrk")
    hz=$(getconf CLK_TCK)
    cpu=$(echo "($c1 - $c0) * 1000000 / $hz / $reqs" | bc -l)
    printf '%s %s %.1f %s\n' "$rps" "$p99" "$cpu" "${non2xx:-0}"
}

t2=$(date +%s.%N)
start_api
t3=$(date +%s.%N)
API=$(cat "$W/api.pid")
BODY=$(curl -s -H 'Authorization: Bearer secure-api-key' \
    -H 'X-Client-Id: 1' "http://127.0.0.1:$PORT/clients" | wc -c)

set -- $(wrk_run get get.lua "$API");       get_rps=$1 get_p99=$2 get_cpu=$3 get_bad=$4
set -- $(wrk_run zone put_zone.lua "$API"); zone_rps=$1 zone_p99=$2 zone_cpu=$3 zone_bad=$4
set -- $(wrk_run patch patch.lua "$API");   patch_rps=$1 patch_p99=$2 patch_cpu=$3 patch_bad=$4
rss=$(awk '/VmHWM/ {print $2}' "/proc/$API/status")
kill "$API"; wait "$API" 2>/dev/null || true

"$B/bench/ceiling" "$BODY" >"$W/cport" & echo $! >"$W/ceil.pid"
while [ ! -s "$W/cport" ]; do sleep 0.1; done
PORT=$(cat "$W/cport")
set -- $(wrk_run ceiling get.lua "$(cat "$W/ceil.pid")"); ceil_rps=$1 ceil_p99=$2 ceil_cpu=$3
kill "$(cat "$W/ceil.pid")"
fsync=$("$B/bench/fsync_ceiling" "$W" 3)

pct() { echo "$1 * 100 / $2" | bc -l | xargs printf '%.0f'; }
cat <<EOT
| what | req/s | p99 | server CPU/req | vs ceiling | non-2xx |
|---|---|---|---|---|---|
| GET /clients ($BODY-byte body) | $get_rps | $get_p99 | ${get_cpu} us | $(pct "$get_rps" "$ceil_rps")% of $ceil_rps | $get_bad |
| PUT /clients/zones | $zone_rps | $zone_p99 | ${zone_cpu} us | $(pct "$zone_rps" "$fsync")% of $fsync fsync/s | $zone_bad |
| PATCH /clients | $patch_rps | $patch_p99 | ${patch_cpu} us | $(pct "$patch_rps" "$fsync")% of $fsync fsync/s | $patch_bad |
| ceiling: minimal MHD, same body | $ceil_rps | $ceil_p99 | ${ceil_cpu} us | | |

peak resident memory of patriot-api (VmHWM): $((rss / 1024)) MB ($rss kB);
seed of $N clients: $(echo "$t1 - $t0" | bc) s; start-up with reconcile of $N outbox files: $(echo "$t3 - $t2" | bc) s
EOT
