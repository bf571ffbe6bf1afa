# containerd 1.6 (Debian): its own config file, root, state and sockets under $T/containerd.
#  - ctr: `ctr run --runc-binary <runtime>` on the io.containerd.runc.v2 shim (ctr cannot name a
#    runtime registered for the CRI: it names shims, and takes the binary by --runc-binary).
#  - CRI: a RuntimeClass handler "testudo" registered in the config (runc.v2 shim, options
#    BinaryName and Root), driven by cri.py (Debian 12 has no cri-tools/crictl).

CD=$T/containerd
CGP=/testudo-clients-$$-ctr
cr() { tmo "$CALL_TIMEOUT" ctr --address "$CD/containerd.sock" "$@"; }
cri() { tmo "$CALL_TIMEOUT" env CRI_CGROUP_PARENT="/testudo-clients-$$-cri" /usr/bin/python3 "$HERE/cri.py" "$CD/containerd.sock" "$@"; }
# ctr run with the runtime under test; its state under $T, its cgroup under ours
crun() {
  cr run --runc-binary "$WRAP" --runc-root "$CD/runc-root" "$@"
}

containerd_dump() {
  echo "-- containerd log (tail)"; tail -n 25 "$CD/containerd.log"
  echo "-- ctr task ls"; timeout 10 ctr --address "$CD/containerd.sock" task ls 2>&1
  echo "-- ctr -n k8s.io task ls"; timeout 10 ctr --address "$CD/containerd.sock" -n k8s.io task ls 2>&1
  echo "-- runtime list"; timeout 10 "$RUNTIME" --root "$CD/runc-root/default" list 2>&1
  timeout 10 "$RUNTIME" --root "$CD/testudo-root/k8s.io" list 2>&1
}

containerd_start() {
  mkdir -p "$CD/root" "$CD/state" "$CD/pods" "$CD/opt" "$CD/cni-conf" "$CD/cni-bin"
  # restrict_oom_score_adj: the CRI gives the sandbox oom_score_adj -998, which needs
  # CAP_SYS_RESOURCE; this machine has none, so clamp to containerd's own value.
  cat > "$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
oom_score = 0

[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[debug]
  address = "$CD/debug.sock"
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/testudo-pause:latest"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    # The RuntimeClass handler "testudo": a Kubernetes RuntimeClass with handler: testudo
    # selects it.
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.testudo]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.testudo.options]
        BinaryName = "$WRAP"
        Root = "$CD/testudo-root"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CD/cni-bin"
    conf_dir = "$CD/cni-conf"
EOF
  containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
  DAEMON_PIDS+=($!)
  CONTAINERD_PID=$!
  if wait_for 30 ctr --address "$CD/containerd.sock" version; then ok "containerd starts with its own config, root, state and socket"
  else notok "containerd starts with its own config, root, state and socket" "$(tail -n 20 "$CD/containerd.log")"; return 1; fi
}

