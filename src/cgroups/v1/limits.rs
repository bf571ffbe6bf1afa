//! The resources of the controllers still bound to v1 (`Legacy`), as writes to their v1 files:
//! v2's limits in v1's names and units (-1 for "no limit"), in the order v1 needs (memory+swap
//! never below the memory limit, the CFS period before the quota), and what only v1 can express.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::{mount_of, write, Legacy};
use crate::cgroups::devices::Rule;
use crate::error::{Context, Error, Result};

impl Legacy {
    /// Every write the resources of v1-bound controllers ask for, as (file, value), in order.
    /// `devices`: the device rules when they are to be written (see `resources::apply`).
    pub fn plan(&self, r: &LinuxResources, live: bool, devices: Option<&[Rule]>) -> Result<Vec<(PathBuf, String)>> {
        let mut out = Vec::new();
        if let (Some(rules), Some(d)) = (devices, self.dir("devices")) {
            crate::cgroups::devices::v1_writes(rules, d, live, &mut out);
        }
        if let Some(n) = r.network() {
            if let (Some(id), Some(d)) = (n.class_id(), self.dir("net_cls")) {
                out.push((d.join("net_cls.classid"), id.to_string()));
            }
            if let Some(d) = self.dir("net_prio") {
                for p in n.priorities().iter().flatten() {
                    out.push((d.join("net_prio.ifpriomap"), format!("{} {}", p.name(), p.priority())));
                }
            }
        }
        if let (Some(m), Some(d)) = (r.memory(), self.dir("memory")) {
            memory(m, d, live, &mut out)?;
        }
        if let Some(c) = r.cpu() {
            if let Some(d) = self.dir("cpu") {
                cpu(c, d, &mut out);
            }
            if let Some(d) = self.dir("cpuset") {
                for (f, v) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        out.push((d.join(f), v.to_string()));
                    }
                }
            }
        }
        if let (Some(p), Some(d)) = (r.pids(), self.dir("pids")) {
            pids(p, d, &mut out);
        }
        if let (Some(b), Some(d)) = (r.block_io(), self.dir("blkio")) {
            blkio(b, d, &mut out);
        }
        Ok(out)
    }

    pub fn apply(&self, r: &LinuxResources, live: bool, devices: Option<&[Rule]>) -> Result<()> {
        for (file, value) in self.plan(r, live, devices)? {
            write(&file, &value)?;
        }
        // Realtime bandwidth reads and may raise the parents' budgets first (see `rt`).
        if let (Some(c), Some(d)) = (r.cpu(), self.dir("cpu")) {
            let mount = mount_of(d).ok_or_else(|| Error::new(format!("cgroup {d:?} is not in a v1 hierarchy")))?;
            crate::cgroups::rt::apply(d, &mount, c.realtime_runtime(), c.realtime_period())?;
        }
        Ok(())
    }
}

/// v1 takes -1 for "no limit" where v2 takes "max"; 0 leaves a value alone, as in runc.
fn set(out: &mut Vec<(PathBuf, String)>, d: &Path, file: &str, v: Option<i64>) {
    if let Some(v) = v.filter(|&v| v != 0) {
        out.push((d.join(file), if v < 0 { "-1".into() } else { v.to_string() }));
    }
}

fn current(file: &Path) -> Result<i64> {
    let t = std::fs::read_to_string(file).with_context(|| format!("read {file:?}"))?;
    t.trim().parse().map_err(|_| Error::new(format!("{file:?}: not a number: {:?}", t.trim())))
}

