//! Rootless (issue 14): testudo run by an ordinary user. The test binary runs as root (as CI does);
//! it makes an unprivileged test user once (useradd, a subuid/subgid range, /run/user/UID) and
//! switches to it with setpriv for the testudo calls only. What the container sees is asserted
//! from inside it.

mod common;
mod probe;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::{require_root, status_field, Bundle};

const USER: &str = "testudo-rl";
/// The size of the test user's subordinate range in /etc/subuid and /etc/subgid (its start is
/// chosen free: `subordinate_start`).
const SUB_SIZE: u32 = 65536;

struct TestUser {
    uid: u32,
    gid: u32,
    /// Its XDG_RUNTIME_DIR: /run/user/UID, 0700, its own.
    xdg: PathBuf,
    /// The start of its one subordinate range, the same in /etc/subuid and /etc/subgid.
    sub: u32,
}

/// The start of the test user's subordinate range. useradd gives every new user a range of its own
/// (100000, 165536, …), so a fixed start (300000 was) overlapped the range of the fourth user or of
/// the test user itself, and newuidmap then failed ("write to uid_map failed: Invalid argument").
/// The test user keeps one range, the same in both files, above every other user's: the one it
/// has when that holds, otherwise its lines are replaced by a new one.
fn subordinate_start() -> u32 {
    let parse = |file: &str| -> Vec<(String, u64, u64)> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let (who, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
                Some((who.to_string(), start, count))
            })
            .collect()
    };
    let files = ["/etc/subuid", "/etc/subgid"];
    let all: Vec<Vec<(String, u64, u64)>> = files.iter().map(|f| parse(f)).collect();
    let others_end = all.iter().flatten().filter(|(w, _, _)| w != USER).map(|(_, s, c)| s + c).max().unwrap_or(0);
    let ours: Vec<Vec<(u64, u64)>> = all.iter().map(|e| e.iter().filter(|(w, _, _)| w == USER).map(|(_, s, c)| (*s, *c)).collect()).collect();
    let overlaps = |start: u64| all.iter().flatten().any(|(w, s, c)| w != USER && start < s + c && *s < start + u64::from(SUB_SIZE));
    if let [a, b] = &ours[..] {
        if a.len() == 1 && a == b && a[0].1 == u64::from(SUB_SIZE) && !overlaps(a[0].0) {
            return a[0].0 as u32;
        }
    }
    let start = others_end.max(300000).div_ceil(65536) * 65536;
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut kept: String = text.lines().filter(|l| l.split(':').next() != Some(USER)).map(|l| format!("{l}\n")).collect();
        kept.push_str(&format!("{USER}:{start}:{SUB_SIZE}\n"));
        std::fs::write(file, kept).unwrap_or_else(|e| panic!("write {file}: {e}"));
    }
    u32::try_from(start).expect("subordinate range below 2^32")
}

/// The test user, made once per machine (every step is idempotent).
fn user() -> &'static TestUser {
    static U: OnceLock<TestUser> = OnceLock::new();
    U.get_or_init(|| {
        let id = |flag: &str| Command::new("id").arg(flag).arg(USER).output().ok().filter(|o| o.status.success());
        if id("-u").is_none() {
            let st = Command::new("useradd").args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER]).status().expect("useradd");
            assert!(st.success() || id("-u").is_some(), "useradd {USER} failed");
        }
        let num = |flag: &str| String::from_utf8_lossy(&id(flag).expect("id").stdout).trim().parse::<u32>().expect("id number");
        let (uid, gid) = (num("-u"), num("-g"));
        let sub = subordinate_start();
        // The user walks the scratch dir to its bundles and the shared rootfs.
        chmod(common::scratch_dir("rootless").parent().expect("scratch root"), 0o755);
        let xdg = PathBuf::from(format!("/run/user/{uid}"));
        std::fs::create_dir_all(&xdg).expect("xdg dir");
        chown(&xdg, uid, gid);
        chmod(&xdg, 0o700);
        TestUser { uid, gid, xdg, sub }
    })
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {p:?}: {e}"));
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {p:?}: {e}"));
}

/// testudo the user can run but not write (a copy beside the bundles: the build tree may not be
/// reachable by other users).
fn binary() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let dst = common::scratch_dir("rootless-bin").join("testudo");
        std::fs::copy(common::BIN, &dst).expect("copy testudo");
        chmod(&dst, 0o755);
        dst
    })
}

/// A bundle of the user's own: `testudo spec --rootless` run as the user, with the shared busybox
/// rootfs, running `sh -c script`. The bundle dir is the user's.
fn rootless_bundle(script: &str) -> Bundle {
    let u = user();
    let mut b = Bundle::new(script);
    let spec_dir = b.dir.join("spec");
    std::fs::create_dir_all(&spec_dir).expect("spec dir");
    chown(&b.dir, u.uid, u.gid);
    chown(&spec_dir, u.uid, u.gid);
    let out = as_user(binary(), &b, &["spec", "--rootless", "--bundle", spec_dir.to_str().expect("utf8")], &[]);
    assert!(out.status.success(), "spec --rootless: {}", String::from_utf8_lossy(&out.stderr));
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(spec_dir.join("config.json")).expect("read")).expect("json");
    config["root"]["path"] = b.config["root"]["path"].clone();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    b.config = config;
    b
}

