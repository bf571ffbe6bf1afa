//! `linux.resources.unified`: cgroup v2 files by name, written last so they can refine what the
//! structured fields set. Validated: a plain file name of the form <controller>.<knob>, never a
//! cgroup core file that moves or kills processes, and only files the kernel offers.

use std::collections::HashMap;

use crate::error::{Error, Result};

use super::resources::Writes;
use super::Cgroup;

/// The controller a key belongs to, None for the core cgroup.* knobs.
pub fn controller(key: &str) -> Option<&str> {
    key.split_once('.').map(|(c, _)| c).filter(|c| *c != "cgroup")
}

pub fn check(u: &HashMap<String, String>) -> Result<()> {
    for key in u.keys() {
        let bad = |why: &str| Err(Error::new(format!("linux.resources.unified: key {key:?}: {why}")));
        if key.contains('/') || key.contains('\0') || key.starts_with('.') {
            return bad("not a plain file name");
        }
        let Some((prefix, knob)) = key.split_once('.') else { return bad("not of the form <controller>.<knob>") };
        if prefix.is_empty() || knob.is_empty() {
            return bad("not of the form <controller>.<knob>");
        }
        if prefix == "cgroup" && !matches!(knob, "max.depth" | "max.descendants") {
            return bad("only cgroup.max.depth and cgroup.max.descendants may be set");
        }
    }
    Ok(())
}

pub fn plan(u: &HashMap<String, String>, cg: &Cgroup, out: &mut Writes) -> Result<()> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for key in keys {
        if !cg.has(key) {
            return Err(Error::new(format!("linux.resources.unified: {key:?} does not exist in {:?}", cg.path)));
        }
        out.push((key.clone(), u[key].clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::testdir;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keys_are_validated() {
        check(&map(&[("memory.high", "1000"), ("cgroup.max.depth", "3")])).expect("valid");
        for key in ["../memory.max", "memory", "cgroup.procs", "cgroup.kill", ".memory", "a/b.c", "memory."] {
            assert!(check(&map(&[(key, "1")])).is_err(), "{key}");
        }
        assert_eq!(controller("memory.high"), Some("memory"));
        assert_eq!(controller("cgroup.max.depth"), None);
        let cg = testdir(&[("memory.high", "max")]);
        let mut w = Writes::new();
        plan(&map(&[("memory.high", "1000")]), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("memory.high".to_string(), "1000".to_string())]);
        assert!(plan(&map(&[("memory.nope", "1")]), &cg, &mut w).is_err());
    }
}
