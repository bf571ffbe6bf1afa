#!/usr/bin/env bash
# Docker 20.10 and containerd 1.6 driving testudo inside the test VM (pure cgroup v2 with every
# controller, AppArmor on), for what the host (hybrid cgroups, no AppArmor) cannot show: OOM kills
# under --memory (exit 137, Docker's OOMKilled, containerd's OOM event), the v2 limit files seen
# from inside the container at run and after `docker update`, `docker stats`' limit, and Docker's
# AppArmor: its own docker-default profile and a profile given with --security-opt.
#
# Run on the host: it installs what the guest runs from the host's / (the engines, apparmor),
# builds the image archive here (the layer tar takes the guest far longer) and runs itself in the
# VM. Inside, the daemons are started with the client suite's helpers (integration/clients/
# lib.sh, docker.sh, containerd.sh) with all state on a tmpfs, and every engine call is bounded
# by a timeout that dumps the engine's state. Prints `ok - …` / `not ok - …` per check and a final
# `N passed, N failed`; exits non-zero on any failure. Nothing skips.
set -uo pipefail
vmdir=$(cd "$(dirname "$0")" && pwd)
HERE=$(cd "$vmdir/../clients" && pwd)

if [ -z "${TESTUDO_IN_VM:-}" ]; then
  . "$vmdir/harness.sh"
  host_prereqs
  bash "$HERE/setup.sh" || { echo "not ok - setup: installing the engines failed"; echo "0 passed, 1 failed"; exit 1; }
  img=$(mktemp -d /tmp/testudo-vm-engines.XXXXXX)
  trap 'rm -rf "$img"' EXIT
  bash "$repo/integration/busybox-rootfs.sh" "$img/rootfs" >/dev/null &&
    /usr/bin/python3 "$HERE/mkimage.py" "$img/rootfs" "$img/image.tar" \
      'testudo-busybox:latest=["sh"]' \
      'testudo-pause:latest=["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 1; done"]' ||
    { echo "not ok - the image archive"; echo "0 passed, 1 failed"; exit 1; }
  export TESTUDO_ENGINES_IMAGE=$img/image.tar
  (in_vm "$0" "$@")
  exit $?
fi

# --- inside the VM ------------------------------------------------------------------------------
suite_start=$SECONDS
# TESTUDO_ENGINES_RUNTIME=/usr/sbin/runc runs the same checks against another runtime.
RUNTIME=${TESTUDO_ENGINES_RUNTIME:-${TESTUDO_BIN:?}}
# Each engine call under TCG: a docker run is 5-20 s, dockerd's start 11-21 s.
CALL_TIMEOUT=${TESTUDO_CLIENTS_CALL_TIMEOUT:-150}
# On /run (tmpfs): overlayfs, which the guest's / is, cannot be the upper layer of the
# engines' own overlay mounts.
T=$(mktemp -d /run/testudo-engines.XXXXXX)
OUT=$T/out
mkdir -p "$OUT"
. "$HERE/lib.sh"
exec 3>&1
trap cleanup EXIT
trap 'exit 130' INT TERM
make_wrapper
IMAGE=docker.io/library/testudo-busybox:latest
PROFILE=testudo-engines-deny
MiB=1048576
# A shell that keeps 200 MB in a variable: past any of the limits below. It is the container's
# pid 1 and the largest process, so the OOM killer takes it and the container exits 137.
ALLOC='x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived'
# The container's own cgroup v2 directory, also without a cgroup namespace (ctr makes none).
CG='/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)'
# dockerd 20.10 decides whether it can limit swap from memory.swap.max in its own cgroup, which
# the root cgroup does not have ("Your kernel does not support swap limit capabilities", and
# --memory-swap is dropped). On a real host it runs in docker.service; here in a cgroup of its
# own, as do the other daemons, started from this shell. No controller is enabled below it.
mkdir -p /sys/fs/cgroup/testudo-engines-daemons && echo $$ > /sys/fs/cgroup/testudo-engines-daemons/cgroup.procs ||
  { echo "not ok - move the suite into /sys/fs/cgroup/testudo-engines-daemons"; echo "0 passed, 1 failed"; exit 1; }
