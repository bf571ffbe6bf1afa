//! One regression test per historic runtime escape (issue 4): each reproduces the attack against
//! testudo from inside the container and shows that it fails, and names its CVE.

mod common;
mod probe;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{require_root, wait_for, Bundle};

/// A private copy of the testudo binary, so that a successful overwrite breaks nothing else.
fn own_testudo(b: &Bundle) -> PathBuf {
    let dst = b.dir.join("testudo-copy");
    std::fs::copy(common::BIN, &dst).expect("copy testudo");
    dst
}

/// `BIN --root R ARGS…` in the bundle dir, stdio to /dev/null unless the caller changes it.
fn testudo(bin: &Path, b: &Bundle, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--root").arg(&b.root).args(args).current_dir(&b.dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The attacker's report: it must have caught the runtime binary, and its write must have failed.
fn assert_overwrite_refused(out: &str, bin: &Path, before: &[u8]) {
    assert!(out.contains("CAUGHT"), "the attack never got hold of the runtime binary, so it tested nothing: {out}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("ERR"), "the container reopened the runtime binary for writing: {out}");
    assert!(std::fs::read(bin).expect("read testudo copy") == before, "the host's testudo binary was changed");
}

/// CVE-2019-5736, exec variant: `exec` of /proc/self/exe makes the kernel run the runtime's own
/// binary inside the container; a process of the container holds it through /proc/PID/exe and,
/// once it has exited, reopens it for writing to replace the host's runtime.
#[test]
fn cve_2019_5736_exec_of_proc_self_exe_cannot_overwrite_the_runtime() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sleep 60");
    if !probe::add(&mut b) {
        return;
    }
    b.write();
    let bin = own_testudo(&b);
    let before = std::fs::read(&bin).expect("read");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(testudo(&bin, &b, &["run", "-d", "--bundle", &bundle, &b.id]).status().expect("run").success());
    let fifo = "/dev/shm/cve-2019-5736";
    // The attacker is started by the real binary: a `testudo exec` waiting on it runs that one,
    // and a binary being run cannot be written (ETXTBSY) whatever the runtime does.
    let attacker = testudo(Path::new(common::BIN), &b, &["exec", &b.id, probe::PATH, "catch-exe", fifo]).stdout(Stdio::piped()).spawn().expect("attacker");
    wait_for("the attacker's fifo", || testudo(Path::new(common::BIN), &b, &["exec", &b.id, "test", "-p", fifo]).status().is_ok_and(|s| s.success()));
    // The victim blocks opening its --log (the fifo) until the attacker holds its executable.
    let _ = testudo(&bin, &b, &["exec", &b.id, "/proc/self/exe", "--log", fifo]).status().expect("victim");
    let out = attacker.wait_with_output().expect("attacker");
    assert_overwrite_refused(&String::from_utf8_lossy(&out.stdout), &bin, &before);
}

/// A pipe whose buffer is full: a process writing to it blocks until the read end is drained.
fn full_pipe() -> (std::fs::File, std::os::fd::OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("pipe size");
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).expect("nonblock");
    while nix::unistd::write(&w, &[b'x'; 512]).is_ok() {}
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).expect("block");
    (std::fs::File::from(r), w)
}

