//! `mounts[]` of config.json: one mount at a time, onto an fd resolved inside
//! the root. Bind mounts use the new mount API (`open_tree` → `mount_setattr` → `move_mount`):
//! the flags are set on the detached copy before it becomes visible, recursive attributes
//! (`rro`, `rnosuid`, …) and idmaps come for free, and no path string is involved at the
//! destination. Fresh filesystems (proc, tmpfs, …) are one `mount(2)` onto the fd's magic link.
//! What each option word means to the kernel is `options`.

mod options;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Context, Error, Result};
use crate::linux::inroot::{self, Kind};
use crate::linux::procfs;
pub use options::{option_names, parse, Options};

/// Everything a mount needs besides the mount itself.
pub struct Ctx<'a> {
    pub root: &'a OwnedFd,
    /// SELinux context for `context=`, from linux.mountLabel.
    pub label: Option<&'a str>,
    /// On a hybrid host, the container's cgroups for a `cgroup` mount (linux::cgroupfs).
    pub hybrid: Option<&'a crate::linux::cgroupfs::Hybrid<'a>>,
    /// The host's cgroup2 mount, when the container has no cgroup namespace of its own: a
    /// cgroup mount is then a bind of it (see `fresh`).
    pub cgroup2_host: Option<&'a Path>,
    /// `sandbox`: a bind source P0 did not open (a user's: open_tree of a host mount needs
    /// privilege there) is opened here, in our own mount namespace, without following a symlink
    /// (`nofollow`): it may be a path a job could write.
    pub nofollow: bool,
}

/// Perform one `mounts[]` entry. `source` is already absolute for bind mounts (made so at create).
/// `tree` is the entry's detached mount, when P0 had to make it (see `detached_bind`).
pub fn mount(ctx: &Ctx, m: &Mount, tree: Option<&OwnedFd>) -> Result<()> {
    let dest = m.destination();
    let what = format!("mount {dest:?}");
    let opts = parse(m.typ().as_deref(), m.options().as_deref().unwrap_or(&[]));
    // CVE-2019-19921 family: a rootfs whose /proc (/sys, /dev) is a symlink gets a procfs
    // (sysfs, device tmpfs) wherever the link leads, in or out of the rootfs, past the checks
    // made on the real paths (masked paths, the verified procfs, /dev nodes). Refused, as runc
    // refuses a proc or sysfs mount on anything but an ordinary directory.
    let kernel_fs = matches!(m.typ().as_deref(), Some("proc" | "sysfs"));
    if (kernel_fs || ["proc", "sys", "dev"].iter().any(|d| Path::new(d) == inroot::relative(dest)))
        && inroot::through_symlink(ctx.root, dest).map_err(|e| Error::sys(format!("{what}: resolve"), e))?
    {
        // runc's words, which clients match: `filesystem "proc" must be mounted on ordinary directory`.
        let fs = m.typ().as_deref().unwrap_or("bind");
        return Err(Error::new(format!(
            "{what}: filesystem {fs:?} must be mounted on ordinary directory: the destination in the rootfs is (or passes through) a symlink"
        )));
    }
    if opts.bind {
        bind(ctx, m, &opts, tree).context(what)
    } else {
        fresh(ctx, m, &opts).context(what)
    }
}

/// A mount at /dev asked read-only, as it is to be mounted first: writable, so that the device
/// nodes, links, the /dev/pts mount point and the console can be made in it; `init` makes it
/// read-only after them, as runc does (finalizeRootfs). None for any other mount.
pub fn dev_writable_first(m: &Mount) -> Option<Mount> {
    let opts = m.options().as_deref().unwrap_or(&[]);
    let last = opts.iter().rev().find(|o| *o == "ro" || *o == "rw");
    if inroot::relative(m.destination()) != Path::new("dev") || last.map(String::as_str) != Some("ro") {
        return None;
    }
    let mut m = m.clone();
    m.set_options(Some(opts.iter().filter(|o| *o != "ro").cloned().collect()));
    Some(m)
}

