//! The container-runtime items of the CIS Docker Benchmark (section 5, with 4.1's non-root user),
//! checked against the exact config.json a container would be created from. Docker Bench audits
//! a running container through the Docker API; the runtime sees the config itself, so it can
//! audit before anything runs (`check`) and refuse what a policy forbids (`policy`).
//!
//! Items are numbered as in the CIS Docker Benchmark v1.6.0 (`numbering` maps v1.7.0's). 5.1 and
//! 5.2 judge the profile and label the bundle sets (`confinement`), not the host's.
//!
//! A finding that follows from another failed item says so (`because`): one `--privileged` fails
//! 5.4, and the capabilities (5.3), devices (5.17) and seccomp (5.21) it brings are derived from it.

mod confinement;
mod devices;
mod limits;
mod namespaces;
pub mod numbering;
mod paths;
pub mod policy;
mod rules;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The benchmark whose numbering the findings use.
pub const BENCHMARK: &str = "CIS Docker Benchmark v1.6.0";
pub const BENCHMARK_VERSION: &str = "v1.6.0";

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
    /// The CIS Docker Benchmark item (v1.6.0 numbering), e.g. "5.3".
    pub cis: &'static str,
    pub rule: &'static str,
    pub severity: Severity,
    pub passed: bool,
    /// What the config says (for a failed rule, the offending part).
    pub found: String,
    pub fix: &'static str,
    /// The failed item this finding follows from (a derived finding), e.g. "5.4".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<&'static str>,
    /// Failed because the config names something (a namespace by path) that cannot be resolved
    /// here: not shown to be safe, so not passed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
}

impl Finding {
    /// `5.3 capabilities restricted (high: adds CAP_SYS_ADMIN)`, with its cause if derived.
    pub fn summary(&self) -> String {
        let because = self.because.map(|b| format!(", because of {b}")).unwrap_or_default();
        format!("{} {} ({}: {}{because})", self.cis, self.rule, self.severity.as_str(), self.found)
    }
}

/// Every rule, in CIS order, with derived findings marked.
pub fn audit(spec: &Spec) -> Vec<Finding> {
    let v = serde_json::to_value(spec).unwrap_or_default();
    let mut findings: Vec<Finding> = rules::ALL.iter().map(|r| r(&v)).collect();
    if devices::every_device_allowed(&v) {
        // What --privileged brings along with every device: all capabilities, no AppArmor or
        // SELinux confinement, no seccomp, the host's device nodes.
        for f in findings.iter_mut().filter(|f| !f.passed && ["5.1", "5.2", "5.3", "5.17", "5.21"].contains(&f.cis)) {
            f.because = Some("5.4");
        }
    }
    findings
}

/// The CIS items audited.
pub fn items() -> Vec<&'static str> {
    rules::ALL.iter().map(|r| r(&serde_json::Value::Null).cis).collect()
}

/// The failed findings at or above `at`, minus the CIS items listed in `ignore`.
pub fn failures<'a>(findings: &'a [Finding], at: Severity, ignore: &[String]) -> Vec<&'a Finding> {
    findings.iter().filter(|f| !f.passed && f.severity >= at && !ignore.iter().any(|i| i == f.cis)).collect()
}

/// Failed findings per severity: `{"high": 1, "medium": 4, "low": 1}`.
pub fn failed_by_severity(findings: &[Finding]) -> serde_json::Value {
    let n = |s: Severity| findings.iter().filter(|f| !f.passed && f.severity == s).count();
    serde_json::json!({"high": n(Severity::High), "medium": n(Severity::Medium), "low": n(Severity::Low)})
}

/// One line per rule: `PASS|FAIL  5.3  high    capabilities …: found — fix`.
pub fn text(findings: &[Finding]) -> String {
    let mut out = format!("{BENCHMARK} numbering (v1.7.0 numbers section 5 one higher)\n");
    for f in findings {
        let verdict = match (f.passed, f.unverified) {
            (true, _) => "PASS",
            (false, false) => "FAIL",
            (false, true) => "UNVERIFIED",
        };
        out.push_str(&format!("{verdict}  {:<5} {:<6}  {}: {}", f.cis, f.severity.as_str(), f.rule, f.found));
        if let Some(b) = f.because {
            out.push_str(&format!(" (because of {b})"));
        }
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
    fn json_counts_every_failure_and_marks_what_privileged_brings() {
        // Docker's --privileged: every device, every capability, no seccomp, no masks.
        let mut v = crate::commands::spec::default_config(false).expect("default");
        v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}]);
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_SYS_ADMIN", "CAP_MKNOD"]);
        v["linux"]["devices"] = serde_json::json!([{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]);
        v["linux"].as_object_mut().expect("linux").remove("seccomp");
        let f = audit(&spec(v));
        let failed: Vec<(&str, Option<&str>)> = f.iter().filter(|f| !f.passed && f.severity == Severity::High).map(|f| (f.cis, f.because)).collect();
        assert_eq!(failed, [("5.3", Some("5.4")), ("5.4", None), ("5.21", Some("5.4"))]);
        let by = failed_by_severity(&f);
        assert_eq!(by["high"], 3, "{by}");
        assert!(f.iter().any(|x| x.cis == "5.17" && x.because == Some("5.4")));
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
            ("5.1", with(&|v| v["process"]["apparmorProfile"] = "unconfined".into())),
            ("5.2", with(&|v| v["process"]["selinuxLabel"] = "system_u:system_r:spc_t:s0".into())),
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
            ("5.18", with(&|v| v["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NPROC", "hard": u64::MAX, "soft": u64::MAX}]))),
            ("5.19", with(&|v| v["linux"]["rootfsPropagation"] = "rshared".into())),
            ("5.20", ns_without("uts")),
            ("5.21", with(&|v| v["linux"].as_object_mut().expect("linux").retain(|k, _| k != "seccomp"))),
            ("5.24", with(&|v| v["linux"]["cgroupsPath"] = "/".into())),
            ("5.25", with(&|v| v["process"]["noNewPrivileges"] = false.into())),
            ("5.28", with(&|v| v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 0}))),
            ("5.31", with(&|v| v["mounts"].as_array_mut().expect("mounts").push(bind("/var/run/docker.sock")))),
        ];
        let mut covered: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
        // 5.7 needs the host's network and a usable CAP_NET_BIND_SERVICE: 5.9 fails with it.
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
        ports["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        let failed: Vec<&str> = audit(&spec(ports)).iter().filter(|f| !f.passed).map(|f| f.cis).collect();
        assert_eq!(failed, ["5.7", "5.9"]);
    }
}
