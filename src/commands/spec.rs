//! `spec`: write a default config.json, hardened: runc's defaults plus no_new_privileges, Docker's
//! default seccomp profile, and the same masked and read-only paths.

use crate::cli::SpecCmd;
use crate::error::{Context, Error, Result};

/// seccomp-profiles/default.json (Docker's default profile, see the README there), built in so
/// that `spec` needs nothing beside the binary.
const DEFAULT_SECCOMP: &str = include_str!("../../seccomp-profiles/default.json");

pub fn default_config(rootless: bool) -> Result<serde_json::Value> {
    let mut v = base_config(rootless);
    v["linux"]["seccomp"] = default_seccomp()?;
    Ok(v)
}

/// seccomp-profiles/default.json, parsed.
pub fn default_seccomp() -> Result<serde_json::Value> {
    serde_json::from_str(DEFAULT_SECCOMP).map_err(|e| Error::new(format!("built-in seccomp profile: {e}")))
}

/// The default config without linux.seccomp, which is most of its text: `sandbox` sets its own
/// profile and does not parse the default one only to drop it.
fn base_config(rootless: bool) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut v = serde_json::json!({
        "ociVersion": crate::spec::SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "testudo",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            // runc's: no cgroup namespace, so a client that appends one (containerd, podman
            // do) does not list it twice, which runc and we refuse. `--hardened` adds it.
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                // The running kernel's exact build and the addresses of its symbols: a map for a
                // kernel exploit. The third is CVE-2020-8694 (RAPL power readings leak secrets).
                "/proc/config.gz", "/sys/kernel/vmcoreinfo", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            // runc's: deny every device; the runtime then allows the default nodes (cgroups::devices).
            "resources": {"devices": [{"allow": false, "access": "rwm"}]}
        }
    });
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        // As runc: a rootless container may not be able to program its cgroup.
        v["linux"].as_object_mut().map(|l| l.remove("resources"));
        if let Some(a) = v["linux"]["namespaces"].as_array_mut() {
            a.push(serde_json::json!({"type": "user"}));
        }
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // As runc: only the caller's ids are mapped, so uid=/gid= options (devpts gid=5) would
        // name ids the namespace does not have; and a user namespace may mount sysfs only with
        // a network namespace of its own, so /sys is the host's, bound read-only. Unlike runc,
        // the network namespace stays: a container of one user needs no host network to be useful,
        // and isolation is not dropped by default.
        if let Some(mounts) = v["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o.as_str().is_none_or(|o| !o.starts_with("uid=") && !o.starts_with("gid=")));
                }
            }
        }
    }
    v
}

/// `spec --hardened`: the default config, and everything else `check` asks for: a user
/// namespace whose root is an unprivileged host range, a non-root user in it, no capabilities,
/// memory, cpu and pids limits, a tmpfs /tmp under the read-only root.
pub fn hardened_config() -> Result<serde_json::Value> {
    let mut v = hardened_base();
    v["linux"]["seccomp"] = default_seccomp()?;
    Ok(v)
}

/// `hardened_config` without linux.seccomp, for the caller to set.
pub fn hardened_base() -> serde_json::Value {
    let mut v = base_config(false);
    let none = serde_json::json!([]);
    v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    v["process"]["capabilities"] = serde_json::json!({"bounding": none, "effective": none, "permitted": none});
    if let Some(a) = v["linux"]["namespaces"].as_array_mut() {
        // The container sees its own cgroup as "/", not the host's cgroup paths.
        a.push(serde_json::json!({"type": "cgroup"}));
        a.push(serde_json::json!({"type": "user"}));
    }
    // Root of the container is host uid 100000: no host file is the container's to own.
    v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["resources"]["memory"] = serde_json::json!({"limit": 268435456});
    v["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 100000, "period": 100000});
    v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 128});
    if let Some(m) = v["mounts"].as_array_mut() {
        m.push(serde_json::json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"]}));
    }
    v
}

pub fn run(s: &SpecCmd) -> Result<i32> {
    let path = s.bundle.join("config.json");
    if path.exists() {
        return Err(Error::new(format!("{path:?} already exists")));
    }
    let config = if s.hardened { hardened_config()? } else { default_config(s.rootless)? };
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::new(e.to_string()))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {path:?}"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_config_passes_our_own_validation() {
        let v = super::default_config(false).expect("config");
        let spec = crate::spec::parse(v.to_string().as_bytes()).expect("parse");
        crate::spec::validate(&spec).expect("valid");
        let v = super::default_config(true).expect("config");
        let spec = crate::spec::parse(v.to_string().as_bytes()).expect("parse");
        crate::spec::validate(&spec).expect("valid rootless");
    }

    /// runc's default namespaces (a client appending a cgroup one must not list it twice);
    /// the hardened spec has the cgroup namespace.
    #[test]
    fn the_default_namespaces_are_runcs_and_hardened_adds_cgroup() {
        let types = |v: &serde_json::Value| -> Vec<String> {
            v["linux"]["namespaces"].as_array().expect("namespaces").iter().map(|n| n["type"].as_str().expect("type").to_string()).collect()
        };
        assert_eq!(types(&super::default_config(false).expect("config")), ["pid", "network", "ipc", "uts", "mount"]);
        assert!(types(&super::hardened_config().expect("config")).contains(&"cgroup".to_string()));
    }

    #[test]
    fn the_rootless_config_maps_the_caller_and_mounts_what_a_user_namespace_can() {
        let v = super::default_config(true).expect("config");
        let uid = nix::unistd::getuid().as_raw();
        assert_eq!(v["linux"]["uidMappings"], serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]));
        assert!(v["linux"]["namespaces"].as_array().expect("namespaces").iter().any(|n| n["type"] == "user"));
        assert!(v["linux"]["namespaces"].as_array().expect("namespaces").iter().any(|n| n["type"] == "network"), "network namespace kept");
        assert!(v["linux"].get("resources").is_none(), "no cgroup resources");
        let mounts = v["mounts"].as_array().expect("mounts");
        let sys = mounts.iter().find(|m| m["destination"] == "/sys").expect("/sys");
        assert_eq!(sys["source"], "/sys");
        assert!(sys["options"].as_array().expect("options").iter().any(|o| o == "rbind"));
        let opts = mounts.iter().flat_map(|m| m["options"].as_array().cloned().unwrap_or_default());
        assert!(opts.filter_map(|o| o.as_str().map(String::from)).all(|o| !o.starts_with("uid=") && !o.starts_with("gid=")));
    }

    #[test]
    fn the_default_config_carries_the_shipped_default_seccomp_profile() {
        let shipped: serde_json::Value = serde_json::from_str(super::DEFAULT_SECCOMP).expect("json");
        for rootless in [false, true] {
            let v = super::default_config(rootless).expect("config");
            assert_eq!(v["linux"]["seccomp"], shipped, "rootless={rootless}");
            assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        }
    }
}
