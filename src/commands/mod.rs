//! One thin file per command. Each returns the process exit code or the one error of the command.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
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
        frozen: crate::cgroups::Cgroup::at(f.cgroup.clone()).frozen(),
    };
    container::state::derive(f.pid_start, &o)
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
    let facts = if dir.file(container::STATE_FILE).exists() { Some(dir.facts()?) } else { None };
    // No state file: being created, or deleted since it was opened (delete renames the directory
    // away first, so its path is gone then).
    if facts.is_none() && !dir.file("").exists() {
        return Err(container::not_found(&dir.id));
    }
    Ok((dir, facts))
}

/// runc's state object (what go-runc and containerd parse).
pub fn state_json(f: &Facts, status: Status) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": f.oci_version,
        "id": f.id,
        "pid": if status == Status::Stopped { 0 } else { f.pid },
        "status": status.as_str(),
        "bundle": f.bundle,
        "rootfs": f.rootfs,
        "created": f.created,
        "owner": "",
        "annotations": f.annotations,
    })
}
