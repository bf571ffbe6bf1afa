//! `linux.namespaces`: which namespaces to create, which to join by path, and the combinations
//! the kernel would refuse, checked before anything is cloned.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType as T, Spec};

use crate::error::{Context, Error, Result};

pub const ALL: [T; 8] = [T::User, T::Pid, T::Network, T::Ipc, T::Uts, T::Mount, T::Cgroup, T::Time];

pub fn flag(t: T) -> CloneFlags {
    match t {
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of the namespace's file under /proc/<pid>/ns.
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Pid => "pid",
        T::Network => "net",
        T::Ipc => "ipc",
        T::Uts => "uts",
        T::Mount => "mnt",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
}

/// A namespace to join: opened in the parent, before the clone, and checked to be a namespace of
/// the right type (so a regular file or a wrong namespace is a create-time error).
pub struct Join {
    pub kind: T,
    pub path: PathBuf,
    pub fd: OwnedFd,
    /// The path names the namespace testudo itself runs in (e.g. `/proc/1/ns/net`): joining it is
    /// sharing the host's, whatever the spec says.
    pub host: bool,
}

pub struct Plan {
    /// Namespaces to create.
    pub new: CloneFlags,
    /// Namespaces to join, user first (joining it changes what the others may do).
    pub join: Vec<Join>,
}

impl Plan {
    pub fn has(&self, t: T) -> bool {
        self.new.contains(flag(t)) || self.join.iter().any(|j| j.kind == t)
    }
    pub fn creates(&self, t: T) -> bool {
        self.new.contains(flag(t))
    }
    pub fn joins(&self, t: T) -> bool {
        self.join.iter().any(|j| j.kind == t)
    }
    /// A namespace of the container's own: new, or joined by path and not the host's.
    pub fn private(&self, t: T) -> bool {
        self.creates(t) || self.join.iter().any(|j| j.kind == t && !j.host)
    }
}

pub fn plan(list: &[LinuxNamespace]) -> Result<Plan> {
    let mut new = CloneFlags::empty();
    let mut join = Vec::new();
    let mut seen = CloneFlags::empty();
    for ns in list {
        let f = flag(ns.typ());
        if seen.contains(f) {
            return Err(Error::new(format!("namespace {:?} listed twice", proc_name(ns.typ()))));
        }
        seen |= f;
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                let fd = nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .with_context(|| format!("{} namespace {p:?}", proc_name(ns.typ())))?;
                let what = || format!("{} namespace {p:?}", proc_name(ns.typ()));
                check_type(&fd, ns.typ()).with_context(what)?;
                let host = is_ours(&fd, ns.typ()).with_context(what)?;
                join.push(Join { kind: ns.typ(), path: p.clone(), fd, host });
            }
            _ => new |= f,
        }
    }
    join.sort_by_key(|j| j.kind != T::User);
    Ok(Plan { new, join })
}

// NS_GET_NSTYPE from linux/nsfs.h: _IO(0xb7, 0x3).
nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

fn check_type(fd: &OwnedFd, t: T) -> Result<()> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value; a non-nsfs fd gets ENOTTY.
    let got = unsafe { ns_get_nstype(fd.as_raw_fd()) }.map_err(|e| Error::sys("not a namespace file", e))?;
    if got != flag(t).bits() {
        return Err(Error::new(format!("is not a {} namespace", proc_name(t))));
    }
    Ok(())
}

/// Whether `fd` is the namespace of type `t` this process is in (same nsfs inode).
fn is_ours(fd: &OwnedFd, t: T) -> Result<bool> {
    let ours = format!("/proc/self/ns/{}", proc_name(t));
    let a = nix::sys::stat::fstat(fd).context("stat")?;
    let b = nix::sys::stat::stat(ours.as_str()).with_context(|| format!("stat {ours}"))?;
    Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
}

/// The filesystems a fresh mount of which belongs to the mounting process's namespace of a type:
/// the kernel lets only a holder of CAP_SYS_ADMIN in the user namespace that owns that namespace
/// mount them (`fc->user_ns` is the owner of the pid, net or ipc namespace).
fn owned_by_namespace(fstype: &str) -> Option<T> {
    match fstype {
        "proc" => Some(T::Pid),
        "sysfs" => Some(T::Network),
        "mqueue" => Some(T::Ipc),
        _ => None,
    }
}

/// The combinations the kernel would refuse (or that would change the host), as create errors
/// that name the field, instead of an errno from deep inside the container's setup.
pub fn check(plan: &Plan, spec: &Spec) -> Result<()> {
    // Joining the runtime's own mount namespace would set up the rootfs, and pivot_root, in the
    // host's: every process whose root is "/" would be moved into the container's root.
    if plan.has(T::Mount) && !plan.private(T::Mount) {
        return Err(Error::new("linux.namespaces: the mount namespace joined by path is the host's; a container needs a mount namespace of its own"));
    }
    if !plan.private(T::Uts) {
        for (field, set) in [("hostname", spec.hostname()), ("domainname", spec.domainname())] {
            if set.as_deref().is_some_and(|h| !h.is_empty()) && plan.has(T::Uts) {
                return Err(Error::new(format!("{field}: the uts namespace joined by path is the host's; setting it would change the host's {field}")));
            }
        }
    }
    // With a user namespace, a proc, sysfs or mqueue mount needs the pid, net or ipc namespace to
    // be owned by it: only a new one is (a joined user namespace may own a joined one: the kernel
    // decides). A shared host ipc namespace without a user namespace is allowed: the mqueue mount
    // then shows the host's queues, which sharing the namespace makes reachable with mq_open(3)
    // anyway (runc and Docker's --ipc=host do the same).
    if plan.has(T::User) {
        for m in spec.mounts().iter().flatten() {
            let Some(t) = m.typ().as_deref().and_then(owned_by_namespace) else { continue };
            if plan.creates(t) || (plan.joins(T::User) && plan.joins(t)) {
                continue;
            }
            let how = if plan.joins(t) { "joined by path" } else { "shared with the host" };
            return Err(Error::new(format!(
                "mount {:?}: a {} mount in a user namespace needs a new {} namespace (the {} namespace is {how}, and the kernel lets only its owner mount it)",
                m.destination(),
                m.typ().as_deref().unwrap_or(""),
                proc_name(t),
                proc_name(t)
            )));
        }
    }
    Ok(())
}

pub fn setns(j: &Join) -> Result<()> {
    nix::sched::setns(&j.fd, flag(j.kind)).with_context(|| format!("join {} namespace {:?}", proc_name(j.kind), j.path))
}
