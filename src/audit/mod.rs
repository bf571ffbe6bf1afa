//! The container-runtime items of the CIS Docker Benchmark (section 5, with 4.1's non-root user),
//! checked against the exact config.json a container would be created from. Docker Bench audits
//! a running container through the Docker API; the runtime sees the config itself, so it can
//! audit before anything runs (`check`) and refuse what a policy forbids (`create --policy`).
//!
//! Not audited: 5.1 and 5.2 (an AppArmor profile, SELinux options). Whether a label can be set is
//! a property of the host (create refuses a label the host cannot apply), so a finding there would
//! say nothing about the bundle.

mod rules;

use std::path::Path;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn parse(s: &str) -> Result<Severity> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            _ => Err(Error::new(format!("severity {s:?}: expected high, medium or low"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One rule's verdict on one config.
#[derive(Serialize, Debug, Clone)]
pub struct Finding {
    /// The CIS Docker Benchmark item, e.g. "5.3".
    pub cis: &'static str,
    pub rule: &'static str,
    pub severity: Severity,
    pub passed: bool,
    /// What the config says (for a failed rule, the offending part).
    pub found: String,
    pub fix: &'static str,
}

/// Every rule, in CIS order.
pub fn audit(spec: &Spec) -> Vec<Finding> {
    let v = serde_json::to_value(spec).unwrap_or_default();
    rules::ALL.iter().map(|r| r(&v)).collect()
}

/// The CIS items audited.
pub fn items() -> Vec<&'static str> {
    rules::ALL.iter().map(|r| r(&serde_json::Value::Null).cis).collect()
}

/// The failed findings at or above `at`, minus the CIS items listed in `ignore`.
pub fn failures<'a>(findings: &'a [Finding], at: Severity, ignore: &[String]) -> Vec<&'a Finding> {
    findings.iter().filter(|f| !f.passed && f.severity >= at && !ignore.iter().any(|i| i == f.cis)).collect()
}

/// `create --policy FILE`: `{"failOn": "high|medium|low", "ignore": ["5.12", …]}`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "failOn")]
    pub fail_on: Severity,
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy> {
        let bytes = std::fs::read(path).with_context(|| format!("policy {path:?}"))?;
        let p: Policy = serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("policy {path:?}: {e}")))?;
        let known = items();
        if let Some(bad) = p.ignore.iter().find(|i| !known.contains(&i.as_str())) {
            return Err(Error::new(format!("policy {path:?}: ignore: {bad:?} is not an item testudo audits ({})", known.join(", "))));
        }
        Ok(p)
    }

    /// The one error of a create the policy refuses, naming every failed item.
    pub fn enforce(&self, path: &Path, spec: &Spec) -> Result<()> {
        let findings = audit(spec);
        let failed = failures(&findings, self.fail_on, &self.ignore);
        if failed.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = failed.iter().map(|f| format!("{} {} ({}: {})", f.cis, f.rule, f.severity.as_str(), f.found)).collect();
        Err(Error::new(format!("policy {path:?} refuses this container: {}", list.join("; "))))
    }
}

/// One line per rule: `PASS|FAIL  5.3  high    capabilities …: found — fix`.
pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let verdict = if f.passed { "PASS" } else { "FAIL" };
        out.push_str(&format!("{verdict}  {:<5} {:<6}  {}: {}", f.cis, f.severity.as_str(), f.rule, f.found));
        if !f.passed {
            out.push_str(&format!(" — fix: {}", f.fix));
        }
        out.push('\n');
    }
    let failed = findings.iter().filter(|f| !f.passed).count();
    out.push_str(&format!("{} rules, {} passed, {} failed\n", findings.len(), findings.len() - failed, failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("spec")
    }

    #[test]
    fn the_hardened_spec_passes_every_rule() {
        let s = spec(crate::commands::spec::hardened_config().expect("hardened"));
        let failed: Vec<_> = audit(&s).into_iter().filter(|f| !f.passed).collect();
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// One config per item that fails it and no other: the hardened spec with one change.
    #[test]
    fn each_rule_fails_on_its_own_config_and_only_there() {
        let base = crate::commands::spec::hardened_config().expect("hardened");
        let ns_without = |typ: &str| {
            let mut v = base.clone();
            v["linux"]["namespaces"].as_array_mut().expect("ns").retain(|n| n["type"] != typ);
            v
        };
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            v
        };
        let bind = |src: &str| serde_json::json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "ro"]});
        let cases: Vec<(&str, serde_json::Value)> = vec![
            (
                "4.1",
                with(&|v| {
                    v["process"]["user"]["uid"] = 0.into();
                    v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
                }),
            ),
            ("5.3", with(&|v| v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_SYS_PTRACE"]))),
            ("5.4", with(&|v| v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "access": "rwm"}]))),
            ("5.5", with(&|v| v["mounts"].as_array_mut().expect("mounts").push(bind("/etc")))),
            ("5.9", ns_without("network")),
            ("5.10", with(&|v| v["linux"]["resources"]["memory"] = serde_json::json!({}))),
            ("5.11", with(&|v| v["linux"]["resources"]["cpu"] = serde_json::json!({"shares": 1024}))),
            ("5.12", with(&|v| v["root"]["readonly"] = false.into())),
            ("5.15", ns_without("pid")),
            ("5.16", ns_without("ipc")),
            ("5.17", with(&|v| v["linux"]["devices"] = serde_json::json!([{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]))),
            ("5.20", ns_without("uts")),
            ("5.21", with(&|v| v["linux"].as_object_mut().expect("linux").retain(|k, _| k != "seccomp"))),
            ("5.25", with(&|v| v["process"]["noNewPrivileges"] = false.into())),
            ("5.28", with(&|v| v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 0}))),
            ("5.31", with(&|v| v["mounts"].as_array_mut().expect("mounts").push(bind("/var/run/docker.sock")))),
        ];
        let mut covered: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
        // 5.7 needs the host's network and CAP_NET_BIND_SERVICE: 5.9 and 5.3's allowed set fail or pass with it.
        covered.push("5.7");
        covered.sort();
        let mut all = items();
        all.sort();
        assert_eq!(covered, all, "an item without a failing case");
        for (item, v) in cases {
            let failed: Vec<&str> = audit(&spec(v)).iter().filter(|f| !f.passed).map(|f| f.cis).collect();
            assert_eq!(failed, [item], "{item}");
        }
        let mut ports = ns_without("network");
        ports["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        let failed: Vec<&str> = audit(&spec(ports)).iter().filter(|f| !f.passed).map(|f| f.cis).collect();
        assert_eq!(failed, ["5.7", "5.9"]);
    }

    #[test]
    fn a_policy_refuses_at_its_severity_and_ignores_what_it_lists() {
        let s = spec(crate::commands::spec::default_config(false).expect("default"));
        let path = Path::new("p.json");
        let high = Policy { fail_on: Severity::High, ignore: vec![] };
        assert!(high.enforce(path, &s).is_ok(), "the default spec has no high finding");
        let medium = Policy { fail_on: Severity::Medium, ignore: vec![] };
        let e = medium.enforce(path, &s).expect_err("medium").to_string();
        assert!(e.contains("5.10 memory limit") && e.contains("5.28 pids limit"), "{e}");
        let ignore: Vec<String> = audit(&s).iter().filter(|f| !f.passed).map(|f| f.cis.to_string()).collect();
        assert!(Policy { fail_on: Severity::Low, ignore }.enforce(path, &s).is_ok());
    }
}
