//! Issue 24, the cgroup items: where clients rely on runc's behaviour on a hybrid host (v1
//! resource controllers, cgroup2 at /sys/fs/cgroup/unified). Realtime CPU and disableOOMKiller
//! in the v1 files, a client's empty cpuset parent, a frozen cgroupsPath, and `exec --cgroup`.
//! Each asserts what the kernel shows: the cgroup files and /proc/PID/cgroup.

mod common;

use std::path::{Path, PathBuf};

use common::{require_root, Bundle};

/// The v2 hierarchy the runtime uses here.
fn hierarchy() -> PathBuf {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(p).join("cgroup.controllers").exists() {
            return PathBuf::from(p);
        }
    }
    panic!("no cgroup v2 hierarchy");
}

/// The v1 hierarchy of `controller` where the v2 hierarchy lacks it (a hybrid host like this one).
fn v1(controller: &str) -> Option<PathBuf> {
    let available = std::fs::read_to_string(hierarchy().join("cgroup.controllers")).ok()?;
    let dir = Path::new("/sys/fs/cgroup").join(controller);
    (hierarchy() != Path::new("/sys/fs/cgroup") && !available.split_whitespace().any(|c| c == controller) && dir.join("cgroup.procs").exists()).then_some(dir)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("{p:?}: {e}")).trim().to_string()
}

fn host_cgroups(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup")
}

/// Item 1: realtimeRuntime/realtimePeriod were refused as "cgroup v2 has no realtime CPU
/// bandwidth" though the cpu controller is v1 here. Written there (period first), with the
/// parents' budgets raised to hold them; the container's process may then take SCHED_FIFO,
/// which the kernel refuses (EPERM) in a cgroup without a budget.
#[test]
fn realtime_cpu_is_written_in_the_v1_cpu_cgroup() {
    if !require_root() {
        return;
    }
    let Some(cpu) = v1("cpu").filter(|c| c.join("cpu.rt_runtime_us").exists()) else {
        common::skip("no v1 cpu hierarchy with RT group scheduling here");
        return;
    };
    let rt = |runtime: u64, period: u64| {
        let mut b = Bundle::new("sleep 100");
        b.config["linux"]["resources"] = serde_json::json!({"cpu": {"realtimeRuntime": runtime, "realtimePeriod": period}});
        b
    };
    let a = rt(20000, 500000);
    let pid_a = a.start();
    let b = rt(30000, 100000);
    let pid_b = b.start();
    for (x, pid, runtime, period) in [(&a, pid_a, "20000", "500000"), (&b, pid_b, "30000", "100000")] {
        let dir = cpu.join("testudo").join(&x.id);
        assert_eq!((read(&dir.join("cpu.rt_runtime_us")), read(&dir.join("cpu.rt_period_us"))), (runtime.to_string(), period.to_string()));
        assert!(host_cgroups(pid).lines().any(|l| l.ends_with(&format!(":cpu:/testudo/{}", x.id))), "{}", host_cgroups(pid));
        // The kernel lets a task of the cgroup take SCHED_FIFO now (with no budget: EPERM).
        assert_eq!(fifo(pid), Ok(()), "SCHED_FIFO for the init of {}", x.id);
    }
    // Both fit the parent's budget: 0.04 + 0.3 of a period.
    let parent = cpu.join("testudo");
    let (p_runtime, p_period): (f64, f64) =
        (read(&parent.join("cpu.rt_runtime_us")).parse().expect("n"), read(&parent.join("cpu.rt_period_us")).parse().expect("n"));
    assert!(p_runtime < 0.0 || p_runtime / p_period >= 0.34, "parent budget {p_runtime}/{p_period}");
    // Without a budget the kernel refuses: what the test relies on.
    let none = Bundle::new("sleep 100");
    let pid = none.start();
    assert_eq!(fifo(pid), Err(libc::EPERM), "SCHED_FIFO in a cgroup without a realtime budget");
    // A runtime above the period is the kernel's EINVAL, named.
    let bad = rt(600000, 500000);
    let err = bad.create_err();
    assert!(err.contains("cpu.rt_runtime_us") || err.contains("realtime"), "{err}");
}

/// sched_setscheduler(pid, SCHED_FIFO, 1), then back to SCHED_OTHER; the errno if refused.
fn fifo(pid: i32) -> Result<(), i32> {
    let set = |policy, priority| {
        let p = libc::sched_param { sched_priority: priority };
        // SAFETY: p is a valid sched_param for the call.
        let r = unsafe { libc::sched_setscheduler(pid, policy, &p) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        }
    };
    set(libc::SCHED_FIFO, 1)?;
    set(libc::SCHED_OTHER, 0)
}

