//! Descriptors crossing into the container: stdio, `--preserve-fds N` (3 … 3+N-1) and nothing else
//! (CVE-2024-21626, CVE-2016-9962: a leaked host fd is a way out of the rootfs).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;

/// The fd table's size (`FDSize` of /proc/self/status), noted by `note_table_size` before a
/// seccomp filter goes on: the bound of `close_all_but`'s one-by-one fallback. Our fds only shrink
/// after that (every fd the runtime opens later is closed by its owner), so the bound holds.
static TABLE_SIZE: AtomicU32 = AtomicU32::new(0);

/// Note the fd table's size through the verified procfs, while openat2 is surely allowed. Best
/// effort: without it the fallback of `close_all_but` is an error, not a weaker close.
pub fn note_table_size(proc: Option<&Proc>) {
    let size = proc
        .and_then(|p| p.open_file("self/status", OFlag::O_RDONLY).ok())
        .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("FDSize:").and_then(|v| v.trim().parse().ok())));
    TABLE_SIZE.store(size.unwrap_or(0), Ordering::Relaxed);
}

/// Close every fd but stdio, the `preserve` passed ones (3 … 3+N-1) and `keep` (which must be
/// close-on-exec). Closed, not marked close-on-exec: a runtime process that lives on inside the
/// container (init waiting for `start`, an exec's setup) can be reached through /proc/PID/fd by
/// a container process with CAP_SYS_PTRACE, and a host directory among its fds is a way to the
/// host's `/` (CVE-2024-21626). The Rust owners of the closed fds live in frames this process
/// never returns to: every caller ends in execve or _exit.
///
/// close_range first. A seccomp profile older than close_range (Linux 5.9) denies it (EPERM, or
/// ENOSYS from the stub for syscalls newer than the profile) when the filter went on before
/// this point, as it does without no_new_privileges (`spawn::finish`): then close(2) each fd
/// below the noted table size, as runc falls back to when close_range is missing.
pub fn close_all_but(preserve: u32, keep: &[Option<RawFd>]) -> Result<()> {
    let mut keep: Vec<u32> = keep.iter().flatten().map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut lo = 3 + preserve;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k < lo {
            continue;
        }
        if k > lo {
            close_range(lo, k - 1)?;
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

fn close_range(lo: u32, hi: u32) -> Result<()> {
    // SAFETY: closing fds we no longer use; the callers (see `close_all_but`) never return to
    // the frames of the Rust owners of any of them.
    if unsafe { libc::close_range(lo, hi, 0) } == 0 {
        return Ok(());
    }
    let err = Errno::last();
    if !matches!(err, Errno::EPERM | Errno::ENOSYS) {
        return Err(Error::sys("close_range", err));
    }
    let size = TABLE_SIZE.load(Ordering::Relaxed);
    if size == 0 {
        return Err(Error::sys("close_range (and the fd table size, to close fds one by one, is unknown: no procfs at /proc?)", err));
    }
    for fd in lo..hi.min(size - 1).saturating_add(1) {
        // SAFETY: as above; EBADF for a number not in use is expected and harmless.
        unsafe { libc::close(fd as RawFd) };
    }
    Ok(())
}

/// Clear close-on-exec on the preserved fds (3 … 3+N-1). Every other fd from there up is closed
/// by `close_all_but` before, or close-on-exec.
pub fn seal(preserve: u32) -> Result<()> {
    for fd in 3..3 + preserve {
        keep(fd as RawFd)?;
    }
    Ok(())
}

fn keep(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a raw fd number; a closed fd returns EBADF, which we report.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(bfd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| Error::sys(format!("preserved fd {fd}"), e)).map(drop)
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
