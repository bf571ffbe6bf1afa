//! `linux.resources.pids` → pids.max. As in runc, 0 leaves the limit alone and a negative
//! limit is "max".

use oci_spec::runtime::LinuxPids;

use super::resources::Writes;

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
}
