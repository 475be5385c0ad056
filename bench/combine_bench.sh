#!/bin/sh
# combine_bench.sh - patriot-combine on 10,000 and 100,000 outbox files
# (SMB off), wall time and peak RSS, beside `cat` of the same files as the
# ceiling; then, if smbd is installed, the same with the upload to a local
# Samba server (tests/smb/samba.sh). Also prints the CPU time (user, sys):
# on a loaded machine compare that, the wall time needs an idle one.
#   usage: bench/combine_bench.sh [BUILD_DIR] [COUNTS...]
#   e.g.   bench/combine_bench.sh build 10000 100000
# Files are ~2.7 KB Rows like patriot_xml writes, in 20 key folders.
set -eu
BUILD=${1:-build}
shift || true
COUNTS=${*:-10000 100000}
BIN=$(cd "$BUILD" && pwd)/patriot-combine
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/cbench.XXXXXX)
trap 'rm -rf "$W"' EXIT

gen() {     # gen DIR N
    python3 - "$1" "$2" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
zones = "".join("    <Zone>\n      <Zone_No>%d</Zone_No>\n      <Zone_area>Sone %d stue og gang</Zone_area>\n      <ModuleNo>0</ModuleNo>\n    </Zone>\n" % (z, z) for z in range(1, 13))
users = "".join("    <User>\n      <User_Name>Bruker nummer %d Ås</User_Name>\n      <MobileNo>+4712345678</MobileNo>\n      <Email>user%d@example.com</Email>\n      <UserNo>%d</UserNo>\n      <CallOrder>%d</CallOrder>\n      <Type>U</Type>\n    </User>\n" % (u, u, u, u) for u in range(1, 6))
for i in range(n):
    key = "Key%02d" % (i % 20)
    os.makedirs(os.path.join(d, key), exist_ok=True)
    with open(os.path.join(d, key, "%d.xml" % i), "w") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<Clients>\n  <Row>\n'
                '    <__id>%dBASE%02d</__id>\n    <Name>Ola Nordmann %d</Name>\n'
                '    <Location>Produksjonsveien 13</Location>\n'
                '    <SpecRequest>Dette skal gjøres ved alarm på denne kunden.</SpecRequest>\n'
                '%s%s  </Row>\n</Clients>\n' % (i, i % 20, i, zones, users))
PY
}

measure() {     # measure LABEL CMD... -> "LABEL wall_s maxrss_MB user+sys"
    label=$1; shift
    /usr/bin/time -f "%e %M %U %S" -o "$W/time" "$@" > /dev/null \
        2> "$W/err" || { cat "$W/err" >&2; echo "$label FAILED"; return 0; }
    set -- $(cat "$W/time")
    printf '%-34s %8s s %8s MB   (CPU %s user + %s sys)\n' "$label" "$1" \
        "$(( $2 / 1024 ))" "$3" "$4"
}

echo "patriot-combine $("$BIN" --version | cut -d' ' -f2), $(nproc) CPU, $(uname -r)"
for n in $COUNTS; do
    D=$W/n$n
    mkdir -p "$D"
    gen "$D/out" "$n"
    size=$(du -sm "$D/out" | cut -f1)
    echo "-- $n files ($size MB)"
    # warm the page cache the same way for both
    find "$D/out" -name '*.xml' -print0 | xargs -0 cat > /dev/null
    measure "cat (ceiling)" sh -c "find '$D/out' -name '*.xml' -print0 | xargs -0 cat > '$D/cat.out'"
    rm -f "$D/cat.out"
    env XML_DIR="$D/out" READY_DIR="$D/ready" COMBINE_LOG_FILE="$D/log" \
        ERROR_LOG_FILE="$D/err" CLIENT_STATE_FILE="$D/state.json" \
        MAX_CLIENTS_PER_RUN=0 SMB_ENABLED=false \
        sh -c "cp -al '$D/out' '$D/out.copy'"
    measure "patriot-combine --from-dir" env XML_DIR="$D/out" READY_DIR="$D/ready" \
        COMBINE_LOG_FILE="$D/log" ERROR_LOG_FILE="$D/err" \
        CLIENT_STATE_FILE="$D/state.json" MAX_CLIENTS_PER_RUN=0 SMB_ENABLED=false \
        "$BIN" --once --from-dir
    rows=$(grep -c '<Row>' "$D/ready/clients.xml" || true)
    echo "   clients.xml: $rows Rows, $(du -m "$D/ready/clients.xml" | cut -f1) MB"
    xmllint --noout --stream "$D/ready/clients.xml" && echo "   xmllint: well-formed"
    if command -v smbd > /dev/null 2>&1; then
        set -- $(sh "$SRC/tests/smb/samba.sh" start)
        SD=$1 SPORT=$2
        printf 'PW\n' > "$W/pw"; chmod 600 "$W/pw"
        rm -rf "$D/out" "$D/ready" "$D/state.json"
        mv "$D/out.copy" "$D/out"
        measure "patriot-combine --from-dir + SMB" env HOME="$SD/home" XML_DIR="$D/out" \
            READY_DIR="$D/ready" COMBINE_LOG_FILE="$D/log" ERROR_LOG_FILE="$D/err" \
            CLIENT_STATE_FILE="$D/state.json" MAX_CLIENTS_PER_RUN=0 \
            SMB_ENABLED=true SMB_SERVER_IP=127.0.0.1 SMB_PORT="$SPORT" \
            SMB_SHARE_NAME=share SMB_USERNAME=smbtest SMB_PASSWORD_FILE="$W/pw" \
            "$BIN" --once --from-dir
        cmp "$D/ready/clients.xml" "$SD/share/clients.xml" && echo "   share copy identical"
        sh "$SRC/tests/smb/samba.sh" stop "$SD"
    fi
    rm -rf "$D"
done
