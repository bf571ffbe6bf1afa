//! A procfs we can trust. A container's rootfs may hold a fake /proc (a symlink, a tmpfs, a FUSE
//! mount, or a procfs with files bind-mounted over it) to redirect the runtime's writes of LSM
//! labels, sysctls or oom_score_adj (CVE-2019-16884, CVE-2023-27561, CVE-2025-52881). Every
//! runtime write into /proc goes through a handle that was checked to be the root of a real procfs
//! and is resolved beneath it without following symlinks or crossing mounts.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{Context, Error, Result};

pub struct Proc {
    fd: OwnedFd,
}

impl Proc {
    /// Open and verify the procfs at `path` (a path the runtime controls: the host's /proc, or
    /// the container's /proc right after the runtime mounted it).
    pub fn open(path: &Path) -> Result<Proc> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
            .with_context(|| format!("open {path:?}"))?;
        Proc::verify(fd, path)
    }

    pub fn verify(fd: OwnedFd, what: &Path) -> Result<Proc> {
        let st = fstatfs(&fd).with_context(|| format!("statfs {what:?}"))?;
        if st.filesystem_type() != PROC_SUPER_MAGIC {
            return Err(Error::new(format!("{what:?} is not a procfs")));
        }
        // The root of a procfs mount has inode 1; anything else is a subdirectory passed off as /proc.
        let ino = nix::sys::stat::fstat(&fd).with_context(|| format!("stat {what:?}"))?.st_ino;
        if ino != 1 {
            return Err(Error::new(format!("{what:?} is not the root of a procfs")));
        }
        Ok(Proc { fd })
    }

    /// Open `rel` (e.g. "self/attr/apparmor/exec", "sys/net/ipv4/ip_forward") beneath this procfs,
    /// refusing symlinks (other than the /proc/self magic) and mount crossings.
    pub fn open_file(&self, rel: &str, flags: OFlag) -> Result<OwnedFd> {
        // "self" and "thread-self" are symlinks; resolve them ourselves to a pid directory.
        let rel = self.resolve_self(rel)?;
        let how = nix::fcntl::OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_XDEV);
        nix::fcntl::openat2(&self.fd, rel.as_str(), how).with_context(|| format!("open /proc/{rel}"))
    }

    /// Write `data` into a proc file in one write(2), as proc files require.
    pub fn write(&self, rel: &str, data: &[u8]) -> Result<()> {
        let fd = self.open_file(rel, OFlag::O_WRONLY)?;
        let n = nix::unistd::write(&fd, data).with_context(|| format!("write /proc/{rel}"))?;
        if n != data.len() {
            return Err(Error::sys(format!("write /proc/{rel}"), Errno::EIO));
        }
        Ok(())
    }

    /// "self/…" and "thread-self/…" as this procfs names us. Read from its own links, never from
    /// getpid(): a procfs of another pid namespace (the host's /proc, seen from the container's
    /// init before its own /proc is mounted) knows us by another pid, and pid 1 there is the
    /// host's init.
    fn resolve_self(&self, rel: &str) -> Result<String> {
        let (link, rest) = match rel.split_once('/') {
            Some((l @ ("self" | "thread-self"), rest)) => (l, rest),
            _ => return Ok(rel.to_string()),
        };
        let target = nix::fcntl::readlinkat(&self.fd, link).with_context(|| format!("readlink /proc/{link}"))?;
        let target = target.to_str().ok_or_else(|| Error::new(format!("/proc/{link}: not UTF-8")))?;
        Ok(format!("{target}/{rest}"))
    }
}

/// The magic-link path of an fd of ours, through the host's /proc. Used as a mount target so that
/// a mount lands exactly on the object resolved safely beforehand, whatever the path now says.
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// Take ownership of a raw fd returned by a raw syscall.
///
/// # Safety
/// `fd` must be a valid, open descriptor owned by nobody else.
pub unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees the fd is valid and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The fields of a `/proc/PID/stat` line from field 3 (state) on, so field N is `[N - 3]`. The
/// command name (field 2) may hold spaces and parentheses: the fields resume after its last ')'.
pub fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace().collect())
}

/// Whether `pid` is stopped (by a signal, or traced): state T or t in /proc/PID/stat.
pub fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| stat_fields(&s).and_then(|f| f.first().copied()).is_some_and(|st| st == "T" || st == "t"))
}
