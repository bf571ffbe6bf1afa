//! Descriptors crossing into the container: stdio, `--preserve-fds N` (3 … 3+N-1) and nothing else
//! (CVE-2024-21626, CVE-2016-9962: a leaked host fd is a way out of the rootfs).

use std::os::fd::RawFd;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use crate::error::{Context, Error, Result};

/// Mark every fd from `3 + preserve` upwards close-on-exec, and clear close-on-exec on the
/// preserved ones. The runtime's own fds (the sync socket) keep working until `execve`, which
/// then closes them all at once.
pub fn seal(preserve: u32) -> Result<()> {
    let first = 3 + preserve;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags; no memory involved.
    let r = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if r < 0 {
        return Err(crate::error::last_os("close_range"));
    }
    for fd in 3..first {
        keep(fd as RawFd)?;
    }
    Ok(())
}

fn keep(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a raw fd number; a closed fd returns EBADF, which we report.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(bfd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| Error::sys(format!("preserved fd {fd}"), e)).map(drop)
}

/// Close every fd but stdio, the `preserve` passed ones (3 … 3+N-1) and `keep`. Closed, not
/// marked close-on-exec: a runtime process that lives on inside the container (init waiting for
/// `start`, an exec's setup) can be reached through /proc/PID/fd by a container process with
/// CAP_SYS_PTRACE, and a host directory among its fds is a way to the host's `/`
/// (CVE-2024-21626). The Rust owners of the closed fds live in frames this process never returns
/// to: every caller ends in execve or _exit.
pub fn close_all_but(preserve: u32, keep: &[Option<RawFd>]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().flatten().map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut lo = 3 + preserve;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k < lo {
            continue;
        }
        if k > lo {
            // SAFETY: closes fd numbers only; see above for why nothing uses them afterwards.
            if unsafe { libc::close_range(lo, k - 1, 0) } < 0 {
                return Err(crate::error::last_os("close_range"));
            }
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

/// How many fds to pass: `--preserve-fds` plus socket activation's LISTEN_FDS, as runc does.
pub fn preserved(flag: u32) -> Result<u32> {
    match std::env::var("LISTEN_FDS") {
        Ok(v) if !v.is_empty() => {
            let n: u32 = v.parse().map_err(|_| Error::new(format!("LISTEN_FDS={v:?} is not a number")))?;
            Ok(flag.max(n))
        }
        _ => Ok(flag),
    }
}

/// Socket activation passed on: the container's process is told how many fds it got and that
/// they are for it (it is pid 1 of its namespace), as systemd's sd_listen_fds expects.
pub fn listen_env() -> Option<[String; 2]> {
    let n = std::env::var("LISTEN_FDS").ok().filter(|v| !v.is_empty())?;
    Some([format!("LISTEN_FDS={n}"), "LISTEN_PID=1".to_string()])
}

/// Check that preserved fds exist before cloning, so a wrong count fails at create.
pub fn check_open(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve as RawFd {
        // SAFETY: F_GETFD on a raw fd number only reads its flags.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        fcntl(bfd, FcntlArg::F_GETFD).with_context(|| format!("preserved fd {fd}"))?;
    }
    Ok(())
}
