//! User namespace id maps: validated at create, written by the parent into /proc/<pid>/uid_map
//! and gid_map (the child cannot write a map naming ids it does not own); the user namespaces of
//! idmapped mounts; the id this process has outside its own user namespace.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Context, Error, Result};
use crate::linux::pidfd;
use crate::linux::procfs::Proc;
use crate::linux::subid::{self, Kind};

pub fn validate(kind: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::new(format!("{kind}Mappings: a user namespace needs at least one mapping")));
    }
    if maps.len() > 340 {
        return Err(Error::new(format!("{kind}Mappings: {} ranges, the kernel allows 340", maps.len())));
    }
    let mut inside: Vec<(u64, u64)> = Vec::new();
    let mut outside: Vec<(u64, u64)> = Vec::new();
    for m in maps {
        let (c, h, n) = (m.container_id() as u64, m.host_id() as u64, m.size() as u64);
        if n == 0 {
            return Err(Error::new(format!("{kind}Mappings: range at container id {c} has zero size")));
        }
        if c + n > 1 << 32 || h + n > 1 << 32 {
            return Err(Error::new(format!("{kind}Mappings: range {c}:{h}:{n} goes beyond 32 bits")));
        }
        for (set, start, which) in [(&mut inside, c, "container"), (&mut outside, h, "host")] {
            if set.iter().any(|&(s, len)| start < s + len && s < start + n) {
                return Err(Error::new(format!("{kind}Mappings: {which} ids of range {c}:{h}:{n} overlap another range")));
            }
            set.push((start, n));
        }
    }
    Ok(())
}

/// This process's uid as the parent user namespace sees it (as a bus reading SO_PEERCRED on the
/// host does): the uid itself in the initial namespace, else mapped through /proc/self/uid_map.
pub fn outer_uid() -> Result<u32> {
    let uid = nix::unistd::getuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").context("read /proc/self/uid_map")?;
    outer(&map, uid).ok_or_else(|| Error::new(format!("/proc/self/uid_map maps no outer id for uid {uid}")))
}

/// The id `map` (a uid_map or gid_map as read from /proc: inside, outside, count per line) gives
/// `id` outside.
pub fn outer(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l.split_whitespace().map(str::parse).collect::<std::result::Result<_, _>>().ok()?;
        let [inside, outside, n] = f[..] else { return None };
        let id = u64::from(id);
        (inside <= id && id < inside + n).then(|| u32::try_from(outside + (id - inside)).ok()).flatten()
    })
}

