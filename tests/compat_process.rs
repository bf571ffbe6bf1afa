//! Issue 24: where clients rely on runc's behaviour for the container's process, testudo behaves
//! the same; each test checks what the process sees (/proc/self/status, its cwd, its errors).

mod common;

use common::{require_root, Bundle};

fn tmpfs(b: &mut Bundle, at: &str, mode: &str) {
    b.mount(serde_json::json!({"destination": at, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", format!("mode={mode}")]}));
}

/// runc enters process.cwd before it drops to the user (libcontainer's finalizeNamespace), so a
/// cwd below a directory only root can search works for exec --user and for the init.
#[test]
fn a_cwd_only_root_can_reach_is_entered_before_the_user_drop() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("mkdir -p /work/private/open && chmod 0700 /work/private && chmod 0777 /work/private/open && exec sleep 100");
    tmpfs(&mut b, "/work", "0755");
    b.start();
    let (code, out, err) = b.exec(&[
        "--user",
        "1000:1000",
        "--cwd",
        "/work/private/open",
        "sh",
        "-c",
        "readlink /proc/self/cwd; grep ^Uid: /proc/self/status; echo hi > f && cat f",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/work/private/open", "{out}");
    assert!(lines[1].split_whitespace().skip(1).all(|id| id == "1000"), "the process runs as the user: {out}");
    assert_eq!(lines[2], "hi", "and uses its cwd: {out}");
    // The user still cannot go through the directory it may not search.
    let (code, _, err) = b.exec(&["--user", "1000:1000", "--cwd", "/work/private/open", "ls", "/work/private"]);
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");

    // The init, as a user, with a cwd that only root may enter.
    let mut b = Bundle::new("readlink /proc/self/cwd; grep ^Uid: /proc/self/status; ls . 2>&1 | head -1");
    tmpfs(&mut b, "/work", "0700");
    b.config["process"]["cwd"] = "/work".into();
    b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/work", "{out}");
    assert!(lines[1].split_whitespace().skip(1).all(|id| id == "1000"), "{out}");
    assert!(lines[2].contains("Permission denied"), "the user may not read it: {out}");
}

fn status_hex(out: &str, key: &str) -> u64 {
    let v = common::status_field(out, key).unwrap_or_else(|| panic!("no {key} in {out}"));
    u64::from_str_radix(v.trim(), 16).expect("hex")
}

/// Permitted capabilities outside the bounding set: the kernel lets a process hold them until
/// execve, which drops them; runc runs such a spec. testudo runs it too, with one warning line
/// naming them, and the process has exactly the bounding set's share.
#[test]
fn permitted_beyond_bounding_runs_with_a_warning_and_without_them() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status");
    b.config["process"]["capabilities"] = serde_json::json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
        "effective": ["CAP_KILL", "CAP_NET_RAW"],
    });
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("CAP_NET_RAW, CAP_SYS_ADMIN not in capabilities.bounding"), "{err}");
    let (chown, kill) = (1u64 << 0, 1u64 << 5); // CAP_CHOWN, CAP_KILL
    assert_eq!(status_hex(&out, "CapBnd"), chown | kill, "{out}");
    // Root in the container: execve makes permitted bounding | inheritable, effective the same.
    assert_eq!(status_hex(&out, "CapPrm"), chown | kill, "{out}");
    assert_eq!(status_hex(&out, "CapEff"), chown | kill, "{out}");

    // As a user, the spec's own effective set, without what the bounding set lacks.
    b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]);
    b.config["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_KILL", "CAP_NET_RAW"]);
    b.id.push_str("-user");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_hex(&out, "CapPrm"), kill, "{out}");
    assert_eq!(status_hex(&out, "CapEff"), kill, "{out}");
}

/// runc's `exec` exits 255 when the process cannot be run ("exec failed"), so that a caller can
/// tell it from the process's own exit status: a paused container, a --pid-file that cannot be
/// written (and then the process is not left running: its pid is nowhere to be found).
#[test]
fn exec_failures_exit_255_as_runcs() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("exec sleep 100");
    b.start();
    let missing = b.dir.join("no-such-dir/pid");
    let out = b.testudo(&["exec", "--pid-file", missing.to_str().expect("utf8"), &b.id, "sleep", "1001"]);
    assert_eq!(out.status.code(), Some(255), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, seen, err) = b.exec(&["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]);
    assert_eq!(code, 0, "{err}");
    assert!(!seen.contains("sleep 1001"), "the process whose pid file failed is gone: {seen}");
    // The process's own exit code is still exec's.
    assert_eq!(b.exec(&["sh", "-c", "exit 7"]).0, 7);
    assert!(b.testudo(&["pause", &b.id]).status.success());
    let out = b.testudo(&["exec", &b.id, "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(b.testudo(&["resume", &b.id]).status.success());
}

/// `testudo spec` has runc's namespaces, so a client that appends a cgroup namespace (as
/// containerd and podman do) gets a container in its own cgroup namespace, not "listed twice".
#[test]
fn a_cgroup_namespace_appended_to_the_default_spec_is_not_a_duplicate() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("grep '^0::' /proc/self/cgroup");
    b.config["linux"]["namespaces"].as_array_mut().expect("namespaces").push(serde_json::json!({"type": "cgroup"}));
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "0::/", "the container's own cgroup namespace: {out}");
}

/// A mount at /dev with "ro": runc mounts it writable, makes the nodes, links and mount points,
/// and then makes it read-only (finalizeRootfs). The container sees a read-only /dev whose
/// nodes work and whose devpts is mounted.
#[test]
fn a_read_only_dev_mount_is_made_read_only_after_its_nodes() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(
        "awk '$5 == \"/dev\" {print \"dev \" $6} $5 == \"/dev/pts\" {print \"pts \" $9}' /proc/self/mountinfo; \
         echo x > /dev/null && echo null-ok; touch /dev/new 2>&1 | grep -o 'Read-only file system'; ls /dev/pts/ptmx",
    );
    for m in b.config["mounts"].as_array_mut().expect("mounts") {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().expect("options").push("ro".into());
        }
    }
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with("dev ro,")), "/dev is read-only: {out}");
    assert!(out.lines().any(|l| l == "pts devpts"), "devpts is mounted on it: {out}");
    assert!(out.contains("null-ok\n"), "/dev/null works: {out}");
    assert!(out.contains("Read-only file system\n"), "{out}");
    assert!(out.contains("/dev/pts/ptmx"), "{out}");
}
