//! cgroup v1 hierarchies on a hybrid host. The container always lives in the v2 hierarchy
//! (freeze, kill, procs, device programs); on a host where the v2 hierarchy is mounted at
//! /sys/fs/cgroup/unified and a resource controller is still bound to a v1 hierarchy at
//! /sys/fs/cgroup/<controller>, the container also gets a directory there, at the same relative
//! path, and the resources of that controller are written in its v1 files — what runc does on
//! such a host, and what containerd and Docker read their stats from. The set of directories is
//! derived from the v2 path and the mounts each time, never stored. On a pure v2 host (cgroup2 at
//! /sys/fs/cgroup) there are none and this module costs one comparison.
//!
//! What the v2 code accepts is written here too (`resources::check` runs first), so one
//! config.json means the same on both kinds of host; what only v1 can express (swappiness, leaf
//! weights, net_cls, net_prio) is accepted where the host has the v1 controller, and refused
//! elsewhere.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, CGROUP_SUPER_MAGIC};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::devices::Rule;
use crate::error::{Context, Error, Result};

/// The controllers a container joins in v1 when v2 lacks them. freezer is left out: the v2
/// hierarchy's cgroup.freeze does its work. devices is joined (and written) so that the
/// container's devices.list tells the truth; the v2 device program enforces the same rules.
/// net_cls and net_prio exist only in v1.
const CONTROLLERS: [&str; 9] = ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "net_cls", "net_prio"];
const V1_ROOT: &str = "/sys/fs/cgroup";
/// Where a hybrid host mounts the name=systemd hierarchy.
const SYSTEMD_HIERARCHY: &str = "systemd";

/// Where `controller` is bound to a v1 hierarchy on this host (with the v2 hierarchy at
/// `v2_root` not offering it), the hierarchy's mount point.
fn v1_mount(v2_root: &Path, controller: &str) -> Option<PathBuf> {
    if v2_root == Path::new(V1_ROOT) {
        return None;
    }
    let offered = std::fs::read_to_string(v2_root.join("cgroup.controllers")).unwrap_or_default();
    v1_mount_beside(&offered, controller)
}

fn v1_mount_beside(v2_offered: &str, controller: &str) -> Option<PathBuf> {
    if v2_offered.split_whitespace().any(|o| o == controller) {
        return None;
    }
    let mount = Path::new(V1_ROOT).join(controller);
    statfs(&mount).is_ok_and(|s| s.filesystem_type() == CGROUP_SUPER_MAGIC).then_some(mount)
}