/// `testudo ARGS…` as the test user, in the bundle dir, with XDG_RUNTIME_DIR set to its own
/// (unless `env` says otherwise) and no --root: the state root is the rootless default.
fn as_user(bin: &Path, b: &Bundle, args: &[&str], env: &[(&str, &str)]) -> Output {
    let u = user();
    let mut c = Command::new("/usr/bin/setpriv");
    c.args(["--reuid", &u.uid.to_string(), "--regid", &u.gid.to_string(), "--clear-groups", "--inh-caps=-all", "--"]);
    c.arg(bin).args(args).current_dir(&b.dir).env_clear();
    c.env("PATH", "/usr/local/bin:/usr/bin:/bin").env("XDG_RUNTIME_DIR", &u.xdg);
    for (k, v) in env {
        c.env(k, v);
    }
    output(c)
}

/// Run to exit, output through files: a created container's init inherits stdio and would hold
/// a pipe open for as long as it lives (see common::Bundle::testudo).
fn output(mut c: Command) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = common::scratch_dir(&format!("rootless-out-{n}"));
    let (o, e) = (dir.join("out"), dir.join("err"));
    let status =
        c.stdin(Stdio::null()).stdout(std::fs::File::create(&o).expect("out")).stderr(std::fs::File::create(&e).expect("err")).status().expect("spawn");
    let out = Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() };
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn write(b: &Bundle) {
    b.write();
    chown(&b.dir.join("config.json"), user().uid, user().gid);
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn state_dir(id: &str) -> PathBuf {
    user().xdg.join("testudo").join(id)
}

/// Whatever a test leaves is deleted as the user (the Bundle's own Drop deletes as root under
/// another --root).
struct Cleanup<'a>(&'a Bundle);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = as_user(binary(), self.0, &["delete", "--force", &self.0.id], &[]);
    }
}

#[test]
fn rootless_run_maps_the_user_to_root_and_keeps_state_under_xdg_runtime_dir() {
    if !require_root() {
        return;
    }
    let u = user();
    let b = rootless_bundle("cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ld /proc/self/ns/user");
    write(&b);
    let _c = Cleanup(&b);
    let out = ok(&as_user(binary(), &b, &["run", &b.id], &[]), "run");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0", &u.uid.to_string(), "1"], "uid_map: {out}");
    assert_eq!(lines[1], ["0", &u.gid.to_string(), "1"], "gid_map: {out}");
    assert_eq!(lines[2], ["0"], "{out}");
    assert!(!state_dir(&b.id).exists(), "run left its state");
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata(u.xdg.join("testudo")).expect("state root under XDG_RUNTIME_DIR");
    assert_eq!((root.uid(), root.mode() & 0o7777), (u.uid, 0o700), "state root owner and mode");
}

#[test]
fn rootless_lifecycle_create_start_exec_ps_kill_delete_without_a_cgroup() {
    if !require_root() {
        return;
    }
    let b = rootless_bundle("sleep 60 & sleep 60");
    write(&b);
    let _c = Cleanup(&b);
    let run = |args: &[&str]| as_user(binary(), &b, args, &[]);
    ok(&run(&["create", &b.id]), "create");
    assert!(state_dir(&b.id).join("state.json").exists(), "no state under XDG_RUNTIME_DIR");
    let state: serde_json::Value = serde_json::from_str(&ok(&run(&["state", &b.id]), "state")).expect("state json");
    assert_eq!(state["status"], "created");
    ok(&run(&["start", &b.id]), "start");
    let exec = ok(&run(&["exec", &b.id, "cat", "/proc/self/uid_map"]), "exec");
    assert_eq!(exec.split_whitespace().collect::<Vec<_>>(), ["0", &user().uid.to_string(), "1"]);
    // No cgroup was delegated: ps lists the container's pid namespace.
    common::wait_for("both sleeps", || {
        let pids: Vec<i32> = serde_json::from_str(&ok(&run(&["ps", "--format", "json", &b.id]), "ps")).expect("ps json");
        pids.len() == 2
    });
    let e = err(&run(&["pause", &b.id]), "pause");
    assert!(e.contains("has no cgroup (rootless, and no cgroup was delegated to the user): pause needs one"), "{e}");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    ok(&run(&["kill", "--all", &b.id, "KILL"]), "kill --all");
    common::wait_for("the init to die", || std::fs::metadata(format!("/proc/{pid}")).is_err() || status_is_zombie(pid));
    ok(&run(&["delete", &b.id]), "delete");
    assert!(!state_dir(&b.id).exists(), "delete left the state dir");
}

fn status_is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

#[test]
fn rootless_delete_force_kills_every_process_of_a_container_without_a_cgroup() {
    if !require_root() {
        return;
    }
    let b = rootless_bundle("sleep 60 & sleep 60");
    write(&b);
    let _c = Cleanup(&b);
    ok(&as_user(binary(), &b, &["run", "-d", &b.id], &[]), "run -d");
    let pids: Vec<i32> = serde_json::from_str(&ok(&as_user(binary(), &b, &["ps", "--format", "json", &b.id], &[]), "ps")).expect("ps json");
    ok(&as_user(binary(), &b, &["delete", "--force", &b.id], &[]), "delete --force");
    for pid in pids {
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_err() || status_is_zombie(pid), "process {pid} outlived delete --force");
    }
    assert!(!state_dir(&b.id).exists());
}

