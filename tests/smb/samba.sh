#!/bin/sh
# samba.sh - a private smbd for the SMB tests (notes/samba-test-server.md).
#   samba.sh start     start one; prints "DIR PORT PID USER" on stdout
#   samba.sh stop DIR  stop the server of DIR (its process group) and remove DIR
#   samba.sh halt DIR  end the server of DIR, keep DIR (restart brings it back)
#   samba.sh restart DIR  end the server of DIR, however it is (SIGSTOPped,
#                      killed), and start it again: same port, same share
# Everything lives in DIR (/tmp/smb.XXXXXX): config, state, share
# (DIR/share), logs. 127.0.0.1 only, a free unprivileged port, user
# smbtest (created when run as root) or the caller, password PW.
# Environment: SAMBA_KEEP=1 keeps DIR at stop (smbd's logs in DIR/log, the
# path is printed on stderr); SAMBA_DEBUG=N runs smbd at debug level N (1).
#
# smbd looks its own host name up (getaddrinfo of gethostname(), in
# get_mydnsfullname) several times in every SMB session setup, and never
# caches a failed answer. Where that name is in no /etc/hosts (a fresh
# debootstrap root or container: CI), every login asks DNS for it, and one
# lost UDP answer stalls that login for glibc's 5 s resolver timeout: the
# client times out ("server not answering") now and then. So smbd runs under
# nss_wrapper (package libnss-wrapper, as in Samba's own selftest) with a
# host name of its own that resolves from DIR/etc/hosts: no DNS at all.
set -eu

SRV_HOST=smbtest-srv

