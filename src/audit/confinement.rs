//! What the bundle itself says about mandatory access control, mount propagation, resource limits
//! and the cgroup: 5.1 (AppArmor), 5.2 (SELinux), 5.18 (rlimits), 5.19 (propagation), 5.24 (cgroup
//! parent).
//!
//! 5.1/5.2 judge what the bundle sets, not the host: no profile or label set passes (the host's
//! default applies, and create refuses a label the host cannot apply); an explicit `unconfined`
//! profile, or a label of a type that disables confinement, fails.
//! 5.30 (the host's user namespace) is not an item here: config.json cannot tell `--userns=host`
//! from Docker's default, and 4.1 judges a 0→0 mapping by the host uid it gives.

use serde_json::Value;

use super::rules::{finding, mounts};
use super::{Finding, Severity};

pub fn apparmor(v: &Value) -> Finding {
    let fix = "do not set process.apparmorProfile to unconfined";
    match v["process"]["apparmorProfile"].as_str() {
        Some("unconfined") => finding("5.1", "AppArmor profile", Severity::Medium, false, "apparmorProfile unconfined".into(), fix),
        Some(p) if !p.is_empty() => finding("5.1", "AppArmor profile", Severity::Medium, true, format!("profile {p}"), fix),
        _ => finding("5.1", "AppArmor profile", Severity::Medium, true, "none set by the bundle (the host's default)".into(), fix),
    }
}

/// SELinux types that leave the process unconfined: spc_t ("super privileged container", what
/// `--security-opt label=disable` and privileged mode give) and the unconfined domains.
const UNCONFINED_TYPES: [&str; 4] = ["spc_t", "unconfined_t", "unconfined_service_t", "kernel_t"];

pub fn selinux(v: &Value) -> Finding {
    let fix = "do not label the process spc_t or unconfined_t";
    let label = v["process"]["selinuxLabel"].as_str().unwrap_or("");
    let typ = label.split(':').nth(2).unwrap_or("");
    if UNCONFINED_TYPES.contains(&typ) {
        return finding("5.2", "SELinux label", Severity::Medium, false, format!("label {label} is unconfined"), fix);
    }
    let found = if label.is_empty() { "none set by the bundle (the host's default)".to_string() } else { format!("label {label}") };
    finding("5.2", "SELinux label", Severity::Medium, true, found, fix)
}

/// Resources the kernel bounds by rlimit alone: unlimited is what the item warns about.
const BOUNDED: [&str; 5] = ["RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE"];

pub fn rlimits(v: &Value) -> Finding {
    let unlimited: Vec<&str> = v["process"]["rlimits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["hard"].as_u64() == Some(u64::MAX) || r["soft"].as_u64() == Some(u64::MAX))
        .filter_map(|r| r["type"].as_str())
        .filter(|t| BOUNDED.contains(t))
        .collect();
    let fix = "give process.rlimits finite values";
    let found = if unlimited.is_empty() { "no unlimited rlimit".to_string() } else { format!("unlimited {}", unlimited.join(" ")) };
    finding("5.18", "rlimits bounded", Severity::Low, unlimited.is_empty(), found, fix)
}

/// A shared mount propagates the container's mounts to the host (and the host's into it).
pub fn propagation(v: &Value) -> Finding {
    let shared = |o: &Value| o == "shared" || o == "rshared";
    let mut found: Vec<String> = mounts(v)
        .filter(|m| m["options"].as_array().into_iter().flatten().any(shared))
        .map(|m| format!("{} shared", m["destination"].as_str().unwrap_or("?")))
        .collect();
    if shared(&v["linux"]["rootfsPropagation"]) {
        found.push(format!("rootfsPropagation {}", v["linux"]["rootfsPropagation"].as_str().unwrap_or("")));
    }
    let fix = "use private or slave propagation (no shared/rshared option, rootfsPropagation)";
    finding(
        "5.19",
        "mount propagation not shared",
        Severity::Medium,
        found.is_empty(),
        if found.is_empty() { "none shared".into() } else { found.join(", ") },
        fix,
    )
}

/// The container's cgroup under a parent of its own: not the root cgroup, not outside the tree.
pub fn cgroup_parent(v: &Value) -> Finding {
    let fix = "give linux.cgroupsPath a cgroup of the container's own";
    let path = v["linux"]["cgroupsPath"].as_str().unwrap_or("");
    let bad = path == "/" || path.split(['/', ':']).any(|c| c == "..");
    let found = if path.is_empty() { "the runtime's default".to_string() } else { format!("cgroupsPath {path}") };
    finding("5.24", "cgroup of its own", Severity::Low, !bad, found, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_unconfinement_fails_and_the_hosts_default_passes() {
        let v = serde_json::json!({"process": {"apparmorProfile": "unconfined", "selinuxLabel": "system_u:system_r:spc_t:s0"}});
        assert!(!apparmor(&v).passed && !selinux(&v).passed);
        let v = serde_json::json!({"process": {"apparmorProfile": "docker-default", "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"}});
        assert!(apparmor(&v).passed && selinux(&v).passed);
        assert!(apparmor(&Value::Null).passed && selinux(&Value::Null).passed);
    }

    #[test]
    fn shared_propagation_and_unlimited_rlimits_fail() {
        let v = serde_json::json!({"mounts": [{"destination": "/m", "type": "bind", "source": "/srv", "options": ["rbind", "rshared"]}]});
        assert!(!propagation(&v).passed);
        assert!(!propagation(&serde_json::json!({"linux": {"rootfsPropagation": "shared"}})).passed);
        assert!(propagation(&serde_json::json!({"linux": {"rootfsPropagation": "rslave"}})).passed);
        assert!(!rlimits(&serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NPROC", "hard": u64::MAX, "soft": 100}]}})).passed);
        assert!(rlimits(&serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]}})).passed);
        assert!(!cgroup_parent(&serde_json::json!({"linux": {"cgroupsPath": "/"}})).passed);
        assert!(!cgroup_parent(&serde_json::json!({"linux": {"cgroupsPath": "/docker/../.."}})).passed);
        assert!(cgroup_parent(&serde_json::json!({"linux": {"cgroupsPath": "system.slice:docker:abc"}})).passed);
    }
}
