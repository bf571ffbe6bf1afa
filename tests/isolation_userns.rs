//! User namespaces (issue 3): container root is an unprivileged host uid. Shown from inside (the
//! maps the process sees, what it can read) and from the host (who owns what it created).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{require_root, scratch_dir, Bundle};

/// Every capability a root process could want for reading or owning files.
fn file_caps(b: &mut Bundle) {
    let caps = serde_json::json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"]);
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
}

fn fields(out: &str) -> Vec<Vec<&str>> {
    out.lines().map(|l| l.split_whitespace().collect()).collect()
}

#[test]
fn several_ranges_are_mapped_and_files_are_owned_by_the_mapped_host_ids() {
    if !require_root() {
        return;
    }
    let data = scratch_dir("userns-data");
    std::os::unix::fs::chown(&data, Some(100000), Some(100000)).expect("chown");
    let mut b = Bundle::new(
        "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; \
         touch /home/by-root; touch /home/by-1005; chown 1005:1002 /home/by-1005; id -u; grep CapEff /proc/self/status",
    );
    b.userns(&[(0, 100000, 1000), (1000, 200000, 10)], &[(0, 100000, 1000), (1000, 300000, 10)]);
    file_caps(&mut b);
    b.mount(serde_json::json!({"destination": "/home", "type": "bind", "source": data, "options": ["bind", "rw"]}));
    let out = b.run_ok();
    let f = fields(&out);
    assert!(f.contains(&vec!["0", "100000", "1000"]) && f.contains(&vec!["1000", "200000", "10"]), "uid_map: {out}");
    assert!(f.contains(&vec!["1000", "300000", "10"]), "gid_map: {out}");
    assert!(f.contains(&vec!["0"]), "root inside: {out}");
    let by_root = std::fs::metadata(data.join("by-root")).expect("by-root");
    assert_eq!((by_root.uid(), by_root.gid()), (100000, 100000), "container root's file on the host");
    let by_1005 = std::fs::metadata(data.join("by-1005")).expect("by-1005");
    assert_eq!((by_1005.uid(), by_1005.gid()), (200005, 300002), "second range");
    let _ = std::fs::remove_dir_all(&data);
}

/// A host file only host root may read, in a directory bind-mounted at /run (a mount point the
/// shared rootfs already has: container root may not create one in a rootfs it does not own).
fn secret(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    let f = dir.join("secret");
    std::fs::write(&f, "host-secret\n").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    dir
}

#[test]
fn container_root_cannot_read_a_host_root_only_file() {
    if !require_root() {
        return;
    }
    let f = secret("secret-run");
    let script = "ls -ln /run/secret; cat /run/secret; echo rc=$?";
    let mount = serde_json::json!({"destination": "/run", "type": "bind", "source": f, "options": ["bind", "ro"]});
    // Without a user namespace, root with CAP_DAC_OVERRIDE reads it: the test can tell.
    let mut host_root = Bundle::new(script);
    file_caps(&mut host_root);
    host_root.mount(mount.clone());
    assert!(host_root.run_ok().contains("host-secret"));

    let mut b = Bundle::new(script);
    b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    file_caps(&mut b);
    b.mount(mount);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("host-secret"), "container root read the host's secret: {out}");
    assert!(out.contains("rc=1"), "{out}");
    // Host root is unmapped: the file shows the overflow ids.
    let ls = out.lines().next().unwrap_or("");
    assert!(ls.starts_with("-rw-------") && ls.split_whitespace().nth(2) == Some("65534"), "{out}");
}

#[test]
fn invalid_mappings_are_refused_clearly() {
    if !require_root() {
        return;
    }
    type Maps = &'static [(u32, u32, u32)];
    let cases: &[(&str, Maps, Maps, &str)] = &[
        ("overlapping container ids", &[(0, 100000, 1000), (500, 300000, 10)], &[(0, 100000, 65536)], "container ids of range 500:300000:10 overlap"),
        ("overlapping host ids", &[(0, 100000, 1000), (2000, 100500, 10)], &[(0, 100000, 65536)], "host ids of range 2000:100500:10 overlap"),
        ("zero length", &[(0, 100000, 65536)], &[(0, 100000, 0)], "gidmappings: range at container id 0 has zero size"),
        ("beyond 32 bits", &[(0, 4294967290, 100)], &[(0, 100000, 65536)], "goes beyond 32 bits"),
        ("no mapping at all", &[], &[(0, 100000, 65536)], "needs at least one mapping"),
        ("root unmapped", &[(1000, 100000, 10)], &[(0, 100000, 65536)], "is uid 0 mapped"),
    ];
    for (name, uids, gids, expect) in cases {
        let mut b = Bundle::new("true");
        b.userns(uids, gids);
        let err = b.create_err();
        assert!(err.to_lowercase().contains(&expect.to_lowercase()), "{name}: {err}");
    }
    // Mappings without a user namespace of its own are refused too.
    let mut b = Bundle::new("true");
    b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    b.drop_namespace("user");
    assert!(b.create_err().contains("need a new user namespace"));
}

#[test]
fn exec_in_a_user_namespace_is_unprivileged_on_the_host() {
    if !require_root() {
        return;
    }
    let f = secret("secret-exec");
    let mut b = Bundle::new("exec sleep 100");
    b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    file_caps(&mut b);
    b.mount(serde_json::json!({"destination": "/run", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    b.start();
    let (code, out, err) = b.exec(&["sh", "-c", "cat /proc/self/uid_map; id -u; cat /run/secret; echo rc=$?"]);
    assert_eq!(code, 0, "{err}");
    assert!(fields(&out).contains(&vec!["0", "100000", "65536"]), "{out}");
    assert!(!out.contains("host-secret") && out.contains("rc=1"), "{out}");
}

/// Issue 24: a bind source under a directory only the host's root may search (a 0700 parent) is
/// mounted into a user namespace container: P0 opens it, as runc does, not the mapped root.
#[test]
fn a_bind_source_the_mapped_root_cannot_reach_is_opened_on_the_host_side() {
    if !require_root() {
        return;
    }
    let parent = scratch_dir("bind-parent-0700");
    std::fs::create_dir_all(parent.join("data")).expect("mkdir");
    std::fs::write(parent.join("data/f"), "reached\n").expect("write");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut b = Bundle::new("cat /run/f; grep ' /run ' /proc/self/mountinfo");
    b.config["linux"]["namespaces"].as_array_mut().expect("namespaces").push(serde_json::json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
        "destination": "/run", "type": "bind", "source": parent.join("data"), "options": ["rbind", "ro"]
    }));
    let out = b.run_ok();
    assert!(out.starts_with("reached\n"), "{out}");
    assert!(out.contains(" /run ") && out.contains(" ro,"), "not a read-only mount at /run: {out}");
}
