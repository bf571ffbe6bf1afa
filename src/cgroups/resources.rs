//! `linux.resources` → cgroup v2 files. Fail closed: a resource this build cannot enforce is an
//! error at create, never ignored.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

use super::Cgroup;

/// Refuse what is not enforced yet.
pub fn check(r: &LinuxResources) -> Result<()> {
    let unsupported = |what: &str| Err(Error::new(format!("linux.resources.{what} is not supported yet")));
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return unsupported("devices");
    }
    if r.memory().is_some() {
        return unsupported("memory");
    }
    if r.cpu().is_some() {
        return unsupported("cpu");
    }
    if r.pids().is_some() {
        return unsupported("pids");
    }
    if r.block_io().is_some() {
        return unsupported("blockIO");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return unsupported("hugepageLimits");
    }
    if r.network().is_some() {
        return unsupported("network");
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        return unsupported("rdma");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return unsupported("unified");
    }
    Ok(())
}

pub fn apply(_cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    check(r)
}
