#!/usr/bin/env bash
# limit: 600 (normally ~4 min; 20-vm.sh before it has installed and cached the VM's parts)
# Docker 20.10 and containerd 1.6 (ctr and CRI) driving testudo inside the test VM: OOM kills
# under --memory (137, OOMKilled), the v2 limit files at run and after `docker update`, `docker
# stats`, Docker's docker-default and --security-opt apparmor profiles. One boot:
# integration/vm/tests-engines.sh. Prints every check's line and a closing `N passed, N failed`;
# exits non-zero on any failure, including a VM that cannot boot or a guest past its bound.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bound=${VM_SUITE_TIMEOUT:-570}
if [ -z "${VM_SUITE_BOUNDED:-}" ]; then
  VM_SUITE_BOUNDED=1 timeout --kill-after=20 "$bound" bash "$0" "$@"
  rc=$?
  if [ $rc -eq 124 ] && [ $SECONDS -ge "$bound" ]; then
    echo "not ok - the VM engines suite ran past $bound s"; echo "0 passed, 1 failed"
  fi
  exit $rc
fi
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-480}
# A VM that does not boot, or a guest killed at its timeout, prints no closing line: say so in
# the suite's own terms.
log=$(mktemp)
bash "$here/integration/vm/tests-engines.sh" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if ! grep -Eq '^[0-9]+ passed, [0-9]+ failed' "$log"; then
  echo "not ok - the VM run ended (status $rc) without its closing line"; echo "0 passed, 1 failed"
  [ "$rc" -ne 0 ] || rc=1
fi
rm -f "$log"
exit "$rc"
