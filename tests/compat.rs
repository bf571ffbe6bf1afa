//! Compatibility gaps (issue 12): specs and command lines runc, crun and youki all accept, run
//! here the same way; each test checks what the container sees.

mod common;

use common::{require_root, Bundle};

/// What busybox `sh -c 'echo ok'` calls, plus what the runtime itself once called after an early
/// filter (creds, capabilities, the sync socket, exec.fifo, cwd, umask, signal mask; issue 24
/// moved all of it before the filter). Not close_range: older profiles predate it. faccessat2
/// (439) is named so that close_range (436) gets the default errno, not the ENOSYS of a syscall
/// newer than the profile.
const SH_AND_RUNTIME: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "chdir",
    "close",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fcntl",
    "fstat",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "getrandom",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "ioctl",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "newfstatat",
    "openat",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "recvmsg",
    "recvfrom",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_tid_address",
    "uname",
    "write",
    "writev",
    "umask",
    "prctl",
    "capget",
    "capset",
    "setgroups",
    "setresuid",
    "setresgid",
    "sigaltstack",
];

/// Without noNewPrivileges, a profile without close_range runs the container (the filter once
/// went on before the runtime closed its fds; now it goes on right before execve).
#[test]
fn an_early_filter_without_close_range_runs_the_container() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("echo ok");
    b.config["process"]["noNewPrivileges"] = false.into();
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EPERM, "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": SH_AND_RUNTIME, "action": "SCMP_ACT_ALLOW"}]
    });
    assert_eq!(b.run_ok(), "ok\n");
}

/// A failure after `start` returned has nobody to report to but the container's stderr, where
/// the owner reads the program's own errors: the init says why it never ran.
#[test]
fn an_init_failing_after_start_says_why_on_its_stderr() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("echo ok");
    b.config["process"]["noNewPrivileges"] = false.into();
    // execve is the one call left after the filter (spawn::finish::SeccompAt).
    let names: Vec<&str> = SH_AND_RUNTIME.iter().copied().filter(|&n| n != "execve").collect();
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EPERM, "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    });
    b.write();
    // The init keeps create's stderr: a file of our own, read once the container stopped.
    let err_path = b.dir.join("init.err");
    let st = b
        .cmd(&["create", "--bundle", b.dir.to_str().expect("utf8"), &b.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .status()
        .expect("create");
    assert!(st.success(), "create: {}", std::fs::read_to_string(&err_path).unwrap_or_default());
    let out = b.testudo(&["start", &b.id]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    common::wait_for("the container to stop", || b.status() == "stopped");
    let err = std::fs::read_to_string(&err_path).expect("read stderr");
    assert!(err.contains(r#"testudo: container process: exec: "/bin/sh": operation not permitted (denied by the seccomp profile?)"#), "{err}");
}

/// Filesystem data on a bind mount (clients copy a tmpfs's `mode=`/`size=` onto binds) is
/// ignored, as runc and the kernel ignore it; the bind's own flags still apply.
#[test]
fn data_options_on_a_bind_mount_are_ignored() {
    if !require_root() {
        return;
    }
    let src = common::scratch_dir("bind-data");
    std::fs::write(src.join("f"), "hello\n").expect("write");
    let mut b = Bundle::new("cat /mnt/f; touch /mnt/g 2>/dev/null && echo writable || echo read-only");
    b.mount(serde_json::json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "ro", "mode=755", "size=1k"]}));
    assert_eq!(b.run_ok(), "hello\nread-only\n");
}

/// A bare word we do not know may be a misspelled flag: still refused.
#[test]
fn an_unknown_bare_option_on_a_bind_mount_is_refused() {
    if !require_root() {
        return;
    }
    let src = common::scratch_dir("bind-typo");
    let mut b = Bundle::new("true");
    b.mount(serde_json::json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "nosiud", "mode=755"]}));
    let err = b.create_err();
    assert!(err.contains("mount \\\"/mnt\\\": unsupported bind mount options [\\\"nosiud\\\"]"), "{err}");
}