#[test]
fn rootless_multi_range_maps_go_through_newuidmap() {
    if !require_root() {
        return;
    }
    let u = user();
    let mut b = rootless_bundle("cat /proc/self/uid_map /proc/self/gid_map");
    let maps = serde_json::json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": user().sub, "size": SUB_SIZE}]);
    b.config["linux"]["uidMappings"] = maps.clone();
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": u.gid, "size": 1}, {"containerID": 1, "hostID": user().sub, "size": SUB_SIZE}]);
    write(&b);
    let _c = Cleanup(&b);
    let out = ok(&as_user(binary(), &b, &["run", &b.id], &[]), "run");
    let rows: Vec<Vec<String>> = out.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect();
    let want = |own: u32| vec![vec!["0".to_string(), own.to_string(), "1".into()], vec!["1".into(), user().sub.to_string(), SUB_SIZE.to_string()]];
    assert_eq!(rows[..2], want(u.uid)[..], "uid_map: {out}");
    assert_eq!(rows[2..], want(u.gid)[..], "gid_map: {out}");
}

#[test]
fn rootless_a_range_not_granted_in_subuid_is_refused_by_name() {
    if !require_root() {
        return;
    }
    let u = user();
    let mut b = rootless_bundle("true");
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": user().sub, "size": SUB_SIZE + 1}]);
    b.config["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": u.gid, "size": 1}, {"containerID": 1, "hostID": user().sub, "size": SUB_SIZE}]);
    write(&b);
    let _c = Cleanup(&b);
    let e = err(&as_user(binary(), &b, &["create", &b.id], &[]), "create");
    let range = format!("[1-{}) -> [{}-{}) not allowed", SUB_SIZE + 2, user().sub, user().sub + SUB_SIZE + 1);
    assert!(e.contains("rootless: newuidmap ") && e.contains(&range), "{e}");
    assert!(!state_dir(&b.id).exists(), "a failed create left its state dir");
}

#[test]
fn rootless_multi_range_maps_without_newuidmap_are_a_clear_error() {
    if !require_root() {
        return;
    }
    let u = user();
    let mut b = rootless_bundle("true");
    b.config["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": u.uid, "size": 1}, {"containerID": 1, "hostID": user().sub, "size": 10}]);
    write(&b);
    let _c = Cleanup(&b);
    // A PATH without the helper stands for a host without the uidmap package.
    let e = err(&as_user(binary(), &b, &["create", &b.id], &[("PATH", "/nonexistent")]), "create");
    assert!(e.contains("create: rootless: uidMappings need newuidmap (package uidmap): not found"), "{e}");
    assert!(!state_dir(&b.id).exists(), "a failed create left its state dir");
}

