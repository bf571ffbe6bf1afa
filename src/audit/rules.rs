//! One function per audited item, reading the spec as JSON (the names the spec and Docker Bench
//! use: `CAP_SYS_ADMIN`, `network`, `SCMP_ACT_ALLOW`). Each says what it found either way.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use super::{Finding, Severity};

pub type Rule = fn(&Value) -> Finding;

pub const ALL: [Rule; 17] = [
    non_root,
    capabilities,
    privileged,
    sensitive_mounts,
    privileged_ports,
    host_network,
    memory,
    cpu,
    read_only_root,
    host_pid,
    host_ipc,
    devices,
    host_uts,
    seccomp,
    no_new_privileges,
    pids,
    runtime_socket,
];

fn finding(cis: &'static str, rule: &'static str, severity: Severity, passed: bool, found: String, fix: &'static str) -> Finding {
    Finding { cis, rule, severity, passed, found, fix }
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

/// Every capability the process may hold (bounding ∪ effective ∪ permitted ∪ inheritable ∪ ambient).
fn caps(v: &Value) -> Vec<String> {
    let c = &v["process"]["capabilities"];
    let mut all: Vec<String> = ["bounding", "effective", "permitted", "inheritable", "ambient"]
        .iter()
        .flat_map(|set| c[set].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// How the container gets this namespace: None when it shares the host's (not listed, or joined
/// by a path that names the namespace testudo itself runs in), else how.
fn namespace(v: &Value, typ: &str) -> Option<String> {
    let entry = v["linux"]["namespaces"].as_array()?.iter().find(|n| n["type"] == typ)?;
    let Some(path) = entry["path"].as_str().filter(|p| !p.is_empty()) else { return Some("a new one".into()) };
    let proc_name = match typ {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    };
    let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| a.ino() == b.ino() && a.dev() == b.dev();
    match (std::fs::metadata(path), std::fs::metadata(format!("/proc/self/ns/{proc_name}"))) {
        (Ok(a), Ok(b)) if same(&a, &b) => None,
        _ => Some(format!("joins {path}")),
    }
}

fn host_namespace(v: &Value, typ: &str, cis: &'static str, rule: &'static str, severity: Severity, fix: &'static str) -> Finding {
    match namespace(v, typ) {
        Some(how) => finding(cis, rule, severity, true, format!("{typ} namespace: {how}"), fix),
        None => finding(cis, rule, severity, false, format!("shares the host's {typ} namespace"), fix),
    }
}

fn mounts(v: &Value) -> impl Iterator<Item = &Value> {
    v["mounts"].as_array().into_iter().flatten()
}

fn is_bind(m: &Value) -> bool {
    m["type"] == "bind" || m["options"].as_array().into_iter().flatten().any(|o| o == "bind" || o == "rbind")
}

fn has_option(m: &Value, opt: &str) -> bool {
    m["options"].as_array().into_iter().flatten().any(|o| o == opt)
}

fn non_root(v: &Value) -> Finding {
    let uid = v["process"]["user"]["uid"].as_u64().unwrap_or(0);
    let fix = "run as a non-root user (process.user.uid), or in a user namespace that maps root to an unprivileged host id";
    if uid != 0 {
        return finding("4.1", "non-root user", Severity::Medium, true, format!("runs as uid {uid}"), fix);
    }
    let maps_root = v["linux"]["uidMappings"].as_array().into_iter().flatten().find(|m| {
        let (c, n) = (m["containerID"].as_u64().unwrap_or(u64::MAX), m["size"].as_u64().unwrap_or(0));
        c == 0 && n > 0
    });
    match maps_root.and_then(|m| m["hostID"].as_u64()).filter(|&h| h != 0 && namespace(v, "user").is_some()) {
        Some(host) => finding("4.1", "non-root user", Severity::Medium, true, format!("root in a user namespace, host uid {host}"), fix),
        None => finding("4.1", "non-root user", Severity::Medium, false, "runs as root (uid 0) of the host".into(), fix),
    }
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

fn privileged(v: &Value) -> Finding {
    let mut why = Vec::new();
    let all_devices = v["linux"]["resources"]["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["allow"] == true && (d["type"].is_null() || d["type"] == "a") && d["major"].is_null() && d["minor"].is_null());
    if all_devices {
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
    let fix = "do not run privileged: allow only the devices needed, keep seccomp with CAP_SYS_ADMIN dropped, mask /proc/kcore, /proc/keys and /sys/firmware";
    finding("5.4", "not privileged", Severity::High, why.is_empty(), if why.is_empty() { "not privileged".into() } else { why.join(", ") }, fix)
}

const SENSITIVE: [&str; 8] = ["/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"];

fn sensitive_mounts(v: &Value) -> Finding {
    let hits: Vec<String> = mounts(v)
        .filter(|m| is_bind(m))
        .filter_map(|m| m["source"].as_str().map(|s| (s, m)))
        .filter(|(s, _)| SENSITIVE.iter().any(|d| *s == *d || (*d != "/" && s.starts_with(&format!("{d}/")))))
        .map(|(s, m)| format!("{s} at {}{}", m["destination"].as_str().unwrap_or("?"), if has_option(m, "ro") { " (ro)" } else { "" }))
        .collect();
    let fix = "do not bind-mount the host's /, /boot, /dev, /etc, /lib, /proc, /sys or /usr";
    finding("5.5", "no sensitive host directory mounted", Severity::High, hits.is_empty(), if hits.is_empty() { "none".into() } else { hits.join(", ") }, fix)
}

fn privileged_ports(v: &Value) -> Finding {
    let host_net = namespace(v, "network").is_none();
    let bind = caps(v).iter().any(|c| c == "CAP_NET_BIND_SERVICE");
    let fix = "give the container a network namespace of its own, or drop CAP_NET_BIND_SERVICE";
    let found = match (host_net, bind) {
        (true, true) => "may bind the host's ports below 1024 (host network and CAP_NET_BIND_SERVICE)",
        (true, false) => "host network without CAP_NET_BIND_SERVICE",
        (false, _) => "ports of its own network namespace only",
    };
    finding("5.7", "no privileged host ports", Severity::Medium, !(host_net && bind), found.into(), fix)
}

fn host_network(v: &Value) -> Finding {
    host_namespace(v, "network", "5.9", "host network namespace not shared", Severity::High, "add a network namespace (linux.namespaces)")
}

fn memory(v: &Value) -> Finding {
    let limit = v["linux"]["resources"]["memory"]["limit"].as_i64().filter(|&l| l > 0);
    let fix = "set linux.resources.memory.limit";
    match limit {
        Some(l) => finding("5.10", "memory limit", Severity::Medium, true, format!("{l} bytes"), fix),
        None => finding("5.10", "memory limit", Severity::Medium, false, "no memory limit".into(), fix),
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

fn host_pid(v: &Value) -> Finding {
    host_namespace(v, "pid", "5.15", "host pid namespace not shared", Severity::High, "add a pid namespace (linux.namespaces)")
}

fn host_ipc(v: &Value) -> Finding {
    host_namespace(v, "ipc", "5.16", "host ipc namespace not shared", Severity::High, "add an ipc namespace (linux.namespaces)")
}

fn devices(v: &Value) -> Finding {
    let listed: Vec<String> = v["linux"]["devices"].as_array().into_iter().flatten().filter_map(|d| d["path"].as_str().map(str::to_string)).collect();
    let fix = "do not pass host devices (linux.devices) the workload does not need";
    finding("5.17", "no host devices exposed", Severity::Medium, listed.is_empty(), if listed.is_empty() { "none".into() } else { listed.join(" ") }, fix)
}

fn host_uts(v: &Value) -> Finding {
    host_namespace(v, "uts", "5.20", "host uts namespace not shared", Severity::Medium, "add a uts namespace (linux.namespaces)")
}

fn seccomp(v: &Value) -> Finding {
    let s = &v["linux"]["seccomp"];
    let fix = "set linux.seccomp (testudo spec writes Docker's default profile)";
    if s.is_null() {
        return finding("5.21", "seccomp profile", Severity::High, false, "no seccomp profile (unconfined)".into(), fix);
    }
    let rules = s["syscalls"].as_array().map_or(0, Vec::len);
    let default = s["defaultAction"].as_str().unwrap_or("?");
    let useless = default == "SCMP_ACT_ALLOW" && rules == 0;
    finding("5.21", "seccomp profile", Severity::High, !useless, format!("default {default}, {rules} rules"), fix)
}

fn no_new_privileges(v: &Value) -> Finding {
    let on = v["process"]["noNewPrivileges"] == true;
    finding("5.25", "no new privileges", Severity::Medium, on, if on { "on" } else { "off" }.into(), "set process.noNewPrivileges")
}

fn pids(v: &Value) -> Finding {
    let limit = v["linux"]["resources"]["pids"]["limit"].as_i64().filter(|&l| l > 0);
    let fix = "set linux.resources.pids.limit";
    match limit {
        Some(l) => finding("5.28", "pids limit", Severity::Medium, true, format!("{l}"), fix),
        None => finding("5.28", "pids limit", Severity::Medium, false, "no pids limit".into(), fix),
    }
}

fn runtime_socket(v: &Value) -> Finding {
    let socks: Vec<String> = mounts(v)
        .filter_map(|m| m["source"].as_str())
        .filter(|s| ["docker.sock", "containerd.sock", "podman.sock", "crio.sock"].iter().any(|n| s.ends_with(n)))
        .map(str::to_string)
        .collect();
    let fix = "never mount a container engine's socket into a container";
    finding("5.31", "no container engine socket mounted", Severity::High, socks.is_empty(), if socks.is_empty() { "none".into() } else { socks.join(" ") }, fix)
}
