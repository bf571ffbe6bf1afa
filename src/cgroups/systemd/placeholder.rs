//! The process a new scope is started around. systemd refuses a scope without processes
//! ("Scope has no PIDs"), and the container's first process must be in its cgroup from its
//! first instruction (clone3 with CLONE_INTO_CGROUP, as with the cgroupfs driver), which needs
//! the scope's directory to exist before the clone. So the scope is started with this
//! placeholder, a fork of P0 that closes every fd and sleeps; P1 is then cloned into the scope,
//! and the placeholder is killed and reaped once P1 is in. It dies with P0 (PDEATHSIG), so a
//! killed create leaves no process behind it; an empty scope is then stopped by systemd itself.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::error::{Context, Error, Result};

pub struct Placeholder {
    pid: Pid,
}

impl Placeholder {
    pub fn spawn() -> Result<Placeholder> {
        let parent = nix::unistd::getpid();
        // SAFETY: the runtime is single-threaded until exec; the child makes only raw syscalls
        // (no allocation, no lock) and never returns.
        match unsafe { nix::unistd::fork() }.context("fork the placeholder of the systemd scope")? {
            ForkResult::Child => hold(parent),
            ForkResult::Parent { child } => Ok(Placeholder { pid: child }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Its cgroup v2 path ("/system.slice/x.scope"), from /proc.
    pub fn cgroup(&self) -> Result<String> {
        let text = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid)).context("read the placeholder's /proc/<pid>/cgroup")?;
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_string)
            .ok_or_else(|| Error::new("the placeholder's /proc/<pid>/cgroup has no cgroup v2 line"))
    }
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

fn hold(parent: Pid) -> ! {
    // SAFETY: raw syscalls on no memory of ours; the process only sleeps until it is killed.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent.as_raw() {
            libc::_exit(0);
        }
        loop {
            libc::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_dropped_and_is_reaped() {
        let p = Placeholder::spawn().expect("spawn");
        let pid = p.pid();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("alive");
        assert!(stat.contains(") S "), "sleeping: {stat}");
        assert_eq!(std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds").count(), 0, "it holds no fd of the runtime's");
        assert!(p.cgroup().expect("cgroup").starts_with('/'));
        drop(p);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "killed and reaped");
    }
}
