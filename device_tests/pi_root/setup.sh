#!/usr/bin/env bash
# Build (once) and start an emulated Raspberry Pi: an aarch64 Debian bookworm root run through qemu-user,
# with Python 3.11, numpy<2 + tflite-runtime 2.14 and an sshd on 127.0.0.1. The parity harness and
# `slfm deploy pi` then reach it as ssh://pi@127.0.0.1:PORT like any Pi on the network.
#
# Run as root; idempotent (a second run only restarts what is not running). Everything lives under
# $SLFM_PI_ROOT (default /var/cache/slfm-pi-root):
#   rootfs/       the aarch64 root          ssh/id_ed25519, ssh/known_hosts   throwaway client key + host entry
#   ssh_config    Host slfm-pi for ssh -F   port                               the sshd's port
#   UNAVAILABLE   written (exit 0) only when binfmt_misc cannot be used here: tests then skip and say why.
#
# Recipe measured in DESIGN.md: debootstrap --foreign --variant=minbase + dpkg-deb extraction (no second
# stage: 14 minutes under emulation), aarch64 wheels via host pip, /proc and /sys bound so XNNPACK runs.
set -euo pipefail

CACHE=${SLFM_PI_ROOT:-/var/cache/slfm-pi-root}
ROOT=$CACHE/rootfs
SUITE=${SLFM_PI_SUITE:-bookworm}
MIRROR=${SLFM_PI_MIRROR:-http://deb.debian.org/debian}
PIP=${SLFM_PIP:-$(command -v pip3 || command -v pip)}
PI_UID=1000
log() { echo "[pi-root] $*"; }
die() { echo "[pi-root] error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (needs apt-get, binfmt_misc, chroot and mounts)"
mkdir -p "$CACHE"
rm -f "$CACHE/UNAVAILABLE"

# 1. Host packages.
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v dpkg-deb >/dev/null || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. binfmt_misc: the only step that may be impossible here (unprivileged container): then skip, said loudly.
BINFMT=/proc/sys/fs/binfmt_misc
unavailable() {
    echo "$*" > "$CACHE/UNAVAILABLE"
    echo "[pi-root] UNAVAILABLE: $* -- the emulated-Pi tests will be skipped" >&2
    exit 0
}
if [ ! -e $BINFMT/register ]; then
    mount -t binfmt_misc binfmt_misc $BINFMT 2>/dev/null || unavailable "cannot mount binfmt_misc at $BINFMT"
fi
if [ ! -e $BINFMT/qemu-aarch64 ]; then
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f $conf ] || die "$conf missing (qemu-user-static install incomplete)"
    # flag F: the kernel keeps the interpreter open, so it works inside the chroot.
    cat $conf > $BINFMT/register 2>/dev/null || unavailable "cannot register qemu-aarch64 in $BINFMT/register"
fi
grep -q enabled $BINFMT/qemu-aarch64 || unavailable "qemu-aarch64 binfmt entry is disabled"

# 3. The root: first stage only, then every downloaded package extracted (no maintainer scripts run).
if [ ! -f "$ROOT/.slfm-extracted" ]; then
    log "debootstrap --foreign $SUITE arm64 into $ROOT (about a minute)"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3.11,libpython3.11-stdlib,openssh-server,libstdc++6,zlib1g \
        "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed: see $CACHE/debootstrap.log"
    log "extracting $(ls "$ROOT"/var/cache/apt/archives/*.deb | wc -l) packages"
    for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
        dpkg-deb --fsys-tarfile "$deb" | tar -C "$ROOT" --keep-directory-symlink -xf -
    done
    rm -f "$ROOT"/var/cache/apt/archives/*.deb
    touch "$ROOT/.slfm-extracted"
fi

# 4. Wheels for the Pi's Python: numpy<2 + tflite-runtime 2.14 (what a Pi runs), aarch64 builds via host pip.
SITE=$ROOT/usr/local/lib/python3.11/dist-packages
if [ ! -d "$SITE/tflite_runtime" ] || [ ! -d "$SITE/numpy" ]; then
    [ -n "$PIP" ] || die "no host pip found (set SLFM_PIP)"
    log "pip: aarch64 wheels numpy<2 tflite-runtime==2.14.0 -> $SITE"
    "$PIP" install -q --no-deps --target "$SITE" --python-version 3.11 \
        --platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 \
        --implementation cp --only-binary=:all: 'numpy<2' tflite-runtime==2.14.0
fi

# 5. Accounts, sshd config, keys (what the skipped maintainer scripts would have done).
grep -q '^root:' "$ROOT/etc/passwd" 2>/dev/null || cp "$ROOT/usr/share/base-passwd/passwd.master" "$ROOT/etc/passwd"
grep -q '^root:' "$ROOT/etc/group" 2>/dev/null || cp "$ROOT/usr/share/base-passwd/group.master" "$ROOT/etc/group"
grep -q '^sshd:' "$ROOT/etc/passwd" || echo 'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin' >> "$ROOT/etc/passwd"
grep -q '^pi:' "$ROOT/etc/passwd" || echo "pi:x:$PI_UID:$PI_UID:pi:/home/pi:/bin/sh" >> "$ROOT/etc/passwd"
grep -q '^pi:' "$ROOT/etc/group" || echo "pi:x:$PI_UID:" >> "$ROOT/etc/group"
[ -f "$ROOT/etc/shadow" ] || { awk -F: '{print $1":*:19700:0:99999:7:::"}' "$ROOT/etc/passwd" > "$ROOT/etc/shadow"; }
grep -q '^pi:' "$ROOT/etc/shadow" || echo 'pi:*:19700:0:99999:7:::' >> "$ROOT/etc/shadow"
chmod 640 "$ROOT/etc/shadow"
echo slfm-pi > "$ROOT/etc/hostname"
[ -e "$ROOT/usr/bin/python3" ] || ln -s python3.11 "$ROOT/usr/bin/python3"  # python3-minimal's link
mkdir -p "$ROOT/run/sshd" "$ROOT/home/pi/.ssh" "$CACHE/ssh" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp"
chmod 1777 "$ROOT/tmp"
[ -f "$ROOT/etc/ssh/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C slfm-pi -f "$ROOT/etc/ssh/ssh_host_ed25519_key"
[ -f "$CACHE/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C slfm-pi-test -f "$CACHE/ssh/id_ed25519"
cp "$CACHE/ssh/id_ed25519.pub" "$ROOT/home/pi/.ssh/authorized_keys"
chown -R $PI_UID:$PI_UID "$ROOT/home/pi"
chmod 755 "$ROOT/home/pi"; chmod 700 "$ROOT/home/pi/.ssh"; chmod 600 "$ROOT/home/pi/.ssh/authorized_keys"

# 6. Mounts: /proc and /sys (XNNPACK reads CPU info; without them it falls back to slow kernels), /dev.
for m in proc sys dev; do
    mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"
done

# 7. sshd on a free 127.0.0.1 port (kept across runs while it still answers).
port_open() { python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}
PORT=$(cat "$CACHE/port" 2>/dev/null || true)
PIDFILE=$ROOT/run/sshd.pid
if [ -n "$PORT" ] && [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && port_open "$PORT"; then
    log "sshd already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
else
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then kill "$(cat "$PIDFILE")"; fi
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$ROOT/etc/ssh/sshd_config.slfm" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
CONF
    log "starting the aarch64 sshd on 127.0.0.1:$PORT (emulated)"
    chroot "$ROOT" /usr/sbin/sshd -f /etc/ssh/sshd_config.slfm -E /var/log/sshd.log \
        || die "sshd failed to start: see $ROOT/var/log/sshd.log"
    for _ in $(seq 60); do port_open "$PORT" && break; sleep 1; done
    port_open "$PORT" || die "sshd not answering on 127.0.0.1:$PORT: see $ROOT/var/log/sshd.log"
    echo "$PORT" > "$CACHE/port"
fi

# 8. Client side for the tests: known_hosts entry of this host key, and an ssh config naming everything.
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$ROOT/etc/ssh/ssh_host_ed25519_key.pub")" > "$CACHE/ssh/known_hosts"
cat > "$CACHE/ssh_config" <<CONF
Host slfm-pi 127.0.0.1
    HostName 127.0.0.1
    Port $PORT
    User pi
    IdentityFile $CACHE/ssh/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $CACHE/ssh/known_hosts
    StrictHostKeyChecking yes
CONF
chmod 600 "$CACHE/ssh/id_ed25519" "$CACHE/ssh_config"

# 9. Smoke check through ssh, as the harness will connect.
out=$(timeout 120 ssh -F "$CACHE/ssh_config" -o BatchMode=yes -o ConnectTimeout=60 slfm-pi \
    "python3 -c 'import platform, numpy, tflite_runtime; print(platform.machine(), platform.python_version(), numpy.__version__, tflite_runtime.__version__)'") \
    || die "ssh smoke check failed (ssh -F $CACHE/ssh_config slfm-pi)"
log "ready: ssh://pi@127.0.0.1:$PORT ($out); ssh config: $CACHE/ssh_config"
