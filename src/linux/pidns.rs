//! The processes of a pid namespace, seen from the host: what stands in for a cgroup's
//! cgroup.procs in a rootless container that has no cgroup (`cgroups::rootless`). Killing the
//! namespace's init kills them all (the kernel sends SIGKILL to every process of a pid namespace
//! whose init dies), so that needs no list.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};

fn ns_of(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The pids (in our namespace) of every process in the pid namespace of `init`, init first.
pub fn members(init: i32) -> Result<Vec<i32>> {
    let ns = ns_of(init).ok_or_else(|| Error::sys(format!("pid namespace of {init}"), Errno::ESRCH))?;
    let mut out = vec![init];
    let entries = std::fs::read_dir("/proc").map_err(|e| Error::sys("read /proc", Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid != init && ns_of(pid).as_ref() == Some(&ns) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// Wait until the process behind `fd` (not necessarily our child) has exited: a pidfd polls
/// readable then.
pub fn wait_exit(fd: &OwnedFd, timeout: Duration) -> Result<()> {
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_millis() as i32;
        if left == 0 {
            return Err(Error::sys("wait for the container's init to exit", Errno::ETIMEDOUT));
        }
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll the container's init", e)),
        }
    }
}