pub fn render(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// Write both maps of process `pid` (in our pid namespace) through a verified procfs.
/// Rootless, a map other than the caller's own id is written by the setuid helper (`subid`).
pub fn write(proc: &Proc, pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    if subid::needs_helper(Kind::Uid, uids) {
        subid::write(Kind::Uid, pid, uids)?;
    } else {
        proc.write(&format!("{pid}/uid_map"), render(uids).as_bytes()).context("uid_map")?;
    }
    if subid::needs_helper(Kind::Gid, gids) {
        return subid::write(Kind::Gid, pid, gids);
    }
    if !nix::unistd::geteuid().is_root() {
        // Without CAP_SETGID in the parent namespace the kernel requires setgroups to be denied
        // before a process writes a gid map itself.
        proc.write(&format!("{pid}/setgroups"), b"deny").context("setgroups")?;
    }
    proc.write(&format!("{pid}/gid_map"), render(gids).as_bytes()).context("gid_map")
}

/// A user namespace holding `uids`/`gids`, for an idmapped mount (`mounts[].uidMappings`). Made
/// by P0, which alone may write maps naming any host id: a child is born in a new user namespace,
/// its maps are written, the namespace is opened and the child killed; the fd keeps it alive.
///
/// The child shares P0's memory (CLONE_VM) and runs on a small stack of its own: it only sleeps,
/// and a fork's copy of P0's page tables cost more than the rest (a sandbox's workspace namespace
/// took 0.27 ms in clone3 alone).
pub fn mount_userns(proc: &Proc, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    /// The child: sleep until killed, and never outlive P0. Every signal is blocked (below), so
    /// only SIGKILL ends the pause. Raw syscalls that cannot fail: nothing touches errno, which
    /// is P0's (the TLS is shared too).
    extern "C" fn hold(_: *mut libc::c_void) -> libc::c_int {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number by value; pause only sleeps.
        unsafe {
            libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            loop {
                libc::syscall(libc::SYS_pause);
            }
        }
    }
    let mut stack = vec![0u128; 1024]; // 16 KiB, 16-byte aligned
    let top = stack.as_mut_ptr_range().end.cast::<libc::c_void>();
    let mut pidfd: libc::c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_NEWUSER | libc::CLONE_PIDFD | libc::SIGCHLD;
    // Born with every signal blocked: a handler of P0's (a terminal's Ctrl-C reaches the whole
    // process group) must never run on the child's stack over P0's memory. SIGKILL still ends it.
    let mut old = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&nix::sys::signal::SigSet::all()), Some(&mut old))
        .context("block signals")?;
    // SAFETY: `hold` runs on `stack`, which lives until the child is dead (killed and waited for
    // below, on every path), and touches no memory of P0's but that stack.
    let pid = unsafe { libc::clone(hold, top, flags, std::ptr::null_mut(), &mut pidfd as *mut libc::c_int) };
    let errno = nix::errno::Errno::last();
    // Cannot fail with a mask sigprocmask gave; and the child must be waited for below anyway.
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
    if pid < 0 {
        return Err(Error::sys("user namespace for an idmapped mount: clone", errno));
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new fd that nothing else owns.
    let pidfd = unsafe { crate::linux::procfs::own(pidfd) };
    let ns = write(proc, pid, uids, gids).and_then(|()| {
        // The host's /proc: P0 has not left the host, and a magic link cannot be opened
        // beneath a Proc handle (it refuses symlinks).
        nix::fcntl::open(format!("/proc/{pid}/ns/user").as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).context("open its user namespace")
    });
    let killed = pidfd::send_signal(&pidfd, nix::sys::signal::Signal::SIGKILL);
    let waited = pidfd::wait(&pidfd);
    if killed.is_err() || waited.is_err() {
        // Its stack must not be freed under it.
        std::mem::forget(stack);
    }
    ns.context("idmapped mount")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n})).expect("mapping")
    }

    #[test]
    fn accepts_several_disjoint_ranges() {
        assert!(validate("uid", &[m(0, 100000, 1000), m(1000, 1000, 1), m(1001, 101001, 64535)]).is_ok());
        assert_eq!(render(&[m(0, 100000, 65536)]), "0 100000 65536\n");
    }

    #[test]
    fn the_outer_id_through_a_map() {
        assert_eq!(outer("         0          0 4294967295\n", 1000), Some(1000), "the initial namespace");
        // Rootless podman's namespace: root is the user, the rest its subordinate range.
        let podman = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(outer(podman, 0), Some(1000));
        assert_eq!(outer(podman, 1), Some(100000));
        assert_eq!(outer(podman, 65536), Some(165535));
        assert_eq!(outer(podman, 65537), None, "unmapped");
        assert_eq!(outer("", 0), None);
        assert_eq!(outer("garbage\n0 2001 1\n", 0), Some(2001));
    }

    #[test]
    fn refuses_bad_maps() {
        assert!(validate("uid", &[]).is_err());
        assert!(validate("uid", &[m(0, 1000, 0)]).is_err(), "zero length");
        assert!(validate("uid", &[m(0, 1000, 10), m(5, 5000, 10)]).is_err(), "container overlap");
        assert!(validate("uid", &[m(0, 1000, 10), m(100, 1005, 10)]).is_err(), "host overlap");
        assert!(validate("uid", &[m(u32::MAX, 0, 2)]).is_err(), "beyond 32 bits");
    }
}