/// `exec --cap` takes runc's "CAP_NET_ADMIN" form and the bare "SYS_PTRACE" alike.
#[test]
fn exec_cap_takes_both_name_forms() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 1000");
    b.start();
    let (code, out, err) = b.exec(&["--cap", "CAP_NET_ADMIN", "--cap", "SYS_PTRACE", "sh", "-c", "grep CapEff /proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    // The default set (AUDIT_WRITE, KILL, NET_BIND_SERVICE) plus NET_ADMIN (12) and SYS_PTRACE (19).
    assert_eq!(common::status_field(&out, "CapEff"), Some("0000000020081420"), "{out}");
}

/// `exec --env NAME=v` replaces the container's NAME instead of adding a second one.
#[test]
fn exec_env_overrides_the_spec() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 1000");
    b.start();
    // cat's own environment as execve got it: a shell would fold duplicates itself.
    let (code, out, err) = b.exec(&["--env", "TERM=dumb", "--env", "NEW=1", "cat", "/proc/self/environ"]);
    assert_eq!(code, 0, "{err}");
    let mut vars: Vec<&str> = out.split('\0').filter(|v| v.starts_with("TERM=") || v.starts_with("NEW=")).collect();
    vars.sort_unstable();
    assert_eq!(vars, ["NEW=1", "TERM=dumb"]);
}

/// A paused container refuses exec unless --ignore-paused; with it the process runs once the
/// container is resumed.
#[test]
fn exec_in_a_paused_container_needs_ignore_paused() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 1000");
    b.start();
    let out = b.testudo(&["pause", &b.id]);
    assert!(out.status.success(), "pause: {}", String::from_utf8_lossy(&out.stderr));
    let (code, _, err) = b.exec(&["true"]);
    assert_ne!(code, 0);
    assert!(err.contains("it is paused (use --ignore-paused to override)"), "{err}");
    let out_path = b.dir.join("exec.out");
    let mut child = b
        .cmd(&["exec", "--ignore-paused", &b.id, "echo", "ran"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .spawn()
        .expect("exec");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().expect("try_wait").is_none(), "exec finished in a frozen container");
    let out = b.testudo(&["resume", &b.id]);
    assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
    assert!(child.wait().expect("wait").success());
    assert_eq!(std::fs::read_to_string(&out_path).expect("read"), "ran\n");
}

/// A hook without `env` inherits, as under runc: the runtime's environment for the hooks the
/// runtime runs, the container process's for those run by the container's init.
#[test]
fn hooks_without_env_inherit_as_under_runc() {
    if !require_root() {
        return;
    }
    let log = common::scratch_dir("hooks-env");
    let mut b = Bundle::new("true");
    b.mount(serde_json::json!({"destination": "/home", "type": "bind", "source": log, "options": ["bind"]}));
    let hook = |file: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"$HOOK_TEST|$PATH\" > {file}")]});
    b.config["process"]["env"] = serde_json::json!(["PATH=/bin:/from-spec"]);
    b.config["hooks"] = serde_json::json!({
        "prestart": [hook(log.join("prestart").to_str().expect("utf8"))],
        // Before pivot_root: the host's paths.
        "createContainer": [hook(log.join("createContainer").to_str().expect("utf8"))],
        "startContainer": [hook("/home/startContainer")],
    });
    b.write();
    let st = b
        .cmd(&["run", "--bundle", b.dir.to_str().expect("utf8"), &b.id])
        .env("HOOK_TEST", "from-runtime")
        .stdin(std::process::Stdio::null())
        .status()
        .expect("run");
    assert!(st.success());
    let read = |f: &str| std::fs::read_to_string(log.join(f)).unwrap_or_else(|e| format!("{f}: {e}"));
    assert!(read("prestart").starts_with("from-runtime|"), "{}", read("prestart"));
    assert_eq!(read("createContainer"), "|/bin:/from-spec\n");
    assert_eq!(read("startContainer"), "|/bin:/from-spec\n");
}