/// The kept copy is that of the binary that spawned last (any test of this file may spawn in
/// between, so the presence of one is asserted, not whose): the tests that look at it take turns.
static KEEPER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// CVE-2019-5736's protection keeps one read-only mount of each runtime binary under
/// /run/testudo.exe. Once a binary is gone (rebuilt, upgraded), its copy must go too: stale
/// copies pile up in the host's mount table, which every container's mount namespace copies.
#[test]
fn cve_2019_5736_the_kept_copy_of_a_deleted_runtime_is_unmounted() {
    if !require_root() {
        return;
    }
    let _turn = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
    use std::os::unix::fs::MetadataExt;
    let b = Bundle::new("true");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let kept = |bin: &Path| {
        let m = std::fs::metadata(bin).expect("stat copy");
        format!(" /run/testudo.exe/{}:{} ", m.dev(), m.ino())
    };
    let mounted = |entry: &str| std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").contains(entry);
    let old = b.dir.join("testudo-old");
    std::fs::copy(common::BIN, &old).expect("copy testudo");
    let old_entry = kept(&old);
    assert!(testudo(&old, &b, &["run", "--bundle", &bundle, &format!("{}-old", b.id)]).status().expect("run").success());
    assert!(mounted(&old_entry) || mounted(" /run/testudo.exe/"), "no read-only copy of the runtime was kept at{old_entry}");
    std::fs::remove_file(&old).expect("remove the old runtime");
    let new = b.dir.join("testudo-new");
    std::fs::copy(common::BIN, &new).expect("copy testudo");
    let new_entry = kept(&new);
    assert!(testudo(&new, &b, &["run", "--bundle", &bundle, &format!("{}-new", b.id)]).status().expect("run").success());
    assert!(mounted(&new_entry) || mounted(" /run/testudo.exe/"), "no read-only copy of the new runtime was kept at{new_entry}");
    assert!(!mounted(&old_entry), "the copy of the deleted runtime is still mounted at{old_entry}");
}

/// Issue 25 item 5: the kept copies were one read-only bind mount per binary that ever ran, each
/// pinning its inode, on the host and in every container's copy of the mount table. Two runtime
/// binaries at different paths, both still there, spawning in turn: at most one of them has a
/// kept copy at any time (the one that spawned last, unless another test spawned since).
#[test]
fn cve_2019_5736_kept_copies_do_not_pile_up_per_binary() {
    if !require_root() {
        return;
    }
    let _turn = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
    use std::os::unix::fs::MetadataExt;
    let b = Bundle::new("true");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let bins = [b.dir.join("testudo-a"), b.dir.join("testudo-b")];
    let entries: Vec<String> = bins
        .iter()
        .map(|bin| {
            std::fs::copy(common::BIN, bin).expect("copy testudo");
            let m = std::fs::metadata(bin).expect("stat copy");
            format!(" /run/testudo.exe/{}:{} ", m.dev(), m.ino())
        })
        .collect();
    let mountinfo = || std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for round in 0..4 {
        let (bin, entry) = (&bins[round % 2], &entries[round % 2]);
        assert!(testudo(bin, &b, &["run", "--bundle", &bundle, &format!("{}-{round}", b.id)]).status().expect("run").success(), "run {round}");
        let info = mountinfo();
        let ours: Vec<&String> = entries.iter().filter(|e| info.contains(e.as_str())).collect();
        assert!(ours.len() <= 1 && ours.iter().all(|e| *e == entry), "round {round}: kept copies of the two binaries: {ours:?}");
    }
}

/// CVE-2019-5736 as published: the container's file is a `#!/proc/self/exe` script; exec'ing it
/// makes the kernel run the runtime binary as its interpreter. The victim is held (its usage
/// error blocks on a full stderr pipe) until the attacker has its executable.
#[test]
fn cve_2019_5736_a_proc_self_exe_shebang_cannot_overwrite_the_runtime() {
    if !require_root() {
        return;
    }
    use std::io::{BufRead, Read};
    let fifo = "/dev/shm/cve-2019-5736-shebang";
    let mut b = Bundle::new("sleep 60");
    if !probe::add(&mut b) {
        return;
    }
    let root = b.own_rootfs();
    std::fs::write(root.join("evil"), format!("#!/proc/self/exe {fifo}\n")).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("evil"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    b.write();
    let bin = own_testudo(&b);
    let before = std::fs::read(&bin).expect("read");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(testudo(&bin, &b, &["run", "-d", "--bundle", &bundle, &b.id]).status().expect("run").success());
    let mut attacker = testudo(Path::new(common::BIN), &b, &["exec", &b.id, probe::PATH, "catch-exe", fifo]).stdout(Stdio::piped()).spawn().expect("attacker");
    let mut lines = std::io::BufReader::new(attacker.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(|l| l.ok()).as_deref(), Some("READY"));
    let (mut drain, w) = full_pipe();
    let mut victim = testudo(&bin, &b, &["exec", &b.id, "/evil"]).stderr(Stdio::from(w)).spawn().expect("victim");
    let mut out = String::new();
    for l in lines.by_ref() {
        let l = l.expect("attacker output");
        out.push_str(&l);
        out.push('\n');
        if l.starts_with("CAUGHT") || l.starts_with("MISSED") {
            break;
        }
    }
    // Let the victim finish its write and exit.
    let drainer = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = drain.read_to_end(&mut sink);
    });
    let _ = victim.wait();
    for l in lines {
        out.push_str(&l.expect("attacker output"));
        out.push('\n');
    }
    let _ = attacker.wait();
    drainer.join().expect("drain");
    assert_overwrite_refused(&out, &bin, &before);
}

