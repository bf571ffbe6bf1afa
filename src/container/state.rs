//! `state.json` holds facts, never a status: the init's pid and its start time, the bundle, the
//! cgroup, when it was created. The status is derived from facts each time it is asked for:
//!
//! - no state.json yet                                   ⇒ creating
//! - init gone, a zombie, or its start time differs      ⇒ stopped (a recycled pid never looks alive)
//! - exec.fifo present                                   ⇒ created
//! - the cgroup is frozen                                ⇒ paused
//! - otherwise                                           ⇒ running

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Facts {
    pub id: String,
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat: the init's start time in clock ticks since boot.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The cgroup v2 directory, absolute on the host; None for a rootless container that has
    /// none (`cgroups::rootless`).
    pub cgroup: Option<PathBuf>,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// The container's cgroup as `create` records it before it makes anything (`cgroup.json`), so a
/// create killed at any point leaves `delete` what it needs to clean up: the v2 path, and whether
/// this container made the directory (then it removes it) or found it empty (then it leaves it).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CgroupRecord {
    pub path: PathBuf,
    pub made: bool,
    /// The systemd unit (`--systemd-cgroup`) that owns the cgroup: delete stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The socket of the user's bus whose systemd manager owns `unit` (rootless); none, in
    /// records before it existed too: the system bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_bus: Option<String>,
    /// The parent directories this create made for the cgroup (in v2 and each v1 hierarchy,
    /// deepest first): delete removes those that are empty (issue 25 item 6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<PathBuf>,
    /// The v1 directories (hybrid host) this create made, also for a v2 cgroup it did not make:
    /// delete removes those and only those (issue 24). None in records from before: all of them
    /// when `made`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_made: Option<Vec<PathBuf>>,
}

pub fn read_cgroup(path: &Path) -> Result<Option<CgroupRecord>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {path:?}")),
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::new(format!("parse {path:?}: {e}"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What /proc says about a pid, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcFacts {
    pub start: u64,
    pub zombie: bool,
}

/// The inputs the status is derived from, gathered so the derivation itself is pure.
pub struct Observed {
    pub have_state: bool,
    pub proc: Option<ProcFacts>,
    pub fifo: bool,
    pub frozen: bool,
}

pub fn derive(facts_start: u64, o: &Observed) -> Status {
    if !o.have_state {
        return Status::Creating;
    }
    match o.proc {
        Some(p) if p.start == facts_start && !p.zombie => {}
        _ => return Status::Stopped,
    }
    if o.fifo {
        Status::Created
    } else if o.frozen {
        Status::Paused
    } else {
        Status::Running
    }
}

/// Start time and zombie flag of `pid`, or None when it does not exist.
pub fn proc_facts(pid: i32) -> Option<ProcFacts> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<ProcFacts> {
    let fields = crate::linux::procfs::stat_fields(stat)?;
    // starttime is field 22.
    let state = fields.first()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcFacts { start, zombie: *state == "Z" || *state == "X" })
}

pub fn read(path: &Path) -> Result<Facts> {
    let bytes = std::fs::read(path).with_context(|| format!("read {path:?}"))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("parse {path:?}: {e}")))
}

/// Write to a temporary file in the same directory, fsync-free (the state dir is on tmpfs in
/// practice and a torn write is what the rename prevents), then rename over the old file.
pub fn write(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| Error::new(format!("encode {path:?}: {e}")))?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).with_context(|| format!("write {tmp:?}"))?;
    f.write_all(&bytes).with_context(|| format!("write {tmp:?}"))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename {tmp:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(proc: Option<ProcFacts>, fifo: bool, frozen: bool) -> Observed {
        Observed { have_state: true, proc, fifo, frozen }
    }
    const ALIVE: Option<ProcFacts> = Some(ProcFacts { start: 42, zombie: false });

    #[test]
    fn cgroup_records_old_and_new() {
        // Before the user's bus: a unit is the system bus's.
        let old: CgroupRecord =
            serde_json::from_str(r#"{"path":"/sys/fs/cgroup/system.slice/testudo-c1.scope","made":true,"unit":"testudo-c1.scope"}"#).expect("old");
        assert_eq!((old.unit.as_deref(), old.user_bus), (Some("testudo-c1.scope"), None));
        let cgroupfs: CgroupRecord = serde_json::from_str(r#"{"path":"/sys/fs/cgroup/testudo/c1","made":false}"#).expect("cgroupfs");
        assert_eq!((cgroupfs.unit, cgroupfs.user_bus), (None, None));
        let system = CgroupRecord { path: "/x".into(), made: true, unit: Some("u.scope".into()), user_bus: None, parents: Vec::new(), v1_made: None };
        assert_eq!(serde_json::to_string(&system).expect("json"), r#"{"path":"/x","made":true,"unit":"u.scope"}"#, "as before");
        let user = CgroupRecord { user_bus: Some("/run/user/2001/bus".into()), ..system };
        let json = serde_json::to_string(&user).expect("json");
        assert_eq!(json, r#"{"path":"/x","made":true,"unit":"u.scope","user_bus":"/run/user/2001/bus"}"#);
        let back: CgroupRecord = serde_json::from_str(&json).expect("back");
        assert_eq!(back.user_bus.as_deref(), Some("/run/user/2001/bus"));
    }

    #[test]
    fn status_from_facts() {
        assert_eq!(derive(42, &Observed { have_state: false, proc: None, fifo: true, frozen: false }), Status::Creating);
        assert_eq!(derive(42, &obs(ALIVE, true, false)), Status::Created);
        assert_eq!(derive(42, &obs(ALIVE, false, false)), Status::Running);
        assert_eq!(derive(42, &obs(ALIVE, false, true)), Status::Paused);
        assert_eq!(derive(42, &obs(None, true, false)), Status::Stopped);
    }

    #[test]
    fn recycled_pid_or_zombie_is_stopped() {
        let recycled = Some(ProcFacts { start: 43, zombie: false });
        assert_eq!(derive(42, &obs(recycled, false, false)), Status::Stopped);
        let zombie = Some(ProcFacts { start: 42, zombie: true });
        assert_eq!(derive(42, &obs(zombie, false, false)), Status::Stopped);
    }

    #[test]
    fn stat_parsing_survives_odd_comm() {
        let line = "123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(ProcFacts { start: 98765, zombie: false }));
        let z = "9 (sh) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0";
        assert_eq!(parse_stat(z), Some(ProcFacts { start: 555, zombie: true }));
        let me = proc_facts(std::process::id() as i32).expect("self");
        assert!(me.start > 0 && !me.zombie);
    }
}
