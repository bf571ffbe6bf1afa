//! Path resolution inside the container's root. Every mount destination and every path testudo
//! creates inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)`: symlinks, absolute or
//! `../..`, are followed as if the rootfs were `/`, so a malicious rootfs cannot redirect a mount,
//! a mkdir or a device node to the host (CVE-2021-30465, CVE-2024-45310). The result is an fd; the
//! caller mounts onto the fd, never onto a path string that could be swapped afterwards.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::error::{Context, Error, Result};

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Open `path` (taken relative to the root whatever its leading '/') inside `root`.
pub fn open(root: &impl AsFd, path: &Path, flags: OFlag) -> std::result::Result<OwnedFd, Errno> {
    let rel = relative(path);
    // With RESOLVE_IN_ROOT the kernel answers EAGAIN when a mount or rename anywhere on the host
    // raced a ".." step of the walk (it cannot then prove the walk stayed inside): walk again. On
    // a busy host (other containers starting) that happens; a bounded retry keeps it an error if
    // it never settles.
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(root, rel.as_path(), how(flags)) {
            Err(Errno::EAGAIN) if tries < 64 => tries += 1,
            r => return r,
        }
    }
}

/// Whether resolving `path` inside `root` meets a symlink (any component, the last included,
/// dangling or not). A path that does not exist yet, without a symlink on the way, meets none.
pub fn through_symlink(root: &impl AsFd, path: &Path) -> std::result::Result<bool, Errno> {
    let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let rel = relative(path);
    let mut tries = 0;
    loop {
        return match nix::fcntl::openat2(root, rel.as_path(), how) {
            Err(Errno::EAGAIN) if tries < 64 => {
                tries += 1;
                continue;
            }
            Ok(_) | Err(Errno::ENOENT) => Ok(false),
            Err(Errno::ELOOP) => Ok(true),
            Err(e) => Err(e),
        };
    }
}

/// `path` relative to the root: "/a/b" → "a/b", "/" → ".".
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path.components().filter(|c| !matches!(c, Component::RootDir)).collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Make sure `path` exists inside `root` as a directory (or an empty file for `Kind::File`, with
/// its parents as directories) and return an O_PATH fd to it. Missing components are created one
/// at a time beneath their already-resolved parent, never through a symlink.
pub fn ensure(root: &OwnedFd, path: &Path, kind: Kind, mode: u32) -> Result<OwnedFd> {
    ensure_at_depth(root, path, kind, mode, 0)
}

/// Symlinks followed while creating, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

fn ensure_at_depth(root: &OwnedFd, path: &Path, kind: Kind, mode: u32, depth: u32) -> Result<OwnedFd> {
    let flags = match kind {
        Kind::Dir => OFlag::O_PATH | OFlag::O_DIRECTORY,
        Kind::File => OFlag::O_PATH,
    };
    match open(root, path, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("resolve {path:?} in rootfs"), e)),
    }
    let rel = relative(path);
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Error::sys(format!("resolve {path:?} in rootfs"), Errno::ENOENT));
    };
    let parent_fd = ensure_at_depth(root, parent, Kind::Dir, 0o755, depth)?;
    let created = match kind {
        Kind::Dir => nix::sys::stat::mkdirat(&parent_fd, name, Mode::from_bits_truncate(mode)),
        Kind::File => nix::sys::stat::mknodat(&parent_fd, name, SFlag::S_IFREG, Mode::from_bits_truncate(mode), 0),
    };
    match created {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // CVE-2024-21626: what exists in a procfs (/proc/self/fd/N, /proc/self/cwd) is a
            // magic link, whose text is a host path, not a symlink to follow in the root.
            if nix::sys::statfs::fstatfs(&parent_fd).is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC) {
                return Err(Error::sys(format!("create {path:?} in rootfs: it is inside a procfs"), Errno::ELOOP));
            }
            // A dangling symlink: create its target, resolved inside the root like any path.
            if let Ok(target) = nix::fcntl::readlinkat(&parent_fd, name) {
                if depth >= MAX_LINKS {
                    return Err(Error::sys(format!("create {path:?} in rootfs"), Errno::ELOOP));
                }
                let next = clamp_join(parent, Path::new(&target));
                return ensure_at_depth(root, &next, kind, mode, depth + 1);
            }
        }
        Err(e) => return Err(Error::sys(format!("create {path:?} in rootfs"), e)),
    }
    // The name now exists beneath a parent we resolved in-root. If it is a symlink (a dangling
    // one made EEXIST above), refuse it rather than follow it out.
    let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    nix::fcntl::openat2(&parent_fd, name, how).with_context(|| format!("open {path:?} in rootfs"))
}

/// `target` of a symlink found in directory `parent`, as a path from the root; `..` never climbs
/// above the root.
fn clamp_join(parent: &Path, target: &Path) -> PathBuf {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    let start: Vec<Component> = if target.is_absolute() { Vec::new() } else { parent.components().collect() };
    for c in start.into_iter().chain(target.components()) {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    let p: PathBuf = out.iter().collect();
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("testudo-inroot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    fn root_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).expect("open root")
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let host = tmp("host");
        let root = tmp("root");
        // A rootfs whose /evil points at a host directory by absolute path and by ../..
        symlink(&host, root.join("evil")).expect("symlink");
        symlink("../../../../../../..".to_string() + host.to_str().expect("utf8"), root.join("evil2")).expect("symlink");
        let fd = root_fd(&root);
        ensure(&fd, Path::new("/evil/sub"), Kind::Dir, 0o755).expect("ensure");
        ensure(&fd, Path::new("/evil2/file"), Kind::File, 0o644).expect("ensure");
        assert!(std::fs::read_dir(&host).expect("host").next().is_none(), "host dir was written to");
        // The paths were created inside the root instead.
        assert!(root.join(host.strip_prefix("/").expect("abs")).join("sub").is_dir());
        let _ = std::fs::remove_dir_all(&host);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn symlinks_on_the_way_are_seen() {
        let root = tmp("through");
        std::fs::create_dir_all(root.join("real/dir")).expect("mkdir");
        symlink("real", root.join("link")).expect("symlink");
        symlink("/nowhere", root.join("dangling")).expect("symlink");
        let fd = root_fd(&root);
        let through = |p: &str| through_symlink(&fd, Path::new(p)).expect(p);
        assert!(!through("/real/dir") && !through("/real/missing") && !through("/missing/deeper"));
        assert!(through("/link") && through("/link/dir") && through("/dangling") && through("/dangling/x"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_dangling_symlink_as_last_component_is_refused() {
        let root = tmp("dangle");
        symlink("/nonexistent-target-dir", root.join("dst")).expect("symlink");
        let fd = root_fd(&root);
        // RESOLVE_IN_ROOT turns the target into <root>/nonexistent-target-dir, which is created.
        let r = ensure(&fd, Path::new("/dst"), Kind::Dir, 0o755);
        assert!(r.is_err() || root.join("nonexistent-target-dir").is_dir());
        assert!(!Path::new("/nonexistent-target-dir").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
