#!/bin/sh
# test-package.sh SRC_ROOT - the Debian package, end to end, as root:
#   build it with dpkg-buildpackage from a copy of the tree, install it with
#   apt, check the users, directories, modes and that no unit was enabled,
#   run systemd-analyze verify on the installed units (systemd cannot run as
#   PID 1 here), then, as the services' users with the units' umask and
#   environment: patriot-api --check-config, keys add as root, the server
#   from the installed paths on a free port with one authenticated request,
#   a key disabled and reloaded (SIGHUP) without a restart, one
#   patriot-combine run over the shared database and outbox; finally purge.
# Exit 0 passed, 1 failed, 77 skipped (not root, or the package is already
# installed on this machine: it is never touched).
set -eu

SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the package test needs root (apt install, system users)"
    exit 77
fi
if dpkg-query -W -f='${Status}' patriot-api 2>/dev/null |
        grep -q "ok installed"; then
    echo "SKIP: patriot-api is installed on this machine; not touching it"
    exit 77
fi
if [ -e /var/lib/patriot-api ] || [ -e /etc/patriot-api ]; then
    echo "SKIP: /var/lib/patriot-api or /etc/patriot-api exists (data of" \
        "an earlier install?); not touching it"
    exit 77
fi

# Its own build dependencies (debhelper, dpkg-dev, libsystemd-dev, ...).
sh "$SRC/scripts/install-deps.sh"

T=$(mktemp -d /tmp/patriot-pkg.XXXXXX)
API_PID=
INSTALLED=
had_user_api=$(getent passwd patriot-api >/dev/null && echo y || echo n)
had_user_combine=$(getent passwd patriot-combine >/dev/null && echo y || echo n)

