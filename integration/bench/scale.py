"""bench.py --scale N [--mounts M]: how `create`, `start`, `exec`, `delete`, `list` and `state`
scale as the host fills up (issue 26), for testudo and the peers' current releases.

Three phases, each runtime in turn within a phase, the same calls each time on a `sleep 1000`
container: `create`, `start`, `state` and `list` while it runs, `exec /bin/true`, then `kill`
and `delete` (timed); the phases:
  empty       nothing else;
  mounts      M extra tmpfs mounts in the benchmark's private mount namespace (where every
              runtime runs: a container's new mount namespace copies them, and whatever reads
              /proc/self/mountinfo reads them);
  full        those mounts and N running containers of the same runtime (created and started
              before, deleted after; only one runtime's containers run at a time).
Run from bench.py, which has entered the private mount namespace and made the runtimes."""
import ctypes
import os
import time

import bench

PHASES = ["empty", "mounts", "full"]
KEYS = ["create", "start", "state", "list", "exec", "delete"]
FLOOR = "kernel floor"


def add_mounts(work, m):
    """M tmpfs mounts below one parent tmpfs, with mount(2) directly (a mount(8) each would take
    seconds); dropped all at once by detaching the parent."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.path.join(work, "mounts")
    os.makedirs(parent)
    if libc.mount(b"bench-mounts", parent.encode(), b"tmpfs", 0, b"mode=0755") != 0:
        raise bench.BenchError(f"mount tmpfs on {parent}: {os.strerror(ctypes.get_errno())}")
    for i in range(m):
        d = os.path.join(parent, str(i))
        os.mkdir(d)
        if libc.mount(b"bench-m", d.encode(), b"tmpfs", 0, b"size=4k") != 0:
            raise bench.BenchError(f"mount tmpfs on {d}: {os.strerror(ctypes.get_errno())}")
    return parent


def drop_mounts(parent):
    libc = ctypes.CDLL(None, use_errno=True)
    MNT_DETACH = 2
    libc.umount2(parent.encode(), MNT_DETACH)


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


def once(rt, samples):
    cid = rt.new_id()
    samples["create"].append(rt.call("create", "--bundle", rt.bundles["sleep"], cid))
    samples["start"].append(rt.call("start", cid))
    samples["state"].append(rt.call("state", cid))
    samples["list"].append(rt.call("list"))
    samples["exec"].append(rt.call("exec", cid, "/bin/true"))
    rt.call("kill", cid, "KILL")
    deadline = time.monotonic() + 10
    while rt.status(cid) != "stopped":
        if time.monotonic() > deadline:
            raise bench.BenchError(f"{rt.name}: {cid} not stopped 10 s after kill KILL")
        time.sleep(0.005)
    samples["delete"].append(rt.call("delete", cid))


def fill(rt, n):
    """N running `sleep 1000` containers; returns their ids and the mean ms of create + start."""
    ids, t0 = [], time.perf_counter_ns()
    for _ in range(n):
        cid = rt.new_id()
        rt.call("create", "--bundle", rt.bundles["sleep"], cid)
        rt.call("start", cid)
        ids.append(cid)
    return ids, (time.perf_counter_ns() - t0) / 1e6 / max(n, 1)


def drain(rt, ids):
    for cid in ids:
        rt.call("delete", "--force", cid)
    left = rt.leftovers()
    if left:
        raise bench.BenchError(f"{rt.name}: containers left after the scale phase: {' '.join(left[:5])}")


def run(runtimes, work, floor_argv, n, m, iters, warm):
    """All three phases, and the kernel floor's `run` (floor.c) in each; returns the result dict
    for report()."""
    res = {rt.name: {p: {k: [] for k in KEYS} for p in PHASES} for rt in runtimes}
    res[FLOOR] = {p: {"run": []} for p in PHASES}
    fills = {}
    base_mounts = host_mounts()
    parent = None
    try:
        for phase in PHASES:
            if phase == "mounts":
                parent = add_mounts(work, m)
            bench.log(f"scale: phase {phase} ({host_mounts()} mounts)")
            for rt in runtimes:
                ids = []
                if phase == "full":
                    ids, fills[rt.name] = fill(rt, n)
                try:
                    for i in range(warm + iters):
                        once(rt, res[rt.name][phase] if i >= warm else {k: [] for k in KEYS})
                finally:
                    drain(rt, ids)
            for i in range(warm + iters):
                ms, _ = bench.floor_once(floor_argv, work)
                if i >= warm:
                    res[FLOOR][phase]["run"].append(ms)
    finally:
        if parent:
            drop_mounts(parent)
    return {"n": n, "m": m, "host_mounts": base_mounts, "iterations": iters, "warmup": warm,
            "fill_ms_per_container": fills,
            "samples": res,
            "medians": {name: {p: {k: bench.stats(xs)["median"] for k, xs in v[p].items()} for p in PHASES}
                        for name, v in res.items()}}


def report(out):
    s = out["scale"]
    med = s["medians"]
    lines = [f"#### Scaling: medians in ms, {s['iterations']} iterations after {s['warmup']} warm-up per phase",
             "",
             f"empty: the host's {s['host_mounts']} mounts, no other container; mounts: {s['m']} more tmpfs "
             f"mounts in the private mount namespace; full: those mounts and {s['n']} running containers of "
             f"the same runtime (the kernel floor: floor.c's `run`, none).",
             "",
             f"| runtime | call | empty | +{s['m']} mounts | +{s['n']} containers | full / empty |",
             "|---|---|---:|---:|---:|---:|"]
    for name, phases in med.items():
        for k in phases["empty"]:
            e, mo, f = phases["empty"][k], phases["mounts"][k], phases["full"][k]
            lines.append(f"| {name} | `{k}` | {e:.1f} | {mo:.1f} | {f:.1f} | {f / e:.2f} |")
    lines += ["", f"Filling the host: mean `create` + `start` per container, ms, over the {s['n']}:", "",
              "| runtime | ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in s["fill_ms_per_container"].items()]
    return "\n".join(lines)
