//! The memory (5.10) and pids (5.28) limits a container really gets: `linux.resources`, then the
//! cgroup v2 files `linux.resources.unified` writes, then the systemd properties of
//! `org.systemd.property.*` annotations, which the systemd driver applies after testudo's own
//! (`MemoryMax=infinity` undoes a memory limit). A widening from any of them is what counts: the
//! audit does not know the driver a later `create` is given, so it takes the worst.
//!
//! `update` is audited on the resources it would leave (`after_update`).

use serde_json::Value;

use super::rules::finding;
use super::{Finding, Severity};

/// A systemd size or count: "infinity" is none, else a number with an optional K/M/G/T (1024s)
/// or a percentage (of the host, still a limit).
fn systemd_value(s: &str) -> Option<Option<i64>> {
    let s = s.trim().trim_matches(|c| c == '\'' || c == '"');
    let s = s.strip_prefix("uint64 ").unwrap_or(s).trim();
    if s == "infinity" {
        return Some(None);
    }
    if let Some(p) = s.strip_suffix('%') {
        return p.parse::<f64>().ok().map(|_| Some(i64::MAX));
    }
    let (num, shift) = match s.chars().last() {
        Some(c @ ('K' | 'M' | 'G' | 'T')) => (&s[..s.len() - 1], 10 * (1 + "KMGT".find(c).unwrap_or(0) as u32)),
        _ => (s, 0),
    };
    num.parse::<i64>().ok().map(|n| Some(n << shift))
}

/// The effective limit and where it came from; None: no limit.
fn effective(v: &Value, spec: Option<i64>, unified: &str, properties: &[&str]) -> (Option<i64>, String) {
    let mut limit = spec.filter(|&l| l > 0);
    let mut how = limit.map_or("no limit".to_string(), |l| l.to_string());
    if let Some(u) = v["linux"]["resources"]["unified"][unified].as_str() {
        limit = if u.trim() == "max" { None } else { u.trim().parse().ok().filter(|&l: &i64| l > 0) };
        how = format!("unified {unified}={u}");
    }
    for p in properties {
        let key = format!("org.systemd.property.{p}");
        if let Some(a) = v["annotations"][&key].as_str() {
            limit = systemd_value(a).flatten();
            how = format!("annotation {key}={a}");
        }
    }
    (limit, how)
}

pub fn memory(v: &Value) -> Finding {
    let (limit, how) = effective(v, v["linux"]["resources"]["memory"]["limit"].as_i64(), "memory.max", &["MemoryLimit", "MemoryMax"]);
    let fix = "set linux.resources.memory.limit (and no annotation or unified value that lifts it)";
    match limit {
        Some(l) if how == l.to_string() => finding("5.10", "memory limit", Severity::Medium, true, format!("{l} bytes"), fix),
        Some(l) => finding("5.10", "memory limit", Severity::Medium, true, format!("{l} bytes ({how})"), fix),
        None if how == "no limit" => finding("5.10", "memory limit", Severity::Medium, false, "no memory limit".into(), fix),
        None => finding("5.10", "memory limit", Severity::Medium, false, format!("no memory limit ({how})"), fix),
    }
}

pub fn pids(v: &Value) -> Finding {
    let (limit, how) = effective(v, v["linux"]["resources"]["pids"]["limit"].as_i64(), "pids.max", &["TasksMax"]);
    let fix = "set linux.resources.pids.limit (and no annotation or unified value that lifts it)";
    match limit {
        Some(l) if how == l.to_string() => finding("5.28", "pids limit", Severity::Medium, true, format!("{l}"), fix),
        Some(_) => finding("5.28", "pids limit", Severity::Medium, true, how, fix),
        None if how == "no limit" => finding("5.28", "pids limit", Severity::Medium, false, "no pids limit".into(), fix),
        None => finding("5.28", "pids limit", Severity::Medium, false, format!("no pids limit ({how})"), fix),
    }
}

/// The config with `linux.resources` as an update of `r` (OCI resources JSON) leaves it. A 0 is
/// "unchanged" for the fields `update` treats so (Docker sends every field).
pub fn after_update(v: &mut Value, r: &Value) {
    let res = &mut v["linux"]["resources"];
    for (group, field) in [("memory", "limit"), ("memory", "swap"), ("pids", "limit"), ("cpu", "shares"), ("cpu", "quota"), ("cpu", "period")] {
        if let Some(n) = r[group][field].as_i64().filter(|&n| n != 0) {
            res[group][field] = n.into();
        }
    }
    if let Some(u) = r["unified"].as_object() {
        for (k, val) in u {
            res["unified"][k] = val.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_and_unified_values_that_lift_a_limit_are_what_counts() {
        let mut v = crate::commands::spec::hardened_config().expect("hardened");
        assert!(memory(&v).passed && pids(&v).passed);
        v["annotations"] = serde_json::json!({"org.systemd.property.MemoryMax": "infinity", "org.systemd.property.TasksMax": "uint64 18446744073709551615"});
        let (m, p) = (memory(&v), pids(&v));
        assert!(!m.passed && m.found.contains("MemoryMax=infinity"), "{m:?}");
        assert!(!p.passed, "{p:?}");
        v["annotations"] = serde_json::json!({"org.systemd.property.MemoryMax": "512M", "org.systemd.property.TasksMax": "64"});
        assert!(memory(&v).passed && pids(&v).passed);
        let mut v = crate::commands::spec::hardened_config().expect("hardened");
        v["linux"]["resources"]["unified"] = serde_json::json!({"pids.max": "max"});
        assert!(!pids(&v).passed);
    }

    #[test]
    fn an_update_that_lifts_a_limit_fails_and_docker_zeros_change_nothing() {
        let base = crate::commands::spec::hardened_config().expect("hardened");
        let mut v = base.clone();
        after_update(&mut v, &serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": -1}}));
        assert!(!memory(&v).passed && !pids(&v).passed);
        let mut v = base.clone();
        after_update(&mut v, &serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 0}, "cpu": {"shares": 0}}));
        assert!(memory(&v).passed && pids(&v).passed);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 67108864);
    }
}
