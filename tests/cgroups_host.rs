//! cgroup v2 on this host's hierarchy (issue 5): freeze/thaw, kill --all, ps, device rules as an
//! eBPF program, hugetlb limits, cgroupsPath, events --stats, and a clear error for a limit whose
//! controller the hierarchy lacks. Seen from inside the container or through its /proc/PID/root.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{require_root, wait_for, Bundle};

fn started(script: &str) -> Bundle {
    let b = Bundle::new(script);
    let out = b.create();
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    assert!(b.testudo(&["start", &b.id]).status.success());
    b
}

fn init_pid(b: &Bundle) -> i64 {
    b.state().expect("state")["pid"].as_i64().expect("pid")
}

fn ps(b: &Bundle) -> Vec<i32> {
    let out = b.testudo(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ps json")
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

/// The v2 hierarchy the runtime uses here.
fn hierarchy() -> PathBuf {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(p).join("cgroup.controllers").exists() {
            return PathBuf::from(p);
        }
    }
    panic!("no cgroup v2 hierarchy");
}

#[test]
fn pause_stops_a_counter_and_resume_restarts_it() {
    if !require_root() {
        return;
    }
    let b = started("i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; done");
    let counter = PathBuf::from(format!("/proc/{}/root/dev/shm/n", init_pid(&b)));
    let read = || std::fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    wait_for("the counter to run", || read() > 10);
    assert!(b.testudo(&["pause", &b.id]).status.success());
    assert_eq!(b.status(), "paused");
    let frozen = read();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen, "the counter moved while paused");
    let again = b.testudo(&["pause", &b.id]);
    assert!(!again.status.success(), "pausing a paused container is an error");
    assert!(b.testudo(&["resume", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    wait_for("the counter to move again", || read() > frozen + 10);
}

#[test]
fn kill_all_signals_every_process_and_sigkill_reaps_the_tree() {
    if !require_root() {
        return;
    }
    // A tree: the init shell, a subshell, and sleeps under both.
    let b = started("sleep 100 & (sleep 100 & sleep 100; wait) & wait; sleep 100");
    wait_for("the tree", || ps(&b).len() >= 5);
    let first = ps(&b);
    let init = init_pid(&b) as i32;
    // TERM to each process: everything but the init (pid 1 of its namespace ignores a signal it
    // has no handler for) dies, and the init's `wait` returns into the last sleep.
    assert!(b.testudo(&["kill", "--all", &b.id, "TERM"]).status.success());
    wait_for("TERM to reach every process", || first.iter().all(|&p| p == init || !alive(p)));
    assert!(alive(init));
    let now = ps(&b);
    assert!(now.contains(&init), "{now:?}");
    // SIGKILL goes through cgroup.kill: nothing survives, not even a fork in flight.
    assert!(b.testudo(&["kill", "--all", &b.id, "KILL"]).status.success());
    wait_for("the cgroup to empty", || ps(&b).is_empty());
    wait_for("the container to stop", || b.status() == "stopped");
}

#[test]
fn ps_lists_the_container_processes() {
    if !require_root() {
        return;
    }
    let b = started("sleep 101 & sleep 102; true");
    wait_for("two processes", || ps(&b).len() == 3);
    let pids = ps(&b);
    assert!(pids.contains(&(init_pid(&b) as i32)));
    let procs = std::fs::read_to_string(hierarchy().join("testudo").join(&b.id).join("cgroup.procs")).expect("cgroup.procs");
    let mut from_cgroup: Vec<i32> = procs.lines().map(|l| l.parse().expect("pid")).collect();
    let mut sorted = pids.clone();
    from_cgroup.sort();
    sorted.sort();
    assert_eq!(sorted, from_cgroup);
    let out = b.testudo(&["ps", &b.id]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().is_some_and(|h| h.contains("PID")), "{table}");
    assert!(table.contains("sleep 101") && table.contains("sleep 102"), "{table}");
    assert_eq!(table.lines().count(), 4, "header and three processes: {table}");
}

/// With CAP_MKNOD the container makes nodes itself (mknod is always allowed, as in runc); only
/// the device program decides whether they open. c 1:42 has no driver: an open the program lets
/// through fails with ENXIO, one it refuses with EPERM.
fn device_probe(rules: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(
        "mknod /dev/x c 1 42 && mknod /dev/z c 1 5 && head -c 4 /dev/z | wc -c; \
         (cat /dev/x) 2>&1 | sed 's/.*: //'; (echo > /dev/x) 2>&1 | sed 's/.*: //'",
    );
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set].as_array_mut().expect("caps").push("CAP_MKNOD".into());
    }
    b.config["linux"]["resources"]["devices"] = rules;
    b
}

#[test]
fn device_rules_deny_with_eperm_and_allow_per_access_letter() {
    if !require_root() {
        return;
    }
    let deny_all = serde_json::json!([{"allow": false, "access": "rwm"}]);
    let out = device_probe(deny_all.clone()).run_ok();
    assert_eq!(out, "4\nOperation not permitted\nOperation not permitted\n", "default node works, c 1:42 is denied");
    let mut read_only = deny_all.as_array().expect("array").clone();
    read_only.push(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 42, "access": "r"}));
    let out = device_probe(serde_json::Value::Array(read_only)).run_ok();
    assert_eq!(out, "4\nNo such device or address\nOperation not permitted\n", "read allowed, write denied");
    // No rules at all: still deny by default, as runc does.
    let mut b = device_probe(serde_json::Value::Null);
    b.config["linux"]["resources"] = serde_json::Value::Null;
    assert_eq!(b.run_ok(), "4\nOperation not permitted\nOperation not permitted\n");
}