echo "# runtime under test: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1)); scratch: $T"

# What the checks stand on; without one, every check after it would only say so again.
controllers() { local c; for c in memory pids cpu; do grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || return 1; done; }
apparmor_on() { [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] && [ -e /sys/kernel/security/apparmor/profiles ]; }
require() {
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "the VM has $what"
  else notok "the VM has $what"; echo "$PASS passed, $FAIL failed"; exit 1; fi
}
require "cgroup2 with the memory, pids and cpu controllers" controllers
require "AppArmor enabled, with securityfs" apparmor_on
require "apparmor_parser, dockerd, containerd and ctr" command -v apparmor_parser /usr/sbin/dockerd containerd ctr
require "the image archive from the host" test -s "$TESTUDO_ENGINES_IMAGE"

. "$vmdir/apparmor.sh"
deny_profile "$PROFILE" 'deny /tmp/secret r,' > "$T/profile"
out=$(apparmor_parser -r -K "$T/profile" 2>&1)
contains "apparmor_parser loads $PROFILE (enforce)" "$PROFILE (enforce)" "$(cat /sys/kernel/security/apparmor/profiles 2>&1) $out"
# Writes /tmp/secret and /tmp/public (the profile denies reading the first) and reads them back.
PROBE='echo s3cret > /tmp/secret; echo publ1c > /tmp/public; echo "secret: $(cat /tmp/secret 2>&1)"; echo "public: $(cat /tmp/public 2>&1)"; echo "current: $(cat /proc/self/attr/current 2>&1)"'

# config.json of the container the runtime created under ID (the wrapper keeps it).
spec_of() { cat "$T/specs/$1.json" 2>/dev/null; }

# On a timeout, besides the engine's own state: every process in the guest (few), and who holds
# a pipe or fifo open (a client waits for its container's output until every writer is gone).
# Straight to the suite's output: dump_state keeps only the last 60 lines.
guest_dump() {
  {
    echo "-- every process"; ps -eo pid,ppid,stat,etimes,wchan:24,args | cut -c1-220
    echo "-- pipes and fifos held open (fd -> object)"
    local p l
    for p in /proc/[0-9]*; do
      l=$(ls -l "$p/fd" 2>/dev/null | awk '/pipe:|fifo|std(in|out|err)/ {print $9 $10 $11}' | tr '\n' ' ')
      [ -n "$l" ] && echo "${p#/proc/} $(cat "$p/comm" 2>/dev/null): $l"
    done
  } 2>&1 | sed 's/^/# /' >&3
}
docker_full_dump() { guest_dump; docker_dump; }
containerd_full_dump() { guest_dump; containerd_dump; }

