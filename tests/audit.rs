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
    assert!(out.contains("22 rules, 22 passed, 0 failed") && out.starts_with("CIS Docker Benchmark v1.6.0 numbering"), "{out}");
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
    // Every failed rule counts in `failed`, whatever --fail-on; the exit code's count is apart.
    let failed = findings.iter().filter(|f| f["passed"] == false).count();
    assert!(failed >= 4, "{out}");
    assert_eq!(v["failed"], failed, "{out}");
    assert_eq!(v["failedAtFailOn"], 1, "{out}");
    assert_eq!(v["failedBySeverity"]["high"], 1, "{out}");
    assert_eq!(v["benchmark"], "CIS Docker Benchmark v1.6.0");
    assert_eq!(findings.len(), 22);
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
    assert!(err.contains("refuses this container (CIS Docker Benchmark v1.6.0): 4.1 non-root user") && err.contains("5.28 pids limit"), "{err}");
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

/// A policy file the way the rules want it: root's, mode 0644.
fn policy_file(b: &Bundle, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = b.dir.join("policy.json");
    std::fs::write(&p, text).expect("policy");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    p.to_str().expect("utf8").to_string()
}

/// `testudo --policy P create …`: where Docker's runtimeArgs, containerd's runc options and
/// podman's runtime_args put it. Each false negative of issue 23 is refused by the policy, named,
/// and leaves nothing; the hardened spec runs under the same global option.
#[test]
fn a_global_policy_refuses_each_false_negative_by_name() {
    if !require_root() {
        return;
    }
    let h = hardened("echo allowed");
    let p = policy_file(&h, r#"{"failOn": "low"}"#);
    h.write();
    let bundle = h.dir.to_str().expect("utf8");
    let out = h.testudo(&["--policy", &p, "run", "--bundle", bundle, &h.id]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "allowed", "{}", String::from_utf8_lossy(&out.stderr));
    let bind = |src: &str| serde_json::json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "ro"]});
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, &str, Change)> = vec![
        (
            "4.1",
            "maps to host uid 0",
            Box::new(|v| {
                v["linux"]["uidMappings"] =
                    serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 0, "size": 1}])
            }),
        ),
        ("5.5", "/./etc at /mnt", Box::new(move |v| v["mounts"].as_array_mut().expect("m").push(bind("/./etc")))),
        ("5.5", "//proc/sys at /mnt", Box::new(move |v| v["mounts"].as_array_mut().expect("m").push(bind("//proc/sys")))),
        ("5.31", "/run at /mnt", Box::new(move |v| v["mounts"].as_array_mut().expect("m").push(bind("/run")))),
        (
            "5.21",
            "default SCMP_ACT_LOG",
            Box::new(|v| {
                v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]})
            }),
        ),
        (
            "5.17",
            "c 10:232 rwm and CAP_MKNOD",
            Box::new(|v| {
                v["linux"]["resources"]["devices"] =
                    serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 232, "access": "rwm"}]);
                v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_MKNOD"]);
            }),
        ),
        (
            "5.17",
            "devtmpfs at /d",
            Box::new(|v| v["mounts"].as_array_mut().expect("m").push(serde_json::json!({"destination": "/d", "type": "devtmpfs", "source": "devtmpfs"}))),
        ),
        (
            "5.4",
            "every device allowed",
            Box::new(|v| v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}])),
        ),
        (
            "5.4",
            "writable by host root: /proc/sys /proc/sysrq-trigger",
            Box::new(|v| {
                v["linux"]["namespaces"].as_array_mut().expect("ns").retain(|n| n["type"] != "user");
                v["linux"].as_object_mut().expect("linux").retain(|k, _| k != "uidMappings" && k != "gidMappings");
                v["linux"]["readonlyPaths"] = serde_json::json!([]);
                v["process"]["user"]["uid"] = 0.into();
            }),
        ),
        ("5.10", "MemoryMax=infinity", Box::new(|v| v["annotations"] = serde_json::json!({"org.systemd.property.MemoryMax": "infinity"}))),
        ("5.28", "TasksMax=infinity", Box::new(|v| v["annotations"] = serde_json::json!({"org.systemd.property.TasksMax": "infinity"}))),
    ];
    for (item, needle, change) in cases {
        let mut b = hardened("echo ran");
        change(&mut b.config);
        b.write();
        let p = policy_file(&b, r#"{"failOn": "low"}"#);
        let out = b.testudo(&["--policy", &p, "create", "--bundle", b.dir.to_str().expect("utf8"), &b.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{item} {needle}: created");
        assert!(err.contains("(CIS Docker Benchmark v1.6.0)"), "{err}");
        assert!(err.contains(&format!("): {item} ")) || err.contains(&format!("; {item} ")), "{item}: {err}");
        assert!(err.contains(needle), "{item} {needle}: {err}");
        assert!(!b.root.join(&b.id).exists(), "{item}: a refused create left its directory");
    }
}

#[test]
fn a_policy_file_that_cannot_be_trusted_is_an_error_never_no_policy() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let b = hardened("echo ran");
    b.write();
    let p = policy_file(&b, r#"{"failOn": "low"}"#);
    let bundle = b.dir.to_str().expect("utf8");
    let refused = |why: &str| {
        let out = b.testudo(&["--policy", &p, "run", "--bundle", bundle, &b.id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("ran"), "{why}: ran");
        assert!(err.contains("policy") && err.contains(why), "{why}: {err}");
    };
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    refused("lets group or others write it");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::os::unix::fs::chown(&p, Some(1000), None).expect("chown");
    refused("owned by uid 1000, not root");
    std::fs::remove_file(&p).expect("rm");
    refused("no such file or directory");
}

/// A container created under a policy keeps it: exec with a capability or update lifting a limit
/// is refused (issue 23, 5.22 and 5.10/5.28), and the container sees nothing change.
#[test]
fn exec_and_update_keep_the_policy_the_container_was_created_under() {
    if !require_root() {
        return;
    }
    let h = hardened("sleep 600");
    h.write();
    let p = policy_file(&h, r#"{"failOn": "medium", "ignore": ["5.12"]}"#);
    let out = h.testudo(&["--policy", &p, "create", "--bundle", h.dir.to_str().expect("utf8"), &h.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(h.testudo(&["start", &h.id]).status.success());
    // No --policy now: the recorded one applies.
    let (code, _, err) = h.exec(&["--cap", "CAP_SYS_ADMIN", "-u", "0:0", "sh", "-c", "touch /tmp/exec-ran"]);
    assert_ne!(code, 0);
    assert!(err.contains("refuses this exec") && err.contains("5.3 capabilities restricted") && err.contains("CAP_SYS_ADMIN"), "{err}");
    let out = h.testudo(&["update", "--memory=-1", "--pids-limit=-1", &h.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("refuses this update") && err.contains("5.10 memory limit") && err.contains("5.28 pids limit"), "{err}");
    let (code, out, err) = h.exec(&[
        "sh",
        "-c",
        "ls /tmp; grep CapEff /proc/self/status; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
         cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(code, 0, "a plain exec: {err}");
    assert!(!out.contains("exec-ran"), "the refused exec ran: {out}");
    assert_eq!(status_field(&out, "CapEff"), Some("0000000000000000"));
    assert!(out.lines().any(|l| l == "128") && out.lines().any(|l| l == "268435456"), "limits changed: {out}");
    // An update within the policy goes through.
    let out = h.testudo(&["update", "--pids-limit=64", &h.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, out, _) = h.exec(&["sh", "-c", "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"]);
    assert_eq!(out.trim(), "64");
}

/// /etc/testudo/policy.json applies with no flag at all. Written in a mount namespace of the test's
/// own (a tmpfs over /etc/testudo), so no other runtime call on this machine sees it.
#[test]
fn the_system_default_policy_applies_with_no_flags() {
    if !require_root() {
        return;
    }
    std::fs::create_dir_all("/etc/testudo").expect("/etc/testudo");
    let run_with_default = |b: &Bundle, policy: &str| {
        b.write();
        let script = "mount -t tmpfs -o mode=755 tmpfs /etc/testudo && printf %s \"$POLICY\" > /etc/testudo/policy.json && exec \"$@\"";
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh", BIN, "--root"])
            .arg(&b.root)
            .args(["run", "--bundle", b.dir.to_str().expect("utf8"), &b.id])
            .env("POLICY", policy)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("unshare");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let plain = Bundle::new("echo ran");
    let (ok, out, err) = run_with_default(&plain, r#"{"failOn": "medium", "ignore": ["5.12"]}"#);
    assert!(!ok && !out.contains("ran"), "{out}");
    assert!(err.contains("/etc/testudo/policy.json") && err.contains("refuses this container") && err.contains("5.10 memory limit"), "{err}");
    let (ok, out, err) = run_with_default(&plain, "not json");
    assert!(!ok && !out.contains("ran") && err.contains("/etc/testudo/policy.json"), "an invalid default is an error: {err}");
    let h = hardened("echo ran");
    let (ok, out, err) = run_with_default(&h, r#"{"failOn": "low"}"#);
    assert!(ok && out.trim() == "ran", "{out} {err}");
    // Outside that namespace there is no default: this machine's other tests are untouched.
    assert!(!std::path::Path::new("/etc/testudo/policy.json").exists());
}