#[test]
fn update_replaces_the_device_program() {
    if !require_root() {
        return;
    }
    let mut b = device_probe(serde_json::json!([{"allow": false, "access": "rwm"}]));
    b.config["process"]["args"] = serde_json::json!(["sh", "-c", "mknod /dev/x c 1 42; sleep 100"]);
    assert!(b.create().status.success());
    assert!(b.testudo(&["start", &b.id]).status.success());
    let open_x = |b: &Bundle| {
        let out = b.testudo(&["exec", &b.id, "sh", "-c", "(cat /dev/x) 2>&1 | sed 's/.*: //'"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    wait_for("the node", || open_x(&b) == "Operation not permitted");
    let r = b.dir.join("r.json");
    std::fs::write(&r, r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 42, "access": "rw"}]}"#)
        .expect("write");
    let out = b.testudo(&["update", "--resources", r.to_str().expect("utf8"), &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(open_x(&b), "No such device or address", "the old program must be gone");
    // Back to deny: the new program replaces, it does not add.
    std::fs::write(&r, r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).expect("write");
    let out = b.cmd(&["update", "--resources", "-", &b.id]).stdin(std::fs::File::open(&r).expect("open")).output().expect("update");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(open_x(&b), "Operation not permitted");
}

#[test]
fn a_limit_whose_controller_is_missing_is_a_clear_error() {
    if !require_root() {
        return;
    }
    // rdma: in neither the v2 hierarchy nor a v1 one on this host (nor in the test VM).
    let available = std::fs::read_to_string(hierarchy().join("cgroup.controllers")).expect("controllers");
    if available.split_whitespace().any(|c| c == "rdma") || Path::new("/sys/fs/cgroup/rdma").exists() {
        common::skip("the rdma controller is available here");
        return;
    }
    let mut b = Bundle::new("true");
    b.config["linux"]["resources"] = serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}});
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("linux.resources.rdma: the rdma controller is not available"), "{err}");
    assert!(!hierarchy().join("testudo").join(&b.id).exists(), "cgroup left behind");
    assert!(!b.root.join(&b.id).exists(), "state left behind");
}

/// The v1 hierarchy of a controller the v2 hierarchy lacks (a hybrid host like this one).
fn v1_hierarchy(controller: &str) -> Option<PathBuf> {
    let available = std::fs::read_to_string(hierarchy().join("cgroup.controllers")).ok()?;
    let dir = Path::new("/sys/fs/cgroup").join(controller);
    (hierarchy() != Path::new("/sys/fs/cgroup") && !available.split_whitespace().any(|c| c == controller) && dir.join("cgroup.procs").exists()).then_some(dir)
}

/// systemd's named v1 hierarchy, on a hybrid host that mounts it (this one does).
fn systemd_hierarchy() -> Option<PathBuf> {
    let dir = Path::new("/sys/fs/cgroup/systemd");
    (hierarchy() != Path::new("/sys/fs/cgroup") && dir.join("cgroup.procs").exists()).then(|| dir.to_path_buf())
}

