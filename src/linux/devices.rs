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

/// The largest numbers a node can carry: the kernel's dev_t is 12 bits of major, 20 of minor.
/// A larger one would be cut down to another device by makedev.
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

pub fn from_spec(d: &oci_spec::runtime::LinuxDevice) -> Result<Device> {
    use oci_spec::runtime::LinuxDeviceType as T;
    let what = format!("linux.devices {:?}", d.path());
    let kind = match d.typ() {
        T::C | T::U => SFlag::S_IFCHR,
        T::B => SFlag::S_IFBLK,
        T::P => SFlag::S_IFIFO,
        T::A => return Err(Error::new(format!("{what}: type 'a' is not a node type"))),
    };
    if !under_dev(d.path()) {
        return Err(Error::new(format!("{what}: path must name a file under /dev, without \"..\"")));
    }
    let number = |field: &str, v: i64, max: i64| {
        if (0..=max).contains(&v) {
            Ok(v as u64)
        } else {
            Err(Error::new(format!("{what}: {field} {v} is not a device number (0 to {max})")))
        }
    };
    let (major, minor) = if kind == SFlag::S_IFIFO { (0, 0) } else { (number("major", d.major(), MAX_MAJOR)?, number("minor", d.minor(), MAX_MINOR)?) };
    // As runc, file type bits in fileMode are dropped (the type field says what the node is);
    // setuid, setgid and sticky on a node are refused, not masked.
    let mode = d.file_mode().unwrap_or(0o666) & !libc::S_IFMT;
    if mode & !0o777 != 0 {
        return Err(Error::new(format!("{what}: fileMode {mode:#o} has bits beyond the permissions 0777")));
    }
    Ok(Device { path: d.path().clone(), kind, major, minor, mode, uid: d.uid(), gid: d.gid() })
}

/// Lexically "/dev/NAME…": absolute, no "..", something below /dev. Checked on the text because
/// the node is made in-root where "/dev/../etc" would still reach the rootfs's /etc.
fn under_dev(path: &Path) -> bool {
    use std::path::Component;
    let mut c = path.components();
    c.next() == Some(Component::RootDir)
        && c.next() == Some(Component::Normal("dev".as_ref()))
        && path.components().all(|c| !matches!(c, Component::ParentDir))
        && c.next().is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(json: &str) -> Result<Device> {
        from_spec(&serde_json::from_str(json).expect("json"))
    }

    #[test]
    fn a_node_must_be_lexically_under_dev() {
        assert_eq!(dev(r#"{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}"#).expect("ok").path, Path::new("/dev/fuse"));
        assert!(dev(r#"{"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200}"#).is_ok());
        for p in ["/dev/../../../../etc/evil", "/dev/x/../../etc/evil", "/dev/..", "/dev", "/dev/", "dev/x", "/etc/x", "/devx/y", "/./dev/../x"] {
            let err = dev(&format!(r#"{{"path": "{p}", "type": "c", "major": 1, "minor": 3}}"#)).err().map(|e| e.to_string());
            assert_eq!(err, Some(format!("linux.devices {p:?}: path must name a file under /dev, without \"..\"")), "{p}");
        }
    }

    #[test]
    fn mode_bits_beyond_0777_are_refused_and_the_type_bits_dropped() {
        let err = dev(r#"{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 4095}"#).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("linux.devices \"/dev/x\": fileMode 0o7777 has bits beyond the permissions 0777"));
        assert!(dev(r#"{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 2486}"#).is_err(), "setgid 0o4666");
        // S_IFCHR | 0666, as some callers send the stat mode whole.
        assert_eq!(dev(r#"{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 8630}"#).expect("ok").mode, 0o666);
        assert_eq!(dev(r#"{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}"#).expect("ok").mode, 0o666);
    }

    #[test]
    fn numbers_that_do_not_fit_a_dev_t_are_refused() {
        let err = dev(r#"{"path": "/dev/x", "type": "c", "major": 4294967296, "minor": 0}"#).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("linux.devices \"/dev/x\": major 4294967296 is not a device number (0 to 4095)"));
        assert!(dev(r#"{"path": "/dev/x", "type": "b", "major": 8, "minor": 1048576}"#).is_err());
        assert!(dev(r#"{"path": "/dev/x", "type": "c", "major": -1, "minor": 0}"#).is_err());
        assert!(dev(r#"{"path": "/dev/x", "type": "c", "major": 4095, "minor": 1048575}"#).is_ok());
    }
}
