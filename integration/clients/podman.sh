# podman 4.3 (Debian) with conmon: no daemon; every call carries its own root, runroot, storage
# and engine config under $T/podman, the cgroupfs manager and the file events backend (no
# systemd here), and --runtime PATH.

PD=$T/podman
pm() { tmo "$CALL_TIMEOUT" "${ECMD[@]}" "$@"; }

podman_dump() {
  echo "-- podman ps -a"; timeout 10 "${ECMD[@]}" ps -a 2>&1
  echo "-- events (tail)"; tail -n 15 "$PD/events.log" 2>&1
  echo "-- runtime list (default root)"; timeout 10 "$RUNTIME" list 2>&1 | grep -F -e ID -e "$PD" | head -20
}

podman_setup() {
  mkdir -p "$PD/root" "$PD/runroot" "$PD/tmp"
  cat > "$PD/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$PD/runroot"
graphroot = "$PD/root"
EOF
  # podman decides from the runtime's basename whether it may ask for --log-format=json (and so
  # read the runtime's error messages): the list must name the runtime under test.
  cat > "$PD/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=30000:30000"]
netns = "none"
log_driver = "k8s-file"
init_path = "/usr/bin/catatonit"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PD/events.log"
tmp_dir = "$PD/tmp"
static_dir = "$PD/root/libpod"
volume_path = "$PD/root/volumes"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "$(basename "$RUNTIME")"]
EOF
  ECMD=(env "CONTAINERS_CONF=$PD/containers.conf" "CONTAINERS_STORAGE_CONF=$PD/storage.conf"
        podman --root "$PD/root" --runroot "$PD/runroot" --storage-driver overlay
        --cgroup-manager cgroupfs --events-backend file --tmpdir "$PD/tmp" --runtime "$WRAP")
}

podman_update_check() {
  local name=$1 pid=$2 out dir
  if "${ECMD[@]}" update --help 2>&1 | grep -q -- --pids-limit; then
    if [ "$(pids_controller)" = none ]; then
      skip "update --pids-limit" "no pids controller on this host (neither cgroup v1 nor enabled in cgroup2)"
    else
      out=$(pm update --pids-limit 77 "$name" 2>&1)
      is "update --pids-limit 77: the container's cgroup has pids.max 77" 77 "$(cat "$(cgroup_dir "$pid" pids)/pids.max" 2>&1)" "$out"
    fi
  else
    # not a host limitation, so not a SKIP: this podman has no such option
    note "update --pids-limit does not apply: podman $("${ECMD[@]}" version --format '{{.Client.Version}}' 2>/dev/null)'s update has only cpu, memory and blkio options; update is checked with --cpu-quota"
  fi
  dir=$(cgroup_dir "$pid" cpu)
  out=$(pm update --cpu-period 100000 --cpu-quota 50000 "$name" 2>&1)
  is "update --cpu-quota 50000: the container's cgroup has cpu.cfs_quota_us 50000" 50000 \
    "$(cat "$dir/cpu.cfs_quota_us" 2>&1)" "$out"
  if grep -qE " update .*$(cid_of "$name")\$" "$ARGV_LOG"; then ok "update: went through the runtime's update"
  else notok "update: went through the runtime's update" "$out"; fi
}

podman_main() {
  DUMP_FN=podman_dump
  E=pm
  RUNOPTS=(--network none --pull never --cgroup-parent "/testudo-clients-$$-podman")
  SECCOMP_MAY_DROP=
  # As Docker's (docker.sh), but podman sets a pids limit (2048) by default.
  AUDIT_EXPECT="4.1 5.10 5.11 5.12 5.25"
  INIT_NAME=podman-init   # catatonit, bind-mounted as /run/podman-init
  podman_setup
  local out want
  out=$(pm load -i "$T/image.tar" 2>&1)
  like "podman load of the image archive" 'Loaded image.*testudo-busybox:latest' "$out"
  policy_file
  podman_policy_checks
  [ "$ONLY" = policy ] && return
  out=$(pm info --format '{{.Host.OCIRuntime.Path}}|{{.Host.OCIRuntime.Version}}' 2>&1)
  want=$("$RUNTIME" --version 2>/dev/null | head -1)
  is "podman info: OCI runtime path is the one given" "$WRAP" "${out%%|*}"
  contains "podman info: OCI runtime version is the runtime's --version" "$want" "$out"
  out=$(pm info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Store.GraphRoot}}' 2>&1)
  is "podman info: cgroupfs manager, v1, storage under the scratch dir" "cgroupfs v1 $PD/root" "$out"

  cli_checks

  out=$(pm run --rm --network none --runtime /nonexistent/runtime "$IMAGE" true 2>&1)
  like "--runtime with a missing binary is refused" 'nonexistent/runtime' "$out"
  # podman build (buildah inside podman) with podman's --runtime: the RUN steps are the runtime's.
  img_cat() {
    local m
    m=$(pm image mount "$1" 2>&1) || { echo "podman image mount $1: $m"; return 1; }
    cat "$m$2"
    pm image unmount "$1" >/dev/null 2>&1
  }
  img_exists() { pm image exists "$1"; }
  BLD=(pm build --isolation oci --pull=never)
  build_checks

  pm rm -af >/dev/null 2>&1
  out=$(pm ps -aq 2>&1)
  is "podman rm -af leaves no container" "" "$out"
}
