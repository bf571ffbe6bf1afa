//! `process.apparmorProfile`: applied at execve by writing "exec <profile>" to the task's
//! attr/apparmor/exec through a verified procfs (a fake /proc in the rootfs must not swallow it:
//! CVE-2019-16884).

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
    let profiles = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
        .context("read /sys/kernel/security/apparmor/profiles (is securityfs mounted?)")?;
    let loaded = profiles.lines().any(|l| l.rsplit_once(" (").map_or(l, |(name, _)| name) == profile);
    if !loaded {
        return Err(Error::new(format!("apparmorProfile {profile:?} is not loaded")));
    }
    Ok(())
}

pub fn apply_on_exec(proc: &Proc, profile: &str) -> Result<()> {
    let data = format!("exec {profile}");
    proc.write("thread-self/attr/apparmor/exec", data.as_bytes())
        .or_else(|_| proc.write("thread-self/attr/exec", data.as_bytes()))
        .with_context(|| format!("apparmorProfile {profile:?}"))
}
