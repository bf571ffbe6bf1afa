#!/usr/bin/env bash
# cgroup v2 limits observed for real, inside the test VM (pure cgroup v2, every controller):
# memory.max and the OOM killer, pids.max, cpu.max throttling, device rules, live update,
# pause/resume, kill --all, the other resource files and events --stats. Run on the host, it
# boots the VM (run.sh) and runs itself there with a copy of the host's testudo binary. Prints
# `ok - …` / `not ok - …` per test and a final `N passed, N failed`; exits non-zero on any
# failure. Nothing here skips: a missing feature fails.
set -uo pipefail
. "$(dirname "$0")/harness.sh"
in_vm "$0" "$@"

# --- the tests ---------------------------------------------------------------------------------

# A child allocating past memory.max is OOM-killed; memory.events counts it and `events`
# streams an {"type":"oom"} object.
t_memory_oom() {
  local id=oom
  bundle $id resources='{"memory": {"limit": 33554432, "swap": 33554432}}' <<'S' || return 1
sleep 1
sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived'
echo child=$?
cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max
grep oom_kill /sys/fs/cgroup/memory.events
sleep 100
S
  start $id || return 1
  tu events --interval 60s $id > "$work/$id.events" 2>&1 &
  local ev=$!
  wait_for 60 'grep -q "^oom_kill" "$work/$id.out"' || { kill $ev; cleanup $id; fail "no result: $(cat "$work/$id.out")"; return 1; }
  sleep 0.5
  kill $ev 2>/dev/null; wait $ev 2>/dev/null
  local out; out=$(cat "$work/$id.out"); cleanup $id
  has_line 'child=137' "the allocating child was not SIGKILLed" "$out" || return 1
  grep -q survived <<<"$out" && { fail "allocation past the limit survived"; return 1; }
  has_line '33554432' "memory.max" "$out" || return 1
  has_line '0' "memory.swap.max should be 0 (swap == limit)" "$out" || return 1
  grep -Eq '^oom_kill [1-9]' <<<"$out" || { fail "memory.events: $out"; return 1; }
  grep -q '"type":"oom"' "$work/$id.events" || { fail "events reported no oom: $(cat "$work/$id.events")"; return 1; }
}

# An init killed by the OOM killer before it execs is reported as such by create. Measured in the
# VM: with 256 KiB the init gets through setup and sh runs, with 128 KiB it is killed between
# "created" and a working sh, with 64 KiB and less it dies during setup; 16 KiB leaves a margin.
t_oom_at_create() {
  local id=oomcreate
  bundle $id resources='{"memory": {"limit": 16384, "swap": 16384}}' <<'S' || return 1
x=$(head -c 200000000 /dev/zero | tr "\0" a)
S
  local err
  err=$(tu run --bundle "$work/$id" $id 2>&1 >/dev/null)
  local code=$?
  cleanup $id
  [ $code -ne 0 ] || { fail "ran to success under 1 MiB"; return 1; }
  case "$err" in
    *"OOM killer"*"memory limit too low?"*) ;;
    *) [ $code -eq 137 ] || { fail "neither an OOM report nor 137: code $code: $err"; return 1; }
       fail "the init survived setup and was killed after exec (code 137): $err"; return 1 ;;
  esac
}