/// Whether a bind mount is idmapped: its own uidMappings/gidMappings, or "idmap"/"ridmap".
pub fn wants_idmap(m: &Mount) -> bool {
    let o = parse(m.typ().as_deref(), m.options().as_deref().unwrap_or(&[]));
    o.bind && (o.idmap.is_some() || m.uid_mappings().is_some())
}

/// A bind mount's detached tree with every attribute set, made by P0 for an idmapped mount: the
/// source's superblock belongs to the host's user namespace, and only a process privileged there
/// may idmap it (from a container's user namespace mount_setattr is EPERM). Init inherits the fd
/// and only attaches it.
///
/// `opened`: the source, already opened by the caller (`nofollow`, for a sandbox's binds: made
/// here with the caller's credentials, and never looked up by path again). `userns`: None for a
/// bind that is not idmapped.
pub fn detached_bind(m: &Mount, opened: Option<&OwnedFd>, userns: Option<&OwnedFd>) -> Result<OwnedFd> {
    let mut o = parse(m.typ().as_deref(), m.options().as_deref().unwrap_or(&[]));
    if userns.is_some() {
        // Mappings without "idmap" or "ridmap" still ask for an idmapped mount (non-recursive).
        o.idmap = Some(o.idmap.unwrap_or(false));
    }
    let source = checked_source(m, &o)?;
    let tree = match opened {
        Some(fd) => open_tree(fd.as_raw_fd(), Path::new(""), o.recursive),
        None => open_tree(libc::AT_FDCWD, source, o.recursive),
    }
    .with_context(|| format!("open_tree {source:?}"))?;
    set_attributes(&tree, &o, userns.map(|u| u.as_raw_fd()))?;
    Ok(tree)
}

fn checked_source<'m>(m: &'m Mount, o: &Options) -> Result<&'m Path> {
    // The kernel ignores data on a bind mount. Filesystem data (`mode=755`, `size=1k`: clients
    // copy a tmpfs's options onto binds) is dropped as runc drops it; a bare word we do not know
    // may be a misspelled flag ("nosiud") that would weaken the mount silently, and is refused.
    let unknown: Vec<&String> = o.data.iter().filter(|d| !d.contains('=')).collect();
    if !unknown.is_empty() {
        return Err(Error::new(format!("unsupported bind mount options {unknown:?}")));
    }
    m.source().as_deref().ok_or_else(|| Error::new("bind mount without source"))
}

fn bind(ctx: &Ctx, m: &Mount, o: &Options, prepared: Option<&OwnedFd>) -> Result<()> {
    let source = checked_source(m, o)?;
    let own;
    let tree = match prepared {
        Some(t) => t,
        None if ctx.nofollow => {
            let fd = crate::linux::nofollow::open("bind source", source, OFlag::O_PATH)?;
            own = open_tree(fd.as_raw_fd(), Path::new(""), o.recursive).with_context(|| format!("open_tree {source:?}"))?;
            set_attributes(&own, o, None)?;
            &own
        }
        None => {
            own = open_tree(libc::AT_FDCWD, source, o.recursive).with_context(|| format!("open_tree {source:?}"))?;
            set_attributes(&own, o, None)?;
            &own
        }
    };
    // The tree made by P0, not the path: under a directory the container's root may not search
    // (a 0700 home), only the caller could look the source up.
    let is_dir = nix::sys::stat::fstat(tree).with_context(|| format!("source {source:?}"))?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let kind = if is_dir { Kind::Dir } else { Kind::File };
    let dest = inroot::ensure(ctx.root, m.destination(), kind, if is_dir { 0o755 } else { 0o644 })?;
    move_mount(tree, &dest).context("move_mount")
}

