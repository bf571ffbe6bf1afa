#!/usr/bin/env bash
# checkpoint and restore with Debian's CRIU 3.17, inside the test VM: the host's kernel (6.18)
# makes CRIU 3.17 refuse every dump ("Unexpected rt vDSO area bounds"), the VM's 6.1 does not.
# A busybox counter (a shell writing i, i+1, … through a bind mount of the host's) is
# checkpointed, seen gone, restored, and seen counting on from where it stopped, with `state`,
# `exec`, `kill` and `delete` working on the restored container; pre-dump then dump on top of it;
# --leave-running. Run on the host, it boots the VM and runs itself there (see harness.sh).
# Prints `ok - …` / `not ok - …` per test and `N passed, N failed`. Nothing skips.
set -uo pipefail
. "$(dirname "$0")/harness.sh"
in_vm "$0" "$@"

# --- the tests ---------------------------------------------------------------------------------
setup_work criu
passed=0 failed=0
# Process substitution needs /dev/fd, which the guest's devtmpfs lacks. CRIU's dump asks the
# socket diagnostics of every kind, probes nftables and dumps conntrack entries (through modules
# of Debian's kernel; run.sh keeps them), and checks TCP repair over loopback, which the guest
# leaves down.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
EXTRA="inet_diag tcp_diag udp_diag unix_diag netlink_diag af_packet_diag libcrc32c nfnetlink nf_tables nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack nf_conntrack_netlink"
for m in $EXTRA; do
  grep -q "^$m " /proc/modules || /run/testudo-vm/busybox insmod "${TESTUDO_VM_EXTRA_MODULES:-?}/$m.ko" ||
    { echo "not ok - load $m from ${TESTUDO_VM_EXTRA_MODULES:-?}"; echo "0 passed, 1 failed"; exit 1; }
done
ip link set lo up || { echo "not ok - ip link set lo up"; echo "0 passed, 1 failed"; exit 1; }
command -v criu >/dev/null || { echo "not ok - criu is installed (apt-get install criu)"; echo "0 passed, 1 failed"; exit 1; }

# counter_bundle ID: a writable busybox bundle whose shell counts into /data/n, /data being a
# bind mount of $work/ID.data on the host; stdio are pipes (see with_pipes).
counter_bundle() {
  local id=$1
  mkdir -p "$work/$id.data"
  bundle "$id" writable=1 <<'S' || return 1
i=0; while :; do echo $i > /data/n; i=$((i+1)); sleep 0.05; done
S
  python3 - "$work/$id/config.json" "$work/$id.data" <<'PY'
import json, sys
p, data = sys.argv[1:]
c = json.load(open(p))
c["mounts"].append({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]})
json.dump(c, open(p, "w"))
PY
}
counter() { local v; v=$(cat "$work/$1.data/n" 2>/dev/null); echo "${v:-0}"; }

# with_pipes ID CMD…: CMD with stdin, stdout and stderr anonymous pipes (output kept in
# $work/ID.out), as a client such as containerd or conmon gives them: CRIU saves a pipe whose
# other end is outside the container as such, and restore hands the restored init new ones.
with_pipes() {
  local id=$1; shift
  "$@" < <(:) > >(cat >> "$work/$id.out") 2>&1
}

# The evidence when CRIU fails: testudo's error quotes the log; the log's last lines too.
criu_log() { echo "    --- $1 (${TESTUDO_CRIU_LOG_LINES:-15} lines before its end):"; tail -n "${TESTUDO_CRIU_LOG_LINES:-15}" "$1" 2>/dev/null | sed 's/^/    /'; } >&2

gone() { [ ! -e "/proc/$1" ] || grep -q ') Z' "/proc/$1/stat" 2>/dev/null; }

