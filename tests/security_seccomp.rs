//! seccomp (issue 4): every part of `linux.seccomp`, the ENOSYS rule, user notification, the
//! cache and the shipped profiles, checked by the errno a process in the container gets.

mod common;
mod probe;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::{require_root, status_field, Bundle};

/// "OK"/"ERR n" lines of the probe, and "rc=N" lines of the script, in order.
fn results(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.starts_with("OK") || l.starts_with("ERR") || l.starts_with("rc=")).map(str::to_string).collect()
}

fn errnos(out: &str) -> Vec<i32> {
    results(out).iter().filter(|l| !l.starts_with("rc=")).map(|l| probe::errno_of(l)).collect()
}

/// Every x86_64 syscall name up to and including `max`, but `except`.
fn names_up_to(max: i32, except: &[i32]) -> Vec<String> {
    (0..=max).filter(|n| !except.contains(n)).filter_map(|n| libseccomp::ScmpSyscall::from(n).get_name().ok()).collect()
}

const GETPPID: i32 = 110;

/// The clone3 trap: a syscall newer than every one the profile names gets ENOSYS (so libc falls
/// back), an older unnamed one the default errno. Per architecture, the x32 bit included.
#[test]
fn a_newer_syscall_is_enosys_an_older_unnamed_one_the_default_errno() {
    if !require_root() {
        return;
    }
    let script = "P=/dev/probe; $P syscall 110; $P syscall 435; $P syscall 1000; $P syscall 39; \
                  $P int80 64; $P int80 435; $P syscall 0x4000006e; $P syscall 0x40000258; true";
    let mut b = Bundle::new(script);
    if !probe::add(&mut b) {
        return;
    }
    // pidfd_open (434) is the newest syscall named; getppid (110) is not named at all.
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names_up_to(434, &[GETPPID]), "action": "SCMP_ACT_ALLOW"}]
    });
    let out = b.run_ok();
    let e = errnos(&out);
    assert_eq!(e.len(), 8, "{out}");
    assert_eq!(e[0], libc::EPERM, "getppid: older, unnamed: the default errno");
    assert_eq!(e[1], libc::ENOSYS, "clone3 (435): newer than anything named");
    assert_eq!(e[2], libc::ENOSYS, "1000: newer than anything named");
    assert_eq!(e[3], 0, "getpid: allowed");
    assert_eq!(e[4], libc::EPERM, "i386 getppid (64): the default errno");
    assert_eq!(e[5], libc::ENOSYS, "i386 clone3 (435)");
    assert_eq!(e[6], libc::EPERM, "x32 getppid (0x4000006e)");
    assert_eq!(e[7], libc::ENOSYS, "x32 600: above every x32 syscall named");
}

