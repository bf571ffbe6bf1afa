//! `linux.resources.memory` → memory.max, memory.swap.max, memory.low. The spec's `swap` is the
//! v1 memory+swap limit; v2 limits swap alone, so memory.swap.max = swap - limit, with runc's
//! rules for -1 (unlimited) and 0 (unset).

use oci_spec::runtime::LinuxMemory;

use crate::error::{Error, Result};

use super::resources::Writes;
use super::Cgroup;

/// What v2 cannot express is refused; swappiness and disableOOMKiller are v1's, accepted when
/// the memory controller is in a v1 hierarchy (`v1`).
pub fn check(m: &LinuxMemory, v1: bool) -> Result<()> {
    let refuse = |what: &str| Err(Error::new(format!("linux.resources.memory.{what} has no cgroup v2 equivalent")));
    if m.swappiness().is_some() && !v1 {
        return refuse("swappiness");
    }
    if m.swappiness().is_some_and(|s| s > 100) {
        return Err(Error::new(format!("linux.resources.memory.swappiness: {} is above 100", m.swappiness().unwrap_or(0))));
    }
    // v1's memory.oom_control; v2 has no switch for the OOM killer.
    if m.disable_oom_killer() == Some(true) && !v1 {
        return refuse("disableOOMKiller");
    }
    if m.use_hierarchy() == Some(false) {
        return refuse("useHierarchy=false");
    }
    #[allow(deprecated)]
    if m.kernel().is_some_and(|k| k > 0) {
        return refuse("kernel");
    }
    if m.kernel_tcp().is_some_and(|k| k > 0) {
        return refuse("kernelTCP");
    }
    for (what, v) in [("limit", m.limit()), ("reservation", m.reservation()), ("swap", m.swap())] {
        if v.is_some_and(|v| v < -1) {
            return Err(Error::new(format!("linux.resources.memory.{what}: invalid value {}", v.unwrap_or(0))));
        }
    }
    Ok(())
}

pub fn needed(m: &LinuxMemory) -> bool {
    [m.limit(), m.reservation(), m.swap()].iter().any(|v| v.is_some_and(|v| v != 0))
}

/// runc's numToStr: 0 is unset, -1 is "max".
fn value(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        n => Some(n.to_string()),
    }
}

/// runc's ConvertMemorySwapToCgroupV2Value.
pub fn swap_v2(swap: i64, limit: i64) -> Result<i64> {
    match (swap, limit) {
        (0, -1) => Ok(-1), // unlimited memory and no swap given: both unlimited, as on v1
        (-1 | 0, _) => Ok(swap),
        (_, 0 | -1) => Err(Error::new("linux.resources.memory.swap: unable to set a swap limit without a memory limit")),
        _ if swap < limit => Err(Error::new(format!("linux.resources.memory.swap: memory+swap limit {swap} is below the memory limit {limit}"))),
        _ => Ok(swap - limit),
    }
}

fn current(cg: &Cgroup, file: &str) -> Result<i64> {
    let text = cg.read(file)?;
    match text.trim() {
        "max" => Ok(-1),
        t => t.parse().map_err(|_| Error::new(format!("{:?}: not a number: {t:?}", cg.path.join(file)))),
    }
}

