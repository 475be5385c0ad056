#!/bin/bash
# Slow clients against patriot-api (issue 7, "Hostile HTTP"): GET /clients
# with wrk (1 thread, 32 connections) on its own, then again while SLOW
# connections (default 200) trickle one header byte a second each (bash's
# /dev/tcp, no other tool). Prints req/s, p99 and server CPU per request of
# both runs, and how many slow connections were still held open by the
# server at the end of the second run (they are cut HOLD seconds after they
# connect: HEADER_TIMEOUT).
# Usage: bench/slowloris.sh [SECONDS per run, default 10] [SLOW, default 200]
# Rate limits are switched off here (RATE_LIMIT_KEY=0, RATE_LIMIT_IP=0): the
# point is the cost of slow connections, not the limits.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
SLOW=${2:-200}
HOLD=$((SECS + 20))
BUILD=${BUILD:-build}
cd "$ROOT"
sh scripts/install-deps.sh
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
[ -n "${NO_BUILD:-}" ] || ninja -C "$BUILD" patriot-api bench/seed >/dev/null
B=$ROOT/$BUILD
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/patriot-slowloris.XXXXXX")
API=""
TRICKLER=""
cleanup() {
    [ -n "$TRICKLER" ] && kill "$TRICKLER" 2>/dev/null
    [ -n "$API" ] && kill "$API" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
cp keys.example.json "$W/keys.json"
chmod 600 "$W/keys.json"
"$B/bench/seed" "$W/keys.json" Alarm24 "$W/data.db" 1000 2>/dev/null
export BENCH_CLIENTS=1000

MAX_CONNECTIONS=240 MAX_CONNECTIONS_PER_IP=0 HEADER_TIMEOUT=$HOLD \
RATE_LIMIT_KEY=0 RATE_LIMIT_IP=0 \
    "$B/patriot-api" --port 0 --quiet --key-file "$W/keys.json" \
    --xml-dir "$W/out" --data-file "$W/data.db" --log-file "$W/api.log" \
    >"$W/port" 2>"$W/api.err" &
API=$!
while [ ! -s "$W/port" ]; do sleep 0.1; done
PORT=$(cat "$W/port")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$API/stat"; }
# wrk_run NAME: prints "req/s p99 cpu_us_per_req non2xx"
wrk_run() {
    c0=$(cpu_ticks)
    wrk -t1 -c32 -d"${SECS}s" --latency -s bench/get.lua \
        "http://127.0.0.1:$PORT" >"$W/$1.wrk"
    c1=$(cpu_ticks)
    rps=$(awk '/^Requests\/sec/ {print $2}' "$W/$1.wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$W/$1.wrk")
    reqs=$(awk '/requests in/ {print $1}' "$W/$1.wrk")
    bad=$(awk '/Non-2xx/ {print $NF}' "$W/$1.wrk")
    hz=$(getconf CLK_TCK)
    cpu=$(echo "($c1 - $c0) * 1000000 / $hz / $reqs" | bc -l)
    printf '%s %s %.1f %s\n' "$rps" "$p99" "$cpu" "${bad:-0}"
}

set -- $(wrk_run alone);  a_rps=$1 a_p99=$2 a_cpu=$3 a_bad=$4

sleep 1
base_fds=$(ls "/proc/$API/fd" | wc -l)
# SLOW connections, each sent part of a request line, then a byte a second.
fds=()
for ((i = 0; i < SLOW; i++)); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET /clients HTTP/1.1\r\nX-Slow: ' >&"$fd"
    fds+=("$fd")
done
(
    while :; do
        for fd in "${fds[@]}"; do printf 'a' >&"$fd"; done 2>/dev/null
        sleep 1
    done
) &
TRICKLER=$!
sleep 1
set -- $(wrk_run slow);   s_rps=$1 s_p99=$2 s_cpu=$3 s_bad=$4
sleep 1     # wrk's connections close
open=$(( $(ls "/proc/$API/fd" | wc -l) - base_fds ))
kill "$TRICKLER"; TRICKLER=""
for fd in "${fds[@]}"; do exec {fd}>&-; done

cat <<EOT
| GET /clients, wrk -t1 -c32 ${SECS}s | req/s | p99 | server CPU/req | non-2xx |
|---|---|---|---|---|
| alone | $a_rps | $a_p99 | ${a_cpu} us | $a_bad |
| with $SLOW slow connections | $s_rps | $s_p99 | ${s_cpu} us | $s_bad |

slow connections still held by the server after the run: $open of $SLOW
EOT
