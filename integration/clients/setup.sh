#!/usr/bin/env bash
# Install what the client suite needs from Debian 12: the three engines and buildah, catatonit (podman's
# --init), expect (real ptys), python3-grpcio (the CRI client), busybox-static (the image).
# Debian's docker.io is used by full path (/usr/bin/docker, /usr/sbin/dockerd): a newer docker
# CLI elsewhere on PATH (e.g. /usr/local/bin/docker) is left alone and not used.
set -euo pipefail
need=()
for pkg in containerd docker.io podman buildah catatonit expect python3-grpcio busybox-static; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
for other in containerd.io docker-ce moby-engine; do
  if dpkg -s "$other" >/dev/null 2>&1; then
    echo "setup: $other is installed and conflicts with Debian's ${need[*]}; remove it first" >&2
    exit 1
  fi
done
echo "# setup: installing ${need[*]}"
apt-get update -qq
# Package scripts try to start the services: the suite starts its own daemons instead.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