/// A copy of the mount at `source` (a host path), with `o`'s attributes, onto `dest` inside the
/// root: a mount of the host's that the container sees as it is (see `fresh`).
fn attach(ctx: &Ctx, source: &Path, dest: &Path, o: &Options) -> Result<()> {
    let tree = open_tree(libc::AT_FDCWD, source, o.recursive).with_context(|| format!("open_tree {source:?}"))?;
    set_attributes(&tree, o, None)?;
    let dest = inroot::ensure(ctx.root, dest, Kind::Dir, 0o755)?;
    move_mount(&tree, &dest).context("move_mount")
}

/// Attach a detached mount tree onto an fd.
pub fn move_mount(tree: &OwnedFd, dest: &OwnedFd) -> std::result::Result<(), Errno> {
    let empty = c"";
    // SAFETY: both fds are owned and live; the empty paths are NUL-terminated C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            dest.as_raw_fd(),
            empty.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// A detached copy of the mount at `path` (relative to `dirfd`; "" with AT_EMPTY_PATH for an fd).
pub fn open_tree(dirfd: RawFd, path: &Path, recursive: bool) -> std::result::Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    // SAFETY: open_tree reads the NUL-terminated path and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) };
    Errno::result(fd)?;
    // SAFETY: a new fd from the kernel, owned by nobody else.
    Ok(unsafe { procfs::own(fd as RawFd) })
}

/// A detached copy (recursive) of the entry `name` of directory `dirfd`, which must not be a
/// symlink.
pub fn open_tree_nofollow(dirfd: RawFd, name: &std::ffi::CStr) -> std::result::Result<OwnedFd, Errno> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32 | libc::AT_SYMLINK_NOFOLLOW as u32;
    // SAFETY: open_tree reads the NUL-terminated name and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, name.as_ptr(), flags) };
    Errno::result(fd)?;
    // SAFETY: a new fd from the kernel, owned by nobody else.
    Ok(unsafe { procfs::own(fd as RawFd) })
}

/// mount_setattr on an fd (AT_EMPTY_PATH), optionally recursive.
pub fn setattr(fd: &OwnedFd, set: u64, clr: u64, propagation: u64, userns: Option<RawFd>, recursive: bool) -> std::result::Result<(), Errno> {
    let mut attr = libc::mount_attr { attr_set: set, attr_clr: clr, propagation, userns_fd: userns.map_or(0, |f| f as u64) };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: `attr` is a valid mount_attr that outlives the call; its size is passed with it.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, fd.as_raw_fd(), c"".as_ptr(), flags, &mut attr as *mut libc::mount_attr, std::mem::size_of::<libc::mount_attr>())
    };
    Errno::result(r).map(drop)
}

fn set_attributes(tree: &OwnedFd, o: &Options, userns: Option<RawFd>) -> Result<()> {
    if let Some(recursive) = o.idmap {
        let ns = userns.ok_or_else(|| Error::new("an idmap mount needs uidMappings/gidMappings or a new user namespace"))?;
        setattr(tree, libc::MOUNT_ATTR_IDMAP, 0, 0, Some(ns), recursive).context("idmap")?;
    }
    if o.attr_set != 0 || o.attr_clr != 0 {
        setattr(tree, o.attr_set, o.attr_clr, 0, None, false).context("mount_setattr")?;
    }
    if o.rec_set != 0 || o.rec_clr != 0 {
        setattr(tree, o.rec_set, o.rec_clr, 0, None, true).context("mount_setattr recursive")?;
    }
    if let Some((p, rec)) = o.propagation {
        setattr(tree, 0, 0, p.bits(), None, rec).context("propagation")?;
    }
    Ok(())
}

