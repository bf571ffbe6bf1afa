#!/usr/bin/env bash
# Build a busybox root filesystem from Debian's busybox-static: one static binary, its applet
# links, and the few files a container image normally has. Used by the tests, the demo, the
# benchmark and the client suite so that they all run the same bundle contents.
#   busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
if [ ! -x /bin/busybox ] || ! /bin/busybox --help 2>&1 | grep -q 'static'; then
  if ! dpkg -s busybox-static >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  fi
fi
mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,tmp,root,home,var,run,usr/bin,usr/sbin}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
# Relative links, so the rootfs is valid wherever it is mounted.
for applet in $("$dir/bin/busybox" --list); do
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
G
: > "$dir/etc/hostname"
echo 'nameserver 127.0.0.1' > "$dir/etc/resolv.conf"
: > "$dir/etc/hosts"
