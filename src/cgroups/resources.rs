//! `linux.resources` → cgroup v2. Fail closed: what cannot be enforced exactly is an error at
//! create, never ignored. In order: validate (also done by `spec::validate`, without touching
//! the cgroup), enable the controllers the resources need in the ancestors, plan every file write
//! (pure, and unit-tested against a directory standing in for cgroupfs), write them, then compile
//! and attach the device program.

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use crate::error::{Context, Error, Result};

use super::controllers::{self, Need};
use super::v1::Legacy;
use super::{bpf, cpu, devices, hugetlb, io, memory, mountpoint, pids, rdma, unified, Cgroup};

/// (file, value) in the order they are written.
pub type Writes = Vec<(String, String)>;

pub fn check(r: &LinuxResources) -> Result<()> {
    check_on(r, &super::v1::bound)
}

/// `check` on a host where `v1(controller)` says whether that controller is in a v1 hierarchy
/// the container joins (what only v1 can express is written there, see `v1`).
fn check_on(r: &LinuxResources, v1: &dyn Fn(&str) -> bool) -> Result<()> {
    if let Some(m) = r.memory() {
        memory::check(m, v1("memory"))?;
    }
    if let Some(c) = r.cpu() {
        cpu::check(c, v1("cpu"))?;
    }
    if let Some(p) = r.pids() {
        pids::check(p)?;
    }
    if let Some(b) = r.block_io() {
        io::check(b, v1("blkio"))?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::check(h)?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() && !v1("net_cls") {
            return Err(Error::new("linux.resources.network.classID: net_cls exists only in cgroup v1, and this host has no net_cls hierarchy"));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) && !v1("net_prio") {
            return Err(Error::new("linux.resources.network.priorities: net_prio exists only in cgroup v1, and this host has no net_prio hierarchy"));
        }
    }
    if let Some(x) = r.rdma() {
        rdma::check(x)?;
    }
    if let Some(u) = r.unified() {
        unified::check(u)?;
    }
    devices::rules(r.devices().as_deref().unwrap_or(&[]), &[])?;
    Ok(())
}

/// The controllers the resources need, each with the resource that asks for it.
pub fn needs(r: &LinuxResources) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    let mut need = |c: &str, why: &'static str| {
        if !out.iter().any(|(have, _)| have == c) {
            out.push((c.to_string(), why));
        }
    };
    if r.memory().as_ref().is_some_and(memory::needed) {
        need("memory", "memory");
    }
    if let Some(c) = r.cpu() {
        if cpu::needs_cpu(c) {
            need("cpu", "cpu");
        }
        if cpu::needs_cpuset(c) {
            need("cpuset", "cpu.cpus/mems");
        }
    }
    if r.pids().as_ref().is_some_and(pids::needed) {
        need("pids", "pids");
    }
    if r.block_io().as_ref().is_some_and(io::needed) {
        need("io", "blockIO");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        need("hugetlb", "hugepageLimits");
    }
    if r.rdma().as_ref().is_some_and(|x| !x.is_empty()) {
        need("rdma", "rdma");
    }
    for key in r.unified().iter().flat_map(|u| u.keys()) {
        if let Some(c) = unified::controller(key) {
            need(c, "unified");
        }
    }
    out
}

/// Every file write the resources ask for, reading the cgroup where the kernel's current value
/// matters (see memory and cpu).
pub fn plan(r: &LinuxResources, cg: &Cgroup, live: bool) -> Result<Writes> {
    let mut w = Writes::new();
    if let Some(m) = r.memory() {
        memory::plan(m, cg, live, &mut w)?;
    }
    if let Some(c) = r.cpu() {
        cpu::plan(c, cg, &mut w)?;
    }
    if let Some(p) = r.pids() {
        pids::plan(p, &mut w);
    }
    if let Some(b) = r.block_io() {
        io::plan(b, cg, &mut w)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::plan(h, cg, &mut w)?;
    }
    if let Some(x) = r.rdma() {
        rdma::plan(x, &mut w);
    }
    if let Some(u) = r.unified() {
        unified::plan(u, cg, &mut w)?;
    }
    Ok(w)
}

/// Apply `r` to the container's cgroup. `nodes` are `linux.devices` (always allowed). At create
/// (`live` false) the device program is always attached — no rules means deny all but the
/// default nodes, as in runc; on update only when the update carries device rules.
pub fn apply(cg: &Cgroup, r: &LinuxResources, nodes: &[LinuxDevice], live: bool) -> Result<()> {
    check(r)?;
    let legacy = cg.legacy();
    let v2 = without_legacy(r, legacy);
    controllers::enable(&mountpoint()?, &cg.path, &needs(&v2))?;
    for (file, value) in plan(&v2, cg, live)? {
        cg.write(&file, &value)?;
    }
    let rules = if !live || r.devices().is_some() { Some(devices::rules(r.devices().as_deref().unwrap_or(&[]), nodes)?) } else { None };
    legacy.apply(r, live, rules.as_deref())?;
    if let Some(rules) = rules {
        let prog = bpf::load_shared(&devices::program(&rules)?, &mountpoint()?)?;
        bpf::replace(&cg.dir()?, &prog).with_context(|| format!("cgroup {:?}", cg.path))?;
    }
    Ok(())
}

