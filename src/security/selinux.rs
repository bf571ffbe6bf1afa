//! `process.selinuxLabel` (the exec label, and the label of the container's session keyring) and
//! `linux.mountLabel` (`context=` on the mounts that take it, linux::mounts). On a host without
//! SELinux a requested label is a clear error, never ignored; on a host with SELinux a label the
//! loaded policy does not define is a `create` error before anything is set up.

use std::io::Write;
use std::os::fd::AsRawFd;

use nix::errno::Errno;

use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;

pub fn enabled() -> bool {
    std::fs::read_to_string("/sys/fs/selinux/enforce").is_ok()
}

/// Refuse a label SELinux would refuse later. Writing a context to selinuxfs' `context` file asks
/// the loaded policy whether it is valid (security_context_to_sid), without using it.
pub fn check(what: &str, label: &str) -> Result<()> {
    if !enabled() {
        return Err(Error::new(format!("{what} {label:?}: SELinux is not enabled on this host")));
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/sys/fs/selinux/context")
        .with_context(|| format!("{what} {label:?}: open /sys/fs/selinux/context"))?;
    match f.write(label.as_bytes()) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err(Error::sys(format!("{what} {label:?}: not a valid context in the loaded SELinux policy"), Errno::EINVAL))
        }
        Err(e) => Err(Error::sys(format!("{what} {label:?}: check against the SELinux policy"), Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))),
    }
}

/// Set the label of the file open at `fd` (security.selinux). On a filesystem without xattrs (mqueue)
/// the kernel keeps it in the inode's security blob.
pub fn label_file(fd: &impl AsRawFd, label: &str) -> Result<()> {
    let name = c"security.selinux";
    // SAFETY: fsetxattr reads the NUL-terminated name and `label.len()` bytes of `label`, both of
    // which outlive the call; the fd is open.
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), label.as_ptr().cast(), label.len(), 0) };
    if rc < 0 {
        return Err(crate::error::last_os(format!("mountLabel {label:?}: set security.selinux")));
    }
    Ok(())
}

pub fn apply_on_exec(proc: &Proc, label: &str) -> Result<()> {
    proc.write("thread-self/attr/exec", label.as_bytes()).with_context(|| format!("selinuxLabel {label:?}"))
}

/// Run `make` (which creates a key: the session keyring) with `label` as the label of the keys
/// it creates, as runc does, so that the container's keys are labelled like the container.
pub fn keycreate(label: Option<&str>, make: impl FnOnce() -> Result<()>) -> Result<()> {
    let Some(label) = label else { return make() };
    // The host's procfs: the container's own is not mounted yet. Proc resolves thread-self through
    // its own link, so the pid namespace we are in already does not matter.
    let proc = Proc::open(std::path::Path::new("/proc"))?;
    set_keycreate(&proc, Some(label))?;
    make()?;
    set_keycreate(&proc, None)
}

/// The label the next key this thread creates gets; None goes back to the default (the
/// creator's own context).
fn set_keycreate(proc: &Proc, label: Option<&str>) -> Result<()> {
    // A lone newline is how selinux_setprocattr is told "no context".
    let data = label.map_or(&b"\n"[..], str::as_bytes);
    proc.write("thread-self/attr/keycreate", data).with_context(|| format!("selinuxLabel {:?}: label the session keyring", label.unwrap_or("")))
}
