//! The syscall recorder of `testudo profile`: a filter that turns every syscall of the container's
//! processes into a user notification (SECCOMP_RET_USER_NOTIF), answered by P0 with
//! SECCOMP_USER_NOTIF_FLAG_CONTINUE — the kernel then runs the syscall as if no filter were there.
//! Record only: P0 never decides anything on a notification (the flag's own documentation warns
//! that a decision taken on one can be raced), it only notes (architecture, number).
//!
//! Recording never lifts the container's own filter (an untrusted job recorded would otherwise
//! run with no filter at all: unshare, mount, keyctl, io_uring, ptrace). The recording filter is
//! the enforced profile itself, compiled as usual, with every return that lets a syscall run
//! (ALLOW, LOG) turned into USER_NOTIF: what the profile denies (ERRNO, KILL, TRAP, the ENOSYS
//! stub) is still denied by the kernel and never reaches us, and what it allows is noted and
//! continued. One filter, not the recorder stacked on the profile: the second of two filters
//! would itself be installed through the first (a notification nobody could answer yet, or a
//! seccomp(2) the profile denies), and the kernel's precedence across filters (ERRNO before
//! USER_NOTIF) gives the same answers as the rewrite does. Denied calls are not in the recording,
//! so the profile written never allows them.
//!
//! The filter goes on as the init's last step, right before its execve (the process runs with
//! no_new_privileges), so what is recorded is the job's and not the runtime's; the execve itself
//! is the first notification. P0 takes the notify fd from the init with pidfd_getfd: the init
//! tells it the fd's number first (`Msg::RecorderAt`), since a message sent after the filter is
//! on would itself wait for an answer from a P0 that has no fd yet.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use libseccomp::{ScmpArch, ScmpSyscall};
use nix::errno::Errno;
use serde_json::json;

use super::Program;
use crate::error::{Error, Result};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: i32 = 0x4000_0000;

const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;

/// The recording filter: `enforced` (the container's compiled profile) with its allowing returns
/// turned into notifications, or without a profile `ret SECCOMP_RET_USER_NOTIF` for every
/// syscall of every architecture.
pub fn program(enforced: Option<Program>) -> Result<Program> {
    let Some(p) = enforced else {
        let ret = libc::sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_USER_NOTIF };
        return Ok(Program { filter: vec![ret], flags: libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, listener: None, record: true });
    };
    if p.listener.is_some() {
        return Err(Error::new("recorder: the profile has SCMP_ACT_NOTIFY rules (a listener of its own): it cannot be recorded"));
    }
    let mut filter = p.filter;
    for ins in &mut filter {
        if ins.code == RET_A {
            return Err(Error::new("recorder: the compiled profile returns a computed action, which cannot be rewritten"));
        }
        if ins.code == RET_K && matches!(ins.k & libc::SECCOMP_RET_ACTION_FULL, libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG) {
            ins.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    let mut flags = p.flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        // TSYNC and a listener together only with TSYNC_ESRCH (the kernel refuses the pair).
        flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    Ok(Program { filter, flags, listener: None, record: true })
}

/// The lowest free fd number: the one the kernel gives the notify fd when nothing is opened in
/// between (the init is single-threaded).
pub fn next_fd() -> Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC of stdin returns the lowest free number ≥ 0, closed right after.
    let n = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        return Err(crate::error::last_os("recorder: find a free fd"));
    }
    // SAFETY: `n` was just opened here and nothing else knows it.
    unsafe { libc::close(n) };
    Ok(n)
}

