//! Device nodes in the container's /dev: the set every runtime provides, `linux.devices`, and the
//! usual links. Nodes are created with mknodat beneath an in-root-resolved parent, which never
//! follows a symlink in the last component. In a user namespace mknod is refused, so the host's
//! node is bind-mounted instead.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::error::{Context, Error, Result};
use crate::linux::{inroot, mounts};

pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The nodes every container gets (the OCI spec's "default devices").
pub fn defaults() -> Vec<Device> {
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        .into_iter()
        .map(|(name, major, minor)| Device { path: Path::new("/dev").join(name), kind: SFlag::S_IFCHR, major, minor, mode: 0o666, uid: None, gid: None })
        .collect()
}

pub fn from_spec(d: &oci_spec::runtime::LinuxDevice) -> Result<Device> {
    use oci_spec::runtime::LinuxDeviceType as T;
    let kind = match d.typ() {
        T::C | T::U => SFlag::S_IFCHR,
        T::B => SFlag::S_IFBLK,
        T::P => SFlag::S_IFIFO,
        T::A => return Err(Error::new(format!("device {:?}: type 'a' is not a node type", d.path()))),
    };
    if !d.path().starts_with("/dev/") {
        return Err(Error::new(format!("device {:?}: not under /dev", d.path())));
    }
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid(),
        gid: d.gid(),
    })
}

/// Create `dev` inside `root`. `bind` = in a user namespace: bind the host node instead.
pub fn create(root: &OwnedFd, dev: &Device, bind: bool) -> Result<()> {
    let what = || format!("device {:?}", dev.path);
    let rel = inroot::relative(&dev.path);
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(Error::new(format!("device {:?}: bad path", dev.path)));
    };
    let dir = inroot::ensure(root, parent, inroot::Kind::Dir, 0o755).with_context(what)?;
    if bind {
        let target = inroot::ensure(root, &dev.path, inroot::Kind::File, 0o600).with_context(what)?;
        let tree = mounts::open_tree(libc::AT_FDCWD, &dev.path, false).with_context(|| format!("bind host {:?}", dev.path))?;
        return mounts::move_mount(&tree, &target).with_context(what);
    }
    let rdev = libc::makedev(dev.major as u32, dev.minor as u32);
    // The node gets exactly its fileMode, not what the caller's umask leaves of it.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = nix::sys::stat::mknodat(&dir, name, dev.kind, Mode::from_bits_truncate(dev.mode), rdev);
    nix::sys::stat::umask(umask);
    match made {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Already there (a /dev that is not our tmpfs): accept only the very same node.
            let st = nix::sys::stat::fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).with_context(what)?;
            if st.st_mode & libc::S_IFMT != dev.kind.bits() || st.st_rdev != rdev {
                return Err(Error::new(format!("device {:?}: a different file is in the way", dev.path)));
            }
        }
        Err(e) => return Err(Error::sys(what(), e)),
    }
    if dev.uid.is_some() || dev.gid.is_some() {
        nix::unistd::fchownat(&dir, name, dev.uid.map(Uid::from_raw), dev.gid.map(Gid::from_raw), AtFlags::AT_SYMLINK_NOFOLLOW).with_context(what)?;
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core, and /dev/ptmx → pts/ptmx when devpts is mounted.
pub fn links(root: &OwnedFd, ptmx: bool) -> Result<()> {
    let dev = inroot::ensure(root, Path::new("/dev"), inroot::Kind::Dir, 0o755).context("/dev")?;
    let mut links = vec![("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if ptmx {
        // Replace whatever the rootfs has there: the container must use its own devpts instance.
        match nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("remove /dev/ptmx", e)),
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /dev/{name}"), e)),
        }
    }
    Ok(())
}

/// Whether the mount list puts a devpts at /dev/pts.
pub fn has_devpts(mounts: &[oci_spec::runtime::Mount]) -> bool {
    mounts.iter().any(|m| m.typ().as_deref() == Some("devpts") && m.destination() == Path::new("/dev/pts"))
}