/// `update` passes `live`: a swap limit without a memory limit is then computed against the
/// current memory.max, and checkBeforeUpdate refuses a limit below the current usage.
pub fn plan(m: &LinuxMemory, cg: &Cgroup, live: bool, out: &mut Writes) -> Result<()> {
    let mut limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    if live && limit == 0 && swap > 0 {
        limit = current(cg, "memory.max")?;
    }
    if live && m.check_before_update() == Some(true) && limit > 0 {
        let usage = current(cg, "memory.current")?;
        if usage >= limit {
            return Err(Error::new(format!("linux.resources.memory.limit: rejecting {limit}, below the current usage {usage}")));
        }
    }
    let swap_max = swap_v2(swap, limit)?;
    // Same memory and memory+swap: no swap at all.
    let swap_str = if swap_max == 0 && swap > 0 { Some("0".to_string()) } else { value(swap_max) };
    if let Some(s) = swap_str {
        // Without swap accounting there is no memory.swap.max, and no swap to limit: only a
        // real limit is then an error.
        if cg.has("memory.swap.max") || !(s == "max" || s == "0") {
            out.push(("memory.swap.max".into(), s));
        }
    }
    if let Some(v) = value(limit).filter(|_| m.limit().is_some()) {
        out.push(("memory.max".into(), v));
    }
    if let Some(v) = value(m.reservation().unwrap_or(0)) {
        out.push(("memory.low".into(), v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_v2(m: &LinuxMemory) -> Result<()> {
        check(m, false)
    }
    use crate::cgroups::resources::testdir;

    fn mem(json: &str) -> LinuxMemory {
        serde_json::from_str(json).expect("memory json")
    }

    #[test]
    fn swap_is_memory_plus_swap() {
        assert_eq!(swap_v2(0, -1).ok(), Some(-1));
        assert_eq!(swap_v2(-1, 100).ok(), Some(-1));
        assert_eq!(swap_v2(0, 100).ok(), Some(0));
        assert_eq!(swap_v2(300, 100).ok(), Some(200));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(300, 0).is_err());
        assert!(swap_v2(300, -1).is_err());
    }

    #[test]
    fn writes() {
        let cg = testdir(&[("memory.swap.max", "max"), ("memory.max", "max"), ("memory.current", "5000")]);
        let mut w = Writes::new();
        plan(&mem(r#"{"limit": 1048576, "swap": 3145728, "reservation": 4096}"#), &cg, false, &mut w).expect("plan");
        assert_eq!(w, vec![("memory.swap.max".into(), "2097152".into()), ("memory.max".into(), "1048576".into()), ("memory.low".into(), "4096".into())]);
        let mut w = Writes::new();
        plan(&mem(r#"{"limit": 1048576, "swap": 1048576}"#), &cg, false, &mut w).expect("plan");
        assert_eq!(w[0], ("memory.swap.max".into(), "0".into()), "limit == swap: no swap");
        let mut w = Writes::new();
        plan(&mem(r#"{"limit": -1}"#), &cg, false, &mut w).expect("plan");
        assert_eq!(w, vec![("memory.swap.max".into(), "max".into()), ("memory.max".into(), "max".into())]);
        // Update: swap alone is measured against the live memory.max.
        cg.write("memory.max", "1000").expect("write");
        let mut w = Writes::new();
        plan(&mem(r#"{"swap": 3000}"#), &cg, true, &mut w).expect("plan");
        assert_eq!(w, vec![("memory.swap.max".into(), "2000".into())]);
        let e = plan(&mem(r#"{"limit": 4000, "checkBeforeUpdate": true}"#), &cg, true, &mut Writes::new()).expect_err("below usage");
        assert!(e.to_string().contains("below the current usage 5000"), "{e}");
        assert!(plan(&mem(r#"{"limit": 4000, "checkBeforeUpdate": true}"#), &cg, false, &mut Writes::new()).is_ok(), "only on update");
        // No swap accounting: a real swap limit is an error, "no swap" is not.
        std::fs::remove_file(cg.path.join("memory.swap.max")).expect("rm");
        let mut w = Writes::new();
        plan(&mem(r#"{"limit": 1000, "swap": 1000}"#), &cg, false, &mut w).expect("plan");
        assert_eq!(w, vec![("memory.max".into(), "1000".into())]);
        let mut w = Writes::new();
        plan(&mem(r#"{"limit": 1000, "swap": 2000}"#), &cg, false, &mut w).expect("plan");
        assert_eq!(w[0].0, "memory.swap.max", "written, and the write fails on the missing file");
    }

    #[test]
    fn v1_only_settings_are_refused() {
        assert!(check_v2(&mem(r#"{"swappiness": 10}"#)).is_err());
        assert!(check_v2(&mem(r#"{"disableOOMKiller": true}"#)).is_err());
        assert!(check_v2(&mem(r#"{"kernel": 1000}"#)).is_err());
        assert!(check_v2(&mem(r#"{"limit": -2}"#)).is_err());
        assert!(check_v2(&mem(r#"{"limit": 1000, "disableOOMKiller": false}"#)).is_ok());
        assert!(check(&mem(r#"{"disableOOMKiller": true}"#), true).is_ok(), "v1's memory.oom_control");
    }
}