cleanup() {
    rc=$?
    if [ -n "$API_PID" ] && kill -0 "$API_PID" 2>/dev/null; then
        kill -KILL "$API_PID" 2>/dev/null || true
    fi
    if [ -n "$INSTALLED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq patriot-api \
            >/dev/null 2>&1 || true
        rm -rf /var/lib/patriot-api /var/lib/patriot-combine /etc/patriot-api
        [ "$had_user_api" = y ] || userdel patriot-api 2>/dev/null || true
        [ "$had_user_combine" = y ] ||
            userdel patriot-combine 2>/dev/null || true
        for g in patriot-api patriot-combine patriot; do
            getent group "$g" >/dev/null && groupdel "$g" 2>/dev/null || true
        done
    fi
    [ -n "${PATRIOT_KEEP_TMP:-}" ] || rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
check() {   # check "what" command...
    what=$1; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
# mode owner group of a path, e.g. "640 root patriot-api"
perm() { stat -c '%a %U %G' "$1"; }
expect_perm() {   # expect_perm PATH "MODE OWNER GROUP"
    got=$(perm "$1" 2>&1 || true)
    if [ "$got" = "$2" ]; then ok "$1 is $2"; else bad "$1 is '$got', want '$2'"; fi
}
# as_user USER command...: as the unit runs it (its groups, UMask=0007)
as_user() {
    u=$1; shift
    setpriv --reuid="$u" --regid="$u" --init-groups --inh-caps=-all -- \
        sh -c 'umask 0007; exec "$@"' sh "$@"
}

# ---- build ----------------------------------------------------------------
echo "== dpkg-buildpackage"
mkdir "$T/src"
tar -C "$SRC" --exclude=./.git --exclude='./build*' --exclude=./run \
    --exclude='./obj-*' --exclude=./debian/.debhelper \
    --exclude=./debian/patriot-api --exclude=./debian/tmp \
    --exclude=./node_modules -cf - . | tar -C "$T/src" -xf -
if ! (cd "$T/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
        dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1); then
    tail -40 "$T/build.log" >&2
    bad "dpkg-buildpackage"
    exit 1
fi
ok "dpkg-buildpackage -us -uc -b"
DEB=$(ls "$T"/patriot-api_*.deb)
dpkg-deb -c "$DEB" >"$T/contents"
check "the units are in the package" \
    grep -q 'lib/systemd/system/patriot-api.service' "$T/contents"

# ---- install --------------------------------------------------------------
echo "== apt install ./$(basename "$DEB")"
INSTALLED=y
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$DEB" >"$T/install.log" 2>&1; then
    cat "$T/install.log" >&2
    bad "apt-get install"
    exit 1
fi
ok "installed"

check "user patriot-api" sh -c 'getent passwd patriot-api >/dev/null'
check "user patriot-combine" sh -c 'getent passwd patriot-combine >/dev/null'
check "patriot-api is in group patriot" \
    sh -c 'id -nG patriot-api | tr " " "\n" | grep -qx patriot'
check "patriot-combine is in group patriot" \
    sh -c 'id -nG patriot-combine | tr " " "\n" | grep -qx patriot'
check "patriot-combine is not in group patriot-api" \
    sh -c '! id -nG patriot-combine | tr " " "\n" | grep -qx patriot-api'
check "the users cannot log in" \
    sh -c 'getent passwd patriot-api | grep -q ":/usr/sbin/nologin$"'
expect_perm /etc/patriot-api "755 root root"
expect_perm /etc/patriot-api/keys.json "640 root patriot-api"
expect_perm /etc/patriot-api/combine.conf "640 root patriot-combine"
expect_perm /etc/patriot-api/api.env "644 root root"
expect_perm /var/lib/patriot-api "2770 patriot-api patriot"
expect_perm /var/lib/patriot-api/out/clients "2770 patriot-api patriot"
expect_perm /var/lib/patriot-api/logs "2770 patriot-api patriot"
expect_perm /var/lib/patriot-api/data.db "660 patriot-api patriot"
expect_perm /var/lib/patriot-combine "700 patriot-combine patriot-combine"
check "no key enabled by default (keys.json is [])" \
    sh -c '[ "$(tr -d " \n" < /etc/patriot-api/keys.json)" = "[]" ]'
check "examples installed" \
    test -f /usr/share/doc/patriot-api/examples/keys.example.json
check "api.env is a conffile" \
    sh -c 'dpkg-query -W -f="\${Conffiles}" patriot-api | grep -q /etc/patriot-api/api.env'
check "no unit enabled" \
    sh -c '! ls /etc/systemd/system/*.wants/ 2>/dev/null | grep -q patriot'

# ---- units ----------------------------------------------------------------
echo "== systemd-analyze verify"
UNITS="patriot-api.service patriot-combine.service patriot-combine-once.service patriot-combine.timer"
for u in $UNITS; do
    if [ ! -f "/lib/systemd/system/$u" ]; then
        bad "$u installed"
        continue
    fi
    if out=$(cd /lib/systemd/system && systemd-analyze verify "$u" 2>&1) &&
        ! printf '%s\n' "$out" | grep -q "patriot"; then
        ok "systemd-analyze verify $u"
    else
        printf '%s\n' "$out" >&2
        bad "systemd-analyze verify $u"
    fi
done
check "patriot-api.service is Type=notify with a watchdog" \
    sh -c 'grep -qx "Type=notify" /lib/systemd/system/patriot-api.service &&
           grep -q "^WatchdogSec=" /lib/systemd/system/patriot-api.service'
check "patriot-combine has a HOME of its own" \
    grep -qx "Environment=HOME=/var/lib/patriot-combine" \
    /lib/systemd/system/patriot-combine.service
check "the timer fires at minute 59" \
    grep -qx "OnCalendar=\*:59" /lib/systemd/system/patriot-combine.timer
if command -v systemd-analyze >/dev/null; then
    for u in patriot-api.service patriot-combine.service; do
        # the sandbox as systemd reads it (offline; no PID 1 needed)
        if systemd-analyze security --offline=yes --threshold=25 \
                "/lib/systemd/system/$u" >"$T/security.$u" 2>&1; then
            ok "systemd-analyze security $u: exposure below 2.5"
        else
            tail -3 "$T/security.$u" >&2
            bad "systemd-analyze security $u"
        fi
    done
fi

# ---- check, keys, start ----------------------------------------------------
echo "== run from the installed paths as the service users"
ENV=/etc/patriot-api/api.env
if as_user patriot-api /usr/bin/patriot-api --env-file "$ENV" \
        --check-config >"$T/check.out" 2>&1; then
    ok "patriot-api --check-config (fresh install)"
else
    cat "$T/check.out" >&2
    bad "patriot-api --check-config (fresh install)"
fi
# patriot-combine may not read keys.json: the check names it
if as_user patriot-combine /usr/bin/patriot-api --env-file "$ENV" \
        --check-config >"$T/check2.out" 2>&1; then
    bad "--check-config as patriot-combine should fail (keys.json)"
else
    check "--check-config names KEY_FILE" grep -q "KEY_FILE" "$T/check2.out"
fi

KEY=$(/usr/bin/patriot-api keys --env-file "$ENV" add PkgTest \
        --port BASE91 --installer-name "Package Test AS" \
        --installer-email pkg@test.example --xml-field AltLookup=True \
        2>"$T/keys.err") || { cat "$T/keys.err" >&2; bad "keys add"; }
check "keys add printed a 256-bit key" \
    sh -c "printf %s '$KEY' | grep -Eqx '[0-9a-f]{64}'"
expect_perm /etc/patriot-api/keys.json "640 root patriot-api"
check "keys.json holds no plain key" sh -c "! grep -q '$KEY' /etc/patriot-api/keys.json"
/usr/bin/patriot-api keys --env-file "$ENV" list >"$T/list.out"
check "keys list shows PkgTest" grep -q "PkgTest" "$T/list.out"
check "keys list shows no secret" sh -c "! grep -q '$KEY' '$T/list.out'"

# the server, as the unit starts it, but on a free port; exec all the way
# down, so that $! is the server itself
(exec setpriv --reuid=patriot-api --regid=patriot-api --init-groups \
    --inh-caps=-all -- sh -c 'umask 0007; exec "$@"' sh \
    /usr/bin/patriot-api --env-file "$ENV" --port 0) \
    >"$T/api.out" 2>"$T/api.err" &
API_PID=$!
n=0
while [ ! -s "$T/api.out" ] && [ $n -lt 100 ]; do
    kill -0 "$API_PID" 2>/dev/null || break
    sleep 0.1
    n=$((n + 1))
done
PORT=$(head -1 "$T/api.out")
if [ -z "$PORT" ]; then
    cat "$T/api.err" >&2
    bad "patriot-api started from /usr/bin as patriot-api"
    exit 1
fi
ok "patriot-api listens on port $PORT"
URL="http://127.0.0.1:$PORT"
code=$(curl -s -o "$T/put.json" -w '%{http_code}' -X PUT "$URL/clients" \
    -H "Authorization: Bearer $KEY" \
    -d '{"client_id": 4242, "info": {"Name": "Pakke Test"}}')
check "authenticated PUT /clients answers 201 (got $code)" [ "$code" = 201 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/clients" \
    -H "Authorization: Bearer not-a-key" -H 'X-Client-Id: 4242')
check "a wrong key answers 401 (got $code)" [ "$code" = 401 ]
XML=/var/lib/patriot-api/out/clients/PkgTest/4242.xml
n=0
while [ ! -f "$XML" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check "the outbox file was written" grep -q "<__id>4242BASE91</__id>" "$XML"
expect_perm /var/lib/patriot-api/out/clients/PkgTest "2770 patriot-api patriot"
# Request lines are written at most 50 ms after their request (README).
LOGF=/var/lib/patriot-api/logs/api_requests.log
n=0
while ! grep -q "PUT /clients" "$LOGF" 2>/dev/null && [ $n -lt 50 ]; do
    sleep 0.1; n=$((n + 1))
done
check "the request log is in /var/lib/patriot-api/logs" \
    grep -q "PUT /clients" "$LOGF"

# patriot-combine reads the shared database and moves the outbox files
if as_user patriot-combine env HOME=/var/lib/patriot-combine \
        /usr/bin/patriot-combine --config /etc/patriot-api/combine.conf \
        --once >"$T/combine.out" 2>&1; then
    ok "patriot-combine --once as patriot-combine"
else
    cat "$T/combine.out" >&2
    bad "patriot-combine --once as patriot-combine"
fi
check "clients.xml holds the client" grep -q "4242BASE91" \
    /var/lib/patriot-api/ready_for_import/clients.xml
code=$(curl -s -o "$T/get.json" -w '%{http_code}' "$URL/clients" \
    -H "Authorization: Bearer $KEY" -H 'X-Client-Id: 4242')
check "the client is shipped (got $code: $(cat "$T/get.json"))" \
    grep -q '"state": *"shipped"' "$T/get.json"

# keys without restarts: disable, SIGHUP (what systemctl reload sends)
/usr/bin/patriot-api keys --env-file "$ENV" disable PkgTest >/dev/null 2>&1
kill -HUP "$API_PID"
n=0
code=
while [ $n -lt 50 ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/clients" \
        -H "Authorization: Bearer $KEY" -H 'X-Client-Id: 4242')
    [ "$code" = 401 ] && break
    sleep 0.1
    n=$((n + 1))
done
check "a disabled key is refused after SIGHUP, no restart (got $code)" \
    [ "$code" = 401 ]
check "the server is still the same process" kill -0 "$API_PID"

kill -TERM "$API_PID"
if wait "$API_PID"; then ok "SIGTERM: clean exit"; else bad "SIGTERM: exit status $?"; fi
API_PID=

# ---- purge ----------------------------------------------------------------
echo "== apt purge"
if DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq patriot-api \
        >"$T/purge.log" 2>&1; then
    ok "purged"
else
    cat "$T/purge.log" >&2
    bad "apt-get purge"
fi
check "binaries gone" test ! -e /usr/bin/patriot-api
check "units gone" test ! -e /lib/systemd/system/patriot-api.service
check "keys.json gone with the purge" test ! -e /etc/patriot-api/keys.json
check "the database is kept" test -f /var/lib/patriot-api/data.db

if [ "$fails" -ne 0 ]; then
    echo "package test: $fails checks failed" >&2
    exit 1
fi
echo "package test: all checks passed"
