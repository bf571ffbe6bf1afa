#!/usr/bin/env bash
# The whole test suite: unit and root integration tests, then the environments in integration/.
# Prints a closing line "N passed, N failed" over the suites it ran; exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash integration/setup.sh || exit 1
passed=0 failed=0
suite() {
  local name=$1; shift
  echo "=== $name: $*"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}
suite build cargo build --release --quiet
suite cargo-tests cargo test --release -- --test-threads=2
for extra in integration/suites.d/*.sh; do
  [ -e "$extra" ] || continue
  suite "$(basename "$extra" .sh)" bash "$extra"
done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
