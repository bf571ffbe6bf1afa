//! Network devices. A new network namespace has `lo` down, and so no 127.0.0.1: a build's test
//! suite that starts a server on it fails. `sandbox` brings it up, from inside the namespace while
//! the init still holds CAP_NET_ADMIN over it (runc bundles are left as their spec says).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{last_os, Result};

/// `struct ifreq` as SIOCGIFFLAGS/SIOCSIFFLAGS read it: the name, then the flags (a short), in a
/// union of 24 bytes.
#[repr(C)]
struct IfFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// Bring `lo` up in the caller's network namespace.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket takes no pointers; the fd it returns is owned right below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_os("loopback: socket"));
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfFlags { name: [0; libc::IFNAMSIZ], flags: 0, _rest: [0; 22] };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: SIOCGIFFLAGS fills the ifreq `req` points to, which is as large as the kernel's.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(last_os("loopback: read the flags of lo"));
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq `req` points to.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(last_os("loopback: bring lo up"));
    }
    Ok(())
}
