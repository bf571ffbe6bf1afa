//! `features`: what this build supports, in the JSON form `runc features` prints.

use crate::error::{Error, Result};
use crate::linux::mounts;

pub fn run() -> Result<i32> {
    let (major, minor, micro) = libseccomp::ScmpVersion::current().map(|v| (v.major, v.minor, v.micro)).unwrap_or((0, 0, 0));
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mounts::option_names(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>(),
            "cgroup": {"v1": false, "v2": true, "systemd": true, "systemdUser": true, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": format!("{major}.{minor}.{micro}"),
            "org.opencontainers.runc.checkpoint.enabled": "true",
            "org.testudo.commit": env!("TESTUDO_COMMIT")
        }
    });
    println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Error::new(e.to_string()))?);
    Ok(0)
}