/// Item 2: disableOOMKiller was refused with "no cgroup v2 equivalent" where the memory
/// controller is v1: written to memory.oom_control.
#[test]
fn disable_oom_killer_is_written_in_the_v1_memory_cgroup() {
    if !require_root() {
        return;
    }
    let Some(memory) = v1("memory").filter(|m| m.join("memory.oom_control").exists()) else {
        common::skip("no v1 memory hierarchy here");
        return;
    };
    let mut b = Bundle::new("sleep 100");
    b.config["linux"]["resources"] = serde_json::json!({"memory": {"limit": 67108864, "disableOOMKiller": true}});
    let pid = b.start();
    let oom = read(&memory.join("testudo").join(&b.id).join("memory.oom_control"));
    assert!(oom.lines().any(|l| l == "oom_kill_disable 1"), "{oom}");
    assert!(host_cgroups(pid).lines().any(|l| l.ends_with(&format!(":memory:/testudo/{}", b.id))), "{}", host_cgroups(pid));
    // false leaves the kernel's default.
    let mut b = Bundle::new("sleep 100");
    b.config["linux"]["resources"] = serde_json::json!({"memory": {"disableOOMKiller": false}});
    b.start();
    let oom = read(&memory.join("testudo").join(&b.id).join("memory.oom_control"));
    assert!(oom.lines().any(|l| l == "oom_kill_disable 0"), "{oom}");
}

/// Item 3: a pod-style parent a client made in the v1 cpuset hierarchy has empty cpuset.cpus
/// and cpuset.mems; joining a cgroup below it failed with ENOSPC. Filled from its parent, as
/// runc does; left in place at delete (the client made it).
#[test]
fn an_empty_cpuset_parent_made_by_the_client_is_filled() {
    if !require_root() {
        return;
    }
    let Some(cpuset) = v1("cpuset") else {
        common::skip("no v1 cpuset hierarchy here");
        return;
    };
    let pod = format!("testudo-pod-{}", std::process::id());
    std::fs::create_dir(cpuset.join(&pod)).expect("mkdir pod");
    assert_eq!(read(&cpuset.join(&pod).join("cpuset.cpus")), "", "a new cpuset cgroup starts empty");
    let mut b = Bundle::new("sleep 100");
    b.config["linux"]["cgroupsPath"] = format!("/{pod}/{}", b.id).into();
    let out = b.create();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let ok = out.status.success();
    if ok {
        assert!(b.testudo(&["start", &b.id]).status.success());
        let pid = b.state().and_then(|s| s["pid"].as_i64()).expect("pid") as i32;
        assert!(host_cgroups(pid).lines().any(|l| l.ends_with(&format!(":cpuset:/{pod}/{}", b.id))), "{}", host_cgroups(pid));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            assert_eq!(read(&cpuset.join(&pod).join(f)), read(&cpuset.join(f)), "{f} of the pod parent");
            assert_eq!(read(&cpuset.join(&pod).join(&b.id).join(f)), read(&cpuset.join(f)), "{f} of the container");
        }
        assert!(b.testudo(&["delete", "--force", &b.id]).status.success());
        assert!(cpuset.join(&pod).is_dir(), "delete removed the client's pod cgroup");
        assert!(!cpuset.join(&pod).join(&b.id).exists() && !hierarchy().join(&pod).exists(), "delete left what it made");
    }
    let _ = std::fs::remove_dir(hierarchy().join(&pod));
    std::fs::remove_dir(cpuset.join(&pod)).expect("rmdir pod");
    assert!(ok, "create below an empty cpuset parent: {err}");
}

/// Removes a test's frozen cgroup: thawed, then rmdir.
struct Frozen(PathBuf, &'static str, &'static str);
impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join(self.1), self.2);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Item 4: a frozen cgroup given as cgroupsPath was accepted, and `run` exited 0 without running
/// the process. Refused at create, naming the cgroup: cgroup.freeze on v2 (on it or an
/// ancestor), freezer.state on v1.
#[test]
fn a_frozen_cgroups_path_is_refused() {
    if !require_root() {
        return;
    }
    let n = std::process::id();
    let v2 = Frozen(hierarchy().join(format!("testudo-frozen-{n}")), "cgroup.freeze", "0");
    std::fs::create_dir(&v2.0).expect("mkdir");
    std::fs::write(v2.0.join("cgroup.freeze"), "1").expect("freeze");
    let mut cases = vec![(format!("/testudo-frozen-{n}"), v2.0.clone()), (format!("/testudo-frozen-{n}/below"), v2.0.clone())];
    let _v1 = v1("freezer").map(|h| {
        let f = Frozen(h.join(format!("testudo-frozen1-{n}")), "freezer.state", "THAWED");
        std::fs::create_dir(&f.0).expect("mkdir freezer");
        std::fs::write(f.0.join("freezer.state"), "FROZEN").expect("freeze v1");
        cases.push((format!("/testudo-frozen1-{n}"), f.0.clone()));
        f
    });
    for (given, frozen) in cases {
        let mut b = Bundle::new("echo ran");
        b.config["linux"]["cgroupsPath"] = given.clone().into();
        let (code, stdout, err) = b.run();
        assert_ne!(code, 0, "run in {given} succeeded: {stdout} {err}");
        assert!(err.contains(frozen.to_str().expect("utf8")) && err.contains("frozen"), "{err}");
        assert!(!stdout.contains("ran"));
        assert!(!b.root.join(&b.id).exists(), "state left: {err}");
        assert!(!hierarchy().join(&given[1..]).join("below").exists() && !v2.0.join("below").exists(), "a cgroup was made below the frozen one");
    }
    assert!(v2.0.is_dir(), "refusing removed the given cgroup");
}

