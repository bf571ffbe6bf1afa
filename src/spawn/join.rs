//! P1, the join stage: join namespaces given by path, create the user namespace (P0 writes its
//! maps), unshare the rest, set time namespace offsets, then fork init into all of it. A pid or
//! time namespace only applies to children, which is why this stage exists at all; without paths
//! or a time namespace P0 clones straight into init with every CLONE_NEW* flag.

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType as T;

use crate::error::{Context, Result};
use crate::linux::fds;
use crate::linux::namespaces::{self, Plan};
use crate::spawn::clone::{self, Forked};
use crate::spawn::init;
use crate::spawn::parent::{self, Prepared};
use crate::spawn::sync::{Channel, Msg};

pub fn needed(ns: &Plan) -> bool {
    !ns.join.is_empty() || ns.creates(T::Time)
}

pub fn run(p: &Prepared, chan: &Channel) -> Result<()> {
    for j in &p.ns.join {
        namespaces::setns(j)?;
    }
    // A namespace fd of the host's is not for init to hold (a container process could reopen it
    // through /proc/1/fd and setns into it).
    fds::close_all_but(p.preserve_fds, &parent::child_fds(p, chan))?;
    let mut rest = p.ns.new;
    rest.remove(namespaces::flag(T::Cgroup));
    if p.ns.creates(T::User) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).context("unshare user namespace")?;
        chan.send(&Msg::MapIds)?;
        chan.expect_ack()?;
        rest.remove(CloneFlags::CLONE_NEWUSER);
    }
    nix::sched::unshare(rest).context("unshare namespaces")?;
    if p.ns.creates(T::Time) {
        write_time_offsets(p)?;
    }
    match clone::clone3(&clone::Args { flags: libc::CLONE_PARENT as u64, cgroup: None, pidfd: false })? {
        Forked::Child => clone::child_main(chan, || init::run(p, chan, false)),
        Forked::Parent { pid, .. } => chan.send(&Msg::Pid(pid)),
    }
}

/// `linux.timeOffsets`, written before any process enters the new time namespace.
fn write_time_offsets(p: &Prepared) -> Result<()> {
    let Some(offsets) = p.spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else { return Ok(()) };
    let mut text = String::new();
    for (clock, o) in &offsets {
        text.push_str(&format!("{clock} {} {}\n", o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)));
    }
    std::fs::write("/proc/self/timens_offsets", text).context("write timens_offsets")
}