/// Every action and every comparison operator, as the container process sees them.
#[test]
fn actions_and_argument_operators_from_inside() {
    if !require_root() {
        return;
    }
    let probes = [
        "syscall 121 0 0 0 100 0 0",    // getpgid, no rule matches
        "syscall 121 0 5 0 100 0 0",    // arg1 == 5
        "syscall 121 0 0 1 100 0 0",    // arg2 != 0
        "syscall 121 0 0 0 9 0 0",      // arg3 < 10
        "syscall 121 0 0 0 10 0 0",     //   not < 10
        "syscall 121 0 0 0 100 51 0",   // arg4 > 50
        "syscall 121 0 0 0 100 50 0",   //   not > 50
        "syscall 121 0 0 0 100 0 0x35", // arg5 & 0xf0 == 0x30
        "syscall 121 0 0 0 100 0 0x45", //   not
        "syscall 124 0 3 0",            // getsid: arg1 <= 3
        "syscall 124 0 4 0",            //   not
        "syscall 124 0 100 1000",       // arg2 >= 1000
        "syscall 124 0 100 999",        //   not
        "syscall 145 0",                // sched_getscheduler: SCMP_ACT_TRACE without a tracer
        "syscall 99 0",                 // sysinfo: SCMP_ACT_LOG lets it through (EFAULT on NULL)
        "syscall 309 0 0",              // getcpu: SCMP_ACT_TRAP
        "syscall 103 0 0 0",            // syslog: SCMP_ACT_KILL_PROCESS
        "syscall 100 0",                // times: SCMP_ACT_KILL (thread)
    ];
    let script: String = probes.iter().map(|p| format!("/dev/probe {p}; echo rc=$?; ")).collect();
    let mut b = Bundle::new(&script);
    if !probe::add(&mut b) {
        return;
    }
    let arg = |index: u32, value: u64, op: &str| serde_json::json!({"index": index, "value": value, "op": op});
    let errno = |name: &str, e: i32, a: serde_json::Value| serde_json::json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": e, "args": [a]});
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            errno("getpgid", 11, arg(1, 5, "SCMP_CMP_EQ")),
            errno("getpgid", 12, arg(2, 0, "SCMP_CMP_NE")),
            errno("getpgid", 13, arg(3, 10, "SCMP_CMP_LT")),
            errno("getpgid", 14, arg(4, 50, "SCMP_CMP_GT")),
            errno("getpgid", 15, serde_json::json!({"index": 5, "value": 0xf0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"})),
            errno("getsid", 16, arg(1, 3, "SCMP_CMP_LE")),
            errno("getsid", 17, arg(2, 1000, "SCMP_CMP_GE")),
            {"names": ["sched_getscheduler"], "action": "SCMP_ACT_TRACE"},
            {"names": ["sysinfo"], "action": "SCMP_ACT_LOG"},
            {"names": ["getcpu"], "action": "SCMP_ACT_TRAP"},
            {"names": ["syslog"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["times"], "action": "SCMP_ACT_KILL"},
            {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    let out = b.run_ok();
    let r = results(&out);
    let probe_results: Vec<&String> = r.iter().filter(|l| !l.starts_with("rc=")).collect();
    let expect = ["OK", "ERR 11", "ERR 12", "ERR 13", "OK", "ERR 14", "OK", "ERR 15", "OK", "ERR 16", "OK", "ERR 17", "OK", "ERR 38", "ERR 14"];
    for (i, e) in expect.iter().enumerate() {
        assert!(probe_results.get(i).is_some_and(|g| g.starts_with(e)), "probe {} ({}): got {:?}, want {e}\n{out}", i, probes[i], probe_results.get(i));
    }
    // The last three were killed by SIGSYS before printing anything: 128 + 31.
    let rcs: Vec<&String> = r.iter().filter(|l| l.starts_with("rc=")).collect();
    assert_eq!(rcs[rcs.len() - 3..].iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["rc=159", "rc=159", "rc=159"], "{out}");
}

/// Without no_new_privileges the filter goes on while CAP_SYS_ADMIN is still held: a non-root
/// process is filtered all the same.
#[test]
fn without_no_new_privileges_a_non_root_process_is_filtered() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status; /dev/probe syscall 121 0; true");
    if !probe::add(&mut b) {
        return;
    }
    b.config["process"]["noNewPrivileges"] = false.into();
    b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]
    });
    let out = b.run_ok();
    assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), Some("2"));
    assert_eq!(status_field(&out, "Seccomp_filters"), Some("1"));
    assert_eq!(errnos(&out), [77]);
}

// ---- without no_new_privileges: nothing of the runtime's own under the filter but execve -----