#[test]
fn rootless_an_unset_or_unwritable_xdg_runtime_dir_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let b = rootless_bundle("true");
    write(&b);
    let _c = Cleanup(&b);
    let locked = common::scratch_dir("rootless-locked-xdg");
    chmod(&locked, 0o700);
    let e = err(&as_user(binary(), &b, &["create", &b.id], &[("XDG_RUNTIME_DIR", locked.to_str().expect("utf8"))]), "create");
    // The text log quotes the message, escaping its quotes.
    assert!(e.contains(&format!(r#"create: rootless: XDG_RUNTIME_DIR \"{}\": permission denied"#, locked.display())), "{e}");
    let e = err(&as_user(binary(), &b, &["list"], &[("XDG_RUNTIME_DIR", "")]), "list");
    assert!(e.contains("list: rootless: XDG_RUNTIME_DIR is not set (set it, or give --root)"), "{e}");
}

#[test]
fn rootless_limits_without_a_delegated_cgroup_are_refused_by_name() {
    if !require_root() {
        return;
    }
    let mut b = rootless_bundle("true");
    b.config["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}, "memory": {"limit": 100000000}});
    write(&b);
    let _c = Cleanup(&b);
    let e = err(&as_user(binary(), &b, &["create", &b.id], &[]), "create");
    assert!(e.contains("create: rootless: linux.resources.memory, linux.resources.pids need a cgroup, and none is delegated to this user"), "{e}");
    assert!(!state_dir(&b.id).exists());
}

/// A cgroup2 subtree delegated to the user (chowned, as systemd delegates user@UID.service), with
/// the user's testudo started inside it (a process may move another only below a cgroup.procs it
/// can write): pause, resume, kill --all and a v2 limit (hugetlb, in v2 on this host) all work,
/// and delete removes the container's cgroup.
#[test]
fn rootless_uses_a_delegated_cgroup_for_limits_pause_and_kill() {
    if !require_root() {
        return;
    }
    let u = user();
    let v2 = cgroup2_mount();
    let deleg = Path::new(v2).join(format!("testudo-rl-{}", std::process::id()));
    std::fs::create_dir_all(&deleg).expect("delegated cgroup");
    for f in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
        chown(&deleg.join(f), u.uid, u.gid);
    }
    // The user's own processes live in a leaf below it (as systemd's init.scope): a cgroup with
    // processes cannot hand controllers to its children.
    let leaf = deleg.join("user");
    std::fs::create_dir_all(&leaf).expect("leaf cgroup");
    for f in ["", "cgroup.procs", "cgroup.threads"] {
        chown(&leaf.join(f), u.uid, u.gid);
    }
    let hugetlb = std::fs::read_to_string(deleg.join("cgroup.controllers")).unwrap_or_default().split_whitespace().any(|c| c == "hugetlb");
    let mut b = rootless_bundle("cat /sys/fs/cgroup/hugetlb.2MB.max 2>/dev/null; sleep 60");
    // runc's default spec (and so ours) has no cgroup namespace: this test's view needs one.
    b.namespace("cgroup", None);
    let rel = format!("/{}/c1", deleg.file_name().expect("name").to_str().expect("utf8"));
    b.config["linux"]["cgroupsPath"] = rel.clone().into();
    if hugetlb {
        b.config["linux"]["resources"] = serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    }
    write(&b);
    // setpriv is started inside the delegated cgroup, so testudo is too.
    let inside = |args: &[&str]| {
        let mut all = vec!["-c", "echo $$ > \"$0\"/cgroup.procs && exec \"$@\"", leaf.to_str().expect("utf8")];
        let s = binary().to_str().expect("utf8").to_string();
        let uid = u.uid.to_string();
        let gid = u.gid.to_string();
        let xdg = format!("XDG_RUNTIME_DIR={}", u.xdg.display());
        let mut cmd: Vec<&str> = vec!["setpriv", "--reuid", &uid, "--regid", &gid, "--clear-groups", "--", "env", &xdg, &s];
        cmd.extend_from_slice(args);
        all.extend(cmd);
        let mut c = Command::new("sh");
        c.args(&all).current_dir(&b.dir);
        output(c)
    };
    let _c = Cleanup(&b);
    ok(&inside(&["create", &b.id]), "create");
    let cg = deleg.join("c1");
    assert!(cg.is_dir(), "no cgroup made at {cg:?}");
    if hugetlb {
        assert_eq!(std::fs::read_to_string(cg.join("hugetlb.2MB.max")).expect("hugetlb.2MB.max").trim(), "4194304");
    }
    ok(&inside(&["start", &b.id]), "start");
    // An exec'd process is born in the container's cgroup, the root of its cgroup namespace.
    let exec = ok(&inside(&["exec", &b.id, "cat", "/proc/self/cgroup"]), "exec");
    assert!(exec.lines().any(|l| l == "0::/"), "exec'd process outside the container's cgroup: {exec}");
    // From outside the delegated subtree the kernel refuses the clone into the container's
    // cgroup (the common ancestor is root's): an error naming both cgroups and what to do, and
    // no process of the exec is left anywhere.
    let procs = || std::fs::read_to_string(cg.join("cgroup.procs")).expect("cgroup.procs");
    let before = procs();
    let mut c = Command::new("setpriv");
    c.args(["--reuid", &u.uid.to_string(), "--regid", &u.gid.to_string(), "--clear-groups", "--", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", u.xdg.display()))
        .arg(binary())
        .args(["exec", &b.id, "true"])
        .current_dir(&b.dir);
    let e = err(&output(c), "exec from outside the delegated cgroup");
    // The log line escapes the quotes of the paths.
    assert!(e.contains(&format!("into cgroup \\\"{}\\\" from cgroup \\\"/", cg.display())), "{e}");
    assert!(e.contains("writing to their common ancestor's cgroup.procs is not allowed"), "{e}");
    assert!(e.contains("permission denied"), "{e}");
    assert_eq!(procs(), before, "the refused exec changed the container's cgroup");
    ok(&inside(&["pause", &b.id]), "pause");
    assert_eq!(std::fs::read_to_string(cg.join("cgroup.freeze")).expect("freeze").trim(), "1");
    let state: serde_json::Value = serde_json::from_slice(&ok(&inside(&["state", &b.id]), "state").into_bytes()).expect("state");
    assert_eq!(state["status"], "paused");
    ok(&inside(&["resume", &b.id]), "resume");
    ok(&inside(&["kill", "--all", &b.id, "KILL"]), "kill --all");
    ok(&inside(&["delete", "--force", &b.id]), "delete");
    assert!(!cg.exists(), "delete left the container's cgroup");
    assert!(!state_dir(&b.id).exists());
    // The shells moved into the delegated cgroup have exited: it is empty and can go.
    let _ = std::fs::remove_dir(&leaf);
    let _ = std::fs::remove_dir(&deleg);
}

/// CVE-2019-5736 rootless: a runtime binary the user owns (so container root, the user, could
/// write it) cannot be cloned read-only without privilege; testudo runs from a sealed memfd copy
/// instead, and a container process that catches it through /proc/PID/exe cannot write it.
#[test]
fn rootless_cve_2019_5736_a_user_owned_runtime_cannot_be_overwritten() {
    if !require_root() {
        return;
    }
    let u = user();
    let mut b = rootless_bundle("sleep 60");
    if !probe::add(&mut b) {
        return;
    }
    write(&b);
    let bin = b.dir.join("testudo-user");
    std::fs::copy(common::BIN, &bin).expect("copy testudo");
    chown(&bin, u.uid, u.gid);
    chmod(&bin, 0o755);
    let before = std::fs::read(&bin).expect("read");
    let _c = Cleanup(&b);
    ok(&as_user(&bin, &b, &["run", "-d", &b.id], &[]), "run -d");
    let fifo = "/dev/shm/cve-2019-5736-rootless";
    // The attacker is started by the root-owned binary (a user-owned one being run could not be
    // written anyway, ETXTBSY).
    let attacker = {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid", &u.uid.to_string(), "--regid", &u.gid.to_string(), "--clear-groups", "--"]);
        c.arg(binary()).args(["exec", &b.id, probe::PATH, "catch-exe", fifo]).env("XDG_RUNTIME_DIR", &u.xdg).current_dir(&b.dir);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("attacker")
    };
    common::wait_for("the attacker's fifo", || as_user(binary(), &b, &["exec", &b.id, "test", "-p", fifo], &[]).status.success());
    let _ = as_user(&bin, &b, &["exec", &b.id, "/proc/self/exe", "--log", fifo], &[]);
    let out = String::from_utf8_lossy(&attacker.wait_with_output().expect("attacker").stdout).into_owned();
    assert!(out.contains("CAUGHT"), "the attack never got hold of the runtime binary, so it tested nothing: {out}");
    assert!(out.lines().last().unwrap_or("").starts_with("ERR"), "the container reopened the runtime binary for writing: {out}");
    assert!(std::fs::read(&bin).expect("read") == before, "the user's testudo binary was changed");
}

/// Processes whose command line names `id` (a created init has not exec'd yet: its command line
/// is still testudo's, with the id).
fn processes_naming(id: &str) -> Vec<i32> {
    let pids = std::fs::read_dir("/proc").expect("proc").flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
    pids.filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == id.as_bytes()))).collect()
}

/// A create that fails after its init is up (here at the pid file) kills the init: without a
/// cgroup, nothing else would, and it would wait on exec.fifo for ever.
#[test]
fn rootless_a_create_failing_after_its_init_started_leaves_no_process() {
    if !require_root() {
        return;
    }
    let b = rootless_bundle("true");
    write(&b);
    let _c = Cleanup(&b);
    let e = err(&as_user(binary(), &b, &["create", "--pid-file", "/nonexistent/dir/pid", &b.id], &[]), "create");
    assert!(e.contains("pid file"), "{e}");
    assert!(!state_dir(&b.id).exists(), "a failed create left its state dir");
    assert_eq!(processes_naming(&b.id), Vec::<i32>::new(), "a failed create left its init");
}

/// Rootless podman driving testudo (issue 14): podman runs as the user in a user namespace of
/// its own (newuidmap with the user's subuid ranges) and calls the runtime there as root of that
/// namespace, with a spec that makes no user namespace and no usable cgroup (cgroupfs manager).
/// run, run -d, exec, stop and rm must all work, and the container must see podman's maps.
#[test]
fn rootless_podman_runs_execs_and_stops_a_container_with_testudo() {
    if !require_root() {
        return;
    }
    if !Path::new("/usr/bin/podman").exists() {
        common::skip("podman is not installed (integration/setup.sh installs it)");
        return;
    }
    let u = user();
    let b = rootless_bundle("true");
    let dir = b.dir.join("podman");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("podman dirs");
    for d in [&dir, &home] {
        chown(d, u.uid, u.gid);
    }
    let tar = dir.join("rootfs.tar");
    assert!(Command::new("tar").arg("-C").arg(common::rootfs()).arg("-cf").arg(&tar).arg(".").status().expect("tar").success());
    let d = dir.to_str().expect("utf8");
    let (root, runroot, tmp) = (format!("{d}/root"), format!("{d}/runroot"), format!("{d}/tmp"));
    let podman = |args: &[&str]| {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid", &u.uid.to_string(), "--regid", &u.gid.to_string(), "--clear-groups", "--", "/usr/bin/podman"]);
        c.args(["--root", &root, "--runroot", &runroot, "--tmpdir", &tmp, "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]);
        c.args(["--events-backend", "file", "--runtime", binary().to_str().expect("utf8")]).args(args);
        c.current_dir(&home).env_clear().env("HOME", &home).env("XDG_RUNTIME_DIR", &u.xdg).env("PATH", "/usr/bin:/bin");
        output(c)
    };
    // podman leaves a pause process holding its user namespace (its pid in --tmpdir): ended
    // here by that pid; then the storage, written from podman's user namespace as subordinate
    // ids, is removed by root.
    struct Pause(PathBuf);
    impl Drop for Pause {
        fn drop(&mut self) {
            if let Some(pid) = std::fs::read_to_string(self.0.join("tmp/pause.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _pause = Pause(dir.clone());
    let image = "localhost/testudo-rootless-busybox";
    ok(&podman(&["import", tar.to_str().expect("utf8"), image]), "podman import");
    let maps = ok(&podman(&["run", "--rm", "--network", "none", image, "cat", "/proc/self/uid_map"]), "podman run");
    let rows: Vec<Vec<&str>> = maps.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.first().map(|r| r[..2].to_vec()), Some(vec!["0", &*u.uid.to_string()]), "podman's map of the user: {maps}");
    assert!(rows.iter().any(|r| r[1] == user().sub.to_string()), "podman's map has the test's subuid range: {maps}");
    ok(&podman(&["run", "-d", "--name", "rl", "--network", "none", image, "sleep", "1000"]), "podman run -d");
    let runtime = ok(&podman(&["inspect", "--format", "{{.OCIRuntime}}", "rl"]), "podman inspect");
    assert_eq!(runtime.trim(), binary().to_str().expect("utf8"), "podman used another runtime");
    let cmdline = ok(&podman(&["exec", "rl", "cat", "/proc/1/cmdline"]), "podman exec");
    assert_eq!(cmdline, "sleep\u{0}1000\u{0}");
    ok(&podman(&["stop", "-t", "1", "rl"]), "podman stop");
    ok(&podman(&["rm", "rl"]), "podman rm");
    assert_eq!(ok(&podman(&["ps", "-a", "-q"]), "podman ps").trim(), "", "a container is left");
}

/// A sandbox of the test user's (issue 22 item 10): a workspace of its own, a report beside it,
/// and an XDG_RUNTIME_DIR of its own with no d-bus socket in it (so no systemd user scope).
/// The host's cgroup2 mount: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified here.
fn cgroup2_mount() -> &'static str {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|p| nix::sys::statfs::statfs(*p).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC))
        .expect("a cgroup2 mount")
}

struct UserSandbox {
    ws: PathBuf,
    report: PathBuf,
    xdg: PathBuf,
    /// Who runs testudo: the test user, or another uid and gid.
    ids: (u32, u32),
    /// The caller's supplementary groups (none unless told).
    groups: Vec<u32>,
    path: &'static str,
}

impl UserSandbox {
    fn new(name: &str) -> UserSandbox {
        let u = user();
        UserSandbox::new_as(name, u.uid, u.gid)
    }

    /// Run by `uid` and `gid`, which need no name nor a subordinate range.
    fn new_as(name: &str, uid: u32, gid: u32) -> UserSandbox {
        user();
        let dir = common::scratch_dir(&format!("rootless-sb-{name}"));
        let (ws, xdg) = (dir.join("ws"), dir.join("xdg"));
        for d in [&ws, &xdg] {
            std::fs::create_dir(d).expect("mkdir");
            chown(d, uid, gid);
        }
        chown(&dir, uid, gid);
        chmod(&xdg, 0o700);
        UserSandbox { ws, report: dir.join("report.json"), xdg, ids: (uid, gid), groups: Vec::new(), path: "/usr/bin:/bin" }
    }

    /// `testudo sandbox --rootfs R --workspace W --report F OPTS… -- sh -c SCRIPT` as the test
    /// user (no capability, no supplementary group unless `groups`); with `leaf`, started inside
    /// that cgroup.
    fn command(&self, leaf: Option<&Path>, opts: &[&str], script: &str) -> Command {
        let (uid, gid) = self.ids;
        let mut c = Command::new("/bin/sh");
        // Root moves the shell into the leaf, then becomes the user: testudo starts inside it.
        c.args(["-c", "if [ -n \"$0\" ]; then echo $$ > \"$0\"/cgroup.procs || exit 99; fi; exec \"$@\""]);
        c.arg(leaf.map_or(PathBuf::new(), Path::to_path_buf));
        c.args(["/usr/bin/setpriv", "--reuid", &uid.to_string(), "--regid", &gid.to_string()]);
        match &self.groups[..] {
            [] => c.arg("--clear-groups"),
            g => c.arg("--groups").arg(g.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
        };
        c.args(["--inh-caps=-all", "--"]);
        c.arg(binary()).arg("sandbox").arg("--rootfs").arg(common::rootfs()).arg("--workspace").arg(&self.ws).arg("--report").arg(&self.report);
        c.args(opts).args(["--", "sh", "-c", script]);
        c.current_dir(&self.ws).env_clear().env("PATH", self.path).env("XDG_RUNTIME_DIR", &self.xdg);
        c
    }

    fn run(&self, leaf: Option<&Path>, opts: &[&str], script: &str) -> Output {
        output(self.command(leaf, opts, script))
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.report).expect("report")).expect("report json")
    }

    /// Nothing of a run is left in the user's state root.
    fn assert_no_state(&self) {
        let left: Vec<_> = std::fs::read_dir(self.xdg.join("testudo"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_str().is_some_and(|n| n.starts_with("sandbox-")))
            .collect();
        assert!(left.is_empty(), "state left: {left:?}");
    }
}

/// The job's view of its identity and confinement, then a file it writes in the workspace.
const WHO: &str = "cat /proc/self/uid_map; echo ---; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
                   echo ---; cat /proc/self/cgroup; echo made > out.txt; touch /x 2>/dev/null || echo root-ro; \
                   chmod u+s out.txt 2>/dev/null || echo no-suid";

/// Asserts what `WHO` printed: the job's uid 1000 is the caller's and nothing else is mapped (no
/// uid 0 of the caller's, no capability, no_new_privileges, the build profile's filter, a
/// read-only root, no set-id bit), and that the file it wrote is the caller's on the host.
fn assert_confined_as_the_caller(out: &Output, s: &UserSandbox) -> String {
    let u = user();
    let stdout = ok(out, "sandbox");
    let map: Vec<Vec<&str>> = stdout.split("---").next().unwrap_or("").lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(map, [vec!["1000", &*u.uid.to_string(), "1"]], "uid_map: {stdout}");
    for cap in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&stdout, cap), Some("0000000000000000"), "{cap}: {stdout}");
    }
    assert_eq!(status_field(&stdout, "NoNewPrivs"), Some("1"), "{stdout}");
    assert_eq!(status_field(&stdout, "Seccomp"), Some("2"), "{stdout}");
    assert!(stdout.contains("root-ro\n") && stdout.contains("no-suid\n"), "{stdout}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(s.ws.join("out.txt")).expect("the job's file");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7000), (u.uid, u.gid, 0), "the job's file on the host");
    stdout
}

/// Host processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let pids = std::fs::read_dir("/proc").expect("proc").flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
    pids.filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want)).collect()
}

