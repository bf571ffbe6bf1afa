//! `checkpoint` and `restore` on the host, where CRIU 3.17 cannot dump (kernel 6.18: "Unexpected
//! rt vDSO area bounds"; the real round trip is proven in the VM, integration/vm/tests-criu.sh).
//! Here a stand-in `criu` (--criu) records the arguments testudo hands it and fails the way
//! CRIU does, with an error in its log: what CRIU is told about the container (its pid, root,
//! cgroup, external mounts, stdio), that a failure quotes the log and names it, and that a failed
//! checkpoint leaves the container running and a failed restore leaves nothing.
mod common;

use std::path::{Path, PathBuf};

use common::{require_root, Bundle};

/// A stand-in criu: writes its argv (one per line) to ARGS, and for restore whether its --root is
/// a mount point where it runs, then writes an error into its log and fails.
fn fake_criu(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("fake-criu");
    let args = dir.join("criu-args");
    let script = format!(
        r#"#!/bin/sh
printf '%s\n' "$@" > {args}
images= work= log= root=
while [ $# -gt 0 ]; do
  case $1 in
    --images-dir) images=$2; shift ;;
    --work-dir) work=$2; shift ;;
    --log-file) log=$2; shift ;;
    --root) root=$2; shift ;;
  esac
  shift
done
[ -n "$root" ] && grep -q " $root " /proc/self/mountinfo && echo "root mounted: $(ls "$root" | wc -l) entries" >> {args}
echo "(00.000100) Warn  (criu/kerndat.c:1): a probe" > "${{work:-$images}}/$log"
echo "(00.000200) Error (criu/fake.c:7): the kernel refuses" >> "${{work:-$images}}/$log"
exit 1
"#,
        args = args.display()
    );
    std::fs::write(&bin, script).expect("write fake criu");
    std::process::Command::new("chmod").arg("755").arg(&bin).status().expect("chmod");
    (bin, args)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

/// `opt` followed by `value` somewhere in `args`.
fn has(args: &[String], opt: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == opt && w[1] == value)
}

