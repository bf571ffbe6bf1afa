#!/usr/bin/env bash
# The client suite: containerd (ctr and CRI), Docker and podman driving an OCI runtime.
#   integration/clients/run.sh [--runtime PATH] [--keep] [--out DIR] [--only policy] [containerd|docker|podman|buildah|all]...
# Each engine's daemon is started here with all its state under a scratch directory and stopped
# by pid at exit. Prints "ok - ..." / "not ok - ..." / "SKIP - ... : reason" per check and closes
# with "N passed, N failed, N skipped"; exits non-zero on any failure. With TESTUDO_IN_VM=1 a
# SKIP counts as a failure. The runtime defaults to $TESTUDO_RUNTIME, else /usr/sbin/runc.
# --only policy: each engine's audit-policy checks alone (policy.sh), a minute instead of several.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNTIME=${TESTUDO_RUNTIME:-/usr/sbin/runc}
CALL_TIMEOUT=${TESTUDO_CLIENTS_CALL_TIMEOUT:-90}   # bound on each daemon/CLI call, seconds
OUT=/tmp/testudo-clients-last
KEEP=
ONLY=
engines=()
while [ $# -gt 0 ]; do
  case $1 in
    --runtime) RUNTIME=$2; shift 2 ;;
    --runtime=*) RUNTIME=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    containerd|docker|podman|buildah) engines+=("$1"); shift ;;
    all) engines+=(containerd docker podman buildah); shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#engines[@]} -gt 0 ] || engines=(containerd docker podman)
[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root" >&2; exit 2; }
case $RUNTIME in /*) ;; *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;; esac
[ -x "$RUNTIME" ] || { echo "run.sh: runtime $RUNTIME is not executable"; echo "0 passed, 1 failed"; exit 1; }

. "$HERE/lib.sh"
bash "$HERE/setup.sh" || { echo "not ok - setup: installing the engines failed"; echo "0 passed, 1 failed"; exit 1; }

exec 3>&1   # the suite's stdout, for timeout dumps from inside $(...)
T=$(mktemp -d /tmp/testudo-clients.XXXXXX)
rm -rf "$OUT"; mkdir -p "$OUT"
trap cleanup EXIT
trap 'exit 130' INT TERM
make_wrapper
echo "# runtime under test: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); scratch: $T; logs: $OUT"

# One image for every engine, made from the busybox rootfs: an OCI layout that is also a
# docker-save archive. testudo-pause is the CRI sandbox ("pause") image.
bash "$HERE/../busybox-rootfs.sh" "$T/rootfs" >/dev/null
/usr/bin/python3 "$HERE/mkimage.py" "$T/rootfs" "$T/image.tar" \
  'testudo-busybox:latest=["sh"]' \
  'testudo-pause:latest=["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 1; done"]'
IMAGE=docker.io/library/testudo-busybox:latest

# The seccomp profiles of the project, in OCI form, and a small one made here.
PROFILES=$(cd "$HERE/../.." && pwd)/seccomp-profiles
/usr/bin/python3 - "$T/deny-mkdir.json" <<'PY'
import json, sys
json.dump({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]},
          open(sys.argv[1], "w"))
PY

# What the runtime itself says about a missing command, for the engines' error checks.
OWN_ERR=$(runtime_own_error)
echo "# the runtime's own error for a missing command: ${OWN_ERR:-<none written to --log>}"

declare -A TIMING
for engine in "${engines[@]}"; do
  ENGINE=$engine
  . "$HERE/cli-checks.sh"
  . "$HERE/policy.sh"
  . "$HERE/build-checks.sh"
  . "$HERE/$engine.sh"
  start=$SECONDS
  "${engine}_main"
  report_timeouts
  TIMING[$engine]=$((SECONDS - start))
  ENGINE=$engine note "took ${TIMING[$engine]} s"
done
ENGINE=summary

argv_summary > "$OUT/runtime-argv.txt"
for engine in "${engines[@]}"; do echo "$engine ${TIMING[$engine]} s"; done > "$OUT/timings.txt"
cp "$ARGV_LOG" "$OUT/runtime-argv-full.log"
echo "# runtime command lines seen: $OUT/runtime-argv.txt; timings: $(paste -sd, "$OUT/timings.txt")"
line="$PASS passed, $FAIL failed"
[ "$SKIPPED" -gt 0 ] && line="$line, $SKIPPED skipped"
echo "$line"
[ "$FAIL" -eq 0 ]
