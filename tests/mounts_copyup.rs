//! `tmpcopyup` (podman's `--read-only` sends it for /run, /tmp and /var/tmp): the tmpfs starts
//! with a copy of what the rootfs has there — files, modes, owners, links — and never follows a
//! link of the rootfs while copying.

mod common;

use common::{require_root, Bundle};

#[test]
fn tmpcopyup_starts_a_tmpfs_with_what_the_rootfs_had_there() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(
        "grep ' /srv ' /proc/self/mountinfo | grep -c tmpfs; cat /srv/a/f; stat -c '%a %u:%g' /srv/a /srv/a/f; readlink /srv/l; \
         echo new > /srv/n && cat /srv/n; test -L /srv/out && echo link; cat /srv/out/secret 2>/dev/null || echo not-followed",
    );
    let root = b.own_rootfs();
    std::fs::create_dir_all(root.join("srv/a")).expect("mkdir");
    std::fs::write(root.join("srv/a/f"), "payload\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("srv/a"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    std::fs::set_permissions(root.join("srv/a/f"), std::fs::Permissions::from_mode(0o604)).expect("chmod");
    std::os::unix::fs::chown(root.join("srv/a/f"), Some(1000), Some(1001)).expect("chown");
    std::os::unix::fs::symlink("/etc/hostname", root.join("srv/l")).expect("symlink");
    // A link to a host directory (the copy runs before pivot_root, where it would resolve on the
    // host): copied as a link, not through.
    let host_dir = b.dir.join("host-only");
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("secret"), "host secret\n").expect("write");
    std::os::unix::fs::symlink(&host_dir, root.join("srv/out")).expect("symlink");
    b.config["root"]["readonly"] = true.into();
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!(
        {"destination": "/srv", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}));
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1", "payload", "750 0:0", "604 1000:1001", "/etc/hostname", "new", "link", "not-followed"], "{out}");
    // The rootfs itself is unchanged (the write went to the tmpfs).
    assert!(!root.join("srv/n").exists());
}

#[test]
fn tmpcopyup_on_anything_but_tmpfs_is_an_error() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!(
        {"destination": "/srv", "type": "proc", "source": "proc", "options": ["tmpcopyup"]}));
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("tmpcopyup is only supported on tmpfs"), "{err}");
}
