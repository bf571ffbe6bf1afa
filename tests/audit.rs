//! `spec --hardened`, `check` and `create --policy` (issue 16): the hardened spec runs and the
//! container sees every setting `check` audits; `check` and a policy refuse what the audit fails.

mod common;

use common::{require_root, status_field, Bundle, BIN};

/// A bundle from `spec --hardened` (its root and process made the test's).
fn hardened(script: &str) -> Bundle {
    let mut b = Bundle::new(script);
    let dir = common::scratch_dir(&format!("hardened-{}", b.id));
    let out = std::process::Command::new(BIN).args(["spec", "--hardened", "--bundle"]).arg(&dir).output().expect("spec");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("read")).expect("json");
    config["root"]["path"] = b.config["root"]["path"].clone();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = b.config["process"]["args"].clone();
    b.config = config;
    b
}

fn check(b: &Bundle, args: &[&str]) -> (i32, String) {
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let mut a = vec!["check", "--bundle", bundle.as_str()];
    a.extend_from_slice(args);
    let out = b.testudo(&a);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_hardened_spec_runs_and_the_container_sees_what_check_audits() {
    if !require_root() {
        return;
    }
    let b = hardened(
        "id -u; cat /proc/self/uid_map; cat /proc/self/status; touch /x 2>&1; touch /tmp/y && echo tmp-writable; \
         echo pids $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max); \
         echo mem $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)",
    );
    let (code, out) = check(&b, &["--fail-on", "low"]);
    assert_eq!(code, 0, "the hardened spec fails a rule:\n{out}");
    assert!(out.contains("17 rules, 17 passed, 0 failed"), "{out}");
    let out = b.run_ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000"), "{out}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    assert_eq!(status_field(&out, "CapEff"), Some("0000000000000000"));
    assert_eq!(status_field(&out, "CapBnd"), Some("0000000000000000"));
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"));
    assert_eq!(status_field(&out, "Seccomp"), Some("2"));
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("tmp-writable"), "{out}");
    assert!(out.contains("pids 128"), "{out}");
    assert!(out.contains("mem 268435456"), "{out}");
}

#[test]
fn check_exits_at_its_severity_and_its_json_names_every_rule() {
    let mut b = Bundle::new("true");
    // testudo's default spec: no limits (medium) and no cpu priority (low), nothing high.
    assert_eq!(check(&b, &["--fail-on", "high"]).0, 0);
    let (code, out) = check(&b, &["--fail-on", "medium"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  5.10  medium  memory limit: no memory limit — fix: set linux.resources.memory.limit"), "{out}");
    b.drop_namespace("network");
    let (code, out) = check(&b, &["--format", "json"]);
    assert_eq!(code, 1, "host network is high: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let findings = v["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 17);
    let net = findings.iter().find(|f| f["cis"] == "5.9").expect("5.9");
    assert_eq!((net["passed"].as_bool(), net["severity"].as_str()), (Some(false), Some("high")), "{net}");
    assert_eq!(net["found"], "shares the host's network namespace");
}

#[test]
fn create_with_a_policy_refuses_what_fails_it_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("true");
    let policy = b.dir.join("policy.json");
    std::fs::write(&policy, r#"{"failOn": "medium", "ignore": ["5.12"]}"#).expect("policy");
    let p = policy.to_str().expect("utf8");
    b.write();
    let bundle = b.dir.to_str().expect("utf8");
    let out = b.testudo(&["create", "--policy", p, "--bundle", bundle, &b.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refuses this container: 4.1 non-root user") && err.contains("5.28 pids limit"), "{err}");
    assert!(!err.contains("5.12"), "an ignored item was enforced: {err}");
    assert!(!b.root.join(&b.id).exists(), "a refused create left its directory");
    // The hardened spec passes it and runs.
    let h = hardened("echo allowed");
    h.write();
    let bundle = h.dir.to_str().expect("utf8");
    let out = h.testudo(&["run", "--policy", p, "--bundle", bundle, &h.id]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "allowed", "{}", String::from_utf8_lossy(&out.stderr));
    for (text, needle) in [
        (r#"{"failOn": "severe"}"#, "unknown variant `severe`"),
        (r#"{"failOn": "high", "ignore": ["9.9"]}"#, r#"\"9.9\" is not an item testudo audits"#),
        (r#"{"failOn": "high", "extra": 1}"#, "unknown field `extra`"),
        ("not json", "expected ident"),
    ] {
        std::fs::write(&policy, text).expect("policy");
        let out = b.testudo(&["create", "--policy", p, "--bundle", b.dir.to_str().expect("utf8"), &b.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("policy") && err.contains(needle), "{text}: {err}");
        assert!(!b.root.join(&b.id).exists());
    }
}