/// process.execCPUAffinity (spec 1.2.1): an exec'd process runs on the "final" CPUs; the init,
/// to which the setting does not apply, keeps every CPU.
#[test]
fn exec_cpu_affinity_pins_exec_not_init() {
    if !require_root() {
        return;
    }
    if std::thread::available_parallelism().map_or(0, |n| n.get()) < 2 {
        eprintln!("SKIP: needs two CPUs");
        return;
    }
    let mut b = Bundle::new("grep Cpus_allowed_list /proc/self/status > /dev/shm/init; sleep 1000");
    b.config["process"]["execCPUAffinity"] = serde_json::json!({"initial": "0", "final": "1"});
    b.start();
    let (code, out, err) = b.exec(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(common::status_field(&out, "Cpus_allowed_list"), Some("1"), "{out}");
    common::wait_for("the init's line", || b.exec(&["cat", "/dev/shm/init"]).1.contains("Cpus"));
    let init = b.exec(&["cat", "/dev/shm/init"]).1;
    assert_ne!(common::status_field(&init, "Cpus_allowed_list"), Some("1"), "{init}");
}

/// linux.memoryPolicy (spec 1.3): the container's processes allocate under it.
#[test]
fn memory_policy_is_set_for_the_container() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("grep -c ' bind:0' /proc/self/numa_maps");
    b.config["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"});
    let out = b.run_ok();
    assert!(out.trim().parse::<u32>().is_ok_and(|n| n > 0), "{out}");
    let mut b = Bundle::new("true");
    b.config["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_BIND"});
    let err = b.create_err();
    assert!(err.contains("linux.memoryPolicy: mode MPOL_BIND needs nodes"), "{err}");
}

/// `features` lists what is implemented: user notification and the rdma controller.
#[test]
fn features_lists_notify_and_rdma() {
    let out = std::process::Command::new(common::BIN).arg("features").output().expect("features");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["linux"]["seccomp"]["actions"].as_array().expect("actions").iter().any(|a| a == "SCMP_ACT_NOTIFY"), "{v}");
    assert_eq!(v["linux"]["cgroup"]["rdma"], true);
}

/// On a hybrid host the container joins the v1 devices hierarchy (its devices.list shows its
/// rules) and what only v1 expresses (memory.swappiness, blkio leaf weights) is written there.
#[test]
fn on_a_hybrid_host_devices_list_and_v1_only_settings() {
    if !require_root() {
        return;
    }
    let v1 = |c: &str| {
        let unified = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
        let offered = std::fs::read_to_string(unified).unwrap_or_default();
        unified.exists() && !offered.split_whitespace().any(|o| o == c) && std::path::Path::new("/sys/fs/cgroup").join(c).join("cgroup.procs").exists()
    };
    if !(v1("devices") && v1("memory")) {
        assert!(std::env::var_os("TESTUDO_IN_VM").is_none(), "SKIP is a failure in the VM");
        eprintln!("SKIP: not a hybrid host with v1 devices and memory");
        return;
    }
    let mut b = Bundle::new("cat /sys/fs/cgroup/devices/devices.list; cat /sys/fs/cgroup/memory/memory.swappiness");
    b.config["linux"]["resources"]["memory"] = serde_json::json!({"swappiness": 17});
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    mounts.push(serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}));
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    // The default rules: deny all, then the nodes every container gets (/dev/null is c 1:3).
    assert!(!lines.contains(&"a *:* rwm"), "allow-all inherited, not the container's rules: {out}");
    assert!(lines.contains(&"c 1:3 rwm"), "{out}");
    assert_eq!(lines.last(), Some(&"17"), "{out}");
}

