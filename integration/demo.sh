#!/usr/bin/env bash
# Build testudo and run a busybox container with hardened defaults, showing what it sees.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/integration/setup.sh"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="$here/target/x86_64-unknown-linux-gnu/release/testudo"
work=$(mktemp -d /tmp/testudo-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The container's root is an unprivileged host id (user namespace): it must be able to walk here.
chmod 755 "$work"
bash "$here/integration/busybox-rootfs.sh" "$work/rootfs"
"$bin" spec --hardened --bundle "$work"
"$bin" check --bundle "$work" --fail-on low | tail -1
# The hardened spec (every `check` rule passed), without a terminal, running a script that reports from inside.
python3 - "$work/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", """
echo "hostname:      $(hostname)"
echo "my pid:        $$ (pid 1 of my own pid namespace)"
echo "uid/gid:       $(id -u)/$(id -g), host uid of root: $(awk '{print $2}' /proc/self/uid_map)"
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | sed 's/^/status:        /'
echo "root fs:       $(touch /x 2>&1 && echo writable)"
echo "limits:        pids $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max), memory $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "mounts:        $(wc -l < /proc/self/mountinfo) (host has more)"
echo "network:       $(ls /sys/class/net | tr '\\n' ' ')"
echo "raw socket:    $(ping -c1 127.0.0.1 2>&1 | tail -1)"
"""]
json.dump(c, open(path, "w"), indent=2)
PY
echo "testudo $("$bin" --version | head -1 | cut -d' ' -f3) running $work (busybox, hardened defaults):"
"$bin" --root "$work/state" run --bundle "$work" demo
