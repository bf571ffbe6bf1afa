#!/usr/bin/env bash
# Run a command as root inside a throw-away qemu VM with a pure cgroup v2 kernel and AppArmor:
#   integration/vm/run.sh CMD [ARG…]
# prints CMD's stdout and stderr (streamed while it runs) and exits with CMD's exit status.
#
# The guest is a Debian 6.1 cloud kernel (virtiofs, overlay and AppArmor built in or as modules)
# booted under TCG (KVM is unusable on our CI machine) with a busybox initramfs as init. The host's
# `/` is shared read-only over virtiofs with a tmpfs overlay on top, so the guest runs the host's
# userland and the host's testudo binary, and nothing it writes reaches the host. Inside: cgroup2
# with every controller at /sys/fs/cgroup, securityfs, devpts, /dev/shm, mqueue, tmpfs on /run
# (the host's /tmp stays visible, so a script there can be run), and TESTUDO_IN_VM=1 plus the
# caller's TESTUDO_* variables in the environment; the working directory is the caller's.
#
# Everything it needs (qemu, busybox-static, the kernel, the Rust virtiofsd) is installed on first
# use and cached in $TESTUDO_VM_CACHE (default /var/cache/testudo-vm), outside the repository, so
# a fresh clone on the same machine reuses it.
#
# It never skips: when the VM cannot be built or booted, or the guest dies without reporting the
# command's status, it says why on stderr and exits 125; when the guest outlives
# $TESTUDO_VM_TIMEOUT seconds (default 900) it is killed and the exit status is 124.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG…]" >&2; exit 2; }
CACHE=${TESTUDO_VM_CACHE:-/var/cache/testudo-vm}
TIMEOUT=${TESTUDO_VM_TIMEOUT:-900}
MEM=${TESTUDO_VM_MEM:-2G}
# The one major LSM the guest boots with: AppArmor (profiles loadable at once) or SELinux
# (no policy until the command loads one: tests-selinux.sh does).
# pid 1 of the guest: busybox (the command runs as soon as the root is up) or systemd (the command
# runs as a unit once the basic system and the system bus are up; see guest_init).
case ${TESTUDO_VM_INIT:-busybox} in
  busybox) INIT_ARGS= ;;
  systemd) INIT_ARGS="testudo.init=systemd systemd.unit=testudo-vm.target systemd.unified_cgroup_hierarchy=1" ;;
  *) echo "TESTUDO_VM_INIT=$TESTUDO_VM_INIT: busybox or systemd" >&2; exit 2 ;;
esac
# The cgroup layout: v2 (cgroup2 alone, every controller) or, with systemd as pid 1, hybrid:
# systemd mounts the v1 controllers and its own tracking hierarchy, cgroup2 at
# /sys/fs/cgroup/unified (as on hosts that still boot with systemd.unified_cgroup_hierarchy=0).
case ${TESTUDO_VM_CGROUP:-v2} in
  v2) CGROUP_ARGS="cgroup_no_v1=all" ;;
  hybrid)
    [ "${TESTUDO_VM_INIT:-}" = systemd ] || { echo "TESTUDO_VM_CGROUP=hybrid needs TESTUDO_VM_INIT=systemd" >&2; exit 2; }
    CGROUP_ARGS="testudo.cgroup=hybrid"; INIT_ARGS=${INIT_ARGS/unified_cgroup_hierarchy=1/unified_cgroup_hierarchy=0} ;;
  *) echo "TESTUDO_VM_CGROUP=$TESTUDO_VM_CGROUP: v2 or hybrid" >&2; exit 2 ;;
esac
case ${TESTUDO_VM_LSM:-apparmor} in
  apparmor) LSM_ARGS="apparmor=1 security=apparmor" ;;
  selinux) LSM_ARGS="selinux=1 security=selinux" ;;
  *) echo "TESTUDO_VM_LSM=$TESTUDO_VM_LSM: apparmor or selinux" >&2; exit 2 ;;
