#!/bin/sh
# Installs the Debian 12 packages patriot-api needs to build, test and benchmark.
# Idempotent: installs only what is missing. Needs root or sudo.
set -eu

PKGS="meson ninja-build pkg-config gcc libc6-dev
libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3 libxml2-dev libxml2-utils
nettle-dev libsmbclient-dev samba smbclient libnss-wrapper
libcmocka-dev libcurl4-openssl-dev curl wrk bc ca-certificates"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
