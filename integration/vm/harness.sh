# Sourced by the VM test files: bundles on a busybox rootfs, testudo calls, polling, and the
# `ok - …` / `not ok - …` lines with the closing `N passed, N failed`.
#
# A test file run on the host re-executes itself inside the VM (integration/vm/run.sh); inside
# (TESTUDO_IN_VM=1) it runs its tests. Nothing skips: a feature the VM lacks is a failure.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${TESTUDO_BIN:-$repo/target/x86_64-unknown-linux-gnu/release/testudo}
passed=0 failed=0

# host_prereqs: what the guest runs from the host's / and the host must therefore have:
# apparmor_parser; SELinux's reference policy with semodule (policycoreutils), setenforce
# (selinux-utils) and keyctl. The policy only sits in /etc/selinux here: the host's kernel runs
# no SELinux.
host_prereqs() {
  [ -n "${TESTUDO_IN_VM:-}" ] && return 0
  command -v apparmor_parser >/dev/null && command -v semodule >/dev/null && command -v setenforce >/dev/null &&
    command -v keyctl >/dev/null &&
    compgen -G '/etc/selinux/default/policy/policy.*' >/dev/null && return 0
  local pkgs=(apparmor selinux-policy-default keyutils) install
  install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${pkgs[@]}")
  # Package lists older than the archive: update once, as run.sh does.
  "${install[@]}" >/dev/null || { apt-get update -qq -o DPkg::Lock::Timeout=600 && "${install[@]}" >/dev/null; } ||
    { echo "not ok - apt-get install ${pkgs[*]}"; exit 1; }
}

# in_vm SCRIPT ARGS…: on the host, run `bash SCRIPT ARGS…` in the VM and exit with its status.
# The busybox rootfs is built here (a second on the host, a minute in the guest, where every exec
# costs ~110 ms under TCG) and the testudo binary is copied next to it, so that a rebuild on the
# host while the VM runs cannot replace the file under the guest (the next exec would be ESTALE).
in_vm() {
  [ -n "${TESTUDO_IN_VM:-}" ] && return 0
  [ -x "$BIN" ] || { echo "not ok - no testudo binary at $BIN (cargo build --release)"; exit 1; }
  local seed rc
  seed=$(mktemp -d /tmp/testudo-vm-seed.XXXXXX)
  bash "$repo/integration/busybox-rootfs.sh" "$seed/rootfs" >/dev/null &&
    cp "$BIN" "$seed/testudo" || { rm -rf "$seed"; echo "not ok - busybox rootfs or testudo copy"; exit 1; }
  TESTUDO_BIN=$seed/testudo TESTUDO_ROOTFS_SEED=$seed/rootfs "$repo/integration/vm/run.sh" bash "$@"
  rc=$?
  rm -rf "$seed"
  exit $rc
}

# vm_suite NAME BOUND SCRIPT ARGS…: how a suites.d entry runs its VM tests on the host. `bash
# SCRIPT ARGS…` under a bound of BOUND seconds (installs included: the guest's own timeout is
# TESTUDO_VM_TIMEOUT), its output streamed; a run that ends without its closing `N passed, N
# failed` (a VM that did not boot, a guest killed at its timeout, the bound) is reported as one
# failure in the suite's own terms. Returns the run's status.
vm_suite() {
  local name=$1 bound=$2 log rc; shift 2
  log=$(mktemp)
  # timeout signals its whole process group: qemu and virtiofsd go too.
  timeout --kill-after=20 "$bound" bash "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if ! grep -Eq '^[0-9]+ passed, [0-9]+ failed' "$log"; then
    # run.sh exits 124 too when the guest hits its own TESTUDO_VM_TIMEOUT, saying so first.
    if grep -q '^vm: the guest ran past' "$log"; then
      echo "not ok - the $name guest ran past its own timeout (TESTUDO_VM_TIMEOUT ${TESTUDO_VM_TIMEOUT:-900} s)"
    elif [ "$rc" -eq 124 ]; then echo "not ok - the $name suite ran past $bound s"
    else echo "not ok - the $name run ended (status $rc) without its closing line"; fi
    echo "0 passed, 1 failed"
    [ "$rc" -ne 0 ] || rc=1
  fi
  rm -f "$log"
  return "$rc"
}

