#!/usr/bin/env bash
# limit: 1500 (its own bound is 20 min; a fresh machine builds virtiofsd first: ~3 min)
# The VM suite: cgroup v2 limits, AppArmor and checkpoint/restore with CRIU, proven inside one qemu
# VM (integration/vm/).
# First-time installs (qemu, the kernel, virtiofsd, apparmor) happen here and are cached in
# /var/cache/testudo-vm. Prints every test's line and a closing `N passed, N failed`; exits
# non-zero on any failure, including a VM that cannot boot. The whole run is bounded: 20 min
# (installs included; normally ~5-8 min with the CRIU tests, ~11 min on a fresh machine), the guest
# alone 10 min.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/integration/vm/harness.sh"
if [ -z "${TESTUDO_IN_VM:-}" ] && [ -z "${VM_SUITE_INNER:-}" ]; then
  VM_SUITE_INNER=1 vm_suite VM "${VM_SUITE_TIMEOUT:-1200}" "$0" "$@"
  exit $?
fi
host_prereqs
export TESTUDO_VM_TIMEOUT=${TESTUDO_VM_TIMEOUT:-600}
in_vm "$0" "$@"

# Inside the VM: each test file in turn, counts summed from their closing lines; a file that
# ends without one (it crashed or gave up early) counts as one failure.
total_passed=0 total_failed=0
for t in tests-cgroups tests-apparmor tests-criu; do
  echo "--- $t"
  log=$(mktemp)
  bash "$here/integration/vm/$t.sh" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  rm -f "$log"
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    total_passed=$((total_passed + BASH_REMATCH[1])); total_failed=$((total_failed + BASH_REMATCH[2]))
    [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ] && total_failed=$((total_failed + 1))
  else
    echo "not ok - $t ended (status $rc) without its closing line"
    total_failed=$((total_failed + 1))
  fi
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
