//! `process.apparmorProfile`: applied at execve by writing "exec <profile>" to the task's
//! attr/apparmor/exec through a verified procfs (a fake /proc in the rootfs must not swallow it:
//! CVE-2019-16884).

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;

pub fn enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// Check at create: AppArmor is on and the profile is loaded.
pub fn check(profile: &str) -> Result<()> {
    if !enabled() {
        return Err(Error::new(format!("apparmorProfile {profile:?}: AppArmor is not enabled on this host")));
    }
    if profile == "unconfined" {
        return Ok(());
    }
    let profiles =
        std::fs::read_to_string("/sys/kernel/security/apparmor/profiles").context("read /sys/kernel/security/apparmor/profiles (is securityfs mounted?)")?;
    let loaded = profiles.lines().any(|l| l.rsplit_once(" (").map_or(l, |(name, _)| name) == profile);
    if !loaded {
        return Err(Error::new(format!("apparmorProfile {profile:?} is not loaded")));
    }
    Ok(())
}

/// Only a failed open falls back to the pre-5.8 attr/exec (no per-LSM directory): a failed write
/// is the kernel's answer, and retrying it elsewhere would report the wrong file. ENOENT from the
/// write means no profile of that name is loaded, which `exec --apparmor` (not checked at create)
/// must say plainly.
pub fn apply_on_exec(proc: &Proc, profile: &str) -> Result<()> {
    let data = format!("exec {profile}");
    let (rel, fd) = match proc.open_file("thread-self/attr/apparmor/exec", OFlag::O_WRONLY) {
        Ok(fd) => ("thread-self/attr/apparmor/exec", fd),
        Err(_) => {
            let fd = proc.open_file("thread-self/attr/exec", OFlag::O_WRONLY).with_context(|| format!("apparmorProfile {profile:?}"))?;
            ("thread-self/attr/exec", fd)
        }
    };
    match nix::unistd::write(&fd, data.as_bytes()) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(_) => Err(Error::sys(format!("apparmorProfile {profile:?}: write /proc/{rel}"), Errno::EIO)),
        Err(Errno::ENOENT) => Err(Error::sys(format!("apparmorProfile {profile:?} is not loaded: write /proc/{rel}"), Errno::ENOENT)),
        Err(e) => Err(Error::sys(format!("apparmorProfile {profile:?}: write /proc/{rel}"), e)),
    }
}
