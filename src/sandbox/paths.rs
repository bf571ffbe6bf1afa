//! The sandbox's paths: on the host (the rootfs, the workspace, bind sources), opened without
//! following a symlink and made absolute; inside (mount destinations, the cwd), checked against
//! what the job's own mounts must keep.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;

use crate::error::{Error, Result};
use crate::linux::nofollow;

/// What a bind or tmpfs may neither replace nor hide (nor anything beneath them): the workspace
/// and the kernel's filesystems the spec mounts.
const RESERVED: [&str; 4] = ["/workspace", "/proc", "/dev", "/sys"];

/// A host path given as `opt`: opened now without following a symlink on any component
/// (`nofollow`; a directory when `dir`), and made absolute (the cwd is a real path, and a path
/// without symlinks resolves its ".." lexically).
pub fn host_path(opt: &str, p: &Path, dir: bool) -> Result<(PathBuf, OwnedFd)> {
    let fd = if dir { nofollow::dir(opt, p)? } else { nofollow::open(opt, p, OFlag::O_PATH)? };
    let full = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().map_err(|e| Error::new(format!("{opt} {p:?}: cwd: {e}")))?.join(p) };
    let mut out = PathBuf::from("/");
    for c in full.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok((out, fd))
}

/// A path inside the job given to `opt` (as `arg`): absolute, no "..", and clear of `RESERVED`.
pub fn destination(opt: &str, arg: &str, d: &Path) -> Result<PathBuf> {
    // ':' separates the Landlock annotation's paths.
    if !d.is_absolute() || d.components().any(|c| c == Component::ParentDir) || d.as_os_str().as_encoded_bytes().contains(&b':') {
        return Err(Error::new(format!("{opt} {arg:?}: {d:?} must be an absolute path without \"..\" or ':'")));
    }
    let d: PathBuf = d.components().collect();
    if opt == "--chdir" {
        return Ok(d);
    }
    if d == Path::new("/") {
        return Err(Error::new(format!("{opt} {arg:?}: would replace the job's root")));
    }
    if let Some(r) = RESERVED.iter().find(|r| d.starts_with(r) || Path::new(r).starts_with(&d)) {
        return Err(Error::new(format!("{opt} {arg:?}: would hide or replace the job's {r}")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_clear_of_the_jobs_own_mounts() {
        assert_eq!(destination("--bind", "x", Path::new("/cache/")).expect("ok"), Path::new("/cache"));
        assert!(destination("--bind", "x", Path::new("/workspacex")).is_ok());
        for bad in ["/workspace", "/workspace/sub", "/proc", "/dev/shm", "/sys/fs", "/", "relative", "/a/../proc", "/a:b"] {
            assert!(destination("--ro-bind", "x", Path::new(bad)).is_err(), "{bad}");
        }
        let e = destination("--ro-bind", "S:/proc", Path::new("/proc")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("/proc"), "{e}");
    }
}