/// The limits of `r` without its device rules, for a rootless container, which cannot load a
/// device program (`cgroups::rootless` checked the rules instead).
pub fn apply_limits(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    check(r)?;
    let legacy = cg.legacy();
    let v2 = without_legacy(r, legacy);
    controllers::enable(&mountpoint()?, &cg.path, &needs(&v2))?;
    for (file, value) in plan(&v2, cg, false)? {
        cg.write(&file, &value)?;
    }
    legacy.apply(r, false, None)
}

/// The resources left for the v2 hierarchy once those of v1-bound controllers are taken out.
fn without_legacy(r: &LinuxResources, legacy: &Legacy) -> LinuxResources {
    let mut v2 = r.clone();
    if legacy.dirs.is_empty() {
        return v2;
    }
    if legacy.has("memory") {
        v2.set_memory(None);
    }
    if legacy.has("pids") {
        v2.set_pids(None);
    }
    if legacy.has("blkio") {
        v2.set_block_io(None);
    }
    if let Some(mut c) = v2.cpu().clone() {
        if legacy.has("cpu") {
            c.set_shares(None).set_quota(None).set_period(None).set_burst(None).set_idle(None);
        }
        if legacy.has("cpuset") {
            c.set_cpus(None).set_mems(None);
        }
        v2.set_cpu(Some(c));
    }
    v2
}

/// A temporary directory with the given files, standing in for a cgroup.
#[cfg(test)]
pub fn testdir(files: &[(&str, &str)]) -> Cgroup {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("testudo-cgroupfs-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, value) in files {
        std::fs::write(dir.join(name), value).expect("write");
    }
    Cgroup::at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("resources json")
    }

    #[test]
    fn each_resource_names_its_controller() {
        let r = res(r#"{"memory": {"limit": 1}, "cpu": {"shares": 2, "cpus": "0"}, "pids": {"limit": 3}, "blockIO": {"weight": 10},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}], "unified": {"memory.high": "5", "cgroup.max.depth": "2", "misc.max": "x 1"}}"#);
        let got: Vec<String> = needs(&r).into_iter().map(|(c, _)| c).collect();
        assert_eq!(got, ["memory", "cpu", "cpuset", "pids", "io", "hugetlb", "misc"]);
        assert!(needs(&res(r#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 0}}"#)).is_empty(), "devices need no controller");
    }

    #[test]
    fn the_whole_plan_in_order() {
        let cg =
            testdir(&[("cpu.max", "max 100000"), ("memory.swap.max", "max"), ("io.weight", "default 100"), ("hugetlb.2MB.max", "max"), ("pids.max", "max")]);
        let r = res(r#"{"memory": {"limit": 1000}, "cpu": {"quota": 5000}, "pids": {"limit": 3}, "blockIO": {"weight": 1000},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "unified": {"pids.max": "4"}}"#);
        let w = plan(&r, &cg, false).expect("plan");
        let files: Vec<&str> = w.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(files, ["memory.max", "cpu.max", "pids.max", "io.weight", "hugetlb.2MB.max", "pids.max"]);
        assert_eq!(w.last().map(|(_, v)| v.as_str()), Some("4"), "unified comes last and wins");
    }

    #[test]
    fn what_v2_cannot_do_is_refused() {
        let v2 = |_: &str| false;
        assert!(check_on(&res(r#"{"network": {"classID": 5}}"#), &v2).is_err());
        assert!(check_on(&res(r#"{"network": {}}"#), &v2).is_ok());
        assert!(check_on(&res(r#"{"devices": [{"allow": true, "access": "rwq"}]}"#), &v2).is_err());
        assert!(check_on(&res(r#"{"unified": {"cgroup.procs": "1"}}"#), &v2).is_err());
        assert!(check_on(&res(r#"{"memory": {"swappiness": 10}}"#), &v2).is_err());
        assert!(check_on(&res(r#"{"blockIO": {"leafWeight": 10}}"#), &v2).is_err());
    }

    #[test]
    fn what_only_v1_can_do_is_accepted_where_v1_has_the_controller() {
        let hybrid = |c: &str| ["memory", "blkio", "net_cls", "net_prio"].contains(&c);
        let r =
            res(r#"{"memory": {"swappiness": 10}, "blockIO": {"leafWeight": 10}, "network": {"classID": 5, "priorities": [{"name": "eth0", "priority": 3}]}}"#);
        assert!(check_on(&r, &hybrid).is_ok());
        let no_net_prio = |c: &str| c != "net_prio";
        assert!(check_on(&r, &no_net_prio).expect_err("net_prio").to_string().contains("no net_prio hierarchy"));
    }
}
