#!/usr/bin/env bash
# Installs a JVM Kotlin compiler (kotlinc + kotlin-test) for the pure-Kotlin `postprocess` module's tests.
# Idempotent: does nothing when the cache already holds the pinned version.
#   SLFM_KOTLIN_HOME  install prefix (default /opt/slfm-kotlin)
#   SLFM_KOTLIN_VERSION  npm `kotlin-compiler` version (default 2.4.20)
# Needs: npm (Node >= 18) and a JDK >= 17 (`java` on PATH). Prints the kotlinc path on success.
set -euo pipefail
HOME_DIR="${SLFM_KOTLIN_HOME:-/opt/slfm-kotlin}"
VERSION="${SLFM_KOTLIN_VERSION:-2.4.20}"
PKG="$HOME_DIR/node_modules/kotlin-compiler"

find_kotlinc() { find "$PKG" -path '*/bin/kotlinc' -type f 2>/dev/null | head -n 1; }

command -v java >/dev/null || { echo "setup_kotlin.sh: java (JDK >= 17) not found on PATH" >&2; exit 1; }
if [ -f "$PKG/package.json" ] && grep -q "\"version\": \"$VERSION\"" "$PKG/package.json" && [ -n "$(find_kotlinc)" ]; then
    find_kotlinc
    exit 0
fi
command -v npm >/dev/null || { echo "setup_kotlin.sh: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$HOME_DIR"
npm install --prefix "$HOME_DIR" --no-audit --no-fund --loglevel=error "kotlin-compiler@$VERSION" >&2
KOTLINC="$(find_kotlinc)"
[ -n "$KOTLINC" ] || { echo "setup_kotlin.sh: kotlinc not found in $PKG after install" >&2; exit 1; }
chmod +x "$(dirname "$KOTLINC")"/* 2>/dev/null || true
echo "$KOTLINC"
