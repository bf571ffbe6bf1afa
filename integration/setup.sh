#!/usr/bin/env bash
# Install what testudo's build and tests need on a fresh Debian 12 machine (run as root).
set -euo pipefail
need=()
for pkg in busybox-static libseccomp-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (rustup)" >&2; exit 1; }