#[test]
fn checkpoint_tells_criu_the_container_and_a_criu_failure_leaves_it_running() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sleep 100");
    let data = common::scratch_dir("ckpt-data");
    b.mount(serde_json::json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind"]}));
    let (criu, args_file) = fake_criu(&b.dir);
    let pid = b.start();
    let (images, work) = (b.dir.join("img"), b.dir.join("work"));
    let out = b.testudo(&[
        "--criu",
        criu.to_str().expect("utf8"),
        "checkpoint",
        "--image-path",
        images.to_str().expect("utf8"),
        "--work-path",
        work.to_str().expect("utf8"),
        "--tcp-established",
        "--file-locks",
        "--manage-cgroups-mode",
        "soft",
        &b.id,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("criu dump failed (exit status: 1)"), "{err}");
    assert!(err.contains("Error (criu/fake.c:7): the kernel refuses"), "the log's error is quoted: {err}");
    assert!(err.contains(&format!("(log: {})", work.join("dump.log").display())), "the log is named: {err}");

    let args = lines(&args_file);
    assert_eq!(args.first().map(String::as_str), Some("dump"), "{args:?}");
    assert!(has(&args, "--tree", &pid.to_string()), "{args:?}");
    assert!(has(&args, "--root", common::rootfs().to_str().expect("utf8")), "{args:?}");
    assert!(has(&args, "--images-dir", images.to_str().expect("utf8")) && has(&args, "--work-dir", work.to_str().expect("utf8")), "{args:?}");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let v2 = cg.lines().find_map(|l| l.strip_prefix("0::")).expect("v2 line");
    let mount = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "/sys/fs/cgroup" } else { "/sys/fs/cgroup/unified" };
    assert!(has(&args, "--freeze-cgroup", &format!("{mount}{v2}")), "frozen through its own cgroup {v2}: {args:?}");
    assert!(has(&args, "--external", "mnt[/data]:/data"), "the bind mount is external: {args:?}");
    // testudo's default spec masks /proc/keys with a bind of /dev/null: external too.
    assert!(has(&args, "--external", "mnt[/proc/keys]:/dev/null"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("mnt[/proc/acpi]")), "a masked directory is a tmpfs CRIU saves: {args:?}");
    assert!(has(&args, "--empty-ns", "net"), "{args:?}");
    for f in ["--tcp-established", "--file-locks", "--manage-cgroups=soft"] {
        assert!(args.iter().any(|a| a == f), "{f}: {args:?}");
    }
    assert!(!args.iter().any(|a| a == "--leave-running" || a == "--track-mem"), "{args:?}");
    let fds: Vec<String> = serde_json::from_slice(&std::fs::read(images.join("descriptors.json")).expect("descriptors.json")).expect("json");
    assert_eq!(fds.len(), 3, "{fds:?}");

    // CRIU failed: the container is untouched.
    let st = b.state().expect("state");
    assert_eq!((st["status"].as_str(), st["pid"].as_i64()), (Some("running"), Some(pid as i64)));

    // A pre-dump on top of a parent: memory tracking, the parent, no external mounts.
    std::fs::create_dir_all(b.dir.join("p0")).expect("p0");
    let out = b.testudo(&[
        "--criu",
        criu.to_str().expect("utf8"),
        "checkpoint",
        "--pre-dump",
        "--image-path",
        images.to_str().expect("utf8"),
        "--parent-path",
        "../p0",
        &b.id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let args = lines(&args_file);
    assert_eq!(args.first().map(String::as_str), Some("pre-dump"), "{args:?}");
    assert!(has(&args, "--prev-images-dir", "../p0") && args.iter().any(|a| a == "--track-mem"), "{args:?}");
    assert!(!args.iter().any(|a| a == "--external"), "{args:?}");
    let out = b.testudo(&["checkpoint", "--image-path", images.to_str().expect("utf8"), "--parent-path", "/abs", &b.id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be relative to the image path"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn checkpoint_without_criu_or_of_a_container_not_running_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 100");
    let out = b.create();
    assert!(out.status.success());
    let img = b.dir.join("img");
    let out = b.testudo(&["checkpoint", "--image-path", img.to_str().expect("utf8"), &b.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&b.id) && err.contains("cannot be checkpointed: it is created"), "{err}");
    assert!(b.testudo(&["start", &b.id]).status.success());
    let out = b.testudo(&["--criu", "/nonexistent/criu", "checkpoint", "--image-path", img.to_str().expect("utf8"), &b.id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/criu") && err.contains("not found: install CRIU"), "{err}");
    assert_eq!(b.status(), "running");
    let out = b.testudo(&["checkpoint", "--lazy-pages", &b.id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported"));
}

#[test]
fn restore_hands_criu_the_new_cgroup_the_bound_root_and_pipes_and_a_failure_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sleep 100");
    let rootfs = b.own_rootfs();
    let data = common::scratch_dir("restore-data");
    b.mount(serde_json::json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind"]}));
    b.write();
    let (criu, args_file) = fake_criu(&b.dir);
    let images = b.dir.join("img");
    std::fs::create_dir_all(&images).expect("img");
    std::fs::write(images.join("descriptors.json"), r#"["/dev/null","pipe:[4242]","pipe:[4243]"]"#).expect("descriptors");
    let entries = std::fs::read_dir(&rootfs).expect("rootfs").count();
    let out = b.testudo(&[
        "--criu",
        criu.to_str().expect("utf8"),
        "restore",
        "--detach",
        "--image-path",
        images.to_str().expect("utf8"),
        "--bundle",
        b.dir.to_str().expect("utf8"),
        &b.id,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("criu restore failed") && err.contains("the kernel refuses") && err.contains(&format!("(log: {})", images.join("restore.log").display())),
        "{err}"
    );

    let args = lines(&args_file);
    assert_eq!(args.first().map(String::as_str), Some("restore"), "{args:?}");
    assert!(has(&args, "--cgroup-root", &format!("/testudo/{}", b.id)), "into the new container's cgroup: {args:?}");
    let root = b.root.join(&b.id).join("criu-root");
    assert!(has(&args, "--root", root.to_str().expect("utf8")), "{args:?}");
    assert!(args.iter().any(|a| a == &format!("root mounted: {entries} entries")), "criu's root is the rootfs, bound where criu runs: {args:?}");
    for f in ["--restore-detached", "--restore-sibling"] {
        assert!(args.iter().any(|a| a == f), "{f}: {args:?}");
    }
    assert!(has(&args, "--external", &format!("mnt[/data]:{}", data.display())), "{args:?}");
    assert!(has(&args, "--external", "mnt[/dev/null]:/dev/null"), "masked files from the host's /dev/null: {args:?}");
    assert!(has(&args, "--inherit-fd", "fd[1]:pipe:[4242]") && has(&args, "--inherit-fd", "fd[2]:pipe:[4243]"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("fd[0]")), "/dev/null is no pipe: {args:?}");

    // Nothing left: no container, no cgroup, no bind on the host, the rootfs whole.
    assert!(b.state().is_none(), "a failed restore leaves no container");
    assert!(!b.root.join(&b.id).exists());
    let mount = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "/sys/fs/cgroup" } else { "/sys/fs/cgroup/unified" };
    assert!(!Path::new(&format!("{mount}/testudo/{}", b.id)).exists(), "cgroup left");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mi.contains("criu-root"), "the root bind shows on the host: {mi}");
    assert_eq!(std::fs::read_dir(&rootfs).expect("rootfs").count(), entries, "the rootfs lost entries");
}

/// A stdin of the caller's /dev/null (conmon gives one) is the container's own /dev/null inside,
/// as in runc: CRIU finds every open file through a mount of the container, and the host's /dev
/// is none ("Can't lookup mount=… for fd=0 path=/dev/null", seen with podman in the VM).
#[test]
fn stdio_of_the_callers_dev_null_is_the_containers_own() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(
        r#"for fd in 0 1; do m=$(grep mnt_id /proc/self/fdinfo/$fd | tr -dc 0-9); echo "fd $fd: $(grep "^$m " /proc/self/mountinfo | cut -d' ' -f5)"; done"#,
    );
    b.write();
    let out = b.cmd(&["run", "--bundle", b.dir.to_str().expect("utf8"), &b.id]).stdin(std::process::Stdio::null()).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == "fd 0: /dev"), "stdin is a file of the container's /dev mount: {stdout}");
    // A pipe is left alone (its mount is the pipefs, in no mount table).
    assert!(stdout.lines().any(|l| l == "fd 1: "), "{stdout}");
}
