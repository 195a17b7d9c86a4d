#!/usr/bin/env bash
# Makes a Debian 13 (trixie) root holding Swift 6 (`swiftlang`) to run `swift test` on the pure-Swift
# SLFMCore package from a Linux machine (about 3 minutes and 2.5 GB the first time; a no-op afterwards).
#   SLFM_SWIFT_ROOT    where the root lives (default /var/cache/slfm-swift-root)
#   SLFM_DEBIAN_MIRROR Debian mirror (default http://deb.debian.org/debian)
# Needs root (debootstrap, chroot). On macOS you do not need this: run `swift test` in ios_demo/SLFMCore.
set -euo pipefail
ROOT="${SLFM_SWIFT_ROOT:-/var/cache/slfm-swift-root}"
MIRROR="${SLFM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STAMP="$ROOT/.slfm-swift-ready"

if [ -f "$STAMP" ] && [ -x "$ROOT/usr/libexec/swift/bin/swift" ]; then
    echo "$ROOT"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "setup_swift.sh: needs root (debootstrap + chroot)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi
if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.slfm-debootstrap-done" ]; then
    rm -rf "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >&2
    touch "$ROOT/.slfm-debootstrap-done"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# A private mount namespace: /proc (needed by apt and by swift's loader) is mounted and gone when it ends.
unshare --mount --fork sh -c "
    mount -t proc proc '$ROOT/proc'
    chroot '$ROOT' /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
        'apt-get update -qq && apt-get install -y -qq --no-install-recommends swiftlang libc6-dev ca-certificates && apt-get clean'
    chroot '$ROOT' /usr/bin/swift --version
" >&2
touch "$STAMP"
echo "$ROOT"
