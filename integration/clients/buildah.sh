# buildah 1.28 (Debian): `buildah bud --runtime PATH --isolation oci` runs each RUN step of a
# Containerfile as an OCI container of the runtime. No daemon: every call carries its own root,
# runroot and storage under $T/buildah, the cgroupfs manager (no systemd here) and --runtime.

BH=$T/buildah
bh() { tmo "$CALL_TIMEOUT" "${BCMD[@]}" "$@"; }

buildah_dump() {
  echo "-- buildah containers"; timeout 10 "${BCMD[@]}" containers 2>&1 | tail -n 20
  echo "-- runtime list (default root)"; timeout 10 "$RUNTIME" list 2>&1 | head -20
}

buildah_setup() {
  mkdir -p "$BH/root" "$BH/runroot" "$BH/tmp"
  cat > "$BH/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  BCMD=(env "CONTAINERS_CONF=$BH/containers.conf" "TMPDIR=$BH/tmp"
        buildah --root "$BH/root" --runroot "$BH/runroot" --storage-driver overlay)
}

buildah_main() {
  DUMP_FN=buildah_dump
  buildah_setup
  local out
  out=$(bh pull -q "docker-archive:$T/image.tar:$IMAGE" 2>&1)
  out=$(bh images --format '{{.Name}}:{{.Tag}}' 2>&1)
  contains "buildah pull of the image archive" "testudo-busybox:latest" "$out"
  # img_cat IMAGE PATH: a file of a built image, read from a working container's mount (not through
  # the runtime).
  img_cat() {
    local c m
    c=$(bh from --pull=never "$1" 2>&1) || { echo "buildah from $1: $c"; return 1; }
    m=$(bh mount "$c" 2>&1) && cat "$m$2"
    bh rm "$c" >/dev/null 2>&1
  }
  img_exists() { bh inspect --type image "$1" >/dev/null 2>&1; }
  BLD=(bh bud --runtime "$WRAP" --isolation oci --pull=never)
  build_checks
  bh rm -a >/dev/null 2>&1
  bh rmi -a -f >/dev/null 2>&1
}
