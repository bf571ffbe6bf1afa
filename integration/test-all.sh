#!/usr/bin/env bash
# The whole test suite: unit and root integration tests, then the environments in integration/.
# Prints a closing line "N passed, N failed" over the suites it ran; exits non-zero on any failure.
#
# Every suite runs under `timeout` with its own limit, and all of them share one overall budget
# (TESTUDO_TEST_BUDGET seconds, default 75 min, under CI's 90): a hung daemon or runtime fails its
# suite instead of eating the whole CI run. A suite that hits its limit counts as FAILED.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash integration/setup.sh || exit 1
budget=${TESTUDO_TEST_BUDGET:-4500}
passed=0 failed=0
# Each suite's output is also kept, so that the run ends with what failed: CI shows a long
# output's head and tail only.
logs=$(mktemp -d /tmp/testudo-test-all.XXXXXX)
recap=$logs/recap
# suite NAME LIMIT_SECONDS COMMAND…
suite() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - SECONDS))
  [ "$limit" -le "$left" ] || limit=$left
  echo "=== $name: $* (limit $limit s)"
  local start=$SECONDS code=0 log=$logs/$name.log
  if [ "$limit" -le 0 ]; then
    code=124; : >"$log"
  else
    timeout --kill-after=20 "$limit" "$@" 2>&1 | tee "$log"
    code=${PIPESTATUS[0]}
  fi
  if [ "$code" -eq 0 ]; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    local how="exit $code"
    [ "$code" -eq 124 ] || [ "$code" -eq 137 ] && how="timed out after $limit s"
    echo "=== $name: FAILED ($((SECONDS - start)) s, $how)"
    {
      echo "--- $name: FAILED ($how); its failing lines, then its last ones:"
      grep -E '^not ok|^test .* FAILED$|^---- .* ----$|panicked at|^error' "$log" | head -40
      echo "  [...]"
      tail -n 8 "$log"
    } >>"$recap"
  fi
}
suite build 900 cargo build --release --quiet
# rustfmt.toml is the code's style; a change that drifts from it fails here, not in review.
suite fmt 120 cargo fmt --check
# Cargo.toml's lints (every unsafe block documented, no unwrap) and clippy's defaults, as errors.
suite clippy 600 cargo clippy --release --all-targets --quiet -- -D warnings
suite cargo-tests 1200 cargo test --release -- --test-threads=2
# integration/suites.d/NN-name.sh: each prints its own "N passed, N failed"; its second line
# "# limit: SECONDS" (optional, default 900) bounds it.
for extra in integration/suites.d/*.sh; do
  [ -e "$extra" ] || continue
  limit=$(sed -n '2s/^# limit: \([0-9]*\).*/\1/p' "$extra")
  suite "$(basename "$extra" .sh)" "${limit:-900}" bash "$extra"
done
[ -s "$recap" ] && { echo "=== what failed"; cat "$recap"; }
rm -rf "$logs"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