# setup_work NAME: a work dir with the busybox rootfs every bundle uses, and the state dir.
setup_work() {
  [ -x "$BIN" ] || { echo "not ok - no testudo binary at $BIN (cargo build --release)"; exit 1; }
  STATE=/run/testudo-vm-$1
  work=$(mktemp -d "/tmp/vm-$1.XXXXXX")
  # Also when run in the guest directly (no in_vm copy): one copy, early, and from then on the
  # host's rebuilds cannot touch it.
  cp "$BIN" "$work/testudo" || { echo "not ok - copy $BIN"; exit 1; }
  BIN=$work/testudo
  if [ -n "${TESTUDO_ROOTFS_SEED:-}" ]; then
    cp -a "$TESTUDO_ROOTFS_SEED" "$work/rootfs" || { echo "not ok - copy $TESTUDO_ROOTFS_SEED"; exit 1; }
  else
    bash "$repo/integration/busybox-rootfs.sh" "$work/rootfs" >/dev/null ||
      { echo "not ok - busybox rootfs"; exit 1; }
  fi
  suite_start=$SECONDS
}

fail() { echo "    $*" >&2; return 1; }
# has_line LINE WHAT OUTPUT: OUTPUT has a line that is the whole of LINE (a grep pattern), or
# the test fails, naming WHAT and showing OUTPUT.
has_line() { grep -qx -- "$1" <<<"$3" || fail "$2: $3"; }
tu() { "$BIN" --root "$STATE" "$@"; }

# bundle ID [resources=JSON] [caps=CAP,CAP] [apparmor=PROFILE] [selinux=LABEL] [mountlabel=LABEL]
#        [writable=1] [cgroupspath=PATH] [dropns=TYPE] [annotations=JSON] < SCRIPT: a bundle
# from `testudo spec` running the script (read from stdin, so it needs no quoting) as `sh -c`;
# the root is read-only (spec's default) unless writable=1.
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
# The container's own cgroup at /sys/fs/cgroup and 0::/ in /proc/self/cgroup need a cgroup
# namespace, which the default spec no longer has (runc's has none).
if not any(n["type"] == "cgroup" for n in c["linux"]["namespaces"]):
    c["linux"]["namespaces"].append({"type": "cgroup"})
c["process"]["args"] = ["sh", "-c", open(d + "/script").read()]
if "resources" in opts:
    c["linux"].setdefault("resources", {}).update(json.loads(opts["resources"]))
for cap in filter(None, opts.get("caps", "").split(",")):
    for s in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][s].append(cap)
if opts.get("writable") == "1":
    c["root"]["readonly"] = False
if "apparmor" in opts:
    c["process"]["apparmorProfile"] = opts["apparmor"]
if "selinux" in opts:
    c["process"]["selinuxLabel"] = opts["selinux"]
if "mountlabel" in opts:
    c["linux"]["mountLabel"] = opts["mountlabel"]
if "cgroupspath" in opts:
    c["linux"]["cgroupsPath"] = opts["cgroupspath"]
if "dropns" in opts:
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != opts["dropns"]]
if "annotations" in opts:
    c.setdefault("annotations", {}).update(json.loads(opts["annotations"]))
json.dump(c, open(d + "/config.json", "w"))
PY
}

# Create and start in the background; the container's output goes to $work/ID.out.
start() {
  tu create --bundle "$work/$1" "$1" > "$work/$1.out" 2> "$work/$1.err" || { cat "$work/$1.err" >&2; return 1; }
  tu start "$1" || return 1
}

# wait_for SECONDS 'SHELL CODE': poll until the code succeeds. The code is a string evaluated on
# every try, so that `wait_for 20 'test "$(ps_count x)" -eq 0'` re-reads the count.
wait_for() {
  local deadline=$((SECONDS + $1))
  until eval "$2"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# JSON read with shell builtins: python3 costs ~1.3 s a call in the guest, and these are polled.
init_pid() { local j; j=$(tu state "$1") || return 1; [[ $j =~ \"pid\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }
status_of() { local j; j=$(tu state "$1") || return 1; [[ $j =~ \"status\":\ *\"([a-z]+)\" ]] && echo "${BASH_REMATCH[1]}"; }
# `ps --format json` prints a JSON array of pids.
ps_count() {
  local j c; j=$(tu ps --format json "$1") || return 1
  j=${j//[^0-9,]/}; c=${j//[^,]/}
  if [ -z "$j" ]; then echo 0; else echo $(( ${#c} + 1 )); fi
}
cleanup() { tu delete --force "$1" >/dev/null 2>&1; }
# run_out ID: `run` the bundle ID in the foreground; its output and errors, and nothing left.
run_out() { tu run --bundle "$work/$1" "$1" 2>&1; local rc=$?; cleanup "$1"; return $rc; }

# run_test NAME FUNCTION. TESTUDO_ONLY=REGEX (for working on one test) runs only the functions
# it matches; the others are not run and not counted.
run_test() {
  local name=$1 fn=$2 start=$SECONDS
  [[ -z ${TESTUDO_ONLY:-} || $fn =~ $TESTUDO_ONLY ]] || return 0
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
