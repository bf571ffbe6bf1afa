//! Capabilities, no_new_privileges and the non-dumpable runtime (issue 4), seen from inside.

mod common;
mod probe;

use common::{require_root, status_field, Bundle};

/// A capability mask as /proc/self/status prints it.
fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1u64 << c)))
}

const CHOWN: u32 = 0;
const DAC_OVERRIDE: u32 = 1;
const KILL: u32 = 5;
const SETGID: u32 = 6;
const SETUID: u32 = 7;
const NET_BIND_SERVICE: u32 = 10;
const NET_RAW: u32 = 13;

fn caps_json(names: &[&str]) -> serde_json::Value {
    serde_json::json!(names)
}

#[test]
fn root_gets_exactly_the_five_sets_and_dropped_caps_are_gone() {
    if !require_root() {
        return;
    }
    let mut b =
        Bundle::new("cat /proc/self/status; touch /dev/shm/f; /dev/probe chown /dev/shm/f 1000 1000; /dev/probe rawsock; /dev/probe mount /dev/shm; true");
    if !probe::add(&mut b) {
        return;
    }
    let set = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"];
    b.config["process"]["capabilities"] = serde_json::json!({
        "bounding": caps_json(&set), "effective": caps_json(&set), "permitted": caps_json(&set),
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
    });
    let out = b.run_ok();
    let all = mask(&[CHOWN, DAC_OVERRIDE, KILL, NET_BIND_SERVICE, SETUID, SETGID]);
    assert_eq!(status_field(&out, "CapBnd"), Some(all.as_str()), "{out}");
    assert_eq!(status_field(&out, "CapPrm"), Some(all.as_str()));
    assert_eq!(status_field(&out, "CapEff"), Some(all.as_str()));
    assert_eq!(status_field(&out, "CapInh"), Some(mask(&[KILL]).as_str()));
    assert_eq!(status_field(&out, "CapAmb"), Some(mask(&[KILL]).as_str()));
    let probes: Vec<&str> = out.lines().filter(|l| l.starts_with("OK") || l.starts_with("ERR")).collect();
    assert_eq!(probes.len(), 3, "{out}");
    assert_eq!(probe::errno_of(probes[0]), 0, "CAP_CHOWN kept: chown works");
    assert_eq!(probe::errno_of(probes[1]), libc::EPERM, "CAP_NET_RAW gone: raw socket refused");
    assert_eq!(probe::errno_of(probes[2]), libc::EPERM, "CAP_SYS_ADMIN gone: mount refused");
}

#[test]
fn without_cap_chown_chown_is_refused() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("touch /dev/shm/f; /dev/probe chown /dev/shm/f 1000 1000; grep CapEff /proc/self/status; true");
    if !probe::add(&mut b) {
        return;
    }
    let set = ["CAP_KILL"];
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": set, "effective": set, "permitted": set});
    let out = b.run_ok();
    assert_eq!(probe::errno_of(out.lines().next().expect("probe line")), libc::EPERM, "{out}");
    assert_eq!(status_field(&out, "CapEff"), Some(mask(&[KILL]).as_str()));
}

#[test]
fn a_non_root_user_gets_ambient_capabilities_and_nothing_else() {
    if !require_root() {
        return;
    }
    let script = "cat /proc/self/status; /dev/probe rawsock; true";
    let run = |ambient: bool| {
        let mut b = Bundle::new(script);
        if !probe::add(&mut b) {
            return None;
        }
        b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        let mut c = serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_NET_RAW", "CAP_KILL"],
        });
        if ambient {
            c["ambient"] = serde_json::json!(["CAP_NET_RAW"]);
        }
        b.config["process"]["capabilities"] = c;
        Some(b.run_ok())
    };
    let Some(out) = run(true) else { return };
    assert_eq!(status_field(&out, "CapBnd"), Some(mask(&[CHOWN, KILL, NET_BIND_SERVICE, NET_RAW]).as_str()), "{out}");
    assert_eq!(status_field(&out, "CapInh"), Some(mask(&[KILL, NET_RAW]).as_str()));
    // After execve a non-root process keeps exactly its ambient set.
    assert_eq!(status_field(&out, "CapAmb"), Some(mask(&[NET_RAW]).as_str()));
    assert_eq!(status_field(&out, "CapPrm"), Some(mask(&[NET_RAW]).as_str()));
    assert_eq!(status_field(&out, "CapEff"), Some(mask(&[NET_RAW]).as_str()));
    assert_eq!(probe::errno_of(out.lines().last().expect("probe")), 0, "ambient CAP_NET_RAW: raw socket allowed");
    let out = run(false).expect("probe");
    assert_eq!(status_field(&out, "CapAmb"), Some(mask(&[]).as_str()));
    assert_eq!(status_field(&out, "CapEff"), Some(mask(&[]).as_str()));
    assert_eq!(probe::errno_of(out.lines().last().expect("probe")), libc::EPERM);
}

