#!/usr/bin/env bash
# limit: 600 (normally ~4 min; 20-vm.sh before it has installed and cached the VM's parts)
# Docker 20.10 and containerd 1.6 (ctr and CRI) driving testudo inside the test VM: OOM kills
# under --memory (137, OOMKilled), the v2 limit files at run and after `docker update`, `docker
# stats`, Docker's docker-default and --security-opt apparmor profiles. One boot:
# integration/vm/tests-engines.sh. Prints every check's line and a closing `N passed, N failed`;
# exits non-zero on any failure, including a VM that cannot boot or a guest past its bound.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/integration/vm/harness.sh"
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-480}
vm_suite "VM engines" "${VM_SUITE_TIMEOUT:-570}" "$here/integration/vm/tests-engines.sh" "$@"