# Forks beyond pids.max fail with EAGAIN; pids.events counts them. `current` includes the cat
# reading it.
t_pids() {
  local id=pids
  bundle $id resources='{"pids": {"limit": 8}}' <<'S' || return 1
# ash gives up on the first fork that fails, so the loop runs in a subshell of its own.
(i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/shm/err
echo current=$(cat /sys/fs/cgroup/pids.current) max=$(cat /sys/fs/cgroup/pids.max)
grep -c "Resource temporarily unavailable" /dev/shm/err
grep '^max' /sys/fs/cgroup/pids.events
S
  local out; out=$(run_out $id)
  grep -Eq '^current=[1-8] max=8$' <<<"$out" || { fail "pids: $out"; return 1; }
  grep -Eq '^([1-9]|1[0-9])$' <<<"$out" || { fail "no fork failed: $out"; return 1; }
  grep -Eq '^max [1-9]' <<<"$out" || { fail "pids.events: $out"; return 1; }
}

# A busy loop under cpu.max 20% gets about its share, and nr_throttled grows.
t_cpu() {
  local id=cpu
  bundle $id resources='{"cpu": {"quota": 20000, "period": 100000, "shares": 1024}}' <<'S' || return 1
(while :; do :; done) &
sleep 3
kill $!
cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.stat
S
  local out; out=$(run_out $id)
  has_line '20000 100000' "cpu.max" "$out" || return 1
  has_line '100' "cpu.weight for 1024 shares" "$out" || return 1
  local usage throttled
  usage=$(awk '$1 == "usage_usec" {print $2}' <<<"$out")
  throttled=$(awk '$1 == "nr_throttled" {print $2}' <<<"$out")
  echo "    cpu: ${usage} us of 3 s wall under a 20% quota, nr_throttled ${throttled}"
  [ "${usage:-0}" -ge 300000 ] && [ "${usage:-0}" -le 1050000 ] || { fail "usage ${usage} us is not about 20% of 3 s"; return 1; }
  [ "${throttled:-0}" -ge 5 ] || { fail "nr_throttled ${throttled}"; return 1; }
}

# Device rules: a denied node opens with EPERM, an allowed one works (c 1:42 has no driver, so
# an open the program lets through ends in ENXIO).
t_devices() {
  local id=dev
  bundle $id resources='{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 43, "access": "r"}]}' caps=CAP_MKNOD <<'S' || return 1
mknod /dev/x c 1 42; mknod /dev/y c 1 43
head -c 4 /dev/zero | wc -c
echo x: $( (cat /dev/x) 2>&1 | sed 's/.*: //')
echo y: $( (cat /dev/y) 2>&1 | sed 's/.*: //')
echo yw: $( (echo > /dev/y) 2>&1 | sed 's/.*: //')
S
  local out; out=$(run_out $id)
  local want=$'4\nx: Operation not permitted\ny: No such device or address\nyw: Operation not permitted'
  [ "$out" = "$want" ] || { fail "got: $out"; return 1; }
}

# update changes live limits, through the flags and through --resources -.
t_update() {
  local id=upd
  bundle $id resources='{"memory": {"limit": 67108864}, "pids": {"limit": 50}, "cpu": {"quota": 50000, "period": 100000}}' <<'S' || return 1
sleep 1000
S
  start $id || return 1
  local forks='for i in 1 2 3 4 5; do sleep 5 & done 2>&1; echo done'
  local out
  out=$(tu exec $id sh -c "$forks" 2>&1)
  grep -q 'Resource temporarily unavailable' <<<"$out" && { cleanup $id; fail "forks failed before the update: $out"; return 1; }
  tu update --memory 48m --memory-swap 48m --pids-limit 4 --cpu-quota 30000 $id || { cleanup $id; fail "update"; return 1; }
  out=$(tu exec $id cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max 2>&1)
  [ "$out" = $'50331648\n0\n4\n30000 100000' ] || { cleanup $id; fail "after update: $out"; return 1; }
  out=$(tu exec $id sh -c "$forks" 2>&1)
  grep -q 'Resource temporarily unavailable' <<<"$out" || { cleanup $id; fail "forks past the new pids.max: $out"; return 1; }
  # Back to the init (sh, which reaps the orphaned sleeps) and its sleep.
  wait_for 20 'test "$(ps_count $id)" -le 2' || { fail "the exec'd sleeps did not end: $(tu ps --format json $id)"; cleanup $id; return 1; }
  echo '{"pids": {"limit": 6}}' | tu update --resources - $id || { cleanup $id; fail "update --resources -"; return 1; }
  tu update --memory-swap 96m $id || { cleanup $id; fail "swap alone"; return 1; }
  out=$(tu exec $id cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.swap.max 2>&1)
  [ "$out" = $'6\n50331648' ] || { cleanup $id; fail "pids.max 6 and swap 96m-48m: $out"; return 1; }
  out=$(echo '{"memory": {"limit": 4096, "checkBeforeUpdate": true}}' | tu update --resources - $id 2>&1)
  grep -q 'below the current usage' <<<"$out" || { cleanup $id; fail "checkBeforeUpdate: $out"; return 1; }
  cleanup $id
}

# pause stops a counter, resume restarts it.
t_pause() {
  local id=pause
  bundle $id <<'S' || return 1
i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; done
S
  start $id || return 1
  local n="/proc/$(init_pid $id)/root/dev/shm/n"
  counter() { local v; v=$(cat "$n" 2>/dev/null); echo "${v:-0}"; }
  wait_for 20 'test "$(counter)" -gt 10' || { cleanup $id; fail "counter never ran"; return 1; }
  tu pause $id || { cleanup $id; fail "pause"; return 1; }
  [ "$(status_of $id)" = paused ] || { cleanup $id; fail "not paused"; return 1; }
  local a b; a=$(counter); sleep 1; b=$(counter)
  [ "$a" = "$b" ] || { cleanup $id; fail "counter moved while paused: $a -> $b"; return 1; }
  tu resume $id || { cleanup $id; fail "resume"; return 1; }
  wait_for 20 'test "$(counter)" -gt $((b + 10))' || { cleanup $id; fail "counter did not restart"; return 1; }
  cleanup $id
}

# kill --all reaps a process tree (cgroup.kill), and delete removes the emptied cgroup.
t_kill_all() {
  local id=killall
  bundle $id <<'S' || return 1
sleep 100 & (sleep 100 & sleep 100; wait) & wait; sleep 100
S
  start $id || return 1
  wait_for 20 'test "$(ps_count $id)" -ge 5' || { cleanup $id; fail "tree: $(tu ps --format json $id)"; return 1; }
  local pids; pids=$(tu ps --format json $id | tr -d '[],' )
  tu kill --all $id KILL || { cleanup $id; fail "kill --all"; return 1; }
  wait_for 20 'test "$(ps_count $id)" -eq 0' || { cleanup $id; fail "left: $(tu ps --format json $id)"; return 1; }
  local p
  for p in $pids; do
    if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat 2>/dev/null; then cleanup $id; fail "pid $p survived"; return 1; fi
  done
  tu delete $id || { fail "delete"; return 1; }
  [ ! -e /sys/fs/cgroup/testudo/$id ] || { fail "cgroup left behind"; return 1; }
}

# kill --all with a catchable signal reaches every process of the tree, not just the init: each
# shell records the TERM it got in the rootfs's /tmp (its sleep gets one too, so the trap runs
# at once; init's trap waits for the shells).
t_kill_all_term() {
  local id=killterm got
  rm -f "$work"/rootfs/tmp/term.*
  bundle $id writable=1 <<'S' || return 1
for n in 1 2 3; do sh -c "trap 'echo TERM > /tmp/term.$n; exit 0' TERM; sleep 100 & wait" & done
trap 'wait; echo TERM > /tmp/term.init; exit 0' TERM
wait
S
  start $id || return 1
  wait_for 20 'test "$(ps_count $id)" -ge 7' || { fail "tree: $(tu ps --format json $id)"; cleanup $id; return 1; }
  tu kill --all $id TERM || { cleanup $id; fail "kill --all TERM"; return 1; }
  wait_for 20 'test "$(ps_count $id)" -eq 0' || { fail "left after TERM: $(tu ps --format json $id)"; cleanup $id; return 1; }
  cleanup $id
  got=$(cd "$work/rootfs/tmp" && grep -l TERM term.* 2>/dev/null | tr '\n' ' ')
  [ "$got" = "term.1 term.2 term.3 term.init " ] || { fail "processes that saw TERM: ${got:-none}"; return 1; }
}

# Every other resource lands in its file, and the cpuset is what the process inside gets.
# Prints which io weight file the kernel offers (BFQ's or iocost's).
t_resource_files() {
  local id=files
  bundle $id resources='{"cpu": {"cpus": "1", "mems": "0", "quota": 50000, "period": 100000, "burst": 20000, "idle": 1},
    "memory": {"reservation": 8388608},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}], "blockIO": {"weight": 500},
    "unified": {"memory.high": "50331648", "pids.max": "7"}}' <<'S' || return 1