/// The init's notify fd `n`, once the init has installed the filter (retried until then, 5 s).
pub fn take(init: &OwnedFd, n: i32) -> Result<OwnedFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // SAFETY: pidfd_getfd takes a pidfd, an fd number of that process and flags 0.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, init.as_raw_fd(), n, 0) };
        if fd >= 0 {
            // SAFETY: the kernel just installed this fd in our table.
            let fd = unsafe { crate::linux::procfs::own(fd as i32) };
            let what = std::fs::read_link(crate::linux::procfs::fd_path(fd.as_raw_fd())).unwrap_or_default();
            if what.to_string_lossy().contains("seccomp notify") {
                return Ok(fd);
            }
        } else if !matches!(Errno::last(), Errno::EBADF) {
            return Err(crate::error::last_os(format!("recorder: take fd {n} of the container's init")));
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::new("recorder: the container's init did not install its filter within 5 s"));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// What was seen: (architecture, syscall number).
#[derive(Default)]
pub struct Recording {
    seen: BTreeSet<(u32, i32)>,
}

impl Recording {
    /// Receive one notification, note it, let the syscall run. Err(ENOENT) is a notification
    /// whose process died meanwhile; Ok(false) when no process holds the filter any more.
    pub fn answer(&mut self, fd: &OwnedFd) -> Result<bool> {
        // SAFETY: seccomp_notif is plain data; zeroed is what NOTIF_RECV requires.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV fills `req`, which lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            return match Errno::last() {
                Errno::EINTR | Errno::ENOENT => Ok(true),
                Errno::EBADF | Errno::ENOTCONN => Ok(false),
                e => Err(Error::sys("recorder: receive a notification", e)),
            };
        }
        self.seen.insert((req.data.arch, req.data.nr));
        let resp = libc::seccomp_notif_resp { id: req.id, val: 0, error: 0, flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 };
        // SAFETY: NOTIF_SEND reads `resp`, which lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } < 0 && Errno::last() != Errno::ENOENT {
            return Err(crate::error::last_os("recorder: answer a notification"));
        }
        Ok(true)
    }

    /// The allow-list profile, in OCI `linux.seccomp` form (Docker's field names): errno for
    /// everything but the recorded syscalls.
    pub fn profile(&self) -> serde_json::Value {
        let mut archs = BTreeSet::new();
        let mut names = BTreeSet::new();
        for &(arch, nr) in &self.seen {
            let (name, a) = match arch {
                AUDIT_ARCH_X86_64 if nr & X32_BIT != 0 => (ScmpSyscall::from(nr & !X32_BIT).get_name_by_arch(ScmpArch::X32), "SCMP_ARCH_X32"),
                AUDIT_ARCH_X86_64 => (ScmpSyscall::from(nr).get_name_by_arch(ScmpArch::X8664), "SCMP_ARCH_X86_64"),
                AUDIT_ARCH_I386 => (ScmpSyscall::from(nr).get_name_by_arch(ScmpArch::X86), "SCMP_ARCH_X86"),
                _ => continue,
            };
            archs.insert(a);
            if let Ok(n) = name {
                names.insert(n);
            }
        }
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": archs,
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_stays_enforced_and_only_what_it_allows_is_notified() {
        let ret = |k| libc::sock_filter { code: RET_K, jt: 0, jf: 0, k };
        let ld = libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 };
        let errno = libc::SECCOMP_RET_ERRNO | 1;
        let enforced = Program {
            filter: vec![ld, ret(libc::SECCOMP_RET_ALLOW), ret(errno), ret(libc::SECCOMP_RET_LOG), ret(libc::SECCOMP_RET_KILL_PROCESS)],
            flags: libc::SECCOMP_FILTER_FLAG_TSYNC,
            listener: None,
            record: false,
        };
        let p = program(Some(enforced)).expect("recorder");
        let ks: Vec<u32> = p.filter.iter().skip(1).map(|i| i.k).collect();
        assert_eq!(ks, [libc::SECCOMP_RET_USER_NOTIF, errno, libc::SECCOMP_RET_USER_NOTIF, libc::SECCOMP_RET_KILL_PROCESS]);
        assert_eq!(p.filter[0].k, 0, "only returns change");
        let want = libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        assert_eq!(p.flags, want);
        assert!(p.record);
    }
}
