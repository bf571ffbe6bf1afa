//! Host paths that an untrusted job can write (its workspace and anything under it, a rootfs it
//! was given before), opened without following a single symlink: `openat2(RESOLVE_NO_SYMLINKS)`
//! on every component, from `/` for an absolute path and from the cwd for a relative one. A job
//! that plants `ws/out -> /etc` cannot make the runtime bind, chown or write `/etc` for a later
//! run (CVE-2024-45310 class). What is returned is an fd, used as it is: the path is never looked
//! up again, so it cannot be swapped between the check and the use.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

use crate::error::{Error, Result};

/// Open `path` with `flags`, refusing any symlink on the way, the last component included.
/// `what` names the option in the error.
pub fn open(what: &str, path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let (dir, rel) = match path.strip_prefix("/") {
        Ok(rel) if rel.as_os_str().is_empty() => (c"/", Path::new(".")),
        Ok(rel) => (c"/", rel),
        Err(_) => (c".", path),
    };
    let start = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| Error::sys(format!("{what} {path:?}: open {dir:?}"), e))?;
    let symlink = || {
        Error::sys(format!("{what} {path:?}: the path is or passes through a symlink (refused: a job could have planted it); give the real path"), Errno::ELOOP)
    };
    match nix::fcntl::openat2(&start, rel, how) {
        // O_PATH|O_NOFOLLOW opens a trailing symlink itself.
        Ok(fd) if file_type(&fd) == Some(libc::S_IFLNK) => Err(symlink()),
        Ok(fd) => Ok(fd),
        Err(Errno::ELOOP) => Err(symlink()),
        Err(e) => Err(Error::sys(format!("{what} {path:?}"), e)),
    }
}

fn file_type(fd: &OwnedFd) -> Option<u32> {
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_mode & libc::S_IFMT)
}

/// `path` as an O_PATH fd to a directory (see `open`).
pub fn dir(what: &str, path: &Path) -> Result<OwnedFd> {
    let fd = open(what, path, OFlag::O_PATH)?;
    if file_type(&fd) != Some(libc::S_IFDIR) {
        return Err(Error::new(format!("{what} {path:?}: not a directory")));
    }
    Ok(fd)
}
