#!/usr/bin/env bash
# limit: 360 (normally ~3.5 min: a boot of systemd as pid 1, the driver's tests, Docker and the CRI)
# The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: the test VM boots
# Debian's systemd as pid 1 with the system bus (integration/vm/run.sh, TESTUDO_VM_INIT=systemd)
# and integration/vm/tests-systemd.sh runs containers in transient scopes there: placement,
# properties, OOM, update, annotations, a unit that exists, a new slice, bad input, a killed
# create, what the driver costs, Docker choosing the systemd driver itself, containerd's CRI with
# SystemdCgroup = true. Prints every check's line and a closing `N passed, N
# failed`; exits non-zero on any failure, including a VM that cannot boot.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/integration/vm/harness.sh"
# The guest runs the host's systemd and dbus-daemon from the shared root.
# The engines and the bench's peers run from it too.
pkgs="systemd dbus docker.io containerd podman catatonit runc crun time"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $pkgs >/dev/null ||
    { apt-get update -qq -o DPkg::Lock::Timeout=600 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $pkgs >/dev/null; } ||
    { echo "not ok - apt-get install $pkgs"; echo "0 passed, 1 failed"; exit 1; }
fi
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-300}
vm_suite "VM systemd" "${VM_SUITE_TIMEOUT:-340}" "$here/integration/vm/tests-systemd.sh" "$@"