/// The hierarchies a container of this process may join: (controller, the hierarchy's real
/// mount point), co-mounted controllers once. Found once per process (a create asked for it
/// four times, ~90 syscalls each) for the v2 hierarchy it is asked with first.
fn joinable(v2_root: &Path) -> Vec<(&'static str, PathBuf)> {
    static FOUND: std::sync::OnceLock<(PathBuf, Vec<(&'static str, PathBuf)>)> = std::sync::OnceLock::new();
    let find = || {
        let offered = std::fs::read_to_string(v2_root.join("cgroup.controllers")).unwrap_or_default();
        let mut found: Vec<(&'static str, PathBuf)> = Vec::new();
        for c in CONTROLLERS {
            let Some(mount) = v1_mount_beside(&offered, c) else { continue };
            // Rootless: a user cannot make directories in the host's v1 hierarchies, and is not
            // joined to them; the limits of their controllers are then refused by v2, which
            // lacks those controllers (cgroups::rootless).
            if nix::unistd::access(&mount, nix::unistd::AccessFlags::W_OK).is_err() {
                continue;
            }
            // "cpu" and "cpuacct" are often links to one "cpu,cpuacct" hierarchy (`dir` finds
            // either name in it).
            let real = std::fs::canonicalize(&mount).unwrap_or(mount);
            if !found.iter().any(|(_, r)| *r == real) {
                found.push((c, real));
            }
        }
        found
    };
    match FOUND.get() {
        Some((root, found)) if root == v2_root => found.clone(),
        Some(_) => find(),
        None => FOUND.get_or_init(|| (v2_root.to_path_buf(), find())).1.clone(),
    }
}

/// The controllers this process's containers join in v1, where not all (`only`).
static ONLY: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();

/// From now on this process's containers join only these v1 controllers' hierarchies, and not
/// systemd's named one: a sandbox's job, whose limits are memory, pids and cpu, whose device
/// rules the v2 program enforces, and whom no client reads stats of from v1. On this hybrid host
/// that is 3 directories to make, join, mount and remove instead of 9 (~0.3 ms of a sandbox's
/// 9 ms). What a container made is recorded (`missing`), so `delete` removes exactly that.
pub fn only(controllers: &'static [&'static str]) {
    let _ = ONLY.set(controllers);
}

/// Whether this host has `controller` in a v1 hierarchy that containers join: what only v1 can
/// express (memory.swappiness, blkio leaf weights, net_cls, net_prio) is accepted then.
pub fn bound(controller: &str) -> bool {
    super::mountpoint().is_ok_and(|root| v1_mount(&root, controller).is_some())
}

/// The container's v1 directories, one per hierarchy (co-mounted controllers share one).
#[derive(Debug, Default)]
pub struct Legacy {
    pub dirs: Vec<(&'static str, PathBuf)>,
}

impl Legacy {
    /// The v1 directories of the container whose v2 cgroup is `cg`, below the v2 hierarchy
    /// mounted at `v2_root`.
    pub fn of(v2_root: &Path, cg: &Path) -> Legacy {
        if v2_root == Path::new(V1_ROOT) {
            return Legacy::default();
        }
        let Ok(rel) = cg.strip_prefix(v2_root) else { return Legacy::default() };
        let only = ONLY.get();
        let mut dirs: Vec<(&'static str, PathBuf)> =
            joinable(v2_root).into_iter().filter(|(c, _)| only.is_none_or(|o| o.contains(c))).map(|(c, real)| (c, real.join(rel))).collect();
        if only.is_some() {
            return Legacy { dirs };
        }
        // systemd's own hierarchy (no controller) on a hybrid host: systemd mirrors its units
        // there, and what reads it (systemd-cgls, a systemd inside the container, cgroup v1
        // tools) takes a process's unit from it. Without joining it the container's processes
        // stay in the caller's (docker.service's, containerd's) cgroup there. runc joins it too.
        // Unlike a controller's hierarchy, systemd delegates this one to a user with the v2
        // subtree (it chowns user@UID.service's directory in both), so a rootless container
        // whose place there is its user's joins it as well.
        let named = Path::new(V1_ROOT).join(SYSTEMD_HIERARCHY);
        if statfs(&named).is_ok_and(|s| s.filesystem_type() == CGROUP_SUPER_MAGIC) && super::may_make(&named.join(rel)) {
            dirs.push(("name=systemd", named.join(rel)));
        }
        Legacy { dirs }
    }

    /// (hierarchy name under /sys/fs/cgroup, the container's directory in it).
    pub fn hierarchies(&self) -> Vec<(String, PathBuf)> {
        let name = |d: &Path| d.strip_prefix(V1_ROOT).ok().and_then(|r| r.iter().next()).map(|n| n.to_string_lossy().into_owned());
        self.dirs.iter().filter_map(|(_, d)| name(d).map(|n| (n, d.clone()))).collect()
    }

    pub fn has(&self, controller: &str) -> bool {
        self.dir(controller).is_some()
    }

    pub fn dir(&self, controller: &str) -> Option<&Path> {
        let comounted =
            |d: &Path| d.strip_prefix(V1_ROOT).ok().and_then(|r| r.iter().next()).is_some_and(|h| h.to_string_lossy().split(',').any(|c| c == controller));
        self.dirs.iter().find(|(c, d)| *c == controller || comounted(d)).map(|(_, d)| d.as_path())
    }

    /// Make the directories. A new cpuset cgroup starts with no cpus and no mems, and a process
    /// cannot join it until both are set (ENOSPC): each level below the hierarchy's root that
    /// has none gets its parent's, whether this create made it or found it so (a pod cgroup a
    /// client made with mkdir alone), as runc does.
    pub fn create(&self) -> Result<()> {
        for (c, dir) in &self.dirs {
            std::fs::create_dir_all(dir).with_context(|| format!("create cgroup {dir:?}"))?;
            if *c != "cpuset" {
                continue;
            }
            let mount = mount_of(dir).ok_or_else(|| Error::new(format!("cgroup {dir:?} is not in a v1 hierarchy")))?;
            let mut levels: Vec<&Path> = dir.ancestors().take_while(|d| d.starts_with(&mount) && *d != mount).collect();
            levels.reverse();
            for d in levels {
                let parent = d.parent().unwrap_or(d);
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let p = d.join(f);
                    if !std::fs::read_to_string(&p).with_context(|| format!("read {p:?}"))?.trim().is_empty() {
                        continue;
                    }
                    let v = std::fs::read_to_string(parent.join(f)).with_context(|| format!("read {:?}", parent.join(f)))?;
                    write(&p, v.trim())?;
                }
            }
        }
        Ok(())
    }

    /// The directories that do not exist yet: those `create` will make, recorded first so that
    /// delete removes them, and only them, also in a cgroup the container did not make.
    pub fn missing(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).filter(|d| !d.exists()).collect()
    }

    /// `tasks` of every directory, opened here on the host: the container's first process
    /// writes "0" to each as its first step (`enter`), before it can fork, so every process of
    /// the container is in them. The kernel checks the opener's credentials, so this works from
    /// inside a new user namespace too.
    ///
    /// `tasks`, not cgroup.procs: a write to cgroup.procs takes the kernel's global
    /// cgroup_threadgroup_rwsem for writing, and the first such writer after a quiet spell waits
    /// for an RCU grace period (rcu_sync_enter): 7–14 ms measured on this host, more than the
    /// rest of a container's setup. A thread that moves itself through `tasks` ("0") skips that
    /// lock (cgroup_procs_write_start: a single thread that is `current` cannot exit or exec
    /// under the move): 0.02 ms. For a single-threaded process, which the writer always is
    /// (the runtime is single-threaded until exec), moving its one thread is moving the process.
    pub fn open_tasks(&self) -> Result<Vec<OwnedFd>> {
        self.dirs.iter().map(|(_, d)| tasks_file(d)).collect()
    }

    /// Remove the directories (`only`: those of them create made, as recorded; None: all), with
    /// the sub-cgroups made in them (`exec --cgroup`, the container's own); the caller has
    /// emptied the container's v2 cgroup, which holds every process these do.
    pub fn remove(&self, only: Option<&[PathBuf]>) -> Result<()> {
        for (_, d) in &self.dirs {
            if only.is_none_or(|o| o.contains(d)) {
                super::remove_tree(d)?;
            }
        }
        Ok(())
    }

    /// Every write the resources of v1-bound controllers ask for, as (file, value), in order.
    /// `devices`: the device rules when they are to be written (see `resources::apply`).
    pub fn plan(&self, r: &LinuxResources, live: bool, devices: Option<&[Rule]>) -> Result<Vec<(PathBuf, String)>> {
        let mut out = Vec::new();
        if let (Some(rules), Some(d)) = (devices, self.dir("devices")) {
            super::devices::v1_writes(rules, d, live, &mut out);
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
            super::rt::apply(d, &mount, c.realtime_runtime(), c.realtime_period())?;
        }
        Ok(())
    }
}

/// The mount point of the v1 hierarchy `dir` is in (/sys/fs/cgroup/<hierarchy>).
fn mount_of(dir: &Path) -> Option<PathBuf> {
    let first = dir.strip_prefix(V1_ROOT).ok()?.iter().next()?;
    Some(Path::new(V1_ROOT).join(first))
}

/// Where the v1 freezer hierarchy has the cgroup at `rel` (or, when it has none, its nearest
/// ancestor) frozen, that cgroup: runc refuses such a cgroupsPath. testudo freezes with v2 and
/// does not join the v1 freezer, but a client that froze it there meant it to be frozen.
pub fn frozen(rel: &Path) -> Option<PathBuf> {
    let mount = Path::new(V1_ROOT).join("freezer");
    if !statfs(&mount).is_ok_and(|s| s.filesystem_type() == CGROUP_SUPER_MAGIC) {
        return None;
    }
    let dir = mount.join(rel);
    let nearest = dir.ancestors().take_while(|d| *d != mount).find(|d| d.exists())?;
    let state = std::fs::read_to_string(nearest.join("freezer.state")).ok()?;
    (state.trim() != "THAWED").then(|| nearest.to_path_buf())
}

/// The `tasks` file of v1 directory `dir`, opened to join it (`enter`).
pub fn tasks_file(dir: &Path) -> Result<OwnedFd> {
    let p = dir.join("tasks");
    nix::fcntl::open(&p, OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("open {p:?}"))
}

/// The calling process, single-threaded, joins its v1 directories (see `Legacy::open_tasks`).
/// A second thread would stay behind, outside the container's limits: refused, not assumed
/// (procfs counts a process's threads in the link count of its `task` directory, plus 2).
pub fn enter(tasks: &[OwnedFd]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let threads = nix::sys::stat::stat("/proc/thread-self/..").map(|s| s.st_nlink.saturating_sub(2)).context("count our threads")?;
    if threads != 1 {
        return Err(Error::new(format!("join the container's cgroup v1 directories: {threads} threads, and `tasks` moves only one")));
    }
    for fd in tasks {
        // SAFETY: fd is an open descriptor owned by the caller; the buffer is a valid 1-byte slice.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(crate::error::last_os("join the container's cgroup v1 directories"));
        }
    }
    Ok(())
}

fn write(file: &Path, value: &str) -> Result<()> {
    std::fs::write(file, value).with_context(|| format!("write {value:?} to {file:?}"))
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
        let rules = super::super::devices::rules(
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
        super::super::devices::v1_writes(&rules, &d, false, &mut w);
        // A wildcard deny of mknod alone is one line per type; the later deny of 1:9 undoes it.
        assert_eq!(names(&w), ["devices.deny=a", "devices.allow=c 1:3 rwm", "devices.allow=b 8:* r"]);
        let mut w = Vec::new();
        super::super::devices::v1_writes(&rules, &d, true, &mut w);
        assert_eq!(names(&w), ["devices.allow=c 1:3 rwm", "devices.allow=b 8:* r", "devices.deny=c 1:5 rwm"], "live: allows first, then what went");
        let mut w = Vec::new();
        super::super::devices::v1_writes(&[rule(true, None, None, None, 7)], &d, true, &mut w);
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

    #[test]
    fn a_pure_v2_host_has_no_v1_directories() {
        assert!(Legacy::of(Path::new("/sys/fs/cgroup"), Path::new("/sys/fs/cgroup/a/b")).dirs.is_empty());
    }
}
