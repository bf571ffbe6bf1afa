//! A session keyring of the container's own. Without it the container shares the caller's session
//! keyring (keyctl(2) would let it read or link the host's keys). `--no-new-keyring` keeps the
//! caller's, as in runc. Under SELinux the caller labels it (`security::selinux::keycreate`).

use crate::error::{Error, Result};

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const KEYCTL_SETPERM: libc::c_int = 5;
// possessor: all; user: view, read, write, search, link (runc's 0x3f3f0000 minus setattr for user).
const PERM: libc::c_ulong = 0x3f1b_0000;

pub fn join_new(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}")).map_err(|_| Error::new("session keyring name: NUL in id"))?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads the NUL-terminated name, which outlives the call.
    let serial = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        return Err(crate::error::last_os("join a new session keyring"));
    }
    // SAFETY: KEYCTL_SETPERM takes the key serial and a permission mask by value.
    if unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, PERM) } < 0 {
        return Err(crate::error::last_os("set session keyring permissions"));
    }
    Ok(())
}