esac
# Pinned so that a fresh machine gets the virtiofsd this harness was measured with.
VIRTIOFSD_VERSION=1.14.0
# Loaded in this order: each needs the ones before it; the rest of what the guest needs is built in.
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci fuse virtiofs overlay"
# Not loaded at boot: kept in $KDIR/extra, named to the command as $TESTUDO_VM_EXTRA_MODULES, for
# the tests that load them, in this order (tests-criu.sh: CRIU asks the socket diagnostics of every
# kind and probes nftables).
EXTRA_MODULES="inet_diag tcp_diag udp_diag unix_diag netlink_diag af_packet_diag libcrc32c nfnetlink nf_tables nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack nf_conntrack_netlink"

die() { echo "vm: $*" >&2; exit 125; }
[ "$(id -u)" -eq 0 ] || die "must run as root (virtiofsd's namespace sandbox and the guest's root)"
mkdir -p "$CACHE"

# --- first-time installs, under a lock so that concurrent runs do not race ------------------------
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@" >/dev/null ||
    { apt-get update -qq -o DPkg::Lock::Timeout=600 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}

install_host_packages() {
  local need=() pkg
  # libcap-ng-dev and libseccomp-dev only to build virtiofsd.
  for pkg in qemu-system-x86 busybox-static libcap-ng-dev libseccomp-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  [ ${#need[@]} -eq 0 ] || { echo "vm: installing ${need[*]}" >&2; apt_install "${need[@]}"; }
}

# The newest Debian 6.1 cloud kernel apt knows about, unpacked into $CACHE/kernel/KVER.
newest_kernel_pkg() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' |
    awk '{print $1}' | sort -V | tail -n 1
}

extras_complete() {
  local m
  for m in $EXTRA_MODULES; do [ -f "$KDIR/extra/$m.ko" ] || return 1; done
}

install_kernel() {
  local pkg
  pkg=$(newest_kernel_pkg)
  # A fresh machine may have no package lists yet.
  [ -n "$pkg" ] || { apt-get update -qq -o DPkg::Lock::Timeout=600 || true; pkg=$(newest_kernel_pkg); }
  [ -n "$pkg" ] || die "apt-cache knows no linux-image-6.1.0-*-cloud-amd64-unsigned, even after apt-get update"
  KVER=${pkg#linux-image-}; KVER=${KVER%-unsigned}
  KDIR=$CACHE/kernel/$KVER
  [ -f "$KDIR/.complete" ] && extras_complete && return 0
  echo "vm: downloading $pkg" >&2
  local tmp; tmp=$(mktemp -d "$CACHE/kernel.XXXXXX")
  # apt's _apt sandbox user cannot write into a root-only directory; that only costs a warning.
  # Stale lists name a version the mirror has dropped: update once and retry.
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) ||
    { apt-get update -qq -o DPkg::Lock::Timeout=600 && (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null); } ||
    { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
  dpkg-deb -x "$tmp"/*.deb "$tmp/x" || die "dpkg-deb -x $pkg failed"
  local m f
  # A kernel cached before the extra modules existed keeps its boot files (and so its initramfs).
  if [ ! -f "$KDIR/.complete" ]; then
    mkdir -p "$tmp/k/modules"
    cp "$tmp/x/boot/vmlinuz-$KVER" "$tmp/k/vmlinuz"
    for m in $MODULES; do
      f=$(find "$tmp/x/lib/modules/$KVER" -name "$m.ko" | head -n 1)
      [ -n "$f" ] || die "$pkg has no module $m.ko"
      cp "$f" "$tmp/k/modules/"
    done
    touch "$tmp/k/.complete"
    rm -rf "$KDIR"; mkdir -p "$CACHE/kernel"; mv "$tmp/k" "$KDIR"
  fi
  mkdir -p "$tmp/extra"
  for m in $EXTRA_MODULES; do
    f=$(find "$tmp/x/lib/modules/$KVER" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || die "$pkg has no module $m.ko"
    cp "$f" "$tmp/extra/"
  done
  rm -rf "$KDIR/extra"; mv "$tmp/extra" "$KDIR/extra"; rm -rf "$tmp"
}

# qemu 7.2's bundled C virtiofsd keeps an fd per inode and runs out of them when the guest walks
# the host's tree; the Rust one with --inode-file-handles=prefer does not.
install_virtiofsd() {
  VIRTIOFSD=$CACHE/cargo/bin/virtiofsd
  if [ -x "$VIRTIOFSD" ] && "$VIRTIOFSD" --version 2>/dev/null | grep -q "$VIRTIOFSD_VERSION"; then
    return 0
  fi
  command -v cargo >/dev/null || die "cargo is needed to build virtiofsd (rustup)"
  echo "vm: building virtiofsd $VIRTIOFSD_VERSION (cargo install, about 2-3 min)" >&2
  nice -n 19 cargo install --quiet --locked --version "$VIRTIOFSD_VERSION" \
    --root "$CACHE/cargo" virtiofsd >&2 || die "cargo install virtiofsd failed"
}

# The base initramfs: static busybox, the modules, and /init (below). Rebuilt when any changes.
build_initramfs() {
  local bb=/bin/busybox
  case $("$bb" --help 2>&1) in *BusyBox*) ;; *) die "no busybox at $bb" ;; esac
  ldd "$bb" >/dev/null 2>&1 && die "$bb is not static (install busybox-static)"
  local key
  key=$( { sha256sum "$bb" "$KDIR"/modules/*.ko; guest_init; } | sha256sum | cut -c1-16)
  INITRD=$CACHE/initramfs-$KVER-$key.cpio.gz
  [ -f "$INITRD" ] && return 0
  local tmp; tmp=$(mktemp -d "$CACHE/initramfs.XXXXXX")
  mkdir -p "$tmp"/root/{bin,modules,proc,sys,dev,lower,rw,newroot}
  cp "$bb" "$tmp/root/bin/busybox"
  cp "$KDIR"/modules/*.ko "$tmp/root/modules/"
  guest_init > "$tmp/root/init"; chmod 755 "$tmp/root/init"
  (cd "$tmp/root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$tmp/initrd.gz"
  # Older ones (another busybox, kernel or init) are not used again.
  rm -f "$CACHE"/initramfs-*.cpio.gz
  mv "$tmp/initrd.gz" "$INITRD"; rm -rf "$tmp"
}

# /init, run by the kernel from the initramfs as pid 1. It builds the guest's root (virtiofs lower,
# tmpfs upper) with every API filesystem already mounted under it, moves it onto `/` and chroots:
# pivot_root, which every container runtime uses, fails when `/` is the initramfs itself, but works
# from a root that is a mount of its own. Busybox ash stays pid 1 and reaps orphans (container
# inits whose `create` has exited) while it waits for the command.
guest_init() {
  sed "s/MODULES_LIST/$MODULES/" <<'INIT'
#!/bin/busybox sh
export PATH=/bin
busybox mount -t proc proc /proc
busybox mount -t devtmpfs dev /dev
busybox mount -t sysfs sys /sys
# ttyS1: the command's stdout, ttyS2: its stderr, ttyS3: "exit N"; raw, or \n becomes \r\n.
for t in 1 2 3; do busybox stty -F /dev/ttyS$t raw -echo; done
fail() { echo "vm-init: $*" >&2; echo "exit 125 vm-init: $*" > /dev/ttyS3; busybox sync; busybox poweroff -f; }
for m in MODULES_LIST; do busybox insmod /modules/$m.ko || fail "insmod $m"; done
busybox mount -t virtiofs -o ro hostroot /lower || fail "mount virtiofs"
busybox mount -t tmpfs -o mode=0755 rw /rw && busybox mkdir /rw/upper /rw/work || fail "tmpfs"
busybox mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  fail "mount overlay"
r=/newroot
mnt() { busybox mkdir -p "$r$4" && busybox mount -t "$1" -o "$2" "$3" "$r$4" || fail "mount $1 on $4"; }
mnt proc nosuid,nodev,noexec proc /proc
mnt sysfs nosuid,nodev,noexec sysfs /sys
case " $(busybox cat /proc/cmdline) " in
*" testudo.cgroup=hybrid "*) ;;  # systemd mounts the hybrid layout itself
*) mnt cgroup2 nosuid,nodev,noexec cgroup2 /sys/fs/cgroup ;;
esac
mnt securityfs nosuid,nodev,noexec securityfs /sys/kernel/security
mnt devtmpfs nosuid,mode=0755 devtmpfs /dev
mnt devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
mnt tmpfs nosuid,nodev,mode=1777 tmpfs /dev/shm
mnt mqueue nosuid,nodev,noexec mqueue /dev/mqueue
mnt tmpfs nosuid,nodev,mode=0755 tmpfs /run
# Daemons' state dirs: overlayfs cannot be the upper layer of their own overlay mounts.
for d in /var/lib/docker /var/lib/containerd /var/lib/containers; do
  [ -d "$r$d" ] && mnt tmpfs mode=0711 tmpfs "$d"
done
busybox mkdir -p $r/run/testudo-vm
busybox cp /cmd /env $r/run/testudo-vm/ || fail "no command in the initrd"
busybox cp /bin/busybox $r/run/testudo-vm/busybox
# The command, its report on ttyS3, and the power-off: pid 1's shell runs it, or under systemd
# a unit.
busybox cat > $r/run/testudo-vm/go <<'GO'
cd / && . /run/testudo-vm/env
read -r up _ </proc/uptime; echo "boot $up" >/dev/ttyS3
/bin/bash /run/testudo-vm/cmd </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo "exit $?" >/dev/ttyS3
/run/testudo-vm/busybox sync
/run/testudo-vm/busybox poweroff -f
GO
case " $(busybox cat /proc/cmdline) " in
*" testudo.init=systemd "*)
  # systemd as pid 1 on the same root (the API filesystems above are kept; /etc and /var are
  # the overlay's, writable): the kernel command line names testudo-vm.target, the basic system
  # plus the bus and the command as a unit.
  u=$r/etc/systemd/system
  busybox mkdir -p $u || fail "mkdir $u"
  busybox cat > $u/testudo-vm.target <<'UNIT'
[Unit]
Description=testudo VM: the basic system, the system bus, the test command
Requires=basic.target
After=basic.target
Wants=dbus.socket dbus.service testudo-vm-test.service
AllowIsolate=yes
UNIT
  busybox cat > $u/testudo-vm-test.service <<'UNIT'
[Unit]
Description=testudo VM test command
Wants=dbus.service
After=basic.target dbus.service
[Service]
Type=oneshot
TimeoutStartSec=infinity
StandardInput=null
ExecStart=/run/testudo-vm/busybox sh /run/testudo-vm/go
UNIT
  # Debian's tmp.conf empties /tmp at boot ("D"): here that is the host's /tmp (the seeds the
  # tests run from), deleted file by file into the overlay. Keep it.
  busybox mkdir -p $r/etc/tmpfiles.d && echo 'd /tmp 1777 root root -' > $r/etc/tmpfiles.d/tmp.conf || fail "tmpfiles.d"
  # The host may be a container: its marker would make systemd believe it runs in one (and
  # ignore the kernel command line, among others).
  busybox rm -f $r/.dockerenv
  cd $r && busybox mount --move . / || fail "move the root"
  exec busybox chroot . /lib/systemd/systemd --unit=testudo-vm.target ;;
esac
cd $r && busybox mount --move . / || fail "move the root"
exec busybox chroot . /run/testudo-vm/busybox sh /run/testudo-vm/go
INIT
}

# --- per run ---------------------------------------------------------------------------------------
(
  flock 9
  install_host_packages
  install_kernel
  install_virtiofsd
  build_initramfs
  # Hand the chosen paths to the unlocked part.
  printf 'KVER=%q KDIR=%q VIRTIOFSD=%q INITRD=%q\n' "$KVER" "$KDIR" "$VIRTIOFSD" "$INITRD" > "$CACHE/.chosen.$$"
) 9> "$CACHE/.lock"
. "$CACHE/.chosen.$$"; rm -f "$CACHE/.chosen.$$"

run=$(mktemp -d /tmp/testudo-vm.XXXXXX)
vfs_pid= qemu_pid= tail_pid=
cleanup() {
  local p
  for p in $tail_pid $qemu_pid $vfs_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # For a look at a boot that went wrong (or a systemd boot's messages).
  [ -z "${TESTUDO_VM_CONSOLE:-}" ] || cp "$run/console" "$TESTUDO_VM_CONSOLE" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

# The per-run initrd part: the command, quoted for bash, and its environment. The kernel
# concatenates both parts; each must be gzipped or it rejects the second.
mkdir -p "$run/part"
{
  cwd=$(pwd)
  printf 'cd %q 2>/dev/null || cd /\n' "$cwd"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$run/part/cmd"
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  echo 'export HOME=/root TERM=dumb LANG=C.UTF-8 TESTUDO_IN_VM=1'
  printf 'export TESTUDO_VM_EXTRA_MODULES=%q\n' "$KDIR/extra"
  while IFS= read -r name; do
    case $name in TESTUDO_VM_*|TESTUDO_IN_VM) continue ;; esac
    printf 'export %s=%q\n' "$name" "${!name}"
  done < <(compgen -e | grep '^TESTUDO_' || true)
} > "$run/part/env"
(cd "$run/part" && printf 'cmd\nenv\n' | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$run/part.gz"
cat "$INITRD" "$run/part.gz" > "$run/initrd"

"$VIRTIOFSD" --socket-path="$run/vfs.sock" --shared-dir=/ --readonly --sandbox=namespace \
  --no-announce-submounts --inode-file-handles=prefer --rlimit-nofile=0 --cache=always \
  --log-level=error > "$run/virtiofsd.log" 2>&1 &
vfs_pid=$!
for _ in $(seq 100); do [ -S "$run/vfs.sock" ] && break; sleep 0.05; done
[ -S "$run/vfs.sock" ] || { cat "$run/virtiofsd.log" >&2; die "virtiofsd did not start"; }

: > "$run/out"; : > "$run/err"; : > "$run/status"
started=$EPOCHREALTIME
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg,thread=multi,tb-size=1024 -cpu "${TESTUDO_VM_CPU:-max}" -smp 2 -machine q35 \
  -m "$MEM" -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -numa node,memdev=mem \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$KDIR/vmlinuz" -initrd "$run/initrd" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init $CGROUP_ARGS $LSM_ARGS $INIT_ARGS random.trust_cpu=on mitigations=off" \
  -chardev "socket,id=vfs,path=$run/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=hostroot \
  -serial "file:$run/console" -serial "file:$run/out" -serial "file:$run/err" -serial "file:$run/status" \
  > "$run/qemu.log" 2>&1 &
qemu_pid=$!
# Stream the command's output while it runs, so that a hang shows how far it got.
tail -s 0.2 -n +1 -f --pid=$qemu_pid "$run/out" &
tail_pid=$!
tail -s 0.2 -n +1 -f --pid=$qemu_pid "$run/err" >&2 &
tail_pid="$tail_pid $!"
set +e
wait $qemu_pid; qemu_rc=$?
set -e
wait $tail_pid 2>/dev/null || true; tail_pid=
qemu_pid=
elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
status=$(tr -d '\r' < "$run/status" | grep -m1 '^exit ' || true)
booted=$(tr -d '\r' < "$run/status" | awk '$1 == "boot" {print $2}')

console_tail() { echo "--- guest console (last 40 lines):" >&2; tr -d '\r' < "$run/console" | tail -n 40 >&2
                 [ -s "$run/qemu.log" ] && { echo "--- qemu:" >&2; cat "$run/qemu.log" >&2; }
                 [ -s "$run/virtiofsd.log" ] && { echo "--- virtiofsd:" >&2; cat "$run/virtiofsd.log" >&2; }; true; }
if [ $qemu_rc -eq 124 ] || [ $qemu_rc -eq 137 ]; then
  echo "vm: the guest ran past ${TIMEOUT} s and was killed" >&2; console_tail; exit 124
fi
case $status in
  "exit 125 vm-init:"*) echo "vm: ${status#exit 125 }" >&2; console_tail; exit 125 ;;
  "exit "[0-9]*) rc=${status#exit }; rc=${rc%% *} ;;
  *) echo "vm: the guest stopped (qemu status $qemu_rc) without reporting the command's status" >&2
     console_tail; exit 125 ;;
esac
[ -n "${TESTUDO_VM_VERBOSE:-}" ] && echo "vm: $KVER, guest booted to the command in ${booted:-?} s (guest clock), ${elapsed} s from qemu start to poweroff" >&2
exit "$rc"