#[test]
fn on_a_hybrid_host_limits_of_v1_controllers_are_enforced_in_v1() {
    if !require_root() {
        return;
    }
    let (Some(pids), Some(memory), Some(cpu)) = (v1_hierarchy("pids"), v1_hierarchy("memory"), v1_hierarchy("cpu")) else {
        common::skip("not a hybrid host (pids, memory and cpu are not all bound to cgroup v1)");
        return;
    };
    let resources = serde_json::json!({
        "pids": {"limit": 10}, "memory": {"limit": 67108864, "reservation": 33554432}, "cpu": {"shares": 512, "quota": 20000, "period": 100000}
    });
    // From inside: which cgroups the shell is in, then 30 forks under pids.max 10 (ash gives up
    // at the first fork that fails, so the subshell counts what it got).
    let mut b = Bundle::new("grep -E '^[0-9]+:[a-z,=]+:' /proc/self/cgroup; (for i in $(seq 30); do sleep 5 & echo forked; done) 2>/dev/null | grep -c forked");
    b.config["linux"]["resources"] = resources.clone();
    // Without a cgroup namespace, so /proc/self/cgroup shows host paths.
    let ns: Vec<serde_json::Value> =
        b.config["linux"]["namespaces"].as_array().expect("namespaces").iter().filter(|n| n["type"] != "cgroup").cloned().collect();
    b.config["linux"]["namespaces"] = ns.into();
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{out} {err}");
    let rel = format!("/testudo/{}", b.id);
    // systemd's own v1 hierarchy (name=systemd), where the host has it: joined as runc does,
    // or a hybrid systemd host files the container under its caller's unit there.
    let named = systemd_hierarchy();
    for c in ["pids", "memory", "cpu", "cpuset"].into_iter().chain(named.as_ref().map(|_| "name=systemd")) {
        let inside = out.lines().any(|l| l.split(':').nth(1).is_some_and(|x| x.split(',').any(|x| x == c)) && l.ends_with(&format!(":{rel}")));
        assert!(inside, "not in the v1 {c} cgroup {rel}: {out}");
    }
    let forked: usize = out.lines().last().and_then(|n| n.trim().parse().ok()).unwrap_or(99);
    assert!(forked < 10, "pids.max 10 let {forked} of 30 forks through: {out}");
    for h in [&pids, &memory, &cpu].into_iter().chain(named.as_ref()) {
        assert!(!h.join(&rel[1..]).exists(), "v1 cgroup left behind in {h:?} by run");
    }

    // From the host: the v1 files, the init and an exec'd process in them, removed at delete.
    let mut b = Bundle::new("sleep 100");
    b.config["linux"]["resources"] = resources;
    let out = b.create();
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let rel = format!("/testudo/{}", b.id);
    let host = |h: &Path, f: &str| std::fs::read_to_string(h.join(&rel[1..]).join(f)).unwrap_or_else(|e| format!("{f}: {e}")).trim().to_string();
    assert_eq!(host(&pids, "pids.max"), "10");
    assert_eq!(host(&memory, "memory.limit_in_bytes"), "67108864");
    assert_eq!(host(&memory, "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(host(&cpu, "cpu.shares"), "512");
    assert_eq!((host(&cpu, "cpu.cfs_quota_us"), host(&cpu, "cpu.cfs_period_us")), ("20000".into(), "100000".into()));
    assert!(b.testudo(&["start", &b.id]).status.success());
    assert_eq!(host(&pids, "cgroup.procs"), init_pid(&b).to_string(), "the init is in the v1 pids cgroup");
    assert!(b.testudo(&["exec", "--detach", &b.id, "sleep", "100"]).status.success());
    assert_eq!(host(&pids, "cgroup.procs").lines().count(), 2, "the exec'd process is in the v1 pids cgroup too");
    assert_eq!(host(&memory, "cgroup.procs").lines().count(), 2, "the exec'd process is in the v1 memory cgroup too");
    if let Some(named) = &named {
        assert_eq!(host(named, "cgroup.procs").lines().count(), 2, "the init and the exec'd process in name=systemd");
    }
    // update reaches the v1 file.
    assert!(b.testudo(&["update", "--pids-limit", "7", &b.id]).status.success());
    assert_eq!(host(&pids, "pids.max"), "7");
    assert!(b.testudo(&["delete", "--force", &b.id]).status.success());
    for h in [&pids, &memory, &cpu].into_iter().chain(named.as_ref()) {
        assert!(!h.join(&rel[1..]).exists(), "v1 cgroup left behind in {h:?}");
    }
}

#[test]
fn hugetlb_limits_and_unified_keys_are_written() {
    if !require_root() {
        return;
    }
    let available = std::fs::read_to_string(hierarchy().join("cgroup.controllers")).expect("controllers");
    if !available.split_whitespace().any(|c| c == "hugetlb") || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        common::skip("no hugetlb controller or 2 MB pages");
        return;
    }
    let mut b = Bundle::new("d=/sys/fs/cgroup; [ -d $d/unified ] && d=$d/unified; cat $d/hugetlb.2MB.max $d/hugetlb.1GB.max");
    b.config["linux"]["resources"] = serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}], "unified": {"hugetlb.1GB.max": "0"}});
    assert_eq!(b.run_ok(), "4194304\n0\n");
    let mut b = Bundle::new("true");
    b.config["linux"]["resources"] = serde_json::json!({"unified": {"hugetlb.3MB.max": "0"}});
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("hugetlb.3MB.max") && err.contains("does not exist"), "{err}");
    let mut b = Bundle::new("true");
    b.config["linux"]["resources"] = serde_json::json!({"unified": {"cgroup.procs": "1"}});
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("cgroup.procs"), "{err}");
}