ctr_pid() { cr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}'; }
ctr_status() { cr task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
ctr_stopped() { [ "$(ctr_status "$1")" = STOPPED ]; }
# Delete a stopped task; print its exit code (ctr warns "exit with non-zero exit code N").
ctr_reap() {
  local out code
  out=$(cr task rm "$1" 2>&1)
  code=$(printf '%s' "$out" | grep -oE 'exit code [0-9]+' | awk '{print $3}')
  echo "${code:-0}"
  cr container rm "$1" >/dev/null 2>&1
}

ctr_checks() {
  local out rc pid c1 c2 def

  out=$(crun --rm --cgroup "$CGP/cr-rm" "$IMAGE" cr-rm sh -c 'echo hello-from-container; exit 3' 2>&1); rc=$?
  is "ctr run --rm: exit code 3 comes back" 3 "$rc" "$out"
  is "ctr run --rm: the container's output comes back" hello-from-container "$out"
  if runtime_saw create cr-rm && runtime_saw start cr-rm; then ok "ctr run --runc-binary: the runtime under test created and started it"
  else notok "ctr run --runc-binary: the runtime under test created and started it" "$(tail -3 "$ARGV_LOG")"; fi
  if grep -qE -- "--root $CD/runc-root/default .* create .* cr-rm\$" "$ARGV_LOG"; then ok "ctr run --runc-root: the shim passes it as --root <root>/<namespace>"
  else notok "ctr run --runc-root: the shim passes it as --root <root>/<namespace>" "$(grep ' create ' "$ARGV_LOG" | tail -1)"; fi
  out=$(cr container ls -q 2>&1)
  unlike "ctr run --rm: the container is removed afterwards" '^cr-rm$' "$out"

  # a long-running container for the task operations
  out=$(crun -d --cgroup "$CGP/cr-loop" "$IMAGE" cr-loop sh -c "$LOOP" 2>&1)
  is "ctr run -d: task RUNNING" RUNNING "$(ctr_status cr-loop)" "$out"
  pid=$(ctr_pid cr-loop)
  if wait_for 10 count_moves "${pid:-0}" 1; then ok "ctr run -d: the process runs (counter moving, pid $pid)"
  else notok "ctr run -d: the process runs" "pid=$pid"; fi

  out=$(cr task exec --exec-id ex1 cr-loop sh -c 'tr "\0" " " </proc/1/cmdline; echo; exit 7' 2>&1); rc=$?
  is "ctr task exec: exit code 7 comes back" 7 "$rc" "$out"
  like "ctr task exec: runs in the container (sees its pid 1)" 'while :' "$out"
  if runtime_saw exec cr-loop; then ok "ctr task exec: went through the runtime's exec"
  else notok "ctr task exec: went through the runtime's exec"; fi
  out=$(cr task exec --exec-id ex2 --user 1000 cr-loop id 2>&1)
  like "ctr task exec --user 1000: id shows it" '^uid=1000' "$out"

  out=$(tmo 60 expect -f "$HERE/pty.exp" 30 '' ctr --address "$CD/containerd.sock" task exec -t --exec-id ex3 cr-loop sh -c 'tty; exit 4' 2>&1); rc=$?
  like "ctr task exec -t: tty answers /dev/pts/N" '^/dev/pts/[0-9]+' "$out"
  is "ctr task exec -t: exit code 4 comes back" 4 "$rc" "$out"
  out=$(tmo 60 expect -f "$HERE/pty.exp" 30 'tty; echo marker-$((6*7)); exit 5' ctr --address "$CD/containerd.sock" \
        run -t --rm --runc-binary "$WRAP" --runc-root "$CD/runc-root" --cgroup "$CGP/cr-tty" "$IMAGE" cr-tty sh 2>&1); rc=$?
  like "ctr run -t: tty answers /dev/pts/N" '(^|[^a-z])/dev/pts/[0-9]+' "$out"
  like "ctr run -t: typed input reaches the shell" 'marker-42' "$out"
  is "ctr run -t: exit code 5 comes back" 5 "$rc" "$out"

  out=$(cr task ps cr-loop 2>&1)
  like "ctr task ps: lists the init pid" "(^|[^0-9])$pid([^0-9]|\$)" "$out"
  if runtime_saw 'ps --format json' cr-loop; then ok "ctr task ps: answered by the runtime's ps --format json"
  else notok "ctr task ps: answered by the runtime's ps --format json"; fi
  out=$(cr task metrics cr-loop 2>&1)
  like "ctr task metrics (stats): pids.current >= 1" 'pids.current +[1-9]' "$out"
  like "ctr task metrics (stats): memory usage" 'memory.usage_in_bytes +[1-9]' "$out"

  cr task pause cr-loop >/dev/null 2>&1
  is "ctr task pause: task PAUSED" PAUSED "$(ctr_status cr-loop)"
  c1=$(read_count "$pid"); sleep 1; c2=$(read_count "$pid")
  if [ "$c1" != none ] && [ "$c1" = "$c2" ]; then ok "ctr task pause: the counter inside stops ($c1)"
  else notok "ctr task pause: the counter inside stops" "before=$c1 after 1 s=$c2"; fi
  like "ctr task pause: the freezer cgroup is FROZEN" FROZEN "$(freezer_state "$pid" 2>&1)"
  cr task resume cr-loop >/dev/null 2>&1
  is "ctr task resume: task RUNNING" RUNNING "$(ctr_status cr-loop)"
  if wait_for 5 count_moves "$pid" "${c2:-0}"; then ok "ctr task resume: the counter moves again"
  else notok "ctr task resume: the counter moves again"; fi

  cr task kill -s SIGUSR1 cr-loop >/dev/null 2>&1
  if wait_for 5 test -e "/proc/$pid/root/tmp/usr1"; then ok "ctr task kill -s SIGUSR1: the container's handler ran"
  else notok "ctr task kill -s SIGUSR1: the container's handler ran"; fi
  # stop, graceful: TERM, the handler exits 42
  cr task kill -s SIGTERM cr-loop >/dev/null 2>&1
  if wait_for 10 ctr_stopped cr-loop; then ok "ctr task kill -s SIGTERM (stop): task STOPPED"
  else notok "ctr task kill -s SIGTERM (stop): task STOPPED" "status $(ctr_status cr-loop)"; fi
  is "ctr task rm: exit code 42 from the TERM handler" 42 "$(ctr_reap cr-loop)"

  # stop, forced: TERM ignored, then SIGKILL
  crun -d --cgroup "$CGP/cr-stub" "$IMAGE" cr-stub sh -c "$STUBBORN" >/dev/null 2>&1
  sleep 0.5
  cr task kill -s SIGTERM cr-stub >/dev/null 2>&1
  sleep 2
  is "ctr: TERM ignored, task still RUNNING after 2 s" RUNNING "$(ctr_status cr-stub)"
  cr task kill -s SIGKILL cr-stub >/dev/null 2>&1
  wait_for 10 ctr_stopped cr-stub
  is "ctr task kill -s SIGKILL: exit code 137" 137 "$(ctr_reap cr-stub)"

  # rm -f on a running task
  crun -d --cgroup "$CGP/cr-rmf" "$IMAGE" cr-rmf sh -c "$LOOP" >/dev/null 2>&1
  if timeout 20 "$RUNTIME" --root "$CD/runc-root/default" state cr-rmf >/dev/null 2>&1; then ok "ctr task rm -f: the runtime lists the running container first"
  else notok "ctr task rm -f: the runtime lists the running container first"; fi
  cr task rm -f cr-rmf >/dev/null 2>&1; cr container rm cr-rmf >/dev/null 2>&1
  out=$(cr container ls -q 2>&1)
  unlike "ctr task rm -f + container rm: gone from containerd" '^cr-rmf$' "$out"
  if ! timeout 20 "$RUNTIME" --root "$CD/runc-root/default" state cr-rmf >/dev/null 2>&1; then ok "ctr task rm -f: the runtime's state no longer has it"
  else notok "ctr task rm -f: the runtime's state no longer has it"; fi

  out=$(crun --rm --read-only --cgroup "$CGP/cr-ro" "$IMAGE" cr-ro sh -c 'touch /probe; echo rc=$?' 2>&1)
  like "ctr run --read-only: writing / fails" 'Read-only file system' "$out"

  def=$(crun --rm --cgroup "$CGP/cr-cap0" "$IMAGE" cr-cap0 awk '/^CapEff/{print $2}' /proc/self/status 2>&1)
  out=$(crun --rm --cap-drop CAP_CHOWN --cgroup "$CGP/cr-cap1" "$IMAGE" cr-cap1 awk '/^CapEff/{print $2}' /proc/self/status 2>&1)
  if [[ $def =~ ^[0-9a-f]{16}$ ]]; then
    is "ctr run --cap-drop CAP_CHOWN: CapEff loses bit 0 only" "$(printf '%016x' $((16#$def & ~1)))" "$out" "default $def"
  else notok "ctr run: default CapEff" "$def"; fi
  out=$(crun --rm --cap-add CAP_SYS_ADMIN --cgroup "$CGP/cr-cap2" "$IMAGE" cr-cap2 awk '/^CapEff/{print $2}' /proc/self/status 2>&1)
  if [[ $def =~ ^[0-9a-f]{16}$ ]]; then
    is "ctr run --cap-add CAP_SYS_ADMIN: CapEff gains bit 21" "$(printf '%016x' $((16#$def | 1 << 21)))" "$out"
  fi

  out=$(crun --rm --cgroup "$CGP/cr-nnp" "$IMAGE" cr-nnp grep NoNewPrivs /proc/self/status 2>&1)
  like "ctr run: NoNewPrivs 1 (ctr's default)" 'NoNewPrivs:[[:space:]]+1' "$out"
  out=$(crun --rm --allow-new-privs --cgroup "$CGP/cr-nnp2" "$IMAGE" cr-nnp2 grep NoNewPrivs /proc/self/status 2>&1)
  like "ctr run --allow-new-privs: NoNewPrivs 0" 'NoNewPrivs:[[:space:]]+0' "$out"

  # seccomp: ctr reads the profile as an OCI LinuxSeccomp object
  out=$(crun --rm --seccomp --seccomp-profile "$T/deny-mkdir.json" --cgroup "$CGP/cr-sc" "$IMAGE" cr-sc \
        sh -c 'grep Seccomp: /proc/self/status; mkdir /tmp/x && echo made || echo mkdir-failed' 2>&1)
  like "ctr run --seccomp-profile (OCI form): filter mode 2" 'Seccomp:[[:space:]]+2' "$out"
  like "ctr run --seccomp-profile (OCI form): mkdir fails with EPERM" 'Operation not permitted' "$out"
  out=$(/usr/bin/python3 "$HERE/seccomp_compare.py" "$T/deny-mkdir.json" "$T/specs/cr-sc.json" 2>&1)
  like "ctr run --seccomp-profile (OCI form): every rule reaches config.json" '^same' "$out"
  local name prof
  for name in default build-sandbox; do
    prof=$PROFILES/$name.json
    if [ ! -f "$prof" ]; then skip "ctr run --seccomp-profile $name.json" "$prof is not in the tree yet"; continue; fi
    out=$(crun --rm --seccomp --seccomp-profile "$prof" --cgroup "$CGP/cr-sc-$name" "$IMAGE" "cr-sc-$name" \
          sh -c 'grep Seccomp: /proc/self/status; echo alive' 2>&1)
    like "ctr run --seccomp-profile $name.json: the container runs under it" 'Seccomp:[[:space:]]+2.*alive' "$(echo $out)"
    out=$(/usr/bin/python3 "$HERE/seccomp_compare.py" "$prof" "$T/specs/cr-sc-$name.json" 2>&1)
    like "ctr run --seccomp-profile $name.json: every rule reaches config.json" '^same' "$out"
  done

  out=$(crun --rm --cgroup "$CGP/cr-enoent" "$IMAGE" cr-enoent /nonexistent 2>&1); rc=$?
  if [ $rc -ne 0 ]; then ok "ctr run of a missing command fails (exit $rc)"; else notok "ctr run of a missing command fails"; fi
  if [ -n "$OWN_ERR" ]; then contains "ctr: the error shows the runtime's own message" "$OWN_ERR" "$out"
  else notok "ctr: the runtime wrote no JSON error to --log (the shim reads it there)"; fi
  unlike "ctr: not 'unable to retrieve OCI runtime error'" 'unable to retrieve OCI runtime error' "$out"
  cr container rm cr-enoent >/dev/null 2>&1
}

cri_checks() {
  local out pod ctr rc
  # the handler as containerd loaded it
  out=$(cri status 2>&1)
  out=$(printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
rt = json.load(sys.stdin)["containerd"]["runtimes"].get("testudo") or {}
print(rt.get("runtimeType"), (rt.get("options") or {}).get("BinaryName"), (rt.get("options") or {}).get("Root"))' 2>&1)
  is "CRI status: handler testudo loaded (runc.v2 shim, BinaryName, Root)" "io.containerd.runc.v2 $WRAP $CD/testudo-root" "$out"
  out=$(cri version 2>&1)
  like "CRI version: containerd speaks runtime.v1" '"runtime_api_version": "v1"' "$out"

  out=$(cri runp nope cri-nope "$CD/pods" 2>&1)
  like "CRI RunPodSandbox with an unregistered handler is refused" 'no runtime for "nope" is configured' "$out"

  pod=$(cri runp testudo cri-pod "$CD/pods" 2>&1); rc=$?
  if [ $rc -eq 0 ] && [[ $pod =~ ^[0-9a-f]{64}$ ]]; then ok "CRI RunPodSandbox with handler testudo"
  else notok "CRI RunPodSandbox with handler testudo" "$pod" "$(grep -i error "$CD/containerd.log" | tail -3)"; return; fi
  is "CRI PodSandboxStatus: ready, runtime_handler testudo" '{"state": "SANDBOX_READY", "runtime_handler": "testudo"}' "$(cri podstatus "$pod" 2>&1)"
  if grep -qE -- "--root $CD/testudo-root/k8s.io .* create .* $pod\$" "$ARGV_LOG"; then ok "CRI: the sandbox was created by the handler's binary with the handler's Root"
  else notok "CRI: the sandbox was created by the handler's binary with the handler's Root" "$(grep ' create ' "$ARGV_LOG" | tail -1)"; fi

  ctr=$(cri create "$pod" cri-ctr "$IMAGE" "$CD/pods" sh -c "id; $LOOP" 2>&1) \
    && cri start "$ctr" >/dev/null 2>&1
  is "CRI CreateContainer + StartContainer: RUNNING" RUNNING \
    "$(cri ctrstatus "$ctr" 2>&1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>&1)" "$ctr"
  if runtime_saw create "$ctr"; then ok "CRI: the container was created by the handler's binary"
  else notok "CRI: the container was created by the handler's binary"; fi
  wait_for 5 grep -q uid= "$CD/pods/cri-ctr.log"
  like "CRI: the container's output is in its log" 'stdout F uid=0\(root\)' "$(cat "$CD/pods/cri-ctr.log" 2>&1)"
  out=$(cri exec "$ctr" sh -c 'tr "\0" " " </proc/1/cmdline; exit 5' 2>&1); rc=$?
  is "CRI ExecSync: exit code 5 comes back" 5 "$rc" "$out"
  like "CRI ExecSync: runs in the container" 'while :' "$out"
  cri stop "$ctr" 10 >/dev/null 2>&1
  out=$(cri ctrstatus "$ctr" 2>&1)
  like "CRI StopContainer: EXITED with 42 from the TERM handler" '"state": "EXITED", "exit_code": 42' "$out"
  cri rm "$ctr" >/dev/null 2>&1
  cri stopp "$pod" >/dev/null 2>&1
  out=$(cri rmp "$pod" 2>&1); rc=$?
  is "CRI StopPodSandbox + RemovePodSandbox" 0 "$rc" "$out"
  if ! timeout 20 "$RUNTIME" --root "$CD/testudo-root/k8s.io" state "$pod" >/dev/null 2>&1 \
     && ! timeout 20 "$RUNTIME" --root "$CD/testudo-root/k8s.io" state "$ctr" >/dev/null 2>&1; then
    ok "CRI: the runtime's state no longer has the pod or its container"
  else notok "CRI: the runtime's state no longer has the pod or its container"; fi
}

containerd_main() {
  DUMP_FN=containerd_dump
  containerd_start || return
  local out
  out=$(cr images import "$T/image.tar" 2>&1)
  like "ctr images import of the image archive" 'testudo-busybox:latest' "$out"
  out=$(cr -n k8s.io images import "$T/image.tar" 2>&1)
  like "ctr -n k8s.io images import (the CRI's namespace, with the pause image)" 'testudo-pause:latest' "$out"
  policy_file
  containerd_policy_checks
  if [ "$ONLY" = policy ]; then stop_pid "$CONTAINERD_PID"; return; fi
  ctr_checks
  cri_checks
  note "not applicable with ctr 1.6: restart, update (no 'ctr task update'), --pids-limit, --init, run --user (exec --user is checked), --cap-drop ALL (ctr wants CAP_-prefixed names)"
  stop_pid "$CONTAINERD_PID"
  if kill -0 "$CONTAINERD_PID" 2>/dev/null; then notok "containerd stops on SIGTERM"; else ok "containerd stops on SIGTERM"; fi
  # the shims outlive containerd by design; with every task deleted they must be gone
  sleep 1
  out=$(pgrep -f -- "containerd-shim-runc-v2 .*-address $CD/" 2>/dev/null | tr '\n' ' ')
  is "no shim left behind" "" "$out"
}