cd /sys/fs/cgroup
grep Cpus_allowed_list /proc/self/status
echo cpus=$(cat cpuset.cpus) mems=$(cat cpuset.mems) low=$(cat memory.low) high=$(cat memory.high) pids=$(cat pids.max)
echo huge=$(cat hugetlb.2MB.max) rsvd=$(cat hugetlb.2MB.rsvd.max)
echo max=$(cat cpu.max) burst=$(cat cpu.max.burst) idle=$(cat cpu.idle)
for f in io.bfq.weight io.weight; do [ -e $f ] && echo "$f=$(cat $f | head -n 1)"; done
S
  local out; out=$(run_out $id)
  grep -Eq '^Cpus_allowed_list:\s+1$' <<<"$out" || { fail "cpuset seen inside: $out"; return 1; }
  has_line 'cpus=1 mems=0 low=8388608 high=50331648 pids=7' "files" "$out" || return 1
  has_line 'huge=4194304 rsvd=4194304' "hugetlb" "$out" || return 1
  has_line 'max=50000 100000 burst=20000 idle=1' "cpu.max, burst, idle" "$out" || return 1
  # io.weight 4950 is blkio 500 on runc's 10..1000 -> 1..10000 scale; BFQ takes blkio's.
  grep -Eqx 'io.bfq.weight=(default )?500|io.weight=default 4950' <<<"$out" || { fail "io weight: $out"; return 1; }
}

