//! The rule list, and the items that read one field: capabilities, limits, the read-only root,
//! seccomp, no_new_privileges. Each rule reads the spec as JSON (the names the spec and Docker
//! Bench use: `CAP_SYS_ADMIN`, `network`, `SCMP_ACT_ALLOW`) and says what it found either way.

use serde_json::Value;

use super::{confinement, devices, limits, namespaces, paths, Finding, Severity};

pub type Rule = fn(&Value) -> Finding;

pub const ALL: [Rule; 22] = [
    namespaces::non_root,
    confinement::apparmor,
    confinement::selinux,
    capabilities,
    devices::privileged,
    paths::sensitive_mounts,
    namespaces::privileged_ports,
    namespaces::host_network,
    limits::memory,
    cpu,
    read_only_root,
    namespaces::host_pid,
    namespaces::host_ipc,
    devices::devices,
    confinement::rlimits,
    confinement::propagation,
    namespaces::host_uts,
    seccomp,
    confinement::cgroup_parent,
    no_new_privileges,
    limits::pids,
    paths::runtime_socket,
];

pub fn finding(cis: &'static str, rule: &'static str, severity: Severity, passed: bool, found: String, fix: &'static str) -> Finding {
    Finding { cis, rule, severity, passed, found, fix, because: None, unverified: false }
}

/// Docker's default capability set: what Docker Bench 5.3 does not count as added.
const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The capabilities of the named sets, sorted and without repeats.
pub fn caps_in(v: &Value, sets: &[&str]) -> Vec<String> {
    let c = &v["process"]["capabilities"];
    let mut all: Vec<String> = sets.iter().flat_map(|set| c[set].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string))).collect();
    all.sort();
    all.dedup();
    all
}

/// Every capability the process may hold (bounding ∪ effective ∪ permitted ∪ inheritable ∪ ambient).
pub fn caps(v: &Value) -> Vec<String> {
    caps_in(v, &["bounding", "effective", "permitted", "inheritable", "ambient"])
}

pub fn mounts(v: &Value) -> impl Iterator<Item = &Value> {
    v["mounts"].as_array().into_iter().flatten()
}

pub fn is_bind(m: &Value) -> bool {
    m["type"] == "bind" || m["options"].as_array().into_iter().flatten().any(|o| o == "bind" || o == "rbind")
}

pub fn has_option(m: &Value, opt: &str) -> bool {
    m["options"].as_array().into_iter().flatten().any(|o| o == opt)
}

fn capabilities(v: &Value) -> Finding {
    let added: Vec<String> = caps(v).into_iter().filter(|c| !DOCKER_DEFAULT_CAPS.contains(&c.as_str())).collect();
    let fix = "drop every capability the workload does not need (none of CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE …)";
    let all = caps(v);
    if added.is_empty() {
        let found = if all.is_empty() { "no capabilities".to_string() } else { format!("only default capabilities ({})", all.len()) };
        finding("5.3", "capabilities restricted", Severity::High, true, found, fix)
    } else {
        finding("5.3", "capabilities restricted", Severity::High, false, format!("adds {}", added.join(" ")), fix)
    }
}

fn cpu(v: &Value) -> Finding {
    let c = &v["linux"]["resources"]["cpu"];
    let shares = c["shares"].as_u64().filter(|&s| s != 0 && s != 1024);
    let quota = c["quota"].as_i64().filter(|&q| q > 0);
    let fix = "set linux.resources.cpu.shares or quota";
    let found = match (shares, quota) {
        (_, Some(q)) => format!("quota {q} per period {}", c["period"].as_u64().unwrap_or(100_000)),
        (Some(s), None) => format!("shares {s}"),
        (None, None) => "no cpu shares or quota".into(),
    };
    finding("5.11", "cpu priority or limit", Severity::Low, shares.is_some() || quota.is_some(), found, fix)
}

fn read_only_root(v: &Value) -> Finding {
    let ro = v["root"]["readonly"] == true;
    finding(
        "5.12",
        "read-only root filesystem",
        Severity::Medium,
        ro,
        if ro { "read-only" } else { "writable" }.into(),
        "set root.readonly (and mount a tmpfs where the workload writes)",
    )
}

/// A default action that lets a call through makes the filter a list of exceptions to "allowed":
/// unconfined, whatever its rules (SCMP_ACT_LOG allows and logs).
fn seccomp(v: &Value) -> Finding {
    let s = &v["linux"]["seccomp"];
    let fix = "set linux.seccomp with a default action that refuses (testudo spec writes Docker's default profile)";
    if s.is_null() {
        return finding("5.21", "seccomp profile", Severity::High, false, "no seccomp profile (unconfined)".into(), fix);
    }
    let rules = s["syscalls"].as_array().map_or(0, Vec::len);
    let default = s["defaultAction"].as_str().unwrap_or("?");
    let allows = matches!(default, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG");
    let found = if allows {
        format!("default {default} allows every call not listed ({rules} rules): unconfined")
    } else {
        format!("default {default}, {rules} rules")
    };
    finding("5.21", "seccomp profile", Severity::High, !allows, found, fix)
}

fn no_new_privileges(v: &Value) -> Finding {
    let on = v["process"]["noNewPrivileges"] == true;
    finding("5.25", "no new privileges", Severity::Medium, on, if on { "on" } else { "off" }.into(), "set process.noNewPrivileges")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seccomp_default_that_allows_is_unconfined_whatever_its_rules() {
        let rule = serde_json::json!([{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]);
        for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
            let v = serde_json::json!({"linux": {"seccomp": {"defaultAction": default, "syscalls": rule}}});
            let f = seccomp(&v);
            assert!(!f.passed && f.found.contains("unconfined"), "{default}: {f:?}");
        }
        let v = serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}}});
        assert!(seccomp(&v).passed);
    }
}
