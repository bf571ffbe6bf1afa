//! The unprivileged seal of the runtime binary (CVE-2019-5736, see `linux::exe`): a rootless
//! runtime cannot clone its binary's mount read-only (open_tree needs CAP_SYS_ADMIN), so when it
//! can write its own binary (a testudo in the user's home), it copies the binary into a memfd,
//! seals it against every change (F_SEAL_WRITE, SHRINK, GROW, then SEAL itself) and re-execs from
//! it. `/proc/self/exe` of this process and of every child then names the sealed copy: a container
//! process that reopens it for writing gets a file no write can change, and the host's binary is
//! never reachable through it.
//!
//! Cost: a copy of the binary per create/run/exec (what runc measured at ~9 ms for its large
//! binary); see the report of issue 14 for ours.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Error, Result};

const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// A sealed memfd copy of the file `/proc/self/exe` names.
pub fn sealed_copy() -> Result<OwnedFd> {
    let name = CString::new("testudo").map_err(|_| Error::new("memfd name"))?;
    // SAFETY: memfd_create takes a NUL-terminated name that outlives the call and flags.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::sys("runtime binary: memfd_create (CVE-2019-5736)", Errno::last()));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    let mut exe = File::open("/proc/self/exe").map_err(|e| Error::sys("runtime binary: open /proc/self/exe", errno(&e)))?;
    std::io::copy(&mut exe, &mut copy).map_err(|e| Error::sys("runtime binary: copy it into a memfd (CVE-2019-5736)", errno(&e)))?;
    // SAFETY: fcntl(F_ADD_SEALS) on an fd we own, with an int argument.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(Error::sys("runtime binary: seal its memfd copy (CVE-2019-5736)", Errno::last()));
    }
    Ok(OwnedFd::from(copy))
}

/// Whether `/proc/self/exe` is a memfd carrying every seal of `sealed_copy`.
pub fn is_sealed_self() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else { return false };
    // SAFETY: fcntl(F_GET_SEALS) on an fd we own; it takes no argument.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
