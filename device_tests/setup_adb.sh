#!/usr/bin/env bash
# adb for the Android target's tests (the connect / no-device error paths run without a phone). Root installs
# Debian's adb; elsewhere a missing adb is reported and its tests skip.
set -euo pipefail
if command -v adb >/dev/null; then echo "[adb] $(adb version | head -1)"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "[adb] not installed and not root: apt-get install adb" >&2; exit 1; }
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends adb >/dev/null
echo "[adb] installed: $(adb version | head -1)"
