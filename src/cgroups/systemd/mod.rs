//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd makes and owns, so that systemd (the host's cgroup manager) knows about it,
//! accounts it, and does not move or remove it behind the runtime's back.
//!
//! Create, in order:
//! 1. parse cgroupsPath (`unit`), compute the properties: the fixed ones (Delegate, accounting,
//!    DefaultDependencies=no, Slice), the resources (`properties`), the annotations
//!    (`annotations`); every error here comes before anything exists;
//! 2. connect to the bus (no bus is an error naming the socket); rootless, the user's bus, and
//!    check that testudo runs below the user's manager and that it has the controllers the
//!    resources need (`user`);
//! 3. record the unit and its cgroup in cgroup.json, not yet as this container's (`made` false);
//! 4. fork the placeholder and StartTransientUnit with PIDs=[placeholder], wait for the job,
//!    then record the unit as this container's, so that `delete --force` after a create killed
//!    from here on stops it;
//! 5. check that the placeholder is in the scope's cgroup where the slice rules put it (the user's
//!    manager: where the unit's ControlGroup property says, which is then recorded);
//! 6. the caller applies the resources through cgroupfs as with the cgroupfs driver, opens the
//!    scope's directory and clones P1 into it with CLONE_INTO_CGROUP, then drops the
//!    placeholder (killed and reaped).
//!
//! Why a placeholder (see `placeholder`), and not (a) StartTransientUnit with P0's own pid and
//! P0 moving itself back afterwards: P0 would then be in the container's cgroup while it forks
//! hooks (born there, and outliving P0 there), and its allocations would be charged to the
//! container's memory limit; nor (b) the scope adopting P1 after the clone: P1 would run its
//! first steps outside its cgroup, and the sync protocol would need one more step. The cost: one
//! fork of P0 and a transient extra task in the scope (peak three tasks while P1 forks P2, the
//! same as runc's init stages).
//!
//! Delete: kill the processes through cgroup.kill (a scope's stop would SIGTERM them and wait up
//! to 90 s for a pid 1 that ignores it), StopUnit, ResetFailedUnit, remove what is left.
//! Update: SetUnitProperties, then the files.

mod annotations;
mod manager;
mod placeholder;
mod properties;
mod unit;
mod user;

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{Linux, LinuxResources};

use crate::container::{state, CgroupRecord};
use crate::dbus::Value;
use crate::error::{Error, Result};

use super::Cgroup;
use manager::Manager;
pub use placeholder::Placeholder;
use properties::Property;

/// Start the container's unit and return its cgroup, with the placeholder to drop once P1 is
/// in it (None for a slice unit, which systemd starts empty). `record` is cgroup.json.
/// The resources are then applied through cgroupfs, as by the cgroupfs driver. `rootless`: the
/// unit is the user's systemd manager's, on the user's bus (`user`).
pub fn create(record: &Path, linux: &Linux, id: &str, annotations: Option<&HashMap<String, String>>, rootless: bool) -> Result<(Cgroup, Option<Placeholder>)> {
    let none = LinuxResources::default();
    let resources = linux.resources().as_ref().unwrap_or(&none);
    if rootless {
        // No device program: a user cannot load one (cgroups::rootless checks the rules).
        super::rootless::check_devices(resources.devices().as_deref().unwrap_or(&[]))?;
    }
    let (cg, placeholder) = start(record, linux.cgroups_path().as_deref(), id, resources, annotations.unwrap_or(&HashMap::new()), rootless)?;
    if rootless {
        super::resources::apply_limits(&cg, resources)?;
    } else {
        // Always: without device rules the device program still denies all but the default nodes.
        super::resources::apply(&cg, resources, linux.devices().as_deref().unwrap_or(&[]), false)?;
    }
    Ok((cg, placeholder))
}

