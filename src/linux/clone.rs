//! clone3 as fork: no new stack, the child continues in a copy of this (single-threaded) process.
//! `CLONE_INTO_CGROUP` puts the child in its cgroup at birth, so not one instruction of it runs
//! outside its limits; `CLONE_PIDFD` hands the parent a race-free handle to it.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::linux::procfs;

/// From linux/sched.h; libc's constant is a c_int that cannot hold it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

pub struct Args<'a> {
    /// CLONE_NEW* and other flags.
    pub flags: u64,
    pub cgroup: Option<&'a OwnedFd>,
    pub pidfd: bool,
}

pub fn clone3(a: &Args) -> Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut flags = a.flags;
    if a.cgroup.is_some() {
        flags |= CLONE_INTO_CGROUP;
    }
    if a.pidfd {
        flags |= libc::CLONE_PIDFD as u64;
    }
    // CLONE_PARENT children must not ask for an exit signal: the kernel reuses the parent's.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 };
    // SAFETY: clone_args is plain data; zero is the documented default of every field.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags;
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    args.exit_signal = exit_signal;
    args.cgroup = a.cgroup.map_or(0, |fd| fd.as_raw_fd() as u64);
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets a copy
    // of the address space. We are single-threaded (no other thread's locks can be held), and the
    // child only returns into our own code, which ends in execve or _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>()) };
    match r {
        -1 => {
            let e = Errno::last();
            match a.cgroup {
                Some(fd) if e == Errno::EACCES => Err(Error::sys(into_cgroup_denied(describe(flags), fd), e)),
                _ => Err(Error::sys(describe(flags), e)),
            }
        }
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd that nothing else owns.
            pidfd: a.pidfd.then(|| unsafe { procfs::own(pidfd) }),
        }),
    }
}

/// CLONE_INTO_CGROUP refused with EACCES: the kernel's cgroup v2 delegation rule (a process may
/// move one only where it can write cgroup.procs of the common ancestor of both cgroups), which
/// a user meets only below what was delegated to it. Named with both cgroups and the way out.
fn into_cgroup_denied(what: String, fd: &OwnedFd) -> String {
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_or_else(|_| "?".into(), |p| p.display().to_string());
    let own = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string));
    format!(
        "{what} into cgroup {target:?} from cgroup {:?}: writing to their common ancestor's cgroup.procs is not allowed; \
         run from within what owns that cgroup (for a user's systemd manager: systemd-run --user --scope testudo ...)",
        own.unwrap_or_else(|| "?".into())
    )
}

fn describe(flags: u64) -> String {
    let names = [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWNS, "mnt"),
        (libc::CLONE_NEWCGROUP, "cgroup"),
    ];
    let ns: Vec<&str> = names.iter().filter(|(f, _)| flags & *f as u64 != 0).map(|(_, n)| *n).collect();
    if ns.is_empty() {
        "clone3".to_string()
    } else {
        format!("clone3 (new namespaces: {})", ns.join(" "))
    }
}
