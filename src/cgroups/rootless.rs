//! The cgroup of a rootless container. A user can make a cgroup only below one delegated to it (a
//! cgroup2 subtree chowned to the user, as systemd does for `user@UID.service`), cannot join a v1
//! hierarchy, and cannot load a device program (BPF_PROG_TYPE_CGROUP_DEVICE needs CAP_SYS_ADMIN).
//! So a rootless container:
//!
//! - uses its cgroup when the nearest existing directory on its path is writable: freeze, kill,
//!   procs and the v2 limits work there;
//! - otherwise runs without a cgroup, but only when the spec asks for no limit: each limit asked
//!   for is named in the error, none is dropped. `linux.cgroupsPath` given explicitly must be usable.
//!   Without a cgroup the container must have a pid namespace of its own, so that killing its
//!   init kills every process of it (what `delete` and `kill --all` do then).
//!
//! Device rules are not a cgroup program here: the user namespace already refuses mknod, the
//! default nodes and `linux.devices` are bind mounts of the host's nodes, which the user could
//! open on the host anyway. Rules that deny everything or allow something need nothing more;
//! a rule denying one device could not be enforced and is refused.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use crate::error::{Error, Result};

/// The cgroup to use, or None to run without one (see the module doc). `explicit`: the spec gave
/// `linux.cgroupsPath`.
pub fn choose(path: PathBuf, explicit: bool, r: Option<&LinuxResources>, own_pid_ns: bool) -> Result<Option<PathBuf>> {
    let delegated = super::may_make(&path);
    decide(path, explicit, delegated, r, own_pid_ns)
}

fn decide(path: PathBuf, explicit: bool, delegated: bool, r: Option<&LinuxResources>, own_pid_ns: bool) -> Result<Option<PathBuf>> {
    check_devices(r.and_then(|r| r.devices().as_deref()).unwrap_or(&[]))?;
    if explicit || delegated {
        return Ok(Some(path));
    }
    let limits = limits(r);
    if !limits.is_empty() {
        return Err(Error::new(format!(
            "rootless: {} need a cgroup, and none is delegated to this user: cgroup {:?} cannot be made (delegate a cgroup2 subtree and set linux.cgroupsPath to it)",
            limits.join(", "),
            path
        )));
    }
    if !own_pid_ns {
        return Err(Error::new(format!(
            "rootless: without a cgroup (none is delegated to this user: cgroup {path:?} cannot be made) the container needs a pid namespace of its own, or its processes could outlive it"
        )));
    }
    Ok(None)
}

/// The limits `r` asks for, as `linux.resources.FIELD`, devices left out.
fn limits(r: Option<&LinuxResources>) -> Vec<String> {
    let Some(r) = r else { return Vec::new() };
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(r) else {
        return vec!["linux.resources".into()];
    };
    let empty = |v: &serde_json::Value| match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.values().all(serde_json::Value::is_null),
        _ => false,
    };
    fields.iter().filter(|(k, v)| *k != "devices" && !empty(v)).map(|(k, _)| format!("linux.resources.{k}")).collect()
}

/// Refuse a device rule that denies less than everything (see the module doc).
pub fn check_devices(rules: &[LinuxDeviceCgroup]) -> Result<()> {
    use oci_spec::runtime::LinuxDeviceType as T;
    for (i, d) in rules.iter().enumerate() {
        let all = matches!(d.typ(), None | Some(T::A)) && d.major().is_none_or(|m| m == -1) && d.minor().is_none_or(|m| m == -1);
        if !d.allow() && !all {
            return Err(Error::new(format!(
                "rootless: linux.resources.devices[{i}]: denying one device needs a cgroup device program, which a user cannot load"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).expect("resources")
    }

    #[test]
    fn limits_are_named() {
        let r = resources(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 1000000}, "pids": {"limit": 10}}));
        assert_eq!(limits(Some(&r)), ["linux.resources.memory", "linux.resources.pids"]);
        let r = resources(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}));
        assert!(limits(Some(&r)).is_empty());
        assert!(limits(None).is_empty());
    }

    #[test]
    fn no_cgroup_without_a_delegated_one_only_when_no_limit_is_asked_for() {
        let p = PathBuf::from("/sys/fs/cgroup/testudo/c1");
        assert_eq!(decide(p.clone(), false, false, None, true).expect("none"), None);
        let r = resources(serde_json::json!({"pids": {"limit": 10}}));
        let e = decide(p.clone(), false, false, Some(&r), true).expect_err("pids").to_string();
        assert!(e.starts_with("rootless: linux.resources.pids need a cgroup, and none is delegated to this user"), "{e}");
        assert_eq!(decide(p.clone(), false, true, Some(&r), true).expect("delegated"), Some(p.clone()));
        let e = decide(p.clone(), false, false, None, false).expect_err("no pid ns").to_string();
        assert!(e.contains("needs a pid namespace of its own"), "{e}");
        assert_eq!(decide(p.clone(), true, false, None, true).expect("explicit"), Some(p));
    }

    #[test]
    fn device_rules() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
        ]))
        .expect("rules");
        assert!(check_devices(&rules).is_ok());
        let rules: Vec<LinuxDeviceCgroup> =
            serde_json::from_value(serde_json::json!([{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rw"}])).expect("rules");
        assert_eq!(
            check_devices(&rules).expect_err("one device").to_string(),
            "rootless: linux.resources.devices[0]: denying one device needs a cgroup device program, which a user cannot load"
        );
    }
}