#[test]
fn cgroups_path_absolute_or_relative() {
    if !require_root() {
        return;
    }
    for (given, parent) in [("/testudo-abs/ID", "testudo-abs"), ("testudo-rel/ID", "testudo-rel")] {
        let mut b = Bundle::new("cat /proc/self/cgroup; sleep 100");
        b.config["linux"]["cgroupsPath"] = given.replace("ID", &b.id).into();
        assert!(b.create().status.success());
        assert!(b.testudo(&["start", &b.id]).status.success());
        let pid = init_pid(&b);
        let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        assert!(host_view.contains(&format!("0::/{parent}/{}", b.id)), "{host_view}");
        assert!(b.testudo(&["delete", "--force", &b.id]).status.success());
        assert!(!hierarchy().join(parent).join(&b.id).exists(), "delete removes the cgroup");
        let _ = std::fs::remove_dir(hierarchy().join(parent));
    }
}

#[test]
fn events_stats_is_one_runc_object() {
    if !require_root() {
        return;
    }
    let b = started("while :; do :; done");
    std::thread::sleep(Duration::from_millis(200));
    let out = b.testudo(&["events", "--stats", &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], b.id.as_str());
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().expect("total") > 50_000_000, "{v}");
    for key in ["memory", "pids", "blkio", "hugetlb"] {
        assert!(v["data"].get(key).is_some(), "{key} missing: {v}");
    }
    // The stream: stats objects every interval until the container stops.
    let child = b.cmd(&["events", "--interval", "100ms", &b.id]).stdout(std::process::Stdio::piped()).spawn().expect("events");
    std::thread::sleep(Duration::from_millis(450));
    assert!(b.testudo(&["kill", &b.id, "KILL"]).status.success());
    let out = child.wait_with_output().expect("events output");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| l["type"] == "stats"));
    let stopped = b.testudo(&["events", "--stats", &b.id]);
    assert!(!stopped.status.success(), "a stopped container has no events");
}