/// The syscalls testudo's init made after an early filter (issue 24), each denied alone by a
/// profile that allows everything else: the init and an exec'd process still reach the
/// workload, which runs under the filter.
#[test]
fn without_no_new_privileges_the_runtime_makes_no_syscall_under_the_filter_but_execve() {
    if !require_root() {
        return;
    }
    for name in ["sendmsg", "recvmsg", "close", "fcntl", "prctl", "rt_sigprocmask", "umask", "setresuid", "capset"] {
        let mut b = Bundle::new("exec sleep 30");
        b.config["process"]["noNewPrivileges"] = false.into();
        b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        b.config["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [name], "action": "SCMP_ACT_ERRNO"}]
        });
        let out = b.create();
        assert!(out.status.success(), "{name} denied: create: {}", String::from_utf8_lossy(&out.stderr));
        let out = b.testudo(&["start", &b.id]);
        assert!(out.status.success(), "{name} denied: start: {}", String::from_utf8_lossy(&out.stderr));
        let (code, out, err) = b.exec(&["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"]);
        assert_eq!(code, 0, "{name} denied: exec: {err}");
        assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{name} denied: exec: {out}");
        assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "{name} denied: exec: {out}");
        let _ = b.testudo(&["delete", "--force", &b.id]);
        // The init's own view: `run` shows it.
        b.config["process"]["args"] = serde_json::json!(["grep", "-E", "^(Seccomp|NoNewPrivs|CapEff):", "/proc/self/status"]);
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "{name} denied: run: {err}");
        assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{name} denied: run: {out}");
        assert_eq!(status_field(&out, "CapEff"), Some("0000000000000000"), "{name} denied: no capability held for the filter is left: {out}");
    }
}

/// A profile `testudo profile` recorded (from the execve on) runs the same workload without
/// no_new_privileges, as Docker's default has it, as root and as another user.
#[test]
fn a_recorded_profile_runs_its_workload_without_no_new_privileges() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    b.write();
    let prof = b.dir.join("recorded.json");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.testudo(&["profile", "--bundle", &bundle, "--output", prof.to_str().expect("utf8"), &b.id]);
    assert!(out.status.success(), "profile: {}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile written")).expect("json");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO", "{p}");
    b.config["linux"]["seccomp"] = p;
    b.config["process"]["noNewPrivileges"] = false.into();
    for user in [serde_json::json!({"uid": 0, "gid": 0}), serde_json::json!({"uid": 1000, "gid": 1000})] {
        b.config["process"]["user"] = user.clone();
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "as {user}: {err}");
        assert_eq!(status_field(&out, "Seccomp"), Some("2"), "as {user}: {out}");
        assert_eq!(status_field(&out, "NoNewPrivs"), Some("0"), "as {user}: {out}");
    }
}

/// A filter with a listener goes on before `start` (its fd must reach the listener while
/// `create` waits): without no_new_privileges, as a non-root user, it still goes on, and what
/// it then denies the runtime is named with its syscall.
#[test]
fn a_listener_without_no_new_privileges_and_a_denied_step_named() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("/dev/probe mkdir /dev/shm/a; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    if !probe::add(&mut b) {
        return;
    }
    let sock = b.dir.join("listener.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    b.config["linux"]["seccomp"] = notify_profile(&sock);
    b.config["process"]["noNewPrivileges"] = false.into();
    b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    let server = std::thread::spawn(move || {
        let (_, fd) = accept_one(&l);
        serve(&fd, |_| (0, -libc::EROFS))
    });
    let out = b.run_ok();
    assert_eq!(server.join().expect("listener").len(), 1);
    assert_eq!(results(&out), ["ERR 30"], "{out}");
    assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{out}");
    // umask is among the calls left after a listener's filter: denied, it is no crash (nix's
    // wrapper panicked on the errno).
    let mut p = notify_profile(&sock);
    p["syscalls"].as_array_mut().expect("syscalls").push(serde_json::json!({"names": ["umask"], "action": "SCMP_ACT_ERRNO"}));
    b.config["linux"]["seccomp"] = p;
    let _ = std::fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).expect("bind again");
    let server = std::thread::spawn(move || {
        let (_, fd) = accept_one(&l);
        serve(&fd, |_| (0, -libc::EROFS))
    });
    let out = b.run_ok();
    assert_eq!(server.join().expect("listener").len(), 1);
    assert_eq!(results(&out), ["ERR 30"], "{out}");
    // The notify fd goes to P0 with sendmsg, after the filter: denied, it is named, on the
    // container's stderr (the error cannot go over the socket either) and P0 says where to look.
    let mut p = notify_profile(&sock);
    p["syscalls"].as_array_mut().expect("syscalls").push(serde_json::json!({"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO"}));
    b.config["linux"]["seccomp"] = p;
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("sendmsg on the sync socket: operation not permitted (denied by the seccomp profile?)"), "{err}");
    assert!(err.contains("without a reason (sendmsg denied by the seccomp profile? see its stderr)"), "{err}");
}