fn fresh(ctx: &Ctx, m: &Mount, o: &Options) -> Result<()> {
    let typ = m.typ().as_deref().ok_or_else(|| Error::new("mount without type"))?;
    // Docker and containerd ask for type "cgroup" even on v2 hosts; the container's cgroup lives in
    // the v2 hierarchy, so that is what it gets.
    let fstype = if typ == "cgroup" { "cgroup2" } else { typ };
    if o.idmap.is_some() {
        return Err(Error::new(format!("idmap is only supported on bind mounts, not {typ}")));
    }
    if o.copyup && typ != "tmpfs" {
        return Err(Error::new(format!("tmpcopyup is only supported on tmpfs, not {typ}")));
    }
    if let Some(h) = ctx.hybrid.filter(|_| typ == "cgroup") {
        return crate::linux::cgroupfs::mount(ctx, h, m, o);
    }
    // A fresh cgroup2 mount from the host's cgroup namespace applies its mount options to the
    // hierarchy's root, for the whole host: it would turn the host's nsdelegate or
    // favordynmods off, and since 6.x it always takes cgroup_threadgroup_rwsem for writing,
    // which waits for an RCU grace period (measured: ~2-18 ms per container). The same mount as
    // a bind of the host's changes nothing and costs no grace period. Under a cgroup namespace the
    // fresh mount shows the namespace's root, which is what the container must see, and applies
    // no root options.
    if let Some(host) = ctx.cgroup2_host.filter(|_| matches!(typ, "cgroup" | "cgroup2") && o.data.is_empty()) {
        return attach(ctx, host, m.destination(), o);
    }
    let mut data = o.data.clone();
    // proc, sysfs and cgroup2 keep the policy's labels (genfscon). An mqueue superblock is made with
    // its IPC namespace, so it already has its labels when mounted, and context= is EINVAL: the
    // caller relabels its root after the mount instead, as runc does (`spawn::init`).
    let label = ctx.label.filter(|_| !matches!(fstype, "proc" | "sysfs" | "cgroup2" | "bind"));
    if let Some(label) = label.filter(|_| fstype != "mqueue") {
        data.push(format!("context={label:?}"));
    }
    let dest = inroot::ensure(ctx.root, m.destination(), Kind::Dir, 0o755)?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
    let data = data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    match nix::mount::mount(Some(source.as_path()), procfs::fd_path(dest.as_raw_fd()).as_str(), Some(fstype), o.flags, data) {
        // The kernel refuses a filesystem stacked on the root of a mount of the same superblock:
        // a rootless spec's /sys is an rbind of the host's, and on a pure cgroup v2 host its
        // /sys/fs/cgroup is the host's cgroup2 mount, locked in place (a user namespace cannot
        // unmount it). A tmpfs between the two hides the host's hierarchy and takes the fresh one.
        Err(nix::errno::Errno::EBUSY) if fstype == "cgroup2" => {
            let under = procfs::fd_path(dest.as_raw_fd());
            nix::mount::mount(
                Some("tmpfs"),
                under.as_str(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=755,size=4k"),
            )
            .context("cgroup2: tmpfs over the host's cgroup mount")?;
            let top = inroot::open(ctx.root, m.destination(), OFlag::O_PATH | OFlag::O_DIRECTORY).context("cgroup2: reopen")?;
            nix::mount::mount(Some(source.as_path()), procfs::fd_path(top.as_raw_fd()).as_str(), Some(fstype), o.flags, data).context(fstype)?;
        }
        r => r.context(fstype)?,
    }
    if o.copyup {
        // `dest` is the directory underneath the new tmpfs; "." does not cross into the mount.
        let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let below = nix::fcntl::openat(&dest, ".", dir, nix::sys::stat::Mode::empty()).context("tmpcopyup: open")?;
        let top = inroot::open(ctx.root, m.destination(), dir).context("tmpcopyup: reopen")?;
        crate::linux::copyup::copy(&below, &top)?;
    }
    let needs_attrs = o.rec_set != 0 || o.rec_clr != 0 || o.propagation.is_some();
    if needs_attrs {
        // The fd above is the directory underneath; reopen to get the new mount's root.
        let top = inroot::open(ctx.root, m.destination(), OFlag::O_PATH | OFlag::O_DIRECTORY).context("reopen")?;
        let no_flags = Options { attr_set: 0, attr_clr: 0, ..Options::default() };
        let o2 = Options { rec_set: o.rec_set, rec_clr: o.rec_clr, propagation: o.propagation, ..no_flags };
        set_attributes(&top, &o2, None)?;
    }
    Ok(())
}
