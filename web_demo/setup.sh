#!/usr/bin/env bash
# Sets up the browser demo's toolchain: LiteRT.js from the committed lockfile (npm ci into web_demo/node_modules:
# the page's runtime and its WASM, copied into every built page) and, as root, Debian's chromium + chromium-driver
# for the parity harness's browser target and the real-browser test of the page.
# Idempotent: does nothing when node_modules matches the lockfile and chromium/chromedriver are on PATH.
# Needs: node >= 18 + npm; root (or chromium + chromedriver already installed) for the browser.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "[web_demo] $*"; }
die() { echo "[web_demo] error: $*" >&2; exit 1; }

command -v npm >/dev/null || die "npm not found (apt-get install npm)"
STAMP="$HERE/node_modules/.slfm-lock-sha256"
WANT="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -f "$HERE/node_modules/@litertjs/core/package.json" ]; then
    log "LiteRT.js up to date in $HERE/node_modules"
else
    log "npm ci (LiteRT.js, pinned by package-lock.json)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$WANT" > "$STAMP"
fi

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    log "$(chromium --version 2>/dev/null | head -n 1); $(chromedriver --version | head -n 1)"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "chromium / chromedriver missing: run as root to apt-get install chromium chromium-driver"
log "apt-get install chromium chromium-driver"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null || die "chromium / chromedriver not on PATH after install"
log "$(chromium --version 2>/dev/null | head -n 1)"