#[test]
fn on_a_hybrid_host_a_cgroup_mount_shows_the_containers_v1_and_v2_cgroups() {
    if !require_root() {
        return;
    }
    if v1_hierarchy("pids").is_none() || v1_hierarchy("memory").is_none() {
        common::skip("not a hybrid host");
        return;
    }
    let mut b = Bundle::new(
        "ls /sys/fs/cgroup | tr '\\n' ' '; echo; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         grep -c . /sys/fs/cgroup/pids/cgroup.procs; test -e /sys/fs/cgroup/unified/cgroup.freeze && echo unified-ok; \
         echo 5 > /sys/fs/cgroup/pids/pids.max 2>/dev/null || echo ro-ok; mkdir /sys/fs/cgroup/x 2>/dev/null || echo tmpfs-ro-ok",
    );
    b.config["linux"]["resources"] = serde_json::json!({"pids": {"limit": 12}, "memory": {"limit": 50331648}});
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    mounts.push(serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}));
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    for h in ["pids", "memory", "unified"] {
        assert!(lines[0].split_whitespace().any(|x| x == h), "/sys/fs/cgroup lacks {h}: {out}");
    }
    assert_eq!(&lines[1..4], ["12", "50331648", "2"], "the container's own v1 cgroups, with its processes (sh, grep): {out}");
    for want in ["unified-ok", "ro-ok", "tmpfs-ro-ok"] {
        assert!(lines.contains(&want), "{want}: {out}");
    }
}

/// Puts the hierarchy's nsdelegate option back as it was.
struct RootOptions(PathBuf, bool);
impl Drop for RootOptions {
    fn drop(&mut self) {
        let _ = remount(&self.0, if self.1 { "nsdelegate" } else { "" });
    }
}

/// mount(2) itself: util-linux's `mount -o remount` keeps options it finds in mountinfo.
fn remount(h: &Path, data: &str) -> nix::Result<()> {
    nix::mount::mount(None::<&str>, h, None::<&str>, nix::mount::MsFlags::MS_REMOUNT, Some(data))
}

fn nsdelegate(h: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines().filter(|l| l.split(' ').nth(4) == h.to_str()).any(|l| l.contains("nsdelegate"))
}

#[test]
fn without_a_cgroup_namespace_the_container_sees_the_hierarchy_and_changes_no_host_option() {
    if !require_root() {
        return;
    }
    // A cgroup2 mount made in the host's cgroup namespace applies its options to the hierarchy
    // for everyone: a container mounting cgroup2 afresh would switch the host's nsdelegate off.
    let h = hierarchy();
    let _restore = RootOptions(h.clone(), nsdelegate(&h));
    remount(&h, "nsdelegate").expect("remount with nsdelegate");
    assert!(nsdelegate(&h), "could not set nsdelegate on {h:?}");
    let mut b = Bundle::new("ls /sys/fs/cgroup/testudo >/dev/null && echo whole-hierarchy; grep ' /sys/fs/cgroup ' /proc/self/mountinfo; mkdir /sys/fs/cgroup/x 2>/dev/null || echo ro-ok");
    let ns: Vec<serde_json::Value> =
        b.config["linux"]["namespaces"].as_array().expect("namespaces").iter().filter(|n| n["type"] != "cgroup").cloned().collect();
    b.config["linux"]["namespaces"] = ns.into();
    // The hybrid layout binds the container's own cgroups instead: ask for plain cgroup2.
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    mounts.push(serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}));
    let out = b.run_ok();
    assert!(out.contains("whole-hierarchy") && out.contains("ro-ok"), "{out}");
    assert!(out.contains("cgroup2"), "{out}");
    assert!(nsdelegate(&h), "the container's cgroup mount turned the host's nsdelegate off");
}

/// bpf(2) with an attr of the command's layout.
fn bpf<T>(cmd: i64, attr: &mut T) -> i64 {
    // SAFETY: attr is a #[repr(C)] bpf_attr prefix for cmd, valid for the call.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) }
}

/// Attach program `id` to `cgroup` as a device program (BPF_F_ALLOW_MULTI), or detach it.
fn attach_device_program(cgroup: &Path, id: u32, attach: bool) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Attach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }
    let mut get = [id, 0u32, 0u32];
    let fd = bpf(13, &mut get); // BPF_PROG_GET_FD_BY_ID
    assert!(fd >= 0, "get program {id}: {}", std::io::Error::last_os_error());
    let dir = std::fs::File::open(cgroup).expect("open cgroup");
    let mut a =
        Attach { target_fd: dir.as_raw_fd() as u32, attach_bpf_fd: fd as u32, attach_type: 6, attach_flags: if attach { 2 } else { 0 }, replace_bpf_fd: 0 };
    let r = bpf(if attach { 8 } else { 9 }, &mut a); // BPF_PROG_ATTACH / BPF_PROG_DETACH
    assert_eq!(r, 0, "attach/detach {id} on {cgroup:?}: {}", std::io::Error::last_os_error());
    // SAFETY: fd is ours, from BPF_PROG_GET_FD_BY_ID above.
    unsafe { libc::close(fd as i32) };
}