# --- Docker -------------------------------------------------------------------------------------
. "$HERE/docker.sh"
ENGINE=docker
docker_engine() {
  DUMP_FN=docker_full_dump
  E=dk
  insp() { dk inspect -f "$2" "$1" 2>/dev/null; }
  local RUNOPTS=(--network none --pull never --runtime testudo)
  local t0 out rc cid
  t0=$SECONDS
  docker_start || return
  note "dockerd answered after $((SECONDS - t0)) s"
  out=$(dk load -i "$TESTUDO_ENGINES_IMAGE" 2>&1)
  like "docker load of the image archive" 'Loaded image: (docker.io/library/)?testudo-busybox:latest' "$out"

  # dockerd loads docker-default itself at start when AppArmor is on (apparmor_parser -Kr).
  contains "dockerd loaded its docker-default profile (enforce)" "docker-default (enforce)" \
    "$(cat /sys/kernel/security/apparmor/profiles 2>&1)" "$(grep -i apparmor "$D/dockerd.log" | tail -3)"

  # OOM kill with --rm: the exit code, and the oom event Docker raised for it.
  t0=$(date +%s)
  out=$(dk run --rm --name dk-oom-rm --memory 32m "${RUNOPTS[@]}" "$IMAGE" sh -c "$ALLOC" 2>&1); rc=$?
  is "run --rm --memory 32m, allocating 200 MB: exit code 137" 137 "$rc" "$out"
  unlike "run --rm --memory 32m: the allocation did not survive" survived "$out"
  out=$(dk events --since "$t0" --until "$(date +%s)" --filter container=dk-oom-rm --format '{{.Action}}' 2>&1)
  like "docker events: an oom event for the --rm container" '^oom$' "$out"
  # without --rm, so that inspect can say it
  out=$(dk run --name dk-oom --memory 32m "${RUNOPTS[@]}" "$IMAGE" sh -c "cat /sys/fs/cgroup/memory.max; $ALLOC" 2>&1); rc=$?
  is "run --memory 32m: exit code 137" 137 "$rc" "$out"
  like "run --memory 32m: memory.max inside is 33554432" '^33554432$' "$out"
  is "docker inspect: State.OOMKilled true, ExitCode 137" "true 137" "$(insp dk-oom '{{.State.OOMKilled}} {{.State.ExitCode}}')" \
    "$(grep -iE 'oom|dk-oom' "$D/dockerd.log" | tail -5)"
  dk rm dk-oom >/dev/null 2>&1

  # limits at run, read from inside (docker gives the container a cgroup namespace on v2: its
  # own directory is /sys/fs/cgroup)
  out=$(dk run --rm --memory 48m --pids-limit 33 --cpus 0.5 "${RUNOPTS[@]}" "$IMAGE" sh -c \
        'cd /sys/fs/cgroup && for f in memory.max memory.swap.max pids.max cpu.max; do echo "$f $(cat $f)"; done' 2>&1)
  like "run --memory 48m: memory.max $((48 * MiB))" "^memory.max $((48 * MiB))\$" "$out"
  # Docker's default --memory-swap is twice --memory: swap beyond memory = memory
  like "run --memory 48m: memory.swap.max $((48 * MiB)) (Docker's default swap)" "^memory.swap.max $((48 * MiB))\$" "$out"
  like "run --pids-limit 33: pids.max 33" '^pids.max 33$' "$out"
  like "run --cpus 0.5: cpu.max 50000 100000" '^cpu.max 50000 100000$' "$out"

  # update of a running container, read from inside with exec, and from stats
  cid=$(dk run -d --name dk-upd --memory 48m --pids-limit 33 --cpus 0.5 "${RUNOPTS[@]}" "$IMAGE" sleep 600 2>&1)
  is "run -d dk-upd: running" running "$(insp dk-upd '{{.State.Status}}')" "$cid"
  cid=$(insp dk-upd '{{.Id}}')
  out=$(dk stats --no-stream --format '{{.MemUsage}}' dk-upd 2>&1)
  like "stats --no-stream before update: limit 48MiB" '/ 48MiB$' "$out"
  out=$(dk update --memory 64m --memory-swap 128m --pids-limit 77 --cpus 0.25 dk-upd 2>&1)
  like "update --memory 64m --memory-swap 128m --pids-limit 77 --cpus 0.25" '^dk-upd$' "$out"
  if grep -qE " update .*$cid\$" "$ARGV_LOG"; then ok "update: went through the runtime's update"
  else notok "update: went through the runtime's update" "$(grep -F "$cid" "$ARGV_LOG" | tail -3)"; fi
  out=$(dk exec dk-upd sh -c 'cd /sys/fs/cgroup && for f in memory.max memory.swap.max pids.max cpu.max; do echo "$f $(cat $f)"; done' 2>&1)
  like "update --memory 64m: memory.max inside $((64 * MiB))" "^memory.max $((64 * MiB))\$" "$out"
  like "update --memory-swap 128m: memory.swap.max inside $((64 * MiB))" "^memory.swap.max $((64 * MiB))\$" "$out"
  like "update --pids-limit 77: pids.max inside 77" '^pids.max 77$' "$out"
  like "update --cpus 0.25: cpu.max inside 25000 100000" '^cpu.max 25000 100000$' "$out"
  out=$(dk stats --no-stream --format '{{.MemUsage}}' dk-upd 2>&1)
  like "stats --no-stream after update: limit 64MiB" '/ 64MiB$' "$out"
  is "docker inspect after update: Memory, PidsLimit, NanoCpus" "$((64 * MiB)) 77 250000000" \
    "$(insp dk-upd '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}')"
  dk rm -f dk-upd >/dev/null 2>&1

  # AppArmor: Docker's default profile, then one given with --security-opt
  out=$(dk run --name dk-aa-def "${RUNOPTS[@]}" "$IMAGE" sh -c "$PROBE" 2>&1)
  like "run (no --security-opt): the process runs under docker-default (enforce)" '^current: docker-default \(enforce\)$' "$(grep current: <<<"$out")" "$out"
  is "run (no --security-opt): /tmp/secret is readable (the denial below is the profile's)" "secret: s3cret" "$(grep secret: <<<"$out")"
  is "docker inspect: AppArmorProfile docker-default" docker-default "$(insp dk-aa-def '{{.AppArmorProfile}}')"
  cid=$(insp dk-aa-def '{{.Id}}')
  like "config.json given to the runtime: apparmorProfile docker-default" '"apparmorProfile": ?"docker-default"' "$(spec_of "$cid")"
  dk rm dk-aa-def >/dev/null 2>&1
  out=$(dk run --rm --security-opt "apparmor=$PROFILE" "${RUNOPTS[@]}" "$IMAGE" sh -c "$PROBE" 2>&1)
  like "run --security-opt apparmor=$PROFILE: reading /tmp/secret is denied" "^secret: cat: can't open '/tmp/secret': Permission denied\$" "$(grep secret: <<<"$out")" "$out"
  is "run --security-opt apparmor=$PROFILE: reading /tmp/public works" "public: publ1c" "$(grep public: <<<"$out")"
  is "run --security-opt apparmor=$PROFILE: attr/current names it" "current: $PROFILE (enforce)" "$(grep current: <<<"$out")"

  dk rm -f $(dk ps -aq 2>/dev/null) >/dev/null 2>&1
  stop_pid "$DOCKERD_PID"
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then notok "dockerd stops on SIGTERM"; else ok "dockerd stops on SIGTERM"; fi
}

