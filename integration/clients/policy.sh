# Issue 23: the audit policy switched on through each engine's own configuration, with the
# runtime binary itself (no wrapper script in between), and the system default policy with no
# flag at all. Sourced by run.sh; `run.sh --only policy ENGINE…` runs just these checks.
#   Docker:     daemon.json runtimes.<name>.runtimeArgs = ["--policy", FILE]
#   podman:     --runtime-flag policy=FILE (podman puts it before the subcommand)
#   containerd: the runc shim's options have no runtime arguments (BinaryName, Root, …), so the
#               system default /etc/testudo/policy.json is how it gets one.
# The system default is written in a mount namespace of the check's own (a tmpfs over
# /etc/testudo), so nothing else on the machine runs under it.

# What the hardened containers pass and --privileged fails: failOn medium.
policy_file() {
  printf '%s' '{"failOn": "medium"}' > "$T/policy.json"
  chmod 644 "$T/policy.json"
}

# The options that make an engine's container pass that policy.
HARDENED=(--user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --read-only
          --memory 64m --pids-limit 64 --cpu-shares 512 --network none)

# policy_refusal NAME OUTPUT: the engine shows the runtime's refusal naming the failed items.
policy_refusal() {
  note "$1 prints: $(printf '%s' "$2" | tr '\n' ' ' | cut -c1-600)"
  like "$1: refused, naming the policy and the benchmark" 'policy .*refuses this container \(CIS Docker Benchmark v1\.6\.0\)' "$2"
  like "$1: names 5.3 (capabilities) and 5.4 (privileged)" '5\.3 capabilities restricted.*5\.4 not privileged' "$2"
}

docker_policy_checks() {
  local out rc
  out=$(dk run --rm --pull never --runtime testudo-policy --privileged --network none "$IMAGE" echo ran 2>&1); rc=$?
  [ $rc -ne 0 ] && ! grep -qx ran <<<"$out" && ok "daemon.json runtimeArgs --policy: docker run --privileged is refused" ||
    notok "daemon.json runtimeArgs --policy: docker run --privileged is refused" "rc=$rc" "$out"
  policy_refusal "docker run --privileged under runtimeArgs" "$out"
  out=$(dk run --rm --pull never --runtime testudo-policy "${HARDENED[@]}" "$IMAGE" sh -c 'id -u; grep CapEff /proc/self/status' 2>&1); rc=$?
  is "daemon.json runtimeArgs --policy: a hardened container runs (uid 1000, no capabilities)" \
    "1000 CapEff: 0000000000000000" "$(printf '%s' "$out" | tr -s '\t\n' '  ' | sed 's/ $//')" "rc=$rc"
}

