//! Mounts (issue 3), read back from the container's own /proc/self/mountinfo and by using them:
//! bind/rbind options, recursive attributes, tmpfs, the special filesystems, the cgroup
//! namespace's cgroup2, rootfsPropagation, root.readonly, --no-pivot, masked and read-only paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_root, scratch_dir, Bundle};

/// One mountinfo line, split: per-mount options, optional fields, fstype, super options.
struct Mi {
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    sopts: Vec<String>,
}

fn mountinfo(out: &str, point: &str) -> Option<Mi> {
    // The last mount at a point is the visible one.
    out.lines().rfind(|l| l.split_whitespace().nth(4) == Some(point)).map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dash = f.iter().position(|x| *x == "-").expect("mountinfo separator");
        let split = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        Mi {
            opts: split(f[5]),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            fstype: f[dash + 1].into(),
            sopts: split(f.get(dash + 3).copied().unwrap_or("")),
        }
    })
}

fn mi(out: &str, point: &str) -> Mi {
    mountinfo(out, point).unwrap_or_else(|| panic!("no mount at {point}: {out}"))
}

/// A host directory with a tmpfs mounted at `sub` (holding `sub/in-sub`), unmounted on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let d = scratch_dir(name);
        std::fs::write(d.join("top"), "top\n").expect("write");
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        assert!(Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(d.join("sub")).status().expect("mount").success());
        std::fs::write(d.join("sub/in-sub"), "in-sub\n").expect("write");
        Tree(d)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.join("sub")).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn bind_options_rbind_and_recursive_attributes() {
    if !require_root() {
        return;
    }
    let t = Tree::new("mounts-tree");
    let mut b = Bundle::new(
        "cat /proc/self/mountinfo; ls /home/sub; cat /root/sub/in-sub /var/sub/in-sub; \
         touch /home/w 2>/dev/null || echo home-ro; touch /root/sub/w && echo root-sub-rw; touch /var/sub/w 2>/dev/null || echo var-sub-ro",
    );
    let src = t.0.to_str().expect("utf8");
    b.mount(serde_json::json!({"destination": "/home", "type": "bind", "source": src, "options": ["bind", "ro", "nosuid", "nodev", "noexec", "noatime"]}));
    b.mount(serde_json::json!({"destination": "/root", "type": "bind", "source": src, "options": ["rbind", "ro", "rshared"]}));
    b.mount(serde_json::json!({"destination": "/var", "type": "bind", "source": src, "options": ["rbind", "rro", "rnosuid", "rnoexec"]}));
    let out = b.run_ok();
    let home = mi(&out, "/home");
    for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(home.opts.iter().any(|x| x == o), "/home lacks {o}: {:?}", home.opts);
    }
    assert!(mountinfo(&out, "/home/sub").is_none(), "bind is not recursive: {out}");
    // rbind: the submount came along; plain ro stops at the top, rro reaches it.
    assert!(mi(&out, "/root").opts[0] == "ro" && mi(&out, "/root/sub").opts[0] == "rw");
    assert!(mi(&out, "/root").optional.iter().any(|x| x.starts_with("shared:")), "rshared: {out}");
    let var_sub = mi(&out, "/var/sub");
    assert!(var_sub.opts[0] == "ro" && var_sub.opts.iter().any(|x| x == "nosuid") && var_sub.opts.iter().any(|x| x == "noexec"), "{:?}", var_sub.opts);
    for l in ["home-ro", "root-sub-rw", "var-sub-ro"] {
        assert!(out.lines().any(|x| x == l), "{l}: {out}");
    }
    assert_eq!(out.matches("in-sub\n").count(), 2, "the two cats, not ls of the non-recursive bind: {out}");
    // The host's tree got only the one file the rw submount allowed.
    assert!(t.0.join("sub/w").exists() && !t.0.join("w").exists());
}

#[test]
fn tmpfs_size_mode_and_owner() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("stat -c '%a %u %g' /tmp; cat /proc/self/mountinfo; dd if=/dev/zero of=/tmp/f bs=1k count=200 2>&1; true");
    b.mount(
        serde_json::json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=64k", "mode=1777", "uid=1000", "gid=1000"]}),
    );
    let out = b.run_ok();
    assert_eq!(out.lines().next(), Some("1777 1000 1000"), "{out}");
    let t = mi(&out, "/tmp");
    assert_eq!(t.fstype, "tmpfs");
    assert!(t.sopts.iter().any(|o| o == "size=64k") && t.opts.iter().any(|o| o == "nosuid"), "{:?} {:?}", t.opts, t.sopts);
    assert!(out.contains("No space left on device"), "64k limit: {out}");
}