/// Without a mount namespace the container runs in the host's, chrooted into its rootfs (as
/// under runc); exec works; a spec that would mount something there is refused, by name.
#[test]
fn without_a_mount_namespace_the_container_is_chrooted_in_the_hosts() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("test -x /bin/busybox && echo in-rootfs; sleep 1000");
    b.own_rootfs();
    b.drop_namespace("mount");
    b.config["mounts"] = serde_json::json!([]);
    b.config["linux"]["maskedPaths"] = serde_json::json!([]);
    b.config["linux"]["readonlyPaths"] = serde_json::json!([]);
    b.config["root"]["readonly"] = false.into();
    let pid = b.start().to_string();
    assert_eq!(common::ns_link(&pid, "mnt"), common::ns_link("self", "mnt"), "not in the host's mount namespace");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root");
    assert_eq!(root, b.dir.join("rootfs"), "not chrooted into the rootfs");
    let (code, out, err) = b.exec(&["sh", "-c", "test -x /bin/busybox && echo exec-in-rootfs"]);
    assert_eq!((code, out.as_str()), (0, "exec-in-rootfs\n"), "{err}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mi.contains(b.dir.to_str().expect("utf8")), "the container mounted something in the host's namespace: {mi}");

    let mut b = Bundle::new("true");
    b.drop_namespace("mount");
    let err = b.create_err();
    assert!(err.contains("mounts: needs a mount namespace: without one it would be mounted in the host's and outlive the container"), "{err}");
}

/// Where each key starts in `text`, in the order given: they must come in that order.
fn in_order(text: &str, keys: &[&str]) {
    let at: Vec<usize> = keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} missing: {text}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys not in runc's order {keys:?}: {text}");
}

/// `list --format json`, `state` and `events --stats` print their keys in runc's order (its Go
/// structs'), and `list` names the owner as runc's does: clients that read the text see what
/// runc prints.
#[test]
fn list_state_and_events_print_keys_in_runcs_order() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("sleep 1000");
    b.start();
    let list = String::from_utf8_lossy(&b.testudo(&["list", "--format", "json"]).stdout).into_owned();
    assert!(list.starts_with("[{\"ociVersion\":"), "{list}");
    in_order(&list, &["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]);
    assert!(list.contains("\"owner\":\"root\""), "{list}");
    let state = String::from_utf8_lossy(&b.testudo(&["state", &b.id]).stdout).into_owned();
    in_order(&state, &["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]);
    let out = b.testudo(&["events", "--stats", &b.id]);
    let events = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(events.starts_with(&format!("{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{\"cpu\":", b.id)), "{events}");
    in_order(&events, &["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]);
}

/// `--debug` writes `level=debug` records of the main steps (to --log, else stderr, as runc
/// does); without it there are none.
#[test]
fn debug_records_the_main_steps_and_only_when_asked() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("echo ok");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let log = b.dir.join("debug.log");
    let out = b.testudo(&["--debug", "--log", log.to_str().expect("utf8"), "run", "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    let text = std::fs::read_to_string(&log).expect("log");
    for msg in [
        "msg=\"testudo ",
        "msg=\"spec: ",
        "msg=\"cgroup: ",
        "msg=\"clone3: init ",
        "msg=\"init ",
        ": ready, waiting for start\"",
        ": executed the container's process\"",
        "msg=\"container process exited: status 0\"",
        "msg=\"delete: container ",
    ] {
        assert!(text.lines().any(|l| l.contains("level=debug") && l.contains(msg)), "no debug record with {msg:?}:\n{text}");
    }
    assert!(text.lines().all(|l| l.starts_with("time=\"") && l.contains(" level=")), "logrus text form:\n{text}");
    // Without --log, to stderr; without --debug, nowhere.
    let out = b.testudo(&["--debug", "run", "--bundle", &bundle, &b.id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("level=debug msg=\"spec: "), "{}", String::from_utf8_lossy(&out.stderr));
    let quiet = b.dir.join("quiet.log");
    let out = b.testudo(&["--log", quiet.to_str().expect("utf8"), "run", "--bundle", &bundle, &b.id]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&quiet).unwrap_or_default();
    assert!(!text.contains("level=debug") && !String::from_utf8_lossy(&out.stderr).contains("level=debug"), "{text}");
}