# checkpoint --image-path ID: the container is dumped and destroyed (as runc), the counter stops;
# restore -d: `state` says running with the pid of --pid-file, the counter goes on from where it
# stopped (never back to 0), /data is the host's directory again, exec sees the restored pid
# namespace, kill and delete end it and its cgroup.
t_checkpoint_restore() {
  local id=cr img=$work/cr.img wk=$work/cr.work
  counter_bundle $id || return 1
  with_pipes $id tu create --bundle "$work/$id" $id || { fail "create: $(cat "$work/$id.out")"; return 1; }
  tu start $id || { cleanup $id; fail "start"; return 1; }
  wait_for 30 'test "$(counter $id)" -gt 5' || { cleanup $id; fail "counter never ran"; return 1; }
  local pid1; pid1=$(init_pid $id)
  local out; out=$(tu checkpoint --image-path "$img" --work-path "$wk" $id 2>&1) ||
    { cleanup $id; fail "checkpoint: $out"; criu_log "$wk/dump.log"; return 1; }
  wait_for 10 "gone $pid1" || { cleanup $id; fail "init $pid1 still there after checkpoint"; return 1; }
  out=$(tu state $id 2>&1) && { cleanup $id; fail "state after checkpoint: $out (runc destroys the container)"; return 1; }
  [ -d /sys/fs/cgroup/testudo/$id ] && { fail "the cgroup is left after checkpoint"; return 1; }
  local a b; a=$(counter $id); sleep 1; b=$(counter $id)
  [ "$a" = "$b" ] || { fail "counter moved after checkpoint: $a -> $b"; return 1; }
  echo "    # checkpointed at $b; images: $(du -sk "$img" | cut -f1) KiB" >&2

  with_pipes $id tu restore -d --image-path "$img" --work-path "$wk" --bundle "$work/$id" --pid-file "$work/$id.pid" $id ||
    { fail "restore: $(tail -3 "$work/$id.out")"; criu_log "$wk/restore.log"; cleanup $id; return 1; }
  [ "$(status_of $id)" = running ] || { fail "status after restore: $(tu state $id 2>&1)"; cleanup $id; return 1; }
  local pid2; pid2=$(init_pid $id)
  [ "$pid2" = "$(cat "$work/$id.pid")" ] || { fail "state pid $pid2, --pid-file $(cat "$work/$id.pid")"; cleanup $id; return 1; }
  [ "$(cat /proc/$pid2/cgroup)" = "0::/testudo/$id" ] || { fail "restored init's cgroup: $(cat /proc/$pid2/cgroup)"; cleanup $id; return 1; }
  local first; first=$(counter $id)
  [ "$first" -ge "$b" ] || { fail "counter went back: $b at checkpoint, $first after restore"; cleanup $id; return 1; }
  wait_for 30 'test "$(counter $id)" -gt $((b + 5))' || { fail "counter stuck at $(counter $id) after restore (was $b)"; cleanup $id; return 1; }
  echo "    # counter $b at checkpoint, $first right after restore, $(counter $id) later" >&2
  # The restored namespaces: exec joins them and sees the counter's shell as pid 1.
  out=$(tu exec $id sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo; cat /data/n') || { fail "exec: $out"; cleanup $id; return 1; }
  grep -q '^sh -c i=0' <<<"$out" || { fail "exec sees pid 1 as: $out"; cleanup $id; return 1; }
  tu kill $id KILL || { fail "kill"; cleanup $id; return 1; }
  wait_for 10 'test "$(status_of $id)" = stopped' || { fail "not stopped after kill: $(tu state $id 2>&1)"; cleanup $id; return 1; }
  tu delete $id || { fail "delete"; return 1; }
  [ ! -d /sys/fs/cgroup/testudo/$id ] || { fail "cgroup left after delete"; return 1; }
}

# pre-dump, then a dump with --parent-path ../P1 on top of it: the pre-dump leaves the counter
# running, the dump records P1 as its parent (CRIU's `parent` link) and the restore continues.
t_pre_dump() {
  local id=pd d=$work/pd.img
  counter_bundle $id || return 1
  with_pipes $id tu create --bundle "$work/$id" $id || { fail "create"; return 1; }
  tu start $id || { cleanup $id; fail "start"; return 1; }
  wait_for 30 'test "$(counter $id)" -gt 5' || { cleanup $id; fail "counter never ran"; return 1; }
  local out; out=$(tu checkpoint --pre-dump --image-path "$d/p1" $id 2>&1) ||
    { cleanup $id; fail "pre-dump: $out"; criu_log "$d/p1/dump.log"; return 1; }
  [ "$(status_of $id)" = running ] || { cleanup $id; fail "not running after pre-dump"; return 1; }
  local a; a=$(counter $id)
  wait_for 20 'test "$(counter $id)" -gt $((a + 3))' || { cleanup $id; fail "counter stopped after pre-dump"; return 1; }
  out=$(tu checkpoint --image-path "$d/p2" --parent-path ../p1 $id 2>&1) ||
    { cleanup $id; fail "dump on the pre-dump: $out"; criu_log "$d/p2/dump.log"; return 1; }
  [ "$(readlink "$d/p2/parent")" = ../p1 ] || { fail "p2/parent: $(ls -l "$d/p2")"; return 1; }
  local b; b=$(counter $id)
  echo "    # pre-dump $(du -sk "$d/p1" | cut -f1) KiB, dump on it $(du -sk "$d/p2" | cut -f1) KiB" >&2
  with_pipes $id tu restore -d --image-path "$d/p2" --bundle "$work/$id" $id ||
    { fail "restore: $(tail -3 "$work/$id.out")"; criu_log "$d/p2/restore.log"; cleanup $id; return 1; }
  [ "$(status_of $id)" = running ] || { fail "status after restore"; cleanup $id; return 1; }
  [ "$(counter $id)" -ge "$b" ] || { fail "counter went back: $b -> $(counter $id)"; cleanup $id; return 1; }
  wait_for 30 'test "$(counter $id)" -gt $((b + 5))' || { fail "counter stuck after restore"; cleanup $id; return 1; }
  cleanup $id
}

# --leave-running: the container keeps its pid and counts on; its image restores a second
# container that starts from the value at the checkpoint, in the foreground: restore waits for it,
# exits 137 when it is SIGKILLed, and deletes it.
t_leave_running() {
  local id=lr img=$work/lr.img
  counter_bundle $id || return 1
  with_pipes $id tu create --bundle "$work/$id" $id || { fail "create"; return 1; }
  tu start $id || { cleanup $id; fail "start"; return 1; }
  wait_for 30 'test "$(counter $id)" -gt 5' || { cleanup $id; fail "counter never ran"; return 1; }
  local pid1 before; pid1=$(init_pid $id); before=$(counter $id)
  local out; out=$(tu checkpoint --leave-running --image-path "$img" $id 2>&1) ||
    { cleanup $id; fail "checkpoint --leave-running: $out"; criu_log "$img/dump.log"; return 1; }
  local at; at=$(counter $id)
  [ "$(status_of $id)" = running ] && [ "$(init_pid $id)" = "$pid1" ] || { cleanup $id; fail "after --leave-running: $(tu state $id)"; return 1; }
  wait_for 20 'test "$(counter $id)" -gt $((at + 20))' || { cleanup $id; fail "counter stopped after --leave-running"; return 1; }
  cleanup $id
  local now; now=$(counter $id)
  # In the foreground this time: restore waits for the container, and deletes it once it ends.
  with_pipes $id tu restore --image-path "$img" --bundle "$work/$id" $id &
  local rpid=$! rc
  wait_for 60 'test "$(status_of $id 2>/dev/null)" = running' || { fail "restore: $(tail -3 "$work/$id.out")"; criu_log "$img/restore.log"; cleanup $id; return 1; }
  # The restored shell counts on from its checkpointed i (between `before` and `at`), below
  # where the first one got.
  wait_for 10 'test "$(counter $id)" -lt "$now"' || { fail "restored counter did not restart from the checkpoint: $before before it, $now at delete, $(counter $id) now"; cleanup $id; return 1; }
  local r; r=$(counter $id)
  echo "    # $before before the checkpoint, $at after it, $now when the first was deleted, restored at $r" >&2
  [ "$r" -ge "$before" ] || { fail "restored counter $r below the $before it had before the checkpoint"; cleanup $id; return 1; }
  tu kill $id KILL || { fail "kill"; cleanup $id; return 1; }
  wait $rpid; rc=$?
  [ $rc -eq 137 ] || { fail "the foreground restore exited $rc, not 137 (its container was SIGKILLed)"; cleanup $id; return 1; }
  out=$(tu state $id 2>&1) && { fail "the foreground restore left its container: $out"; cleanup $id; return 1; }
  return 0
}

# podman 4.3 (cgroupfs manager: the VM has no systemd) with --runtime testudo: `podman container
# checkpoint` stops a counter (podman says exited), `podman container restore` continues it from
# where it stopped, in a running container podman can exec into and remove.
t_podman() {
  local P=/run/testudo-vm-criu-podman out cid pid1 pid2 b
  mkdir -p $P/root $P/runroot $P/tmp $P/data
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' $P/runroot $P/root > $P/storage.conf
  cat > $P/containers.conf <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
runtime_supports_json = ["crun", "runc", "$(basename "$BIN")"]
EOF
  pm() { timeout 150 env CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf \
    podman --root $P/root --runroot $P/runroot --storage-driver overlay --runtime "$BIN" "$@"; }
  pcounter() { local v; v=$(cat $P/data/n 2>/dev/null); echo "${v:-0}"; }
  out=$(python3 "$repo/integration/clients/mkimage.py" "$work/rootfs" "$P/image.tar" 'testudo-busybox:latest=["sh"]' 2>&1) || { fail "mkimage: $out"; return 1; }
  out=$(pm load -i $P/image.tar 2>&1) || { fail "podman load: $out"; return 1; }
  cid=$(pm run -d --network none -v $P/data:/data testudo-busybox sh -c 'i=0; while :; do echo $i > /data/n; i=$((i+1)); sleep 0.05; done' 2>&1) ||
    { fail "podman run -d: $cid"; return 1; }
  wait_for 30 'test "$(pcounter)" -gt 5' || { fail "counter never ran: $(pm logs $cid 2>&1 | tail -3)"; pm rm -f $cid; return 1; }
  pid1=$(pm inspect -f '{{.State.Pid}}' $cid)
  local ud=$P/root/overlay-containers/$cid/userdata
  out=$(pm container checkpoint $cid 2>&1) || { fail "podman container checkpoint: $out"; criu_log $ud/dump.log; pm rm -f $cid; return 1; }
  wait_for 10 "gone $pid1" || { fail "init $pid1 still there after podman checkpoint"; pm rm -f $cid; return 1; }
  has_line exited "podman inspect after checkpoint" "$(pm inspect -f '{{.State.Status}}' $cid 2>&1)" || { pm rm -f $cid; return 1; }
  b=$(pcounter); sleep 1
  [ "$(pcounter)" = "$b" ] || { fail "counter moved after checkpoint: $b -> $(pcounter)"; pm rm -f $cid; return 1; }
  out=$(pm container restore $cid 2>&1) || { fail "podman container restore: $out"; criu_log $ud/restore.log; pm rm -f $cid; return 1; }
  has_line running "podman inspect after restore" "$(pm inspect -f '{{.State.Status}}' $cid 2>&1)" || { pm rm -f $cid; return 1; }
  pid2=$(pm inspect -f '{{.State.Pid}}' $cid)
  [ -d /proc/$pid2 ] && [ "$pid2" != "$pid1" ] || { fail "restored pid $pid2 (was $pid1)"; pm rm -f $cid; return 1; }
  [ "$(pcounter)" -ge "$b" ] || { fail "counter went back: $b -> $(pcounter)"; pm rm -f $cid; return 1; }
  wait_for 30 'test "$(pcounter)" -gt $((b + 5))' || { fail "counter stuck at $(pcounter) after podman restore (was $b)"; pm rm -f $cid; return 1; }
  echo "    # podman: $b at checkpoint, $(pcounter) after restore" >&2
  out=$(pm exec $cid cat /data/n 2>&1) || { fail "podman exec after restore: $out"; pm rm -f $cid; return 1; }
  out=$(pm rm -f $cid 2>&1) || { fail "podman rm -f: $out"; return 1; }
  gone $pid2 || { fail "restored init $pid2 survived podman rm -f"; return 1; }
}

run_test "checkpoint stops a counter, restore -d continues it; state, exec, kill, delete work" t_checkpoint_restore
run_test "pre-dump then dump --parent-path ../p1, and restore" t_pre_dump
run_test "checkpoint --leave-running keeps it running; its image restores in the foreground" t_leave_running
run_test "podman container checkpoint / restore --runtime testudo" t_podman
finish