/// The spec's swap is v1's memory+swap limit, which must never be below the memory limit: when
/// it grows it is written first, when it shrinks after the limit (runc's order).
fn memory(m: &LinuxMemory, d: &Path, live: bool, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let limit = m.limit().filter(|&l| l != 0);
    let swap = m.swap().filter(|&s| s != 0);
    if live && m.check_before_update() == Some(true) {
        if let Some(l) = limit.filter(|&l| l > 0) {
            let usage = current(&d.join("memory.usage_in_bytes"))?;
            if usage >= l {
                return Err(Error::new(format!("linux.resources.memory.limit: rejecting {l}, below the current usage {usage}")));
            }
        }
    }
    if let (Some(s), Some(l)) = (swap, limit) {
        if s > 0 && (l < 0 || s < l) {
            return Err(Error::new(format!("linux.resources.memory.swap: memory+swap limit {s} is below the memory limit {l}")));
        }
    }
    let memsw = d.join("memory.memsw.limit_in_bytes");
    if swap.is_some() && !memsw.exists() {
        return Err(Error::new(format!("linux.resources.memory.swap: {memsw:?} does not exist (swap accounting is off on this host)")));
    }
    let swap_first = match swap {
        Some(s) if s < 0 => true,
        Some(s) => current(&memsw).is_ok_and(|cur| cur >= 0 && s > cur),
        None => false,
    };
    if swap_first {
        set(out, d, "memory.memsw.limit_in_bytes", swap);
    }
    set(out, d, "memory.limit_in_bytes", limit);
    if !swap_first {
        set(out, d, "memory.memsw.limit_in_bytes", swap);
    }
    set(out, d, "memory.soft_limit_in_bytes", m.reservation());
    // runc writes the switch only to turn the OOM killer off; false leaves the kernel's default.
    if m.disable_oom_killer() == Some(true) {
        out.push((d.join("memory.oom_control"), "1".into()));
    }
    if let Some(s) = m.swappiness() {
        out.push((d.join("memory.swappiness"), s.to_string()));
    }
    Ok(())
}

fn cpu(c: &LinuxCpu, d: &Path, out: &mut Vec<(PathBuf, String)>) {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        out.push((d.join("cpu.shares"), s.to_string()));
    }
    // The period first: a quota is checked against the period in force.
    if let Some(p) = c.period().filter(|&p| p != 0) {
        out.push((d.join("cpu.cfs_period_us"), p.to_string()));
    }
    set(out, d, "cpu.cfs_quota_us", c.quota());
    if let Some(b) = c.burst() {
        out.push((d.join("cpu.cfs_burst_us"), b.to_string()));
    }
    if let Some(i) = c.idle() {
        out.push((d.join("cpu.idle"), i.to_string()));
    }
}

fn pids(p: &LinuxPids, d: &Path, out: &mut Vec<(PathBuf, String)>) {
    match p.limit() {
        0 => {}
        n if n < 0 => out.push((d.join("pids.max"), "max".into())),
        n => out.push((d.join("pids.max"), n.to_string())),
    }
}