fn start(
    record: &Path,
    cgroups_path: Option<&Path>,
    id: &str,
    resources: &LinuxResources,
    annotations: &HashMap<String, String>,
    rootless: bool,
) -> Result<(Cgroup, Option<Placeholder>)> {
    let cgroups_path = cgroups_path.map(|p| p.to_str().ok_or_else(|| Error::new(format!("cgroupsPath {p:?} is not UTF-8")))).transpose()?;
    let unit = unit::Unit::parse(cgroups_path, id, if rootless { user::DEFAULT_SLICE } else { unit::DEFAULT_SLICE })?;
    let mut props = fixed(&unit, id);
    props.extend(properties::of(resources, None)?);
    props.extend(annotations::properties(annotations)?);
    let root = super::mountpoint()?;
    let user_bus = rootless.then(crate::dbus::address::user_bus_path).transpose()?;
    let mut m = Manager::connect(user_bus.as_deref())?;
    // The system manager's units are where their slices say; the user's are below its own
    // cgroup, where it is expected (recorded for a cleanup) but then read from systemd.
    let mut path = root.join(&unit.cgroup);
    if user_bus.is_some() {
        let manager = m.control_group().map_err(|e| e.context("the user's systemd manager's cgroup"))?;
        user::check(&root, &manager, resources)?;
        path = root.join(manager.trim_start_matches('/')).join(&unit.cgroup);
    }
    let rec = |path: &Path, made| CgroupRecord {
        path: path.to_path_buf(),
        made,
        unit: Some(unit.name.clone()),
        user_bus: user_bus.clone(),
        parents: Vec::new(),
        v1_made: None,
    };
    state::write(record, &rec(&path, false))?;
    let placeholder = if unit.is_slice() { None } else { Some(Placeholder::spawn()?) };
    if let Some(p) = &placeholder {
        props.push(("PIDs".into(), Value::Array("u".into(), vec![Value::U32(p.pid())])));
    }
    m.start(&unit.name, &props).map_err(|e| e.context(format!("start systemd unit {}", unit.name)))?;
    // The unit is this container's from here on: cleanup stops it. Not before: a unit of that
    // name that was already there (another container's) is never stopped by this one's cleanup,
    // and a create killed before this point leaves at most a scope holding the placeholder, which
    // dies with P0 (systemd then removes the empty scope itself).
    state::write(record, &rec(&path, true))?;
    let mut want = format!("/{}", unit.cgroup.display());
    if user_bus.is_some() {
        want = m.unit_control_group(&unit.name)?;
        let got = root.join(want.trim_start_matches('/'));
        if got != path {
            path = got;
            state::write(record, &rec(&path, true))?;
        }
    }
    if let Some(p) = &placeholder {
        let got = p.cgroup()?;
        if got != want {
            return Err(Error::new(format!("systemd unit {} started in cgroup {got:?}, not in {want:?} as its slice says", unit.name)));
        }
    }
    let cg = Cgroup::at(path);
    if !cg.exists() {
        return Err(Error::new(format!("systemd unit {} started, but its cgroup {:?} does not exist", unit.name, cg.path)));
    }
    if !rootless {
        // A user cannot make cgroups in the v1 hierarchies of a hybrid host.
        cg.legacy().create()?;
    }
    Ok((cg, placeholder))
}

/// The properties every container unit has.
fn fixed(unit: &unit::Unit, id: &str) -> Vec<Property> {
    let mut p: Vec<Property> = vec![("Description".into(), Value::Str(format!("testudo container {id}")))];
    if unit.is_slice() {
        p.push(("Wants".into(), Value::Array("s".into(), vec![Value::str(&unit.slice)])));
    } else {
        p.push(("Slice".into(), Value::str(&unit.slice)));
        // The container may manage its own sub-cgroups (systemd inside, a nested runtime).
        p.push(("Delegate".into(), Value::Bool(true)));
    }
    p.push(("DefaultDependencies".into(), Value::Bool(false)));
    for a in ["MemoryAccounting", "CPUAccounting", "TasksAccounting", "IOAccounting"] {
        p.push((a.into(), Value::Bool(true)));
    }
    p
}

/// Remove what the container (or its create, at any point) left: kill its processes, stop and
/// reset its unit, remove a cgroup systemd left behind. `user_bus`: the unit is the user's
/// manager's, on that bus (as recorded), else the system's.
pub fn destroy(path: &Path, unit: &str, user_bus: Option<&str>) -> Result<()> {
    let cg = Cgroup::at(path.to_path_buf());
    cg.destroy(false)?;
    let mut m = Manager::connect(user_bus)?;
    m.stop(unit)?;
    m.reset_failed(unit)?;
    cg.destroy(true)
}

/// `update`: the properties systemd keeps, then (by the caller) the files.
pub fn update(unit: &str, user_bus: Option<&str>, cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    let memory_now = cg.read("memory.max").ok().and_then(|s| if s.trim() == "max" { Some(-1) } else { s.trim().parse().ok() });
    let props = properties::of(r, memory_now)?;
    if props.is_empty() {
        return Ok(());
    }
    Manager::connect(user_bus)?.set_properties(unit, &props).map_err(|e| e.context(format!("update systemd unit {unit}")))
}

/// The unit the container whose cgroup.json is `record` started, if it has one, with the user's
/// bus it is on (None: the system bus).
pub fn recorded_unit(record: &Path) -> Result<Option<(String, Option<String>)>> {
    Ok(state::read_cgroup(record)?.filter(|r| r.made).and_then(|r| Some((r.unit?, r.user_bus))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_delegated_into_its_slice() {
        let u = unit::Unit::parse(Some("machine.slice:p:n"), "c1", unit::DEFAULT_SLICE).expect("unit");
        let names: Vec<String> = fixed(&u, "c1").into_iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        assert_eq!(
            names,
            [
                "Description=Str(\"testudo container c1\")",
                "Slice=Str(\"machine.slice\")",
                "Delegate=Bool(true)",
                "DefaultDependencies=Bool(false)",
                "MemoryAccounting=Bool(true)",
                "CPUAccounting=Bool(true)",
                "TasksAccounting=Bool(true)",
                "IOAccounting=Bool(true)"
            ]
        );
    }
}
