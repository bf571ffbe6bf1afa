//! `linux.namespaces`: which namespaces to create, which to join by path, and the combinations
//! the kernel would refuse, checked before anything is cloned.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType as T};

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
                check_type(&fd, ns.typ()).with_context(|| format!("{} namespace {p:?}", proc_name(ns.typ())))?;
                join.push(Join { kind: ns.typ(), path: p.clone(), fd });
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

pub fn setns(j: &Join) -> Result<()> {
    nix::sched::setns(&j.fd, flag(j.kind)).with_context(|| format!("join {} namespace {:?}", proc_name(j.kind), j.path))
}
