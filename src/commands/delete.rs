//! `delete [--force]`: remove a stopped (or created) container; with --force kill a running one
//! first. The cgroup is emptied and removed, poststop hooks run, the state dir goes.

use crate::cgroups::{self, Cgroup};
use crate::cli::Delete;
use crate::commands::{open, Global};
use crate::container::{self, hooks, state, CgroupRecord, Dir, Facts, Status};
use crate::error::{Context, Error, Result};
use crate::linux::pidns;

pub fn run(g: &Global, d: &Delete) -> Result<i32> {
    container::sweep(&g.root)?;
    let (dir, facts) = match open(g, &d.id) {
        Ok(x) => x,
        // The containerd shim always sends `delete --force` after a normal delete.
        Err(_) if d.force && !g.root.join(&d.id).exists() => return Ok(0),
        Err(e) => return Err(e),
    };
    let Some(facts) = facts else {
        // A create that died before writing its state (we hold its lock, so it is not running).
        clean_up_creating(&dir)?;
        return Ok(0);
    };
    let status = super::status(&dir, Some(&facts));
    if matches!(status, Status::Running | Status::Paused) && !d.force {
        return Err(Error::new(format!("cannot delete container {:?}: it is {} (use --force)", d.id, status.as_str())));
    }
    destroy(&dir, &facts)?;
    Ok(0)
}

/// What a create that did not finish (failed, or killed at any point) leaves, from what it
/// recorded: the processes in its cgroup (an init may be waiting on an exec.fifo nobody will
/// write), the cgroup if the create made it, and the directory. A failure is reported and the
/// directory kept, so that another delete can finish the job.
pub fn clean_up_creating(dir: &Dir) -> Result<()> {
    match state::read_cgroup(&dir.file(container::CGROUP_FILE))? {
        Some(CgroupRecord { path, unit: Some(unit), made: true, user_bus, .. }) => cgroups::systemd::destroy(&path, &unit, user_bus.as_deref())?,
        // A unit the create did not start (one of that name was there): not this container's.
        Some(CgroupRecord { unit: Some(_), .. }) => {}
        Some(r) => {
            Cgroup::at(r.path).destroy_recorded(r.made, r.v1_made.as_deref())?;
            cgroups::remove_parents(&r.parents)?;
        }
        None => {}
    }
    dir.remove()
}

/// A rootless container without a cgroup has a pid namespace of its own (`cgroups::rootless`):
/// its init killed, the kernel kills every other process in it.
fn kill_init(facts: &Facts) -> Result<()> {
    let Some(fd) = container::init::signal(facts, libc::SIGKILL)? else { return Ok(()) };
    pidns::wait_exit(&fd, std::time::Duration::from_secs(10)).with_context(|| format!("container {:?}", facts.id))
}

/// Kill whatever is left, remove the cgroup if the container made it, run poststop hooks, remove
/// the state.
pub fn destroy(dir: &Dir, facts: &Facts) -> Result<()> {
    let record = state::read_cgroup(&dir.file(container::CGROUP_FILE))?;
    match (&facts.cgroup, record) {
        (Some(path), Some(CgroupRecord { unit: Some(unit), made: true, user_bus, .. })) => cgroups::systemd::destroy(path, &unit, user_bus.as_deref())?,
        (Some(_), Some(CgroupRecord { unit: Some(_), .. })) => {}
        // A container created before cgroup.json was recorded made its cgroup.
        (Some(path), r) => {
            Cgroup::at(path.clone()).destroy_recorded(r.as_ref().is_none_or(|r| r.made), r.as_ref().and_then(|r| r.v1_made.as_deref()))?;
            cgroups::remove_parents(r.as_ref().map_or(&[], |r| &r.parents[..]))?;
        }
        (None, _) => kill_init(facts)?,
    }
    if let Ok(bytes) = std::fs::read(dir.file(container::CONFIG_FILE)) {
        // Only the hooks are read: the rest of the saved spec (a sandbox's is 30 KB, most of it
        // its seccomp profile) is skipped, not built.
        #[derive(serde::Deserialize)]
        struct Saved {
            hooks: Option<oci_spec::runtime::Hooks>,
        }
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("saved config.json: {e}")))?;
        if let Some(poststop) = saved.hooks.as_ref().and_then(|h| h.poststop().as_ref()) {
            let state = super::state_json(facts, Status::Stopped).to_string();
            hooks::run_all_warn("poststop", Some(poststop), state.as_bytes());
        }
    }
    dir.remove()?;
    crate::log::debug(|| format!("delete: container {:?} removed", facts.id));
    Ok(())
}
