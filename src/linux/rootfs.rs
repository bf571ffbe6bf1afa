//! The container's root: make it a private mount point, switch to it with `pivot_root` (or move
//! mount + chroot with `--no-pivot`), make it read-only, and mask or freeze the paths the spec asks.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::linux::{inroot, mounts};

/// `rootfsPropagation` to mount flags; runc's default is a recursive slave.
pub fn propagation(name: Option<&str>) -> Result<MsFlags> {
    Ok(match name {
        None | Some("") | Some("rslave") | Some("slave") => MsFlags::MS_SLAVE,
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE,
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED,
        Some("unbindable") | Some("runbindable") => MsFlags::MS_UNBINDABLE,
        Some(other) => return Err(Error::new(format!("rootfsPropagation {other:?} is not a propagation type"))),
    })
}

/// In the new mount namespace: stop mount events flowing back to the host, make the rootfs a
/// mount point of its own, and return an fd to its root.
pub fn prepare(rootfs: &Path, prop: MsFlags) -> Result<OwnedFd> {
    non_shared(prop)?;
    nix::mount::mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(|e| match e {
        // In a user namespace the path is walked as the container's root, an unprivileged host id.
        nix::errno::Errno::EACCES => Error::sys(format!("bind rootfs {rootfs:?} (every directory above it must be searchable by the container's root)"), e),
        e => Error::sys(format!("bind rootfs {rootfs:?}"), e),
    })?;
    nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("open rootfs {rootfs:?}"))
}

/// The first step in a new mount namespace, before anything is mounted.
pub fn non_shared(prop: MsFlags) -> Result<()> {
    // Nothing we mount may propagate to the host: recursive slave (or private) on the whole tree
    // first. Shared and unbindable wait for `apply_propagation`, after the switch: pivot_root
    // refuses a shared new root, and an unbindable rootfs cannot be bound onto itself (EINVAL).
    let first = match prop {
        MsFlags::MS_SHARED => MsFlags::MS_SLAVE,
        MsFlags::MS_UNBINDABLE => MsFlags::MS_PRIVATE,
        other => other,
    };
    nix::mount::mount(None::<&str>, "/", None::<&str>, first | MsFlags::MS_REC, None::<&str>).context("make / non-shared")
}

/// Without a mount namespace the container runs in the host's, chrooted into its rootfs, as
/// under runc. Whatever would be mounted for it would be mounted in the host's namespace and
/// outlive it there (runc leaves such mounts behind): refused, with the setting named. runc
/// refuses masked and read-only paths the same way, and ignores root.readonly; we refuse it.
pub fn check_without_mount_ns(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let why = "needs a mount namespace: without one it would be mounted in the host's and outlive the container";
    let linux = spec.linux().as_ref();
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::new(format!("mounts: {why}")));
    }
    let listed = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if listed(linux.and_then(|l| l.masked_paths().as_ref())) || listed(linux.and_then(|l| l.readonly_paths().as_ref())) {
        return Err(Error::new(format!("linux.maskedPaths and linux.readonlyPaths: {why}")));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        return Err(Error::new(format!("root.readonly {why}")));
    }
    if linux.and_then(|l| l.rootfs_propagation().as_deref()).is_some_and(|p| !p.is_empty()) {
        return Err(Error::new("linux.rootfsPropagation needs a mount namespace: the host's propagation is not the container's to change"));
    }
    if spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false) {
        return Err(Error::new(format!("process.terminal: /dev/console {why}")));
    }
    Ok(())
}

/// No mount namespace: the rootfs as it is, nothing mounted (see `check_without_mount_ns`).
pub fn open_in_host_ns(rootfs: &Path, no_pivot: bool) -> Result<OwnedFd> {
    if no_pivot {
        return Err(Error::new("--no-pivot needs a mount namespace: it moves the rootfs over the host's /"));
    }
    nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("open rootfs {rootfs:?}"))
}

/// No mount namespace: chroot, as runc does (pivot_root would switch the host's root).
pub fn chroot(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root).context("chdir rootfs")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")
}

