# Docker: Debian's docker.io 20.10 (dockerd and the /usr/bin/docker client, by full path), its
# own managed containerd, everything under $T/docker. The runtime is registered in daemon.json
# as "testudo" (also the default runtime, so that `docker version` reports it) and every
# container is run with --runtime testudo.

D=$T/docker
dk() { tmo "$CALL_TIMEOUT" /usr/bin/docker -H "unix://$D/docker.sock" "$@"; }

docker_dump() {
  echo "-- dockerd log (tail)"; tail -n 25 "$D/dockerd.log"
  echo "-- docker ps -a"; timeout 10 /usr/bin/docker -H "unix://$D/docker.sock" ps -a 2>&1
  echo "-- runtime list"; timeout 10 "$RUNTIME" --root "$D/exec/runtime-runc/moby" list 2>&1
}

docker_start() {
  mkdir -p "$D/data" "$D/exec"
  cat > "$D/daemon.json" <<EOF
{
  "runtimes": {
    "testudo": { "path": "$WRAP" },
    "testudo-policy": { "path": "$RUNTIME", "runtimeArgs": ["--policy", "$T/policy.json"] }
  },
  "default-runtime": "testudo",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cgroup-parent": "/testudo-clients-$$-docker",
  "storage-driver": "overlay2",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  "bridge": "none"
}
EOF
  if [ -S /run/containerd/containerd.sock ]; then
    note "a system containerd is running: dockerd 20.10 will use it instead of its own"
  fi
  /usr/sbin/dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
    -H "unix://$D/docker.sock" --pidfile "$D/docker.pid" >"$D/dockerd.log" 2>&1 &
  DAEMON_PIDS+=($!)
  DOCKERD_PID=$!
  if wait_for 60 /usr/bin/docker -H "unix://$D/docker.sock" info; then ok "dockerd starts with its state under the scratch dir"
  else notok "dockerd starts with its state under the scratch dir" "$(tail -n 20 "$D/dockerd.log")"; return 1; fi
}

docker_update_check() {
  local name=$1 pid=$2 out
  if [ "$(pids_controller)" = none ]; then
    skip "update --pids-limit" "no pids controller on this host (neither cgroup v1 nor enabled in cgroup2)"
    return
  fi
  out=$(dk update --pids-limit 77 "$name" 2>&1)
  is "update --pids-limit 77: engine records it" 77 "$(insp "$name" '{{.HostConfig.PidsLimit}}')" "$out"
  is "update --pids-limit 77: the container's cgroup has pids.max 77" 77 "$(cat "$(cgroup_dir "$pid" pids)/pids.max" 2>&1)"
  if grep -qE " update .*$(cid_of "$name")\$" "$ARGV_LOG"; then ok "update: went through the runtime's update"
  else notok "update: went through the runtime's update"; fi
}

docker_main() {
  DUMP_FN=docker_dump
  E=dk
  ECMD=(/usr/bin/docker -H "unix://$D/docker.sock")
  RUNOPTS=(--network none --pull never --runtime testudo)
  INIT_NAME=docker-init
  # docker 20.10 reads the OCI-form syscalls list (its own format has the same field names) but
  # has no defaultErrnoRet or flags: it leaves them out of config.json (checked with a profile).
  SECCOMP_MAY_DROP=defaultErrnoRet,flags
  # Docker Bench's warnings for `docker run busybox` that a config.json shows: root user, no
  # memory, cpu or pids limit, a writable root, no no-new-privileges.
  AUDIT_EXPECT="4.1 5.10 5.11 5.12 5.25 5.28"
  docker_start || return
  local out want
  out=$(dk load -i "$T/image.tar" 2>&1)
  like "docker load of the image archive" 'Loaded image: (docker.io/library/)?testudo-busybox:latest' "$out"

  policy_file
  docker_policy_checks
  if [ "$ONLY" = policy ]; then stop_pid "$DOCKERD_PID"; return; fi

  # the engine reports the runtime
  out=$(dk info --format '{{json .Runtimes}} default={{.DefaultRuntime}}' 2>&1)
  contains "docker info lists runtime testudo with its path" "\"testudo\":{\"path\":\"$WRAP\"" "$out"
  like "docker info: default runtime is testudo" 'default=testudo$' "$out"
  # dockerd runs `<runtime> --version` and takes what follows "version" on the first line
  # containing it (and "commit:") as the component's version.
  want=$("$RUNTIME" --version 2>/dev/null | grep -m1 version | sed 's/.*version//; s/^ *//; s/ *$//')
  out=$(dk version --format '{{range .Server.Components}}{{.Name}}={{.Version}};{{end}}' 2>&1)
  contains "docker version shows component testudo=<runtime --version>" "testudo=$want;" "$out"

  out=$(dk run -d --network none --runtime testudo --name dk-rt "$IMAGE" sleep 30 2>&1)
  is "docker inspect: HostConfig.Runtime is testudo" testudo "$(insp dk-rt '{{.HostConfig.Runtime}}')"
  dk rm -f dk-rt >/dev/null 2>&1

  cli_checks

  # an unregistered runtime name is refused by the engine itself
  out=$(dk run --rm --network none --runtime no-such-runtime "$IMAGE" true 2>&1)
  like "--runtime with an unknown name is refused" 'Unknown runtime specified|unknown or invalid runtime' "$out"

  dk rm -f $(dk ps -aq 2>/dev/null) >/dev/null 2>&1
  stop_pid "$DOCKERD_PID"
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then notok "dockerd stops on SIGTERM"; else ok "dockerd stops on SIGTERM"; fi
}