#[test]
fn proc_sysfs_devpts_mqueue_shm_and_cgroup2_of_the_cgroup_namespace() {
    if !require_root() {
        return;
    }
    // On a hybrid host (v2 at /sys/fs/cgroup/unified) the container gets runc's hybrid layout: a
    // tmpfs with the v1 hierarchies and the v2 one at unified (tests/cgroups_host.rs).
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    let v2 = if hybrid { "/sys/fs/cgroup/unified" } else { "/sys/fs/cgroup" };
    let mut b = Bundle::new(&format!(
        "cat /proc/self/mountinfo; echo cg $(grep '^0::' /proc/self/cgroup); echo procs $(wc -l < {v2}/cgroup.procs); ls {v2} | grep -c testudo; ls /dev/pts"
    ));
    b.namespace("cgroup", None);
    let out = b.run_ok();
    let mut want = vec![
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        (v2, "cgroup2"),
    ];
    if hybrid {
        want.push(("/sys/fs/cgroup", "tmpfs"));
    }
    for (point, fstype) in want {
        assert_eq!(mi(&out, point).fstype, fstype, "{point}");
    }
    let pts = mi(&out, "/dev/pts");
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(pts.sopts.iter().any(|x| x == o), "devpts {o}: {:?}", pts.sopts);
    }
    assert!(mi(&out, "/sys").opts[0] == "ro" && mi(&out, "/sys/fs/cgroup").opts[0] == "ro" && mi(&out, v2).opts[0] == "ro");
    assert!(mi(&out, "/dev/shm").sopts.iter().any(|o| o == "size=65536k"));
    // A new devpts instance: only ptmx, none of the host's ptys.
    assert_eq!(out.lines().last(), Some("ptmx"), "{out}");
    // The cgroup namespace is rooted at the container's cgroup, and cgroup2 shows only that subtree.
    assert!(out.lines().any(|l| l == "cg 0::/"), "{out}");
    let procs: usize = out.lines().find_map(|l| l.strip_prefix("procs ")).and_then(|n| n.trim().parse().ok()).expect("procs");
    assert!(procs <= 3, "cgroup.procs lists processes outside the container: {procs}");
    assert!(out.lines().any(|l| l == "0"), "the host's testudo/ cgroup is visible: {out}");
    // Without a cgroup namespace the same process sees its full path.
    let mut host = Bundle::new("grep '^0::' /proc/self/cgroup");
    host.drop_namespace("cgroup");
    let seen = host.run_ok();
    assert!(seen.trim().ends_with(&format!("/{}", host.id)), "{seen}");
}

/// A host mount the test made, gone even if the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn root_line(b: &mut Bundle, prop: Option<&str>) -> Mi {
    if let Some(p) = prop {
        b.config["linux"]["rootfsPropagation"] = p.into();
    }
    mi(&b.run_ok(), "/")
}

#[test]
fn rootfs_propagation_and_nothing_propagates_back() {
    if !require_root() {
        return;
    }
    // The rootfs is a shared mount on the host, so that slave and shared can be told apart.
    let mut b = Bundle::new("cat /proc/self/mountinfo");
    let rootfs = b.own_rootfs();
    assert!(Command::new("mount").arg("--bind").arg(&rootfs).arg(&rootfs).status().expect("mount").success());
    let _unmount = Unmount(rootfs.clone());
    assert!(Command::new("mount").args(["--make-shared"]).arg(&rootfs).status().expect("mount").success());
    let before = std::fs::read_to_string("/proc/self/mountinfo").expect("mi").lines().count();
    let slave = root_line(&mut b, None);
    assert!(
        slave.optional.iter().any(|o| o.starts_with("master:")) && !slave.optional.iter().any(|o| o.starts_with("shared:")),
        "default rslave: {:?}",
        slave.optional
    );
    let private = root_line(&mut b, Some("private"));
    assert!(private.optional.is_empty(), "private: {:?}", private.optional);
    let shared = root_line(&mut b, Some("shared"));
    assert!(shared.optional.iter().any(|o| o.starts_with("shared:")), "shared: {:?}", shared.optional);
    let unbindable = root_line(&mut b, Some("unbindable"));
    assert!(unbindable.optional.iter().any(|o| o == "unbindable"), "unbindable: {:?}", unbindable.optional);
    // The container's proc, dev, sys … never showed up on the host's shared rootfs.
    let after = std::fs::read_to_string("/proc/self/mountinfo").expect("mi");
    assert_eq!(after.lines().count(), before, "container mounts propagated to the host: {after}");
    b.config["linux"]["rootfsPropagation"] = "bogus".into();
    assert!(b.create_err().contains("not a propagation type"));
}

