#!/usr/bin/env bash
# limit: 360 (normally ~30 s; 20-vm.sh before it has installed and cached the VM's parts, a fresh
# machine installs the SELinux policy (~35 s) and builds the test module into it (~10 s) here)
# SELinux labels inside the test VM booted with security=selinux, the reference policy and
# testudo-vm.cil loaded: process.selinuxLabel (init, exec, the session keyring), linux.mountLabel,
# undefined labels, and one denial enforcing. One boot: integration/vm/tests-selinux.sh. Prints
# every test's line and a closing `N passed, N failed`; exits non-zero on any failure, including a
# VM that cannot boot or a guest past its bound.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/integration/vm/harness.sh"
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-240}
vm_suite "VM SELinux" "${VM_SUITE_TIMEOUT:-330}" "$here/integration/vm/tests-selinux.sh" "$@"
