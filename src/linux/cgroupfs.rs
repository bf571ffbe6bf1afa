//! A `cgroup` mount on a hybrid host: what runc gives a container there — a tmpfs with one
//! directory per cgroup v1 hierarchy the container is in (cgroups::v1), each a bind of the
//! container's own v1 cgroup, and `unified`, a bind of its v2 cgroup. So `/sys/fs/cgroup/pids/
//! pids.max` or `/sys/fs/cgroup/memory/memory.limit_in_bytes` read inside show the container's
//! limits, as programs that size themselves from them (JVMs, Go's GOMAXPROCS tools) expect. On a
//! pure v2 host the mount is one cgroup2 mount (mounts::fresh).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Context, Result};
use crate::linux::inroot::{self, Kind};
use crate::linux::mounts::{move_mount, open_tree, setattr, Ctx, Options};
use crate::linux::procfs;

/// The container's cgroups, for a hybrid `cgroup` mount.
pub struct Hybrid<'a> {
    /// Its v2 directory on the host.
    pub v2: &'a Path,
    /// (hierarchy name under /sys/fs/cgroup, e.g. "pids" or "cpu,cpuacct"; its v1 directory).
    pub v1: Vec<(String, PathBuf)>,
}

pub fn mount(ctx: &Ctx, h: &Hybrid, m: &Mount, o: &Options) -> Result<()> {
    let dest = inroot::ensure(ctx.root, m.destination(), Kind::Dir, 0o755)?;
    // Read-only, if asked, once the directories are in place.
    let flags = (o.flags & !MsFlags::MS_RDONLY) | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    nix::mount::mount(Some("tmpfs"), procfs::fd_path(dest.as_raw_fd()).as_str(), Some("tmpfs"), flags, Some("mode=755")).context("tmpfs")?;
    let binds = h.v1.iter().map(|(name, dir)| (name.as_str(), dir.as_path())).chain([("unified", h.v2)]);
    for (name, source) in binds {
        let tree = open_tree(libc::AT_FDCWD, source, false).with_context(|| format!("open_tree {source:?}"))?;
        setattr(
            &tree,
            o.attr_set | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
            o.attr_clr & !libc::MOUNT_ATTR_NOSUID,
            0,
            None,
            false,
        )
        .with_context(|| format!("mount_setattr {source:?}"))?;
        let at = inroot::ensure(ctx.root, &m.destination().join(name), Kind::Dir, 0o755)?;
        move_mount(&tree, &at).with_context(|| format!("move_mount {source:?}"))?;
        // Co-mounted controllers: cpu -> cpu,cpuacct, as on the host.
        if name.contains(',') {
            let top = inroot::open(ctx.root, m.destination(), OFlag::O_PATH | OFlag::O_DIRECTORY).context("reopen")?;
            for part in name.split(',') {
                nix::unistd::symlinkat(name, &top, part).with_context(|| format!("symlink {part:?}"))?;
            }
        }
    }
    if o.flags.contains(MsFlags::MS_RDONLY) {
        let top = inroot::open(ctx.root, m.destination(), OFlag::O_PATH | OFlag::O_DIRECTORY).context("reopen")?;
        setattr(&top, libc::MOUNT_ATTR_RDONLY, 0, 0, None, false).context("read-only")?;
    }
    Ok(())
}