/// A profile that denies the workload's own execve: the error says so.
#[test]
fn a_denied_execve_is_blamed_on_the_profile() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["process"]["noNewPrivileges"] = false.into();
    b.config["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO"}]});
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains(r#"exec: \"/bin/sh\": operation not permitted (denied by the seccomp profile?)"#), "{err}");
}

/// As runc: a syscall name this libseccomp does not know is skipped with a warning that names
/// it (profiles list syscalls of newer kernels); the rest of the rule holds.
#[test]
fn an_unknown_syscall_name_is_skipped_with_a_warning() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("/dev/probe syscall 121 0; true");
    if !probe::add(&mut b) {
        return;
    }
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["testudo_no_such_syscall", "getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]
    });
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(errnos(&out), [77], "{out}");
    assert!(err.contains(r#"level=warning msg="linux.seccomp.syscalls[0]: unknown syscall \"testudo_no_such_syscall\" skipped""#), "{err}");
}

#[test]
fn wrong_profiles_are_create_errors_that_leave_nothing() {
    if !require_root() {
        return;
    }
    for (seccomp, needle) in [
        (serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}), "errnoRet"),
        (
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index 7",
        ),
        (serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]}), "SCMP_ARCH_NOPE"),
        (serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}), "listenerPath"),
    ] {
        let mut b = Bundle::new("true");
        b.config["linux"]["seccomp"] = seccomp;
        let out = b.create();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{needle}: accepted");
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(b.status(), "absent");
        assert!(!b.root.join(&b.id).exists());
    }
}

/// A compiled filter is cached under the state root; a damaged cache entry is recompiled.
#[test]
fn compiled_filters_are_cached_by_profile() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("/dev/probe syscall 121 0; true");
    if !probe::add(&mut b) {
        return;
    }
    b.config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 66}]
    });
    assert_eq!(errnos(&b.run_ok()), [66]);
    let cache = b.root.join("..seccomp");
    let entries: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").flatten().map(|e| e.path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let before = std::fs::read(entry).expect("read");
    // A hit: the same bytes, used as they are.
    assert_eq!(errnos(&b.run_ok()), [66]);
    assert_eq!(std::fs::read(entry).expect("read"), before);
    // Damaged: not trusted, recompiled, rewritten.
    std::fs::write(entry, b"garbage").expect("write");
    assert_eq!(errnos(&b.run_ok()), [66]);
    assert_eq!(std::fs::read(entry).expect("read"), before);
    // Another profile: another entry, another result.
    b.config["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = 65.into();
    assert_eq!(errnos(&b.run_ok()), [65]);
    assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 2);
    // The cache dir is not a container.
    let list = b.testudo(&["list", "-q"]);
    assert!(list.status.success() && String::from_utf8_lossy(&list.stdout).trim().is_empty());
}

// ---- seccomp user notification -------------------------------------------------------------

const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)

/// One listener connection: the container process state and the notify fd.
fn accept_one(l: &UnixListener) -> (serde_json::Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    // A runtime that never connects fails the test instead of hanging it.
    let mut p = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert!(unsafe { libc::poll(&mut p, 1, 20_000) } > 0, "listener: no connection in 20 s");
    let (s, _) = l.accept().expect("accept");
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let r = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    let mut fd = None;
    for c in r.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(f) = c {
            // SAFETY: SCM_RIGHTS installed this fd for us.
            fd = Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f[0]) });
        }
    }
    let n = r.bytes;
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).expect("state json");
    (v, fd.expect("notify fd"))
}

