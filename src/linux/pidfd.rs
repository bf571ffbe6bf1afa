//! pidfds: signal and wait for a process without racing pid reuse.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::error::{Error, Result};

pub fn open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::sys(format!("pidfd_open {pid}"), Errno::last()));
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A pidfd for `pid`, named to us by a process the container can see or ptrace (a setup
/// process): refused unless the kernel says it is our own child. A forged pid would otherwise have
/// the runtime, as host root, signal, wait for or write to --pid-file any host process (issue 25:
/// a container with CAP_SYS_PTRACE steals the exec setup process's socket and names sshd). Our
/// children are the setup processes and what they clone with CLONE_PARENT, all of them the
/// container's; a child cannot be reaped, so its pid cannot be reused, until we wait for it.
pub fn open_child(pid: i32) -> Result<OwnedFd> {
    let fd = open(pid)?;
    // SAFETY: siginfo_t is plain data; zeroed is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // WNOWAIT|WNOHANG: only asks; ECHILD is the kernel's word that this process is not our child.
    let flags = libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT;
    loop {
        // SAFETY: waitid on a pidfd we own, writing into `info`, which lives across the call.
        if unsafe { libc::waitid(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t, &mut info, flags) } == 0 {
            return Ok(fd);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::ECHILD => return Err(Error::new(format!("pid {pid} reported by a setup process is not the runtime's child: refused"))),
            e => return Err(Error::sys(format!("waitid {pid}"), e)),
        }
    }
}

pub fn send_signal(fd: &OwnedFd, sig: Signal) -> Result<()> {
    send_signo(fd, sig as i32)
}

/// By number: `kill` sends the real-time signals too, which `Signal` has no names for.
pub fn send_signo(fd: &OwnedFd, signo: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal with a valid fd, a signal number, a null siginfo and no flags.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signo, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 {
        let name = Signal::try_from(signo).map(|s| s.to_string()).unwrap_or_else(|_| signo.to_string());
        return Err(Error::sys(format!("signal {name}"), Errno::last()));
    }
    Ok(())
}

/// How a process ended, as a shell reports it: the exit code, or 128 + the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub i32);

/// Reap the child behind `fd` (it must be our child) and return its exit code.
pub fn wait(fd: &OwnedFd) -> Result<Exit> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on a pidfd we own, writing into `info`, which lives across the call.
        let r = unsafe { libc::waitid(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(Error::sys("wait for container process", e)),
            }
        }
        // SAFETY: after a successful waitid with WEXITED, si_status holds the exit status or signal.
        let status = unsafe { info.si_status() };
        return Ok(match info.si_code {
            libc::CLD_EXITED => Exit(status),
            _ => Exit(128 + status),
        });
    }
}