/// `--no-limits`: the user's job runs without a cgroup, confined as a root's is otherwise; the
/// report and stderr (once) say it has no limits; the timeout still ends every process of the
/// job (its init, pid 1 of its pid namespace, is killed, which takes them all), and so does
/// testudo's own death (die-with-parent).
#[test]
fn rootless_sandbox_with_no_limits_confines_the_job_as_the_caller_and_ends_all_of_it() {
    if !require_root() {
        return;
    }
    let s = UserSandbox::new("nolimits");
    let out = s.run(None, &["--no-limits", "--landlock"], WHO);
    let stdout = assert_confined_as_the_caller(&out, &s);
    assert!(stdout.contains("0::/\n"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("without memory, pids and cpu limits").count(), 1, "{stderr}");
    let r = s.report();
    assert_eq!((r["exit"].as_i64(), r["limits"].as_bool(), r["cgroup"].is_null()), (Some(0), Some(false), true), "{r}");
    s.assert_no_state();

    // --record records: the user's testudo takes the notify fd of its job (which turns dumpable
    // for it just before the filter goes on). A user's report lists no denials yet (null).
    let out = s.run(None, &["--no-limits"], "unshare -U true; echo done");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    assert!(s.report()["deniedSyscalls"].is_null(), "{}", s.report());
    let prof = s.report.with_file_name("recorded.json");
    let out = s.run(None, &["--no-limits", "--record", prof.to_str().expect("utf8")], "echo recorded");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "recorded\n", "{}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile written")).expect("json");
    assert!(p["syscalls"][0]["names"].as_array().is_some_and(|n| n.iter().any(|n| n == "execve")), "{p}");
    s.assert_no_state();

    // The timeout: children, a new session's orphan and the job all go.
    let out = s.run(None, &["--no-limits", "--timeout", "1"], "sleep 7301 & (setsid sleep 7302 &); sleep 7303");
    assert_eq!(out.status.code(), Some(124), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.report()["reason"], "timeout");
    for n in ["7301", "7302", "7303"] {
        assert_eq!(processes_running(&["sleep", n]), Vec::<i32>::new(), "sleep {n} outlived the timeout");
    }
    s.assert_no_state();

    // testudo SIGKILLed: its job dies with it.
    let mut c = s.command(None, &["--no-limits"], "sleep 7304 & (setsid sleep 7305 &); echo started > started; sleep 7306");
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("sandbox");
    common::wait_for("the job to start", || s.ws.join("started").exists() && !processes_running(&["sleep", "7305"]).is_empty());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).expect("kill");
    let _ = child.wait();
    common::wait_for("the job to die with testudo", || ["7304", "7305", "7306"].iter().all(|n| processes_running(&["sleep", n]).is_empty()));
}

