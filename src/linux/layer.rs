//! The sandbox's root layer: the job's `/` is a tmpfs of the container's own (in its mount
//! namespace), on which every top-level entry of the caller's rootfs is bind mounted read-only
//! and every symlink copied, as bubblewrap builds its root. Mount points the rootfs lacks are
//! made on that tmpfs, never in the rootfs: nothing of the caller's rootfs changes, not even a
//! directory left behind, and a rootfs without /proc or /workspace works. A directory on the way
//! to a mount point (`/opt` for `/opt/x`) is not bound whole but made on the tmpfs with its own
//! entries bound one by one (recursively), so the mount point can be made beside them.
//!
//! A rootfs given by the caller may come from a job (CVE-2024-45310 class): it is opened without
//! following a symlink (`nofollow`), its entries are looked at with AT_SYMLINK_NOFOLLOW and
//! cloned with open_tree(AT_SYMLINK_NOFOLLOW), and a directory on the way to a mount point that
//! is a symlink in the rootfs is refused (it would lead the mount point elsewhere).

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};

use crate::error::{Context, Error, Result};
use crate::linux::{mounts, nofollow, procfs};

/// Cover `rootfs` (in this, the container's, mount namespace) with the layer, and return an
/// O_PATH fd to its root. `mounts` are the mount destinations, `cwd` the process's cwd.
pub fn attach(rootfs: &Path, mounts: &[&Path], cwd: &Path) -> Result<OwnedFd> {
    let lower = nofollow::open("rootfs", rootfs, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| match e.errno() {
        Some(nix::errno::Errno::EACCES) => {
            Error::sys(format!("rootfs {rootfs:?}: every directory above it must be searchable by the container's root"), nix::errno::Errno::EACCES)
        }
        _ => e,
    })?;
    nix::mount::mount(
        Some("tmpfs"),
        procfs::fd_path(lower.as_raw_fd()).as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755,size=1m,nr_inodes=65536"),
    )
    .context("root layer: tmpfs over the rootfs")?;
    let top = nofollow::dir("rootfs", rootfs)?;
    if nix::sys::statfs::fstatfs(&top).context("root layer")?.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
        return Err(Error::new(format!("root layer: {rootfs:?} is not the tmpfs just mounted")));
    }
    let mut points = mounts.to_vec();
    points.push(cwd);
    let covered: BTreeSet<PathBuf> = mounts.iter().filter_map(|m| m.strip_prefix("/").ok()).map(Path::to_path_buf).collect();
    fill(&top, &lower, Path::new(""), &Ways { above: ancestors(&points), covered })?;
    Ok(top)
}

/// Where `fill` must look inside an entry, and which entries a mount will cover whole.
struct Ways {
    /// Directories on the way to a mount point or the cwd (made on the layer, their entries
    /// mirrored one by one).
    above: BTreeSet<PathBuf>,
    /// Mount destinations, relative: the rootfs's entry there, and all below it, would be
    /// hidden by the mount anyway (and what is mounted below goes on that mount), so the layer
    /// has only a mount point for it, not a bind (/usr, /etc, /proc, /dev, /sys, /tmp,
    /// /workspace of a sandbox: 7 binds of 4 syscalls each, and /dev's entries, saved).
    covered: BTreeSet<PathBuf>,
}

/// Every directory strictly above a point, relative to the root ("opt" for "/opt/x").
fn ancestors(points: &[&Path]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for p in points {
        let parts: Vec<&std::ffi::OsStr> = p.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
        for i in 1..parts.len() {
            out.insert(parts[..i].iter().collect());
        }
    }
    out
}

/// Mirror the directory `lower` (at `rel` in the rootfs) into `layer`.
fn fill(layer: &OwnedFd, lower: &OwnedFd, rel: &Path, ways: &Ways) -> Result<()> {
    let mut dir = nix::dir::Dir::openat(lower, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("root layer: read {:?} of the rootfs", Path::new("/").join(rel)))?;
    let names: Vec<std::ffi::CString> =
        dir.iter().filter_map(|e| e.ok()).map(|e| e.file_name().to_owned()).filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..").collect();
    for name in names {
        let path = rel.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let what = || format!("root layer: {:?}", Path::new("/").join(&path));
        let st = nix::sys::stat::fstatat(lower, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).with_context(what)?;
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                if ways.above.contains(&path) {
                    return Err(Error::new(format!(
                        "{}: a mount point lies beneath it, and in the rootfs it is a symlink (refused: it could lead anywhere)",
                        what()
                    )));
                }
                let target = nix::fcntl::readlinkat(lower, name.as_c_str()).with_context(what)?;
                nix::unistd::symlinkat(target.as_os_str(), layer, name.as_c_str()).with_context(what)?;
            }
            libc::S_IFDIR => {
                nix::sys::stat::mkdirat(layer, name.as_c_str(), perm).with_context(what)?;
                if ways.covered.contains(&path) {
                    // Hidden whole by its mount, and what is mounted below it goes on that.
                } else if ways.above.contains(&path) {
                    let below =
                        nix::fcntl::openat(lower, name.as_c_str(), OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                            .with_context(what)?;
                    let above =
                        nix::fcntl::openat(layer, name.as_c_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                            .with_context(what)?;
                    fill(&above, &below, &path, ways)?;
                } else {
                    bind(lower, layer, &name).with_context(what)?;
                }
            }
            _ => {
                nix::sys::stat::mknodat(layer, name.as_c_str(), SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0).with_context(what)?;
                if !ways.covered.contains(&path) {
                    bind(lower, layer, &name).with_context(what)?;
                }
            }
        }
    }
    Ok(())
}

/// `name` of the rootfs, read-only (recursively), onto the same name in the layer.
fn bind(lower: &OwnedFd, layer: &OwnedFd, name: &std::ffi::CStr) -> Result<()> {
    let tree = mounts::open_tree_nofollow(lower.as_raw_fd(), name).context("open_tree")?;
    mounts::setattr(&tree, libc::MOUNT_ATTR_RDONLY, 0, 0, None, true).context("read-only")?;
    let at = nix::fcntl::openat(layer, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()).context("open mount point")?;
    mounts::move_mount(&tree, &at).context("move_mount")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directories_on_the_way_to_mount_points() {
        let got = ancestors(&[Path::new("/workspace"), Path::new("/opt/x/y"), Path::new("/dev/pts"), Path::new("/")]);
        let want: BTreeSet<PathBuf> = ["opt", "opt/x", "dev"].iter().map(PathBuf::from).collect();
        assert_eq!(got, want);
    }
}