#[test]
fn root_readonly_and_writable() {
    if !require_root() {
        return;
    }
    let mut ro = Bundle::new("cat /proc/self/mountinfo; touch /x 2>&1; true");
    ro.config["root"]["readonly"] = true.into();
    let out = ro.run_ok();
    assert!(mi(&out, "/").opts[0] == "ro" && out.contains("Read-only file system"), "{out}");
    let mut rw = Bundle::new("cat /proc/self/mountinfo; echo hi > /written");
    rw.config["root"]["readonly"] = false.into();
    let rootfs = rw.own_rootfs();
    assert_eq!(mi(&rw.run_ok(), "/").opts[0], "rw");
    assert_eq!(std::fs::read_to_string(rootfs.join("written")).expect("written"), "hi\n");
}

#[test]
fn no_pivot_moves_the_root_and_chroots() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("cat /marker; cat /proc/self/mountinfo; grep -c '^Name:' /proc/self/status");
    let rootfs = b.own_rootfs();
    std::fs::write(rootfs.join("marker"), "no-pivot-root\n").expect("marker");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.testudo(&["run", "--no-pivot", "--bundle", &bundle, &b.id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("no-pivot-root\n"), "{text}");
    assert_eq!(mi(&text, "/proc").fstype, "proc");
    // The moved rootfs is the container's "/", and none of the host's mounts is visible.
    assert!(mountinfo(&text, "/").is_some() && mountinfo(&text, "/run/netns").is_none(), "{text}");
}

/// With pivot_root the old root is detached; with --no-pivot the rootfs is only moved on top of
/// it and the process chrooted, so the old root stays in the container's mount namespace, under
/// the container's "/". A container process with CAP_SYS_ADMIN that lazily unmounts its "/" then
/// has the host's "/" at the top of its namespace. A process that joins the namespace (`exec`)
/// must still land in the container's root (the init's), never in what is beneath it: here it
/// reads the rootfs's own marker and cannot reach a host path.
#[test]
fn exec_lands_in_the_containers_root_after_it_unmounted_its_root() {
    if !require_root() {
        return;
    }
    let marker = scratch_dir("no-pivot-marker").join("host-file");
    std::fs::write(&marker, "the host's root\n").expect("marker");
    let marker = marker.to_str().expect("utf8");
    for no_pivot in [false, true] {
        let mut b = Bundle::new("exec sleep 100");
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set].as_array_mut().expect("caps").push("CAP_SYS_ADMIN".into());
        }
        // Docker's default profile (in the default spec) denies umount2 whatever the caps.
        b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
        let rootfs = b.own_rootfs();
        std::fs::write(rootfs.join("marker"), "the container's root\n").expect("marker");
        b.write();
        let bundle = b.dir.to_str().expect("utf8").to_string();
        let mut run = vec!["run", "-d", "--bundle", &bundle, &b.id];
        if no_pivot {
            run.insert(1, "--no-pivot");
        }
        let out = b.testudo(&run);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (code, _, err) = b.exec(&["sh", "-c", "umount -l /"]);
        assert_eq!(code, 0, "no_pivot={no_pivot}: umount -l /: {err}");
        let script = format!("cat /marker; cat {marker} 2>/dev/null || echo no-host-file");
        let (code, out, err) = b.exec(&["sh", "-c", &script]);
        assert_eq!(
            (code, out.as_str()),
            (0, "the container's root\nno-host-file\n"),
            "no_pivot={no_pivot}: exec after `umount -l /` must run in the container's root: {err}"
        );
    }
}

