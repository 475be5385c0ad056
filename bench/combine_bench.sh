#!/bin/sh
# combine_bench.sh - patriot-combine on 10,000 and 100,000 clients, wall
# time and peak RSS, beside `cat` of the same files as the ceiling:
#   --from-dir, SMB off: outbox files like patriot_xml writes (~2.7 KB, 20
#     key folders); then, if smbd is installed, the same with the upload to
#     a local Samba server (tests/smb/samba.sh);
#   DB mode (the API's outbox + SQLite, the product's mode), SMB off:
#     bench/seed fills a database with N clients under one key, a first run
#     with MAX_CLIENTS_PER_RUN=1 writes their outbox files (reconcile), then
#     the measured run ships them all (MAX_CLIENTS_PER_RUN=0).
# Every run gets files of its own, written and synced before the run (no
# hard links: removing a shipped file frees its blocks, as in production),
# page cache warmed with a `cat` first. Also prints the CPU time (user,
# sys): on a loaded machine compare that, the wall time needs an idle one.
# BENCH_LINKS=1: each outbox file gets a second link kept outside XML_DIR,
# so that removing a shipped file frees no blocks (what a file system
# without online discard costs; the benchmark VM mounts ext4 with discard,
# where each freed file waits for a discard request).
#   usage: bench/combine_bench.sh [BUILD_DIR] [COUNTS...]
#   e.g.   bench/combine_bench.sh build 10000 100000
#   BENCH_DB=0: skip DB mode (seeding 100,000 clients takes ~80 s)
#   BENCH_FLOOR=0: skip the floor (BUILD/bench/fsfloor: the renames and
#     unlinks of N files alone, on the same disk, before each count)
#   BENCH_SMB=0: skip the SMB runs; BENCH_LINKS=1: see above
#   BENCH_DIR=DIR: the runs' files under DIR (default /tmp), e.g. on an ext4
#     with a journal and no online discard, as Debian makes it, mounted from
#     a file (as root): truncate -s 4G /var/tmp/ext4.img;
#     mkfs.ext4 -q /var/tmp/ext4.img; mkdir -p /mnt/cb;
#     mount -o loop /var/tmp/ext4.img /mnt/cb; BENCH_DIR=/mnt/cb ...
set -eu
BUILD=${1:-build}
shift || true
COUNTS=${*:-10000 100000}
BIN=$(cd "$BUILD" && pwd)/patriot-combine
SEED=$(cd "$BUILD" && pwd)/bench/seed
FLOOR=$(cd "$BUILD" && pwd)/bench/fsfloor
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${BENCH_DIR:-/tmp}/cbench.XXXXXX")
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

copy() {        # copy GEN OUT: the files of one run
    if [ "${BENCH_LINKS:-0}" = 1 ]; then cp -al "$1" "$2"; else cp -a "$1" "$2"; fi
}

settle() {      # settle DIR: on disk, then in the page cache
    sync
    find "$1" -name '*.xml' -print0 | xargs -0 cat > /dev/null
}

check() {       # check READY_DIR N
    rows=$(grep -c '<Row>' "$1/clients.xml" || true)
    echo "   clients.xml: $rows Rows ($2 waiting), $(du -m "$1/clients.xml" | cut -f1) MB"
    xmllint --noout --stream "$1/clients.xml" && echo "   xmllint: well-formed"
}

fromdir_env() { # fromdir_env DIR: the settings of a --from-dir run in DIR
    echo XML_DIR="$1/out" READY_DIR="$1/ready" COMBINE_LOG_FILE="$1/log" \
        ERROR_LOG_FILE="$1/err" CLIENT_STATE_FILE="$1/state.json" \
        MAX_CLIENTS_PER_RUN=0
}

echo "patriot-combine $("$BIN" --version | cut -d' ' -f2), $(nproc) CPU, $(uname -r)"
echo "files on $(findmnt -n -o SOURCE,FSTYPE,OPTIONS -T "$W")"
for n in $COUNTS; do
    D=$W/n$n
    mkdir -p "$D"
    if [ "${BENCH_FLOOR:-1}" != 0 ] && [ -x "$FLOOR" ]; then
        echo "-- the floor: the file operations of $n clients alone"
        "$FLOOR" "$D" "$n" 1 3800 2 | sed 's/^/   /'
    fi
    gen "$D/gen" "$n"
    size=$(du -sm "$D/gen" | cut -f1)
    echo "-- $n files ($size MB), --from-dir"
    copy "$D/gen" "$D/out"
    settle "$D/out"
    measure "cat (ceiling)" sh -c "find '$D/out' -name '*.xml' -print0 | xargs -0 cat > '$D/cat.out'"
    rm -f "$D/cat.out"
    measure "patriot-combine --from-dir" env $(fromdir_env "$D") \
        SMB_ENABLED=false "$BIN" --once --from-dir
    check "$D/ready" "$n"
    if [ "${BENCH_SMB:-1}" != 0 ] && command -v smbd > /dev/null 2>&1; then
        set -- $(sh "$SRC/tests/smb/samba.sh" start)
        SD=$1 SPORT=$2
        printf 'PW\n' > "$W/pw"; chmod 600 "$W/pw"
        rm -rf "$D/out" "$D/ready" "$D/state.json"
        copy "$D/gen" "$D/out"
        settle "$D/out"
        measure "patriot-combine --from-dir + SMB" env HOME="$SD/home" \
            $(fromdir_env "$D") SMB_ENABLED=true SMB_SERVER_IP=127.0.0.1 \
            SMB_PORT="$SPORT" SMB_SHARE_NAME=share SMB_USERNAME=smbtest \
            SMB_PASSWORD_FILE="$W/pw" "$BIN" --once --from-dir
        cmp "$D/ready/clients.xml" "$SD/share/clients.xml" && echo "   share copy identical"
        sh "$SRC/tests/smb/samba.sh" stop "$SD"
    fi
    rm -rf "$D"
    if [ "${BENCH_DB:-1}" != 0 ] && [ -x "$SEED" ]; then
        echo "-- $n clients, DB mode"
        mkdir -p "$D"
        python3 -c 'import json, sys
k = json.load(open(sys.argv[1]))[0]
k.pop("key", None)
k["key_sha256"] = "0" * 64
print(json.dumps([k]))' "$SRC/keys.example.json" > "$D/keys.json"
        "$SEED" "$D/keys.json" Alarm24 "$D/data.db" "$n" 2> /dev/null
        set -- DATA_FILE="$D/data.db" $(fromdir_env "$D") SMB_ENABLED=false
        env "$@" MAX_CLIENTS_PER_RUN=1 "$BIN" --once 2> /dev/null
        rm -rf "$D/ready" "$D/state.json"
        [ "${BENCH_LINKS:-0}" = 1 ] && cp -al "$D/out" "$D/links"
        settle "$D/out"
        measure "cat (ceiling)" sh -c "find '$D/out' -name '*.xml' -print0 | xargs -0 cat > '$D/cat.out'"
        rm -f "$D/cat.out"
        measure "patriot-combine (DB mode)" env "$@" "$BIN" --once
        check "$D/ready" "$((n - 1))"
        echo "   status: $(env "$@" "$BIN" status | tr -s ' \n' ' ')"
        rm -rf "$D"
    fi
done
