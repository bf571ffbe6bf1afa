//! A user's job and the caller's supplementary groups. They are credentials on the host: in
//! the job's user namespace they read as 65534 (unmapped), but every file the job is given
//! still lets them in by group. Only setgroups(2) drops them, and the kernel allows it in a
//! user namespace only when a privileged process wrote its gid map (a user could otherwise
//! shed a group that a file denies access to by group, CVE-2018-7169's "negative" groups). As
//! podman does, when /etc/subgid grants the caller a range and `newgidmap` (package uidmap) is
//! installed, the helper writes the gid map with one subordinate gid in it, which leaves
//! setgroups allowed, and the job's process drops them all (`creds::become_user`, no
//! additionalGids). Otherwise they are kept, and said so: once on stderr, and in the report.

use serde_json::{json, Value};

use crate::linux::subid::{self, Kind};

/// The caller's supplementary groups the job keeps, and why.
pub struct Kept {
    pub gids: Vec<u32>,
    why: String,
}

impl Kept {
    /// The stderr line.
    pub fn warning(&self) -> String {
        let gids: Vec<String> = self.gids.iter().map(u32::to_string).collect();
        format!(
            "testudo: sandbox: the job keeps the caller's supplementary groups {} ({}): they read as 65534 inside, and still grant their access to what the job is given",
            gids.join(","),
            self.why
        )
    }
}

/// The gid map of a user's job, whose gid `job` is the caller's `gid`, and the groups it keeps
/// (None: the caller has none besides its own gid, or they are dropped).
pub fn gid_map(job: u64, gid: u32) -> (Value, Option<Kept>) {
    let own = json!({"containerID": job, "hostID": gid, "size": 1});
    let mut others: Vec<u32> = nix::unistd::getgroups().unwrap_or_default().into_iter().map(|g| g.as_raw()).filter(|g| *g != gid).collect();
    others.sort_unstable();
    others.dedup();
    if others.is_empty() {
        // Nothing to drop: the map the user may write itself, no helper run.
        return (json!([own]), None);
    }
    let why = match (subid::range(Kind::Gid), subid::find(Kind::Gid)) {
        // One subordinate gid, as a gid inside that nothing owns: enough for newgidmap to leave
        // setgroups allowed.
        (Some((start, _)), Ok(_)) => return (json!([own, {"containerID": job + 1, "hostID": start, "size": 1}]), None),
        (None, _) => "no range for the caller in /etc/subgid".to_string(),
        (Some(_), Err(_)) => "newgidmap (package uidmap) not found".to_string(),
    };
    (json!([own]), Some(Kept { gids: others, why }))
}
