//! 5.4 (privileged) and 5.17 (host devices): what the device cgroup allows, which device nodes the
//! container gets, and the masks privileged mode drops.
//!
//! A device rule's major or minor of -1 (Docker's `*`) or absent is the wildcard. Access to a
//! device the cgroup allows is reachable with CAP_MKNOD (make the node) or a devtmpfs mount (every
//! node of the host), so both fail 5.17 with such a rule.

use serde_json::Value;

use super::namespaces::host_uid;
use super::rules::{caps, finding, mounts};
use super::{Finding, Severity};

fn wild(n: &Value) -> bool {
    n.is_null() || n.as_i64() == Some(-1)
}

/// The rule grants read or write (not only mknod).
fn grants_rw(d: &Value) -> bool {
    d["access"].as_str().is_none_or(|a| a.contains('r') || a.contains('w'))
}

fn rules(v: &Value) -> impl Iterator<Item = &Value> {
    v["linux"]["resources"]["devices"].as_array().into_iter().flatten()
}

fn any_type(d: &Value) -> bool {
    d["type"].is_null() || d["type"] == "a"
}

/// A rule allowing read/write of every device, not undone by a later deny-all rule.
pub fn every_device_allowed(v: &Value) -> bool {
    let all = |d: &Value| any_type(d) && wild(&d["major"]) && wild(&d["minor"]);
    rules(v).fold(false, |allowed, d| {
        if !all(d) {
            allowed
        } else if d["allow"] == true {
            grants_rw(d)
        } else {
            false
        }
    })
}

/// Devices the runtime allows anyway (null, zero, full, random, urandom, tty, console, ptmx,
/// pts, tun: Docker's and runc's defaults).
const DEFAULT_ALLOWED: [(&str, i64, Option<i64>); 10] = [
    ("c", 1, Some(3)),
    ("c", 1, Some(5)),
    ("c", 1, Some(7)),
    ("c", 1, Some(8)),
    ("c", 1, Some(9)),
    ("c", 5, Some(0)),
    ("c", 5, Some(1)),
    ("c", 5, Some(2)),
    ("c", 136, None),
    ("c", 10, Some(200)),
];

fn is_default(d: &Value) -> bool {
    let (t, major, minor) = (d["type"].as_str().unwrap_or("a"), d["major"].as_i64(), d["minor"].as_i64().filter(|&m| m != -1));
    DEFAULT_ALLOWED.iter().any(|&(dt, dm, dn)| t == dt && major == Some(dm) && (minor == dn || (dn.is_none() && minor.is_none())))
}

fn describe(d: &Value) -> String {
    let n = |x: &Value| if wild(x) { "*".to_string() } else { x.to_string() };
    format!("{} {}:{} {}", d["type"].as_str().unwrap_or("a"), n(&d["major"]), n(&d["minor"]), d["access"].as_str().unwrap_or("rwm"))
}

pub fn privileged(v: &Value) -> Finding {
    let mut why = Vec::new();
    if every_device_allowed(v) {
        why.push("every device allowed".to_string());
    }
    if caps(v).iter().any(|c| c == "CAP_SYS_ADMIN") && v["linux"]["seccomp"].is_null() {
        why.push("CAP_SYS_ADMIN without seccomp".to_string());
    }
    // What privileged mode also drops: the masks over the host kernel's memory, keys and firmware.
    let masked: Vec<&str> = v["linux"]["maskedPaths"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let unmasked: Vec<&str> = ["/proc/kcore", "/proc/keys", "/sys/firmware"].into_iter().filter(|p| !masked.contains(p)).collect();
    if !unmasked.is_empty() {
        why.push(format!("not masked: {}", unmasked.join(" ")));
    }
    // And the read-only /proc/sys and sysrq-trigger, which matter to a process that is root of
    // the host (in a user namespace the kernel refuses those writes anyway).
    if matches!(host_uid(v), Ok(Some(0)) | Err(_)) {
        let ro: Vec<&str> = v["linux"]["readonlyPaths"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let writable: Vec<&str> = ["/proc/sys", "/proc/sysrq-trigger"].into_iter().filter(|p| !ro.contains(p) && !masked.contains(p)).collect();
        if !writable.is_empty() {
            why.push(format!("writable by host root: {}", writable.join(" ")));
        }
    }
    let fix = "do not run privileged: allow only the devices needed, keep seccomp with CAP_SYS_ADMIN dropped, mask /proc/kcore, /proc/keys and /sys/firmware, keep /proc/sys and /proc/sysrq-trigger read-only";
    finding("5.4", "not privileged", Severity::High, why.is_empty(), if why.is_empty() { "not privileged".into() } else { why.join(", ") }, fix)
}

pub fn devices(v: &Value) -> Finding {
    let mut found: Vec<String> = v["linux"]["devices"].as_array().into_iter().flatten().filter_map(|d| d["path"].as_str().map(str::to_string)).collect();
    for m in mounts(v).filter(|m| m["type"] == "devtmpfs") {
        found.push(format!("devtmpfs at {} (every device node of the host)", m["destination"].as_str().unwrap_or("?")));
    }
    if caps(v).iter().any(|c| c == "CAP_MKNOD") {
        let allowed: Vec<String> = rules(v).filter(|d| d["allow"] == true && grants_rw(d) && !is_default(d)).map(describe).collect();
        if !allowed.is_empty() {
            found.push(format!("device cgroup allows {} and CAP_MKNOD can make the node", allowed.join(", ")));
        }
    }
    let fix = "do not pass host devices (linux.devices, device cgroup rules with CAP_MKNOD, devtmpfs) the workload does not need";
    finding("5.17", "no host devices exposed", Severity::Medium, found.is_empty(), if found.is_empty() { "none".into() } else { found.join(", ") }, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hardened() -> Value {
        crate::commands::spec::hardened_config().expect("hardened")
    }

    #[test]
    fn minus_one_is_the_wildcard() {
        let mut v = hardened();
        v["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}]);
        assert!(!privileged(&v).passed);
        // Docker's default mknod-only wildcards allow no access.
        v["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"}]);
        assert!(privileged(&v).passed);
        // A deny-all after the allow-all undoes it.
        v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "major": -1, "access": "rwm"}, {"allow": false, "access": "rwm"}]);
        assert!(privileged(&v).passed);
    }

    #[test]
    fn an_allowed_device_with_mknod_or_devtmpfs_is_exposed() {
        let mut v = hardened();
        v["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 232, "access": "rwm"}]);
        assert!(devices(&v).passed, "without CAP_MKNOD the node cannot be made");
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_MKNOD"]);
        let f = devices(&v);
        assert!(!f.passed && f.found.contains("c 10:232 rwm"), "{f:?}");
        let mut v = hardened();
        v["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({"destination": "/d", "type": "devtmpfs", "source": "devtmpfs"}));
        assert!(!devices(&v).passed);
    }

    #[test]
    fn host_root_with_a_writable_proc_sys_is_privileged() {
        let mut v = crate::commands::spec::default_config(false).expect("default");
        assert!(privileged(&v).passed);
        v["linux"]["readonlyPaths"] = serde_json::json!([]);
        let f = privileged(&v);
        assert!(!f.passed && f.found.contains("/proc/sys /proc/sysrq-trigger"), "{f:?}");
        // Root of a user namespace is not root of the host.
        let mut h = hardened();
        h["linux"]["readonlyPaths"] = serde_json::json!([]);
        assert!(privileged(&h).passed);
    }
}
