//! `linux.resources.pids` → pids.max. As in runc, 0 leaves the limit alone and -1 is "max".
//! runc takes any negative limit as "max"; we refuse below -1, which no client means.

use oci_spec::runtime::LinuxPids;

use super::resources::Writes;
use crate::error::{Error, Result};

pub fn check(p: &LinuxPids) -> Result<()> {
    match p.limit() {
        n if n < -1 => Err(Error::new(format!("linux.resources.pids.limit: {n} is not a valid limit (-1 for no limit)"))),
        _ => Ok(()),
    }
}

pub fn needed(p: &LinuxPids) -> bool {
    p.limit() != 0
}

pub fn plan(p: &LinuxPids, out: &mut Writes) {
    match p.limit() {
        0 => {}
        n if n < 0 => out.push(("pids.max".into(), "max".into())),
        n => out.push(("pids.max".into(), n.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let plan_of = |json: &str| {
            let mut w = Writes::new();
            plan(&serde_json::from_str(json).expect("json"), &mut w);
            w
        };
        assert_eq!(plan_of(r#"{"limit": 32}"#), vec![("pids.max".to_string(), "32".to_string())]);
        assert_eq!(plan_of(r#"{"limit": -1}"#), vec![("pids.max".to_string(), "max".to_string())]);
        assert!(plan_of(r#"{"limit": 0}"#).is_empty());
    }

    #[test]
    fn a_limit_below_minus_one_is_refused() {
        let check_of = |n: i64| check(&serde_json::from_str(&format!(r#"{{"limit": {n}}}"#)).expect("json")).map_err(|e| e.to_string());
        assert_eq!(check_of(-5), Err("linux.resources.pids.limit: -5 is not a valid limit (-1 for no limit)".into()));
        for n in [-1, 0, 1, i64::MAX] {
            assert!(check_of(n).is_ok(), "{n}");
        }
    }
}