#[test]
fn unknown_and_unavailable_capabilities_are_create_errors() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL", "CAP_NOT_A_CAP"]});
    let out = b.create();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CAP_NOT_A_CAP"), "{err}");
    assert_eq!(b.status(), "absent");

    // This host's own bounding set lacks CAP_SYS_RESOURCE: no container can have it.
    let host = std::fs::read_to_string("/proc/self/status").expect("status");
    let bnd = u64::from_str_radix(status_field(&host, "CapBnd").expect("CapBnd"), 16).expect("hex");
    if bnd & (1 << 24) != 0 {
        common::skip("this host has CAP_SYS_RESOURCE");
        return;
    }
    let mut b = Bundle::new("true");
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE"], "permitted": ["CAP_SYS_RESOURCE"]});
    let out = b.create();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CAP_SYS_RESOURCE") && err.contains("bounding set"), "{err}");
    assert_eq!(b.status(), "absent");
}

/// A copy of the probe, setuid root, in a rootfs of the test's own.
fn suid_probe(b: &mut Bundle) -> bool {
    let Some(p) = probe::binary() else { return false };
    let root = b.own_rootfs();
    let dst = root.join("bin/suid-probe");
    std::fs::copy(p, &dst).expect("copy probe");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
    true
}

#[test]
fn no_new_privileges_stops_a_setuid_binary() {
    if !require_root() {
        return;
    }
    let run = |nnp: bool| {
        let mut b = Bundle::new("/bin/suid-probe ids; grep NoNewPrivs /proc/self/status");
        if !suid_probe(&mut b) {
            return None;
        }
        b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        b.config["process"]["noNewPrivileges"] = nnp.into();
        Some(b.run_ok())
    };
    let Some(out) = run(true) else { return };
    assert!(out.contains("euid=1000"), "no_new_privileges: setuid bit ignored: {out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("1"));
    let out = run(false).expect("probe");
    assert!(out.contains("euid=0"), "without no_new_privileges the setuid bit works: {out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"));
}

/// The created container's init is still the runtime (waiting on exec.fifo): nothing in the
/// container may open its /proc files or ptrace it.
#[test]
fn the_waiting_init_is_not_dumpable_from_inside() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    if !probe::add(&mut b) {
        return;
    }
    // Give the exec'd process CAP_SYS_PTRACE-free root with the same caps as init: only
    // dumpability stands between it and init.
    assert!(b.create().status.success());
    let exec = |args: &[&str]| {
        let mut a = vec!["exec", b.id.as_str(), probe::PATH];
        a.extend_from_slice(args);
        let out = b.testudo(&a);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let exe = exec(&["open", "/proc/1/exe", "0"]);
    assert_eq!(probe::errno_of(&exe), libc::EACCES, "open /proc/1/exe: {exe}");
    let environ = exec(&["open", "/proc/1/environ", "0"]);
    assert_eq!(probe::errno_of(&environ), libc::EACCES, "open /proc/1/environ: {environ}");
    let ptrace = exec(&["ptrace", "1"]);
    assert_eq!(probe::errno_of(&ptrace), libc::EPERM, "ptrace init: {ptrace}");
    // The same probes against a process of the container's own succeed (the check is real).
    let own = exec(&["open", "/proc/self/exe", "0"]);
    assert_eq!(probe::errno_of(&own), 0, "{own}");
}

/// Fail closed: an LSM label this host cannot apply is a create error that leaves nothing, never
/// a warning and a container without it. (With the LSM active, the VM tests apply real labels;
/// an unloaded AppArmor profile is an error there too.)
#[test]
fn lsm_labels_this_host_cannot_apply_are_create_errors() {
    if !require_root() {
        return;
    }
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let mut cases: Vec<(&str, serde_json::Value, &str)> = vec![(
        "process.apparmorProfile",
        serde_json::json!({"process": {"apparmorProfile": "testudo-no-such-profile"}}),
        if apparmor { "is not loaded" } else { "AppArmor is not enabled" },
    )];
    if selinux {
        eprintln!("SKIP: SELinux is enabled here; the label cases run in the SELinux VM");
    } else {
        cases.push(("process.selinuxLabel", serde_json::json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}), "SELinux is not enabled"));
        cases.push(("linux.mountLabel", serde_json::json!({"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}), "SELinux is not enabled"));
    }
    for (field, patch, needle) in cases {
        let mut b = Bundle::new("true");
        for (section, fields) in patch.as_object().expect("object") {
            for (k, v) in fields.as_object().expect("object") {
                b.config[section][k] = v.clone();
            }
        }
        let out = b.create();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{field}: accepted on a host that cannot apply it");
        let last = field.rsplit('.').next().unwrap_or(field);
        assert!(err.contains(last) && err.contains(needle), "{field}: {err}");
        assert_eq!(err.lines().count(), 1, "{field}: one error record, no warnings: {err}");
        assert_eq!(b.status(), "absent");
        assert!(!b.root.join(&b.id).exists(), "{field}: state left behind");
    }
}
