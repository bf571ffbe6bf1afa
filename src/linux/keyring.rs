//! A session keyring of the container's own. Without it the container shares the caller's session
//! keyring (keyctl(2) would let it read or link the host's keys). `--no-new-keyring` keeps the
//! caller's, as in runc. Under SELinux the keyring carries the process label (selinuxLabel), as
//! in runc, so that the container's keys are labelled like the container itself.

use std::path::Path;

use crate::error::{Error, Result};
use crate::linux::procfs::Proc;
use crate::security::selinux;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const KEYCTL_SETPERM: libc::c_int = 5;
// possessor: all; user: view, read, write, search, link (runc's 0x3f3f0000 minus setattr for user).
const PERM: libc::c_ulong = 0x3f1b_0000;

pub fn join_new(id: &str, label: Option<&str>) -> Result<()> {
    // The host's procfs: the container's own is not mounted yet. Proc resolves thread-self through
    // its own link, so the pid namespace we are in already does not matter.
    let proc = label.map(|_| Proc::open(Path::new("/proc"))).transpose()?;
    if let (Some(proc), Some(label)) = (&proc, label) {
        selinux::set_keycreate(proc, Some(label))?;
    }
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
    if let Some(proc) = &proc {
        selinux::set_keycreate(proc, None)?;
    }
    Ok(())
}