# --- containerd ---------------------------------------------------------------------------------
. "$HERE/containerd.sh"
containerd_engine() {
  DUMP_FN=containerd_full_dump
  local t0 out rc ev pod ctr st i
  t0=$SECONDS
  containerd_start || return
  note "containerd answered after $((SECONDS - t0)) s"
  out=$(cr images import "$TESTUDO_ENGINES_IMAGE" 2>&1)
  like "ctr images import of the image archive" 'testudo-busybox:latest' "$out"

  # ctr's default spec has no /sys/fs/cgroup mount (the CRI adds one): give it the one Docker has.
  local CGMOUNT=(--mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec)
  # The shim's OOM event (what Docker's OOMKilled and the CRI's reason are made from).
  timeout 300 ctr --address "$CD/containerd.sock" events > "$T/ctr-events" 2>&1 &
  ev=$!
  out=$(crun --rm --memory-limit $((32 * MiB)) "${CGMOUNT[@]}" --cgroup "$CGP/cr-oom" "$IMAGE" cr-oom sh -c "cat $CG/memory.max; $ALLOC" 2>&1); rc=$?
  is "ctr run --memory-limit 32 MiB, allocating 200 MB: exit code 137" 137 "$rc" "$out"
  like "ctr run --memory-limit: memory.max inside is 33554432" '^33554432$' "$out"
  unlike "ctr run --memory-limit: the allocation did not survive" survived "$out"
  sleep 1
  kill "$ev" 2>/dev/null; wait "$ev" 2>/dev/null
  like "ctr events: /tasks/oom for cr-oom" 'topic=/tasks/oom .*cr-oom|/tasks/oom.*"container_id":"cr-oom"' "$(cat "$T/ctr-events")"

  out=$(crun --rm --memory-limit $((48 * MiB)) --cpus 0.5 "${CGMOUNT[@]}" --cgroup "$CGP/cr-lim" "$IMAGE" cr-lim sh -c \
        "cd $CG && echo \"memory.max \$(cat memory.max)\" && echo \"cpu.max \$(cat cpu.max)\"" 2>&1)
  like "ctr run --memory-limit 48 MiB: memory.max inside $((48 * MiB))" "^memory.max $((48 * MiB))\$" "$out"
  like "ctr run --cpus 0.5: cpu.max inside 50000 100000" '^cpu.max 50000 100000$' "$out"

  out=$(crun --rm --apparmor-profile "$PROFILE" --cgroup "$CGP/cr-aa" "$IMAGE" cr-aa sh -c "$PROBE" 2>&1)
  like "ctr run --apparmor-profile $PROFILE: reading /tmp/secret is denied" "^secret: cat: can't open '/tmp/secret': Permission denied\$" "$(grep secret: <<<"$out")" "$out"
  is "ctr run --apparmor-profile $PROFILE: attr/current names it" "current: $PROFILE (enforce)" "$(grep current: <<<"$out")"

  # CRI: a container with a memory limit in a pod of the testudo handler; its status says why
  # it stopped.
  out=$(cr -n k8s.io images import "$TESTUDO_ENGINES_IMAGE" 2>&1)
  like "ctr -n k8s.io images import (with the pause image)" 'testudo-pause:latest' "$out"
  pod=$(cri runp testudo cri-oom-pod "$CD/pods" 2>&1)
  if [[ $pod =~ ^[0-9a-f]{64}$ ]]; then ok "CRI RunPodSandbox with handler testudo"
  else notok "CRI RunPodSandbox with handler testudo" "$pod"; return; fi
  ctr=$(CRI_MEMORY_LIMIT=$((32 * MiB)) cri create "$pod" cri-oom "$IMAGE" "$CD/pods" sh -c "cat $CG/memory.max; $ALLOC" 2>&1) &&
    cri start "$ctr" >/dev/null 2>&1
  for i in $(seq 60); do
    st=$(cri ctrstatus "$ctr" 2>&1)
    [[ $st == *EXITED* ]] && break
    sleep 1
  done
  like "CRI memory_limit_in_bytes 32 MiB: EXITED, exit code 137, reason OOMKilled" \
    '"state": "EXITED", "exit_code": 137, "reason": "OOMKilled"' "$st" "$ctr"
  like "CRI memory_limit_in_bytes 32 MiB: memory.max inside 33554432" 'stdout F 33554432' "$(cat "$CD/pods/cri-oom.log" 2>&1)"
  cri rm "$ctr" >/dev/null 2>&1
  cri stopp "$pod" >/dev/null 2>&1
  cri rmp "$pod" >/dev/null 2>&1

  stop_pid "$CONTAINERD_PID"
  if kill -0 "$CONTAINERD_PID" 2>/dev/null; then notok "containerd stops on SIGTERM"; else ok "containerd stops on SIGTERM"; fi
}

for engine in docker containerd; do
  ENGINE=$engine
  start=$SECONDS
  "${engine}_engine"
  report_timeouts
  note "took $((SECONDS - start)) s"
done
ENGINE=summary
echo "$PASS passed, $FAIL failed ($((SECONDS - suite_start)) s)"
[ "$FAIL" -eq 0 ]
