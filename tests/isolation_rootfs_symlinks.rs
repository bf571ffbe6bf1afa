//! A malicious rootfs (issue 3): /proc, /dev, /sys (refused), /dev/null, a volume destination, a parent directory
//! and the cwd are symlinks to host paths, absolute and `../..`. The host stays untouched, and
//! the container either gets the mount inside its own root or create fails clearly.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{require_root, scratch_dir, Bundle};

/// A host directory the rootfs points at; every test checks it is still empty afterwards.
struct Victim(PathBuf);

impl Victim {
    fn new(name: &str) -> Victim {
        Victim(scratch_dir(&format!("victim-{name}")))
    }
    fn path(&self, sub: &str) -> PathBuf {
        self.0.join(sub)
    }
    /// `../..` enough times to climb out of any rootfs, then the victim path.
    fn dotdot(&self, sub: &str) -> String {
        format!("{}{}", "../".repeat(16), self.path(sub).strip_prefix("/").expect("abs").display())
    }
    /// Nothing created beneath it, nothing mounted on it on the host.
    fn assert_untouched(&self, skip: &[&str]) {
        let left: Vec<_> = walk(&self.0).into_iter().filter(|p| !skip.iter().any(|s| p.ends_with(s))).collect();
        assert!(left.is_empty(), "the container wrote to the host: {left:?}");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mi.contains(self.0.to_str().expect("utf8")), "a mount landed on the host: {mi}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            let sub = walk(&p);
            if sub.is_empty() {
                out.push(p.clone());
            }
            out.extend(sub);
        } else {
            out.push(p);
        }
    }
    out
}

/// Replace `rel` (e.g. "proc") in the rootfs by a symlink to `target`.
fn plant(rootfs: &Path, rel: &str, target: &str) {
    let p = rootfs.join(rel);
    if p.is_dir() && !p.is_symlink() {
        std::fs::remove_dir_all(&p).expect("remove");
    } else {
        let _ = std::fs::remove_file(&p);
    }
    symlink(target, &p).expect("symlink");
}

/// Mount points the container's mountinfo lists.
fn mount_points(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.split_whitespace().nth(4)).map(String::from).collect()
}

/// CVE-2019-19921 family: /proc, /sys or /dev as a symlink (to the host, or even inside the
/// root) would get the kernel filesystem wherever it leads, past the checks made on the real
/// paths. Refused, as runc refuses it; nothing lands on the host.
#[test]
fn proc_sys_or_dev_as_a_symlink_is_refused() {
    if !require_root() {
        return;
    }
    let v = Victim::new("procdev");
    let cases =
        [("proc", "proc", v.path("proc").to_str().expect("utf8").to_string()), ("dev", "tmpfs", v.dotdot("dev")), ("sys", "sysfs", "/real-sys".to_string())];
    for (dir, fs, target) in cases {
        std::fs::create_dir_all(v.path(dir)).expect("mkdir");
        let mut b = Bundle::new("true");
        let rootfs = b.own_rootfs();
        std::fs::create_dir_all(rootfs.join("real-sys")).expect("mkdir");
        plant(&rootfs, dir, &target);
        let err = b.create_err();
        // runc's words (issue 24), which clients match.
        let want = format!("mount \\\"/{dir}\\\": filesystem \\\"{fs}\\\" must be mounted on ordinary directory: the destination in the rootfs is (or passes through) a symlink");
        assert!(err.contains(&want), "{dir}: {err}");
    }
    v.assert_untouched(&["proc", "dev", "sys"]);
}