/// The ids of the device programs attached to a cgroup (BPF_PROG_QUERY).
fn device_programs(cgroup: &Path) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }
    let dir = std::fs::File::open(cgroup).expect("open cgroup");
    let mut ids = [0u32; 8];
    let mut q =
        Query { target_fd: dir.as_raw_fd() as u32, attach_type: 6, query_flags: 0, attach_flags: 0, prog_ids: ids.as_mut_ptr() as u64, prog_cnt: 8, pad: 0 };
    // SAFETY: q is a valid BPF_PROG_QUERY attr whose buffer outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 16, &mut q as *mut Query, std::mem::size_of::<Query>()) };
    assert_eq!(r, 0, "BPF_PROG_QUERY {cgroup:?}: {}", std::io::Error::last_os_error());
    ids[..q.prog_cnt as usize].to_vec()
}

#[test]
fn containers_with_the_same_device_rules_share_one_verified_program() {
    if !require_root() {
        return;
    }
    let rules = serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"}]);
    let other = serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rw"}]);
    let mk = |r: &serde_json::Value| {
        let mut b = Bundle::new("sleep 100");
        b.config["linux"]["resources"] = serde_json::json!({"devices": r});
        let out = b.create();
        assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
        let ids = device_programs(&hierarchy().join("testudo").join(&b.id));
        assert_eq!(ids.len(), 1, "one device program per container");
        (b, ids[0])
    };
    let (_a, first) = mk(&rules);
    let (_b, second) = mk(&rules);
    let (_c, third) = mk(&other);
    assert_eq!(first, second, "the same rules load the same program once");
    assert_ne!(first, third, "other rules get their own program");

    // A keeper holding another rule set's program (tampered with, or a hash collision chosen by
    // whoever writes config.json) is not trusted: the next container loads its own.
    let keepers = hierarchy().join("testudo.device-programs");
    let keeper = std::fs::read_dir(&keepers)
        .expect("keepers")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .find(|p| device_programs(p) == [first])
        .expect("the keeper of the first rules");
    attach_device_program(&keeper, third, true);
    attach_device_program(&keeper, first, false);
    assert_eq!(device_programs(&keeper), [third]);
    let (_d, fourth) = mk(&rules);
    assert_ne!(fourth, third, "a container got another rule set's program from a tampered keeper");
}

/// Issue 12: a cgroupsPath naming a cgroup this container did not make. One with processes (a
/// host cgroup, another container's) or child cgroups (an ancestor of another container's) is
/// refused, and the other container's processes live on; an empty one is used, and its delete
/// kills the container's processes but leaves the directory, which it did not make; the v1
/// directories create made for it go.
#[test]
fn a_cgroups_path_that_is_not_the_containers_own_is_refused_or_left_in_place() {
    if !require_root() {
        return;
    }
    let other = started("sleep 100");
    let other_pid = init_pid(&other) as i32;
    let other_cg = hierarchy().join("testudo").join(&other.id);
    for (path, why) in [(other_cg.clone(), "it holds processes"), (hierarchy().join("testudo"), "it has child cgroups")] {
        let mut b = Bundle::new("true");
        b.config["linux"]["cgroupsPath"] = path.strip_prefix(hierarchy()).expect("below").to_str().expect("utf8").into();
        let err = b.create_err();
        assert!(err.contains(path.to_str().expect("utf8")) && err.contains(&format!("is already in use: {why}")), "{err}");
        assert!(alive(other_pid), "refusing {path:?} killed another container");
        assert!(path.is_dir(), "refusing {path:?} removed it");
    }
    let given = hierarchy().join(format!("testudo-given-{}", other.id));
    std::fs::create_dir(&given).expect("mkdir");
    // On a hybrid host the client made it in one v1 hierarchy too (pids); create makes it in the
    // others, and delete removes those, and only those (issue 24).
    let given_v1 = v1_hierarchy("pids").map(|h| h.join(given.file_name().expect("name")));
    if let Some(d) = &given_v1 {
        std::fs::create_dir(d).expect("mkdir v1");
    }
    let mut b = Bundle::new("sleep 100");
    b.config["linux"]["cgroupsPath"] = given.strip_prefix(hierarchy()).expect("below").to_str().expect("utf8").into();
    let out = b.create();
    assert!(out.status.success(), "create in an empty cgroup: {}", String::from_utf8_lossy(&out.stderr));
    let pid = init_pid(&b) as i32;
    let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(seen.contains(&format!("0::/testudo-given-{}", other.id)), "{seen}");
    assert!(b.testudo(&["delete", "--force", &b.id]).status.success());
    assert!(!alive(pid), "delete left the container's init");
    assert!(given.is_dir(), "delete removed a cgroup it did not make");
    if let Some(d) = &given_v1 {
        assert!(d.is_dir(), "delete removed the client's v1 cgroup {d:?}");
        std::fs::remove_dir(d).expect("rmdir v1");
    }
    for e in std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
        let made = e.path().join(given.file_name().expect("name"));
        assert!(e.path() == hierarchy() || !made.exists(), "delete left {made:?}, which create made");
    }
    std::fs::remove_dir(&given).expect("rmdir");
}

