#!/bin/sh
# Installs the Debian 12 packages patriot-api needs to build, test and benchmark.
# Idempotent: installs only what is missing. Needs root or sudo.
set -eu

PKGS="meson ninja-build pkg-config gcc libc6-dev build-essential
libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3 libxml2-dev libxml2-utils
nettle-dev libsmbclient-dev samba smbclient libnss-wrapper
libcmocka-dev libcurl4-openssl-dev curl wrk bc ca-certificates
clang libclang-rt-14-dev valgrind
libsystemd-dev systemd debhelper dpkg-dev fakeroot"

# issue 5: headless Chromium checks the /docs page; the OpenAPI linter runs
# on Node and npm: Debian's, unless this machine already has an npm (a
# nodejs from elsewhere would conflict with Debian's npm package).
PKGS="$PKGS chromium util-linux"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# issue 7 (hostile HTTP) / issue 5 (native HTTPS): the TLS test makes a
# self-signed certificate with the openssl CLI.
PKGS="$PKGS openssl"

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
