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
//! elsewhere. Resources become v1 writes in `limits`; this file finds the hierarchies and
//! makes, joins and removes the directories.

mod limits;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, CGROUP_SUPER_MAGIC};

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
/// four times, ~90 syscalls each) for the v2 hierarchy it is asked with first; `only` is set
/// before that where it is set at all.
fn joinable(v2_root: &Path) -> Vec<(&'static str, PathBuf)> {
    static FOUND: std::sync::OnceLock<(PathBuf, Vec<(&'static str, PathBuf)>)> = std::sync::OnceLock::new();
    let find = || {
        let offered = std::fs::read_to_string(v2_root.join("cgroup.controllers")).unwrap_or_default();
        let mut found: Vec<(&'static str, PathBuf)> = Vec::new();
        // A process limited to some (`only`) looks at those alone.
        for c in CONTROLLERS.into_iter().filter(|c| ONLY.get().is_none_or(|o| o.contains(c))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_v2_host_has_no_v1_directories() {
        assert!(Legacy::of(Path::new("/sys/fs/cgroup"), Path::new("/sys/fs/cgroup/a/b")).dirs.is_empty());
    }
}