/// Issue 25 item 3: a hostile config puts its cgroupsPath inside a running container's cgroup (of
/// the same state root). Accepted, the nested container spent the outer one's pids and memory
/// budget, and the outer one's delete killed it and then failed on its cgroup. Refused, naming
/// the other container; the outer one lives on and deletes cleanly.
#[test]
fn a_cgroups_path_inside_another_containers_cgroup_is_refused() {
    if !require_root() {
        return;
    }
    let outer = started("sleep 100");
    let outer_pid = init_pid(&outer) as i32;
    let outer_cg = hierarchy().join("testudo").join(&outer.id);
    for inside in [outer_cg.join("nested"), outer_cg.join("a/b")] {
        let mut b = Bundle::new("true");
        b.root = outer.root.clone();
        b.config["linux"]["cgroupsPath"] = inside.strip_prefix(hierarchy()).expect("below").to_str().expect("utf8").into();
        let err = b.create_err();
        assert!(err.contains(&outer.id) && err.contains("the cgroup of container") && err.contains("cannot be nested in another's cgroup"), "{err}");
        assert!(!inside.exists() && !outer_cg.join("a").exists(), "refusing {inside:?} made it");
    }
    assert!(alive(outer_pid), "refusing the nested container hurt the outer one");
    let out = outer.testudo(&["delete", "--force", &outer.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!outer_cg.exists() && !outer.root.join(&outer.id).exists(), "the outer container left its cgroup or state");
}

/// Issue 25 item 6: `/P/b/c` made `/P` and `/P/b` in every hierarchy (v2 and each v1 one), and
/// delete left them. Those the create made go when empty; a parent that was there stays.
#[test]
fn delete_removes_the_parent_cgroups_create_made() {
    if !require_root() {
        return;
    }
    let mut hierarchies = vec![hierarchy()];
    for e in std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
        let p = e.path();
        if p != hierarchy() && !e.file_type().is_ok_and(|t| t.is_symlink()) && p.join("cgroup.procs").exists() {
            hierarchies.push(p);
        }
    }
    let kept = format!("testudo-kept-{}", std::process::id());
    std::fs::create_dir(hierarchy().join(&kept)).expect("mkdir");
    for top in [format!("testudo-made-{}", std::process::id()), kept.clone()] {
        let mut b = Bundle::new("sleep 100");
        b.config["linux"]["cgroupsPath"] = format!("/{top}/b/{}", b.id).into();
        let pid = b.start();
        let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        assert!(host_view.contains(&format!("0::/{top}/b/{}", b.id)) && host_view.contains(&format!("memory:/{top}/b/")), "{host_view}");
        let out = b.testudo(&["delete", "--force", &b.id]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for h in &hierarchies {
            assert!(!h.join(&top).join("b").exists(), "{:?} left after delete", h.join(&top).join("b"));
            let was_there = *h == hierarchy() && top == kept;
            assert_eq!(h.join(&top).exists(), was_there, "{:?}", h.join(&top));
        }
    }
    std::fs::remove_dir(hierarchy().join(&kept)).expect("rmdir");
}