# events --stats: runc's object with the live values.
t_stats() {
  local id=stats
  bundle $id resources='{"memory": {"limit": 67108864}, "pids": {"limit": 20}}' <<'S' || return 1
sleep 100 & exec sleep 100
S
  start $id || return 1
  wait_for 20 'test "$(ps_count $id)" -eq 2' || { cleanup $id; fail "ps: $(tu ps --format json $id)"; return 1; }
  local out; out=$(tu events --stats $id); cleanup $id
  python3 - "$out" <<'PY' || { fail "stats: $out"; return 1; }
import json, sys
v = json.loads(sys.argv[1])
d = v["data"]
assert v["type"] == "stats", v
assert d["memory"]["usage"]["limit"] == 67108864, d["memory"]
assert d["memory"]["usage"]["usage"] > 0, d["memory"]
assert d["pids"] == {"current": 2, "limit": 20}, d["pids"]
assert d["cpu"]["usage"]["total"] > 0, d["cpu"]
PY
}

# --- run ---------------------------------------------------------------------------------------
controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
for c in cpuset cpu io memory hugetlb pids; do
  grep -qw $c <<<"$controllers" || { echo "not ok - the VM's cgroup2 lacks the $c controller (has: $controllers)"; exit 1; }
done
setup_work cgroups
# Rootless (issue 14): a non-root user (uid 4242, no passwd entry needed) with a cgroup2 subtree
# delegated to it, as systemd's Delegate=yes gives one. Its `spec --rootless` bundle with limits
# and a cgroupsPath in that subtree: the limits land, the OOM killer and pids.max act, and delete
# leaves the subtree as it found it. The user's own process sits in a leaf of the subtree first
# (CLONE_INTO_CGROUP needs write access to the common ancestor's cgroup.procs).
t_rootless_delegated() {
  local uid=4242 d=/sys/fs/cgroup/testudo-rl-4242 b=$work/rl
  local as_user=(setpriv --reuid=$uid --regid=$uid --clear-groups env XDG_RUNTIME_DIR=/run/user/$uid)
  chmod o+x "$work"
  mkdir -p "$d/shell" "/run/user/$uid" "$b" || return 1
  echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control &&
    echo "+memory +pids +cpu" > "$d/cgroup.subtree_control" || { fail "enable controllers in $d"; return 1; }
  chown -R $uid:$uid "$d" "/run/user/$uid" "$b" && chmod 700 "/run/user/$uid"
  "${as_user[@]}" "$BIN" spec --rootless --bundle "$b" || { fail "spec --rootless as uid $uid"; return 1; }
  python3 - "$b" "$work/rootfs" <<'PY'
import json, sys
d, rootfs = sys.argv[1:3]
c = json.load(open(d + "/config.json"))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
# The container's own cgroup at /sys/fs/cgroup and 0::/ in /proc/self/cgroup need a cgroup
# namespace, which the default spec no longer has (runc's has none).
if not any(n["type"] == "cgroup" for n in c["linux"]["namespaces"]):
    c["linux"]["namespaces"].append({"type": "cgroup"})
c["process"]["args"] = ["sh", "-c", """id -u; cat /proc/self/uid_map; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max
sh -c 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived'; echo child=$?
(for i in $(seq 1 40); do sleep 5 & done) 2>/dev/null; n=0; for p in /proc/[0-9]*; do n=$((n + 1)); done; echo forks=$n"""]
c["linux"]["cgroupsPath"] = "/testudo-rl-4242/c1"
c["linux"]["resources"] = {"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 100000}}
json.dump(c, open(d + "/config.json", "w"))
PY
  local out rc
  out=$(sh -c 'echo $$ > "$1/shell/cgroup.procs" && shift && exec "$@"' - "$d" "${as_user[@]}" "$BIN" run --bundle "$b" rl1 2>&1); rc=$?
  local left; left=$(ls -d "$d"/*/ 2>/dev/null | grep -v "/shell/$")
  rmdir "$d/shell" "$d" 2>/dev/null
  [ $rc -eq 0 ] || { fail "run as uid $uid: exit $rc: $out"; return 1; }
  has_line '0' "root in the user namespace" "$out" || return 1
  grep -Eq "^ +0 +$uid +1$" <<<"$out" || { fail "uid_map: $out"; return 1; }
  has_line '33554432' "memory.max" "$out" || return 1
  has_line '20' "pids.max" "$out" || return 1
  has_line '20000 100000' "cpu.max" "$out" || return 1
  has_line 'child=137' "the allocating child was not OOM-killed" "$out" || return 1
  local forks; forks=$(sed -n 's/^forks=//p' <<<"$out")
  [ -n "$forks" ] && [ "$forks" -le 20 ] || { fail "pids.max 20 let $forks processes run: $out"; return 1; }
  [ -z "$left" ] || { fail "delete left $left"; return 1; }
}

run_test "memory.max: an allocation past it is OOM-killed and events reports it" t_memory_oom
run_test "an init OOM-killed during create is reported as such" t_oom_at_create
run_test "pids.max: forks beyond it fail" t_pids
run_test "cpu.max: a busy loop gets its share and is throttled" t_cpu
run_test "devices: a denied node opens with EPERM, an allowed one works" t_devices
run_test "update changes live limits (flags and --resources -)" t_update
run_test "pause stops a counter, resume restarts it" t_pause
run_test "kill --all reaps a process tree; delete removes the cgroup" t_kill_all
run_test "kill --all TERM reaches every process of the tree" t_kill_all_term
run_test "cpuset, cpu burst and idle, memory.low, hugetlb, io weight and unified land in their files" t_resource_files
run_test "events --stats reports live memory, pids and cpu" t_stats
run_test "rootless with a delegated subtree: memory, pids and cpu limits as a non-root user" t_rootless_delegated
finish
