//! `linux.memoryPolicy` (spec 1.3): the NUMA policy of the container's init, set with
//! set_mempolicy(2) before execve and inherited by everything it starts.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType as F, MemoryPolicyModeType as M};

use crate::error::{Error, Result};
use crate::linux::affinity;

/// The mode|flags word, the node mask and its length in bits as set_mempolicy wants them.
struct Policy {
    mode: i32,
    mask: Vec<libc::c_ulong>,
}

fn policy(p: &LinuxMemoryPolicy) -> Result<Policy> {
    let what = "linux.memoryPolicy";
    let nodes = match p.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(n) => affinity::list(&format!("{what}.nodes"), n)?,
        None => Vec::new(),
    };
    let mode = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    // The kernel's rules, checked here so that they are create errors with names.
    match p.mode() {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => return Err(Error::new(format!("{what}: mode {} takes no nodes", p.mode()))),
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave if nodes.is_empty() => {
            return Err(Error::new(format!("{what}: mode {} needs nodes", p.mode())))
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut mask = vec![0; nodes.iter().max().map_or(0, |&n| n / bits + 1)];
    for n in nodes {
        mask[n / bits] |= 1 << (n % bits);
    }
    Ok(Policy { mode: mode | flags, mask })
}

pub fn check(p: &LinuxMemoryPolicy) -> Result<()> {
    policy(p).map(drop)
}

pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    let pol = policy(p)?;
    // maxnode counts one more than the bits the kernel reads (mm/mempolicy.c get_nodes).
    let maxnode = (pol.mask.len() * libc::c_ulong::BITS as usize + 1) as libc::c_ulong;
    let mask = if pol.mask.is_empty() { std::ptr::null() } else { pol.mask.as_ptr() };
    // SAFETY: set_mempolicy reads maxnode-1 bits from `mask`, which holds exactly that many.
    if unsafe { libc::syscall(libc::SYS_set_mempolicy, pol.mode, mask, if pol.mask.is_empty() { 0 } else { maxnode }) } < 0 {
        return Err(crate::error::last_os(format!("linux.memoryPolicy: set_mempolicy {}", p.mode())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(json: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(json).expect("memoryPolicy")
    }

    #[test]
    fn modes_flags_and_nodes() {
        let p = policy(&mp(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,2-3,65", "flags": ["MPOL_F_STATIC_NODES"]}))).expect("bind");
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!(p.mask, [0b1101, 0b10]);
        assert!(policy(&mp(serde_json::json!({"mode": "MPOL_LOCAL"}))).is_ok_and(|p| p.mask.is_empty()));
        let e = |j| policy(&mp(j)).err().map(|e| e.to_string());
        assert_eq!(e(serde_json::json!({"mode": "MPOL_BIND"})), Some("linux.memoryPolicy: mode MPOL_BIND needs nodes".into()));
        assert_eq!(e(serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "1"})), Some("linux.memoryPolicy: mode MPOL_DEFAULT takes no nodes".into()));
    }
}