/// Makes `rel` (below the container's cgroup) in the v2 hierarchy and the given v1 ones; a
/// cpuset directory gets its parent's cpus and mems.
fn make_sub(container: &str, rel: &str, hierarchies: &[PathBuf]) {
    for h in hierarchies {
        let mut dir = h.join(container);
        for part in rel.split('/') {
            dir.push(part);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
            if h.ends_with("cpuset") {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    std::fs::write(dir.join(f), read(&h.join(container).join(f))).expect("cpuset");
                }
            }
        }
    }
}

/// The cgroup of hierarchy `h` (a directory under /sys/fs/cgroup) in a /proc/PID/cgroup text.
fn line(seen: &str, h: &Path) -> Option<String> {
    let name = h.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let field = match name {
        _ if *h == hierarchy() => String::new(),
        "systemd" => "name=systemd".into(),
        n => n.into(),
    };
    seen.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',').any(|c| c == field || (field.is_empty() && c.is_empty())).then(|| path.to_string())
    })
}

/// Item 5: `exec --cgroup SUB` and `--cgroup CTRL[,CTRL]:SUB` (runc 1.1): the process goes to a
/// sub-cgroup of the container's, which must exist; `..` is refused. Seen in /proc/PID/cgroup.
#[test]
fn exec_into_a_sub_cgroup() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 100");
    b.start();
    let container = format!("testudo/{}", b.id);
    let mut all = vec![hierarchy()];
    for c in ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "systemd"] {
        if let Some(h) = v1(c).filter(|h| h.join(&container).is_dir()) {
            all.push(h);
        }
    }
    make_sub(&container, "sub/deeper", &all);
    let pid_file = b.dir.join("exec.pid");
    let exec_in = |args: &[&str]| {
        let _ = std::fs::remove_file(&pid_file);
        let mut a = vec!["exec", "--detach", "--pid-file", pid_file.to_str().expect("utf8")];
        a.extend_from_slice(args);
        a.extend_from_slice(&[&b.id, "sleep", "100"]);
        let out = b.testudo(&a);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        out.status.success().then(|| host_cgroups(read(&pid_file).parse().expect("pid"))).ok_or(err)
    };
    // The whole sub-cgroup: v2 and every v1 hierarchy.
    let seen = exec_in(&["--cgroup", "sub/deeper"]).expect("exec --cgroup sub/deeper");
    for h in &all {
        assert_eq!(line(&seen, h), Some(format!("/{container}/sub/deeper")), "{h:?} in {seen}");
    }
    // runc's absolute form is relative to the container's cgroup; "/" is the container's own.
    let seen = exec_in(&["--cgroup", "/sub"]).expect("exec --cgroup /sub");
    assert!(seen.lines().any(|l| l == format!("0::/{container}/sub")), "{seen}");
    let seen = exec_in(&["--cgroup", "/"]).expect("exec --cgroup /");
    assert!(seen.lines().any(|l| l == format!("0::/{container}")), "{seen}");
    // Per controller (v1): memory and pids to sub, the rest stays.
    if let (Some(memory), Some(pids)) = (v1("memory"), v1("pids")) {
        make_sub(&container, "only-v1", &[memory, pids]);
        let seen = exec_in(&["--cgroup", "memory,pids:only-v1"]).expect("exec --cgroup memory,pids:only-v1");
        for h in &all {
            let moved = h.ends_with("memory") || h.ends_with("pids");
            let want = if moved { format!("/{container}/only-v1") } else { format!("/{container}") };
            assert_eq!(line(&seen, h), Some(want), "{h:?} in {seen}");
        }
        let seen = exec_in(&["--cgroup", "memory:sub", "--cgroup", "pids:only-v1"]).expect("two --cgroup");
        assert!(seen.lines().any(|l| l.ends_with(&format!(":memory:/{container}/sub"))), "{seen}");
        assert!(seen.lines().any(|l| l.ends_with(&format!(":pids:/{container}/only-v1"))), "{seen}");
        let err = exec_in(&["--cgroup", "nosuch:sub"]).expect_err("unknown controller");
        assert!(err.contains("nosuch"), "{err}");
    }
    // Refused: outside the container's cgroup, a missing one, a bare path among others.
    for (arg, want) in [("../other", "'..'"), ("sub/../../x", "'..'"), ("missing", "missing"), ("memory:../x", "'..'")] {
        let err = exec_in(&["--cgroup", arg]).expect_err(arg);
        assert!(err.contains(want) && err.contains("--cgroup"), "{arg}: {err}");
    }
    let err = exec_in(&["--cgroup", "sub", "--cgroup", "pids:sub"]).expect_err("bare path among others");
    assert!(err.contains("--cgroup"), "{err}");
    // delete removes the sub-cgroups with the container's (v2 and v1).
    assert!(b.testudo(&["delete", "--force", &b.id]).status.success());
    for h in &all {
        assert!(!h.join(&container).exists(), "{:?} left", h.join(&container));
    }
}