#[test]
fn masked_and_readonly_paths() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(
        "echo keys=$(wc -c < /proc/keys) cmdline=$(wc -c < /proc/cmdline); ls -A /sys/firmware | wc -l; \
         stat -c '%t:%T' /proc/cmdline; { echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1; cat /proc/self/mountinfo; \
         touch /sys/firmware/x 2>&1; true",
    );
    let masked = b.config["linux"]["maskedPaths"].as_array_mut().expect("masked");
    masked.push("/proc/cmdline".into());
    masked.push("/no/such/path".into());
    let out = b.run_ok();
    assert!(out.starts_with("keys=0 cmdline=0\n0\n1:3\n"), "masked files read empty (/dev/null), dirs are empty: {out}");
    assert!(Path::new("/proc/cmdline").metadata().is_ok() && std::fs::read("/proc/cmdline").expect("cmdline").len() > 1, "host's is not empty");
    assert!(out.matches("Read-only file system").count() >= 2, "/proc/sys and the masking tmpfs are read-only: {out}");
    assert_eq!(mi(&out, "/sys/firmware").fstype, "tmpfs");
    assert_eq!(mi(&out, "/proc/sys").opts[0], "ro");
}

/// The default spec masks what describes the host kernel to an exploit: its config and
/// vmcoreinfo (symbol addresses). Each is checked where the host has it.
#[test]
fn the_default_spec_masks_the_kernel_config_and_vmcoreinfo() {
    if !require_root() {
        return;
    }
    let files = ["/proc/config.gz", "/sys/kernel/vmcoreinfo"];
    let present: Vec<&str> = files.into_iter().filter(|f| std::fs::read(f).is_ok_and(|b| !b.is_empty())).collect();
    if present.is_empty() {
        common::skip(&format!("the host kernel has none of {files:?}"));
        return;
    }
    let script: String = present.iter().map(|f| format!("echo {f}=$(cat {f} | wc -c); ")).collect();
    let out = Bundle::new(&script).run_ok();
    let want: String = present.iter().map(|f| format!("{f}=0\n")).collect();
    assert_eq!(out, want);
}

#[test]
fn idmapped_bind_mounts_give_container_root_the_hosts_root_owned_files() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dirs: Vec<PathBuf> = ["idmap-explicit", "idmap-userns"].iter().map(|n| scratch_dir(n)).collect();
    for d in &dirs {
        std::fs::write(d.join("mine"), "root-only\n").expect("write");
        std::fs::set_permissions(d.join("mine"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut b = Bundle::new("for d in /home /run; do stat -c '%u %g' $d/mine; cat $d/mine; touch $d/new; done; cat /proc/self/mountinfo");
    b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // Explicit mappings (a user namespace P0 makes for the mount) and "idmap" (the container's).
    b.mount(serde_json::json!({"destination": "/home", "type": "bind", "source": dirs[0], "options": ["bind"], "uidMappings": map, "gidMappings": map}));
    b.mount(serde_json::json!({"destination": "/run", "type": "bind", "source": dirs[1], "options": ["bind", "idmap"]}));
    let out = b.run_ok();
    assert!(out.starts_with("0 0\nroot-only\n0 0\nroot-only\n"), "{out}");
    assert!(mi(&out, "/home").opts.iter().any(|o| o == "idmapped") && mi(&out, "/run").opts.iter().any(|o| o == "idmapped"), "{out}");
    // Container root's new files are host root's on disk: the mapping works both ways.
    for d in &dirs {
        let m = std::fs::metadata(d.join("new")).expect("new");
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
    // Bad idmapped mounts are refused at create.
    let cases = [
        (
            serde_json::json!({"destination": "/home", "type": "tmpfs", "source": "tmpfs", "uidMappings": map, "gidMappings": map}),
            "only supported on bind mounts",
        ),
        (
            serde_json::json!({"destination": "/home", "type": "bind", "source": dirs[0], "options": ["bind"], "uidMappings": map}),
            "needs both uidMappings and gidMappings",
        ),
        (
            serde_json::json!({"destination": "/home", "type": "bind", "source": dirs[0], "options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}], "gidMappings": map}),
            "zero size",
        ),
    ];
    for (m, expect) in cases {
        let mut b = Bundle::new("true");
        b.mount(m);
        let err = b.create_err();
        assert!(err.contains(expect), "{expect}: {err}");
    }
}
