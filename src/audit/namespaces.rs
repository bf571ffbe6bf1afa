//! Items decided by the namespaces: the host's network, pid, ipc and uts namespaces (5.9, 5.15,
//! 5.16, 5.20), ports below 1024 of the host (5.7), and who the process is on the host (4.1).
//!
//! A namespace joined by path is the host's when the path names the namespace testudo itself runs
//! in. A path that cannot be resolved here (Docker's `<exec-root>/netns/default` once dockerd has
//! stopped) is not shown to be anything else: it fails, marked unverified, never passes silently.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use super::rules::{caps_in, finding};
use super::{Finding, Severity};

/// How the container gets one namespace.
#[derive(Debug, PartialEq)]
pub enum Ns {
    /// Not listed, or joined by a path naming the host's (testudo's own).
    Host,
    New,
    /// Joined by a path naming another namespace.
    Joins(String),
    /// Joined by a path that cannot be resolved here.
    Unresolved(String),
}

pub fn namespace(v: &Value, typ: &str) -> Ns {
    let Some(entry) = v["linux"]["namespaces"].as_array().and_then(|a| a.iter().find(|n| n["type"] == typ)) else { return Ns::Host };
    let Some(path) = entry["path"].as_str().filter(|p| !p.is_empty()) else { return Ns::New };
    let proc_name = match typ {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    };
    match (std::fs::metadata(path), std::fs::metadata(format!("/proc/self/ns/{proc_name}"))) {
        (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev() => Ns::Host,
        (Ok(_), Ok(_)) => Ns::Joins(path.to_string()),
        _ => Ns::Unresolved(path.to_string()),
    }
}

fn host_namespace(v: &Value, typ: &str, cis: &'static str, rule: &'static str, severity: Severity, fix: &'static str) -> Finding {
    match namespace(v, typ) {
        Ns::New => finding(cis, rule, severity, true, format!("{typ} namespace: a new one"), fix),
        Ns::Joins(p) => finding(cis, rule, severity, true, format!("{typ} namespace: joins {p}"), fix),
        Ns::Host => finding(cis, rule, severity, false, format!("shares the host's {typ} namespace"), fix),
        Ns::Unresolved(p) => Finding {
            unverified: true,
            ..finding(
                cis,
                rule,
                severity,
                false,
                format!("joins a namespace by path that cannot be resolved here ({p}): it may be the host's {typ} namespace"),
                fix,
            )
        },
    }
}

pub fn host_network(v: &Value) -> Finding {
    host_namespace(v, "network", "5.9", "host network namespace not shared", Severity::High, "add a network namespace (linux.namespaces)")
}

pub fn host_pid(v: &Value) -> Finding {
    host_namespace(v, "pid", "5.15", "host pid namespace not shared", Severity::High, "add a pid namespace (linux.namespaces)")
}

pub fn host_ipc(v: &Value) -> Finding {
    host_namespace(v, "ipc", "5.16", "host ipc namespace not shared", Severity::High, "add an ipc namespace (linux.namespaces)")
}

pub fn host_uts(v: &Value) -> Finding {
    host_namespace(v, "uts", "5.20", "host uts namespace not shared", Severity::Medium, "add a uts namespace (linux.namespaces)")
}

/// The host uid of the container's uid `uid` through `map` (an OCI mapping list).
fn through(map: &[Value], uid: u64) -> Option<u64> {
    map.iter().find_map(|m| {
        let (c, h, n) = (m["containerID"].as_u64()?, m["hostID"].as_u64()?, m["size"].as_u64()?);
        (uid >= c && uid - c < n).then(|| h + (uid - c))
    })
}

/// `/proc/PID/uid_map` as OCI mappings, for a user namespace joined by `/proc/PID/ns/user`.
fn proc_map(path: &str) -> Option<Vec<Value>> {
    let pid = path.strip_prefix("/proc/")?.strip_suffix("/ns/user")?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).ok()?;
    text.lines()
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| serde_json::json!({"containerID": f[0], "hostID": f[1], "size": f[2]}))
        })
        .collect()
}

/// Where the process's uid lands on the host: Err when that cannot be told here.
pub fn host_uid(v: &Value) -> Result<Option<u64>, String> {
    let uid = v["process"]["user"]["uid"].as_u64().unwrap_or(0);
    match namespace(v, "user") {
        Ns::Host => Ok(Some(uid)),
        Ns::New => Ok(through(v["linux"]["uidMappings"].as_array().map_or(&[][..], Vec::as_slice), uid)),
        Ns::Joins(p) | Ns::Unresolved(p) => match proc_map(&p) {
            Some(map) => Ok(through(&map, uid)),
            None => Err(format!("uid {uid} in a user namespace joined by path ({p}) whose mapping cannot be read here")),
        },
    }
}

