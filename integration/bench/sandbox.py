#!/usr/bin/env python3
"""The build-job sandbox against bubblewrap (issue 15): the same job, a small C project compiled
with the host's gcc, run under `testudo sandbox` and under `bwrap`, interleaved, in one run.

Both get the same view: the host's /usr and /etc read-only (Debian's merged /usr: /bin, /lib,
/lib64, /sbin are links into it), a writable workspace at /workspace, a tmpfs /tmp, their own
proc and dev, every namespace. testudo adds what bwrap does not do (a user namespace whose root is
an unprivileged host id, seccomp, cgroup limits, no capabilities); the figures are what that costs.

nsjail, the issue's other anchor, is not packaged for Debian 12 and cannot be fetched here: it is
left out, and the report says so.

    python3 integration/bench/sandbox.py [--smoke] [--iterations N] [--files N]

Root; installs bubblewrap. Prints a table with medians and the testudo/bwrap ratios.
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
    if shutil.which("bwrap") is None:
        sh("apt-get", "install", "-y", "-qq", "bubblewrap", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    base = tempfile.mkdtemp(prefix="testudo-sandbox-bench.")
    try:
        root = rootfs(base)
        state = os.path.join(base, "state")
        ws = {n: os.path.join(base, f"ws-{n}") for n in ["testudo", "bwrap"]}
        for w in ws.values():
            os.makedirs(w)
        # The job is uid 1000 inside testudo's sandbox; the workspace is idmapped to it.
        runs = {
            "startup": {"testudo": lambda: testudo(root, state, ws["testudo"], "true"), "bwrap": lambda: bwrap(ws["bwrap"], "true")},
            "build": {"testudo": lambda: testudo(root, state, ws["testudo"], BUILD), "bwrap": lambda: bwrap(ws["bwrap"], BUILD)},
        }
        res = {k: {"testudo": [], "bwrap": []} for k in runs}
        outputs = set()
        for i in range(a.iterations + 1):
            for what, cmds in runs.items():
                for name, cmd in cmds.items():
                    if what == "build":
                        project(ws[name], a.files)
                    dt, out = timed(cmd())
                    if what == "build":
                        outputs.add(out)
                    if i > 0:  # the first round warms the caches
                        res[what][name].append(dt)
        if len(outputs) != 1:
            sys.exit(f"sandbox bench: the two sandboxes built different programs: {outputs}")
        print(f"sandbox bench: {a.iterations} iterations, a {a.files + 1}-file C project, medians (nsjail: not packaged for Debian 12)")
        print(f"{'metric':<34} {'testudo':>10} {'bwrap':>10} {'testudo/bwrap':>14}")
        for what, unit, scale in [("startup", "ms", 1000), ("build", "s", 1)]:
            t, b = statistics.median(res[what]["testudo"]) * scale, statistics.median(res[what]["bwrap"]) * scale
            label = "start + exit of `true`" if what == "startup" else "compile and run the project"
            print(f"{label + ', ' + unit:<34} {t:>10.2f} {b:>10.2f} {t / b:>14.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
