#!/usr/bin/env python3
"""Derive build-sandbox.json from default.json: the same allow-list less what an untrusted build
job never needs, with socket() narrowed by its arguments, and no capability-dependent rules (the
profile must hold even if the job is given CAP_SYS_ADMIN by mistake).
Usage: build-sandbox.py default.json > build-sandbox.json"""
import json
import sys

DENY = {
    # debugging other processes, reading their memory
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    # the mount family and namespaces
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr", "unshare", "setns",
    # kernel programming, tracing and profiling
    "bpf", "perf_event_open", "lookup_dcookie", "fanotify_init", "fanotify_mark",
    # the keyring family
    "keyctl", "add_key", "request_key",
    # page-fault handling from user space: the classic race widener
    "userfaultfd",
    # io_uring: a second syscall interface seccomp cannot see into
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # i386 socket multiplexer: its arguments are in memory, so socket() filters cannot apply
    "socketcall",
    # file handles bypass path checks
    "name_to_handle_at", "open_by_handle_at",
    # clocks, host identity, system state
    "adjtimex", "clock_adjtime", "clock_adjtime64", "settimeofday", "stime", "clock_settime",
    "clock_settime64", "sethostname", "setdomainname", "syslog", "acct", "quotactl",
    "quotactl_fd", "swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "iopl", "ioperm", "vhangup",
    # memory placement and secret memory
    "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "migrate_pages", "memfd_secret",
    "remap_file_pages",
}

# socket(): address family and type (low 4 bits; SOCK_NONBLOCK/SOCK_CLOEXEC live above them).
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
NETLINK_ROUTE = 0
TYPE_MASK = 0xF


def socket_rules():
    arg = lambda i, v, op="SCMP_CMP_EQ": {"index": i, "value": v, "op": op}
    masked = lambda i, mask, v: {"index": i, "value": mask, "valueTwo": v, "op": "SCMP_CMP_MASKED_EQ"}
    rules = [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, AF_UNIX)]}]
    for family in (AF_INET, AF_INET6):
        for typ in (SOCK_STREAM, SOCK_DGRAM):
            rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, family), masked(1, TYPE_MASK, typ)]})
    # getaddrinfo(AI_ADDRCONFIG) asks the routing table for the host's addresses.
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [arg(0, AF_NETLINK), arg(2, NETLINK_ROUTE)]})
    return rules


def derive(default):
    out = {k: default[k] for k in ("defaultAction", "defaultErrnoRet", "architectures")}
    base = next(r for r in default["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r)
    allow = [n for n in base["names"] if n not in DENY and n != "socket"]
    rules = [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
    for r in default["syscalls"]:
        if r is base:
            continue
        # Keep the argument-narrowed rules (personality, clone without namespace flags) and the
        # clone3 ENOSYS rule; drop what default.json allows outright by name.
        if any(n in DENY for n in r["names"]):
            continue
        if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r and r["names"] not in (["arch_prctl"], ["modify_ldt"]):
            continue
        rules.append(r)
    out["syscalls"] = rules + socket_rules()
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        default = json.load(f)
    json.dump(derive(default), sys.stdout, indent="\t")
    sys.stdout.write("\n")