fn blkio(b: &LinuxBlockIo, d: &Path, out: &mut Vec<(PathBuf, String)>) {
    // With BFQ the weight files carry its prefix (runc does the same).
    let weight = if d.join("blkio.bfq.weight").exists() { "blkio.bfq.weight" } else { "blkio.weight" };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        out.push((d.join(weight), w.to_string()));
    }
    // Leaf weights are CFQ's; a kernel without the files fails the write, by name.
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        out.push((d.join("blkio.leaf_weight"), w.to_string()));
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|&w| w != 0) {
            out.push((d.join(format!("{weight}_device")), format!("{}:{} {w}", wd.major(), wd.minor())));
        }
        if let Some(w) = wd.leaf_weight().filter(|&w| w != 0) {
            out.push((d.join("blkio.leaf_weight_device"), format!("{}:{} {w}", wd.major(), wd.minor())));
        }
    }
    let throttles = [
        ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            out.push((d.join(file), format!("{}:{} {}", t.major(), t.minor(), t.rate())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(files: &[(&str, &str, &str)]) -> Legacy {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("testudo-v1-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut l = Legacy::default();
        for c in ["memory", "cpu", "cpuset", "pids", "blkio", "devices", "net_cls", "net_prio"] {
            std::fs::create_dir_all(root.join(c)).expect("mkdir");
            l.dirs.push((c, root.join(c)));
        }
        for (c, f, v) in files {
            std::fs::write(root.join(c).join(f), v).expect("write");
        }
        l
    }

    fn names(w: &[(PathBuf, String)]) -> Vec<String> {
        w.iter().map(|(f, v)| format!("{}={v}", f.file_name().and_then(|n| n.to_str()).unwrap_or("?"))).collect()
    }

    #[test]
    fn every_v2_resource_has_its_v1_file() {
        let l = legacy(&[("memory", "memory.memsw.limit_in_bytes", "9223372036854771712\n")]);
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1000, "swap": 3000, "reservation": 500}, "cpu": {"shares": 512, "quota": -1, "period": 50000, "cpus": "0", "mems": "0"},
                "pids": {"limit": 20}, "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]}}"#,
        )
        .expect("json");
        let w = names(&l.plan(&r, false, None).expect("plan"));
        assert_eq!(
            w,
            [
                "memory.limit_in_bytes=1000",
                "memory.memsw.limit_in_bytes=3000",
                "memory.soft_limit_in_bytes=500",
                "cpu.shares=512",
                "cpu.cfs_period_us=50000",
                "cpu.cfs_quota_us=-1",
                "cpuset.cpus=0",
                "cpuset.mems=0",
                "pids.max=20",
                "blkio.weight=300",
                "blkio.throttle.read_bps_device=8:0 100",
            ]
        );
    }

    #[test]
    fn what_only_v1_expresses_and_the_device_rules() {
        let l = legacy(&[]);
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"swappiness": 10}, "blockIO": {"leafWeight": 200, "weightDevice": [{"major": 8, "minor": 0, "leafWeight": 300}]},
                "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}"#,
        )
        .expect("json");
        let rules = crate::cgroups::devices::rules(
            &serde_json::from_str::<Vec<_>>(r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#)
                .expect("devices"),
            &[],
        )
        .expect("rules");
        let w = names(&l.plan(&r, false, Some(&rules[..2])).expect("plan"));
        assert_eq!(
            w,
            [
                "devices.deny=a",
                "devices.allow=c 1:3 rw",
                "net_cls.classid=1048577",
                "net_prio.ifpriomap=eth0 5",
                "memory.swappiness=10",
                "blkio.leaf_weight=200",
                "blkio.leaf_weight_device=8:0 300",
            ]
        );
    }

    #[test]
    fn device_rules_in_v1_form() {
        let l = legacy(&[("devices", "devices.list", "c 1:3 rwm\nc 1:5 rwm\n")]);
        let d = l.dir("devices").expect("devices").to_path_buf();
        let rule = |allow, kind, major, minor, access| Rule { allow, kind, major, minor, access };
        let rules = [
            rule(false, None, None, None, 7),
            rule(true, Some(2), Some(1), Some(3), 7),
            rule(true, Some(2), Some(1), Some(9), 7),
            rule(false, None, None, None, 1),
            rule(true, Some(1), Some(8), None, 2),
            rule(false, Some(2), Some(1), Some(9), 7),
        ];
        let mut w = Vec::new();
        crate::cgroups::devices::v1_writes(&rules, &d, false, &mut w);
        // A wildcard deny of mknod alone is one line per type; the later deny of 1:9 undoes it.
        assert_eq!(names(&w), ["devices.deny=a", "devices.allow=c 1:3 rwm", "devices.allow=b 8:* r"]);
        let mut w = Vec::new();
        crate::cgroups::devices::v1_writes(&rules, &d, true, &mut w);
        assert_eq!(names(&w), ["devices.allow=c 1:3 rwm", "devices.allow=b 8:* r", "devices.deny=c 1:5 rwm"], "live: allows first, then what went");
        let mut w = Vec::new();
        crate::cgroups::devices::v1_writes(&[rule(true, None, None, None, 7)], &d, true, &mut w);
        assert_eq!(names(&w), ["devices.allow=a"]);
    }

    #[test]
    fn memory_plus_swap_never_drops_below_the_limit() {
        // Growing past the current memsw: memsw first.
        let l = legacy(&[("memory", "memory.memsw.limit_in_bytes", "2000\n")]);
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 4000, "swap": 8000}}"#).expect("json");
        assert_eq!(names(&l.plan(&r, true, None).expect("plan")), ["memory.memsw.limit_in_bytes=8000", "memory.limit_in_bytes=4000"]);
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 4000, "swap": 1000}}"#).expect("json");
        assert!(l.plan(&r, false, None).is_err(), "memory+swap below memory");
        // No swap accounting: a swap limit is an error, not ignored.
        let l = legacy(&[]);
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 4000, "swap": 8000}}"#).expect("json");
        assert!(l.plan(&r, false, None).expect_err("no memsw").to_string().contains("swap accounting"));
    }
}
