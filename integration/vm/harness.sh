# Sourced by the VM test files: bundles on a busybox rootfs, testudo calls, polling, and the
# `ok - …` / `not ok - …` lines with the closing `N passed, N failed`.
#
# A test file run on the host re-executes itself inside the VM (integration/vm/run.sh); inside
# (TESTUDO_IN_VM=1) it runs its tests. Nothing skips: a feature the VM lacks is a failure.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${TESTUDO_BIN:-$repo/target/x86_64-unknown-linux-gnu/release/testudo}
passed=0 failed=0

# in_vm SCRIPT ARGS…: on the host, run SCRIPT in the VM and exit with its status.
in_vm() {
  [ -n "${TESTUDO_IN_VM:-}" ] && return 0
  exec "$repo/integration/vm/run.sh" bash "$@"
}

# setup_work NAME: a work dir with the busybox rootfs every bundle uses, the state dir, and a
# copy of the testudo binary: a rebuild on the host while the VM runs replaces the shared file,
# and the guest's next exec of it would fail with ESTALE.
setup_work() {
  [ -x "$BIN" ] || { echo "not ok - no testudo binary at $BIN (cargo build --release)"; exit 1; }
  STATE=/run/testudo-vm-$1
  work=$(mktemp -d "/tmp/vm-$1.XXXXXX")
  cp "$BIN" "$work/testudo" || { echo "not ok - copy $BIN"; exit 1; }
  BIN=$work/testudo
  bash "$repo/integration/busybox-rootfs.sh" "$work/rootfs" >/dev/null ||
    { echo "not ok - busybox rootfs"; exit 1; }
  suite_start=$SECONDS
}

fail() { echo "    $*" >&2; return 1; }
tu() { "$BIN" --root "$STATE" "$@"; }

# bundle ID [resources=JSON] [caps=CAP,CAP] [apparmor=PROFILE] < SCRIPT: a bundle from
# `testudo spec` running the script (read from stdin, so it needs no quoting) as `sh -c`.
bundle() {
  local id=$1; shift
  mkdir -p "$work/$id"
  cat > "$work/$id/script"
  "$BIN" spec --bundle "$work/$id" || return 1
  python3 - "$work/$id" "$work/rootfs" "$@" <<'PY'
import json, sys
d, rootfs = sys.argv[1:3]
opts = dict(a.split("=", 1) for a in sys.argv[3:])
c = json.load(open(d + "/config.json"))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", open(d + "/script").read()]
if "resources" in opts:
    c["linux"].setdefault("resources", {}).update(json.loads(opts["resources"]))
for cap in filter(None, opts.get("caps", "").split(",")):
    for s in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][s].append(cap)
if "apparmor" in opts:
    c["process"]["apparmorProfile"] = opts["apparmor"]
json.dump(c, open(d + "/config.json", "w"))
PY
}

# Create and start in the background; the container's output goes to $work/ID.out.
start() {
  tu create --bundle "$work/$1" "$1" > "$work/$1.out" 2> "$work/$1.err" || { cat "$work/$1.err" >&2; return 1; }
  tu start "$1" || return 1
}

# wait_for SECONDS COMMAND…: poll until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

init_pid() { tu state "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
ps_count() { tu ps --format json "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
cleanup() { tu delete --force "$1" >/dev/null 2>&1; }

run_test() {
  local name=$1 fn=$2 start=$SECONDS
  if "$fn"; then
    passed=$((passed + 1)); echo "ok - $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); echo "not ok - $name ($((SECONDS - start)) s)"
  fi
}

finish() {
  echo "$passed passed, $failed failed ($((SECONDS - suite_start)) s)"
  rm -rf "$work"
  [ "$failed" -eq 0 ]
}