/// Answer notifications until every process under the filter is gone: `answer(n)` gives the
/// (val, error) for the n-th one. Returns the syscall numbers seen.
fn serve(fd: &OwnedFd, answer: impl Fn(usize) -> (i64, i32)) -> Vec<i32> {
    let mut seen = Vec::new();
    loop {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 20_000) };
        assert!(r > 0, "listener: no notification and no hang-up in 20 s");
        if p.revents & libc::POLLIN == 0 {
            return seen; // POLLHUP: the filter has no more users
        }
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV writes one seccomp_notif into `req`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } < 0 {
            continue; // the notifying process died (ENOENT): poll again
        }
        let (val, error) = answer(seen.len());
        seen.push(req.data.nr);
        let resp = libc::seccomp_notif_resp { id: req.id, val, error, flags: 0 };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
    }
}

fn notify_profile(sock: &Path) -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "testudo-test-metadata",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// The listener gets the notify fd and the container process state, and answers mkdir: the
/// first "succeeds" without a directory being made, the second fails with EROFS.
#[test]
fn a_seccomp_listener_answers_for_the_kernel() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("/dev/probe mkdir /dev/shm/a; test -e /dev/shm/a && echo made || echo absent; /dev/probe mkdir /dev/shm/b; true");
    if !probe::add(&mut b) {
        return;
    }
    let sock = b.dir.join("listener.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    b.config["linux"]["seccomp"] = notify_profile(&sock);
    let server = std::thread::spawn(move || {
        let (state, fd) = accept_one(&l);
        let seen = serve(&fd, |n| if n == 0 { (0, 0) } else { (0, -libc::EROFS) });
        (state, seen)
    });
    let out = b.run_ok();
    let (state, seen) = server.join().expect("listener");
    assert_eq!(results(&out), ["OK 0", "ERR 30"], "{out}");
    assert!(out.contains("absent"), "the listener answered; nothing was made: {out}");
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|&nr| nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32), "{seen:?}");
    assert_eq!(state["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(state["metadata"], "testudo-test-metadata");
    assert_eq!(state["state"]["id"], b.id.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 1) && state["pid"] == state["state"]["pid"], "{state}");
    assert!(state["ociVersion"].is_string());
}

/// `exec` hands the listener a notify fd of its own, with the exec'd process's pid.
#[test]
fn exec_hands_its_own_notify_fd_to_the_listener() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sleep 30");
    if !probe::add(&mut b) {
        return;
    }
    let sock = b.dir.join("listener.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    b.config["linux"]["seccomp"] = notify_profile(&sock);
    let server = std::thread::spawn(move || {
        let (init_state, init_fd) = accept_one(&l);
        let (exec_state, exec_fd) = accept_one(&l);
        let seen = serve(&exec_fd, |_| (0, -libc::EDQUOT));
        drop(init_fd);
        (init_state, exec_state, seen)
    });
    assert!(b.create().status.success());
    let out = b.testudo(&["exec", &b.id, probe::PATH, "mkdir", "/dev/shm/c"]);
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = b.testudo(&["delete", "--force", &b.id]);
    let (init_state, exec_state, seen) = server.join().expect("listener");
    assert_eq!(out.trim(), format!("ERR {}", libc::EDQUOT));
    assert_eq!(seen.len(), 1);
    assert_eq!(exec_state["state"]["id"], b.id.as_str());
    assert_eq!(exec_state["state"]["pid"], init_state["pid"], "the container's state names its init");
    assert_ne!(exec_state["pid"], init_state["pid"], "the fd belongs to the exec'd process");
}

// ---- the shipped profiles -------------------------------------------------------------------