/// 4.1 judges the host uid the process really has: a non-root uid mapped to host uid 0 is root.
pub fn non_root(v: &Value) -> Finding {
    let uid = v["process"]["user"]["uid"].as_u64().unwrap_or(0);
    let fix = "run as a non-root user (process.user.uid), or in a user namespace that maps it to an unprivileged host id";
    let f = |passed, found| finding("4.1", "non-root user", Severity::Medium, passed, found, fix);
    match host_uid(v) {
        Ok(Some(0)) if uid == 0 => f(false, "runs as root (uid 0) of the host".into()),
        Ok(Some(0)) => f(false, format!("runs as uid {uid}, which the user namespace maps to host uid 0 (root of the host)")),
        Ok(Some(h)) if uid == 0 => f(true, format!("root in a user namespace, host uid {h}")),
        Ok(Some(h)) if h == uid => f(true, format!("runs as uid {uid}")),
        Ok(Some(h)) => f(true, format!("runs as uid {uid}, host uid {h}")),
        Ok(None) => f(false, format!("uid {uid} has no mapping to a host uid")),
        Err(why) => Finding { unverified: true, ..f(false, why) },
    }
}

/// 5.7: binding a host port below 1024 needs the host's network namespace and
/// CAP_NET_BIND_SERVICE the process can use: root's bounding set becomes its capabilities at
/// execve; a non-root process keeps only what it is given (effective, permitted, ambient).
pub fn privileged_ports(v: &Value) -> Finding {
    let fix = "give the container a network namespace of its own, or drop CAP_NET_BIND_SERVICE";
    let uid = v["process"]["user"]["uid"].as_u64().unwrap_or(0);
    let sets: &[&str] = if uid == 0 { &["bounding", "effective", "permitted", "ambient"] } else { &["effective", "permitted", "ambient"] };
    let can_bind = caps_in(v, sets).iter().any(|c| c == "CAP_NET_BIND_SERVICE");
    let only_bounding = !can_bind && caps_in(v, &["bounding"]).iter().any(|c| c == "CAP_NET_BIND_SERVICE");
    let f = |passed, found: String| finding("5.7", "no privileged host ports", Severity::Medium, passed, found, fix);
    match (namespace(v, "network"), can_bind) {
        (Ns::Host, true) => f(false, "may bind the host's ports below 1024 (host network and CAP_NET_BIND_SERVICE)".into()),
        (Ns::Unresolved(p), true) => Finding { unverified: true, ..f(false, format!("CAP_NET_BIND_SERVICE in a network namespace joined by path that cannot be resolved here ({p})")) },
        (Ns::Host | Ns::Unresolved(_), false) if only_bounding => f(
            true,
            format!("host network; uid {uid} holds CAP_NET_BIND_SERVICE only in its bounding set (a file capability in the image could raise it unless noNewPrivileges)"),
        ),
        (Ns::Host | Ns::Unresolved(_), false) => f(true, "host network without CAP_NET_BIND_SERVICE".into()),
        (Ns::New | Ns::Joins(_), _) => f(true, "ports of its own network namespace only".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hardened() -> Value {
        crate::commands::spec::hardened_config().expect("hardened")
    }

    #[test]
    fn a_non_root_uid_mapped_to_host_root_is_root() {
        let mut v = hardened();
        v["process"]["user"]["uid"] = 1000.into();
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 0, "size": 1}]);
        let f = non_root(&v);
        assert!(!f.passed && f.found.contains("host uid 0"), "{f:?}");
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        assert!(non_root(&v).passed);
    }

    #[test]
    fn a_namespace_path_that_cannot_be_resolved_is_not_passed() {
        let mut v = hardened();
        for n in v["linux"]["namespaces"].as_array_mut().expect("ns") {
            if n["type"] == "network" {
                n["path"] = "/var/run/docker/netns/default-gone".into();
            }
        }
        let f = host_network(&v);
        assert!(!f.passed && f.unverified && f.found.contains("joins a namespace by path"), "{f:?}");
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        v["process"]["user"]["uid"] = 0.into();
        assert!(privileged_ports(&v).unverified);
        // The host's own namespace by path is the host's.
        for n in v["linux"]["namespaces"].as_array_mut().expect("ns") {
            if n["type"] == "network" {
                n["path"] = "/proc/1/ns/net".into();
            }
        }
        if std::fs::metadata("/proc/1/ns/net").map(|m| m.ino()).ok() == std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok() {
            assert!(!host_network(&v).passed && !host_network(&v).unverified);
        }
    }

    #[test]
    fn bind_service_only_in_bounding_does_not_bind_for_a_non_root_user() {
        let mut v = hardened();
        v["linux"]["namespaces"].as_array_mut().expect("ns").retain(|n| n["type"] != "network");
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NET_BIND_SERVICE"]});
        v["process"]["user"]["uid"] = 1000.into();
        assert!(privileged_ports(&v).passed, "{:?}", privileged_ports(&v));
        v["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NET_BIND_SERVICE"]);
        assert!(!privileged_ports(&v).passed);
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NET_BIND_SERVICE"]});
        v["process"]["user"]["uid"] = 0.into();
        assert!(!privileged_ports(&v).passed, "root's bounding set is what it gets at execve");
    }
}