nss_wrapper() {
    for f in /usr/lib/*-linux-gnu/libnss_wrapper.so /usr/lib64/libnss_wrapper.so \
             /usr/lib/libnss_wrapper.so; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# launch: smbd for $T (config, hosts and port written by start), waits
# until an authenticated ls works; sets PID (the leader of smbd's own
# process group: kill -SIG -PID reaches every smbd of this server).
launch() {
    NSSW=$(nss_wrapper)
    LD_PRELOAD=$NSSW NSS_WRAPPER_HOSTS=$T/etc/hosts NSS_WRAPPER_HOSTNAME=$SRV_HOST \
    /usr/sbin/smbd --foreground -s "$T/etc/smb.conf" --debug-stdout -d "${SAMBA_DEBUG:-1}" \
        >> "$T/log/smbd.out" 2>&1 < /dev/null &
    PID=$!
    echo "$PID" > "$T/smbd.pid"
    n=0
    until smbclient //127.0.0.1/share -p "$PORT" -A "$T/etc/auth" -c ls >/dev/null 2>&1; do
        n=$((n + 1))
        if [ $n -ge 200 ] || ! kill -0 "$PID" 2>/dev/null; then
            cat "$T/log/smbd.out" >&2
            kill -TERM "$PID" 2>/dev/null || true
            rm -rf "$T"
            exit 1
        fi
        sleep 0.05
    done
}

# halt: end every smbd of $T (its process group), also a stopped one
# (SIGSTOP: SIGTERM waits for SIGCONT); SIGKILL after 5 s.
halt() {
    [ -f "$T/smbd.pid" ] || return 0
    PID=$(cat "$T/smbd.pid")
    kill -TERM "$PID" 2>/dev/null || true
    kill -CONT "-$PID" 2>/dev/null || true
    n=0
    while kill -0 "$PID" 2>/dev/null && [ $n -lt 100 ]; do
        sleep 0.05; n=$((n + 1))
    done
    kill -KILL "-$PID" 2>/dev/null || true
    n=0
    while kill -0 "-$PID" 2>/dev/null && [ $n -lt 100 ]; do
        sleep 0.05; n=$((n + 1))
    done
    rm -f "$T/smbd.pid"
}

start() {
    PORT=""
    # below the kernel's ephemeral range: an outgoing connection can take a
    # port of that range between the check and smbd's bind (smbd then aborts,
    # "Address already in use")
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$(( ${lo:-32768} - 20000 ))
    [ "$span" -ge 1000 ] || span=30000
    for try in 1 2 3 4 5 6 7 8 9 10; do
        p=$(( 20000 + ($$ * 7 + try * 131 + $(date +%N | sed 's/^0*//;s/^$/0/') % 9973) % span ))
        if smbclient -N -L 127.0.0.1 -p "$p" 2>&1 | grep -q CONNECTION_REFUSED; then
            PORT=$p
            break
        fi
    done
    [ -n "$PORT" ] || { echo "no free port" >&2; exit 1; }
    NSSW=$(nss_wrapper) || {
        echo "samba.sh: libnss_wrapper.so not found: install libnss-wrapper" \
             "(scripts/install-deps.sh)" >&2
        exit 1
    }
    T=$(TMPDIR=/tmp mktemp -d /tmp/smb.XXXXXX)
    if [ "$(id -u)" = 0 ]; then U=smbtest; else U=$(id -un); fi
    mkdir -p "$T/etc" "$T/share" "$T/private" "$T/log" "$T/home"
    cat > "$T/etc/smb.conf" <<EOC
[global]
   server role = standalone server
   workgroup = WORKGROUP
   interfaces = 127.0.0.1
   bind interfaces only = yes
   smb ports = $PORT
   disable netbios = yes
   private dir = $T/private
   lock directory = $T/lock
   state directory = $T/state
   cache directory = $T/cache
   pid directory = $T/pid
   ncalrpc dir = $T/ncalrpc
   winbindd socket directory = $T/winbindd
   log file = $T/log/log.%m
   passdb backend = tdbsam:$T/private/passdb.tdb
   rpc start on demand helpers = no
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes
   map to guest = never
   restrict anonymous = 2
   map archive = no
   usershare path =
[share]
   path = $T/share
   read only = no
   valid users = $U
EOC
    if [ "$U" = smbtest ]; then
        id smbtest >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin smbtest
        chmod 755 "$T"
        chown smbtest "$T/share"
        printf 'PW\nPW\n' | smbpasswd -c "$T/etc/smb.conf" -s -a smbtest >/dev/null
    else
        printf 'PW\nPW\n' | pdbedit -s "$T/etc/smb.conf" -t -a -u "$U" >/dev/null
    fi
    printf 'username = %s\npassword = PW\n' "$U" > "$T/etc/auth"
    printf '127.0.0.1 %s.localdomain %s\n' "$SRV_HOST" "$SRV_HOST" > "$T/etc/hosts"
    echo "$PORT" > "$T/port"
    echo "$U" > "$T/user"
    launch
    echo "$T $PORT $PID $U"
}

stop() {
    T=$1
    case "$T" in /tmp/smb.*) ;; *) echo "not a test server dir: $T" >&2; exit 1 ;; esac
    halt
    if [ "${SAMBA_KEEP:-0}" = 1 ]; then
        echo "samba.sh: kept $T" >&2
        return 0
    fi
    rm -rf "$T"
}

# restart DIR: end the server of DIR (whatever state it is in: stopped,
# killed, running) and start a new one on the same port, config and share;
# prints "DIR PORT PID USER" as start does.
restart() {
    T=$1
    case "$T" in /tmp/smb.*) ;; *) echo "not a test server dir: $T" >&2; exit 1 ;; esac
    halt
    PORT=$(cat "$T/port")
    U=$(cat "$T/user")
    launch
    echo "$T $PORT $PID $U"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:?DIR}" ;;
restart) restart "${2:?DIR}" ;;
halt)
    T=${2:?DIR}
    case "$T" in /tmp/smb.*) ;; *) echo "not a test server dir: $T" >&2; exit 1 ;; esac
    halt ;;
*) echo "usage: $0 start | stop DIR | halt DIR | restart DIR" >&2; exit 2 ;;
esac
