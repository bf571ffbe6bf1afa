//! The user's systemd manager (`user@UID.service`), which owns the scopes of a rootless
//! `--systemd-cgroup`. Its cgroup, `/user.slice/user-UID.slice/user@UID.service`, is delegated to
//! the user: its units (the container's scope among them) live below it, in its own slices
//! (`user.slice` by default, as runc picks for a rootless container), and it has only the
//! controllers delegated to it (on a stock systemd: memory pids, plus cpu and io from 252 on; cpuset
//! needs a drop-in for user@.service). Two checks before anything is started:
//!
//! - this process is itself below the manager's cgroup: the container's first process is cloned
//!   straight into the scope (CLONE_INTO_CGROUP), which needs write access to the common ancestor
//!   of our cgroup and the scope's, and the user owns nothing above `user@UID.service` (a login
//!   session's scope is not in there; `systemd-run --user --scope`, as podman arranges, is);
//! - every controller the resources need is delegated, each missing one named with its field.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{Context, Error, Result};

/// The slice a rootless container's scope goes into when cgroupsPath names none.
pub const DEFAULT_SLICE: &str = "user.slice";

/// Both checks (module doc): `manager` is the manager's cgroup (its ControlGroup), `root` the
/// hierarchy's mountpoint.
pub fn check(root: &Path, manager: &str, r: &LinuxResources) -> Result<()> {
    let own = own_cgroup()?;
    inside(manager, &own)?;
    let p = root.join(manager.trim_start_matches('/')).join("cgroup.controllers");
    let offered = std::fs::read_to_string(&p).with_context(|| format!("read {p:?}"))?;
    delegated(manager, &offered, r)
}

/// This process's cgroup v2 path, from /proc/self/cgroup.
fn own_cgroup() -> Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string).ok_or_else(|| Error::new("/proc/self/cgroup has no cgroup v2 line"))
}

fn inside(manager: &str, own: &str) -> Result<()> {
    let base = manager.trim_end_matches('/');
    if own.strip_prefix(base).is_some_and(|rest| rest.starts_with('/')) {
        return Ok(());
    }
    Err(Error::new(format!(
        "rootless --systemd-cgroup: testudo runs in cgroup {own:?}, outside the user's systemd manager's {manager:?}: \
         the container's first process is cloned into its scope there, which needs a cgroup this user owns above both; \
         run testudo under that manager (systemd-run --user --scope testudo ..., as podman does)"
    )))
}

fn delegated(manager: &str, offered: &str, r: &LinuxResources) -> Result<()> {
    let offered: Vec<&str> = offered.split_whitespace().collect();
    for (controller, field) in super::super::resources::needs(r) {
        if !offered.contains(&controller.as_str()) {
            return Err(Error::new(format!(
                "rootless --systemd-cgroup: linux.resources.{field} needs the {controller} controller, which is not delegated to the user's systemd manager \
                 (cgroup {manager:?} has: {}); delegate it with a drop-in for user@.service (Delegate=... {controller}), or drop the limit",
                if offered.is_empty() { "none".to_string() } else { offered.join(" ") }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGER: &str = "/user.slice/user-2001.slice/user@2001.service";

    #[test]
    fn testudo_must_run_below_the_manager() {
        assert!(inside(MANAGER, "/user.slice/user-2001.slice/user@2001.service/app.slice/run-r1.scope").is_ok());
        for own in [
            "/user.slice/user-2001.slice/session-3.scope",
            "/user.slice/user-2001.slice/user@2001.service",
            "/user.slice/user-2001.slice/user@2001.servicex/a",
            "/",
        ] {
            let e = inside(MANAGER, own).expect_err(own).to_string();
            assert!(e.contains("systemd-run --user --scope"), "{e}");
            assert!(e.contains(&format!("runs in cgroup {own:?}")), "{e}");
        }
    }

    #[test]
    fn each_resource_needs_its_controller_delegated() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({"memory": {"limit": 33554432}, "pids": {"limit": 10}})).expect("resources");
        assert!(delegated(MANAGER, "cpu memory pids\n", &r).is_ok());
        let e = delegated(MANAGER, "memory\n", &r).expect_err("no pids").to_string();
        assert_eq!(
            e,
            format!(
                "rootless --systemd-cgroup: linux.resources.pids needs the pids controller, which is not delegated to the user's systemd manager \
                 (cgroup {MANAGER:?} has: memory); delegate it with a drop-in for user@.service (Delegate=... pids), or drop the limit"
            )
        );
        let cpus: LinuxResources = serde_json::from_value(serde_json::json!({"cpu": {"cpus": "0"}})).expect("resources");
        assert!(delegated(MANAGER, "", &cpus).expect_err("cpuset").to_string().contains("linux.resources.cpu.cpus/mems needs the cpuset controller"));
        assert!(delegated(MANAGER, "", &LinuxResources::default()).is_ok(), "no limit, no controller");
    }
}
