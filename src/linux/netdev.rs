//! Network devices.
//!
//! A new network namespace has `lo` down, and so no 127.0.0.1: a build's test suite that starts
//! a server on it fails. `sandbox` brings it up, from inside the namespace while the init still
//! holds CAP_NET_ADMIN over it (runc bundles are left as their spec says).
//!
//! `linux.netDevices` (runtime-spec 1.3) names host links to hand to the container: P0 moves each
//! into the container's network namespace under its new name, adds back the addresses of global
//! scope it had (a move drops them; MTU and MAC go along), and brings it up. When the container's
//! own namespace goes, the kernel returns a physical link to the host and deletes a virtual one;
//! a namespace joined by path keeps its links (its owner decides), as with runc.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType as T, LinuxNetDevice, Spec};

use crate::error::{last_os, Context, Error, Result};
use crate::linux::namespaces::Plan;
use crate::linux::rtnetlink::{self, Socket};

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

/// `linux.netDevices`, checked before anything is made: a network namespace of the container's
/// own to move them into, privilege over the host's links, valid names, each host link there, and
/// no two given the same name.
pub fn check(spec: &Spec, ns: &Plan, rootless: bool) -> Result<()> {
    let Some(devs) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()).filter(|d| !d.is_empty()) else { return Ok(()) };
    if !ns.private(T::Network) {
        return Err(Error::new("linux.netDevices: the container has no network namespace of its own to move them into"));
    }
    if rootless {
        return Err(Error::new("linux.netDevices: moving a host network device needs CAP_NET_ADMIN over the host's network namespace (not rootless)"));
    }
    let mut names = std::collections::HashSet::new();
    for (host, d) in devs {
        rtnetlink::c_name(host).context("linux.netDevices")?;
        let name = inside(host, d);
        rtnetlink::c_name(name).with_context(|| format!("linux.netDevices[{host:?}].name"))?;
        if !names.insert(name) {
            return Err(Error::new(format!("linux.netDevices: two devices are named {name:?} in the container")));
        }
        let c = std::ffi::CString::new(host.as_str()).map_err(|_| Error::new("linux.netDevices: NUL in a name"))?;
        // SAFETY: `c` is a NUL-terminated string that lives across the call.
        if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
            return Err(Error::new(format!("linux.netDevices: no network device {host:?} on the host")));
        }
    }
    Ok(())
}

fn inside<'a>(host: &'a str, d: &'a LinuxNetDevice) -> &'a str {
    d.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(host)
}

/// Move `devs` into the network namespace of the process behind `pidfd` (the container's init).
pub fn move_into(pidfd: &OwnedFd, devs: &HashMap<String, LinuxNetDevice>) -> Result<()> {
    if devs.is_empty() {
        return Ok(());
    }
    let mut host = Socket::open()?;
    let (netns, mut theirs) = enter_briefly(pidfd)?;
    // In a stable order, so that a failure names the same device each time.
    let mut order: Vec<_> = devs.iter().collect();
    order.sort_by(|a, b| a.0.cmp(b.0));
    for (from, d) in order {
        let to = inside(from, d);
        let what = || format!("network device {from:?}");
        let index = host.link_index(from).with_context(what)?;
        let addrs = host.global_addresses(index).with_context(what)?;
        host.move_to(index, &netns, to).with_context(|| format!("move network device {from:?} into the container as {to:?}"))?;
        let there = theirs.link_index(to).with_context(|| format!("network device {to:?} in the container"))?;
        for a in &addrs {
            theirs.add_address(there, a).with_context(|| format!("network device {to:?} in the container: address {}", a.show()))?;
        }
        theirs.set_up(there).with_context(|| format!("network device {to:?} in the container: bring it up"))?;
    }
    Ok(())
}

/// The container's network namespace (an fd for IFLA_NET_NS_FD) and a netlink socket in it,
/// made from within it: P0 joins it for these two calls only and goes back to its own (P0 is
/// single-threaded, and nothing else runs meanwhile). Failing to go back is fatal.
fn enter_briefly(pidfd: &OwnedFd) -> Result<(OwnedFd, Socket)> {
    let ours = nix::fcntl::open("/proc/thread-self/ns/net", nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .context("open our network namespace")?;
    nix::sched::setns(pidfd, CloneFlags::CLONE_NEWNET).context("join the container's network namespace")?;
    let made = nix::fcntl::open("/proc/thread-self/ns/net", nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .context("open the container's network namespace")
        .and_then(|ns| Socket::open().map(|s| (ns, s)));
    if let Err(e) = nix::sched::setns(&ours, CloneFlags::CLONE_NEWNET) {
        // Every later step of this runtime assumes the host's network namespace.
        crate::log::error(&format!("return to the host's network namespace: {e}"));
        std::process::abort();
    }
    made
}
