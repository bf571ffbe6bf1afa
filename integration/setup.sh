#!/usr/bin/env bash
# Install what testudo's build and tests need on a fresh Debian 12 machine (run as root).
set -euo pipefail
need=()
# gcc + libc6-dev build the static probe of the security tests; libcap2-bin gives them setcap;
# uidmap (newuidmap, newgidmap) the multi-range maps of the rootless tests, podman and catatonit
# (its pause process) their rootless podman test; bubblewrap the sandbox tests' comparison builds;
# criu checkpoint/restore (the VM runs it: the host's kernel may be too new for it).
for pkg in busybox-static libseccomp-dev pkg-config gcc libc6-dev libcap2-bin uidmap podman catatonit bubblewrap criu make python3-dev python3-setuptools python3-wheel python3-pip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (rustup)" >&2; exit 1; }
