#!/usr/bin/env bash
# limit: 900 (normally ~5-8 min: a boot of systemd as pid 1 and the driver's tests, rootless on the
# user's manager, Docker, the CRI, podman and rootless podman, the bench; then a boot of systemd's
# hybrid layout, root and rootless, ~60 s)
# The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: the test VM boots
# Debian's systemd as pid 1 with the system bus (integration/vm/run.sh, TESTUDO_VM_INIT=systemd)
# and integration/vm/tests-systemd.sh runs containers in transient scopes there: placement,
# properties, OOM, update, annotations, a unit that exists, a new slice, bad input, a killed
# create, short-lived runs, rootless on a user's systemd manager (the user's bus), what the driver
# costs against runc's and crun's (bench.py), Docker
# choosing the systemd driver itself, containerd's CRI with SystemdCgroup = true, podman with
# cgroup_manager = "systemd", rootless podman with it (its default). A second boot with systemd's hybrid layout (TESTUDO_VM_CGROUP=hybrid)
# checks placement in the v1 hierarchies and name=systemd, as root and rootless. Prints every check's line and each
# boot's closing `N passed, N failed`; exits non-zero on any failure, including a VM that cannot
# boot.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/integration/vm/harness.sh"
# The guest runs the host's systemd and dbus-daemon from the shared root.
# The engines and the bench's peers run from it too.
# dbus-user-session: the user's bus of the rootless test's user manager; uidmap: rootless podman.
pkgs="systemd dbus dbus-user-session uidmap docker.io containerd podman catatonit runc crun time"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $pkgs >/dev/null ||
    { apt-get update -qq -o DPkg::Lock::Timeout=600 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $pkgs >/dev/null; } ||
    { echo "not ok - apt-get install $pkgs"; echo "0 passed, 1 failed"; exit 1; }
fi
# The rootless tests add ~90 s to the ~285 s the others took on a loaded host (the bench 133 s);
# with rootless podman running in full, a clean-clone run saw 431 s before it (the bench 154 s).
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-600}
vm_suite "VM systemd" "${VM_SUITE_TIMEOUT:-640}" "$here/integration/vm/tests-systemd.sh" "$@"; rc=$?
TESTUDO_VM_CGROUP=hybrid TESTUDO_VM_TIMEOUT=150 vm_suite "VM systemd hybrid" 170 "$here/integration/vm/tests-systemd.sh" "$@" || rc=1
exit $rc
