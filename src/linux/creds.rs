//! The container process's identity: groups, gid, uid, umask.

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::User;

use crate::error::{Context, Result};

/// Become `user`. Capabilities survive the uid change only because the caller set
/// PR_SET_KEEPCAPS first (see `security::capabilities`).
pub fn become_user(user: &User, setgroups_allowed: bool) -> Result<()> {
    let gid = Gid::from_raw(user.gid());
    let uid = Uid::from_raw(user.uid());
    let groups: Vec<Gid> = user.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect();
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).context("setgroups")?;
    } else if !groups.is_empty() {
        return Err(crate::error::Error::new("additionalGids: setgroups is denied in this user namespace"));
    }
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setgid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("setuid {uid}"))?;
    Ok(())
}

/// umask(2) directly: nix's wrapper panics on a return that is not a mode, which is what a
/// seccomp profile's errno for umask is (after a listener's filter, `spawn::finish`). Denied, the
/// process keeps the mask it has.
pub fn umask(user: &User) {
    let mask = user.umask().unwrap_or(0o022);
    // SAFETY: umask takes a number and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t & 0o777) };
}
