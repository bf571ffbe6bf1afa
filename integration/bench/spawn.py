#!/usr/bin/env python3
"""Spawn benchmark: testudo against runc, crun and youki on the same busybox bundle.

Every runtime runs the identical config.json (runc's default spec, /bin/true, no terminal, no
device cgroup rules: crun cannot load its device eBPF program here because RLIMIT_MEMLOCK cannot
be raised). Runs are interleaved (round-robin per iteration) after a warm-up, inside a private
mount namespace where cgroup2 is mounted at /sys/fs/cgroup, the pure-v2 view crun 1.8 needs on
this hybrid host; every runtime sees the same view. Every peer call is bounded with `timeout -k`
(youki 0.7 can hang when the container exits at once). A failing runtime fails the benchmark.

    spawn.py [--iterations N] [--smoke] [--runtimes testudo,runc,crun,youki] [--json FILE]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
TESTUDO = os.path.join(TOP, "target/x86_64-unknown-linux-gnu/release/testudo")
YOUKI = os.path.join(TOP, "integration/.cache/youki/bin/youki")


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def pure_v2():
    """Re-exec under a private mount namespace with cgroup2 at /sys/fs/cgroup."""
    if os.environ.get("TESTUDO_BENCH_NS") == "1":
        return
    os.environ["TESTUDO_BENCH_NS"] = "1"
    script = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"'
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", sys.executable] + sys.argv)


def install_peers(wanted):
    missing = [p for p, b in (("runc", "/usr/sbin/runc"), ("crun", "/usr/bin/crun")) if p in wanted and not os.path.exists(b)]
    if missing:
        sh("apt-get", "install", "-y", "-qq", *missing, stdout=subprocess.DEVNULL)
    if "youki" in wanted and not os.path.exists(YOUKI):
        start = time.time()
        print("bench: building youki 0.7 from crates.io (cached in integration/.cache/youki) ...", flush=True)
        sh("nice", "-n", "19", "cargo", "install", "--quiet", "--locked", "youki", "--version", "0.7.0",
           "--no-default-features", "--features", "v1,v2,seccomp", "--root", os.path.join(TOP, "integration/.cache/youki"),
           "--target", "x86_64-unknown-linux-gnu")
        print(f"bench: youki built in {time.time() - start:.0f} s", flush=True)


def binary(rt):
    return {"testudo": TESTUDO, "runc": "/usr/sbin/runc", "crun": "/usr/bin/crun", "youki": YOUKI}[rt]


def make_bundle(work, args):
    rootfs = os.path.join(work, "rootfs")
    sh("bash", os.path.join(TOP, "integration/busybox-rootfs.sh"), rootfs)
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    sh("/usr/sbin/runc", "spec", "--bundle", bundle)
    path = os.path.join(bundle, "config.json")
    c = json.load(open(path))
    c["root"] = {"path": rootfs, "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["linux"].pop("resources", None)
    json.dump(c, open(path, "w"), indent=1)
    return bundle


class Runtime:
    def __init__(self, name, work):
        self.name, self.bin = name, binary(name)
        self.root = os.path.join(work, "state-" + name)  # on the same filesystem for every runtime
        self.n = 0

    def call(self, *args, check=True, timeout=20):
        cmd = ["timeout", "-k", "2", str(timeout), self.bin, "--root", self.root, *args]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if check and p.returncode != 0:
            raise SystemExit(f"bench: {self.name} {' '.join(args)} failed ({p.returncode}): {p.stderr.decode().strip()}")
        return p

    def wait_stopped(self, cid):
        deadline = time.time() + 5
        while time.time() < deadline:
            out = subprocess.run(["timeout", "5", self.bin, "--root", self.root, "state", cid], capture_output=True).stdout
            if b'"stopped"' in out:
                return
            time.sleep(0.005)
        raise SystemExit(f"bench: {self.name}: {cid} did not stop after SIGKILL")

    def timed(self, *args):
        t = time.perf_counter()
        self.call(*args)
        return (time.perf_counter() - t) * 1000

    def next_id(self):
        self.n += 1
        return f"b{os.getpid()}-{self.n}"

    def run_rss(self, bundle):
        """Wall time and peak RSS (KiB) of `run` (the runtime and what it waited for)."""
        cid = self.next_id()
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv("/usr/bin/timeout", ["timeout", "-k", "2", "20", self.bin, "--root", self.root, "run", "--bundle", bundle, cid])
        _, status, ru = os.wait4(pid, 0)
        ms = (time.perf_counter() - t) * 1000
        if status != 0:
            raise SystemExit(f"bench: {self.name} run failed (status {status})")
        self.call("delete", "--force", cid, check=False)
        return ms, ru.ru_maxrss


def stats(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "p90": xs[min(len(xs) - 1, int(len(xs) * 0.9))], "n": len(xs)}


def bench(runtimes, true_bundle, sleep_bundle, iters, warm):
    res = {r.name: {k: [] for k in ("run", "create", "start", "exec", "delete", "rss")} for r in runtimes}
    for i in range(warm + iters):
        for r in runtimes:
            ms, rss = r.run_rss(true_bundle)
            cid = r.next_id()
            c = r.timed("create", "--bundle", sleep_bundle, cid)
            s = r.timed("start", cid)
            e = r.timed("exec", cid, "/bin/true")
            r.call("kill", cid, "KILL")
            r.wait_stopped(cid)
            d = r.timed("delete", cid)
            if i >= warm:
                for k, v in zip(("run", "create", "start", "exec", "delete", "rss"), (ms, c, s, e, d, rss)):
                    res[r.name][k].append(v)
    return res


def many(r, bundle, total, parallel):
    t = time.perf_counter()
    ids = [r.next_id() for _ in range(total)]
    for i in range(0, total, parallel):
        procs = [subprocess.Popen(["timeout", "-k", "2", "30", r.bin, "--root", r.root, "run", "--bundle", bundle, cid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for cid in ids[i:i + parallel]]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"bench: {r.name} run failed in the {parallel}-wide batch: {p.stderr.read().decode().strip()}")
    return (time.perf_counter() - t) * 1000


def floor(rootfs, n):
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        sh("unshare", "-p", "-m", "-u", "-i", "-n", "-f", "chroot", rootfs, "/bin/true")
        xs.append((time.perf_counter() - t) * 1000)
    return stats(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--smoke", action="store_true", help="few iterations, for CI")
    ap.add_argument("--runtimes", default="testudo,runc,crun,youki")
    ap.add_argument("--json")
    a = ap.parse_args()
    names = a.runtimes.split(",")
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root")
    install_peers(names)
    pure_v2()
    iters, warm, total = (3, 1, 10) if a.smoke else (a.iterations, 5, 100)
    if "testudo" in names and not os.path.exists(TESTUDO):
        raise SystemExit(f"bench: {TESTUDO} missing: cargo build --release")
    work = tempfile.mkdtemp(prefix="testudo-bench.", dir="/run" if os.path.isdir("/run") else None)
    try:
        true_bundle = make_bundle(work, ["/bin/true"])
        sleep_bundle = os.path.join(work, "sleep")
        shutil.copytree(true_bundle, sleep_bundle)
        c = json.load(open(os.path.join(sleep_bundle, "config.json")))
        c["process"]["args"] = ["sleep", "1000"]
        json.dump(c, open(os.path.join(sleep_bundle, "config.json"), "w"))
        runtimes = [Runtime(n, work) for n in names]
        res = bench(runtimes, true_bundle, sleep_bundle, iters, warm)
        out = {"machine": machine(), "iterations": iters, "results": {}}
        for r in runtimes:
            out["results"][r.name] = {k: stats(v) for k, v in res[r.name].items()}
            out["results"][r.name]["seq"] = many(r, true_bundle, total, 1)
            out["results"][r.name]["par10"] = many(r, true_bundle, total, 10)
        out["floor"] = floor(os.path.join(work, "rootfs"), max(iters, 10))
        report(out, names, total)
        if a.json:
            json.dump(out, open(a.json, "w"), indent=1)
    finally:
        for n in names:
            subprocess.run(["sh", "-c", f'for c in $(ls {work}/state-{n} 2>/dev/null); do timeout 5 {binary(n)} --root {work}/state-{n} delete --force $c; done'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {"cpus": os.cpu_count(), "kernel": os.uname().release, "cpu": model}


def report(out, names, total):
    m = out["machine"]
    print(f"\nmachine: {m['cpus']} cpus, {m['cpu']}, kernel {m['kernel']}; {out['iterations']} interleaved iterations")
    rows = [("run /bin/true (ms)", "run"), ("create (ms)", "create"), ("start (ms)", "start"),
            ("exec /bin/true (ms)", "exec"), ("delete (ms)", "delete"), ("peak RSS of run (KiB)", "rss")]
    head = "| metric | " + " | ".join(names) + " | " + " | ".join(f"testudo/{n}" for n in names if n != "testudo") + " |"
    print(head)
    print("|" + "---|" * (1 + len(names) + len([n for n in names if n != "testudo"])))
    res = out["results"]
    def line(label, get):
        vals = {n: get(res[n]) for n in names}
        ratios = [f"{vals['testudo'] / vals[n]:.2f}" for n in names if n != "testudo" and "testudo" in vals and vals[n]]
        print(f"| {label} | " + " | ".join(f"{vals[n]:.1f}" for n in names) + " | " + " | ".join(ratios) + " |")
    for label, k in rows:
        line(label + " median", lambda r, k=k: r[k]["median"])
    line(f"{total} sequential (ms total)", lambda r: r["seq"])
    line(f"{total}, 10 in parallel (ms total)", lambda r: r["par10"])
    f = out["floor"]
    print(f"\nfloor: unshare -p -m -u -i -n -f chroot rootfs /bin/true: median {f['median']:.1f} ms (p90 {f['p90']:.1f})")


if __name__ == "__main__":
    main()