podman_policy_checks() {
  local out rc pcmd
  pcmd=("${ECMD[@]}")
  pcmd[${#pcmd[@]}-1]=$RUNTIME   # the binary itself for --runtime, not the argv-logging wrapper
  out=$(tmo "$CALL_TIMEOUT" "${pcmd[@]}" --runtime-flag "policy=$T/policy.json" run --rm --pull never --network none --privileged "$IMAGE" echo ran 2>&1); rc=$?
  [ $rc -ne 0 ] && ! grep -qx ran <<<"$out" && ok "--runtime-flag policy=FILE: podman run --privileged is refused" ||
    notok "--runtime-flag policy=FILE: podman run --privileged is refused" "rc=$rc" "$out"
  policy_refusal "podman run --privileged with --runtime-flag" "$out"
  out=$(tmo "$CALL_TIMEOUT" "${pcmd[@]}" --runtime-flag "policy=$T/policy.json" run --rm --pull never "${HARDENED[@]}" "$IMAGE" sh -c 'id -u; grep CapEff /proc/self/status' 2>&1); rc=$?
  is "--runtime-flag policy=FILE: a hardened container runs (uid 1000, no capabilities)" \
    "1000 CapEff: 0000000000000000" "$(printf '%s' "$out" | tr -s '\t\n' '  ' | sed 's/ $//')" "rc=$rc"
  # The system default, no flag: podman and its conmon in a mount namespace where
  # /etc/testudo/policy.json exists.
  mkdir -p /etc/testudo
  out=$(POLICY_SRC=$T/policy.json tmo "$CALL_TIMEOUT" unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o mode=755 tmpfs /etc/testudo && cp "$POLICY_SRC" /etc/testudo/policy.json && exec "$@"' sh \
    "${pcmd[@]}" run --rm --pull never --network none --privileged "$IMAGE" echo ran 2>&1); rc=$?
  [ $rc -ne 0 ] && ! grep -qx ran <<<"$out" && ok "system default /etc/testudo/policy.json, no flag: podman run --privileged is refused" ||
    notok "system default /etc/testudo/policy.json, no flag: podman run --privileged is refused" "rc=$rc" "$out"
  policy_refusal "podman run --privileged under /etc/testudo/policy.json" "$out"
  contains "the refusal names /etc/testudo/policy.json" "/etc/testudo/policy.json" "$out"
}

# A second containerd of the check's own, in a mount namespace with the system default policy;
# ctr runs the runtime binary itself (--runc-binary, no wrapper, no flag).
containerd_policy_checks() {
  local cd2=$T/containerd-policy out rc pid
  mkdir -p "$cd2/root" "$cd2/state" /etc/testudo
  # ctr 1.6 has no pids-limit or user option (and its --uidmap needs a rootfs path the mapped
  # root can reach, which the 0700 scratch dir is not): this default ignores 4.1 and 5.28.
  printf '%s' '{"failOn": "medium", "ignore": ["4.1", "5.28"]}' > "$T/policy-containerd.json"
  chmod 644 "$T/policy-containerd.json"
  cat > "$cd2/config.toml" <<EOF
version = 2
root = "$cd2/root"
state = "$cd2/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$cd2/containerd.sock"
[ttrpc]
  address = "$cd2/containerd.sock.ttrpc"
[debug]
  address = "$cd2/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$cd2/opt"
EOF
  POLICY_SRC=$T/policy-containerd.json unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o mode=755 tmpfs /etc/testudo && cp "$POLICY_SRC" /etc/testudo/policy.json && exec containerd --config "$1"' sh \
    "$cd2/config.toml" >"$cd2/containerd.log" 2>&1 &
  pid=$!
  DAEMON_PIDS+=($pid)
  if ! wait_for 30 ctr --address "$cd2/containerd.sock" version; then
    notok "a containerd with /etc/testudo/policy.json starts" "$(tail -n 20 "$cd2/containerd.log")"; return
  fi
  c2() { tmo "$CALL_TIMEOUT" ctr --address "$cd2/containerd.sock" "$@"; }
  c2 images import "$T/image.tar" >/dev/null 2>&1
  out=$(c2 run --rm --runc-binary "$RUNTIME" --runc-root "$cd2/runc-root" --privileged "$IMAGE" cr-policy-priv echo ran 2>&1); rc=$?
  [ $rc -ne 0 ] && ! grep -qx ran <<<"$out" && ok "system default /etc/testudo/policy.json, no flag: ctr run --privileged is refused" ||
    notok "system default /etc/testudo/policy.json, no flag: ctr run --privileged is refused" "rc=$rc" "$out"
  policy_refusal "ctr run --privileged under /etc/testudo/policy.json" "$out"
  c2 containers rm cr-policy-priv >/dev/null 2>&1
  # What ctr can express: limits, read-only root, seccomp (no_new_privileges is ctr's default).
  out=$(c2 run --rm --runc-binary "$RUNTIME" --runc-root "$cd2/runc-root" \
    --memory-limit 67108864 --cpu-shares 512 --read-only --seccomp "$IMAGE" cr-policy-ok \
    sh -c 'echo seccomp $(grep ^Seccomp: /proc/self/status | cut -f2) nnp $(grep ^NoNewPrivs: /proc/self/status | cut -f2)' 2>&1); rc=$?
  is "system default /etc/testudo/policy.json, no flag: a hardened ctr container runs (seccomp filter, no_new_privileges)" \
    "seccomp 2 nnp 1" "$out" "rc=$rc"
  c2 containers rm cr-policy-ok >/dev/null 2>&1
  stop_pid "$pid"
}
