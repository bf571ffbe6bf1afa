#!/usr/bin/env bash
# limit: 1500 (a fresh machine first installs containerd, docker.io and podman: ~2 min)
# The client suite: containerd (ctr and CRI), Docker and podman driving testudo on this host.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$here/integration/clients/run.sh" --runtime "$here/target/x86_64-unknown-linux-gnu/release/testudo" all