/// A shipped profile. Missing is a failure, not a skip: these files are part of the product.
fn profile(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("shipped profile {path:?}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("shipped profile {path:?}: {e}"))
}

#[test]
fn the_default_spec_has_the_default_profile_and_it_runs_a_container() {
    if !require_root() {
        return;
    }
    let p = profile("default.json");
    let mut b = Bundle::new(
        "grep ^Seccomp: /proc/self/status; echo hi > /dev/shm/x && cat /dev/shm/x; ls / >/dev/null && echo ls-ok; \
         /dev/probe syscall 435 0 0; /dev/probe mount /dev/shm; /dev/probe syscall 321 0 0 0; /dev/probe syscall 250 0 0 0; true",
    );
    if !probe::add(&mut b) {
        return;
    }
    // `testudo spec` (which Bundle::new runs) writes it in: the default container is filtered.
    assert_eq!(b.config["linux"]["seccomp"], p, "the default spec carries default.json");
    let out = b.run_ok();
    assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{out}");
    assert!(out.contains("hi\n") && out.contains("ls-ok"), "{out}");
    let e = errnos(&out);
    assert_eq!(e.len(), 4, "{out}");
    assert_eq!(e[0], libc::ENOSYS, "clone3 without CAP_SYS_ADMIN: ENOSYS so glibc falls back");
    assert_eq!(e[1], libc::EPERM, "mount");
    assert_eq!(e[2], libc::EPERM, "bpf");
    assert_eq!(e[3], libc::EPERM, "keyctl");
}

/// build-sandbox.json under full capabilities, so only the filter stands in the way: a shell
/// build (fork/exec pipelines, tar, checksums, a static binary) works; what a build never needs
/// is refused, including raw and packet sockets by socket()'s arguments and the i386 socketcall
/// way around those arguments.
#[test]
fn the_build_sandbox_profile_refuses_what_a_build_never_needs() {
    if !require_root() {
        return;
    }
    let p = profile("build-sandbox.json");
    let build = "mkdir -p /dev/shm/w && cd /dev/shm/w && for i in 1 2 3 4 5 6 7 8; do echo \"int f$i(void) { return $i; }\" > f$i.c; done && \
                 cat f*.c | sed 's/int/long/' | awk '{print}' > all.c && grep -c long all.c && tar cf a.tar f*.c all.c && mkdir x && \
                 tar xf a.tar -C x && cmp all.c x/all.c && sha256sum a.tar >/dev/null && /dev/probe ids >/dev/null && echo build-ok";
    let refused = [
        ("ptrace", "ptrace 1"),
        ("mount", "mount /dev/shm"),
        ("bpf", "syscall 321 0 0 0"),
        ("keyctl", "syscall 250 0 0 0"),
        ("add_key", "syscall 248 0 0 0 0 0"),
        ("userfaultfd", "syscall 323 0"),
        ("perf_event_open", "syscall 298 0 0 0 0 0"),
        ("io_uring_setup", "syscall 425 1 0"),
        ("unshare", "syscall 272 0x20000"),
        ("raw socket", "rawsock"),
        ("packet socket", "packetsock"),
        ("raw socket, SOCK_CLOEXEC", "sock 2 0x80003 1"),
        ("AF_ALG", "sock 38 5 0"),
        ("netlink audit", "sock 16 3 9"),
        ("i386 socketcall", "int80 102 1 0"),
    ];
    let allowed = [("tcp", "sock 2 1 0"), ("udp6, nonblocking", "sock 10 0x802 0"), ("unix", "sock 1 1 0"), ("netlink route", "sock 16 0x80003 0")];
    let probes: String = refused.iter().chain(allowed.iter()).map(|(_, p)| format!("/dev/probe {p}; ")).collect();
    let mut b = Bundle::new(&format!("grep ^Seccomp: /proc/self/status; {build}; {probes}true"));
    if !probe::add(&mut b) {
        return;
    }
    let all = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_NET_RAW",
        "CAP_KILL",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_NET_ADMIN",
    ];
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    b.config["linux"]["seccomp"] = p;
    let out = b.run_ok();
    assert_eq!(status_field(&out, "Seccomp"), Some("2"), "{out}");
    assert!(out.contains("\n8\n") && out.contains("build-ok"), "ordinary build work: {out}");
    let e = errnos(&out);
    assert_eq!(e.len(), refused.len() + allowed.len(), "{out}");
    for (i, (what, _)) in refused.iter().enumerate() {
        assert_ne!(e[i], 0, "{what} allowed under build-sandbox: {out}");
    }
    for (i, (what, _)) in allowed.iter().enumerate() {
        assert_eq!(e[refused.len() + i], 0, "{what} refused under build-sandbox: {out}");
    }
}
