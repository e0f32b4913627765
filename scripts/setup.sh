#!/usr/bin/env bash
# Installs what assay needs to build and run on a fresh Debian machine.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt.
# Extra Debian packages may be named as arguments (the tests add chromium and chromium-driver).
set -euo pipefail

need=()
for pkg in build-essential pkg-config libssl-dev git ca-certificates python3 python3-pip "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust 1.89 or newer (https://rustup.rs) and run this again" >&2
  exit 1
fi
echo "setup: ok ($(cargo --version))"