#[test]
fn a_dev_null_symlinked_to_a_host_file_fails_create_and_the_file_is_untouched() {
    if !require_root() {
        return;
    }
    let v = Victim::new("devnull");
    let precious = v.path("precious");
    std::fs::write(&precious, "precious\n").expect("write");
    let mut b = Bundle::new("echo overwritten > /dev/null");
    // No /dev tmpfs: the rootfs's own /dev (with its planted /dev/null) is used.
    b.config["mounts"].as_array_mut().expect("mounts").retain(|m| m["destination"] != "/dev");
    let rootfs = b.own_rootfs();
    std::fs::create_dir_all(rootfs.join("dev")).expect("dev");
    plant(&rootfs, "dev/null", precious.to_str().expect("utf8"));
    let err = b.create_err();
    assert!(err.contains("device") && err.contains("/dev/null") && err.contains("in the way"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).expect("read"), "precious\n");
    assert!(std::fs::symlink_metadata(&precious).expect("stat").is_file());
    v.assert_untouched(&["precious"]);
}

#[test]
fn a_volume_destination_a_parent_directory_and_the_cwd_symlinked_out_stay_inside() {
    if !require_root() {
        return;
    }
    let v = Victim::new("volume");
    let src = scratch_dir("volume-src");
    std::fs::write(src.join("marker"), "from-the-volume\n").expect("write");
    let mut b = Bundle::new("cat /vol/marker; pwd; cat /proc/self/mountinfo");
    let rootfs = b.own_rootfs();
    plant(&rootfs, "vol", v.path("vol").to_str().expect("utf8"));
    plant(&rootfs, "parent", &v.dotdot("parent"));
    plant(&rootfs, "work", v.path("work").to_str().expect("utf8"));
    b.mount(serde_json::json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind", "ro"]}));
    b.mount(serde_json::json!({"destination": "/parent/sub/deeper", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}));
    b.mount(serde_json::json!({"destination": format!("/../../..{}", v.path("dotdot").display()), "type": "tmpfs", "source": "tmpfs"}));
    b.config["process"]["cwd"] = "/work".into();
    let out = b.run_ok();
    assert_eq!(out.lines().next(), Some("from-the-volume"), "{out}");
    let points = mount_points(&out);
    for sub in ["vol", "parent/sub/deeper", "dotdot"] {
        assert!(points.contains(&v.path(sub).to_str().expect("utf8").to_string()), "{sub} not mounted in-root: {out}");
    }
    v.assert_untouched(&[]);
    let _ = std::fs::remove_dir_all(&src);
}

#[test]
fn a_symlink_loop_in_the_rootfs_is_refused_not_followed_forever() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    let rootfs = b.own_rootfs();
    plant(&rootfs, "loop-a", "/loop-b");
    plant(&rootfs, "loop-b", "../loop-a");
    b.mount(serde_json::json!({"destination": "/loop-a/x", "type": "tmpfs", "source": "tmpfs"}));
    let err = b.create_err();
    assert!(err.contains("/loop-a/x") && err.contains("too many symbolic links"), "{err}");
}

#[test]
fn a_device_whose_parent_directory_is_a_symlink_out_is_made_inside_the_root() {
    if !require_root() {
        return;
    }
    let v = Victim::new("devparent");
    let mut b = Bundle::new("stat -c '%F %t:%T' /dev/sub/mydev; cat /proc/self/mountinfo");
    // No /dev tmpfs: the rootfs's own /dev, whose "sub" points at the host.
    b.config["mounts"].as_array_mut().expect("mounts").retain(|m| m["destination"] != "/dev");
    let rootfs = b.own_rootfs();
    std::fs::create_dir_all(rootfs.join("dev")).expect("dev");
    plant(&rootfs, "dev/sub", &v.dotdot("sub"));
    b.config["linux"]["devices"] = serde_json::json!([{"path": "/dev/sub/mydev", "type": "c", "major": 1, "minor": 5}]);
    let out = b.run_ok();
    assert!(out.starts_with("character special file 1:5\n"), "{out}");
    v.assert_untouched(&[]);
    let inside = rootfs.join(v.path("sub/mydev").strip_prefix("/").expect("abs"));
    assert!(std::fs::symlink_metadata(&inside).is_ok(), "the node is not where the symlink leads inside the root");
}