/// `rootfsPropagation` shared or unbindable, once the root is switched, recursively on the
/// container's "/". A shared root gets peer groups of its own: it was made a slave of the host's
/// first, so nothing flows back.
pub fn apply_propagation(prop: MsFlags) -> Result<()> {
    if !matches!(prop, MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        return Ok(());
    }
    nix::mount::mount(None::<&str>, "/", None::<&str>, prop | MsFlags::MS_REC, None::<&str>).context("rootfsPropagation")
}

/// Switch root. The old root is detached so nothing of the host stays reachable.
pub fn pivot(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root).context("chdir rootfs")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    // The old root now sits on top of the new one at ".": detach it.
    nix::mount::umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    nix::unistd::chdir("/").context("chdir /")
}

/// `--no-pivot`: for a rootfs on a ramfs, where pivot_root is refused.
pub fn move_and_chroot(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root).context("chdir rootfs")?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).context("move rootfs to /")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")
}

pub fn make_readonly(root: &OwnedFd) -> Result<()> {
    mounts::setattr(root, libc::MOUNT_ATTR_RDONLY, 0, 0, None, false).context("make rootfs read-only")
}

/// `maskedPaths`: a directory gets a read-only empty tmpfs; anything else the verified /dev/null.
pub fn mask(root: &OwnedFd, path: &Path, dev_null: &OwnedFd) -> Result<()> {
    let target = match inroot::open(root, path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("mask {path:?}"), e)),
    };
    let is_dir = nix::sys::stat::fstat(&target).with_context(|| format!("mask {path:?}"))?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir {
        nix::mount::mount(Some("tmpfs"), crate::linux::procfs::fd_path(target.as_raw_fd()).as_str(), Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
            .with_context(|| format!("mask {path:?}"))
    } else {
        // CVE-2025-31133: never bind the container's /dev/null (which it could have swapped for a
        // symlink to a host file); bind the host one the runtime opened and checked itself.
        let tree = mounts::open_tree(dev_null.as_raw_fd(), Path::new(""), false).with_context(|| format!("mask {path:?}"))?;
        mounts::move_mount(&tree, &target).with_context(|| format!("mask {path:?}"))
    }
}

/// `readonlyPaths`: bind the path onto itself, recursively read-only.
pub fn freeze(root: &OwnedFd, path: &Path) -> Result<()> {
    let target = match inroot::open(root, path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("readonly {path:?}"), e)),
    };
    let what = || format!("readonly {path:?}");
    let tree = mounts::open_tree(target.as_raw_fd(), Path::new(""), true).with_context(what)?;
    mounts::setattr(&tree, libc::MOUNT_ATTR_RDONLY, 0, 0, None, true).with_context(what)?;
    mounts::move_mount(&tree, &target).with_context(what)
}

/// After pivot_root: each of fds 0-2 that is the null device (the caller's /dev/null, a file of a
/// mount outside the container) becomes the container's own /dev/null, as runc does. CRIU
/// resolves every open file through a mount of the container: a stdin of the host's /dev/null
/// (conmon gives one) would make every checkpoint fail ("Can't lookup mount"). A /dev/null of the
/// container that is not the null device (a rootfs's own /dev) is not used.
pub fn reopen_dev_null() -> Result<()> {
    let is_null = |st: &nix::sys::stat::FileStat| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3);
    let null = match nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    if !nix::sys::stat::fstat(&null).is_ok_and(|st| is_null(&st)) {
        return Ok(());
    }
    for fd in 0..3 {
        // SAFETY: fds 0-2 of this process, borrowed only for the fstat.
        let stdio = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if nix::sys::stat::fstat(stdio).is_ok_and(|st| is_null(&st)) {
            // SAFETY: dup3 of an fd we own onto a stdio number; the old file is closed by it.
            if unsafe { libc::dup3(null.as_raw_fd(), fd, 0) } < 0 {
                return Err(Error::sys(format!("reopen fd {fd} on the container's /dev/null"), Errno::last()));
            }
        }
    }
    Ok(())
}

/// Open the host's /dev/null and check it is the real one (char 1:3).
pub fn open_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open("/dev/null", OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty()).context("open /dev/null")?;
    let st = nix::sys::stat::fstat(&fd).context("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Error::new("/dev/null is not the null device"));
    }
    Ok(fd)
}
