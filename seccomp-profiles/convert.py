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
    # ioctl is allowed by argument (ioctl_rules), never outright.
    for r in syscalls:
        if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r and "ioctl" in r["names"]:
            r["names"] = [n for n in r["names"] if n != "ioctl"]
    out["syscalls"] = syscalls + ioctl_rules()
    return out


# ioctl requests that push bytes into a terminal's input queue or paste its selection: a process
# that reaches the caller's terminal types commands into the caller's shell (CVE-2017-5226,
# CVE-2016-7545 class). The kernel refuses them on a tty that is not the caller's controlling one
# unless it holds CAP_SYS_ADMIN in the host's user namespace; the profile refuses them outright.
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
DENIED_IOCTLS = (TIOCSTI, TIOCLINUX)


def ioctl_rules():
    """ioctl allowed for every request but DENIED_IOCTLS, compared on the low 32 bits only: the
    kernel takes the request as an unsigned int, so a request with high bits set must not slip
    past (and musl sign-extends requests with bit 31 set, so high bits cannot simply be refused).
    libseccomp cannot say "allow ioctl but not these": an unconditional rule swallows any
    conditional one for the same syscall, a rule whose action is the default is dropped, and a
    rule may compare an argument once. So the allowed set is written as a union of masked
    compares: a request is allowed when one of the bits on which every denied request agrees
    differs from it, or when it is one of the values that agree on those bits and are not denied.
    """
    cmd = lambda mask, v: {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 1, "value": mask, "valueTwo": v, "op": "SCMP_CMP_MASKED_EQ"}]}
    full = 0xFFFFFFFF
    differ = 0
    for d in DENIED_IOCTLS:
        differ |= d ^ DENIED_IOCTLS[0]
    same = full & ~differ
    rules = [cmd(1 << b, ~DENIED_IOCTLS[0] & (1 << b)) for b in range(32) if same >> b & 1]
    free = [b for b in range(32) if differ >> b & 1]
    for n in range(1 << len(free)):
        v = DENIED_IOCTLS[0] & same
        for i, b in enumerate(free):
            v |= (n >> i & 1) << b
        if v not in DENIED_IOCTLS:
            rules.append(cmd(full, v))
    return rules


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        src = json.load(f)
    json.dump(convert(src), sys.stdout, indent="\t")
    sys.stdout.write("\n")
