#!/usr/bin/env python3
"""Resolve a moby seccomp profile (archMap, includes/excludes) into OCI `linux.seccomp` form,
the way dockerd's setupSeccomp does at container start, for one architecture, one bounding set
and one kernel floor. Usage: convert.py SOURCE.json > default.json"""
import json
import sys

ARCH = "amd64"  # dockerd's name for x86_64
NATIVE = "SCMP_ARCH_X86_64"
# Docker's default capability set (moby oci/caps/defaults.go); a rule that includes a
# capability is kept only when the container's bounding set has it.
CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}
# testudo's kernel floor: every minKernel at or below it is taken as met.
KERNEL = (5, 14)


def kernel(v):
    major, minor = v.split(".")[:2]
    return (int(major), int(minor))


def keep(rule):
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if ARCH in exc.get("arches", []):
        return False
    if any(c in CAPS for c in exc.get("caps", [])):
        return False
    if exc.get("minKernel") and KERNEL >= kernel(exc["minKernel"]):
        return False
    if inc.get("arches") and ARCH not in inc["arches"]:
        return False
    if any(c not in CAPS for c in inc.get("caps", [])):
        return False
    if inc.get("minKernel") and KERNEL < kernel(inc["minKernel"]):
        return False
    return True


def convert(src):
    out = {"defaultAction": src["defaultAction"]}
    # moby leaves the errno of the default action to the runtime, which is EPERM; newer moby
    # profiles say so with defaultErrnoRet 1. Keep it explicit.
    out["defaultErrnoRet"] = src.get("defaultErrnoRet", 1)
    arches = src.get("architectures") or []
    for a in src.get("archMap", []):
        if a["architecture"] == NATIVE:
            arches = [a["architecture"]] + a["subArchitectures"]
    out["architectures"] = arches
    syscalls = []
    for rule in src["syscalls"]:
        if not keep(rule):
            continue
        names = rule.get("names") or [rule["name"]]
        r = {"names": names, "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            r["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            r["args"] = rule["args"]
        syscalls.append(r)
    out["syscalls"] = syscalls
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        src = json.load(f)
    json.dump(convert(src), sys.stdout, indent="\t")
    sys.stdout.write("\n")