/// CVE-2019-5736, entrypoint variant: the container's own process is /proc/self/exe (as a
/// `#!/proc/self/exe` script would make it), so init execs the runtime binary. The container
/// shares the host's pid namespace here, so the attacker outlives that process.
#[test]
fn cve_2019_5736_entrypoint_of_proc_self_exe_cannot_overwrite_the_runtime() {
    if !require_root() {
        return;
    }
    let fifo = "/dev/shm/cve-2019-5736-entrypoint";
    let mut b = Bundle::new("");
    if !probe::add(&mut b) {
        return;
    }
    b.config["process"]["args"] = serde_json::json!(["/proc/self/exe", "--log", fifo]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    ns.retain(|n| n["type"] != "pid");
    b.write();
    let bin = own_testudo(&b);
    let before = std::fs::read(&bin).expect("read");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(testudo(&bin, &b, &["create", "--bundle", &bundle, &b.id]).status().expect("create").success());
    // The attacker is started by the real binary: a `testudo exec` waiting on it runs that one,
    // and a binary being run cannot be written (ETXTBSY) whatever the runtime does.
    let attacker = testudo(Path::new(common::BIN), &b, &["exec", &b.id, probe::PATH, "catch-exe", fifo]).stdout(Stdio::piped()).spawn().expect("attacker");
    wait_for("the attacker's fifo", || testudo(Path::new(common::BIN), &b, &["exec", &b.id, "test", "-p", fifo]).status().is_ok_and(|s| s.success()));
    assert!(testudo(&bin, &b, &["start", &b.id]).status().expect("start").success());
    let out = attacker.wait_with_output().expect("attacker");
    assert_overwrite_refused(&String::from_utf8_lossy(&out.stdout), &bin, &before);
}

/// The probe's "N target" lines for every fd open in the container process.
fn open_fds(out: &str) -> Vec<(i32, String)> {
    out.lines().filter_map(|l| l.split_once(' ').and_then(|(n, t)| n.parse().ok().map(|n| (n, t.to_string())))).collect()
}

/// CVE-2024-21626 (runc leaked a host cgroupfs fd into init) and CVE-2016-9962 (an exec'd
/// process inherited runtime fds and could be ptraced for them): the container's process, init or
/// exec'd, holds stdio and nothing else.
#[test]
fn cve_2024_21626_cve_2016_9962_no_host_fd_reaches_the_container() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("/dev/probe fds; sleep 30");
    if !probe::add(&mut b) {
        return;
    }
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let run = b.testudo(&["run", "-d", "--bundle", &bundle, &b.id]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let exec = b.testudo(&["exec", &b.id, probe::PATH, "fds"]);
    let exec = String::from_utf8_lossy(&exec.stdout).into_owned();
    let fds = open_fds(&exec);
    assert!(fds.len() >= 3, "the probe saw no stdio: {exec}");
    assert!(fds.iter().all(|(n, _)| *n < 3), "exec'd process holds more than stdio: {exec}");
    // Init's own view, through its /proc/1/fd as the exec'd process sees it.
    let init = b.testudo(&["exec", &b.id, "ls", "/proc/1/fd"]);
    let init = String::from_utf8_lossy(&init.stdout).into_owned();
    let mut init_fds: Vec<i32> = init.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    init_fds.sort_unstable();
    assert_eq!(init_fds, [0, 1, 2], "init holds more than stdio: {init}");
}

/// CVE-2024-21626: a `cwd` of /proc/self/fd/N (a leaked fd to a host directory) would start the
/// process outside its root. Init and exec: refused, or at least never outside the root.
#[test]
fn cve_2024_21626_a_cwd_through_proc_self_fd_does_not_leave_the_root() {
    if !require_root() {
        return;
    }
    for n in 3..9 {
        let cwd = format!("/proc/self/fd/{n}");
        let mut b = Bundle::new("readlink /proc/self/cwd; ls /proc/self/cwd/ | head -3");
        b.config["process"]["cwd"] = cwd.clone().into();
        let (code, out, err) = b.run();
        if code == 0 {
            let here = out.lines().next().unwrap_or("");
            assert!(here.starts_with("/proc/") || here == "/", "cwd {cwd}: the process started in {here:?}: {out}");
        } else {
            assert!(err.contains("cwd"), "cwd {cwd}: the error does not name the cwd: {err}");
        }
    }
    let b = Bundle::new("sleep 30");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(b.testudo(&["run", "-d", "--bundle", &bundle, &b.id]).status.success());
    for n in 3..9 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = b.testudo(&["exec", "--cwd", &cwd, &b.id, "readlink", "/proc/self/cwd"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            assert!(text.trim() == "/" || text.starts_with("/proc/"), "exec --cwd {cwd}: started in {text:?}");
        } else {
            assert!(String::from_utf8_lossy(&out.stderr).contains("cwd"), "exec --cwd {cwd}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A directory on the host that a test watches; removed at the end.
struct HostDir(PathBuf);

impl HostDir {
    fn new(name: &str) -> HostDir {
        let d = std::env::temp_dir().join(format!("testudo-host-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("host dir");
        HostDir(d)
    }

    fn assert_untouched(&self, what: &str) {
        let entries: Vec<_> = std::fs::read_dir(&self.0).expect("read host dir").flatten().map(|e| e.path()).collect();
        assert!(entries.is_empty(), "{what}: the host directory {:?} was written to: {entries:?}", self.0);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mountinfo.contains(self.0.to_str().expect("utf8")), "{what}: something was mounted on the host under {:?}", self.0);
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CVE-2021-30465 and CVE-2024-45310: mount destinations that are symlinks out of the rootfs,
/// absolute or by `..`, dangling or not: mounts and the directories made for them stay inside the
/// root, and the host directory they point at stays empty and unmounted.
#[test]
fn cve_2021_30465_cve_2024_45310_symlinked_mount_destinations_stay_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("mounts");
    let mut b = Bundle::new("ls -d /evil-abs/tmp /evil-rel/bind /evil-dangling/new 2>&1; true");
    let root = b.own_rootfs();
    let h = host.0.to_str().expect("utf8");
    std::os::unix::fs::symlink(&host.0, root.join("evil-abs")).expect("symlink");
    std::os::unix::fs::symlink(format!("../../../../../../..{h}"), root.join("evil-rel")).expect("symlink");
    std::os::unix::fs::symlink(format!("{h}/not-yet"), root.join("evil-dangling")).expect("symlink");
    let src = b.dir.join("bind-src");
    std::fs::create_dir_all(&src).expect("bind src");
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.push(serde_json::json!({"destination": "/evil-abs/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
    mounts.push(serde_json::json!({"destination": "/evil-rel/bind", "type": "bind", "source": src, "options": ["bind"]}));
    mounts.push(serde_json::json!({"destination": "/evil-dangling/new", "type": "tmpfs", "source": "tmpfs"}));
    let (code, out, err) = b.run();
    host.assert_untouched("symlinked mount destinations");
    if code == 0 {
        // Made inside the root instead, where the links lead when the root is "/".
        assert!(root.join(h.trim_start_matches('/')).join("tmp").is_dir(), "{out}");
    } else {
        assert!(err.contains("mount"), "{err}");
    }
}

/// CVE-2025-31133: a rootfs whose /dev/null is a symlink to a procfs file the container may not
/// write; a runtime that bind-mounts "/dev/null" over masked paths would mount that file there,
/// writable. testudo binds only the host's /dev/null it opened and checked itself, and refuses a
/// /dev/null that is not the null device.
#[test]
fn cve_2025_31133_a_symlinked_dev_null_does_not_unmask() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("stat -c '%F %t:%T' /proc/kcore /proc/timer_list; echo x > /proc/timer_list; echo rc=$?");
    let root = b.own_rootfs();
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).expect("dev");
    let _ = std::fs::remove_file(dev.join("null"));
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).expect("symlink");
    // The rootfs's own /dev, not a fresh tmpfs.
    b.config["mounts"].as_array_mut().expect("mounts").retain(|m| m["destination"] != "/dev");
    let before = std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern");
    let (code, out, err) = b.run();
    assert_eq!(std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern"), before, "host core_pattern changed");
    if code == 0 {
        assert!(out.lines().take(2).all(|l| l == "character special file 1:3"), "masked paths are not the null device: {out}");
    } else {
        assert!(err.contains("/dev/null"), "{err}");
    }
}

/// CVE-2025-52881 (and CVE-2019-16884 / CVE-2023-27561 for LSM labels, which take the same
/// path): a mount over a procfs file redirects the runtime's write there. Writes go through a
/// verified procfs that refuses to cross mounts: the write is refused, the decoy untouched.
#[test]
fn cve_2025_52881_a_mount_over_a_proc_file_refuses_the_runtime_write() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("cat /proc/self/oom_score_adj");
    let decoy = b.dir.join("decoy");
    std::fs::write(&decoy, "decoy\n").expect("decoy");
    b.config["process"]["oomScoreAdj"] = 500.into();
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
        "destination": "/proc/self/oom_score_adj", "type": "bind", "source": decoy, "options": ["bind"]
    }));
    let (code, out, err) = b.run();
    assert_ne!(code, 0, "the runtime wrote through a mount over /proc: {out}");
    assert!(err.contains("oom_score_adj"), "{err}");
    assert_eq!(std::fs::read_to_string(&decoy).expect("decoy"), "decoy\n");
    assert_eq!(b.status(), "absent");
}

/// CVE-2019-16884: a rootfs whose /proc is a symlink, so that the proc mount (and the runtime's
/// later writes of labels and proc files) land on a directory of the attacker's. The mount
/// destination is resolved inside the root and the handle is checked to be a procfs root, so the
/// write reaches the real procfs: the value is in effect inside.
#[test]
fn cve_2019_16884_a_proc_symlink_does_not_swallow_proc_writes() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("cat /proc/self/oom_score_adj; cat /fake/self/oom_score_adj");
    let root = b.own_rootfs();
    let _ = std::fs::remove_dir(root.join("proc"));
    std::fs::create_dir_all(root.join("fake/self")).expect("fake");
    std::fs::write(root.join("fake/self/oom_score_adj"), "0\n").expect("fake file");
    std::os::unix::fs::symlink("/fake", root.join("proc")).expect("symlink");
    b.config["process"]["oomScoreAdj"] = 321.into();
    let (code, out, err) = b.run();
    if code == 0 {
        assert_eq!(out.lines().collect::<Vec<_>>(), ["321", "321"], "the write went to the fake /proc: {out}");
    } else {
        assert!(err.contains("proc"), "{err}");
    }
}

/// CVE-2022-29162: runc set the inheritable set to the bounding set, so a file with inheritable
/// file capabilities gained them in the container. Without inheritable caps in the spec, a
/// non-root process running a `cap_net_raw+ei` file gets nothing.
#[test]
fn cve_2022_29162_file_inheritable_caps_do_not_leak() {
    if !require_root() {
        return;
    }
    let Some(p) = probe::binary() else { return };
    let mut b = Bundle::new("grep -E '^Cap(Inh|Prm|Eff)' /proc/self/status; /bin/capprobe rawsock; true");
    let root = b.own_rootfs();
    let dst = root.join("bin/capprobe");
    std::fs::copy(p, &dst).expect("copy probe");
    let st = Command::new("setcap").arg("cap_net_raw+ei").arg(&dst).status();
    if !st.is_ok_and(|s| s.success()) {
        common::skip("setcap cap_net_raw+ei failed");
        return;
    }
    let set = ["CAP_NET_RAW", "CAP_KILL", "CAP_CHOWN"];
    b.config["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = serde_json::json!({"bounding": set, "permitted": set, "effective": set});
    let out = b.run_ok();
    assert_eq!(common::status_field(&out, "CapInh"), Some("0000000000000000"), "{out}");
    let last = out.lines().last().unwrap_or("");
    assert_eq!(probe::errno_of(last), libc::EPERM, "the file's inheritable CAP_NET_RAW was granted: {out}");
}

/// CVE-2025-52565: the pty is bound onto /dev/console; a rootfs whose /dev/console is a symlink
/// (here to a procfs file) would have it mounted there instead. The slave comes from the master
/// (TIOCGPTPEER), never from a /dev/pts/N path, and a symlinked /dev/console is refused.
#[test]
fn cve_2025_52565_a_symlinked_dev_console_is_refused() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("stat -L -c '%F %t' /dev/console /proc/sys/kernel/core_pattern");
    let root = b.own_rootfs();
    std::fs::create_dir_all(root.join("dev")).expect("dev");
    let _ = std::fs::remove_file(root.join("dev/console"));
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", root.join("dev/console")).expect("symlink");
    b.config["mounts"].as_array_mut().expect("mounts").retain(|m| m["destination"] != "/dev");
    b.config["process"]["terminal"] = true.into();
    let before = std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern");
    // Foreground `run` owns the pty itself; the container's output comes through it.
    let (code, out, err) = b.run();
    assert_eq!(std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern"), before);
    if code == 0 {
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines.first().copied(), Some("character special file 88"), "/dev/console is not the pty: {out}");
        assert!(lines.get(1).is_some_and(|l| l.starts_with("regular")), "the pty was mounted over core_pattern: {out}");
    } else {
        assert!(err.contains("/dev/console"), "{err}");
    }
}

/// CVE-2023-27561 (the return of CVE-2019-16884): a fake /proc mounted over the real one, so that
/// the runtime's writes (LSM labels, oom_score_adj, sysctls) land in the attacker's files. The
/// runtime keeps the handle it verified right after its own proc mount and writes through it; with
/// no real proc mount at all, a write it must make is an error. (Labels cannot be applied on this
/// host at all, see security_privileges; they go through the same handle.)
#[test]
fn cve_2023_27561_a_fake_proc_mounted_over_does_not_swallow_proc_writes() {
    if !require_root() {
        return;
    }
    let fake = |b: &Bundle| {
        let d = b.dir.join("fakeproc");
        for pid in ["1", "self"] {
            std::fs::create_dir_all(d.join(pid)).expect("fake");
            std::fs::write(d.join(pid).join("oom_score_adj"), "0\n").expect("fake");
        }
        d
    };
    let untouched = |d: &Path| {
        for pid in ["1", "self"] {
            assert_eq!(std::fs::read_to_string(d.join(pid).join("oom_score_adj")).expect("fake"), "0\n", "the runtime wrote into the fake /proc");
        }
    };
    // A fake proc over the real one: the value reaches the real procfs.
    let mut b = Bundle::new("sleep 30");
    let d = fake(&b);
    b.config["process"]["oomScoreAdj"] = 432.into();
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({"destination": "/proc", "type": "bind", "source": d, "options": ["rbind"]}));
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let run = b.testudo(&["run", "-d", "--bundle", &bundle, &b.id]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let pid = b.state().expect("state")["pid"].as_i64().expect("pid");
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).expect("oom_score_adj").trim(), "432");
    untouched(&d);
    // Only a fake proc: refused.
    let mut b = Bundle::new("true");
    let d = fake(&b);
    b.config["process"]["oomScoreAdj"] = 432.into();
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.retain(|m| m["destination"] != "/proc");
    mounts.push(serde_json::json!({"destination": "/proc", "type": "bind", "source": d, "options": ["rbind"]}));
    let (code, _, err) = b.run();
    assert_ne!(code, 0, "oomScoreAdj written without a real procfs");
    assert!(err.contains("proc"), "{err}");
    untouched(&d);
}

/// CVE-2021-30465 / CVE-2024-45310 as races: another party (in the CVEs, a second container on
/// the same volume) keeps swapping a directory of the rootfs with a symlink to the host while
/// containers are set up with mounts beneath it. Every path is resolved once, inside the root, to
/// an fd that the mount or mkdir then uses, so no swap can send either to the host.
#[test]
fn cve_2021_30465_cve_2024_45310_a_racing_symlink_swap_stays_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("race");
    let mut b = Bundle::new("true");
    let root = b.own_rootfs();
    std::fs::create_dir_all(root.join("vol")).expect("vol");
    std::os::unix::fs::symlink(&host.0, root.join("vol-link")).expect("symlink");
    let src = b.dir.join("bind-src");
    std::fs::create_dir_all(&src).expect("bind src");
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    mounts.push(serde_json::json!({"destination": "/vol/a/tmp", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(serde_json::json!({"destination": "/vol/b/bind", "type": "bind", "source": src, "options": ["bind"]}));
    b.write();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, l) = (
            std::ffi::CString::new(root.join("vol").into_os_string().into_encoded_bytes()).expect("c"),
            std::ffi::CString::new(root.join("vol-link").into_os_string().into_encoded_bytes()).expect("c"),
        );
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: two NUL-terminated paths; RENAME_EXCHANGE swaps them atomically.
                if unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, l.as_ptr(), libc::RENAME_EXCHANGE) } == 0 {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let mut ok = 0;
    for i in 0..40 {
        let id = format!("{}-race{i}", b.id);
        let out = b.testudo(&["run", "--bundle", &bundle, &id]);
        ok += out.status.success() as u32;
        host.assert_untouched(&format!("run {i}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 40, "the swapper hardly ran ({swaps} swaps): nothing was raced");
    host.assert_untouched("after the race");
    eprintln!("{ok} of 40 runs succeeded under {swaps} swaps");
}

/// Issue 12 (adversarial run): a container process with CAP_SYS_PTRACE walks
/// `/proc/PID/fd/N/../..` of any process in its pid namespace. The init between create and start
/// and every exec's setup process are such processes: a host directory fd held by either (the
/// container's host cgroup directory, the host's /proc) is a way to the host's `/`. From inside,
/// the probe resolves every directory fd of every pid, walked up to its top, and compares it with
/// its own root; it runs while the container is created and through 50 execs.
#[test]
fn no_host_directory_is_reachable_through_proc_fd_during_create_or_exec() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    if !probe::add(&mut b) {
        return;
    }
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set].as_array_mut().expect("caps").push("CAP_SYS_PTRACE".into());
    }
    let stop = common::scratch_dir("fd-scan-stop");
    b.mount(serde_json::json!({"destination": "/stop", "type": "bind", "source": stop, "options": ["rbind", "rw"]}));
    let out = b.create();
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let log = stop.join("scan.out");
    let mut scanner = b
        .cmd(&["exec", &b.id, probe::PATH, "fdscan", "/stop/now"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("exec scanner");
    // The scanner is running once it shows in the container's pid namespace (as pid 2 or more).
    wait_for("the scanner", || b.exec(&["sh", "-c", "ls /proc | grep -qx '[0-9]*[02-9]'"]).0 == 0);
    for i in 0..50 {
        let (code, _, err) = b.exec(&["true"]);
        assert_eq!(code, 0, "exec {i}: {err}");
    }
    std::fs::write(stop.join("now"), "").expect("stop file");
    scanner.wait().expect("scanner");
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!out.contains("ESCAPE"), "a host directory was reachable from inside the container:\n{out}");
    let count = |key: &str| -> u64 {
        let last = out.lines().last().unwrap_or("");
        let mut w = last.split_whitespace();
        while let Some(k) = w.next() {
            if k == key {
                return w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
        panic!("scanner did not finish: {out}")
    };
    // What was scanned: the init (created, waiting for start) and setup processes of execs.
    assert!(count("rounds") > 0, "{out}");
    assert!(count("others") > 0, "the scanner never saw an exec's process: {out}");
}

/// Issue 12: a container that SIGSTOPs every new process stops an exec's setup process (visible
/// in its pid namespace) before its execve. `exec` used to wait for it forever; it must say so
/// and leave no process behind.
#[test]
fn an_exec_whose_process_is_stopped_before_execve_fails_instead_of_hanging() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    if !probe::add(&mut b) {
        return;
    }
    b.config["process"]["args"] = serde_json::json!([probe::PATH, "stop-execs"]);
    b.start();
    // The probe walks /proc in a loop and may miss a setup process that is quick enough; an exec
    // it misses just runs. Until one is stopped, at most 30 tries, each bounded.
    // A stop that lands just after the execve (the probe read the runtime's argv, the kill came
    // after `true` replaced it) stops the container's own process, which exec rightly waits for:
    // that try is killed and does not count.
    let stopped_after_execve = || -> Vec<i32> {
        let ps = b.testudo(&["ps", "--format", "json", &b.id]);
        let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap_or_default();
        pids.into_iter()
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('T'))))
            .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| !c.split(|&b| b == 0).any(|a| a == b"exec")))
            .collect()
    };
    let mut caught = None;
    for _ in 0..30 {
        let mut c = b.cmd(&["exec", &b.id, "true"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("exec");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut missed = false;
        let st = loop {
            if let Some(st) = c.try_wait().expect("wait") {
                break st;
            }
            for p in stopped_after_execve() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
                missed = true;
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                panic!("exec still waits for its stopped process after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut c.stderr.take().expect("stderr"), &mut err).expect("read");
        if !st.success() && !missed {
            caught = Some(err);
            break;
        }
    }
    let err = caught.expect("30 execs ran: the probe never stopped one, so this tested nothing");
    assert!(err.contains("stopped before it could start"), "{err}");
    // Only the init (the probe) is left in the container.
    let ps = b.testudo(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).expect("ps json");
    assert_eq!(pids.len(), 1, "processes left in the container: {pids:?}");
}

/// Issue 25 item 2: a container with CAP_SYS_PTRACE (Docker's --cap-add SYS_PTRACE) takes the
/// sync socket of an exec's setup process with pidfd_getfd and names a host process as the one
/// exec started, then sends garbage: exec used to SIGKILL whatever pid came last, as host root.
/// The pid is taken once and only when the kernel says it is the runtime's child.
#[test]
fn a_forged_exec_pid_from_the_container_never_reaches_a_host_process() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    if !probe::add(&mut b) {
        return;
    }
    // Docker widens its profile for an added CAP_SYS_PTRACE (pidfd_getfd, ptrace); ours has none.
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set].as_array_mut().expect("caps").push("CAP_SYS_PTRACE".into());
    }
    let mut victim = Command::new("sleep").arg("1000").spawn().expect("victim");
    b.config["process"]["args"] = serde_json::json!([probe::PATH, "forge-pid", victim.id().to_string(), "3"]);
    b.start();
    let mut refused = Vec::new();
    for _ in 0..60 {
        let out = b.testudo(&["exec", &b.id, "true"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(victim.try_wait().expect("victim").is_none(), "exec killed the host process the container named: {err}");
        if err.contains("refused") {
            refused.push(err);
        }
        if b.status() == "stopped" {
            break;
        }
    }
    assert!(!refused.is_empty(), "the probe never forged a pid: this tested nothing");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(victim.try_wait().expect("victim").is_none(), "the host process died: {refused:?}");
    let _ = victim.kill();
    let _ = victim.wait();
}
