//! One thin file per command. Each returns the process exit code or the one error of the command.

pub mod check;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod kill;
pub mod list;
pub mod pause;
pub mod profile;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

use crate::container::{self, Dir, Facts, Status};
use crate::error::Result;

/// Global flags every command may need.
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// Without privilege over the host (`container::rootless`).
    pub rootless: bool,
    /// The global `--policy FILE` (`audit::policy`).
    pub policy: Option<PathBuf>,
}

/// The derived status of a container (see `container::state`).
pub fn status(dir: &Dir, facts: Option<&Facts>) -> Status {
    let Some(f) = facts else {
        return container::state::derive(0, &container::state::Observed { have_state: false, proc: None, fifo: false, frozen: false });
    };
    let o = container::state::Observed {
        have_state: true,
        proc: container::state::proc_facts(f.pid),
        fifo: dir.file(container::FIFO_FILE).exists(),
        frozen: f.cgroup.as_ref().is_some_and(|p| crate::cgroups::Cgroup::at(p.clone()).frozen()),
    };
    container::state::derive(f.pid_start, &o)
}

/// The container's cgroup, for a command that cannot do without one (`verb`).
pub fn cgroup(f: &Facts, verb: &str) -> Result<crate::cgroups::Cgroup> {
    let path = f.cgroup.clone().ok_or_else(|| {
        crate::error::Error::new(format!("container {:?} has no cgroup (rootless, and no cgroup was delegated to the user): {verb} needs one", f.id))
    })?;
    Ok(crate::cgroups::Cgroup::at(path))
}

/// Open (and lock) a container and read its facts; one still being created has none yet.
pub fn open(g: &Global, id: &str) -> Result<(Dir, Option<Facts>)> {
    facts_of(Dir::open(&g.root, id)?)
}

/// The same without the lock, for readers.
pub fn peek(g: &Global, id: &str) -> Result<(Dir, Option<Facts>)> {
    facts_of(Dir::peek(&g.root, id)?)
}

fn facts_of(dir: Dir) -> Result<(Dir, Option<Facts>)> {
    match dir.facts() {
        Ok(facts) => Ok((dir, Some(facts))),
        // Delete renames the directory away before it empties it: once the path is gone, so is
        // the container, also for a read that lost the race to delete.
        Err(_) if !dir.file("").exists() => Err(container::not_found(&dir.id)),
        // No state file under a path still there: a container being created.
        Err(_) if !dir.file(container::STATE_FILE).exists() => Ok((dir, None)),
        Err(e) => Err(e),
    }
}

/// runc's state object (what go-runc and containerd parse), its keys in runc's order (its
/// containerState struct): a JSON parser does not care, a client reading the text may.
#[derive(serde::Serialize)]
pub struct ContainerState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    pub id: &'a str,
    pid: i32,
    status: &'static str,
    bundle: &'a std::path::Path,
    rootfs: &'a std::path::Path,
    created: &'a str,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    annotations: &'a std::collections::HashMap<String, String>,
    /// "" as runc's `state` has it; `list` names the state directory's owner.
    pub owner: String,
}

impl std::fmt::Display for ContainerState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

pub fn state_json(f: &Facts, status: Status) -> ContainerState<'_> {
    ContainerState {
        oci_version: &f.oci_version,
        id: &f.id,
        pid: if status == Status::Stopped { 0 } else { f.pid },
        status: status.as_str(),
        bundle: &f.bundle,
        rootfs: &f.rootfs,
        created: &f.created,
        annotations: &f.annotations,
        owner: String::new(),
    }
}