/// A user's job does not keep the caller's supplementary groups, which would still grant their
/// access on the host while reading as 65534 inside. With a range in /etc/subgid and newgidmap,
/// the gid map goes through the helper (one subordinate gid in it), setgroups stays allowed and
/// the job drops them all: `Groups:` is empty, and a file readable only by one of those groups
/// is not. Without newgidmap, or for a caller without a range, they are kept (the job reads the
/// file), and said once on stderr and in the report's `confinement.groupsKept`.
#[test]
fn rootless_sandbox_drops_the_callers_supplementary_groups_or_says_it_keeps_them() {
    if !require_root() {
        return;
    }
    if !Path::new("/usr/bin/newgidmap").exists() {
        return common::skip("no newgidmap (package uidmap, integration/setup.sh)");
    }
    const GROUP: u32 = 4242;
    // A uid and gid of no user, without a subordinate range.
    const NOBODY_ELSE: u32 = 61_001;
    let no_range = |file: &str| std::fs::read_to_string(file).unwrap_or_default().lines().all(|l| l.split(':').next() != Some(&NOBODY_ELSE.to_string()));
    assert!(no_range("/etc/subgid"), "uid {NOBODY_ELSE} has a range in /etc/subgid");
    // Readable by GROUP only: root-owned, group GROUP, nothing for others.
    let secret = common::scratch_dir("rootless-sb-groups-secret");
    std::fs::write(secret.join("f"), "group-only\n").expect("write");
    for (p, mode) in [(secret.join("f"), 0o640), (secret.clone(), 0o750)] {
        chown(&p, 0, GROUP);
        chmod(&p, mode);
    }
    let bind = format!("{}:/opt/secret", secret.display());
    let script = "grep '^Groups:' /proc/self/status; cat /opt/secret/f 2>/dev/null || echo denied";
    let warning = |stderr: &str| stderr.lines().filter(|l| l.contains("keeps the caller's supplementary groups")).map(str::to_string).collect::<Vec<_>>();

    let mut s = UserSandbox::new("groups");
    s.groups = vec![GROUP];
    let out = s.run(None, &["--no-limits", "--ro-bind", &bind], script);
    let stdout = ok(&out, "sandbox with a subordinate range");
    assert_eq!(stdout.lines().map(str::trim_end).collect::<Vec<_>>(), ["Groups:", "denied"], "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(warning(&stderr), Vec::<String>::new(), "{stderr}");
    assert_eq!(s.report()["confinement"]["groupsKept"], serde_json::json!([]), "{}", s.report());
    s.assert_no_state();

    // No newgidmap on PATH, then a caller without a range: kept, and said so.
    let mut no_helper = UserSandbox::new("groups-nohelper");
    no_helper.groups = vec![GROUP];
    no_helper.path = "/nonexistent";
    let mut no_range = UserSandbox::new_as("groups-norange", NOBODY_ELSE, NOBODY_ELSE);
    no_range.groups = vec![GROUP];
    for (s, why) in [(&no_helper, "newgidmap (package uidmap) not found"), (&no_range, "no range for the caller in /etc/subgid")] {
        let out = s.run(None, &["--no-limits", "--ro-bind", &bind], script);
        let stdout = ok(&out, why);
        assert_eq!(stdout.lines().map(str::trim_end).collect::<Vec<_>>(), ["Groups:\t65534", "group-only"], "{why}: {stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let w = warning(&stderr);
        assert_eq!(w.len(), 1, "{why}: one warning: {stderr}");
        assert!(w[0].contains(&format!("groups {GROUP} ({why})")), "{why}: {stderr}");
        assert_eq!(s.report()["confinement"]["groupsKept"], serde_json::json!([GROUP]), "{why}: {}", s.report());
        s.assert_no_state();
    }
}

/// `--cgroup PATH`: the job's cgroup is made below a cgroup2 directory delegated to the user
/// (chowned, as systemd delegates), from inside which testudo runs. What this host's cgroup2 has
/// (hugetlb only) cannot hold the memory, pids and cpu limits: that is an error naming the
/// option and the way out, never a limit dropped. A PATH that is not cgroup2, not the user's, or
/// that testudo runs outside of is refused by name.
#[test]
fn rootless_sandbox_in_a_delegated_cgroup() {
    if !require_root() {
        return;
    }
    let u = user();
    let v2 = cgroup2_mount();
    let deleg = Path::new(v2).join(format!("testudo-rl-sb-{}", std::process::id()));
    let leaf = deleg.join("user");
    std::fs::create_dir_all(&leaf).expect("delegated cgroup");
    for f in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "user", "user/cgroup.procs", "user/cgroup.threads"] {
        chown(&deleg.join(f), u.uid, u.gid);
    }
    let path = deleg.to_str().expect("utf8");
    let s = UserSandbox::new("cgroup");
    // The job waits until the host has looked at its cgroup.
    let script = format!("{WHO}; echo ready > ready; while [ ! -e go ]; do sleep 0.05; done");
    let mut c = s.command(Some(&leaf), &["--cgroup", path, "--no-limits"], &script);
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sandbox");
    common::wait_for("the job", || s.ws.join("ready").exists());
    let jobs: Vec<PathBuf> = std::fs::read_dir(&deleg)
        .expect("read the delegated cgroup")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("sandbox-")))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let procs = std::fs::read_to_string(jobs[0].join("cgroup.procs")).expect("the job's cgroup.procs");
    let rel = format!("0::/{}", jobs[0].strip_prefix(v2).expect("below").display());
    let pids: Vec<&str> = procs.lines().collect();
    assert!(!pids.is_empty(), "no process in the job's cgroup");
    for pid in pids {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(cg.lines().any(|l| l == rel), "process {pid} is in {cg}, not {rel}");
    }
    std::fs::write(s.ws.join("go"), "").expect("go");
    let out = child.wait_with_output().expect("sandbox");
    let stdout = assert_confined_as_the_caller(&out, &s);
    // Inside, its own cgroup is the root of its cgroup namespace.
    assert!(stdout.contains("0::/\n"), "{stdout}");
    let r = s.report();
    assert_eq!(r["cgroup"].as_str(), jobs[0].to_str(), "{r}");
    assert!(r["cpuSeconds"].as_f64().is_some(), "{r}");
    assert!(!jobs[0].exists(), "the job's cgroup was left");
    s.assert_no_state();

    let refused = |leaf: Option<&Path>, opts: &[&str], needles: &[&str]| {
        let out = s.run(leaf, opts, "true");
        let e = err(&out, &format!("{opts:?}"));
        for n in needles {
            assert!(e.contains(n), "{opts:?}: {e}");
        }
        assert_eq!(out.status.code(), Some(126), "{opts:?}");
        assert_eq!(s.report()["reason"], "setup-failed");
    };
    // The limits, by default or asked for, need controllers this cgroup2 lacks.
    let has = |c: &str| std::fs::read_to_string(deleg.join("cgroup.controllers")).unwrap_or_default().split_whitespace().any(|x| x == c);
    if !has("memory") {
        refused(Some(&leaf), &["--cgroup", path], &["--memory (default 2G) needs the memory controller", "--no-limits"]);
        refused(Some(&leaf), &["--cgroup", path, "--memory", "1G"], &["--memory 1G needs the memory controller"]);
    }
    refused(None, &["--cgroup", path, "--no-limits"], &["testudo runs in cgroup", "run testudo inside"]);
    refused(Some(&leaf), &["--cgroup", "/tmp", "--no-limits"], &["--cgroup \\\"/tmp\\\": not a cgroup2 directory"]);
    refused(Some(&leaf), &["--cgroup", v2, "--no-limits"], &[&format!("--cgroup \\\"{v2}\\\": not writable by uid {}", u.uid)]);
    assert!(
        std::fs::read_dir(&deleg).expect("read").flatten().all(|e| !e.file_name().to_string_lossy().starts_with("sandbox-")),
        "a refused run left a cgroup"
    );
    let _ = std::fs::remove_dir(&leaf);
    let _ = std::fs::remove_dir(&deleg);
}

/// A user's sandbox with no way to limit it fails loudly, naming the three choices; a limit
/// asked for with --no-limits is refused, never dropped.
#[test]
fn rootless_sandbox_without_a_choice_fails_naming_the_three() {
    if !require_root() {
        return;
    }
    let s = UserSandbox::new("nochoice");
    let out = s.run(None, &[], "echo ran > ran");
    let e = err(&out, "sandbox without a choice");
    for n in ["there is no systemd user bus at", "--cgroup PATH", "a systemd user bus", "--no-limits"] {
        assert!(e.contains(n), "{n}: {e}");
    }
    assert_eq!(out.status.code(), Some(126));
    assert!(!s.ws.join("ran").exists(), "the job ran");
    for opts in [&["--no-limits", "--memory", "1G"][..], &["--no-limits", "--pids", "10"], &["--no-limits", "--cpus", "1"]] {
        let e = err(&s.run(None, opts, "echo ran > ran"), &format!("{opts:?}"));
        assert!(e.contains(&format!("--no-limits with {}: a limit asked for is never dropped", opts[1])), "{e}");
        assert!(!s.ws.join("ran").exists(), "the job ran");
    }
    s.assert_no_state();
}
